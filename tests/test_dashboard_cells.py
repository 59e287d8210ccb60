"""Minimum cell size (issue 10, item 2): a blinded filter that selects fewer than k subjects
(``[blinding] min_cell_size``, default 5), or that differs from a neighbouring filter by fewer
than k, gets counts only: every per-subject and per-visit output is refused in the data path
(``FilteredView`` raises ``SmallCellError``) and the pages show a notice and the counts, with no
identifier anywhere (elements and downloads). Unblinded and unfiltered views are not restricted.

The attack as reported: as investigator, Site FR08 + Onset Bulbar selects one subject of the demo.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.pages_registry import pages_for
from dashboard.cell_size import FilteredView, SmallCellError, small_cell_reason
from dashboard.context import Filters
from data_access.view_base import BlindingError
from test_dashboard_apptest import (_deployment, download_buttons, downloads,  # noqa: F401 (fixtures)
                                   sign_in, visit_all_tabs)

ID_PATTERN = re.compile(r"\b(?:(?:MIR|SCR)-)?[A-Z]{2}\d{2}-\d{4}\b")   # USUBJID, SCRNID, SUBJID
NOTICE = "fewer than the minimum of 5 for blinded outputs"
SMALL = {"flt_site": ["FR08"], "flt_onset": ["Bulbar"]}       # one subject in the demo
LARGE = {"flt_site": ["FR08"]}                                # six subjects


@pytest.fixture(scope="module")
def adsl(demo_snapshot) -> pd.DataFrame:
    return pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")


def _ids_of(adsl: pd.DataFrame, demo_snapshot, filters: dict) -> set[str]:
    keep = pd.Series(True, index=adsl.index)
    if "flt_site" in filters:
        keep &= adsl["SITEID"].isin(filters["flt_site"])
    if "flt_onset" in filters:
        keep &= adsl["ONSET"].isin(filters["flt_onset"])
    chosen = adsl[keep]
    screening = pd.read_parquet(demo_snapshot / "clinical" / "screening.parquet")
    scr = screening.loc[screening["USUBJID"].isin(chosen["USUBJID"]), "SCRNID"]
    return set(chosen["USUBJID"]) | set(chosen["SUBJID"]) | set(scr)


def _set_filters(at: AppTest, filters: dict) -> AppTest:
    for key, value in filters.items():
        at.multiselect(key=key).set_value(value)
    at.run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------- the rule
def test_demo_group_sizes_and_the_rule(adsl):
    cells = adsl.groupby(["SITEID", "ONSET"]).size()
    assert (cells == 1).sum() == 5                  # as reported: five site x onset groups of one
    assert cells.loc[("FR08", "Bulbar")] == 1
    for site, onset in cells[cells < 5].index:      # every small site x onset filter is refused
        assert small_cell_reason(adsl, Filters(sites=(site,), onsets=(onset,)), 5)
    assert small_cell_reason(adsl, Filters(sites=("FR08",), onsets=("Bulbar",)), 5).startswith(
        "This filter selects 1 participant, fewer than the minimum of 5 for blinded outputs: counts only.")
    assert small_cell_reason(adsl, Filters(sites=("FR08",)), 5) is None          # 6 subjects
    assert small_cell_reason(adsl, Filters(countries=("France",)), 5) is None
    assert small_cell_reason(adsl, Filters(), 5) is None
    # differencing: FR08 (6) minus FR08 + Limb (5) would be the one bulbar subject of FR08
    assert "differs by 1 participant" in small_cell_reason(adsl, Filters(sites=("FR08",), onsets=("Limb",)), 5)
    # FR08 + FR10 (8) minus FR08 (6) would be the two subjects of FR10
    assert "differs by 2 participants" in small_cell_reason(adsl, Filters(sites=("FR08", "FR10")), 5)
    assert small_cell_reason(adsl, Filters(sites=("FR01", "FR02")), 5) is None


def test_a_population_below_k_is_refused_too():
    # 6 randomised at a site but 3 in the safety population: the safety tables would describe 3
    adsl = pd.DataFrame({"USUBJID": [f"S{i}" for i in range(12)], "COUNTRY": ["X"] * 12,
                         "SITEID": ["A"] * 6 + ["B"] * 6, "ONSET": ["Limb"] * 12,
                         "ITTFL": ["Y"] * 12, "SAFFL": ["Y"] * 3 + ["N"] * 3 + ["Y"] * 6})
    assert "3 participants of the safety population" in small_cell_reason(adsl, Filters(sites=("A",)), 5)
    assert small_cell_reason(adsl, Filters(sites=("B",)), 5) is None


def test_blinded_filtered_view_refuses_every_dataset_read_below_k(demo_snapshot):
    from data_access.views import open_view
    blinded = open_view(demo_snapshot / "clinical", "investigator")
    small = FilteredView(blinded, Filters(sites=("FR08",), onsets=("Bulbar",)))
    for read in (lambda: small.table("adsl"), lambda: small.table("adlb", columns=["USUBJID", "AVAL"]),
                 lambda: small.table("adae", where="AESER = 'Y'"), lambda: small.sql("select * from adsl")):
        with pytest.raises(SmallCellError, match="selects 1 participant"):
            read()
    assert small.counts() == {"randomised": 1, "screened": 5, "reason": small.counts()["reason"]}
    assert small.counts()["reason"]
    from analysis.outputs import OUTPUTS, build_table
    for name, spec in OUTPUTS.items():          # no named table comes out of it
        if spec.by_arm_only:
            continue
        with pytest.raises((SmallCellError, LookupError, BlindingError)):
            build_table(name, small, since="2019-01-01")
    large = FilteredView(blinded, Filters(sites=("FR08",)))
    assert len(large.table("adsl")) == 6 and large.counts()["reason"] is None
    unblinded = open_view(demo_snapshot / "clinical", "dsmb", allocation_dir=demo_snapshot / "allocation")
    assert len(FilteredView(unblinded, Filters(sites=("FR08",), onsets=("Bulbar",))).table("adsl")) == 1


def test_cached_paths_raise_for_a_small_blinded_context(demo_snapshot):
    from dashboard import caches, context, snapshots
    snaps = snapshots.discover_snapshots(str(demo_snapshot), str(demo_snapshot / "allocation"))
    snap = snaps[0]
    small = context.Context("u", "investigator", "blinded", snap, Filters(sites=("FR08",), onsets=("Bulbar",)))
    for call in (lambda: caches.get_table(small, "sae"), lambda: caches.get_figure(small, "labs"),
                 lambda: caches.get_validation(small)):
        with pytest.raises(SmallCellError):
            call()
    assert caches.cell_counts(small)["randomised"] == 1
    dsmb = context.Context("u", "dsmb", "unblinded", snap, Filters(sites=("FR08",), onsets=("Bulbar",)))
    assert len(caches.get_table(dsmb, "sae")) >= 0 and caches.cell_counts(dsmb)["reason"] is None


# --------------------------------------------------------------------------- pages
def test_small_filter_gives_counts_only_on_every_page(downloads, demo_snapshot, adsl):  # noqa: F811
    at = _set_filters(sign_in("investigator"), SMALL)
    downloads.clear()                   # those of the unfiltered first page, before the filter was set
    ids = _ids_of(adsl, demo_snapshot, SMALL)
    assert len([i for i in ids if i.startswith("MIR-")]) == 1
    for page in pages_for("investigator"):
        seen = visit_all_tabs(at, page.file)                             # every tab, if any is drawn
        text = seen.text
        assert "filtered: FR08, Bulbar" in text, page.file
        assert NOTICE in text and "This filter selects 1 participant" in text, page.file
        assert "selects **1** participant" in text, page.file            # the header's count
        assert seen.values("metric")[:1] == ["1"], page.file             # randomised n
        assert not seen.dataframe and not seen.get("plotly_chart") and not seen.download_buttons(), page.file
        assert not ID_PATTERN.search(text), (page.file, ID_PATTERN.search(text))
        assert not any(i in text for i in ids), page.file
        text += "".join(d.decode("utf-8", "replace") for d in downloads)
        assert not downloads, f"{page.file}: a download was offered below the minimum cell size"


def test_differencing_filter_is_refused_and_a_large_filter_shows_outputs(demo_snapshot, adsl):
    at = _set_filters(sign_in("investigator"), {"flt_site": ["FR08"], "flt_onset": ["Limb"]})
    seen = visit_all_tabs(at, "safety.py")
    text = seen.text
    assert "differs by 1 participant" in text and not seen.dataframe and not ID_PATTERN.search(text)
    at = _set_filters(sign_in("investigator"), LARGE)
    for page in pages_for("investigator"):
        seen = visit_all_tabs(at, page.file)                             # every tab
        assert NOTICE not in seen.text and "selects **6** participants" in seen.text, page.file
        assert seen.dataframe, page.file
    assert visit_all_tabs(at, "safety.py").get("plotly_chart")           # the labs, in a later tab


def test_unblinded_roles_are_not_restricted():
    # the DSMB sees the one subject (outputs that cannot be computed on one subject say so)
    at = _set_filters(sign_in("dsmb"), SMALL)
    seen = []
    for page in pages_for("dsmb"):
        shown = visit_all_tabs(at, page.file)                            # every tab
        seen.append(shown.text)
        assert NOTICE not in seen[-1] and shown.dataframe and "selects **1** participant" in seen[-1], page.file
    assert "MIR-FR08-0005" in "".join(seen)        # the visit-status listing names the subject


def _helpers_script():
    import os

    from dashboard import context, snapshots
    from dashboard.figures import show_figure_of
    from dashboard.widgets import show_named_table
    snap = snapshots.discover_snapshots(os.environ["MIROCALS_DATA"], os.environ["MIROCALS_ALLOCATION"])[0]
    ctx = context.Context("u", "investigator", "blinded", snap, context.Filters(sites=("FR08",), onsets=("Bulbar",)))
    show_named_table(ctx, "safety", "sae")
    show_figure_of(ctx, "safety", "labs")


def test_page_helpers_show_the_notice_not_the_output():
    at = AppTest.from_function(_helpers_script, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert len(at.warning) == 2 and all("selects 1 participant" in w.value for w in at.warning)
    assert not at.dataframe and not at.get("plotly_chart") and not download_buttons(at)
