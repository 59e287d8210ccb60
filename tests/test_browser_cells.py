"""Minimum cell size in a real browser (issue 10, item 2): an investigator sets Site FR08 + Onset
Bulbar in the sidebar (one subject of the default demo) and visits every page; each page says why
it shows counts only and shows no subject identifier, no table, no figure and no download.
Then Site FR08 alone (six subjects) shows the outputs again.

`streamlit run dashboard/app.py` on the default demo trial (220 subjects), driven by Debian
chromium through playwright, started as in ``test_browser.py``.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from dashboard.pages_registry import pages_for
from test_browser import SHOTS, browser, run_server, sign_in, wait_idle  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser
ID_PATTERN = re.compile(r"\b(?:(?:MIR|SCR)-)?[A-Z]{2}\d{2}-\d{4}\b")   # USUBJID, SCRNID, SUBJID
NOTICE = "fewer than the minimum of 5 for blinded outputs"
HEADINGS = {"Baseline": "Baseline characteristics"}


@pytest.fixture(scope="module")
def demo_server(demo_snapshot, tmp_path_factory):
    """The default demo trial served by `streamlit run` on a free port (the mixed demo instance)."""
    with run_server(tmp_path_factory.mktemp("browser_cells"), data=demo_snapshot) as (url, _audit, server_log, _):
        yield url, server_log


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the sidebar multiselect labelled ``label`` (type it, press Enter)."""
    box = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").filter(has_text=label)
    box.locator("input").click()
    page.keyboard.type(option)
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()
    page.keyboard.press("Escape")
    wait_idle(page)


def _clear(page, label: str) -> None:
    box = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").filter(has_text=label)
    box.get_by_role("button", name=re.compile("Clear all", re.I)).first.click()
    wait_idle(page)


def _open(page, spec, wait_for: str) -> str:
    page.get_by_test_id("stSidebarNav").get_by_text(spec.title, exact=True).click()
    page.get_by_role("heading", name=HEADINGS.get(spec.title, spec.title)).first.wait_for(timeout=60_000)
    page.get_by_text(wait_for).first.wait_for(timeout=60_000)
    wait_idle(page)
    return page.inner_text("body")


def test_small_filter_shows_counts_only_in_a_real_browser(demo_server, browser, demo_snapshot):  # noqa: F811
    url, server_log = demo_server
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    group = adsl[(adsl["SITEID"] == "FR08") & (adsl["ONSET"] == "Bulbar")]
    assert len(group) == 1
    screening = pd.read_parquet(demo_snapshot / "clinical" / "screening.parquet")
    ids = (set(group["USUBJID"]) | set(group["SUBJID"])
           | set(screening.loc[screening["USUBJID"].isin(group["USUBJID"]), "SCRNID"]))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, url, "investigator")
    _pick(page, "Site", "FR08")
    _pick(page, "Onset", "Bulbar")
    for spec in pages_for("investigator"):
        text = _open(page, spec, "This filter selects 1 participant")
        assert NOTICE in text and "filtered: FR08, Bulbar" in text, spec.title
        assert "the filter selects 1 participant" in text, spec.title
        assert "The filter selects 1 participant (5 screened) · counts only" in \
            page.get_by_test_id("stSidebar").inner_text(), spec.title
        assert not ID_PATTERN.search(text), (spec.title, ID_PATTERN.search(text))
        assert not any(i in text for i in ids), spec.title
        assert page.get_by_test_id("stDataFrame").count() == 0, spec.title
        assert page.locator(".js-plotly-plot").count() == 0, spec.title
        assert page.get_by_role("button", name=re.compile("^Download")).count() == 0, spec.title
        assert page.get_by_test_id("stDownloadButton").count() == 0, spec.title
        assert "Traceback" not in text
        page.screenshot(path=str(SHOTS / f"investigator_small_cell_{spec.url}.png"), full_page=True)
    # one subject more than k: Site FR08 alone (six subjects) shows the outputs
    _clear(page, "Onset")
    text = _open(page, next(s for s in pages_for("investigator") if s.url == "safety"), "Download CSV")
    assert NOTICE not in text and "the filter selects 6 participants" in text
    assert page.get_by_test_id("stDataFrame").count() > 0
    assert "Traceback" not in server_log.read_text(errors="replace")
    page.close()
