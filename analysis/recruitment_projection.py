"""Recruitment projection: when recruitment reaches its target(s), by the Poisson-gamma model.

Model (Anisimov & Fedorov 2007, with the two changes a back-test showed were needed):

- each site recruits as a Poisson process of rate ``lambda_i`` from the day it can first
  randomise, ``start_i = activation_i + lag`` (its start-up and the run-in every participant
  passes before randomisation; a site that randomised earlier starts at its first
  randomisation). The lag is estimated from the data (:func:`estimate_site_lag`: the
  Kaplan-Meier median over the activated sites of the days from activation to the first
  randomisation, sites that have not randomised yet censored at the cut);
- ``lambda_i ~ Gamma(alpha, rate beta)``; counts ``n_i`` over exposures ``T_i = cut - start_i``
  are then negative binomial (:func:`compute_nb_loglik`); :func:`fit_gamma_rates` is the
  maximum-likelihood fit, :func:`compute_hyper_posterior` the posterior of
  ``(log alpha, log alpha/beta)`` on a grid (flat priors), from which every simulation draw takes
  its own ``(alpha, beta)``: the uncertainty of the fit reaches the interval;
- per draw, each site's future rate is drawn from its posterior ``Gamma(alpha + n_i, beta + T_i)``
  (a site that cannot randomise yet: the prior ``Gamma(alpha, beta)``, from its start), and the
  arrivals are exact given the rates (unit-rate arrivals mapped through the cumulative intensity).

:func:`sample_future_randomisations` returns the simulated arrivals (the recruitment still to
come, for the death forecast); :func:`fit_recruitment_projection` summarises them per target
(median date, 50/80/95 % prediction intervals, P(reached by the planned end)) with a monthly fan.
The summaries of recruitment so far are in ``analysis.recruitment``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from analysis.recruitment import month_range, sites_frame

__all__ = ["DAYS_PER_MONTH", "DEFAULT_LAG_DAYS", "DEFAULT_DRAWS", "HORIZON_DAYS", "SiteLag", "RecruitmentModel",
           "RecruitmentProjection", "compute_nb_loglik", "fit_gamma_rates", "compute_hyper_posterior",
           "estimate_site_lag", "fit_recruitment_model", "sample_future_randomisations",
           "fit_recruitment_projection"]

DAYS_PER_MONTH = 365.25 / 12
DEFAULT_LAG_DAYS = 180.0        # used while fewer than MIN_LAG_SITES sites have randomised (assumption:
MIN_LAG_SITES = 3               # a 12-18-week run-in plus about 2.5 months of site start-up)
DEFAULT_DRAWS = 2000
HORIZON_DAYS = 3652             # 10 years: a date later than the cut + this is "beyond the horizon"
_BLOCK = 64                     # unit-rate arrivals are drawn in blocks of this size (see _unit_arrivals)
_LOG_ALPHA = np.linspace(-2.5, 7.0, 77)     # grid of the hyper-posterior (log alpha, step 0.125)
_N_LOG_MEAN = 161                           # points of the log-mean-rate grid


# --------------------------------------------------------------------------- the gamma fit
def compute_nb_loglik(alpha: float, beta: float, counts, exposures) -> float:
    """Log-likelihood of the Poisson-gamma (negative binomial) model for site counts.

    n_i | lambda_i ~ Poisson(lambda_i tau_i), lambda_i ~ Gamma(shape alpha, rate beta), so
    P(n_i) = Gamma(alpha+n_i) / (Gamma(alpha) n_i!) * (beta/(beta+tau_i))^alpha
    * (tau_i/(beta+tau_i))^n_i (Anisimov & Fedorov 2007). A site with no exposure and no count
    contributes 0.
    """
    return float(np.sum(_nb_terms(np.asarray(alpha, float), np.asarray(beta, float),
                                  np.asarray(counts, float), np.asarray(exposures, float))))


def _nb_terms(alpha, beta, n, t):
    """Per-site log-likelihood terms, broadcast over alpha and beta (sites on the last axis)."""
    log_t = np.log(np.where(t > 0, t, 1.0))
    return (special.gammaln(alpha + n) - special.gammaln(alpha) - special.gammaln(n + 1)
            + alpha * np.log(beta) - (alpha + n) * np.log(beta + t) + n * log_t)


def fit_gamma_rates(counts, exposures) -> tuple[float, float]:
    """Maximum-likelihood (alpha, beta) of the Poisson-gamma site-rate model.

    Optimised over (log alpha, log mean rate) with L-BFGS-B; log alpha is bounded to
    [-8, 12], so counts with no over-dispersion end at a very large alpha (almost Poisson with
    a common rate sum(n)/sum(tau)).
    """
    n, t = np.asarray(counts, float), np.asarray(exposures, float)
    if len(n) == 0 or t.sum() <= 0:
        raise ValueError("need at least one site with positive exposure")
    pooled = max(n.sum(), 0.5) / t.sum()

    def nll(x):
        a, m = np.exp(x[0]), np.exp(x[1])
        return -compute_nb_loglik(a, a / m, n, t)

    rates = n[t > 0] / t[t > 0]
    var = rates.var() if len(rates) > 1 else 0.0
    a0 = pooled ** 2 / var if var > 0 else 10.0
    x0 = [np.clip(np.log(a0), -7, 11), np.log(pooled)]
    res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=[(-8, 12), (np.log(pooled) - 10, np.log(pooled) + 10)])
    a, m = float(np.exp(res.x[0])), float(np.exp(res.x[1]))
    return a, a / m


def compute_hyper_posterior(counts, exposures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior of (log alpha, log mean rate m = alpha/beta) on a grid, flat priors on both.

    Returns ``(log_alpha, log_mean, weights)``: the grid axes and the normalised posterior
    weights, shape (len(log_alpha), len(log_mean)). log alpha spans [-2.5, 7] (alpha 0.08 to
    1100: from very heterogeneous sites to a common rate); log m spans the pooled rate
    ``sum(n)/sum(tau)`` +/- 6 of its Poisson standard errors (at least +/- 1.5), wide enough
    for the heterogeneous case too.
    """
    n, t = np.asarray(counts, float), np.asarray(exposures, float)
    if t.sum() <= 0:
        raise ValueError("need at least one site with positive exposure")
    pooled = max(n.sum(), 0.5) / t.sum()
    half = max(1.5, 6.0 / np.sqrt(max(n.sum(), 1.0)))
    log_mean = np.linspace(np.log(pooled) - half, np.log(pooled) + half, _N_LOG_MEAN)
    a = np.exp(_LOG_ALPHA)[:, None, None]
    b = a / np.exp(log_mean)[None, :, None]
    ll = _nb_terms(a, b, n[None, None, :], t[None, None, :]).sum(axis=2)
    w = np.exp(ll - ll.max())
    return _LOG_ALPHA.copy(), log_mean, w / w.sum()


# --------------------------------------------------------------------------- the lag
@dataclass(frozen=True)
class SiteLag:
    """Days from a site's activation to when it can randomise (start-up plus run-in).

    ``days``: the lag used; ``method``: "Kaplan-Meier median", "largest delay observed" (more
    than half the sites still waiting: the median is at least this) or "default" (fewer than
    ``MIN_LAG_SITES`` sites randomised); ``n_randomising``: sites that have randomised, of
    ``n_activated`` activated by the cut; ``delays``: each activated site's days from activation
    to first randomisation (NaN: not yet)."""
    days: float
    method: str
    n_randomising: int
    n_activated: int
    delays: tuple = field(default=(), repr=False)

    def describe(self) -> str:
        if self.method == "default":
            return (f"lag {self.days:.0f} days (default: only {self.n_randomising} of {self.n_activated} "
                    "activated sites had randomised)")
        return (f"lag {self.days:.0f} days ({self.method} of activation to first randomisation over "
                f"{self.n_activated} activated sites, {self.n_randomising} randomising)")


def estimate_site_lag(activated, first_randomised, cut_date, default_days: float = DEFAULT_LAG_DAYS,
                      min_sites: int = MIN_LAG_SITES) -> SiteLag:
    """The lag from activation to first randomisation: the Kaplan-Meier median over the sites
    activated by the cut (a site not yet randomising is censored at cut - activation).

    Parameters
    ----------
    activated, first_randomised : per site, activation date and first randomisation date (NaT:
        none by the cut); sites activated after the cut are ignored.
    cut_date : the data cut-off.
    default_days, min_sites : the lag used while fewer than ``min_sites`` sites have randomised.
    """
    cut = pd.Timestamp(cut_date).normalize()
    act = pd.to_datetime(pd.Series(list(activated)))
    first = pd.to_datetime(pd.Series(list(first_randomised)))
    on = act.notna() & (act <= cut)
    act, first = act[on], first[on]
    event = first.notna() & (first <= cut)
    delay = np.where(event, (first - act).dt.days, (cut - act).dt.days).astype(float)
    delays = tuple(np.where(event, delay, np.nan).tolist())
    n_event, n_on = int(event.sum()), int(on.sum())
    if n_event < min_sites:
        return SiteLag(float(default_days), "default", n_event, n_on, delays)
    ev = event.to_numpy()
    at_risk, surv, median = len(delay), 1.0, None
    for d in np.unique(delay):
        here = delay == d
        k = int((here & ev).sum())
        if k:
            surv *= 1.0 - k / at_risk
            if surv <= 0.5:
                median = float(d)
                break
        at_risk -= int(here.sum())
    if median is None:
        return SiteLag(float(delay[ev].max()), "largest delay observed", n_event, n_on, delays)
    return SiteLag(median, "Kaplan-Meier median", n_event, n_on, delays)


# --------------------------------------------------------------------------- the fitted model
@dataclass
class RecruitmentModel:
    """The Poisson-gamma model fitted at a cut (:func:`fit_recruitment_model`).

    ``sites_``: one row per site in the list with an activation date (site_id, activated,
    start = when it can randomise, n, exposure_days, rate_per_month = posterior mean at the
    ML fit x 30.44); ``lag_``: :class:`SiteLag`; ``alpha_``, ``beta_``: ML fit (per day);
    ``hyper_``: the grid posterior (:func:`compute_hyper_posterior`); ``n_randomised``: everyone
    randomised by the cut, at listed sites or not."""
    cut_date: dt.date
    n_randomised: int
    lag_: SiteLag
    alpha_: float
    beta_: float
    sites_: pd.DataFrame = field(repr=False)
    hyper_: tuple = field(repr=False)
    randomised_dates_: np.ndarray = field(repr=False)

    @property
    def mean_rate_per_month(self) -> float:
        return float(self.sites_["rate_per_month"].sum())

    def describe(self) -> str:
        """The fitted lag and rates in words, for a footnote."""
        return (f"{self.lag_.describe()}; {self.mean_rate_per_month:.1f} randomised per month expected "
                f"over the {len(self.sites_)} sites once all recruit")


def fit_recruitment_model(adsl: pd.DataFrame, sites, cut_date, lag_days: float | None = None,
                          site_col: str = "SITEID", date_col: str = "RANDDT") -> RecruitmentModel:
    """Fit the Poisson-gamma model with site lag at ``cut_date`` (see the module doc).

    Parameters
    ----------
    adsl : one row per randomised subject with ``site_col`` and ``date_col``; rows after the cut
        are ignored. Randomised subjects at sites missing from ``sites`` count towards the total
        only.
    sites : site list with ``id`` and ``activated`` (``Study.sites``, dicts or a DataFrame);
        sites without an activation date are left out.
    lag_days : the lag to use instead of :func:`estimate_site_lag`'s estimate.
    """
    cut = pd.Timestamp(cut_date).normalize()
    sf = sites_frame(sites)
    d = pd.to_datetime(adsl[date_col])
    rand = adsl.loc[d <= cut]
    dates = np.sort(pd.to_datetime(rand[date_col]).to_numpy())
    site_of = rand[site_col].astype(str)
    counts = site_of.groupby(site_of).size()
    first = pd.to_datetime(rand[date_col]).groupby(site_of).min()
    sf = sf[sf["activated"].notna()].copy()
    if sf.empty:
        raise ValueError("no site in the list has an activation date")
    sf["n"] = sf["site_id"].astype(str).map(counts).fillna(0).astype(int)
    sf["first"] = sf["site_id"].astype(str).map(first)
    lag = estimate_site_lag(sf["activated"], sf["first"], cut)
    if lag_days is not None:
        lag = SiteLag(float(lag_days), "given", lag.n_randomising, lag.n_activated, lag.delays)
    # a site that randomised is counted from its first randomisation on (the arrivals after the
    # first are a Poisson process whatever the start was: counting from activation + lag would
    # give the early, fast sites one arrival in almost no exposure); one that has not, from
    # activation + lag
    randomising = sf["first"].notna()
    start = (sf["activated"] + pd.to_timedelta(lag.days, unit="D")).dt.normalize()
    sf["start"] = start.where(~randomising, sf["first"])
    sf["n_after_start"] = np.where(randomising, sf["n"] - 1, 0)
    sf["exposure_days"] = np.where(sf["start"] <= cut, (cut - sf["start"]).dt.days, 0).astype(float)
    started = (sf["exposure_days"] > 0) | randomising
    if not (sf["exposure_days"] > 0).any():
        raise ValueError(f"no site can randomise yet at {cut.date()} ({lag.describe()})")
    n, t = sf["n_after_start"].to_numpy(float), sf["exposure_days"].to_numpy(float)
    alpha, beta = fit_gamma_rates(n[started], t[started])
    hyper = compute_hyper_posterior(n[started], t[started])
    sf["rate_per_month"] = (alpha + n) / (beta + t) * DAYS_PER_MONTH
    keep = ["site_id", "activated", "start", "n", "n_after_start", "exposure_days", "rate_per_month"]
    return RecruitmentModel(cut.date(), len(rand), lag, alpha, beta, sf[keep].reset_index(drop=True), hyper,
                            dates)


# --------------------------------------------------------------------------- simulation
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


def _draw_site_rates(model: RecruitmentModel, draws: int, seed: int) -> np.ndarray:
    """(draws, n_sites) rates per day: (alpha, beta) from the grid posterior (jittered within its
    cell), then each site's rate from its posterior Gamma(alpha + n_i, beta + T_i)."""
    rng = _rng(seed, 0)
    log_a, log_m, w = model.hyper_
    cell = rng.choice(w.size, size=draws, p=w.ravel())
    ia, im = np.unravel_index(cell, w.shape)
    da, dm = log_a[1] - log_a[0], log_m[1] - log_m[0]
    a = np.exp(log_a[ia] + (rng.random(draws) - 0.5) * da)
    m = np.exp(log_m[im] + (rng.random(draws) - 0.5) * dm)
    b = a / m
    n = model.sites_["n_after_start"].to_numpy(float)
    t = model.sites_["exposure_days"].to_numpy(float)
    return rng.gamma(a[:, None] + n[None, :], 1.0 / (b[:, None] + t[None, :]))


def _unit_arrivals(seed: int, draws: int, n: int) -> np.ndarray:
    """(draws, n) arrival times of a unit-rate Poisson process (cumulative sums of unit
    exponentials), drawn in blocks of ``_BLOCK`` arrivals from their own streams, so the k-th
    arrival of a draw is the same whatever ``n`` is asked (``--target 304`` and
    ``--target 150,304`` give the same 304 row)."""
    out = np.empty((draws, n))
    total = np.zeros(draws)
    for b in range(0, n, _BLOCK):
        k = min(_BLOCK, n - b)
        e = _rng(seed, 1, b // _BLOCK).exponential(1.0, size=(draws, _BLOCK))[:, :k]
        out[:, b:b + k] = total[:, None] + np.cumsum(e, axis=1)
        total = out[:, b + k - 1]
    return out


def _intensity_segments(starts: np.ndarray, rates: np.ndarray):
    """Cumulative intensity of the superposed sites, piecewise linear in days after the cut.

    ``starts`` (n_sites,) days after the cut each site recruits from (0 for sites already
    recruiting); returns sorted starts, the slope after each and the intensity at each start."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    slope = np.cumsum(rates[:, order], axis=1)
    at = np.concatenate([np.zeros((len(rates), 1)), np.cumsum(slope[:, :-1] * np.diff(s), axis=1)], axis=1)
    return s, slope, at


def _invert(u: np.ndarray, s: np.ndarray, slope: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Days t after the cut with cumulative intensity Lambda(t) = u, per draw (u: (draws, k))."""
    t = np.empty_like(u)
    for i in range(len(u)):
        j = np.searchsorted(at[i], u[i], side="right") - 1
        t[i] = s[j] + (u[i] - at[i, j]) / slope[i, j]
    return t


def _cumulative_intensity(days: np.ndarray, s: np.ndarray, slope: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Lambda(t) per draw for each t in ``days`` -> (draws, len(days))."""
    j = np.searchsorted(s, days, side="right") - 1               # s is common to every draw
    j = np.clip(j, 0, len(s) - 1)
    return np.where(days[None, :] >= s[0], at[:, j] + slope[:, j] * (days - s[j])[None, :], 0.0)


def _simulate(model: RecruitmentModel, n_needed: int, draws: int, seed: int):
    rates = _draw_site_rates(model, draws, seed)
    cut = pd.Timestamp(model.cut_date)
    starts = np.maximum((model.sites_["start"] - cut).dt.days.to_numpy(float), 0.0)
    s, slope, at = _intensity_segments(starts, rates)
    u = _unit_arrivals(seed, draws, n_needed)
    return _invert(u, s, slope, at), (s, slope, at)


def sample_future_randomisations(adsl: pd.DataFrame, sites, cut_date, n_needed: int, draws: int = DEFAULT_DRAWS,
                                 seed: int = 1, lag_days: float | None = None, site_col: str = "SITEID",
                                 date_col: str = "RANDDT", model: RecruitmentModel | None = None) -> np.ndarray:
    """Simulated times of the next ``n_needed`` randomisations after ``cut_date``.

    The contract (the death forecast relies on it):

    - returns a float array of shape ``(draws, n_needed)``; row ``d`` is one simulated future of
      the trial's recruitment, sorted ascending: ``out[d, k]`` is the time of the (k+1)-th
      randomisation after the cut, in days after the cut date (> 0). Its calendar date is
      ``cut_date + ceil(out[d, k])`` days; as a survival time origin use the float as it is.
    - every value is finite but may be very large (a site rate drawn near 0): compare with your
      own horizon; :data:`HORIZON_DAYS` is the one the projection table uses.
    - the model is the module's Poisson-gamma model with site lag (see the module doc), fitted on
      ``adsl`` and ``sites`` at ``cut_date`` (or the given ``model`` from
      :func:`fit_recruitment_model`); the uncertainty of the fit is in the spread between rows.
    - seeded: the same arguments give identical arrays; the first ``k`` columns do not depend on
      ``n_needed`` (asking for more randomisations extends each row, it does not redraw it), and
      are those :func:`fit_recruitment_projection` summarises with the same seed and draws.
    - ``n_needed <= 0`` gives an array with 0 columns. Recruitment is not stopped at the planned
      end: the caller decides what happens after it.

    Parameters
    ----------
    adsl : randomised subjects (``site_col``, ``date_col``); rows after the cut are ignored.
    sites : site list with ``id`` and ``activated`` (``Study.sites``, dicts or a DataFrame);
        sites activated after the cut enter when they can (activation + lag).
    cut_date : data cut-off.
    n_needed : number of future randomisations to simulate (e.g. target - randomised).
    draws, seed : number of simulated futures and the seed (``numpy.random.default_rng``).
    lag_days : override the estimated lag from activation to first randomisation.
    """
    model = model or fit_recruitment_model(adsl, sites, cut_date, lag_days=lag_days, site_col=site_col,
                                           date_col=date_col)
    n_needed = max(int(n_needed), 0)
    if n_needed == 0:
        return np.empty((int(draws), 0))
    times, _ = _simulate(model, n_needed, int(draws), int(seed))
    return times


# --------------------------------------------------------------------------- the projection
QUANTILES = {"median": 0.5, "pi50_lower": 0.25, "pi50_upper": 0.75, "pi80_lower": 0.1, "pi80_upper": 0.9,
             "pi95_lower": 0.025, "pi95_upper": 0.975}


@dataclass
class RecruitmentProjection:
    """Result of :func:`fit_recruitment_projection`.

    ``table_``: one row per target (target, median_date, pi50/pi80/pi95 lower and upper,
    p_by_planned_end; dates are Timestamps, NaT beyond the horizon; a target reached by the cut
    has its actual date in every date column and p 1 or 0); ``fan_``: month, median, lower80,
    upper80, lower95, upper95 of the cumulative number randomised at each month end, from the
    cut's month to the month the largest target is reached in 97.5 % of draws (capped at that
    target and at the horizon); ``model_``: the fitted :class:`RecruitmentModel`."""
    cut_date: dt.date
    targets: tuple
    n_randomised: int
    planned_end: dt.date | None
    draws: int
    seed: int
    horizon_days: int
    table_: pd.DataFrame
    fan_: pd.DataFrame
    model_: RecruitmentModel = field(repr=False)

    @property
    def target(self) -> int:
        """The first target (the planned sample size when none was given)."""
        return int(self.targets[0])

    @property
    def sites_(self) -> pd.DataFrame:
        return self.model_.sites_

    @property
    def lag_(self) -> SiteLag:
        return self.model_.lag_

    def row(self, target: int | None = None) -> pd.Series:
        """The table row of ``target`` (default: the first)."""
        t = self.target if target is None else int(target)
        return self.table_[self.table_["target"] == t].iloc[0]

    @property
    def horizon_date(self) -> dt.date:
        return self.cut_date + dt.timedelta(days=self.horizon_days)


def _day_to_ts(cut: pd.Timestamp, days: float, horizon: float):
    return cut + pd.Timedelta(days=int(np.ceil(days))) if days <= horizon else pd.NaT


def fit_recruitment_projection(adsl: pd.DataFrame, sites, cut_date, targets, draws: int = DEFAULT_DRAWS,
                               seed: int = 1, planned_end=None, lag_days: float | None = None,
                               horizon_days: int = HORIZON_DAYS, site_col: str = "SITEID",
                               date_col: str = "RANDDT") -> RecruitmentProjection:
    """Project when recruitment reaches each of ``targets`` (see the module doc for the model).

    Parameters
    ----------
    adsl, sites, cut_date, lag_days, site_col, date_col : as :func:`fit_recruitment_model`.
    targets : an int or a sequence of ints (total numbers randomised); one row each, in the
        order given (duplicates dropped).
    draws, seed : simulated futures and seed; the same arguments give identical results.
    planned_end : the planned end of recruitment (``[study] recruitment_end``): the table's
        ``p_by_planned_end`` is the share of draws reaching the target on or before it (NaN
        without one).
    horizon_days : dates later than the cut + this many days are NaT (missing).

    Returns
    -------
    RecruitmentProjection
    """
    targets = tuple(dict.fromkeys(int(t) for t in np.atleast_1d(targets)))
    if not targets or min(targets) < 1:
        raise ValueError(f"targets must be positive numbers, got {targets}")
    model = fit_recruitment_model(adsl, sites, cut_date, lag_days=lag_days, site_col=site_col, date_col=date_col)
    cut = pd.Timestamp(model.cut_date)
    end = pd.Timestamp(planned_end).normalize() if planned_end is not None else None
    n0, draws = model.n_randomised, int(draws)
    need = max(max(targets) - n0, 0)
    if need:
        times, (s, slope, at) = _simulate(model, need, draws, int(seed))
    rows = []
    for target in targets:
        row = {"target": target}
        if target <= n0:                          # reached by the cut: its actual date
            when = pd.Timestamp(model.randomised_dates_[target - 1])
            row.update({k: when for k in QUANTILES})
            row["p_by_planned_end"] = np.nan if end is None else float(when <= end)
        else:
            finish = times[:, target - n0 - 1]
            q = np.quantile(finish, list(QUANTILES.values()))
            row.update({k: _day_to_ts(cut, x, horizon_days) for k, x in zip(QUANTILES, q)})
            row["p_by_planned_end"] = (np.nan if end is None else
                                       float(np.mean(np.ceil(finish) <= (end - cut).days)))
        rows.append(row)
    table = pd.DataFrame(rows).rename(columns={"median": "median_date"})
    for c in table.columns:
        if c not in ("target", "p_by_planned_end"):
            table[c] = pd.to_datetime(table[c])
    cols = ["month", "median", "lower80", "upper80", "lower95", "upper95"]
    fan = pd.DataFrame(columns=cols)
    if need:
        last = min(float(np.quantile(times[:, -1], 0.975)), float(horizon_days))
        months = month_range(cut.strftime("%Y-%m"), (cut + pd.Timedelta(days=last)).strftime("%Y-%m"))
        ends = np.array([(pd.Period(m, "M").end_time.normalize() - cut).days for m in months], float)
        cum = n0 + np.stack([(times <= e).sum(axis=1) for e in ends], axis=1)
        qs = np.quantile(cum, [0.5, 0.1, 0.9, 0.025, 0.975], axis=0)
        fan = pd.DataFrame({"month": months, **{c: qs[i] for i, c in enumerate(cols[1:])}})
    return RecruitmentProjection(model.cut_date, targets, n0, end.date() if end is not None else None, draws,
                                 int(seed), int(horizon_days), table, fan, model)
