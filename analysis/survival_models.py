"""Survival comparisons (unblinded only): log-rank (unstratified and stratified), Cox models
(unadjusted, stratified by the randomisation strata, covariate-adjusted), landmark-survival and
RMST differences, and subgroup hazard ratios with likelihood-ratio interaction tests.

Arms: ``groups[0]`` is experimental, ``groups[-1]`` the reference; hazard ratios and differences
are experimental vs reference. Cox models use Efron's ties (as R ``coxph`` and lifelines).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.survival import Z975, check_tte, compute_rmst, fit_km

EFFECT_COLUMNS = ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value", "n"]
SUBGROUP_COLUMNS = ["factor", "level", "n", "events_exp", "events_ref", "hr", "ci_lower", "ci_upper",
                    "p_interaction"]


@dataclass
class LogRankResult:
    """Observed minus expected events in the experimental arm, its variance, chi-square (1 df), p."""
    o_minus_e: float
    variance: float
    chi2: float
    p_value: float

    def __iter__(self):  # unpacks as (o_e, var, chi2, p)
        return iter((self.o_minus_e, self.variance, self.chi2, self.p_value))


def compute_logrank(time, event, group, strata=None) -> LogRankResult:
    """Log-rank test of group 1 vs group 0 (Mantel-Haenszel form, as R ``survdiff``).

    With ``strata``, O - E and the hypergeometric variances are summed over strata (the
    stratified log-rank test, R ``survdiff(... + strata(s))``).

    Parameters
    ----------
    time : array-like of float
    event : array-like of {0, 1}
        1 = event.
    group : array-like of {0, 1} or bool
        1 = experimental.
    strata : array-like, optional
        Stratum label per subject.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    group = np.asarray(group, dtype=int)
    strata = np.zeros(len(time), dtype=int) if strata is None else pd.factorize(np.asarray(strata))[0]
    o_e = var = 0.0
    for s in np.unique(strata):
        m = strata == s
        t, e, g = time[m], event[m], group[m]
        et = np.unique(t[e == 1])
        n = (t[None, :] >= et[:, None]).sum(axis=1)
        n1 = ((t[None, :] >= et[:, None]) & (g[None, :] == 1)).sum(axis=1)
        dmask = (t[None, :] == et[:, None]) & (e[None, :] == 1)
        d, d1 = dmask.sum(axis=1), (dmask & (g[None, :] == 1)).sum(axis=1)
        o_e += float(np.sum(d1 - d * n1 / n))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
        var += float(np.sum(np.where(n > 1, v, 0.0)))
    if var <= 0:
        return LogRankResult(o_e, var, np.nan, np.nan)
    chi2 = o_e ** 2 / var
    return LogRankResult(o_e, var, chi2, float(stats.chi2.sf(chi2, 1)))


def fit_cox(data: pd.DataFrame, duration_col="AVAL", event_col="EVENT", strata=None):
    """Fit a lifelines ``CoxPHFitter`` (Efron ties, no penalty) on ``data`` (all other columns
    are covariates); convergence warnings are silenced, failures raise."""
    from lifelines import CoxPHFitter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter().fit(data, duration_col=duration_col, event_col=event_col, strata=strata)


def _design(df, group_col, groups, covariates=(), time_col="AVAL", censor_col="CNSR"):
    """(X, rows): AVAL, EVENT, TRT (1 = groups[0]) and dummy-coded covariates for the two arms."""
    if group_col is None or groups is None or len(groups) < 2:
        raise ValueError("treatment comparisons need group_col and groups=(experimental, ..., reference)")
    check_tte(df, [time_col, censor_col, group_col, *covariates])
    exp_label, ref_label = groups[0], groups[-1]
    sub = df[df[group_col].isin([exp_label, ref_label])].reset_index(drop=True)
    X = pd.DataFrame({"AVAL": sub[time_col].astype(float),
                      "EVENT": (sub[censor_col] == 0).astype(int),
                      "TRT": (sub[group_col] == exp_label).astype(int)})
    for c in covariates:
        col = sub[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            X[c] = col.astype(float)
        else:
            d = pd.get_dummies(col, prefix=c, drop_first=True, dtype=float)
            d[col.isna().to_numpy()] = np.nan
            X = pd.concat([X, d], axis=1)
    return X, sub


def _strata_labels(sub, strata_cols):
    return sub[list(strata_cols)].astype(str).agg("/".join, axis=1).to_numpy()


def _wald_row(name, est, se, n, log=False):
    z = est / se if se > 0 else np.nan
    p = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
    lo, hi = est - Z975 * se, est + Z975 * se
    if log:
        est, lo, hi = np.exp(est), np.exp(lo), np.exp(hi)
    return (name, float(est), float(lo), float(hi), float(z), p, int(n))


def compute_treatment_effects(df, group_col, strata_cols, covariates, landmark_day, groups,
                              time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """Treatment effect of ``groups[0]`` vs ``groups[-1]`` by several methods.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject: time, censor, group, strata and covariate columns.
    group_col : str
        Arm column (e.g. "ARM"); required (unblinded analyses only).
    strata_cols : sequence of str
        Randomisation strata (e.g. COUNTRY, ONSET); empty for none.
    covariates : sequence of str
        Adjustment covariates; non-numeric ones are dummy-coded (first level = reference).
        Rows with a missing covariate are dropped from cox_adjusted only (see its ``n``).
    landmark_day : float
    groups : tuple of str
        (experimental, ..., reference).

    Returns
    -------
    pandas.DataFrame
        method, estimate, ci_lower, ci_upper, statistic, p_value, n (subjects used). Methods:
        logrank and logrank_stratified (statistic = chi-square on 1 df, no estimate);
        cox, cox_stratified, cox_adjusted (estimate = HR, 95% Wald CI, statistic = Wald z);
        landmark_difference (S_exp - S_ref at the landmark, Greenwood SEs, Wald CI);
        rmst_difference (RMST_exp - RMST_ref to the landmark, days, Klein-Moeschberger SEs).
    """
    X, sub = _design(df, group_col, groups, time_col=time_col, censor_col=censor_col)
    n = len(X)
    rows = []
    lr = compute_logrank(X["AVAL"], X["EVENT"], X["TRT"])
    rows.append(("logrank", np.nan, np.nan, np.nan, lr.chi2, lr.p_value, n))
    strata = _strata_labels(sub, strata_cols) if strata_cols else None
    if strata_cols:
        lr = compute_logrank(X["AVAL"], X["EVENT"], X["TRT"], strata)
        rows.append(("logrank_stratified", np.nan, np.nan, np.nan, lr.chi2, lr.p_value, n))

    def cox_row(name, data, strata=None):
        try:
            s = fit_cox(data, strata=strata).summary.loc["TRT"]
            rows.append(_wald_row(name, s["coef"], s["se(coef)"], len(data), log=True))
        except Exception:  # no events, no variation: report the row as not estimable
            rows.append((name, np.nan, np.nan, np.nan, np.nan, np.nan, len(data)))
    cox_row("cox", X)
    if strata_cols:
        cox_row("cox_stratified", X.assign(STRATUM=strata), strata=["STRATUM"])
    if covariates:
        Xa, _ = _design(df, group_col, groups, covariates, time_col, censor_col)
        cox_row("cox_adjusted", Xa.dropna().reset_index(drop=True))
    kms = [fit_km(X.loc[X["TRT"] == k, "AVAL"], X.loc[X["TRT"] == k, "EVENT"]) for k in (1, 0)]
    (s1, g1), (s0, g0) = [km.at([landmark_day]) for km in kms]
    se = float(np.sqrt(s1[0] ** 2 * g1[0] + s0[0] ** 2 * g0[0]))
    rows.append(_wald_row("landmark_difference", float(s1[0] - s0[0]), se, n))
    (r1, se1), (r0, se0) = [compute_rmst(km, landmark_day) for km in kms]
    rows.append(_wald_row("rmst_difference", r1 - r0, float(np.hypot(se1, se0)), n))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _levels(col: pd.Series) -> list:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [c for c in col.cat.categories if (col == c).any()]
    return sorted(col.dropna().unique(), key=str)


def summarize_subgroups(df, group_col, subgroups, groups, time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """Cox HR (95% CI) of experimental vs reference within each level of each subgroup factor,
    and one likelihood-ratio interaction p-value per factor.

    The interaction test compares Cox models with arm + factor and with arm + factor + arm x
    factor (chi-square on levels - 1 df), on the subjects with the factor known. A level whose
    HR is not estimable (fewer than 2 events or one arm only) gets NaN.

    Returns
    -------
    pandas.DataFrame
        factor, level, n, events_exp, events_ref, hr, ci_lower, ci_upper, p_interaction.
    """
    X, sub = _design(df, group_col, groups, time_col=time_col, censor_col=censor_col)
    check_tte(sub, subgroups)
    rows = []
    for factor in subgroups:
        col = sub[factor]
        ok = col.notna().to_numpy()
        levels = _levels(col)
        Xf = X[ok].reset_index(drop=True)
        f = pd.Categorical(col[ok].to_numpy(), categories=levels)
        dummies = pd.get_dummies(f, prefix="F", drop_first=True, dtype=float)
        inter = dummies.mul(Xf["TRT"], axis=0).add_prefix("TRTx")
        p_int = np.nan
        if dummies.shape[1]:
            try:
                ll0 = fit_cox(pd.concat([Xf, dummies], axis=1)).log_likelihood_
                ll1 = fit_cox(pd.concat([Xf, dummies, inter], axis=1)).log_likelihood_
                p_int = float(stats.chi2.sf(max(2 * (ll1 - ll0), 0.0), dummies.shape[1]))
            except Exception:
                p_int = np.nan
        for level in levels:
            lx = Xf[np.asarray(f == level)]
            hr = lo = hi = np.nan
            if lx["EVENT"].sum() >= 2 and lx["TRT"].nunique() == 2:
                try:
                    s = fit_cox(lx).summary.loc["TRT"]
                    _, hr, lo, hi, _, _, _ = _wald_row("", s["coef"], s["se(coef)"], len(lx), log=True)
                except Exception:
                    pass
            rows.append({"factor": factor, "level": level, "n": len(lx),
                         "events_exp": int(lx.loc[lx["TRT"] == 1, "EVENT"].sum()),
                         "events_ref": int(lx.loc[lx["TRT"] == 0, "EVENT"].sum()),
                         "hr": hr, "ci_lower": lo, "ci_upper": hi, "p_interaction": p_int})
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)
