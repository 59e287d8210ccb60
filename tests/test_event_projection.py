"""analysis/event_hazards.py, analysis/event_projection.py, analysis/event_projection_trial.py and
the event-projection output: the hazard models on hand cases (closed forms, lifelines' Weibull),
the conditional death times, who is at risk at a cut, the seeded simulation, pooled rows only for
a blinded view (no arm anywhere), rows by arm for the DSMB, and a small back-test."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.event_hazards import (HazardFit, fit_dropout, fit_exponential, fit_hazard_models,
                                    fit_piecewise_exponential, fit_weibull)
from analysis.event_projection import _death_times, follow_up_status, project_deaths
from analysis.event_projection_trial import future_arrivals
from analysis.outputs import OUTPUTS, build_figure, build_table, display_table, footnotes
from data_access.views import open_view
from tests.conftest import ARM_TOKENS


# --------------------------------------------------------------------------- hazard models, hand cases
def test_exponential_is_deaths_over_person_time():
    f = fit_exponential([10, 20, 30, 40], [1, 0, 1, 0])
    assert np.exp(f.estimate[0]) == pytest.approx(2 / 100)
    assert f.cov[0, 0] == pytest.approx(1 / 2)                      # var(log rate) = 1 / deaths
    assert f.loglik == pytest.approx(2 * np.log(0.02) - 2)          # d log(rate) - rate x exposure
    assert f.aic == pytest.approx(2 - 2 * f.loglik)
    assert f.survival(50) == pytest.approx(np.exp(-1))


def test_piecewise_exponential_rates_are_deaths_over_exposure_in_each_piece():
    # pieces [0, 10) and [10, inf): exposures 5+10+10+8 = 33 and 0+5+10+0 = 15
    f = fit_piecewise_exponential([5, 15, 20, 8], [1, 1, 0, 0], breaks=(0, 10), min_events=1)
    assert f.breaks == (0.0, 10.0) and f.piece_deaths == (1, 1)
    assert f.piece_exposure == pytest.approx((33.0, 15.0))
    assert np.exp(f.estimate) == pytest.approx([1 / 33, 1 / 15])
    assert np.diag(f.cov) == pytest.approx([1.0, 1.0])
    assert f.loglik == pytest.approx(np.log(1 / 33) - 1 + np.log(1 / 15) - 1)
    assert f.cumhaz(15) == pytest.approx(10 / 33 + 5 / 15)


def test_piecewise_pieces_with_too_few_deaths_are_merged_into_the_one_before():
    time = [50] * 4 + [200] * 3 + [300, 400, 700] + [700] * 10
    event = [1] * 4 + [1] * 3 + [1, 0, 0] + [0] * 10
    f = fit_piecewise_exponential(time, event, breaks=(0, 180, 360, 540), min_events=3)
    # [180, 360) has 4 deaths; [360, 540) none and [540, inf) none: merged into [180, inf)
    assert f.breaks == (0.0, 180.0) and f.piece_deaths == (4, 4)
    assert fit_piecewise_exponential([10, 20, 400], [1, 1, 1], breaks=(0, 180)) is None     # one piece left


def test_weibull_matches_lifelines_and_its_score_equation():
    from lifelines import WeibullFitter
    rng = np.random.default_rng(1)
    t = rng.weibull(1.5, 200) * 300
    e = t < 400
    t = np.minimum(t, 400)
    f = fit_weibull(t, e)
    ref = WeibullFitter().fit(t, e)
    shape, scale = np.exp(f.estimate)
    assert shape == pytest.approx(ref.rho_, rel=1e-5) and scale == pytest.approx(ref.lambda_, rel=1e-5)
    assert f.loglik == pytest.approx(ref.log_likelihood_, rel=1e-8)
    v = ref.variance_matrix_.loc[["rho_", "lambda_"], ["rho_", "lambda_"]].to_numpy()
    delta = np.diag([1 / ref.rho_, 1 / ref.lambda_])                # log scale by the delta method
    assert f.cov == pytest.approx(delta @ v @ delta, rel=1e-3)
    d = e.sum()                                                      # the profile score is zero at the MLE
    score = d / shape + np.log(t[e]).sum() - d * (t ** shape * np.log(t)).sum() / (t ** shape).sum()
    assert abs(score) < 1e-6
    assert (scale ** shape) == pytest.approx((t ** shape).sum() / d)


def test_weibull_with_shape_one_reduces_to_the_exponential():
    rng = np.random.default_rng(2)
    t = rng.exponential(100, 4000)
    f = fit_weibull(np.minimum(t, 150), t < 150)
    assert np.exp(f.estimate[0]) == pytest.approx(1.0, abs=0.06)
    assert fit_weibull([10, 20], [1, 0]) is None                    # one death: not identifiable


def test_aic_chooses_the_shape_the_data_have():
    rng = np.random.default_rng(3)
    t = rng.weibull(2.5, 400) * 300                                 # steeply rising hazard
    chosen, candidates = fit_hazard_models(np.minimum(t, 640), t < 640)
    assert chosen.model in ("weibull", "piecewise") and {c.model for c in candidates} == {"exponential", "weibull",
                                                                                            "piecewise"}
    assert chosen.aic == min(c.aic for c in candidates)
    t = rng.exponential(900, 300)
    chosen, _ = fit_hazard_models(np.minimum(t, 640), t < 640)
    assert chosen.aic <= min(c.aic for c in _)
    none, _ = fit_hazard_models([100, 200], [0, 0])                 # no death: exponential, Jeffreys draws
    assert none.model == "exponential" and none.cov is None
    assert (none.draw(np.random.default_rng(0), 5) < 0).all()


def test_dropout_rate_is_lost_over_person_time():
    d = fit_dropout([100, 200, 300, 400], [0, 1, 0, 0])
    assert d.rate == pytest.approx(1 / 1000)
    draws = d.draw(np.random.default_rng(0), 20000)
    assert draws.mean() == pytest.approx(1.5 / 1000, rel=0.03)       # Gamma(lost + 1/2, exposure)


@pytest.mark.parametrize("fit", [
    HazardFit("exponential", np.array([np.log(0.01)]), np.eye(1), 0, 1, 1, 1.0),
    HazardFit("weibull", np.array([np.log(0.7), np.log(300.0)]), np.eye(2), 0, 1, 1, 1.0),
    HazardFit("piecewise", np.log([0.02, 0.005, 0.01]), np.eye(3), 0, 1, 1, 1.0, breaks=(0, 100, 250)),
])
def test_death_times_follow_the_survival_given_survival_to_the_cut(fit):
    """P(T > t | T > t0) = S(t) / S(t0) for draws of T from t0 = 80 (inversion of H)."""
    rng = np.random.default_rng(4)
    n = 40000
    t0 = np.full(n, 80.0)
    times = _death_times(fit, fit.estimate[None, :], t0, rng.exponential(1.0, (1, n)))[0]
    assert (times > 80).all()
    for t in (120, 200, 400):
        expected = float(fit.survival(t) / fit.survival(80))
        assert np.mean(times > t) == pytest.approx(expected, abs=0.01)


# --------------------------------------------------------------------------- status at a cut, simulation
def _hand_tte(cut="2020-01-01"):
    c = pd.Timestamp(cut)
    rand = [c - pd.Timedelta(days=d) for d in (300, 500, 200, 800, 100)]
    return pd.DataFrame({
        "USUBJID": list("ABCDE"), "STARTDT": rand, "RANDDT": rand,
        "AVAL": [120.0, 210.0, 200.0, 640.0, 100.0], "CNSR": [0, 1, 1, 1, 1],
        "ADT": [rand[0] + pd.Timedelta(days=120), rand[1] + pd.Timedelta(days=210), c,
                rand[3] + pd.Timedelta(days=640), c],
        "EOSSTT": ["DISCONTINUED", "DISCONTINUED", "ONGOING", "COMPLETED", "ONGOING"],
        "ARM": ["X", "Y", "X", "Y", "Y"]})


def test_follow_up_status_at_the_cut():
    st = follow_up_status(_hand_tte(), "2020-01-01", 640)
    assert st["death"].tolist() == [True, False, False, False, False]
    assert st["lost"].tolist() == [False, True, False, False, False]        # withdrew alive before the cut
    assert st["at_risk"].tolist() == [False, False, True, False, True]      # alive at the cut, short of day 640


def test_projection_counts_only_those_at_risk_and_the_deaths_by_the_landmark():
    tte = _hand_tte()
    p = project_deaths(tte, "2020-01-01", 640, draws=300, seed=1)
    total = p.total_deaths("All")
    assert p.observed("All") == 1 and total.min() >= 1 and total.max() <= 3        # two at risk, nobody to come
    assert p.at_risk["All"] == 2
    assert (p.target_days("All", 1) == (pd.Timestamp(tte["ADT"][0]) - pd.Timestamp("2020-01-01")).days).all()
    assert np.isinf(p.target_days("All", 4)).all()                                # never more than 3
    # future participants: a draw with 5 arrivals on day 10 can add up to 5 deaths, before day 10 + 640
    arrivals = np.full((300, 5), 10.0)
    q = project_deaths(tte, "2020-01-01", 640, arrivals=arrivals, draws=300, seed=1)
    assert q.total_deaths("All").max() <= 8 and q.final_days.max() == 650
    assert q.counts["All"][:, 651:].sum() == 0


def test_same_seed_same_projection_and_by_arm_total_is_the_sum_of_the_arms():
    tte = _hand_tte()
    arrivals = np.where(np.random.default_rng(0).random((200, 6)) < 0.5, 30.0, np.nan)
    kw = dict(group_col="ARM", groups=("X", "Y"), arrivals=arrivals, draws=200, seed=7)
    a, b = project_deaths(tte, "2020-01-01", 640, **kw), project_deaths(tte, "2020-01-01", 640, **kw)
    assert a.groups == ["X", "Y", "Total"]
    for g in a.groups:
        assert np.array_equal(a.counts[g], b.counts[g])
    assert np.array_equal(a.counts["Total"], a.counts["X"] + a.counts["Y"])
    assert a.observed("Total") == a.observed("X") + a.observed("Y")


def test_future_arrivals_stop_at_the_planned_end_of_recruitment():
    adsl = pd.DataFrame({"USUBJID": [f"S{i}" for i in range(40)], "SITEID": "FR01",
                         "RANDDT": pd.date_range("2019-01-01", periods=40, freq="7D")})
    sites = [{"id": "FR01", "activated": pd.Timestamp("2018-12-01")}]
    cut = adsl["RANDDT"].max()
    arr = future_arrivals(adsl, sites, cut, 100, recruitment_end=cut + pd.Timedelta(days=60), draws=200, seed=1)
    assert arr.shape[0] == 200 and np.nanmax(arr) <= 60 and np.isnan(arr).any()
    assert future_arrivals(adsl, sites, cut, 100, recruitment_end=cut, draws=10).shape == (10, 0)   # ended
    assert future_arrivals(adsl, sites, cut, 40, draws=10).shape == (10, 0)                          # target reached


# --------------------------------------------------------------------------- the output
@pytest.fixture(scope="module")
def interim(tmp_path_factory):
    """The default demo trial cut at 2019-06-30 (recruitment and follow-up under way)."""
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("interim") / "trial"
    make_demo(root, cut="2019-06-30")
    return root


def _views(root):
    return (open_view(root, "steering"), open_view(root, "dsmb", allocation_dir=root / "allocation"))


def test_blinded_view_gives_pooled_rows_and_names_no_arm(interim):
    blinded, _ = _views(interim)
    m = build_table("event-projection", blinded, targets=[45, 60])
    assert m["group"].tolist() == ["All", "All"] and m["target"].tolist() == [45, 60]
    assert tuple(m.columns) == OUTPUTS["event-projection"].columns
    assert pd.api.types.is_datetime64_any_dtype(m["median_date"])
    assert (m["pi95_lower"] <= m["pi80_lower"]).all() and (m["pi80_lower"] <= m["median_date"]).all()
    assert (m["median_date"] <= m["pi80_upper"]).all() and m["p_by_planned_end"].between(0, 1).all()
    shown = display_table("event-projection", m, blinded)
    text = " ".join([m.to_csv(), shown.to_csv(), *footnotes("event-projection", blinded, title=True)])
    fig = build_figure("event-projection", blinded)
    text += json.dumps(fig.to_plotly_json(), default=str)
    for token in ARM_TOKENS:
        assert token not in text, token


def test_unblinded_view_gives_each_arm_and_the_total(interim):
    blinded, unblinded = _views(interim)
    m = build_table("event-projection", unblinded, targets=[60])
    assert m["group"].tolist() == [*unblinded.arm_levels, "Total"]
    assert m["target"].tolist() == [30, 30, 60]                          # each arm's share (1:1), then the total
    arms = m[m["group"] != "Total"]
    total = m[m["group"] == "Total"].iloc[0]
    assert total["observed"] == arms["observed"].sum()
    assert total["observed"] == build_table("event-projection", blinded, targets=[60])["observed"].iloc[0]
    fig = build_figure("event-projection", unblinded)
    names = " ".join(t.name or "" for t in fig.data)
    assert all(arm in names for arm in unblinded.arm_levels)
    assert "Total" in " ".join(footnotes("event-projection", unblinded))


def test_the_table_is_seeded(interim):
    a = build_table("event-projection", _views(interim)[0])
    b = build_table("event-projection", _views(interim)[0])                # fresh views: simulated again
    assert a.to_csv() == b.to_csv()
    assert a["target"].tolist() == [60]                                    # the study's planned deaths


def test_a_target_reached_before_the_cut_has_its_date(demo_snapshot):
    """At the demo's completion cut nobody is at risk: a target reached is the date of that death,
    one never reached has no date and probability 0."""
    blinded = open_view(demo_snapshot, "steering")
    m = build_table("event-projection", blinded, targets=[10, 500]).set_index("target")
    assert m.loc[10, "median_date"] == m.loc[10, "pi95_upper"] and m.loc[10, "p_reached"] == 1
    assert pd.isna(m.loc[500, "median_date"]) and m.loc[500, "p_by_planned_end"] == 0
    assert (m["expected_by_final"] == m["observed"]).all()


def test_backtest_runs_and_compares_with_the_truth():
    from scripts.backtest_events import backtest, summarize_backtest
    r = backtest([2000, 2001], cuts=["2019-03-31"], targets=(45, 60), draws=300)
    assert set(r["quantity"]) >= {"deaths at the final analysis", "deaths one year after the cut"}
    counts = r[r["kind"] == "count"]
    assert counts["cov95"].mean() >= 0.5 and (counts["error"].abs() < 40).all()
    summary = summarize_backtest(r, "quantity")
    assert {"50% PI coverage", "80% PI coverage", "95% PI coverage", "median error"} <= set(summary.columns)
