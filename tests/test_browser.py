"""The whole app in a real browser: `streamlit run dashboard/app.py` driven by Debian chromium.

Signs in as steering (blinded) and as the DSMB (unblinded), opens every page from the navigation,
checks what it shows and saves a screenshot of each to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard.pages_registry import pages_for

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser tests",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_server(tmp: Path, env_extra: dict | None = None, n_subjects: int = 80, allocation: bool = True,
               data: Path | None = None):
    """`streamlit run dashboard/app.py` on a free port (the demo instance, default study) over
    ``data``, or else a small demo trial written under ``tmp``; logs go to ``tmp``. Yields
    ``(url, audit_log, server_log, proc)``."""
    from data_access.demo import make_demo
    if data is None:
        data = tmp / "trial"
        if not (data / "clinical" / "manifest.json").exists():
            make_demo(data, n_subjects=n_subjects)
    port = _free_port()
    env = {**os.environ, "MIROCALS_DATA": str(data), "MIROCALS_AUDIT_LOG": str(tmp / "audit.log")}
    for key in ("MIROCALS_DATABASE_LOCKED", "MIROCALS_INSTANCE", "MIROCALS_IDLE_TIMEOUT", "MIROCALS_STUDY",
                "MIROCALS_ALLOCATION"):
        env.pop(key, None)
    if allocation:
        env["MIROCALS_ALLOCATION"] = str(data / "allocation")
    # no start-up warm-up (tests/test_speed_paths.py tests it): it would compete with the test for
    # the CPU; a test that wants it passes MIROCALS_WARMUP in env_extra
    env["MIROCALS_WARMUP"] = "0"
    env.update(env_extra or {})
    env = {k: v for k, v in env.items() if v is not None}
    server_log = tmp / "server.log"
    log_file = open(server_log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
                             "--server.port", str(port), "--server.address", "127.0.0.1"],
                            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not start:\n" + server_log.read_text(errors="replace")[-3000:])
        yield url, tmp / "audit.log", server_log, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A small demo trial served by `streamlit run` on a free port."""
    with run_server(tmp_path_factory.mktemp("browser")) as (url, audit_log, server_log, _):
        yield url, audit_log, server_log


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def wait_idle(page, timeout=60_000):
    """Wait until Streamlit has finished the current run."""
    page.wait_for_timeout(150)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout)
    page.wait_for_timeout(150)


def click_tab(page, tab, timeout=60_000):
    """Click a tab (a locator) and wait until its panel is drawn: tabs are lazy (issue 13), a click
    reruns the page and draws the open tab only."""
    tab.click()
    deadline = time.monotonic() + timeout / 1000
    while True:
        panel = page.get_by_role("tabpanel")          # the visible one: the open tab's
        if tab.get_attribute("aria-selected") == "true" and panel.count() and panel.first.inner_text().strip():
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"tab {tab.inner_text()!r} was not drawn within {timeout / 1000:.0f} s")
        page.wait_for_timeout(100)
    wait_idle(page, timeout)


def sign_in(page, url, role, ready="Data cut-off"):
    """Sign in with the demo account of ``role``; wait for ``ready`` (a text the first page shows)."""
    page.goto(url)
    page.get_by_role("textbox", name="User name").fill(role)
    page.get_by_role("textbox", name="Password").fill(f"demo-{role}")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(ready).first.wait_for(timeout=60_000)
    wait_idle(page)


# first tabs holding no figure: Safety's (AEs), Survival's for the DSMB (the effect summary)
FIRST_TABS_WITHOUT_FIGURE = {"Adverse events", "Treatment effect"}
PAGE_HEADINGS = {"Baseline": "Baseline characteristics", "Stratum balance": "Stratum balance"}


def open_page(page, spec, timeout=60_000) -> float:
    """Click a page in the navigation; wait for its heading, a table's CSV download and (when the
    page has figures) a drawn plotly chart. Returns the seconds it took."""
    from dashboard.figures import PAGE_FIGURES
    start = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text(spec.title, exact=True).click()
    page.get_by_role("heading", name=PAGE_HEADINGS.get(spec.title, spec.title)).first.wait_for(timeout=timeout)
    page.get_by_role("button", name="Download CSV").first.wait_for(timeout=timeout)
    selected = page.get_by_role("tab", selected=True)
    first_tab = selected.first.inner_text().strip() if selected.count() else None
    if PAGE_FIGURES.get(spec.url) and first_tab not in FIRST_TABS_WITHOUT_FIGURE:   # lazy tabs: the others'
        # figures are drawn when their tab is opened
        page.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=timeout)
    wait_idle(page, timeout)
    return time.perf_counter() - start


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_every_page_in_a_real_browser(server, browser, role):
    url, audit_log, server_log = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, url, role)
    for spec in pages_for(role):
        open_page(page, spec)
        if role == "steering":                      # nothing about the allocation in the address
            assert not any(t.lower() in page.url.lower() for t in ARM_TOKENS), page.url
        text = page.inner_text("body")
        assert "Traceback" not in text and "Error" not in text.split("Data cut-off")[0]
        if role == "steering":
            assert "UNBLINDED" not in text and "UNBLINDED" not in page.title()
            assert not any(t in text for t in ARM_TOKENS), spec.title
        else:
            assert "UNBLINDED - CONFIDENTIAL" in text and page.title().startswith("UNBLINDED")
            assert "UNBLINDED" in page.get_by_test_id("stSidebar").inner_text()
            # the banner stays on screen at the bottom of a scrolled page
            page.mouse.wheel(0, 5000)
            page.wait_for_timeout(300)
            box = page.get_by_test_id("unblinded-banner").bounding_box()
            assert box is not None and 0 <= box["y"] < 60, (spec.title, box)
        page.screenshot(path=str(SHOTS / f"{role}_{spec.url}.png"), full_page=True)
    logged = server_log.read_text(errors="replace")
    assert "Traceback" not in logged
    if role == "steering":
        assert "Audit log" not in page.get_by_test_id("stSidebarNav").inner_text()
        # the server's own output during the blinded session (the first one) names no arm
        assert not any(t in logged for t in ARM_TOKENS + ("TREG",)), logged[-2000:]
    else:
        assert '"role": "dsmb"' in audit_log.read_text()
    page.close()


def test_unknown_or_restricted_url_shows_sign_in_first(server, browser):
    url = server[0]
    page = browser.new_page()
    page.goto(f"{url}/audit")
    page.get_by_role("textbox", name="User name").wait_for(timeout=60_000)
    assert "Data cut-off" not in page.inner_text("body")
    page.close()


def test_demo_sign_in_page_says_it_is_one_mixed_instance(server, browser):
    page = browser.new_page()
    page.goto(server[0])
    page.get_by_role("textbox", name="User name").wait_for(timeout=60_000)
    text = page.inner_text("body")
    assert "one mixed demo instance" in text and "Production runs two instances" in text
    page.close()


def test_blinded_instance_with_an_allocation_serves_only_an_error_page(browser, tmp_path):
    # the allocation sits beside the data (MIROCALS_ALLOCATION not even set): refused all the same
    with run_server(tmp_path, {"MIROCALS_INSTANCE": "blinded"}, n_subjects=40, allocation=False) as (url, *_):
        page = browser.new_page()
        page.goto(url)
        page.get_by_text("refuses to serve data").wait_for(timeout=60_000)
        text = page.inner_text("body")
        assert "readable from the data path" in text and "Sign in" not in text
        assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"
        page.close()


def test_tables_show_at_their_natural_height_up_to_a_screen(browser, tmp_path):
    """Table 1 is shown whole, at its natural height (every row in view, no box of 10 rows to
    scroll inside); a table longer than a screen would be a screen high and scroll inside."""
    from analysis.outputs import build_table, display_table
    from data_access.demo import make_demo
    from data_access.views import open_view
    from dashboard.widgets import SCREEN_ROWS, natural_height
    data = tmp_path / "trial"
    make_demo(data, n_subjects=80)
    with open_view(data, "dsmb", allocation_dir=data / "allocation") as view:
        rows = len(display_table("baseline", build_table("baseline", view), view))
    assert 10 < rows <= SCREEN_ROWS
    with run_server(tmp_path, data=data) as (url, _audit, _log, _proc):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, url, "dsmb")
        open_page(page, next(s for s in pages_for("dsmb") if s.url == "baseline"))
        box = page.get_by_test_id("stDataFrame").first.bounding_box()
        assert box is not None and abs(box["height"] - natural_height(rows)) <= 4, (box, natural_height(rows))
        page.close()
