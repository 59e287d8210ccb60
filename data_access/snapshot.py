"""Snapshots: immutable, content-hashed sets of Parquet datasets with a manifest.

Layout: ``ROOT/clinical/<name>.parquet + manifest.json`` and ``ROOT/allocation/allocation.parquet
+ manifest.json``. Parquet bytes are deterministic (row order as given, no index, fixed
compression, no write time), so the same data give the same SHA-256.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "1.0"
DATE_SUFFIXES = ("DT",)


class SnapshotError(RuntimeError):
    """A snapshot is missing, tampered with, or would be overwritten."""


def _is_date_column(name: str, series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series) and name.upper().endswith(DATE_SUFFIXES)


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """Convert with dates as date32 and no pandas metadata (it would record the index)."""
    arrays, names = [], []
    for col in df.columns:
        s = df[col]
        if _is_date_column(col, s):
            arrays.append(pa.array(s.dt.date.where(s.notna(), None), type=pa.date32()))
        elif pd.api.types.is_datetime64_any_dtype(s):
            arrays.append(pa.array(s, type=pa.timestamp("ms")))
        else:
            arrays.append(pa.Array.from_pandas(s))
        names.append(str(col))
    return pa.Table.from_arrays(arrays, names=names)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _content_hash(files: dict) -> str:
    lines = "".join(f"{name}:{meta['sha256']}\n" for name, meta in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_part(part_dir: Path, datasets: dict[str, pd.DataFrame], meta: dict) -> dict:
    """Write one part (clinical or allocation) atomically; return its manifest."""
    part_dir = Path(part_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{part_dir.name}-", dir=part_dir.parent))
    try:
        files = {}
        for name in sorted(datasets):
            path = tmp / f"{name}.parquet"
            pq.write_table(_to_arrow(datasets[name]), path, compression="zstd",
                           write_statistics=True, store_schema=False)
            files[path.name] = {"sha256": _sha256(path), "rows": int(len(datasets[name]))}
        manifest = {**meta, "schema_version": SCHEMA_VERSION, "files": files,
                    "content_hash": _content_hash(files)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if part_dir.exists():
            old = read_manifest(part_dir)
            if old.get("content_hash") != manifest["content_hash"]:
                raise SnapshotError(f"{part_dir} already holds a different snapshot "
                                    f"({old.get('content_hash', '?')[:12]}); snapshots are immutable")
            shutil.rmtree(part_dir)
        os.replace(tmp, part_dir)
        return manifest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_snapshot(out_dir, clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame | None, study,
                   cut_date, source: str, created: str | None = None) -> dict:
    """Write ``out_dir/clinical`` (and ``out_dir/allocation`` when given). Returns the manifests.

    ``created`` defaults to now (UTC); pass a fixed value for byte-identical output.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cut = cut_date.isoformat() if isinstance(cut_date, dt.date) else str(cut_date)
    created = created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta = {"study": getattr(study, "id", str(study)), "cut_date": cut, "created": created, "source": source}
    manifests = {"clinical": write_part(out_dir / "clinical", clinical, {**meta, "part": "clinical"})}
    if allocation is not None:
        manifests["allocation"] = write_part(out_dir / "allocation", {"allocation": allocation},
                                             {**meta, "part": "allocation"})
    return manifests


def read_manifest(part_dir) -> dict:
    path = Path(part_dir) / "manifest.json"
    if not path.exists():
        raise SnapshotError(f"{part_dir}: no manifest.json (not a snapshot)")
    return json.loads(path.read_text())


def snapshot_hash(part_dir) -> str:
    return read_manifest(part_dir)["content_hash"]


def verify_snapshot(part_dir) -> list[str]:
    """Recompute every file's SHA-256; return the problems (empty list when intact)."""
    part_dir = Path(part_dir)
    manifest = read_manifest(part_dir)
    problems = []
    for name, meta in manifest["files"].items():
        path = part_dir / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif _sha256(path) != meta["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems


def load_datasets(part_dir) -> dict[str, pd.DataFrame]:
    """Read every Parquet dataset of a part; dates come back as datetime64."""
    out = {}
    for path in sorted(Path(part_dir).glob("*.parquet")):
        df = pq.read_table(path).to_pandas()
        for col in df.columns:
            if col.upper().endswith(DATE_SUFFIXES) and df[col].dtype == object:
                df[col] = pd.to_datetime(df[col])
        out[path.stem] = df
    return out
