"""ALSFRS-R analyses against hand computations, a brute-force joint rank, and a simulated known slope."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.alsfrs import (compute_joint_rank, compute_joint_scores, derive_kings_stage, derive_mitos_stage,
                             fit_alsfrs_slopes, summarize_alsfrs_by_visit)

ITEMS = ["ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFR05A", "ALSFRS06", "ALSFRS07", "ALSFRS08",
         "ALSFRS09", "ALSFRS10", "ALSFRS11", "ALSFRS12"]


def _items(subject, visit, scores, use_5b=False):
    rows = []
    for code, v in zip(ITEMS, scores):
        code = "ALSFR05B" if (code == "ALSFR05A" and use_5b) else code
        rows.append({"USUBJID": subject, "AVISITN": visit, "AVISIT": f"V{visit}", "PARAMCD": code, "AVAL": v})
    return rows


def test_by_visit_hand_computed():
    q = pd.DataFrame({"USUBJID": ["a", "b", "c", "a", "b"], "PARAMCD": "ALSFRST", "AVISITN": [1, 1, 1, 2, 2],
                      "AVISIT": ["Baseline"] * 3 + ["Month 1"] * 2, "ADY": [0, 0, 0, 28, 30],
                      "AVAL": [40, 42, 44, 38, 41], "BASE": [40, 42, 44, 40, 42], "CHG": [0, 0, 0, -2, -1]})
    out = summarize_alsfrs_by_visit(q)
    m1 = out[out["visit"] == "Month 1"].iloc[0]
    assert (m1["group"], m1["n"], m1["mean"], m1["mean_change"], m1["day"]) == ("All", 2, 39.5, -1.5, 29)
    assert m1["se"] == pytest.approx(np.std([38, 41], ddof=1) / np.sqrt(2))
    assert m1["se_change"] == pytest.approx(np.std([-2, -1], ddof=1) / np.sqrt(2))
    bl = out[out["visit"] == "Baseline"].iloc[0]
    assert bl["mean"] == 42 and bl["se"] == pytest.approx(2 / np.sqrt(3))


@pytest.mark.parametrize("scores, use_5b, kings, mitos", [
    ([4] * 12, False, 0, 0),
    ([3, 4, 4] + [4] * 9, False, 1, 0),                                  # bulbar only
    ([3, 4, 4, 3, 4, 4, 4, 3, 4, 4, 4, 4], False, 3, 0),                 # three regions
    ([4] * 9 + [0, 4, 4], False, 4, 1),                                  # dyspnoea 0 -> King's 4; breathing lost
    ([4] * 11 + [3], False, 4, 0),                                       # item 12 < 4 -> King's 4
    ([4, 4, 1] + [4] * 9, True, 4, 1),                                   # gastrostomy (5b); swallowing lost
    ([1, 4, 4, 1, 4, 4, 4, 1, 4, 4, 4, 2], False, 4, 3),                 # communicating, walking, breathing lost
])
def test_kings_and_mitos_rules(scores, use_5b, kings, mitos):
    q = pd.DataFrame(_items("s", 1, scores, use_5b))
    assert derive_kings_stage(q)["stage"].tolist() == [kings]
    assert derive_mitos_stage(q)["stage"].tolist() == [mitos]


def _brute_scores(died, t, change):
    n = len(died)
    u = np.zeros(n)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if died[i] or died[j]:
                ti = t[i] if died[i] else np.inf
                tj = t[j] if died[j] else np.inf
                u[i] += np.sign(ti - tj) if np.isfinite(ti) or np.isfinite(tj) else 0
            else:
                u[i] += np.sign(change[i] - change[j])
    return u


def test_joint_scores_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(5):
        n = 40
        died = rng.random(n) < 0.3
        t = rng.integers(10, 600, n).astype(float)
        change = rng.integers(-20, 3, n).astype(float)
        np.testing.assert_allclose(compute_joint_scores(died, t, change), _brute_scores(died, t, change))


def test_joint_rank_hand_example():
    # A dies day 100, B dies day 200, C alive change -5, D alive change -1.
    # Scores: A: loses to all 3 -> -3; B: beats A, loses to C, D -> -1; C: beats A, B, loses D -> +1; D: +3
    assert compute_joint_scores([1, 1, 0, 0], [100, 200, 640, 640], [0, 0, -5, -1]).tolist() == [-3, -1, 1, 3]
    adtte = pd.DataFrame({"USUBJID": list("ABCD"), "ARM": ["P", "P", "T", "T"], "AVAL": [100, 200, 640, 640],
                          "CNSR": [0, 0, 1, 1]})
    adqs = pd.DataFrame({"USUBJID": ["C", "D"], "PARAMCD": "ALSFRST", "ADY": [600, 600], "CHG": [-5.0, -1.0]})
    res = compute_joint_rank(None, adqs, adtte, "ARM", ("T", "P"))
    # T = 1 + 3 = 4; Var = 2*2/(4*3) * (9 + 1 + 1 + 9) = 20/3
    assert res.statistic == pytest.approx(4 / np.sqrt(20 / 3))
    assert res.mean_score_difference == pytest.approx(2 - (-2))


def test_mixed_model_recovers_known_slopes():
    rng = np.random.default_rng(42)
    rows = []
    for i in range(80):
        arm = "T" if i % 2 == 0 else "P"
        slope = (-0.5 if arm == "T" else -1.0) + rng.normal(0, 0.2)
        icpt = 40 + rng.normal(0, 3)
        for m in range(0, 13, 3):
            rows.append({"USUBJID": f"s{i}", "ARM": arm, "PARAMCD": "ALSFRST", "ADY": m * 30.4375,
                         "AVAL": icpt + slope * m + rng.normal(0, 1)})
    fit = fit_alsfrs_slopes(pd.DataFrame(rows), "ARM", ("T", "P"))
    assert fit.difference == pytest.approx(0.5, abs=0.15)
    eff = fit.effect_table().iloc[0]
    assert eff["ci_lower"] < 0.5 < eff["ci_upper"] and eff["p_value"] < 0.001
    slopes = fit.slopes.set_index("group")["slope"]
    assert slopes["P"] == pytest.approx(-1.0, abs=0.15) and slopes["T"] == pytest.approx(-0.5, abs=0.15)
