"""ALSFRS-R analyses against hand computations, a brute-force joint rank, statsmodels MixedLM and
simulated data with known slopes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

Z975 = 1.959963984540054

from analysis.figures_alsfrs import plot_alsfrs_change, plot_domains, plot_spaghetti, plot_stages
from analysis.alsfrs import derive_kings_stage, derive_mitos_stage, summarize_alsfrs_by_visit, summarize_stages
from analysis.alsfrs_models import fit_alsfrs_slopes
from analysis.joint_rank import compute_joint_rank, compute_joint_scores

ITEMS = ["ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFR05A", "ALSFRS06", "ALSFRS07", "ALSFRS08",
         "ALSFRS09", "ALSFRS10", "ALSFRS11", "ALSFRS12"]


def _items(subject, visit, scores, use_5b=False, day=None, arm=None):
    rows = []
    for code, v in zip(ITEMS, scores):
        code = "ALSFR05B" if (code == "ALSFR05A" and use_5b) else code
        if v is None:
            continue
        rows.append({"USUBJID": subject, "AVISITN": visit, "AVISIT": f"V{visit}", "PARAMCD": code, "AVAL": v,
                     "ADY": day if day is not None else 30 * (visit - 1), "ARM": arm})
    return rows


# --------------------------------------------------------------------------- by visit
def test_by_visit_hand_computed():
    q = pd.DataFrame({"USUBJID": ["a", "b", "c", "a", "b"], "PARAMCD": "ALSFRST", "AVISITN": [1, 1, 1, 2, 2],
                      "AVISIT": ["Baseline"] * 3 + ["Month 1"] * 2, "ADY": [0, 0, 0, 28, 30],
                      "AVAL": [40, 42, 44, 38, 41], "BASE": [40, 42, 44, 40, 42],
                      "CHG": [np.nan, np.nan, np.nan, -2, np.nan], "ABLFL": ["Y", "Y", "Y", None, None]})
    out = summarize_alsfrs_by_visit(q)
    assert out["group"].unique().tolist() == ["All"]
    m1 = out[out["visit"] == "Month 1"].iloc[0]
    # b's CHG is missing: AVAL - BASE = -1
    assert (m1["n"], m1["mean"], m1["mean_change"], m1["day"]) == (2, 39.5, -1.5, 29)
    assert m1["se"] == pytest.approx(np.sqrt(((38 - 39.5) ** 2 + (41 - 39.5) ** 2) / 1) / np.sqrt(2))   # 1.5
    assert m1["se_change"] == pytest.approx(0.5)                       # SD of (-2, -1) = 0.7071 / sqrt 2
    bl = out[out["visit"] == "Baseline"].iloc[0]
    assert bl["mean"] == 42 and bl["se"] == pytest.approx(2 / np.sqrt(3))
    assert bl["mean_change"] == 0 and bl["se_change"] == 0          # baseline change 0 by definition


def test_by_visit_groups_ordered_and_filtered():
    q = pd.DataFrame({"USUBJID": list("abcd"), "PARAMCD": "BULBAR", "AVISITN": 1, "AVISIT": "Baseline",
                      "ADY": 0, "AVAL": [10, 12, 9, 11], "BASE": [10, 12, 9, 11], "CHG": 0.0,
                      "ARM": ["Placebo", "IL-2", "IL-2", "Other"]})
    out = summarize_alsfrs_by_visit(q, paramcd="BULBAR", group_col="ARM", groups=["IL-2", "Placebo"])
    assert out["group"].tolist() == ["IL-2", "Placebo"]
    assert out["mean"].tolist() == [10.5, 10] and out["n"].tolist() == [2, 1]
    assert np.isnan(out["se"].iloc[1])                               # n = 1: no SD


# --------------------------------------------------------------------------- stages
@pytest.mark.parametrize("scores, use_5b, kings, mitos", [
    ([4] * 12, False, 0, 0),
    ([3, 4, 4] + [4] * 9, False, 1, 0),                                  # bulbar only
    ([4, 3] + [4] * 10, False, 1, 0),                                    # salivation counts as bulbar
    ([4, 4, 4, 4, 3] + [4] * 7, False, 1, 0),                            # 5a -> upper limb
    ([4] * 7 + [3, 4, 4, 4, 4], False, 1, 0),                            # walking -> lower limb
    ([4] * 6 + [0, 4, 0, 4, 0, 4], False, 0, 0),                         # items 7, 9, 11 never stage
    ([3, 4, 4, 3, 4, 4, 4, 3, 4, 4, 4, 4], False, 3, 0),                 # three regions
    ([4] * 9 + [0, 4, 4], False, 4, 1),                                  # dyspnoea 0 -> King's 4; breathing lost
    ([4] * 9 + [1, 4, 4], False, 0, 1),                                  # dyspnoea 1: breathing lost only
    ([4] * 11 + [3], False, 4, 0),                                       # item 12 < 4 -> King's 4
    ([4] * 11 + [2], False, 4, 1),                                       # item 12 <= 2: breathing lost
    ([4, 4, 1] + [4] * 9, True, 4, 1),                                   # gastrostomy (5b); swallowing lost
    ([4] * 5 + [1] + [4] * 6, False, 0, 1),                              # item 6 <= 1: self-care lost
    ([1, 4, 4, 4] + [4] * 8, False, 1, 0),                               # speech 1 but writing 4: no loss
    ([1, 4, 4, 1, 4, 4, 4, 1, 4, 4, 4, 2], False, 4, 3),                 # communicating, walking, breathing lost
    ([0, 4, 0, 0, 4, 0, 4, 0, 4, 0, 4, 0], False, 4, 4),                 # all four domains lost
])
def test_kings_and_mitos_rules(scores, use_5b, kings, mitos):
    q = pd.DataFrame(_items("s", 1, scores, use_5b))
    assert derive_kings_stage(q)["stage"].tolist() == [kings]
    assert derive_mitos_stage(q)["stage"].tolist() == [mitos]


def test_stage_missing_item_is_missing_unless_stage_4():
    no_walk = [4] * 7 + [None] + [4] * 4
    q = pd.DataFrame(_items("s", 1, no_walk) + _items("t", 1, no_walk[:11] + [3]))
    k = derive_kings_stage(q).set_index("USUBJID")["stage"]
    assert pd.isna(k["s"]) and k["t"] == 4
    assert derive_mitos_stage(q)["stage"].isna().all()


def test_death_is_stage_5_at_later_visits_and_summary():
    rows = (_items("a", 1, [4] * 12, arm="T") + _items("a", 2, [3] + [4] * 11, arm="T")
            + _items("b", 1, [4] * 12, arm="P") + _items("b", 2, [4] * 12, arm="P")
            + _items("b", 3, [4] * 11 + [3], arm="P"))
    q = pd.DataFrame(rows)                   # visits at days 0, 30, 60
    deaths = pd.DataFrame({"USUBJID": ["a", "b"], "DTHDY": [45, np.nan]})
    st = derive_kings_stage(q, deaths=deaths, group_col="ARM")
    assert st.loc[st["USUBJID"] == "a", "stage"].tolist() == [0, 1, 5]
    assert st.loc[st["USUBJID"] == "a", "ARM"].tolist() == ["T"] * 3
    tab = summarize_stages(st, group_col="ARM", groups=["T", "P"])
    assert tab["group"].tolist()[:3] == ["T"] * 3
    v3 = tab[tab["AVISITN"] == 3].set_index("group")
    assert v3.loc["T", "stage"] == 5 and v3.loc["T", "percent"] == 100 and v3.loc["P", "stage"] == 4
    pooled = summarize_stages(st)
    assert pooled["group"].unique().tolist() == ["All"]
    v1 = pooled[pooled["AVISITN"] == 2].set_index("stage")["percent"]
    assert v1.to_dict() == {0: 50.0, 1: 50.0}
    by_map = summarize_stages(st.drop(columns="ARM"), group_col="ARM", subject_groups={"a": "T", "b": "P"})
    assert set(by_map["group"]) == {"T", "P"}


def test_death_rows_respect_dates_and_data_end():
    # randomised 2020-01-01 (ADT - ADY); data end = last ADT 2020-03-01 (day 60); death day 20
    rows = _items("a", 1, [4] * 12) + _items("b", 1, [4] * 12) + _items("b", 2, [4] * 12) + _items("b", 3, [4] * 12)
    q = pd.DataFrame(rows)
    q["ADT"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(q["ADY"], unit="D")
    q.loc[q["USUBJID"] == "a", "ADT"] = pd.Timestamp("2020-02-01")        # a randomised 2020-02-01
    deaths = pd.DataFrame({"USUBJID": ["a"], "DTHDT": [pd.Timestamp("2020-02-21")]})
    st = derive_mitos_stage(q, deaths=deaths)
    # a: day 30 visit (2020-03-02) is after the data end 2020-03-01 -> no stage-5 row
    assert st.loc[st["USUBJID"] == "a", "stage"].tolist() == [0]
    deaths2 = pd.DataFrame({"USUBJID": ["a"], "DTHDT": [pd.Timestamp("2020-02-10")],
                            "RANDDT": [pd.Timestamp("2020-01-20")]})
    st2 = derive_mitos_stage(q, deaths=deaths2)                        # death day 21; visit day 30 = 2020-02-19
    assert st2.loc[st2["USUBJID"] == "a", "stage"].tolist() == [0, 5]


# --------------------------------------------------------------------------- joint rank
def _brute_scores(died, t, change):
    n = len(died)
    u = np.zeros(n)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if died[i] and died[j]:
                u[i] += np.sign(t[i] - t[j])                # earlier death is worse
            elif died[i]:
                u[i] -= 1 if t[j] >= t[i] else 0           # survivor followed past i's death wins
            elif died[j]:
                u[i] += 1 if t[i] >= t[j] else 0
            elif not (np.isnan(change[i]) or np.isnan(change[j])):
                u[i] += np.sign(change[i] - change[j])
    return u


def test_joint_scores_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(6):
        n = int(rng.integers(2, 60))
        died = rng.random(n) < 0.35
        t = rng.integers(10, 640, n).astype(float)
        t[~died & (rng.random(n) < 0.6)] = 640.0                          # most survivors complete
        change = rng.integers(-15, 2, n).astype(float)                    # many ties
        change[rng.random(n) < 0.15] = np.nan                              # no post-baseline visit
        np.testing.assert_array_equal(compute_joint_scores(died, t, change), _brute_scores(died, t, change))


def test_joint_scores_hand_example():
    # A dies d100, B dies d200, C alive chg -5, D alive chg -1, E censored d150 chg -2, F alive no chg.
    # Pairs: B-E tie (E censored before B's death), C-F, D-F, E-F tie (F missing).
    # A: -5; B: +1(A) -1(C) -1(D) -1(F) = -2; C: +1 +1 -1(D) -1(E) = 0; D: +4; E: +1(A) +1(C) -1(D) = +1; F: +2
    u = compute_joint_scores([1, 1, 0, 0, 0, 0], [100, 200, 640, 640, 150, 640], [0, 0, -5, -1, -2, np.nan])
    assert u.tolist() == [-5, -2, 0, 4, 1, 2]


def test_joint_rank_from_datasets_hand_example():
    ids = list("ABCDEF")
    adtte = pd.DataFrame({"USUBJID": ids + ids, "PARAMCD": ["OS"] * 6 + ["DTHTRV"] * 6,
                          "AVAL": [100, 200, 700, 640, 150, 660] + [1] * 6,    # F dies after the landmark
                          "CNSR": [0, 0, 1, 1, 1, 0] + [0] * 6})
    adsl = pd.DataFrame({"USUBJID": ids, "ARM": ["T", "P", "T", "P", "T", "P"]})
    adqs = pd.DataFrame({"USUBJID": ["A", "C", "C", "C", "C", "D", "D", "E", "E", "F"], "PARAMCD": "ALSFRST",
                         "ADY": [90, 0, 300, 600, 700, 0, 630, 0, 120, 0],
                         "CHG": [-10, 0, -3, -5, -9, 0, -1, 0, -2, 0], "ABLFL": [None, "Y", None, None, None,
                                                                              "Y", None, "Y", None, "Y"]})
    res = compute_joint_rank(adsl, adqs, adtte, "ARM", ("T", "P"), landmark_day=640, rule="last-change")
    assert res.scores.set_index("USUBJID")["score"].to_dict() == {"A": -5, "B": -2, "C": 0, "D": 4, "E": 1, "F": 2}
    # T = -5 + 0 + 1 = -4; Var = 3*3/(6*5) * (25+4+0+16+1+4) = 15
    assert res.statistic == pytest.approx(-4 / np.sqrt(15))
    # T vs P pairs: A-B, A-D, A-F, C-D, E-D lost; C-B won; C-F, E-B, E-F tied -> (1 + 3/2) / 9
    assert res.win_probability == pytest.approx(2.5 / 9) and res.win_ratio == pytest.approx(1 / 5)
    assert res.mean_score_difference == pytest.approx(-4 / 3 - 4 / 3)
    row = res.effect_table().iloc[0]
    assert row["method"] == "joint_rank_last_change" and row["estimate"] == pytest.approx(2.5 / 9)
    assert row["p_value"] == pytest.approx(0.3017, abs=1e-4)   # 2*Phi(-1.0328)
    # DeLong components: T patients' shares A 0, C 1.5/3, E 1/3; the T arm's share against
    # P patients B 1.5/3, D 0, F 1/3. Each has sample variance 0.064815, so var = 2 * 0.064815 / 3
    # = 0.043210; on the logit scale se = sqrt(var) / (theta (1 - theta)) = 1.03615
    theta, se = 2.5 / 9, np.sqrt(2 * np.var([0, 0.5, 1 / 3], ddof=1) / 3) / (2.5 / 9 * 6.5 / 9)
    logit = np.log(theta / (1 - theta))
    assert row["ci_lower"] == pytest.approx(1 / (1 + np.exp(-(logit - Z975 * se))))
    assert row["ci_upper"] == pytest.approx(1 / (1 + np.exp(-(logit + Z975 * se))))
    assert row["ci_lower"] == pytest.approx(0.0481, abs=1e-4) and row["ci_upper"] == pytest.approx(0.7456, abs=1e-4)


def _hand_datasets():
    ids = list("ABCDEF")
    adtte = pd.DataFrame({"USUBJID": ids, "PARAMCD": "OS", "AVAL": [100, 200, 700, 640, 150, 660],
                          "CNSR": [0, 0, 1, 1, 1, 0]})
    adsl = pd.DataFrame({"USUBJID": ids, "ARM": ["T", "P", "T", "P", "T", "P"]})
    adqs = pd.DataFrame({"USUBJID": ["A", "C", "C", "C", "C", "D", "D", "E", "E", "F"], "PARAMCD": "ALSFRST",
                         "ADY": [90, 0, 300, 600, 700, 0, 630, 0, 120, 0],
                         "CHG": [-10, 0, -3, -5, -9, 0, -1, 0, -2, 0], "ABLFL": [None, "Y", None, None, None,
                                                                              "Y", None, "Y", None, "Y"]})
    return adsl, adqs, adtte


def test_joint_rank_shared_time_hand_example():
    """Finkelstein-Schoenfeld: pairs survival cannot order are compared on function at their
    shared follow-up time. Same six patients as above; what changes: C-E at day 150 (C has no
    assessment by then: tie, was E), D-E at day 150 (tie, was D), C-D at day 640 (-5 vs -1: D).
    A: -5; B: +1(A) -1(C) -1(D) -1(F) = -2 (B-E tie: E censored at 150 before B's death, B has no
    assessment); C: +1(A) +1(B) -1(D) = +1; D: +1(A) +1(B) +1(C) = +3; E: +1(A) = +1; F: +2."""
    adsl, adqs, adtte = _hand_datasets()
    res = compute_joint_rank(adsl, adqs, adtte, "ARM", ("T", "P"), landmark_day=640)
    assert res.scores.set_index("USUBJID")["score"].to_dict() == {"A": -5, "B": -2, "C": 1, "D": 3, "E": 1, "F": 2}
    # T = -5 + 1 + 1 = -3; Var = 9/30 * (25 + 4 + 1 + 9 + 1 + 4) = 13.2
    assert res.statistic == pytest.approx(-3 / np.sqrt(13.2))
    # T vs P: C-B won; A-B, A-D, A-F, C-D lost; C-F, E-B, E-D, E-F tied -> (1 + 4/2) / 9
    assert res.win_probability == pytest.approx(3 / 9) and res.win_ratio == pytest.approx(1 / 4)
    assert res.effect_table().iloc[0]["method"] == "joint_rank"


def test_shared_time_rule_on_the_two_cases_the_last_change_rule_gets_wrong():
    """1. X died on day 100; Y was lost on day 50: survival cannot order them, so they are compared
    on function at day 50 (X -2 at day 30, Y -1 at day 30: Y better); the last-change rule ties
    them. 2. L was lost on day 90 with change -1 (day 84); K completed to day 640 with -0.5 at
    day 84 and -10 at day 600: at their shared time (day 90) K is better (-0.5 > -1); the
    last-change rule ranks L above K (-1 > -10)."""
    from analysis.joint_rank import compute_shared_time_matrix, functional_trajectories
    changes = pd.DataFrame({"USUBJID": ["X", "Y", "L", "K", "K"], "ADY": [30, 30, 84, 84, 600],
                            "_chg": [-2.0, -1.0, -1.0, -0.5, -10.0]})
    ids = ["X", "Y", "L", "K"]
    days, values = functional_trajectories(changes, ids)
    died, time = np.array([True, False, False, False]), np.array([100.0, 50.0, 90.0, 640.0])
    m = compute_shared_time_matrix(died, time, days, values)
    assert m[0, 1] == -1 and m[1, 0] == 1                     # Y better than X at day 50
    assert m[2, 3] == -1 and m[3, 2] == 1                     # K better than L at day 90
    assert (m == -m.T).all() and (np.diag(m) == 0).all()
    last = compute_joint_scores(died[[0, 1]], time[[0, 1]], np.array([np.nan, -1.0]))
    assert last.tolist() == [0, 0]                            # the sensitivity rule: a tie
    assert compute_joint_scores([False, False], [90, 640], [-1.0, -10.0]).tolist() == [1, -1]   # L above K


def test_shared_time_matrix_matches_a_pair_by_pair_loop():
    rng = np.random.default_rng(3)
    from analysis.joint_rank import compute_shared_time_matrix
    n = 40
    died = rng.random(n) < 0.35
    time = rng.integers(20, 641, n).astype(float)
    days = np.array([28.0, 84.0, 168.0, 336.0, 504.0, 630.0])
    values = np.where(rng.random((n, len(days))) < 0.8, rng.integers(-12, 1, (n, len(days))), np.nan)
    values = pd.DataFrame(values).ffill(axis=1).to_numpy()

    def value(i, s):
        k = np.searchsorted(days, s, side="right") - 1
        return np.nan if k < 0 else values[i, k]

    expected = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(n):
            if died[i] and died[j]:
                expected[i, j] = np.sign(time[i] - time[j])
            elif died[j] and time[i] >= time[j]:
                expected[i, j] = 1
            elif died[i] and time[j] >= time[i]:
                expected[i, j] = -1
            else:
                vi, vj = value(i, min(time[i], time[j])), value(j, min(time[i], time[j]))
                expected[i, j] = 0 if np.isnan(vi) or np.isnan(vj) else np.sign(vi - vj)
    np.testing.assert_array_equal(compute_shared_time_matrix(died, time, days, values, block=7), expected)


def test_win_probability_ci_two_by_two_hand_example():
    # survivors only, changes T = [3, 5], P = [1, 4]: T wins 3 of 4 pairs (theta = 0.75);
    # components T: 1/2, 1; P: 1, 1/2 -> var = 0.125/2 + 0.125/2 = 0.125
    from analysis.joint_rank import compute_win_probability_ci
    lo, hi = compute_win_probability_ci([0.5, 1.0], [1.0, 0.5])
    se = np.sqrt(0.125) / (0.75 * 0.25)
    assert (lo, hi) == pytest.approx((1 / (1 + np.exp(-(np.log(3) - Z975 * se))),
                                      1 / (1 + np.exp(-(np.log(3) + Z975 * se)))))
    assert np.isnan(compute_win_probability_ci([1.0, 1.0], [1.0, 1.0])).all()     # theta = 1: no interval


def test_joint_rank_scales_to_20000_subjects():
    rng = np.random.default_rng(7)
    n = 20000
    died = rng.random(n) < 0.3
    t = np.where(died, rng.integers(1, 640, n), 640).astype(float)
    u = compute_joint_scores(died, t, rng.normal(-10, 5, n).round())
    assert u.sum() == 0 and u.max() <= n - 1


# --------------------------------------------------------------------------- mixed model
def _simulate(n_subjects, seed, slopes=(-0.5, -1.0)):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_subjects):
        arm = "T" if i % 2 == 0 else "P"
        slope = (slopes[0] if arm == "T" else slopes[1]) + rng.normal(0, 0.2)
        icpt = 40 + rng.normal(0, 3)
        for m in range(0, 13, 3):
            rows.append({"USUBJID": f"s{i}", "ARM": arm, "PARAMCD": "ALSFRST", "ADY": m * 30.4375,
                         "AVAL": icpt + slope * m + rng.normal(0, 1)})
    return pd.DataFrame(rows)


def test_mixed_model_recovers_known_slopes():
    fit = fit_alsfrs_slopes(_simulate(60, 42), "ARM", ("T", "P"))
    assert fit.converged and fit.n_subjects == 60
    assert fit.difference == pytest.approx(0.5, abs=0.15)
    eff = fit.effect_table().iloc[0]
    assert eff["method"] == "alsfrs_slope_difference"
    assert eff["ci_lower"] < 0.5 < eff["ci_upper"] and eff["p_value"] < 0.001
    slopes = fit.slopes.set_index("group")
    assert slopes.index.tolist() == ["T", "P"] and slopes["n_subjects"].tolist() == [30, 30]
    assert slopes.loc["P", "slope"] == pytest.approx(-1.0, abs=0.15)
    assert slopes.loc["T", "slope"] == pytest.approx(-0.5, abs=0.15)
    assert fit.cov_re[1, 1] == pytest.approx(0.04, abs=0.03) and fit.residual_var == pytest.approx(1, abs=0.25)


def test_reml_engine_matches_statsmodels():
    q = _simulate(40, 3)
    ours = fit_alsfrs_slopes(q, "ARM", ("T", "P"))
    ref = fit_alsfrs_slopes(q, "ARM", ("T", "P"), engine="statsmodels")
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params.to_numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(ours.slopes["se"], ref.slopes["se"], rtol=0.02)
    np.testing.assert_allclose(ours.cov_re, ref.cov_re, rtol=0.05, atol=0.01)
    assert ours.residual_var == pytest.approx(ref.residual_var, rel=0.01)


def test_pooled_slope_and_change_response():
    q = _simulate(30, 5, slopes=(-1.0, -1.0))
    q["CHG"] = q["AVAL"] - q.groupby("USUBJID")["AVAL"].transform("first")
    fit = fit_alsfrs_slopes(q)
    assert fit.slopes["group"].tolist() == ["All"] and np.isnan(fit.difference)
    assert fit.slopes["slope"].iloc[0] == pytest.approx(-1.0, abs=0.15)
    chg = fit_alsfrs_slopes(q, response="CHG")
    assert chg.slopes["slope"].iloc[0] == pytest.approx(-1.0, abs=0.15)


# --------------------------------------------------------------------------- figures
def test_figures_show_n_sample_and_stack_to_100():
    q = _simulate(30, 9)
    q["AVISITN"] = (q["ADY"] / 30.4375 / 3).round().astype(int) + 1
    q["AVISIT"] = "M" + ((q["AVISITN"] - 1) * 3).astype(str)
    q["CHG"] = q["AVAL"] - q.groupby("USUBJID")["AVAL"].transform("first")
    q = q[~((q["USUBJID"] == "s0") & (q["AVISITN"] == 2))]             # one T subject misses M3
    tab = summarize_alsfrs_by_visit(q, group_col="ARM", groups=["T", "P"])
    fig = plot_alsfrs_change(tab)
    m3 = fig.layout.xaxis.ticktext[1]
    assert m3.startswith("M3") and "n=14<br>n=15" in m3                 # T then P
    assert [t.name for t in fig.data] == ["T", "P"]
    sp = plot_spaghetti(q, group_col="ARM", max_subjects=5, seed=3)
    assert sp.data[0].name == "P: 5 of 15 subjects"
    assert np.isnan(sp.data[0].x).sum() == 4                            # 5 subjects -> 4 breaks
    dom = plot_domains(pd.concat([tab.assign(domain=d) for d in ["BULBAR", "RESP"]]))
    assert len(dom.data) == 4 and dom.layout.annotations[0].text.startswith("Bulbar")
    st = pd.DataFrame(_items("a", 1, [4] * 12, arm="T") + _items("b", 1, [3] + [4] * 11, arm="T")
                      + _items("c", 1, [4] * 11 + [0], arm="P"))
    fig = plot_stages(summarize_stages(derive_kings_stage(st, group_col="ARM"), group_col="ARM", groups=["T", "P"]))
    totals = np.sum([np.asarray(t.y, float) for t in fig.data], axis=0)
    np.testing.assert_allclose(totals, 100)
    assert [t.name for t in fig.data] == ["Stage 0", "Stage 1", "Stage 4"]
