"""The blinded view: pooled data only, by allow-list, with the guards that refuse anything by arm.

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
- concomitant-care rows (``adcm``) whose name or indication (``[blinding]
  medication_term_columns``) matches ``[blinding] arm_revealing_medications`` or an arm-revealing
  AE pattern are absent (a drug given for injection-site reactions reveals the arm as the reaction does);
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
"""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from data_access.view_base import ARM_COLUMNS, BaseView, BlindingError, unreadable_message

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')


class BlindedView(BaseView):
    """Pooled data only: no allocation, only the columns of the data contract, only the safe
    parameters, no arm-revealing AE rows.

    Takes no allocation argument at all; see the module docstring for the guarantees.
    ``withheld`` names what was left out (dataset -> list of ``(kind, name, reason)``).
    """

    blinded = True
    group_col = None
    allocation_hash = None
    arm_levels = ("All",)

    def __init__(self, clinical_dir, role: str, study=None, skip_unreadable: bool = True):
        super().__init__(clinical_dir, role, study)
        from data_access.schemas import contract_columns
        study = self.study
        self.hidden_params: tuple[str, ...] = tuple(study.arm_revealing_param_codes)
        self._hidden_upper = {p.upper() for p in self.hidden_params}
        self._param_patterns = tuple(re.compile(p) for p in study.arm_revealing_param_patterns)
        self._ae_patterns = tuple(re.compile(p) for p in study.arm_revealing_ae_patterns)
        self._med_patterns = tuple(re.compile(p) for p in study.arm_revealing_medication_patterns)
        self._safe = study.safe_params
        self._contract = contract_columns(study)
        self._exposure = set(study.arm_revealing_exposure)
        self._withheld_columns: dict[str, list[tuple[str, str, str]]] = {}
        self._row_rules: dict[str, tuple] = {}
        self._withheld_rows: dict[str, list[tuple[str, str, str]]] | None = None
        self._visible: dict[str, tuple[str, ...]] = {}
        registered = {}
        for name, path in self._paths.items():
            try:
                data = self._blinded_dataset(name, path)
            except Exception as exc:     # noqa: BLE001 - a corrupt file: named, the others still served
                if not skip_unreadable:
                    raise
                self.unreadable[name] = unreadable_message(path, name, exc)
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
        for dataset, columns, patterns, rule in (
                (self.study.ae_dataset, self.study.ae_term_columns, self._ae_patterns, "ae"),
                (self.study.medication_dataset, self.study.medication_term_columns, self._med_patterns, "medication")):
            if name != dataset:
                continue
            cols = [c for c in columns if c in names]
            parts += [e for e in (self._regex_none(c, patterns) for c in cols) if e is not None]
            if cols and patterns:
                self._row_rules.setdefault(name, {})[rule] = tuple(cols)
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
            for rule, kind, patterns, why in (
                    ("ae", "ae_term", self._ae_patterns, "an arm-revealing AE pattern ([blinding] arm_revealing_ae)"),
                    ("medication", "medication", self._med_patterns, "an arm-revealing pattern ([blinding] "
                                                                     "arm_revealing_medications or arm_revealing_ae)")):
                for col in rules.get(rule, ()):
                    values = pc.unique(pq.read_table(path, columns=[col]).column(col)).to_pylist()
                    terms = sorted({str(v) for v in values if v is not None and any(p.search(str(v)) for p in patterns)})
                    items += [(kind, t, f"{col} matches {why}") for t in terms]
            if items:
                out[name] = items
        return out

    # ----------------------------------------------------------------- guards
    def require_unblinded(self, what: str = "this output"):
        """Always raises ``BlindingError``: a blinded view cannot produce anything by arm."""
        # no role in the message: the dashboard's blinded roles share one cached view
        raise BlindingError(f"{what} needs unblinded data; this is a blinded view "
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
