"""Downloads bound to the session (issue 10 item 3), in a real browser and over plain HTTP.

The DSMB downloads a by-arm CSV in Debian chromium; then every address the page fetched, the
blob's path, Streamlit's old content-hash media link for those exact bytes, and
``/_stcore/metrics`` are requested with no cookie, before and after sign-out: none gives the
bytes. A click after the idle timeout delivers nothing and is audited as refused.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from test_browser import browser, run_server, sign_in, wait_idle  # noqa: F401  (fixture; skips without chromium)



def _get(url: str) -> tuple[int, bytes]:
    """A plain HTTP GET with no cookie."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _events(audit_log: Path, action: str) -> list[dict]:
    return [e for e in map(json.loads, audit_log.read_text().splitlines()) if e["action"] == action]


def _open(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("button", name="Download CSV").first.wait_for(timeout=60_000)
    wait_idle(page)


@pytest.mark.parametrize("path, base, blocked", [
    ("/_stcore/metrics", "", True), ("/_stcore/metrics/", "", True), ("//_stcore//metrics", "", True),
    ("/_stcore/./metrics", "", True), ("/static/../_stcore/metrics", "", True), ("/media/abc.csv", "", True), ("/media", "", True),
    ("/_stcore/upload_file/s/f", "", True), ("/_stcore/agent/openapi.json", "", True),
    ("/trial/_stcore/metrics", "trial", True), ("/trial/media/x.csv", "/trial/", True),
    ("/_stcore/health", "", False), ("/_stcore/stream", "", False), ("/", "", False),
    ("/static/js/index.js", "", False), ("/baseline", "", False), ("/trial/_stcore/health", "trial", False),
])
def test_unused_endpoints_are_blocked(path, base, blocked):
    from dashboard.server import is_blocked
    assert is_blocked(path, base) is blocked


@pytest.mark.browser
def test_a_dsmb_download_cannot_be_fetched_without_the_session(browser, tmp_path):
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id
    with run_server(tmp_path) as (url, audit_log, _, _proc):
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        sign_in(page, url, "dsmb")
        _open(page, "Baseline")
        with page.expect_download(timeout=30_000) as info:
            page.get_by_role("button", name="Download CSV").first.click()
        download = info.value
        data = Path(download.path()).read_bytes()
        name = download.suggested_filename
        assert b"Low-dose IL-2" in data and name.endswith(".csv") and "unblinded" in name
        # the bytes came over the session's websocket: the download is a blob of the page, no URL
        assert download.url.startswith("blob:")
        served = _events(audit_log, "download")
        assert [(e["user"], e["role"], e["detail"]) for e in served] == [("dsmb", "dsmb", name)]

        blob_path = urllib.parse.urlparse(download.url.removeprefix("blob:")).path
        old_link = f"/media/{_calculate_file_id(data, 'text/csv', name)}.csv"
        candidates = sorted({u for u in requested if u.startswith(url + "/")}
                            | {url + blob_path, url + old_link, url + "/media/" + name})

        def nothing_leaks():
            for candidate in candidates:
                status, body = _get(candidate)
                assert data not in body and b"Low-dose IL-2" not in body, candidate
            assert _get(url + old_link)[0] == 404
            assert _get(url + "/_stcore/metrics")[0] == 404

        nothing_leaks()                                     # while the DSMB is signed in
        # a second click delivers again (a new delivery, audited again), never a link
        wait_idle(page)
        with page.expect_download(timeout=30_000) as info:
            page.get_by_role("button", name="Download CSV").first.click()
        assert Path(info.value.path()).read_bytes() == data and info.value.url != download.url
        assert len(_events(audit_log, "download")) == 2
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("textbox", name="User name").wait_for(timeout=30_000)
        nothing_leaks()                                     # and after sign-out
        assert len(_events(audit_log, "download")) == 2     # the plain fetches served nothing
        context.close()


@pytest.mark.browser
def test_a_click_after_the_idle_timeout_serves_nothing(browser, tmp_path):
    # 15 s: signing in on a cold server (its first page) takes 4-8 s on a loaded 2-core machine, and
    # the Baseline click must come before the session expires
    with run_server(tmp_path, {"MIROCALS_IDLE_TIMEOUT": "15"}, n_subjects=40) as (url, audit_log, _, _proc):
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        downloads = []
        page.on("download", lambda d: downloads.append(d))
        sign_in(page, url, "dsmb")
        _open(page, "Baseline")
        page.wait_for_timeout(16_000)
        page.get_by_role("button", name="Download CSV").first.click()
        page.get_by_role("textbox", name="User name").wait_for(timeout=30_000)
        page.wait_for_timeout(1_000)
        assert downloads == [] and page.locator("iframe").count() == 0
        assert "expired" in page.inner_text("body")
        refused = _events(audit_log, "download-refused")
        assert len(refused) == 1 and refused[0]["user"] == "dsmb" and "expired" in refused[0]["detail"]
        assert _events(audit_log, "download") == []
        context.close()
