"""The unblinded view: the arm joined from the allocation onto every dataset with USUBJID.

Unblinded view (roles dsmb, statistician; author after database lock) needs the allocation part:
it joins ARMCD and ARM onto every dataset that has USUBJID (left join, rows in file order). With
``mask_arms`` both carry the masking code (``Group A`` / ``Group B``, the allocation's MASKCD) so
the arm names never appear; the key stays in the allocation.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow.parquet as pq

from data_access.snapshot import MANIFEST, read_manifest
from data_access.view_base import AllocationMissingError, BaseView, quote_name, sql_literal, unreadable_message


class UnblindedView(BaseView):
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
        for name, path in list(self._paths.items()):
            try:
                self._register_dataset(name, path)
            except Exception as exc:     # noqa: BLE001 - a corrupt file: named, the others still served
                self.unreadable[name] = unreadable_message(path, name, exc)
                del self._paths[name]
        self.datasets = tuple(self._paths)

    def _register_allocation(self, path: Path, codes: list[str], labels: list[str]) -> None:
        cols = set(pq.read_schema(path).names)
        missing = {"USUBJID", "ARMCD"} - cols
        if self.mask_arms and "MASKCD" not in cols:
            missing.add("MASKCD")
        if missing:
            raise ValueError(f"{path}: allocation lacks {', '.join(sorted(missing))}")
        src = f"read_parquet({sql_literal(path)}, file_row_number = true)"
        # one row per subject: the first listed wins; duplicates are reported by validation
        first = f"SELECT * FROM {src} QUALIFY row_number() OVER (PARTITION BY USUBJID ORDER BY file_row_number) = 1"
        dups = self._con.execute(f"SELECT count(*) - count(DISTINCT USUBJID) FROM {src}").fetchone()[0]
        if dups:
            warnings.warn(f"allocation lists {dups} subject(s) more than once; the first entry is used",
                          stacklevel=3)
        if self.mask_arms:
            arm = "MASKCD AS ARMCD, MASKCD AS ARM"
            rest = ", ".join(quote_name(c) for c in ("STRATUM",) if c in cols)
            self._con.execute(f"CREATE VIEW allocation AS SELECT USUBJID, {arm}{', ' + rest if rest else ''} "
                              f"FROM ({first}) ORDER BY file_row_number")
        elif "ARM" in cols:
            self._con.execute(f"CREATE VIEW allocation AS SELECT * EXCLUDE (file_row_number) "
                              f"FROM ({first}) ORDER BY file_row_number")
        else:   # no label column: label the codes from the study config
            label = "CASE ARMCD " + " ".join(f"WHEN {sql_literal(c)} THEN {sql_literal(lbl)}"
                                             for c, lbl in zip(codes, labels)) + " END"
            self._con.execute(f"CREATE VIEW allocation AS SELECT * EXCLUDE (file_row_number), "
                              f"{label} AS ARM FROM ({first}) ORDER BY file_row_number")

    def _register_dataset(self, name: str, path: Path) -> None:
        names = pq.read_schema(path).names
        src = f"read_parquet({sql_literal(path)})"
        if "USUBJID" not in names:
            self._con.execute(f"CREATE VIEW {quote_name(name)} AS SELECT * FROM {src}")
            return
        drop = ["file_row_number"] + [c for c in names if c.upper() in ("ARM", "ARMCD")]
        exclude = ", ".join(quote_name(c) for c in drop)
        self._con.execute(
            f"CREATE VIEW {quote_name(name)} AS SELECT c.* EXCLUDE ({exclude}), a.ARMCD, a.ARM "
            f"FROM read_parquet({sql_literal(path)}, file_row_number = true) c "
            f"LEFT JOIN allocation a ON c.USUBJID = a.USUBJID ORDER BY c.file_row_number")

    def require_unblinded(self, what: str = "this output") -> None:
        """Nothing to check: an unblinded view may produce results by arm."""
        return None
