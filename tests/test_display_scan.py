"""Every dashboard page, as every role, and every rendered report shows display tables only
(analysis.display): no cell reading ``None``, ``NaT``, ``nan`` or ``<NA>``, no snake_case header
and no method code, in any dataframe of any page (every tab, each opened in turn: tabs are lazy; expanders
included: AppTest renders them) or any table of a report's HTML."""
from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis.display import METHOD_LABELS, is_snake_case, list_display_problems
from dashboard import auth
from dashboard.pages_registry import pages_for
from tests.test_dashboard_apptest import _deployment, sign_in, visit_all_tabs   # noqa: F401  (the demo deployment)
from tests.test_reports import rendered   # noqa: F401  (the reports, rendered: the shared session renders)

MACHINE_VALUES = {"None", "NaT", "nan", "NaN", "<NA>"}


def is_machine_header(header: str) -> bool:
    """snake_case, or a column name printed as is (``site id``: the reports' pipe tables turn
    ``_`` into spaces): human headers start with a capital, or are one letter (n, p)."""
    return is_snake_case(header) or (len(header) > 1 and header[:1].islower())


@pytest.mark.parametrize("role", auth.ROLES)
def test_every_page_shows_display_tables_only(role):
    at = sign_in(role)
    problems, scanned = [], 0
    for page in pages_for(role):
        for frame in visit_all_tabs(at, page.file).dataframe:       # every tab
            scanned += 1
            problems += [f"{page.file}: {p}" for p in list_display_problems(frame.value)]
            problems += [f"{page.file}: machine header {h!r}" for h in frame.value.columns if is_machine_header(str(h))]
    assert scanned, f"{role}: no table shown"
    assert problems == [], f"{role}: {problems[:20]}"


# --------------------------------------------------------------------------- reports' HTML
class _Tables(HTMLParser):
    """Headers and cells of every HTML table: [(headers, rows)]."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._in = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("th", "td") and self.tables:
            self._cell, self._in = [], tag

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            headers, rows = self.tables[-1]
            (headers if self._in == "th" else rows[-1]).append(text)
            self._cell = None


def list_html_table_problems(html: str) -> list[str]:
    """``list_display_problems`` for every table of a rendered report."""
    parser = _Tables()
    parser.feed(html)
    problems = []
    for i, (headers, rows) in enumerate(parser.tables):
        problems += [f"table {i + 1}: machine header {h!r}" for h in headers if is_machine_header(h)]
        for row in rows:
            problems += [f"table {i + 1}: {c!r}" for c in row if c in MACHINE_VALUES or c in METHOD_LABELS]
    return problems


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
def test_every_report_html_shows_display_tables_only(rendered):
    _out, paths, _audit, _messages = rendered
    problems, scanned = [], 0
    for key, files in paths.items():
        for path in [Path(p) for p in files if Path(p).suffix == ".html"]:
            scanned += 1
            problems += [f"{key} {Path(path).name}: {p}" for p in list_html_table_problems(Path(path).read_text())]
    assert scanned >= 6
    assert problems == [], problems[:30]
