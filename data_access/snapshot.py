"""Snapshots: immutable, content-hashed sets of Parquet datasets with a manifest.

Layout::

    ROOT/clinical/<name>.parquet + manifest.json
    ROOT/allocation/allocation.parquet + manifest.json

Parquet bytes are deterministic: rows in the order given, no pandas index or pandas/Arrow schema
metadata, fixed compression (zstd), no write time. The same data therefore give the same SHA-256,
and with a fixed ``created`` the same manifest too. Date columns (``*DT``) are stored as
``date32``; ``load_datasets`` returns them as ``datetime64[ms]``.

A part is written to a temporary sibling directory and renamed into place, so a crash never
leaves a half-written snapshot. An existing snapshot is never changed: writing different content
(or a different cut date or study) over it raises ``SnapshotError`` unless ``overwrite=True``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "1.0"
DATE_SUFFIXES = ("DT",)
MANIFEST = "manifest.json"
PARTS = ("clinical", "allocation")
# manifest keys that must agree for an existing part to count as "the same snapshot"
_IDENTITY_KEYS = ("content_hash", "cut_date", "study", "part")


class SnapshotError(RuntimeError):
    """A snapshot is missing, tampered with, or would be overwritten."""


# --------------------------------------------------------------------------- writing
def _is_date_name(name: str) -> bool:
    return name.upper().endswith(DATE_SUFFIXES)


def _date_array(s: pd.Series, name: str) -> pa.Array:
    """A column named ``*DT`` (datetime64, ``datetime.date`` objects or all null) as date32."""
    if not pd.api.types.is_datetime64_any_dtype(s):
        try:
            s = pd.to_datetime(s)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"column {name} looks like a date (*DT) but holds non-dates: {exc}") from None
    if s.dt.tz is not None:
        s = s.dt.tz_localize(None)
    return pa.array(s.dt.normalize(), type=pa.timestamp("ms")).cast(pa.date32())


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """Convert with dates as date32 and no pandas metadata (it would record the index)."""
    arrays, names = [], []
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).where(s.notna(), None)
        if _is_date_name(str(col)) and (pd.api.types.is_datetime64_any_dtype(s) or s.dtype == object):
            arr = _date_array(s, str(col))
        elif pd.api.types.is_datetime64_any_dtype(s):
            arr = pa.array(s, type=pa.timestamp("ms"))
        else:
            arr = pa.Array.from_pandas(s)
            if pa.types.is_null(arr.type):        # an all-null text column: keep it text
                arr = arr.cast(pa.string())
        arrays.append(arr)
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


def _stage_part(parent: Path, part: str, datasets: dict[str, pd.DataFrame], meta: dict,
                sidecars: dict[str, bytes] | None = None) -> tuple[Path, dict]:
    """Write a part into a fresh temporary directory under ``parent``; return (dir, manifest).
    ``sidecars`` (file name -> bytes, e.g. an imported trial's ``study.toml``) are written and
    hashed like the datasets, so the content hash covers them."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{part}-tmp-", dir=parent))
    files = {}
    try:
        for name, content in sorted((sidecars or {}).items()):
            if name.endswith(".parquet") or name == MANIFEST or "/" in name:
                raise ValueError(f"invalid sidecar file name {name!r}")
            (tmp / name).write_bytes(content)
            files[name] = {"sha256": _sha256(tmp / name), "bytes": len(content)}
        for name in sorted(datasets):
            df = datasets[name]
            if not isinstance(df, pd.DataFrame):
                raise TypeError(f"dataset {name!r} is a {type(df).__name__}, not a DataFrame")
            path = tmp / f"{name}.parquet"
            pq.write_table(_to_arrow(df), path, compression="zstd", compression_level=3,
                           write_statistics=True, store_schema=False)
            files[path.name] = {"sha256": _sha256(path), "rows": int(len(df))}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = {**meta, "part": part, "schema_version": SCHEMA_VERSION, "files": files,
                "content_hash": _content_hash(files)}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return tmp, manifest


def _same_snapshot(old: dict, new: dict) -> bool:
    return all(old.get(k) == new.get(k) for k in _IDENTITY_KEYS)


def write_part(part_dir, datasets: dict[str, pd.DataFrame], meta: dict, overwrite: bool = False) -> dict:
    """Write one part (``clinical`` or ``allocation``) atomically and return its manifest.

    ``meta`` holds study, cut_date, created and source. When ``part_dir`` already holds the same
    snapshot (same content hash, cut date, study) it is left untouched and its manifest returned.
    """
    part_dir = Path(part_dir)
    part_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp, manifest = _stage_part(part_dir.parent, part_dir.name, datasets, meta)
    try:
        return _commit(tmp, part_dir, manifest, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_free(part_dir: Path, manifest: dict, overwrite: bool) -> dict | None:
    """The existing manifest when ``part_dir`` holds the same snapshot; None when free or
    overwritable; raises when it holds a different one."""
    if not part_dir.exists():
        return None
    try:
        old = read_manifest(part_dir)
    except (SnapshotError, json.JSONDecodeError):
        old = {}
    if old and _same_snapshot(old, manifest) and not verify_snapshot(part_dir):
        return old
    if not overwrite:
        raise SnapshotError(
            f"{part_dir} already holds a different snapshot (content {old.get('content_hash', '?')[:12]}, "
            f"cut {old.get('cut_date', '?')}); snapshots are immutable: write elsewhere or pass overwrite=True")
    return None


def _commit(tmp: Path, part_dir: Path, manifest: dict, overwrite: bool) -> dict:
    old = _check_free(part_dir, manifest, overwrite)
    if old is not None:
        return old
    if part_dir.exists():
        trash = part_dir.with_name(f".{part_dir.name}-old-{os.getpid()}")
        os.replace(part_dir, trash)
        os.replace(tmp, part_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, part_dir)
    return manifest


def write_snapshot(out_dir, clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame | None, study,
                   cut_date, source: str, created: str | None = None, overwrite: bool = False,
                   sidecars: dict[str, bytes] | None = None) -> dict:
    """Write ``out_dir/clinical`` (and ``out_dir/allocation`` when given).

    Parameters
    ----------
    out_dir : snapshot root.
    clinical : dataset name (``adsl``, ``adtte``, ...) -> DataFrame. Must not hold arm variables.
    allocation : the randomisation list (USUBJID, RANDNO, ARMCD, ARM, ...) or None.
    study : a ``Study`` (its ``id`` is recorded) or a study id.
    cut_date : data cut-off date (date or ISO string).
    source : where the data came from (recorded in the manifest).
    created : creation time to record; default now (UTC). Pass a fixed value for byte-identical
        output.
    overwrite : replace an existing, different snapshot (default: refuse, snapshots are immutable).
    sidecars : extra files of the clinical part (name -> bytes: an imported trial's ``study.toml``
        and ``labels.json``), listed and hashed in its manifest like the datasets.

    Returns
    -------
    dict part name -> manifest (``{"clinical": {...}, "allocation": {...}}``).

    When ``allocation`` is given, the clinical datasets are scanned against it first
    (``data_access.arm_scan.find_arm_revealing_columns``) and a clinical part holding a column whose
    values reveal the arm is refused with ``ArmInClinicalError`` (a ``ValueError``) naming the
    file, the column and the rule; nothing is written.

    Both parts are staged in temporary directories first; nothing is replaced until every file
    has been written and every existing part has been checked.
    """
    if allocation is not None:
        check_no_arm_in_clinical(clinical, allocation, study)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cut = cut_date.isoformat() if isinstance(cut_date, dt.date) else dt.date.fromisoformat(str(cut_date)).isoformat()
    created = created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta = {"study": getattr(study, "id", None) or str(study), "cut_date": cut, "created": created,
            "source": source}
    parts = {"clinical": clinical}
    if allocation is not None:
        parts["allocation"] = {"allocation": allocation}
    staged: dict[str, tuple[Path, dict]] = {}
    try:
        for part, datasets in parts.items():
            staged[part] = _stage_part(out_dir, part, datasets, meta, sidecars if part == "clinical" else None)
        for part, (_, manifest) in staged.items():     # check every part before replacing any
            _check_free(out_dir / part, manifest, overwrite)
        # the allocation first: a reader that finds clinical/manifest.json (the dashboard's sign of a
        # snapshot) finds the allocation beside it already
        done = {part: _commit(tmp, out_dir / part, manifest, overwrite)
                for part, (tmp, manifest) in sorted(staged.items(), key=lambda kv: kv[0] != "allocation")}
        return {part: done[part] for part in staged}
    finally:
        for tmp, _ in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)


class ArmInClinicalError(ValueError):
    """A clinical part would hold a column whose values reveal the arm."""

    def __init__(self, findings):
        self.findings = list(findings)
        super().__init__("the clinical part would reveal the allocation: " + "; ".join(
            f"clinical/{f.dataset}.parquet column {f.column} (rule {f.rule}: {f.detail})" for f in self.findings)
            + ". Remove these columns (mirocals import strips them) before writing the snapshot.")


def _scan_study(study):
    from data_access.study import load_study
    return study if hasattr(study, "arm_codes") else load_study()


def check_no_arm_in_clinical(clinical: dict[str, pd.DataFrame], allocation: pd.DataFrame, study) -> None:
    """Raise ``ArmInClinicalError`` when a clinical dataset has a column whose values reveal the
    arm of ``allocation`` (the scan of ``find_arm_revealing_columns``; ``study`` a ``Study`` or a
    study id, then the MIROCALS mapping)."""
    from data_access.arm_scan import find_arm_revealing_columns
    findings = find_arm_revealing_columns(clinical, allocation, _scan_study(study))
    if findings:
        raise ArmInClinicalError(findings)


# --------------------------------------------------------------------------- reading
def _part_dir(part_dir) -> Path:
    """Accept a part directory, or a snapshot root (then its clinical part)."""
    p = Path(part_dir)
    if not (p / MANIFEST).exists() and (p / "clinical" / MANIFEST).exists():
        return p / "clinical"
    return p


def read_manifest(part_dir) -> dict:
    """The manifest of a part (a snapshot root means its clinical part)."""
    path = _part_dir(part_dir) / MANIFEST
    if not path.exists():
        raise SnapshotError(f"{part_dir}: no {MANIFEST} (not a snapshot)")
    return json.loads(path.read_text())


def snapshot_hash(part_dir) -> str:
    """The content hash of a part (SHA-256 over its sorted ``name:sha256`` lines)."""
    return read_manifest(part_dir)["content_hash"]


def verify_snapshot(part_dir) -> list[str]:
    """Recompute every file's SHA-256 and the content hash; return the problems (empty if intact)."""
    part_dir = _part_dir(part_dir)
    manifest = read_manifest(part_dir)
    problems = []
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        return ["manifest: its file list is not a mapping"]
    for name, meta in sorted(files.items()):
        path = part_dir / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif _sha256(path) != (meta or {}).get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest")
    for path in sorted(part_dir.glob("*.parquet")):
        if path.name not in files:
            problems.append(f"{path.name}: not listed in the manifest")
    try:
        listed_hash = _content_hash(files)
    except (KeyError, TypeError, AttributeError):      # an entry without its sha256
        listed_hash = None
    if listed_hash is None or listed_hash != manifest.get("content_hash"):
        problems.append("manifest: content_hash does not match its file list")
    return problems


class SnapshotChangedError(SnapshotError, ValueError):
    """A published snapshot's file no longer matches its manifest (changed after publication)."""


_VERIFIED: dict[str, tuple] = {}          # resolved part dir -> (stamp last verified, refusal or None)
_VERIFIED_MAX = 64
_VERIFY_LOCK = threading.Lock()


def _stamp(part_dir: Path) -> tuple:
    """What identifies a part's bytes without reading them: (name, size, mtime_ns, inode) of the
    manifest and of every file in the folder. Cheap (one stat per file)."""
    out = []
    for path in sorted(part_dir.iterdir()):
        if path.is_file():
            st = path.stat()
            out.append((path.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _readable_parquet(path: Path) -> bool:
    try:
        pq.ParquetFile(path).metadata
        return True
    except Exception:          # noqa: BLE001 - any failure means the file cannot be read
        return False


def check_published(part_dir) -> None:
    """Refuse a part whose files no longer match its manifest: raise ``SnapshotChangedError``
    (one line naming the file and what to do) when a file listed in the manifest is readable but
    its SHA-256 differs (edited after publication: results would silently differ from the ones
    the snapshot hash stands for), is missing, or a dataset not in the manifest was added.

    A listed file that cannot be read at all (a truncated copy) is left to the views, which name it
    in place of the outputs that need it (``view_base.unreadable_message``): it cannot give wrong
    numbers silently.

    Speed: the files are hashed once per process per part and state; the state is the (name, size,
    mtime, inode) of every file of the part, so later opens cost one ``stat`` per file and a file
    changed afterwards (new size, mtime or inode) is hashed again. A refusal is remembered the same
    way (a changed snapshot is not re-hashed on every page)."""
    part_dir = _part_dir(part_dir)
    if not (part_dir / MANIFEST).is_file():
        return                  # not a snapshot: nothing to check against (the readers say so)
    key = str(part_dir.resolve())
    try:
        stamp = _stamp(part_dir)
    except OSError as exc:
        raise SnapshotError(f"{part_dir}: cannot be read ({exc})") from None
    with _VERIFY_LOCK:          # sessions opening the same snapshot at once: one of them hashes it
        known = _VERIFIED.get(key)
        if known is None or known[0] != stamp:
            known = _VERIFIED[key] = (stamp, _refusal(part_dir))     # a refusal is remembered too
            while len(_VERIFIED) > _VERIFIED_MAX:
                _VERIFIED.pop(next(iter(_VERIFIED)))
    if known[1]:
        raise SnapshotChangedError(known[1])


def _refusal(part_dir: Path) -> str | None:
    problems = [p for p in verify_snapshot(part_dir)
                if not (p.endswith("SHA-256 differs from the manifest")
                        and p.split(":")[0].endswith(".parquet")
                        and not _readable_parquet(part_dir / p.split(":")[0]))]
    if problems:
        first = problems[0].split(":")[0]
        where = f"{part_dir / first}" if first != "manifest" else f"{part_dir / MANIFEST}"
        return (f"snapshot {part_dir} refused: {where} was changed after publication "
                f"({'; '.join(problems)}). Snapshots are immutable: restore the published copy of the file, "
                "or publish the changed data as a new snapshot (mirocals import / mirocals cut into a new "
                "folder) and use that one.")
    return None


def load_datasets(part_dir, names=None) -> dict[str, pd.DataFrame]:
    """Read the Parquet datasets of a part (all, or ``names``); dates come back as datetime64[ms].

    Files listed in the manifest are read in name order; without a manifest, every ``*.parquet``.
    A part whose files no longer match its manifest is refused (``check_published``).
    """
    part_dir = _part_dir(part_dir)
    try:
        listed = sorted(f for f in read_manifest(part_dir)["files"] if f.endswith(".parquet"))
        check_published(part_dir)
    except SnapshotChangedError:
        raise
    except SnapshotError:
        listed = sorted(p.name for p in part_dir.glob("*.parquet"))
    out = {}
    for file in listed:
        name = file.removesuffix(".parquet")
        if names is not None and name not in names:
            continue
        path = part_dir / file
        if not path.exists():
            raise SnapshotError(f"{path}: listed in the manifest but missing")
        out[name] = pq.read_table(path).to_pandas(date_as_object=False)
    return out


def _is_allocation_dir(path: Path) -> bool:
    """A folder holding an allocation part: ``allocation.parquet``/``.csv``, a manifest that says
    ``"part": "allocation"``, or a non-empty folder named ``allocation``."""
    try:
        if not path.is_dir():
            return False
        if (path / "allocation.parquet").exists() or (path / "allocation.csv").exists():
            return True
        if (path / MANIFEST).is_file():
            try:
                if json.loads((path / MANIFEST).read_text()).get("part") == "allocation":
                    return True
            except (OSError, ValueError, AttributeError):
                pass
        return path.name == "allocation" and any(path.iterdir())
    except OSError:
        return False


def find_allocations(data_path) -> list[Path]:
    """Every allocation part readable from a data path: the path itself, the ``allocation/``
    beside it (its own and its parent's: a ``clinical/`` part's snapshot root) and any folder
    anywhere under it. A blinded deployment must find none (``mirocals serve --blinded`` and the
    dashboard's blinded instance both refuse to serve otherwise)."""
    root = Path(data_path).resolve()
    candidates = [root, root / "allocation", root.parent / "allocation"]
    if root.is_dir():
        try:
            candidates += [p for p in root.rglob("*") if p.is_dir()]
        except OSError:
            pass
    found = []
    for path in candidates:
        if path not in found and _is_allocation_dir(path) and os.access(path, os.R_OK | os.X_OK):
            found.append(path)
    return sorted(found)
