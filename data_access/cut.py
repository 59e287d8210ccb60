"""Data cuts: the trial as it was known at a cut-off date.

Rules (each tested on hand-built cases in ``tests/test_cut.py``); "after the cut" means a date
strictly later than the cut date, so the cut date itself is known:

- ADSL keeps subjects randomised on or before the cut (a subject whose RANDDT is missing is
  kept, for validation to report). A death after the cut is unknown: DTHFL and DTHDT null. An
  end of study after the cut is unknown: EOSDT and DCSREAS null, EOSSTT "ONGOING". A date last
  known alive (LSTALVDT) after the cut becomes the last date on or before the cut on which the
  subject is known to have been alive (the ADaM derivation): the latest of RANDDT, TRTSDT and the
  dates of the subject's records kept by the cut (ADT, ASTDT, AENDT; not ADTTE, whose censoring
  dates are derived from it); a date on or before the
  cut is kept (the death date for the dead). Treatment that started after the cut is unknown (TRTSDT, TRTEDT
  null, SAFFL "N"); a last dose after the cut is capped: TRTEDT = cut.
- The screening log keeps people screened on or before the cut (and those with no screening
  date). A run-in whose outcome (randomisation or drop-out, RUNINEDT) came after the cut is still
  running at the cut: OUTCOME "IN RUN-IN", REASON, USUBJID and RUNINEDT null; a run-in that
  started after the cut also loses RUNINSDT. Screen failures are decided at screening.
- Dated records keep those dated on or before the cut: BDS datasets by ADT; ADAE, ADEX, ADCM
  and ADDV by ASTDT (deviations are not evidence that the subject was alive). A record whose
  date is missing (a partial date kept as text in ``*DTC``) is kept, never dropped silently.
  End dates (AENDT) after the cut become null: the AE or the cycle is ongoing at the cut, so
  AEOUT becomes "NOT RECOVERED" (a fatal outcome after the cut too, AESDTH "N"); an ADCM
  medication course or riluzole dose period ending after the cut is ongoing (AENDT null).
- ADTTE is censored administratively at the cut: any record whose ADT is after the cut (an event
  not yet happened, or a censoring at a later last-known-alive date) becomes CNSR = 1 with
  ADT = cut date (CNSDTDSC "DATA CUT-OFF", EVNTDESC "CENSORED AT DATA CUT-OFF"). Using the cut
  date rather than the last contact before it is the usual convention for administrative
  censoring (the subject was under follow-up and alive at the cut). AVAL = ADT - STARTDT (days).
- Records of subjects randomised after the cut are dropped from every dataset; records whose
  subject was never in ADSL are kept (they are data problems for validation to report). The
  allocation keeps only subjects randomised by the cut.
- ENTDT (data entry date) is not used: a visit done before the cut but entered after it is kept,
  and validation reports it as ``late_entry``.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

RECORD_DATE = {"adae": "ASTDT", "adex": "ASTDT", "adcm": "ASTDT", "addv": "ASTDT",
               "adtte": "STARTDT"}   # default for BDS: ADT
CUTOFF_CENSOR = "DATA CUT-OFF"
CUTOFF_EVNTDESC = "CENSORED AT DATA CUT-OFF"


def _ts(cut) -> pd.Timestamp:
    if isinstance(cut, str):
        cut = dt.date.fromisoformat(cut)
    return pd.Timestamp(cut).normalize()


def _after(df: pd.DataFrame, col: str, cut: pd.Timestamp) -> pd.Series:
    """True where ``col`` holds a date after the cut (False where missing or absent)."""
    if col not in df:
        return pd.Series(False, index=df.index)
    return pd.to_datetime(df[col]) > cut


def _set_null(df: pd.DataFrame, mask: pd.Series, cols) -> None:
    for col in cols:
        if col in df and mask.any():
            if _is_date(df, col):
                df[col] = pd.to_datetime(df[col]).mask(mask)
            else:
                values = df[col].astype(object).copy()
                values[mask] = None
                df[col] = values


def _is_date(df: pd.DataFrame, col: str) -> bool:
    return pd.api.types.is_datetime64_any_dtype(df[col]) or col.upper().endswith("DT")


def _set(df: pd.DataFrame, mask: pd.Series, col: str, value) -> None:
    if col in df and mask.any():
        df.loc[mask, col] = value


def cut_adsl(adsl: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    """ADSL as known at ``cut`` (see module doc). Needs USUBJID and RANDDT."""
    rand = pd.to_datetime(adsl["RANDDT"])
    adsl = adsl[rand.isna() | (rand <= cut)].copy()
    died_later = _after(adsl, "DTHDT", cut)
    _set_null(adsl, died_later, ["DTHFL", "DTHDT"])
    ended_later = _after(adsl, "EOSDT", cut)
    _set(adsl, ended_later, "EOSSTT", "ONGOING")
    _set_null(adsl, ended_later, ["EOSDT", "DCSREAS"])
    started_later = _after(adsl, "TRTSDT", cut)
    _set_null(adsl, started_later, ["TRTSDT", "TRTEDT"])
    _set(adsl, started_later, "SAFFL", "N")
    for col in ("LSTALVDT", "TRTEDT"):          # LSTALVDT is then derived from the cut records
        if col in adsl:
            dates = pd.to_datetime(adsl[col])
            adsl[col] = dates.mask(dates > cut, cut)
    return adsl.reset_index(drop=True)


def cut_screening(screening: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    """The screening log as known at ``cut`` (see module doc)."""
    scr_dt = pd.to_datetime(screening["SCRNDT"])
    scr = screening[scr_dt.isna() | (scr_dt <= cut)].copy()
    pending = (scr["OUTCOME"] != "SCREEN FAILURE") & (
        _after(scr, "RUNINEDT", cut) | _after(scr, "RUNINSDT", cut))
    _set(scr, pending, "OUTCOME", "IN RUN-IN")
    _set_null(scr, pending, ["REASON", "USUBJID", "RUNINEDT"])
    _set_null(scr, pending & _after(scr, "RUNINSDT", cut), ["RUNINSDT"])
    return scr.reset_index(drop=True)


def keep_records(df: pd.DataFrame, date_col: str, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    """Keep records dated on or before the cut (or undated), dropping subjects in ``later``."""
    keep = pd.Series(True, index=df.index)
    if date_col in df:
        dates = pd.to_datetime(df[date_col])
        keep &= dates.isna() | (dates <= cut)
    if "USUBJID" in df:
        keep &= ~df["USUBJID"].isin(later)
    return df[keep].reset_index(drop=True)


def cut_adae(adae: pd.DataFrame, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    """AEs started by the cut; an AE ending after the cut is ongoing (AENDT null, NOT RECOVERED)."""
    adae = keep_records(adae, "ASTDT", cut, later)
    ended_later = _after(adae, "AENDT", cut)
    if "AEOUT" in adae:
        _set(adae, ended_later & (adae["AEOUT"] == "FATAL"), "AESDTH", "N")
    _set(adae, ended_later, "AEOUT", "NOT RECOVERED")
    _set_null(adae, ended_later, ["AENDT"])
    return adae


def cut_adex(adex: pd.DataFrame, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    """Cycles started by the cut; a cycle ending after the cut is ongoing (AENDT null)."""
    adex = keep_records(adex, "ASTDT", cut, later)
    _set_null(adex, _after(adex, "AENDT", cut), ["AENDT"])
    return adex


def cut_adtte(adtte: pd.DataFrame, cut: pd.Timestamp, later: set) -> pd.DataFrame:
    """Time-to-event records censored administratively at the cut (see module doc)."""
    tte = keep_records(adtte, "STARTDT", cut, later)
    after = _after(tte, "ADT", cut)
    tte["ADT"] = pd.to_datetime(tte["ADT"]).mask(after, cut)
    _set(tte, after, "CNSR", 1)
    _set(tte, after, "EVNTDESC", CUTOFF_EVNTDESC)
    _set(tte, after, "CNSDTDSC", CUTOFF_CENSOR)
    if "STARTDT" in tte:
        days = (tte["ADT"] - pd.to_datetime(tte["STARTDT"])).dt.days.astype(float)
        tte["AVAL"] = days.where(days.notna(), tte["AVAL"]) if "AVAL" in tte else days
    if "CNSR" in tte and tte["CNSR"].notna().all():
        tte["CNSR"] = tte["CNSR"].astype(int)
    return tte


ALIVE_DATES = ("ADT", "ASTDT", "AENDT")


def _last_known_alive(adsl: pd.DataFrame, adsl_full: pd.DataFrame, cut_sets: dict, cut: pd.Timestamp) -> pd.DataFrame:
    """LSTALVDT at the cut: kept when on or before the cut; when it was after the cut, the latest
    date on or before the cut the subject is known alive (RANDDT, TRTSDT, and the ADT, ASTDT and
    AENDT of the subject's records in the cut datasets)."""
    original = pd.to_datetime(adsl_full.set_index("USUBJID")["LSTALVDT"])
    later = adsl["USUBJID"].map(original) > cut
    if not later.any():
        return adsl
    parts = [adsl[["USUBJID", c]].rename(columns={c: "date"}) for c in ("RANDDT", "TRTSDT") if c in adsl]
    for name, df in cut_sets.items():
        # ADTTE's censoring dates derive from it; a deviation (a missed visit) shows no contact
        if name in ("adsl", "adtte", "addv") or "USUBJID" not in df.columns:
            continue
        for col in ALIVE_DATES:
            if col in df.columns:
                parts.append(df[["USUBJID", col]].rename(columns={col: "date"}))
    dates = pd.concat(parts, ignore_index=True)
    dates["date"] = pd.to_datetime(dates["date"], errors="coerce")
    latest = dates[dates["date"] <= cut].groupby("USUBJID")["date"].max()
    adsl = adsl.copy()
    current = pd.to_datetime(adsl["LSTALVDT"])
    adsl["LSTALVDT"] = current.mask(later, adsl["USUBJID"].map(latest))
    return adsl


def cut_datasets(clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame | None, cut_date):
    """Cut every dataset at ``cut_date``.

    Parameters
    ----------
    clinical : dataset name -> DataFrame; must contain ``adsl`` (USUBJID, RANDDT).
    allocation : the randomisation list or None.
    cut_date : date, Timestamp or ISO string.

    Returns
    -------
    (clinical, allocation) : new frames (the inputs are not modified), rows in input order.
    """
    if "adsl" not in clinical:
        raise ValueError("cut_datasets needs the adsl dataset (RANDDT decides who is in the cut)")
    cut = _ts(cut_date)
    adsl_full = clinical["adsl"]
    adsl = cut_adsl(adsl_full, cut)
    kept = set(adsl["USUBJID"])
    later = set(adsl_full["USUBJID"]) - kept           # randomised after the cut
    cutters = {"adtte": cut_adtte, "adae": cut_adae, "adex": cut_adex, "adcm": cut_adex}
    out = {}
    for name, df in clinical.items():
        if name == "adsl":
            out[name] = adsl
        elif name == "screening":
            out[name] = cut_screening(df, cut)
        elif name in cutters:
            out[name] = cutters[name](df, cut, later)
        else:
            out[name] = keep_records(df, RECORD_DATE.get(name, "ADT"), cut, later)
    if "LSTALVDT" in adsl.columns:
        out["adsl"] = _last_known_alive(adsl, adsl_full, out, cut)
    alloc = None
    if allocation is not None:
        alloc = allocation[allocation["USUBJID"].isin(kept)].reset_index(drop=True)
    return out, alloc


def cut_snapshot(src_dir, cut_date, out_dir, created: str | None = None, overwrite: bool = False) -> Path:
    """Cut the snapshot at ``src_dir`` and write the result as a new snapshot at ``out_dir``.

    Reads ``src_dir/clinical`` (and ``src_dir/allocation`` when present). The new manifest's
    source is ``"cut of <source clinical content hash>"``. A cut after the source's own cut
    date is refused (data after it are not in the source). Returns ``out_dir``.
    """
    from data_access.snapshot import load_datasets, read_manifest, write_snapshot
    src_dir = Path(src_dir)
    clinical_dir = src_dir / "clinical" if (src_dir / "clinical").is_dir() else src_dir
    manifest = read_manifest(clinical_dir)
    cut = _ts(cut_date).date()
    if manifest.get("cut_date") and cut > dt.date.fromisoformat(manifest["cut_date"]):
        raise ValueError(f"cannot cut at {cut}: the source snapshot holds data only up to "
                         f"{manifest['cut_date']}")
    clinical = load_datasets(clinical_dir)
    alloc_dir = src_dir / "allocation"
    allocation = load_datasets(alloc_dir)["allocation"] if (alloc_dir / "manifest.json").exists() else None
    clinical, allocation = cut_datasets(clinical, allocation, cut)
    sidecars = {name: (clinical_dir / name).read_bytes()      # an imported snapshot's study config and labels
                for name in manifest.get("files", {}) if not name.endswith(".parquet")}
    write_snapshot(out_dir, clinical, allocation, manifest.get("study", "UNKNOWN"), cut,
                   source=f"cut of {manifest['content_hash']}", created=created, overwrite=overwrite,
                   sidecars=sidecars)
    return Path(out_dir)
