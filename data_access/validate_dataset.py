"""Validation's problem rows and its per-dataset checks.

``ProblemReport`` collects problem rows (``COLUMNS``: site, subject, dataset, column, rule, value,
message, severity; a rule in ``WARNING_RULES`` is a warning, any other an error; the site is the
subject's, filled in by ``frame`` from ``sites``; the value is the offending value when the check
gives it, else read from the message, empty when the problem has no single value). ``check_dataset`` runs the
pandera schemas of one dataset (``data_access.schemas``: required columns, types, values) and the
partial-date rule, and turns the failure cases into problem rows. The entry points are in
``data_access.validate``; the cross-dataset rules in ``data_access.validate_rules``.
"""
from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa

from data_access.schemas import ALSFRS_MAX, KIND_LABEL, parse_dates, structure_schema, value_schema

COLUMNS = ["site", "subject", "dataset", "column", "rule", "value", "message", "severity"]
WARNING_RULES = {"late_entry", "partial_date"}


class ProblemReport:
    """Collects problem rows; ``files`` maps a dataset to its file name for messages; ``sites``
    (set before ``frame``) maps a subject (USUBJID or SCRNID) to its site."""

    def __init__(self, files: dict[str, str]):
        self.rows: list[dict] = []
        self.files = files
        self.sites: dict[str, str] = {}

    def file(self, dataset: str) -> str:
        return self.files.get(dataset, f"{dataset}.parquet")

    def add(self, dataset, column, subject, rule, message, severity=None, value=None):
        subject = "" if subject is None or pd.isna(subject) else str(subject)
        if value is None:
            value = value_in_message(column or "", message, subject)
        self.rows.append({"site": "", "subject": subject, "dataset": dataset, "column": column or "",
                          "rule": rule, "value": "" if value is None else _fmt_value(value),
                          "message": f"{self.file(dataset)}: {message}",
                          "severity": severity or ("warning" if rule in WARNING_RULES else "error")})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=COLUMNS).drop_duplicates()
        df["site"] = df["subject"].map(lambda s: self.sites.get(s, "")).fillna("")
        return df.sort_values(["dataset", "rule", "subject", "column", "message"], kind="stable").reset_index(drop=True)


_DATE = r"\d{4}-\d{2}-\d{2}"


def value_in_message(column: str, message: str, subject: str = "") -> str:
    """The offending value a rule's message names, for a rule that does not pass it: ``COL=value``
    (the column's, else the first ``CODE=value``: ``ALSFRST=44`` of a total in AVAL),
    ``COL 2019-03-01`` or ``dated 2019-03-01`` (dates), or the subject itself for a USUBJID problem
    (``subject_not_in_adsl``, ``duplicate_subject``). Empty when the message names no single value
    (duplicated records, late entry)."""
    col = re.escape(column)
    for pattern in ((rf"(?<![\w]){col}=('[^']*'|[^\s,;]+)" if column else None), r"(?<![\w])[A-Z][A-Z0-9_]*=('[^']*'|[^\s,;]+)",
                    (rf"(?<![\w]){col} ({_DATE})" if column else None), rf"\bdated ({_DATE})"):
        if pattern is None:
            continue
        m = re.search(pattern, message)
        if m:
            return m.group(1)
    return subject if column == "USUBJID" and subject else ""


def _fmt_value(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return _fmt(value)


def subject_of(name: str, df: pd.DataFrame):
    """The subject of each row: SCRNID in the screening log, else USUBJID (None when absent)."""
    key = "SCRNID" if name == "screening" and "SCRNID" in df else "USUBJID"
    return df[key] if key in df else pd.Series(None, index=df.index, dtype=object)


def _fmt(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _at(df: pd.DataFrame, idx) -> str:
    return f" at {df.at[idx, 'AVISIT']}" if "AVISIT" in df and pd.notna(df.at[idx, "AVISIT"]) else ""


def check_dataset(r: ProblemReport, name: str, df: pd.DataFrame, cols) -> pd.DataFrame:
    """Schema checks of one dataset; returns a working copy (dates parsed, mistyped columns
    dropped) for the cross-dataset rules. ``df`` itself is not changed."""
    work = df.reset_index(drop=True)           # a copy; positions identify rows in messages
    for col in work.columns:                   # dates stored as text or datetime.date objects
        if str(col).endswith("DT") and work[col].dtype == object:
            parsed = parse_dates(work[col])
            if parsed.notna().sum() == work[col].notna().sum():
                work[col] = parsed
    subjects = subject_of(name, work)
    if cols is None:
        _check_partial_dates(r, name, work, subjects)
        return work
    bad_cols = set()
    for c in cols:
        if c.name not in work and not c.required:
            r.add(name, c.name, None, "missing_column", f"expected column {c.name} is missing", severity="warning")
    try:
        structure_schema(cols).validate(work, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        kinds = {c.name: c.kind for c in cols}
        for f in exc.failure_cases.itertuples(index=False):
            if f.check == "column_in_dataframe":
                r.add(name, f.failure_case, None, "missing_column", f"required column {f.failure_case} is missing")
                continue
            bad_cols.add(f.column)
            want = KIND_LABEL.get(kinds.get(f.column), "?")
            if f.index is None or pd.isna(f.index):
                r.add(name, f.column, None, "wrong_type",
                      f"column {f.column} should hold {want} but is stored as {work[f.column].dtype}")
            else:
                s = subjects.get(f.index)
                r.add(name, f.column, s, "wrong_type", f"{f.column}={_fmt(f.failure_case)} for {s}"
                      f"{_at(work, f.index)} is not {want}", value=f.failure_case)
    work = work.drop(columns=sorted(bad_cols))
    typed = [c for c in cols if c.name in work]
    by_name = {c.name: c for c in typed}
    try:
        value_schema(name, typed).validate(work, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        fc = fc[fc["index"].notna()]
        for f in fc[fc["check"] != "alsfrs_range"].itertuples(index=False):
            c, s = by_name[f.column], subjects.get(f.index)
            r.add(name, f.column, s, c.rule, f"{f.column}={_fmt(f.failure_case)} for {s}{_at(work, f.index)} "
                  f"{c.describe()}", value=f.failure_case)
        for idx in sorted(set(fc.loc[fc["check"] == "alsfrs_range", "index"])):
            code, aval, s = work.at[idx, "PARAMCD"], work.at[idx, "AVAL"], subjects.get(idx)
            how = "is outside" if aval % 1 == 0 else "is not a whole number in"
            r.add(name, "AVAL", s, "value_out_of_range",
                  f"{code} AVAL={aval:g} for {s}{_at(work, idx)} {how} 0-{ALSFRS_MAX[code]}", value=aval)
    _check_partial_dates(r, name, work, subjects)
    return work


def _check_partial_dates(r: ProblemReport, name: str, df: pd.DataFrame, subjects: pd.Series) -> None:
    """A non-null ``xxDTC`` text that is not a full YYYY-MM-DD date, with ``xxDT`` null."""
    for dtc in [c for c in df.columns if str(c).endswith("DTC")]:
        col = dtc[:-1]
        text = df[dtc].astype("string")
        partial = text.notna() & ~text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)
        if col in df:
            partial &= df[col].isna()
        for idx in df.index[partial.to_numpy(dtype=bool)]:
            r.add(name, col, subjects.get(idx), "partial_date",
                  f"{col} of {subjects.get(idx)} is known only as {text[idx]} ({dtc}); {col} is empty",
                  value=str(text[idx]))

