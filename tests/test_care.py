"""Treatment adherence and vital-status currency (issue 14): hand-counted cases, the outputs on
a small built delivery (blinded, unblinded, without the data they need), and the demo.

Hand-built ADSL (cut 2019-06-30, cycles every 28 days, at most 19, 5 doses):
- A: first dose 2019-01-01, in follow-up: starts Jan 1 + 28k <= Jun 30 -> k = 0..6: 7 due;
  received cycles 1-6 (cycle 3 with 3 doses), cycle 7 not given -> 6 received, 5 complete.
- B: first dose 2019-01-01, died 2019-01-29 (the day cycle 2 would start): 1 due, 1 received.
- C: first dose 2019-06-15, in follow-up: 1 due (Jun 15), 0 received: a due cycle missed.
- D: randomised 2018-01-01, completed 2019-05-31 (EOSDT); cycles to day 504 = 19 due, all given.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.care import cycles_due, no_recent_contact, subject_adherence, summarize_adherence, vital_status_by_site

CUT = "2019-06-30"


def D(*values):
    return pd.to_datetime(pd.Series(values, dtype="object"))


def _adsl():
    return pd.DataFrame({
        "USUBJID": ["A", "B", "C", "D"], "SITEID": ["FR01", "FR01", "UK01", "UK01"],
        "RANDDT": D("2019-01-01", "2019-01-01", "2019-06-15", "2018-01-01"),
        "TRTSDT": D("2019-01-01", "2019-01-01", "2019-06-15", "2018-01-01"),
        "TRTEDT": D("2019-06-08", "2019-01-05", None, "2019-05-24"),
        "EOSDT": D(None, "2019-01-29", None, "2019-05-31"),
        "DTHFL": [None, "Y", None, None], "DTHDT": D(None, "2019-01-29", None, None),
        "LSTALVDT": D("2019-06-20", "2019-01-29", None, "2019-05-31"),
        "SAFFL": ["Y", "Y", "Y", "Y"], "ARM": ["X", "Y", "X", "Y"]})


def _adex():
    rows = [("A", c, 3 if c == 3 else 5) for c in range(1, 7)] + [("B", 1, 5)]
    rows += [("D", c, 5) for c in range(1, 20)]
    return pd.DataFrame(rows, columns=["USUBJID", "CYCLE", "NDOSES"])


def test_cycles_due_follow_the_schedule_death_and_end_of_study():
    assert cycles_due(_adsl(), CUT).tolist() == [7, 1, 1, 19]


def test_adherence_by_participant_hand_counted():
    per = subject_adherence(_adex(), _adsl(), CUT).set_index("USUBJID")
    assert per["due"].tolist() == [7, 1, 1, 19]
    assert per["received"].tolist() == [6, 1, 0, 19]
    assert per["complete"].tolist() == [5, 1, 0, 19]
    assert per["doses"].tolist() == [28, 5, 0, 95]
    assert per["adherence"].round(6).tolist() == [round(600 / 7, 6), 100.0, 0.0, 100.0]
    # A: Jan 1 to Jun 8 inclusive = 159 days
    assert per.loc["A", "months_on_treatment"] == pytest.approx(159 / 30.4375)
    assert np.isnan(per.loc["C", "months_on_treatment"])


def test_adherence_summary_by_group_hand_counted():
    out = summarize_adherence(_adex(), _adsl(), CUT, group_col="ARM", groups=("X", "Y")).set_index("group")
    x, y = out.loc["X"], out.loc["Y"]
    assert (x["n"], x["cycles_due"], x["cycles_received"], x["cycles_not_received"]) == (2, 8, 6, 2)
    assert x["percent_received"] == pytest.approx(75.0)
    assert (x["doses"], x["doses_due"]) == (28, 40)
    # X: per-participant adherence 85.7 % (A) and 0 % (C): median 42.9 %, one adherent of two
    assert x["adherence_median"] == pytest.approx(300 / 7)
    assert (x["n_adherent"], x["percent_adherent"]) == (1, 50.0)
    assert (y["cycles_due"], y["cycles_received"], y["n_adherent"]) == (20, 20, 2)
    pooled = summarize_adherence(_adex(), _adsl(), CUT)
    assert pooled["group"].tolist() == ["All"] and pooled["cycles_due"].item() == 28


def test_vital_status_by_site_hand_counted():
    out = vital_status_by_site(_adsl(), CUT, overdue_days=5).set_index("site")
    # FR01: A in follow-up, last known alive Jun 20 (10 days); B died. UK01: C in follow-up with no
    # date (counted as no contact); D ended (completed) alive
    assert out.loc["FR01", ["randomised", "died", "ended", "in_follow_up"]].tolist() == [2, 1, 0, 1]
    assert (out.loc["FR01", "median_days"], out.loc["FR01", "max_days"], out.loc["FR01", "no_contact"]) == (10, 10, 1)
    assert out.loc["UK01", ["died", "ended", "in_follow_up", "missing_date", "no_contact"]].tolist() == [0, 1, 1, 1, 1]
    assert np.isnan(out.loc["UK01", "median_days"])
    assert out.loc["All sites", ["randomised", "in_follow_up", "no_contact"]].tolist() == [4, 2, 2]
    listing = no_recent_contact(_adsl(), CUT, overdue_days=5)
    assert listing["USUBJID"].tolist() == ["C", "A"]          # no date first, then the longest gap
    assert listing["days_since"].iloc[1] == 10
    assert no_recent_contact(_adsl(), CUT, overdue_days=10).empty is False
    assert no_recent_contact(_adsl(), CUT, overdue_days=10)["USUBJID"].tolist() == ["C"]


# --------------------------------------------------------------------------- outputs on deliveries
@pytest.fixture(scope="module")
def mid_trial(demo_snapshot, tmp_path_factory):
    """The demo cut in the middle of follow-up (participants in follow-up at the cut)."""
    from data_access.cut import cut_snapshot
    root = tmp_path_factory.mktemp("care") / "cut"
    cut_snapshot(demo_snapshot, "2019-12-31", root)
    return root


def test_vital_status_output_on_a_mid_trial_cut_matches_adsl(mid_trial):
    from analysis.outputs import build_table, display_table
    from data_access.views import open_view
    view = open_view(mid_trial, "steering")
    table = build_table("vital-status", view)
    adsl = view.table("adsl")
    total = table[table["site"] == "All sites"].iloc[0]
    assert total["randomised"] == len(adsl)
    assert total["died"] == (adsl["DTHFL"] == "Y").sum()
    follow = (adsl["DTHFL"] != "Y") & adsl["EOSDT"].isna()
    assert total["in_follow_up"] == follow.sum() > 0
    days = (pd.Timestamp("2019-12-31") - pd.to_datetime(adsl.loc[follow, "LSTALVDT"])).dt.days
    assert total["max_days"] == days.max() and total["median_days"] == days.median()
    assert days.min() >= 0 and days.median() > 0        # last contact, not the cut itself
    shown = display_table("vital-status", table, view)
    assert "Paris Pitie-Salpetriere" in shown.to_string() and "Days since last known alive, median" in shown.columns


def test_adherence_is_pooled_blinded_and_by_arm_unblinded(mid_trial):
    from analysis.outputs import build_table, display_table, footnotes
    from data_access.views import open_view
    from tests.conftest import ARM_TOKENS
    blinded = open_view(mid_trial, "steering")
    pooled = build_table("adherence", blinded)
    assert pooled["group"].tolist() == ["All"]
    shown = display_table("adherence", pooled, blinded)
    text = shown.to_string() + " ".join(footnotes("adherence", blinded, title=True))
    assert not any(tok in text for tok in ARM_TOKENS)
    assert "Adherence per participant, median (IQR)" in shown["Statistic"].tolist()
    unblinded = open_view(mid_trial, "dsmb")
    by_arm = build_table("adherence", unblinded)
    assert by_arm["group"].tolist() == list(unblinded.arm_levels)
    assert by_arm["n"].sum() == pooled["n"].item()
    assert by_arm["cycles_due"].sum() == pooled["cycles_due"].item()
    assert by_arm["cycles_received"].sum() == pooled["cycles_received"].item()


def test_a_delivery_without_exposure_or_last_alive_date_says_why(demo_snapshot, tmp_path):
    import pyarrow.parquet as pq
    from analysis.outputs import TableUnavailable, build_table
    from data_access.snapshot import load_datasets, read_manifest, write_snapshot
    from data_access.study import load_study
    from data_access.views import open_view
    clinical = load_datasets(demo_snapshot / "clinical")
    del clinical["adex"]
    clinical["adsl"] = clinical["adsl"].drop(columns="LSTALVDT")
    cut = read_manifest(demo_snapshot / "clinical")["cut_date"]
    write_snapshot(tmp_path / "snap", clinical, None, load_study(), cut, "test")
    view = open_view(tmp_path / "snap", "steering")
    with pytest.raises(TableUnavailable, match="no exposure data"):
        build_table("adherence", view)
    with pytest.raises(TableUnavailable, match="LSTALVDT"):
        build_table("vital-status", view)
    with pytest.raises(TableUnavailable, match="LSTALVDT"):
        build_table("no-contact", view)
