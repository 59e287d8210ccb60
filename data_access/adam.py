"""Read and write CDISC ADaM deliveries (SAS transport, SAS7BDAT, CSV, Parquet).

``load_adam_folder`` reads every dataset of a delivery with its formats (SAS dates and datetimes
become real dates through the variable formats, labels are kept); ``split_allocation`` builds the
allocation part and strips the arm from the clinical data by name and by value (the scan of
``data_access.arm_scan``: ``find_arm_revealing_columns``, any column whose values determine the
arm); ``import_adam`` builds a snapshot from a folder and a study config; ``export_adam`` writes a
snapshot back out as a delivery for QC programmers.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_access.adam_care import map_care_datasets
from data_access.arm_scan import ARM_VARIABLE, ArmFinding, arm_variable_names, find_arm_revealing_columns, \
    is_arm_variable
from data_access.study import Study, load_study

READABLE = (".xpt", ".sas7bdat", ".csv", ".parquet")
SAS_EPOCH = dt.date(1960, 1, 1)


@dataclass
class Delivery:
    """Datasets read from a folder, with their variable labels and what could not be read."""
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def load_adam_file(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one dataset. SAS files are decoded as UTF-8 and, failing that, latin-1; date and
    datetime variables are converted through their SAS formats by pyreadstat."""
    suffix = path.suffix.lower()
    if suffix in (".xpt", ".sas7bdat"):
        import pyreadstat
        reader = pyreadstat.read_xport if suffix == ".xpt" else pyreadstat.read_sas7bdat
        last_error: Exception | None = None
        for encoding in (None, "latin1"):
            try:
                df, meta = reader(str(path), encoding=encoding)
                return _normalise_dates(df), dict(meta.column_names_to_labels or {})
            except Exception as exc:  # pyreadstat raises its own errors on bad encodings
                last_error = exc
        raise ValueError(f"{path.name}: cannot be read as SAS ({last_error})")
    if suffix == ".csv":
        try:
            df = pd.read_csv(path, encoding="utf-8")
        except UnicodeDecodeError:
            df = pd.read_csv(path, encoding="latin-1")
        return df, {}
    if suffix == ".parquet":
        return pd.read_parquet(path), {}
    raise ValueError(f"{path.name}: unsupported file type")


def _normalise_dates(df: pd.DataFrame) -> pd.DataFrame:
    """pyreadstat gives datetime.date objects for SAS dates: make them datetime64 dates."""
    for col in df.columns:
        if df[col].dtype == object:
            sample = df[col].dropna()
            if len(sample) and all(isinstance(v, (dt.date, dt.datetime)) for v in sample.head(50)):
                df[col] = pd.to_datetime(df[col])
    return df


def load_adam_folder(src: str | Path) -> Delivery:
    """Read every readable dataset in ``src``; dataset names are lower-case file stems. A file
    that cannot be read is recorded in ``errors`` (the rest still load)."""
    delivery = Delivery()
    for path in sorted(Path(src).iterdir()):
        if path.suffix.lower() not in READABLE:
            continue
        name = path.stem.lower()
        if name in delivery.datasets:
            delivery.errors[path.name] = f"{name} already read from another file"
            continue
        try:
            df, labels = load_adam_file(path)
        except Exception as exc:
            delivery.errors[path.name] = str(exc)
            continue
        df.columns = [str(c).upper() for c in df.columns]
        delivery.datasets[name] = df
        delivery.labels[name] = {k.upper(): v for k, v in labels.items() if v}
    return delivery


def split_allocation(datasets: dict[str, pd.DataFrame], study: Study) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Build the allocation from ADSL's arm variable and strip every arm-revealing column from
    every dataset (``split_allocation_report`` also says which)."""
    clinical, allocation, _ = split_allocation_report(datasets, study)
    return clinical, allocation


def split_allocation_report(datasets: dict[str, pd.DataFrame], study: Study
                            ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, list[ArmFinding]]:
    """Build the allocation from ADSL's arm variable and strip the arm from the clinical data by
    name AND by value.

    The allocation has USUBJID, RANDNO, ARMCD, ARM (study label), STRATUM and MASKCD. Arm values
    are matched against the study's arm codes and labels; an unknown value is an error naming it.
    Removed from every dataset (not moved: the allocation keeps its own columns): the study's
    ``[columns] arm``/``armcd`` and every standard arm variable (``ARM_VARIABLE``; rule
    ``arm_variable``), and every column ``find_arm_revealing_columns`` flags (``arm_values``,
    ``determines_arm``: e.g. a TREATMENT or EXTRT the study file does not map).
    Returns ``(clinical, allocation, removed)``.
    """
    subj = study.col("subject")
    adsl = datasets["adsl"]
    arm_var = study.col("arm")
    if arm_var not in adsl.columns:
        raise ValueError(f"adsl: arm variable {arm_var!r} (study config [columns] arm) is missing")
    value_to_code = {}
    for code, label in zip(study.arm_codes, study.arm_labels):
        value_to_code[str(code)] = code
        value_to_code[str(label)] = code
    raw = adsl[arm_var].astype("string").str.strip()
    unknown = sorted(set(raw.dropna()) - set(value_to_code))
    if unknown:
        raise ValueError(f"adsl: {arm_var} has values {unknown} not among the study arms "
                         f"{list(study.arm_labels)} (codes {list(study.arm_codes)})")
    armcd = raw.map(value_to_code)
    strata = list(study.strata_factors)
    stratum = (adsl[strata].astype("string").agg("/".join, axis=1) if strata
               else pd.Series("All", index=adsl.index))
    randno_var = next((c for c in ("RANDNO", "RANDID") if c in adsl.columns), None)
    allocation = pd.DataFrame({
        "USUBJID": adsl[subj].astype("string"),
        "RANDNO": (pd.to_numeric(adsl[randno_var], errors="coerce") if randno_var
                   else pd.Series(np.arange(1, len(adsl) + 1), index=adsl.index)).astype("Int64"),
        "ARMCD": armcd.astype("string"),
        "ARM": armcd.map(study.arm_label_of).astype("string"),
        "STRATUM": stratum.astype("string"),
    })
    allocation["MASKCD"] = allocation["ARMCD"].map(dict(zip(study.arm_codes, study.masked_labels)))
    allocation = allocation[allocation["ARMCD"].notna()].reset_index(drop=True)
    removed = [ArmFinding(name, c, "arm_variable", f"{c} is an arm variable by name"
                          + (" ([columns] arm)" if c.upper() in arm_variable_names(study) else ""))
               for name, df in sorted(datasets.items()) for c in df.columns if is_arm_variable(c, study)]
    named = {(f.dataset, f.column) for f in removed}
    stripped = {name: df[[c for c in df.columns if (name, c) not in named]] for name, df in datasets.items()}
    by_value = find_arm_revealing_columns(stripped, allocation, study)
    removed += by_value
    drop = named | {(f.dataset, f.column) for f in by_value}
    clinical = {name: df[[c for c in df.columns if (name, c) not in drop]].copy()
                for name, df in datasets.items()}
    return clinical, allocation, sorted(removed, key=lambda f: (f.dataset, f.column))


def import_adam(src: str | Path, study_file: str | Path, out: str | Path, created: str | None = None,
                removed: list | None = None) -> Path:
    """Build a snapshot (clinical + allocation parts) from an ADaM folder. Returns ``out``.

    Every column stripped from the clinical part as arm-revealing (``split_allocation_report``)
    is reported: appended to ``removed`` (a list of ``ArmFinding``) when given, and logged as a
    warning naming dataset, column and rule (``mirocals import`` prints it on stderr)."""
    import logging
    from data_access.snapshot import write_snapshot
    study = load_study(study_file)
    delivery = load_adam_folder(src)
    if delivery.errors:
        detail = "; ".join(f"{k}: {v}" for k, v in delivery.errors.items())
        raise ValueError(f"{src}: could not read {detail}")
    if "adsl" not in delivery.datasets:
        raise ValueError(f"{src}: no ADSL dataset (adsl.xpt, adsl.sas7bdat, adsl.csv or adsl.parquet)")
    check_mapping(delivery.datasets, study)
    datasets, labels_in = map_care_datasets(delivery.datasets, delivery.labels, study)
    delivery.labels = labels_in
    clinical, allocation, stripped = split_allocation_report(datasets, study)
    if removed is not None:
        removed.extend(stripped)
    if stripped:
        logging.getLogger("mirocals.import").warning(
            "import: removed from the clinical part as arm-revealing: %s", "; ".join(str(f) for f in stripped))
    labels = {name: {var: lab for var, lab in lbls.items()
                     if (name, var) not in {(f.dataset, f.column) for f in stripped}}
              for name, lbls in delivery.labels.items()}
    cut = _latest_date(clinical)
    write_snapshot(out, clinical, allocation, study, cut, source=f"import of {Path(src).resolve().name}",
                   created=created, sidecars=study_sidecars(study_file, labels))
    return Path(out)


def check_mapping(datasets: dict[str, pd.DataFrame], study: Study) -> None:
    """Raise ``ValueError`` naming the study setting and the dataset when the study file maps a
    role to a variable or parameter the delivery does not have (subject id, survival PARAMCD)."""
    problems = []
    subj = study.col("subject")
    for name, df in datasets.items():
        if name in ("adsl", "adtte") and subj not in df.columns:
            problems.append(f"{name}: subject variable {subj!r} ([columns] subject) is missing")
    adtte = datasets.get("adtte")
    if adtte is not None and "PARAMCD" in adtte.columns:
        present = sorted(adtte["PARAMCD"].dropna().astype(str).str.strip().unique())
        if study.survival_paramcd not in present:
            problems.append(f"adtte: no PARAMCD {study.survival_paramcd!r} ([endpoints] survival); "
                            f"PARAMCDs delivered: {', '.join(present) or 'none'}")
    if problems:
        raise ValueError("the study config does not match the delivery: " + "; ".join(problems))


def study_sidecars(study_file: str | Path | None, labels: dict) -> dict[str, bytes]:
    """The files an imported snapshot carries beside its clinical datasets (hashed in its
    manifest): the study config (``study.toml``, so views, tables and reports of the snapshot use
    the trial's own mapping) and the variable labels (``labels.json``: dataset -> variable ->
    label). Neither holds an arm variable's values or labels."""
    import json
    from data_access.study import DEFAULT_STUDY_FILE, SNAPSHOT_STUDY_FILE
    source = Path(study_file) if study_file else DEFAULT_STUDY_FILE
    kept = {name: {var: lab for var, lab in sorted(lbls.items()) if not ARM_VARIABLE.match(var)}
            for name, lbls in sorted(labels.items())}
    return {SNAPSHOT_STUDY_FILE: source.read_bytes(),
            "labels.json": (json.dumps(kept, indent=1, ensure_ascii=False) + "\n").encode()}


def _latest_date(datasets: dict[str, pd.DataFrame]) -> dt.date:
    """The latest date in a delivery: the data cut-off when none is given."""
    latest = None
    for df in datasets.values():
        for col in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[col]) and df[col].notna().any():
                m = df[col].max()
                latest = m if latest is None or m > latest else latest
    return (latest or pd.Timestamp.today()).date()


def export_adam(data_dir: str | Path, out: str | Path, fmt: str = "xpt",
                allocation_dir: str | Path | None = None, study: Study | None = None) -> list[Path]:
    """Write a snapshot as an ADaM delivery (arm variables ARM/ARMCD/TRT01P only when the
    allocation is given). XPT files use SAS dates with the DATE9. format.

    Without ``allocation_dir`` no arm is written: arm variables by name (``is_arm_variable``, the
    study's ``[columns] arm`` included) are dropped even if an old clinical part holds them."""
    from data_access.snapshot import load_datasets
    from data_access.study import load_snapshot_study
    data_dir = Path(data_dir)
    study = study if study is not None else load_snapshot_study(data_dir)
    clinical = load_datasets(data_dir / "clinical" if (data_dir / "clinical").is_dir() else data_dir)
    alloc = None
    if allocation_dir is not None:
        alloc = load_datasets(Path(allocation_dir))["allocation"][["USUBJID", "ARMCD", "ARM"]]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in sorted(clinical.items()):
        # never an arm variable from the clinical part (an old snapshot may hold one): the arm is
        # written only from the allocation, when given
        df = df[[c for c in df.columns if not is_arm_variable(c, study)]]
        if alloc is not None and "USUBJID" in df.columns:
            df = df.merge(alloc, on="USUBJID", how="left")
            if name == "adsl":
                df["TRT01P"] = df["ARM"]
        path = out / f"{name}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        elif fmt == "csv":
            df.to_csv(path, index=False, date_format="%Y-%m-%d")
        elif fmt == "xpt":
            _write_xpt(df, path, name)
        else:
            raise ValueError(f"unknown export format {fmt!r} (xpt, csv, parquet)")
        written.append(path)
    return written


def _write_xpt(df: pd.DataFrame, path: Path, name: str) -> None:
    import pyreadstat
    df = df.copy()
    formats = {}
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = df[col].dt.date
            formats[col] = "DATE9."
        elif df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            first = df[col].dropna().head(1)
            if len(first) and isinstance(first.iloc[0], dt.date):
                formats[col] = "DATE9."
            else:
                df[col] = df[col].astype("string").fillna("").astype(object)
        elif pd.api.types.is_bool_dtype(df[col]):
            df[col] = df[col].astype(float)
        elif str(df[col].dtype) in ("Int64", "Int32", "Float64"):
            df[col] = df[col].astype(float)
    pyreadstat.write_xport(df, str(path), table_name=name.upper()[:8], file_format_version=5,
                           variable_format=formats)
