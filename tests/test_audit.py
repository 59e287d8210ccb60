"""The audit log (data_access.audit): one schema for the dashboard, the command line and the render
pipeline, a hash chain that detects an edited, removed, reordered or inserted entry, old lines
still read, and the Audit log page showing report renders with user, report name and snapshot."""
from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from data_access import audit
from data_access.snapshot import read_manifest


def _lines(path):
    return path.read_text().splitlines()


# --------------------------------------------------------------------------- schema, writers
def test_every_writer_writes_one_schema(tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    from dashboard import audit as dash_audit
    from reports.render import _audit
    dash_audit.log_event("dsmb", "dsmb", "survival", "view", "h" * 64, detail="arms masked", cut="2024-06-30")
    _audit("dsmb-closed", {"role": "dsmb", "snapshot_hash": "s" * 64, "cut_date": "2024-06-30"})
    audit.log_cli("table", "treatment-effect", snapshot_hash="c" * 64, cut="2024-06-30", detail="unblinded")
    raw = [json.loads(x) for x in _lines(log)]
    assert [set(e) - {"detail"} for e in raw] == [set(audit.FIELDS) - {"detail"} | {"prev"}] * 3
    view, render, table = raw
    assert view | {"time": None, "prev": None} == {
        "time": None, "prev": None, "user": "dsmb", "role": "dsmb", "action": "view", "object": "survival",
        "snapshot_hash": "h" * 64, "cut": "2024-06-30", "detail": "arms masked", "source": "dashboard"}
    assert render["time"].endswith("+00:00") and render["time"][:4].isdigit()
    assert (render["user"], render["role"], render["action"], render["object"], render["snapshot_hash"],
            render["cut"], render["source"]) == (audit.os_user(), "dsmb", "render", "dsmb-closed", "s" * 64,
                                                 "2024-06-30", "render")
    assert (table["user"], table["role"], table["action"], table["object"], table["source"]) == \
        (audit.os_user(), "cli", "table", "treatment-effect", "cli")
    assert audit.verify(log).ok


def test_the_command_line_writes_the_os_user_never_unknown(monkeypatch):
    import getpass
    assert audit.os_user() == getpass.getuser() != "unknown"

    def no_user():
        raise OSError("no passwd entry")
    monkeypatch.setattr(getpass, "getuser", no_user)
    monkeypatch.setenv("USER", "alice")
    assert audit.os_user() == "alice"
    monkeypatch.delenv("USER")
    monkeypatch.setenv("LOGNAME", "bob")
    assert audit.os_user() == "bob"
    monkeypatch.delenv("LOGNAME")
    assert audit.os_user() == f"uid-{os.getuid()}"


def test_render_role_defaults_to_cli_and_fields_are_capped(tmp_path):
    log = tmp_path / "a.log"
    e = audit.log_render("manuscript", role=None, snapshot_hash=None, path=log)
    assert e["role"] == "cli" and e["object"] == "manuscript" and e["snapshot_hash"] is None
    e = audit.record("view", "x" * 10_000, user="u" * 2_000_000, role="dsmb", source="dashboard", path=log)
    assert len(e["user"]) == audit.FIELD_MAX["user"] and len(e["object"]) == audit.FIELD_MAX["object"]
    with pytest.raises(ValueError):
        audit.record("view", "p", user="u", role="r", source="elsewhere", path=log)


def test_a_render_that_cannot_be_audited_is_not_delivered(tmp_path, monkeypatch):
    from reports.render import _audit, report_folder, MARKER
    folder = report_folder(tmp_path / "out", "dsmb-closed")
    (folder / "dsmb_closed.html").write_text("closed report")
    (folder / "tables").mkdir()
    (folder / "tables" / "km.csv").write_text("arm,n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(blocker / "audit.log"))
    with pytest.raises(audit.AuditWriteError):
        _audit("dsmb-closed", {"role": "dsmb", "snapshot_hash": "s"}, folder)
    assert [p.name for p in folder.iterdir()] == [MARKER]


def test_each_entry_is_on_disk_before_record_returns(tmp_path, monkeypatch):
    """fsync of the log after every entry, and of its folder when the file is new; a failing
    fsync (a full or failing disk) is a failed audit write, so the output is not shown."""
    import os
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    log = tmp_path / "audit" / "a.log"
    audit.record("view", "survival", user="u", role="dsmb", source="dashboard", path=log)
    assert synced == [str(log), str(log.parent)]
    audit.record("view", "safety", user="u", role="dsmb", source="dashboard", path=log)
    assert synced[2:] == [str(log)]

    def failing(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(audit.AuditWriteError, match="a.log"):
        audit.record("view", "alsfrs", user="u", role="dsmb", source="dashboard", path=log)


# --------------------------------------------------------------------------- old lines
OLD_DASHBOARD = {"time": "2026-11-30T09:00:00.000+00:00", "user": "dsmb", "role": "dsmb", "page": "survival",
                 "action": "view", "snapshot_hash": "a" * 64}
OLD_RENDER = {"time": "2026-11-30T10:00:00+00:00", "user": "unknown", "role": "dsmb", "action": "render",
              "report": "dsmb-closed", "snapshot": "b" * 64}


def _old_log(path):
    path.write_text("".join(json.dumps(e) + "\n" for e in (OLD_DASHBOARD, OLD_RENDER)))


def test_old_lines_are_read_in_the_current_schema_and_the_chain_follows_them(tmp_path):
    log = tmp_path / "audit.log"
    _old_log(log)
    audit.record("view", "safety", user="statistician", role="statistician", source="dashboard", path=log)
    old_view, old_render, new = audit.read_entries(log)
    assert (old_view["object"], old_view["snapshot_hash"], old_view["source"]) == ("survival", "a" * 64, "dashboard")
    assert (old_render["object"], old_render["snapshot_hash"], old_render["source"]) == \
        ("dsmb-closed", "b" * 64, "render")
    assert set(old_render) == set(audit.FIELDS) and old_render["cut"] is None
    assert new["object"] == "safety"
    result = audit.verify(log)
    assert result.ok and (result.lines, result.chained) == (3, 1)
    # the first chained entry hashes the last old line: the old lines are covered from there on
    assert json.loads(_lines(log)[2])["prev"] == audit._line_hash(_lines(log)[1].encode())


# --------------------------------------------------------------------------- the chain
def _chained_log(path, n=5):
    for i in range(n):
        audit.record("view", f"page-{i}", user="dsmb", role="dsmb", source="dashboard", path=path)
    return _lines(path)


@pytest.mark.parametrize("tamper, broken_at", [
    ("edit", 3), ("remove", 3), ("reorder", 2), ("insert-old", 4), ("insert-chained-copy", 4), ("garbage", 3)])
def test_verify_stops_at_the_first_broken_entry(tmp_path, tamper, broken_at):
    log = tmp_path / "audit.log"
    lines = _chained_log(log)
    assert audit.verify_command(log, out=lambda m: None) == 0
    if tamper == "edit":                                       # line 2 edited: line 3 no longer matches
        lines[1] = lines[1].replace('"dsmb"', '"someone"', 1)
    elif tamper == "remove":                                   # line 3 removed: old line 4 is now 3
        del lines[2]
    elif tamper == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif tamper == "insert-old":
        lines.insert(3, json.dumps(OLD_DASHBOARD))
    elif tamper == "insert-chained-copy":
        lines.insert(3, lines[1])
    elif tamper == "garbage":
        lines[2] = lines[2][:-10]
    log.write_text("\n".join(lines) + "\n")
    result = audit.verify(log)
    assert not result.ok and result.broken_line == broken_at, result
    said = []
    assert audit.verify_command(log, out=said.append) == 1
    assert f"broken at line {broken_at}" in said[0]


def test_a_cut_tail_is_detected_against_a_noted_head(tmp_path):
    log = tmp_path / "audit.log"
    lines = _chained_log(log)
    noted = audit.head(log)
    assert noted == audit.verify(log).head and audit.verify(log, expected_head=noted).ok
    audit.record("sign-out", "sign-out", user="dsmb", role="dsmb", source="dashboard", path=log)
    assert audit.verify(log, expected_head=noted).ok          # appending keeps the noted head
    log.write_text("\n".join(lines[:3]) + "\n")
    assert audit.verify(log).ok                               # the file alone cannot tell
    assert not audit.verify(log, expected_head=noted).ok


def test_a_torn_last_line_stays_apart_and_is_reported(tmp_path):
    log = tmp_path / "audit.log"
    _chained_log(log, 2)
    with open(log, "a") as fh:
        fh.write('{"time": "2026')                            # a write cut short
    audit.record("view", "after", user="dsmb", role="dsmb", source="dashboard", path=log)
    assert [e["object"] for e in audit.read_entries(log)] == ["page-0", "page-1", "after"]
    assert audit.verify(log).broken_line == 3


def _write_many(args):
    path, who = args
    for i in range(40):
        audit.record("view", f"{who}-{i}", user=who, role="dsmb", source="dashboard", path=path)


def test_concurrent_writers_keep_the_chain(tmp_path):
    log = tmp_path / "audit.log"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_write_many, [(str(log), f"w{k}") for k in range(4)])
    result = audit.verify(log)
    assert result.ok and result.chained == result.lines == 160


def test_a_missing_log_is_empty_and_intact(tmp_path):
    assert audit.read_entries(tmp_path / "none.log") == []
    assert audit.verify(tmp_path / "none.log").ok


# --------------------------------------------------------------------------- the Audit log page
@pytest.fixture
def deployment(demo_snapshot, monkeypatch):
    monkeypatch.setenv("MIROCALS_DATA", str(demo_snapshot))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    monkeypatch.delenv("MIROCALS_CREDENTIALS", raising=False)
    return demo_snapshot


def _audit_table(at):
    frames = [d.value for d in at.dataframe if "Object" in d.value.columns]
    assert len(frames) == 1
    return frames[0]


def test_the_audit_page_shows_a_render_with_user_report_and_snapshot(deployment, tmp_path, monkeypatch):
    from tests.test_dashboard_apptest import sign_in, visit
    from reports.render import _audit
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    _old_log(log)                                              # lines from before the one schema
    manifest = read_manifest(deployment / "clinical")
    _audit("dsmb-closed", {"role": "dsmb", "snapshot_hash": manifest["content_hash"],
                           "cut_date": str(manifest["cut_date"])})
    at = visit(sign_in("statistician"), "audit_log.py")
    assert not at.error, [e.value for e in at.error]
    table = _audit_table(at)
    assert list(table.columns) == ["Time (UTC)", "User", "Role", "Action", "Object", "Snapshot", "Cut-off",
                                   "Detail", "Source"]
    # newest first: the audit page's own view, then the statistician's sign-in view, then the render
    render = table[table["Action"] == "render"]
    assert len(render) == 2
    new = render.iloc[0]
    assert (new["User"], new["Role"], new["Object"], new["Snapshot"], new["Cut-off"], new["Source"]) == \
        (audit.os_user(), "dsmb", "dsmb-closed", manifest["content_hash"][:12], str(manifest["cut_date"]),
         "render")
    assert new["User"] != "unknown"
    # old lines still display, mapped to the one schema
    old = render.iloc[1]
    assert (old["User"], old["Object"], old["Snapshot"], old["Time (UTC)"]) == \
        ("unknown", "dsmb-closed", "b" * 12, "2026-11-30 10:00:00")
    old_view = table[table["Time (UTC)"] == "2026-11-30 09:00:00"].iloc[0]
    assert (old_view["Action"], old_view["Object"], old_view["Snapshot"]) == ("view", "survival", "a" * 12)
    times = list(table["Time (UTC)"])
    assert times == sorted(times, reverse=True)
    assert "chain intact" in " ".join(c.value for c in at.caption)
    assert set(table["Object"]) >= {"audit", "dsmb-closed", "survival", "sign-in"}

    # filters narrow the rows
    n_all = len(table)
    at.multiselect(key="audit_action").set_value(["render"]).run()
    assert set(_audit_table(at)["Action"]) == {"render"} and len(_audit_table(at)) == 2
    at.multiselect(key="audit_user").set_value([audit.os_user()]).run()
    assert list(_audit_table(at)["Object"]) == ["dsmb-closed"]
    at.multiselect(key="audit_user").set_value([]).run()
    at.multiselect(key="audit_action").set_value([]).run()
    import datetime as dt
    day = dt.date(2026, 11, 30)
    at.date_input(key="audit_dates").set_value((day, day)).run()
    assert list(_audit_table(at)["Time (UTC)"]) == ["2026-11-30 10:00:00", "2026-11-30 09:00:00"]
    at.date_input(key="audit_dates").set_value(()).run()
    assert len(_audit_table(at)) == n_all                      # reruns of the same view log nothing new


def test_a_page_whose_view_cannot_be_audited_shows_no_data(deployment, tmp_path, monkeypatch):
    from tests.test_dashboard_apptest import open_tab, sign_in, visit
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(tmp_path / "audit.log"))
    at = sign_in("dsmb")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(blocker / "audit.log"))
    at = visit(at, "survival.py")
    for _ in range(2):                                         # the page, then a rerun of it
        assert any("audit log cannot be written" in e.value for e in at.error)
        assert len(at.dataframe) == 0 and len(at.get("plotly_chart")) == 0
        at.run()
    # the log writable again: the view is logged, then the page is shown
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(tmp_path / "audit.log"))
    at.run()
    assert [e.value for e in at.error if not e.value.startswith("Efficacy boundary crossed")] == []  # the demo's alert
    assert len(at.dataframe) > 0                               # the treatment effect, the first tab
    assert len(open_tab(at, "survival.py", "Kaplan-Meier").get("plotly_chart")) > 0
    assert audit.read_entries(tmp_path / "audit.log")[-1]["object"] == "survival"


def test_verify_from_the_command_line(tmp_path):
    import subprocess
    import sys
    log = tmp_path / "audit.log"
    lines = _chained_log(log, 3)
    run = [sys.executable, "-m", "data_access.audit"]
    ok = subprocess.run(run + ["verify", "--log", str(log)], capture_output=True, text=True)
    assert ok.returncode == 0 and "chain intact, 3 lines" in ok.stdout
    noted = subprocess.run(run + ["head", "--log", str(log)], capture_output=True, text=True).stdout.strip()
    assert noted == audit.head(log)
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    bad = subprocess.run(run + ["verify", "--log", str(log)], capture_output=True, text=True)
    assert bad.returncode == 1 and "broken at line 2" in bad.stdout
