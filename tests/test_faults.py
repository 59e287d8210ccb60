"""Faults (issue 16 part 5), with real files, real processes and a real server:

(a) a snapshot published while users are signed in: each session keeps the snapshot it shows
    until its user chooses the new one (no output of a page from another snapshot), a notice
    offers the new one, and choosing it switches every output;
(b) a snapshot file changed after publication (its SHA-256 differs from the manifest): refused in
    the dashboard, by ``mirocals table`` and by ``mirocals report`` (exit 2, one line naming the
    file and what to do); hashed once per process per file state;
(c) ``mirocals report`` killed (SIGKILL) in the middle of a render: the report folder holds no
    complete-looking document and says it is incomplete; the next render cleans it;
(d) many failed sign-ins from one client address under many names: refused after the limit,
    while another address is not, and the refusals are audited (real server, websocket clients
    speaking Streamlit's protocol from two loopback addresses).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
EARLY, LATE = "2018-06-30", "2019-03-31"


def mirocals(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """The real command line (``python -m mirocals``)."""
    return subprocess.run([sys.executable, "-m", "mirocals", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A small demo trial (80 participants): the delivery snapshots are cut from."""
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("faults") / "source"
    make_demo(root, n_subjects=80)
    return root


def _caption(at) -> str:
    return next(c.value for c in at.caption if "Data cut-off" in c.value)


def _tables(at) -> list[str]:
    return [df.value.to_csv() for df in at.dataframe]


# --------------------------------------------------------------------------- (a) a new snapshot
@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_a_snapshot_published_mid_session_is_offered_not_switched_to(role, source, tmp_path, monkeypatch):
    from data_access.cut import cut_snapshot
    from data_access.publish import publish_snapshot
    from data_access.snapshot import snapshot_hash
    from tests.test_dashboard_apptest import sign_in, visit
    staging, data, allocations = tmp_path / "staging", tmp_path / "published", tmp_path / "allocations"
    cut_snapshot(source, EARLY, staging / "2018-06")
    cut_snapshot(source, LATE, staging / "2019-03")
    publish_snapshot(staging / "2018-06", data, allocations)
    first = snapshot_hash(data / "2018-06")
    monkeypatch.setenv("MIROCALS_DATA", str(data))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(allocations))

    at = visit(sign_in(role), "recruitment.py")
    assert f"**{EARLY}**" in _caption(at) and first[:12] in _caption(at)
    assert ("unblinded, by arm" in _caption(at)) == (role == "dsmb"), _caption(at)
    before = _tables(at)
    assert before

    # published mid-session by the deployment's real path (data_access.publish: one rename into the
    # folder both instances read)
    done = subprocess.run([sys.executable, "-m", "data_access.publish", str(staging / "2019-03"), "--data-root",
                           str(data), "--allocation-root", str(allocations)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    second = snapshot_hash(data / "2019-03")
    assert second != first

    at.run()                                   # the signed-in user's next rerun
    assert not at.exception
    assert first[:12] in _caption(at) and second[:12] not in _caption(at)
    assert _tables(at) == before, "an output of the page changed snapshot under the user"
    assert at.selectbox(key="flt_snapshot").value.startswith("2018-06")      # the picker says so too
    offer = [i.value for i in at.info if "new snapshot has been published" in i.value]
    assert offer and second[:12] in offer[0] and "2019-03" in offer[0], [i.value for i in at.info]
    visit(at, "baseline.py")                   # navigating does not switch either
    assert first[:12] in _caption(at)
    visit(at, "recruitment.py")
    assert _tables(at) == before

    fresh = visit(sign_in(role), "recruitment.py")             # a new session starts on the newest
    assert second[:12] in _caption(fresh) and f"**{LATE}**" in _caption(fresh)
    newest = _tables(fresh)
    assert newest != before

    next(b for b in at.button if str(b.label).startswith("Show the new snapshot")).click()
    at.run()
    assert not at.exception
    assert second[:12] in _caption(at) and first[:12] not in _caption(at)
    assert ("unblinded, by arm" in _caption(at)) == (role == "dsmb"), _caption(at)   # its allocation too
    assert _tables(at) == newest, "every output follows the chosen snapshot"
    assert not [i.value for i in at.info if "new snapshot has been published" in i.value]
    assert at.selectbox(key="flt_snapshot").value.startswith("2019-03")


def test_the_sidebar_picker_chooses_and_a_withdrawn_snapshot_is_said(source, tmp_path, monkeypatch):
    import shutil
    from data_access.cut import cut_snapshot
    from data_access.snapshot import snapshot_hash
    from tests.test_dashboard_apptest import sign_in, visit
    data = tmp_path / "published"
    cut_snapshot(source, EARLY, data / "2018-06")
    cut_snapshot(source, LATE, data / "2019-03")
    monkeypatch.setenv("MIROCALS_DATA", str(data))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)
    at = visit(sign_in("steering"), "recruitment.py")
    assert snapshot_hash(data / "2019-03")[:12] in _caption(at)
    assert not [i.value for i in at.info if "new snapshot" in i.value]       # both listed from the start
    at.selectbox(key="flt_snapshot").select(next(o for o in at.selectbox(key="flt_snapshot").options
                                                 if o.startswith("2018-06")))
    at.run()
    assert snapshot_hash(data / "2018-06")[:12] in _caption(at)
    at.run()
    assert snapshot_hash(data / "2018-06")[:12] in _caption(at)
    assert not [i.value for i in at.info if "new snapshot" in i.value]      # chosen on purpose: not nagged
    shutil.rmtree(data / "2018-06")                                          # withdrawn
    at.run()
    assert not at.exception
    assert snapshot_hash(data / "2019-03")[:12] in _caption(at)
    assert any("no longer published" in w.value and "2018-06" in w.value for w in at.warning)


def test_a_snapshot_written_into_a_served_folder_shows_its_clinical_part_last(source, tmp_path, monkeypatch):
    """``write_snapshot`` (``mirocals cut``/``import``/``demo``) renames the allocation into place
    before the clinical part, whose manifest is what makes the dashboard list a snapshot: an
    unblinded instance never lists a snapshot without its allocation."""
    from data_access.cut import cut_snapshot
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renamed.append(Path(b).name) or real(a, b))
    cut_snapshot(source, EARLY, tmp_path / "served" / "2018-06")
    parts = [n for n in renamed if n in ("clinical", "allocation")]
    assert parts == ["allocation", "clinical"], renamed


# --------------------------------------------------------------------------- (b) changed after publication
@pytest.fixture()
def tampered(source, tmp_path) -> tuple[Path, Path]:
    """A published snapshot whose adae.parquet was rewritten after publication: still a valid
    Parquet file (one adverse event fewer), so only its hash shows the change."""
    import pyarrow.parquet as pq
    from data_access.cut import cut_snapshot
    root = cut_snapshot(source, LATE, tmp_path / "published" / "2019-03")
    path = root / "clinical" / "adae.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path, compression="zstd")
    return root, path


def test_a_file_changed_after_publication_is_refused_by_the_command_line(tampered):
    root, path = tampered
    for args in (("table", "km", "--data", root, "--view", "blinded"),
                 ("report", "dsmb-open", "--data", root, "--out", root.parent / "out", "--to", "html")):
        done = mirocals(*args)
        assert done.returncode == 2, (args, done.returncode, done.stderr[-2000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert str(path) in lines[0] and "changed after publication" in lines[0], lines[0]
        assert "restore the published copy" in lines[0] and "new snapshot" in lines[0]
        assert "Traceback" not in done.stderr and not done.stdout.strip()
    assert not list((root.parent / "out").rglob("*.html"))


def test_a_file_changed_after_publication_is_refused_by_the_dashboard(tampered, monkeypatch):
    from tests.test_dashboard_apptest import sign_in, visit
    root, path = tampered
    monkeypatch.setenv("MIROCALS_DATA", str(root))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(root / "allocation"))
    for role in ("steering", "dsmb"):
        at = visit(sign_in(role), "survival.py")
        errors = [e.value for e in at.error]
        assert any(str(path) in e and "changed after publication" in e for e in errors), errors
        assert not at.dataframe and not at.get("plotly_chart"), "nothing of the changed snapshot is shown"


def test_the_hash_is_checked_once_per_file_state(source, tmp_path, monkeypatch):
    """Opening a snapshot again costs one stat per file; a change (size, time or inode) is seen."""
    import hashlib
    from data_access import snapshot as snap
    from data_access.cut import cut_snapshot
    root = cut_snapshot(source, EARLY, tmp_path / "intact")
    calls = []
    real = snap._sha256
    monkeypatch.setattr(snap, "_sha256", lambda p: calls.append(p) or real(p))
    snap._VERIFIED.clear()
    snap.check_published(root / "clinical")
    hashed = len(calls)
    assert hashed == len(snap.read_manifest(root / "clinical")["files"])
    for _ in range(5):
        snap.check_published(root / "clinical")
    assert len(calls) == hashed, "re-hashed an unchanged snapshot"
    path = root / "clinical" / "adsl.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF                       # one byte flipped, same size
    path.write_bytes(bytes(data))
    assert hashlib.sha256(bytes(data)).hexdigest() != snap.read_manifest(root)["files"]["adsl.parquet"]["sha256"]
    for _ in range(3):                                 # refused each time, hashed once
        with pytest.raises(snap.SnapshotChangedError, match="adsl.parquet"):
            snap.check_published(root / "clinical")
    assert len(calls) == 2 * hashed, "a refused snapshot is re-hashed on every open"


# --------------------------------------------------------------------------- (c) a render killed
DOCUMENTS = ("dsmb_open.html", "dsmb_open.pdf", "dsmb_open.docx")


def test_a_render_killed_half_way_leaves_no_complete_looking_report(source, tmp_path):
    """SIGKILL once the HTML is written and the PDF is under way (the progress line 'pandoc
    typst'): before issue 16 the HTML stood in the folder under its own name, looking complete."""
    from reports.render import INCOMPLETE, MARKER, OWNER
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mirocals", "report", "dsmb-open", "--data", str(source),
                             "--out", str(out), "--to", "html,pdf"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line.strip())
            if "pandoc typst" in line or "typst pdf" in line:
                os.kill(proc.pid, signal.SIGKILL)          # the fault: the render's process dies
                break
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)            # and its kernel (a child) is not left running
        except ProcessLookupError:
            pass
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, seen
    folder = out / "dsmb-open"
    names = {p.name for p in folder.iterdir()}
    assert not names & set(DOCUMENTS), f"a complete-looking document after a killed render: {names}"
    assert ".partial-dsmb_open.html" in names, names        # the HTML was written, under its partial name
    marker = json.loads((folder / MARKER).read_text())
    assert marker["report"] == "dsmb-open" and marker["complete"] is False
    assert "not the report" in (folder / INCOMPLETE).read_text()

    stale = [w for w in Path("/tmp").glob("mirocals-dsmb-open-*")
             if (w / OWNER).exists() and (w / OWNER).read_text().strip() == str(proc.pid)]
    assert stale, "the killed render's private folder (its finally never ran) should be there"

    # the next render (a real one) sweeps the killed render's private folder, empties the report
    # folder and, once every document is complete, gives it its name and marks the folder complete
    done = mirocals("report", "dsmb-open", "--data", source, "--out", out, "--to", "html")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not stale[0].exists()
    marker = json.loads((folder / MARKER).read_text())
    assert marker["complete"] is True and marker["documents"] == ["dsmb_open.html"], marker
    names = {p.name for p in folder.iterdir()}
    assert "dsmb_open.html" in names and INCOMPLETE not in names, names
    assert not [n for n in names if n.startswith(".partial-") or n.endswith(".tmp") or n.endswith(".pdf")], names


# --------------------------------------------------------------------------- (d) many names, one address
class _Client:
    """One browser session over Streamlit's websocket protocol (scripts/load_test.py's ``User``),
    connecting from a chosen loopback address (Linux routes all of 127.0.0.0/8 to lo), optionally
    with extra request headers."""

    def __init__(self, url: str, source: str, headers: dict | None = None):
        import random
        from load_test import Stats, User
        self.user = User(0, "steering", url, Stats(), random.Random(0), page_timeout=60)
        self.url, self.source, self.headers = url, source, headers or {}

    async def connect(self):
        from websockets.asyncio.client import connect
        self.user.ws = await connect(self.url.replace("http://", "ws://") + "/_stcore/stream",
                                     subprotocols=["streamlit"], origin=self.url, max_size=None, open_timeout=60,
                                     ping_interval=None, local_addr=(self.source, 0),
                                     additional_headers=self.headers)
        _ms, errors = await self.user.run_once(lambda: self.user.send_rerun())
        assert not errors, errors

    async def attempt(self, name: str, password: str) -> list[str]:
        """Fill in the sign-in form and press Sign in; the alerts shown."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        u = self.user
        if "Sign out" in u.widgets:
            return ["signed in"]
        states = []
        for label, value in (("User name", name), ("Password", password)):
            w = WidgetState(id=u.widgets[label][1])
            w.string_value = value
            states.append(w)
        states.append(WidgetState(id=u.widgets["Sign in"][1], trigger_value=True))
        _ms, errors = await u.run_once(lambda: u.send_rerun(u.page_hash, states))
        assert not errors, errors
        return ["signed in"] if "Sign out" in u.widgets else list(u.alerts)

    async def close(self):
        await self.user.close()


FAILED, REFUSED = "Unknown user name or wrong password.", "Too many failed sign-ins"


def _audit_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_many_names_from_one_address_are_refused_while_another_address_is_not(source, tmp_path):
    """A real server; an attacker at 127.0.0.2 tries a new name each time (so no per-name delay
    ever applies): after ``ADDRESS_FREE_FAILURES`` failures its address is refused, even for a right
    password, while a user at 127.0.0.3 signs in; every failure and the first refusals are audited
    with the address the server saw. An X-Forwarded-For header from a client is not believed."""
    import asyncio
    from dashboard.auth import ADDRESS_FREE_FAILURES
    from tests.test_browser import run_server
    sys.path.insert(0, str(ROOT / "scripts"))

    async def scenario(url: str) -> dict:
        out: dict = {"free": [], "hammer": [], "other": []}
        for n in range(ADDRESS_FREE_FAILURES - 1):           # a new session and a new name each time
            c = _Client(url, "127.0.0.2")
            await c.connect()
            out["free"].append(await c.attempt(f"guess{n}", "password1"))
            await c.close()
        c = _Client(url, "127.0.0.2")          # the last free failure, then as fast as the server answers
        await c.connect()
        t = time.monotonic()
        out["free"].append(await c.attempt(f"guess{ADDRESS_FREE_FAILURES - 1}", "password1"))
        out["right_password"] = await c.attempt("investigator", "demo-investigator")
        out["right_password_after"] = time.monotonic() - t
        if out["right_password"] == ["signed in"]:          # the delay was over (a slow machine)
            await c.close()
            c = _Client(url, "127.0.0.2")
            await c.connect()
        t = time.monotonic()
        for n in range(6):
            out["hammer"].append(await c.attempt(f"hammer{n}", "password1"))
        out["hammer_seconds"] = time.monotonic() - t
        await c.close()
        c = _Client(url, "127.0.0.3")                        # someone else, meanwhile
        await c.connect()
        out["other"].append(await c.attempt("someone", "wrong"))
        out["other"].append(await c.attempt("steering", "demo-steering"))
        await c.close()
        # the attacker claiming to be elsewhere (no proxy is trusted), from 127.0.0.2 and from
        # 127.0.0.1 (whose X-Forwarded-For uvicorn believes by default)
        for n in range(2):
            c = _Client(url, ("127.0.0.2", "127.0.0.1")[n], {"X-Forwarded-For": f"10.0.0.{n + 1}"})
            await c.connect()
            await c.attempt(f"spoof{n}", "password1")
            await c.close()
        return out

    with run_server(tmp_path, data=source) as (url, audit_log, _server_log, _proc):
        seen = asyncio.run(scenario(url))
    assert all(any(FAILED in a for a in alerts) for alerts in seen["free"]), seen["free"]
    if seen["right_password_after"] < 0.9:        # within the 1 s delay: even a right password waits
        assert any(REFUSED in a for a in seen["right_password"]), seen["right_password"]
    hammer = seen["hammer"]
    ran = sum(any(FAILED in a for a in alerts) for alerts in hammer)
    refused = sum(any(REFUSED in a for a in alerts) for alerts in hammer)
    assert ran + refused == len(hammer), hammer
    # the delay doubles from 1 s: within T seconds at most log2(T + 1) + 1 guesses run
    assert refused and ran <= math.log2(seen["hammer_seconds"] + 1) + 1, (ran, seen["hammer_seconds"], hammer)
    assert any(FAILED in a for a in seen["other"][0]), seen["other"]
    assert seen["other"][1] == ["signed in"], seen["other"]

    entries = _audit_entries(audit_log)
    failed = [e for e in entries if e.get("action") == "sign-in-failed"]
    refusals = [e for e in entries if e.get("action") == "sign-in-refused"]
    assert sum("from 127.0.0.2" in (e.get("detail") or "") and e.get("user", "").startswith("guess")
               for e in failed) == ADDRESS_FREE_FAILURES, failed
    assert any("from 127.0.0.3" in (e.get("detail") or "") for e in failed), failed
    assert refusals and all("from 127.0.0.2" in (e.get("detail") or "") for e in refusals), refusals
    assert {e.get("user") for e in refusals} & {f"hammer{n}" for n in range(6)}, refusals
    spoofed = [e for e in entries if str(e.get("user", "")).startswith("spoof")]
    assert [e.get("detail") for e in spoofed] == ["from 127.0.0.2", "from local"], spoofed
    assert not [e for e in entries if "10.0.0." in json.dumps(e)], "a client's X-Forwarded-For was believed"
    assert any(e.get("action") == "sign-in" and e.get("user") == "steering" for e in entries)
