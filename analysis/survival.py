"""Survival analyses: Kaplan-Meier with log-log CIs, numbers at risk, medians, landmark survival,
RMST, log-rank (unstratified and stratified), Cox models, subgroup HRs with interaction tests.

Input: an ADTTE-like frame for one PARAMCD (AVAL days, CNSR 0 = event, 1 = censored) with ADSL
columns merged. ``group_col=None`` pools everyone into the group "All".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

Z975 = stats.norm.ppf(0.975)


@dataclass
class KMFit:
    """A Kaplan-Meier estimate at its distinct event/censoring times."""
    time: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    survival: np.ndarray
    greenwood: np.ndarray        # sum d / (n (n - d)) up to each time

    def at(self, t) -> tuple[np.ndarray, np.ndarray]:
        """(S(t), Greenwood sum at t) for times t (right-continuous step function)."""
        idx = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        s = np.where(idx >= 0, self.survival[np.maximum(idx, 0)], 1.0)
        g = np.where(idx >= 0, self.greenwood[np.maximum(idx, 0)], 0.0)
        return s, g


def fit_km(time, event) -> KMFit:
    """Product-limit estimate with Greenwood's variance terms."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    ut = np.unique(time)
    pos = np.searchsorted(ut, time)
    d = np.bincount(pos, weights=event, minlength=len(ut))
    n = len(time) - np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(ut)))[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.cumprod(1 - d / n)
        g = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf * (d > 0)))
    return KMFit(ut, n, d, s, g)


def compute_loglog_ci(s, greenwood, z: float = Z975) -> tuple[np.ndarray, np.ndarray]:
    """95% CI with the log(-log S) transform (Kalbfleisch-Prentice; R conf.type='log-log')."""
    s = np.asarray(s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(greenwood) / np.abs(np.log(s))
        lo = s ** np.exp(z * se)
        hi = s ** np.exp(-z * se)
    ok = (s > 0) & (s < 1)
    return np.where(ok, lo, np.where(s >= 1, 1.0, np.nan)), np.where(ok, hi, np.where(s >= 1, 1.0, np.nan))


def _groups(df, group_col, groups=None):
    if group_col is None:
        return [("All", df)]
    levels = list(groups) if groups else sorted(df[group_col].dropna().unique())
    return [(g, df[df[group_col] == g]) for g in levels]


def _event(df, censor_col="CNSR"):
    return (df[censor_col] == 0).astype(int).to_numpy()


def summarize_at_risk(df, group_col=None, times=(0, 80, 160, 240, 320, 400, 480, 560, 640), groups=None,
                      time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """Number at risk at each time (AVAL >= t) and cumulative events / censored up to t."""
    rows = []
    for g, sub in _groups(df, group_col, groups):
        t, e = sub[time_col].to_numpy(float), _event(sub, censor_col)
        for tt in times:
            rows.append({"group": g, "time": tt, "n_at_risk": int((t >= tt).sum()),
                         "n_events": int(((t <= tt) & (e == 1)).sum()),
                         "n_censored": int(((t <= tt) & (e == 0)).sum())})
    return pd.DataFrame(rows, columns=["group", "time", "n_at_risk", "n_events", "n_censored"])


def summarize_km(df, group_col=None, times=None, groups=None, time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """KM survival with 95% log-log CI at ``times`` (default: 0 and every distinct event time)."""
    frames = []
    for g, sub in _groups(df, group_col, groups):
        t, e = sub[time_col].to_numpy(float), _event(sub, censor_col)
        km = fit_km(t, e)
        tt = np.asarray(times, dtype=float) if times is not None else np.concatenate([[0.0], np.unique(t[e == 1])])
        s, gw = km.at(tt)
        lo, hi = compute_loglog_ci(s, gw)
        risk = summarize_at_risk(sub, None, tt, time_col=time_col, censor_col=censor_col)
        frames.append(pd.DataFrame({"group": g, "time": tt, "n_at_risk": risk["n_at_risk"],
                                    "n_events": risk["n_events"], "n_censored": risk["n_censored"],
                                    "survival": s, "ci_lower": lo, "ci_upper": hi}))
    out = pd.concat(frames, ignore_index=True)
    if times is not None and all(float(x).is_integer() for x in times):
        out["time"] = out["time"].astype(int)
    return out


def _median_with_ci(km: KMFit) -> tuple[float, float, float]:
    """Median and its 95% CI as R survival: first time the curve / its CI limits reach <= 0.5."""
    lo, hi = compute_loglog_ci(km.survival, km.greenwood)

    def first(curve):
        hit = np.nonzero(curve <= 0.5)[0]
        return float(km.time[hit[0]]) if len(hit) else np.nan
    return first(km.survival), first(lo), first(hi)


def compute_rmst(km: KMFit, tau: float) -> tuple[float, float]:
    """Restricted mean survival to ``tau`` (area under the KM step function) and its SE
    (Klein & Moeschberger: var = sum over event times t_i <= tau of A_i^2 d_i / (n_i (n_i - d_i)),
    A_i = area under the curve from t_i to tau)."""
    keep = km.time <= tau
    t = np.concatenate([[0.0], km.time[keep], [tau]])
    s = np.concatenate([[1.0], km.survival[keep]])
    area = np.diff(t) * s
    rmst = float(area.sum())
    ev = keep & (km.n_events > 0)
    ti = km.time[ev]
    tail = np.array([np.sum(area[np.searchsorted(t, x, side="right") - 1:]) for x in ti])
    n, d = km.n_at_risk[ev], km.n_events[ev]
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.nansum(np.where(n > d, tail ** 2 * d / (n * (n - d)), 0.0))
    return rmst, float(np.sqrt(var))


def summarize_survival(df, group_col=None, landmark_day=640, groups=None, time_col="AVAL",
                       censor_col="CNSR") -> pd.DataFrame:
    """n, events, median (95% CI), survival at the landmark (95% log-log CI) and RMST per group."""
    parts = _groups(df, group_col, groups)
    if group_col is not None:
        parts.append(("Total", df))
    rows = []
    for g, sub in parts:
        km = fit_km(sub[time_col].to_numpy(float), _event(sub, censor_col))
        med, mlo, mhi = _median_with_ci(km)
        s, gw = km.at([landmark_day])
        lo, hi = compute_loglog_ci(s, gw)
        rmst, rmst_se = compute_rmst(km, landmark_day)
        rows.append({"group": g, "n": len(sub), "events": int(_event(sub, censor_col).sum()), "median": med,
                     "median_ci_lower": mlo, "median_ci_upper": mhi, "landmark_day": landmark_day,
                     "surv_landmark": float(s[0]), "surv_landmark_ci_lower": float(lo[0]),
                     "surv_landmark_ci_upper": float(hi[0]), "rmst": rmst, "rmst_se": rmst_se})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- comparisons
def compute_logrank(time, event, group, strata=None) -> tuple[float, float, float, float]:
    """Log-rank test of group 1 vs 0 (stratified when ``strata`` is given: per-stratum O-E and
    hypergeometric variances are summed). Returns (O-E, variance, chi-square, p)."""
    time, event, group = np.asarray(time, float), np.asarray(event, int), np.asarray(group, int)
    strata = np.zeros(len(time), dtype=int) if strata is None else pd.factorize(np.asarray(strata))[0]
    o_e = var = 0.0
    for s in np.unique(strata):
        m = strata == s
        t, e, g = time[m], event[m], group[m]
        for tt in np.unique(t[e == 1]):
            at = t >= tt
            n, n1 = at.sum(), (at & (g == 1)).sum()
            dd = ((t == tt) & (e == 1))
            d, d1 = dd.sum(), (dd & (g == 1)).sum()
            o_e += d1 - d * n1 / n
            if n > 1:
                var += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    chi2 = o_e ** 2 / var if var > 0 else np.nan
    return o_e, var, chi2, float(stats.chi2.sf(chi2, 1)) if var > 0 else np.nan


def _cox(data, duration="AVAL", event="EVENT", strata=None):
    from lifelines import CoxPHFitter
    cph = CoxPHFitter()
    cph.fit(data, duration_col=duration, event_col=event, strata=strata)
    return cph


def _design(df, group_col, groups, covariates=(), time_col="AVAL", censor_col="CNSR"):
    exp_label, ref_label = groups[0], groups[-1]
    sub = df[df[group_col].isin([exp_label, ref_label])]
    X = pd.DataFrame({"AVAL": sub[time_col].astype(float).to_numpy(),
                      "EVENT": (sub[censor_col] == 0).astype(int).to_numpy(),
                      "TRT": (sub[group_col] == exp_label).astype(int).to_numpy()})
    for c in covariates:
        col = sub[c].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(col):
            X[c] = col.astype(float)
        else:
            X = pd.concat([X, pd.get_dummies(col, prefix=c, drop_first=True, dtype=float)], axis=1)
    return X, sub


def compute_treatment_effects(df, group_col, strata_cols, covariates, landmark_day, groups,
                              time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """Treatment-effect estimates of groups[0] (experimental) vs groups[-1] (reference).

    logrank / logrank_stratified: statistic chi-square (1 df); cox / cox_stratified / cox_adjusted:
    HR with 95% Wald CI (Efron ties, lifelines), statistic z; landmark_difference: S_exp - S_ref at
    the landmark with Greenwood SEs; rmst_difference: RMST_exp - RMST_ref to the landmark (days)."""
    X, sub = _design(df, group_col, groups, time_col=time_col, censor_col=censor_col)
    rows = []
    _, _, chi2, p = compute_logrank(X["AVAL"], X["EVENT"], X["TRT"])
    rows.append(("logrank", np.nan, np.nan, np.nan, chi2, p))
    strata = sub[list(strata_cols)].astype(str).agg("/".join, axis=1).to_numpy() if strata_cols else None
    _, _, chi2, p = compute_logrank(X["AVAL"], X["EVENT"], X["TRT"], strata)
    rows.append(("logrank_stratified", np.nan, np.nan, np.nan, chi2, p))

    def cox_row(name, data, strata=None):
        cph = _cox(data, strata=strata)
        s = cph.summary.loc["TRT"]
        rows.append((name, float(np.exp(s["coef"])), float(s["exp(coef) lower 95%"]),
                     float(s["exp(coef) upper 95%"]), float(s["z"]), float(s["p"])))
    cox_row("cox", X)
    if strata_cols:
        cox_row("cox_stratified", X.assign(STRATUM=strata), strata=["STRATUM"])
    if covariates:
        Xa, _ = _design(df, group_col, groups, covariates, time_col, censor_col)
        cox_row("cox_adjusted", Xa.dropna())
    kms = [fit_km(X.loc[X["TRT"] == k, "AVAL"], X.loc[X["TRT"] == k, "EVENT"]) for k in (1, 0)]
    (s1, g1), (s0, g0) = [km.at([landmark_day]) for km in kms]
    diff = float(s1[0] - s0[0])
    se = float(np.sqrt(s1[0] ** 2 * g1[0] + s0[0] ** 2 * g0[0]))
    rows.append(("landmark_difference", diff, diff - Z975 * se, diff + Z975 * se, diff / se,
                 float(2 * stats.norm.sf(abs(diff / se)))))
    (r1, se1), (r0, se0) = [compute_rmst(km, landmark_day) for km in kms]
    d, se = r1 - r0, float(np.hypot(se1, se0))
    rows.append(("rmst_difference", d, d - Z975 * se, d + Z975 * se, d / se, float(2 * stats.norm.sf(abs(d / se)))))
    return pd.DataFrame(rows, columns=["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value"])


def summarize_subgroups(df, group_col, subgroups, groups, time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """Cox HR (95% CI) of experimental vs reference within each subgroup level, and one
    likelihood-ratio interaction p-value per factor (arm x factor terms added to a Cox model
    with arm and factor main effects)."""
    rows = []
    X, sub = _design(df, group_col, groups, time_col=time_col, censor_col=censor_col)
    for factor in subgroups:
        f = sub[factor].reset_index(drop=True)
        ok = f.notna().to_numpy()
        Xf, ff = X[ok].reset_index(drop=True), f[ok].reset_index(drop=True).astype(str)
        dummies = pd.get_dummies(ff, prefix="F", drop_first=True, dtype=float)
        inter = dummies.mul(Xf["TRT"], axis=0).add_prefix("TRTx")
        try:
            ll0 = _cox(pd.concat([Xf, dummies], axis=1)).log_likelihood_
            ll1 = _cox(pd.concat([Xf, dummies, inter], axis=1)).log_likelihood_
            p_int = float(stats.chi2.sf(2 * (ll1 - ll0), dummies.shape[1]))
        except Exception:
            p_int = np.nan
        for level in sorted(ff.unique()):
            m = (ff == level).to_numpy()
            lx = Xf[m]
            hr = lo = hi = np.nan
            if lx["EVENT"].sum() >= 2 and lx["TRT"].nunique() == 2:
                try:
                    s = _cox(lx).summary.loc["TRT"]
                    hr, lo, hi = float(np.exp(s["coef"])), float(s["exp(coef) lower 95%"]), float(s["exp(coef) upper 95%"])
                except Exception:
                    pass
            rows.append({"factor": factor, "level": level, "n": int(m.sum()),
                         "events_exp": int(lx.loc[lx["TRT"] == 1, "EVENT"].sum()),
                         "events_ref": int(lx.loc[lx["TRT"] == 0, "EVENT"].sum()),
                         "hr": hr, "ci_lower": lo, "ci_upper": hi, "p_interaction": p_int})
    return pd.DataFrame(rows, columns=["factor", "level", "n", "events_exp", "events_ref", "hr", "ci_lower",
                                       "ci_upper", "p_interaction"])
