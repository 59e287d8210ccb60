"""Sidebar filters reach every recruitment output (issue 11, filters): with country = UK the
enrolment table and the site-activation chart list the UK sites only, the plan line and the
target are the UK sites' share of the planned N (scaled by their share of the site targets), the
page says the selection's target, every figure's subtitle and every download's file name carry
the filter. Expected values are computed here from the study file, not copied from the code.
"""
from __future__ import annotations

import json

import pytest

from dashboard.cell_size import FilteredView
from dashboard.context import Filters
from test_dashboard_apptest import _deployment, sign_in, visit_all_tabs  # noqa: F401 (fixture)

UK = Filters(countries=("UK",))


def _half_up(x: float) -> int:
    return int(x + 0.5)


@pytest.fixture(scope="module")
def blinded(demo_snapshot):
    from data_access.views import open_view
    with open_view(demo_snapshot / "clinical", "steering") as view:
        yield view


def _uk_expected(study) -> tuple[set[str], float, int]:
    uk = {s.id for s in study.sites if s.country == "UK"}
    share = sum(s.target for s in study.sites if s.id in uk) / sum(s.target for s in study.sites)
    return uk, share, _half_up(study.planned_n * share)


# --------------------------------------------------------------------------- the table builders
def test_uk_filter_lists_uk_sites_and_scales_plan_and_target(blinded):
    from analysis.outputs import build_table, site_selection
    study = blinded.study
    uk, share, target = _uk_expected(study)
    view = FilteredView(blinded, UK)
    enrolment = build_table("enrolment", view)
    assert set(enrolment["site_id"][:-1]) == uk and enrolment["site_id"].iloc[-1] == "Total"
    assert enrolment["target"].iloc[-1] == sum(s.target for s in study.sites if s.id in uk)
    assert not (enrolment["country"][:-1] != "UK").any()
    plan = build_table("plan", view)
    assert plan["planned_cumulative"].iloc[-1] == target == site_selection(view).target
    assert target < study.planned_n
    scaled = {m: _half_up(c * share) for m, c in study.recruitment_plan}
    by_month = plan.set_index("month")["planned_cumulative"]
    assert all(by_month[m] == c for m, c in scaled.items())
    recruitment = build_table("recruitment", view)
    assert set(recruitment["site_id"]) <= uk
    balance = build_table("balance", view)
    assert set(balance["site_id"]) - {"All"} <= uk
    assert all(s.startswith("UK/") for s in balance["stratum"] if s != "Total")   # "Total": a site's strata


def test_unfiltered_outputs_are_trial_wide(blinded):
    from analysis.outputs import build_table, filter_note, site_selection
    study = blinded.study
    assert build_table("plan", blinded)["planned_cumulative"].iloc[-1] == study.recruitment_plan[-1][1]
    assert set(build_table("enrolment", blinded)["site_id"][:-1]) == {s.id for s in study.sites}
    sel = site_selection(blinded)
    assert sel.target == study.planned_n and sel.share == 1.0 and not sel.restricted and sel.label is None
    assert filter_note("plan", blinded) is None


def test_one_site_filter_gets_its_own_target(blinded):
    from analysis.outputs import build_table
    study = blinded.study
    fr08 = study.site_by_id["FR08"]
    view = FilteredView(blinded, Filters(sites=("FR08",)))
    share = fr08.target / sum(s.target for s in study.sites)
    assert build_table("plan", view)["planned_cumulative"].iloc[-1] == _half_up(study.planned_n * share)
    assert list(build_table("enrolment", view)["site_id"]) == ["FR08", "Total"]


def test_onset_filter_says_plan_and_targets_are_trial_wide(blinded):
    from analysis.outputs import build_table, filter_note
    study = blinded.study
    view = FilteredView(blinded, Filters(onsets=("Limb",)))
    assert build_table("plan", view)["planned_cumulative"].iloc[-1] == study.recruitment_plan[-1][1]
    assert "trial-wide" in filter_note("plan", view)
    assert "trial-wide" in filter_note("enrolment", view)
    both = FilteredView(blinded, Filters(countries=("UK",), onsets=("Limb",)))
    assert build_table("plan", both)["planned_cumulative"].iloc[-1] == _uk_expected(study)[2]
    assert "onset Limb" in filter_note("plan", both)


def test_figures_follow_the_filter(blinded):
    from analysis.outputs import build_figure
    study = blinded.study
    uk, _share, target = _uk_expected(study)
    view = FilteredView(blinded, UK)
    fig = build_figure("cumulative", view)
    title = fig.layout.title.text
    assert "filter: UK" in title and "Data cut-off" in title and str(blinded.cut_date) in title
    assert [a.text for a in fig.layout.annotations] == [f"Target {target} (UK)"]
    assert max(fig.data[0].y) == target
    activation = build_figure("activation", view)
    names = {study.site_by_id[s].name for s in uk}
    assert set(activation.data[0].y) == names
    assert "filter: UK" in activation.layout.title.text
    for name in ("by-site", "funnel", "balance", "km", "completeness"):
        assert "filter: UK" in build_figure(name, view).layout.title.text, name
    # unfiltered: no filter in the subtitle, the trial's target
    plain = build_figure("cumulative", blinded)
    assert "filter" not in plain.layout.title.text
    assert [a.text for a in plain.layout.annotations] == [f"Target {study.planned_n}"]


def test_filter_labels_and_file_name_parts():
    assert (UK.label(), UK.slug()) == ("UK", "uk")
    assert Filters(sites=("FR08",)).slug() == "fr08"
    assert Filters(("UK",), (), ("Bulbar",)).label() == "UK · Bulbar"
    assert Filters(("UK",), (), ("Bulbar",)).slug() == "uk-bulbar"
    assert Filters(sites=tuple(f"FR0{i}" for i in range(1, 7))).slug() == "6-sites"
    assert Filters().label() is None and Filters().slug() is None


def test_file_stem_carries_filter_and_cut_date():
    from dashboard import context, widgets
    snap = context.Snapshot("x", "c", None, "0123456789abcdef", "2019-06-30")
    plain = widgets._file_stem(context.Context("u", "steering", "blinded", snap), "Enrolment")
    assert plain == "mirocals_enrolment_blinded_2019-06-30_01234567"
    stem = widgets._file_stem(context.Context("u", "steering", "blinded", snap, UK), "Enrolment")
    assert stem == "mirocals_enrolment_blinded_uk_2019-06-30_01234567"


# --------------------------------------------------------------------------- the page
@pytest.fixture
def offered_files(monkeypatch):
    """File names of every download the page offers (CSV, PNG, SVG), without building them."""
    from dashboard import downloads as dl
    names: list[str] = []
    monkeypatch.setattr(dl, "offered", lambda file_name, mime, fetch: names.append(file_name))
    return names


def _frame_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_recruitment_page_with_uk_filter(offered_files, demo_snapshot):
    from data_access.study import load_study
    study = load_study()
    uk, _share, target = _uk_expected(study)
    at = sign_in("steering")
    at.multiselect(key="flt_country").set_value(["UK"]).run()
    offered_files.clear()
    at = visit_all_tabs(at, "recruitment.py")              # every tab
    said = f"Target for UK ({len(uk)} of {len(study.sites)} sites): {target} of the trial's {study.planned_n}"
    assert any(said in e for e in at.values("info")), at.values("info")
    assert any(said in c for c in at.values("caption"))      # the plan table's caption says it too
    enrolment = _frame_with(at, "Target")                  # the display tables (analysis.display)
    assert set(enrolment["Site"]) == uk | {"Total"}
    plan = _frame_with(at, "Planned, cumulative")
    assert plan["Planned, cumulative"].iloc[-1] == target
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles and all("filter: UK" in t for t in titles)
    activation = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                      if "Site activation" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    assert set(activation["data"][0]["y"]) == {study.site_by_id[s].name for s in uk}
    assert offered_files and all("_uk_" in f for f in offered_files), offered_files
    assert any(f.endswith(".png") for f in offered_files) and any(f.endswith(".csv") for f in offered_files)


def test_recruitment_page_unfiltered_is_trial_wide(offered_files):
    from data_access.study import load_study
    study = load_study()
    at = visit_all_tabs(sign_in("steering"), "recruitment.py")          # every tab
    assert "Target for" not in at.text and "filter:" not in at.text
    enrolment = _frame_with(at, "Target")
    assert set(enrolment["Site"]) == {s.id for s in study.sites} | {"Total"}
    assert _frame_with(at, "Planned, cumulative")["Planned, cumulative"].iloc[-1] == study.planned_n
    assert offered_files and not any("_uk_" in f for f in offered_files)


def test_projection_is_to_the_selection_target(tmp_path_factory):
    """During recruitment the projection of a site selection runs to its scaled target with its
    own sites' rates; an onset filter has no target of its own, so no projection."""
    from analysis.outputs import TableUnavailable, build_table, recruitment_projection
    from data_access.demo import make_demo
    from data_access.views import open_view
    root = tmp_path_factory.mktemp("recruiting") / "trial"
    make_demo(root, cut="2018-09-30")
    with open_view(root / "clinical", "steering") as view:
        uk, _share, target = _uk_expected(view.study)
        assert recruitment_projection(view).target == view.study.planned_n
        projection = recruitment_projection(FilteredView(view, UK))
        assert projection.target == target and set(projection.sites_["site_id"]) == uk
        assert build_table("projection", FilteredView(view, UK)) is not None
        with pytest.raises(TableUnavailable, match="onset"):
            recruitment_projection(FilteredView(view, Filters(onsets=("Limb",))))
