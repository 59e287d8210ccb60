"""analysis.recruitment_model, analysis.recruitment_projection and the ``projection`` output: the
negative-binomial fit on hand cases, the simulation's contract (seeded, sorted, extended not
redrawn), P(by planned end) in limiting cases, one row per target through ``mirocals table
projection --target``, and a small back-test (the full one is scripts/backtest_recruitment.py)."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from analysis.recruitment_model import (compute_hyper_posterior, compute_nb_loglik, compute_ramp_exposure,
                                        fit_gamma_rates, fit_recruitment_model)
from analysis.recruitment_projection import fit_recruitment_projection, sample_future_randomisations

SITES = [
    {"id": "S1", "name": "Alpha", "country": "France", "activated": "2017-06-01", "target": 5},
    {"id": "S2", "name": "Beta", "country": "UK", "activated": "2017-07-01", "target": 3},
    {"id": "S3", "name": "Gamma", "country": "UK", "activated": "2017-08-01", "target": 2},  # no recruits
]
INTERIM = "2018-09-30"


# --------------------------------------------------------------------------- the gamma fit
def test_nb_loglik_matches_scipy_negative_binomial():
    # Gamma(alpha, rate beta) mixture of Poisson(lambda tau) = NB(r=alpha, p=beta/(beta+tau))
    n, tau, a, b = np.array([0, 3, 7, 12]), np.array([100.0, 200.0, 150.0, 300.0]), 2.5, 80.0
    ref = stats.nbinom.logpmf(n, a, b / (b + tau)).sum()
    assert compute_nb_loglik(a, b, n, tau) == pytest.approx(ref, rel=1e-12)


def test_nb_loglik_by_hand_and_an_unexposed_site():
    # one site, n = 2, tau = 10, alpha = 1, beta = 5: Gamma(3)/(Gamma(1) 2!) (5/15)^1 (10/15)^2
    hand = np.log(2 / 2 * (5 / 15) * (10 / 15) ** 2)
    assert compute_nb_loglik(1.0, 5.0, [2], [10.0]) == pytest.approx(hand, rel=1e-12)
    # a site with no exposure and no count adds nothing
    assert compute_nb_loglik(1.0, 5.0, [2, 0], [10.0, 0.0]) == pytest.approx(hand, rel=1e-12)


def test_ml_estimator_equal_exposures():
    # equal exposures tau: n_i ~ NB with mean m = tau alpha/beta, var = m + m^2/alpha
    n = np.array([2, 9, 4, 15, 1, 7, 11, 3, 6, 20])
    tau = np.full(len(n), 100.0)
    a, b = fit_gamma_rates(n, tau)
    # (1) the mean rate is the ML mean for equal exposures: alpha/beta = mean(n)/tau
    assert a / b == pytest.approx(n.mean() / 100.0, rel=1e-4)
    # (2) same maximum as a direct scipy optimisation of the NB likelihood in (r, p)
    nll = lambda x: -stats.nbinom.logpmf(n, np.exp(x[0]), 1 / (1 + np.exp(-x[1]))).sum()
    ref = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12,
                                                                             "maxiter": 5000})
    assert a == pytest.approx(np.exp(ref.x[0]), rel=1e-3)
    assert compute_nb_loglik(a, b, n, tau) >= -ref.fun - 1e-8
    # (3) close to the method-of-moments estimate alpha = m^2 / (s^2 - m)
    m, s2 = n.mean(), n.var(ddof=1)
    assert a == pytest.approx(m ** 2 / (s2 - m), rel=0.35)
    # (4) a local maximum: small moves lower the likelihood
    best = compute_nb_loglik(a, b, n, tau)
    for da, db in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
        assert compute_nb_loglik(a * da, b * db, n, tau) < best


def test_poisson_counts_give_a_large_alpha():
    # equal counts over equal exposures: no over-dispersion, alpha runs to its bound, mean exact
    a, b = fit_gamma_rates([10, 10, 10, 10], [100.0] * 4)
    assert a > 1e3 and a / b == pytest.approx(0.1, rel=1e-4)


def test_hyper_posterior_peaks_at_the_ml_fit():
    n = np.array([2, 9, 4, 15, 1, 7, 11, 3, 6, 20])
    tau = np.full(len(n), 100.0)
    a, b = fit_gamma_rates(n, tau)
    log_a, log_m, w = compute_hyper_posterior(n, tau)
    assert w.shape == (len(log_a), len(log_m)) and w.sum() == pytest.approx(1.0)
    ia, im = np.unravel_index(np.argmax(w), w.shape)
    assert abs(log_a[ia] - np.log(a)) <= (log_a[1] - log_a[0])
    assert abs(log_m[im] - np.log(a / b)) <= (log_m[1] - log_m[0])
    # the posterior of the mean rate: about mean(n)/tau with a Poisson-or-wider spread
    marg = w.sum(axis=0)
    mean = np.sum(marg * log_m)
    sd = np.sqrt(np.sum(marg * (log_m - mean) ** 2))
    assert mean == pytest.approx(np.log(n.mean() / 100), abs=0.05)
    assert 1 / np.sqrt(n.sum()) < sd < 0.5


# --------------------------------------------------------------------------- simulation
def _constant_rate_case():
    # one site active 1000 days at exactly 0.1/day (100 recruits evenly spaced)
    sites = [{"id": "S1", "name": "A", "country": "UK", "activated": "2018-01-01", "target": 400}]
    dates = pd.Timestamp("2018-01-01") + pd.to_timedelta(np.arange(100) * 10 + 5, unit="D")
    adsl = pd.DataFrame({"SITEID": "S1", "RANDDT": dates})
    return sites, adsl, pd.Timestamp("2018-01-01") + pd.Timedelta(days=1000)


def test_sample_future_randomisations_contract():
    sites, adsl, cut = _constant_rate_case()
    x = sample_future_randomisations(adsl, sites, cut, 50, draws=300, seed=7)
    assert x.shape == (300, 50) and np.isfinite(x).all() and (x > 0).all()
    assert (np.diff(x, axis=1) >= 0).all()                                  # sorted per draw
    assert np.array_equal(x, sample_future_randomisations(adsl, sites, cut, 50, draws=300, seed=7))
    assert not np.array_equal(x, sample_future_randomisations(adsl, sites, cut, 50, draws=300, seed=8))
    # asking for more extends each row without redrawing it
    more = sample_future_randomisations(adsl, sites, cut, 130, draws=300, seed=7)
    assert np.array_equal(more[:, :50], x)
    assert sample_future_randomisations(adsl, sites, cut, 0, draws=5).shape == (5, 0)
    # rate ~0.1/day: the 50th arrival about 500 days after the cut
    assert np.median(x[:, -1]) == pytest.approx(500, rel=0.1)


def test_projection_table_agrees_with_the_sampled_arrivals():
    sites, adsl, cut = _constant_rate_case()
    x = sample_future_randomisations(adsl, sites, cut, 200, draws=400, seed=3)
    p = fit_recruitment_projection(adsl, sites, cut, [300, 150], draws=400, seed=3)
    assert p.table_["target"].tolist() == [300, 150]
    for target in (150, 300):
        days = np.ceil(np.quantile(x[:, target - 100 - 1], 0.5))
        assert p.row(target)["median_date"] == cut + pd.Timedelta(days=int(days))
    # the 300 row is the same whether or not 150 is asked too
    alone = fit_recruitment_projection(adsl, sites, cut, 300, draws=400, seed=3)
    pd.testing.assert_series_equal(alone.row(300), p.row(300))


def test_projection_deterministic_by_seed():
    sites, adsl, cut = _constant_rate_case()
    p1 = fit_recruitment_projection(adsl, sites, cut, 300, draws=300, seed=7)
    p2 = fit_recruitment_projection(adsl, sites, cut, 300, draws=300, seed=7)
    p3 = fit_recruitment_projection(adsl, sites, cut, 300, draws=300, seed=8)
    pd.testing.assert_frame_equal(p1.table_, p2.table_)
    pd.testing.assert_frame_equal(p1.fan_, p2.fan_)
    assert not p1.fan_.equals(p3.fan_)


def test_projection_constant_rate_matches_analytic():
    sites, adsl, cut = _constant_rate_case()
    p = fit_recruitment_projection(adsl, sites, cut, 300, draws=2000, seed=1)
    r = p.row()
    # remaining 200 at rate ~0.1/day: expected 2000 days after the cut
    expected = cut + pd.Timedelta(days=(300 - 100) / 0.1)
    assert abs((r["median_date"] - expected).days) <= 0.05 * 2000
    assert r["pi95_lower"] < r["pi80_lower"] < r["median_date"] < r["pi80_upper"] < r["pi95_upper"]
    assert p.n_randomised == 100 and np.isnan(r["p_by_planned_end"])
    fan = p.fan_
    assert list(fan.columns) == ["month", "median", "lower80", "upper80", "lower95", "upper95"]
    assert fan["month"].iloc[0] == cut.strftime("%Y-%m")
    assert (fan["lower95"] <= fan["lower80"]).all() and (fan["lower80"] <= fan["median"]).all()
    assert (fan["median"] <= fan["upper80"]).all() and (fan["upper80"] <= fan["upper95"]).all()
    assert fan["median"].is_monotonic_increasing and fan["upper95"].max() == 300


def test_p_by_planned_end_in_limiting_cases():
    sites, adsl, cut = _constant_rate_case()
    # 10 more at 0.1/day take ~100 days: an end 20 years away is certain, the day after the cut hopeless
    far = fit_recruitment_projection(adsl, sites, cut, 110, draws=500, planned_end=cut + pd.Timedelta(days=7300))
    near = fit_recruitment_projection(adsl, sites, cut, 110, draws=500, planned_end=cut + pd.Timedelta(days=1))
    assert far.row()["p_by_planned_end"] == 1.0 and near.row()["p_by_planned_end"] == 0.0
    # a target reached by the cut: 1 when reached before the end, 0 after it
    done = fit_recruitment_projection(adsl, sites, cut, [50, 110], draws=100, planned_end="2019-06-01")
    assert done.row(50)["median_date"] == adsl["RANDDT"].iloc[49] == done.row(50)["pi95_upper"]
    assert done.row(50)["p_by_planned_end"] == 1.0
    late = fit_recruitment_projection(adsl, sites, cut, [90, 110], draws=100, planned_end="2019-06-01")
    assert late.row(90)["p_by_planned_end"] == 0.0


def test_beyond_the_horizon_is_missing():
    sites, adsl, cut = _constant_rate_case()
    # 2000 more at 0.1/day take ~55 years: every date beyond the 10-year horizon
    p = fit_recruitment_projection(adsl, sites, cut, 2100, draws=200)
    assert p.row()[["median_date", "pi80_upper", "pi95_upper"]].isna().all()


def test_sites_not_yet_active_enter_after_their_lag():
    # two sites recruiting for years at 0.05 and 0.15/day, one activating 100 days after the cut
    start = pd.Timestamp("2000-01-01")
    cut = start + pd.Timedelta(days=20000)
    rows = [("A", start + pd.Timedelta(days=float(d))) for d in np.arange(1000) * 20]
    rows += [("B", start + pd.Timedelta(days=float(d))) for d in np.arange(3000) * (20000 / 3000)]
    adsl = pd.DataFrame(rows, columns=["SITEID", "RANDDT"])
    sites = [{"id": "A", "activated": start}, {"id": "B", "activated": start},
             {"id": "C", "activated": cut + pd.Timedelta(days=100)}]
    model = fit_recruitment_model(adsl, sites, cut, lag_days=50)
    assert model.sites_["n"].tolist() == [1000, 3000, 0]
    assert model.sites_["start"].iloc[2] == cut + pd.Timedelta(days=150)
    p = fit_recruitment_projection(adsl, sites, cut, 4000 + 100, draws=1000, seed=3, lag_days=50)
    # 100 more: 0.2 t + 0.1 max(t - 150, 0) = 100 -> t = 383 (C's rate is uncertain)
    days = (p.row()["median_date"] - cut).days
    assert 340 <= days <= 440


def test_ramp_exposure_by_hand():
    # 200 days after activation, lag 100, ramp 50: 100 - 50 (1 - exp(-2)) = 56.77 days at full rate
    assert compute_ramp_exposure(200, 100, 50) == pytest.approx(100 - 50 * (1 - np.exp(-2)), rel=1e-12)
    assert compute_ramp_exposure([50, 200], 100, 0).tolist() == [0.0, 100.0]        # a step: no ramp


def _ramped_trial(lag=100.0, ramp=60.0, n_sites=30, cut_day=700, seed=5):
    """Sites activated together, rates Gamma(4, mean 0.1/day), arrivals of intensity
    rate * h(s) (lag, then 1 - exp(-(s - lag)/ramp)) by thinning a homogeneous process."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2018-01-01")
    rows = []
    for i, lam in enumerate(rng.gamma(4.0, 0.1 / 4.0, n_sites)):
        s = np.sort(rng.uniform(0, cut_day, rng.poisson(lam * cut_day)))
        keep = rng.random(len(s)) < np.where(s > lag, 1 - np.exp(-(s - lag) / ramp), 0)
        rows += [(f"S{i:02d}", start + pd.Timedelta(days=int(d))) for d in s[keep]]
    sites = [{"id": f"S{i:02d}", "activated": start} for i in range(n_sites)]
    return pd.DataFrame(rows, columns=["SITEID", "RANDDT"]), sites, start + pd.Timedelta(days=cut_day - 1)


def test_site_lag_and_ramp_are_estimated_from_randomisation_dates():
    adsl, sites, cut = _ramped_trial()
    model = fit_recruitment_model(adsl, sites, cut)
    up = model.startup_
    assert abs(up.lag_days - 100) <= 14 and up.lag_range[0] <= 100 <= up.lag_range[1] + 7
    assert 30 <= up.ramp_days <= 120 and up.ramp_range[0] <= 60 <= up.ramp_range[1]
    assert up.n_randomising == 30 and up.n_activated == 30
    # no lag beyond the first randomisation: every site could randomise from then on
    first = (pd.to_datetime(adsl["RANDDT"]).min() - pd.Timestamp("2018-01-01")).days
    assert model.configs_[:, 0].max() <= first
    # the full rates: sum of the sites' posterior means close to the true total (30 x 0.1/day)
    assert model.mean_rate_per_month == pytest.approx(30 * 0.1 * 30.44, rel=0.2)


def test_a_step_model_ignoring_the_ramp_projects_late():
    # fitted with no ramp (a step at the lag), the site rates averaged over the ramp-up are too
    # low and the date too late: the reason the ramp is in the model
    adsl, sites, cut = _ramped_trial(cut_day=300)
    target = len(adsl) + 400
    ramped = fit_recruitment_projection(adsl, sites, cut, target, draws=400).row()["median_date"]
    step = fit_recruitment_projection(adsl, sites, cut, target, draws=400, ramp_days=0).row()["median_date"]
    # truth: about 400 / 3 per day at full rate once the ramps are complete -> ~ 135-190 days
    assert (ramped - cut).days < 200 < (step - cut).days


def test_target_already_reached_gives_its_date():
    adsl = pd.DataFrame({"SITEID": ["S1", "S1", "S2"], "RANDDT": pd.to_datetime(["2017-07-01", "2017-08-15",
                                                                                 "2017-08-20"])})
    p = fit_recruitment_projection(adsl, SITES, "2017-12-31", 2)
    assert p.row()["median_date"] == pd.Timestamp("2017-08-15") and p.fan_.empty


# --------------------------------------------------------------------------- the output and the CLI
@pytest.fixture(scope="module")
def recruiting(tmp_path_factory):
    """The demo trial cut during recruitment (its default cut is after recruitment ended)."""
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("recruiting") / "trial"
    make_demo(root, cut=INTERIM)
    return root


def test_cli_one_row_per_target_and_identical_bytes_twice(recruiting):
    from tests.test_cli import run
    status, out, err = run("table", "projection", "--data", recruiting, "--view", "blinded", "--target", "150,200")
    assert status == 0, err
    again = run("table", "projection", "--data", recruiting, "--view", "blinded", "--target", "150,200")[1]
    assert out == again                                                  # seeded: byte-identical
    t = pd.read_csv(io.StringIO(out), parse_dates=["median_date", "pi80_lower", "pi80_upper", "pi95_lower",
                                                   "pi95_upper", "cut_date"])
    assert list(t.columns) == ["target", "median_date", "pi80_lower", "pi80_upper", "pi95_lower", "pi95_upper",
                               "p_by_planned_end", "cut_date", "randomised", "draws"]
    assert t["target"].tolist() == [150, 200] and (t["cut_date"] == pd.Timestamp(INTERIM)).all()
    assert (t["pi95_lower"] <= t["pi80_lower"]).all() and (t["pi80_lower"] <= t["median_date"]).all()
    assert (t["median_date"] <= t["pi80_upper"]).all() and (t["pi80_upper"] <= t["pi95_upper"]).all()
    assert (t["pi95_lower"] > pd.Timestamp(INTERIM)).all() and t["median_date"].is_monotonic_increasing
    assert t["p_by_planned_end"].between(0, 1).all() and (t["draws"] == 2000).all()
    # the 200 row does not depend on 150 being asked too; dates as YYYY-MM-DD in the CSV
    alone = run("table", "projection", "--data", recruiting, "--view", "blinded", "--target", "200")[1]
    assert alone.splitlines()[1] == out.splitlines()[2]
    assert ",2018-09-30," in out.splitlines()[1]
    # the default: the planned N; bad targets are refused by the parser
    default = pd.read_csv(io.StringIO(run("table", "projection", "--data", recruiting, "--view", "blinded")[1]))
    assert default["target"].tolist() == [304]
    assert run("table", "projection", "--data", recruiting, "--view", "blinded", "--target", "0,x")[0] == 2


def test_display_footnote_states_model_lag_draws_and_coverage(recruiting):
    from tests.test_cli import run
    status, out, err = run("table", "projection", "--data", recruiting, "--view", "blinded", "--target", "150,5000",
                           "--display", "--format", "md")
    assert status == 0, err
    assert "Poisson-gamma" in out and "no randomisation in a site's first" in out and "2000 simulated futures" in out
    assert "beyond the simulation horizon" in out
    from analysis.outputs.projections import BACKTEST, backtest_text
    assert backtest_text() in out
    if BACKTEST:
        assert f"the 80 % interval in {BACKTEST['cover80']:.0f} %" in out
    # a target 5000 is beyond the 10-year horizon: missing, shown as a dash
    row = [line for line in out.splitlines() if line.startswith("| 5000")][0]
    assert "—" in row and "NaT" not in row


def test_target_reached_and_recruitment_ended_say_why(recruiting):
    from analysis.outputs import TableUnavailable, build_table
    from data_access.views import open_view
    with open_view(recruiting / "clinical", "steering") as view:
        n = len(view.table("adsl"))
        with pytest.raises(TableUnavailable, match=f"target of 50 was reached \\({n} randomised\\)"):
            build_table("projection", view, targets=[50])
        both = build_table("projection", view, targets=[50, 250])   # one reached, one not: both rows
        assert both["target"].tolist() == [50, 250]
        assert both.loc[0, "median_date"] <= pd.Timestamp(INTERIM) and both.loc[0, "p_by_planned_end"] == 1.0


def test_open_report_sentence(recruiting):
    from analysis.outputs.projections import BACKTEST, format_projection_sentence, recruitment_projection
    from data_access.views import open_view
    with open_view(recruiting / "clinical", "steering") as view:
        p = recruitment_projection(view)
        text = format_projection_sentence(p)
    r = p.row()
    assert text.startswith(f"{p.n_randomised} of 304 participants were randomised by the cut-off (2018-09-30). "
                           f"304 expected by {r['median_date']:%Y-%m} (80 % PI {r['pi80_lower']:%Y-%m} to "
                           f"{r['pi80_upper']:%Y-%m}); P(by planned end) = {100 * r['p_by_planned_end']:.0f} %.")
    if BACKTEST:
        assert f"held the true date in {BACKTEST['cover80']:.0f} %" in text


def test_cumulative_figure_draws_the_projection(recruiting):
    from analysis.outputs import build_figure
    from data_access.views import open_view
    with open_view(recruiting / "clinical", "steering") as view:
        fig = build_figure("cumulative", view)
    names = [t.name for t in fig.data]
    assert {"Actual", "Projected (median)", "80% prediction", "95% prediction"} <= set(names)
    assert any("expected by" in (a.text or "") for a in fig.layout.annotations)


# --------------------------------------------------------------------------- a small back-test
def _backtest_module():
    path = Path(__file__).resolve().parents[1] / "scripts" / "backtest_recruitment.py"
    spec = importlib.util.spec_from_file_location("backtest_recruitment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_backtest_covers_more_than_half():
    """Three simulated trials cut twice (the full back-test is scripts/backtest_recruitment.py):
    the intervals hold the truth at least not absurdly rarely, and P(planned 304 by the end) is low."""
    bt = _backtest_module()
    res = bt.backtest(range(2000, 2003), cuts=("2018-07-31", "2018-11-30"), draws=300)
    forecasts = res[res["kind"] == "target"]
    assert len(forecasts) == 18
    assert forecasts["cov80"].mean() >= 0.5 and forecasts["cov95"].mean() >= 0.7
    assert (forecasts["cov50"] <= forecasts["cov80"]).all() and (forecasts["cov80"] <= forecasts["cov95"]).all()
    assert forecasts["error_days"].abs().median() < 120
    assert res.loc[res["kind"] == "planned", "p_by_planned_end"].mean() < 0.5
    table = bt.summarize_backtest(res)
    assert table["forecasts"].tolist()[-1] == "all" and table["n"].iloc[-1] == 18
