"""Blinded and unblinded views of a snapshot: the blinding safety core.

``open_view(data_dir, role, ...)`` returns a ``BlindedView`` or an ``UnblindedView``. Both query the
snapshot's Parquet files on demand with an in-process DuckDB connection (one per view):
``view.table(name, columns=None, where=None)`` and ``view.sql(query)`` return DataFrames.

Blinded view (roles steering, investigator; author before database lock). What holds:

- it never opens, reads or even looks for the allocation: it is given no allocation path;
- columns by ALLOW-LIST: a dataset shows only the columns of the data contract
  (``schemas.contract_columns``: DATASETS.md, the ADaM-level contract of an imported trial, the
  study's mapped columns and ``[blinding.allow_columns]``), never an arm variable
  (``ARM_COLUMNS``, the study's ``[columns] arm``) nor a declared arm-revealing exposure variable
  (``[blinding] arm_revealing_exposure``). Any other column is absent; a dataset with no allowed
  column is absent;
- parameters by ALLOW-LIST when the study declares ``[blinding.safe_params]`` (MIROCALS does):
  a dataset with a PARAMCD column shows only the rows of its safe codes (none when the dataset
  is not listed; rows without PARAMCD are absent). Without that declaration every parameter is
  shown except the declared ones. In both cases a row is absent when its PARAMCD is a declared
  arm-revealing code (``study.arm_revealing_param_codes``: Tregs, eosinophils) or its PARAMCD or
  PARAM matches ``[blinding] arm_revealing_param_patterns`` (a renamed ``TREG_PCT`` "Regulatory
  T cells (% of CD4)" is absent too);
- AE rows whose term columns (``[blinding] ae_term_columns``) match ``[blinding]
  arm_revealing_ae`` are absent (MIROCALS: injection-site reactions, influenza-like illness,
  eosinophilia);
- what was left out is named in ``view.withheld`` (dataset -> ``(kind, name, reason)``, kind
  ``dataset``, ``column``, ``param`` or ``ae_term``): names only, no value, count or subject;
- its DuckDB connection has file access disabled and its configuration locked once the datasets
  are registered, so ``view.sql`` cannot read any file (the allocation or the raw Parquet);
- asking it for anything by arm (an arm column, a withheld column, a literal naming an
  arm-revealing parameter or AE term, the allocation, ``require_unblinded``) raises
  ``BlindingError``, never an empty result.

What it does NOT guarantee: that a column of the contract cannot reveal the arm (the clinical
part is scanned against the allocation when it is written: ``write_snapshot``, ``mirocals
import``, ``validate_snapshot`` with an allocation), nor anything about parameters or AE terms
that are neither declared nor matched by a pattern in a study without ``safe_params``.

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
    """Pooled data only: no allocation, only the columns of the data contract, only the safe
    parameters, no arm-revealing AE rows.

    Takes no allocation argument at all; see the module docstring for the guarantees.
    ``withheld`` names what was left out (dataset -> list of ``(kind, name, reason)``).
    """

    blinded = True
    group_col = None
    allocation_hash = None
    arm_levels = ("All",)

    def __init__(self, clinical_dir, role: str, study=None, skip_unreadable: bool = False):
        super().__init__(clinical_dir, role, study)
        from data_access.schemas import contract_columns
        study = self.study
        self.hidden_params: tuple[str, ...] = tuple(study.arm_revealing_param_codes)
        self._hidden_upper = {p.upper() for p in self.hidden_params}
        self._param_patterns = tuple(re.compile(p) for p in study.arm_revealing_param_patterns)
        self._ae_patterns = tuple(re.compile(p) for p in study.arm_revealing_ae_patterns)
        self._safe = study.safe_params
        self._contract = contract_columns(study)
        self._exposure = set(study.arm_revealing_exposure)
        self.unreadable: dict[str, str] = {}
        self._withheld_columns: dict[str, list[tuple[str, str, str]]] = {}
        self._row_rules: dict[str, tuple] = {}
        self._withheld_rows: dict[str, list[tuple[str, str, str]]] | None = None
        self._visible: dict[str, tuple[str, ...]] = {}
        registered = {}
        for name, path in self._paths.items():
            try:
                data = self._blinded_dataset(name, path)
            except Exception as exc:     # noqa: BLE001 - a corrupt file: raise unless told to skip it
                if not skip_unreadable:
                    raise
                self.unreadable[name] = f"{type(exc).__name__}: {exc}"
                continue
            if data is None:
                continue
            self._con.register(name, data)
            registered[name] = path
        self._paths = registered
        self.datasets = tuple(registered)
        visible = {c.upper() for name in self.datasets for c in self._visible[name]}
        self._withheld_names = {col.upper() for items in self._withheld_columns.values()
                                for kind, col, _ in items if kind == "column"} - visible
        # from here on the connection can read no file and cannot be reconfigured
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")

    # ----------------------------------------------------------------- registration
    def _allowed(self, name: str) -> frozenset[str]:
        return self._contract.get(name, frozenset()) | self._contract.get("*", frozenset())

    def _column_verdict(self, name: str, col: str, allowed: frozenset[str]) -> str | None:
        """Why a column is withheld (None: shown)."""
        up = col.upper()
        if up in ARM_COLUMNS or up in {str(self.study.columns.get("arm", "ARM")).upper(),
                                       str(self.study.columns.get("armcd", "ARMCD")).upper()}:
            return "arm variable"
        if up in self._exposure:
            return "arm-revealing exposure variable ([blinding] arm_revealing_exposure)"
        if up in allowed or (up.endswith("DTC") and up[:-1] in allowed):
            return None
        return ("not in the data contract (DATASETS.md) nor mapped by the study file "
                "([columns], [analysis], [blinding.allow_columns])")

    def _blinded_dataset(self, name: str, path: Path):
        schema = pq.read_schema(path)
        allowed = self._allowed(name)
        kept, withheld = [], []
        for f in schema:
            reason = self._column_verdict(name, f.name, allowed)
            if reason:
                withheld.append(("column", f.name, reason))
            else:
                kept.append(f)
        if not kept:
            self._withheld_columns[name] = [("dataset", name, "no column of it is in the data contract")] + withheld
            return None
        if withheld:
            self._withheld_columns[name] = withheld
        kept_schema = pa.schema(kept)
        self._visible[name] = tuple(kept_schema.names)
        data = ds.dataset(str(path), format="parquet", schema=kept_schema)
        expr = self._row_filter(name, kept_schema.names)
        return data.filter(expr) if expr is not None else data

    def _regex_none(self, column: str, patterns) -> "pc.Expression | None":
        """True where ``column`` is missing or matches none of ``patterns``."""
        if not patterns:
            return None
        f = pc.field(column)
        hit = None
        for p in patterns:
            m = pc.match_substring_regex(f, pattern=p.pattern)
            hit = m if hit is None else (hit | m)
        return f.is_null() | ~hit

    def _row_filter(self, name: str, names) -> "pc.Expression | None":
        parts = []
        if "PARAMCD" in names:
            code = pc.field("PARAMCD")
            safe = None if self._safe is None else self._safe.get(name, ())
            rules = {"safe": safe}
            if safe is not None:           # allow-list: only declared safe codes, never a revealing one
                allowed = [c for c in safe if not self._param_revealing(c, None)]
                parts.append(code.isin(allowed))
            elif self._hidden_upper:       # no allow-list declared: every code but the revealing ones
                parts.append(code.is_null() | ~pc.utf8_upper(code).isin(sorted(self._hidden_upper)))
            for col in ("PARAMCD", "PARAM"):
                if col in names:
                    e = self._regex_none(col, self._param_patterns)
                    if e is not None:
                        parts.append(e)
            self._row_rules[name] = rules
        if name == self.study.ae_dataset:
            cols = [c for c in self.study.ae_term_columns if c in names]
            for col in cols:
                e = self._regex_none(col, self._ae_patterns)
                if e is not None:
                    parts.append(e)
            if cols and self._ae_patterns:
                self._row_rules.setdefault(name, {})["ae"] = tuple(cols)
        expr = None
        for e in parts:
            expr = e if expr is None else (expr & e)
        return expr

    def _param_revealing(self, code, label) -> str | None:
        """Why a parameter reveals the arm (None: it does not)."""
        if code is not None and str(code).upper() in self._hidden_upper:
            return "declared arm-revealing ([blinding] arm_revealing_params / arm_revealing_safety_params)"
        for value, what in ((code, "PARAMCD"), (label, "PARAM")):
            if value is not None and any(p.search(str(value)) for p in self._param_patterns):
                return f"its {what} matches an arm-revealing pattern ([blinding] arm_revealing_param_patterns)"
        return None

    # ----------------------------------------------------------------- what is withheld
    @property
    def withheld(self) -> dict[str, list[tuple[str, str, str]]]:
        """What this view leaves out, by dataset: a list of ``(kind, name, reason)`` with kind
        ``dataset`` (nothing of it is shown), ``column`` (a column name), ``param`` (a PARAMCD;
        ``"(missing)"`` for rows without one) or ``ae_term`` (an AE term, preferred term or SOC
        that matched ``[blinding] arm_revealing_ae``). Names only: never a value, a count or a
        subject. Parameters and AE terms are listed on first access (read from the files)."""
        with self._lock:
            if self._withheld_rows is None:
                self._withheld_rows = self._list_withheld_rows()
            out = {}
            for name in sorted(set(self._withheld_columns) | set(self._withheld_rows)):
                items = self._withheld_columns.get(name, []) + self._withheld_rows.get(name, [])
                if items:
                    out[name] = list(items)
            return out

    def _list_withheld_rows(self) -> dict[str, list[tuple[str, str, str]]]:
        out: dict[str, list[tuple[str, str, str]]] = {}
        for name, rules in self._row_rules.items():
            path = self._paths[name]
            items = []
            if "safe" in rules:
                cols = [c for c in ("PARAMCD", "PARAM") if c in self._visible[name]]
                pairs = pq.read_table(path, columns=cols).group_by(cols).aggregate([]).to_pylist()
                seen = {}
                for row in pairs:
                    code, label = row.get("PARAMCD"), row.get("PARAM")
                    reason = self._param_revealing(code, label)
                    if reason is None and rules["safe"] is not None and code not in rules["safe"]:
                        reason = "not among the safe parameters of this dataset ([blinding.safe_params])"
                    if reason:
                        key = "(missing)" if code is None else str(code)
                        if key not in seen:
                            seen[key] = reason + (f"; PARAM {label!r}" if label else "")
                items += [("param", k, v) for k, v in sorted(seen.items())]
            for col in rules.get("ae", ()):
                values = pc.unique(pq.read_table(path, columns=[col]).column(col)).to_pylist()
                terms = sorted({str(v) for v in values if v is not None and any(p.search(str(v)) for p in self._ae_patterns)})
                items += [("ae_term", t, f"{col} matches an arm-revealing AE pattern ([blinding] arm_revealing_ae)")
                          for t in terms]
            if items:
                out[name] = items
        return out

    # ----------------------------------------------------------------- guards
    def require_unblinded(self, what: str = "this output"):
        """Always raises ``BlindingError``: a blinded view cannot produce anything by arm."""
        raise BlindingError(f"{what} needs unblinded data; role {self.role!r} has a blinded view "
                            f"(pooled results only, no allocation)")

    def labels(self, name: str) -> dict[str, str]:
        shown = {c.upper() for c in self._visible.get(name, ())}
        return {k: v for k, v in super().labels(name).items() if str(k).upper() in shown}

    def _guard_columns(self, columns) -> None:
        for col in columns:
            up = str(col).upper()
            if up in ARM_COLUMNS:
                self.require_unblinded(f"column {col}")
            if up in self._withheld_names:
                raise BlindingError(f"column {col} is withheld from blinded views (see view.withheld)")

    def _revealing_literal(self, value: str) -> bool:
        if value.strip().upper() in self._hidden_upper:
            return True
        return any(p.search(value) for p in self._param_patterns + self._ae_patterns)

    def _guard_sql(self, text: str) -> None:
        for literal in _LITERAL.findall(text):
            value = literal[1:-1].replace("''", "'").strip()
            if value and self._revealing_literal(value):
                self.require_unblinded(f"parameter or term {value.upper()} (it reveals the allocation)")
        for quoted, bare in _IDENT.findall(_LITERAL.sub("''", text)):
            ident = (quoted.replace('""', '"') if quoted else bare).upper()
            if ident in ARM_COLUMNS:
                self.require_unblinded(f"column {ident}")
            if ident == "ALLOCATION":
                self.require_unblinded("the allocation")
            if ident in self._withheld_names:
                raise BlindingError(f"column {ident} is withheld from blinded views (see view.withheld)")


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
