"""The Participant page in a real browser (Debian chromium): a blinded insider opens the profile of
the participant with the most Treg records and finds no arm and no arm-revealing value on the page,
in the address or in the timeline's CSV; the DSMB sees the arm and the Treg values."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.test_browser import ARM_TOKENS, CHROMIUM, run_server, sign_in, wait_idle

pytestmark = pytest.mark.browser
REVEALING = ("Regulatory T", "TREG", "Eosinophil", "Injection site", "Influenza like")


def _subject(data) -> str:
    lab = pd.read_parquet(data / "clinical" / "adlb.parquet", columns=["USUBJID", "PARAMCD"])
    return lab[lab["PARAMCD"] == "TREG"]["USUBJID"].value_counts().index[0]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def test_participant_profile_in_a_real_browser(browser, tmp_path):
    with run_server(tmp_path) as (url, audit_log, server_log, _):
        subject = _subject(tmp_path / "trial")
        for role in ("steering", "dsmb"):
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            sign_in(page, url, role)
            page.get_by_test_id("stSidebarNav").get_by_text("Participant", exact=True).click()
            page.get_by_role("heading", name="Participant profile").first.wait_for(timeout=60_000)
            wait_idle(page)
            page.get_by_test_id("stSelectbox").first.click()
            page.keyboard.type(subject)
            page.get_by_role("option", name=subject).click()
            # the table is drawn on a canvas; its cells are in the DOM for screen readers (hidden)
            page.get_by_text("Cycle 1:").first.wait_for(state="attached", timeout=60_000)
            wait_idle(page)
            assert f"subject={subject}" in page.url
            text = page.locator("body").text_content()           # shown text and the grid's cells
            assert "Randomised" in text and "ALSFRS-R" in text
            with page.expect_download() as info:
                page.get_by_role("button", name="Download CSV").first.click()
            csv = open(info.value.path(), encoding="utf-8").read()
            assert csv.startswith("date,day,category,event,detail")
            page.screenshot(path=str(tmp_path / f"profile_{role}.png"), full_page=True)
            if role == "steering":
                for token in ARM_TOKENS + REVEALING:
                    assert token not in text and token not in csv and token.lower() not in page.url.lower(), token
            else:
                assert "Regulatory T cells (count)" in text and "Regulatory T cells (count)" in csv
                assert f"participant {subject}" in audit_log.read_text()
            page.close()
        assert "Traceback" not in server_log.read_text(errors="replace")
