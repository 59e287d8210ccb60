"""Data validation: one row per problem (dataset, column, subject, rule, severity, message).

Validation never modifies or drops data; it reports. It never crashes on a malformed, empty or
corrupt file: such a file is itself a problem (``file_unreadable`` / ``file_empty``) and the other
datasets are still checked. Rule names are listed in ``data_access/DATASETS.md``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from data_access.schemas import DOMAIN_CODES, ITEM_RE, TOTAL_CODE, build_schemas, pandera_schema

COLUMNS = ["dataset", "column", "subject", "rule", "severity", "message"]
WARNING_RULES = {"late_entry", "partial_date"}
LATE_ENTRY_DAYS = 30
DOMAIN_ITEMS = {"BULBAR": ["ALSFRS01", "ALSFRS02", "ALSFRS03"],
                "FINEMOT": ["ALSFRS04", "ALSFR05A", "ALSFR05B", "ALSFRS06"],
                "GROSSMOT": ["ALSFRS07", "ALSFRS08", "ALSFRS09"],
                "RESP": ["ALSFRS10", "ALSFRS11", "ALSFRS12"]}


class _Report:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, dataset, column, subject, rule, message, severity=None):
        self.rows.append({"dataset": dataset, "column": column or "", "subject": "" if subject is None else str(subject),
                          "rule": rule, "severity": severity or ("warning" if rule in WARNING_RULES else "error"),
                          "message": message})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=COLUMNS)
        return df.sort_values(["dataset", "rule", "subject", "column", "message"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- reading
def load_part(part_dir) -> tuple[dict[str, pd.DataFrame | Exception], dict[str, str]]:
    """Read every ``*.parquet`` / ``*.csv`` in a directory; a file that cannot be read maps to
    the exception. Returns (datasets, file names)."""
    part_dir = Path(part_dir)
    out: dict[str, pd.DataFrame | Exception] = {}
    files: dict[str, str] = {}
    for path in sorted(list(part_dir.glob("*.parquet")) + list(part_dir.glob("*.csv"))):
        files[path.stem] = path.name
        try:
            if path.stat().st_size == 0:
                raise ValueError("the file is empty (0 bytes)")
            df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            for col in df.columns:
                if str(col).upper().endswith("DT") and not pd.api.types.is_datetime64_any_dtype(df[col]):
                    parsed = pd.to_datetime(df[col], errors="coerce", format="ISO8601")
                    if parsed.notna().sum() == df[col].notna().sum():
                        df[col] = parsed
            out[path.stem] = df
        except Exception as exc:  # a corrupt file is a finding, not a crash
            out[path.stem] = exc
    return out, files


def validate_snapshot(part_dir, study=None, allocation_dir=None) -> pd.DataFrame:
    """Validate a snapshot's clinical directory (and the allocation's coverage when given)."""
    part_dir = Path(part_dir)
    if (part_dir / "clinical").is_dir():
        part_dir = part_dir / "clinical"
    datasets, files = load_part(part_dir)
    allocation = None
    if allocation_dir is not None:
        alloc, _ = load_part(allocation_dir)
        allocation = alloc.get("allocation", FileNotFoundError(f"{allocation_dir}: no allocation dataset"))
    report = validate_datasets(datasets, study=study, allocation=allocation, files=files)
    manifest = part_dir / "manifest.json"
    if manifest.exists():
        try:
            meta = json.loads(manifest.read_text())
            for name, info in meta.get("files", {}).items():
                stem = Path(name).stem
                df = datasets.get(stem)
                if isinstance(df, pd.DataFrame) and len(df) != info.get("rows", len(df)):
                    extra = pd.DataFrame([{"dataset": stem, "column": "", "subject": "", "rule": "row_count",
                                           "severity": "error",
                                           "message": f"{name}: {len(df)} rows, manifest says {info['rows']}"}])
                    report = pd.concat([report, extra], ignore_index=True)
        except (ValueError, OSError) as exc:
            report = pd.concat([report, pd.DataFrame([{"dataset": "manifest", "column": "", "subject": "",
                                "rule": "file_unreadable", "severity": "error",
                                "message": f"manifest.json: {exc}"}])], ignore_index=True)
    return report


def validate_datasets(datasets: dict, study=None, allocation=None, files: dict | None = None) -> pd.DataFrame:
    """Validate in-memory datasets (name -> DataFrame, or an Exception for an unreadable file)."""
    r = _Report()
    files = files or {}
    schemas = build_schemas(study)
    good: dict[str, pd.DataFrame] = {}
    items = list(datasets.items()) + ([("allocation", allocation)] if allocation is not None else [])
    for name, df in items:
        fname = files.get(name, f"{name}.parquet")
        if isinstance(df, Exception):
            rule = "file_empty" if "empty" in str(df) else "file_unreadable"
            r.add(name, "", None, rule, f"{fname}: cannot be read ({type(df).__name__}: {df})")
            continue
        if len(df) == 0:
            r.add(name, "", None, "file_empty", f"{fname}: has no rows")
        good[name] = df
        if name in schemas:
            _check_schema(r, name, fname, df, schemas[name])
    if "adsl" not in good and not any(n == "adsl" for n, _ in items):
        r.add("adsl", "", None, "file_unreadable", "adsl: no ADSL dataset in the snapshot")
    _cross_checks(r, good)
    return r.frame()


# --------------------------------------------------------------------------- per dataset
def _subjects(df: pd.DataFrame, index) -> list:
    if "USUBJID" in df.columns:
        return df.loc[index, "USUBJID"].tolist()
    if "SCRNID" in df.columns:
        return df.loc[index, "SCRNID"].tolist()
    return [None] * len(index)


def _kind_ok(s: pd.Series, kind: str) -> bool:
    if s.isna().all():
        return True
    if kind == "date":
        return pd.api.types.is_datetime64_any_dtype(s)
    if kind in ("num", "int"):
        return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def _check_schema(r: _Report, name: str, fname: str, df: pd.DataFrame, cols) -> None:
    present = set(df.columns)
    typed_ok = set()
    for c in cols:
        if c.name not in present:
            r.add(name, c.name, None, "missing_column",
                  f"{fname}: {'required' if c.required else 'expected'} column {c.name} is missing",
                  severity="error" if c.required else "warning")
        elif not _kind_ok(df[c.name], c.kind):
            r.add(name, c.name, None, "wrong_type",
                  f"{fname}: column {c.name} should be {c.kind} but is {df[c.name].dtype}")
        else:
            typed_ok.add(c.name)
    checked = [c for c in cols if c.name in typed_ok]
    rules = {c.name: c.rule for c in checked}
    try:
        pandera_schema(checked, typed_ok).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        fc = fc[fc["index"].notna()]
        for col, check, value, idx in zip(fc["column"], fc["check"], fc["failure_case"], fc["index"]):
            subject = _subjects(df, [idx])[0]
            r.add(name, col, subject, rules.get(col, "invalid_code"),
                  f"{fname}: {col}={value!r} for {subject} fails {check}")
    _check_partial_dates(r, name, fname, df)
    if name == "adqs":
        _check_alsfrs_ranges(r, fname, df)


def _check_partial_dates(r, name, fname, df):
    for dtc in [c for c in df.columns if str(c).endswith("DTC")]:
        date_col = dtc[:-1]
        text = df[dtc].astype("string")
        partial = text.notna() & ~text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)
        for idx in df.index[partial.to_numpy()]:
            subject = _subjects(df, [idx])[0]
            r.add(name, date_col, subject, "partial_date",
                  f"{fname}: {date_col} is a partial date ({text[idx]}) for {subject}; {date_col} left empty")


def _check_alsfrs_ranges(r, fname, df):
    if not {"PARAMCD", "AVAL"} <= set(df.columns) or not pd.api.types.is_numeric_dtype(df["AVAL"]):
        return
    code = df["PARAMCD"].astype(str)
    hi = np.where(code.str.match(ITEM_RE), 4, np.where(code.isin(DOMAIN_CODES), 12,
                                                       np.where(code == TOTAL_CODE, 48, np.nan)))
    bad = ~np.isnan(hi) & ((df["AVAL"] < 0) | (df["AVAL"] > hi) | (df["AVAL"] % 1 != 0))
    for idx in df.index[bad.to_numpy()]:
        row = df.loc[idx]
        r.add("adqs", "AVAL", row.get("USUBJID"), "value_out_of_range",
              f"{fname}: {row['PARAMCD']} AVAL={row['AVAL']:g} for {row.get('USUBJID')} at "
              f"{row.get('AVISIT', row.get('AVISITN', '?'))} is outside 0-{int(hi[df.index.get_loc(idx)])}")


# --------------------------------------------------------------------------- cross-dataset
def _cross_checks(r: _Report, d: dict[str, pd.DataFrame]) -> None:
    adsl = d.get("adsl")
    if adsl is not None and "USUBJID" in adsl:
        dup = adsl["USUBJID"][adsl["USUBJID"].duplicated()]
        for s in dup.unique():
            r.add("adsl", "USUBJID", s, "duplicate_subject", f"adsl: {s} appears more than once")
        _date_order(r, adsl)
        subjects = set(adsl["USUBJID"].dropna())
        for name, df in d.items():
            if name in ("adsl", "allocation") or "USUBJID" not in df.columns:
                continue
            ids = df["USUBJID"].dropna()
            for s in sorted(set(ids) - subjects):
                r.add(name, "USUBJID", s, "subject_not_in_adsl",
                      f"{name}: {int((ids == s).sum())} record(s) for {s}, who is not in ADSL")
        _visits_after_randomisation(r, adsl, d)
        _strata(r, adsl, d.get("allocation"))
    for name in ("adqs", "adlb", "adresp"):
        if name in d and {"USUBJID", "PARAMCD", "AVISITN"} <= set(d[name].columns):
            _duplicates(r, name, d[name], ["USUBJID", "PARAMCD", "AVISITN"])
    if "adae" in d:
        cols = [c for c in d["adae"].columns if c != "AESEQ"]
        _duplicates(r, "adae", d["adae"], cols)
    if "screening" in d and "SCRNID" in d["screening"]:
        _duplicates(r, "screening", d["screening"], ["SCRNID"])
    if "adqs" in d:
        _alsfrs_sums(r, d["adqs"])
    for name, df in d.items():
        if "ENTDT" in df.columns:
            ref = "ADT" if "ADT" in df.columns else "ASTDT" if "ASTDT" in df.columns else None
            if ref and pd.api.types.is_datetime64_any_dtype(df[ref]):
                lag = (pd.to_datetime(df["ENTDT"]) - df[ref]).dt.days
                late = df[lag > LATE_ENTRY_DAYS]
                for s, n in late.groupby("USUBJID").size().items():
                    r.add(name, "ENTDT", s, "late_entry",
                          f"{name}: {n} record(s) for {s} entered more than {LATE_ENTRY_DAYS} days after {ref}")


def _duplicates(r, name, df, keys):
    dup = df[df.duplicated(keys, keep="first")]
    for s, g in dup.groupby(df.loc[dup.index, "USUBJID"] if "USUBJID" in df else dup[keys[0]]):
        r.add(name, "USUBJID" if "USUBJID" in df else keys[0], s, "duplicate_record",
              f"{name}: {len(g)} duplicated record(s) for {s} (same {', '.join(keys[:4])})")


def _date_order(r, adsl):
    order = [c for c in ("ONSETDT", "DIAGDT", "SCRNDT", "RANDDT") if c in adsl.columns
             and pd.api.types.is_datetime64_any_dtype(adsl[c])]
    for a, b in zip(order, order[1:]):
        bad = adsl[adsl[a] > adsl[b]]
        for _, row in bad.iterrows():
            r.add("adsl", b, row["USUBJID"], "date_order",
                  f"adsl: {a} {row[a]:%Y-%m-%d} is after {b} {row[b]:%Y-%m-%d} for {row['USUBJID']}")
    if "DTHDT" in adsl and "RANDDT" in adsl and pd.api.types.is_datetime64_any_dtype(adsl["DTHDT"]):
        for _, row in adsl[adsl["DTHDT"] < adsl["RANDDT"]].iterrows():
            r.add("adsl", "DTHDT", row["USUBJID"], "death_before_randomisation",
                  f"adsl: death {row['DTHDT']:%Y-%m-%d} before randomisation for {row['USUBJID']}")


def _visits_after_randomisation(r, adsl, d):
    if "RANDDT" not in adsl or not pd.api.types.is_datetime64_any_dtype(adsl["RANDDT"]):
        return
    rand = adsl.drop_duplicates("USUBJID").set_index("USUBJID")["RANDDT"]
    for name in ("adqs", "adlb", "adresp"):
        df = d.get(name)
        if df is None or not {"USUBJID", "ADT"} <= set(df.columns):
            continue
        post = df["ABLFL"].ne("Y") if "ABLFL" in df else pd.Series(True, index=df.index)
        before = post & (pd.to_datetime(df["ADT"]) < df["USUBJID"].map(rand))
        for s, g in df[before].groupby("USUBJID"):
            r.add(name, "ADT", s, "visit_before_randomisation",
                  f"{name}: {len(g)} post-baseline record(s) for {s} dated before randomisation "
                  f"({rand[s]:%Y-%m-%d})")


def _strata(r, adsl, allocation):
    if {"STRATUM", "COUNTRY", "ONSET"} <= set(adsl.columns):
        expected = adsl["COUNTRY"].astype(str) + "/" + adsl["ONSET"].astype(str)
        for s in adsl.loc[adsl["STRATUM"] != expected, "USUBJID"]:
            r.add("adsl", "STRATUM", s, "stratum_mismatch", f"adsl: STRATUM does not match COUNTRY/ONSET for {s}")
    if allocation is None or "USUBJID" not in allocation:
        return
    missing = set(adsl["USUBJID"]) - set(allocation["USUBJID"])
    for s in sorted(missing):
        r.add("allocation", "USUBJID", s, "allocation_missing_subject",
              f"allocation: randomised subject {s} has no allocation record")
    if "STRATUM" in allocation and "STRATUM" in adsl:
        m = allocation.merge(adsl[["USUBJID", "STRATUM"]], on="USUBJID", suffixes=("", "_ADSL"))
        for s in m.loc[m["STRATUM"] != m["STRATUM_ADSL"], "USUBJID"]:
            r.add("allocation", "STRATUM", s, "stratum_mismatch",
                  f"allocation: stratum at randomisation differs from ADSL for {s}")


def _alsfrs_sums(r, adqs):
    if not {"USUBJID", "PARAMCD", "AVAL", "AVISITN"} <= set(adqs.columns):
        return
    q = adqs.drop_duplicates(["USUBJID", "PARAMCD", "AVISITN"])
    wide = q.pivot(index=["USUBJID", "AVISITN"], columns="PARAMCD", values="AVAL")
    items = [c for c in wide.columns if pd.Series([c]).str.match(ITEM_RE).iloc[0]]
    if not items:
        return
    has5 = wide.reindex(columns=["ALSFR05A", "ALSFR05B"]).notna().sum(axis=1)
    for (s, v) in wide.index[has5 != 1]:
        r.add("adqs", "PARAMCD", s, "invalid_code",
              f"adqs: visit {v} of {s} has {int(has5[(s, v)])} of items 5a/5b (exactly one expected)")
    complete = wide[items].notna().sum(axis=1) == 12
    item_sum = wide[items].sum(axis=1)
    checks = {TOTAL_CODE: item_sum}
    for dom, its in DOMAIN_ITEMS.items():
        checks[dom] = wide.reindex(columns=its).sum(axis=1)
    for code, expected in checks.items():
        if code not in wide.columns:
            continue
        bad = complete & wide[code].notna() & (wide[code] != expected)
        for (s, v) in wide.index[bad]:
            r.add("adqs", "AVAL", s, "total_mismatch",
                  f"adqs: {code}={wide.loc[(s, v), code]:g} at visit {v} of {s} but its items sum to "
                  f"{expected[(s, v)]:g}")


# --------------------------------------------------------------------------- output
def has_errors(problems: pd.DataFrame) -> bool:
    return bool(len(problems)) and bool((problems["severity"] == "error").any())


def format_problems(problems: pd.DataFrame, fmt: str = "text") -> str:
    if fmt == "csv":
        return problems.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if fmt == "md":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
                  for row in problems[COLUMNS].itertuples(index=False)]
        return "\n".join(lines)
    if not len(problems):
        return "no problems found"
    return "\n".join(f"{row.severity.upper():7} {row.rule:28} {row.dataset:10} {row.column:9} "
                     f"{row.subject:15} {row.message}" for row in problems.itertuples(index=False))
