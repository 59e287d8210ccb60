"""Data cuts: the trial as it was known at a cut-off date.

Rules (each tested on hand-built cases in ``tests/test_cut.py``):
- ADSL keeps subjects randomised on or before the cut; deaths, discontinuations and end-of-study
  after the cut are unknown (DTHFL/DTHDT/EOSDT/DCSREAS cleared, EOSSTT "ONGOING"); LSTALVDT and
  TRTEDT are capped at the cut.
- The screening log keeps people screened by the cut; an outcome reached after the cut is not yet
  known: OUTCOME "IN RUN-IN", REASON/USUBJID/RUNINEDT cleared.
- Dated records (visits, labs, AEs, exposure) keep those dated on or before the cut; a record
  whose date is missing (a partial date kept as text) is kept, never dropped silently; AE end
  dates after the cut are cleared and the outcome becomes "NOT RECOVERED".
- ADTTE is censored administratively at the cut: an event after the cut becomes CNSR = 1 at the
  cut date (the subject was under follow-up then), AVAL = ADT - STARTDT.
- Records of subjects randomised after the cut are dropped; records whose subject was never in
  ADSL are kept (they are data problems for validation to report).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

RECORD_DATE = {"adae": "ASTDT", "adex": "ASTDT"}     # default for BDS datasets: ADT


def _ts(cut) -> pd.Timestamp:
    return pd.Timestamp(cut if not isinstance(cut, str) else dt.date.fromisoformat(cut))


def cut_adsl(adsl: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    adsl = adsl[pd.to_datetime(adsl["RANDDT"]) <= cut].copy()
    if "DTHDT" in adsl:
        later = pd.to_datetime(adsl["DTHDT"]) > cut
        adsl.loc[later, "DTHDT"] = pd.NaT
        if "DTHFL" in adsl:
            adsl.loc[later, "DTHFL"] = None
    if "EOSDT" in adsl:
        later = pd.to_datetime(adsl["EOSDT"]) > cut
        adsl.loc[later, "EOSDT"] = pd.NaT
        if "EOSSTT" in adsl:
            adsl.loc[later, "EOSSTT"] = "ONGOING"
        if "DCSREAS" in adsl:
            adsl.loc[later, "DCSREAS"] = None
    for col in ("LSTALVDT", "TRTEDT"):
        if col in adsl:
            adsl[col] = pd.to_datetime(adsl[col]).where(pd.to_datetime(adsl[col]) <= cut, cut)
    return adsl.reset_index(drop=True)


def cut_screening(screening: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    scr = screening[pd.to_datetime(screening["SCRNDT"]) <= cut].copy()
    pending = (scr["OUTCOME"] != "SCREEN FAILURE") & (pd.to_datetime(scr["RUNINEDT"]) > cut)
    scr.loc[pending, "OUTCOME"] = "IN RUN-IN"
    for col in ("REASON", "USUBJID"):
        scr.loc[pending, col] = None
    scr.loc[pending, "RUNINEDT"] = pd.NaT
    # a screen failure decided after the cut: still in screening at the cut; keep it visible
    return scr.reset_index(drop=True)


def cut_adae(adae: pd.DataFrame, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    adae = _keep(adae, "ASTDT", cut, later)
    if "AENDT" in adae:
        ended_later = pd.to_datetime(adae["AENDT"]) > cut
        adae.loc[ended_later, "AENDT"] = pd.NaT
        if "AEOUT" in adae:
            adae.loc[ended_later & (adae["AEOUT"] != "FATAL"), "AEOUT"] = "NOT RECOVERED"
            fatal_later = ended_later & (adae["AEOUT"] == "FATAL")
            adae.loc[fatal_later, "AEOUT"] = "NOT RECOVERED"
            if "AESDTH" in adae:
                adae.loc[fatal_later, "AESDTH"] = "N"
    return adae


def _keep(df: pd.DataFrame, date_col: str, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    """Keep records dated by the cut (or undated), dropping subjects randomised after the cut."""
    keep = pd.Series(True, index=df.index)
    if date_col in df:
        dates = pd.to_datetime(df[date_col])
        keep &= dates.isna() | (dates <= cut)
    if "USUBJID" in df:
        keep &= ~df["USUBJID"].isin(later)
    return df[keep].reset_index(drop=True)


def cut_adtte(adtte: pd.DataFrame, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    tte = _keep(adtte, "STARTDT", cut, later).copy()
    after = pd.to_datetime(tte["ADT"]) > cut
    tte.loc[after, "ADT"] = cut
    tte.loc[after, "CNSR"] = 1
    if "EVNTDESC" in tte:
        tte.loc[after, "EVNTDESC"] = None
    if "CNSDTDSC" in tte:
        tte.loc[after, "CNSDTDSC"] = "DATA CUT-OFF"
    tte["AVAL"] = (pd.to_datetime(tte["ADT"]) - pd.to_datetime(tte["STARTDT"])).dt.days.astype(float)
    tte["CNSR"] = tte["CNSR"].astype(int)
    return tte


def cut_datasets(clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame | None, cut_date):
    """Cut every dataset at ``cut_date``; returns ``(clinical, allocation)`` (new frames)."""
    cut = _ts(cut_date)
    adsl_full = clinical["adsl"]
    adsl = cut_adsl(adsl_full, cut)
    kept = set(adsl["USUBJID"])
    later = set(adsl_full["USUBJID"]) - kept           # randomised after the cut
    out = {"adsl": adsl}
    for name, df in clinical.items():
        if name == "adsl":
            continue
        if name == "screening":
            out[name] = cut_screening(df, cut)
        elif name == "adtte":
            out[name] = cut_adtte(df, cut, later)
        elif name == "adae":
            out[name] = cut_adae(df, cut, later)
        else:
            out[name] = _keep(df, RECORD_DATE.get(name, "ADT"), cut, later)
    alloc = None
    if allocation is not None:
        alloc = allocation[allocation["USUBJID"].isin(kept)].reset_index(drop=True)
    return out, alloc


def cut_snapshot(src_dir, cut_date, out_dir, created: str | None = None) -> Path:
    """Read ``src_dir/clinical`` (and ``src_dir/allocation`` when present), cut, write ``out_dir``."""
    from data_access.snapshot import load_datasets, read_manifest, write_snapshot
    from data_access.study import load_study
    src_dir = Path(src_dir)
    clinical = load_datasets(src_dir / "clinical")
    manifest = read_manifest(src_dir / "clinical")
    alloc_dir = src_dir / "allocation"
    allocation = load_datasets(alloc_dir)["allocation"] if (alloc_dir / "manifest.json").exists() else None
    clinical, allocation = cut_datasets(clinical, allocation, cut_date)
    cut = _ts(cut_date).date()
    write_snapshot(out_dir, clinical, allocation, load_study(), cut,
                   source=f"cut of {manifest['content_hash'][:16]} at {cut}", created=created)
    return Path(out_dir)
