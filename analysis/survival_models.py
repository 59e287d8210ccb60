"""Survival comparisons (unblinded only): log-rank (unstratified and stratified), Cox models
(unadjusted, stratified by the randomisation strata, covariate-adjusted), landmark-survival and
RMST differences, and subgroup hazard ratios with likelihood-ratio interaction tests.

Arms: ``groups[0]`` is experimental, ``groups[-1]`` the reference; hazard ratios and differences
are experimental vs reference. Cox models use Efron's ties (as R ``coxph`` and lifelines), fitted
here by a vectorised Newton-Raphson (:func:`fit_cox`) that is checked against R and an independent
likelihood maximisation in the tests.
"""
from __future__ import annotations

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
        et, pos = np.unique(t[e == 1], return_inverse=True)          # distinct event times
        ts, ts1 = np.sort(t), np.sort(t[g == 1])
        n = len(ts) - np.searchsorted(ts, et, side="left")           # at risk: t >= event time
        n1 = len(ts1) - np.searchsorted(ts1, et, side="left")
        d = np.bincount(pos, minlength=len(et))
        d1 = np.bincount(pos, weights=g[e == 1], minlength=len(et))
        o_e += float(np.sum(d1 - d * n1 / n))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
        var += float(np.sum(np.where(n > 1, v, 0.0)))
    if var <= 0:
        return LogRankResult(o_e, var, np.nan, np.nan)
    chi2 = o_e ** 2 / var
    return LogRankResult(o_e, var, chi2, float(stats.chi2.sf(chi2, 1)))


def compute_logrank_global(time, event, group) -> tuple[float, int, float]:
    """Global k-sample log-rank test (as R ``survdiff``): chi-square on k - 1 df from the observed
    minus expected deaths per group and their hypergeometric covariance, and its p-value.
    Returns (chi2, df, p); NaN chi2 and p when the covariance is singular."""
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=int)
    labels, g = np.unique(np.asarray(group), return_inverse=True)
    k = len(labels)
    et = np.unique(time[event == 1])
    o_e, cov = np.zeros(k), np.zeros((k, k))
    for t in et:
        at_risk = time >= t
        n_g = np.bincount(g[at_risk], minlength=k).astype(float)
        d_g = np.bincount(g[(time == t) & (event == 1)], minlength=k).astype(float)
        n, d = n_g.sum(), d_g.sum()
        o_e += d_g - d * n_g / n
        if n > 1:
            p = n_g / n
            cov += d * (n - d) / (n - 1) * (np.diag(p) - np.outer(p, p))
    df = k - 1
    try:
        chi2 = float(o_e[:df] @ np.linalg.solve(cov[:df, :df], o_e[:df]))
    except np.linalg.LinAlgError:
        return np.nan, df, np.nan
    return chi2, df, float(stats.chi2.sf(chi2, df))


@dataclass
class CoxFit:
    """A Cox proportional-hazards fit: coefficients, standard errors (inverse observed
    information), maximised and null log partial likelihoods (Efron ties)."""
    params: pd.Series
    se: pd.Series
    log_likelihood_: float
    log_likelihood_null: float
    n: int
    n_events: int
    iterations: int

    @property
    def summary(self) -> pd.DataFrame:
        """One row per covariate: coef, se(coef), exp(coef), z, p (the lifelines names)."""
        z = self.params / self.se
        return pd.DataFrame({"coef": self.params, "se(coef)": self.se, "exp(coef)": np.exp(self.params),
                             "z": z, "p": 2 * stats.norm.sf(np.abs(z))})


def _efron_stratum(t, e, x, beta):
    """Efron log partial likelihood, score and observed information of one stratum.

    Vectorised: risk-set sums S0, S1, S2 are reverse cumulative sums over the subjects sorted by
    time; the tied-death sums A0, A1, A2 are per distinct event time; each event time with d
    deaths contributes d terms with weights phi = 0, 1/d, ..., (d-1)/d (Efron 1977)."""
    order = np.argsort(t, kind="stable")
    t, e, x = t[order], e[order], x[order]
    eta = x @ beta
    shift = eta.max() if len(eta) else 0.0
    r = np.exp(eta - shift)
    rx = r[:, None] * x
    rxx = rx[:, :, None] * x[:, None, :]
    c0 = np.cumsum(r[::-1])[::-1]
    c1 = np.cumsum(rx[::-1], axis=0)[::-1]
    c2 = np.cumsum(rxx[::-1], axis=0)[::-1]
    ev = e == 1
    et, pos = np.unique(t[ev], return_inverse=True)
    first = np.searchsorted(t, et, side="left")               # risk set at et: index >= first
    k = len(et)
    d = np.bincount(pos, minlength=k)
    a0 = np.bincount(pos, weights=r[ev], minlength=k)
    a1 = np.zeros((k, x.shape[1]))
    a2 = np.zeros((k, x.shape[1], x.shape[1]))
    np.add.at(a1, pos, rx[ev])
    np.add.at(a2, pos, rxx[ev])
    j = np.repeat(np.arange(k), d)                              # one row per death
    phi = (np.arange(len(j)) - np.repeat(np.cumsum(d) - d, d)) / d[j]
    den = c0[first][j] - phi * a0[j]
    m1 = (c1[first][j] - phi[:, None] * a1[j]) / den[:, None]
    m2 = (c2[first][j] - phi[:, None, None] * a2[j]) / den[:, None, None]
    ll = float(eta[ev].sum() - np.sum(np.log(den) + shift))
    score = x[ev].sum(axis=0) - m1.sum(axis=0)
    info = m2.sum(axis=0) - np.einsum("ij,ik->jk", m1, m1)
    return ll, score, info


def fit_cox(data: pd.DataFrame, duration_col="AVAL", event_col="EVENT", strata=None, max_iter=50,
            tol=1e-10) -> CoxFit:
    """Cox model with Efron's ties (as R ``coxph`` and lifelines) by Newton-Raphson with step
    halving; every column of ``data`` other than duration, event and strata is a covariate.

    Parameters
    ----------
    strata : list of str, optional
        Columns whose combined levels define strata (separate baseline hazards).

    Raises
    ------
    ValueError
        No events, a singular information matrix (e.g. a covariate without variation) or no
        convergence: the model is not estimable.
    """
    strata = list(strata or [])
    cov = [c for c in data.columns if c not in (duration_col, event_col, *strata)]
    t = data[duration_col].to_numpy(dtype=float)
    e = data[event_col].to_numpy(dtype=int)
    x = data[cov].to_numpy(dtype=float)
    if np.isnan(x).any() or np.isnan(t).any():
        raise ValueError("missing values in the Cox model data")
    if e.sum() == 0:
        raise ValueError("no events: the Cox model is not estimable")
    labels = _strata_labels(data, strata) if strata else np.zeros(len(t))
    groups = [np.flatnonzero(labels == s) for s in pd.unique(labels)]

    def evaluate(beta):
        parts = [_efron_stratum(t[i], e[i], x[i], beta) for i in groups]
        return (sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))

    beta = np.zeros(len(cov))
    ll, score, info = evaluate(beta)
    ll_null = ll
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError as exc:
            raise ValueError("singular information matrix: the Cox model is not estimable") from exc
        new = beta + step
        ll_new, s_new, i_new = evaluate(new)
        halvings = 0
        while not np.isfinite(ll_new) or ll_new < ll - 1e-12:
            step, halvings = step / 2, halvings + 1
            if halvings > 30:
                raise ValueError("the Cox model did not converge")
            new = beta + step
            ll_new, s_new, i_new = evaluate(new)
        converged = abs(ll_new - ll) <= tol * max(1.0, abs(ll))
        beta, ll, score, info = new, ll_new, s_new, i_new
        if converged:
            break
    else:
        raise ValueError("the Cox model did not converge")
    try:
        cov_matrix = np.linalg.inv(info)
    except np.linalg.LinAlgError as exc:
        raise ValueError("singular information matrix: the Cox model is not estimable") from exc
    se = np.sqrt(np.diag(cov_matrix))
    if not np.all(np.isfinite(se)) or np.any(np.abs(beta) > 30):
        raise ValueError("the Cox model is not estimable (infinite coefficient)")
    return CoxFit(pd.Series(beta, index=cov), pd.Series(se, index=cov), float(ll), float(ll_null), len(t),
                  int(e.sum()), it)


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
    """One label per row joining the stratum columns' values ("UK/Bulbar")."""
    cols = [sub[c].astype(str) for c in strata_cols]
    out = cols[0]
    for c in cols[1:]:
        out = out + "/" + c
    return out.to_numpy()


def _wald_row(name, est, se, n, log=False):
    z = est / se if se > 0 else np.nan
    p = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
    lo, hi = est - Z975 * se, est + Z975 * se
    if log:                       # a near-separated fit (tiny subgroup) can push a limit past 1e308
        with np.errstate(over="ignore"):
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


OVERALL = "All participants"


def summarize_subgroups(df, group_col, subgroups, groups, time_col="AVAL", censor_col="CNSR",
                        overall: bool = False) -> pd.DataFrame:
    """Cox HR (95% CI) of experimental vs reference within each level of each subgroup factor,
    and one likelihood-ratio interaction p-value per factor. With ``overall`` a first row (factor
    and level "All participants") holds the unadjusted HR of everyone, the reference line of a
    forest plot (the ``cox`` row of the treatment effects).

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
    rows = [_subgroup_row(OVERALL, OVERALL, X, np.nan)] if overall else []
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
        rows += [_subgroup_row(factor, level, Xf[np.asarray(f == level)], p_int) for level in levels]
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)


def _subgroup_row(factor, level, lx: pd.DataFrame, p_int: float) -> dict:
    """Unadjusted Cox HR of TRT in the rows ``lx`` (NaN when fewer than 2 events or one arm)."""
    hr = lo = hi = np.nan
    if lx["EVENT"].sum() >= 2 and lx["TRT"].nunique() == 2:
        try:
            s = fit_cox(lx).summary.loc["TRT"]
            _, hr, lo, hi, _, _, _ = _wald_row("", s["coef"], s["se(coef)"], len(lx), log=True)
        except Exception:
            pass
    return {"factor": factor, "level": level, "n": len(lx), "events_exp": int(lx.loc[lx["TRT"] == 1, "EVENT"].sum()),
            "events_ref": int(lx.loc[lx["TRT"] == 0, "EVENT"].sum()), "hr": hr, "ci_lower": lo, "ci_upper": hi,
            "p_interaction": p_int}
