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


# --------------------------------------------------------------------------- concomitant care, deviations
def test_cumulative_incidence_hand_computed():
    """Death competing: t 1 care, 2 death, 3 censored, 4 care, 5 care and 5 censored, 6 death.
    CIF(1) = 1/7; S(2) = 5/7; CIF(4) = 1/7 + 5/7 * 1/4 = 9/28; CIF(5) = 9/28 + 15/28 * 1/3 = 1/2."""
    from analysis.care import cumulative_incidence
    curve, at = cumulative_incidence([1, 2, 3, 4, 5, 5, 6], [1, 2, 0, 1, 1, 0, 2], at=(0, 1, 3, 4, 5, 10))
    assert at == pytest.approx([0, 1 / 7, 1 / 7, 9 / 28, 0.5, 0.5])
    assert curve["time"].tolist() == [0, 1, 2, 4, 5, 6]


R_CIF = """
library(survival)
d <- read.csv("{csv}")
f <- survfit(Surv(time, factor(status, 0:2)) ~ 1, data = d)
s <- summary(f, times = c(100, 320, 640), extend = TRUE)
cat(sprintf("%.10f", s$pstate[, 2]), sep = "\\n")
"""


@pytest.mark.skipif(__import__("shutil").which("Rscript") is None, reason="Rscript not installed (scripts/setup-system.sh)")
def test_cumulative_incidence_matches_r_survfit_aalen_johansen(demo_snapshot, tmp_path):
    """The demo's time to NIV with death competing, against R survival's multi-state survfit
    (Aalen-Johansen) at days 100, 320 and 640, to 1e-8."""
    import subprocess
    from analysis.care import care_times, cumulative_incidence
    from analysis.outputs import get_tte
    view = open_view_blinded(demo_snapshot)
    d = care_times(view.table("adcm"), get_tte(view), "NIV")
    d = d[~d["prevalent"]]
    d[["time", "status"]].to_csv(tmp_path / "niv.csv", index=False)
    script = tmp_path / "cif.R"
    script.write_text(R_CIF.replace("{csv}", str(tmp_path / "niv.csv")))
    run = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=120)
    if run.returncode != 0 and "survival" in run.stderr:
        pytest.skip("R package survival not installed")
    assert run.returncode == 0, run.stderr
    r = [float(x) for x in run.stdout.split()]
    _, ours = cumulative_incidence(d["time"], d["status"], at=(100, 320, 640))
    assert ours == pytest.approx(r, abs=1e-8)
    assert (d["status"] == 1).sum() > 20


def open_view_blinded(root):
    from data_access.views import open_view
    return open_view(root, "steering")


def _care_delivery():
    """Four participants; care days from randomisation and OS (days, censored?)."""
    adsl = pd.DataFrame({"USUBJID": ["A", "B", "C", "D"], "SITEID": ["FR01", "FR01", "UK01", "UK01"],
                         "ARM": ["X", "X", "Y", "Y"]})
    os_tte = pd.DataFrame({"USUBJID": ["A", "B", "C", "D"], "AVAL": [600.0, 200.0, 640.0, 300.0],
                           "CNSR": [1, 0, 1, 0], "ARM": ["X", "X", "Y", "Y"]})
    adcm = pd.DataFrame({
        "USUBJID": ["A", "A", "C", "D", "B", "A", "C"],
        "CARECD": ["NIV", "GASTRO", "PAV", "GASTRO", "MED", "RILUZOLE", "RILUZOLE"],
        "CMCAT": ["ALS SUPPORTIVE PROCEDURE"] * 4 + ["CONCOMITANT MEDICATION"] * 3,
        "CMCLAS": [None] * 4 + ["ANALGESICS", "OTHER NERVOUS SYSTEM DRUGS", "OTHER NERVOUS SYSTEM DRUGS"],
        "CMCLASCD": [None] * 4 + ["N02", "N07", "N07"], "CMDOSFRQ": [None] * 4 + [None, "BID", "QD"],
        "ASTDY": [100, 400, 250, -10, 50, -90, 30]})
    return adsl, os_tte, adcm


def test_care_milestones_hand_counted():
    from analysis.care import summarize_care, summarize_medications
    adsl, os_tte, adcm = _care_delivery()
    table, curves = summarize_care(adcm, os_tte, group_col="ARM", groups=("X", "Y"), times=(320, 640))
    t = table.set_index(["care", "group"])
    # NIV: A at day 100 (X); C's PAV at day 250 starts NIV too (Y); B and D died first
    assert t.loc[("NIV", "X"), ["at_risk", "events", "deaths_first"]].tolist() == [2, 1, 1]
    assert t.loc[("NIV", "Y"), ["events", "deaths_first"]].tolist() == [1, 1]
    # X: A NIV day 100, B death day 200: CIF(320) = 1/2; Y: C NIV 250 (2 at risk), D death 300: 1/2
    assert t.loc[("NIV", "X"), "cif_320"] == pytest.approx(50.0)
    assert t.loc[("NIV", "Y"), "cif_320"] == pytest.approx(50.0)
    # gastrostomy: D's began before randomisation (not at risk); A's at day 400
    assert t.loc[("GASTRO", "Y"), ["prevalent", "at_risk", "events"]].tolist() == [1, 1, 0]
    assert t.loc[("GASTRO", "X"), ["events", "cif_320", "cif_640"]].tolist() == [1, 0.0, pytest.approx(50.0)]
    assert t.loc[("TRACH", "X"), "events"] == 0
    meds = summarize_medications(adcm, adsl, group_col="ARM", groups=("X", "Y")).set_index(["atc_class", "group"])
    assert meds.loc[("ANALGESICS", "X"), "n_subjects"] == 1 and meds.loc[("ANALGESICS", "Y"), "n_subjects"] == 0
    assert meds.loc[("Riluzole dose reduced", "Y"), ["n_subjects", "percent"]].tolist() == [1, 50.0]
    assert meds.loc[("Riluzole dose reduced", "X"), "n_subjects"] == 0


def test_deviations_hand_counted():
    from analysis.care import deviations_by_site, list_important_deviations, summarize_deviations
    adsl, _, _ = _care_delivery()
    addv = pd.DataFrame({"USUBJID": ["A", "A", "B", "C", "Z"], "DVCAT": ["VISIT SCHEDULE", "ELIGIBILITY",
                                                                         "VISIT SCHEDULE", "ELIGIBILITY", "ASSESSMENT"],
                         "DVIMPFL": ["N", "Y", "N", "Y", "N"], "DVTERM": ["late", "criterion", "late", "criterion", "x"],
                         "ASTDT": D("2019-01-01", "2018-06-01", "2019-02-01", "2018-07-01", "2019-01-01"),
                         "ASTDY": [100, 0, 120, 0, 5]})
    out = summarize_deviations(addv, adsl, group_col="ARM", groups=("X", "Y")).set_index(["category", "importance", "group"])
    assert out.loc[("Any category", "Any", "X"), ["n_deviations", "n_subjects", "percent"]].tolist() == [3, 2, 100.0]
    assert out.loc[("Any category", "Important", "Y"), ["n_deviations", "n_subjects"]].tolist() == [1, 1]
    assert ("ASSESSMENT", "Any", "X") not in out.index          # Z is not randomised: not counted
    site = deviations_by_site(addv, adsl).set_index("site")
    assert site.loc["FR01", ["participants", "deviations", "important"]].tolist() == [2, 3, 1]
    assert site.loc["All sites", ["deviations", "subjects_with_important", "per_participant"]].tolist() == [4, 2, 1.0]
    listing = list_important_deviations(addv, adsl)
    assert listing[["USUBJID", "site", "category"]].values.tolist() == [["A", "FR01", "ELIGIBILITY"],
                                                                         ["C", "UK01", "ELIGIBILITY"]]


def test_care_and_deviation_outputs_blinded_pooled_and_absent_when_not_delivered(demo_snapshot, tmp_path):
    from analysis.outputs import TableUnavailable, build_figure, build_table, display_table, footnotes
    from data_access.snapshot import load_datasets, read_manifest, write_snapshot
    from data_access.study import load_study
    from data_access.views import open_view
    from tests.conftest import ARM_TOKENS
    blinded = open_view(demo_snapshot, "steering")
    unblinded = open_view(demo_snapshot, "dsmb")
    for name in ("concomitant-care", "medications", "deviations", "deviations-by-site", "important-deviations"):
        pooled = build_table(name, blinded)
        text = display_table(name, pooled, blinded).to_csv() + pooled.to_csv() + " ".join(footnotes(name, blinded, True))
        assert not any(tok in text for tok in ARM_TOKENS), name
        if "group" in pooled.columns:
            assert set(pooled["group"]) == {"All"}, name
            by_arm = build_table(name, unblinded)
            assert set(by_arm["group"]) == set(unblinded.arm_levels), name
    fig = build_figure("care-incidence", blinded)
    assert not any(tok in fig.to_json() for tok in ARM_TOKENS)
    # the pooled NIV count is the sum over arms
    care_b = build_table("concomitant-care", blinded).set_index("care")
    care_u = build_table("concomitant-care", unblinded).groupby("care")["events"].sum()
    assert care_b.loc["NIV", "events"] == care_u["NIV"] > 0
    clinical = load_datasets(demo_snapshot / "clinical")
    del clinical["adcm"], clinical["addv"]
    write_snapshot(tmp_path / "snap", clinical, None, load_study(), read_manifest(demo_snapshot / "clinical")["cut_date"], "t")
    bare = open_view(tmp_path / "snap", "steering")
    for name, words in (("concomitant-care", "concomitant care"), ("medications", "concomitant care"),
                        ("deviations", "protocol deviations"), ("important-deviations", "protocol deviations")):
        with pytest.raises(TableUnavailable, match=words):
            build_table(name, bare)
    with pytest.raises(TableUnavailable):
        build_figure("care-incidence", bare)


def test_interruptions_hand_counted_and_simulated_reasons(demo_snapshot):
    from analysis.care import summarize_interruptions
    adsl = pd.DataFrame({"USUBJID": ["A", "B", "C"], "ARM": ["X", "X", "Y"]})
    adex = pd.DataFrame({"USUBJID": ["A", "A", "A", "B", "C", "Z"], "CYCLE": [1, 2, 3, 1, 1, 1],
                         "NDOSES": [5, 3, 0, 4, 5, 0],
                         "EXADJ": [None, "ADVERSE EVENT", "ADVERSE EVENT", None, None, "DEATH"]})
    out = summarize_interruptions(adex, adsl, group_col="ARM", groups=("X", "Y")).set_index(["reason", "group"])
    assert out.loc[("Any reason", "X"), ["cycles", "n_subjects", "percent"]].tolist() == [3, 2, 100.0]
    assert out.loc[("ADVERSE EVENT", "X"), ["cycles", "n_subjects"]].tolist() == [2, 1]
    assert out.loc[("Not recorded", "X"), "cycles"] == 1              # B's cycle has no reason
    assert out.loc[("Any reason", "Y"), "cycles"] == 0                # C complete; Z not randomised
    # the demo: a reason exactly for the incomplete cycles; death only for participants who died
    ex = pd.read_parquet(demo_snapshot / "clinical" / "adex.parquet")
    sl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    assert (ex["EXADJ"].notna() == (ex["NDOSES"] < 5)).all()
    dead = set(sl.loc[sl["DTHFL"] == "Y", "USUBJID"])
    assert set(ex.loc[ex["EXADJ"] == "DEATH", "USUBJID"]) <= dead


def test_a_medication_whose_name_or_indication_reveals_the_arm_is_withheld_from_blinded_views(demo_snapshot, tmp_path):
    """A blinded insider reading concomitant care: a drug given for injection-site reactions
    (its indication matches an arm-revealing AE pattern) or a premedication the study file declares
    (``[blinding] arm_revealing_medications``) is absent from the blinded view, the medications
    table, every profile and the view's CSV; named (not counted) in ``withheld``; the unblinded view
    keeps them."""
    import dataclasses
    from analysis.outputs import build_table
    from analysis.outputs.profile import build_profile, profile_markdown
    from data_access.snapshot import load_datasets, read_manifest, write_snapshot
    from data_access.study import load_study
    from data_access.views import open_view
    clinical = load_datasets(demo_snapshot / "clinical")
    cm = clinical["adcm"]
    subject = cm["USUBJID"].iloc[0]
    extra = cm.iloc[[0, 0]].copy()
    extra["CMTRT"] = ["HYDROCORTISONE CREAM", "PREMEDIX"]
    extra["CMDECOD"] = ["HYDROCORTISONE", "PREMEDIX"]
    extra["CMCAT"] = "CONCOMITANT MEDICATION"
    extra["CARECD"] = "MED"
    extra["CMCLAS"], extra["CMCLASCD"] = ["CORTICOSTEROIDS, DERMATOLOGICAL PREPARATIONS", "ANALGESICS"], ["D07", "N02"]
    cm = cm.assign(CMINDC=None)
    extra["CMINDC"] = ["Injection site reaction", "Before study drug"]
    clinical["adcm"] = pd.concat([cm, extra], ignore_index=True)
    base = load_study()
    study = dataclasses.replace(base, raw={**base.raw, "blinding": {**base.raw["blinding"],
                                                                   "arm_revealing_medications": ["(?i)premedix"]}})
    alloc = load_datasets(demo_snapshot / "allocation")["allocation"]
    write_snapshot(tmp_path / "snap", clinical, alloc, study, read_manifest(demo_snapshot / "clinical")["cut_date"], "t")
    blinded = open_view(tmp_path / "snap", "steering", study=study)
    shown = blinded.table("adcm")
    assert len(shown) == len(cm) and not shown["CMDECOD"].isin(["HYDROCORTISONE", "PREMEDIX"]).any()
    kinds = {(k, n) for k, n, _ in blinded.withheld.get("adcm", [])}
    assert ("medication", "PREMEDIX") in kinds and ("medication", "Injection site reaction") in kinds
    meds = build_table("medications", blinded)
    assert "CORTICOSTEROIDS, DERMATOLOGICAL PREPARATIONS" not in set(meds["atc_class"])
    text = profile_markdown(build_profile(blinded, subject), blinded)
    assert "PREMEDIX" not in text.upper() and "HYDROCORTISONE" not in text.upper() and "Injection site" not in text
    unblinded = open_view(tmp_path / "snap", "dsmb", study=study)
    assert unblinded.table("adcm")["CMDECOD"].isin(["HYDROCORTISONE", "PREMEDIX"]).sum() == 2


def test_an_imported_trial_without_care_deviations_or_last_alive_date_still_works(demo_snapshot, tmp_path):
    """A sponsor's ADaM delivery with no ADCM, no ADDV and no LSTALVDT, through `mirocals import`:
    the new tables say what was not delivered (exit 2, one line), adherence and the profile still
    work, and the open report renders with a sentence in place of each absent table."""
    import io
    import os
    from contextlib import redirect_stderr, redirect_stdout
    from mirocals.cli import main
    from reports.render import render_report
    xpt = tmp_path / "xpt"
    with redirect_stdout(io.StringIO()):
        assert main(["export", "--data", str(demo_snapshot), "--allocation", str(demo_snapshot / "allocation"),
                     "--format", "xpt", "--out", str(xpt)]) == 0
    for name in ("adcm.xpt", "addv.xpt"):
        (xpt / name).unlink()
    import pyreadstat
    adsl, meta = pyreadstat.read_xport(str(xpt / "adsl.xpt"))
    pyreadstat.write_xport(adsl.drop(columns="LSTALVDT"), str(xpt / "adsl.xpt"), table_name="ADSL")
    with redirect_stdout(io.StringIO()):
        assert main(["import", "--src", str(xpt), "--out", str(tmp_path / "snap")]) == 0
    snap = tmp_path / "snap"
    for name, words in (("concomitant-care", "concomitant care"), ("medications", "concomitant care"),
                        ("deviations", "protocol deviations"), ("deviations-by-site", "protocol deviations"),
                        ("vital-status", "LSTALVDT"), ("no-contact", "LSTALVDT")):
        err = io.StringIO()
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            assert main(["table", name, "--data", str(snap), "--view", "blinded"]) == 2, name
        assert words in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["table", "adherence", "--data", str(snap), "--view", "blinded"]) == 0
    subject = adsl["USUBJID"].iloc[0]
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["profile", subject, "--data", str(snap)]) == 0
    assert "no concomitant-care dataset (adcm)" in out.getvalue()
    os.environ.setdefault("MIROCALS_AUDIT_LOG", str(tmp_path / "audit.log"))
    render_report("dsmb-open", snap, out_dir=tmp_path / "report", to=("html",), progress=lambda m: None,
                  keep_intermediates=True)
    md = (tmp_path / "report" / "dsmb-open" / "dsmb_open.md").read_text()
    assert "not shown, concomitant-care table not available: no adcm dataset" in md
    assert "not shown, deviations-by-site table not available: no addv dataset" in md
    assert "not shown, ADSL has no date last known alive (LSTALVDT)" in md
