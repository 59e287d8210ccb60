"""The audit log: one append-only, hash-chained file, one schema for every writer.

Every unblinded page view, download, sign-in and report render (the dashboard, the ``mirocals``
command line and the render pipeline) is one JSON object per line::

    time           UTC, ISO 8601
    user, role     who (the command line and the render pipeline write the OS user name)
    action         view, download, download-refused, sign-in, sign-in-failed, sign-in-refused,
                   sign-out, render, table, ...
    object         what: a page name, a file name, a report or table name
    snapshot_hash  content hash of the snapshot shown (when there is one)
    cut            data cut-off date of that snapshot (when known)
    detail         optional free text (a filter, a refusal reason)
    source         dashboard | cli | render
    prev           SHA-256 of the previous line (hash chain, see below)

Location: env ``MIROCALS_AUDIT_LOG`` (default ``./audit/audit.log``). The file is only ever opened
with ``O_APPEND`` and written under an exclusive lock (``flock``, so the dashboard's threads, the
command line and renders running at once never interleave or break the chain). Each entry is
flushed to disk (``fsync``; the folder too when the file is new) before ``record`` returns, so an
output is only shown once its audit entry would survive a crash of the machine.

Hash chain: each entry's ``prev`` is the SHA-256 of the previous line's bytes (``GENESIS`` for the
first line), so editing, removing or reordering a line breaks the chain at the line after it;
``verify`` finds the first broken entry (``mirocals audit verify``: ``verify_command``). Lines
written before the chain existed (the two older schemas) may only precede the first chained
entry. Removing lines from the END of the file cannot be detected from the file alone (the last
entry has no successor): keep a copy of ``head()`` elsewhere (a second machine, the reports'
folder) to check against.

Old lines still read: ``read_entries`` maps the dashboard's former ``page`` and the render
pipeline's former ``report`` to ``object``, and ``snapshot`` to ``snapshot_hash``.

Shared deployments: when env ``MIROCALS_AUDIT_DSN`` is set (a PostgreSQL connection string), entries
go to the append-only table ``audit_log`` of that database instead of the file (``audit_pg``: the
same entry, the same line and the same hash rule, one row per line, appends serialised by a
transaction lock so that concurrent servers never fork the chain), and ``read_entries``, ``verify``,
``head`` and ``verify_command`` read that table. An explicit ``path`` always means the file.

When an entry cannot be written, ``record`` raises ``AuditWriteError``: callers must not show or
deliver the output then.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

try:                                        # POSIX; elsewhere the thread lock alone serialises
    import fcntl
except ImportError:                         # pragma: no cover
    fcntl = None

DEFAULT_AUDIT_LOG = Path("audit") / "audit.log"
FIELDS = ("time", "user", "role", "action", "object", "snapshot_hash", "cut", "detail", "source")
SOURCES = ("dashboard", "cli", "render")
GENESIS = "0" * 64
# longest value kept per field: whatever a client sends (a 2 MB user name) adds at most this much
FIELD_MAX = {"user": 64, "role": 32, "action": 32, "object": 128, "snapshot_hash": 128, "cut": 32,
             "detail": 1024, "source": 16}
_LOCK = threading.Lock()


class AuditWriteError(OSError):
    """The audit entry could not be written: the output it records must not be shown."""


def get_audit_path() -> Path:
    """The audit log location (env ``MIROCALS_AUDIT_LOG`` or ``./audit/audit.log``)."""
    return Path(os.environ.get("MIROCALS_AUDIT_LOG") or DEFAULT_AUDIT_LOG)


def get_audit_dsn() -> str | None:
    """The PostgreSQL audit store (env ``MIROCALS_AUDIT_DSN``), or None: the file."""
    return os.environ.get("MIROCALS_AUDIT_DSN", "").strip() or None


def _pg_dsn(path) -> str | None:
    """The DSN to use when no file was named explicitly."""
    return None if path else get_audit_dsn()


def describe_store(path: str | Path | None = None) -> str:
    """Where entries go, for people: the file, or the PostgreSQL table (never its password)."""
    dsn = _pg_dsn(path)
    if dsn:
        from data_access import audit_pg
        return audit_pg.describe(dsn)
    return str(Path(path) if path else get_audit_path())


def os_user() -> str:
    """The OS user running this process (``getpass.getuser()``, else env ``USER`` / ``LOGNAME``,
    else ``uid-<n>``); never "unknown"."""
    try:
        name = getpass.getuser()
    except Exception:                       # no passwd entry and no LOGNAME/USER/LNAME/USERNAME
        name = ""
    name = name or os.environ.get("USER") or os.environ.get("LOGNAME")
    if not name:
        name = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "os-user"
    return name


# --------------------------------------------------------------------------- writing
def record(action: str, object: str | None = None, *, user: str, role: str | None,
           source: str, snapshot_hash: str | None = None, cut=None, detail: str | None = None,
           path: str | Path | None = None) -> dict:
    """Append one entry (chained to the previous line) and return it.

    Raises ``AuditWriteError`` when it cannot be written (the caller then shows nothing)."""
    if source not in SOURCES:
        raise ValueError(f"audit source must be one of {SOURCES}, not {source!r}")
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
             "user": _cap(user, "user"), "role": _cap(role, "role"), "action": _cap(action, "action"),
             "object": _cap(object, "object"), "snapshot_hash": _cap(snapshot_hash, "snapshot_hash"),
             "cut": _cap(cut, "cut"), "source": source}
    if detail:
        entry["detail"] = _cap(detail, "detail")
    dsn = _pg_dsn(path)
    if dsn:                                 # the shared store (raises AuditWriteError)
        from data_access import audit_pg
        return audit_pg.append(dsn, entry)
    target = Path(path) if path else get_audit_path()
    try:
        with _LOCK:
            target.parent.mkdir(parents=True, exist_ok=True)
            created = not target.exists()
            fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                last, ends_with_newline = _last_line(fd)
                entry["prev"] = GENESIS if last is None else _line_hash(last)
                line = (entry_line(entry) + "\n").encode("utf-8")
                if last is not None and not ends_with_newline:
                    line = b"\n" + line         # a torn last line stays its own (broken) line
                _write_all(fd, line)
                os.fsync(fd)                    # on disk before the output is shown
            finally:
                os.close(fd)                    # releases the lock
            if created:                         # the new file's directory entry, too
                _fsync_dir(target.parent)
    except OSError as exc:
        raise AuditWriteError(f"the audit log {target} cannot be written: {exc}") from exc
    return entry


def log_render(report: str, *, role: str | None, snapshot_hash: str | None, cut=None,
               detail: str | None = None, path: str | Path | None = None) -> dict:
    """The render pipeline's entry: the OS user, the report's role (or ``cli``), the report name."""
    return record("render", report, user=os_user(), role=role or "cli", source="render",
                  snapshot_hash=snapshot_hash, cut=cut, detail=detail, path=path)


def log_cli(action: str, object: str | None = None, *, snapshot_hash: str | None = None, cut=None,
            role: str = "cli", detail: str | None = None, path: str | Path | None = None) -> dict:
    """A command-line entry (e.g. ``log_cli("table", "treatment-effect", snapshot_hash=..., cut=...,
    detail="unblinded")`` before ``mirocals table`` prints an unblinded table): the OS user."""
    return record(action, object, user=os_user(), role=role, source="cli",
                  snapshot_hash=snapshot_hash, cut=cut, detail=detail, path=path)


def _cap(value, field: str):
    """``value`` as text cut to ``FIELD_MAX[field]`` characters (an ellipsis marks a cut)."""
    if value is None:
        return None
    text, limit = str(value), FIELD_MAX[field]
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def entry_line(entry: dict) -> str:
    """The entry as one line (no newline): what the chain hashes, in the file and in the table."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False)


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _last_line(fd: int, chunk: int = 4096) -> tuple[bytes | None, bool]:
    """The file's last line (without its newline; None for an empty file) and whether the file
    ends with a newline. Reads backwards from the end: the cost does not grow with the log."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    ends = os.pread(fd, 1, size - 1) == b"\n"
    end = size - 1 if ends else size
    buf, pos = b"", end
    while pos > 0:
        start = max(0, pos - chunk)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        cut = buf.rfind(b"\n")
        if cut >= 0:
            return buf[cut + 1:], ends
    return buf, ends


def _fsync_dir(folder: Path) -> None:
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --------------------------------------------------------------------------- reading
def normalise(raw: dict) -> dict:
    """One entry in the current schema (every field of ``FIELDS`` present), whatever schema
    wrote it: the dashboard's former ``page`` and the render pipeline's former ``report`` become
    ``object``, ``snapshot`` becomes ``snapshot_hash``."""
    out = {k: raw.get(k) for k in FIELDS}
    if out["object"] is None:
        out["object"] = raw.get("report") or raw.get("page")
    if out["snapshot_hash"] is None:
        out["snapshot_hash"] = raw.get("snapshot") or None
    if out["source"] is None:
        out["source"] = "render" if ("report" in raw or raw.get("action") == "render") else "dashboard"
    return out


def read_entries(path: str | Path | None = None, last: int | None = None) -> list[dict]:
    """Every entry (the ``last`` ones only when given), oldest first, in the current schema;
    a missing log is empty, a line that is not a JSON object is skipped (``verify`` reports it)."""
    lines = _read_lines(path, last, errors="replace")
    out = []
    for line in lines:
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if isinstance(raw, dict):
            out.append(normalise(raw))
    return out


def read_raw(path: str | Path | None = None, last: int | None = None) -> list[dict]:
    """The entries exactly as written (old schemas unmapped), oldest first."""
    return [json.loads(x) for x in _read_lines(path, last)]


def _read_lines(path, last: int | None, errors: str = "strict") -> list[str]:
    dsn = _pg_dsn(path)
    if dsn:
        from data_access import audit_pg
        return audit_pg.read_lines(dsn, last)
    target = Path(path) if path else get_audit_path()
    if not target.exists():
        return []
    with open(target, encoding="utf-8", errors=errors) as fh:
        lines = [x for x in fh.read().splitlines() if x.strip()]
    return lines[-last:] if last else lines


# --------------------------------------------------------------------------- verifying
@dataclasses.dataclass(frozen=True)
class Verification:
    ok: bool
    lines: int                  # lines (table rows) read
    chained: int                # entries carrying a ``prev`` hash
    broken_line: int | None     # 1-based position of the first broken entry
    reason: str | None
    head: str | None            # SHA-256 of the last line (anchor for detecting a cut tail)
    broken_seq: int | None = None   # the PostgreSQL store: ``seq`` of the first broken row
    unit: str = "lines"             # "rows" for the PostgreSQL store

    def message(self, path) -> str:
        if self.ok:
            return (f"{path}: chain intact, {self.lines} {self.unit} ({self.chained} chained, "
                    f"{self.lines - self.chained} before the chain); head {self.head or '-'}")
        where = (f"row seq {self.broken_seq} (entry {self.broken_line})" if self.broken_seq is not None
                 else f"{self.unit[:-1]} {self.broken_line}")
        return f"{path}: broken at {where}: {self.reason}"


def verify(path: str | Path | None = None, expected_head: str | None = None) -> Verification:
    """Check the hash chain of the file (or, with ``MIROCALS_AUDIT_DSN`` and no ``path``, of the
    PostgreSQL table); stops at the first broken entry (``verify_lines``)."""
    dsn = _pg_dsn(path)
    if dsn:
        from data_access import audit_pg
        return audit_pg.verify(dsn, expected_head)
    target = Path(path) if path else get_audit_path()
    if not target.exists():
        return Verification(expected_head is None, 0, 0, None if expected_head is None else 1,
                            None if expected_head is None else "the log is missing", None)
    lines = target.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return verify_lines(lines, expected_head)


def verify_lines(lines: Iterable[bytes], expected_head: str | None = None) -> Verification:
    """The chain check shared by the file and the PostgreSQL table: ``lines`` in order (bytes,
    no newline), consumed only up to the first broken one.

    A line is broken when it is not a JSON object, when its ``prev`` is not the SHA-256 of the line
    before it, or when it has no ``prev`` although a chained entry precedes it. ``expected_head``
    (a ``head`` noted earlier) must still be among the lines: otherwise entries were cut from the end."""
    chained, previous, seen_head, number = 0, None, expected_head is None, 0
    for number, line in enumerate(lines, start=1):
        def broken(reason):
            return Verification(False, number - 1, chained, number, reason,
                                _line_hash(previous) if previous is not None else None)
        try:
            entry = json.loads(line.decode("utf-8"))
        except ValueError:
            return broken("not a JSON entry (edited or torn)")
        if not isinstance(entry, dict):
            return broken("not a JSON object")
        want = GENESIS if previous is None else _line_hash(previous)
        if "prev" in entry:
            if entry["prev"] != want:
                return broken("its previous-entry hash does not match the line before it "
                              "(an entry was edited, removed or moved)")
            chained += 1
        elif chained:
            return broken("an entry without a chain hash after chained entries (inserted)")
        previous = line
        if not seen_head and _line_hash(line) == expected_head:
            seen_head = True
    head = _line_hash(previous) if previous is not None else None
    if not seen_head:
        return Verification(False, number, chained, number + 1,
                            "the expected head entry is gone (entries removed from the end)", head)
    return Verification(True, number, chained, None, None, head)


def verify_command(path: str | Path | None = None, expected_head: str | None = None,
                   out=print) -> int:
    """``mirocals audit verify``: prints the outcome; exit status 0 when intact, 1 at the first
    broken entry, 2 when the store cannot be read (the PostgreSQL server unreachable)."""
    where = describe_store(path)
    try:
        result = verify(path, expected_head)
    except OSError as exc:
        out(f"{where}: cannot be read: {exc}")
        return 2
    out(result.message(where))
    return 0 if result.ok else 1


def head(path: str | Path | None = None) -> str | None:
    """SHA-256 of the log's last line (None when empty): note it elsewhere to detect a cut tail."""
    dsn = _pg_dsn(path)
    if dsn:
        from data_access import audit_pg
        last = audit_pg.read_lines(dsn, 1)
        return _line_hash(last[0].encode("utf-8")) if last else None
    target = Path(path) if path else get_audit_path()
    if not target.exists():
        return None
    fd = os.open(target, os.O_RDONLY)
    try:
        last, _ = _last_line(fd)
    finally:
        os.close(fd)
    return None if last is None else _line_hash(last)


def main(argv=None) -> int:
    """``python -m data_access.audit verify [--log PATH] [--head HASH]`` / ``head``: the same as
    ``mirocals audit verify`` until the command line has it."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m data_access.audit", description="The MIROCALS audit log.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check the hash chain (exit 1 at the first broken entry)")
    check.add_argument("--log", help="audit log (default: env MIROCALS_AUDIT_LOG or audit/audit.log)")
    check.add_argument("--head", help="a head hash noted earlier: also detects entries cut from the end")
    last = sub.add_parser("head", help="print the SHA-256 of the last entry (note it elsewhere)")
    last.add_argument("--log", help="audit log (default: env MIROCALS_AUDIT_LOG or audit/audit.log)")
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify_command(args.log, args.head)
    print(head(args.log) or "")
    return 0


if __name__ == "__main__":                  # pragma: no cover
    raise SystemExit(main())
