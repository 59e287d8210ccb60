"""The data manager's Data quality page in a real browser (issue 13): the missed and overdue visits
filtered to one site and one status show exactly that site's visits of that status (and the CSV
download holds the same rows), and a site's query list downloads as XLSX holding that site's
validation problems, each message whole.

`streamlit run dashboard/app.py` on a messy demo trial cut during follow-up (planted data problems,
missed and overdue visits), driven by Debian chromium through playwright, started as in
``test_browser.py``. Signed in as steering (blinded): nothing on the page or in the files names an
arm.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from test_browser import ARM_TOKENS, SHOTS, browser, click_tab, run_server, sign_in, wait_idle  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser
CUT = "2019-06-30"


@pytest.fixture(scope="module")
def messy_trial(tmp_path_factory) -> Path:
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("quality_browser") / "trial"
    make_demo(root, cut=CUT, n_subjects=120, messy=True)
    return root


@pytest.fixture(scope="module")
def quality_server(messy_trial, tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("quality_server"), data=messy_trial) as (url, audit_log, _log, _):
        yield url, audit_log


def _visible(locator):
    return locator.filter(visible=True)


def _pick(page, widget: str, label: str, option: str) -> None:
    """Choose ``option`` in the visible main-area widget (``stMultiSelect`` / ``stSelectbox``)
    labelled ``label``."""
    box = _visible(page.get_by_test_id("stMain").get_by_test_id(widget).filter(has_text=label)).first
    box.locator("input").click()
    page.keyboard.type(option)
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()
    if widget == "stMultiSelect":
        page.keyboard.press("Escape")
    wait_idle(page)


def _grid_rows(page, n: int | None = None) -> list[list[str]]:
    """The rows of the visible dataframe (its accessible grid; every row of a short table); with
    ``n``, once it shows ``n`` rows (the grid is redrawn a moment after the run ends), or as it is
    after 15 s."""
    def rows_now():
        grid = _visible(page.get_by_test_id("stDataFrame")).first
        rows = grid.locator('tr:has([role="gridcell"])')
        return [rows.nth(i).locator('[role="gridcell"]').all_inner_texts() for i in range(rows.count())]
    rows = rows_now()
    for _ in range(60):
        if n is None or len(rows) == n:
            break
        page.wait_for_timeout(250)
        rows = rows_now()
    return rows


def _download(page, button: str):
    with page.expect_download(timeout=60_000) as info:
        _visible(page.get_by_role("button", name=button)).first.click()
    download = info.value
    data = Path(download.path()).read_bytes()
    wait_idle(page)
    return download.suggested_filename, data


def test_missed_visit_filter_and_site_query_export_in_a_real_browser(quality_server, browser, messy_trial):  # noqa: F811
    import openpyxl
    from analysis.outputs import build_table
    from data_access.validate import validate_blinded
    from data_access.views import open_view
    url, audit_log = quality_server
    listing = build_table("missed-visits", open_view(messy_trial / "clinical", "steering"))
    # a site with both missed and overdue visits, so that the status filter matters, and its most
    # frequent status
    counts = listing.groupby(["site", "status"]).size().unstack(fill_value=0)
    both = counts[(counts["missed"] > 0) & (counts["overdue"] > 0)]
    assert len(both), "the messy interim demo should have a site with missed and overdue visits"
    site = both.max(axis=1).idxmax()
    status = "missed" if both.loc[site, "missed"] >= both.loc[site, "overdue"] else "overdue"
    expected = listing[(listing["site"] == site) & (listing["status"] == status)]

    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sign_in(page, url, "steering")
    page.get_by_test_id("stSidebarNav").get_by_text("Data quality", exact=True).click()
    tab = page.get_by_role("tab", name="Missed and overdue visits")
    tab.wait_for(timeout=60_000)
    wait_idle(page)
    click_tab(page, tab)
    assert len(_grid_rows(page, min(len(listing), 30))) == min(len(listing), 30)          # unfiltered: every row (first screen)
    _pick(page, "stMultiSelect", "Site", site)
    _pick(page, "stMultiSelect", "Status", status.capitalize())
    _visible(page.get_by_text(f"{len(expected)} of {len(listing)} visits")).first.wait_for(timeout=30_000)
    rows = _grid_rows(page, len(expected))
    assert [(r[0], r[2], r[3], r[6]) for r in rows] == [
        (site, s, v, status.capitalize()) for s, v in zip(expected["USUBJID"], expected["AVISIT"])]
    page.screenshot(path=str(SHOTS / "quality_missed_visits_filtered.png"), full_page=True)
    name, data = _download(page, "Download CSV")
    csv = pd.read_csv(io.BytesIO(data))
    assert "missed-visits" in name and site.lower() in name.lower()
    assert list(csv["USUBJID"]) == list(expected["USUBJID"]) and set(csv["status"]) == {status}
    assert list(csv.columns) == list(listing.columns)                 # the machine table, filtered

    # the query list of one site, as XLSX
    problems = validate_blinded(messy_trial)
    q_site = problems.loc[problems["site"] != "", "site"].value_counts().idxmax()
    mine = problems[problems["site"] == q_site]
    click_tab(page, page.get_by_role("tab", name="Validation problems"))
    _pick(page, "stMultiSelect", "Site", q_site)                      # the problems filtered to the site
    _visible(page.get_by_text(f"{len(mine)} of {len(problems)} problems")).first.wait_for(timeout=30_000)
    table = _visible(page.get_by_test_id("stTable")).first
    for _ in range(60):                                               # redrawn a moment after the run
        if table.locator("tbody tr").count() == len(mine):
            break
        page.wait_for_timeout(250)
    text = table.inner_text()
    assert table.locator("tbody tr").count() == len(mine)
    assert all(m in text for m in mine["message"])                    # every message whole
    assert "_" not in " ".join(table.locator("tbody tr td:nth-child(5)").all_inner_texts())   # rules in words
    _pick(page, "stSelectbox", "Site", q_site)
    _visible(page.get_by_text(f"{len(mine)} problem(s) at {q_site}")).first.wait_for(timeout=30_000)
    wait_idle(page)
    name, data = _download(page, "Download queries (XLSX)")
    assert name == f"mirocals_queries_{q_site}_blinded_{CUT}.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Queries"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0] == ["Site", "Subject", "Dataset", "Column", "Rule", "Value", "Problem", "Severity"]
    assert len(rows) - 1 == len(mine) and {r[0] for r in rows[1:]} == {q_site}
    assert sorted(r[6] for r in rows[1:]) == sorted(mine["message"])
    page.screenshot(path=str(SHOTS / "quality_validation_site.png"), full_page=True)
    body = page.inner_text("body")
    assert not [t for t in ARM_TOKENS if t in body + " ".join(str(c) for r in rows for c in r)]
    served = [line for line in audit_log.read_text().splitlines() if '"download"' in line]
    assert any(f"mirocals_queries_{q_site}" in line for line in served)
    context.close()
