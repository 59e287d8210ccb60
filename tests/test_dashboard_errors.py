"""Errors that name their cause (issue 13), headless (AppTest), with real files:

- one damaged Parquet file (the demo's adae.parquet truncated to half): every page that does not
  need it still works; the outputs that need it say which file cannot be read and what to do; no
  page shows Streamlit's redacted error (with its "Ask Google" links) or a traceback;
- an unblinded role (DSMB) on a deployment with no allocation configured: every page says so,
  naming MIROCALS_ALLOCATION; each by-arm output says it in its place; pooled outputs still work;
  nothing by arm is shown.
"""
from __future__ import annotations

import shutil

import pytest

from dashboard.pages_registry import pages_for
from tests.test_dashboard_apptest import ARM_TOKENS, BANNER, sign_in, visit, visit_all_tabs

REDACTED = "This app has encountered an error"
PAGES = ("recruitment.py", "balance.py", "baseline.py", "alsfrs.py", "survival.py", "safety.py")


@pytest.fixture(scope="module")
def damaged(demo_snapshot, tmp_path_factory):
    """A copy of the demo with its adverse-event file cut in half (as an interrupted copy leaves it)."""
    root = tmp_path_factory.mktemp("damaged") / "trial"
    shutil.copytree(demo_snapshot, root)
    path = root / "clinical" / "adae.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return root


def _notes(at) -> list[str]:
    """Warnings, notes and errors shown (an AppTest run, or ``Seen``: every tab of a page)."""
    return [e.value for kind in ("warning", "info", "error") for e in at.get(kind)]


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_a_damaged_file_is_named_where_it_is_needed_and_other_pages_work(role, damaged, monkeypatch):
    monkeypatch.setenv("MIROCALS_DATA", str(damaged))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(damaged / "allocation"))
    path = str(damaged / "clinical" / "adae.parquet")
    at = sign_in(role)
    for page in pages_for(role):
        if page.file not in PAGES:           # quality (its validation names the file), audit, ...: elsewhere
            continue
        seen = visit_all_tabs(at, page.file)                 # every tab; no exception: asserted by visit
        text = seen.text
        assert REDACTED not in text and "Ask Google" not in text and "Traceback" not in text, page.file
        assert "Data cut-off" in text, page.file
        named = [n for n in _notes(seen) if path in n]
        if page.file == "safety.py":
            # every adverse-event output (and the deaths listing, which reads adae) names the file
            # and what to do; the exposure table and the labs still work
            assert len(named) >= 4, _notes(seen)
            assert all("damaged or incomplete" in n and "mirocals import" in n for n in named)
            assert any("Exposure" in t or "cycles" in t.lower() for t in text.split("\n"))
            assert seen.get("plotly_chart"), "the labs figure is still drawn"
        elif page.file in ("recruitment.py", "balance.py", "baseline.py", "alsfrs.py", "survival.py"):
            assert len(seen.dataframe) > 0, page.file              # they still show their tables
            if page.file != "recruitment.py":                      # "changes since" counts new AEs
                assert not named, (page.file, named)


def test_a_dsmb_without_an_allocation_is_told_on_every_page_and_every_by_arm_output(blinded_only_snapshot,
                                                                                   monkeypatch):
    monkeypatch.setenv("MIROCALS_DATA", str(blinded_only_snapshot))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)
    at = sign_in("dsmb")
    for page in pages_for("dsmb"):
        if page.file not in PAGES:
            continue
        seen = visit_all_tabs(at, page.file)          # every tab (the header's notice once)
        text = seen.text
        notices = [w for w in seen.values("warning") if w.startswith("No allocation configured")]
        assert len(notices) == 1, (page.file, seen.values("warning"))
        assert "MIROCALS_ALLOCATION is not set" in notices[0] and "pooled" in notices[0]
        assert "no allocation configured" in text and BANNER not in text, page.file
        assert REDACTED not in text, page.file
        for token in ARM_TOKENS:
            assert token not in text, f"{page.file}: {token!r}"
    # each by-arm output says so in its place; the pooled ones are there
    seen = visit_all_tabs(at, "survival.py")
    labels = seen.tabs
    assert labels[0] == "Kaplan-Meier" and "Treatment effect" in labels
    by_arm = [w for w in seen.values("warning") if "by arm only, and no allocation is configured" in w]
    assert {w.split(":")[0] for w in by_arm} >= {"Treatment effect estimates",
                                                  "Hazard ratio for death by pre-specified subgroup, with interaction p"}
    assert all("MIROCALS_ALLOCATION is not set" in w for w in by_arm)
    assert seen.get("plotly_chart") and len(seen.dataframe) > 0
    seen = visit_all_tabs(at, "safety.py")
    assert any(w.startswith("Absolute risk") for w in
               [w for w in seen.values("warning") if "no allocation is configured" in w])


def test_allocation_folder_that_holds_none_is_named(blinded_only_snapshot, tmp_path, monkeypatch):
    empty = tmp_path / "alloc"
    empty.mkdir()
    monkeypatch.setenv("MIROCALS_DATA", str(blinded_only_snapshot))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(empty))
    at = visit(sign_in("dsmb"), "baseline.py")
    notice = [w.value for w in at.warning if w.value.startswith("No allocation configured")][0]
    assert f"MIROCALS_ALLOCATION points at {empty}, which holds no allocation" in notice
    assert "allocation.parquet and manifest.json" in notice
    # a blinded role on the same deployment is told nothing about allocations
    at = visit(sign_in("steering"), "baseline.py")
    assert "allocation" not in " ".join(w.value for w in at.warning).lower()
