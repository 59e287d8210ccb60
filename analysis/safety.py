"""Safety: adverse events by SOC/PT and severity, SAE and death listings, exposure, labs.

Denominators are the safety population per group: subjects of ``adsl`` with ``SAFFL == "Y"``
(all of ``adsl`` when it has no SAFFL column). AE tables count treatment-emergent events only
(``TRTEMFL == "Y"``) of subjects in that population; a subject is counted once per row however
many events they had, and ``n_events`` counts the records. The group of a subject is taken from
``adsl`` (never from ``adae``). ``group_col=None`` pools everyone as "All"; otherwise each level
(``groups`` order, default sorted) and "Total".
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

ALL = "All"
TOTAL = "Total"
ANY_AE = "Any adverse event"
ALL_PTS = "All PTs"
SEVERITY_ORDER = ["MILD", "MODERATE", "SEVERE"]


def _require(df: pd.DataFrame, cols, name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing required column(s): {', '.join(missing)}")


def _population(adsl: pd.DataFrame, group_col, groups, flag_col="SAFFL"):
    """(subjects with their group label, ordered group labels incl. Total)."""
    _require(adsl, ["USUBJID"] + ([group_col] if group_col else []), "adsl")
    pop = adsl[adsl[flag_col] == "Y"] if flag_col in adsl.columns else adsl
    if group_col is None:
        return pd.DataFrame({"USUBJID": pop["USUBJID"], "group": ALL}), [ALL]
    levels = list(groups) if groups is not None else sorted(pop[group_col].dropna().astype(str).unique())
    return pd.DataFrame({"USUBJID": pop["USUBJID"], "group": pop[group_col].astype(str)}), levels + [TOTAL]


def _with_total(df: pd.DataFrame, labels) -> pd.DataFrame:
    return pd.concat([df, df.assign(group=TOTAL)], ignore_index=True) if TOTAL in labels else df


def _teae(adae: pd.DataFrame, pop: pd.DataFrame, serious_only: bool, extra=()) -> pd.DataFrame:
    """Treatment-emergent AE records of the population, with only the columns the counts need
    (USUBJID, AEBODSYS, AEDECOD, ``extra``) and the subject's group."""
    _require(adae, ["USUBJID", "AEBODSYS", "AEDECOD", "TRTEMFL"], "adae")
    keep = adae["TRTEMFL"] == "Y"
    if serious_only:
        _require(adae, ["AESER"], "adae")
        keep &= adae["AESER"] == "Y"
    cols = ["USUBJID", "AEBODSYS", "AEDECOD"] + [c for c in extra if c in adae.columns]
    return adae.loc[keep, cols].merge(pop, on="USUBJID", how="inner")


def _expand_keys(ae: pd.DataFrame) -> pd.DataFrame:
    """Each AE record three times: under (Any AE, ""), (SOC, All PTs) and (SOC, PT)."""
    soc = ae["AEBODSYS"].fillna("Uncoded").astype(str)
    pt = ae["AEDECOD"].fillna("Uncoded").astype(str)
    return pd.concat([ae.assign(soc=ANY_AE, pt=""), ae.assign(soc=soc, pt=ALL_PTS),
                      ae.assign(soc=soc, pt=pt)], ignore_index=True)


def _row_order(counts: pd.DataFrame) -> list[tuple[str, str]]:
    """Any AE first; SOCs by descending subjects in the total, PTs likewise within SOC; ties by name."""
    tot = counts.groupby(["soc", "pt"])["USUBJID"].nunique()
    socs = sorted({s for s, p in tot.index if s != ANY_AE}, key=lambda s: (-tot.get((s, ALL_PTS), 0), s))
    order = [(ANY_AE, "")]
    for s in socs:
        order.append((s, ALL_PTS))
        pts = sorted({p for ss, p in tot.index if ss == s and p != ALL_PTS}, key=lambda p: (-tot[(s, p)], p))
        order += [(s, p) for p in pts]
    return order


def summarize_ae(adae: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None, groups=None,
                 serious_only: bool = False) -> pd.DataFrame:
    """Treatment-emergent AEs by system organ class (AEBODSYS) and preferred term (AEDECOD).

    Returns
    -------
    DataFrame soc, pt, group, n_subjects, percent, n_events. First the "Any adverse event" row
    (pt ""), then per SOC a row with pt "All PTs" followed by its PTs; SOCs and PTs sorted by
    descending number of subjects over all groups (ties alphabetical). Every row has every group
    (zeros included). percent = 100 * n_subjects / safety population of the group.
    """
    pop, labels = _population(adsl, group_col, groups)
    denom = _with_total(pop, labels).groupby("group").size().reindex(labels, fill_value=0)
    keys = _expand_keys(_teae(adae, pop, serious_only))
    order = _row_order(keys)
    keys = _with_total(keys, labels)
    agg = keys.groupby(["soc", "pt", "group"]).agg(n_subjects=("USUBJID", "nunique"), n_events=("USUBJID", "size"))
    idx = pd.MultiIndex.from_tuples([(s, p, g) for s, p in order for g in labels], names=["soc", "pt", "group"])
    out = agg.reindex(idx, fill_value=0).reset_index()
    out["percent"] = 100.0 * out["n_subjects"] / out["group"].map(denom).replace(0, np.nan)
    return out[["soc", "pt", "group", "n_subjects", "percent", "n_events"]].astype(
        {"n_subjects": int, "n_events": int})


def compute_wilson_ci(x, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for x events of n (vectorised; NaN where n = 0)."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def compute_risk_difference(x1, n1, x2, n2, level: float = 0.95):
    """Difference of proportions x1/n1 - x2/n2 with Newcombe's hybrid score interval (method 10
    of Newcombe 1998, Stat Med 17:873), which keeps its coverage with few or no events (the usual
    case for single preferred terms), unlike the Wald interval.

    Returns (difference, lower, upper), arrays (or floats for scalar input).
    """
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
    l1, u1 = compute_wilson_ci(x1, n1, level)
    l2, u2 = compute_wilson_ci(x2, n2, level)
    d = p1 - p2
    lower = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, lower, upper


AE_RISK_COLUMNS = ["soc", "pt", "comparison", "n_exp", "N_exp", "n_ref", "N_ref", "risk_exp", "risk_ref",
                   "difference", "ci_lower", "ci_upper"]


def summarize_ae_risk(ae: pd.DataFrame, denominators: dict, pairs) -> pd.DataFrame:
    """Absolute risk of each AE row per arm and the risk difference (experimental - reference,
    percentage points, Newcombe hybrid score 95% CI) for each (experimental, reference) pair.

    Parameters
    ----------
    ae : the by-arm table of :func:`summarize_ae` (rows and order kept).
    denominators : safety population per arm label.
    pairs : [(experimental, reference), ...] arm labels.
    """
    wide = ae.pivot_table(index=["soc", "pt"], columns="group", values="n_subjects", aggfunc="first", sort=False)
    parts = []
    for exp, ref in pairs:
        n1, n0 = denominators[exp], denominators[ref]
        x1, x0 = wide[exp].to_numpy(float), wide[ref].to_numpy(float)
        d, lo, hi = compute_risk_difference(x1, n1, x0, n0)
        parts.append(pd.DataFrame({"soc": wide.index.get_level_values(0), "pt": wide.index.get_level_values(1),
                                   "comparison": f"{exp} vs {ref}", "n_exp": x1.astype(int), "N_exp": n1,
                                   "n_ref": x0.astype(int), "N_ref": n0, "risk_exp": 100 * x1 / n1,
                                   "risk_ref": 100 * x0 / n0, "difference": 100 * d, "ci_lower": 100 * lo,
                                   "ci_upper": 100 * hi}))
    return pd.concat(parts, ignore_index=True)[AE_RISK_COLUMNS]


def summarize_ae_by_severity(adae: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None,
                             groups=None, severity_col: str = "AESEV") -> pd.DataFrame:
    """Subjects by worst severity (MILD < MODERATE < SEVERE) per SOC/PT row.

    Same rows and order as :func:`summarize_ae`; a subject appears once per row, under the worst
    severity of their treatment-emergent events in that row (missing severity: "UNKNOWN").

    Returns
    -------
    DataFrame soc, pt, severity, group, n_subjects, percent.
    """
    pop, labels = _population(adsl, group_col, groups)
    denom = _with_total(pop, labels).groupby("group").size().reindex(labels, fill_value=0)
    _require(adae, [severity_col], "adae")
    ae = _teae(adae, pop, False, extra=[severity_col])
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    ae = ae.assign(_rank=ae[severity_col].map(rank).fillna(-1))
    keys = _expand_keys(ae)
    order = _row_order(keys)
    worst = keys.groupby(["soc", "pt", "group", "USUBJID"])["_rank"].max().reset_index()
    sev_levels = SEVERITY_ORDER + (["UNKNOWN"] if (worst["_rank"] < 0).any() else [])
    worst["severity"] = worst["_rank"].map(lambda r: SEVERITY_ORDER[int(r)] if r >= 0 else "UNKNOWN")
    worst = _with_total(worst, labels)
    agg = worst.groupby(["soc", "pt", "severity", "group"]).size().rename("n_subjects")
    idx = pd.MultiIndex.from_tuples([(s, p, v, g) for s, p in order for v in sev_levels for g in labels],
                                    names=["soc", "pt", "severity", "group"])
    out = agg.reindex(idx, fill_value=0).reset_index()
    out["percent"] = 100.0 * out["n_subjects"] / out["group"].map(denom).replace(0, np.nan)
    return out.astype({"n_subjects": int})


def _days(a: pd.Series, b: pd.Series) -> pd.Series:
    return (pd.to_datetime(a) - pd.to_datetime(b)).dt.days.astype("Int64")


def list_saes(adae: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None) -> pd.DataFrame:
    """Listing of serious adverse events (AESER == "Y") of the subjects in ``adsl``.

    Returns
    -------
    DataFrame subject, site_id, [group,] soc, term, start, end, study_day, severity,
    relationship, outcome, treatment_emergent; sorted by site, subject, start. The group column
    appears only when ``group_col`` is given.
    """
    _require(adae, ["USUBJID", "AESER", "AEDECOD", "ASTDT"], "adae")
    keep = ["USUBJID", "SITEID"] + ([group_col] if group_col else [])
    sub = adsl[[c for c in keep if c in adsl.columns]]
    ae = adae[adae["AESER"] == "Y"].drop(columns=[c for c in keep[1:] if c in adae.columns])
    ae = ae.merge(sub, on="USUBJID", how="inner")
    get = lambda c: ae[c] if c in ae.columns else pd.Series(pd.NA, index=ae.index)
    out = pd.DataFrame({"subject": ae["USUBJID"], "site_id": get("SITEID")})
    if group_col:
        out["group"] = ae[group_col]
    out = out.assign(soc=get("AEBODSYS"), term=ae["AEDECOD"], start=pd.to_datetime(ae["ASTDT"]),
                     end=pd.to_datetime(get("AENDT")), study_day=get("ASTDY"), severity=get("AESEV"),
                     relationship=get("AEREL"), outcome=get("AEOUT"), treatment_emergent=get("TRTEMFL"))
    return out.sort_values(["site_id", "subject", "start"], kind="stable").reset_index(drop=True)


def list_deaths(adsl: pd.DataFrame, adae: pd.DataFrame | None = None, group_col: str | None = None) -> pd.DataFrame:
    """Listing of deaths (DTHFL == "Y" in ``adsl``) with the fatal AE terms when any.

    Returns
    -------
    DataFrame subject, site_id, [group,] randomised, death_date, study_day (DTHDT - RANDDT, day 0
    = randomisation), fatal_ae (AEDECOD of events with AEOUT "FATAL" or AESDTH "Y", joined by
    "; "; empty when none); sorted by death date.
    """
    _require(adsl, ["USUBJID", "DTHFL"], "adsl")
    d = adsl[adsl["DTHFL"] == "Y"]
    get = lambda c: d[c] if c in d.columns else pd.Series(pd.NA, index=d.index)
    out = pd.DataFrame({"subject": d["USUBJID"], "site_id": get("SITEID")})
    if group_col:
        out["group"] = d[group_col]
    out["randomised"] = pd.to_datetime(get("RANDDT"))
    out["death_date"] = pd.to_datetime(get("DTHDT"))
    out["study_day"] = _days(out["death_date"], out["randomised"])
    fatal = pd.Series(dtype=str)
    if adae is not None and len(adae):
        f = pd.Series(False, index=adae.index)
        for c, v in (("AEOUT", "FATAL"), ("AESDTH", "Y")):
            if c in adae.columns:
                f |= (adae[c] == v).fillna(False)
        terms = adae.loc[f, ["USUBJID", "AEDECOD"]].dropna().astype(str).drop_duplicates()
        fatal = terms.groupby("USUBJID", sort=False)["AEDECOD"].agg("; ".join)   # first-seen order
    out["fatal_ae"] = out["subject"].map(fatal).fillna("")
    return out.sort_values(["death_date", "subject"], kind="stable").reset_index(drop=True)


def _cycles_per_subject(adex: pd.DataFrame, adsl: pd.DataFrame, group_col, groups):
    _require(adex, ["USUBJID", "CYCLE"], "adex")
    pop, labels = _population(adsl, group_col, groups)
    ex = adex[adex["NDOSES"] > 0] if "NDOSES" in adex.columns else adex
    cycles = ex.groupby("USUBJID")["CYCLE"].nunique()
    pop = pop.assign(cycles=pop["USUBJID"].map(cycles).fillna(0).astype(int))
    return _with_total(pop, labels), labels


def summarize_exposure(adex: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None,
                       groups=None) -> pd.DataFrame:
    """Treatment cycles received per subject (a cycle counts when NDOSES > 0) in the safety
    population; subjects with no exposure record count as 0 cycles.

    Returns
    -------
    DataFrame group, n, mean, sd, median, min, max (sample SD).
    """
    pop, labels = _cycles_per_subject(adex, adsl, group_col, groups)
    g = pop.groupby("group")["cycles"]
    out = pd.DataFrame({"n": g.size(), "mean": g.mean(), "sd": g.std(ddof=1), "median": g.median(),
                        "min": g.min(), "max": g.max()}).reindex(labels)
    out["n"] = out["n"].fillna(0).astype(int)
    return out.rename_axis("group").reset_index()


def summarize_exposure_distribution(adex: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None,
                                    groups=None) -> pd.DataFrame:
    """Distribution of cycles received: group, cycles, n, percent (0 to the maximum observed)."""
    pop, labels = _cycles_per_subject(adex, adsl, group_col, groups)
    top = int(pop["cycles"].max()) if len(pop) else 0
    counts = pop.groupby(["group", "cycles"]).size()
    idx = pd.MultiIndex.from_product([labels, range(top + 1)], names=["group", "cycles"])
    out = counts.reindex(idx, fill_value=0).rename("n").reset_index()
    denom = pop.groupby("group").size()
    out["percent"] = 100.0 * out["n"] / out["group"].map(denom).replace(0, np.nan)
    return out


def summarize_lab_over_time(bds: pd.DataFrame, paramcd: str, group_col: str | None = None,
                            groups=None, value_col: str = "AVAL") -> pd.DataFrame:
    """Summary of one BDS parameter by visit (AVISITN order).

    Returns
    -------
    DataFrame group, visit (AVISIT), day (median ADY at the visit), n, mean, sd, median, q1, q3
    (numpy type-7 quartiles), one row per group and visit with data; no "Total" group.
    """
    _require(bds, ["PARAMCD", "AVISIT", value_col] + ([group_col] if group_col else []), "bds")
    d = bds[(bds["PARAMCD"] == paramcd) & bds[value_col].notna()].copy()
    d["group"] = ALL if group_col is None else d[group_col].astype(str)
    d["_vn"] = d["AVISITN"] if "AVISITN" in d.columns else d.groupby("AVISIT").ngroup()
    d["_day"] = d["ADY"] if "ADY" in d.columns else np.nan
    labels = [ALL] if group_col is None else (
        list(groups) if groups is not None else sorted(d["group"].unique()))
    rows = []
    for (grp, vn, visit), x in d.groupby(["group", "_vn", "AVISIT"], sort=True):
        v = x[value_col].to_numpy(float)
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        rows.append({"group": grp, "visit": visit, "_vn": vn, "day": x["_day"].median(), "n": len(v),
                     "mean": v.mean(), "sd": v.std(ddof=1) if len(v) > 1 else np.nan,
                     "median": med, "q1": q1, "q3": q3})
    cols = ["group", "visit", "day", "n", "mean", "sd", "median", "q1", "q3"]
    out = pd.DataFrame(rows, columns=cols + ["_vn"])
    out = out[out["group"].isin(labels)]
    out["_g"] = out["group"].map({g: i for i, g in enumerate(labels)})
    return out.sort_values(["_g", "_vn"], kind="stable")[cols].reset_index(drop=True)
