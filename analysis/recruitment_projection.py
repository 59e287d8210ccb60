"""Recruitment projection: when recruitment reaches its target, by the Poisson-gamma model.

Each site recruits as a Poisson process whose rate is drawn from a gamma distribution fitted to
the sites' counts and exposures (Anisimov & Fedorov 2007): ``compute_nb_loglik`` and
``fit_gamma_rates`` fit it, ``fit_recruitment_projection`` simulates the remaining arrivals and
returns a ``RecruitmentProjection`` (projected date, prediction intervals, monthly fan). The
summaries of recruitment so far are in ``analysis.recruitment``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from analysis.recruitment import month_range, sites_frame

DAYS_PER_MONTH = 365.25 / 12


def compute_nb_loglik(alpha: float, beta: float, counts, exposures) -> float:
    """Log-likelihood of the Poisson-gamma (negative binomial) model for site counts.

    n_i | lambda_i ~ Poisson(lambda_i tau_i), lambda_i ~ Gamma(shape alpha, rate beta), so
    P(n_i) = Gamma(alpha+n_i) / (Gamma(alpha) n_i!) * (beta/(beta+tau_i))^alpha
    * (tau_i/(beta+tau_i))^n_i (Anisimov & Fedorov 2007).
    """
    n, t = np.asarray(counts, float), np.asarray(exposures, float)
    return float(np.sum(special.gammaln(alpha + n) - special.gammaln(alpha) - special.gammaln(n + 1)
                        + alpha * np.log(beta) - (alpha + n) * np.log(beta + t) + n * np.log(t)))


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

    rates = n / t
    var = rates.var() if len(n) > 1 else 0.0
    a0 = pooled ** 2 / var if var > 0 else 10.0
    x0 = [np.clip(np.log(a0), -7, 11), np.log(pooled)]
    res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=[(-8, 12), (np.log(pooled) - 10, np.log(pooled) + 10)])
    a, m = float(np.exp(res.x[0])), float(np.exp(res.x[1]))
    return a, a / m


@dataclass
class RecruitmentProjection:
    """Result of :func:`fit_recruitment_projection` (dates are ``datetime.date``)."""

    cut_date: dt.date
    target: int
    n_randomised: int
    alpha_: float
    beta_: float
    projected_date_: dt.date | None
    interval80_: tuple[dt.date | None, dt.date | None]
    interval95_: tuple[dt.date | None, dt.date | None]
    fan_: pd.DataFrame
    sites_: pd.DataFrame = field(repr=False)
    prob_reached_: float = 1.0

    @property
    def remaining(self) -> int:
        return max(self.target - self.n_randomised, 0)

    def summary(self) -> pd.DataFrame:
        """One-row table: cut, target, randomised, projected date and prediction intervals."""
        return pd.DataFrame([{"cut_date": self.cut_date, "target": self.target,
                              "randomised": self.n_randomised, "projected_date": self.projected_date_,
                              "lower80": self.interval80_[0], "upper80": self.interval80_[1],
                              "lower95": self.interval95_[0], "upper95": self.interval95_[1]}])


def _invert_cumulative(u: np.ndarray, starts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Times t (days after the cut) with sum_i rates[:, i] * max(0, t - starts[i]) = u[:, k].

    ``starts`` is sorted ascending; ``rates`` is (n_sim, n_sites); ``u`` is (n_sim, k).
    """
    slope = np.cumsum(rates, axis=1)                          # slope after each start
    widths = np.diff(starts)
    lam_at = np.concatenate([np.zeros((len(rates), 1)), np.cumsum(slope[:, :-1] * widths, axis=1)], axis=1)
    t = np.empty_like(u)
    for s in range(len(rates)):
        j = np.searchsorted(lam_at[s], u[s], side="right") - 1
        t[s] = starts[j] + (u[s] - lam_at[s, j]) / slope[s, j]
    return t


def fit_recruitment_projection(adsl: pd.DataFrame, sites, cut_date, target: int, n_sim: int = 2000,
                               seed: int = 1, site_col: str = "SITEID", date_col: str = "RANDDT",
                               max_years: float = 20.0) -> RecruitmentProjection:
    """Project when recruitment reaches ``target`` with the Poisson-gamma model.

    Each site recruits as a Poisson process with rate lambda_i ~ Gamma(alpha, beta) (per day).
    alpha and beta are ML estimates from the counts n_i and exposures tau_i (days from
    activation to the cut) of the sites active at the cut; an active site's future rate is drawn
    from its posterior Gamma(alpha + n_i, beta + tau_i); a site activated after the cut draws
    from the prior and starts at its activation date (Anisimov & Fedorov 2007). Given the rates
    the remaining arrival times are exact (unit-exponential gaps on the cumulative intensity).

    Parameters
    ----------
    sites : site list with ``id`` and ``activated`` (``Study.sites``, dicts or a DataFrame).
        Randomised subjects at sites missing from the list count towards the total only.
    cut_date : data cut-off; randomisations after it are ignored.
    target : total number to randomise.
    n_sim, seed : Monte Carlo size and ``numpy.random.default_rng`` seed.

    Returns
    -------
    RecruitmentProjection with ``projected_date_`` (median), ``interval80_`` / ``interval95_``
    (prediction intervals), ``fan_`` (month, median, lower80, upper80, lower95, upper95 of the
    cumulative number randomised at month end, from the cut month until the 97.5% date) and
    ``sites_`` (site_id, n, exposure_days, rate_per_month = posterior mean x 30.44).
    """
    cut = pd.Timestamp(cut_date).normalize()
    sf = sites_frame(sites)
    d = pd.to_datetime(adsl[date_col])
    rand = adsl.loc[d <= cut]
    n_total = len(rand)
    counts = rand.groupby(rand[site_col].astype(str)).size()
    sf = sf[sf["activated"].notna()].copy()
    sf["n"] = sf["site_id"].map(counts).fillna(0).astype(int)
    sf["exposure_days"] = (cut - sf["activated"]).dt.days.clip(lower=0).astype(float)
    active = sf["exposure_days"] > 0
    alpha, beta = fit_gamma_rates(sf.loc[active, "n"], sf.loc[active, "exposure_days"])
    shape = np.where(active, alpha + sf["n"], alpha)
    rate = np.where(active, beta + sf["exposure_days"], beta)
    sf["rate_per_month"] = shape / rate * DAYS_PER_MONTH
    remaining = int(target) - n_total
    cols = ["month", "median", "lower80", "upper80", "lower95", "upper95"]
    to_date = lambda days: (cut + pd.Timedelta(days=float(days))).date()
    if remaining <= 0:
        reached = d[d <= cut].sort_values().iloc[int(target) - 1].date() if target > 0 else cut.date()
        return RecruitmentProjection(cut.date(), int(target), n_total, alpha, beta, reached,
                                     (reached, reached), (reached, reached), pd.DataFrame(columns=cols),
                                     sf[["site_id", "n", "exposure_days", "rate_per_month"]].reset_index(drop=True))
    rng = np.random.default_rng(seed)
    starts = np.maximum((sf["activated"] - cut).dt.days.to_numpy(float), 0.0)
    order = np.argsort(starts, kind="stable")
    lam = rng.gamma(shape[order], 1.0 / rate[order], size=(n_sim, len(sf)))
    u = np.cumsum(rng.exponential(1.0, size=(n_sim, remaining)), axis=1)
    times = _invert_cumulative(u, starts[order], lam)             # (n_sim, remaining), days after cut
    horizon = max_years * 365.25
    finish = times[:, -1]
    prob = float(np.mean(finish <= horizon))
    q = np.quantile(finish, [0.5, 0.1, 0.9, 0.025, 0.975])
    qd = [to_date(x) if x <= horizon else None for x in q]
    last_month = (cut + pd.Timedelta(days=float(min(q[4], horizon)))).strftime("%Y-%m")
    months = month_range(cut.strftime("%Y-%m"), last_month)
    ends = np.array([(pd.Period(m, "M").end_time.normalize() - cut).days for m in months], float)
    cum = n_total + np.stack([(times <= e).sum(axis=1) for e in ends], axis=1)
    qs = np.quantile(cum, [0.5, 0.1, 0.9, 0.025, 0.975], axis=0)
    fan = pd.DataFrame({"month": months, **{c: qs[i] for i, c in enumerate(cols[1:])}})
    return RecruitmentProjection(cut.date(), int(target), n_total, alpha, beta, qd[0], (qd[1], qd[2]),
                                 (qd[3], qd[4]), fan,
                                 sf[["site_id", "n", "exposure_days", "rate_per_month"]].reset_index(drop=True),
                                 prob)
