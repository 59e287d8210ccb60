"""What blinded and unblinded views share: the snapshot's manifest and datasets, DuckDB querying.

``BaseView`` reads the manifest of a clinical part and queries its Parquet files with an
in-process DuckDB connection (one per view): ``table``, ``sql``, ``columns``, ``labels``, with a
per-view memo of small results. ``BlindedView`` (``data_access.view_blinded``) and
``UnblindedView`` (``data_access.view_unblinded``) build on it; ``data_access.views.open_view``
chooses between them. Here too: the arm variables (``ARM_COLUMNS``), the errors a view raises
(``BlindingError``, ``DatasetNotFound``, ``AllocationMissingError``) and SQL quoting.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from pathlib import Path

import duckdb
import pandas as pd

from data_access.snapshot import MANIFEST, read_manifest

ARM_COLUMNS = ("ARM", "ARMCD", "TRT01P", "TRT01A", "TRTP", "TRTA", "RANDNO", "MASKCD", "BLOCK")

MEMO_MAX_CELLS = 2_000_000            # results up to this many cells are memoised per view
MEMO_ENTRIES = 32


class BlindingError(PermissionError):
    """A blinded view was asked for something that needs the allocation (anything by arm)."""


class DatasetNotFound(KeyError, ValueError):
    """The snapshot has no dataset of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetUnreadable(LookupError):
    """A dataset file of the snapshot cannot be read (damaged, truncated, not Parquet). The
    message names the file, what is wrong and what to do; the view's other datasets still work."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


UNREADABLE_TAIL = "; outputs that do not need {name} still work."


def unreadable_message(path, name: str, exc: BaseException) -> str:
    """What a reader is told about an unreadable dataset file (one line; ends with
    ``UNREADABLE_TAIL``, which a caller that does not go on without the dataset replaces)."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"{path} cannot be read ({detail}): the {name} dataset of this snapshot is damaged or incomplete. "
            f"Copy it again from the delivery or rebuild the snapshot (mirocals import, mirocals demo)"
            + UNREADABLE_TAIL.format(name=name))


class AllocationMissingError(FileNotFoundError):
    """An unblinded view was asked for without a readable allocation part."""


class _ReadError(ValueError):
    """A query failed reading a file (DuckDB IO / invalid input): ``table`` names the dataset."""


def quote_name(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(path: Path) -> str:
    """``path`` (or any text) as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


class BaseView:
    """What blinded and unblinded views share: manifest, datasets, DuckDB querying."""

    blinded: bool
    group_col: str | None

    def __init__(self, clinical_dir, role: str, study=None):
        from data_access.study import load_snapshot_study
        clinical_dir = Path(clinical_dir)
        if not (clinical_dir / MANIFEST).exists():
            raise FileNotFoundError(f"{clinical_dir}: not a snapshot (no {MANIFEST}); a snapshot is a folder holding "
                                    f"clinical/{MANIFEST} and the datasets, as `mirocals demo` and `mirocals import` "
                                    "write them")
        self.role = role
        # default: the study config the snapshot carries (an import), else MIROCALS
        self.study = study if study is not None else load_snapshot_study(clinical_dir)
        self.manifest = read_manifest(clinical_dir)
        self.snapshot_hash: str = self.manifest["content_hash"]
        self.cut_date: dt.date | None = (dt.date.fromisoformat(self.manifest["cut_date"])
                                         if self.manifest.get("cut_date") else None)
        self._clinical_dir = clinical_dir
        self._paths = {f.removesuffix(".parquet"): clinical_dir / f
                       for f in sorted(self.manifest.get("files", {}))
                       if f.endswith(".parquet") and (clinical_dir / f).exists()}
        self.datasets: tuple[str, ...] = tuple(self._paths)
        # datasets whose file cannot be read: name -> the message naming the file (views leave them
        # out of ``datasets``; asking for one raises DatasetUnreadable)
        self.unreadable: dict[str, str] = {}
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET python_enable_replacements = false")   # no scans of Python objects by name
        try:
            self._con.execute("SET enable_progress_bar = false")       # nothing on stderr
        except duckdb.Error:
            pass  # inside a Jupyter kernel duckdb refuses the setting without ipywidgets: no bar anyway
        self._lock = threading.RLock()
        # per-view memo of query results (copies are handed out): a view's data never changes,
        # and a blinded view's memo only ever holds what that blinded view was allowed to read
        self._memo: OrderedDict[str, pd.DataFrame] = OrderedDict()

    # ----------------------------------------------------------------- querying
    def table(self, name: str, columns=None, where: str | None = None) -> pd.DataFrame:
        """Dataset ``name`` (optionally some ``columns`` and rows matching the SQL ``where``)."""
        if name in self.unreadable:
            raise DatasetUnreadable(self.unreadable[name])
        if name not in self.datasets:
            raise DatasetNotFound(f"no dataset {name!r} in this snapshot; datasets: {', '.join(self.datasets)}")
        if isinstance(columns, str):
            columns = [columns]
        self._guard_columns(columns or [])
        if where:
            self._guard_sql(where)
        select = ", ".join(quote_name(c) for c in columns) if columns else "*"
        query = f"SELECT {select} FROM {quote_name(name)}" + (f" WHERE {where}" if where else "")
        try:
            return self._query(query)
        except _ReadError as exc:          # the file broke after its footer was read (a bad page)
            raise DatasetUnreadable(unreadable_message(self._paths.get(name, name), name, exc.__cause__ or exc)) from None

    def sql(self, query: str) -> pd.DataFrame:
        """Run a SQL query over the view's datasets (each registered under its name)."""
        self._guard_sql(query)
        return self._query(query)

    def labels(self, name: str) -> dict[str, str]:
        """Variable labels of dataset ``name`` as delivered (``labels.json`` of an imported
        snapshot: SAS labels, arm variables left out); empty when the snapshot has none."""
        import json
        path = self._clinical_dir / "labels.json"
        if not path.is_file():
            return {}
        labels = json.loads(path.read_text(encoding="utf-8")).get(name, {})
        return {k: v for k, v in labels.items() if str(k).upper() not in ARM_COLUMNS and v}

    def columns(self, name: str) -> tuple[str, ...]:
        """The column names of dataset ``name`` as this view shows it."""
        if name not in self.datasets:
            raise DatasetNotFound(f"no dataset {name!r} in this snapshot; datasets: {', '.join(self.datasets)}")
        with self._lock:
            return tuple(self._con.sql(f"SELECT * FROM {quote_name(name)} LIMIT 0").columns)

    def _query(self, query: str) -> pd.DataFrame:
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise ValueError(f"query failed: {exc}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            message = "a view runs exactly one read-only SELECT query"
            raise BlindingError(message) if self.blinded else ValueError(message)
        with self._lock:
            if query in self._memo:
                self._memo.move_to_end(query)
                return self._memo[query].copy()
            try:
                # through Arrow: faster than fetch_df, and dates come back as datetime64[ms] as
                # from load_datasets
                out = self._con.sql(query).to_arrow_table().to_pandas(date_as_object=False)
                if out.size <= MEMO_MAX_CELLS:        # small results (ADSL, ADTTE) are re-read often
                    self._memo[query] = out.copy()
                    while len(self._memo) > MEMO_ENTRIES:
                        self._memo.popitem(last=False)
                return out
            except duckdb.PermissionException as exc:
                if self.blinded:
                    raise BlindingError("a blinded view can only query its own datasets; file access "
                                        "is disabled") from None
                raise ValueError(f"query failed: {exc}") from None
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                raise _ReadError(f"query failed: {exc}") from exc
            except duckdb.Error as exc:
                raise ValueError(f"query failed: {exc}") from None

    def _guard_columns(self, columns) -> None:
        pass

    def _guard_sql(self, text: str) -> None:
        pass

    # ----------------------------------------------------------------- misc
    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(role={self.role!r}, snapshot={self.snapshot_hash[:12]}, "
                f"cut_date={self.cut_date}, datasets={list(self.datasets)})")

    __str__ = __repr__
