"""Data validation: one row per problem (dataset, column, subject, rule, severity, message).

Validation never modifies or drops data; it reports. It never crashes on a malformed, empty or
corrupt file: such a file is itself a problem (``file_unreadable`` / ``file_empty``) and the other
datasets are still checked. Per-dataset checks are pandera schemas (``data_access.schemas``);
cross-dataset rules are here. Rule names are listed at the end of ``data_access/DATASETS.md``.

Examples
--------
>>> problems = validate_snapshot("demo_data/clinical")          # doctest: +SKIP
>>> print(format_problems(problems, "md"))                        # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from data_access.schemas import ALSFRS_MAX, DOMAIN_ITEMS, ITEMS, KIND_LABEL, TOTAL_CODE, build_schemas, \
    parse_dates, structure_schema, value_schema

COLUMNS = ["dataset", "column", "subject", "rule", "severity", "message"]
WARNING_RULES = {"late_entry", "partial_date"}
LATE_ENTRY_DAYS = 30
BDS = ("adqs", "adlb", "adresp")


class _Report:
    """Collects problem rows; ``files`` maps a dataset to its file name for messages."""

    def __init__(self, files: dict[str, str]):
        self.rows: list[dict] = []
        self.files = files

    def file(self, dataset: str) -> str:
        return self.files.get(dataset, f"{dataset}.parquet")

    def add(self, dataset, column, subject, rule, message, severity=None):
        self.rows.append({"dataset": dataset, "column": column or "",
                          "subject": "" if subject is None or pd.isna(subject) else str(subject),
                          "rule": rule, "severity": severity or ("warning" if rule in WARNING_RULES else "error"),
                          "message": f"{self.file(dataset)}: {message}"})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=COLUMNS).drop_duplicates()
        return df.sort_values(["dataset", "rule", "subject", "column", "message"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- reading
def load_part(part_dir, study=None) -> tuple[dict[str, pd.DataFrame | Exception], dict[str, str]]:
    """Read every ``*.parquet`` and ``*.csv`` of a directory without failing.

    Returns ``(datasets, files)``: dataset name -> DataFrame, or the exception raised when the
    file could not be read; dataset name -> file name. CSV text columns are read as text.
    """
    schemas = build_schemas(study)
    out: dict[str, pd.DataFrame | Exception] = {}
    files: dict[str, str] = {}
    for path in sorted(Path(part_dir).glob("*.csv")) + sorted(Path(part_dir).glob("*.parquet")):
        files[path.stem] = path.name           # a Parquet file wins over a CSV of the same name
        try:
            if path.stat().st_size == 0:
                raise EOFError("the file is empty (0 bytes)")
            if path.suffix == ".parquet":
                out[path.stem] = pd.read_parquet(path)
            else:
                text_cols = {c.name: str for c in schemas.get(path.stem, []) if c.kind == "str"}
                out[path.stem] = pd.read_csv(path, dtype=text_cols, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a finding, not a crash
            out[path.stem] = exc
    return out, files


def validate_snapshot(part_dir, study=None, allocation_dir=None) -> pd.DataFrame:
    """Validate a snapshot's clinical directory (Parquet or CSV files, optional manifest).

    Parameters
    ----------
    part_dir : the ``clinical`` directory (a snapshot root holding ``clinical/`` is accepted).
    study : a ``Study`` (codes, strata levels); MIROCALS defaults when None.
    allocation_dir : the allocation part; when given, its coverage and strata are checked too.
        Without it nothing about the allocation is read or reported.

    Returns
    -------
    DataFrame with columns dataset, column, subject, rule, severity, message; one row per problem.
    """
    part_dir = Path(part_dir)
    if (part_dir / "clinical").is_dir():
        part_dir = part_dir / "clinical"
    datasets, files = load_part(part_dir, study)
    allocation = None
    if allocation_dir is not None:
        alloc, alloc_files = load_part(allocation_dir, study)
        files["allocation"] = alloc_files.get("allocation", "allocation.parquet")
        allocation = alloc.get("allocation", FileNotFoundError(f"no allocation file in {allocation_dir}"))
    extra = _manifest_problems(part_dir, datasets)
    problems = validate_datasets(datasets, study=study, allocation=allocation, files=files)
    return _sorted(pd.concat([problems, extra], ignore_index=True)) if len(extra) else problems


def validate_blinded(part_dir, study=None, role: str = "steering") -> pd.DataFrame:
    """Validate a snapshot THROUGH ITS BLINDED VIEW: what a blinded role may see is checked, and
    nothing else reaches the checks or the messages.

    The datasets are read with ``views.BlindedView`` (no allocation; only the columns of the data
    contract; only safe parameters, no arm-revealing parameter or AE term: no Treg or eosinophil
    value can be named by a message). A file the view cannot open is ``file_unreadable``;
    manifest entries are checked for presence, not row counts (withheld rows are not counted).
    Same columns as ``validate_snapshot``. ``study`` defaults to the snapshot's own."""
    from data_access.views import BlindedView, clinical_dir_of
    part_dir = clinical_dir_of(part_dir)
    view = BlindedView(part_dir, role, study=study, skip_unreadable=True)
    try:
        datasets: dict[str, pd.DataFrame | Exception] = {}
        files = {name: f"{name}.parquet" for name in list(view.datasets) + list(view.unreadable)}
        for name, error in view.unreadable.items():
            datasets[name] = ValueError(error)
        for name in view.datasets:
            try:
                datasets[name] = view.table(name)
            except Exception as exc:  # noqa: BLE001 - a corrupt file is a finding, not a crash
                datasets[name] = exc
        extra = _manifest_problems(part_dir, None)
        problems = validate_datasets(datasets, study=view.study, files=files)
    finally:
        view.close()
    return _sorted(pd.concat([problems, extra], ignore_index=True)) if len(extra) else problems


def _manifest_problems(part_dir: Path, datasets: dict | None) -> pd.DataFrame:
    """Files listed in the manifest but missing or (``datasets`` given) with another row count."""
    r = _Report({"manifest": "manifest.json"})
    path = part_dir / "manifest.json"
    if path.exists():
        try:
            listed = json.loads(path.read_text())["files"]
            for name, info in sorted(listed.items()):
                if not name.endswith(".parquet"):       # sidecars (study.toml, labels.json)
                    if not (part_dir / name).is_file():
                        r.add("manifest", "", None, "file_unreadable", f"{name} listed in manifest.json but missing")
                    continue
                stem = Path(name).stem
                r.files[stem] = name
                if datasets is None:
                    if not (part_dir / name).is_file():
                        r.add(stem, "", None, "file_unreadable", "listed in manifest.json but missing")
                    continue
                df = datasets.get(stem)
                if df is None:
                    r.add(stem, "", None, "file_unreadable", "listed in manifest.json but missing")
                elif isinstance(df, pd.DataFrame) and len(df) != info.get("rows", len(df)):
                    r.add(stem, "", None, "file_unreadable",
                          f"has {len(df)} rows but manifest.json says {info['rows']}: not the file of this snapshot")
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            r.add("manifest", "", None, "file_unreadable", f"cannot be read ({type(exc).__name__}: {exc})")
    return r.frame()


def validate_datasets(datasets: dict, study=None, allocation=None, files: dict | None = None) -> pd.DataFrame:
    """Validate in-memory datasets: name -> DataFrame, or an Exception for an unreadable file.

    ``allocation`` (DataFrame or Exception) is checked for coverage of ADSL and strata when given.
    The input frames are not modified. Returns the problems as ``validate_snapshot`` does.
    """
    r = _Report(dict(files or {}))
    schemas = build_schemas(study)
    good: dict[str, pd.DataFrame] = {}
    items = list(datasets.items()) + ([("allocation", allocation)] if allocation is not None else [])
    for name, df in items:
        if isinstance(df, Exception):
            rule = "file_empty" if isinstance(df, EOFError) else "file_unreadable"
            r.add(name, "", None, rule, f"cannot be read ({type(df).__name__}: {df})")
        elif not isinstance(df, pd.DataFrame):
            r.add(name, "", None, "file_unreadable", f"is not a table ({type(df).__name__})")
        elif len(df) == 0:
            r.add(name, "", None, "file_empty", "has no rows")
        else:
            good[name] = _check_dataset(r, name, df, schemas.get(name))
    if "adsl" not in datasets:
        r.add("adsl", "", None, "file_unreadable", "no ADSL dataset: subjects cannot be checked")
    _cross_checks(r, good, study)
    if isinstance(allocation, pd.DataFrame) and {"USUBJID", "ARMCD"} <= set(allocation.columns):
        _arm_scan(r, {n: df for n, df in good.items() if n != "allocation"}, allocation, study)
    return r.frame()


def _arm_scan(r: _Report, clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame, study) -> None:
    """Rule ``arm_revealing_column``: a clinical column whose values reveal the arm (the scan that
    ``mirocals import`` and ``write_snapshot`` run: ``adam.find_arm_revealing_columns``)."""
    from data_access.adam import find_arm_revealing_columns
    from data_access.study import load_study
    try:
        findings = find_arm_revealing_columns(clinical, allocation, study if study is not None else load_study())
    except Exception as exc:  # noqa: BLE001 - say the scan could not run, go on
        r.add("allocation", "", None, "arm_revealing_column", f"the arm scan could not run ({type(exc).__name__}: {exc})")
        return
    for f in findings:
        r.add(f.dataset, f.column, None, "arm_revealing_column",
              f"column {f.column} reveals the allocation (rule {f.rule}: {f.detail}); the clinical part "
              f"must not hold it")


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["dataset", "rule", "subject", "column", "message"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- per dataset
def _subject_of(name: str, df: pd.DataFrame):
    key = "SCRNID" if name == "screening" and "SCRNID" in df else "USUBJID"
    return df[key] if key in df else pd.Series(None, index=df.index, dtype=object)


def _fmt(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _at(df: pd.DataFrame, idx) -> str:
    return f" at {df.at[idx, 'AVISIT']}" if "AVISIT" in df and pd.notna(df.at[idx, "AVISIT"]) else ""


def _check_dataset(r: _Report, name: str, df: pd.DataFrame, cols) -> pd.DataFrame:
    """Schema checks of one dataset; returns a working copy (dates parsed, mistyped columns
    dropped) for the cross-dataset rules. ``df`` itself is not changed."""
    work = df.reset_index(drop=True)           # a copy; positions identify rows in messages
    for col in work.columns:                   # dates stored as text or datetime.date objects
        if str(col).endswith("DT") and work[col].dtype == object:
            parsed = parse_dates(work[col])
            if parsed.notna().sum() == work[col].notna().sum():
                work[col] = parsed
    subjects = _subject_of(name, work)
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
                      f"{_at(work, f.index)} is not {want}")
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
                  f"{c.describe()}")
        for idx in sorted(set(fc.loc[fc["check"] == "alsfrs_range", "index"])):
            code, aval, s = work.at[idx, "PARAMCD"], work.at[idx, "AVAL"], subjects.get(idx)
            how = "is outside" if aval % 1 == 0 else "is not a whole number in"
            r.add(name, "AVAL", s, "value_out_of_range",
                  f"{code} AVAL={aval:g} for {s}{_at(work, idx)} {how} 0-{ALSFRS_MAX[code]}")
    _check_partial_dates(r, name, work, subjects)
    return work


def _check_partial_dates(r: _Report, name: str, df: pd.DataFrame, subjects: pd.Series) -> None:
    """A non-null ``xxDTC`` text that is not a full YYYY-MM-DD date, with ``xxDT`` null."""
    for dtc in [c for c in df.columns if str(c).endswith("DTC")]:
        col = dtc[:-1]
        text = df[dtc].astype("string")
        partial = text.notna() & ~text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)
        if col in df:
            partial &= df[col].isna()
        for idx in df.index[partial.to_numpy(dtype=bool)]:
            r.add(name, col, subjects.get(idx), "partial_date",
                  f"{col} of {subjects.get(idx)} is known only as {text[idx]} ({dtc}); {col} is empty")


# --------------------------------------------------------------------------- cross-dataset
def _is_date(df, *cols) -> bool:
    return all(c in df and pd.api.types.is_datetime64_any_dtype(df[c]) for c in cols)


def _cross_checks(r: _Report, d: dict[str, pd.DataFrame], study) -> None:
    adsl = d.get("adsl")
    if adsl is not None and "USUBJID" not in adsl:
        adsl = None
    rules = [("duplicate_record", "", lambda: _duplicates(r, d)), ("date_order", "", lambda: _date_order(r, d)),
             ("late_entry", "", lambda: _late_entry(r, d))]
    if adsl is not None:
        rules += [("subject_not_in_adsl", "", lambda: _subjects_in_adsl(r, adsl, d)),
                  ("visit_before_randomisation", "", lambda: _visits_after_randomisation(r, adsl, d)),
                  ("death_before_randomisation", "adsl", lambda: _deaths(r, adsl, d.get("adtte"), study)),
                  ("stratum_mismatch", "adsl", lambda: _strata(r, adsl, d.get("allocation"), study))]
    if "adqs" in d:
        rules.append(("total_mismatch", "adqs", lambda: _alsfrs_sums(r, d["adqs"])))
    for rule, dataset, check in rules:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - data too malformed for this rule: say so, go on
            r.add(dataset or "adsl", "", None, rule, f"{rule} could not be checked ({type(exc).__name__}: {exc})")


def _duplicates(r: _Report, d: dict[str, pd.DataFrame]) -> None:
    adsl = d.get("adsl")
    if adsl is not None and "USUBJID" in adsl:
        counts = adsl["USUBJID"].value_counts()
        for s, n in counts[counts > 1].items():
            r.add("adsl", "USUBJID", s, "duplicate_subject", f"{s} appears {n} times (one row per subject expected)")
    keys = {**{n: ["USUBJID", "PARAMCD", "AVISITN"] for n in BDS}, "adtte": ["USUBJID", "PARAMCD"],
            "adex": ["USUBJID", "CYCLE"], "screening": ["SCRNID"], "allocation": ["USUBJID"]}
    if "adae" in d:
        keys["adae"] = [c for c in d["adae"].columns if c not in ("AESEQ", "ENTDT")]
    for name, key in keys.items():
        df = d.get(name)
        if df is None or not key or not set(key) <= set(df.columns):
            continue
        dup = df[df.duplicated(key, keep="first")]
        who = "SCRNID" if name == "screening" else "USUBJID" if "USUBJID" in key else key[0]
        same = "identical records" if name == "adae" else "same " + "+".join(key)
        for s, g in dup.groupby(who, dropna=False, sort=True):
            r.add(name, who, s, "duplicate_record", f"{len(g)} duplicated record(s) for {s} ({same})")


def _date_order(r: _Report, d: dict[str, pd.DataFrame]) -> None:
    """Dates that must not decrease along a chain (each against the latest earlier date)."""
    chains = {"adsl": ["ONSETDT", "DIAGDT", "SCRNDT", "RANDDT"], "screening": ["SCRNDT", "RUNINSDT", "RUNINEDT"],
              "adae": ["ASTDT", "AENDT"], "adex": ["ASTDT", "AENDT"]}
    for name, chain in chains.items():
        df = d.get(name)
        chain = [c for c in chain if df is not None and _is_date(df, c)]
        subjects = _subject_of(name, df) if df is not None else None
        for j in range(1, len(chain)):
            earlier = df[chain[:j]]
            latest = earlier.max(axis=1)
            bad = latest.notna() & df[chain[j]].notna() & (df[chain[j]] < latest)
            for idx in df.index[bad.to_numpy(dtype=bool)]:
                prev = earlier.loc[idx].idxmax()
                r.add(name, chain[j], subjects[idx], "date_order",
                      f"{chain[j]} {df.at[idx, chain[j]]:%Y-%m-%d} of {subjects[idx]} is before "
                      f"{prev} {df.at[idx, prev]:%Y-%m-%d}")


def _subjects_in_adsl(r: _Report, adsl: pd.DataFrame, d: dict[str, pd.DataFrame]) -> None:
    known = set(adsl["USUBJID"].dropna())
    for name, df in d.items():
        if name in ("adsl", "allocation") or "USUBJID" not in df:
            continue
        counts = df["USUBJID"].dropna().value_counts()
        for s in sorted(set(counts.index) - known):
            r.add(name, "USUBJID", s, "subject_not_in_adsl", f"{counts[s]} record(s) for {s}, who is not in ADSL")
    scr = d.get("screening")
    if scr is not None and {"OUTCOME", "USUBJID", "SCRNID"} <= set(scr.columns):
        for s in scr.loc[scr["OUTCOME"].eq("RANDOMISED") & scr["USUBJID"].isna(), "SCRNID"]:
            r.add("screening", "USUBJID", s, "subject_not_in_adsl",
                  f"{s} is RANDOMISED in the screening log but has no USUBJID")


def _visits_after_randomisation(r: _Report, adsl: pd.DataFrame, d: dict[str, pd.DataFrame]) -> None:
    """Post-baseline records dated before randomisation; baseline records before screening."""
    if not _is_date(adsl, "RANDDT"):
        return
    one = adsl.drop_duplicates("USUBJID").set_index("USUBJID")
    rand = one["RANDDT"]
    scrn = one["SCRNDT"] if _is_date(one, "SCRNDT") else rand
    for name in BDS:
        df = d.get(name)
        if df is None or not _is_date(df, "ADT") or "USUBJID" not in df:
            continue
        base = df["ABLFL"].eq("Y") if "ABLFL" in df else pd.Series(False, index=df.index)
        limit = df["USUBJID"].map(scrn).where(base, df["USUBJID"].map(rand))
        bad = df[df["ADT"] < limit]
        visit = bad["AVISIT"] if "AVISIT" in bad else bad["ADT"].dt.strftime("%Y-%m-%d")
        for (s, v), g in bad.groupby([bad["USUBJID"], visit], sort=True):
            adt = g["ADT"].min()
            if base[g.index].all():
                msg = f"baseline ({v}) of {s} dated {adt:%Y-%m-%d}, before screening ({scrn[s]:%Y-%m-%d})"
            else:
                msg = (f"{v} of {s} dated {adt:%Y-%m-%d}, {(rand[s] - adt).days} days before randomisation "
                       f"({rand[s]:%Y-%m-%d}); {len(g)} record(s)")
            r.add(name, "ADT", s, "visit_before_randomisation", msg)


def _deaths(r: _Report, adsl: pd.DataFrame, adtte, study) -> None:
    if _is_date(adsl, "DTHDT", "RANDDT"):
        for _, row in adsl[adsl["DTHDT"] < adsl["RANDDT"]].iterrows():
            r.add("adsl", "DTHDT", row["USUBJID"], "death_before_randomisation",
                  f"DTHDT {row['DTHDT']:%Y-%m-%d} of {row['USUBJID']} is before RANDDT {row['RANDDT']:%Y-%m-%d}")
    os_code = getattr(study, "survival_paramcd", None) or "OS"
    if adtte is None or not _is_date(adtte, "ADT") or not {"PARAMCD", "CNSR", "USUBJID"} <= set(adtte.columns) \
            or not _is_date(adsl, "RANDDT"):
        return
    rand = adsl.drop_duplicates("USUBJID").set_index("USUBJID")["RANDDT"]
    deaths = adtte[adtte["PARAMCD"].eq(os_code) & adtte["CNSR"].eq(0)]
    for _, row in deaths[deaths["ADT"] < deaths["USUBJID"].map(rand)].iterrows():
        r.add("adtte", "ADT", row["USUBJID"], "death_before_randomisation",
              f"{os_code} death ADT {row['ADT']:%Y-%m-%d} of {row['USUBJID']} is before randomisation "
              f"({rand[row['USUBJID']]:%Y-%m-%d})")


def _strata(r: _Report, adsl: pd.DataFrame, allocation, study) -> None:
    factors = list(getattr(study, "strata_factors", ()) or ("COUNTRY", "ONSET"))
    if {"STRATUM", *factors} <= set(adsl.columns):
        expected = adsl[factors].astype(str).agg("/".join, axis=1)
        for _, row in adsl[adsl["STRATUM"].astype(str) != expected].iterrows():
            r.add("adsl", "STRATUM", row["USUBJID"], "stratum_mismatch",
                  f"STRATUM={row['STRATUM']!r} of {row['USUBJID']} but {'/'.join(factors)} is "
                  f"{expected[row.name]!r}")
    if allocation is None or "USUBJID" not in allocation:
        return
    for s in sorted(set(adsl["USUBJID"].dropna()) - set(allocation["USUBJID"].dropna())):
        r.add("allocation", "USUBJID", s, "allocation_missing_subject", f"randomised subject {s} has no allocation")
    if "STRATUM" in allocation and "STRATUM" in adsl:
        adsl_stratum = adsl.drop_duplicates("USUBJID").set_index("USUBJID")["STRATUM"]
        m = allocation.assign(STRATUM_ADSL=allocation["USUBJID"].map(adsl_stratum))
        m = m[m["USUBJID"].isin(adsl_stratum.index)]
        for _, row in m[m["STRATUM"] != m["STRATUM_ADSL"]].iterrows():
            r.add("allocation", "STRATUM", row["USUBJID"], "stratum_mismatch",
                  f"{row['USUBJID']} randomised in stratum {row['STRATUM']!r} but ADSL says {row['STRATUM_ADSL']!r}")


def _assessments_wide(q: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    """AVAL one row per (USUBJID, AVISITN), one column per PARAMCD in ``codes``; of duplicated
    records the first counts (as ``drop_duplicates`` then ``pivot``, which take ~2 s on a
    20,000-subject ADQS; this numpy pivot on integer codes takes a fraction of it)."""
    sc, subjects = pd.factorize(q["USUBJID"])
    vc, visits = pd.factorize(q["AVISITN"])
    pc = pd.Categorical(q["PARAMCD"], categories=codes).codes
    keep = pc >= 0
    nv = max(len(visits), 1)
    keys, row = np.unique(sc[keep].astype(np.int64) * nv + vc[keep], return_inverse=True)
    arr = np.full((len(keys), len(codes)), np.nan)
    aval = pd.to_numeric(q["AVAL"], errors="coerce").to_numpy(float)[keep]
    arr[row[::-1], pc[keep][::-1]] = aval[::-1]                       # reversed: the first record wins
    index = pd.MultiIndex.from_arrays([subjects[keys // nv], visits[keys % nv]], names=["USUBJID", "AVISITN"])
    return pd.DataFrame(arr, index=index, columns=codes).sort_index()


def _alsfrs_sums(r: _Report, adqs: pd.DataFrame) -> None:
    """Exactly one of items 5a/5b per assessment; domains and total equal their items' sum."""
    if not {"USUBJID", "PARAMCD", "AVAL", "AVISITN"} <= set(adqs.columns):
        return
    q = adqs.dropna(subset=["USUBJID", "PARAMCD", "AVISITN"])
    wide = _assessments_wide(q, list(ITEMS) + list(DOMAIN_ITEMS) + [TOTAL_CODE])
    has_items = wide[list(ITEMS)].notna().any(axis=1)
    if not has_items.any():
        return
    cache = {}

    def at(key):                   # visit label of a flagged assessment, looked up only when needed
        if "label" not in cache:
            cache["label"] = q.groupby(["USUBJID", "AVISITN"])["AVISIT"].first() if "AVISIT" in q else None
        label = cache["label"]
        return f"{label.get(key, f'visit {key[1]}')}" if label is not None else f"visit {key[1]}"
    n5 = wide[["ALSFR05A", "ALSFR05B"]].notna().sum(axis=1)
    for key in wide.index[has_items & (n5 != 1)]:
        what = "both ALSFR05A and ALSFR05B" if n5[key] == 2 else "neither ALSFR05A nor ALSFR05B"
        r.add("adqs", "PARAMCD", key[0], "invalid_code", f"{key[0]} at {at(key)} has {what} (exactly one expected)")
    groups = {**{dom: list(its) for dom, its in DOMAIN_ITEMS.items()}, TOTAL_CODE: list(ITEMS)}
    for code, its in groups.items():
        n_expected = len(its) - (1 if "ALSFR05A" in its else 0)
        complete = (wide[its].notna().sum(axis=1) == n_expected) & (n5 == 1 if "ALSFR05A" in its else True)
        expected = wide[its].sum(axis=1)
        bad = complete & wide[code].notna() & (wide[code] != expected)
        for key in wide.index[bad]:
            r.add("adqs", "AVAL", key[0], "total_mismatch",
                  f"{code}={wide.at[key, code]:g} for {key[0]} at {at(key)} but its items sum to {expected[key]:g}")


def _late_entry(r: _Report, d: dict[str, pd.DataFrame]) -> None:
    """Records entered more than ``LATE_ENTRY_DAYS`` after the visit / event date (warning)."""
    for name, df in d.items():
        ref = next((c for c in ("ADT", "ASTDT") if _is_date(df, c)), None)
        if ref is None or not _is_date(df, "ENTDT") or "USUBJID" not in df:
            continue
        lag = (df["ENTDT"] - df[ref]).dt.days
        late = df[lag > LATE_ENTRY_DAYS]
        what = late["AVISIT"] if "AVISIT" in late else late["AEDECOD"] if "AEDECOD" in late else late[ref]
        for (s, w), g in late.groupby([late["USUBJID"], what], sort=True):
            r.add(name, "ENTDT", s, "late_entry",
                  f"{w} of {s} ({ref} {g[ref].min():%Y-%m-%d}) entered {int(lag[g.index].max())} days later "
                  f"(more than {LATE_ENTRY_DAYS}); {len(g)} record(s)")


# --------------------------------------------------------------------------- output
def has_errors(problems: pd.DataFrame) -> bool:
    """True when any problem has severity ``error`` (the CLI then exits with status 1)."""
    return bool(len(problems)) and bool((problems["severity"] == "error").any())


def format_problems(problems: pd.DataFrame, fmt: str = "text") -> str:
    """Problems as plain text (one line each), CSV or a Markdown table."""
    if fmt == "csv":
        return problems[COLUMNS].to_csv(index=False, lineterminator="\n").rstrip("\n")
    if fmt == "md":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
                  for row in problems[COLUMNS].itertuples(index=False)]
        return "\n".join(lines)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}: use text, csv or md")
    if not len(problems):
        return "no problems found"
    return "\n".join(f"{row.severity.upper():7} {row.rule:26} {row.dataset:10} {row.column:8} {row.subject:15} "
                     f"{row.message}" for row in problems.itertuples(index=False))
