"""Hazard models of the death projection (``analysis.event_projection``), time in days from
randomisation, and the loss to follow-up.

- The hazard of death is fitted by maximum likelihood as exponential, Weibull and piecewise
  exponential (pieces from days 0, 180, 360, 540; a piece with fewer than 10 deaths is merged
  into the one before it, so a piece nobody has reached yet carries the rate of the last piece
  observed); the lowest AIC is chosen (``fit_hazard_models``). A fit (:class:`HazardFit`) gives
  its cumulative hazard and survival, and draws its log-parameters for the simulation from their
  asymptotic normal (observed information).
- Loss to follow-up: participants censored before day 640 and before the cut who are no longer
  followed are lost; they give an exponential dropout hazard, lost / person-time to day 640
  (``fit_dropout``; :class:`DropoutFit` draws its rate from the gamma posterior, Jeffreys prior).

Pure: arrays in, fits out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["DEFAULT_BREAKS", "MIN_EVENTS_PER_PIECE", "MIN_EVENTS_WEIBULL", "HazardFit", "DropoutFit",
           "fit_exponential", "fit_weibull", "fit_piecewise_exponential", "fit_hazard_models", "fit_dropout"]

DEFAULT_BREAKS = (0, 180, 360, 540)
MIN_EVENTS_PER_PIECE = 10      # a piece's log-rate then has an SE of at most 0.32 (5 deaths: 0.45)
MIN_EVENTS_WEIBULL = 5
TIME_FLOOR = 0.5            # a death or censoring on day 0 counts as half a day (log-times, hazard at 0)
MODEL_WORDS = {"exponential": "Exponential", "weibull": "Weibull", "piecewise": "Piecewise exponential"}


# --------------------------------------------------------------------------- hazard models
@dataclass(frozen=True)
class HazardFit:
    """A fitted hazard of death, time in days from randomisation.

    ``model``: "exponential" (log rate), "weibull" (log shape, log scale: S(t) =
    exp(-(t/scale)^shape)) or "piecewise" (log rate of each piece, pieces starting at
    ``breaks``, the last one open); ``estimate``: the maximum-likelihood log-parameters;
    ``cov``: their covariance (inverse observed information; None when there is no death, the
    rate then drawn from its Jeffreys gamma posterior); ``loglik``: the log-likelihood of the
    times (density of deaths, survival of censorings)."""
    model: str
    estimate: np.ndarray
    cov: np.ndarray | None
    loglik: float
    n: int
    deaths: int
    exposure: float
    breaks: tuple = ()
    piece_deaths: tuple = ()
    piece_exposure: tuple = ()

    @property
    def n_params(self) -> int:
        return len(self.estimate)

    @property
    def aic(self) -> float:
        return 2 * self.n_params - 2 * self.loglik

    @property
    def label(self) -> str:
        if self.model == "piecewise":
            return f"Piecewise exponential (pieces from day {', '.join(str(int(b)) for b in self.breaks)})"
        return MODEL_WORDS[self.model]

    def cumhaz(self, t, log_params=None) -> np.ndarray:
        """Cumulative hazard at times ``t`` (days) for one set of log-parameters (default: the
        estimate)."""
        p = np.asarray(self.estimate if log_params is None else log_params, float)
        t = np.asarray(t, float)
        if self.model == "exponential":
            return np.exp(p[0]) * t
        if self.model == "weibull":
            return (t / np.exp(p[1])) ** np.exp(p[0])
        c = np.asarray(self.breaks, float)
        rates = np.exp(p)
        at = np.concatenate([[0.0], np.cumsum(rates[:-1] * np.diff(c))])
        j = np.clip(np.searchsorted(c, t, side="right") - 1, 0, len(c) - 1)
        return at[j] + rates[j] * (t - c[j])

    def survival(self, t, log_params=None) -> np.ndarray:
        return np.exp(-self.cumhaz(t, log_params))

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws of the log-parameters: the asymptotic normal of the estimate (the
        Jeffreys gamma posterior of the rate when there is no death), shape (size, n_params)."""
        if self.cov is None:
            return np.log(rng.gamma(0.5, 1.0 / self.exposure, size=(size, 1)))
        z = rng.standard_normal((size, self.n_params))
        chol = np.linalg.cholesky(self.cov)
        return self.estimate[None, :] + z @ chol.T


def _prepare(time, event) -> tuple[np.ndarray, np.ndarray]:
    x = np.maximum(np.asarray(time, float), TIME_FLOOR)
    d = np.asarray(event, bool)
    if len(x) != len(d):
        raise ValueError("time and event differ in length")
    if not len(x) or not np.isfinite(x).all():
        raise ValueError("need at least one finite follow-up time")
    return x, d


def fit_exponential(time, event) -> HazardFit:
    """Constant hazard: rate = deaths / person-time (closed form), var(log rate) = 1 / deaths."""
    x, d = _prepare(time, event)
    n_d, e = int(d.sum()), float(x.sum())
    if n_d == 0:
        return HazardFit("exponential", np.array([np.log(0.5 / e)]), None, 0.0, len(x), 0, e)
    rate = n_d / e
    return HazardFit("exponential", np.array([np.log(rate)]), np.array([[1.0 / n_d]]),
                     n_d * (np.log(rate) - 1.0), len(x), n_d, e)


def _weibull_loglik(x, d, shape, scale) -> float:
    z = (x / scale) ** shape
    return float(np.sum(d * (np.log(shape) - shape * np.log(scale) + (shape - 1) * np.log(x))) - np.sum(z))


def fit_weibull(time, event) -> HazardFit | None:
    """Weibull hazard, S(t) = exp(-(t/scale)^shape), by maximum likelihood: the shape is the root
    of the profile score d/k + sum_deaths log t - d sum t^k log t / sum t^k = 0, the scale then
    (sum t^k / d)^(1/k). Covariance of (log shape, log scale) from the analytic observed
    information. None with fewer than 2 deaths or no root (shape outside 0.007 to 150)."""
    x, d = _prepare(time, event)
    n_d = int(d.sum())
    if n_d < 2:
        return None
    top = x.max()
    y, ly = x / top, np.log(x / top)            # the score is scale-free: t / max(t) keeps t^k finite
    sum_ly_d = float(ly[d].sum())

    def score(log_k):
        k = np.exp(log_k)
        w = y ** k
        return n_d / k + sum_ly_d - n_d * float((w * ly).sum() / w.sum())

    lo, hi = -5.0, 5.0
    if not (score(lo) > 0 > score(hi)):
        return None
    k = float(np.exp(optimize.brentq(score, lo, hi, xtol=1e-12)))
    log_scale = float(np.log(top) + np.log((y ** k).sum() / n_d) / k)
    # observed information of (a, b) = (log shape, log scale); w_i = log t_i - b, z_i = (t_i / scale)^k
    w = np.log(x) - log_scale
    z = np.exp(k * w)
    h_aa = k * (w[d].sum() - (z * w).sum()) - k * k * (z * w * w).sum()
    h_ab = -n_d * k + k * z.sum() + k * k * (z * w).sum()
    h_bb = -k * k * z.sum()
    info = -np.array([[h_aa, h_ab], [h_ab, h_bb]])
    try:
        cov = np.linalg.inv(info)
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return HazardFit("weibull", np.array([np.log(k), log_scale]), cov,
                     _weibull_loglik(x, d, k, np.exp(log_scale)), len(x), n_d, float(x.sum()))


def _piece_counts(x, d, breaks):
    c = np.asarray(breaks, float)
    ends = np.append(c[1:], np.inf)
    exposure = np.clip(np.minimum(x[:, None], ends[None, :]) - c[None, :], 0, None).sum(axis=0)
    j = np.searchsorted(c, x[d], side="right") - 1
    deaths = np.bincount(j, minlength=len(c))
    return deaths, exposure


def fit_piecewise_exponential(time, event, breaks=DEFAULT_BREAKS,
                              min_events: int = MIN_EVENTS_PER_PIECE) -> HazardFit | None:
    """Piecewise-constant hazard with pieces starting at ``breaks`` (the last piece open): rate of
    piece j = deaths_j / person-time_j (closed form), var(log rate_j) = 1 / deaths_j. A piece
    with fewer than ``min_events`` deaths is merged into the piece before it (the first piece
    into the next), so pieces beyond the follow-up reached carry the last observed rate. None
    when fewer than two pieces remain (the exponential model)."""
    x, d = _prepare(time, event)
    c = [float(b) for b in breaks]
    if not c or c[0] != 0.0 or any(b2 <= b1 for b1, b2 in zip(c, c[1:])):
        raise ValueError("breaks must start at 0 and increase")
    while len(c) > 1:
        deaths, _ = _piece_counts(x, d, c)
        short = np.flatnonzero(deaths < min_events)
        if not len(short):
            break
        j = int(short[0])
        del c[1 if j == 0 else j]
    if len(c) < 2:
        return None
    deaths, exposure = _piece_counts(x, d, c)
    rates = deaths / exposure
    return HazardFit("piecewise", np.log(rates), np.diag(1.0 / deaths), float(np.sum(deaths * (np.log(rates) - 1))),
                     len(x), int(d.sum()), float(x.sum()), tuple(c), tuple(int(v) for v in deaths),
                     tuple(float(v) for v in exposure))


def fit_hazard_models(time, event, breaks=DEFAULT_BREAKS) -> tuple[HazardFit, list[HazardFit]]:
    """(chosen, candidates): exponential, Weibull (at least 5 deaths) and piecewise exponential
    (at least two pieces of ``MIN_EVENTS_PER_PIECE`` deaths or more) fitted to the same times; the lowest AIC is chosen
    (the first listed on a tie)."""
    candidates = [fit_exponential(time, event)]
    if candidates[0].deaths >= MIN_EVENTS_WEIBULL:
        candidates.append(fit_weibull(time, event))
    candidates.append(fit_piecewise_exponential(time, event, breaks))
    candidates = [c for c in candidates if c is not None]
    chosen = candidates[0] if candidates[0].deaths == 0 else min(candidates, key=lambda f: f.aic)
    return chosen, candidates


@dataclass(frozen=True)
class DropoutFit:
    """Loss to follow-up as an exponential hazard: ``lost`` participants over ``exposure``
    person-days to the landmark; draws from the Jeffreys posterior Gamma(lost + 1/2, exposure)."""
    lost: int
    exposure: float

    @property
    def rate(self) -> float:
        return self.lost / self.exposure if self.exposure > 0 else 0.0

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.exposure <= 0:
            return np.zeros(size)
        return rng.gamma(self.lost + 0.5, 1.0 / self.exposure, size=size)


def fit_dropout(time, lost) -> DropoutFit:
    """Dropout hazard from follow-up times (days, to the landmark) and who was lost."""
    x = np.asarray(time, float)
    return DropoutFit(int(np.asarray(lost, bool).sum()), float(np.clip(x, 0, None).sum()))
