"""Group-sequential monitoring: Lan-DeMets alpha spending with the O'Brien-Fleming-type function
alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) for a one-sided level alpha (efficacy boundary).

Boundaries are found look by look so that the probability, under H0, of first crossing at look
k equals the alpha spent between looks k-1 and k. The crossing probabilities are computed by
numerical integration of the score process (Armitage, McPherson & Rowe 1969): S_k = Z_k sqrt(t_k)
has independent N(0, t_k - t_{k-1}) increments; the sub-density of S below the boundary is
carried from look to look on a fine grid.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats


def compute_obf_spending(t, alpha: float = 0.025) -> np.ndarray:
    """Cumulative alpha spent at information fractions ``t`` (one-sided level ``alpha``)."""
    t = np.asarray(t, dtype=float)
    return 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))


def compute_obf_boundaries(information_fractions, alpha: float = 0.025, grid_points: int = 2401) -> pd.DataFrame:
    """Efficacy boundaries (z scale) for looks at the given information fractions.

    Returns look, information_fraction, cumulative_alpha, alpha_spent, boundary_z, nominal_p.
    """
    t = np.asarray(information_fractions, dtype=float)
    if np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1:
        raise ValueError("information fractions must increase within (0, 1]")
    cum = compute_obf_spending(t, alpha)
    spend = np.diff(np.concatenate([[0.0], cum]))
    # grid on the score scale S (variance up to 1)
    grid = np.linspace(-8, 8, grid_points)
    h = grid[1] - grid[0]
    bounds = []
    density = None
    for k, tk in enumerate(t):
        if k == 0:
            c = stats.norm.isf(spend[0])
            s_bound = c * np.sqrt(tk)
            density = stats.norm.pdf(grid, scale=np.sqrt(tk)) * (grid < s_bound)
        else:
            sd = np.sqrt(tk - t[k - 1])
            w = density * h

            def cross(c):
                return float(np.sum(w * stats.norm.sf((c * np.sqrt(tk) - grid) / sd))) - spend[k]
            c = optimize.brentq(cross, 0.0, 12.0, xtol=1e-10)
            s_bound = c * np.sqrt(tk)
            kernel = stats.norm.pdf((grid[:, None] - grid[None, :]) / sd) / sd
            density = (kernel @ w) * (grid < s_bound)
        bounds.append(c)
    z = np.array(bounds)
    return pd.DataFrame({"look": np.arange(1, len(t) + 1), "information_fraction": t, "cumulative_alpha": cum,
                         "alpha_spent": spend, "boundary_z": z, "nominal_p": stats.norm.sf(z)})


def summarize_sequential(looks: pd.DataFrame, alpha: float = 0.025) -> pd.DataFrame:
    """Add boundaries to observed looks (columns information_fraction, observed_z, optional date)
    and flag whether the efficacy boundary was crossed."""
    b = compute_obf_boundaries(looks["information_fraction"].to_numpy(), alpha)
    out = pd.concat([looks.reset_index(drop=True).drop(columns=["information_fraction"]), b], axis=1)
    out["crossed"] = out["observed_z"] >= out["boundary_z"]
    return out
