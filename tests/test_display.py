"""analysis/display.py: the display table of every named table (blinded and unblinded), and the
value formatters on small hand cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.display import (METHOD_LABELS, format_ci, format_header, format_median, format_p, format_percent,
                              is_snake_case, list_display_problems)
from analysis.outputs import OUTPUTS, TableUnavailable, build_table, display_table


def format_display(name, machine, view=None):
    return display_table(name, machine, view)
from data_access.view_base import BlindingError
from data_access.views import open_view


@pytest.fixture(scope="module")
def views(demo_snapshot):
    return {"blinded": open_view(demo_snapshot, "steering"),
            "unblinded": open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation")}


@pytest.mark.parametrize("kind", ["blinded", "unblinded"])
@pytest.mark.parametrize("name", list(OUTPUTS))
def test_every_table_has_a_clean_display_table(name, kind, views):
    view = views[kind]
    try:
        machine = build_table(name, view, since="2019-01-01")
    except (TableUnavailable, BlindingError):
        pytest.skip(f"{name} is not built for a {kind} view of the demo")
    before = machine.copy()
    shown = format_display(name, machine, view)
    assert list_display_problems(shown) == [], name
    spec = OUTPUTS[name]
    assert list(machine.columns) == [c for c in spec.columns if c in machine.columns]   # declared, in order
    assert len(shown) == len(machine) or name == "baseline" or spec.display.arms   # by arm: rows merge
    pd.testing.assert_frame_equal(machine, before)           # the machine table is left as it is
    if kind == "blinded":
        assert "Arm" not in shown.columns                   # group = All everywhere: dropped
        assert not any(str(c).startswith(("Low-dose", "Placebo")) for c in shown.columns)
    elif spec.display.arms and spec.display.spread == "group" and "group" in machine.columns:
        arms = [c for c in shown.columns if str(c).startswith(tuple(view.arm_levels))]
        assert len(arms) == len(view.arm_levels), (name, list(shown.columns))   # the arms side by side


def test_survival_display_on_a_hand_case():
    machine = pd.DataFrame({"group": ["A", "B"], "n": [22, 22], "events": [2, 7], "median": [np.nan, np.nan],
                            "median_ci_lower": [np.nan, 457.0], "median_ci_upper": [np.nan, np.nan],
                            "landmark_day": [640, 640], "surv_landmark": [0.7409, 0.5],
                            "surv_landmark_ci_lower": [0.6769, np.nan], "surv_landmark_ci_upper": [0.7942, np.nan],
                            "rmst": [542.75, 500.2], "rmst_se": [13.13, 20.0]})
    expected = pd.DataFrame({"Statistic": ["N", "Deaths", "Median survival, days (95% CI)", "Survival at day 640, % (95% CI)",
                                  "RMST to day 640, days (SE)"],
                             "A": ["22", "2", "not reached", "74.1 (67.7 to 79.4)", "543 (13.1)"],
                             "B": ["22", "7", "not reached (457 to NE)", "50.0", "500 (20.0)"]})
    pd.testing.assert_frame_equal(format_display("survival", machine), expected)


def test_arms_side_by_side_with_their_n_in_the_header():
    """By-arm outputs: one column per arm headed with the arm's N; cells composed from the
    formatted values; a hierarchy (SOC over PT) named once; '—' where an arm has no row."""
    machine = pd.DataFrame({"soc": ["Any", "Any", "Gastro", "Gastro", "Gastro"],
                            "pt": ["", "", "All PTs", "All PTs", "Nausea"], "group": ["A", "B", "A", "B", "A"],
                            "n_subjects": [10, 9, 4, 3, 2], "percent": [100.0, 90.0, 40.0, 30.0, 20.0],
                            "n_events": [30, 20, 5, 4, 2]})
    from analysis.display_table import format_table
    shown = format_table(machine, OUTPUTS["ae"].display, arm_counts={"A": 10, "B": 10})
    assert shown.columns.tolist() == ["System organ class", "Preferred term", "A (N=10)", "B (N=10)"]
    assert shown.values.tolist() == [["Any", "", "10 (100.0 %) [30]", "9 (90.0 %) [20]"],
                                     ["Gastro", "(any)", "4 (40.0 %) [5]", "3 (30.0 %) [4]"],
                                     ["", "Nausea", "2 (20.0 %) [2]", "—"]]


def test_effect_display_names_methods_and_formats_p():
    machine = pd.DataFrame({"method": ["logrank", "cox_stratified"], "estimate": [np.nan, 0.4883],
                            "ci_lower": [np.nan, 0.2820], "ci_upper": [np.nan, 0.8456], "statistic": [6.354, -2.559],
                            "p_value": [0.0117, 0.0004], "comparison": ["A vs B", "A vs B"], "note": ["", ""]})
    expected = pd.DataFrame({"Analysis": [METHOD_LABELS["logrank"], METHOD_LABELS["cox_stratified"]],
                             "Estimate (95% CI)": ["—", "0.49 (0.28 to 0.85)"], "Statistic": ["6.35", "-2.56"],
                             "p": ["0.012", "<0.001"]})     # one comparison (the footnote names it), no note: neither shown
    pd.testing.assert_frame_equal(format_display("treatment-effect", machine), expected)


def test_pooled_group_dropped_dates_codes_and_missing():
    machine = pd.DataFrame({"factor": ["PNFHGR", "AGEGR1"], "level": ["High", "<60"], "group": ["All", "All"],
                            "when": pd.to_datetime(["2018-07-16", None]), "site_id": ["FR01", None],
                            "target": pd.array([40, None], dtype="Int64")})
    shown = format_display("subgroups", machine)
    expected = pd.DataFrame({"Subgroup": ["CSF-pNfH group", "Age group, years"], "Level": ["High", "<60"],
                             "When": ["2018-07-16", "—"], "Site": ["FR01", "—"], "Target": ["40", "—"]})
    pd.testing.assert_frame_equal(shown, expected)


def test_value_formatters():
    assert format_p(0.0117) == "0.012" and format_p(0.0004) == "<0.001" and format_p(np.nan) == "—"
    assert format_p(None, missing="") == ""
    assert format_ci(0.4883, 0.282, 0.8456) == "0.49 (0.28 to 0.85)"
    assert format_ci(np.nan, np.nan, np.nan) == "—" and format_ci(0.5, np.nan, 0.7) == "0.50 (NE to 0.70)"
    assert format_median(np.nan, 457.0, np.nan) == "not reached (457 to NE)"
    assert format_median(np.nan, np.nan, np.nan) == "not reached"
    assert format_median(412.0, 380.0, 470.0) == "412 (380 to 470)"
    assert format_percent(0.7409, proportion=True) == "74.1 %" and format_percent(99.0826) == "99.1 %"


def test_headers_are_never_snake_case():
    assert format_header("site_id") == "Site"
    assert format_header("median_ci_lower") == "Median ci lower"
    assert format_header("surv_landmark", {"surv_landmark": "Survival at day {landmark}"}, 640) == \
        "Survival at day 640"
    assert not is_snake_case(format_header("some_new_column")) and is_snake_case("stage_n_reason")


def test_problems_are_listed():
    bad = pd.DataFrame({"site_id": ["FR01"], "Median": [None], "Method": ["cox_stratified"], "Date": ["NaT"]})
    assert list_display_problems(bad) == ["snake_case header 'site_id'", "'Median': missing value shown",
                                          "'Method': method code 'cox_stratified'", "'Date': 'NaT'"]


def test_projection_display_on_a_hand_case():
    """The demo is cut after recruitment ended (no projection): a projection row by hand."""
    machine = pd.DataFrame({"target": [216], "median_date": pd.to_datetime(["2019-07-02"]),
                            "pi80_lower": pd.to_datetime(["2019-06-01"]), "pi80_upper": pd.to_datetime(["2019-08-01"]),
                            "pi95_lower": pd.to_datetime(["2019-05-20"]), "pi95_upper": [pd.NaT],
                            "p_by_planned_end": [0.7409], "cut_date": pd.to_datetime(["2019-01-31"]),
                            "randomised": [150], "draws": [2000]})
    shown = format_display("projection", machine)
    assert list_display_problems(shown) == []
    assert shown.iloc[0].tolist() == [216, "2019-07-02", "2019-06-01", "2019-08-01", "2019-05-20", "—", "74.1 %",
                                      "2019-01-31", 150, 2000]
