"""The recruitment model: the Poisson-gamma model of site rates with a site start-up, fitted at a
cut (the simulation and the projection to the targets are in ``analysis.recruitment_projection``).

Model (Anisimov & Fedorov 2007, with a site start-up that the back-test showed was needed;
time-varying site rates as in Urbas, Sherlock & Metcalfe 2022):

- site i recruits as a Poisson process of intensity ``lambda_i * h(s)`` at ``s`` days after its
  activation: ``h(s) = 0`` during a lag ``L`` (start-up and the run-in every participant passes
  before randomisation), then ``h(s) = 1 - exp(-(s - L) / tau)``, a ramp-up with time constant
  ``tau`` (``tau = 0``: full rate at once). A site's exposure is ``H_i``, the integral of ``h``
  from activation to the cut (:func:`compute_ramp_exposure`);
- ``lambda_i ~ Gamma(alpha, rate beta)``. Integrating ``lambda_i`` out gives the negative
  binomial likelihood of the counts (:func:`compute_nb_loglik`, :func:`fit_gamma_rates`) times
  ``prod h(s_ij)`` over the randomisation times: the times are what estimate ``L`` and ``tau``;
- ``(L, tau, log alpha, log alpha/beta)`` get a grid posterior (flat priors over the grids
  ``LAG_GRID``, ``RAMP_GRID``, ``LOG_ALPHA`` and ``LOG_MEAN_OFFSET``):
  :func:`fit_recruitment_model` returns it as a :class:`RecruitmentModel`, with the fitted
  start-up (:class:`SiteStartUp`) and each site's rate at the posterior mode.

Pure: DataFrames in, the fitted model out.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from analysis.recruitment import sites_frame

__all__ = ["DAYS_PER_MONTH", "LAG_GRID", "RAMP_GRID", "LOG_ALPHA", "LOG_MEAN_OFFSET", "SiteStartUp",
           "RecruitmentModel", "compute_nb_loglik", "fit_gamma_rates", "compute_hyper_posterior",
           "compute_ramp_exposure", "ramp_rate", "fit_recruitment_model"]

DAYS_PER_MONTH = 365.25 / 12
LAG_GRID = np.arange(0.0, 365.0, 7.0)                      # L: days of no randomisation after activation
RAMP_GRID = np.array([0.0, 15, 30, 45, 60, 90, 120, 150, 180, 240, 300])   # tau: ramp-up time constant
LOG_ALPHA = np.linspace(-2.5, 7.0, 39)                     # alpha 0.08 to 1100, step 0.25 in log
LOG_MEAN_OFFSET = np.linspace(-2.0, 2.0, 101)              # log mean rate around the pooled rate


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
    log_mean = np.log(pooled) + LOG_MEAN_OFFSET
    a = np.exp(LOG_ALPHA)[:, None, None]
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
    gl = special.gammaln(np.exp(LOG_ALPHA)[:, None] + n) - special.gammaln(np.exp(LOG_ALPHA))[:, None]
    log_mean, ll = _hyper_grid(n, t, gl)
    w = np.exp(ll - ll.max())
    return LOG_ALPHA.copy(), log_mean, w / w.sum()


# --------------------------------------------------------------------------- site start-up
def compute_ramp_exposure(days, lag: float, ramp: float) -> np.ndarray:
    """Exposure at full rate after ``days`` from activation: the integral of h(s) = 0 for s < lag,
    1 - exp(-(s - lag)/ramp) after (``ramp`` 0: a step), i.e. x - ramp (1 - exp(-x/ramp)) with
    x = max(days - lag, 0)."""
    x = np.maximum(np.asarray(days, float) - lag, 0.0)
    if ramp <= 0:
        return x
    return x + ramp * np.expm1(-x / ramp)


def ramp_rate(days, lag: float, ramp: float) -> np.ndarray:
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
    gl = special.gammaln(np.exp(LOG_ALPHA)[:, None] + n) - special.gammaln(np.exp(LOG_ALPHA))[:, None]
    configs, log_means, lls = [], [], []
    for lag in lags:
        if lag >= first and len(lags) > 1:
            continue                                              # an arrival before the lag: impossible
        for ramp in ramps:
            h_sum = float(np.log(np.maximum(ramp_rate(s, lag, ramp), 1e-300)).sum())
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
    alpha = float(np.exp(LOG_ALPHA[ia]))
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
