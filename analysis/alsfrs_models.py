"""ALSFRS-R mixed model: the linear mixed-model slope of function over time, by group.

Pure: DataFrames in, a result dataclass out (``SlopeFit``, with ``effect_table()`` giving a row of
the treatment-effect table: method, estimate, ci_lower, ci_upper, statistic, p_value;
``EFFECT_COLUMNS``). The joint rank test of function and survival is in ``analysis.joint_rank``.

The mixed model is fitted by REML. The default engine (``engine="reml"``) is an exact, vectorised
profiled-REML fit of the random intercept and slope model (the lme4 formulation: per-subject
2 x 2 sufficient statistics, residual variance profiled out, three covariance parameters
optimised), so 20,000 subjects fit in about a second; ``engine="statsmodels"`` fits the same
model with ``statsmodels`` MixedLM (minutes at that scale) and the tests check the two agree.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

MONTH = 30.4375
Z975 = float(stats.norm.ppf(0.975))
EFFECT_COLUMNS = ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value"]


@dataclass
class SlopeFit:
    """Result of :func:`fit_alsfrs_slopes`.

    ``slopes``: group, n_subjects, slope, se, ci_lower, ci_upper (points per month).
    ``difference``: slope of the first (experimental) group minus the last (reference) group;
    positive means slower decline on the experimental arm. NaN for a pooled fit.
    """
    slopes: pd.DataFrame
    difference: float = np.nan
    diff_se: float = np.nan
    n_subjects: int = 0
    n_obs: int = 0
    params: pd.Series = field(default_factory=pd.Series)       # fixed effects
    cov_re: np.ndarray = field(default_factory=lambda: np.full((2, 2), np.nan))  # G (intercept, slope)
    residual_var: float = np.nan
    engine: str = "reml"
    converged: bool = True

    @property
    def diff_ci(self) -> tuple[float, float]:
        return self.difference - Z975 * self.diff_se, self.difference + Z975 * self.diff_se

    @property
    def diff_z(self) -> float:
        return self.difference / self.diff_se if self.diff_se > 0 else np.nan

    @property
    def diff_p(self) -> float:
        z = self.diff_z
        return float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan

    def effect_table(self) -> pd.DataFrame:
        """One row: method="alsfrs_slope_difference", estimate (points/month, experimental -
        reference; positive = slower decline on the experimental arm), Wald 95% CI, z, p."""
        lo, hi = self.diff_ci
        return pd.DataFrame([("alsfrs_slope_difference", self.difference, lo, hi, self.diff_z, self.diff_p)],
                            columns=EFFECT_COLUMNS)


def _design(q, group_col, groups):
    t = q["months"].to_numpy(float)
    cols, names = [np.ones_like(t), t], ["Intercept", "months"]
    if group_col is not None:
        g = q[group_col].to_numpy()
        for lev in groups[:-1]:                      # reference = last level
            d = (g == lev).astype(float)
            cols += [d, d * t]
            names += [f"grp[{lev}]", f"months:grp[{lev}]"]
    return np.column_stack(cols), names


def _start_theta(s0, s1, s2, y0, y1, yy):
    """Starting relative Cholesky factor from per-subject OLS lines (subjects with >= 3 visits):
    covariance of their intercepts and slopes over the pooled within-subject residual variance."""
    det = s0 * s2 - s1 * s1
    ok = (s0 >= 3) & (det > 1e-9 * np.maximum(s0 * s2, 1e-12))
    if ok.sum() < 3:
        return np.array([1.0, 0.0, 0.1])
    a = (s2 * y0 - s1 * y1)[ok] / det[ok]
    b = (s0 * y1 - s1 * y0)[ok] / det[ok]
    rss = yy[ok] - a * y0[ok] - b * y1[ok]
    sigma2 = max(rss.sum() / (s0[ok] - 2).sum(), 1e-8)
    D = np.cov(np.vstack([a, b])) / sigma2 + np.diag([1e-6, 1e-6])
    try:
        L = np.linalg.cholesky(D)
    except np.linalg.LinAlgError:
        L = np.diag(np.sqrt(np.abs(np.diag(D))))
    return np.array([L[0, 0], L[1, 0], L[1, 1]])


def _fit_reml(subject_codes, t, X, y):
    """Exact profiled REML for y = X b + Z u + e, Z = [1, t] per subject, u ~ N(0, G), e ~ N(0, s2 I).

    Returns beta, cov_beta, G, s2, converged."""
    n_sub = int(subject_codes.max()) + 1
    n, p = X.shape
    Z = np.column_stack([np.ones_like(t), t])

    def by_subject(a):              # a: (n, k) row-wise products -> (n_sub, k) sums
        out = np.zeros((n_sub, a.shape[1]))
        np.add.at(out, subject_codes, a)
        return out

    ZtZ = by_subject(np.einsum("ni,nj->nij", Z, Z).reshape(n, 4)).reshape(n_sub, 2, 2)
    ZtX = by_subject(np.einsum("ni,nj->nij", Z, X).reshape(n, 2 * p)).reshape(n_sub, 2, p)
    Zty = by_subject(Z * y[:, None])
    XtX, Xty, yty = X.T @ X, X.T @ y, y @ y

    s0, s1, s2 = ZtZ[:, 0, 0], ZtZ[:, 0, 1], ZtZ[:, 1, 1]
    X0, X1 = np.ascontiguousarray(ZtX[:, 0]), np.ascontiguousarray(ZtX[:, 1])
    y0, y1 = Zty[:, 0], Zty[:, 1]

    def pieces(theta):
        # L = [[l1, 0], [l2, l3]] (relative Cholesky factor of G); all 2 x 2 algebra written out
        l1, l2, l3 = theta
        L = np.array([[l1, 0.0], [l2, l3]])
        m00 = 1.0 + l1 * l1 * s0 + 2 * l1 * l2 * s1 + l2 * l2 * s2        # M = I + L'Z'ZL
        m01 = l3 * (l1 * s1 + l2 * s2)
        m11 = 1.0 + l3 * l3 * s2
        det = m00 * m11 - m01 * m01
        B0, B1 = l1 * X0 + l2 * X1, l3 * X1                               # L'Z'X
        c0, c1 = l1 * y0 + l2 * y1, l3 * y1                               # L'Z'y
        i00, i01, i11 = (m11 / det)[:, None], (-m01 / det)[:, None], (m00 / det)[:, None]
        MB0, MB1 = i00 * B0 + i01 * B1, i01 * B0 + i11 * B1               # M^{-1} L'Z'X
        Mc0, Mc1 = i00[:, 0] * c0 + i01[:, 0] * c1, i01[:, 0] * c0 + i11[:, 0] * c1
        XVX = XtX - B0.T @ MB0 - B1.T @ MB1
        XVy = Xty - B0.T @ Mc0 - B1.T @ Mc1
        yVy = yty - float(c0 @ Mc0 + c1 @ Mc1)
        return L, np.log(det).sum(), XVX, XVy, yVy

    def deviance(theta):
        _, logdet, XVX, XVy, yVy = pieces(theta)
        sign, logdet_x = np.linalg.slogdet(XVX)
        beta = np.linalg.solve(XVX, XVy)
        r2 = yVy - beta @ XVy
        if sign <= 0 or r2 <= 0:
            return np.inf
        return logdet + logdet_x + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))

    theta0 = _start_theta(s0, s1, s2, y0, y1, by_subject(y[:, None] ** 2)[:, 0])
    # finite-difference step 1e-5: the deviance is O(n) (~1e6 at 20,000 subjects), so the default
    # 1e-8 step leaves gradients dominated by rounding and the line search fails near the optimum
    res = optimize.minimize(deviance, theta0, method="L-BFGS-B", bounds=[(0, None), (None, None), (0, None)],
                            options={"eps": 1e-5})
    if not res.success:                                   # retry with a derivative-free method
        res2 = optimize.minimize(deviance, res.x, method="Nelder-Mead",
                                 options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000})
        res = res2 if res2.fun <= res.fun else res
        res.x[[0, 2]] = np.abs(res.x[[0, 2]])
    L, _, XVX, XVy, yVy = pieces(res.x)
    beta = np.linalg.solve(XVX, XVy)
    s2 = (yVy - beta @ XVy) / (n - p)
    return beta, s2 * np.linalg.inv(XVX), s2 * (L @ L.T), float(s2), bool(res.success)


def _fit_statsmodels(q, X, names, y):
    import statsmodels.api as sm
    exog = pd.DataFrame(X, columns=names, index=q.index)
    model = sm.MixedLM(y, exog, groups=q["USUBJID"].to_numpy(), exog_re=exog[["Intercept", "months"]])
    with warnings.catch_warnings():                       # convergence is reported in the result
        warnings.simplefilter("ignore")
        res = model.fit(reml=True, method=["lbfgs", "powell"])
    fe = res.fe_params.to_numpy()
    cov = res.cov_params().loc[names, names].to_numpy()
    return fe, cov, np.asarray(res.cov_re), float(res.scale), bool(res.converged)


def fit_alsfrs_slopes(adqs, group_col=None, groups=None, paramcd="ALSFRST", response="AVAL",
                      engine="reml") -> SlopeFit:
    """Linear mixed model of ALSFRS-R on time with a random intercept and slope per subject.

    Model: ``response ~ months * group + (1 + months | USUBJID)``, months = ADY / 30.4375, fitted
    by REML with an unstructured 2 x 2 random-effects covariance.

    Parameters
    ----------
    adqs : DataFrame
        BDS rows (USUBJID, PARAMCD, ADY, AVAL or CHG[, group_col]); other PARAMCDs are ignored.
    group_col : str, optional
        Group column; None fits the pooled model and returns one slope labelled "All".
    groups : sequence of str, optional
        Group labels, first experimental, last reference (default: sorted levels). Rows in
        other groups are dropped.
    paramcd : str
        Parameter to model (items, domains or the total).
    response : {"AVAL", "CHG"}
        Score or change from baseline.
    engine : {"reml", "statsmodels"}
        Vectorised exact REML (default, fast) or statsmodels MixedLM (same model, slow at scale).

    Returns
    -------
    SlopeFit
        Per-group slopes (points/month) with SE and 95% CI, and the slope difference
        experimental - reference with its SE; ``effect_table()`` gives the treatment-effect row
        (a positive difference means slower decline on the experimental arm).
    """
    q = adqs[adqs["PARAMCD"] == paramcd].dropna(subset=[response, "ADY"])
    if group_col is not None:
        groups = list(groups) if groups is not None else sorted(q[group_col].dropna().unique())
        q = q[q[group_col].isin(groups)]
    q = q.assign(months=q["ADY"].to_numpy(float) / MONTH)
    X, names = _design(q, group_col, groups)
    y = q[response].to_numpy(float)
    codes = pd.factorize(q["USUBJID"])[0]
    if engine == "statsmodels":
        beta, cov, G, s2, ok = _fit_statsmodels(q, X, names, y)
    else:
        beta, cov, G, s2, ok = _fit_reml(codes, q["months"].to_numpy(float), X, y)
    params = pd.Series(beta, index=names)
    cov = pd.DataFrame(cov, index=names, columns=names)
    n_by = q.groupby(group_col)["USUBJID"].nunique() if group_col is not None else None
    rows = []
    for lev in (groups if group_col is not None else ["All"]):
        w = pd.Series(0.0, index=names)
        w["months"] = 1.0
        if group_col is not None and lev != groups[-1]:
            w[f"months:grp[{lev}]"] = 1.0
        b, se = float(w @ params), float(np.sqrt(w @ cov @ w))
        n_sub = int(n_by.get(lev, 0)) if n_by is not None else int(q["USUBJID"].nunique())
        rows.append({"group": lev, "n_subjects": n_sub, "slope": b, "se": se,
                     "ci_lower": b - Z975 * se, "ci_upper": b + Z975 * se})
    diff = diff_se = np.nan
    if group_col is not None and len(groups) >= 2:
        key = f"months:grp[{groups[0]}]"
        diff, diff_se = float(params[key]), float(np.sqrt(cov.loc[key, key]))
    return SlopeFit(pd.DataFrame(rows), diff, diff_se, int(q["USUBJID"].nunique()), len(q), params,
                    np.asarray(G), s2, engine, ok)
