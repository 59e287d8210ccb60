"""Validation rules of concomitant care (adcm), protocol deviations (addv) and the date last known
alive (ADSL LSTALVDT), issue 14. ``check_care`` is called by ``validate_rules.cross_checks``.

Rules (names listed in ``data_access/DATASETS.md``; each message names the file, column, subject
and the dates involved):

- ``care_after_death``: an adcm or addv record starting after the subject's death (DTHDT);
- ``care_before_randomisation``: NIV, permanent assisted ventilation, gastrostomy or
  tracheostomy (adcm CARECD NIV, PAV, GASTRO, TRACH) started before randomisation, which the
  eligibility criteria exclude;
- ``missing_value``: a value the data contract needs is empty (adcm CMDECOD, ASTDT without a
  partial date; addv DVCAT, DVTERM, ASTDT without a partial date);
- ``site_mismatch``: addv SITEID differs from the subject's ADSL SITEID;
- ``date_order``: adcm AENDT before ASTDT; ``duplicate_record``: identical adcm or addv records
  (apart from CMSEQ / DVSEQ / ENTDT);
- ``last_alive_after_death``: LSTALVDT after DTHDT (not when DTHDT is before randomisation, which
  ``death_before_randomisation`` reports);
- ``last_alive_before_record``: LSTALVDT before a record that shows the subject alive (ADT of a
  BDS dataset, ASTDT of adae, adex, adcm; for the dead only records up to the death date);
- ``last_alive_after_cut``: LSTALVDT later than every other clinical date of the delivery
  (entry dates ENTDT left out). Validation is not told the cut-off date; in a snapshot cut by
  ``mirocals cut`` / ``demo`` no clinical date is after the cut, so a LSTALVDT later than all of
  them is after the cut (or a contact recorded nowhere else).
"""
from __future__ import annotations

import pandas as pd

from data_access.validate_dataset import ProblemReport

PROCEDURES = ("NIV", "PAV", "GASTRO", "TRACH")
PROCEDURE_WORDS = {"NIV": "NIV", "PAV": "permanent assisted ventilation", "GASTRO": "gastrostomy",
                   "TRACH": "tracheostomy"}
ALIVE_EVIDENCE = {"adae": "ASTDT", "adex": "ASTDT", "adcm": "ASTDT"}     # BDS datasets: ADT
NOT_EVIDENCE = ("adsl", "adtte", "addv", "screening", "allocation")
REQUIRED_VALUES = {"adcm": ("CMDECOD", "ASTDT"), "addv": ("DVCAT", "DVTERM", "ASTDT")}


def _dt(df: pd.DataFrame, col: str) -> bool:
    return col in df and pd.api.types.is_datetime64_any_dtype(df[col])


def _d(value) -> str:
    return f"{value:%Y-%m-%d}"


def check_care(r: ProblemReport, d: dict[str, pd.DataFrame], study=None) -> None:
    """Every rule of this module over the readable working copies ``d`` (dates parsed)."""
    adsl = d.get("adsl")
    if adsl is not None and "USUBJID" not in adsl:
        adsl = None
    one = adsl.drop_duplicates("USUBJID").set_index("USUBJID") if adsl is not None else None
    for name in ("adcm", "addv"):
        df = d.get(name)
        if df is None or "USUBJID" not in df:
            continue
        _missing(r, name, df)
        _duplicates(r, name, df)
        if one is not None:
            _after_death(r, name, df, one)
    cm = d.get("adcm")
    if cm is not None and "USUBJID" in cm:
        if _dt(cm, "ASTDT") and _dt(cm, "AENDT"):
            for idx in cm.index[(cm["AENDT"] < cm["ASTDT"]).to_numpy(dtype=bool)]:
                row = cm.loc[idx]
                r.add("adcm", "AENDT", row["USUBJID"], "date_order",
                      f"AENDT {_d(row['AENDT'])} of {row['USUBJID']} ({row.get('CMDECOD')}) is before ASTDT "
                      f"{_d(row['ASTDT'])}")
        if one is not None:
            _before_randomisation(r, cm, one)
    dv = d.get("addv")
    if dv is not None and one is not None and {"USUBJID", "SITEID"} <= set(dv.columns) and "SITEID" in one:
        site = dv["USUBJID"].map(one["SITEID"])
        bad = site.notna() & dv["SITEID"].notna() & (dv["SITEID"].astype(str) != site.astype(str))
        for idx in dv.index[bad.to_numpy(dtype=bool)]:
            s = dv.at[idx, "USUBJID"]
            r.add("addv", "SITEID", s, "site_mismatch", f"deviation of {s} at site {dv.at[idx, 'SITEID']} but "
                  f"ADSL SITEID is {site[idx]}")
    if one is not None and _dt(one, "LSTALVDT"):
        _last_alive(r, d, one)


def _missing(r: ProblemReport, name: str, df: pd.DataFrame) -> None:
    for col in REQUIRED_VALUES[name]:
        if col not in df:
            continue                                # a missing column is the schema's finding
        empty = df[col].isna()
        if col == "ASTDT" and "ASTDTC" in df:
            empty &= df["ASTDTC"].isna()            # a partial date is reported as partial_date
        if df[col].dtype == object:
            empty |= df[col].astype(str).str.strip().eq("") & df[col].notna()
        for idx in df.index[empty.to_numpy(dtype=bool)]:
            s = df.at[idx, "USUBJID"]
            what = df.at[idx, "DVTERM"] if name == "addv" and "DVTERM" in df and col != "DVTERM" else \
                df.at[idx, "CMTRT"] if name == "adcm" and "CMTRT" in df and col != "CMTRT" else f"row {idx + 1}"
            r.add(name, col, s, "missing_value", f"{col} is empty for {s} ({what})")


def _duplicates(r: ProblemReport, name: str, df: pd.DataFrame) -> None:
    key = [c for c in df.columns if c not in ("CMSEQ", "DVSEQ", "ENTDT")]
    dup = df[df.duplicated(key, keep="first")]
    for s, g in dup.groupby("USUBJID", dropna=False, sort=True):
        r.add(name, "USUBJID", s, "duplicate_record", f"{len(g)} duplicated record(s) for {s} (identical records)")


def _after_death(r: ProblemReport, name: str, df: pd.DataFrame, one: pd.DataFrame) -> None:
    if not (_dt(df, "ASTDT") and _dt(one, "DTHDT")):
        return
    death = df["USUBJID"].map(one["DTHDT"])
    bad = death.notna() & (df["ASTDT"] > death)
    what = "DVTERM" if name == "addv" else "CMDECOD"
    for idx in df.index[bad.to_numpy(dtype=bool)]:
        s = df.at[idx, "USUBJID"]
        r.add(name, "ASTDT", s, "care_after_death", f"{df.at[idx, what] if what in df else 'record'} of {s} starts "
              f"{_d(df.at[idx, 'ASTDT'])}, after death (DTHDT {_d(death[idx])})")


def _before_randomisation(r: ProblemReport, cm: pd.DataFrame, one: pd.DataFrame) -> None:
    if not ({"CARECD"} <= set(cm.columns) and _dt(cm, "ASTDT") and _dt(one, "RANDDT")):
        return
    rand = cm["USUBJID"].map(one["RANDDT"])
    bad = cm["CARECD"].isin(PROCEDURES) & rand.notna() & (cm["ASTDT"] < rand)
    for idx in cm.index[bad.to_numpy(dtype=bool)]:
        s = cm.at[idx, "USUBJID"]
        r.add("adcm", "ASTDT", s, "care_before_randomisation",
              f"{PROCEDURE_WORDS[cm.at[idx, 'CARECD']]} of {s} started {_d(cm.at[idx, 'ASTDT'])}, before randomisation "
              f"({_d(rand[idx])}); assisted ventilation and gastrostomy exclude from the trial")


def _last_alive(r: ProblemReport, d: dict[str, pd.DataFrame], one: pd.DataFrame) -> None:
    last = one["LSTALVDT"]
    death = one["DTHDT"] if _dt(one, "DTHDT") else pd.Series(pd.NaT, index=one.index)
    wrong_death = (death < one["RANDDT"]) if _dt(one, "RANDDT") else False     # death_before_randomisation's
    after_death = (last > death) & ~wrong_death
    for s in one.index[after_death.to_numpy(dtype=bool)]:
        r.add("adsl", "LSTALVDT", s, "last_alive_after_death",
              f"LSTALVDT {_d(last[s])} of {s} is after the death date DTHDT {_d(death[s])}")
    latest_record, latest_any = {}, []
    for name, df in d.items():
        if name == "allocation":
            continue
        for col in df.columns:
            if col in ("ENTDT", "LSTALVDT") or not _dt(df, col):
                continue
            if df[col].notna().any():
                latest_any.append((df[col].max(), name, col))
        if name in NOT_EVIDENCE or "USUBJID" not in df:
            continue
        col = ALIVE_EVIDENCE.get(name, "ADT")
        if not _dt(df, col):
            continue
        dates = df[col]
        limit = df["USUBJID"].map(death)
        dates = dates.where(limit.isna() | (dates <= limit))        # after death: care_after_death's finding
        best = dates.groupby(df["USUBJID"], sort=False).max().dropna()
        latest_record[(name, col)] = best[best.index.isin(one.index)]
    if latest_record:
        rec = pd.DataFrame(latest_record)                       # subject x (dataset, date column)
        top = rec.max(axis=1)
        bad = last.reindex(rec.index).notna() & (last.reindex(rec.index) < top)
        for s in rec.index[bad.to_numpy(dtype=bool)]:
            name, col = rec.loc[s].idxmax()
            r.add("adsl", "LSTALVDT", s, "last_alive_before_record",
                  f"LSTALVDT {_d(last[s])} of {s} is before the subject's {name} record dated {col} {_d(top[s])}")
    if latest_any:
        top = max(t[0] for t in latest_any)
        for s in one.index[((last > top) & ~after_death).to_numpy(dtype=bool)]:     # after death: reported
            r.add("adsl", "LSTALVDT", s, "last_alive_after_cut",
                  f"LSTALVDT {_d(last[s])} of {s} is later than every other date of the delivery (the latest is "
                  f"{_d(top)}): after the data cut-off?")
