"""Publish a finished snapshot to a deployment's two instances at once.

    python -m data_access.publish SNAPSHOT --data-root DIR [--allocation-root DIR] [--name NAME]

A deployment keeps one folder of published snapshots that both instances read
(``MIROCALS_DATA`` of ``mirocals serve --blinded`` and ``--unblinded``)::

    DATA_ROOT/<name>/clinical/{*.parquet, manifest.json}
    ALLOCATION_ROOT/<name>/allocation/{allocation.parquet, manifest.json}   # unblinded only

and, apart from it, the allocations (``MIROCALS_ALLOCATION`` of the unblinded instance only; not
inside DATA_ROOT nor its parent's ``allocation/``, where the blinded instance would find it and
refuse to serve). A snapshot is listed by the dashboard once ``<name>/clinical/manifest.json``
exists under DATA_ROOT (``dashboard.snapshots.discover_snapshots``).

``publish_snapshot`` makes the new snapshot appear whole, to both instances, in one step:

1. both parts are checked against their manifests (``verify_snapshot``) and must agree (study,
   cut date);
2. the allocation is copied into a hidden folder of ALLOCATION_ROOT, flushed to disk, checked
   again and renamed to ``ALLOCATION_ROOT/<name>``: no instance looks at it yet, since no
   ``DATA_ROOT/<name>`` exists;
3. the clinical part is copied into ``DATA_ROOT/.publish-XXXX/<name>/clinical`` (two levels
   down: not a snapshot to the dashboard), flushed, checked, and ``DATA_ROOT/.publish-XXXX/<name>``
   is renamed to ``DATA_ROOT/<name>``: one ``rename(2)`` on one file system, so a reader sees
   either no snapshot ``<name>`` or all of it, and the unblinded instance finds its allocation
   already in place.

Published snapshots are never changed: a name that already holds other content is refused
(publishing the same content again does nothing), so a session showing an older snapshot keeps
reading the same bytes.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from data_access.snapshot import MANIFEST, SnapshotError, read_manifest, verify_snapshot

__all__ = ["publish_snapshot", "main"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` (and ``root``) to disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checked(part: Path) -> dict:
    if not (part / MANIFEST).exists():
        raise SnapshotError(f"{part}: no {MANIFEST} (not a snapshot part)")
    problems = verify_snapshot(part)
    if problems:
        raise SnapshotError(f"{part} does not match its manifest ({'; '.join(problems)}): not published")
    return read_manifest(part)


def _place(src: Path, root: Path, name: str, part: str) -> Path:
    """Copy part folder ``src`` to ``root/<name>/<part>`` through a hidden staging folder of
    ``root`` and one rename of ``<name>`` into place; return ``root/<name>``."""
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".publish-", dir=root))
    try:
        shutil.copytree(src, stage / name / part)
        _fsync_tree(stage / name)
        _checked(stage / name / part)
        os.rename(stage / name, root / name)    # no replace: a folder created meanwhile stays
        _fsync_dir(root)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return root / name


def _same(dest_part: Path, manifest: dict) -> bool:
    try:
        old = read_manifest(dest_part)
    except (SnapshotError, ValueError, OSError):
        return False
    return (old.get("content_hash") == manifest.get("content_hash")
            and old.get("cut_date") == manifest.get("cut_date") and not verify_snapshot(dest_part))


def publish_snapshot(snapshot, data_root, allocation_root=None, name: str | None = None) -> dict:
    """Publish the snapshot at ``snapshot`` (``clinical/`` and, for a deployment with an
    unblinded instance, ``allocation/``) as ``data_root/<name>``, its allocation as
    ``allocation_root/<name>/allocation``. See the module's docstring for the steps.

    Parameters
    ----------
    snapshot : a finished snapshot root (written by ``write_snapshot``, ``mirocals import``,
        ``mirocals demo`` or ``mirocals cut``), anywhere.
    data_root : the folder both instances read (their ``MIROCALS_DATA``).
    allocation_root : the unblinded instance's ``MIROCALS_ALLOCATION``; required when the
        snapshot has an allocation part, and then the snapshot must have one.
    name : the snapshot's folder name (default: the snapshot folder's own name).

    Returns
    -------
    dict with ``name``, ``clinical`` (the published clinical part), ``allocation`` (or None),
    ``content_hash`` and ``published`` (False when the same content was already published).

    Raises ``SnapshotError`` (nothing published) when a part does not match its manifest, the
    parts disagree, the name is taken by other content, or the allocation would be reachable
    from ``data_root``.
    """
    src = Path(snapshot)
    data_root = Path(data_root).resolve()
    name = name or src.resolve().name
    if not NAME.match(name):
        raise SnapshotError(f"snapshot name {name!r}: letters, digits, '.', '_' and '-' only, not starting with '.'")
    clinical = _checked(src / "clinical")
    has_allocation = (src / "allocation").exists()
    allocation = _checked(src / "allocation") if has_allocation else None
    if has_allocation and allocation_root is None:
        raise SnapshotError(f"{src} has an allocation part: give the allocation folder of the unblinded instance "
                            "(--allocation-root, its MIROCALS_ALLOCATION); it never goes under the data root")
    if allocation_root is not None and not has_allocation:
        raise SnapshotError(f"{src} has no allocation part, but an allocation folder was given: the unblinded "
                            "instance would show this cut without its allocation. Publish the snapshot with its "
                            "allocation/ part")
    if allocation is not None:
        for key in ("study", "cut_date"):
            if clinical.get(key) != allocation.get(key):
                raise SnapshotError(f"{src}: the clinical and allocation parts disagree on {key} "
                                    f"({clinical.get(key)} vs {allocation.get(key)})")
        alloc_root = Path(allocation_root).resolve()
        if alloc_root.is_relative_to(data_root) or alloc_root == data_root.parent / "allocation":
            raise SnapshotError(f"allocation folder {alloc_root}: the blinded instance would find it from its data "
                                f"root {data_root} and refuse to serve; keep allocations elsewhere "
                                "(e.g. /srv/mirocals-unblinded/allocation)")
    result = {"name": name, "clinical": data_root / name / "clinical", "content_hash": clinical["content_hash"],
              "allocation": Path(allocation_root).resolve() / name / "allocation" if allocation else None,
              "published": False}
    if (data_root / name).exists():
        if _same(data_root / name / "clinical", clinical) and (
                allocation is None or _same(result["allocation"], allocation)):
            return result
        raise SnapshotError(f"{data_root / name} already holds another snapshot: published snapshots are "
                            "immutable; publish under a new name (--name)")
    placed_allocation = None
    if allocation is not None:
        dest = Path(allocation_root).resolve() / name
        if dest.exists():
            if not _same(dest / "allocation", allocation):
                raise SnapshotError(f"{dest} already holds another allocation: publish under a new name (--name)")
        else:
            placed_allocation = _place(src / "allocation", Path(allocation_root).resolve(), name, "allocation")
    try:
        _place(src / "clinical", data_root, name, "clinical")
    except BaseException:
        if placed_allocation is not None:
            shutil.rmtree(placed_allocation, ignore_errors=True)
        raise
    result["published"] = True
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_access.publish",
                                description="Publish a snapshot to both instances in one step (see the module doc).")
    p.add_argument("snapshot", help="the finished snapshot root (clinical/ [+ allocation/])")
    p.add_argument("--data-root", required=True, help="the folder both instances read (MIROCALS_DATA)")
    p.add_argument("--allocation-root", help="the unblinded instance's MIROCALS_ALLOCATION")
    p.add_argument("--name", help="folder name of the published snapshot (default: the snapshot's folder name)")
    args = p.parse_args(argv)
    try:
        r = publish_snapshot(args.snapshot, args.data_root, args.allocation_root, args.name)
    except SnapshotError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 2
    print(f"{'published' if r['published'] else 'already published'}: {r['clinical']}"
          + (f" and {r['allocation']}" if r["allocation"] else "") + f" (content {r['content_hash'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
