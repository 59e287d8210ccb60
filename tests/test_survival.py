"""Survival statistics against hand computations and published R `survival` results.

Reference data: the `aml` (leukemia) data set shipped with R's survival package (Miller 1981;
Embury et al. 1977), 23 patients. Published R output (survival package documentation and
Therneau & Grambsch 2000):
- survdiff(Surv(time, status) ~ x, aml): Chisq = 3.4 on 1 df, p = 0.0653
- coxph(Surv(time, status) ~ x, aml) (Nonmaintained vs Maintained): coef 0.9155, exp(coef) 2.498,
  se(coef) 0.5119, z = 1.788, p = 0.0737, 95% CI 0.9159-6.813
- survfit(Surv(time, status) ~ x, aml): medians Maintained 31, Nonmaintained 23.
The log-log lower limits of the median CIs (13 and 5) are computed by hand in the test below.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.survival import (compute_logrank, compute_loglog_ci, compute_rmst, compute_treatment_effects,
                               fit_km, summarize_at_risk, summarize_km, summarize_subgroups, summarize_survival)

MAINTAINED = [(9, 1), (13, 1), (13, 0), (18, 1), (23, 1), (28, 0), (31, 1), (34, 1), (45, 0), (48, 1), (161, 0)]
NONMAINTAINED = [(5, 1), (5, 1), (8, 1), (8, 1), (12, 1), (16, 0), (23, 1), (27, 1), (30, 1), (33, 1), (43, 1),
                 (45, 1)]


@pytest.fixture
def aml():
    rows = [("Maintained", t, 1 - s) for t, s in MAINTAINED] + [("Nonmaintained", t, 1 - s) for t, s in NONMAINTAINED]
    return pd.DataFrame(rows, columns=["ARM", "AVAL", "CNSR"])


def test_km_hand_computed_six_subjects():
    # times 1, 2+, 3, 3, 4+, 5: S(1) = 5/6; S(3) = 5/6 * (1 - 2/4) = 5/12; S(5) = 0
    df = pd.DataFrame({"AVAL": [1, 2, 3, 3, 4, 5], "CNSR": [0, 1, 0, 0, 1, 0]})
    km = summarize_km(df, times=[0, 1, 2, 3, 4, 5])
    assert km["survival"].tolist() == pytest.approx([1, 5 / 6, 5 / 6, 5 / 12, 5 / 12, 0])
    assert km["n_at_risk"].tolist() == [6, 6, 5, 4, 2, 1]
    assert km["n_events"].tolist() == [0, 1, 1, 3, 3, 4]
    assert km["n_censored"].tolist() == [0, 0, 1, 1, 2, 2]
    # Greenwood at t = 3: 1/(6*5) + 2/(4*2) = 0.28333...; log-log CI by hand
    s = 5 / 12
    g = 1 / 30 + 2 / 8
    se = np.sqrt(g) / abs(np.log(s))
    lo, hi = s ** np.exp(1.959963985 * se), s ** np.exp(-1.959963985 * se)
    row = km[km["time"] == 3].iloc[0]
    assert row["ci_lower"] == pytest.approx(lo, rel=1e-8) and row["ci_upper"] == pytest.approx(hi, rel=1e-8)
    assert km["group"].unique().tolist() == ["All"]


def test_aml_logrank_matches_r_survdiff(aml):
    _, _, chi2, p = compute_logrank(aml["AVAL"], 1 - aml["CNSR"], aml["ARM"] == "Nonmaintained")
    assert chi2 == pytest.approx(3.4, abs=0.05)
    assert p == pytest.approx(0.0653, abs=0.0005)


def test_aml_cox_matches_r_coxph(aml):
    te = compute_treatment_effects(aml, "ARM", [], [], 30, groups=("Nonmaintained", "Maintained"))
    cox = te.set_index("method").loc["cox"]
    assert cox["estimate"] == pytest.approx(2.498, abs=0.002)
    assert cox["ci_lower"] == pytest.approx(0.9159, abs=0.001)
    assert cox["ci_upper"] == pytest.approx(6.813, abs=0.005)
    assert cox["statistic"] == pytest.approx(1.788, abs=0.002)
    assert cox["p_value"] == pytest.approx(0.0737, abs=0.0005)


def test_aml_medians_match_r_survfit(aml):
    surv = summarize_survival(aml, "ARM", landmark_day=30).set_index("group")
    assert surv.loc["Maintained", "median"] == 31
    assert surv.loc["Nonmaintained", "median"] == 23
    # by hand, Maintained: at t=9 S=10/11, Greenwood 1/110, se(log-log)=1.0, lower = (10/11)^e^1.96 = 0.508 > .5;
    # at t=13 S=9/11, Greenwood 1/110+1/90, lower = 0.447 <= .5 -> lower limit 13.
    # Nonmaintained: at t=5 S=10/12, Greenwood 2/120, lower = 0.482 <= .5 -> lower limit 5.
    assert surv.loc["Maintained", "median_ci_lower"] == 13
    assert surv.loc["Nonmaintained", "median_ci_lower"] == 5
    assert np.isnan(surv.loc["Maintained", "median_ci_upper"])
    assert surv.loc["Total", "n"] == 23 and surv.loc["Total", "events"] == 18


def test_stratified_logrank_hand_computed():
    # stratum A: times 1 (g1 event), 2 (g0 event); stratum B: 1 (g0 event), 3 (g1 censored)
    # A: t=1: n=2, n1=1, d=1 -> E1 = 0.5, V = 0.25; t=2: n=1 (g0) -> E1 = 0, V = 0
    # B: t=1: n=2, n1=1, d=1, d1=0 -> E1 = 0.5, V = 0.25
    # O1 - E1 = (1 - 0.5) + (0 - 0.5) = 0; V = 0.5
    o_e, var, chi2, p = compute_logrank([1, 2, 1, 3], [1, 1, 1, 0], [1, 0, 0, 1], strata=["A", "A", "B", "B"])
    assert o_e == pytest.approx(0.0) and var == pytest.approx(0.5) and chi2 == pytest.approx(0.0)
    o_e, var, _, _ = compute_logrank([1, 2, 1, 3], [1, 1, 1, 0], [1, 0, 0, 1])
    # unstratified: t=1: n=4, n1=2, d=2, d1=1 -> E1 = 1, V = 2*.5*.5*2/3 = 1/3; t=2: n=2, n1=1, d=1, d1=0 -> E1 = .5, V = .25
    assert o_e == pytest.approx(1 - 1.5) and var == pytest.approx(1 / 3 + 0.25)


def test_rmst_hand_computed():
    # S = 1 on [0,1), 5/6 on [1,3), 5/12 on [3,5), 0 after; RMST(4) = 1 + 2*5/6 + 1*5/12
    km = fit_km([1, 2, 3, 3, 4, 5], [1, 0, 1, 1, 0, 1])
    rmst, se = compute_rmst(km, 4)
    assert rmst == pytest.approx(1 + 2 * 5 / 6 + 5 / 12)
    # variance: A(1) = area from 1 to 4 = 2*5/6 + 5/12; A(3) = 5/12
    var = (2 * 5 / 6 + 5 / 12) ** 2 * 1 / (6 * 5) + (5 / 12) ** 2 * 2 / (4 * 2)
    assert se == pytest.approx(np.sqrt(var))


def test_landmark_difference_uses_greenwood(aml):
    te = compute_treatment_effects(aml, "ARM", [], [], 30, groups=("Maintained", "Nonmaintained")).set_index("method")
    s1, g1 = fit_km(*zip(*[(t, e) for t, e in MAINTAINED])).at([30])
    s0, g0 = fit_km(*zip(*[(t, e) for t, e in NONMAINTAINED])).at([30])
    assert te.loc["landmark_difference", "estimate"] == pytest.approx(s1[0] - s0[0])
    se = np.sqrt(s1[0] ** 2 * g1[0] + s0[0] ** 2 * g0[0])
    assert te.loc["landmark_difference", "ci_upper"] == pytest.approx(s1[0] - s0[0] + 1.959964 * se, rel=1e-5)


def test_at_risk_and_pooled(aml):
    ar = summarize_at_risk(aml, None, times=[0, 20, 40])
    assert ar["group"].unique().tolist() == ["All"]
    assert ar["n_at_risk"].tolist() == [23, int((aml["AVAL"] >= 20).sum()), int((aml["AVAL"] >= 40).sum())]


def test_subgroups_interaction_p(aml):
    aml = aml.assign(SEX=np.where(np.arange(len(aml)) % 2 == 0, "F", "M"))
    sg = summarize_subgroups(aml, "ARM", ["SEX"], ("Nonmaintained", "Maintained"))
    assert sg["level"].tolist() == ["F", "M"]
    assert sg["n"].sum() == 23
    assert 0 < sg["p_interaction"].iloc[0] < 1


def test_loglog_ci_edges():
    lo, hi = compute_loglog_ci(np.array([1.0, 0.0]), np.array([0.0, 0.1]))
    assert lo[0] == 1.0 and hi[0] == 1.0 and np.isnan(lo[1])
