"""Data validation: one row per problem (dataset, column, subject, rule, severity, message).

Validation never modifies or drops data; it reports. It never crashes on a malformed, empty or
corrupt file: such a file is itself a problem (``file_unreadable`` / ``file_empty``) and the other
datasets are still checked. Per-dataset checks are pandera schemas (``data_access.schemas``, run
by ``data_access.validate_dataset``); cross-dataset rules are in ``data_access.validate_rules``.
Rule names are listed at the end of ``data_access/DATASETS.md``.

This module reads a part, holds the entry points (``validate_snapshot``, ``validate_blinded``,
``validate_datasets``; the manifest and the arm scan) and formats the problems.

Examples
--------
>>> problems = validate_snapshot("demo_data/clinical")          # doctest: +SKIP
>>> print(format_problems(problems, "md"))                        # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from data_access.schemas import build_schemas
from data_access.validate_dataset import COLUMNS, ProblemReport, check_dataset
from data_access.validate_rules import cross_checks


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
    DataFrame with columns site (the subject's, from ADSL or the screening log; empty for a
    problem of a file or of a subject no dataset places), subject, dataset, column, rule, value
    (the offending value, empty when the problem has none), message, severity; one row per
    problem.
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

    The datasets are read with ``view_blinded.BlindedView`` (no allocation; only the columns of the data
    contract; only safe parameters, no arm-revealing parameter or AE term: no Treg or eosinophil
    value can be named by a message). A file the view cannot open is ``file_unreadable``;
    manifest entries are checked for presence, not row counts (withheld rows are not counted).
    Same columns as ``validate_snapshot``. ``study`` defaults to the snapshot's own."""
    from data_access.view_blinded import BlindedView
    from data_access.views import clinical_dir_of
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
    r = ProblemReport({"manifest": "manifest.json"})
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
    r = ProblemReport(dict(files or {}))
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
            good[name] = check_dataset(r, name, df, schemas.get(name))
    if "adsl" not in datasets:
        r.add("adsl", "", None, "file_unreadable", "no ADSL dataset: subjects cannot be checked")
    cross_checks(r, good, study)
    r.sites = _sites_of(good, study)
    if isinstance(allocation, pd.DataFrame) and {"USUBJID", "ARMCD"} <= set(allocation.columns):
        _arm_scan(r, {n: df for n, df in good.items() if n != "allocation"}, allocation, study)
    return r.frame()


def _sites_of(datasets: dict[str, pd.DataFrame], study=None) -> dict[str, str]:
    """Subject -> site: ADSL's USUBJID, and the screening log's SCRNID and USUBJID (ADSL wins)."""
    site = "SITEID"
    if study is not None and getattr(study, "columns", None):
        site = study.columns.get("site", site)
    out: dict[str, str] = {}
    for name, keys in (("screening", ("SCRNID", "USUBJID")), ("adsl", ("USUBJID",))):
        df = datasets.get(name)
        if df is None or site not in df.columns:
            continue
        for key in keys:
            if key in df.columns:
                pairs = df[[key, site]].dropna()
                out.update(zip(pairs[key].astype(str), pairs[site].astype(str)))
    return out


def _arm_scan(r: ProblemReport, clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame, study) -> None:
    """Rule ``arm_revealing_column``: a clinical column whose values reveal the arm (the scan that
    ``mirocals import`` and ``write_snapshot`` run: ``arm_scan.find_arm_revealing_columns``)."""
    from data_access.arm_scan import find_arm_revealing_columns
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


# --------------------------------------------------------------------------- for people
PEOPLE_HEADERS = {"site": "Site", "subject": "Subject", "dataset": "Dataset", "column": "Column", "rule": "Rule",
                  "value": "Value", "message": "Problem", "severity": "Severity"}


def describe_problems(problems: pd.DataFrame, blank: str = "—") -> pd.DataFrame:
    """The problems as people read them: headers Site, Subject, Dataset, Column, Rule (in words,
    ``data_access.rule_text``), Value, Problem (the whole message), Severity (Error / Warning);
    ``blank`` in place of an empty site, subject, column or value. Rows in the order given."""
    from data_access.rule_text import rule_text
    out = problems[COLUMNS].copy()
    for col in ("site", "subject", "column", "value"):
        out[col] = out[col].fillna("").astype(str).replace("", blank)
    out["rule"] = out["rule"].map(rule_text)
    out["severity"] = out["severity"].astype(str).str.capitalize()
    return out.rename(columns=PEOPLE_HEADERS).reset_index(drop=True)


def query_list(problems: pd.DataFrame, site: str) -> pd.DataFrame:
    """The problems of one site as a query list for it (``describe_problems``, blank cells empty),
    errors first, then by subject, dataset and rule."""
    mine = problems[problems["site"].astype(str) == str(site)]
    mine = mine.assign(_order=mine["severity"].ne("error")).sort_values(
        ["_order", "subject", "dataset", "rule", "column", "message"], kind="stable")
    return describe_problems(mine.drop(columns="_order"), blank="")


def query_list_csv(problems: pd.DataFrame, site: str) -> bytes:
    """One site's query list as CSV (UTF-8 with a byte-order mark, so that spreadsheet programs
    read the accents of site names and messages)."""
    return query_list(problems, site).to_csv(index=False).encode("utf-8-sig")


def query_list_xlsx(problems: pd.DataFrame, site: str, cut_date=None) -> bytes:
    """One site's query list as an Excel workbook (openpyxl through pandas): one sheet "Queries",
    a header row (frozen, filterable) and one row per problem, columns sized to their text and the
    Problem column wrapped so that every message is read whole."""
    import io

    from openpyxl.styles import Alignment, Font
    frame = query_list(problems, site)
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="Queries", index=False)
        ws = writer.sheets["Queries"]
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for i, col in enumerate(frame.columns, start=1):
            letter = ws.cell(row=1, column=i).column_letter
            longest = max([len(str(col))] + [len(str(v)) for v in frame[col]])
            ws.column_dimensions[letter].width = min(max(8, longest + 2), 80)
            if col == "Problem":
                for cell in ws[letter][1:]:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
        if cut_date is not None:
            ws.oddFooter.left.text = f"Site {site} · data cut-off {cut_date}"
    return buf.getvalue()


def summarize_problems_by_rule(problems: pd.DataFrame) -> pd.DataFrame:
    """One row per rule (a rule reported both as an error and as a warning, e.g. a required and an
    optional missing column, is still one row): rule, errors, warnings, subjects (distinct
    subjects concerned); most problems first, then by rule."""
    flags = problems.assign(error=problems["severity"].eq("error"), warning=problems["severity"].eq("warning"),
                            subject=problems["subject"].replace("", None))
    out = (flags.groupby("rule", as_index=False)
           .agg(errors=("error", "sum"), warnings=("warning", "sum"), subjects=("subject", "nunique"))
           .astype({"errors": int, "warnings": int, "subjects": int}))
    order = (out["errors"] + out["warnings"]).rename("total")
    return (out.join(order).sort_values(["total", "rule"], ascending=[False, True], kind="stable")
            .drop(columns="total").reset_index(drop=True))
