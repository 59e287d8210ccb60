"""Read and write CDISC ADaM deliveries (SAS transport, SAS7BDAT, CSV, Parquet).

``load_adam_folder`` reads every dataset of a delivery with its formats (SAS dates and datetimes
become real dates through the variable formats, labels are kept); ``split_allocation`` builds the
allocation part and strips the arm from the clinical data by name and by value
(``find_arm_revealing_columns``: any column whose values determine the arm); ``import_adam`` builds a snapshot from a folder and a study
config; ``export_adam`` writes a snapshot back out as a delivery for QC programmers.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_access.study import Study, load_study

READABLE = (".xpt", ".sas7bdat", ".csv", ".parquet")
# ADaM/SDTM variables that reveal the allocation: they live in the allocation part only.
ARM_VARIABLE = re.compile(r"^(ARM|ARMCD|ACTARM|ACTARMCD|ARMN|ARMNRS|ACTARMUD|TRT\d\d[PA]N?|TRTP|TRTPN|"
                          r"TRTA|TRTAN|TRTSEQP|TRTSEQA|TRTSEQPN|TRTSEQAN|RANDNO|RANDID|MASKCD)$")
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


# ---------------------------------------------------------------------------- the arm scan
DETERMINES_PURITY = 0.98      # share of (subject, value) pairs whose value sits in the subject's arm
DETERMINES_COVERAGE = 0.5     # share of a dataset's subjects the shared values must cover
TOKEN_AGREEMENT = 0.9         # share of arm-token values that name the subject's own arm
TOKEN_MIN_SUBJECTS = 5        # ... over at least this many subjects (fewer: chance, e.g. codes "A"/"B")
SAMPLE_SUBJECTS = 2000        # large trials: a column clearly mixed on the first 2000 subjects
SAMPLE_PURITY = 0.9           # (purity below 0.9 over 200+ pairs) is not scanned in full


@dataclass(frozen=True)
class ArmFinding:
    """A column of a dataset that reveals the arm.

    ``rule`` is ``arm_variable`` (the study's ``[columns] arm``/``armcd`` or a standard ADaM arm
    variable name), ``arm_values`` (it holds the arm codes, labels or masking codes of the
    subjects' own arms) or ``determines_arm`` (its values, shared by several subjects, each
    occur in one arm only: knowing the value gives the arm). ``detail`` says how strongly, in
    counts, never with the arm values themselves."""
    dataset: str
    column: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.dataset}.{self.column} ({self.rule}: {self.detail})"


def _norm_text(v) -> str:
    return " ".join(str(v).split()).casefold()


def _arm_tokens(allocation: pd.DataFrame, study: Study) -> dict[str, str]:
    """normalised arm code / label / masking code -> ARMCD."""
    tokens: dict[str, str] = {}
    masked = list(study.masked_labels)
    for i, (code, label) in enumerate(zip(study.arm_codes, study.arm_labels)):
        tokens[_norm_text(code)] = str(code)
        tokens[_norm_text(label)] = str(code)
        if i < len(masked):
            tokens[_norm_text(masked[i])] = str(code)
    for col in ("ARM", "MASKCD"):
        if col in allocation.columns and "ARMCD" in allocation.columns:
            pairs = allocation[[col, "ARMCD"]].dropna().drop_duplicates()
            for value, code in pairs.itertuples(index=False):
                tokens.setdefault(_norm_text(value), str(code))
    return tokens


def find_arm_revealing_columns(datasets: dict[str, pd.DataFrame], allocation: pd.DataFrame, study: Study,
                               min_subjects: int | None = None) -> list[ArmFinding]:
    """Every column, in every dataset with the subject variable, whose values reveal the arm.

    A column is flagged when, over the subjects in ``allocation`` (USUBJID, ARMCD, optionally
    ARM and MASKCD):

    - ``arm_values``: its values that equal an arm code, label or masking code (case- and
      space-insensitive), held by at least 5 subjects, name the subject's own arm for at least
      90 % of those rows; or
    - ``determines_arm``: its values determine the arm. Per subject the column's set of
      non-missing values is taken (a subject whose values are all missing has the value
      "missing"); only values held by at least two subjects are informative (a value held by one
      subject says nothing: an identifier such as USUBJID, a kit number or a date is never
      flagged for being unique per subject). The column is flagged when the informative values
      cover at least ``min_subjects`` subjects (``[blinding] scan_min_subjects``, default 20)
      and half of the dataset's subjects, span two arms or more, number two or more, and at
      least 98 % of (subject, value) pairs sit in the value's majority arm. A constant column
      (one value in every arm) is therefore not flagged; a two-level column with the arm's
      split is (it is the arm); SEX, COUNTRY, STRATUM, ONSET, sites, dates and measurements,
      which occur in every arm, are not.

    The subject variable itself is not scanned. In a dataset of more than 4,000 subjects a column
    whose purity over the first 2,000 subjects (200+ pairs) is below 90 % is clearly mixed and is
    not scanned in full (20,000 simulated subjects: 1.8 s for every column of every dataset).
    Returns findings in dataset, column order.
    """
    subj = study.col("subject")
    min_subjects = int(study.scan_min_subjects if min_subjects is None else min_subjects)
    if allocation is None or "USUBJID" not in allocation.columns or "ARMCD" not in allocation.columns:
        raise ValueError("the arm scan needs an allocation with USUBJID and ARMCD")
    alloc = allocation.dropna(subset=["USUBJID", "ARMCD"]).drop_duplicates("USUBJID")
    arm_codes, arm_names = pd.factorize(alloc["ARMCD"].astype(str))
    arm_of = pd.Series(arm_codes, index=alloc["USUBJID"].astype(str).to_numpy())
    n_arms = len(arm_names)
    tokens = _arm_tokens(alloc, study)
    token_arm = {t: int(np.flatnonzero(arm_names == c)[0]) for t, c in tokens.items() if c in set(arm_names)}
    findings: list[ArmFinding] = []
    for name in sorted(datasets):
        df = datasets[name]
        if not isinstance(df, pd.DataFrame) or subj not in df.columns or not len(df):
            continue
        row_arm = df[subj].astype("string").map(arm_of)
        keep = row_arm.notna().to_numpy()
        if not keep.any():
            continue
        arms = row_arm.to_numpy()[keep].astype(np.int64)
        scodes, subjects = pd.factorize(df[subj].astype("string")[keep])
        n_subj = len(subjects)
        subj_arm = np.zeros(n_subj, dtype=np.int64)
        subj_arm[scodes] = arms
        scodes = np.asarray(scodes, dtype=np.int64)
        sample = scodes < SAMPLE_SUBJECTS if n_subj > 2 * SAMPLE_SUBJECTS else None
        for col in df.columns:
            if col == subj:
                continue
            s = df[col] if keep.all() else df[col][keep]
            is_text = (s.dtype == object or pd.api.types.is_string_dtype(s)
                       or isinstance(s.dtype, pd.CategoricalDtype))
            raw_codes = None
            if is_text:
                raw_codes, uniques = pd.factorize(s, use_na_sentinel=True)
                finding = _arm_values(name, col, np.asarray(raw_codes, dtype=np.int64), uniques, arms, token_arm,
                                      scodes)
                if finding:
                    findings.append(finding)
                    continue
            if n_subj < min_subjects or n_arms < 2:
                continue
            if raw_codes is not None and not len(uniques):
                v = np.asarray(raw_codes, dtype=np.int64)
            elif raw_codes is not None:    # text: normalise the distinct values only
                norm, _ = pd.factorize(pd.Index([_norm_text(u) for u in uniques]))
                raw_codes = np.asarray(raw_codes, dtype=np.int64)
                v = np.where(raw_codes >= 0, np.asarray(norm, dtype=np.int64)[np.maximum(raw_codes, 0)], -1)
            else:
                v = np.asarray(pd.factorize(s, use_na_sentinel=True)[0], dtype=np.int64)
            if sample is not None:         # a clearly mixed sample of subjects settles most columns
                stats = _determines_stats(v[sample], scodes[sample], SAMPLE_SUBJECTS, subj_arm[:SAMPLE_SUBJECTS], n_arms)
                if stats is not None and stats["pairs"] >= 200 and stats["purity"] < SAMPLE_PURITY:
                    continue
            finding = _determines(name, col, v, scodes, n_subj, subj_arm, n_arms, min_subjects)
            if finding:
                findings.append(finding)
    return findings


def _arm_values(name, col, codes: np.ndarray, uniques, arms: np.ndarray, token_arm: dict,
                scodes: np.ndarray) -> ArmFinding | None:
    if not len(uniques):
        return None
    named = np.array([token_arm.get(_norm_text(u), -1) for u in uniques], dtype=np.int64)
    if not (named >= 0).any():
        return None
    row_named = np.where(codes >= 0, named[np.maximum(codes, 0)], -1)
    hit = row_named >= 0
    if len(np.unique(scodes[hit])) < TOKEN_MIN_SUBJECTS:
        return None
    agree = float((row_named[hit] == arms[hit]).mean())
    if agree < TOKEN_AGREEMENT:
        return None
    return ArmFinding(name, str(col), "arm_values",
                      f"{int(hit.sum())} value(s) are arm codes or labels, {agree:.0%} of them the subject's own arm")


def _distinct(keys: np.ndarray, size: int) -> np.ndarray:
    """The distinct non-negative int64 ``keys`` (< ``size``), without sorting when it can."""
    if size <= 30_000_000:
        mark = np.zeros(size, dtype=bool)
        mark[keys] = True
        return np.flatnonzero(mark)
    return pd.unique(keys)


def _determines_stats(v: np.ndarray, scodes: np.ndarray, n_subj: int, subj_arm: np.ndarray, n_arms: int):
    """Coverage and purity of a column's informative values (held by 2+ subjects)."""
    present = v >= 0
    n_values = int(v.max()) + 1 if present.any() else 0
    width = n_values + 1                          # code n_values: the "all missing" pseudo-value
    pairs = _distinct(scodes[present] * width + v[present], n_subj * width)
    ps, pv = pairs // width, pairs % width
    has_value = np.zeros(n_subj, dtype=bool)
    has_value[ps] = True
    none = np.flatnonzero(~has_value)
    ps = np.concatenate([ps, none])
    pv = np.concatenate([pv, np.full(len(none), n_values, dtype=np.int64)])
    support = np.bincount(pv, minlength=width)
    informative = support[pv] >= 2
    ps, pv = ps[informative], pv[informative]
    if not len(ps):
        return None
    table = np.bincount(pv * n_arms + subj_arm[ps], minlength=width * n_arms).reshape(-1, n_arms)
    used = table.sum(axis=1) > 0
    return {"covered": int(np.count_nonzero(np.bincount(ps, minlength=n_subj))), "values": int(used.sum()),
            "arms": int((table.sum(axis=0) > 0).sum()), "pairs": int(len(ps)),
            "purity": float(table.max(axis=1).sum() / table.sum())}


def _determines(name, col, v: np.ndarray, scodes: np.ndarray, n_subj: int, subj_arm: np.ndarray, n_arms: int,
                min_subjects: int) -> ArmFinding | None:
    stats = _determines_stats(v, scodes, n_subj, subj_arm, n_arms)
    if stats is None:
        return None
    covered = stats["covered"]
    if covered < min_subjects or covered < DETERMINES_COVERAGE * n_subj:
        return None
    if stats["values"] < 2 or stats["arms"] < 2 or stats["purity"] < DETERMINES_PURITY:
        return None
    return ArmFinding(name, str(col), "determines_arm",
                      f"{stats['values']} value(s) shared by {covered} of {n_subj} subjects; "
                      f"{stats['purity']:.1%} of subject-value pairs fall in a single arm")


def _arm_variable_names(study: Study) -> set[str]:
    return {str(study.col("arm")).upper(), str(study.columns.get("armcd", "ARMCD")).upper()}


def is_arm_variable(name: str, study: Study | None = None) -> bool:
    """Whether ``name`` is an arm variable by name: a standard ADaM/SDTM arm variable
    (``ARM_VARIABLE``) or the study's ``[columns] arm`` / ``armcd``."""
    n = str(name).upper()
    return bool(ARM_VARIABLE.match(n)) or (study is not None and n in _arm_variable_names(study))


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
                          + (" ([columns] arm)" if c.upper() in _arm_variable_names(study) else ""))
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
    clinical, allocation, stripped = split_allocation_report(delivery.datasets, study)
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
