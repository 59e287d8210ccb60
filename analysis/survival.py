"""Descriptive survival: Kaplan-Meier with Greenwood variances and log-log CIs, numbers at risk,
medians with R-style CIs, landmark survival and restricted mean survival time (RMST).

Input: an ADTTE-like frame for one PARAMCD (``AVAL`` days, ``CNSR`` 0 = event, 1 = censored)
with ADSL columns merged by the caller. ``group_col=None`` pools everyone into the group "All";
``groups`` fixes the order of the arms (first = experimental, last = reference).

The comparisons (log-rank, Cox, treatment effects, subgroups) live in
:mod:`analysis.survival_models`.

Examples
--------
>>> df = pd.DataFrame({"AVAL": [1, 2, 3, 3, 4, 5], "CNSR": [0, 1, 0, 0, 1, 0]})
>>> summarize_km(df, times=[3])["survival"].round(4).tolist()
[0.4167]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

Z975 = float(stats.norm.ppf(0.975))
CONF_TYPES = ("log-log", "log", "plain")
KM_COLUMNS = ["group", "time", "n_at_risk", "n_events", "n_censored", "survival", "ci_lower", "ci_upper"]
AT_RISK_COLUMNS = ["group", "time", "n_at_risk", "n_events", "n_censored"]
SURVIVAL_COLUMNS = ["group", "n", "events", "median", "median_ci_lower", "median_ci_upper", "landmark_day",
                    "surv_landmark", "surv_landmark_ci_lower", "surv_landmark_ci_upper", "rmst", "rmst_se"]
DEFAULT_AT_RISK_TIMES = (0, 80, 160, 240, 320, 400, 480, 560, 640)


@dataclass
class KMFit:
    """Kaplan-Meier estimate at its distinct event and censoring times.

    Attributes
    ----------
    time, n_at_risk, n_events : numpy.ndarray
        Distinct times, number at risk just before each, number of events at each.
    survival : numpy.ndarray
        Product-limit estimate S(t) (right-continuous).
    greenwood : numpy.ndarray
        Greenwood sum over event times <= t of d / (n (n - d)) (variance of log S); inf after
        the curve reaches 0.
    """
    time: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    survival: np.ndarray
    greenwood: np.ndarray

    def at(self, t) -> tuple[np.ndarray, np.ndarray]:
        """(S(t), Greenwood sum at t) for times ``t`` of the right-continuous step function."""
        idx = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        s = np.where(idx >= 0, self.survival[np.maximum(idx, 0)], 1.0)
        g = np.where(idx >= 0, self.greenwood[np.maximum(idx, 0)], 0.0)
        return s, g


def fit_km(time, event) -> KMFit:
    """Product-limit estimate with Greenwood's variance terms.

    Parameters
    ----------
    time : array-like of float
    event : array-like of {0, 1}
        1 = event, 0 = censored (note: the opposite of ADaM ``CNSR``).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    if len(time) == 0:
        return KMFit(*(np.array([]) for _ in range(5)))
    ut = np.unique(time)
    pos = np.searchsorted(ut, time)
    d = np.bincount(pos, weights=event, minlength=len(ut))
    n = len(time) - np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(ut)))[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.cumprod(1 - d / n)
        g = np.cumsum(np.where(n > d, d / (n * (n - d)), np.where(d > 0, np.inf, 0.0)))
    return KMFit(ut, n, d, s, g)


def compute_km_ci(s, greenwood, conf_type: str = "log-log", z: float = Z975) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise confidence limits of S(t) as R ``survfit(conf.type=...)``.

    ``log-log`` (Kalbfleisch-Prentice): S^exp(+-z se / log S) with se = sqrt(greenwood);
    ``log``: S exp(+-z se), upper capped at 1; ``plain``: S (1 +- z se), clipped to [0, 1].
    Where S = 1 both limits are 1; where S = 0 (or the variance is infinite) they are NaN.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}")
    s = np.asarray(s, dtype=float)
    se = np.sqrt(np.asarray(greenwood, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log-log":
            w = z * se / np.abs(np.log(s))
            lo, hi = s ** np.exp(w), s ** np.exp(-w)
        elif conf_type == "log":
            lo, hi = s * np.exp(-z * se), np.minimum(1.0, s * np.exp(z * se))
        else:
            lo, hi = np.maximum(0.0, s * (1 - z * se)), np.minimum(1.0, s * (1 + z * se))
    ok = (s > 0) & (s < 1) & np.isfinite(se)
    lo = np.where(ok, lo, np.where(s >= 1, 1.0, np.nan))
    hi = np.where(ok, hi, np.where(s >= 1, 1.0, np.nan))
    return lo, hi


def compute_loglog_ci(s, greenwood, z: float = Z975) -> tuple[np.ndarray, np.ndarray]:
    """95% CI with the log(-log S) transform (Kalbfleisch-Prentice; R conf.type='log-log')."""
    return compute_km_ci(s, greenwood, "log-log", z)


def compute_survival_quantile(time, curve, p: float = 0.5, tol: float = 1.49e-8) -> float:
    """Time at which ``curve`` (S or one of its CI limits) first falls to ``1 - p``, as R
    ``quantile.survfit``: if the curve is flat exactly at 1 - p, the midpoint of the flat is
    returned (the usual median rule); NaN if the curve never gets there (e.g. "not reached")."""
    x = np.concatenate([[0.0], np.asarray(time, dtype=float)])
    y = np.concatenate([[0.0], 1 - np.asarray(curve, dtype=float)])
    xmax = x[-1]
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    first = np.concatenate([[True], y[1:] != y[:-1]])   # drop repeats (censoring times)
    x, y = x[first], y[first]
    hit1, hit2 = np.nonzero(y + tol >= p)[0], np.nonzero(y - tol >= p)[0]
    if not len(hit1):
        return np.nan
    if abs(p - y[-1]) < tol:                            # the curve ends on the flat
        return float((x[hit1[0]] + xmax) / 2)
    return float((x[hit1[0]] + x[hit2[0]]) / 2) if len(hit2) else np.nan


def compute_rmst(km: KMFit, tau: float) -> tuple[float, float]:
    """Restricted mean survival time to ``tau`` (area under the KM step function) and its SE.

    Klein & Moeschberger (2003, sec. 4.5): var = sum over event times t_i <= tau of
    A_i^2 d_i / (n_i (n_i - d_i)), with A_i the area under the curve from t_i to tau. The curve
    is carried flat after its last time when tau lies beyond follow-up.
    """
    keep = km.time <= tau
    t = np.concatenate([[0.0], km.time[keep], [tau]])
    s = np.concatenate([[1.0], km.survival[keep]])
    area = np.diff(t) * s
    ev = keep & (km.n_events > 0)
    tail = np.array([area[np.searchsorted(t, x, side="right") - 1:].sum() for x in km.time[ev]])
    n, d = km.n_at_risk[ev], km.n_events[ev]
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.sum(np.where(n > d, tail ** 2 * d / (n * (n - d)), 0.0))
    return float(area.sum()), float(np.sqrt(var))


# --------------------------------------------------------------------------- helpers
def check_tte(df: pd.DataFrame, columns) -> None:
    """Raise ValueError when ``df`` lacks a required column or has an invalid time/censor value."""
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"time-to-event data lacks columns {missing}")


def split_groups(df, group_col=None, groups=None) -> list[tuple[str, pd.DataFrame]]:
    """[(label, rows)] per group in ``groups`` order (sorted levels if None); [("All", df)] pooled."""
    if group_col is None:
        return [("All", df)]
    levels = list(groups) if groups is not None else sorted(df[group_col].dropna().unique())
    return [(g, df[df[group_col] == g]) for g in levels]


def _time_event(df, time_col, censor_col) -> tuple[np.ndarray, np.ndarray]:
    t = df[time_col].to_numpy(dtype=float)
    c = df[censor_col].to_numpy(dtype=float)
    if np.isnan(t).any() or np.isnan(c).any() or (t < 0).any() or not np.isin(c, (0, 1)).all():
        raise ValueError(f"{time_col} must be non-negative and {censor_col} 0/1, without missing values")
    return t, (c == 0).astype(int)


# --------------------------------------------------------------------------- tables
def summarize_at_risk(df, group_col=None, times=DEFAULT_AT_RISK_TIMES, groups=None, time_col="AVAL",
                      censor_col="CNSR") -> pd.DataFrame:
    """Number at risk at each time (AVAL >= t) and cumulative events / censored up to and including t.

    Returns
    -------
    pandas.DataFrame
        group, time, n_at_risk, n_events, n_censored.
    """
    check_tte(df, [time_col, censor_col, group_col])
    rows = []
    for g, sub in split_groups(df, group_col, groups):
        t, e = _time_event(sub, time_col, censor_col)
        for tt in times:
            rows.append({"group": g, "time": tt, "n_at_risk": int((t >= tt).sum()),
                         "n_events": int(((t <= tt) & (e == 1)).sum()),
                         "n_censored": int(((t <= tt) & (e == 0)).sum())})
    return pd.DataFrame(rows, columns=AT_RISK_COLUMNS)


def summarize_km(df, group_col=None, times=None, groups=None, conf_type="log-log", time_col="AVAL",
                 censor_col="CNSR") -> pd.DataFrame:
    """Kaplan-Meier survival with 95% CI at ``times`` (default: 0 and every distinct event time).

    Returns
    -------
    pandas.DataFrame
        group, time, n_at_risk (AVAL >= t), n_events and n_censored (cumulative, <= t),
        survival, ci_lower, ci_upper (log-log transform unless ``conf_type`` says otherwise).
    """
    check_tte(df, [time_col, censor_col, group_col])
    frames = []
    for g, sub in split_groups(df, group_col, groups):
        t, e = _time_event(sub, time_col, censor_col)
        km = fit_km(t, e)
        tt = np.asarray(times, dtype=float) if times is not None else np.concatenate([[0.0], np.unique(t[e == 1])])
        s, gw = km.at(tt)
        lo, hi = compute_km_ci(s, gw, conf_type)
        frames.append(pd.DataFrame({"group": g, "time": tt,
                                    "n_at_risk": [int((t >= x).sum()) for x in tt],
                                    "n_events": [int(((t <= x) & (e == 1)).sum()) for x in tt],
                                    "n_censored": [int(((t <= x) & (e == 0)).sum()) for x in tt],
                                    "survival": s, "ci_lower": lo, "ci_upper": hi}))
    out = pd.concat(frames, ignore_index=True)[KM_COLUMNS] if frames else pd.DataFrame(columns=KM_COLUMNS)
    if len(out) and np.all(np.mod(out["time"].to_numpy(dtype=float), 1) == 0):
        out["time"] = out["time"].astype(int)
    return out


def summarize_survival(df, group_col=None, landmark_day=640, groups=None, conf_type="log-log",
                       time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """Per group (and "Total" when grouped): n, events, median (95% CI as R ``survfit``: where the
    CI limits of the curve cross 0.5), survival at ``landmark_day`` (95% CI), RMST to the landmark.

    Returns
    -------
    pandas.DataFrame
        group, n, events, median, median_ci_lower, median_ci_upper, landmark_day, surv_landmark,
        surv_landmark_ci_lower, surv_landmark_ci_upper, rmst, rmst_se.
    """
    check_tte(df, [time_col, censor_col, group_col])
    parts = split_groups(df, group_col, groups)
    if group_col is not None:
        parts.append(("Total", df[df[group_col].isin([g for g, _ in parts])]))
    rows = []
    for g, sub in parts:
        t, e = _time_event(sub, time_col, censor_col)
        km = fit_km(t, e)
        lo_curve, hi_curve = compute_km_ci(km.survival, km.greenwood, conf_type)
        s, gw = km.at([landmark_day])
        lo, hi = compute_km_ci(s, gw, conf_type)
        rmst, rmst_se = compute_rmst(km, landmark_day) if len(t) else (np.nan, np.nan)
        rows.append({"group": g, "n": len(sub), "events": int(e.sum()),
                     "median": compute_survival_quantile(km.time, km.survival),
                     "median_ci_lower": compute_survival_quantile(km.time, lo_curve),
                     "median_ci_upper": compute_survival_quantile(km.time, hi_curve),
                     "landmark_day": landmark_day, "surv_landmark": float(s[0]) if len(t) else np.nan,
                     "surv_landmark_ci_lower": float(lo[0]), "surv_landmark_ci_upper": float(hi[0]),
                     "rmst": rmst, "rmst_se": rmst_se})
    return pd.DataFrame(rows, columns=SURVIVAL_COLUMNS)


def summarize_survival_by_stratum(df, strata_cols, group_col=None, landmark_day=640, groups=None,
                                  conf_type="log-log", time_col="AVAL", censor_col="CNSR") -> pd.DataFrame:
    """:func:`summarize_survival` within each randomisation stratum (the strata columns joined by
    "/", e.g. "UK/Bulbar"), strata in sorted order, every group in every stratum (n 0 when empty).

    Returns
    -------
    pandas.DataFrame
        stratum, then the columns of :func:`summarize_survival`.
    """
    strata_cols = list(strata_cols)
    check_tte(df, [time_col, censor_col, group_col, *strata_cols])
    if not strata_cols:
        raise ValueError("survival by stratum needs at least one stratification column")
    cols = [df[c].astype("string").fillna("(missing)") for c in strata_cols]
    label = cols[0].str.cat(cols[1:], sep="/") if len(cols) > 1 else cols[0]     # vectorised ("UK/Bulbar")
    parts = [summarize_survival(df[label == st], group_col=group_col, landmark_day=landmark_day, groups=groups,
                                conf_type=conf_type, time_col=time_col, censor_col=censor_col)
             .assign(stratum=st) for st in sorted(label.unique())]
    out = pd.concat(parts, ignore_index=True)
    return out[["stratum"] + SURVIVAL_COLUMNS]
