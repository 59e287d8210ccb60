"""Survival statistics against hand computations and published R `survival` results.

Reference data: the `aml` (acute myelogenous leukaemia) data set shipped with R's survival
package (Miller 1981, "Survival Analysis", p. 49; Embury et al. 1977), 23 patients. Published R
output (survival package help pages and vignette; Therneau & Grambsch 2000):
- survdiff(Surv(time, status) ~ x, aml): Chisq = 3.4 on 1 df, p = 0.0653
- coxph(Surv(time, status) ~ x, aml) (Nonmaintained vs Maintained): coef 0.9155, exp(coef) 2.498,
  se(coef) 0.5119, z = 1.788, p = 0.0737, 95% CI 0.9159-6.813
- survfit(Surv(time, status) ~ x, aml), default conf.type = "log": medians Maintained 31
  (95% CI 18-NA), Nonmaintained 23 (8-NA); pooled (~ 1): 27 (18-45).
Every one of these numbers is also re-derived here from first principles: the Cox fit by
maximising Efron's partial likelihood written out below, the median CIs by hand (see comments).
With conf.type = "log-log" (our default) the lower median limits are 13 and 5 (hand-derived below).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from analysis.figures_survival import plot_forest, plot_km
from analysis.survival import (compute_km_ci, compute_loglog_ci, compute_rmst, compute_survival_quantile, fit_km,
                               summarize_at_risk, summarize_km, summarize_survival)
from analysis.survival_models import compute_logrank, compute_treatment_effects, summarize_subgroups

Z = 1.959963984540054
MAINTAINED = [(9, 1), (13, 1), (13, 0), (18, 1), (23, 1), (28, 0), (31, 1), (34, 1), (45, 0), (48, 1), (161, 0)]
NONMAINTAINED = [(5, 1), (5, 1), (8, 1), (8, 1), (12, 1), (16, 0), (23, 1), (27, 1), (30, 1), (33, 1), (43, 1),
                 (45, 1)]


@pytest.fixture
def aml():
    rows = [("Maintained", t, 1 - s) for t, s in MAINTAINED] + [("Nonmaintained", t, 1 - s) for t, s in NONMAINTAINED]
    return pd.DataFrame(rows, columns=["ARM", "AVAL", "CNSR"])


def efron_fit(time, event, x, strata=None):
    """Reference Cox fit: maximise Efron's log partial likelihood (summed over strata) with scipy,
    SEs from the numerically differentiated observed information. Independent of lifelines."""
    time, event, x = np.asarray(time, float), np.asarray(event, int), np.atleast_2d(np.asarray(x, float).T).T
    strata = np.zeros(len(time)) if strata is None else pd.factorize(np.asarray(strata))[0]

    def loglik(beta):
        eta = x @ beta
        r, ll = np.exp(eta), 0.0
        for s in np.unique(strata):
            m = strata == s
            for tt in np.unique(time[m & (event == 1)]):
                dead = m & (time == tt) & (event == 1)
                risk, d = m & (time >= tt), dead.sum()
                ll += eta[dead].sum() - sum(np.log(r[risk].sum() - k / d * r[dead].sum()) for k in range(d))
        return ll
    p = x.shape[1]
    beta = optimize.minimize(lambda b: -loglik(b), np.zeros(p), method="BFGS", options={"gtol": 1e-9}).x
    h, info = 1e-4, np.zeros((p, p))
    for i in range(p):
        for j in range(p):
            ei, ej = np.eye(p)[i] * h, np.eye(p)[j] * h
            info[i, j] = -(loglik(beta + ei + ej) - loglik(beta + ei - ej) - loglik(beta - ei + ej)
                           + loglik(beta - ei - ej)) / (4 * h * h)
    return beta, np.sqrt(np.diag(np.linalg.inv(info)))


# --------------------------------------------------------------------------- Kaplan-Meier
def test_km_hand_computed_six_subjects():
    # times 1, 2+, 3, 3, 4+, 5: S(1) = 5/6; S(3) = 5/6 * (1 - 2/4) = 5/12; S(5) = 0
    df = pd.DataFrame({"AVAL": [1, 2, 3, 3, 4, 5], "CNSR": [0, 1, 0, 0, 1, 0]})
    km = summarize_km(df, times=[0, 1, 2, 3, 4, 5])
    assert list(km.columns) == ["group", "time", "n_at_risk", "n_events", "n_censored", "survival", "ci_lower",
                                "ci_upper"]
    assert km["survival"].tolist() == pytest.approx([1, 5 / 6, 5 / 6, 5 / 12, 5 / 12, 0])
    assert km["n_at_risk"].tolist() == [6, 6, 5, 4, 2, 1]
    assert km["n_events"].tolist() == [0, 1, 1, 3, 3, 4]
    assert km["n_censored"].tolist() == [0, 0, 1, 1, 2, 2]
    # Greenwood at t = 3: 1/(6*5) + 2/(4*2); log-log CI S^exp(+-z sqrt(G)/|log S|) by hand
    s, g = 5 / 12, 1 / 30 + 2 / 8
    w = Z * np.sqrt(g) / abs(np.log(s))
    row = km[km["time"] == 3].iloc[0]
    assert row["ci_lower"] == pytest.approx(s ** np.exp(w), rel=1e-8)
    assert row["ci_upper"] == pytest.approx(s ** np.exp(-w), rel=1e-8)
    # at t = 1: S = 5/6, G = 1/30
    w1 = Z * np.sqrt(1 / 30) / abs(np.log(5 / 6))
    assert km.loc[1, "ci_lower"] == pytest.approx((5 / 6) ** np.exp(w1))
    assert km.loc[0, "ci_lower"] == 1 and np.isnan(km.loc[5, "ci_lower"])   # S = 1 and S = 0
    assert km["group"].unique().tolist() == ["All"]


def test_km_default_times_are_event_times_and_log_ci(aml):
    km = summarize_km(aml, "ARM", groups=("Maintained", "Nonmaintained"), conf_type="log")
    m = km[km["group"] == "Maintained"]
    assert m["time"].tolist() == [0, 9, 13, 18, 23, 31, 34, 48]
    # log CI at 13: S = 9/11, G = 1/110 + 1/90
    s, g = 9 / 11, 1 / 110 + 1 / 90
    row = m[m["time"] == 13].iloc[0]
    assert row["ci_lower"] == pytest.approx(s * np.exp(-Z * np.sqrt(g)))
    assert row["ci_upper"] == pytest.approx(min(1, s * np.exp(Z * np.sqrt(g))))


def test_pooled_returns_only_all(aml):
    assert summarize_km(aml)["group"].unique().tolist() == ["All"]
    assert summarize_survival(aml)["group"].tolist() == ["All"]
    ar = summarize_at_risk(aml, None, times=[0, 20, 40])
    assert ar["group"].unique().tolist() == ["All"]
    # AVAL >= 20: 7 Maintained + 6 Nonmaintained; AVAL >= 40: 3 + 2
    assert ar["n_at_risk"].tolist() == [23, 13, 5]
    # events <= 20: 3 + 5; <= 40: 6 + 9.  censored <= 20: 13+, 16+; <= 40: also 28+
    assert ar["n_events"].tolist() == [0, 8, 15]
    assert ar["n_censored"].tolist() == [0, 2, 3]


def test_aml_medians_match_r_survfit(aml):
    # R default conf.type = "log": lower limit = first time S exp(1.96 sqrt(G)) <= .5 ... i.e. the
    # lower band S exp(-1.96 sqrt(G)) crosses 0.5. Maintained at 13: .8182 exp(-1.96*.1421) = .619;
    # at 18: G = 1/110+1/90+1/56, .7159 exp(-1.96*.1951) = .488 -> 18. Nonmaintained at 8:
    # G = 2/120+2/80, .6667 exp(-1.96*.2041) = .447 -> 8. Upper bands never reach .5 -> NA.
    log = summarize_survival(aml, "ARM", landmark_day=30, conf_type="log").set_index("group")
    assert log.loc["Maintained", ["median", "median_ci_lower"]].tolist() == [31, 18]
    assert log.loc["Nonmaintained", ["median", "median_ci_lower"]].tolist() == [23, 8]
    assert np.isnan(log.loc["Maintained", "median_ci_upper"]) and np.isnan(log.loc["Nonmaintained", "median_ci_upper"])
    assert log.loc["Total", ["median", "median_ci_lower", "median_ci_upper"]].tolist() == [27, 18, 45]
    # log-log (default): Maintained at t=9 S=10/11, G=1/110, se(log-log) = sqrt(G)/|log S| = 1.0,
    # lower = (10/11)^exp(1.96) = 0.508 > .5; at t=13 lower = 0.447 <= .5 -> 13.
    # Nonmaintained at t=5 S=10/12, G=2/120, lower = 0.482 <= .5 -> 5.
    assert (10 / 11) ** np.exp(Z * np.sqrt(1 / 110) / abs(np.log(10 / 11))) > 0.5
    surv = summarize_survival(aml, "ARM", landmark_day=30).set_index("group")
    assert surv.loc["Maintained", ["median", "median_ci_lower"]].tolist() == [31, 13]
    assert surv.loc["Nonmaintained", ["median", "median_ci_lower"]].tolist() == [23, 5]
    assert np.isnan(surv.loc["Maintained", "median_ci_upper"])
    assert surv.loc["Total", "n"] == 23 and surv.loc["Total", "events"] == 18
    assert surv.index.tolist() == ["Maintained", "Nonmaintained", "Total"]


def test_median_midpoint_rule_on_flat_half():
    # S = 1/2 exactly from t=2 to t=4 -> R reports the midpoint 3 (quantile.survfit)
    km = fit_km([2, 2, 4, 4], [1, 1, 1, 1])
    assert compute_survival_quantile(km.time, km.survival) == 3
    # curve ending on the flat at 1/2 (last subject censored): midpoint of last event time and last time
    km = fit_km([2, 7], [1, 0])
    assert compute_survival_quantile(km.time, km.survival) == pytest.approx(4.5)
    assert np.isnan(compute_survival_quantile([1.0], [0.9]))


def test_landmark_survival_matches_greenwood(aml):
    surv = summarize_survival(aml, "ARM", landmark_day=30, groups=("Maintained", "Nonmaintained"))
    m = surv.iloc[0]
    # Maintained S(30) = 10/11 * 9/10 * 7/8 * 6/7 = 0.61364
    assert m["surv_landmark"] == pytest.approx(10 / 11 * 9 / 10 * 7 / 8 * 6 / 7)
    g = 1 / 110 + 1 / 90 + 1 / 56 + 1 / 42
    lo, hi = compute_loglog_ci(np.array([m["surv_landmark"]]), np.array([g]))
    assert (m["surv_landmark_ci_lower"], m["surv_landmark_ci_upper"]) == pytest.approx((lo[0], hi[0]))


def test_ci_types_and_edges():
    lo, hi = compute_loglog_ci(np.array([1.0, 0.0]), np.array([0.0, 0.1]))
    assert lo[0] == 1.0 and hi[0] == 1.0 and np.isnan(lo[1])
    lo, hi = compute_km_ci([0.5], [0.04], "plain")
    assert (lo[0], hi[0]) == pytest.approx((0.5 - Z * 0.5 * 0.2, 0.5 + Z * 0.5 * 0.2))
    with pytest.raises(ValueError):
        compute_km_ci([0.5], [0.1], "arcsin")


def test_invalid_input_raises():
    with pytest.raises(ValueError):
        summarize_km(pd.DataFrame({"AVAL": [1.0]}))
    with pytest.raises(ValueError):
        summarize_km(pd.DataFrame({"AVAL": [1.0, np.nan], "CNSR": [0, 1]}))
    with pytest.raises(ValueError):
        compute_treatment_effects(pd.DataFrame({"AVAL": [1.0], "CNSR": [0]}), None, [], [], 640, None)


# --------------------------------------------------------------------------- RMST
def test_rmst_hand_computed():
    # S = 1 on [0,1), 5/6 on [1,3), 5/12 on [3,5), 0 after; RMST(4) = 1 + 2*5/6 + 1*5/12
    km = fit_km([1, 2, 3, 3, 4, 5], [1, 0, 1, 1, 0, 1])
    rmst, se = compute_rmst(km, 4)
    assert rmst == pytest.approx(1 + 2 * 5 / 6 + 5 / 12)
    # variance: A(1) = area from 1 to 4 = 2*5/6 + 5/12; A(3) = 5/12
    var = (2 * 5 / 6 + 5 / 12) ** 2 * 1 / (6 * 5) + (5 / 12) ** 2 * 2 / (4 * 2)
    assert se == pytest.approx(np.sqrt(var))
    assert compute_rmst(km, 0.5)[0] == pytest.approx(0.5)      # before the first event
    assert compute_rmst(km, 10)[0] == pytest.approx(1 + 2 * 5 / 6 + 2 * 5 / 12)   # curve reaches 0 at 5


# --------------------------------------------------------------------------- comparisons
def test_aml_logrank_matches_r_survdiff(aml):
    res = compute_logrank(aml["AVAL"], 1 - aml["CNSR"], aml["ARM"] == "Nonmaintained")
    assert res.chi2 == pytest.approx(3.4, abs=0.05)
    assert res.p_value == pytest.approx(0.0653, abs=0.0005)
    # O and E from R survdiff: Nonmaintained O = 11, E = 7.31
    assert 11 - res.o_minus_e == pytest.approx(7.31, abs=0.005)


def test_stratified_logrank_hand_computed():
    # stratum A: times 1 (g1 event), 2 (g0 event); stratum B: 1 (g0 event), 3 (g1 censored)
    # A: t=1: n=2, n1=1, d=1, d1=1 -> O-E = .5, V = .25; t=2: n=1 -> V = 0
    # B: t=1: n=2, n1=1, d=1, d1=0 -> O-E = -.5, V = .25;  total O-E = 0, V = .5
    o_e, var, chi2, _ = compute_logrank([1, 2, 1, 3], [1, 1, 1, 0], [1, 0, 0, 1], strata=["A", "A", "B", "B"])
    assert o_e == pytest.approx(0.0) and var == pytest.approx(0.5) and chi2 == pytest.approx(0.0)
    # unstratified: t=1: n=4, n1=2, d=2, d1=1 -> E1 = 1, V = 2*.5*.5*2/3 = 1/3;
    # t=2: n=2, n1=1, d=1, d1=0 -> E1 = .5, V = .25
    o_e, var, _, _ = compute_logrank([1, 2, 1, 3], [1, 1, 1, 0], [1, 0, 0, 1])
    assert o_e == pytest.approx(1 - 1.5) and var == pytest.approx(1 / 3 + 0.25)


def test_stratified_logrank_two_strata_with_ties():
    # stratum 1: (g1: 2, 4+), (g0: 1, 2); stratum 2: (g1: 3), (g0: 3, 5)
    # s1 t=1: n=4 n1=2 d=1 d1=0: O-E=-.5, V=1*.5*.5*3/3=.25; t=2: n=3 n1=2 d=2 d1=1: O-E=1-4/3,
    #   V=2*(2/3)(1/3)(1)/2=2/9; s2 t=3: n=3 n1=1 d=2 d1=1: O-E=1-2/3, V=2*(1/3)(2/3)(1)/2=2/9;
    #   t=5: n=1 -> V=0
    df = pd.DataFrame({"AVAL": [2, 4, 1, 2, 3, 3, 5], "CNSR": [0, 1, 0, 0, 0, 0, 0],
                       "ARM": ["E", "E", "R", "R", "E", "R", "R"], "STRAT": ["1"] * 4 + ["2"] * 3})
    o_e = -0.5 + (1 - 4 / 3) + (1 - 2 / 3)
    var = 0.25 + 2 / 9 + 2 / 9
    te = compute_treatment_effects(df, "ARM", ["STRAT"], [], 4, ("E", "R")).set_index("method")
    assert te.loc["logrank_stratified", "statistic"] == pytest.approx(o_e ** 2 / var)
    assert te.loc["logrank_stratified", "p_value"] == pytest.approx(stats.chi2.sf(o_e ** 2 / var, 1))


def test_aml_cox_matches_r_coxph_and_efron_likelihood(aml):
    te = compute_treatment_effects(aml, "ARM", [], [], 30, groups=("Nonmaintained", "Maintained"))
    assert list(te.columns) == ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value", "n"]
    cox = te.set_index("method").loc["cox"]
    assert cox["estimate"] == pytest.approx(2.498, abs=0.002)
    assert cox["ci_lower"] == pytest.approx(0.9159, abs=0.001)
    assert cox["ci_upper"] == pytest.approx(6.813, abs=0.005)
    assert cox["statistic"] == pytest.approx(1.788, abs=0.002)
    assert cox["p_value"] == pytest.approx(0.0737, abs=0.0005)
    assert cox["n"] == 23
    beta, se = efron_fit(aml["AVAL"], 1 - aml["CNSR"], (aml["ARM"] == "Nonmaintained").astype(float))
    assert beta[0] == pytest.approx(0.9155, abs=5e-4) and se[0] == pytest.approx(0.5119, abs=5e-4)
    assert np.log(cox["estimate"]) == pytest.approx(beta[0], abs=1e-4)


def test_cox_stratified_and_adjusted_against_efron_likelihood(aml):
    rng = np.random.default_rng(7)
    df = aml.assign(SITE=np.where(np.arange(23) % 3 == 0, "X", "Y"), AGE=rng.normal(60, 10, 23).round(),
                    ONSET=np.where(np.arange(23) % 4 == 0, "Bulbar", "Limb"))
    df.loc[[2, 15], "AGE"] = np.nan
    te = compute_treatment_effects(df, "ARM", ["SITE"], ["AGE", "ONSET"], 30,
                                   ("Nonmaintained", "Maintained")).set_index("method")
    trt = (df["ARM"] == "Nonmaintained").astype(float).to_numpy()
    beta, se = efron_fit(df["AVAL"], 1 - df["CNSR"], trt, strata=df["SITE"])
    assert np.log(te.loc["cox_stratified", "estimate"]) == pytest.approx(beta[0], abs=1e-4)
    assert te.loc["cox_stratified", "statistic"] == pytest.approx(beta[0] / se[0], abs=2e-3)
    ok = df["AGE"].notna().to_numpy()
    x = np.column_stack([trt, df["AGE"], (df["ONSET"] == "Limb").astype(float)])[ok]
    beta, se = efron_fit(df["AVAL"][ok], 1 - df["CNSR"][ok], x)
    adj = te.loc["cox_adjusted"]
    assert adj["n"] == 21                        # two rows with missing AGE dropped
    assert np.log(adj["estimate"]) == pytest.approx(beta[0], abs=1e-4)
    assert np.log(adj["ci_upper"]) == pytest.approx(beta[0] + Z * se[0], abs=2e-3)


def test_landmark_and_rmst_differences(aml):
    te = compute_treatment_effects(aml, "ARM", [], [], 30, groups=("Maintained", "Nonmaintained")).set_index("method")
    s1, g1 = fit_km(*zip(*MAINTAINED)).at([30])
    s0, g0 = fit_km(*zip(*NONMAINTAINED)).at([30])
    assert te.loc["landmark_difference", "estimate"] == pytest.approx(s1[0] - s0[0])
    se = np.sqrt(s1[0] ** 2 * g1[0] + s0[0] ** 2 * g0[0])
    assert te.loc["landmark_difference", "ci_upper"] == pytest.approx(s1[0] - s0[0] + Z * se)
    # RMST to 30 by hand (area under the steps)
    m = 9 + (13 - 9) * 10 / 11 + (18 - 13) * 9 / 11 + (23 - 18) * (9 / 11 * 7 / 8) + (30 - 23) * (9 / 11 * 7 / 8 * 6 / 7)
    n = 5 + 3 * 10 / 12 + 4 * 8 / 12 + 11 * 7 / 12 + 4 * (7 / 12 * 5 / 6) + 3 * (7 / 12 * 5 / 6 * 4 / 5)
    assert te.loc["rmst_difference", "estimate"] == pytest.approx(m - n)


def test_subgroups_interaction_p_and_forest(aml):
    df = aml.assign(SEX=np.where(np.arange(len(aml)) % 2 == 0, "F", "M"),
                    AGEGR=pd.Categorical(np.where(np.arange(len(aml)) % 3 == 0, ">=60", "<60"),
                                         categories=["<60", ">=60"]))
    df.loc[0, "SEX"] = None
    sg = summarize_subgroups(df, "ARM", ["SEX", "AGEGR"], ("Nonmaintained", "Maintained"))
    assert list(sg.columns) == ["factor", "level", "n", "events_exp", "events_ref", "hr", "ci_lower", "ci_upper",
                                "p_interaction"]
    assert sg["level"].tolist() == ["F", "M", "<60", ">=60"]
    assert sg.loc[sg["factor"] == "SEX", "n"].sum() == 22 and sg.loc[sg["factor"] == "AGEGR", "n"].sum() == 23
    assert sg["events_exp"].sum() == 11 + 11 and sg["events_ref"].sum() == 6 + 7   # row 0: Maintained event
    p = sg.groupby("factor")["p_interaction"].first()
    assert ((p > 0) & (p < 1)).all()
    # the HR in a level is the Efron-likelihood HR in that level
    f = df[df["SEX"] == "F"]
    beta, _ = efron_fit(f["AVAL"], 1 - f["CNSR"], (f["ARM"] == "Nonmaintained").astype(float))
    assert np.log(sg.loc[0, "hr"]) == pytest.approx(beta[0], abs=1e-4)
    fig = plot_forest(sg)
    assert fig.layout.xaxis.type == "log" and "interaction p " in " ".join(fig.layout.yaxis.ticktext)
    # the overall row is the unadjusted Cox model of everyone: R coxph on aml, HR 2.498 (0.9159-6.813)
    with_all = summarize_subgroups(df, "ARM", ["SEX"], ("Nonmaintained", "Maintained"), overall=True)
    first = with_all.iloc[0]
    assert (first["factor"], first["level"], first["n"]) == ("All participants", "All participants", 23)
    assert (first["hr"], first["ci_lower"], first["ci_upper"]) == pytest.approx((2.498, 0.9159, 6.813), abs=1e-3)
    assert (first["events_exp"], first["events_ref"]) == (11, 7) and np.isnan(first["p_interaction"])
    assert with_all.iloc[1:].reset_index(drop=True).equals(sg[sg["factor"] == "SEX"].reset_index(drop=True))


def test_km_figure_pooled_and_grouped(aml):
    fig = plot_km(aml, landmark_day=30, times=[0, 10, 20, 30])
    names = [t.name for t in fig.data if t.name]
    assert names == ["All (n=23)"]
    fig = plot_km(aml, "ARM", ("Nonmaintained", "Maintained"), landmark_day=30, times=[0, 10, 20, 30],
                  annotation="HR 2.50 (0.92-6.81)")
    names = [t.name for t in fig.data if t.name]
    assert names == ["Nonmaintained (n=12)", "Maintained (n=11)"]
    texts = [a.text for a in fig.layout.annotations]
    assert "HR 2.50 (0.92-6.81)" in texts


def test_fit_cox_matches_lifelines_with_ties_strata_and_covariates():
    # An independent implementation (lifelines) on data with many tied times, three covariates
    # and two strata: coefficients, SEs and the log partial likelihood must agree.
    from lifelines import CoxPHFitter
    from analysis.survival_models import fit_cox
    rng = np.random.default_rng(7)
    n = 400
    x = rng.normal(size=(n, 2))
    trt = rng.integers(0, 2, n)
    t = np.ceil(rng.exponential(1 / np.exp(0.5 * trt + 0.3 * x[:, 0] - 0.2 * x[:, 1])) * 20)  # heavy ties
    e = (rng.uniform(size=n) < 0.8).astype(int)
    df = pd.DataFrame({"AVAL": t, "EVENT": e, "TRT": trt, "X1": x[:, 0], "X2": x[:, 1],
                       "S": rng.integers(0, 2, n)})
    for strata in (None, ["S"]):
        data = df if strata else df.drop(columns="S")
        ours = fit_cox(data, strata=strata)
        ref = CoxPHFitter().fit(data, "AVAL", "EVENT", strata=strata)
        assert ours.params.to_numpy() == pytest.approx(ref.params_.to_numpy(), abs=1e-6)
        assert ours.se.to_numpy() == pytest.approx(ref.standard_errors_.to_numpy(), rel=1e-5)
        assert ours.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-6)


def test_fit_cox_refuses_models_that_are_not_estimable():
    from analysis.survival_models import fit_cox
    no_events = pd.DataFrame({"AVAL": [1.0, 2, 3], "EVENT": [0, 0, 0], "TRT": [0, 1, 1]})
    with pytest.raises(ValueError, match="no events"):
        fit_cox(no_events)
    one_arm = pd.DataFrame({"AVAL": [1.0, 2, 3, 4], "EVENT": [1, 1, 0, 1], "TRT": [1, 1, 1, 1]})
    with pytest.raises(ValueError, match="not estimable"):
        fit_cox(one_arm)


def test_logrank_large_sample_matches_brute_force_counts():
    # The sorted-count implementation against the textbook definition computed subject by subject.
    rng = np.random.default_rng(3)
    t = rng.integers(1, 40, 300).astype(float)
    e = rng.integers(0, 2, 300)
    g = rng.integers(0, 2, 300)
    o_e = var = 0.0
    for tt in np.unique(t[e == 1]):
        n, n1 = (t >= tt).sum(), ((t >= tt) & (g == 1)).sum()
        d, d1 = ((t == tt) & (e == 1)).sum(), ((t == tt) & (e == 1) & (g == 1)).sum()
        o_e += d1 - d * n1 / n
        var += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0
    res = compute_logrank(t, e, g)
    assert res.o_minus_e == pytest.approx(o_e, abs=1e-9)
    assert res.variance == pytest.approx(var, abs=1e-9)


# --------------------------------------------------------------------------- global log-rank (k arms)
THREE_ARMS = {  # 45 participants, 3 arms (seeded exponential times, 70 % deaths)
    "time": [597, 226, 391, 160, 10, 131, 194, 36, 18, 301, 328, 351, 69, 656, 431, 907, 234, 38, 198, 257, 956,
             21, 59, 390, 161, 314, 536, 20, 799, 2, 1290, 558, 184, 419, 785, 311, 260, 650, 886, 220, 227, 185,
             1271, 804, 8],
    "status": [0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1,
               1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1],
    "arm": ["A"] * 15 + ["B"] * 15 + ["C"] * 15}


def test_global_logrank_matches_r_survdiff_on_three_arms():
    # R 4.2.2, survival 3.4: survdiff(Surv(time, status) ~ arm) -> Chisq = 3.2282315589 on 2 df,
    # p = 0.1990666114
    from analysis.survival_models import compute_logrank_global
    chi2, df, p = compute_logrank_global(THREE_ARMS["time"], THREE_ARMS["status"], THREE_ARMS["arm"])
    assert (round(chi2, 8), df, round(p, 8)) == (3.22823156, 2, 0.19906661)


def test_global_logrank_with_ties_against_live_r(tmp_path):
    """Heavy ties (times rounded to 30 days): the same chi-square as R survdiff, run here when R is
    installed (Debian r-base-core, r-cran-survival)."""
    import shutil
    import subprocess
    if not shutil.which("Rscript"):
        pytest.skip("Rscript is absent")
    from analysis.survival_models import compute_logrank_global
    rng = np.random.default_rng(11)
    arm = np.repeat(["P", "L", "H"], 40)
    time = np.ceil(rng.exponential(np.where(arm == "P", 250, np.where(arm == "L", 350, 500))) / 30) * 30
    status = (rng.random(len(arm)) < 0.75).astype(int)
    pd.DataFrame({"time": time, "status": status, "arm": arm}).to_csv(tmp_path / "d.csv", index=False)
    script = ('library(survival); d <- read.csv("%s"); s <- survdiff(Surv(time, status) ~ arm, data = d); '
              'cat(sprintf("%%.10f", s$chisq))' % (tmp_path / "d.csv"))
    r = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "survival" in r.stderr:
        pytest.skip("the R survival package is absent")
    chi2, df, _p = compute_logrank_global(time, status, arm)
    assert df == 2 and chi2 == pytest.approx(float(r.stdout), abs=1e-8)


def test_two_arm_global_logrank_equals_the_pairwise_test():
    from analysis.survival_models import compute_logrank, compute_logrank_global
    two = [a != "C" for a in THREE_ARMS["arm"]]
    t = np.array(THREE_ARMS["time"])[two]
    e = np.array(THREE_ARMS["status"])[two]
    g = np.array(THREE_ARMS["arm"])[two]
    chi2, df, p = compute_logrank_global(t, e, g)
    assert df == 1 and chi2 == pytest.approx(compute_logrank(t, e, g == "A").chi2)
