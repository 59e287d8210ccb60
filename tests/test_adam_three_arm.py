"""Any sponsor's ADaM delivery: a small, NON-MIROCALS trial written as SAS transport files in the
test itself (three arms, no stratification, survival PARAMCD "TTDEATH" with a 365-day landmark,
ITT played by FASFL, no screening log, no functional score, no labs), imported with
``data_access/studies/example_three_arm.toml`` and checked table by table against values
computed by hand in the comments.

The delivery (4 subjects per arm; AVAL in days, CNSR 1 = censored; "+" marks a censored time)::

    Drug X 20 mg (X20):  S01 100   S02 200+   S03 300   S04 400+
    Drug X 10 mg (X10):  S05  50+  S06 150    S07 250   S08 365+
    Placebo      (PBO):  S09  30   S10  60    S11  90   S12 500+

S12 was never dosed (SAFFL "N"): the safety population is 4 / 4 / 3.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from data_access.arm_scan import ARM_VARIABLE
from data_access.study import load_study
from data_access.views import open_view
from test_cli import run as run_cli  # the CLI run in-process: (status, stdout, stderr)

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "data_access" / "studies" / "example_three_arm.toml"
ARMS = ("Drug X 20 mg", "Drug X 10 mg", "Placebo")
RANDDT = dt.date(2021, 3, 1)

SUBJECTS = [  # USUBJID, site, arm (TRT01P), AGE, SEX, WEIGHT, AVAL, CNSR, SAFFL
    ("EX3-S01", "S01", "Drug X 20 mg", 50, "F", 60.0, 100, 0, "Y"),
    ("EX3-S02", "S01", "Drug X 20 mg", 60, "M", 70.0, 200, 1, "Y"),
    ("EX3-S03", "S02", "Drug X 20 mg", 70, "F", 80.0, 300, 0, "Y"),
    ("EX3-S04", "S02", "Drug X 20 mg", 80, "M", 90.0, 400, 1, "Y"),
    ("EX3-S05", "S01", "Drug X 10 mg", 40, "M", 75.0, 50, 1, "Y"),
    ("EX3-S06", "S01", "Drug X 10 mg", 45, "M", 85.0, 150, 0, "Y"),
    ("EX3-S07", "S02", "Drug X 10 mg", 55, "F", 65.0, 250, 0, "Y"),
    ("EX3-S08", "S02", "Drug X 10 mg", 60, "F", 55.0, 365, 1, "Y"),
    ("EX3-S09", "S01", "Placebo", 66, "M", 72.0, 30, 0, "Y"),
    ("EX3-S10", "S01", "Placebo", 70, "F", 68.0, 60, 0, "Y"),
    ("EX3-S11", "S02", "Placebo", 74, "M", 77.0, 90, 0, "Y"),
    ("EX3-S12", "S02", "Placebo", 78, "F", 63.0, 500, 1, "N"),
]

AES = [  # USUBJID, AEBODSYS, AEDECOD, AESEV, AESER, TRTEMFL
    ("EX3-S01", "Gastrointestinal disorders", "Nausea", "MILD", "N", "Y"),
    ("EX3-S01", "Gastrointestinal disorders", "Nausea", "MODERATE", "N", "Y"),   # 2nd event, same subject
    ("EX3-S02", "Nervous system disorders", "Headache", "MILD", "N", "Y"),
    ("EX3-S05", "Gastrointestinal disorders", "Nausea", "MILD", "N", "Y"),
    ("EX3-S06", "Gastrointestinal disorders", "Diarrhoea", "SEVERE", "Y", "Y"),
    ("EX3-S09", "Nervous system disorders", "Headache", "MILD", "N", "Y"),
    ("EX3-S10", "Nervous system disorders", "Headache", "MILD", "N", "N"),      # before dosing: not TEAE
    ("EX3-S12", "Nervous system disorders", "Headache", "MILD", "N", "Y"),      # not in safety population
]


VERBATIM = {"Nausea": "Nausée", "Headache": "Céphalée", "Diarrhoea": "Diarrhée"}


def _recode_latin1(path: Path, texts) -> None:
    """pyreadstat writes UTF-8: re-encode the given values in place as latin-1, blank-padded to
    the same byte width (XPT character fields are fixed-width and blank-padded)."""
    data = path.read_bytes()
    for text in texts:
        utf8, latin1 = text.encode("utf-8"), text.encode("latin-1")
        data = data.replace(utf8, latin1 + b" " * (len(utf8) - len(latin1)))
    path.write_bytes(data)


def write_delivery(folder: Path, mutate=None) -> Path:
    """adsl.xpt, adtte.xpt and adae.xpt as a sponsor sends them: SAS dates with DATE9. formats,
    labels, the arm in TRT01P (ADSL) and TRTP (ADTTE, ADAE). ``mutate(name, df)`` may return a
    changed dataset (to plant problems)."""
    mutate = mutate or (lambda name, df: df)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [dict(zip(("USUBJID", "SITEID", "TRT01P", "AGE", "SEX", "WEIGHT", "AVAL", "CNSR", "SAFFL"), s))
            for s in SUBJECTS]
    adsl = pd.DataFrame({
        "STUDYID": "EXAMPLE-3", "USUBJID": [r["USUBJID"] for r in rows], "SITEID": [r["SITEID"] for r in rows],
        "TRT01P": [r["TRT01P"] for r in rows], "AGE": [float(r["AGE"]) for r in rows],
        "SEX": [r["SEX"] for r in rows], "WEIGHT": [r["WEIGHT"] for r in rows],
        "FASFL": "Y", "SAFFL": [r["SAFFL"] for r in rows], "RANDDT": RANDDT,
        # decoy: the study file maps ITT to FASFL; were ITTFL used, every ITT table would be empty
        "ITTFL": "N",
    })
    adsl = mutate("adsl", adsl)
    pyreadstat.write_xport(adsl, str(folder / "adsl.xpt"), table_name="ADSL", file_format_version=5,
                           variable_format={"RANDDT": "DATE9."},
                           column_labels={"STUDYID": "Study Identifier", "USUBJID": "Unique Subject Identifier",
                                          "SITEID": "Study Site Identifier", "TRT01P": "Planned Treatment for Period 01",
                                          "AGE": "Age", "SEX": "Sex", "WEIGHT": "Weight (kg)",
                                          "FASFL": "Full Analysis Set Population Flag",
                                          "SAFFL": "Safety Population Flag", "RANDDT": "Date of Randomization"})
    adtte = pd.DataFrame({
        "STUDYID": "EXAMPLE-3", "USUBJID": [r["USUBJID"] for r in rows], "TRTP": [r["TRT01P"] for r in rows],
        "PARAMCD": "TTDEATH", "PARAM": "Time to death (days)", "AVAL": [float(r["AVAL"]) for r in rows],
        "CNSR": [float(r["CNSR"]) for r in rows], "STARTDT": RANDDT,
        "ADT": [RANDDT + dt.timedelta(days=r["AVAL"]) for r in rows],
        "EVNTDESC": ["DEATH" if r["CNSR"] == 0 else "LAST KNOWN ALIVE" for r in rows],
    })
    adtte = mutate("adtte", adtte)
    pyreadstat.write_xport(adtte, str(folder / "adtte.xpt"), table_name="ADTTE", file_format_version=5,
                           variable_format={"STARTDT": "DATE9.", "ADT": "DATE9."},
                           column_labels={"AVAL": "Analysis Value", "CNSR": "Censor", "ADT": "Analysis Date"})
    arm_of = {r["USUBJID"]: r["TRT01P"] for r in rows}
    adae = pd.DataFrame(AES, columns=["USUBJID", "AEBODSYS", "AEDECOD", "AESEV", "AESER", "TRTEMFL"])
    adae.insert(0, "STUDYID", "EXAMPLE-3")
    adae["TRTA"] = adae["USUBJID"].map(arm_of)
    adae["ASTDT"] = RANDDT + dt.timedelta(days=10)
    adae["AETERM"] = adae["AEDECOD"].map(VERBATIM)          # investigators' French verbatim terms
    adae = mutate("adae", adae)
    pyreadstat.write_xport(adae, str(folder / "adae.xpt"), table_name="ADAE", file_format_version=5,
                           variable_format={"ASTDT": "DATE9."})
    _recode_latin1(folder / "adae.xpt", VERBATIM.values())   # as a SAS session in latin-1 writes it
    return folder


@pytest.fixture(scope="module")
def three_arm(tmp_path_factory) -> Path:
    """The delivery imported with ``mirocals import``: the snapshot root."""
    base = tmp_path_factory.mktemp("three_arm")
    src = write_delivery(base / "delivery")
    status, out, err = run_cli("import", "--src", src, "--study", STUDY_FILE, "--out", base / "snap")
    assert status == 0, err
    return base / "snap"


def unblinded(root):
    return open_view(root, "statistician")


def blinded(root):
    return open_view(root, "steering")


def build(root, name, view="unblinded", times=None):
    from analysis.outputs import build_table
    v = unblinded(root) if view == "unblinded" else blinded(root)
    with v:
        return build_table(name, v, times=times)


# --------------------------------------------------------------------------- import
def test_import_splits_arms_keeps_dates_labels_and_study(three_arm):
    clinical = three_arm / "clinical"
    for name in ("adsl", "adtte", "adae"):
        cols = pd.read_parquet(clinical / f"{name}.parquet").columns
        assert not [c for c in cols if ARM_VARIABLE.match(c)], name        # TRT01P, TRTP, TRTA moved out
    alloc = pd.read_parquet(three_arm / "allocation" / "allocation.parquet")
    # arms matched by label and coded from the study file; no strata: one stratum "All"
    assert alloc["ARMCD"].tolist() == ["X20"] * 4 + ["X10"] * 4 + ["PBO"] * 4
    assert set(alloc["STRATUM"]) == {"All"}
    from data_access.snapshot import load_datasets
    data = load_datasets(clinical)
    adsl, adtte = data["adsl"], data["adtte"]
    assert set(adsl["RANDDT"].dt.date) == {RANDDT}                            # SAS DATE9. -> a real date
    assert adtte.loc[adtte["USUBJID"] == "EX3-S08", "ADT"].dt.date.tolist() == [dt.date(2022, 3, 1)]  # +365 d
    assert b"C\xe9phal\xe9e" in (three_arm.parent / "delivery" / "adae.xpt").read_bytes()   # latin-1 on disk
    assert set(data["adae"]["AETERM"]) == {"Nausée", "Céphalée", "Diarrhée"}                 # decoded
    labels = json.loads((clinical / "labels.json").read_text())
    assert labels["adsl"]["RANDDT"] == "Date of Randomization"
    assert "TRT01P" not in labels["adsl"]                                     # arm variables stay out
    # the snapshot carries its study: views open it without being told
    with blinded(three_arm) as v:
        assert v.study.id == "EXAMPLE-3" and v.study.survival_paramcd == "TTDEATH"
        assert "TRT01P" not in v.columns("adsl")
    with unblinded(three_arm) as v:
        assert v.arm_levels == ARMS
    # cut-off = the latest date delivered: S12 censored at day 500 (2021-03-01 + 500 d)
    manifest = json.loads((clinical / "manifest.json").read_text())
    assert manifest["cut_date"] == "2022-07-14" and manifest["study"] == "EXAMPLE-3"


# --------------------------------------------------------------------------- tables
def test_at_risk_by_hand(three_arm):
    # n at risk = AVAL >= t; events / censored cumulative up to t. Default times 0, 80, ... to 365.
    got = build(three_arm, "at-risk")
    assert got["time"].unique().tolist() == [0, 80, 160, 240, 320]
    expected = {  # (group, time): (at risk, events, censored)
        ("Drug X 20 mg", 80): (4, 0, 0), ("Drug X 20 mg", 160): (3, 1, 0),   # S01 died d100
        ("Drug X 20 mg", 240): (2, 1, 1), ("Drug X 20 mg", 320): (1, 2, 1),  # S02 cens d200, S03 died d300
        ("Drug X 10 mg", 80): (3, 0, 1), ("Drug X 10 mg", 160): (2, 1, 1),   # S05 cens d50, S06 died d150
        ("Drug X 10 mg", 320): (1, 2, 1),                                    # S07 died d250
        ("Placebo", 80): (2, 2, 0), ("Placebo", 160): (1, 3, 0),             # deaths d30, d60, d90
    }
    idx = got.set_index(["group", "time"])
    for key, (n, e, c) in expected.items():
        assert tuple(idx.loc[key, ["n_at_risk", "n_events", "n_censored"]]) == (n, e, c), key
    assert got["group"].unique().tolist() == list(ARMS)                      # study order, not alphabetical


def test_km_by_hand(three_arm):
    km = build(three_arm, "km").set_index(["group", "time"])["survival"]
    # X20: d100 1 of 4 -> 3/4; d300 1 of 2 at risk -> 3/4 * 1/2 = 3/8
    assert km[("Drug X 20 mg", 100)] == pytest.approx(0.75)
    assert km[("Drug X 20 mg", 300)] == pytest.approx(0.375)
    # X10: S05 censored d50 first; d150 1 of 3 -> 2/3; d250 1 of 2 -> 1/3
    assert km[("Drug X 10 mg", 150)] == pytest.approx(2 / 3)
    assert km[("Drug X 10 mg", 250)] == pytest.approx(1 / 3)
    # PBO: 3/4, 1/2, 1/4
    assert km.loc["Placebo"].tolist() == pytest.approx([1, 0.75, 0.5, 0.25])
    # pooled (blinded) KM: 12 at risk; first death d30 -> 11/12
    pooled = build(three_arm, "km", view="blinded").set_index("time")["survival"]
    assert pooled[30] == pytest.approx(11 / 12)


def test_survival_by_hand(three_arm):
    s = build(three_arm, "survival").set_index("group")
    assert s["landmark_day"].eq(365).all()
    assert s.loc[list(ARMS), "n"].tolist() == [4, 4, 4]
    assert s.loc[list(ARMS), "events"].tolist() == [2, 2, 3]
    # S(365): 3/8, 1/3, 1/4 (S08 censored at exactly 365 does not change it)
    assert s.loc[list(ARMS), "surv_landmark"].tolist() == pytest.approx([0.375, 1 / 3, 0.25])
    # medians: X20 first S <= 0.5 at d300; X10 at d250; PBO flat at exactly 0.5 from d60 to d90:
    # R's rule takes the midpoint (60 + 90) / 2 = 75
    assert s.loc[list(ARMS), "median"].tolist() == pytest.approx([300, 250, 75])
    # RMST to 365 (area under the step function):
    #   X20: 100*1 + 200*3/4 + 65*3/8 = 274.375; X10: 150*1 + 100*2/3 + 115*1/3 = 255;
    #   PBO: 30*1 + 30*3/4 + 30*1/2 + 275*1/4 = 136.25
    assert s.loc[list(ARMS), "rmst"].tolist() == pytest.approx([274.375, 255.0, 136.25])


def test_treatment_effect_each_arm_vs_reference_by_hand(three_arm):
    te = build(three_arm, "treatment-effect")
    assert list(te.columns[:6]) == ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value"]
    assert te["comparison"].unique().tolist() == ["All 3 arms", "Drug X 20 mg vs Placebo", "Drug X 10 mg vs Placebo"]
    # the global log-rank test first: R 4.2.2 survdiff(Surv(AVAL, status) ~ arm) on these 12
    # participants gives Chisq = 1.7525080075 on 2 df, p = 0.4163396008
    glob = te.iloc[0]
    assert glob["method"] == "logrank_global" and glob["note"] == "chi-square on 2 df"
    assert (round(glob["statistic"], 8), round(glob["p_value"], 8)) == (1.75250801, 0.4163396)
    te = te.iloc[1:]
    # no strata: no stratified rows, and the unstratified ones say why
    assert not te["method"].str.contains("stratified").any()
    assert te.loc[te["method"] == "logrank", "note"].str.contains("no stratification factors").all()
    assert te.loc[te["method"] == "logrank", "note"].str.contains("no adqs dataset").all()   # no functional score
    x20 = te[te["comparison"] == "Drug X 20 mg vs Placebo"].set_index("method")
    # log-rank X20 vs PBO, at each death time (n at risk X20/PBO, deaths):
    #   d30 4/4 1 (PBO), d60 4/3 1 (PBO), d90 4/2 1 (PBO), d100 4/1 1 (X20), d300 2/1 1 (X20)
    # E_X20 = 4/8 + 4/7 + 4/6 + 4/5 + 2/3; O_X20 = 2; V = sum n1 n0 d (n-d) / (n^2 (n-1))
    e = Fraction(4, 8) + Fraction(4, 7) + Fraction(4, 6) + Fraction(4, 5) + Fraction(2, 3)
    v = Fraction(16, 64) + Fraction(12, 49) + Fraction(8, 36) + Fraction(4, 25) + Fraction(2, 9)
    assert x20.loc["logrank", "statistic"] == pytest.approx(float((2 - e) ** 2 / v))      # 1.3203
    # landmark: 3/8 - 1/4; RMST: 274.375 - 136.25
    assert x20.loc["landmark_difference", "estimate"] == pytest.approx(0.125)
    assert x20.loc["rmst_difference", "estimate"] == pytest.approx(138.125)
    assert x20.loc["cox", "estimate"] < 1                                     # fewer deaths on X20
    x10 = te[te["comparison"] == "Drug X 10 mg vs Placebo"].set_index("method")
    assert x10.loc["landmark_difference", "estimate"] == pytest.approx(1 / 3 - 1 / 4)
    assert x10.loc["rmst_difference", "estimate"] == pytest.approx(255 - 136.25)


def test_baseline_by_hand(three_arm):
    b = build(three_arm, "baseline")
    assert b["variable"].unique().tolist() == ["AGE", "SEX", "WEIGHT"]       # [analysis] baseline_variables
    val = b.set_index(["variable", "level", "statistic", "group"])["value"]
    assert val[("AGE", "", "mean", "Drug X 20 mg")] == pytest.approx(65)     # (50+60+70+80)/4
    assert val[("AGE", "", "mean", "Drug X 10 mg")] == pytest.approx(50)     # (40+45+55+60)/4
    assert val[("AGE", "", "mean", "Placebo")] == pytest.approx(72)          # (66+70+74+78)/4
    assert val[("AGE", "", "mean", "Total")] == pytest.approx(62.333333)     # 748/12
    assert val[("SEX", "F", "count", "Drug X 10 mg")] == 2
    assert val[("SEX", "F", "percent", "Total")] == pytest.approx(50)        # 6 of 12
    assert val[("WEIGHT", "", "median", "Placebo")] == pytest.approx(70)     # 63 68 | 72 77 -> (68+72)/2


def test_ae_by_hand(three_arm):
    ae = build(three_arm, "ae")
    got = ae.set_index(["soc", "pt", "group"]).sort_index()
    # safety population 4 / 4 / 3 (S12 not dosed: its headache is not counted); S10's headache
    # is not treatment-emergent
    anyae = got.loc[("Any adverse event", "")]
    assert anyae.loc[list(ARMS) + ["Total"], "n_subjects"].tolist() == [2, 2, 1, 5]   # S01 S02 | S05 S06 | S09
    assert anyae.loc[list(ARMS) + ["Total"], "n_events"].tolist() == [3, 2, 1, 6]
    assert anyae.loc[list(ARMS) + ["Total"], "percent"].tolist() == pytest.approx([50, 50, 100 / 3, 500 / 11])
    nausea = got.loc[("Gastrointestinal disorders", "Nausea")]
    assert nausea.loc[list(ARMS), "n_subjects"].tolist() == [1, 1, 0]        # S01 twice counts once
    assert nausea.loc[list(ARMS), "n_events"].tolist() == [2, 1, 0]
    assert build(three_arm, "ae", view="blinded")["group"].unique().tolist() == ["All"]


@pytest.mark.parametrize("name, why", [("consort", "no screening dataset"), ("funnel", "no screening dataset"),
                                       ("alsfrs", "no adqs dataset"), ("labs", "no adlb dataset"),
                                       ("balance", "no stratification factors"), ("deaths", "DTHFL")])
def test_unavailable_tables_say_why(three_arm, name, why):
    from analysis.outputs import TableUnavailable
    with pytest.raises(TableUnavailable, match=why):
        build(three_arm, name, view="blinded")
    status, out, err = run_cli("table", name, "--data", three_arm, "--view", "blinded")
    assert status == 2 and out == ""
    assert why in err and "Traceback" not in err


def test_enrolment_without_a_screening_log_comes_from_adsl(three_arm):
    # S01: subjects 1, 2, 5, 6, 9, 10; S02: 3, 4, 7, 8, 11, 12 -> 6 each, all randomised 2021-03-01;
    # screened is unknown (no log), not zero
    e = build(three_arm, "enrolment", view="blinded").set_index("site_id")
    assert e.loc[["S01", "S02", "Total"], "randomised"].tolist() == [6, 6, 12]
    assert e.loc[["S01", "S02", "Total"], "target"].tolist() == [6, 6, 12]
    assert e.loc[["S01", "Total"], "site_name"].tolist() == ["Besançon", "Total"]
    assert e["screened"].isna().all()
    assert (e["first"].dt.date == RANDDT).all()
    r = build(three_arm, "recruitment", view="blinded")
    assert r[["month", "site_id", "randomised", "cumulative_randomised"]].values.tolist() == [
        ["2021-03", "S01", 6, 6], ["2021-03", "S02", 6, 6]]
    assert r["screened"].isna().all()


def test_cli_tables_on_imported_trial(three_arm):
    status, out, err = run_cli("table", "treatment-effect", "--data", three_arm, "--view", "unblinded",
                               "--allocation", three_arm / "allocation")
    assert status == 0, err
    te = pd.read_csv(io.StringIO(out))
    assert len(te) == 11 and te["comparison"].nunique() == 3     # the global test, then 5 methods x 2 comparisons
    status, out, err = run_cli("table", "km", "--data", three_arm, "--view", "blinded")
    assert status == 0 and not any(arm in out for arm in ARMS)


# --------------------------------------------------------------------------- dashboard
@pytest.fixture
def imported_deployment(three_arm, monkeypatch):
    monkeypatch.setenv("MIROCALS_DATA", str(three_arm))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(three_arm / "allocation"))
    for var in ("MIROCALS_STUDY", "MIROCALS_DATABASE_LOCKED", "MIROCALS_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    return three_arm


def _sign_in(role):
    from tests.test_dashboard_apptest import sign_in
    return sign_in(role)


@pytest.mark.parametrize("role", ["dsmb", "statistician", "steering"])
def test_dashboard_pages_for_the_imported_trial(imported_deployment, role):
    """Every page runs for the three-arm trial; pages whose data were not delivered say why
    (st.info) instead of failing; the DSMB sees the three arms, the steering committee none."""
    from dashboard.pages_registry import pages_for
    at = _sign_in(role)
    seen = {}
    from tests.test_dashboard_apptest import visit_all_tabs
    charts = {}
    for page in pages_for(role):
        shown = visit_all_tabs(at, page.file)          # every tab (only the open one is drawn); no exception
        assert not shown.get("error"), f"{page.file}: {shown.values('error')}"
        seen[page.file] = (shown.text, shown.values("info"))
        charts[page.file] = shown.get("plotly_chart")
    # no screening log: recruitment tables and figures say so
    assert any("no screening dataset" in i for i in seen["recruitment.py"][1])
    assert any("no stratification factors" in i for i in seen["balance.py"][1])
    assert any("no adqs dataset" in i for i in seen["alsfrs.py"][1])
    baseline, survival = seen["baseline.py"][0], seen["survival.py"][0]
    assert "Data cut-off **2022-07-14**" in baseline
    assert "Weight (kg): mean (SD)" in baseline                             # the delivery's SAS label
    assert [m.label for m in at.sidebar.multiselect] == ["Country", "Site"]  # no ALS onset filter
    if role != "steering":
        for arm in ARMS:
            assert arm in survival and arm in baseline
        assert "Drug X 10 mg vs Placebo" in survival                          # treatment-effect rows
        # the forest plot has one block per arm against placebo
        specs = [json.loads(c.proto.spec) for c in charts["survival.py"]]
        forest = next(sp for sp in specs if sp["layout"]["title"]["text"].startswith("Hazard ratio by subgroup"))
        ticks = forest["layout"]["yaxis"]["ticktext"]
        heads = [t for t in ticks if t.startswith("<b><i>")]
        assert heads == ["<b><i>Drug X 20 mg vs Placebo</i></b>", "<b><i>Drug X 10 mg vs Placebo</i></b>"]
        assert sum(t.startswith("<b>All participants</b> (n=8)") for t in ticks) == 2
    else:
        text = "\n".join(t for t, _ in seen.values())
        assert not any(arm in text for arm in ARMS)


# --------------------------------------------------------------------------- report
def test_closed_report_renders_for_the_imported_trial(three_arm, tmp_path):
    """The DSMB closed report renders (HTML and PDF) for the three-arm trial: every comparison
    with the reference arm in the effect table, and a sentence instead of each section the
    delivery cannot support."""
    status, out, err = run_cli("report", "dsmb-closed", "--data", three_arm, "--allocation", three_arm / "allocation",
                               "--out", tmp_path, "--to", "html,pdf", "--keep-intermediates")
    assert status == 0, err[-2000:]
    assert (tmp_path / "dsmb-closed" / "dsmb_closed.pdf").read_bytes()[:5] == b"%PDF-"
    md = (tmp_path / "dsmb-closed" / "dsmb_closed.md").read_text()
    assert "Drug X 10 mg vs Placebo | Difference in restricted mean survival (days) | 118.75" in md  # 255 - 136.25
    assert "Drug X 20 mg vs Placebo | Difference in survival at the landmark | 0.12" in md           # 3/8 - 1/4
    assert "Not available for this snapshot: consort table not available: no screening dataset" in md
    assert "Not available for this snapshot: alsfrs table not available: no adqs dataset" in md
    assert "Traceback" not in md
    assert "Weight (kg): mean (SD)" in md                                   # Table 1 with the SAS labels
    assert "Drug X 20 mg vs Placebo: HR 0.35 (" in md and ", Cox unadjusted; log-rank p" in md   # unstratified
    html = (tmp_path / "dsmb-closed" / "dsmb_closed.html").read_text()
    assert "Drug X 10 mg" in html and "<title>EXAMPLE-3 Data Monitoring Committee" in html


# --------------------------------------------------------------------------- validation
def test_validate_clean_import_and_adam_problems(three_arm, tmp_path):
    status, out, err = run_cli("validate", three_arm, "--allocation", three_arm / "allocation")
    assert status == 0 and out.strip() == "no problems found", out    # no MIROCALS variable expected

    def plant(name, df):
        df = df.copy()
        if name == "adsl":                                     # S03 delivered twice
            df = pd.concat([df, df[df["USUBJID"] == "EX3-S03"]], ignore_index=True)
        if name == "adtte":
            df.loc[df["USUBJID"] == "EX3-S05", "CNSR"] = 2.0   # CNSR outside 0/1
            df.loc[df["USUBJID"] == "EX3-S06", "AVAL"] = -5.0  # negative time
            extra = df[df["USUBJID"] == "EX3-S01"].assign(USUBJID="EX3-S99")
            df = pd.concat([df, extra], ignore_index=True)     # a subject ADSL does not have
        return df
    src = write_delivery(tmp_path / "bad", plant)
    status, _, err = run_cli("import", "--src", src, "--study", STUDY_FILE, "--out", tmp_path / "snap")
    assert status == 0, err
    status, out, err = run_cli("validate", tmp_path / "snap", "--format", "csv")
    assert status == 1
    problems = pd.read_csv(io.StringIO(out)).fillna("")
    found = set(problems[["dataset", "column", "subject", "rule"]].itertuples(index=False, name=None))
    assert {("adtte", "CNSR", "EX3-S05", "invalid_code"), ("adtte", "AVAL", "EX3-S06", "value_out_of_range"),
            ("adtte", "USUBJID", "EX3-S99", "subject_not_in_adsl"),
            ("adsl", "USUBJID", "EX3-S03", "duplicate_subject")} <= found
    msgs = problems.set_index("subject")["message"]
    assert msgs["EX3-S05"].startswith("adtte.parquet: CNSR=2")                 # the file is named
    assert (problems["severity"] == "error").sum() == 4, problems


def test_cut_of_an_imported_snapshot_keeps_its_study(three_arm, tmp_path):
    # cut at day 100 after randomisation (2021-06-09): deaths d30, d60, d90, d100 known; the rest
    # censored at the cut
    status, _, err = run_cli("cut", "--src", three_arm, "--date", "2021-06-09", "--out", tmp_path / "cut")
    assert status == 0, err
    with unblinded(tmp_path / "cut") as v:
        assert v.study.id == "EXAMPLE-3"
        from analysis.outputs import build_table
        s = build_table("survival", v).set_index("group")
    assert s.loc[list(ARMS), "events"].tolist() == [1, 0, 3]


def test_readme_shows_the_example_study_file():
    import re
    import tomllib
    readme = (ROOT / "README.md").read_text()
    assert "data_access/studies/example_three_arm.toml" in readme
    block = re.search(r"```toml\n(\[study\]\nid = \"EXAMPLE-3\".*?)```", readme, re.S).group(1)
    shown, real = tomllib.loads(block), tomllib.loads(STUDY_FILE.read_text())
    for section in ("study", "arms", "columns", "stratification", "endpoints", "blinding", "analysis"):
        assert shown[section] == real[section], section


def test_open_report_renders_pooled_for_the_imported_trial(three_arm, tmp_path):
    """The open (blinded) report: pooled tables only, the trial's own synopsis, and sentences
    for the recruitment sections a delivery without a screening log cannot support."""
    status, out, err = run_cli("report", "dsmb-open", "--data", three_arm, "--out", tmp_path, "--to", "html",
                               "--keep-intermediates")
    assert status == 0, err[-2000:]
    md = (tmp_path / "dsmb-open" / "dsmb_open.md").read_text()
    assert "12 participants had been randomised of 12 planned, at 2 of 2 sites" in md
    assert "3 arms; randomisation not stratified. Survival endpoint: ADTTE parameter TTDEATH, landmark day 365" in md
    assert "Participant flow is in Table (not available)" in md
    assert "Not available for this snapshot: funnel table not available: no screening dataset" in md
    # AEs pooled: 5 of 11 in the safety population (45.5%) had a TEAE, 6 events
    assert "5 (45.5 %) [6]" in md
    assert "Drug X 20 mg (N=" not in md and "vs Placebo" not in md               # nothing by arm


def test_import_refuses_a_study_file_that_does_not_match(tmp_path):
    src = write_delivery(tmp_path / "d", lambda name, df: df.assign(PARAMCD="OS") if name == "adtte" else df)
    status, out, err = run_cli("import", "--src", src, "--study", STUDY_FILE, "--out", tmp_path / "snap")
    assert status == 2 and not (tmp_path / "snap").exists()
    assert "no PARAMCD 'TTDEATH' ([endpoints] survival); PARAMCDs delivered: OS" in err


def test_subgroups_each_arm_vs_reference_by_hand(three_arm):
    sg = build(three_arm, "subgroups")
    assert sg["comparison"].unique().tolist() == ["Drug X 20 mg vs Placebo", "Drug X 10 mg vs Placebo"]
    x20 = sg[sg["comparison"] == "Drug X 20 mg vs Placebo"].set_index("level")
    # women: X20 S01, S03 (both died) vs PBO S10 (died), S12; men: X20 S02, S04 (censored) vs
    # PBO S09, S11 (died)
    assert x20.loc["F", ["n", "events_exp", "events_ref"]].tolist() == [4, 2, 1]
    assert x20.loc["M", ["n", "events_exp", "events_ref"]].tolist() == [4, 0, 2]
    x10 = sg[sg["comparison"] == "Drug X 10 mg vs Placebo"].set_index("level")
    # women: X10 S07 (died), S08 vs PBO S10 (died), S12; men: X10 S05, S06 (died) vs S09, S11 (died)
    assert x10.loc["F", ["n", "events_exp", "events_ref"]].tolist() == [4, 1, 1]
    assert x10.loc["M", ["n", "events_exp", "events_ref"]].tolist() == [4, 1, 2]


def test_study_and_labels_are_hashed_in_the_manifest(three_arm, tmp_path):
    # The study config decides arm order, endpoint and populations: changing it after the import
    # must show as a changed snapshot, exactly as a changed dataset does.
    import shutil
    from data_access.snapshot import read_manifest, verify_snapshot
    files = read_manifest(three_arm / "clinical")["files"]
    assert {"study.toml", "labels.json"} <= set(files)
    assert verify_snapshot(three_arm / "clinical") == []
    copy = tmp_path / "copy"
    shutil.copytree(three_arm, copy)
    toml = copy / "clinical" / "study.toml"
    toml.write_text(toml.read_text().replace("TTDEATH", "OS"))
    assert verify_snapshot(copy / "clinical") == ["study.toml: SHA-256 differs from the manifest"]
    with unblinded(three_arm) as v:
        assert "study" not in v.datasets and "labels" not in v.datasets       # sidecars are not datasets


def test_a_trial_stratified_by_its_own_factor(tmp_path):
    """The same delivery stratified by REGION (a factor MIROCALS does not have): stratum balance
    is counted on REGION and the stratified log-rank / Cox rows appear, each checked by hand."""
    region = {"S01": "EU", "S02": "US"}          # sites S01 and S02 are the two regions

    def add_region(name, df):
        if name == "adsl":
            df = df.assign(REGION=df["SITEID"].map(region))
        return df

    study = tmp_path / "stratified.toml"
    text = STUDY_FILE.read_text()
    assert 'factors = []' in text
    study.write_text(text.replace('factors = []', 'factors = ["REGION"]', 1))
    src = write_delivery(tmp_path / "delivery", mutate=add_region)
    status, _out, err = run_cli("import", "--src", src, "--study", study, "--out", tmp_path / "snap")
    assert status == 0, err
    root = tmp_path / "snap"
    alloc = pd.read_parquet(root / "allocation" / "allocation.parquet").set_index("USUBJID")
    assert alloc.loc["EX3-S01", "STRATUM"] == "EU" and alloc.loc["EX3-S12", "STRATUM"] == "US"

    bal = build(root, "balance").set_index(["stratum", "site_id", "group"])["n"]
    # EU = site S01: X20 S01 S02, X10 S05 S06, PBO S09 S10; US = site S02: the other six
    assert bal[("EU", "All", "Drug X 20 mg")] == 2 and bal[("EU", "All", "Total")] == 6
    assert bal[("US", "S02", "Placebo")] == 2 and bal[("US", "S01", "Placebo")] == 0
    pooled = build(root, "balance", view="blinded").set_index(["stratum", "site_id", "group"])["n"]
    assert pooled[("EU", "All", "All")] == 6 and pooled[("US", "All", "All")] == 6

    te = build(root, "treatment-effect")
    x20 = te[te["comparison"] == "Drug X 20 mg vs Placebo"].set_index("method")
    # stratified log-rank X20 vs PBO = (sum O-E)^2 / sum V over the regions (n at risk X20/PBO):
    #   EU (X20 S01 100, S02 200+; PBO S09 30, S10 60): d30 2/2, d60 2/1, d100 2/0
    #       O 1, E 2/4 + 2/3 + 1, V 4/16 + 2/9 + 0   (d100: no PBO at risk, E = 1, V = 0)
    #   US (X20 S03 300, S04 400+; PBO S11 90, S12 500+): d90 2/2, d300 2/1
    #       O 1, E 2/4 + 2/3, V 4/16 + 2/9
    # -> (O-E)^2 / V = (4/3)^2 / (17/18) = 32/17
    o_e = (1 - (Fraction(2, 4) + Fraction(2, 3) + 1)) + (1 - (Fraction(2, 4) + Fraction(2, 3)))
    v = 2 * (Fraction(4, 16) + Fraction(2, 9))
    assert o_e ** 2 / v == Fraction(32, 17)
    assert x20.loc["logrank_stratified", "statistic"] == pytest.approx(float(o_e ** 2 / v))
    assert np.isfinite(x20.loc["cox_stratified", "estimate"])
    assert not te.loc[te["method"] == "logrank", "note"].str.contains("stratification").any()

    # survival within each region, by hand (KM; landmark 365 days):
    #   EU X20 (100, 200+): S(365) = 1/2; S is flat at exactly 1/2 from 100 to the last time 200,
    #       so the median is the midpoint 150 (R quantile.survfit)
    #   EU PBO (30, 60): S(365) = 0; S = 1/2 on [30, 60), median the midpoint 45
    #   US X10 (250, 365+): S(365) = 1/2;  US PBO (90, 500+): S(365) = 1/2, median (90 + 500) / 2
    sv = build(root, "survival-by-stratum").set_index(["stratum", "group"])
    assert sv.index.get_level_values("stratum").unique().tolist() == ["EU", "US"]
    assert sv.loc[("EU", "Drug X 20 mg"), "surv_landmark"] == pytest.approx(0.5)
    assert sv.loc[("EU", "Drug X 20 mg"), "median"] == pytest.approx(150)
    assert sv.loc[("EU", "Placebo"), "surv_landmark"] == pytest.approx(0)
    assert sv.loc[("EU", "Placebo"), "median"] == pytest.approx(45)
    assert sv.loc[("US", "Drug X 10 mg"), "surv_landmark"] == pytest.approx(0.5)
    assert sv.loc[("US", "Placebo"), "median"] == pytest.approx(295)
    assert sv.loc[("EU", "Total"), "n"] == 6 and sv.loc[("EU", "Total"), "events"] == 4   # S01 S06 S09 S10
    pooled = build(root, "survival-by-stratum", view="blinded")
    assert pooled["group"].unique().tolist() == ["All"] and pooled["n"].tolist() == [6, 6]


def test_ae_risk_difference_each_arm_vs_placebo_by_hand(three_arm):
    # safety population 4 / 4 / 3 (S12 never dosed); Nausea: X20 S01 (2 events), X10 S05, PBO none;
    # Headache (treatment-emergent, in the safety population): X20 S02, PBO S09
    from analysis.safety import compute_risk_difference
    risk = build(three_arm, "ae-risk")
    assert risk["comparison"].unique().tolist() == ["Drug X 20 mg vs Placebo", "Drug X 10 mg vs Placebo"]
    r = risk.set_index(["comparison", "pt"]).sort_index()       # each PT is in one SOC here
    nausea = r.loc[("Drug X 20 mg vs Placebo", "Nausea")].iloc[0]
    assert (nausea["n_exp"], nausea["N_exp"], nausea["n_ref"], nausea["N_ref"]) == (1, 4, 0, 3)
    assert (nausea["risk_exp"], nausea["risk_ref"], nausea["difference"]) == pytest.approx((25, 0, 25))
    _, lo, hi = compute_risk_difference(1, 4, 0, 3)
    assert (nausea["ci_lower"], nausea["ci_upper"]) == pytest.approx((100 * lo, 100 * hi))
    headache = r.loc[("Drug X 10 mg vs Placebo", "Headache")].iloc[0]
    assert (headache["n_exp"], headache["n_ref"]) == (0, 1)
    assert headache["difference"] == pytest.approx(-100 / 3)
    assert build(three_arm, "ae-risk")["difference"].notna().all()
