"""analysis.recruitment: enrolment, monthly recruitment, plan, funnel, CONSORT, balance (the projection:
tests/test_projection.py).

Small inputs built inline; expected tables written out by hand and compared whole.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from analysis.recruitment import (summarize_balance, summarize_consort, summarize_cumulative_vs_plan,
                                  summarize_enrolment, summarize_funnel, summarize_recruitment_by_month)
from analysis.recruitment_projection import fit_recruitment_projection

D = pd.Timestamp
SITES = [
    {"id": "S1", "name": "Alpha", "country": "France", "activated": "2017-06-01", "target": 5},
    {"id": "S2", "name": "Beta", "country": "UK", "activated": "2017-07-01", "target": 3},
    {"id": "S3", "name": "Gamma", "country": "UK", "activated": "2017-08-01", "target": 2},  # no recruits
]


@pytest.fixture
def screening():
    return pd.DataFrame({
        "SCRNID": [f"X{i}" for i in range(1, 9)],
        "SITEID": ["S1", "S1", "S1", "S1", "S2", "S2", "S2", "S3"],
        "SCRNDT": pd.to_datetime(["2017-06-05", "2017-06-20", "2017-07-02", "2017-08-10",
                                  "2017-07-05", "2017-07-06", "2017-09-01", "2017-09-15"]),
        "OUTCOME": ["RANDOMISED", "SCREEN FAILURE", "RANDOMISED", "RUN-IN DROP-OUT",
                    "RANDOMISED", "SCREEN FAILURE", "SCREEN FAILURE", "IN RUN-IN"],
        "REASON": [None, "SVC < 70%", None, "Withdrew consent", None, "SVC < 70%", "Age", None],
        "USUBJID": ["P1", None, "P2", None, "P3", None, None, None],
    })


@pytest.fixture
def adsl():
    return pd.DataFrame({
        "USUBJID": ["P1", "P2", "P3"],
        "SITEID": ["S1", "S1", "S2"],
        "RANDDT": pd.to_datetime(["2017-07-01", "2017-08-15", "2017-08-20"]),
        "ARM": ["Drug", "Placebo", "Drug"],
        "STRATUM": ["France/Limb", "France/Limb", "UK/Bulbar"],
        "SAFFL": ["Y", "Y", "N"],
        "TRTSDT": pd.to_datetime(["2017-07-02", "2017-08-16", None]),
        "ITTFL": ["Y", "Y", "Y"],
        "EOSSTT": ["DISCONTINUED", "COMPLETED", "DISCONTINUED"],
        "DCSREAS": ["DEATH", None, "LOST TO FOLLOW-UP"],
        "DTHFL": ["Y", None, None],
    })


def test_enrolment_counts_zero_sites_and_total(screening, adsl):
    got = summarize_enrolment(screening, adsl, SITES)
    exp = pd.DataFrame({
        "site_id": ["S1", "S2", "S3", "Total"],
        "site_name": ["Alpha", "Beta", "Gamma", "Total"],
        "country": ["France", "UK", "UK", None],
        "activated": pd.to_datetime(["2017-06-01", "2017-07-01", "2017-08-01", "2017-06-01"]),
        "screened": [4, 3, 1, 8],
        "randomised": [2, 1, 0, 3],
        "target": pd.array([5, 3, 2, 10], dtype="Int64"),
        "first": pd.to_datetime(["2017-07-01", "2017-08-20", None, "2017-07-01"]),
        "last": pd.to_datetime(["2017-08-15", "2017-08-20", None, "2017-08-20"]),
    })
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)


def test_enrolment_accepts_study_sites(study, screening, adsl):
    got = summarize_enrolment(screening.assign(SITEID="FR01"), adsl.assign(SITEID="FR01"), study.sites)
    assert len(got) == len(study.sites) + 1
    assert got.loc[got.site_id == "FR01", "randomised"].item() == 3
    assert got.iloc[-1]["target"] == sum(s.target for s in study.sites)


def test_recruitment_by_month_by_site(screening, adsl):
    got = summarize_recruitment_by_month(screening, adsl)
    months = ["2017-06", "2017-07", "2017-08", "2017-09"]
    exp = pd.DataFrame({
        "month": np.repeat(months, 3),
        "site_id": ["S1", "S2", "S3"] * 4,
        "screened":   [2, 0, 0,  1, 2, 0,  1, 0, 0,  0, 1, 1],
        "randomised": [0, 0, 0,  1, 0, 0,  1, 1, 0,  0, 0, 0],
        "cumulative_randomised": [0, 0, 0,  1, 0, 0,  2, 1, 0,  2, 1, 0],
    })
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)


def test_recruitment_by_month_pooled(screening, adsl):
    got = summarize_recruitment_by_month(screening, adsl, by=None)
    exp = pd.DataFrame({"month": ["2017-06", "2017-07", "2017-08", "2017-09"], "site_id": ["All"] * 4,
                        "screened": [2, 3, 1, 2], "randomised": [0, 1, 2, 0],
                        "cumulative_randomised": [0, 1, 3, 3]})
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)


def test_cumulative_vs_plan(adsl):
    plan = [("2017-07", 1), ("2017-08", 4), ("2017-09", 6), ("2017-10", 8)]
    got = summarize_cumulative_vs_plan(adsl, plan, cut_date="2017-09-10")
    exp = pd.DataFrame({"month": ["2017-07", "2017-08", "2017-09", "2017-10"],
                        "actual_cumulative": [1.0, 3.0, 3.0, np.nan],
                        "planned_cumulative": [1, 4, 6, 8]})
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)
    # the plan is 0 before its first month; default cut = last randomisation month
    got = summarize_cumulative_vs_plan(adsl, [("2017-08", 2)])
    assert got.to_dict("list") == {"month": ["2017-07", "2017-08"], "actual_cumulative": [1.0, 3.0],
                                   "planned_cumulative": [0, 2]}


def test_funnel(screening):
    got = summarize_funnel(screening)
    exp = pd.DataFrame([
        ("Screened", 8, ""), ("Screen failure", 3, ""), ("Screen failure", 2, "SVC < 70%"),
        ("Screen failure", 1, "Age"), ("Run-in started", 5, ""), ("Run-in drop-out", 1, ""),
        ("Run-in drop-out", 1, "Withdrew consent"), ("In run-in", 1, ""), ("Randomised", 3, ""),
    ], columns=["stage", "n", "reason"])
    pd.testing.assert_frame_equal(got, exp)


def test_consort_pooled_gives_only_all(screening, adsl):
    got = summarize_consort(screening, adsl)
    assert set(got["group"]) == {"All"}
    exp = pd.DataFrame([
        ("Assessed for eligibility", "All", 8, ""), ("Excluded", "All", 4, ""),
        ("Excluded", "All", 3, "Screen failure"), ("Excluded", "All", 2, "Screen failure: SVC < 70%"),
        ("Excluded", "All", 1, "Screen failure: Age"), ("Excluded", "All", 1, "Run-in drop-out"),
        ("Excluded", "All", 1, "Run-in drop-out: Withdrew consent"), ("In run-in at cut", "All", 1, ""),
        ("Randomised", "All", 3, ""), ("Allocated", "All", 3, ""),
        ("Received allocated intervention", "All", 2, ""),
        ("Did not receive allocated intervention", "All", 1, ""), ("Completed", "All", 1, ""),
        ("Ongoing", "All", 0, ""), ("Discontinued", "All", 0, ""), ("Died", "All", 1, ""),
        ("Lost to follow-up", "All", 1, ""), ("Analysed (ITT)", "All", 3, ""),
    ], columns=["stage", "group", "n", "reason"])
    pd.testing.assert_frame_equal(got, exp)


def test_consort_by_arm_with_reasons_and_tte(screening, adsl):
    adsl = pd.concat([adsl, pd.DataFrame({"USUBJID": ["P4"], "SITEID": ["S2"], "ARM": ["Placebo"],
                                          "RANDDT": [D("2017-09-01")], "SAFFL": ["Y"], "ITTFL": ["Y"],
                                          "EOSSTT": ["DISCONTINUED"], "DCSREAS": ["ADVERSE EVENT"]})],
                     ignore_index=True)
    adtte = pd.DataFrame({"USUBJID": ["P1", "P2", "P4", "P4"], "PARAMCD": ["OS", "OS", "OS", "DTHTRV"]})
    got = summarize_consort(screening, adsl, adtte, group_col="ARM")
    per = got[got.group != "All"].set_index(["group", "stage", "reason"])["n"]
    assert per[("Drug", "Allocated", "")] == 2 and per[("Placebo", "Allocated", "")] == 2
    assert per[("Drug", "Received allocated intervention", "")] == 1
    assert per[("Placebo", "Received allocated intervention", "")] == 2   # SAFFL Y, no TRTSDT
    assert per[("Drug", "Died", "")] == 1 and per[("Drug", "Lost to follow-up", "")] == 1
    assert per[("Drug", "Discontinued", "")] == 0
    assert per[("Placebo", "Discontinued", "")] == 1
    assert per[("Placebo", "Discontinued", "ADVERSE EVENT")] == 1
    assert per[("Drug", "Analysed (primary endpoint)", "")] == 1
    assert per[("Placebo", "Analysed (primary endpoint)", "")] == 2
    assert list(dict.fromkeys(got["group"])) == ["All", "Drug", "Placebo"]


def test_balance_by_site_and_arm(adsl):
    got = summarize_balance(adsl, group_col="ARM")
    rows = []
    for st, cells in [("France/Limb", {"S1": (1, 1), "S2": (0, 0), "All": (1, 1)}),
                      ("UK/Bulbar", {"S1": (0, 0), "S2": (1, 0), "All": (1, 0)})]:
        for site, (drug, pbo) in cells.items():
            rows += [(st, site, "Drug", drug), (st, site, "Placebo", pbo), (st, site, "Total", drug + pbo)]
    exp = pd.DataFrame(rows, columns=["stratum", "site_id", "group", "n"])
    pd.testing.assert_frame_equal(got, exp)


def test_balance_pooled_builds_stratum_from_factors(adsl):
    df = adsl.drop(columns="STRATUM").assign(COUNTRY=["France", "France", "UK"], ONSET=["Limb", "Limb", "Bulbar"])
    got = summarize_balance(df, by_site=False)
    exp = pd.DataFrame({"stratum": ["France/Limb", "UK/Bulbar"], "site_id": ["All", "All"],
                        "group": ["All", "All"], "n": [2, 1]})
    pd.testing.assert_frame_equal(got, exp)


# the projection's tests are in tests/test_projection.py


# --------------------------------------------------------------------------- figures
def test_figures_plot_what_the_tables_show(screening, adsl):
    import plotly.graph_objects as go
    from analysis.figures_recruitment import (plot_balance, plot_cumulative_recruitment, plot_funnel,
                                              plot_recruitment_by_site, plot_site_activation)
    from analysis.theme import ARM_COLORS, apply_theme

    plan = summarize_cumulative_vs_plan(adsl, [("2017-07", 1), ("2017-08", 4), ("2017-09", 6)],
                                        cut_date="2017-08-31")
    proj = fit_recruitment_projection(adsl, SITES, "2017-08-31", 6, draws=200, seed=1)
    fig = plot_cumulative_recruitment(plan, proj, subtitle="Cut 2017-08-31")
    names = [t.name for t in fig.data]
    assert {"Planned", "Actual", "Projected (median)", "80% prediction", "95% prediction"} <= set(names)
    actual = fig.data[names.index("Actual")]
    assert list(actual.y) == [1.0, 3.0]                      # NaN after the cut is not drawn
    assert list(fig.data[names.index("Planned")].y) == [1, 4, 6]
    assert "Cut 2017-08-31" in fig.layout.title.text and fig.layout.template.layout.plot_bgcolor == "white"

    monthly = summarize_recruitment_by_month(screening, adsl)
    fig = plot_recruitment_by_site(monthly)
    assert fig.layout.barmode == "stack" and [t.name for t in fig.data] == ["S1", "S2", "S3"]
    assert sum(sum(t.y) for t in fig.data) == 3

    fig = plot_site_activation(summarize_enrolment(screening, adsl, SITES), cut_date="2017-09-30")
    assert list(fig.data[0].y) == ["Gamma", "Beta", "Alpha"]   # latest activation at the bottom
    assert list(fig.data[0].text) == ["0/2", "1/3", "2/5"]

    fig = plot_funnel(summarize_funnel(screening))
    assert list(fig.data[0].x) == [8, 3, 5, 1, 1, 3]

    pooled = plot_balance(summarize_balance(adsl))
    cells, margins = pooled.data                     # strata by site; the Total column and All sites row apart
    assert isinstance(cells, go.Heatmap) and np.nansum(np.array(cells.z, dtype=float)) == 3
    assert np.array(margins.z, dtype=float)[-1, -1] == 3
    by_arm = plot_balance(summarize_balance(adsl.assign(ARM=["Placebo", "Low-dose IL-2", "Placebo"]),
                                            group_col="ARM"))
    assert [t.name for t in by_arm.data] == ["Low-dose IL-2", "Placebo"]
    assert by_arm.data[0].marker.color == ARM_COLORS["Low-dose IL-2"]
    assert apply_theme(go.Figure()).layout.template.layout.font.size == 12


def test_funnel_by_site(screening):
    got = summarize_funnel(screening, by_site=True)
    assert list(dict.fromkeys(got["site_id"])) == ["S1", "S2", "S3", "All"]
    s2 = got[got.site_id == "S2"].set_index(["stage", "reason"])["n"]
    assert s2[("Screened", "")] == 3 and s2[("Screen failure", "SVC < 70%")] == 1
    assert s2[("Screen failure", "Age")] == 1 and s2[("Randomised", "")] == 1
    pd.testing.assert_frame_equal(got[got.site_id == "All"].drop(columns="site_id").reset_index(drop=True),
                                  summarize_funnel(screening))


def test_changes_since_the_previous_cut_by_hand():
    from analysis.recruitment import summarize_changes
    # 4 randomised: 2 by the previous cut (Jan 31); S2 died in February, S1 completed in March,
    # S3 withdrew in February; 2 SAEs of S2 (one in January), 1 of S4 in March
    adsl = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3", "S4"],
        "RANDDT": pd.to_datetime(["2020-01-05", "2020-01-20", "2020-02-10", "2020-03-01"]),
        "EOSSTT": ["COMPLETED", "DISCONTINUED", "DISCONTINUED", None],
        "EOSDT": pd.to_datetime(["2020-03-15", "2020-02-20", "2020-02-25", None]),
        "DCSREAS": [None, "DEATH", "WITHDRAWAL BY SUBJECT", None],
        "DTHDT": pd.to_datetime([None, "2020-02-20", None, None])})
    adae = pd.DataFrame({"USUBJID": ["S2", "S2", "S4", "S1"], "AESER": ["Y", "Y", "Y", "N"],
                         "ASTDT": pd.to_datetime(["2020-01-25", "2020-02-15", "2020-03-10", "2020-01-10"])})
    screening = pd.DataFrame({"SCRNDT": pd.to_datetime(["2019-12-01", "2019-12-20", "2020-01-02", "2020-02-01",
                                                        "2020-02-02"])})
    sites = [{"id": "A", "activated": "2019-11-01"}, {"id": "B", "activated": "2020-02-01"}]
    ch = summarize_changes(adsl, "2020-01-31", "2020-03-31", screening=screening, adae=adae, sites=sites)
    got = {r.item: (r.at_previous, r.at_cut, r.new) for r in ch.itertuples()}
    assert got == {"Screened": (3, 5, 2), "Sites activated": (1, 2, 1), "Randomised": (2, 4, 2),
                   "Completed follow-up": (0, 1, 1), "Discontinued, other than death": (0, 1, 1),
                   "Died": (0, 1, 1), "Serious adverse events": (1, 3, 2),
                   "Participants with a serious adverse event": (1, 2, 1)}
    with pytest.raises(ValueError, match="not before"):
        summarize_changes(adsl, "2020-03-31", "2020-03-31")


def test_funnel_figure_bars_are_the_funnel_table(screening):
    """The by-site table holds each site's funnel and the all-sites one: the figure draws the
    all-sites rows (it used to stack every site on top of them: each bar at twice its value)."""
    from analysis.figures_recruitment import plot_funnel, select_funnel
    table = summarize_funnel(screening, by_site=True)
    pooled = summarize_funnel(screening)
    totals = pooled[pooled["reason"] == ""]
    fig = plot_funnel(table)
    assert len(fig.data) == 1
    assert list(fig.data[0].y) == list(totals["stage"]) and list(fig.data[0].x) == list(totals["n"])
    assert list(fig.data[0].x) == [8, 3, 5, 1, 1, 3]
    assert "SVC < 70%: 2<br>Age: 1" in fig.data[0].hovertext[1]
    # one site when asked
    s2 = plot_funnel(table, site="S2")
    assert list(s2.data[0].x) == [3, 2, 1, 0, 0, 1]
    # by site when asked: one trace per site, and the sites add up to the pooled bars
    by_site = plot_funnel(table, by_site=True)
    assert [t.name for t in by_site.data] == ["S1", "S2", "S3"]
    assert [sum(v) for v in zip(*(t.x for t in by_site.data))] == list(totals["n"])
    # a table holding some sites only (no all-sites rows) is pooled by adding its sites
    pd.testing.assert_frame_equal(select_funnel(table[table["site_id"] != "All"]), pooled, check_dtype=False)
    s12 = select_funnel(table[table["site_id"].isin(["S1", "S2"])])
    exp = summarize_funnel(screening[screening["SITEID"].isin(["S1", "S2"])])
    pd.testing.assert_frame_equal(s12, exp, check_dtype=False)


def test_demo_funnel_figure_equals_the_table_and_the_screening_log(blinded_only_snapshot):
    from analysis.figures_recruitment import plot_funnel
    from analysis.outputs import build_table
    from data_access.views import open_view
    table = build_table("funnel", open_view(blinded_only_snapshot, "steering"))
    fig = plot_funnel(table)
    rows = table[(table["site_id"] == "All") & (table["reason"] == "")]
    assert len(fig.data) == 1                            # one bar per stage: nothing stacked on it
    assert list(zip(fig.data[0].y, fig.data[0].x)) == list(zip(rows["stage"], rows["n"]))
    bars = dict(zip(fig.data[0].y, fig.data[0].x))
    s = pd.read_parquet(blinded_only_snapshot / "clinical" / "screening.parquet")
    out = s["OUTCOME"]
    assert bars == {"Screened": len(s), "Screen failure": (out == "SCREEN FAILURE").sum(),
                    "Run-in started": (out != "SCREEN FAILURE").sum(),
                    "Run-in drop-out": (out == "RUN-IN DROP-OUT").sum(), "In run-in": (out == "IN RUN-IN").sum(),
                    "Randomised": (out == "RANDOMISED").sum()}
    stacked = pd.Series(list(fig.data[0].x), index=list(fig.data[0].y)).groupby(level=0).sum()
    assert stacked["Screened"] == len(s)                 # 377 screened drawn at 377 (was 754)
