"""Interim decision quantities for a group-sequential survival trial: conditional power, predictive
power, the repeated confidence interval and a non-binding futility rule. Pure functions of numbers.

The B-value (Lan & Wittes 1988; Proschan, Lan & Wittes 2006, ch. 3; Jennison & Turnbull 2000,
ch. 10): at information fraction t (observed deaths / planned deaths), B(t) = Z(t) sqrt(t) behaves
as a Brownian motion with drift theta, B(t) ~ N(theta t, t) with independent increments, where
theta = E[Z(1)] is the expected z at the planned final analysis. For the log-rank test with
allocation proportion p, theta = -log(HR) sqrt(D p (1 - p)) (Schoenfeld 1981), D the planned
deaths; positive theta favours the experimental arm (HR < 1).

- Conditional power CP(theta): P(the efficacy boundary is crossed at a remaining look | B(t) = b).
  With the final look only (fraction 1, boundary c) it is the closed form
  1 - Phi((c - b - theta (1 - t)) / sqrt(1 - t)); with looks still to come before the final one it
  is computed by recursive numerical integration over them (as ``analysis.sequential``), the
  probability of crossing at any of them (gsDesign ``gsCP``, rpact ``getConditionalPower``).
  Three values of theta: the design effect (the HR the trial is powered for), the current trend
  (theta = z / sqrt(t), the estimate) and the null (theta = 0).
- Predictive power: CP averaged over the posterior of theta under a flat prior, theta | b ~
  N(b / t, 1 / t) (Spiegelhalter, Freedman & Blackburn 1986; Jennison & Turnbull 2000, sec.
  10.3). Final look only: Phi((z - c sqrt(t)) / sqrt(1 - t)).
- Repeated confidence interval at look k (Jennison & Turnbull 1989; 2000, ch. 9): the log hazard
  ratio estimate +/- c_k x SE, c_k the efficacy boundary at look k; the intervals of all looks
  hold the true HR together with probability 1 - 2 alpha, and the interval excludes 1 exactly
  when |z| >= c_k (with the log-rank estimate (O - E) / V, SE 1 / sqrt(V)).
- Futility (non-binding): conditional power under the current trend below a threshold (10 %).
  Non-binding means the efficacy boundaries are computed as if there were no futility rule, so
  the type I error is kept whether or not the DSMB acts on it.

Examples
--------
>>> round(conditional_power(z=1.0, t=0.5, drift=0.0, looks=[(1.0, 1.96)]), 4)
0.0382
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_FUTILITY_THRESHOLD = 0.10


def drift_from_hazard_ratio(hazard_ratio: float, events: float, allocation: float = 0.5) -> float:
    """theta = E[Z] of the log-rank z at ``events`` deaths under ``hazard_ratio`` (Schoenfeld):
    -log(HR) sqrt(events p (1 - p)), p the proportion allocated to the experimental arm."""
    if not hazard_ratio > 0:
        raise ValueError("the hazard ratio must be positive")
    return float(-np.log(hazard_ratio) * np.sqrt(events * allocation * (1 - allocation)))


def trend_drift(z: float, t: float) -> float:
    """The drift the data estimate: theta = B(t) / t = z / sqrt(t)."""
    return float(z / np.sqrt(t))


def _simpson(lower: float, upper: float, m: int = 100) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(lower, upper, 2 * m + 1)
    w = np.full(2 * m + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return x, w * (upper - lower) / (6 * m)


def _remaining(t: float, looks) -> list[tuple[float, float]]:
    out = [(float(s), float(c)) for s, c in looks if s > t + 1e-12]
    if any(b[0] <= a[0] for a, b in zip(out, out[1:])):
        raise ValueError("remaining looks must have increasing information fractions")
    return out


def conditional_power(z: float, t: float, drift: float, looks, grid_half_points: int = 100,
                      width: float = 10.0) -> float:
    """P(crossing an efficacy boundary at a remaining look | Z(t) = z) when E[B(s)] = drift s.

    Parameters
    ----------
    z : float
        Observed z at information fraction ``t`` (positive favours the experimental arm).
    t : float
        Information fraction now (> 0; 0 with z = 0 gives the power of the design).
    drift : float
        theta = E[Z(1)]: :func:`drift_from_hazard_ratio`, :func:`trend_drift` or 0 (the null).
    looks : sequence of (fraction, boundary_z)
        The looks of the design; those after ``t`` are the remaining ones (the last usually the
        final analysis at fraction 1). Infinite boundaries are allowed (no alpha left).

    Returns
    -------
    float
        The conditional power; NaN when no look remains (this is the final analysis).
    """
    rest = _remaining(t, looks)
    if not rest:
        return float("nan")
    b = z * np.sqrt(t) if t > 0 else 0.0
    if len(rest) == 1:                        # the closed form (Lan & Wittes 1988)
        s, c = rest[0]
        if not np.isfinite(c):
            return 0.0
        return float(stats.norm.sf((c * np.sqrt(s) - b - drift * (s - t)) / np.sqrt(s - t)))
    crossed, x, w, f, prev = 0.0, None, None, None, t
    for s, c in rest:
        upper = c * np.sqrt(s) if np.isfinite(c) else np.inf
        sd = np.sqrt(s - prev)
        if x is None:
            mean = b + drift * (s - t)
            crossed += float(stats.norm.sf((upper - mean) / sd)) if np.isfinite(upper) else 0.0
            lo = mean - width * np.sqrt(s - t)
            hi = min(upper, mean + width * np.sqrt(s - t))
            if hi <= lo:
                return float(min(crossed, 1.0))
            xn, wn = _simpson(lo, hi, grid_half_points)
            fn = stats.norm.pdf(xn, loc=mean, scale=sd)
        else:
            step = drift * (s - prev)
            mass = w * f
            if np.isfinite(upper):
                crossed += float(mass @ stats.norm.sf((upper - x - step) / sd))
            mean = b + drift * (s - t)
            lo = mean - width * np.sqrt(s - t)
            hi = min(upper, mean + width * np.sqrt(s - t))
            if hi <= lo:
                return float(min(crossed, 1.0))
            xn, wn = _simpson(lo, hi, grid_half_points)
            fn = (stats.norm.pdf((xn[:, None] - x[None, :] - step) / sd) / sd) @ mass
        x, w, f, prev = xn, wn, fn, s
    return float(min(crossed, 1.0))


def predictive_power(z: float, t: float, looks, nodes: int = 48) -> float:
    """Conditional power averaged over the flat-prior posterior of the drift, theta ~ N(z /
    sqrt(t), 1 / t) (Gauss-Hermite quadrature; the closed form when only the final look
    remains). NaN when no look remains."""
    rest = _remaining(t, looks)
    if not rest or t <= 0:
        return float("nan")
    if len(rest) == 1:
        s, c = rest[0]
        if not np.isfinite(c):
            return 0.0
        # B(s) - b ~ N(b (s - t) / t, (s - t) + (s - t)^2 / t) = N(b (s - t) / t, (s - t) s / t)
        b = z * np.sqrt(t)
        return float(stats.norm.sf((c * np.sqrt(s) - b * s / t) / np.sqrt((s - t) * s / t)))
    u, wt = np.polynomial.hermite_e.hermegauss(nodes)          # weight exp(-u^2 / 2)
    theta = z / np.sqrt(t) + u / np.sqrt(t)
    cp = np.array([conditional_power(z, t, th, rest) for th in theta])
    return float(np.sum(wt * cp) / np.sqrt(2 * np.pi))


def futility_z(t: float, looks, threshold: float = DEFAULT_FUTILITY_THRESHOLD) -> float:
    """The z below which the futility rule is met at fraction ``t``: conditional power under the
    current trend equals ``threshold`` there (it increases with z). NaN when no look remains or
    no z in (-10, 10) gives it."""
    from scipy import optimize
    if not _remaining(t, looks) or t <= 0:
        return float("nan")

    def gap(z):
        return conditional_power(z, t, trend_drift(z, t), looks) - threshold
    lo, hi = -10.0, 10.0
    if gap(lo) > 0 or gap(hi) < 0:
        return float("nan")
    return float(optimize.brentq(gap, lo, hi, xtol=1e-8))


def repeated_ci(log_hr: float, se: float, boundary_z: float) -> tuple[float, float]:
    """Repeated confidence interval for the hazard ratio at a look: exp(log HR -/+ c x SE), c the
    look's efficacy boundary (coverage 1 - 2 alpha jointly over the looks)."""
    if not (np.isfinite(log_hr) and np.isfinite(se) and se > 0):
        return float("nan"), float("nan")
    if not np.isfinite(boundary_z):
        return 0.0, float("inf")
    return float(np.exp(log_hr - boundary_z * se)), float(np.exp(log_hr + boundary_z * se))


@dataclass(frozen=True)
class InterimDecision:
    """The decision quantities at one look (see the module docstring)."""
    information_fraction: float
    observed_z: float
    efficacy_boundary_z: float
    final_boundary_z: float
    conditional_power_design: float
    conditional_power_trend: float
    conditional_power_null: float
    predictive_power: float
    rci_lower: float
    rci_upper: float
    efficacy_crossed: bool
    futility_crossed: bool
    futility_threshold: float
    design_drift: float
    trend_drift: float


def interim_decision(z: float, t: float, looks, design_hazard_ratio: float, planned_events: float,
                     log_hr: float, se: float, futility_threshold: float = DEFAULT_FUTILITY_THRESHOLD,
                     allocation: float = 0.5) -> InterimDecision:
    """Every decision quantity at the look at fraction ``t`` with observed ``z``.

    Parameters
    ----------
    z, t : float
        Observed z (positive favours the experimental arm) and information fraction of this look.
    looks : sequence of (fraction, boundary_z)
        Every look of the design with its efficacy boundary, this one included (its boundary is
        the one at fraction ``t``); the last is the final analysis.
    design_hazard_ratio, planned_events : float
        The effect the trial is powered for and the deaths planned at the final analysis.
    log_hr, se : float
        The log hazard ratio estimate (experimental vs reference) and its standard error.
    futility_threshold : float
        The futility rule: conditional power under the current trend below it.

    Returns
    -------
    InterimDecision
        At the final analysis (no look remains) the conditional and predictive powers are NaN
        and the futility rule does not apply (False).
    """
    looks = [(float(s), float(c)) for s, c in looks]
    here = [c for s, c in looks if abs(s - t) <= 1e-9]
    if not here:
        raise ValueError(f"no look at information fraction {t}")
    c_now, c_final = here[0], looks[-1][1]
    theta_design = drift_from_hazard_ratio(design_hazard_ratio, planned_events, allocation)
    theta_trend = trend_drift(z, t)
    cp_design = conditional_power(z, t, theta_design, looks)
    cp_trend = conditional_power(z, t, theta_trend, looks)
    cp_null = conditional_power(z, t, 0.0, looks)
    pp = predictive_power(z, t, looks)
    lo, hi = repeated_ci(log_hr, se, c_now)
    crossed = bool(np.isfinite(z) and z >= c_now)
    futile = bool(not crossed and np.isfinite(cp_trend) and cp_trend < futility_threshold)
    return InterimDecision(float(t), float(z), float(c_now), float(c_final), cp_design, cp_trend, cp_null, pp,
                           lo, hi, crossed, futile, float(futility_threshold), theta_design, theta_trend)
