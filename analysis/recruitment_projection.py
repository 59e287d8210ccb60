"""Recruitment projection: when recruitment reaches its target(s), by the Poisson-gamma model.

Model (Anisimov & Fedorov 2007, with a site start-up that the back-test showed was needed;
time-varying site rates as in Urbas, Sherlock & Metcalfe 2022):

- site i recruits as a Poisson process of intensity ``lambda_i * h(s)`` at ``s`` days after its
  activation: ``h(s) = 0`` during a lag ``L`` (start-up and the run-in every participant passes
  before randomisation), then ``h(s) = 1 - exp(-(s - L) / tau)``, a ramp-up with time constant
  ``tau`` (``tau = 0``: full rate at once). A site's exposure is ``H_i``, the integral of ``h``
  from activation to the cut;
- ``lambda_i ~ Gamma(alpha, rate beta)``. Integrating ``lambda_i`` out gives the negative
  binomial likelihood of the counts (:func:`compute_nb_loglik`, :func:`fit_gamma_rates`) times
  ``prod h(s_ij)`` over the randomisation times: the times are what estimate ``L`` and ``tau``;
- ``(L, tau, log alpha, log alpha/beta)`` get a grid posterior (flat priors over the grids:
  :func:`fit_recruitment_model`); every simulated future draws its own ``(L, tau, alpha,
  beta)`` from it, so the uncertainty of the fit reaches the interval, then each site's rate
  from its posterior ``Gamma(alpha + n_i, beta + H_i)`` (a site not yet recruiting: the prior,
  from activation + L), and the arrivals exactly given the rates (unit-rate arrivals mapped
  through the cumulative intensity).

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

__all__ = ["DAYS_PER_MONTH", "DEFAULT_DRAWS", "HORIZON_DAYS", "LAG_GRID", "RAMP_GRID", "SiteStartUp",
           "RecruitmentModel", "RecruitmentProjection", "compute_nb_loglik", "fit_gamma_rates",
           "compute_hyper_posterior", "compute_ramp_exposure", "fit_recruitment_model",
           "sample_future_randomisations", "fit_recruitment_projection"]

DAYS_PER_MONTH = 365.25 / 12
DEFAULT_DRAWS = 2000
HORIZON_DAYS = 3652             # 10 years: a date later than the cut + this is "beyond the horizon"
LAG_GRID = np.arange(0.0, 365.0, 7.0)                      # L: days of no randomisation after activation
RAMP_GRID = np.array([0.0, 15, 30, 45, 60, 90, 120, 150, 180, 240, 300])   # tau: ramp-up time constant
_LOG_ALPHA = np.linspace(-2.5, 7.0, 39)                    # alpha 0.08 to 1100, step 0.25 in log
_LOG_MEAN_OFFSET = np.linspace(-2.0, 2.0, 101)             # log mean rate around the pooled rate
_BLOCK = 64                     # unit-rate arrivals are drawn in blocks of this many arrivals
_CHUNK = 256                    # and this many draws (see _unit_arrivals)
_SATURATED = 6.0                # after L + 6 tau a site's ramp is taken as complete (h > 0.9975)


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


def _hyper_grid(n: np.ndarray, t: np.ndarray, gl: np.ndarray):
    """Log-likelihood over (log alpha, log mean) for counts n and exposures t (the n! and the
    arrival-time terms left out); ``gl``: gammaln(alpha + n) - gammaln(alpha), (alphas, sites).
    Returns (log_mean axis, loglik (alphas, means))."""
    pooled = max(n.sum(), 0.5) / t.sum()
    log_mean = np.log(pooled) + _LOG_MEAN_OFFSET
    a = np.exp(_LOG_ALPHA)[:, None, None]
    log_b = np.log(a) - log_mean[None, :, None]
    b = np.exp(log_b)
    ll = (gl[:, None, :] + a * log_b - (a + n) * np.log(b + t)).sum(axis=2)
    return log_mean, ll


def compute_hyper_posterior(counts, exposures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior of (log alpha, log mean rate m = alpha/beta) on a grid, flat priors on both.

    Returns ``(log_alpha, log_mean, weights)``: the grid axes and the normalised posterior
    weights, shape (len(log_alpha), len(log_mean)). log alpha spans [-2.5, 7] (alpha 0.08 to
    1100: from very heterogeneous sites to a common rate); log m spans the pooled rate
    ``sum(n)/sum(tau)`` times exp(+/- 2).
    """
    n, t = np.asarray(counts, float), np.asarray(exposures, float)
    if t.sum() <= 0:
        raise ValueError("need at least one site with positive exposure")
    gl = special.gammaln(np.exp(_LOG_ALPHA)[:, None] + n) - special.gammaln(np.exp(_LOG_ALPHA))[:, None]
    log_mean, ll = _hyper_grid(n, t, gl)
    w = np.exp(ll - ll.max())
    return _LOG_ALPHA.copy(), log_mean, w / w.sum()


# --------------------------------------------------------------------------- site start-up
def compute_ramp_exposure(days, lag: float, ramp: float) -> np.ndarray:
    """Exposure at full rate after ``days`` from activation: the integral of h(s) = 0 for s < lag,
    1 - exp(-(s - lag)/ramp) after (``ramp`` 0: a step), i.e. x - ramp (1 - exp(-x/ramp)) with
    x = max(days - lag, 0)."""
    x = np.maximum(np.asarray(days, float) - lag, 0.0)
    if ramp <= 0:
        return x
    return x + ramp * np.expm1(-x / ramp)


def _ramp_rate(days, lag: float, ramp: float) -> np.ndarray:
    """h(days): the share of its full rate a site recruits at, ``days`` after activation."""
    x = np.asarray(days, float) - lag
    if ramp <= 0:
        return (x >= 0).astype(float)
    return np.where(x > 0, -np.expm1(-np.maximum(x, 0) / ramp), 0.0)


@dataclass(frozen=True)
class SiteStartUp:
    """The fitted site start-up: ``lag_days`` (no randomisation in a site's first L days) and
    ``ramp_days`` (then its rate ramps up with this time constant), posterior medians, with
    their 80 % credible ranges; ``n_randomising`` of ``n_activated`` sites had randomised."""
    lag_days: float
    ramp_days: float
    lag_range: tuple
    ramp_range: tuple
    n_randomising: int
    n_activated: int
    lag_given: bool = False
    ramp_given: bool = False

    def describe(self) -> str:
        rng = lambda r: f"{r[0]:.0f}-{r[1]:.0f}"
        lag = "given" if self.lag_given else f"80 % credible {rng(self.lag_range)}"
        ramp = "given" if self.ramp_given else rng(self.ramp_range)
        text = (f"no randomisation in a site's first {self.lag_days:.0f} days after activation ({lag}), then its "
                f"rate ramps up with a time constant of {self.ramp_days:.0f} days ({ramp})")
        if not (self.lag_given and self.ramp_given):
            text += (f"; estimated from the randomisation dates of the {self.n_randomising} of "
                     f"{self.n_activated} activated sites that had randomised")
        return text


# --------------------------------------------------------------------------- the fitted model
@dataclass
class RecruitmentModel:
    """The Poisson-gamma model with site start-up fitted at a cut (:func:`fit_recruitment_model`).

    ``sites_``: one row per site in the list with an activation date (site_id, activated,
    start = activation + lag, n, exposure_days = exposure at full rate, rate_per_month =
    posterior mean full rate x 30.44, at the posterior mode); ``startup_``: :class:`SiteStartUp`;
    ``alpha_``, ``beta_``: the posterior mode (per day); ``n_randomised``: everyone randomised
    by the cut, at listed sites or not. ``configs_``, ``weights_``: the grid posterior."""
    cut_date: dt.date
    n_randomised: int
    startup_: SiteStartUp
    alpha_: float
    beta_: float
    sites_: pd.DataFrame = field(repr=False)
    randomised_dates_: np.ndarray = field(repr=False)
    configs_: np.ndarray = field(repr=False)           # (C, 2): lag, ramp
    log_means_: np.ndarray = field(repr=False)         # (C, M): the log-mean axis of each config
    weights_: np.ndarray = field(repr=False)           # (C, A, M), sums to 1
    elapsed_: np.ndarray = field(repr=False)           # days from each site's activation to the cut's end
    counts_: np.ndarray = field(repr=False)            # randomised per site

    @property
    def mean_rate_per_month(self) -> float:
        return float(self.sites_["rate_per_month"].sum())

    def describe(self) -> str:
        """The fitted start-up and rates in words, for a footnote."""
        return (f"{self.startup_.describe()}; {self.mean_rate_per_month:.1f} randomised per month expected "
                f"over the {len(self.sites_)} sites at full rate")


def _weighted_quantiles(values, weights, qs):
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    return [float(values[order][min(np.searchsorted(cw, q * cw[-1]), len(cw) - 1)]) for q in qs]


def fit_recruitment_model(adsl: pd.DataFrame, sites, cut_date, lag_days: float | None = None,
                          ramp_days: float | None = None, site_col: str = "SITEID",
                          date_col: str = "RANDDT") -> RecruitmentModel:
    """Fit the Poisson-gamma model with site start-up at ``cut_date`` (see the module doc).

    Parameters
    ----------
    adsl : one row per randomised subject with ``site_col`` and ``date_col``; rows after the cut
        are ignored. Randomised subjects at sites missing from ``sites`` count towards the total
        only.
    sites : site list with ``id`` and ``activated`` (``Study.sites``, dicts or a DataFrame);
        sites without an activation date are left out.
    lag_days, ramp_days : fix the lag L and the ramp-up time constant tau instead of estimating
        them (both or either).

    Raises ``ValueError`` when no listed site has an activation date or none has randomised.
    """
    cut = pd.Timestamp(cut_date).normalize()
    sf = sites_frame(sites)
    d = pd.to_datetime(adsl[date_col])
    rand = adsl.loc[d <= cut]
    dates = np.sort(pd.to_datetime(rand[date_col]).to_numpy())
    sf = sf[sf["activated"].notna()].reset_index(drop=True)
    if sf.empty:
        raise ValueError("no site in the list has an activation date")
    ids = sf["site_id"].astype(str)
    site_of = rand[site_col].astype(str)
    known = site_of.isin(set(ids))
    idx = pd.Index(ids).get_indexer(site_of[known])
    act = sf["activated"].dt.normalize()
    # arrival times: mid-day of the randomisation day, in days after activation
    s = ((pd.to_datetime(rand.loc[known, date_col]).dt.normalize().to_numpy() - act.to_numpy()[idx])
         / np.timedelta64(1, "D")) + 0.5
    n = np.bincount(idx, minlength=len(sf)).astype(float)
    if n.sum() == 0:
        raise ValueError("no listed site has randomised by the cut: the site rates cannot be estimated")
    elapsed = ((cut - act).dt.days + 1).to_numpy(float)          # to the end of the cut day
    lags = LAG_GRID if lag_days is None else np.array([float(lag_days)])
    ramps = RAMP_GRID if ramp_days is None else np.array([float(ramp_days)])
    first = s.min() if len(s) else np.inf
    gl = special.gammaln(np.exp(_LOG_ALPHA)[:, None] + n) - special.gammaln(np.exp(_LOG_ALPHA))[:, None]
    configs, log_means, lls = [], [], []
    for lag in lags:
        if lag >= first and len(lags) > 1:
            continue                                              # an arrival before the lag: impossible
        for ramp in ramps:
            h_sum = float(np.log(np.maximum(_ramp_rate(s, lag, ramp), 1e-300)).sum())
            expo = compute_ramp_exposure(elapsed, lag, ramp)
            if expo.sum() <= 0:
                continue
            log_mean, ll = _hyper_grid(n, expo, gl)
            configs.append((lag, ramp))
            log_means.append(log_mean)
            lls.append(ll + h_sum)
    if not configs:
        raise ValueError(f"no site can randomise yet at {cut.date()}")
    ll = np.stack(lls)
    w = np.exp(ll - ll.max())
    w /= w.sum()
    configs, log_means = np.array(configs), np.stack(log_means)
    c, ia, im = np.unravel_index(np.argmax(w), w.shape)
    alpha = float(np.exp(_LOG_ALPHA[ia]))
    beta = alpha / float(np.exp(log_means[c, im]))
    wc = w.sum(axis=(1, 2))
    lag_q = _weighted_quantiles(configs[:, 0], wc, (0.5, 0.1, 0.9))
    ramp_q = _weighted_quantiles(configs[:, 1], wc, (0.5, 0.1, 0.9))
    startup = SiteStartUp(lag_q[0], ramp_q[0], tuple(lag_q[1:]), tuple(ramp_q[1:]), int((n > 0).sum()),
                          int((elapsed > 0).sum()), lag_days is not None, ramp_days is not None)
    mode_lag, mode_ramp = configs[c]
    expo = compute_ramp_exposure(elapsed, mode_lag, mode_ramp)
    out = pd.DataFrame({"site_id": sf["site_id"], "activated": act,
                        "start": act + pd.to_timedelta(mode_lag, unit="D"), "n": n.astype(int),
                        "exposure_days": expo, "rate_per_month": (alpha + n) / (beta + expo) * DAYS_PER_MONTH})
    return RecruitmentModel(cut.date(), len(rand), startup, alpha, beta, out, dates, configs, log_means, w,
                            elapsed, n)


# --------------------------------------------------------------------------- simulation
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


def _draw_parameters(model: RecruitmentModel, draws: int, seed: int):
    """Per draw: its (lag, ramp) config index and each site's full rate per day, (draws, sites):
    (config, alpha, mean) from the grid posterior (alpha and mean jittered within their cell),
    then each site's rate from its posterior Gamma(alpha + n_i, beta + H_i)."""
    rng = _rng(seed, 0)
    w = model.weights_
    cell = rng.choice(w.size, size=draws, p=w.ravel())
    c, ia, im = np.unravel_index(cell, w.shape)
    da = _LOG_ALPHA[1] - _LOG_ALPHA[0]
    dm = _LOG_MEAN_OFFSET[1] - _LOG_MEAN_OFFSET[0]
    a = np.exp(_LOG_ALPHA[ia] + (rng.random(draws) - 0.5) * da)
    m = np.exp(model.log_means_[c, im] + (rng.random(draws) - 0.5) * dm)
    b = a / m
    expo = np.stack([compute_ramp_exposure(model.elapsed_, *cfg) for cfg in model.configs_])   # (C, sites)
    rates = rng.gamma(a[:, None] + model.counts_[None, :], 1.0 / (b[:, None] + expo[c]))
    return c, rates


def _unit_arrivals(seed: int, chunk: int, rows: int, n: int) -> np.ndarray:
    """(rows, n) arrival times of a unit-rate Poisson process (cumulative sums of unit
    exponentials) for the draws of chunk ``chunk`` (draws ``chunk * _CHUNK`` on), drawn in
    blocks of ``_BLOCK`` arrivals x ``_CHUNK`` draws from their own streams: the k-th arrival of
    draw d is the same whatever the number of arrivals or draws asked (``--target 304`` and
    ``--target 150,304`` give the same 304 row)."""
    out = np.empty((rows, n))
    total = np.zeros(rows)
    for b in range(0, n, _BLOCK):
        k = min(_BLOCK, n - b)
        e = _rng(seed, 1, b // _BLOCK, chunk).exponential(1.0, size=(_CHUNK, _BLOCK))[:rows, :k]
        out[:, b:b + k] = total[:, None] + np.cumsum(e, axis=1)
        total = out[:, b + k - 1]
    return out


def _arrival_days(elapsed: np.ndarray, lag: float, ramp: float, rates: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Days after the cut at which the cumulative intensity of the sites reaches ``u``, per draw.

    The intensity is tabulated daily until every site's ramp is complete (lag + 6 ramp after its
    activation), then extended linearly at the final rate. ``rates`` (draws, sites), ``u``
    (draws, k), ``elapsed``: days from each site's activation to the cut's end."""
    T = int(np.ceil(max(np.max(lag - elapsed), 0.0) + _SATURATED * ramp)) + 2
    t = np.arange(T + 1, dtype=float)
    grid = compute_ramp_exposure(elapsed[:, None] + t[None, :], lag, ramp) - compute_ramp_exposure(elapsed, lag, ramp)[:, None]
    lam = rates @ grid                                                   # (draws, T+1)
    slope = rates @ _ramp_rate(elapsed + T, lag, ramp)                   # intensity after T
    out = np.empty_like(u)
    for i in range(len(u)):
        j = np.searchsorted(lam[i], u[i], side="left")                   # lam[j-1] < u <= lam[j]
        inside = j <= T
        jj = np.clip(j, 1, T)
        lo, hi = lam[i, jj - 1], lam[i, jj]
        step = np.where(hi > lo, (u[i] - lo) / np.where(hi > lo, hi - lo, 1.0), 1.0)
        out[i] = np.where(inside, jj - 1 + step, T + (u[i] - lam[i, T]) / slope[i])
    return out


def _simulate_chunks(model: RecruitmentModel, n_needed: int, draws: int, seed: int):
    """Yield (draw slice, (rows, n_needed) arrival days after the cut) chunk by chunk (memory:
    ``_CHUNK`` draws at a time)."""
    config, rates = _draw_parameters(model, draws, seed)
    for chunk, start in enumerate(range(0, draws, _CHUNK)):
        rows = slice(start, min(start + _CHUNK, draws))
        u = _unit_arrivals(seed, chunk, rows.stop - rows.start, n_needed)
        times = np.empty_like(u)
        cfg = config[rows]
        for c in np.unique(cfg):
            sel = cfg == c
            times[sel] = _arrival_days(model.elapsed_, *model.configs_[c], rates[rows][sel], u[sel])
        yield rows, times


def _simulate(model: RecruitmentModel, n_needed: int, draws: int, seed: int) -> np.ndarray:
    times = np.empty((draws, n_needed))
    for rows, chunk in _simulate_chunks(model, n_needed, draws, seed):
        times[rows] = chunk
    return times


def sample_future_randomisations(adsl: pd.DataFrame, sites, cut_date, n_needed: int, draws: int = DEFAULT_DRAWS,
                                 seed: int = 1, lag_days: float | None = None, ramp_days: float | None = None,
                                 site_col: str = "SITEID", date_col: str = "RANDDT",
                                 model: RecruitmentModel | None = None) -> np.ndarray:
    """Simulated times of the next ``n_needed`` randomisations after ``cut_date``.

    The contract (the death forecast relies on it):

    - returns a float array of shape ``(draws, n_needed)``; row ``d`` is one simulated future of
      the trial's recruitment, sorted ascending: ``out[d, k]`` is the time of the (k+1)-th
      randomisation after the cut, in days after the end of the cut date (> 0). Its calendar
      date is ``cut_date + ceil(out[d, k])`` days; as a survival time origin use the float as it
      is.
    - every value is finite but may be very large (a site rate drawn near 0): compare with your
      own horizon; :data:`HORIZON_DAYS` is the one the projection table uses.
    - the model is the module's Poisson-gamma model with site start-up (see the module doc),
      fitted on ``adsl`` and ``sites`` at ``cut_date`` (or the given ``model`` from
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
        sites activated after the cut enter when they can (activation + lag, then the ramp-up).
    cut_date : data cut-off.
    n_needed : number of future randomisations to simulate (e.g. target - randomised).
    draws, seed : number of simulated futures and the seed (``numpy.random.default_rng``).
    lag_days, ramp_days : fix the site lag and ramp-up instead of estimating them.
    """
    model = model or fit_recruitment_model(adsl, sites, cut_date, lag_days=lag_days, ramp_days=ramp_days,
                                           site_col=site_col, date_col=date_col)
    n_needed = max(int(n_needed), 0)
    if n_needed == 0:
        return np.empty((int(draws), 0))
    return _simulate(model, n_needed, int(draws), int(seed))


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
    def startup_(self) -> SiteStartUp:
        return self.model_.startup_

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
                               ramp_days: float | None = None, horizon_days: int = HORIZON_DAYS, site_col: str = "SITEID",
                               date_col: str = "RANDDT", model: RecruitmentModel | None = None) -> RecruitmentProjection:
    """Project when recruitment reaches each of ``targets`` (see the module doc for the model).

    Parameters
    ----------
    adsl, sites, cut_date, lag_days, ramp_days, site_col, date_col : as :func:`fit_recruitment_model`.
    targets : an int or a sequence of ints (total numbers randomised); one row each, in the
        order given (duplicates dropped).
    draws, seed : simulated futures and seed; the same arguments give identical results.
    planned_end : the planned end of recruitment (``[study] recruitment_end``): the table's
        ``p_by_planned_end`` is the share of draws reaching the target on or before it (NaN
        without one).
    horizon_days : dates later than the cut + this many days are NaT (missing).
    model : a model already fitted on the same data and cut (:func:`fit_recruitment_model`).

    Returns
    -------
    RecruitmentProjection
    """
    targets = tuple(dict.fromkeys(int(t) for t in np.atleast_1d(targets)))
    if not targets or min(targets) < 1:
        raise ValueError(f"targets must be positive numbers, got {targets}")
    model = model or fit_recruitment_model(adsl, sites, cut_date, lag_days=lag_days, ramp_days=ramp_days,
                                           site_col=site_col, date_col=date_col)
    cut = pd.Timestamp(model.cut_date)
    end = pd.Timestamp(planned_end).normalize() if planned_end is not None else None
    n0, draws = model.n_randomised, int(draws)
    need = max(max(targets) - n0, 0)
    open_targets = [t for t in targets if t > n0]
    month_list = month_range(cut.strftime("%Y-%m"), (cut + pd.Timedelta(days=horizon_days)).strftime("%Y-%m"))
    ends = np.array([(pd.Period(m, "M").end_time.normalize() - cut).days for m in month_list], float)
    finish = np.empty((draws, len(open_targets)))
    counts = np.empty((draws, len(ends)))
    if need:                           # chunk by chunk: only the targets' dates and the month-end counts kept
        cols = [t - n0 - 1 for t in open_targets]
        for rows, times in _simulate_chunks(model, need, draws, int(seed)):
            finish[rows] = times[:, cols]
            counts[rows] = [np.searchsorted(row, ends, side="right") for row in times]
    rows = []
    for target in targets:
        row = {"target": target}
        if target <= n0:                          # reached by the cut: its actual date
            when = pd.Timestamp(model.randomised_dates_[target - 1])
            row.update({k: when for k in QUANTILES})
            row["p_by_planned_end"] = np.nan if end is None else float(when <= end)
        else:
            f = finish[:, open_targets.index(target)]
            q = np.quantile(f, list(QUANTILES.values()))
            row.update({k: _day_to_ts(cut, x, horizon_days) for k, x in zip(QUANTILES, q)})
            row["p_by_planned_end"] = (np.nan if end is None else
                                       float(np.mean(np.ceil(f) <= (end - cut).days)))
        rows.append(row)
    table = pd.DataFrame(rows).rename(columns={"median": "median_date"})
    for c in table.columns:
        if c not in ("target", "p_by_planned_end"):
            table[c] = pd.to_datetime(table[c])
    fan_cols = ["month", "median", "lower80", "upper80", "lower95", "upper95"]
    fan = pd.DataFrame(columns=fan_cols)
    if need:                           # to the month the largest target is reached in 97.5 % of draws
        last = np.quantile(finish[:, open_targets.index(max(open_targets))], 0.975)
        keep = int(np.searchsorted(ends, min(last, horizon_days), side="left")) + 1
        qs = np.quantile(n0 + counts[:, :keep], [0.5, 0.1, 0.9, 0.025, 0.975], axis=0)
        fan = pd.DataFrame({"month": month_list[:keep], **{c: qs[i] for i, c in enumerate(fan_cols[1:])}})
    return RecruitmentProjection(model.cut_date, targets, n0, end.date() if end is not None else None, draws,
                                 int(seed), int(horizon_days), table, fan, model)
