"""What each page opens with, in a real browser (issue 13): `streamlit run dashboard/app.py` driven
by Debian chromium, one server per case, one browser page per role.

- every page, as steering (blinded) and as the DSMB (unblinded): its first tab (selected) and the
  first thing in it (Recruitment: the projection sentence, or why there is none, above the
  enrolment-vs-target chart; Survival: the treatment effect for the DSMB, the pooled KM for
  steering; Safety: the adverse-event table);
- one damaged Parquet file: the Safety page names it, no Streamlit error page ("Ask Google"), the
  Recruitment page still works;
- the DSMB on a deployment without an allocation: every page says so, naming MIROCALS_ALLOCATION.
"""
from __future__ import annotations

import shutil

import pytest

from dashboard.pages_registry import pages_for
from tests.test_browser import ARM_TOKENS, browser, open_page, run_server, sign_in, wait_idle  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

# page url -> {role: (first tab, what comes first in it: ("chart", its title) or ("text", a table's title))}
FIRST = {
    "recruitment": {r: ("Enrolment vs target", ("chart", "Randomised against target by site")) for r in ("steering", "dsmb")},
    "alsfrs": {r: ("Change from baseline", ("chart", "ALSFRS-R")) for r in ("steering", "dsmb")},
    "survival": {"steering": ("Kaplan-Meier", ("chart", "Overall survival")),
                 "dsmb": ("Treatment effect", ("text", "Treatment effect estimates"))},
    "safety": {r: ("Adverse events", ("text", "Treatment-emergent adverse events by system organ class"))
               for r in ("steering", "dsmb")},
    "balance": {r: ("By site and stratum", ("chart", "Randomised by stratum")) for r in ("steering", "dsmb")},
}
ERROR_PAGE = ("Ask Google", "Ask ChatGPT", "This app has encountered an error", "Traceback")


def _go(page, spec) -> None:
    """Open a page from the navigation and wait for its run to end (for pages whose first tab may
    hold no table: ``test_browser.open_page`` waits for a CSV button)."""
    page.get_by_test_id("stSidebarNav").get_by_text(spec.title, exact=True).click()
    page.get_by_role("heading", name=spec.title).first.wait_for(timeout=60_000)
    page.get_by_role("tab").first.wait_for(timeout=60_000)
    wait_idle(page)


def _main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def _first_tab(page):
    tab = page.get_by_role("tab").first
    return tab.inner_text().strip(), tab.get_attribute("aria-selected")


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("pages")) as (url, _audit, server_log, _proc):
        yield url, server_log


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_every_page_opens_with_what_its_reader_came_for(demo_server, browser, role):
    url, server_log = demo_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, url, role)
    for spec in pages_for(role):
        if spec.url not in FIRST and spec.url != "baseline":     # pages owned elsewhere (quality, audit, ...)
            continue
        open_page(page, spec)
        text = _main_text(page)
        assert not any(e in text for e in ERROR_PAGE), spec.title
        if spec.url == "baseline":                        # one table: Table 1, at the top
            assert page.get_by_test_id("stDataFrame").first.is_visible()
            assert text.index("Baseline characteristics") < text.index("Download CSV")
            continue
        want, (kind, first) = FIRST[spec.url][role]
        label, selected = _first_tab(page)
        assert (label, selected) == (want, "true"), (spec.title, label)
        labels = [t.strip() for t in page.get_by_role("tab").all_inner_texts()]
        assert len(labels) == len(set(labels)), (spec.title, labels)        # one row, no repeated name
        panel = page.get_by_role("tabpanel").first
        if kind == "chart":
            title = panel.locator(".js-plotly-plot .gtitle").first
            title.wait_for(timeout=60_000)
            assert title.text_content().startswith(first), (spec.title, title.text_content())
        else:
            assert panel.inner_text().lstrip().startswith(first), (spec.title, panel.inner_text()[:300])
        if spec.url == "recruitment":
            # the sentence heads the page, above the tabs: this demo is cut after recruitment ended
            sentence = "No recruitment projection: recruitment ended on 2019-09-30 (study file)"
            assert sentence in text and text.index(sentence) < text.index("Enrolment vs target")
            assert "participants were randomised by the cut-off" in text
            assert page.locator(".js-plotly-plot").first.is_visible()
        if spec.url == "survival" and role == "dsmb":
            # the decision alert (when this small demo crosses a boundary; the AppTest of the full
            # demo checks one is there), then the effect summary
            for alert in page.get_by_test_id("stAlert").all_inner_texts():
                if "See the Interim decision tab" in alert:
                    assert text.index(alert.strip()[:40]) < text.index("Treatment effect estimates")
            assert "Log-rank test" in panel.inner_text()
        if spec.url == "balance":                         # the table first, then the heatmap's tab
            assert text.index("Randomised by site and stratum") < text.index("By site and stratum")
            assert "'—': a stratum the site cannot have" in text
        if role == "steering":
            assert not any(t in text for t in ARM_TOKENS), spec.title
    assert "Traceback" not in server_log.read_text(errors="replace")
    page.close()


def test_a_damaged_file_is_named_and_the_other_pages_work(browser, tmp_path):
    from data_access.demo import make_demo
    data = tmp_path / "trial"
    make_demo(data, n_subjects=80)
    path = data / "clinical" / "adae.parquet"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with run_server(tmp_path, data=data) as (url, _audit, _log, _proc):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, url, "dsmb")
        specs = {s.url: s for s in pages_for("dsmb")}
        _go(page, specs["safety"])
        text = _main_text(page)
        assert not any(e in text for e in ERROR_PAGE), text[:500]
        assert str(path) in text and "damaged or incomplete" in text
        open_page(page, specs["recruitment"])                   # a page that does not need adae
        text = _main_text(page)
        assert not any(e in text for e in ERROR_PAGE) and str(path) not in text
        title = page.get_by_role("tabpanel").first.locator(".js-plotly-plot .gtitle").first
        assert title.text_content().startswith("Randomised against target by site")
        page.close()


def test_a_dsmb_without_allocation_is_told_on_every_page(browser, tmp_path):
    from data_access.demo import make_demo
    made = tmp_path / "made"
    make_demo(made, n_subjects=80)
    data = tmp_path / "trial"
    shutil.copytree(made / "clinical", data / "clinical")      # clinical only: no allocation anywhere
    with run_server(tmp_path, data=data, allocation=False) as (url, _audit, _log, _proc):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, url, "dsmb")
        for spec in pages_for("dsmb"):
            if spec.url not in FIRST and spec.url != "baseline":
                continue
            open_page(page, spec)
            text = _main_text(page)
            assert "No allocation configured: the environment variable MIROCALS_ALLOCATION is not set" in text
            assert "no allocation configured" in text and "UNBLINDED - CONFIDENTIAL" not in text
            assert not any(e in text for e in ERROR_PAGE), spec.title
            assert not any(t in text for t in ARM_TOKENS), spec.title
        page.close()


def test_a_data_folder_that_does_not_exist_is_named_on_every_page(browser, tmp_path):
    """MIROCALS_DATA pointing nowhere: every page says which folder, which variable set it, what a
    snapshot folder holds and what to do, in the app's words (no Streamlit error page); the sidebar
    offers no filter and no arm masking, since there is nothing to filter."""
    missing = tmp_path / "no" / "such" / "folder"
    with run_server(tmp_path, data=missing, allocation=False) as (url, _audit, server_log, _proc):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, url, "dsmb", ready="No data to show")
        seen = 0
        for spec in pages_for("dsmb"):
            if spec.url not in FIRST and spec.url not in ("baseline", "quality"):
                continue
            page.get_by_test_id("stSidebarNav").get_by_text(spec.title, exact=True).click()
            wait_idle(page)
            page.get_by_text("No data to show").first.wait_for(timeout=60_000)
            assert page.url.rstrip("/").endswith(spec.url) or spec.url == pages_for("dsmb")[0].url, page.url
            text = _main_text(page)
            assert (f"the data folder {missing} (set by the environment variable MIROCALS_DATA) does not exist"
                    in " ".join(text.split())), (spec.title, text[:400])
            assert "clinical/manifest.json" in text and "restart the dashboard" in text
            assert not any(e in text for e in ERROR_PAGE), spec.title
            sidebar = page.get_by_test_id("stSidebar").inner_text()
            assert "Country" not in sidebar and "Mask arms" not in sidebar, spec.title
            seen += 1
        assert seen >= 6
        assert "Traceback" not in server_log.read_text(errors="replace")
        page.close()
