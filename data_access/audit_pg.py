"""The PostgreSQL audit store: the audit log's hash chain in an append-only table, for deployments
where several servers (or a host whose files people can rewrite) write the audit trail.

Used by ``data_access.audit`` when env ``MIROCALS_AUDIT_DSN`` is set (a libpq connection string,
``postgresql://user@host/db`` or ``host=... dbname=... user=...``; keep the password in
``~/.pgpass`` or ``PGPASSWORD``, not in the string). The table, its owner role and the app role are
made by ``audit_pg.sql`` (``mirocals audit init-db --dsn ADMIN_DSN``, or psql ``-f``).

One row per entry: ``line`` is the entry exactly as the file would hold it (``audit.entry_line``:
the same schema, its ``prev`` the SHA-256 of the previous row's ``line``), so one function
(``audit.verify_lines``) checks both stores and an entry reads the same wherever it was written.
Storing the line rather than one column per field keeps the bytes that are hashed: columns would
have to be re-serialised exactly (key order, escapes, absent ``detail``, time zone) to recompute a
hash, and a schema change would need a migration. ``prev`` and ``hash`` are repeated as columns
the database checks (``hash`` is the line's SHA-256, ``prev`` the line's ``prev``, ``prev``
UNIQUE), so no two rows can claim the same predecessor: the chain cannot fork even if a writer
skipped the lock below.

Appending (``append``): one connection per entry (no connection state survives a fork of a worker
process; it was 5 ms of the 9 ms an append took on a loaded 2-core machine), one transaction:
``pg_advisory_xact_lock`` (the app role may not ``LOCK TABLE``: that needs UPDATE or DELETE
rights, which it must not have), read the last
row's line, insert the new one, commit with ``synchronous_commit`` on, so the entry is on the
server's disk before ``record`` returns, as the file's fsync. Threads of one server and separate
processes are serialised alike. Connecting waits ``CONNECT_TIMEOUT`` seconds at most (unless the
DSN sets ``connect_timeout``), a statement ``STATEMENT_TIMEOUT_MS``; any failure raises
``AuditWriteError`` naming the host and database (never the password), and the output is not shown.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from data_access.audit import GENESIS, AuditWriteError, Verification, _line_hash, entry_line, verify_lines

TABLE = "audit_log"
SQL_FILE = Path(__file__).with_name("audit_pg.sql")
CONNECT_TIMEOUT = 3                 # seconds
STATEMENT_TIMEOUT_MS = 10_000       # includes waiting for the append lock
LOCK_KEY = int.from_bytes(b"MIROCALS", "big")   # the append lock (pg_advisory_xact_lock), per database
ENV = "MIROCALS_AUDIT_DSN"


class AuditReadError(OSError):
    """The audit table could not be read (server unreachable, table missing)."""


# --------------------------------------------------------------------------- connection
def _info(dsn: str) -> dict | None:
    from psycopg.conninfo import conninfo_to_dict
    try:
        return conninfo_to_dict(dsn)
    except Exception:                       # an invalid string: never echo it (it may hold a password)
        return None


def describe(dsn: str) -> str:
    """``PostgreSQL table audit_log (database D on host H port P, user U)``: what a person needs to
    find the store, never the password."""
    info = _info(dsn)
    if info is None:
        return f"PostgreSQL audit table ({ENV} is not a valid connection string)"
    user = info.get("user") or os.environ.get("PGUSER") or "the OS user"
    host = info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST") or "the local socket"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    db = info.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"PostgreSQL table {TABLE} (database {db} on host {host} port {port}, user {user})"


def _clean(dsn: str, exc: BaseException) -> str:
    """The driver's message on one line, without the password should it ever appear in it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    password = (_info(dsn) or {}).get("password")
    if password and len(password) >= 3:
        text = text.replace(password, "***")
    if "does not exist" in text and TABLE in text:
        text += " (create it: mirocals audit init-db --dsn ADMIN_DSN)"
    return text


def connect(dsn: str, **kwargs):
    """A psycopg connection with a short connect timeout (unless the DSN sets its own)."""
    import psycopg
    info = _info(dsn)
    if info is None:
        raise psycopg.ProgrammingError(f"{ENV} is not a valid PostgreSQL connection string "
                                       "(postgresql://USER@HOST/DB or 'host=HOST dbname=DB user=USER')")
    if "connect_timeout" not in info:
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return psycopg.connect(dsn, **kwargs)


# --------------------------------------------------------------------------- writing
def append(dsn: str, entry: dict) -> dict:
    """Chain ``entry`` to the table's last row and insert it (sets ``entry["prev"]``); returns it.
    Raises ``AuditWriteError`` when the entry is not committed."""
    try:
        import psycopg
    except ImportError as exc:              # pragma: no cover (a dependency of the project)
        raise AuditWriteError(f"the audit log ({ENV} set) cannot be written: psycopg is not installed "
                              "(pip install 'psycopg[binary]')") from exc
    try:
        with connect(dsn, autocommit=True) as conn:
            with conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}")
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                row = conn.execute(f"SELECT line FROM {TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
                entry["prev"] = GENESIS if row is None else _line_hash(row[0].encode("utf-8"))
                line = entry_line(entry)
                conn.execute(f"INSERT INTO {TABLE} (line, prev, hash) VALUES (%s, %s, %s)",
                             (line, entry["prev"], _line_hash(line.encode("utf-8"))))
    except (psycopg.Error, OSError) as exc:
        entry.pop("prev", None)
        raise AuditWriteError(f"the audit log ({describe(dsn)}, {ENV}) cannot be written: "
                              f"{_clean(dsn, exc)}") from None
    return entry


# --------------------------------------------------------------------------- reading
def read_lines(dsn: str, last: int | None = None) -> list[str]:
    """The rows' lines in chain order (the ``last`` ones only when given)."""
    import psycopg
    try:
        with connect(dsn, autocommit=True) as conn:
            if last:
                rows = conn.execute(f"SELECT line FROM {TABLE} ORDER BY seq DESC LIMIT %s", (int(last),)).fetchall()
                rows.reverse()
            else:
                rows = conn.execute(f"SELECT line FROM {TABLE} ORDER BY seq").fetchall()
    except (psycopg.Error, OSError) as exc:
        raise AuditReadError(f"the audit log ({describe(dsn)}) cannot be read: {_clean(dsn, exc)}") from None
    return [r[0] for r in rows]


def verify(dsn: str, expected_head: str | None = None) -> Verification:
    """The table's chain, checked by ``audit.verify_lines`` in ``seq`` order; a broken entry is
    named by its row's ``seq``. A row whose ``hash`` or ``prev`` column disagrees with its line
    (possible only once a superuser dropped the checks) is broken too."""
    import psycopg
    state = {"seq": None, "n": 0, "columns": None}

    def lines(cursor):
        for seq, line, prev, hashed in cursor:
            data = line.encode("utf-8")
            state["seq"], state["n"] = seq, state["n"] + 1
            if state["columns"] is None and (hashed != _line_hash(data) or prev != _prev_of(line)):
                state["columns"] = (state["n"], seq)
            yield data

    try:
        with connect(dsn) as conn:                      # a transaction: one consistent snapshot
            with conn.cursor(name="mirocals_audit_verify") as cursor:
                cursor.itersize = 2000
                cursor.execute(f"SELECT seq, line, prev, hash FROM {TABLE} ORDER BY seq")
                result = verify_lines(lines(cursor), expected_head)
                seq = state["seq"]
            conn.rollback()
    except (psycopg.Error, OSError) as exc:
        raise AuditReadError(f"the audit log ({describe(dsn)}) cannot be read: {_clean(dsn, exc)}") from None
    if state["columns"] and (result.ok or state["columns"][0] < result.broken_line):
        n, at = state["columns"]
        return Verification(False, n - 1, min(result.chained, n - 1), n,
                            "its hash or prev column does not match its line (the row was edited)",
                            None, broken_seq=at, unit="rows")
    if not result.ok and result.broken_line <= state["n"]:
        return _rows(result, broken_seq=seq)
    return _rows(result)


def _rows(result: Verification, **changes) -> Verification:
    import dataclasses
    return dataclasses.replace(result, unit="rows", **changes)


def _prev_of(line: str):
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("prev") if isinstance(entry, dict) else None


# --------------------------------------------------------------------------- setting up
def init_db(dsn: str) -> None:
    """Run ``audit_pg.sql`` on the database ``dsn`` names (as an administrator): the owner role, the
    app role (INSERT and SELECT only), the table and its append-only triggers. Idempotent."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute(SQL_FILE.read_text(encoding="utf-8"))
