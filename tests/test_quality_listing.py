"""What a data manager acts on (issue 13): the missed and overdue visits (output ``missed-visits``)
and the validation problems with their site, value and rule in words, exported per site as a
query list (CSV and XLSX).

A small delivery is built here (four subjects of the demo's ADSL with hand-set dates, an ADQS of
chosen visits and three planted problems) and written as a real snapshot; the expected rows are
counted by hand below. Blinding: neither the listing nor the problems carry an arm column or an
arm label for a blinded view, and a blinded site filter below the minimum cell size gets counts
only.
"""
from __future__ import annotations

import io

import pandas as pd
import pytest

from conftest import ARM_TOKENS

CUT = "2018-06-15"
D = pd.Timestamp

# Hand-set subjects (visit days 0, 28, 56, 84, 168, ...; window 14 days; cut 2018-06-15):
# A  FR01  rand 2018-01-01; visits 1, 2, 4 done   -> Month 2 (target 02-26) missed: a later visit done;
#                                                    109 days since target; Month 6 (06-18) not due
# B  FR01  rand 2018-03-01; visits 1, 2 done      -> Month 2 (04-26, window closed 05-10) missed, 50 days;
#                                                    Month 3 (05-24, window closed 06-07) missed, 22 days
# C  FR02  rand 2018-05-10; visit 1 done          -> Month 1 (06-07, window open to 06-21) overdue, 8 days
# D  UK01  rand 2018-01-15, died 2018-02-01       -> nothing expected after baseline: no row
SUBJECTS = {  # USUBJID: (SITEID, RANDDT, visits done, DTHDT)
    "MIR-FR01-0001": ("FR01", "2018-01-01", (1, 2, 4), None),
    "MIR-FR01-0002": ("FR01", "2018-03-01", (1, 2), None),
    "MIR-FR02-0001": ("FR02", "2018-05-10", (1,), None),
    "MIR-UK01-0001": ("UK01", "2018-01-15", (1,), "2018-02-01"),
}
EXPECTED_LISTING = [  # site, site name, subject, visit, target date, window closes, status, days
    ("FR01", "Paris Pitie-Salpetriere", "MIR-FR01-0001", "Month 2", "2018-02-26", "2018-03-12", "missed", 109),
    ("FR01", "Paris Pitie-Salpetriere", "MIR-FR01-0002", "Month 2", "2018-04-26", "2018-05-10", "missed", 50),
    ("FR01", "Paris Pitie-Salpetriere", "MIR-FR01-0002", "Month 3", "2018-05-24", "2018-06-07", "missed", 22),
    ("FR02", "Lyon", "MIR-FR02-0001", "Month 1", "2018-06-07", "2018-06-21", "overdue", 8),
]
# Planted problems: FR01 (subject B) an item score of 7 (0-4 allowed) and a duplicated record;
# FR02 (subject C) a visit form entered 45 days after the visit (warning); and a record of a
# subject not in ADSL (no site).
FR01_PROBLEMS = {("MIR-FR01-0002", "value_out_of_range", "7"), ("MIR-FR01-0002", "duplicate_record", "MIR-FR01-0002")}


@pytest.fixture(scope="module")
def delivery(demo_snapshot, tmp_path_factory, study):
    """The small delivery as a real snapshot (clinical part only, as a blinded deployment)."""
    from data_access.snapshot import write_snapshot
    demo_adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    demo_adqs = pd.read_parquet(demo_snapshot / "clinical" / "adqs.parquet")
    template = demo_adsl.iloc[0]
    items = [demo_adqs[demo_adqs["PARAMCD"] == code].iloc[0] for code in ("ALSFRS01", "ALSFR05A")]
    adsl, adqs = [], []
    for usubjid, (site, rand, done, death) in SUBJECTS.items():
        row = template.copy()
        row["USUBJID"], row["SUBJID"], row["SITEID"] = usubjid, usubjid[4:], site
        row["COUNTRY"] = "France" if site.startswith("FR") else "UK"
        row["STRATUM"] = f"{row['COUNTRY']}/{row['ONSET']}"
        row["RANDDT"] = row["TRTSDT"] = D(rand).date()
        row["SCRNDT"] = (D(rand) - pd.Timedelta(days=90)).date()
        row["EOSSTT"], row["DCSREAS"], row["EOSDT"] = "ONGOING", None, None
        last_visit = (D(rand) + pd.Timedelta(days=study.visit_days[max(done) - 1])).date()
        row["DTHFL"], row["DTHDT"], row["TRTEDT"], row["LSTALVDT"] = None, None, None, last_visit
        if death:
            row["EOSSTT"], row["DCSREAS"], row["EOSDT"] = "DISCONTINUED", "DEATH", D(death).date()
            row["DTHFL"], row["DTHDT"], row["TRTEDT"], row["LSTALVDT"] = "Y", D(death).date(), D(death).date(), \
                D(death).date()
        adsl.append(row)
        for visit, item in ((v, i) for v in done for i in items):     # two items a visit (5a, not 5b)
            day = study.visit_days[visit - 1]
            q = item.copy()
            q["USUBJID"], q["AVISITN"], q["AVISIT"], q["ADY"] = usubjid, visit, study.visit_names[visit - 1], day
            q["ADT"] = (D(rand) + pd.Timedelta(days=day)).date()
            q["ENTDT"] = (D(rand) + pd.Timedelta(days=day + 2)).date()
            q["AVAL"] = q["BASE"] = 4.0
            q["CHG"], q["ABLFL"] = 0.0, "Y" if visit == 1 else None
            adqs.append(q)
    adsl, adqs = pd.DataFrame(adsl).reset_index(drop=True), pd.DataFrame(adqs).reset_index(drop=True)
    item1 = adqs["PARAMCD"] == "ALSFRS01"
    b = adqs.index[(adqs["USUBJID"] == "MIR-FR01-0002") & (adqs["AVISITN"] == 2) & item1][0]
    adqs.loc[b, ["AVAL", "CHG"]] = [7.0, 3.0]                                  # FR01: out of range
    c = adqs["USUBJID"] == "MIR-FR02-0001"
    adqs.loc[c, "ENTDT"] = (D("2018-05-10") + pd.Timedelta(days=45)).date()    # FR02: entered late
    dup = adqs.index[(adqs["USUBJID"] == "MIR-FR01-0002") & (adqs["AVISITN"] == 1) & item1]
    adqs = pd.concat([adqs, adqs.loc[dup],                                     # FR01: duplicated record
                      adqs.loc[[0, 1]].assign(USUBJID="MIR-XX99-0001")], ignore_index=True)   # no site
    root = tmp_path_factory.mktemp("quality") / "delivery"
    write_snapshot(root, {"adsl": adsl, "adqs": adqs}, None, study, CUT, source="tests/test_quality_listing.py",
                   created="2026-12-02T00:00:00Z")
    return root


@pytest.fixture(scope="module")
def blinded(delivery):
    from data_access.views import open_view
    return open_view(delivery / "clinical", "steering")


# --------------------------------------------------------------------------- missed-visits
def test_missed_visit_listing_hand_counted(blinded):
    from analysis.outputs import OUTPUTS, build_table
    listing = build_table("missed-visits", blinded)
    assert list(listing.columns) == list(OUTPUTS["missed-visits"].columns)
    got = [(r.site, r.site_name, r.USUBJID, r.AVISIT, f"{r.target_date:%Y-%m-%d}", f"{r.window_end:%Y-%m-%d}",
            r.status, int(r.days_overdue)) for r in listing.itertuples(index=False)]
    assert got == EXPECTED_LISTING
    # the listing is the visit-status rows missed or overdue, nothing more or less
    status = build_table("visit-status", blinded)
    assert len(listing) == status["status"].isin(["missed", "overdue"]).sum()


def test_missed_visit_display_is_in_words(blinded):
    from analysis.outputs import build_table, display_table
    shown = display_table("missed-visits", build_table("missed-visits", blinded), blinded)
    assert list(shown.columns) == ["Site", "Site name", "Subject", "Visit", "Target date", "Window closes",
                                   "Status", "Days since target date"]
    assert list(shown["Status"]) == ["Missed", "Missed", "Missed", "Overdue"]
    assert list(shown["Target date"]) == [row[4] for row in EXPECTED_LISTING]


def test_missed_visits_from_the_command_line(delivery):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "mirocals", "table", "missed-visits", "--data", str(delivery),
                          "--view", "blinded"], capture_output=True, text=True, check=True).stdout
    csv = pd.read_csv(io.StringIO(out))
    assert list(csv["USUBJID"]) == [row[2] for row in EXPECTED_LISTING]
    assert list(csv["days_overdue"]) == [row[7] for row in EXPECTED_LISTING]


def test_missed_visits_follow_a_site_filter(blinded, demo_snapshot):
    from analysis.outputs import build_table
    from dashboard.cell_size import FilteredView, SmallCellError
    from dashboard.context import Filters
    from data_access.views import open_view
    # the small delivery has 4 subjects: a blinded site filter selects fewer than k = 5: counts only
    with pytest.raises(SmallCellError):
        build_table("missed-visits", FilteredView(blinded, Filters(sites=("FR01",))))
    # the demo's FR08 (six subjects) is allowed: its rows only, the same rows as unfiltered
    demo = open_view(demo_snapshot / "clinical", "steering")
    everyone = build_table("missed-visits", demo)
    fr08 = build_table("missed-visits", FilteredView(demo, Filters(sites=("FR08",))))
    assert len(fr08) and set(fr08["site"]) == {"FR08"}
    pd.testing.assert_frame_equal(fr08, everyone[everyone["site"] == "FR08"].reset_index(drop=True))


# --------------------------------------------------------------------------- validation problems
@pytest.fixture(scope="module")
def problems(delivery, study):
    from data_access.validate import validate_blinded
    return validate_blinded(delivery)


def test_problems_carry_site_value_and_rule(problems):
    from data_access.validate_dataset import COLUMNS
    assert list(problems.columns) == COLUMNS == ["site", "subject", "dataset", "column", "rule", "value", "message",
                                                 "severity"]
    fr01 = problems[problems["site"] == "FR01"]
    assert set(zip(fr01["subject"], fr01["rule"], fr01["value"])) == FR01_PROBLEMS
    late = problems[problems["rule"] == "late_entry"]
    assert late[["site", "subject", "severity"]].values.tolist() == [["FR02", "MIR-FR02-0001", "warning"]]
    assert "entered 45 days later" in late["message"].iloc[0]
    stray = problems[problems["subject"] == "MIR-XX99-0001"]
    assert list(stray["rule"]) == ["subject_not_in_adsl"] and list(stray["site"]) == [""]


def test_rules_read_as_words():
    from data_access.rule_text import RULE_TEXT, rule_text
    assert rule_text("late_entry") == "Entered late (more than 30 days after the visit or event)"
    assert rule_text("visit_after_death") == "Visit after death"          # a rule without an entry
    assert rule_text(None) == ""
    documented = open("data_access/DATASETS.md").read().split("### Validation rule names")[1]
    import re
    for rule in re.findall(r"`([a-z]+(?:_[a-z]+)+)`", documented):
        assert rule in RULE_TEXT, f"rule {rule} (data_access/DATASETS.md) has no words in data_access/rule_text.py"
    assert all("_" not in text for text in RULE_TEXT.values())


def test_people_see_each_message_whole_and_no_code(problems):
    from data_access.validate import describe_problems
    shown = describe_problems(problems)
    assert list(shown.columns) == ["Site", "Subject", "Dataset", "Column", "Rule", "Value", "Problem", "Severity"]
    assert list(shown["Problem"]) == list(problems["message"])               # whole, not cut
    assert not shown["Rule"].str.contains("_").any()
    assert set(shown["Severity"]) == {"Error", "Warning"}
    assert shown.loc[problems["site"].eq("").to_numpy(), "Site"].eq("—").all()


def test_query_list_per_site_in_xlsx_and_csv(problems):
    import openpyxl
    from data_access.validate import query_list_csv, query_list_xlsx
    book = openpyxl.load_workbook(io.BytesIO(query_list_xlsx(problems, "FR01", CUT)))
    sheet = book["Queries"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0] == ["Site", "Subject", "Dataset", "Column", "Rule", "Value", "Problem", "Severity"]
    assert len(rows) - 1 == 2 == (problems["site"] == "FR01").sum()           # FR01's problems, no other
    assert {r[0] for r in rows[1:]} == {"FR01"}
    assert {(r[1], r[4], r[5]) for r in rows[1:]} == {
        ("MIR-FR01-0002", "Value out of range", "7"), ("MIR-FR01-0002", "Duplicated record", "MIR-FR01-0002")}
    assert all(r[6] in set(problems["message"]) for r in rows[1:])            # whole messages
    assert sheet.freeze_panes == "A2"
    csv = pd.read_csv(io.BytesIO(query_list_csv(problems, "FR02")), encoding="utf-8-sig", dtype=str)
    assert csv[["Site", "Subject", "Rule", "Severity"]].values.tolist() == [
        ["FR02", "MIR-FR02-0001", "Entered late (more than 30 days after the visit or event)", "Warning"]]
    empty = openpyxl.load_workbook(io.BytesIO(query_list_xlsx(problems, "UK01", CUT)))["Queries"]
    assert empty.max_row == 1                                                # a header only: UK01 has none


def test_validation_by_rule_lists_each_rule_once():
    # the page's "Problems by rule": one row per rule even when a rule is reported both as an error
    # and as a warning (a required and an optional column missing)
    from data_access.validate import summarize_problems_by_rule
    problems = pd.DataFrame({
        "rule": ["missing_column", "missing_column", "late_entry", "late_entry", "late_entry", "file_empty"],
        "severity": ["error", "warning", "warning", "warning", "warning", "error"],
        "subject": ["", "", "S1", "S1", "S2", ""]})
    by_rule = summarize_problems_by_rule(problems)
    assert by_rule.values.tolist() == [["late_entry", 0, 3, 2], ["missing_column", 1, 1, 0], ["file_empty", 1, 0, 0]]
    assert list(by_rule.columns) == ["rule", "errors", "warnings", "subjects"]


# --------------------------------------------------------------------------- blinding
def test_listing_and_problems_carry_no_arm_for_a_blinded_view(demo_snapshot, tmp_path):
    from analysis.outputs import build_table, display_table
    from data_access.demo import make_demo
    from data_access.validate import describe_problems, query_list_xlsx, validate_blinded
    from data_access.views import open_view
    # the messy demo (planted problems) at an interim cut: missed and overdue visits, problems
    make_demo(tmp_path / "messy", cut="2019-06-30", n_subjects=120, messy=True)
    view = open_view(tmp_path / "messy" / "clinical", "investigator")
    assert view.blinded and view.group_col is None
    listing = build_table("missed-visits", view)
    assert set(listing["status"]) == {"missed", "overdue"}
    problems = validate_blinded(tmp_path / "messy")
    assert len(problems) and problems["site"].ne("").any()
    arm = {"ARM", "ARMCD", "TRT01P", "TRT01A", "group", "Arm"}
    for frame in (listing, display_table("missed-visits", listing, view), problems, describe_problems(problems)):
        assert not set(frame.columns) & arm
        text = frame.to_csv(index=False)
        assert not [t for t in ARM_TOKENS if t in text]
    site = problems.loc[problems["site"].ne(""), "site"].iloc[0]
    import openpyxl
    book = openpyxl.load_workbook(io.BytesIO(query_list_xlsx(problems, site, "2019-06-30")))
    cells = " ".join(str(c.value) for r in book["Queries"].iter_rows() for c in r)
    assert not [t for t in ARM_TOKENS if t in cells]


def test_a_data_managers_filters_survive_a_visit_to_another_tab(demo_snapshot, monkeypatch, tmp_path):
    """Lazy tabs draw only the open tab, and Streamlit forgets a widget it does not draw: the
    missed-visit filters must still be set when the data manager comes back to the tab."""
    from data_access.cut import cut_snapshot
    from tests.test_dashboard_apptest import open_tab, sign_in, visit
    cut_snapshot(demo_snapshot, "2019-12-31", tmp_path / "cut")          # visits overdue and missed
    monkeypatch.setenv("MIROCALS_DATA", str(tmp_path / "cut"))
    at = visit(sign_in("investigator"), "quality.py")
    open_tab(at, "quality.py", "Missed and overdue visits")
    site = at.multiselect(key="mv_site").options[0]
    at.multiselect(key="mv_site").set_value([site])
    at.multiselect(key="mv_status").set_value(["Missed"])
    at.run()
    chosen = at.multiselect(key="mv_site").value
    shown = at.dataframe[0].value
    assert len(chosen) == 1 and (shown["Status"] == "Missed").all()
    open_tab(at, "quality.py", "Validation problems")
    open_tab(at, "quality.py", "Missed and overdue visits")
    assert at.multiselect(key="mv_site").value == chosen and at.multiselect(key="mv_status").value == ["Missed"]
    pd.testing.assert_frame_equal(at.dataframe[0].value, shown)
