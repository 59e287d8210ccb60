"""Visit completeness and data-entry timeliness: which scheduled visits were done, missed or are
overdue at a data cut, by site, and how long sites take to enter what they saw.

Pure: DataFrames in, DataFrames out. Nothing here needs or uses the allocation: every output
holds subjects, sites and visits only, so the same tables serve blinded and unblinded roles.

Visit status (one row per subject x scheduled visit), decided in this order:

- ``done``: the subject has an assessment with that visit number (``AVISITN``), whatever its
  date (a visit done out of window is done);
- ``not_expected``: the subject died (``DTHDT``) or discontinued (``EOSDT`` when ``EOSSTT`` is
  ``DISCONTINUED``) strictly before the visit's target date;
- ``missed``: the window closed before the cut (target + ``window_days`` < cut), or a later visit
  of the same subject was done;
- ``overdue``: the target date is on or before the cut but the window is still open at the cut;
- ``not_due``: the target date is after the cut;
- ``unknown``: the subject has no randomisation date (so no target date) and no assessment.

Target date = randomisation date (``RANDDT``) + the visit's study day; ``AVISITN`` is the
visit's 1-based position in the schedule (``data_access/DATASETS.md``). Expected visits are
``done + missed + overdue``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

STATUSES = ("done", "missed", "overdue", "not_due", "not_expected", "unknown")
EXPECTED = ("done", "missed", "overdue")
TOTAL = "Total"
LATE_ENTRY_DAYS = 30     # same threshold as the ``late_entry`` validation rule


def _require(df: pd.DataFrame, cols, name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing required column(s): {', '.join(missing)}")


def _end_of_follow_up(adsl: pd.DataFrame) -> pd.Series:
    """Earliest of the death date and the discontinuation date (NaT when neither is known)."""
    nat = pd.Series(pd.NaT, index=adsl.index, dtype="datetime64[ns]")
    death = pd.to_datetime(adsl["DTHDT"]) if "DTHDT" in adsl.columns else nat
    if "EOSDT" in adsl.columns and "EOSSTT" in adsl.columns:
        stop = pd.to_datetime(adsl["EOSDT"]).where(adsl["EOSSTT"] == "DISCONTINUED")
    else:
        stop = nat
    return pd.concat([death.astype("datetime64[ns]"), stop.astype("datetime64[ns]")], axis=1).min(axis=1)


def derive_visit_status(adsl: pd.DataFrame, assessments: pd.DataFrame, visit_days, visit_names=None,
                        window_days: int = 14, cut_date=None, site_col: str = "SITEID") -> pd.DataFrame:
    """The status of every scheduled visit of every subject at the cut (see the module doc).

    Parameters
    ----------
    adsl : one row per randomised subject. Needs ``USUBJID`` (unique) and ``RANDDT``; uses
        ``site_col``, ``DTHDT``, ``EOSSTT`` and ``EOSDT`` when present.
    assessments : visit records, e.g. ADQS: needs ``USUBJID`` and ``AVISITN``; ``ADT`` (the
        assessment date) is reported when present. Several rows per visit (one per parameter)
        count once; rows whose AVISITN is not in the schedule are ignored.
    visit_days : study day of each scheduled visit (day 0 = randomisation), in schedule order.
    visit_names : name of each visit (default "Visit 1", "Visit 2", ...).
    window_days : the visit window after the target date.
    cut_date : the data cut-off date (required).
    site_col : the site column of ``adsl``.

    Returns
    -------
    DataFrame USUBJID, site, AVISITN, AVISIT, visit_day, target_date, window_end, status,
    assessment_date (first ADT of the visit, NaT when not done), days_since_target (cut - target
    date, in days); one row per subject and visit, sorted by site, subject, visit. No arm column.
    """
    _require(adsl, ["USUBJID", "RANDDT"], "adsl")
    _require(assessments, ["USUBJID", "AVISITN"], "assessments")
    if cut_date is None:
        raise ValueError("cut_date is required")
    if adsl["USUBJID"].duplicated().any():
        raise ValueError("adsl has duplicated USUBJID values")
    days = np.asarray(list(visit_days), dtype=int)
    names = list(visit_names) if visit_names is not None else [f"Visit {i + 1}" for i in range(len(days))]
    if len(names) != len(days):
        raise ValueError("visit_names and visit_days differ in length")
    cut = pd.Timestamp(cut_date).normalize()
    cut64 = cut.to_datetime64().astype("datetime64[ns]")
    n_sub, n_vis = len(adsl), len(days)

    rand = pd.to_datetime(adsl["RANDDT"]).to_numpy("datetime64[ns]")
    target = rand[:, None] + days[None, :].astype("timedelta64[D]")
    window_end = target + np.timedelta64(int(window_days), "D")
    end = _end_of_follow_up(adsl).to_numpy("datetime64[ns]")

    # done matrix (subject x visit) and first assessment date, with integer indexing only (ADQS
    # of 20,000 subjects holds millions of rows)
    row = pd.Index(adsl["USUBJID"]).get_indexer(assessments["USUBJID"])
    vn = pd.to_numeric(assessments["AVISITN"], errors="coerce").to_numpy(float)
    ok = (row >= 0) & (vn >= 1) & (vn <= n_vis)            # NaN compares False
    cell = row[ok] * n_vis + (vn[ok].astype(int) - 1)
    done = np.zeros(n_sub * n_vis, dtype=bool)
    done[cell] = True
    done = done.reshape(n_sub, n_vis)
    never = np.iinfo(np.int64).max
    first = np.full(n_sub * n_vis, never, dtype=np.int64)
    if "ADT" in assessments.columns and ok.any():
        adt = pd.to_datetime(assessments["ADT"]).to_numpy("datetime64[ns]")[ok]
        known = ~np.isnat(adt)
        np.minimum.at(first, cell[known], adt[known].view(np.int64))
    first_adt = np.where(first == never, np.datetime64("NaT", "ns"), first.view("datetime64[ns]"))

    # a later visit done: reverse cumulative OR over the visits after each one
    later_done = np.zeros_like(done)
    if n_vis > 1:
        later_done[:, :-1] = np.logical_or.accumulate(done[:, ::-1], axis=1)[:, ::-1][:, 1:]
    no_target = np.isnat(target)
    stopped = ~np.isnat(end)[:, None] & (end[:, None] < target)
    status = np.select(
        [done, no_target & ~later_done, stopped, later_done | (window_end < cut64), target <= cut64],
        ["done", "unknown", "not_expected", "missed", "overdue"], default="not_due")

    out = pd.DataFrame({
        "USUBJID": np.repeat(adsl["USUBJID"].to_numpy(), n_vis),
        "site": np.repeat(adsl[site_col].to_numpy() if site_col in adsl.columns else None, n_vis),
        "AVISITN": np.tile(np.arange(1, n_vis + 1), n_sub),
        "AVISIT": np.tile(np.asarray(names, dtype=object), n_sub),
        "visit_day": np.tile(days, n_sub),
        "target_date": target.ravel(), "window_end": window_end.ravel(),
        "status": status.ravel(), "assessment_date": first_adt})
    out["days_since_target"] = (cut - out["target_date"]).dt.days.astype("Int64")
    return out.sort_values(["site", "USUBJID", "AVISITN"], kind="stable").reset_index(drop=True)


def summarize_completeness_by_site(status: pd.DataFrame, adsl: pd.DataFrame | None = None,
                                   site_col: str = "SITEID") -> pd.DataFrame:
    """Expected, done, missed and overdue visits per site, with a Total row.

    Parameters
    ----------
    status : the output of :func:`derive_visit_status` (``USUBJID``, ``status``, and ``site``
        unless ``adsl`` is given).
    adsl : when given, the site of each subject is taken from its ``site_col`` (and sites with
        subjects but no scheduled visit still get a row).
    site_col : the site column of ``adsl``.

    Returns
    -------
    DataFrame site, subjects, expected (done + missed + overdue), done, missed, overdue, not_due,
    not_expected, percent_done (100 * done / expected; NaN when nothing is expected); sites sorted,
    then the ``Total`` row.
    """
    _require(status, ["USUBJID", "status"], "status")
    s = status[["USUBJID", "status"]].copy()
    if adsl is not None:
        _require(adsl, ["USUBJID", site_col], "adsl")
        site_of = dict(zip(adsl["USUBJID"], adsl[site_col].astype(str)))
        s["site"] = s["USUBJID"].map(site_of)
        sites = sorted(set(site_of.values()))
    else:
        _require(status, ["site"], "status")
        s["site"] = status["site"].astype(str)
        sites = sorted(s["site"].dropna().unique())
    counts = pd.crosstab(s["site"], s["status"]).reindex(index=sites, columns=list(STATUSES), fill_value=0)
    subjects = s.groupby("site")["USUBJID"].nunique().reindex(sites, fill_value=0)
    if adsl is not None:
        subjects = adsl.groupby(adsl[site_col].astype(str))["USUBJID"].nunique().reindex(sites, fill_value=0)
    out = counts.assign(subjects=subjects).rename_axis(columns=None)
    out.loc[TOTAL] = out.sum()
    out["expected"] = out[list(EXPECTED)].sum(axis=1)
    out["percent_done"] = 100.0 * out["done"] / out["expected"].replace(0, np.nan)
    cols = ["subjects", "expected", "done", "missed", "overdue", "not_due", "not_expected", "percent_done"]
    out = out.rename_axis("site").reset_index()[["site"] + cols]
    return out.astype({c: int for c in cols[:-1]})


def list_overdue_visits(status: pd.DataFrame) -> pd.DataFrame:
    """Visits overdue at the cut (target passed, window still open, not done), most overdue first.

    Returns
    -------
    DataFrame site, USUBJID, AVISIT, target_date, window_end, days_since_target.
    """
    _require(status, ["status", "site", "USUBJID", "AVISIT", "target_date", "window_end",
                      "days_since_target"], "status")
    od = status[status["status"] == "overdue"]
    cols = ["site", "USUBJID", "AVISIT", "target_date", "window_end", "days_since_target"]
    return od.sort_values(["days_since_target", "site", "USUBJID"], ascending=[False, True, True],
                          kind="stable")[cols].reset_index(drop=True)


def list_missed_visits(status: pd.DataFrame, site_names: dict | None = None) -> pd.DataFrame:
    """Every visit missed or overdue at the cut, one row each: what a data manager chases.

    Parameters
    ----------
    status : the output of :func:`derive_visit_status`.
    site_names : site id -> site name (the study's site list); a site without one gets an empty
        name.

    Returns
    -------
    DataFrame site, site_name, USUBJID, AVISITN, AVISIT, target_date, window_end, status
    (``missed`` or ``overdue``), days_overdue (cut - target date, in days: how long the visit has
    been awaited); sorted by site, subject and visit. No arm column.
    """
    _require(status, ["status", "site", "USUBJID", "AVISITN", "AVISIT", "target_date", "window_end",
                      "days_since_target"], "status")
    names = site_names or {}
    out = status[status["status"].isin(("missed", "overdue"))]
    out = out.assign(site_name=out["site"].map(lambda s: names.get(s, names.get(str(s), ""))),
                     days_overdue=out["days_since_target"])
    cols = ["site", "site_name", "USUBJID", "AVISITN", "AVISIT", "target_date", "window_end", "status",
            "days_overdue"]
    return out.sort_values(["site", "USUBJID", "AVISITN"], kind="stable")[cols].reset_index(drop=True)


def summarize_entry_lag(records: pd.DataFrame, adsl: pd.DataFrame, site_col: str = "SITEID",
                        date_col: str = "ADT", entry_col: str = "ENTDT",
                        late_days: int = LATE_ENTRY_DAYS) -> pd.DataFrame:
    """Data-entry lag (entry date - visit or event date, in days) by site, with a Total row.

    A record is one form: rows of ``records`` sharing subject, ``AVISITN`` (when present),
    ``date_col`` and ``entry_col`` count once (ADQS holds one row per item of a visit entered
    together). Records missing either date are left out. Subjects not in ``adsl`` are left out.

    Parameters
    ----------
    records : needs ``USUBJID``, ``date_col`` and ``entry_col``.
    adsl : needs ``USUBJID`` and ``site_col``.
    late_days : a record is late when entered more than this many days after its date.

    Returns
    -------
    DataFrame site, records, median_lag, p90_lag, max_lag (days), late (records entered more than
    ``late_days`` days later), percent_late; sites sorted, then ``Total``. Raises ``ValueError``
    when ``records`` has no ``entry_col`` column (the data then cannot say).
    """
    _require(records, ["USUBJID", date_col, entry_col], "records")
    _require(adsl, ["USUBJID", site_col], "adsl")
    keys = ["USUBJID"] + (["AVISITN"] if "AVISITN" in records.columns else []) + [date_col, entry_col]
    r = records[keys].dropna(subset=[date_col, entry_col]).drop_duplicates()
    site_of = dict(zip(adsl["USUBJID"], adsl[site_col].astype(str)))
    r = r.assign(site=r["USUBJID"].map(site_of)).dropna(subset=["site"])
    r["lag"] = (pd.to_datetime(r[entry_col]) - pd.to_datetime(r[date_col])).dt.days
    sites = sorted(set(site_of.values()))
    parts = [(s, r.loc[r["site"] == s, "lag"]) for s in sites] + [(TOTAL, r["lag"])]
    rows = []
    for site, lag in parts:
        n = len(lag)
        late = int((lag > late_days).sum())
        rows.append({"site": site, "records": n,
                     "median_lag": float(lag.median()) if n else np.nan,
                     "p90_lag": float(lag.quantile(0.9)) if n else np.nan,
                     "max_lag": float(lag.max()) if n else np.nan,
                     "late": late, "percent_late": 100.0 * late / n if n else np.nan})
    return pd.DataFrame(rows)
