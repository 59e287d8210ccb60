"""Group-sequential monitoring: Lan-DeMets alpha spending with the O'Brien-Fleming-type function
alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) for a one-sided level alpha (efficacy boundary only).

Boundaries are found look by look so that the probability under H0 of FIRST crossing at look k
equals the alpha spent between looks k-1 and k (Lan & DeMets 1983). The crossing probabilities
come from the recursive numerical integration of Armitage, McPherson & Rowe (1969), as in
Jennison & Turnbull (2000, ch. 19): the score S_k = Z_k sqrt(t_k) has independent N(0, t_k -
t_{k-1}) increments; the sub-density of S_k on the continuation region (-inf, c_k sqrt(t_k)) is
carried from look to look with Simpson's rule on a grid that ends exactly at the boundary.

Over-running (more information than planned, e.g. 78 deaths against 60 planned): fractions above 1
are allowed; the spending function is evaluated at min(t, 1), so the look at t >= 1 spends all the
alpha left, while the correlation between looks, sqrt(t_i / t_j), uses the information actually
observed (as gsDesign does with ``n.I`` beyond ``maxn.IPlan`` and rpact with the observed events):
looks at 30 and 78 deaths against 60 planned give a final boundary 1.9727, not the 1.9686 of
looks at 0.5 and 1.

Examples
--------
>>> b = compute_obf_boundaries([0.25, 0.5, 0.75, 1.0])
>>> [round(z, 3) for z in b["boundary_z"]]
[4.333, 2.963, 2.359, 2.014]
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

BOUNDARY_COLUMNS = ["look", "information_fraction", "cumulative_alpha", "alpha_spent", "boundary_z", "nominal_p"]


def compute_obf_spending(information_fractions, alpha: float = 0.025) -> np.ndarray:
    """Cumulative one-sided alpha spent at ``information_fractions`` (Lan-DeMets O'Brien-Fleming type).

    Parameters
    ----------
    information_fractions : array-like of float > 0
        Fractions above 1 (more information than planned) spend alpha(1) == alpha.
    alpha : float
        One-sided significance level; alpha(1) == alpha.

    Returns
    -------
    numpy.ndarray
        2 - 2 Phi(z_{1 - alpha/2} / sqrt(min(t, 1))).
    """
    t = np.minimum(np.asarray(information_fractions, dtype=float), 1.0)
    return 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))


def _simpson_grid(lower: float, upper: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and composite-Simpson weights on [lower, upper] with 2m intervals."""
    x = np.linspace(lower, upper, 2 * m + 1)
    w = np.full(2 * m + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return x, w * (upper - lower) / (6 * m)


def compute_obf_boundaries(information_fractions, alpha: float = 0.025, grid_half_points: int = 100,
                           width: float = 10.0, last_spends_all: bool = False) -> pd.DataFrame:
    """Efficacy boundaries (z scale) for looks at the given information fractions.

    Parameters
    ----------
    information_fractions : sequence of float
        Information at each look over the planned maximum information, strictly increasing and
        positive; the last look is usually 1. Fractions above 1 (over-running: more deaths than
        planned) are allowed: spending stops at alpha (a look at t >= 1 spends what is left, any
        later one gets an infinite boundary) and the correlations use the fractions as given.
    alpha : float
        One-sided level (0.025 for a two-sided 5% test).
    grid_half_points : int
        Simpson's rule uses 2 * grid_half_points intervals per look (100 gives 6 decimals).
    width : float
        The grid extends ``width`` standard deviations below 0 on the score scale.
    last_spends_all : bool
        The last look is the final analysis and spends all the alpha left even when its fraction
        is below 1 (a final analysis with fewer deaths than planned).

    Returns
    -------
    pandas.DataFrame
        look, information_fraction, cumulative_alpha, alpha_spent (increment at the look),
        boundary_z, nominal_p (one-sided p-value that corresponds to boundary_z).
    """
    t = np.asarray(information_fractions, dtype=float)
    if t.ndim != 1 or not len(t) or np.any(np.diff(t) <= 0) or t[0] <= 0 or not np.all(np.isfinite(t)):
        raise ValueError("information fractions must be positive, finite and strictly increasing")
    cumulative = compute_obf_spending(t, alpha)
    if last_spends_all:
        cumulative[-1] = alpha
    spend = np.diff(np.concatenate([[0.0], cumulative]))
    z = np.empty(len(t))
    x = w = f = None
    for k, tk in enumerate(t):
        root = np.sqrt(tk)
        if k == 0:
            z[0] = stats.norm.isf(spend[0]) if spend[0] > 0 else np.inf
        else:
            sd = np.sqrt(tk - t[k - 1])
            mass = w * f

            def excess(c):
                return float(mass @ stats.norm.sf((c * root - x) / sd)) - spend[k]
            # no alpha left to spend (underflow at tiny fractions): the boundary is infinite
            z[k] = optimize.brentq(excess, -10.0, 60.0, xtol=1e-12) if excess(60.0) < 0 else np.inf
        upper = min(z[k], width) * root
        xn, wn = _simpson_grid(-width * root, upper, grid_half_points)
        if k == 0:
            f = stats.norm.pdf(xn, scale=root)
        else:
            f = (stats.norm.pdf((xn[:, None] - x[None, :]) / sd) / sd) @ mass
        x, w = xn, wn
    return pd.DataFrame({"look": np.arange(1, len(t) + 1), "information_fraction": t,
                         "cumulative_alpha": cumulative, "alpha_spent": spend, "boundary_z": z,
                         "nominal_p": stats.norm.sf(z)}, columns=BOUNDARY_COLUMNS)


def summarize_sequential(looks: pd.DataFrame, alpha: float = 0.025) -> pd.DataFrame:
    """Boundaries recomputed at the observed information fractions, with the observed z and a flag.

    Parameters
    ----------
    looks : pandas.DataFrame
        One row per look: information_fraction (increasing), observed_z (NaN for looks not yet
        done); other columns (e.g. date) are kept.
    alpha : float
        One-sided level.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`compute_obf_boundaries`, the extra columns of ``looks``,
        observed_z and crossed (True when observed_z >= boundary_z, False otherwise).
    """
    missing = {"information_fraction", "observed_z"} - set(looks.columns)
    if missing:
        raise ValueError(f"looks lacks columns {sorted(missing)}")
    b = compute_obf_boundaries(looks["information_fraction"].to_numpy(dtype=float), alpha)
    extra = looks.reset_index(drop=True).drop(columns=["information_fraction", "observed_z"])
    out = pd.concat([b, extra], axis=1)
    out["observed_z"] = looks["observed_z"].to_numpy(dtype=float)
    out["crossed"] = pd.Series([bool(o >= c) for o, c in zip(out["observed_z"], out["boundary_z"])], dtype=object)
    return out
