"""The PostgreSQL audit store (data_access.audit_pg, env MIROCALS_AUDIT_DSN) against a real server:
Debian's PostgreSQL (scripts/setup-system.sh) started by this module in a private folder, on a unix
socket only, and stopped at the end. Entries written through ``audit.record`` land in the table
with the file's chain; the app role cannot rewrite it; a superuser's edit, deletion or reordering
is named by ``verify``; concurrent threads and processes keep one chain; an unreachable store fails
closed (no unblinded output, the page says why).

Run as root (this sandbox, CI), the server runs as the ``postgres`` account (``nobody`` when there
is none): initdb and postgres refuse root. Its folder is then a private ``mkdtemp`` folder in the
system temporary directory given to that account, because pytest's own temporary folders are
closed to other accounts (mode 0700); it is removed at the end."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from data_access import audit, audit_pg  # noqa: E402
from tests.test_audit import deployment  # noqa: E402,F401 (fixture: the demo deployment)

ROOT = Path(__file__).resolve().parents[1]
APP_ROLE = "mirocals_audit_app"


# --------------------------------------------------------------------------- the server
def _pg_bin() -> Path | None:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        return Path(max(found, key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Server:
    def __init__(self, socket_dir: Path, port: int):
        self.socket_dir, self.port, self.databases = socket_dir, port, 0

    def dsn(self, db: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} dbname={db} user={user}"

    def new_database(self) -> tuple[str, str]:
        """A fresh database: (the superuser's DSN, the app role's DSN)."""
        self.databases += 1
        name = f"audit_{self.databases}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name), self.dsn(name, APP_ROLE)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    bin_dir = _pg_bin()
    if bin_dir is None or not (bin_dir / "postgres").exists():
        pytest.skip("PostgreSQL server binaries (initdb, postgres) not found: scripts/setup-system.sh "
                    "installs Debian's postgresql package")
    run_as = {}
    if os.geteuid() == 0:                       # initdb and postgres refuse to run as root
        for name in ("postgres", "nobody"):
            try:
                account = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        else:
            pytest.skip("running as root and no postgres or nobody account to run PostgreSQL as")
        base = Path(tempfile.mkdtemp(prefix="mirocals-audit-pg-"))
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    else:
        base = tmp_path_factory.mktemp("pg")
    data, log = base / "data", base / "server.log"
    proc = None
    try:
        subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-sync"], cwd=base, check=True, capture_output=True, **run_as)
        port = 5432                             # names the socket file in our private folder only
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-k", str(base), "-p", str(port),
                 "-c", "listen_addresses=", "-c", "fsync=off"],
                cwd=base, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **run_as)
        server = Server(base, port)
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(server.dsn(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"PostgreSQL did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
        yield server
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)         # fast shutdown
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def audit_db(pg_server, monkeypatch):
    """A fresh database set up by ``audit_pg.init_db``; MIROCALS_AUDIT_DSN points at it as the app
    role. Returns (admin DSN, app DSN)."""
    admin, app = pg_server.new_database()
    audit_pg.init_db(admin)
    monkeypatch.setenv("MIROCALS_AUDIT_DSN", app)
    return admin, app


def _rows(admin):
    with psycopg.connect(admin) as conn:
        return conn.execute("SELECT seq, line, prev, hash FROM audit_log ORDER BY seq").fetchall()


def _write(n, who="dsmb"):
    return [audit.record("view", f"{who}-{i}", user=who, role="dsmb", source="dashboard") for i in range(n)]


def _mirocals(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mirocals.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- writing
def test_every_writer_lands_in_the_table_with_the_files_chain(audit_db, tmp_path):
    admin, app = audit_db
    from dashboard import audit as dash_audit
    from reports.render import _audit
    view = dash_audit.log_event("dsmb", "dsmb", "survival", "view", "h" * 64, detail="arms masked", cut="2024-06-30")
    render = _audit("dsmb-closed", {"role": "dsmb", "snapshot_hash": "s" * 64, "cut_date": "2024-06-30"})
    table = audit.log_cli("table", "treatment-effect", snapshot_hash="c" * 64, cut="2024-06-30", detail="unblinded")
    assert not (tmp_path / "audit.log").exists()            # MIROCALS_AUDIT_LOG is not written
    rows = _rows(admin)
    # each row holds the entry exactly as the file would: same line, same hash rule, same schema
    assert [r[1] for r in rows] == [audit.entry_line(e) for e in (view, render, table)]
    assert rows[0][2] == audit.GENESIS
    for (_, line, prev, hashed), (_, before, _, before_hash) in zip(rows[1:], rows):
        assert prev == audit._line_hash(before.encode()) == before_hash
        assert hashed == audit._line_hash(line.encode())
    file_copy = tmp_path / "copy.log"
    file_copy.write_text("".join(r[1] + "\n" for r in rows))
    assert audit.verify(file_copy).ok                         # the same chain, read as a file
    assert [e["object"] for e in audit.read_entries()] == ["survival", "dsmb-closed", "treatment-effect"]
    assert audit.read_entries(last=1)[0]["source"] == "cli"
    result = audit.verify()
    assert result.ok and (result.lines, result.chained) == (3, 3) and result.head == audit.head() == rows[-1][3]
    assert "PostgreSQL table audit_log (database audit_" in audit.describe_store()
    ok = _mirocals("audit", "verify")
    assert ok.returncode == 0 and "chain intact, 3 rows" in ok.stdout, ok


def test_init_db_sets_up_an_append_only_table(pg_server):
    admin, app = pg_server.new_database()
    for _ in range(2):                                        # idempotent
        made = _mirocals("audit", "init-db", "--dsn", admin)
        assert made.returncode == 0 and "ready" in made.stdout, made
    entry = audit.record("view", "survival", user="dsmb", role="dsmb", source="dashboard")  # the file
    os.environ["MIROCALS_AUDIT_DSN"] = app
    try:
        audit.record("view", "survival", user="dsmb", role="dsmb", source="dashboard")
        audit.record("view", "safety", user="dsmb", role="dsmb", source="dashboard")
    finally:
        del os.environ["MIROCALS_AUDIT_DSN"]
    assert entry["prev"] == audit.GENESIS and len(_rows(admin)) == 2
    # the app role: INSERT and SELECT only
    for statement in ("UPDATE audit_log SET line = line", "DELETE FROM audit_log", "TRUNCATE audit_log",
                      "LOCK TABLE audit_log IN EXCLUSIVE MODE", "DROP TABLE audit_log",
                      "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete"):
        with psycopg.connect(app) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied|must be owner"):
                conn.execute(statement)
    # not even the owner or a superuser, without switching the triggers off first
    for statement in ("UPDATE audit_log SET line = line", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with psycopg.connect(admin) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
    # a writer that skips the lock cannot fork the chain, nor store a row whose columns lie
    first, second = _rows(admin)[:2]
    with psycopg.connect(app) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO audit_log (line, prev, hash) VALUES (%s, %s, %s)", first[1:])
    with psycopg.connect(app) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO audit_log (line, prev, hash) VALUES (%s, %s, %s)",
                         (second[1], "f" * 64, second[3]))
    assert len(_rows(admin)) == 2
    os.environ["MIROCALS_AUDIT_DSN"] = app
    try:
        assert audit.verify().ok and audit.verify().lines == 2
    finally:
        del os.environ["MIROCALS_AUDIT_DSN"]


# --------------------------------------------------------------------------- tampering
def _superuser(admin, *statements):
    """Statements run by a superuser with the append-only triggers switched off."""
    with psycopg.connect(admin) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement, params in statements:
            conn.execute(statement, params)


@pytest.mark.parametrize("tamper, broken_seq, entry", [("edit", 3, 3), ("delete", 4, 3), ("reorder", 2, 2)])
def test_a_superusers_tampering_is_named_by_verify(audit_db, tamper, broken_seq, entry):
    admin, app = audit_db
    _write(5)
    assert audit.verify().ok
    rows = {r[0]: r for r in _rows(admin)}
    if tamper == "edit":                                      # row 2 rewritten, its hash kept consistent
        line = rows[2][1].replace('"user": "dsmb"', '"user": "someone"')
        _superuser(admin, ("UPDATE audit_log SET line = %s, hash = %s WHERE seq = 2",
                           (line, audit._line_hash(line.encode()))))
    elif tamper == "delete":                                  # row 3 removed: row 4 is the 3rd entry
        _superuser(admin, ("DELETE FROM audit_log WHERE seq = 3", None))
    elif tamper == "reorder":                                 # rows 2 and 3 swapped
        _superuser(admin, ("DELETE FROM audit_log WHERE seq IN (2, 3)", None),
                   ("INSERT INTO audit_log (seq, line, prev, hash) OVERRIDING SYSTEM VALUE "
                    "VALUES (2, %s, %s, %s), (3, %s, %s, %s)", (*rows[3][1:], *rows[2][1:])))
    result = audit.verify()
    assert not result.ok and (result.broken_seq, result.broken_line) == (broken_seq, entry), result
    said = []
    assert audit.verify_command(out=said.append) == 1
    assert f"broken at row seq {broken_seq} (entry {entry})" in said[0] and "audit_log" in said[0]
    if tamper == "edit":                                      # the command line says the same
        cli = _mirocals("audit", "verify", "--dsn", app, env={"MIROCALS_AUDIT_DSN": ""})
        assert cli.returncode == 1 and f"broken at row seq {broken_seq}" in cli.stdout, cli


def test_a_cut_tail_is_found_against_a_noted_head(audit_db):
    admin, _ = audit_db
    _write(4)
    noted = audit.head()
    _write(1, "later")
    assert audit.verify(expected_head=noted).ok
    _superuser(admin, ("DELETE FROM audit_log WHERE seq >= 4", None))
    assert audit.verify().ok                                  # the table alone cannot tell
    result = audit.verify(expected_head=noted)
    assert not result.ok and "removed from the end" in result.reason


# --------------------------------------------------------------------------- concurrency
WRITER = """
import sys, threading
from data_access import audit
def run(t):
    for i in range(int(sys.argv[2])):
        audit.record("view", f"{sys.argv[1]}-{t}-{i}", user=sys.argv[1], role="dsmb", source="dashboard")
threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_concurrent_threads_and_processes_keep_one_chain(audit_db):
    admin, app = audit_db
    per_thread = 15
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, f"proc{k}", str(per_thread)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for k in range(2)]
    errors = []

    def run(t):
        try:
            for i in range(per_thread):
                audit.record("view", f"main-{t}-{i}", user="main", role="dsmb", source="dashboard")
        except Exception as exc:                              # noqa: BLE001 (counted below)
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    took = time.monotonic() - started
    assert errors == []
    n = 3 * 4 * per_thread
    result = audit.verify()
    assert result.ok and result.lines == result.chained == n, result
    rows = _rows(admin)
    assert len({r[2] for r in rows}) == n                     # no two entries share a predecessor
    objects = [e["object"] for e in audit.read_entries()]
    assert len(set(objects)) == n and {o.split("-")[0] for o in objects} == {"main", "proc0", "proc1"}
    print(f"{n} entries from 12 writers in {took:.2f} s")


# --------------------------------------------------------------------------- fail closed
def test_an_unreachable_store_fails_closed_and_never_shows_the_password(pg_server, monkeypatch, tmp_path):
    port = _free_port()
    down = f"host=127.0.0.1 port={port} dbname=mirocals_audit user={APP_ROLE} password=s3cret-pw connect_timeout=2"
    monkeypatch.setenv("MIROCALS_AUDIT_DSN", down)
    started = time.monotonic()
    with pytest.raises(audit.AuditWriteError) as caught:
        audit.record("view", "survival", user="dsmb", role="dsmb", source="dashboard")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "cannot be written" in message and "127.0.0.1" in message and f"port {port}" in message
    assert "database mirocals_audit" in message and "s3cret-pw" not in message
    # a server that stopped (no socket) is the same; so is a database without the table
    for dsn, hint in ((pg_server.dsn("postgres").replace("port=5432", f"port={port}"), "cannot be written"),
                      (pg_server.dsn("postgres"), "init-db")):
        monkeypatch.setenv("MIROCALS_AUDIT_DSN", dsn)
        with pytest.raises(audit.AuditWriteError, match=hint):
            audit.log_cli("table", "treatment-effect", detail="unblinded")
    # the report pipeline delivers nothing; verify says it cannot read (exit 2), without the password
    monkeypatch.setenv("MIROCALS_AUDIT_DSN", down)
    from reports.render import MARKER, _audit, report_folder
    folder = report_folder(tmp_path / "out", "dsmb-closed")
    (folder / "dsmb_closed.html").write_text("closed report")
    with pytest.raises(audit.AuditWriteError):
        _audit("dsmb-closed", {"role": "dsmb", "snapshot_hash": "s"}, folder)
    assert [p.name for p in folder.iterdir()] == [MARKER]
    said = []
    assert audit.verify_command(out=said.append) == 2
    assert "cannot be read" in said[0] and "s3cret-pw" not in said[0]


def test_the_command_line_prints_no_unblinded_table_while_the_store_is_down(demo_snapshot, audit_db, monkeypatch,
                                                                          capsys):
    from mirocals.cli import main
    args = ["table", "km", "--data", str(demo_snapshot), "--view", "unblinded",
            "--allocation", str(demo_snapshot / "allocation"), "--format", "csv"]
    assert main(args) == 0 and "Placebo" in capsys.readouterr().out
    assert audit.read_entries()[-1]["object"] == "km"
    monkeypatch.setenv("MIROCALS_AUDIT_DSN", f"host=127.0.0.1 port={_free_port()} dbname=x user=y connect_timeout=2")
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "could not be written, nothing printed" in err and "127.0.0.1" in err


def test_a_page_is_not_shown_while_the_store_is_down(deployment, audit_db, monkeypatch):
    from tests.test_dashboard_apptest import sign_in, visit
    admin, app = audit_db
    at = sign_in("dsmb")
    assert [e["action"] for e in audit.read_entries()][:1] == ["sign-in"]
    monkeypatch.setenv("MIROCALS_AUDIT_DSN", f"host=127.0.0.1 port={_free_port()} dbname=x user=y connect_timeout=2")
    at = visit(at, "survival.py")
    assert any("audit log cannot be written" in e.value for e in at.error)
    assert len(at.dataframe) == 0 and len(at.get("plotly_chart")) == 0
    monkeypatch.setenv("MIROCALS_AUDIT_DSN", app)             # the store back: logged, then shown
    at.run()
    assert len(at.dataframe) > 0
    assert audit.read_entries()[-1]["object"] == "survival" and audit.verify().ok


def test_the_audit_page_reads_the_table_and_names_a_broken_row(deployment, audit_db):
    from tests.test_dashboard_apptest import sign_in, visit
    admin, _ = audit_db
    _write(3)
    at = visit(sign_in("statistician"), "audit_log.py")
    captions = " ".join(c.value for c in at.caption)
    assert "PostgreSQL table audit_log" in captions and "chain intact" in captions, captions
    assert {"dsmb-0", "dsmb-2", "audit"} <= set(next(d.value for d in at.dataframe if "Object" in d.value.columns)["Object"])
    _superuser(admin, ("DELETE FROM audit_log WHERE seq = 2", None))
    at.run()
    assert any("broken at row seq 3" in e.value for e in at.error), [e.value for e in at.error]
