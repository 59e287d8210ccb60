"""The analyses recover a simulated effect and do not invent one (issue 3, "Done when").

Each case runs the real pipeline: simulate a demo trial, write the snapshot, open an unblinded
view and build the ``treatment-effect`` table as the DSMB report and the CLI do. The simulator's
true effects are in ``data_access.simulate.EFFECTS`` ("strong": HR 0.4 and half the ALSFRS-R
decline on IL-2; "null": none).
"""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.outputs import build_table
from data_access.demo import DEFAULT_SEED, make_demo
from data_access.views import open_view

SEEDS = range(1, 9)


def _effects(tmp_path, seed: int, effect: str) -> pd.DataFrame:
    clinical, allocation = make_demo(tmp_path / f"{effect}-{seed}", seed=seed, effect=effect)
    with open_view(clinical, "statistician", allocation_dir=allocation) as view:
        return build_table("treatment-effect", view).set_index("method")


def _significant(te: pd.DataFrame, method: str, null_value: float) -> bool:
    row = te.loc[method]
    return bool(row["ci_lower"] > null_value or row["ci_upper"] < null_value)


def test_default_demo_with_strong_effect_recovers_it(tmp_path):
    te = _effects(tmp_path, DEFAULT_SEED, "strong")
    assert te.loc["cox", "ci_upper"] < 1                        # HR CI excludes 1, below it
    assert te.loc["cox_stratified", "ci_upper"] < 1
    assert te.loc["logrank", "p_value"] < 0.05
    assert te.loc["alsfrs_slope_difference", "ci_lower"] > 0    # slower decline on IL-2
    assert te.loc["joint_rank", "estimate"] > 0.5 and te.loc["joint_rank", "p_value"] < 0.05
    assert te.loc["rmst_difference", "estimate"] > 0


@pytest.fixture(scope="module")
def seeds_null(tmp_path_factory):
    root = tmp_path_factory.mktemp("null")
    return [_effects(root, seed, "null") for seed in SEEDS]


@pytest.fixture(scope="module")
def seeds_strong(tmp_path_factory):
    root = tmp_path_factory.mktemp("strong")
    return [_effects(root, seed, "strong") for seed in SEEDS]


@pytest.mark.parametrize("method, null_value", [("cox", 1.0), ("cox_stratified", 1.0),
                                                ("alsfrs_slope_difference", 0.0), ("landmark_difference", 0.0)])
def test_null_effect_is_not_found_in_most_seeds(seeds_null, method, null_value):
    # at the 5% level, 8 seeds give 0.4 false positives on average; more than 2 would be a bias
    hits = sum(_significant(te, method, null_value) for te in seeds_null)
    assert hits <= 2, f"{method}: {hits} of {len(SEEDS)} null trials 'significant'"
    tests = sum(te.loc[m, "p_value"] < 0.05 for te in seeds_null for m in ("logrank", "joint_rank"))
    assert tests <= 3


def test_estimates_under_the_null_scatter_around_no_effect(seeds_null):
    hr = pd.Series([te.loc["cox", "estimate"] for te in seeds_null])
    slope = pd.Series([te.loc["alsfrs_slope_difference", "estimate"] for te in seeds_null])
    assert 0.75 < hr.median() < 1.33
    assert abs(slope.median()) < 0.15          # points/month; the strong effect is ~0.4
    assert (hr < 1).any() and (hr > 1).any()


def test_strong_effect_is_found_in_most_seeds(seeds_strong):
    # ~70 deaths at n = 220: the power for HR 0.4 is high but not 1; the slope effect is large
    assert sum(_significant(te, "cox", 1.0) for te in seeds_strong) >= 5
    assert all(te.loc["cox", "estimate"] < 1 for te in seeds_strong)
    assert all(te.loc["alsfrs_slope_difference", "ci_lower"] > 0 for te in seeds_strong)
