"""Validation: a clean demo has no errors, every planted problem is reported, and every rule
fires on a hand-built case naming the dataset, column, subject and rule."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from data_access.demo import make_demo
from data_access.snapshot import load_datasets
from data_access.validate import format_problems, has_errors, validate_datasets, validate_snapshot


@pytest.fixture(scope="module")
def clean(demo_snapshot):
    return load_datasets(demo_snapshot / "clinical")


def only(problems, rule):
    return problems[problems["rule"] == rule]


def test_clean_demo_validates_without_errors(demo_snapshot):
    problems = validate_snapshot(demo_snapshot / "clinical", allocation_dir=demo_snapshot / "allocation")
    assert not has_errors(problems), format_problems(problems)


def test_every_planted_problem_is_reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy") / "trial"
    make_demo(root, messy=True, seed=3, cut="2020-12-31")
    planted = json.loads((root / "planted_problems.json").read_text())
    problems = validate_snapshot(root / "clinical")
    assert has_errors(problems)
    found = set(zip(problems["dataset"], problems["rule"], problems["subject"]))
    for p in planted:
        assert (p["dataset"], p["rule"], p["subject"]) in found, p


def test_validation_does_not_alter_the_data(clean):
    before = {k: v.copy() for k, v in clean.items()}
    validate_datasets(clean)
    for k in clean:
        pd.testing.assert_frame_equal(clean[k], before[k])


def _mutate(clean, name, fn):
    d = {k: v.copy() for k, v in clean.items()}
    d[name] = fn(d[name])
    return validate_datasets(d)


def test_duplicate_subject_and_missing_subject(clean):
    p = _mutate(clean, "adsl", lambda a: pd.concat([a, a.iloc[[0]]], ignore_index=True))
    row = only(p, "duplicate_subject")
    assert row["subject"].tolist() == [clean["adsl"]["USUBJID"].iloc[0]] and row["dataset"].iloc[0] == "adsl"
    gone = clean["adsl"]["USUBJID"].iloc[5]
    p = _mutate(clean, "adsl", lambda a: a[a["USUBJID"] != gone])
    hits = only(p, "subject_not_in_adsl")
    assert set(hits["subject"]) == {gone} and {"adqs", "adtte", "adae"} <= set(hits["dataset"])


def test_date_order_and_death_before_randomisation(clean):
    s = clean["adsl"]["USUBJID"].iloc[2]

    def swap(a):
        a.loc[a["USUBJID"] == s, "DIAGDT"] = a.loc[a["USUBJID"] == s, "ONSETDT"] - pd.Timedelta(days=1)
        a.loc[a["USUBJID"] == s, "DTHDT"] = a.loc[a["USUBJID"] == s, "RANDDT"] - pd.Timedelta(days=3)
        return a
    p = _mutate(clean, "adsl", swap)
    assert only(p, "date_order")[["column", "subject"]].values.tolist() == [["DIAGDT", s]]
    assert only(p, "death_before_randomisation")["subject"].tolist() == [s]


def test_item_out_of_range_and_totals(clean):
    q = clean["adqs"]
    idx = q.index[(q["PARAMCD"] == "ALSFRS03") & (q["AVISITN"] == 2)][0]
    s, v = q.loc[idx, "USUBJID"], q.loc[idx, "AVISIT"]

    def bad(df):
        df.loc[idx, "AVAL"] = 7
        return df
    p = _mutate(clean, "adqs", bad)
    oor = only(p, "value_out_of_range")
    assert oor[["dataset", "column", "subject"]].values.tolist() == [["adqs", "AVAL", s]]
    assert "ALSFRS03" in oor["message"].iloc[0] and v in oor["message"].iloc[0]
    assert set(only(p, "total_mismatch")["subject"]) == {s}
    assert {"ALSFRST", "BULBAR"} <= {m.split("=")[0].split(": ")[1] for m in only(p, "total_mismatch")["message"]}


def test_both_5a_and_5b_at_one_visit(clean):
    q = clean["adqs"]
    row = q[q["PARAMCD"] == "ALSFR05A"].iloc[[0]].assign(PARAMCD="ALSFR05B")
    p = _mutate(clean, "adqs", lambda df: pd.concat([df, row], ignore_index=True))
    assert row["USUBJID"].iloc[0] in set(only(p, "invalid_code")["subject"])


def test_invalid_codes_and_ranges_in_other_datasets(clean):
    t = clean["adtte"]
    s = t["USUBJID"].iloc[0]
    p = _mutate(clean, "adtte", lambda df: df.assign(CNSR=np.where(df.index == 0, 2, df["CNSR"]),
                                                      AVAL=np.where(df.index == 0, -5.0, df["AVAL"])))
    assert [s] == only(p, "invalid_code").query("column == 'CNSR'")["subject"].tolist()
    assert [s] == only(p, "value_out_of_range").query("dataset == 'adtte'")["subject"].tolist()
    p = _mutate(clean, "adsl", lambda df: df.assign(SEX=np.where(df.index == 1, "X", df["SEX"])))
    assert only(p, "invalid_code")[["dataset", "column", "subject"]].values.tolist() == \
        [["adsl", "SEX", clean["adsl"]["USUBJID"].iloc[1]]]


def test_missing_column_and_wrong_type(clean):
    p = _mutate(clean, "adtte", lambda df: df.drop(columns=["CNSR"]))
    row = only(p, "missing_column")
    assert row[["dataset", "column", "severity"]].values.tolist() == [["adtte", "CNSR", "error"]]
    p = _mutate(clean, "adsl", lambda df: df.assign(AGE=df["AGE"].astype(str)))
    assert only(p, "wrong_type")[["dataset", "column"]].values.tolist() == [["adsl", "AGE"]]


def test_strata_and_allocation_coverage(clean, demo_snapshot):
    alloc = load_datasets(demo_snapshot / "allocation")["allocation"]
    s = alloc["USUBJID"].iloc[0]
    p = validate_datasets(clean, allocation=alloc.iloc[1:])
    assert only(p, "allocation_missing_subject")["subject"].tolist() == [s]
    other = alloc.assign(STRATUM=np.where(alloc.index == 3, "UK/Other", alloc["STRATUM"]))
    p = validate_datasets(clean, allocation=other)
    assert only(p, "stratum_mismatch")["subject"].tolist() == [alloc["USUBJID"].iloc[3]]


def test_corrupt_empty_and_zero_byte_files(demo_snapshot, tmp_path):
    part = tmp_path / "clinical"
    shutil.copytree(demo_snapshot / "clinical", part)
    (part / "adae.parquet").write_bytes(b"\x00garbage\xff" * 50)
    (part / "adex.parquet").write_bytes(b"")
    pd.DataFrame({"USUBJID": pd.Series([], dtype=str)}).to_parquet(part / "adlb.parquet")
    (part / "manifest.json").unlink()
    p = validate_snapshot(part)
    assert only(p, "file_unreadable")["dataset"].tolist() == ["adae"]
    assert "adae.parquet" in only(p, "file_unreadable")["message"].iloc[0]
    assert set(only(p, "file_empty")["dataset"]) == {"adex", "adlb"}
    # the other datasets were still checked: a planted ADSL problem is still found
    adsl = pd.read_parquet(part / "adsl.parquet")
    adsl.loc[0, "SEX"] = "Q"
    adsl.to_parquet(part / "adsl.parquet")
    assert "adsl" in set(only(validate_snapshot(part), "invalid_code")["dataset"])


def test_csv_export_can_be_validated(clean, tmp_path):
    clean["adsl"].to_csv(tmp_path / "adsl.csv", index=False)
    p = validate_snapshot(tmp_path)
    assert not only(p, "wrong_type").query("dataset == 'adsl'").shape[0]


def test_format_problems_text_csv_md(clean):
    p = _mutate(clean, "adsl", lambda df: df.assign(SEX=np.where(df.index == 1, "X", df["SEX"])))
    assert "invalid_code" in format_problems(p)
    assert format_problems(p, "csv").splitlines()[0] == "dataset,column,subject,rule,severity,message"
    assert format_problems(p, "md").startswith("| dataset")
