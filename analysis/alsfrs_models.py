"""ALSFRS-R models: the linear mixed-model slope and the joint rank test of function and survival.

Both are pure: DataFrames in, result dataclasses out (each with ``effect_table()`` giving a row of
the treatment-effect table: method, estimate, ci_lower, ci_upper, statistic, p_value).

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


# --------------------------------------------------------------------------- mixed model
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


# --------------------------------------------------------------------------- joint rank
def _joint_counts(died, time, change, ref_died, ref_time, ref_change):
    """Wins and losses of each query patient against every patient of a reference set.

    Pair rules (see :func:`compute_joint_scores`); O((n + m) log m) with sorted searches."""
    died, time, change = np.asarray(died, bool), np.asarray(time, float), np.asarray(change, float)
    ref_died = np.asarray(ref_died, bool)
    ref_time, ref_change = np.asarray(ref_time, float), np.asarray(ref_change, float)
    td = np.sort(ref_time[ref_died])                                   # reference death times
    fa = np.sort(ref_time[~ref_died])                                  # reference follow-up (alive)
    ca = np.sort(ref_change[~ref_died & ~np.isnan(ref_change)])        # reference survivor changes
    wins, losses = np.zeros(len(died)), np.zeros(len(died))
    d, a = died, ~died
    # query died at t: beats earlier deaths; loses to later deaths and to survivors followed >= t
    t = time[d]
    wins[d] = np.searchsorted(td, t, side="left")
    losses[d] = (len(td) - np.searchsorted(td, t, side="right")) + (len(fa) - np.searchsorted(fa, t, side="left"))
    # query alive, followed to f: beats deaths at <= f; survivors compared on change (NaN = tie)
    f, c = time[a], change[a]
    w = np.searchsorted(td, f, side="right").astype(float)
    known = ~np.isnan(c)
    w[known] += np.searchsorted(ca, c[known], side="left")
    lo = np.zeros(len(f))
    lo[known] = len(ca) - np.searchsorted(ca, c[known], side="right")
    wins[a], losses[a] = w, lo
    return wins, losses


def compute_joint_scores(died, time, change) -> np.ndarray:
    """Finkelstein-Schoenfeld score of each patient: wins minus losses over all other patients.

    Pair rules (i vs j):

    1. both died: the earlier death is worse (same day: tie);
    2. one died at t, the other is alive with follow-up f: the survivor is better if f >= t,
       otherwise (censored before that death) the pair is a tie;
    3. both alive: the larger change in ALSFRS-R from baseline (less decline) is better; equal
       or missing change (no post-baseline assessment): tie.

    Parameters
    ----------
    died : array of bool
    time : array of float
        Day of death for those who died, last day known alive (capped at the landmark) otherwise.
    change : array of float
        Functional outcome for survivors (NaN allowed; ignored for deaths).

    Returns
    -------
    ndarray
        Scores (integers as floats), summing to 0. Computed in O(N log N) without forming pairs.
    """
    w, l = _joint_counts(died, time, change, died, time, change)
    return w - l


@dataclass
class JointRankResult:
    """Result of :func:`compute_joint_rank`.

    ``scores``: USUBJID, group, died, time, change, score. ``win_probability``: P(a random
    experimental patient does better than a random reference patient) + P(tie) / 2 (0.5 = no
    difference; the treatment-effect estimate). ``mean_score_difference``: mean score
    experimental - reference. ``statistic``: Finkelstein-Schoenfeld z (> 0 favours experimental).
    """
    scores: pd.DataFrame
    statistic: float
    p_value: float
    win_probability: float
    win_ratio: float
    mean_score_difference: float
    n_excluded: int = 0
    ci_lower: float = np.nan
    ci_upper: float = np.nan

    def effect_table(self) -> pd.DataFrame:
        return pd.DataFrame([("joint_rank", self.win_probability, self.ci_lower, self.ci_upper, self.statistic,
                              self.p_value)], columns=EFFECT_COLUMNS)


def _functional_change(adqs, paramcd, landmark_day):
    q = adqs[(adqs["PARAMCD"] == paramcd) & (adqs["ADY"] > 0) & (adqs["ADY"] <= landmark_day)]
    if "ABLFL" in q.columns:
        q = q[q["ABLFL"].ne("Y")]
    chg = q["CHG"] if "CHG" in q.columns else pd.Series(np.nan, index=q.index)
    if "BASE" in q.columns:
        chg = chg.fillna(q["AVAL"] - q["BASE"])
    q = q.assign(_chg=chg).dropna(subset=["_chg"]).sort_values(["USUBJID", "ADY"])
    return q.groupby("USUBJID")["_chg"].last()


def compute_joint_rank(adsl, adqs, adtte, group_col, groups, landmark_day=640, paramcd="ALSFRST",
                       tte_paramcd="OS") -> JointRankResult:
    """Joint rank test of function and survival (CAFS; Berry et al. 2013, Finkelstein-Schoenfeld 1999).

    Every pair of patients is compared by the rules of :func:`compute_joint_scores`: on survival
    when either died by ``landmark_day`` (deaths after it count as alive at the landmark),
    otherwise on the functional outcome, defined for survivors as the change from baseline in
    ALSFRS-R (``paramcd``) at their last assessment after baseline up to the landmark (CHG, or
    AVAL - BASE). A survivor with no such assessment ties with every other survivor. A patient's
    score U is wins minus losses; the Finkelstein-Schoenfeld statistic is T = sum of U over the
    experimental arm, with permutation variance n1 n2 / (N (N - 1)) * sum(U^2), z = T / sqrt(Var),
    two-sided normal p-value.

    Parameters
    ----------
    adsl : DataFrame or None
        Population (USUBJID and ``group_col``); None takes the subjects of ``adtte``.
    adqs : DataFrame
        BDS (USUBJID, PARAMCD, ADY, CHG and/or AVAL, BASE, ABLFL).
    adtte : DataFrame
        Time to death: USUBJID, AVAL (days from randomisation), CNSR (0 = death)[, PARAMCD: rows
        with ``tte_paramcd`` are used when the column is present].
    group_col, groups : str, sequence
        Group column and labels (first experimental, last reference).
    landmark_day : float
        Horizon for both components (the primary landmark, 640 days in MIROCALS).

    Returns
    -------
    JointRankResult
        ``effect_table()`` row method="joint_rank": estimate = win probability of the
        experimental arm (0.5 = no difference, > 0.5 favours experimental) with its 95% CI
        (:func:`compute_win_probability_ci`), statistic z,
        p_value. Subjects without a survival record are excluded (``n_excluded``).
    """
    exp_label, ref_label = groups[0], groups[-1]
    tte = adtte
    if "PARAMCD" in tte.columns and (tte["PARAMCD"] == tte_paramcd).any():
        tte = tte[tte["PARAMCD"] == tte_paramcd]
    tte = tte.drop_duplicates("USUBJID").set_index("USUBJID")
    if adsl is not None and group_col in adsl.columns:
        pop = adsl.drop_duplicates("USUBJID").set_index("USUBJID")[group_col]
    else:
        pop = tte[group_col]
    pop = pop[pop.isin([exp_label, ref_label])]
    ids = pop.index[pop.index.isin(tte.index)]
    n_excluded = len(pop) - len(ids)
    grp, t = pop.loc[ids].to_numpy(), tte.loc[ids]
    died = ((t["CNSR"] == 0) & (t["AVAL"] <= landmark_day)).to_numpy()
    time = np.minimum(t["AVAL"].to_numpy(float), landmark_day)
    change = _functional_change(adqs, paramcd, landmark_day).reindex(ids).to_numpy(float)
    change[died] = np.nan
    u = compute_joint_scores(died, time, change)
    trt = grp == exp_label
    n1, n2, n = int(trt.sum()), int((~trt).sum()), len(u)
    t_stat = float(u[trt].sum())
    var = n1 * n2 / (n * (n - 1)) * float(np.sum(u ** 2)) if n > 1 else 0.0
    z = t_stat / np.sqrt(var) if var > 0 else np.nan
    p = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
    w, l = _joint_counts(died[trt], time[trt], change[trt], died[~trt], time[~trt], change[~trt])
    wins, losses = float(w.sum()), float(l.sum())
    pairs = n1 * n2
    win_p = (wins + 0.5 * (pairs - wins - losses)) / pairs if pairs else np.nan
    ci = (np.nan, np.nan)
    if n1 > 1 and n2 > 1:
        rw, rl = _joint_counts(died[~trt], time[~trt], change[~trt], died[trt], time[trt], change[trt])
        ci = compute_win_probability_ci((w + 0.5 * (n2 - w - l)) / n2, (rl + 0.5 * (n1 - rw - rl)) / n1)
    scores = pd.DataFrame({"USUBJID": ids, "group": grp, "died": died, "time": time, "change": change,
                           "score": u})
    msd = float(u[trt].mean() - u[~trt].mean()) if n1 and n2 else np.nan
    return JointRankResult(scores, float(z), p, float(win_p), wins / losses if losses else np.nan, msd,
                           n_excluded, *ci)


def compute_win_probability_ci(v_exp, v_ref, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% CI of a win probability (a Mann-Whitney-type AUC) from its structural components
    (DeLong, DeLong & Clarke-Pearson 1988): ``v_exp[i]`` is experimental patient i's share of
    wins (+ half the ties) against the reference arm, ``v_ref[j]`` the experimental arm's share
    against reference patient j. var = s2(v_exp) / n1 + s2(v_ref) / n2; the interval is Wald on
    the logit scale so that it stays inside (0, 1)."""
    v_exp, v_ref = np.asarray(v_exp, float), np.asarray(v_ref, float)
    theta = float(v_exp.mean())
    var = v_exp.var(ddof=1) / len(v_exp) + v_ref.var(ddof=1) / len(v_ref)
    if not 0 < theta < 1 or not var > 0:
        return np.nan, np.nan
    logit, se = np.log(theta / (1 - theta)), np.sqrt(var) / (theta * (1 - theta))
    lo, hi = logit - z * se, logit + z * se
    return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))
