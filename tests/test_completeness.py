"""Visit completeness and data-entry lag (analysis.completeness): a hand-computed case, then the
demo snapshot through the named tables."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.completeness import (derive_visit_status, list_overdue_visits, summarize_completeness_by_site,
                                   summarize_entry_lag)

D = pd.Timestamp
VISIT_DAYS = [0, 28, 56, 84]
VISIT_NAMES = ["Baseline", "Month 1", "Month 2", "Month 3"]
CUT = "2020-03-01"


@pytest.fixture
def adsl():
    # S1, S2, S3 at site A; S4 at site B. ARM is there to check it never reaches an output.
    return pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3", "S4"],
        "SITEID": ["A", "A", "A", "B"],
        "ARM": ["Placebo", "Low-dose IL-2", "Placebo", "Low-dose IL-2"],
        "RANDDT": [D("2020-01-01"), D("2020-01-01"), D("2019-12-01"), D("2020-02-20")],
        "EOSSTT": ["ONGOING", "ONGOING", "DISCONTINUED", "DISCONTINUED"],
        "EOSDT": [pd.NaT, pd.NaT, D("2020-01-15"), D("2020-02-22")],
        "DCSREAS": [None, None, "WITHDRAWAL BY SUBJECT", "DEATH"],
        "DTHDT": [pd.NaT, pd.NaT, pd.NaT, D("2020-02-22")],
    })


@pytest.fixture
def adqs():
    rows = [  # (subject, AVISITN, ADT, ENTDT); two rows (items) per form
        ("S1", 1, "2020-01-01", "2020-01-05"), ("S1", 1, "2020-01-01", "2020-01-05"),
        ("S1", 3, "2020-02-26", "2020-04-01"),
        ("S2", 1, "2020-01-01", "2020-01-31"),
        ("S3", 1, "2019-12-01", "2019-12-03"),
        ("S4", 1, "2020-02-20", None),
        ("S4", 99, "2020-02-21", "2020-02-21"),     # not in the schedule: ignored
        ("XX", 1, "2020-01-01", "2020-01-01"),      # not in ADSL: ignored
    ]
    df = pd.DataFrame(rows, columns=["USUBJID", "AVISITN", "ADT", "ENTDT"])
    return df.assign(ADT=pd.to_datetime(df["ADT"]), ENTDT=pd.to_datetime(df["ENTDT"]))


# Expected statuses at the cut 2020-03-01 (window 7 days):
# S1 (rand 2020-01-01; targets 01-01, 01-29, 02-26, 03-25):
#   V1 done; V2 missed (no record, and V3 was done); V3 done; V4 not_due (03-25 > cut)
# S2 (rand 2020-01-01): V1 done; V2 missed (window closed 02-05 < cut);
#   V3 overdue (target 02-26 <= cut, window open to 03-04; 4 days since target); V4 not_due
# S3 (rand 2019-12-01, withdrew 2020-01-15; targets 12-01, 12-29, 01-26, 02-23):
#   V1 done; V2 missed (target before the withdrawal, window closed 01-05); V3, V4 not_expected
# S4 (rand 2020-02-20, died 2020-02-22; targets 02-20, 03-19, ...): V1 done; V2-V4 not_expected
EXPECTED_STATUS = {
    "S1": ["done", "missed", "done", "not_due"],
    "S2": ["done", "missed", "overdue", "not_due"],
    "S3": ["done", "missed", "not_expected", "not_expected"],
    "S4": ["done", "not_expected", "not_expected", "not_expected"],
}


def _status(adsl, adqs, cut=CUT):
    return derive_visit_status(adsl, adqs, VISIT_DAYS, VISIT_NAMES, window_days=7, cut_date=cut)


def test_visit_status_hand_computed(adsl, adqs):
    st = _status(adsl, adqs)
    assert len(st) == 4 * 4 and "ARM" not in st.columns
    got = {s: list(g.sort_values("AVISITN")["status"]) for s, g in st.groupby("USUBJID")}
    assert got == EXPECTED_STATUS
    s1 = st[st["USUBJID"] == "S1"].set_index("AVISITN")
    assert list(s1["target_date"]) == [D("2020-01-01"), D("2020-01-29"), D("2020-02-26"), D("2020-03-25")]
    assert list(s1["window_end"]) == [D("2020-01-08"), D("2020-02-05"), D("2020-03-04"), D("2020-04-01")]
    assert s1.loc[3, "assessment_date"] == D("2020-02-26") and pd.isna(s1.loc[2, "assessment_date"])
    assert list(s1["AVISIT"]) == VISIT_NAMES and list(s1["site"].unique()) == ["A"]


def test_overdue_listing(adsl, adqs):
    od = list_overdue_visits(_status(adsl, adqs))
    assert od.to_dict("records") == [{"site": "A", "USUBJID": "S2", "AVISIT": "Month 2",
                                      "target_date": D("2020-02-26"), "window_end": D("2020-03-04"),
                                      "days_since_target": 4}]


def test_status_boundaries(adsl, adqs):
    # on the target day itself the visit is due (overdue); the day after the window end it is missed
    assert _status(adsl, adqs, "2020-02-26").query("USUBJID == 'S2' and AVISITN == 3")["status"].item() == "overdue"
    assert _status(adsl, adqs, "2020-02-25").query("USUBJID == 'S2' and AVISITN == 3")["status"].item() == "not_due"
    assert _status(adsl, adqs, "2020-03-04").query("USUBJID == 'S2' and AVISITN == 3")["status"].item() == "overdue"
    assert _status(adsl, adqs, "2020-03-05").query("USUBJID == 'S2' and AVISITN == 3")["status"].item() == "missed"
    # a completed end of study is not a discontinuation; no randomisation date -> unknown
    other = adsl.assign(EOSSTT=["COMPLETED", "ONGOING", "DISCONTINUED", "DISCONTINUED"],
                        EOSDT=[D("2020-01-02")] + list(adsl["EOSDT"][1:]))
    assert list(_status(other, adqs).query("USUBJID == 'S1'")["status"]) == EXPECTED_STATUS["S1"]
    no_rand = adsl.assign(RANDDT=[pd.NaT] + list(adsl["RANDDT"][1:]))
    assert list(_status(no_rand, adqs).query("USUBJID == 'S1'")["status"]) == ["done", "missed", "done", "unknown"]


def test_completeness_by_site_hand_computed(adsl, adqs):
    got = summarize_completeness_by_site(_status(adsl, adqs), adsl)
    expected = pd.DataFrame({
        "site": ["A", "B", "Total"], "subjects": [3, 1, 4],
        "expected": [8, 1, 9], "done": [4, 1, 5], "missed": [3, 0, 3], "overdue": [1, 0, 1],
        "not_due": [2, 0, 2], "not_expected": [2, 3, 5], "percent_done": [50.0, 100.0, 500 / 9]})
    pd.testing.assert_frame_equal(got, expected)
    # without adsl the site comes from the status frame itself: same table
    pd.testing.assert_frame_equal(summarize_completeness_by_site(_status(adsl, adqs)), expected)


def test_entry_lag_hand_computed(adsl, adqs):
    got = summarize_entry_lag(adqs, adsl)
    # site A forms: S1 V1 lag 4 (two item rows, one form), S1 V3 lag 35 (late), S2 V1 lag 30 (not
    # late: "more than 30"), S3 V1 lag 2; site B: S4 V1 has no entry date, S4 visit 99 lag 0.
    expected = pd.DataFrame({
        "site": ["A", "B", "Total"], "records": [4, 1, 5],
        "median_lag": [17.0, 0.0, 4.0],
        # type-7 quantile: A 30 + 0.7 * (35 - 30); Total 30 + 0.6 * (35 - 30)
        "p90_lag": [33.5, 0.0, 33.0],
        "max_lag": [35.0, 0.0, 35.0], "late": [1, 0, 1], "percent_late": [25.0, 0.0, 20.0]})
    pd.testing.assert_frame_equal(got, expected)


def test_entry_lag_needs_an_entry_date(adsl, adqs):
    with pytest.raises(ValueError, match="ENTDT"):
        summarize_entry_lag(adqs.drop(columns="ENTDT"), adsl)


def test_late_entry_threshold_matches_validation():
    from analysis.completeness import LATE_ENTRY_DAYS
    from data_access.validate_rules import LATE_ENTRY_DAYS as VALIDATION_DAYS
    assert LATE_ENTRY_DAYS == VALIDATION_DAYS


# --------------------------------------------------------------------------- demo snapshot
@pytest.fixture(scope="module")
def demo_views(demo_snapshot):
    from data_access.views import open_view
    blinded = open_view(demo_snapshot / "clinical", "steering")
    unblinded = open_view(demo_snapshot / "clinical", "dsmb", allocation_dir=demo_snapshot / "allocation")
    return blinded, unblinded


def test_demo_visit_status_adds_up(demo_views):
    from analysis.outputs import build_table, get_adsl
    blinded, unblinded = demo_views
    status = build_table("visit-status", blinded)
    adsl = get_adsl(blinded, None)
    assert set(status["USUBJID"]) == set(adsl["USUBJID"])                    # every randomised subject
    assert len(status) == len(adsl) * len(blinded.study.visit_days)
    assert set(status["status"]) <= {"done", "missed", "overdue", "not_due", "not_expected", "unknown"}
    # done == visits with an ALSFRS-R record
    adqs = blinded.table("adqs")
    assert (status["status"] == "done").sum() == len(adqs[["USUBJID", "AVISITN"]].drop_duplicates())
    comp = build_table("completeness", blinded)
    assert (comp["done"] + comp["missed"] + comp["overdue"] == comp["expected"]).all()
    sites = comp[comp["site"] != "Total"]
    total = comp[comp["site"] == "Total"].iloc[0]
    for col in ["subjects", "expected", "done", "missed", "overdue", "not_due", "not_expected"]:
        assert sites[col].sum() == total[col], col
    assert total["subjects"] == len(adsl)
    assert total["expected"] + total["not_due"] + total["not_expected"] + (status["status"] == "unknown").sum() \
        == len(status)
    # the simulator misses about 7% of post-baseline visits: completeness is high but not 100%
    assert 80 < total["percent_done"] < 99
    # no arm anywhere, and the unblinded view gives the very same tables
    for name in ("visit-status", "completeness", "overdue-visits", "entry-lag"):
        b = build_table(name, blinded)
        assert not set(b.columns) & {"ARM", "ARMCD", "group"}
        u = build_table(name, unblinded)
        if name == "entry-lag":
            # the blinded view withholds arm-revealing AE terms (injection-site reactions,
            # influenza-like illness): fewer AE records, the same ALSFRS-R forms
            pd.testing.assert_frame_equal(b[b["dataset"] == "adqs"].reset_index(drop=True),
                                          u[u["dataset"] == "adqs"].reset_index(drop=True))
            ae_b, ae_u = (t[t["dataset"] == "adae"].set_index("site")["records"] for t in (b, u))
            assert (ae_b <= ae_u).all() and ae_b["Total"] < ae_u["Total"]
            continue
        pd.testing.assert_frame_equal(b, u)


def test_demo_entry_lag(demo_views):
    from analysis.outputs import build_table
    lag = build_table("entry-lag", demo_views[0])
    assert set(lag["dataset"]) == {"adqs", "adae"}
    total = lag[(lag["dataset"] == "adqs") & (lag["site"] == "Total")].iloc[0]
    # the simulator enters a visit form 1-10 days after the visit
    assert 1 <= total["median_lag"] <= 10 and total["late"] == 0 and total["max_lag"] <= 10


def test_interim_cut_has_overdue_and_not_due_visits(tmp_path):
    """At a cut during follow-up some visits are overdue (window open at the cut) and some not yet
    due; an overdue visit's target is at most one window before the cut."""
    from analysis.outputs import build_table
    from data_access.demo import make_demo
    from data_access.views import open_view
    clinical, _ = make_demo(tmp_path / "interim", cut="2019-06-30", n_subjects=120)
    view = open_view(clinical, "steering")
    status = build_table("visit-status", view)
    counts = status["status"].value_counts()
    assert counts.get("overdue", 0) > 0 and counts.get("not_due", 0) > 0
    od = build_table("overdue-visits", view)
    assert len(od) == counts["overdue"]
    assert od["days_since_target"].between(0, view.study.visit_window).all()
    assert (od["target_date"] <= pd.Timestamp("2019-06-30")).all()
    assert od["days_since_target"].is_monotonic_decreasing
    not_due = status[status["status"] == "not_due"]
    assert (not_due["target_date"] > pd.Timestamp("2019-06-30")).all()
