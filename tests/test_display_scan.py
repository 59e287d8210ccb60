"""Every dashboard page, as every role, shows display tables only (analysis.display): no cell
reading ``None``, ``NaT``, ``nan`` or ``<NA>``, no snake_case header and no method code, in any
dataframe of any page (tabs and expanders included: AppTest renders them all)."""
from __future__ import annotations

import pytest

from analysis.display import list_display_problems
from dashboard import auth
from dashboard.pages_registry import pages_for
from tests.test_dashboard_apptest import _deployment, sign_in, visit   # noqa: F401  (the demo deployment)


@pytest.mark.parametrize("role", auth.ROLES)
def test_every_page_shows_display_tables_only(role):
    at = sign_in(role)
    problems, scanned = [], 0
    for page in pages_for(role):
        visit(at, page.file)
        for frame in at.dataframe:
            scanned += 1
            problems += [f"{page.file}: {p}" for p in list_display_problems(frame.value)]
    assert scanned, f"{role}: no table shown"
    assert problems == [], f"{role}: {problems[:20]}"
