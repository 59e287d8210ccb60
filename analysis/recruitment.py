"""Recruitment, screening funnel, CONSORT counts, stratum balance and changes since a previous cut.

Pure functions: DataFrames (``screening`` and ADSL as in ``data_access/DATASETS.md``) and plain
study values (the site list, the recruitment plan) in; tables out. The Poisson-gamma projection
of when recruitment reaches its target is in ``analysis.recruitment_projection``.

Group handling follows the rest of ``analysis``: ``group_col=None`` pools everyone under the
group label ``"All"``; otherwise one group per level of ``group_col`` (``groups`` gives the
labels in display order, default sorted) and, where a total is meaningful, a ``"Total"`` group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ALL = "All"
TOTAL = "Total"
OUTCOME_RANDOMISED = "RANDOMISED"
OUTCOME_SCREEN_FAILURE = "SCREEN FAILURE"
OUTCOME_DROP_OUT = "RUN-IN DROP-OUT"
OUTCOME_IN_RUN_IN = "IN RUN-IN"
NOT_RECORDED = "Not recorded"


# --------------------------------------------------------------------------- helpers
def _require(df: pd.DataFrame, cols, name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing required column(s): {', '.join(missing)}")


def sites_frame(sites) -> pd.DataFrame:
    """Site list (``Study.sites``: objects with id/name/country/activated/target, dicts, or a
    DataFrame with those columns) -> DataFrame site_id, site_name, country, activated, target."""
    cols = ["site_id", "site_name", "country", "activated", "target"]
    if sites is None:
        return pd.DataFrame(columns=cols)
    if isinstance(sites, pd.DataFrame):
        df = sites.rename(columns={"id": "site_id", "name": "site_name"}).copy()
    else:
        rows = []
        for s in sites:
            get = s.get if isinstance(s, dict) else lambda k, s=s: getattr(s, k, None)
            rows.append({"site_id": get("id"), "site_name": get("name"), "country": get("country"),
                         "activated": get("activated"), "target": get("target")})
        df = pd.DataFrame(rows, columns=cols)
    for c in cols:
        if c not in df.columns:
            df[c] = None
    df["activated"] = pd.to_datetime(df["activated"])
    return df[cols].reset_index(drop=True)


def _group_levels(df: pd.DataFrame, group_col, groups) -> list[str]:
    if group_col is None:
        return [ALL]
    if groups is not None:
        return list(groups)
    return sorted(df[group_col].dropna().astype(str).unique())


def _group_series(df: pd.DataFrame, group_col) -> pd.Series:
    if group_col is None:
        return pd.Series(ALL, index=df.index)
    return df[group_col].astype("string")


def _month(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.strftime("%Y-%m")


def month_range(first: str, last: str) -> list[str]:
    """Every month ("YYYY-MM") from ``first`` to ``last``, both included."""
    return [p.strftime("%Y-%m") for p in pd.period_range(first, last, freq="M")]


def _reason_rows(reasons: pd.Series, stage: str, prefix: str = "") -> list[dict]:
    """One row per reason, most frequent first (ties alphabetical); missing -> 'Not recorded'."""
    counts = reasons.fillna(NOT_RECORDED).astype(str).value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    return [{"stage": stage, "n": int(n), "reason": f"{prefix}{r}"} for r, n in counts.items()]


# --------------------------------------------------------------------------- enrolment
def summarize_enrolment(screening: pd.DataFrame, adsl: pd.DataFrame, sites,
                        site_col: str = "SITEID", date_col: str = "RANDDT") -> pd.DataFrame:
    """Screened and randomised per site against target, with first/last randomisation dates.

    Parameters
    ----------
    screening : one row per screened person (needs ``site_col``), or None for a trial delivered
        without a screening log: ``screened`` is then missing (<NA>), not zero.
    adsl : one row per randomised subject (needs ``site_col``, ``date_col``).
    sites : the study's site list (``Study.sites``), dicts or a DataFrame; sites without any
        recruit are kept with zero counts; sites in the data but not in the list are appended.

    Returns
    -------
    DataFrame with columns site_id, site_name, country, activated, screened, randomised, target,
    first, last; one row per site (list order) and a final ``Total`` row.
    """
    no_log = screening is None
    screening = pd.DataFrame({site_col: pd.Series(dtype=str)}) if no_log else screening
    _require(screening, [site_col], "screening")
    _require(adsl, [site_col, date_col], "adsl")
    out = sites_frame(sites)
    seen = pd.concat([screening[site_col], adsl[site_col]]).dropna().astype(str).unique()
    extra = [s for s in sorted(seen) if s not in set(out["site_id"])]
    if extra:
        out = pd.concat([out, pd.DataFrame({"site_id": extra})], ignore_index=True)
    scr = screening.groupby(screening[site_col].astype(str)).size()
    rand = adsl.assign(_d=pd.to_datetime(adsl[date_col])).groupby(adsl[site_col].astype(str))["_d"]
    out["screened"] = out["site_id"].map(scr).fillna(0).astype(int)
    out["randomised"] = out["site_id"].map(rand.size()).fillna(0).astype(int)
    out["first"] = out["site_id"].map(rand.min())
    out["last"] = out["site_id"].map(rand.max())
    out["target"] = pd.to_numeric(out["target"]).astype("Int64")
    total = {"site_id": TOTAL, "site_name": TOTAL, "country": None,
             "activated": out["activated"].min(), "screened": int(out["screened"].sum()),
             "randomised": int(out["randomised"].sum()),
             "target": out["target"].sum() if out["target"].notna().any() else pd.NA,
             "first": out["first"].min(), "last": out["last"].max()}
    out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
    out["target"] = out["target"].astype("Int64")
    for c in ("activated", "first", "last"):
        out[c] = pd.to_datetime(out[c])
    if no_log:
        out["screened"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out[["site_id", "site_name", "country", "activated", "screened", "randomised",
                "target", "first", "last"]]


def summarize_recruitment_by_month(screening: pd.DataFrame, adsl: pd.DataFrame, by: str | None = "site",
                                   site_col: str = "SITEID", screen_date_col: str = "SCRNDT",
                                   date_col: str = "RANDDT") -> pd.DataFrame:
    """Screened and randomised per calendar month (by screening / randomisation date).

    Every month from the first to the last dated record is present (zeros included), for every
    site seen in the data when ``by="site"``; ``by=None`` pools sites under site_id ``"All"``.

    Returns
    -------
    DataFrame month ("YYYY-MM"), site_id, screened, randomised, cumulative_randomised
    (``screened`` missing when ``screening`` is None: no screening log was delivered).
    """
    no_log = screening is None
    if no_log:
        screening = pd.DataFrame({site_col: pd.Series(dtype=str), screen_date_col: pd.Series(dtype="datetime64[ns]")})
    _require(screening, [site_col, screen_date_col], "screening")
    _require(adsl, [site_col, date_col], "adsl")
    cols = ["month", "site_id", "screened", "randomised", "cumulative_randomised"]
    s = pd.DataFrame({"month": _month(screening[screen_date_col]),
                      "site_id": screening[site_col].astype(str) if by else ALL})
    r = pd.DataFrame({"month": _month(adsl[date_col]),
                      "site_id": adsl[site_col].astype(str) if by else ALL})
    months = pd.concat([s["month"], r["month"]]).dropna()
    if months.empty:
        return pd.DataFrame(columns=cols)
    site_ids = sorted(pd.concat([s["site_id"], r["site_id"]]).dropna().unique())
    grid = pd.MultiIndex.from_product([month_range(months.min(), months.max()), site_ids],
                                      names=["month", "site_id"])
    out = pd.DataFrame(index=grid)
    out["screened"] = s.dropna().groupby(["month", "site_id"]).size()
    out["randomised"] = r.dropna().groupby(["month", "site_id"]).size()
    out = out.fillna(0).astype(int).reset_index()
    out["cumulative_randomised"] = out.groupby("site_id")["randomised"].cumsum()
    if no_log:
        out["screened"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out.sort_values(["month", "site_id"], kind="stable").reset_index(drop=True)[cols]


def _plan_frame(plan) -> pd.DataFrame:
    if isinstance(plan, pd.DataFrame):
        df = plan.rename(columns={"planned_cumulative": "cumulative"})[["month", "cumulative"]].copy()
    else:
        rows = [(p["month"], p["cumulative"]) if isinstance(p, dict) else tuple(p) for p in plan]
        df = pd.DataFrame(rows, columns=["month", "cumulative"])
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    return df


def summarize_cumulative_vs_plan(adsl: pd.DataFrame, plan, cut_date=None,
                                 date_col: str = "RANDDT") -> pd.DataFrame:
    """Cumulative randomised at the end of each month against the planned cumulative.

    Parameters
    ----------
    plan : (month, cumulative) pairs (``Study.recruitment_plan``), dicts or a DataFrame.
    cut_date : actual counts are shown up to the month of the cut (default: month of the last
        randomisation) and are missing after it; the plan is 0 before its first month and
        carried forward after its last.

    Returns
    -------
    DataFrame month, actual_cumulative (float, NaN after the cut), planned_cumulative.
    """
    _require(adsl, [date_col], "adsl")
    p = _plan_frame(plan)
    rmonth = _month(adsl[date_col]).dropna()
    last_actual = (pd.Timestamp(cut_date).strftime("%Y-%m") if cut_date is not None
                   else (rmonth.max() if len(rmonth) else None))
    candidates = list(p["month"]) + list(rmonth) + ([last_actual] if last_actual else [])
    if not candidates:
        return pd.DataFrame(columns=["month", "actual_cumulative", "planned_cumulative"])
    months = month_range(min(candidates), max(candidates))
    actual = rmonth.value_counts().reindex(months, fill_value=0).cumsum().astype(float)
    if last_actual is not None:
        actual[[m > last_actual for m in months]] = np.nan
    planned = p.set_index("month")["cumulative"].reindex(months).ffill().fillna(0).astype(int)
    return pd.DataFrame({"month": months, "actual_cumulative": actual.values,
                         "planned_cumulative": planned.values})


# --------------------------------------------------------------------------- funnel and CONSORT
def summarize_funnel(screening: pd.DataFrame, by_site: bool = False, outcome_col: str = "OUTCOME",
                     reason_col: str = "REASON", site_col: str = "SITEID") -> pd.DataFrame:
    """Screening and run-in funnel: counts per stage with reasons (most frequent first).

    Stages: Screened; Screen failure (+ one row per reason); Run-in started; Run-in drop-out
    (+ reasons); In run-in; Randomised. Stage totals have reason ``""``.

    Parameters
    ----------
    by_site : when True, a leading ``site_id`` column: the funnel of each site (sorted) and then
        of all sites (site_id ``"All"``).

    Returns
    -------
    DataFrame stage, n, reason (site_id, stage, n, reason when ``by_site``).
    """
    _require(screening, [outcome_col, reason_col], "screening")
    if by_site:
        _require(screening, [site_col], "screening")
        parts = [summarize_funnel(d, False, outcome_col, reason_col).assign(site_id=str(site))
                 for site, d in screening.groupby(screening[site_col].astype(str), sort=True)]
        parts.append(summarize_funnel(screening, False, outcome_col, reason_col).assign(site_id=ALL))
        return pd.concat(parts, ignore_index=True)[["site_id", "stage", "n", "reason"]]
    out = screening[outcome_col]
    sf, do = out == OUTCOME_SCREEN_FAILURE, out == OUTCOME_DROP_OUT
    rows = [{"stage": "Screened", "n": len(screening), "reason": ""},
            {"stage": "Screen failure", "n": int(sf.sum()), "reason": ""}]
    rows += _reason_rows(screening.loc[sf, reason_col], "Screen failure")
    rows.append({"stage": "Run-in started", "n": int((~sf & out.notna()).sum()), "reason": ""})
    rows.append({"stage": "Run-in drop-out", "n": int(do.sum()), "reason": ""})
    rows += _reason_rows(screening.loc[do, reason_col], "Run-in drop-out")
    rows.append({"stage": "In run-in", "n": int((out == OUTCOME_IN_RUN_IN).sum()), "reason": ""})
    rows.append({"stage": "Randomised", "n": int((out == OUTCOME_RANDOMISED).sum()), "reason": ""})
    return pd.DataFrame(rows, columns=["stage", "n", "reason"])


def summarize_consort(screening: pd.DataFrame, adsl: pd.DataFrame, adtte: pd.DataFrame | None = None,
                      group_col: str | None = None, groups=None, paramcd: str = "OS",
                      outcome_col: str = "OUTCOME", reason_col: str = "REASON") -> pd.DataFrame:
    """CONSORT 2025 flow counts, built from one row per screened person and ADSL.

    Enrolment stages (group ``"All"``): Assessed for eligibility; Excluded (screen failures plus
    run-in drop-outs; reason rows ``"Screen failure"``, ``"Screen failure: <reason>"``,
    ``"Run-in drop-out"``, ``"Run-in drop-out: <reason>"``); In run-in at cut (only when any);
    Randomised. Per group: Allocated; Received allocated intervention (SAFFL == "Y" or TRTSDT
    not null); Did not receive allocated intervention; Completed; Ongoing; Discontinued (EOSSTT
    "DISCONTINUED" other than death and loss to follow-up, with DCSREAS reasons); Died
    (DTHFL == "Y"); Lost to follow-up (DCSREAS containing "LOST"); Analysed (ITT) (ITTFL == "Y");
    and, when ``adtte`` is given, Analysed (primary endpoint) (a ``paramcd`` record present).

    Returns
    -------
    DataFrame stage, group, n, reason (reason ``""`` on stage totals).
    """
    _require(screening, [outcome_col, reason_col], "screening")
    out = screening[outcome_col]
    sf, do = out == OUTCOME_SCREEN_FAILURE, out == OUTCOME_DROP_OUT
    rows = [{"stage": "Assessed for eligibility", "n": len(screening), "reason": ""},
            {"stage": "Excluded", "n": int(sf.sum() + do.sum()), "reason": ""},
            {"stage": "Excluded", "n": int(sf.sum()), "reason": "Screen failure"}]
    rows += _reason_rows(screening.loc[sf, reason_col], "Excluded", "Screen failure: ")
    rows.append({"stage": "Excluded", "n": int(do.sum()), "reason": "Run-in drop-out"})
    rows += _reason_rows(screening.loc[do, reason_col], "Excluded", "Run-in drop-out: ")
    n_run_in = int((out == OUTCOME_IN_RUN_IN).sum())
    if n_run_in:
        rows.append({"stage": "In run-in at cut", "n": n_run_in, "reason": ""})
    rows.append({"stage": "Randomised", "n": len(adsl), "reason": ""})
    for r in rows:
        r["group"] = ALL

    g = _group_series(adsl, group_col)
    col = lambda c: adsl[c] if c in adsl.columns else pd.Series(pd.NA, index=adsl.index, dtype="object")
    received = (col("SAFFL") == "Y").fillna(False) | col("TRTSDT").notna()
    dcs = col("DCSREAS").astype("string").str.upper()
    died = (col("DTHFL") == "Y").fillna(False) | (dcs == "DEATH").fillna(False)
    lost = dcs.str.contains("LOST", na=False) & ~died
    eos = col("EOSSTT").astype("string")
    disc = (eos == "DISCONTINUED").fillna(False) & ~died & ~lost
    itt = (col("ITTFL") == "Y").fillna(False) if "ITTFL" in adsl.columns else pd.Series(True, index=adsl.index)
    tte_ids = None
    if adtte is not None:
        tte_ids = set(adtte.loc[adtte["PARAMCD"] == paramcd, "USUBJID"])
    for level in _group_levels(adsl, group_col, groups):
        m = (g == level).fillna(False)
        grp = [("Allocated", int(m.sum()), ""),
               ("Received allocated intervention", int((m & received).sum()), ""),
               ("Did not receive allocated intervention", int((m & ~received).sum()), ""),
               ("Completed", int((m & (eos == "COMPLETED").fillna(False) & ~died).sum()), ""),
               ("Ongoing", int((m & (eos == "ONGOING").fillna(False) & ~died).sum()), ""),
               ("Discontinued", int((m & disc).sum()), "")]
        grp += [("Discontinued", r["n"], r["reason"]) for r in _reason_rows(col("DCSREAS")[m & disc], "")]
        grp += [("Died", int((m & died).sum()), ""), ("Lost to follow-up", int((m & lost).sum()), ""),
                ("Analysed (ITT)", int((m & itt).sum()), "")]
        if tte_ids is not None:
            grp.append(("Analysed (primary endpoint)", int((m & adsl["USUBJID"].isin(tte_ids)).sum()), ""))
        rows += [{"stage": s, "group": level, "n": n, "reason": r} for s, n, r in grp]
    return pd.DataFrame(rows, columns=["stage", "group", "n", "reason"])


# --------------------------------------------------------------------------- changes since a previous cut
CHANGE_COLUMNS = ["item", "at_previous", "at_cut", "new"]


def summarize_changes(adsl: pd.DataFrame, previous_cut, cut_date, screening: pd.DataFrame | None = None,
                      adae: pd.DataFrame | None = None, sites=None) -> pd.DataFrame:
    """What happened between the previous report's cut-off and this one, pooled over arms: each
    count as of the previous cut (dated on or before it, from this snapshot's data, so records
    entered late for the earlier period count where they belong), as of this cut, and the
    difference.

    Rows: screened (screening log), sites activated (site list), randomised, completed follow-up,
    discontinued other than by death, died (ADSL EOSSTT/EOSDT, DCSREAS, DTHDT), serious adverse
    events and participants with one (ADAE AESER "Y" by ASTDT). Rows whose data are absent are
    left out.

    Returns
    -------
    DataFrame item, at_previous, at_cut, new.
    """
    prev, cut = pd.Timestamp(previous_cut), pd.Timestamp(cut_date)
    if prev >= cut:
        raise ValueError(f"the previous cut-off {prev.date()} is not before this cut-off {cut.date()}")
    rows = []

    def count(label, dates, subjects=None):
        d = pd.to_datetime(pd.Series(dates), errors="coerce").reset_index(drop=True)
        if subjects is None:
            at = [int((d <= t).sum()) for t in (prev, cut)]
        else:                                   # distinct subjects with a dated record by then
            s = pd.Series(subjects).reset_index(drop=True)
            at = [int(s[d <= t].nunique()) for t in (prev, cut)]
        rows.append({"item": label, "at_previous": at[0], "at_cut": at[1], "new": at[1] - at[0]})

    if screening is not None and "SCRNDT" in screening:
        count("Screened", screening["SCRNDT"])
    if sites is not None:
        sf = sites_frame(sites)
        if "activated" in sf:
            count("Sites activated", sf["activated"])
    _require(adsl, ["RANDDT"], "adsl")
    count("Randomised", adsl["RANDDT"])
    if {"EOSSTT", "EOSDT"} <= set(adsl.columns):
        status = adsl["EOSSTT"].astype("string").str.upper()
        count("Completed follow-up", adsl["EOSDT"].where(status.eq("COMPLETED").fillna(False).to_numpy()))
        death = (adsl["DCSREAS"].astype("string").str.upper().eq("DEATH").fillna(False)
                 if "DCSREAS" in adsl else pd.Series(False, index=adsl.index))
        other = (status.eq("DISCONTINUED").fillna(False) & ~death).to_numpy()
        count("Discontinued, other than death", adsl["EOSDT"].where(other))
    if "DTHDT" in adsl:
        count("Died", adsl["DTHDT"])
    if adae is not None and {"AESER", "ASTDT", "USUBJID"} <= set(adae.columns):
        sae = adae[adae["AESER"].astype("string").eq("Y").fillna(False).to_numpy()]
        count("Serious adverse events", sae["ASTDT"])
        count("Participants with a serious adverse event", sae["ASTDT"], subjects=sae["USUBJID"])
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


# --------------------------------------------------------------------------- stratum balance
def summarize_balance(adsl: pd.DataFrame, group_col: str | None = None, by_site: bool = True,
                      groups=None, strata=None, stratum_col: str = "STRATUM", site_col: str = "SITEID",
                      strata_cols=("COUNTRY", "ONSET")) -> pd.DataFrame:
    """Randomised subjects per stratum (and site) and group.

    When ``stratum_col`` is absent it is built as ``"/".join(strata_cols)`` (e.g. "UK/Bulbar").
    Every stratum x site x group cell is present (zeros included; sites are those seen in the
    data). Rows with site_id ``"All"`` give the stratum total; with ``group_col`` a ``"Total"``
    group is added.

    Returns
    -------
    DataFrame stratum, site_id, group, n.
    """
    df = adsl.copy()
    if stratum_col not in df.columns:
        _require(df, list(strata_cols), "adsl")
        df[stratum_col] = df[list(strata_cols)].astype(str).agg("/".join, axis=1)
    _require(df, [stratum_col] + ([site_col] if by_site else []), "adsl")
    levels = _group_levels(df, group_col, groups)
    df["_g"] = _group_series(df, group_col)
    strata = list(strata) if strata is not None else sorted(df[stratum_col].dropna().astype(str).unique())
    sites = sorted(df[site_col].dropna().astype(str).unique()) if by_site else []
    glevels = levels + ([TOTAL] if group_col is not None else [])
    rows = []
    for st in strata:
        in_st = df[stratum_col].astype(str) == st
        for site in sites + [ALL]:
            in_site = in_st if site == ALL else in_st & (df[site_col].astype(str) == site)
            for lev in glevels:
                m = in_site if lev == TOTAL else in_site & (df["_g"] == lev).fillna(False)
                rows.append({"stratum": st, "site_id": site, "group": lev, "n": int(m.sum())})
    return pd.DataFrame(rows, columns=["stratum", "site_id", "group", "n"])
