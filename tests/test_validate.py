"""Validation: a hand-built valid 3-subject snapshot has no problems; each rule fires on one
corruption naming exactly the dataset, column, subject and rule; unreadable, empty and zero-byte
files are reported without stopping the other checks; every problem planted by the simulator is
reported."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from data_access.snapshot import write_snapshot
from data_access.validate import format_problems, has_errors, validate_datasets, validate_snapshot
from data_access.validate_dataset import COLUMNS

D = pd.Timestamp
S1, S2, S3 = "MIR-FR01-0001", "MIR-FR01-0002", "MIR-UK01-0001"
ITEMS = ["ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFR05A", "ALSFRS06", "ALSFRS07", "ALSFRS08",
         "ALSFRS09", "ALSFRS10", "ALSFRS11", "ALSFRS12"]


def _alsfrs_rows(subject, visit, visitn, adt, rand, scores, gastrostomy=False):
    """17 ADQS rows of one assessment: 12 items (5b instead of 5a with a gastrostomy), 4 domains
    and the total, each domain/total the hand-computed sum of its items."""
    items = dict(zip(ITEMS, scores))
    if gastrostomy:
        items["ALSFR05B"] = items.pop("ALSFR05A")
    s = dict(zip(ITEMS, scores))
    derived = {"BULBAR": s["ALSFRS01"] + s["ALSFRS02"] + s["ALSFRS03"],
               "FINEMOT": s["ALSFRS04"] + s["ALSFR05A"] + s["ALSFRS06"],
               "GROSSMOT": s["ALSFRS07"] + s["ALSFRS08"] + s["ALSFRS09"],
               "RESP": s["ALSFRS10"] + s["ALSFRS11"] + s["ALSFRS12"], "ALSFRST": sum(scores)}
    return [{"USUBJID": subject, "PARAMCD": code, "PARAM": f"ALSFRS-R {code}", "AVISIT": visit,
             "AVISITN": visitn, "ADT": D(adt), "ADY": (D(adt) - D(rand)).days, "AVAL": float(v),
             "ABLFL": "Y" if visitn == 1 else None, "ENTDT": D(adt) + pd.Timedelta(days=3)}
            for code, v in {**items, **derived}.items()]


def _bds_base(df):
    df["BASE"] = df.groupby(["USUBJID", "PARAMCD"])["AVAL"].transform("first")
    df["CHG"] = df["AVAL"] - df["BASE"]
    return df


def make_valid() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """A valid 3-subject MIROCALS snapshot following DATASETS.md (S3 dies on 2018-03-01)."""
    rand = {S1: "2017-09-20", S2: "2017-10-02", S3: "2017-11-06"}
    adsl = pd.DataFrame({
        "STUDYID": "MIROCALS", "USUBJID": [S1, S2, S3], "SUBJID": ["FR01-0001", "FR01-0002", "UK01-0001"],
        "SITEID": ["FR01", "FR01", "UK01"], "COUNTRY": ["France", "France", "UK"], "AGE": [61, 55, 47],
        "AGEGR1": [">=60", "<60", "<60"], "SEX": ["F", "M", "M"], "ONSET": ["Limb", "Bulbar", "Limb"],
        "STRATUM": ["France/Limb", "France/Bulbar", "UK/Limb"], "ELESCORL": ["Probable", "Definite", "Possible"],
        "ONSETDT": [D("2016-05-10"), D("2016-09-01"), D("2016-02-14")],
        "DIAGDT": [D("2017-01-15"), D("2017-03-02"), D("2017-02-01")],
        "SCRNDT": [D("2017-06-20"), D("2017-07-01"), D("2017-08-01")],
        "RANDDT": [D(rand[S1]), D(rand[S2]), D(rand[S3])], "DIAGDLY": [8.2, 6.0, 11.6],
        "BLALSFRS": [40, 36, 38], "DFS": [0.5, 0.9, 0.47], "DFSGR": ["<0.6", ">=0.6", "<0.6"],
        "SVCPCT": [95.0, 88.5, 101.2], "PNFH": [2500.0, 5200.0, 3100.0],
        "LOGPNFH": np.round(np.log([2500.0, 5200.0, 3100.0]), 4), "PNFHGR": ["Low", "High", "Low"],
        "ITTFL": "Y", "SAFFL": "Y", "TRTSDT": [D(rand[S1]), D(rand[S2]), D(rand[S3])],
        "TRTEDT": [D("2019-02-20"), D("2019-03-04"), D("2018-02-20")],
        "EOSSTT": ["COMPLETED", "COMPLETED", "DISCONTINUED"], "DCSREAS": [None, None, "DEATH"],
        "EOSDT": [D("2019-06-22"), D("2019-07-04"), D("2018-03-01")], "DTHFL": [None, None, "Y"],
        "DTHDT": [pd.NaT, pd.NaT, D("2018-03-01")],
        "LSTALVDT": [D("2019-06-22"), D("2019-07-04"), D("2018-03-01")]})
    screening = pd.DataFrame({
        "SCRNID": ["SCR-FR01-0001", "SCR-FR01-0002", "SCR-FR01-0003", "SCR-UK01-0001"],
        "SITEID": ["FR01", "FR01", "FR01", "UK01"], "COUNTRY": ["France", "France", "France", "UK"],
        "SCRNDT": [D("2017-06-20"), D("2017-07-01"), D("2017-07-05"), D("2017-08-01")],
        "OUTCOME": ["RANDOMISED", "RANDOMISED", "SCREEN FAILURE", "RANDOMISED"],
        "REASON": [None, None, "Inclusion criteria not met", None],
        "RUNINSDT": [D("2017-06-21"), D("2017-07-02"), pd.NaT, D("2017-08-02")],
        "RUNINEDT": [D(rand[S1]), D(rand[S2]), pd.NaT, D(rand[S3])], "USUBJID": [S1, S2, None, S3]})
    scores = {S1: ([4, 4, 4, 3, 3, 3, 3, 3, 3, 4, 4, 4], [4, 4, 4, 3, 2, 3, 3, 2, 3, 4, 4, 4]),
              S2: ([3, 3, 3, 4, 4, 4, 4, 4, 4, 3, 4, 4], [3, 3, 2, 4, 3, 4, 4, 4, 4, 3, 4, 4]),
              S3: ([4, 4, 4, 3, 3, 3, 4, 3, 3, 3, 4, 4], [4, 4, 4, 3, 3, 2, 3, 3, 3, 3, 3, 4])}
    rows = []
    for s, (base, m1) in scores.items():
        m1_date = (D(rand[s]) + pd.Timedelta(days=28)).strftime("%Y-%m-%d")
        rows += _alsfrs_rows(s, "Baseline", 1, rand[s], rand[s], base)
        rows += _alsfrs_rows(s, "Month 1", 2, m1_date, rand[s], m1, gastrostomy=(s == S2))
    adqs = _bds_base(pd.DataFrame(rows))[["USUBJID", "PARAMCD", "PARAM", "AVISIT", "AVISITN", "ADT", "ADY",
                                           "AVAL", "BASE", "CHG", "ABLFL", "ENTDT"]]
    lab = []
    for s, r in rand.items():
        for visit, n, day, eos in (("Baseline", 1, 0, 0.12), ("Month 1", 2, 28, 0.2)):
            adt = D(r) + pd.Timedelta(days=day)
            lab.append({"USUBJID": s, "PARAMCD": "EOS", "PARAM": "Eosinophils", "AVISIT": visit, "AVISITN": n,
                        "ADT": adt, "ADY": day, "AVAL": eos, "ABLFL": "Y" if n == 1 else None, "AVALU": "10^9/L"})
    adlb = _bds_base(pd.DataFrame(lab))
    adresp = _bds_base(adlb.assign(PARAMCD="SVCPCT", PARAM="Slow vital capacity (% predicted)", AVALU="%",
                                   AVAL=np.tile([95.0, 93.5], 3)))
    adtte = pd.DataFrame({
        "USUBJID": [S1, S2, S3] * 2, "PARAMCD": ["OS"] * 3 + ["DTHTRV"] * 3,
        "PARAM": ["Time to death from any cause (days)"] * 3 + ["Time to death, tracheostomy or PAV (days)"] * 3,
        "STARTDT": [D(rand[s]) for s in (S1, S2, S3)] * 2,
        "ADT": [D("2019-06-22"), D("2019-07-04"), D("2018-03-01")] * 2,
        "AVAL": [640.0, 640.0, 115.0] * 2, "CNSR": [1, 1, 0] * 2, "EVNTDESC": [None, None, "DEATH"] * 2,
        "CNSDTDSC": ["END OF FOLLOW-UP (DAY 640)"] * 2 + [None] + ["END OF FOLLOW-UP (DAY 640)"] * 2 + [None]})
    adae = pd.DataFrame({
        "USUBJID": [S1, S1, S3], "AESEQ": [1, 2, 1],
        "AETERM": ["injection site reaction", "headache", "respiratory failure"],
        "AEDECOD": ["Injection site reaction", "Headache", "Respiratory failure"],
        "AEBODSYS": ["General disorders and administration site conditions", "Nervous system disorders",
                     "Respiratory, thoracic and mediastinal disorders"],
        "ASTDT": [D("2017-10-01"), D("2017-12-01"), D("2018-02-25")],
        "AENDT": [D("2017-10-05"), D("2017-12-02"), D("2018-03-01")], "ASTDY": [11, 72, 111],
        "AESER": ["N", "N", "Y"], "AESEV": ["MILD", "MODERATE", "SEVERE"],
        "AEREL": ["RELATED", "NOT RELATED", "NOT RELATED"], "AEOUT": ["RECOVERED", "RECOVERED", "FATAL"],
        "AESDTH": ["N", "N", "Y"], "TRTEMFL": "Y", "ENTDT": [D("2017-10-10"), D("2017-12-05"), D("2018-03-03")]})
    adex = pd.DataFrame({"USUBJID": [S1, S2, S3], "CYCLE": 1, "ASTDT": [D(rand[s]) for s in (S1, S2, S3)],
                         "AENDT": [D(rand[s]) + pd.Timedelta(days=4) for s in (S1, S2, S3)], "NDOSES": 5,
                         "EXDOSE": 2.0})
    allocation = pd.DataFrame({"USUBJID": [S1, S2, S3], "RANDNO": [1001, 1002, 2001], "ARMCD": ["IL2LD", "PBO", "PBO"],
                               "ARM": ["Low-dose IL-2", "Placebo", "Placebo"],
                               "STRATUM": ["France/Limb", "France/Bulbar", "UK/Limb"],
                               "BLOCK": ["France/Limb-001", "France/Bulbar-001", "UK/Limb-001"], "BLKSIZE": 2,
                               "MASKCD": ["Group A", "Group B", "Group B"]})
    clinical = {"screening": screening, "adsl": adsl, "adqs": adqs, "adtte": adtte, "adae": adae,
                "adlb": adlb, "adresp": adresp, "adex": adex}
    return clinical, allocation


@pytest.fixture
def valid():
    return make_valid()


@pytest.fixture
def snapshot(tmp_path):
    """The valid 3-subject trial written as a real snapshot (Parquet + manifests)."""
    clinical, allocation = make_valid()
    write_snapshot(tmp_path / "trial", clinical, allocation, "MIROCALS", "2019-12-31", source="test")
    return tmp_path / "trial"


def found(problems) -> set[tuple]:
    return set(problems[["dataset", "column", "subject", "rule"]].itertuples(index=False, name=None))


def test_valid_snapshot_has_no_problems(snapshot):
    problems = validate_snapshot(snapshot / "clinical", allocation_dir=snapshot / "allocation")
    assert list(problems.columns) == COLUMNS
    assert problems.empty, format_problems(problems)
    assert validate_snapshot(snapshot).empty           # a snapshot root is accepted too


def test_valid_in_memory_with_date_objects(valid):
    clinical, allocation = valid
    as_objects = {k: v.assign(**{c: v[c].dt.date.astype(object).where(v[c].notna(), None)
                                 for c in v.columns if c.endswith("DT")}) for k, v in clinical.items()}
    assert validate_datasets(as_objects, allocation=allocation).empty


def test_validation_does_not_alter_the_data(valid):
    clinical, allocation = valid
    clinical["adqs"].loc[0, "AVAL"] = 9
    clinical["adsl"]["AGE"] = clinical["adsl"]["AGE"].astype(str)
    before = {k: v.copy() for k, v in clinical.items()}
    assert has_errors(validate_datasets(clinical, allocation=allocation))
    for k in clinical:
        pd.testing.assert_frame_equal(clinical[k], before[k])


# --------------------------------------------------------------------------- one case per rule
def _set(df, where, **values):
    df = df.copy()
    for col, v in values.items():
        df.loc[where(df), col] = v
    return df


def _item(df, s, code, visitn):
    return (df["USUBJID"] == s) & (df["PARAMCD"] == code) & (df["AVISITN"] == visitn)


def _month1_early(q):
    early = D("2017-09-15")          # S1 randomised 2017-09-20; entry date moved with the visit
    return _set(q, lambda d: (d["USUBJID"] == S1) & (d["AVISITN"] == 2), ADT=early, ENTDT=early)


CASES = {
    "duplicate_subject": ("adsl", lambda a: pd.concat([a, a.iloc[[1]]], ignore_index=True),
                          {("adsl", "USUBJID", S2, "duplicate_subject")}),
    "duplicate_record_bds": ("adqs", lambda q: pd.concat([q, q.iloc[[20]]], ignore_index=True),
                             {("adqs", "USUBJID", S1, "duplicate_record")}),
    "duplicate_record_ae": ("adae", lambda a: pd.concat([a, a.iloc[[2]].assign(AESEQ=2)], ignore_index=True),
                            {("adae", "USUBJID", S3, "duplicate_record")}),
    "subject_not_in_adsl": ("adlb", lambda b: pd.concat([b, b.iloc[[0]].assign(USUBJID="MIR-FR99-0001")]),
                            {("adlb", "USUBJID", "MIR-FR99-0001", "subject_not_in_adsl")}),
    "screening_randomised_without_subject": (
        "screening", lambda s: _set(s, lambda d: d["SCRNID"] == "SCR-UK01-0001", USUBJID=None),
        {("screening", "USUBJID", "SCR-UK01-0001", "subject_not_in_adsl")}),
    "date_order": ("adsl", lambda a: _set(a, lambda d: d["USUBJID"] == S2, DIAGDT=D("2016-08-01")),
                   {("adsl", "DIAGDT", S2, "date_order")}),
    "date_order_ae": ("adae", lambda a: _set(a, lambda d: d.index == 1, AENDT=D("2017-11-30")),
                      {("adae", "AENDT", S1, "date_order")}),
    "visit_before_randomisation": ("adqs", _month1_early, {("adqs", "ADT", S1, "visit_before_randomisation")}),
    "baseline_before_screening": (
        "adresp", lambda r: _set(r, lambda d: (d["USUBJID"] == S3) & (d["AVISITN"] == 1), ADT=D("2017-07-20")),
        {("adresp", "ADT", S3, "visit_before_randomisation")}),
    "death_before_randomisation": ("adsl", lambda a: _set(a, lambda d: d["USUBJID"] == S3, DTHDT=D("2017-11-01")),
                                   {("adsl", "DTHDT", S3, "death_before_randomisation")}),
    "death_before_randomisation_adtte": (
        "adtte", lambda t: _set(t, lambda d: (d["USUBJID"] == S3) & (d["PARAMCD"] == "OS"), ADT=D("2017-11-01")),
        {("adtte", "ADT", S3, "death_before_randomisation")}),
    "total_mismatch": ("adqs", lambda q: _set(q, lambda d: _item(d, S2, "ALSFRST", 2), AVAL=40.0),
                       {("adqs", "AVAL", S2, "total_mismatch")}),
    "domain_mismatch": ("adqs", lambda q: _set(q, lambda d: _item(d, S3, "RESP", 1), AVAL=12.0),
                        {("adqs", "AVAL", S3, "total_mismatch")}),
    "item_out_of_range": ("adqs", lambda q: _set(q, lambda d: _item(d, S1, "ALSFRS03", 2), AVAL=5.0),
                          {("adqs", "AVAL", S1, "value_out_of_range"), ("adqs", "AVAL", S1, "total_mismatch")}),
    "both_5a_and_5b": ("adqs", lambda q: pd.concat([q, q[_item(q, S1, "ALSFR05A", 2)].assign(PARAMCD="ALSFR05B")]),
                       {("adqs", "PARAMCD", S1, "invalid_code")}),
    "neither_5a_nor_5b": ("adqs", lambda q: q[~_item(q, S2, "ALSFR05B", 2)],
                          {("adqs", "PARAMCD", S2, "invalid_code")}),
    "invalid_code_sex": ("adsl", lambda a: _set(a, lambda d: d.index == 0, SEX="X"),
                         {("adsl", "SEX", S1, "invalid_code")}),
    "invalid_code_cnsr": ("adtte", lambda t: _set(t, lambda d: d.index == 1, CNSR=2),
                          {("adtte", "CNSR", S2, "invalid_code")}),
    "invalid_code_aeser": ("adae", lambda a: _set(a, lambda d: d.index == 0, AESER="yes"),
                           {("adae", "AESER", S1, "invalid_code")}),
    "invalid_code_outcome": ("screening", lambda s: _set(s, lambda d: d.index == 2, OUTCOME="FAILED"),
                             {("screening", "OUTCOME", "SCR-FR01-0003", "invalid_code")}),
    "age_out_of_range": ("adsl", lambda a: _set(a, lambda d: d.index == 2, AGE=80),
                         {("adsl", "AGE", S3, "value_out_of_range")}),
    "tte_aval_negative": ("adtte", lambda t: _set(t, lambda d: d.index == 3, AVAL=-3.0),
                          {("adtte", "AVAL", S1, "value_out_of_range")}),
    "stratum_mismatch": ("adsl", lambda a: _set(a, lambda d: d.index == 0, STRATUM="France/Bulbar"),
                         {("adsl", "STRATUM", S1, "stratum_mismatch"),
                          ("allocation", "STRATUM", S1, "stratum_mismatch")}),
    "partial_date": ("adsl", lambda a: _set(a.assign(ONSETDTC=a["ONSETDT"].dt.strftime("%Y-%m-%d")),
                                            lambda d: d.index == 1, ONSETDTC="2016-09", ONSETDT=pd.NaT),
                     {("adsl", "ONSETDT", S2, "partial_date")}),
    "late_entry": ("adqs", lambda q: _set(q, lambda d: _item(d, S2, "ALSFRS01", 1), ENTDT=D("2017-11-20")),
                   {("adqs", "ENTDT", S2, "late_entry")}),
    "missing_required_column": ("adtte", lambda t: t.drop(columns=["CNSR"]), {("adtte", "CNSR", "", "missing_column")}),
    "wrong_type_column": ("adsl", lambda a: a.assign(AGE=a["AGE"].astype(str)), {("adsl", "AGE", "", "wrong_type")}),
    "wrong_type_value": ("adresp", lambda r: r.assign(AVAL=r["AVAL"].astype(object).where(r.index != 4, "n/a")),
                         {("adresp", "AVAL", S3, "wrong_type")}),
    # text columns: numbers where codes belong (a CSV read SEX as 1/2), or one number among texts
    "numbers_in_text_column": ("adsl", lambda a: a.assign(SEX=(a["SEX"] == "M").astype(int) + 1),
                               {("adsl", "SEX", "", "wrong_type")}),
    "number_in_text_value": ("adsl", lambda a: a.assign(SEX=a["SEX"].astype(object).where(a.index != 2, 1)),
                             {("adsl", "SEX", S3, "wrong_type")}),
    "partial_text_in_date_column": (
        "adsl", lambda a: a.assign(ONSETDT=a["ONSETDT"].dt.strftime("%Y-%m-%d").where(a.index != 1, "2016-09")),
        {("adsl", "ONSETDT", S2, "wrong_type")}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_reports_exactly_the_corruption(valid, case):
    clinical, allocation = valid
    name, corrupt, expected = CASES[case]
    clinical[name] = corrupt(clinical[name])
    problems = validate_datasets(clinical, allocation=allocation)
    assert found(problems) == expected, format_problems(problems)


def test_messages_name_file_column_subject_and_visit(valid):
    clinical, _ = valid
    clinical["adqs"] = CASES["item_out_of_range"][1](clinical["adqs"])
    problems = validate_datasets(clinical)
    msg = problems.loc[problems["rule"] == "value_out_of_range", "message"].tolist()
    assert msg == ["adqs.parquet: ALSFRS03 AVAL=5 for MIR-FR01-0001 at Month 1 is outside 0-4"]
    totals = sorted(problems.loc[problems["rule"] == "total_mismatch", "message"])
    # S1 Month 1: bulbar 4+4+4 = 12 -> 4+4+5 = 13; total 12+8+8+12 = 40 -> 41 (recorded 12 and 40)
    assert totals == ["adqs.parquet: ALSFRST=40 for MIR-FR01-0001 at Month 1 but its items sum to 41",
                      "adqs.parquet: BULBAR=12 for MIR-FR01-0001 at Month 1 but its items sum to 13"]


def test_severities(valid):
    clinical, _ = valid
    clinical["adae"] = clinical["adae"].drop(columns=["AESEV"])          # optional column: warning
    clinical["adqs"] = CASES["late_entry"][1](clinical["adqs"])
    problems = validate_datasets(clinical)
    assert dict(zip(problems["rule"], problems["severity"])) == {"missing_column": "warning", "late_entry": "warning"}
    assert not has_errors(problems)


def test_allocation_checks_only_when_given(valid, snapshot):
    clinical, allocation = valid
    problems = validate_datasets(clinical, allocation=allocation[allocation["USUBJID"] != S2])
    assert found(problems) == {("allocation", "USUBJID", S2, "allocation_missing_subject")}
    shutil.rmtree(snapshot / "allocation")
    assert validate_snapshot(snapshot / "clinical").empty      # the clinical part alone validates
    missing = validate_snapshot(snapshot / "clinical", allocation_dir=snapshot / "allocation")
    assert found(missing) == {("allocation", "", "", "file_unreadable")}


def test_codes_and_ranges_follow_the_study_config(valid, study):
    import dataclasses
    clinical, _ = valid
    clinical["adlb"] = _set(clinical["adlb"], lambda d: d.index == 0, PARAMCD="ALT")
    clinical["adsl"] = _set(clinical["adsl"], lambda d: d.index == 1, AGE=80)
    expected = {("adlb", "PARAMCD", S1, "invalid_code"), ("adsl", "AGE", S2, "value_out_of_range")}
    assert found(validate_datasets(clinical, study=study)) == expected
    other = dataclasses.replace(study, id="OTHER", raw={"validation": {"age_range": [18, 85]}})
    assert validate_datasets(clinical, study=other).empty


# --------------------------------------------------------------------------- files
def test_corrupt_empty_and_zero_byte_files(snapshot):
    part = snapshot / "clinical"
    (part / "adae.parquet").write_bytes(np.random.default_rng(7).bytes(3000))
    (part / "adex.parquet").write_bytes(b"")
    pd.DataFrame({"USUBJID": pd.Series([], dtype=str)}).to_parquet(part / "adlb.parquet")
    (part / "manifest.json").unlink()
    adsl = pd.read_parquet(part / "adsl.parquet")
    adsl.loc[2, "SEX"] = "Q"                             # the other files are still checked
    adsl.to_parquet(part / "adsl.parquet")
    problems = validate_snapshot(part)
    assert found(problems) == {("adae", "", "", "file_unreadable"), ("adex", "", "", "file_empty"),
                               ("adlb", "", "", "file_empty"), ("adsl", "SEX", S3, "invalid_code")}
    messages = dict(zip(problems["dataset"], problems["message"]))
    assert messages["adae"].startswith("adae.parquet: cannot be read")
    assert messages["adex"].startswith("adex.parquet:") and messages["adlb"] == "adlb.parquet: has no rows"


def test_manifest_lists_a_missing_file(snapshot):
    (snapshot / "clinical" / "adex.parquet").unlink()
    assert found(validate_snapshot(snapshot / "clinical")) == {("adex", "", "", "file_unreadable")}


def test_csv_export_validates_and_bad_csv_files_are_reported(valid, tmp_path):
    clinical, _ = valid
    for name, df in clinical.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    assert validate_snapshot(tmp_path).empty, format_problems(validate_snapshot(tmp_path))
    (tmp_path / "adae.csv").write_bytes(np.random.default_rng(1).bytes(2000))
    (tmp_path / "adex.csv").write_text("USUBJID,CYCLE,ASTDT\nMIR-FR01-0001,1,2017-09-20,extra,fields\n"
                                       "MIR-FR01-0002,1,2017-10-02,x,y,z,w\n")
    (tmp_path / "adlb.csv").write_text(",".join(clinical["adlb"].columns) + "\n")
    (tmp_path / "adresp.csv").write_bytes(b"")
    problems = validate_snapshot(tmp_path)
    assert found(problems) == {("adae", "", "", "file_unreadable"), ("adex", "", "", "file_unreadable"),
                               ("adlb", "", "", "file_empty"), ("adresp", "", "", "file_empty")}
    assert all(m.startswith(f"{d}.csv: ") for d, m in zip(problems["dataset"], problems["message"]))


def test_no_adsl_is_reported(valid):
    clinical, _ = valid
    del clinical["adsl"]
    assert ("adsl", "", "", "file_unreadable") in found(validate_datasets(clinical))


# --------------------------------------------------------------------------- output
def test_output_is_sorted_deterministic_and_formats(valid):
    clinical, allocation = valid
    for case in ("duplicate_subject", "late_entry", "invalid_code_cnsr", "total_mismatch"):
        name, corrupt, _ = CASES[case]
        clinical[name] = corrupt(clinical[name])
    p1 = validate_datasets(clinical, allocation=allocation)
    p2 = validate_datasets(clinical, allocation=allocation)
    pd.testing.assert_frame_equal(p1, p2)
    assert p1[["dataset", "rule"]].values.tolist() == sorted(p1[["dataset", "rule"]].values.tolist())
    text = format_problems(p1)
    assert len(text.splitlines()) == len(p1) and "ERROR   duplicate_subject" in text
    back = pd.read_csv(__import__("io").StringIO(format_problems(p1, "csv")), keep_default_na=False)
    pd.testing.assert_frame_equal(back, p1)
    md = format_problems(p1, "md").splitlines()
    assert md[0] == "| site | subject | dataset | column | rule | value | message | severity |" and len(md) == len(p1) + 2
    assert format_problems(p1.iloc[0:0]) == "no problems found" and not has_errors(p1.iloc[0:0])
    with pytest.raises(ValueError, match="unknown format"):
        format_problems(p1, "xml")


# --------------------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def simulated():
    simulate = pytest.importorskip("data_access.simulate")
    from data_access.study import load_study
    study = load_study()
    return (study, simulate.simulate_trial(study, seed=11, n_subjects=40, messy=False),
            simulate.simulate_trial(study, seed=12, n_subjects=40, messy=True))


def test_clean_simulated_trial_has_no_errors(simulated):
    study, clean, _ = simulated
    problems = validate_datasets(clean.clinical, study=study, allocation=clean.allocation)
    assert not has_errors(problems), format_problems(problems)


def test_every_planted_problem_is_reported(simulated):
    study, _, messy = simulated
    problems = validate_datasets(messy.clinical, study=study, allocation=messy.allocation)
    assert len(messy.planted) >= 10
    reported = set(zip(problems["dataset"], problems["rule"], problems["subject"]))
    missed = [p for p in messy.planted if (p["dataset"], p["rule"], str(p["subject"])) not in reported]
    assert not missed, missed


def test_messy_demo_snapshot_reports_planted_problems(tmp_path):
    from data_access.demo import make_demo
    clinical_dir, allocation_dir = make_demo(tmp_path / "t", seed=5, n_subjects=40, messy=True, cut="2020-06-30")
    planted = json.loads((tmp_path / "t" / "planted_problems.json").read_text())
    problems = validate_snapshot(clinical_dir, allocation_dir=allocation_dir)
    reported = set(zip(problems["dataset"], problems["rule"], problems["subject"]))
    assert planted and all((p["dataset"], p["rule"], p["subject"]) in reported for p in planted)


def test_clean_demo_snapshot_has_no_errors(demo_snapshot):
    problems = validate_snapshot(demo_snapshot / "clinical", allocation_dir=demo_snapshot / "allocation")
    assert not has_errors(problems), format_problems(problems)
