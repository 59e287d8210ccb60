"""Baseline characteristics (Table 1): a long summary table and its display form.

``summarize_baseline`` returns one row per (variable, level, statistic, group): the long table is
what CSV exports, tests and other code consume. ``format_table1`` turns it into the wide display
table of a manuscript: mean (SD), median (Q1-Q3), n (%); no SE and no p-values (CONSORT).

Quartiles are numpy's default (Hyndman & Fan type 7, linear interpolation between order
statistics: the q-th quantile of x_(1..n) is x_(1+h) with h = (n-1)q, interpolated); SD is the
sample SD (n - 1 denominator).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ALL = "All"
TOTAL = "Total"
MISSING = "Missing"

DEFAULT_VARIABLES = ["AGE", "SEX", "COUNTRY", "ONSET", "ELESCORL", "DIAGDLY", "BLALSFRS", "DFS",
                     "SVCPCT", "PNFH", "PNFHGR"]

DEFAULT_LABELS = {
    "AGE": "Age, years", "AGEGR1": "Age group, years", "SEX": "Sex", "COUNTRY": "Country",
    "ONSET": "Site of onset", "STRATUM": "Randomisation stratum", "ELESCORL": "El Escorial category",
    "DIAGDLY": "Diagnostic delay, months", "BLALSFRS": "ALSFRS-R total score",
    "DFS": "Pre-study progression rate (dFS), points/month", "DFSGR": "dFS group",
    "SVCPCT": "Slow vital capacity, % predicted", "PNFH": "CSF-pNfH, pg/mL", "LOGPNFH": "log CSF-pNfH",
    "PNFHGR": "CSF-pNfH group",
}

# display order of known categorical levels (others: sorted)
DEFAULT_LEVELS = {
    "SEX": ["M", "F"], "COUNTRY": ["France", "UK"], "ONSET": ["Bulbar", "Limb"],
    "ELESCORL": ["Possible", "Probable lab-supported", "Probable", "Definite"],
    "PNFHGR": ["Low", "High"], "AGEGR1": ["<60", ">=60"],
    "STRATUM": ["France/Bulbar", "France/Limb", "UK/Bulbar", "UK/Limb"],
}


def variable_labels(delivered: dict | None = None) -> dict[str, str]:
    """Display names of variables: the project defaults, overridden by the labels a delivery
    carries (``view.labels("adsl")``)."""
    return {**DEFAULT_LABELS, **(delivered or {})}


DEFAULT_DIGITS = {"AGE": 1, "PNFH": 0, "DIAGDLY": 1, "BLALSFRS": 1, "DFS": 2, "SVCPCT": 1}

CONTINUOUS_STATS = ["n", "mean", "sd", "median", "q1", "q3", "min", "max"]


def _is_continuous(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _levels(s: pd.Series, variable: str, levels: dict) -> list[str]:
    present = [str(v) for v in s.dropna().unique()]
    if isinstance(s.dtype, pd.CategoricalDtype):
        known = [str(c) for c in s.cat.categories]
    else:
        known = list(levels.get(variable, []))
    return known + sorted(v for v in present if v not in known)


def _continuous_rows(x: pd.Series) -> list[tuple[str, float]]:
    v = pd.to_numeric(x, errors="coerce").dropna().to_numpy(float)
    if len(v) == 0:
        return [("n", 0.0)] + [(s, np.nan) for s in CONTINUOUS_STATS[1:]]
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else np.nan
    return [("n", float(len(v))), ("mean", float(v.mean())), ("sd", sd), ("median", float(med)),
            ("q1", float(q1)), ("q3", float(q3)), ("min", float(v.min())), ("max", float(v.max()))]


def summarize_baseline(adsl: pd.DataFrame, variables=None, group_col: str | None = None, groups=None,
                       levels: dict | None = None) -> pd.DataFrame:
    """Baseline summary statistics per variable and group.

    Parameters
    ----------
    adsl : one row per subject (the analysis population, e.g. ITT).
    variables : columns to summarise (default ``DEFAULT_VARIABLES`` present in ``adsl``).
        Numeric columns are continuous, others categorical.
    group_col : None pools everyone (group "All"); otherwise one group per level (``groups``
        order, default sorted) plus "Total".
    levels : variable -> ordered category levels (default ``DEFAULT_LEVELS``); levels listed but
        absent get zero counts, unlisted levels follow sorted.

    Returns
    -------
    DataFrame variable, level, statistic, group, value.
    Continuous: level "" and statistics n, mean, sd, median, q1, q3 (numpy type 7), min, max.
    Categorical: per level statistics count and percent (denominator: non-missing n of the group).
    A "Missing" level (count only, percent NaN) is added to a variable, for every group, when any
    value of it is missing.
    """
    variables = [v for v in DEFAULT_VARIABLES if v in adsl.columns] if variables is None else list(variables)
    missing_cols = [v for v in variables if v not in adsl.columns]
    if missing_cols or (group_col is not None and group_col not in adsl.columns):
        raise ValueError(f"adsl is missing column(s): {', '.join(missing_cols or [group_col])}")
    levels = DEFAULT_LEVELS if levels is None else levels
    if group_col is None:
        parts = [(ALL, adsl)]
    else:
        glevels = list(groups) if groups is not None else sorted(adsl[group_col].dropna().astype(str).unique())
        g = adsl[group_col].astype("string")
        parts = [(lev, adsl[(g == lev).fillna(False)]) for lev in glevels] + [(TOTAL, adsl)]
    rows = []
    for var in variables:
        col = adsl[var]
        any_missing = bool(col.isna().any())
        if _is_continuous(col):
            for gname, df in parts:
                rows += [(var, "", stat, gname, val) for stat, val in _continuous_rows(df[var])]
        else:
            lv = _levels(col, var, levels)
            for gname, df in parts:
                x = df[var].dropna().astype(str)
                denom = len(x)
                counts = x.value_counts()
                for level in lv:
                    c = int(counts.get(level, 0))
                    rows.append((var, level, "count", gname, float(c)))
                    rows.append((var, level, "percent", gname, 100.0 * c / denom if denom else np.nan))
        if any_missing:
            for gname, df in parts:
                rows.append((var, MISSING, "count", gname, float(df[var].isna().sum())))
                if not _is_continuous(col):
                    rows.append((var, MISSING, "percent", gname, np.nan))
    out = pd.DataFrame(rows, columns=["variable", "level", "statistic", "group", "value"])
    # order: variable, level, group, statistic as built; stable and predictable
    return out


def _fmt(x: float, digits: int) -> str:
    return "NA" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def format_table1(long_table: pd.DataFrame, labels: dict | None = None, digits: dict | None = None,
                  percent_digits: int = 1, show_n: bool = True) -> pd.DataFrame:
    """Wide display form of :func:`summarize_baseline`.

    Rows: for a continuous variable "<label>: mean (SD)" and "<label>: median (Q1-Q3)" (and
    "<label>: missing, n" when any); for a categorical variable a heading row "<label>, n (%)"
    then one indented row per level, "count (percent%)". Columns: "Characteristic" then one per
    group in the table's order, headed "<group> (N=<n>)" when ``show_n`` (N = non-missing plus
    missing count of the first variable).
    """
    labels = {**DEFAULT_LABELS, **(labels or {})}
    digits = {**DEFAULT_DIGITS, **(digits or {})}
    groups = list(dict.fromkeys(long_table["group"]))
    val = long_table.set_index(["variable", "level", "statistic", "group"])["value"]
    get = lambda v, l, s, g: val.get((v, l, s, g), np.nan)
    headers = {g: g for g in groups}
    if show_n and len(long_table):
        first = long_table["variable"].iloc[0]
        sub = long_table[long_table["variable"] == first]
        for g in groups:
            sg = sub[(sub["group"] == g) & sub["statistic"].isin(["n", "count"])]
            headers[g] = f"{g} (N={int(sg['value'].sum())})"
    rows = []
    for var in dict.fromkeys(long_table["variable"]):
        sub = long_table[long_table["variable"] == var]
        label, d = labels.get(var, var), digits.get(var, 1)
        has_missing = (sub["level"] == MISSING).any()
        if (sub["statistic"] == "mean").any():
            rows.append({"Characteristic": f"{label}: mean (SD)", **{
                headers[g]: f"{_fmt(get(var, '', 'mean', g), d)} ({_fmt(get(var, '', 'sd', g), d)})" for g in groups}})
            rows.append({"Characteristic": f"{label}: median (Q1-Q3)", **{
                headers[g]: f"{_fmt(get(var, '', 'median', g), d)} ({_fmt(get(var, '', 'q1', g), d)}"
                            f"-{_fmt(get(var, '', 'q3', g), d)})" for g in groups}})
            if has_missing:
                rows.append({"Characteristic": f"{label}: missing, n", **{
                    headers[g]: _fmt(get(var, MISSING, "count", g), 0) for g in groups}})
        else:
            rows.append({"Characteristic": f"{label}, n (%)", **{headers[g]: "" for g in groups}})
            for level in dict.fromkeys(sub["level"]):
                if level == MISSING:
                    cells = {headers[g]: _fmt(get(var, level, "count", g), 0) for g in groups}
                else:
                    cells = {headers[g]: f"{_fmt(get(var, level, 'count', g), 0)} "
                                         f"({_fmt(get(var, level, 'percent', g), percent_digits)}%)"
                             for g in groups}
                rows.append({"Characteristic": f"  {level}", **cells})
    return pd.DataFrame(rows, columns=["Characteristic"] + [headers[g] for g in groups])
