"""Every dashboard page, headless (streamlit.testing.v1.AppTest), for every role.

Users sign in through the real sign-in form. The leak test collects everything a blinded role is
sent (every element's message: markdown, captions, dataframe values, metrics, chart specs, errors)
and every download's bytes, and looks for arm labels and Treg parameters.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from dashboard import auth
from dashboard.pages_registry import PAGES, pages_for

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")
TREG_TOKENS = ("TREG", "Treg", "TREGPCT")
BANNER = "UNBLINDED - CONFIDENTIAL"


@pytest.fixture(autouse=True)
def _deployment(demo_snapshot, monkeypatch):
    monkeypatch.setenv("MIROCALS_DATA", str(demo_snapshot))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    monkeypatch.delenv("MIROCALS_CREDENTIALS", raising=False)


@pytest.fixture
def downloads(monkeypatch):
    """Bytes of every (non-deferred) file the app offers for download."""
    captured: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes):
            captured.append(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    return captured


def sign_in(role: str, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception
    at.text_input(key="login_user").set_value(role)
    at.text_input(key="login_password").set_value(f"demo-{role}")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


def rendered_text(at: AppTest) -> str:
    """Everything the page sent: every element's protobuf message in text form, and dataframes'
    values (Arrow bytes are not readable in the message) as CSV."""
    parts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        if getattr(node, "type", None) in ("arrow_data_frame", "dataframe", "table"):
            parts.append(node.value.to_csv())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def visit(at: AppTest, page_file: str) -> AppTest:
    at.switch_page(f"app_pages/{page_file}")
    at.run()
    assert not at.exception, f"{page_file}: {at.exception}"
    return at


@pytest.mark.parametrize("role", auth.ROLES)
def test_every_page_runs_for_every_role(role, tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    at = sign_in(role)
    for page in pages_for(role):
        visit(at, page.file)
        text = rendered_text(at)
        assert not at.error or page.file == "quality.py", f"{role}/{page.file}: {[e.value for e in at.error]}"
        assert "Data cut-off" in text
        assert (BANNER in text) == auth.is_unblinded_role(role), f"{role}/{page.file}"
    events = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    views = {e["page"] for e in events if e["action"] == "view"}
    if auth.is_unblinded_role(role):
        assert views == {p.url for p in pages_for(role)}
        assert all(e["user"] == role and e["role"] == role and e["snapshot_hash"] for e in events
                   if e["action"] == "view")
    else:
        assert views == set()


@pytest.mark.parametrize("role", ["steering", "investigator", "author"])
def test_blinded_roles_see_no_arm_label_and_no_treg_anywhere(role, downloads):
    at = sign_in(role)
    seen = []
    for page in pages_for(role):
        visit(at, page.file)
        seen.append(rendered_text(at))
    seen += [d.decode("utf-8", "replace") for d in downloads]
    assert downloads, "no download was offered"
    text = "\n".join(seen)
    for token in ARM_TOKENS + TREG_TOKENS:
        assert token not in text, f"{role} was shown {token!r}"


def test_unblinded_roles_do_see_arm_labels(downloads):
    at = sign_in("dsmb")
    visit(at, "baseline.py")
    assert "Low-dose IL-2" in rendered_text(at) + "".join(d.decode("utf-8", "replace") for d in downloads)


@pytest.mark.parametrize("page", [p for p in PAGES if "steering" not in p.roles])
def test_restricted_page_reached_by_path_denies_a_blinded_role(page, demo_snapshot):
    creds = auth.load_credentials()
    account, _ = auth.check_password("steering", "demo-steering", creds)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app_pages" / page.file), default_timeout=60)
    at.session_state[auth.SESSION_KEY] = auth.make_session(account)
    at.run()
    assert not at.exception
    assert any("Access denied" in e.value for e in at.error)
    assert not at.dataframe and not at.get("plotly_chart") and not at.get("download_button")
    assert demo_snapshot.name not in rendered_text(at) and "Data cut-off" not in rendered_text(at)


def test_pages_refuse_to_run_without_sign_in():
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app_pages" / page.file), default_timeout=60)
        at.run()
        assert any("Access denied" in e.value for e in at.error) and not at.dataframe


def test_wrong_password_shows_an_error_and_no_data():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").set_value("apptest-nobody")
    at.text_input(key="login_password").set_value("wrong")
    at.button[0].click()
    at.run()
    assert any("wrong password" in e.value for e in at.error)
    assert not at.dataframe and "Data cut-off" not in rendered_text(at)


def test_sign_out_returns_to_the_sign_in_form():
    at = sign_in("investigator")
    at.button(key="sign_out").click()
    at.run()
    assert at.text_input(key="login_user") is not None and not at.dataframe
    assert auth.SESSION_KEY not in at.session_state


def test_figure_export_is_svg_of_the_blinded_figure(demo_snapshot):
    """The SVG download of a blinded figure is a real SVG rendered by kaleido + chromium and holds
    no arm label."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is absent: static figure export needs it")
    from dashboard import figures, state
    view = state._blinded_view(str(demo_snapshot / "clinical"), "blinded", "blinded", "h", "steering")
    fig = figures.fig_cumulative(view)
    svg = state.figure_bytes(("blinded", "blinded", view.snapshot_hash, (), False, "test"), fig, "svg")
    text = svg.decode()
    assert text.startswith("<svg") and "Cumulative randomised" in text
    assert not any(t in text for t in ARM_TOKENS)
    assert state.figure_bytes(("blinded", "blinded", view.snapshot_hash, (), False, "test"), None, "svg") is svg
