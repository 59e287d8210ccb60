"""Blinded and unblinded views of a snapshot: the blinding safety core.

``open_view(data_dir, role, ...)`` returns a ``BlindedView`` or an ``UnblindedView``. Both query the
snapshot's Parquet files on demand with an in-process DuckDB connection (one per view):
``view.table(name, columns=None, where=None)`` and ``view.sql(query)`` return DataFrames.

Blinded view (roles steering, investigator; author before database lock):

- never opens, reads or even looks for the allocation: it is given no allocation path;
- every dataset is registered without arm-coded columns (``ARM_COLUMNS``) and without the rows of
  the study's arm-revealing parameters (``study.arm_revealing_params``, e.g. Treg counts); these
  rows and columns are absent, not hidden;
- its DuckDB connection has file access disabled and its configuration locked once the datasets
  are registered, so ``view.sql`` cannot read any file (the allocation or the raw Parquet);
- asking it for anything by arm (an arm column, an arm-revealing parameter, the allocation,
  ``require_unblinded``) raises ``BlindingError``, never an empty result.

Unblinded view (roles dsmb, statistician; author after database lock) needs the allocation part:
it joins ARMCD and ARM onto every dataset that has USUBJID (left join, rows in file order). With
``mask_arms`` both carry the masking code (``Group A`` / ``Group B``, the allocation's MASKCD) so
the arm names never appear; the key stays in the allocation.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from data_access.snapshot import MANIFEST, read_manifest

ARM_COLUMNS = ("ARM", "ARMCD", "TRT01P", "TRT01A", "TRTP", "TRTA", "RANDNO", "MASKCD", "BLOCK")
BLINDED_ROLES = ("steering", "investigator")
UNBLINDED_ROLES = ("dsmb", "statistician")
LOCK_ROLES = ("author",)              # blinded until the database lock is recorded
ROLES = BLINDED_ROLES + UNBLINDED_ROLES + LOCK_ROLES

MEMO_MAX_CELLS = 2_000_000            # results up to this many cells are memoised per view
MEMO_ENTRIES = 32
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')


class BlindingError(PermissionError):
    """A blinded view was asked for something that needs the allocation (anything by arm)."""


class DatasetNotFound(KeyError, ValueError):
    """The snapshot has no dataset of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AllocationMissingError(FileNotFoundError):
    """An unblinded view was asked for without a readable allocation part."""


def is_unblinded_role(role: str, database_locked: bool = False) -> bool:
    """Whether ``role`` sees unblinded data. Raises ``ValueError`` for an unknown role."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    return role in UNBLINDED_ROLES or (role in LOCK_ROLES and bool(database_locked))


def clinical_dir_of(data_dir) -> Path:
    """``data_dir/clinical`` for a snapshot root, else ``data_dir`` itself."""
    p = Path(data_dir)
    return p / "clinical" if (p / "clinical").is_dir() else p


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _sql_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class _View:
    """What blinded and unblinded views share: manifest, datasets, DuckDB querying."""

    blinded: bool
    group_col: str | None

    def __init__(self, clinical_dir, role: str, study=None):
        from data_access.study import load_snapshot_study
        clinical_dir = Path(clinical_dir)
        if not (clinical_dir / MANIFEST).exists():
            raise FileNotFoundError(f"{clinical_dir}: not a snapshot (no {MANIFEST})")
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
        if name not in self.datasets:
            raise DatasetNotFound(f"no dataset {name!r} in this snapshot; datasets: {', '.join(self.datasets)}")
        if isinstance(columns, str):
            columns = [columns]
        self._guard_columns(columns or [])
        if where:
            self._guard_sql(where)
        select = ", ".join(_quote(c) for c in columns) if columns else "*"
        query = f"SELECT {select} FROM {_quote(name)}" + (f" WHERE {where}" if where else "")
        return self._query(query)

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
            return tuple(self._con.sql(f"SELECT * FROM {_quote(name)} LIMIT 0").columns)

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


class BlindedView(_View):
    """Pooled data only: no allocation, no arm columns, no arm-revealing parameters.

    Takes no allocation argument at all; see the module docstring for the guarantees.
    """

    blinded = True
    group_col = None
    allocation_hash = None
    arm_levels = ("All",)

    def __init__(self, clinical_dir, role: str, study=None):
        super().__init__(clinical_dir, role, study)
        self.hidden_params: tuple[str, ...] = tuple(self.study.arm_revealing_params)
        for name, path in self._paths.items():
            self._con.register(name, self._blinded_dataset(path))
        # from here on the connection can read no file and cannot be reconfigured
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")

    def _blinded_dataset(self, path: Path) -> ds.Dataset:
        schema = pq.read_schema(path)
        kept = pa.schema([f for f in schema if f.name.upper() not in ARM_COLUMNS])
        data = ds.dataset(str(path), format="parquet", schema=kept)
        if self.hidden_params and "PARAMCD" in kept.names:
            paramcd = pc.field("PARAMCD")
            data = data.filter(paramcd.is_null() | ~paramcd.isin(list(self.hidden_params)))
        return data

    def require_unblinded(self, what: str = "this output"):
        """Always raises ``BlindingError``: a blinded view cannot produce anything by arm."""
        raise BlindingError(f"{what} needs unblinded data; role {self.role!r} has a blinded view "
                            f"(pooled results only, no allocation)")

    def _guard_columns(self, columns) -> None:
        for col in columns:
            if str(col).upper() in ARM_COLUMNS:
                self.require_unblinded(f"column {col}")

    def _guard_sql(self, text: str) -> None:
        for literal in _LITERAL.findall(text):
            value = literal[1:-1].replace("''", "'").strip().upper()
            if value in {p.upper() for p in self.hidden_params}:
                self.require_unblinded(f"parameter {value} (it reveals the allocation)")
        for quoted, bare in _IDENT.findall(_LITERAL.sub("''", text)):
            ident = (quoted.replace('""', '"') if quoted else bare).upper()
            if ident in ARM_COLUMNS:
                self.require_unblinded(f"column {ident}")
            if ident == "ALLOCATION":
                self.require_unblinded("the allocation")


class UnblindedView(_View):
    """Every dataset with USUBJID gets ARMCD and ARM joined from the allocation."""

    blinded = False
    group_col = "ARM"

    def __init__(self, clinical_dir, role: str, allocation_dir, study=None, mask_arms: bool = False):
        super().__init__(clinical_dir, role, study)
        if allocation_dir is None:
            raise AllocationMissingError(f"role {role!r} needs the allocation (randomisation list) "
                                         f"for an unblinded view, and none was configured")
        alloc_dir = Path(allocation_dir)
        alloc_path = alloc_dir / "allocation.parquet"
        if not (alloc_dir / MANIFEST).exists() or not alloc_path.exists():
            raise AllocationMissingError(f"{alloc_dir}: no allocation snapshot (allocation.parquet and "
                                         f"{MANIFEST}); an unblinded view needs one")
        self.allocation_hash: str = read_manifest(alloc_dir)["content_hash"]
        self.mask_arms = bool(mask_arms)
        codes, labels = list(self.study.arm_codes), list(self.study.arm_labels)
        self.arm_levels: tuple[str, ...] = (tuple(self.study.masked_labels[:len(codes)]) if self.mask_arms
                                            else tuple(labels))
        self._register_allocation(alloc_path, codes, labels)
        for name, path in self._paths.items():
            self._register_dataset(name, path)

    def _register_allocation(self, path: Path, codes: list[str], labels: list[str]) -> None:
        cols = set(pq.read_schema(path).names)
        missing = {"USUBJID", "ARMCD"} - cols
        if self.mask_arms and "MASKCD" not in cols:
            missing.add("MASKCD")
        if missing:
            raise ValueError(f"{path}: allocation lacks {', '.join(sorted(missing))}")
        src = f"read_parquet({_sql_literal(path)}, file_row_number = true)"
        # one row per subject: the first listed wins; duplicates are reported by validation
        first = f"SELECT * FROM {src} QUALIFY row_number() OVER (PARTITION BY USUBJID ORDER BY file_row_number) = 1"
        dups = self._con.execute(f"SELECT count(*) - count(DISTINCT USUBJID) FROM {src}").fetchone()[0]
        if dups:
            warnings.warn(f"allocation lists {dups} subject(s) more than once; the first entry is used",
                          stacklevel=3)
        if self.mask_arms:
            arm = "MASKCD AS ARMCD, MASKCD AS ARM"
            rest = ", ".join(_quote(c) for c in ("STRATUM",) if c in cols)
            self._con.execute(f"CREATE VIEW allocation AS SELECT USUBJID, {arm}{', ' + rest if rest else ''} "
                              f"FROM ({first}) ORDER BY file_row_number")
        elif "ARM" in cols:
            self._con.execute(f"CREATE VIEW allocation AS SELECT * EXCLUDE (file_row_number) "
                              f"FROM ({first}) ORDER BY file_row_number")
        else:   # no label column: label the codes from the study config
            label = "CASE ARMCD " + " ".join(f"WHEN {_sql_literal(c)} THEN {_sql_literal(lbl)}"
                                             for c, lbl in zip(codes, labels)) + " END"
            self._con.execute(f"CREATE VIEW allocation AS SELECT * EXCLUDE (file_row_number), "
                              f"{label} AS ARM FROM ({first}) ORDER BY file_row_number")

    def _register_dataset(self, name: str, path: Path) -> None:
        names = pq.read_schema(path).names
        src = f"read_parquet({_sql_literal(path)})"
        if "USUBJID" not in names:
            self._con.execute(f"CREATE VIEW {_quote(name)} AS SELECT * FROM {src}")
            return
        drop = ["file_row_number"] + [c for c in names if c.upper() in ("ARM", "ARMCD")]
        exclude = ", ".join(_quote(c) for c in drop)
        self._con.execute(
            f"CREATE VIEW {_quote(name)} AS SELECT c.* EXCLUDE ({exclude}), a.ARMCD, a.ARM "
            f"FROM read_parquet({_sql_literal(path)}, file_row_number = true) c "
            f"LEFT JOIN allocation a ON c.USUBJID = a.USUBJID ORDER BY c.file_row_number")

    def require_unblinded(self, what: str = "this output") -> None:
        """Nothing to check: an unblinded view may produce results by arm."""
        return None


def open_view(data_dir, role: str, allocation_dir=None, study=None, mask_arms: bool = False,
              database_locked: bool = False) -> BlindedView | UnblindedView:
    """Open the view of a snapshot that ``role`` is allowed to see.

    Parameters
    ----------
    data_dir : snapshot root (containing ``clinical/``) or the clinical part itself.
    role : steering, investigator (blinded); dsmb, statistician (unblinded); author (blinded
        unless ``database_locked``). Anything else raises ``ValueError``.
    allocation_dir : the allocation part; used only for unblinded roles (a blinded view never
        touches it). Default for an unblinded role: ``data_dir/allocation`` when ``data_dir`` is
        a snapshot root that has one.
    study : a ``Study`` (default: the snapshot's own ``study.toml`` when imported, else MIROCALS).
    mask_arms : unblinded only: show arms as their masking codes (Group A / Group B).
    database_locked : whether the database lock is recorded (unblinds the author role).

    Returns
    -------
    BlindedView or UnblindedView.
    """
    if not is_unblinded_role(role, database_locked):
        return BlindedView(clinical_dir_of(data_dir), role, study=study)
    clinical = clinical_dir_of(data_dir)
    if allocation_dir is None and clinical != Path(data_dir) and (Path(data_dir) / "allocation").is_dir():
        allocation_dir = Path(data_dir) / "allocation"
    return UnblindedView(clinical, role, allocation_dir, study=study, mask_arms=mask_arms)
