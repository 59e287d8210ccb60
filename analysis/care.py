"""Treatment adherence and vital-status currency: pure computations on ADSL and the exposure
dataset (no I/O, no Streamlit). The output layer (``analysis.outputs.care``) defines the tables.

Adherence (CONSORT 2025 item 24a; the NIH DSMB report template's "treatment duration"): a
participant's treatment cycles are scheduled every ``cycle_days`` days from the first dose
(TRTSDT; RANDDT when missing), at most ``cycles`` of them. A cycle is *due* at the cut-off when
its scheduled start is on or before the cut-off, on or before the end of study (EOSDT) and before
death (DTHDT). It is *received* when at least one injection was given (NDOSES > 0), *complete*
when all ``doses_per_cycle`` injections were. A participant's adherence is received / due cycles
(participants with no cycle due yet are left out of the adherence summaries); the threshold
(default 80 %) is the usual definition of an adherent participant in trials of injectable
treatment.

Vital-status currency (FDA 2006 DMC guidance: the open report covers the timeliness of the
data): death is the primary endpoint, so for each participant not known to have died and still in
follow-up at the cut-off (no end of study recorded on or before the cut-off), the days between
the cut-off and the date last known alive (LSTALVDT). Participants whose last contact is more than
``overdue_days`` before the cut-off are listed for the data manager.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ALL = "All"
ALL_SITES = "All sites"
DAYS_PER_MONTH = 30.4375


def _dates(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    return pd.to_datetime(df[col], errors="coerce")


def _groups(adsl: pd.DataFrame, group_col: str | None, groups) -> tuple[pd.Series, list[str]]:
    if group_col is None:
        return pd.Series(ALL, index=adsl.index), [ALL]
    labels = list(groups) if groups is not None else sorted(adsl[group_col].dropna().astype(str).unique())
    return adsl[group_col].astype(str), labels


def cycles_due(adsl: pd.DataFrame, cut, cycles: int = 19, cycle_days: int = 28) -> pd.Series:
    """Number of treatment cycles due at ``cut`` per participant (index of ``adsl``): scheduled
    starts ``first dose + k * cycle_days`` (k = 0 .. cycles - 1) on or before the cut-off, on or
    before the end of study and before death."""
    cut = pd.Timestamp(cut)
    start = _dates(adsl, "TRTSDT").fillna(_dates(adsl, "RANDDT"))
    end = pd.Series(cut, index=adsl.index)
    eos = _dates(adsl, "EOSDT")
    end = end.where(~(eos < end), eos)
    death = _dates(adsl, "DTHDT") - pd.Timedelta(days=1)        # a cycle starting on the day of death is not due
    end = end.where(~(death < end), death)
    days = (end - start).dt.days
    due = np.floor(days / cycle_days) + 1
    return due.clip(lower=0, upper=cycles).fillna(0).astype(int)


def subject_adherence(adex: pd.DataFrame, adsl: pd.DataFrame, cut, cycles: int = 19, cycle_days: int = 28,
                      doses_per_cycle: int = 5) -> pd.DataFrame:
    """One row per participant of ``adsl``: USUBJID, due, received (cycles with NDOSES > 0),
    complete (NDOSES = doses_per_cycle), doses (NDOSES summed), adherence (% of due cycles received; NaN
    when none is due), months on treatment (TRTSDT to TRTEDT inclusive)."""
    for col in ("USUBJID", "CYCLE", "NDOSES"):
        if col not in adex.columns:
            raise KeyError(f"exposure dataset: column {col} is required for adherence")
    ex = adex[["USUBJID", "CYCLE", "NDOSES"]].copy()
    ex["NDOSES"] = pd.to_numeric(ex["NDOSES"], errors="coerce").fillna(0)
    ex = ex[ex["CYCLE"] <= cycles]
    ex["received"] = (ex["NDOSES"] > 0).astype(int)         # vectorised flags, summed per participant
    ex["complete"] = (ex["NDOSES"] >= doses_per_cycle).astype(int)   # (a lambda per group: 19 s at 20,000)
    per = ex.groupby("USUBJID")[["received", "complete", "NDOSES"]].sum().rename(columns={"NDOSES": "doses"})
    out = pd.DataFrame({"USUBJID": adsl["USUBJID"].to_numpy(),
                        "due": cycles_due(adsl, cut, cycles, cycle_days).to_numpy()})
    out = out.join(per, on="USUBJID")
    for col in ("received", "complete", "doses"):
        out[col] = out[col].fillna(0).astype(int)
    out["received"] = np.minimum(out["received"], out["due"])   # a cycle recorded past the end is not counted twice
    out["adherence"] = np.where(out["due"] > 0, 100.0 * out["received"] / out["due"].where(out["due"] > 0), np.nan)
    first, last = _dates(adsl, "TRTSDT").to_numpy(), _dates(adsl, "TRTEDT").to_numpy()
    out["months_on_treatment"] = (pd.Series(last - first).dt.days.to_numpy() + 1) / DAYS_PER_MONTH
    return out


def summarize_adherence(adex: pd.DataFrame, adsl: pd.DataFrame, cut, group_col: str | None = None, groups=None,
                        cycles: int = 19, cycle_days: int = 28, doses_per_cycle: int = 5,
                        threshold: float = 80.0) -> pd.DataFrame:
    """Adherence by group (arm, or "All" pooled), one row per group.

    Columns: group, n, cycles_due, cycles_received, percent_received (of due cycles, all
    participants together), cycles_complete, cycles_not_received, doses, doses_due,
    adherence_median, adherence_q1, adherence_q3 (per-participant %, numpy type-7 quartiles),
    n_adherent and percent_adherent (participants at or above ``threshold`` % of due cycles, % of
    those with a cycle due), months_median, months_q1, months_q3 (time on treatment)."""
    grp, labels = _groups(adsl, group_col, groups)
    per = subject_adherence(adex, adsl, cut, cycles, cycle_days, doses_per_cycle)
    per["group"] = grp.to_numpy()
    rows = []
    for label in labels:
        d = per[per["group"] == label]
        has_due = d[d["due"] > 0]
        q = np.quantile(has_due["adherence"], [0.25, 0.5, 0.75]) if len(has_due) else [np.nan] * 3
        months = d["months_on_treatment"].dropna()
        m = np.quantile(months, [0.25, 0.5, 0.75]) if len(months) else [np.nan] * 3
        due, received = int(d["due"].sum()), int(d["received"].sum())
        adherent = int((has_due["adherence"] >= threshold).sum())
        rows.append({"group": label, "n": len(d), "cycles_due": due, "cycles_received": received,
                     "percent_received": 100.0 * received / due if due else np.nan,
                     "cycles_complete": int(d["complete"].sum()), "cycles_not_received": due - received,
                     "doses": int(d["doses"].sum()), "doses_due": due * doses_per_cycle,
                     "adherence_median": q[1], "adherence_q1": q[0], "adherence_q3": q[2],
                     "n_adherent": adherent,
                     "percent_adherent": 100.0 * adherent / len(has_due) if len(has_due) else np.nan,
                     "months_median": m[1], "months_q1": m[0], "months_q3": m[2]})
    return pd.DataFrame(rows)


def _in_follow_up(adsl: pd.DataFrame, cut) -> pd.Series:
    """Participants not known to have died and with no end of study on or before the cut-off."""
    cut = pd.Timestamp(cut)
    dead = (adsl["DTHFL"] == "Y") if "DTHFL" in adsl.columns else _dates(adsl, "DTHDT").notna()
    dead = dead | (_dates(adsl, "DTHDT") <= cut)
    ended = _dates(adsl, "EOSDT") <= cut
    return ~dead & ~ended


def vital_status_by_site(adsl: pd.DataFrame, cut, overdue_days: int = 120, site_col: str = "SITEID",
                         site_names: dict | None = None) -> pd.DataFrame:
    """Vital-status currency by site and for all sites.

    Columns: site, site_name, randomised, died, ended (end of study without death: completed or
    withdrawn), in_follow_up, missing_date (in follow-up without LSTALVDT), median_days,
    max_days (cut-off minus LSTALVDT, participants in follow-up), no_contact (more than
    ``overdue_days`` days)."""
    if "LSTALVDT" not in adsl.columns:
        raise KeyError("ADSL has no date last known alive (LSTALVDT)")
    cut = pd.Timestamp(cut)
    d = pd.DataFrame({"site": adsl[site_col].astype(str).to_numpy()})
    follow = _in_follow_up(adsl, cut).to_numpy()
    dead = ((adsl["DTHFL"] == "Y") if "DTHFL" in adsl.columns else _dates(adsl, "DTHDT").notna()).to_numpy()
    d["died"] = dead
    d["ended"] = ~dead & ~follow
    d["follow"] = follow
    days = (cut - _dates(adsl, "LSTALVDT")).dt.days.to_numpy()
    d["days"] = np.where(follow, days, np.nan)
    d["missing"] = follow & np.isnan(days)

    def summary(x: pd.DataFrame, site: str, name) -> dict:
        known = x["days"].dropna()
        return {"site": site, "site_name": name, "randomised": len(x), "died": int(x["died"].sum()),
                "ended": int(x["ended"].sum()), "in_follow_up": int(x["follow"].sum()),
                "missing_date": int(x["missing"].sum()),
                "median_days": float(known.median()) if len(known) else np.nan,
                "max_days": float(known.max()) if len(known) else np.nan,
                "no_contact": int((known > overdue_days).sum() + x["missing"].sum())}
    names = site_names or {}
    rows = [summary(x, site, names.get(site)) for site, x in d.groupby("site", sort=True)]
    rows.append(summary(d, ALL_SITES, None))
    return pd.DataFrame(rows)


def no_recent_contact(adsl: pd.DataFrame, cut, overdue_days: int = 120, site_col: str = "SITEID") -> pd.DataFrame:
    """Participants in follow-up whose date last known alive is more than ``overdue_days`` before
    the cut-off, or missing: USUBJID, site, randomised, last_known_alive, days_since (longest
    first; missing dates first of all)."""
    if "LSTALVDT" not in adsl.columns:
        raise KeyError("ADSL has no date last known alive (LSTALVDT)")
    cut = pd.Timestamp(cut)
    follow = _in_follow_up(adsl, cut)
    last = _dates(adsl, "LSTALVDT")
    days = (cut - last).dt.days
    keep = follow & (days.isna() | (days > overdue_days))
    out = pd.DataFrame({"USUBJID": adsl.loc[keep, "USUBJID"].to_numpy(),
                        "site": adsl.loc[keep, site_col].astype(str).to_numpy(),
                        "randomised": _dates(adsl, "RANDDT")[keep].dt.date.to_numpy(),
                        "last_known_alive": last[keep].dt.date.to_numpy(),
                        "days_since": days[keep].to_numpy()})
    out["_missing"] = out["days_since"].isna()
    out = out.sort_values(["_missing", "days_since", "USUBJID"], ascending=[False, False, True], kind="mergesort")
    return out.drop(columns="_missing").reset_index(drop=True)


# --------------------------------------------------------------------------- concomitant care
CARE_TYPES = {"NIV": "Non-invasive ventilation", "GASTRO": "Gastrostomy", "PAV": "Permanent assisted ventilation",
              "TRACH": "Tracheostomy"}
# NIV starts at the latest on the day permanent assisted ventilation does (PAV is NIV >= 22 h/day)
CARE_IMPLIED = {"NIV": ("NIV", "PAV")}


def cumulative_incidence(time, status, at=()) -> tuple[pd.DataFrame, list[float]]:
    """Aalen-Johansen cumulative incidence of the event of interest (``status`` 1) with a
    competing event (``status`` 2, death) and censoring (0): at each distinct time t_j,
    CIF(t_j) = CIF(t_j-) + S(t_j-) d1_j / n_j, with S the Kaplan-Meier survival from either event
    (ties: events before censorings at the same time, as in R ``survfit``).

    Returns (the step function as time, cif; the CIF at each of ``at``)."""
    time = np.asarray(time, float)
    status = np.asarray(status, int)
    times = np.unique(time[status > 0])
    cif, surv, steps = 0.0, 1.0, [(0.0, 0.0)]
    for t in times:
        n = int((time >= t).sum())
        d1 = int(((time == t) & (status == 1)).sum())
        d = int(((time == t) & (status > 0)).sum())
        if n == 0:
            continue
        cif += surv * d1 / n
        surv *= 1 - d / n
        steps.append((float(t), cif))
    curve = pd.DataFrame(steps, columns=["time", "cif"])
    values = [float(curve.loc[curve["time"] <= t, "cif"].iloc[-1]) for t in at]
    return curve, values


def care_times(adcm: pd.DataFrame, os_tte: pd.DataFrame, care: str) -> pd.DataFrame:
    """One row per participant of ``os_tte`` (USUBJID, AVAL days to death or censoring, CNSR):
    prevalent (the care began before randomisation), time (days), status (1 care, 2 death
    first, 0 censored) for care type ``care`` (a CARECD; NIV also starts with PAV)."""
    codes = CARE_IMPLIED.get(care, (care,))
    c = adcm[adcm["CARECD"].isin(codes)].copy()
    c["day"] = pd.to_numeric(c["ASTDY"], errors="coerce")
    first = c.groupby("USUBJID")["day"].min()
    d = os_tte[["USUBJID", "AVAL", "CNSR"]].copy()
    d["care_day"] = d["USUBJID"].map(first)
    d["prevalent"] = d["care_day"] < 0
    has = d["care_day"].notna() & ~d["prevalent"] & (d["care_day"] <= d["AVAL"])
    d["time"] = np.where(has, d["care_day"], d["AVAL"]).astype(float)
    d["status"] = np.where(has, 1, np.where(d["CNSR"] == 0, 2, 0))
    return d


def summarize_care(adcm: pd.DataFrame, os_tte: pd.DataFrame, group_col: str | None = None, groups=None,
                   times=(320, 640)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time to each ALS care milestone by group (arm, or "All" pooled).

    Returns (table, curves). Table columns: care (CARECD), care_label, group, n (participants),
    prevalent (care already begun at randomisation: not at risk), at_risk, events, percent_events
    (% of those at risk), deaths_first (died before the care), cif_<t> for each of ``times``
    (cumulative incidence, %, death a competing event). Curves: care, group, time, cif (%)."""
    grp, labels = _groups(os_tte, group_col, groups)
    rows, curves = [], []
    for care, label in CARE_TYPES.items():
        d = care_times(adcm, os_tte, care)
        d["group"] = grp.to_numpy()
        for g in labels:
            x = d[d["group"] == g]
            risk = x[~x["prevalent"]]
            curve, at = cumulative_incidence(risk["time"], risk["status"], times)
            events = int((risk["status"] == 1).sum())
            row = {"care": care, "care_label": label, "group": g, "n": len(x), "prevalent": int(x["prevalent"].sum()),
                   "at_risk": len(risk), "events": events,
                   "percent_events": 100.0 * events / len(risk) if len(risk) else np.nan,
                   "deaths_first": int((risk["status"] == 2).sum())}
            row.update({f"cif_{t}": 100.0 * v for t, v in zip(times, at)})
            rows.append(row)
            curves.append(curve.assign(care=care, group=g, cif=100.0 * curve["cif"]))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)[["care", "group", "time", "cif"]]


def summarize_medications(adcm: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None,
                          groups=None) -> pd.DataFrame:
    """Participants taking at least one medication of each ATC class (level 2) at any time in the
    study (riluzole included), by group; plus participants whose riluzole dose was reduced
    (a once-daily row after randomisation). Columns: atc_code, atc_class, group, n_subjects,
    percent (of the group's participants), sorted by overall frequency."""
    grp, labels = _groups(adsl, group_col, groups)
    pop = pd.DataFrame({"USUBJID": adsl["USUBJID"].to_numpy(), "group": grp.to_numpy()})
    denom = pop.groupby("group").size()
    meds = adcm[adcm["CMCAT"] == "CONCOMITANT MEDICATION"].merge(pop, on="USUBJID")
    meds = meds[meds["CMCLAS"].notna()]
    counts = meds.groupby(["CMCLASCD", "CMCLAS", "group"])["USUBJID"].nunique().rename("n_subjects").reset_index()
    order = meds.groupby("CMCLAS")["USUBJID"].nunique().sort_values(ascending=False, kind="mergesort")
    ril = meds[(meds["CARECD"] == "RILUZOLE") & (meds["CMDOSFRQ"] == "QD") & (pd.to_numeric(meds["ASTDY"], errors="coerce") > 0)]
    rows = []
    for cls in order.index:
        code = counts.loc[counts["CMCLAS"] == cls, "CMCLASCD"].iloc[0]
        for g in labels:
            n = counts.loc[(counts["CMCLAS"] == cls) & (counts["group"] == g), "n_subjects"].sum()
            rows.append({"atc_code": code, "atc_class": cls, "group": g, "n_subjects": int(n)})
    for g in labels:
        rows.append({"atc_code": "N07", "atc_class": "Riluzole dose reduced", "group": g,
                     "n_subjects": int(ril.loc[ril["group"] == g, "USUBJID"].nunique())})
    out = pd.DataFrame(rows, columns=["atc_code", "atc_class", "group", "n_subjects"])
    out["percent"] = 100.0 * out["n_subjects"] / out["group"].map(denom).replace(0, np.nan).to_numpy()
    return out


# --------------------------------------------------------------------------- protocol deviations
def summarize_deviations(addv: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None,
                         groups=None) -> pd.DataFrame:
    """Deviations by category and importance, by group: category ("Any category" first),
    importance ("Any", "Important", "Minor"), group, n_deviations, n_subjects, percent (of the
    group's participants)."""
    grp, labels = _groups(adsl, group_col, groups)
    pop = pd.DataFrame({"USUBJID": adsl["USUBJID"].to_numpy(), "group": grp.to_numpy()})
    denom = pop.groupby("group").size()
    d = addv.merge(pop, on="USUBJID")
    d["importance"] = np.where(d["DVIMPFL"] == "Y", "Important", np.where(d["DVIMPFL"] == "N", "Minor", "Not graded"))
    d["DVCAT"] = d["DVCAT"].fillna("Category missing")
    rows = []
    for cat in ["Any category"] + sorted(d["DVCAT"].unique()):
        x = d if cat == "Any category" else d[d["DVCAT"] == cat]
        for imp in ["Any", "Important", "Minor"] + (["Not graded"] if (x["importance"] == "Not graded").any() else []):
            y = x if imp == "Any" else x[x["importance"] == imp]
            if imp != "Any" and y.empty:
                continue
            for g in labels:
                z = y[y["group"] == g]
                rows.append({"category": cat, "importance": imp, "group": g, "n_deviations": len(z),
                             "n_subjects": int(z["USUBJID"].nunique())})
    out = pd.DataFrame(rows, columns=["category", "importance", "group", "n_deviations", "n_subjects"])
    out["percent"] = 100.0 * out["n_subjects"] / out["group"].map(denom).replace(0, np.nan).to_numpy()
    return out


def deviations_by_site(addv: pd.DataFrame, adsl: pd.DataFrame, site_col: str = "SITEID",
                       site_names: dict | None = None) -> pd.DataFrame:
    """Per site (ADSL's site) and for all sites: site, site_name, participants, deviations,
    important, subjects_with_important, per_participant (deviations per participant)."""
    site = adsl.set_index("USUBJID")[site_col].astype(str)
    d = addv.assign(site=addv["USUBJID"].map(site)).dropna(subset=["site"])
    names = site_names or {}
    rows = []
    for s in sorted(site.unique()) + [ALL_SITES]:
        x = d if s == ALL_SITES else d[d["site"] == s]
        n = len(site) if s == ALL_SITES else int((site == s).sum())
        imp = x[x["DVIMPFL"] == "Y"]
        rows.append({"site": s, "site_name": names.get(s), "participants": n, "deviations": len(x),
                     "important": len(imp), "subjects_with_important": int(imp["USUBJID"].nunique()),
                     "per_participant": len(x) / n if n else np.nan})
    return pd.DataFrame(rows)


def list_important_deviations(addv: pd.DataFrame, adsl: pd.DataFrame, site_col: str = "SITEID") -> pd.DataFrame:
    """Important deviations, one row each: USUBJID, site (ADSL's), date, study_day, category, term."""
    site = adsl.set_index("USUBJID")[site_col].astype(str)
    d = addv[(addv["DVIMPFL"] == "Y") & addv["USUBJID"].isin(site.index)]
    out = pd.DataFrame({"USUBJID": d["USUBJID"].to_numpy(), "site": d["USUBJID"].map(site).to_numpy(),
                        "date": _dates(d, "ASTDT").dt.date.to_numpy(),
                        "study_day": pd.to_numeric(d["ASTDY"], errors="coerce").astype("Int64").to_numpy()
                        if "ASTDY" in d else pd.NA,
                        "category": d["DVCAT"].to_numpy(), "term": d["DVTERM"].to_numpy()})
    return out.sort_values(["site", "date", "USUBJID"], kind="mergesort", na_position="last").reset_index(drop=True)


def summarize_interruptions(adex: pd.DataFrame, adsl: pd.DataFrame, group_col: str | None = None, groups=None,
                            doses_per_cycle: int = 5) -> pd.DataFrame:
    """Cycles in which fewer than ``doses_per_cycle`` doses were given, by reason (EXADJ; "Not
    recorded" when the delivery has no reason) and group: reason ("Any reason" first, then by
    frequency), group, cycles, n_subjects, percent (of the group's participants)."""
    grp, labels = _groups(adsl, group_col, groups)
    pop = pd.DataFrame({"USUBJID": adsl["USUBJID"].to_numpy(), "group": grp.to_numpy()})
    denom = pop.groupby("group").size()
    ex = adex.merge(pop, on="USUBJID")
    ex = ex[pd.to_numeric(ex["NDOSES"], errors="coerce").fillna(0) < doses_per_cycle].copy()
    ex["reason"] = ex["EXADJ"].fillna("Not recorded") if "EXADJ" in ex.columns else "Not recorded"
    order = ex["reason"].value_counts(sort=True).index.tolist()
    rows = []
    for reason in ["Any reason"] + sorted(order, key=lambda r: (-int((ex["reason"] == r).sum()), r)):
        x = ex if reason == "Any reason" else ex[ex["reason"] == reason]
        for g in labels:
            y = x[x["group"] == g]
            rows.append({"reason": reason, "group": g, "cycles": len(y), "n_subjects": int(y["USUBJID"].nunique())})
    out = pd.DataFrame(rows, columns=["reason", "group", "cycles", "n_subjects"])
    out["percent"] = 100.0 * out["n_subjects"] / out["group"].map(denom).replace(0, np.nan).to_numpy()
    return out
