"""Lan-DeMets O'Brien-Fleming-type boundaries.

Reference values (one-sided alpha 0.025): ../shared/reports.md, which agree with the R packages
ldbounds (`bounds(t, iuse = 1, alpha = 0.025)`) and gsDesign (`sfLDOF`): 4 equal looks
4.3326, 2.9631, 2.3590, 2.0141; looks at 1/3, 2/3, 1: 3.7103, 2.5114, 1.9930. The total type I
error is checked independently with the multivariate normal CDF of (Z_1, ..., Z_K), whose
correlation is corr(Z_i, Z_j) = sqrt(t_i / t_j) for i < j (Jennison & Turnbull 2000, sec. 3.1).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.figures_survival import plot_boundaries
from analysis.sequential import BOUNDARY_COLUMNS, compute_obf_boundaries, compute_obf_spending, summarize_sequential


@pytest.mark.parametrize("fractions, expected", [
    ([0.25, 0.5, 0.75, 1.0], [4.333, 2.963, 2.359, 2.014]),
    ([1 / 3, 2 / 3, 1.0], [3.710, 2.511, 1.993]),
])
def test_reference_boundaries(fractions, expected):
    b = compute_obf_boundaries(fractions, alpha=0.025)
    assert list(b.columns) == BOUNDARY_COLUMNS
    np.testing.assert_allclose(b["boundary_z"], expected, atol=0.002)
    np.testing.assert_allclose(b["nominal_p"], stats.norm.sf(b["boundary_z"]))


def test_four_decimal_agreement_with_ldbounds():
    b = compute_obf_boundaries([0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(b["boundary_z"], [4.3326, 2.9631, 2.3590, 2.0141], atol=6e-5)


def _mvn(corr):
    # seeded: scipy's multivariate normal CDF uses randomised quasi-Monte Carlo
    return stats.multivariate_normal(mean=np.zeros(len(corr)), cov=corr, seed=20240101, abseps=1e-8, releps=1e-8,
                                     maxpts=2_000_000)


def test_first_crossing_probabilities_by_multivariate_normal():
    t = np.array([1 / 3, 2 / 3, 1.0])
    b = compute_obf_boundaries(t)
    z = b["boundary_z"].to_numpy()
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    # P(no crossing at any look) = P(Z_1 < c_1, ..., Z_K < c_K) = 1 - alpha
    p_none = _mvn(corr).cdf(z)
    assert 1 - p_none == pytest.approx(0.025, abs=2e-5)
    # P(no crossing by look 2) = 1 - cumulative alpha at look 2
    p_none2 = _mvn(corr[:2, :2]).cdf(z[:2])
    assert 1 - p_none2 == pytest.approx(b["cumulative_alpha"].iloc[1], abs=2e-6)


def test_spending_function_formula():
    # alpha(t) = 2 - 2 Phi(z_{1 - 0.0125} / sqrt(t)); alpha(1) = 0.025 exactly
    assert compute_obf_spending([1.0])[0] == pytest.approx(0.025)
    assert compute_obf_spending([0.25])[0] == pytest.approx(2 - 2 * stats.norm.cdf(2.241403 / 0.5), rel=1e-5)
    b = compute_obf_boundaries([0.5, 1.0])
    assert b["alpha_spent"].sum() == pytest.approx(0.025)
    # the first look spends alpha(t1) alone, so its boundary is the normal quantile
    assert b["boundary_z"].iloc[0] == pytest.approx(stats.norm.isf(compute_obf_spending([0.5])[0]))
    # a single look at t = 1 is the fixed-sample test
    assert compute_obf_boundaries([1.0])["boundary_z"].iloc[0] == pytest.approx(1.959964, abs=1e-5)


def test_tiny_first_fraction_gives_infinite_or_huge_boundary():
    b = compute_obf_boundaries([0.001, 0.5, 1.0])
    assert b["boundary_z"].iloc[0] > 20 or np.isinf(b["boundary_z"].iloc[0])
    assert b["boundary_z"].iloc[-1] == pytest.approx(compute_obf_boundaries([0.5, 1.0])["boundary_z"].iloc[-1],
                                                      abs=1e-4)


def test_summarize_flags_crossing_and_keeps_columns():
    looks = pd.DataFrame({"date": ["2020-01-01", "2021-06-01"], "information_fraction": [0.5, 1.0],
                          "observed_z": [3.1, 1.5]})
    out = summarize_sequential(looks)
    assert out["crossed"].tolist() == [True, False] and out["crossed"].iloc[0] is True
    assert out["date"].tolist() == ["2020-01-01", "2021-06-01"]
    assert out["observed_z"].tolist() == [3.1, 1.5]
    fig = plot_boundaries(out, out)
    assert len(fig.data) == 2


def test_invalid_fractions():
    for bad in ([0.5, 0.4], [0.0, 1.0], [0.5, 1.2], []):
        with pytest.raises(ValueError):
            compute_obf_boundaries(bad)


def test_fast():
    start = time.perf_counter()
    compute_obf_boundaries(np.linspace(0.1, 1, 10))
    assert time.perf_counter() - start < 2.0


def test_sequential_table_places_this_cut_at_its_observed_information(demo_snapshot):
    # The demo's final cut as a look: deaths / planned events, the boundary recomputed for the
    # looks (0.5, observed, 1), and the log-rank z checked against lifelines' independent test.
    from lifelines.statistics import logrank_test
    from analysis.outputs import build_table, get_tte
    from data_access.views import open_view
    view = open_view(demo_snapshot / "clinical", "statistician", allocation_dir=demo_snapshot / "allocation")
    table = build_table("sequential", view)
    tte = get_tte(view)
    deaths = int((tte["CNSR"] == 0).sum())
    planned = view.study.planned_events
    fraction = deaths / planned
    assert 0.5 < fraction < 1
    assert table["label"].tolist() == ["Planned look 1", f"This cut ({view.cut_date})", "Final analysis"]
    assert table["events"].tolist() == [round(0.5 * planned), deaths, planned]
    assert table["information_fraction"].tolist() == pytest.approx([0.5, fraction, 1.0])
    ref = compute_obf_boundaries([0.5, fraction, 1.0])
    assert table["boundary_z"].to_numpy() == pytest.approx(ref["boundary_z"].to_numpy())
    exp, pbo = view.arm_levels[0], view.arm_levels[-1]
    a, b = tte[tte["ARM"] == exp], tte[tte["ARM"] == pbo]
    chi2 = logrank_test(a["AVAL"], b["AVAL"], a["CNSR"] == 0, b["CNSR"] == 0).test_statistic
    # positive z = fewer deaths on the experimental arm than expected under no difference
    km_exp = (a["CNSR"] == 0).mean() < (b["CNSR"] == 0).mean()
    z = table.loc[1, "observed_z"]
    assert abs(z) == pytest.approx(np.sqrt(chi2), rel=1e-6) and (z > 0) == km_exp
    assert table.loc[1, "crossed"] == (z >= table.loc[1, "boundary_z"])
    assert table["crossed"].isna().tolist() == [True, False, True]
