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
def test_a_snapshot_published_mid_session_is_offered_not_switched_to(source, tmp_path, monkeypatch):
    from data_access.cut import cut_snapshot
    from data_access.snapshot import snapshot_hash
    from tests.test_dashboard_apptest import sign_in, visit
    data = tmp_path / "published"
    cut_snapshot(source, EARLY, data / "2018-06")
    first = snapshot_hash(data / "2018-06")
    monkeypatch.setenv("MIROCALS_DATA", str(data))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)

    at = visit(sign_in("steering"), "recruitment.py")
    assert f"**{EARLY}**" in _caption(at) and first[:12] in _caption(at)
    before = _tables(at)
    assert before

    # published by the project's real path (`mirocals cut` stages the part and renames it into place)
    done = mirocals("cut", "--src", source, "--date", LATE, "--out", data / "2019-03")
    assert done.returncode == 0, done.stderr
    second = snapshot_hash(data / "2019-03")
    assert second != first

    at.run()                                   # the signed-in user's next rerun
    assert not at.exception
    assert first[:12] in _caption(at) and second[:12] not in _caption(at)
    assert _tables(at) == before, "an output of the page changed snapshot under the user"
    offer = [i.value for i in at.info if "new snapshot has been published" in i.value]
    assert offer and second[:12] in offer[0] and "2019-03" in offer[0], [i.value for i in at.info]
    visit(at, "baseline.py")                   # navigating does not switch either
    assert first[:12] in _caption(at)
    visit(at, "recruitment.py")
    assert _tables(at) == before

    fresh = visit(sign_in("steering"), "recruitment.py")       # a new session starts on the newest
    assert second[:12] in _caption(fresh) and f"**{LATE}**" in _caption(fresh)
    newest = _tables(fresh)
    assert newest != before

    next(b for b in at.button if str(b.label).startswith("Show the new snapshot")).click()
    at.run()
    assert not at.exception
    assert second[:12] in _caption(at) and first[:12] not in _caption(at)
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
    with pytest.raises(snap.SnapshotChangedError, match="adsl.parquet"):
        snap.check_published(root / "clinical")


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
