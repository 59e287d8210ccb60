"""Concomitant care (adcm), protocol deviations (addv) and the date last known alive (issue 14,
data layer): simulated counts tied to the other datasets, nothing after death or the cut, planted
problems caught by their rules, imports with and without the datasets, the arm kept out, and the
Kaplan-Meier estimate of time to NIV recovering the simulated rate."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from data_access.adam import export_adam, import_adam
from data_access.demo import make_demo
from data_access.schemas import absent_note
from data_access.simulate import simulate_trial
from data_access.study import DEFAULT_STUDY_FILE
from data_access.validate import validate_datasets, validate_snapshot
from data_access.view_base import DatasetNotFound
from data_access.views import open_view

CARE_RULES = {"care_after_death", "care_before_randomisation", "missing_value", "site_mismatch",
              "last_alive_after_death", "last_alive_before_record", "last_alive_after_cut"}


def _read(root, name):
    df = pd.read_parquet(root / "clinical" / f"{name}.parquet")
    for col in [c for c in df.columns if c.endswith("DT")]:
        df[col] = pd.to_datetime(df[col])
    return df


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """40 subjects to completion (cut 2021-07-22) and the same trial cut at 2018-12-31."""
    root = tmp_path_factory.mktemp("care")
    make_demo(root / "final", n_subjects=40)
    make_demo(root / "interim", n_subjects=40, cut="2018-12-31")
    return root


def test_hand_counted_care_of_the_small_trial(small):
    cm, adsl, tte, q = (_read(small / "final", n) for n in ("adcm", "adsl", "adtte", "adqs"))
    firsts = cm.groupby("CARECD")["USUBJID"].nunique().to_dict()
    # counted in the 40-subject demo (seed 20170619): 8 NIV starts (MIR-FR02-0003 on day 635 ...
    # MIR-UK03-0002 on day 492), 8 gastrostomies, no tracheostomy or PAV, riluzole for all 40
    assert firsts == {"GASTRO": 8, "MED": 38, "NIV": 8, "RILUZOLE": 40}
    niv = cm[cm["CARECD"] == "NIV"].set_index("USUBJID")["ASTDY"]
    assert niv["MIR-FR02-0003"] == 635 and niv["MIR-UK03-0002"] == 492 and niv["MIR-FR02-0005"] == 78
    # gastrostomy = the participants whose ALSFRS-R uses item 5b, dated before the first 5b visit
    first_5b = q[q["PARAMCD"] == "ALSFR05B"].groupby("USUBJID")["ADY"].min()
    gastro = cm[cm["CARECD"] == "GASTRO"].set_index("USUBJID")["ASTDY"]
    assert set(gastro.index) == set(first_5b.index)
    assert (gastro <= first_5b[gastro.index]).all() and (gastro > 0).all()
    # tracheostomy or PAV = the DTHTRV events that are not deaths (none in this trial)
    tv = tte[(tte["PARAMCD"] == "DTHTRV") & (tte["EVNTDESC"] == "TRACHEOSTOMY OR PAV")]
    assert len(tv) == 0 == cm["CARECD"].isin(["TRACH", "PAV"]).sum()
    assert (adsl["DTHFL"] == "Y").sum() == 15
    # one riluzole row a participant, except dose changes: 43 rows, three participants reduced
    ril = cm[cm["CARECD"] == "RILUZOLE"]
    assert len(ril) == 43 and set(ril["CMDOSTOT"]) == {100.0, 50.0} and (ril["CMDOSE"] == 50).all()
    assert (ril.groupby("USUBJID")["ASTDY"].min() < 0).all()          # from the start of run-in
    meds = cm[cm["CARECD"] == "MED"]
    assert meds["CMCLASCD"].str.fullmatch(r"[A-Z]\d\d").all() and meds["CMCLAS"].notna().all()


def test_deviations_counted_and_sites_match_adsl(small, study):
    dv, adsl = _read(small / "final", "addv"), _read(small / "final", "adsl")
    assert dv["DVCAT"].value_counts().to_dict() == {"STUDY TREATMENT": 28, "VISIT SCHEDULE": 27,
                                                    "SAFETY REPORTING": 3, "ASSESSMENT": 3}
    assert dv["DVIMPFL"].value_counts().to_dict() == {"N": 50, "Y": 11}
    assert dv.loc[dv["DVIMPFL"] == "Y", "USUBJID"].nunique() == 10
    site = adsl.set_index("USUBJID")["SITEID"]
    assert (dv["SITEID"] == dv["USUBJID"].map(site)).all()
    assert (dv["ASTDY"] == (dv["ASTDT"] - dv["USUBJID"].map(adsl.set_index("USUBJID")["RANDDT"])).dt.days).all()
    # every missed visit is a scheduled visit (planned day) that ADQS does not hold
    q = _read(small / "final", "adqs")
    visit_of = {d: k + 1 for k, d in enumerate(study.visit_days)}
    missed = dv[dv["DVDECOD"] == "MISSED VISIT"]
    done = set(zip(q["USUBJID"], q["AVISITN"]))
    assert len(missed) + (dv["DVDECOD"] == "VISIT OUT OF WINDOW").sum() == 27 and len(missed) > 0
    assert not {(s, visit_of[d]) for s, d in zip(missed["USUBJID"], missed["ASTDY"])} & done


@pytest.mark.parametrize("which, cut", [("final", "2021-07-22"), ("interim", "2018-12-31")])
def test_nothing_after_death_or_the_cut_and_last_alive(small, which, cut):
    cut = pd.Timestamp(cut)
    root = small / which
    cm, dv, adsl, q = (_read(root, n) for n in ("adcm", "addv", "adsl", "adqs"))
    death = adsl.set_index("USUBJID")["DTHDT"]
    for df in (cm, dv):
        assert (df["ASTDT"] <= cut).all()
        d = df["USUBJID"].map(death)
        assert not (d.notna() & (df["ASTDT"] > d)).any()
    assert (cm["AENDT"].dropna() <= cut).all()
    last = adsl.set_index("USUBJID")["LSTALVDT"]
    assert last.notna().all() and (last <= cut).all()
    last_visit = q.groupby("USUBJID")["ADT"].max()
    assert (last_visit <= last[last_visit.index]).all()
    assert (last[death.notna()] == death.dropna()).all()              # the death date for the dead
    if which == "interim":                                            # the last contact, not the cut
        alive = last[death.isna()]
        assert (alive < cut).mean() > 0.8 and (cut - alive).dt.days.max() > 14   # on treatment: monthly cycles


def test_same_seed_same_files(small, tmp_path):
    make_demo(tmp_path / "again", n_subjects=40)
    for name in ("adcm", "addv", "adsl"):
        a, b = ((r / "clinical" / f"{name}.parquet").read_bytes() for r in (small / "final", tmp_path / "again"))
        assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest(), name


def test_planted_care_problems_caught_by_their_rule(tmp_path):
    make_demo(tmp_path / "m", n_subjects=80, messy=True)
    planted = json.loads((tmp_path / "m" / "planted_problems.json").read_text())
    care = [p for p in planted if p["dataset"] in ("adcm", "addv") or p["column"] == "LSTALVDT"]
    assert {p["rule"] for p in care} == {"care_after_death", "care_before_randomisation", "date_order",
                                         "subject_not_in_adsl", "missing_value", "site_mismatch", "invalid_code",
                                         "last_alive_after_cut", "last_alive_before_record"}
    problems = validate_snapshot(tmp_path / "m", allocation_dir=tmp_path / "m" / "allocation")
    found = set(zip(problems["dataset"], problems["column"], problems["subject"], problems["rule"]))
    for p in care:
        assert (p["dataset"], p["column"], p["subject"], p["rule"]) in found, p
    # the care rules report the planted rows and nothing else
    got = problems[problems["rule"].isin(CARE_RULES)]
    assert set(zip(got["subject"], got["rule"])) == {(p["subject"], p["rule"]) for p in care
                                                      if p["rule"] in CARE_RULES}
    row = got[got["rule"] == "missing_value"].iloc[0]
    assert row["message"].startswith("addv.parquet: DVCAT is empty for " + row["subject"])


def test_last_alive_after_death_and_duplicates_on_hand_built_rows():
    d = pd.to_datetime
    adsl = pd.DataFrame({"USUBJID": ["A", "B"], "SITEID": ["S1", "S2"], "RANDDT": d(["2019-01-01", "2019-01-05"]),
                         "DTHDT": d(["2019-06-01", None]), "LSTALVDT": d(["2019-06-20", "2019-03-01"])})
    adcm = pd.DataFrame({"USUBJID": ["B", "B"], "CMDECOD": ["BACLOFEN"] * 2, "CARECD": ["MED"] * 2,
                         "ASTDT": d(["2019-02-01"] * 2), "AENDT": d(["2019-02-10"] * 2), "CMSEQ": [1, 2]})
    problems = validate_datasets({"adsl": adsl, "adcm": adcm})
    got = set(zip(problems["dataset"], problems["subject"], problems["rule"]))
    assert ("adsl", "A", "last_alive_after_death") in got and ("adcm", "B", "duplicate_record") in got
    assert not {r for _, _, r in got} & (CARE_RULES - {"last_alive_after_death"})


def _without(src, names, out):
    out.mkdir()
    for p in src.iterdir():
        if p.stem not in names:
            (out / p.name).write_bytes(p.read_bytes())
    return out


def test_import_without_care_datasets_validates_and_says_why(small, tmp_path):
    export_adam(small / "final", tmp_path / "csv", fmt="csv", allocation_dir=small / "final" / "allocation")
    src = _without(tmp_path / "csv", {"adcm", "addv"}, tmp_path / "nocare")
    import_adam(src, DEFAULT_STUDY_FILE, tmp_path / "snap")
    problems = validate_snapshot(tmp_path / "snap")
    assert not (problems["severity"] == "error").any(), problems.to_string()
    with open_view(tmp_path / "snap", "steering") as view:
        assert "adcm" not in view.datasets and "addv" not in view.datasets
        with pytest.raises(DatasetNotFound, match="adcm"):
            view.table("adcm")
        assert absent_note(view.datasets, "adcm") == ("This delivery has no concomitant-care dataset (adcm), so "
                                                      "riluzole, NIV, gastrostomy, tracheostomy and other "
                                                      "medications cannot be shown.")
        assert absent_note(view.datasets, "addv").startswith("This delivery has no protocol-deviation dataset")
        assert absent_note(view.datasets, "adsl", "LSTALVDT", view.columns("adsl")) is None
        assert absent_note(view.datasets, "adsl", "LSTALVDT", ["USUBJID"]).startswith(
            "This delivery has no date last known alive (ADSL LSTALVDT)")


def test_import_maps_sdtm_dv_and_cm_and_strips_arm_columns(small, tmp_path):
    export_adam(small / "final", tmp_path / "csv", fmt="csv", allocation_dir=small / "final" / "allocation")
    src = tmp_path / "csv"
    original_cm, original_dv = _read(small / "final", "adcm"), _read(small / "final", "addv")
    # the sponsor's CM: SDTM names, no CARECD, an actual-treatment variable and the arm under a made-up name
    cm = pd.read_csv(src / "adcm.csv")
    cm = cm.drop(columns=["CARECD"]).rename(columns={"ASTDT": "CMSTDTC", "AENDT": "CMENDTC"})
    cm["TRT01A"] = cm["ARM"]
    cm["TRTGRP"] = cm["ARM"].str.upper()
    cm.to_csv(tmp_path / "cm.csv", index=False)
    (src / "adcm.csv").unlink()
    (tmp_path / "cm.csv").rename(src / "cm.csv")
    # the sponsor's DV: importance in DVSCAT, date as DVSTDTC, one date known to the month only
    dv = pd.read_csv(src / "addv.csv")
    dv["DVSCAT"] = np.where(dv["DVIMPFL"] == "Y", "MAJOR", "MINOR")
    dv = dv.drop(columns=["DVIMPFL"]).rename(columns={"ASTDT": "DVSTDTC"})
    dv.loc[0, "DVSTDTC"] = dv.loc[0, "DVSTDTC"][:7]
    dv.to_csv(src / "dv.csv", index=False)
    (src / "addv.csv").unlink()
    removed = []
    import_adam(src, DEFAULT_STUDY_FILE, tmp_path / "snap", removed=removed)
    stripped = {(f.dataset, f.column) for f in removed}
    assert {("adcm", "TRT01A"), ("adcm", "ARM"), ("adcm", "TRTGRP"), ("addv", "ARM")} <= stripped
    got_cm, got_dv = _read(tmp_path / "snap", "adcm"), _read(tmp_path / "snap", "addv")
    assert not {"TRT01A", "TRTGRP", "ARM", "ARMCD"} & set(got_cm.columns)
    assert not {"ARM", "ARMCD"} & set(got_dv.columns)
    assert got_cm["CARECD"].tolist() == original_cm["CARECD"].tolist()          # derived from the terms
    assert (got_cm["ASTDT"] == original_cm["ASTDT"]).all()
    assert got_dv["DVIMPFL"].tolist() == original_dv["DVIMPFL"].tolist()
    assert pd.isna(got_dv.loc[0, "ASTDT"]) and got_dv.loc[0, "ASTDTC"] == dv.loc[0, "DVSTDTC"]
    problems = validate_snapshot(tmp_path / "snap")
    partial = problems[problems["rule"] == "partial_date"]
    # the partial date is reported (as ASTDT and as the delivered DVSTDTC text), for that row only
    assert set(zip(partial["dataset"], partial["subject"])) == {("addv", dv.loc[0, "USUBJID"])}
    assert "ASTDT" in set(partial["column"])
    assert not (problems["severity"] == "error").any(), problems.to_string()


def test_arm_column_in_a_snapshots_adcm_is_refused(small, tmp_path):
    from data_access.snapshot import ArmInClinicalError, load_datasets, write_snapshot
    from data_access.study import load_study
    clinical = load_datasets(small / "final" / "clinical")
    allocation = load_datasets(small / "final" / "allocation")["allocation"]
    clinical["adcm"] = clinical["adcm"].assign(GROUP=clinical["adcm"]["USUBJID"].map(
        allocation.set_index("USUBJID")["MASKCD"]))
    with pytest.raises(ArmInClinicalError, match="adcm.*GROUP"):
        write_snapshot(tmp_path / "bad", clinical, allocation, load_study(), pd.Timestamp("2021-07-22").date(),
                       source="test")


def test_views_show_care_pooled_or_with_the_arm(small):
    root = small / "final"
    with open_view(root, "steering") as view:
        cm = view.table("adcm")
        assert "ARM" not in cm.columns and {"CARECD", "CMCLASCD", "ASTDT"} <= set(cm.columns)
        assert "DVIMPFL" in view.columns("addv") and "addv" not in view.withheld
    with open_view(root, "dsmb", allocation_dir=root / "allocation") as view:
        assert set(view.table("addv")["ARM"]) <= set(view.arm_levels)
    # no column of the simulated care or deviations reveals the arm (the scan of imports and snapshots)
    from data_access.arm_scan import find_arm_revealing_columns
    from data_access.study import load_study
    data = {n: _read(root, n) for n in ("adsl", "adcm", "addv")}
    allocation = pd.read_parquet(root / "allocation" / "allocation.parquet")
    assert find_arm_revealing_columns(data, allocation, load_study(), min_subjects=5) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_recovers_the_simulated_niv_rate(study, seed):
    trial = simulate_trial(study, seed=seed, n_subjects=1500)
    cm, adsl = trial.clinical["adcm"], trial.clinical["adsl"].set_index("USUBJID")
    niv = cm[cm["CARECD"] == "NIV"].groupby("USUBJID")["ASTDY"].min().reindex(adsl.index)
    trach = cm[cm["CARECD"] == "TRACH"].groupby("USUBJID")["ASTDY"].min().reindex(adsl.index)
    follow = (adsl["LSTALVDT"] - adsl["RANDDT"]).dt.days                # death, withdrawal or day 640
    time = niv.fillna(np.fmin(follow, trach.fillna(np.inf)))
    km = KaplanMeierFitter().fit(time, niv.notna())
    ci = km.confidence_interval_survival_function_
    truth = trial.truth["niv_free_km"]
    assert set(truth) == {180, 365, 640} and 0.6 < truth[640] < 0.75           # about 30 % NIV by day 640
    for day, expected in truth.items():
        lo, hi = ci.iloc[ci.index.searchsorted(day, side="right") - 1]
        assert lo <= expected <= hi, (seed, day, expected, lo, hi)


def test_import_maps_through_the_study_file_sections(small, tmp_path):
    """[datasets], [concomitant_care] and [deviations] of the study file name the sponsor's files,
    its care terms and its importance column."""
    export_adam(small / "final", tmp_path / "csv", fmt="csv", allocation_dir=small / "final" / "allocation")
    src = tmp_path / "csv"
    cm = pd.read_csv(src / "adcm.csv").drop(columns=["CARECD"])
    cm["CMTRT"] = cm["CMTRT"].replace({"Non-invasive ventilation (BiPAP)": "Ventilation masque nocturne"})
    cm.to_csv(src / "conmeds.csv", index=False)
    dv = pd.read_csv(src / "addv.csv")
    dv["SEVERITY"] = np.where(dv["DVIMPFL"] == "Y", "Critical", "Non-critical")
    dv.drop(columns=["DVIMPFL"]).to_csv(src / "pdev.csv", index=False)
    for name in ("adcm.csv", "addv.csv"):
        (src / name).unlink()
    study_file = tmp_path / "study.toml"
    study_file.write_text(DEFAULT_STUDY_FILE.read_text() + (
        '\n[datasets]\nconcomitant_care = "conmeds"\ndeviations = "pdev"\n'
        '[concomitant_care]\nniv = "(?i)ventilation masque"\n'
        '[deviations]\nimportant_column = "SEVERITY"\nimportant_values = ["critical"]\n'))
    import_adam(src, study_file, tmp_path / "snap")
    got_cm, got_dv = _read(tmp_path / "snap", "adcm"), _read(tmp_path / "snap", "addv")
    original_cm, original_dv = _read(small / "final", "adcm"), _read(small / "final", "addv")
    assert not (tmp_path / "snap" / "clinical" / "conmeds.parquet").exists()
    assert got_cm["CARECD"].tolist() == original_cm["CARECD"].tolist()
    assert (got_cm["CARECD"] == "NIV").sum() == 8
    assert got_dv["DVIMPFL"].tolist() == original_dv["DVIMPFL"].tolist()


def test_blinded_view_of_an_imported_trial_shows_the_care_columns_outputs_need(small, tmp_path):
    export_adam(small / "final", tmp_path / "csv", fmt="csv", allocation_dir=small / "final" / "allocation")
    study_file = tmp_path / "study.toml"          # another trial's study file: ADaM-level contract
    study_file.write_text(DEFAULT_STUDY_FILE.read_text().replace('id = "MIROCALS"', 'id = "OTHER-1"'))
    import_adam(tmp_path / "csv", study_file, tmp_path / "snap")
    with open_view(tmp_path / "snap", "steering") as view:
        assert {"CARECD", "CMDECOD", "CMCLAS", "CMCLASCD", "CMDOSTOT", "ASTDT", "AENDT"} <= set(view.columns("adcm"))
        assert {"DVCAT", "DVIMPFL", "DVDECOD", "ASTDT", "SITEID"} <= set(view.columns("addv"))
        assert not {"ARM", "ARMCD"} & (set(view.columns("adcm")) | set(view.columns("addv")))
