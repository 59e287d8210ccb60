"""Data cuts on hand-built 3-5 subject cases: one test per rule, whole frames compared."""
from __future__ import annotations

import datetime as dt
import importlib.util

import pandas as pd
import pytest

from data_access.cut import cut_datasets, cut_snapshot
from data_access.snapshot import load_datasets, read_manifest, write_snapshot

needs_simulator = pytest.mark.skipif(importlib.util.find_spec("data_access.simulate") is None,
                                     reason="data_access.simulate has not landed yet")
CUT = "2019-06-30"
NaT = pd.NaT


def D(*values):
    """A datetime64 column from ISO strings / None."""
    return pd.to_datetime(list(values))


def adsl_full():
    return pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3", "S4", "S5"],
        # S1 dies after the cut; S2 died before; S3 randomised after; S4 randomisation date missing;
        # S5 randomised before the cut but first dose after it
        "RANDDT": D("2018-01-10", "2018-02-01", "2019-07-15", None, "2019-06-25"),
        "TRTSDT": D("2018-01-11", "2018-02-02", "2019-07-16", "2018-05-01", "2019-07-02"),
        "TRTEDT": D("2019-09-01", "2018-11-30", "2020-12-01", "2019-06-01", "2020-06-01"),
        "SAFFL": ["Y", "Y", "Y", "Y", "Y"],
        "EOSSTT": ["DISCONTINUED", "DISCONTINUED", "COMPLETED", "COMPLETED", "COMPLETED"],
        "DCSREAS": ["DEATH", "DEATH", None, None, None],
        "EOSDT": D("2019-10-01", "2018-12-01", "2021-04-01", "2019-06-30", "2021-03-01"),
        "DTHFL": ["Y", "Y", None, None, None],
        "DTHDT": D("2019-10-01", "2018-12-01", None, None, None),
        "LSTALVDT": D("2019-10-01", "2018-12-01", "2021-04-01", None, "2021-03-01"),
    })


def test_adsl_keeps_randomised_and_forgets_the_future():
    out, _ = cut_datasets({"adsl": adsl_full()}, None, CUT)
    expected = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S4", "S5"],
        "RANDDT": D("2018-01-10", "2018-02-01", None, "2019-06-25"),
        "TRTSDT": D("2018-01-11", "2018-02-02", "2018-05-01", None),
        "TRTEDT": D("2019-06-30", "2018-11-30", "2019-06-01", None),
        "SAFFL": ["Y", "Y", "Y", "N"],
        "EOSSTT": ["ONGOING", "DISCONTINUED", "COMPLETED", "ONGOING"],
        "DCSREAS": [None, "DEATH", None, None],
        "EOSDT": D(None, "2018-12-01", "2019-06-30", None),
        "DTHFL": [None, "Y", None, None],
        "DTHDT": D(None, "2018-12-01", None, None),
        # known alive after the cut: the last date on or before it in the data (here ADSL only:
        # S1's first dose, S5's randomisation); S2's death date is kept
        "LSTALVDT": D("2018-01-11", "2018-12-01", None, "2019-06-25"),
    })
    pd.testing.assert_frame_equal(out["adsl"], expected)


def test_last_known_alive_at_the_cut_is_the_last_record_before_it():
    """Vital-status currency depends on it: a participant alive after the cut was last known alive
    at their last record on or before the cut (visit, AE start or end, treatment cycle), not at the
    cut itself; records after the cut and other subjects' records do not count."""
    adqs = pd.DataFrame({"USUBJID": ["S1", "S1", "S1", "S5"], "PARAMCD": ["ALSFRST"] * 4,
                         "ADT": D("2019-03-01", "2019-05-20", "2019-07-02", "2019-06-26"), "AVAL": [40.0] * 4})
    adae = pd.DataFrame({"USUBJID": ["S1", "S2", "S5"], "AEDECOD": ["Fall", "Fall", "Fall"],
                         "ASTDT": D("2019-04-01", "2018-11-01", "2019-06-27"),
                         "AENDT": D("2019-06-02", "2018-11-05", "2019-07-09")})
    adex = pd.DataFrame({"USUBJID": ["S1", "S1"], "CYCLE": [1, 2], "ASTDT": D("2019-05-28", "2019-06-25"),
                         "AENDT": D("2019-06-01", "2019-06-29"), "NDOSES": [5, 5]})
    out, _ = cut_datasets({"adsl": adsl_full(), "adqs": adqs, "adae": adae, "adex": adex}, None, CUT)
    got = dict(zip(out["adsl"]["USUBJID"], out["adsl"]["LSTALVDT"]))
    # S1: cycle 2 ended 2019-06-29 (the visit of 2019-07-02 is after the cut); S5: AE start 2019-06-27
    # (its end, 2019-07-09, is after the cut); S2 died 2018-12-01: kept; S4 has none: stays missing
    assert got["S1"] == pd.Timestamp("2019-06-29") and got["S5"] == pd.Timestamp("2019-06-27")
    assert got["S2"] == pd.Timestamp("2018-12-01") and pd.isna(got["S4"])


def test_allocation_restricted_to_subjects_in_the_cut():
    alloc = pd.DataFrame({"USUBJID": ["S3", "S1", "S5", "S2", "S4"], "ARMCD": ["PBO", "IL2LD", "PBO", "PBO", "IL2LD"]})
    _, got = cut_datasets({"adsl": adsl_full()}, alloc, CUT)
    pd.testing.assert_frame_equal(got, pd.DataFrame({"USUBJID": ["S1", "S5", "S2", "S4"],
                                                     "ARMCD": ["IL2LD", "PBO", "PBO", "IL2LD"]}))


def test_screening_outcomes_after_the_cut_are_pending():
    scr = pd.DataFrame({
        "SCRNID": ["P1", "P2", "P3", "P4", "P5", "P6", "P7"],
        "SCRNDT": D("2018-01-01", "2018-11-01", "2019-03-01", "2019-04-01", "2019-07-05", None, "2019-06-20"),
        # P1 randomised before; P2 failed screening; P3 randomised after the cut; P4 dropped out
        # after the cut; P5 screened after the cut; P6 screening date missing; P7 run-in starts after
        "OUTCOME": ["RANDOMISED", "SCREEN FAILURE", "RANDOMISED", "RUN-IN DROP-OUT", "RANDOMISED",
                    "SCREEN FAILURE", "RUN-IN DROP-OUT"],
        "REASON": [None, "SVC < 70%", None, "Withdrew consent", None, "Age", "Adverse event"],
        "RUNINSDT": D("2018-01-05", None, "2019-03-10", "2019-04-05", "2019-07-10", None, "2019-07-01"),
        "RUNINEDT": D("2018-04-20", None, "2019-07-15", "2019-07-20", "2019-10-20", None, "2019-08-01"),
        "USUBJID": ["S1", None, "S3", None, "S9", None, None],
    })
    out, _ = cut_datasets({"adsl": adsl_full(), "screening": scr}, None, CUT)
    expected = pd.DataFrame({
        "SCRNID": ["P1", "P2", "P3", "P4", "P6", "P7"],
        "SCRNDT": D("2018-01-01", "2018-11-01", "2019-03-01", "2019-04-01", None, "2019-06-20"),
        "OUTCOME": ["RANDOMISED", "SCREEN FAILURE", "IN RUN-IN", "IN RUN-IN", "SCREEN FAILURE", "IN RUN-IN"],
        "REASON": [None, "SVC < 70%", None, None, "Age", None],
        "RUNINSDT": D("2018-01-05", None, "2019-03-10", "2019-04-05", None, None),
        "RUNINEDT": D("2018-04-20", None, None, None, None, None),
        "USUBJID": ["S1", None, None, None, None, None],
    })
    pd.testing.assert_frame_equal(out["screening"], expected)


def test_bds_records_dated_by_the_cut_and_undated_records_kept():
    adqs = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S1", "S2", "S3", "S1", "X9"],
        "PARAMCD": ["ALSFRST"] * 7,
        "ADT": D("2018-01-10", "2019-06-30", "2019-07-01", "2018-02-01", "2019-07-15", None, "2019-01-01"),
        "ADTDTC": [None, None, None, None, None, "2019-05", None],
        "AVAL": [40.0, 36.0, 35.0, 44.0, 30.0, 37.0, 20.0],
    })
    out, _ = cut_datasets({"adsl": adsl_full(), "adqs": adqs}, None, CUT)
    # kept: on/before the cut (the cut day itself included), the undated record, and the record
    # of X9 (not in ADSL: a data problem for validation); dropped: after the cut, S3 (randomised after)
    expected = adqs.iloc[[0, 1, 3, 5, 6]].reset_index(drop=True)
    pd.testing.assert_frame_equal(out["adqs"], expected)


def test_adverse_events_ongoing_at_the_cut():
    adae = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S2", "S1", "S5", "S3"],
        "AESEQ": [1, 2, 1, 3, 1, 1],
        "ASTDT": D("2018-03-01", "2019-05-01", "2018-11-01", "2019-07-02", None, "2019-08-01"),
        "AENDT": D("2018-03-10", "2019-08-01", "2018-12-01", "2019-07-05", None, None),
        "AEOUT": ["RECOVERED", "RECOVERED", "FATAL", "RECOVERED", "RECOVERING", "RECOVERED"],
        "AESDTH": ["N", "N", "Y", "N", "N", "N"],
    })
    fatal_later = pd.DataFrame({"USUBJID": ["S1"], "AESEQ": [4], "ASTDT": D("2019-06-01"),
                                "AENDT": D("2019-10-01"), "AEOUT": ["FATAL"], "AESDTH": ["Y"]})
    out, _ = cut_datasets({"adsl": adsl_full(), "adae": pd.concat([adae, fatal_later], ignore_index=True)},
                          None, CUT)
    expected = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S2", "S5", "S1"],
        "AESEQ": [1, 2, 1, 1, 4],
        "ASTDT": D("2018-03-01", "2019-05-01", "2018-11-01", None, "2019-06-01"),
        "AENDT": D("2018-03-10", None, "2018-12-01", None, None),
        "AEOUT": ["RECOVERED", "NOT RECOVERED", "FATAL", "RECOVERING", "NOT RECOVERED"],
        "AESDTH": ["N", "N", "Y", "N", "N"],
    })
    pd.testing.assert_frame_equal(out["adae"], expected)


def test_exposure_cycles_started_by_the_cut():
    adex = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S1", "S2"],
        "CYCLE": [1, 2, 3, 1],
        "ASTDT": D("2019-05-30", "2019-06-27", "2019-07-25", "2018-02-02"),
        "AENDT": D("2019-06-03", "2019-07-01", "2019-07-29", "2018-02-06"),
        "NDOSES": [5, 5, 5, 5],
    })
    out, _ = cut_datasets({"adsl": adsl_full(), "adex": adex}, None, CUT)
    expected = adex.iloc[[0, 1, 3]].reset_index(drop=True)
    expected["AENDT"] = D("2019-06-03", None, "2018-02-06")
    pd.testing.assert_frame_equal(out["adex"], expected)


def test_time_to_event_censored_administratively_at_the_cut():
    adtte = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3", "S4", "S5"],
        "PARAMCD": ["OS"] * 5,
        "STARTDT": D("2018-01-10", "2018-02-01", "2019-07-15", "2018-03-01", "2019-06-25"),
        # S1 dies after the cut; S2 died before; S3 randomised after; S4 withdrew (censored)
        # before the cut; S5 alive at study end, after the cut
        "ADT": D("2019-10-01", "2018-12-01", "2020-01-01", "2019-01-15", "2021-03-01"),
        "AVAL": [629.0, 303.0, 170.0, 320.0, 615.0],
        "CNSR": [0, 0, 0, 1, 1],
        "EVNTDESC": ["DEATH", "DEATH", "DEATH", "WITHDRAWAL", "END OF STUDY"],
        "CNSDTDSC": [None, None, None, "LAST CONTACT", "LAST KNOWN ALIVE"],
    })
    out, _ = cut_datasets({"adsl": adsl_full(), "adtte": adtte}, None, CUT)
    expected = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S4", "S5"],
        "PARAMCD": ["OS"] * 4,
        "STARTDT": D("2018-01-10", "2018-02-01", "2018-03-01", "2019-06-25"),
        "ADT": D("2019-06-30", "2018-12-01", "2019-01-15", "2019-06-30"),
        # 2018-01-10 -> 2019-06-30 is 536 days; 2018-02-01 -> 2018-12-01 is 303;
        # 2018-03-01 -> 2019-01-15 is 320; 2019-06-25 -> 2019-06-30 is 5
        "AVAL": [536.0, 303.0, 320.0, 5.0],
        "CNSR": [1, 0, 1, 1],
        "EVNTDESC": ["CENSORED AT DATA CUT-OFF", "DEATH", "WITHDRAWAL", "CENSORED AT DATA CUT-OFF"],
        "CNSDTDSC": ["DATA CUT-OFF", None, "LAST CONTACT", "DATA CUT-OFF"],
    })
    pd.testing.assert_frame_equal(out["adtte"], expected)


def test_inputs_are_not_modified_and_cut_date_forms_agree():
    clinical = {"adsl": adsl_full()}
    before = clinical["adsl"].copy()
    a, _ = cut_datasets(clinical, None, CUT)
    b, _ = cut_datasets(clinical, None, dt.date(2019, 6, 30))
    c, _ = cut_datasets(clinical, None, pd.Timestamp("2019-06-30"))
    pd.testing.assert_frame_equal(clinical["adsl"], before)
    pd.testing.assert_frame_equal(a["adsl"], b["adsl"])
    pd.testing.assert_frame_equal(a["adsl"], c["adsl"])


def test_cut_needs_adsl():
    with pytest.raises(ValueError, match="adsl"):
        cut_datasets({"adqs": pd.DataFrame({"USUBJID": []})}, None, CUT)


def test_cut_snapshot_writes_a_new_snapshot(tmp_path):
    adqs = pd.DataFrame({"USUBJID": ["S1", "S1", "S3"], "PARAMCD": ["ALSFRST"] * 3,
                         "ADT": D("2018-01-10", "2019-08-01", "2019-07-15"), "AVAL": [40.0, 35.0, 30.0]})
    alloc = pd.DataFrame({"USUBJID": ["S1", "S2", "S3", "S4", "S5"], "ARMCD": ["IL2LD", "PBO", "PBO", "IL2LD", "PBO"]})
    src, out = tmp_path / "src", tmp_path / "cut"
    write_snapshot(src, {"adsl": adsl_full(), "adqs": adqs}, alloc, "MIROCALS", "2021-07-22", "test",
                   created="2021-07-22T00:00:00+00:00")
    cut_snapshot(src, CUT, out, created="2019-06-30T00:00:00+00:00")
    m = read_manifest(out / "clinical")
    assert m["source"] == f"cut of {read_manifest(src / 'clinical')['content_hash']}"
    assert m["cut_date"] == "2019-06-30" and m["study"] == "MIROCALS"
    assert m["files"]["adqs.parquet"]["rows"] == 1 and m["files"]["adsl.parquet"]["rows"] == 4
    got = load_datasets(out / "clinical")
    assert got["adqs"]["AVAL"].tolist() == [40.0]
    assert got["adsl"]["USUBJID"].tolist() == ["S1", "S2", "S4", "S5"]
    assert load_datasets(out / "allocation")["allocation"]["USUBJID"].tolist() == ["S1", "S2", "S4", "S5"]
    with pytest.raises(ValueError, match="only up to 2021-07-22"):
        cut_snapshot(src, "2022-01-01", tmp_path / "later")


def test_cut_snapshot_without_allocation(tmp_path):
    write_snapshot(tmp_path / "src", {"adsl": adsl_full()}, None, "MIROCALS", "2021-07-22", "test")
    cut_snapshot(tmp_path / "src" / "clinical", CUT, tmp_path / "cut")
    assert not (tmp_path / "cut" / "allocation").exists()
    assert read_manifest(tmp_path / "cut")["files"]["adsl.parquet"]["rows"] == 4


@needs_simulator
def test_demo_cut_keeps_only_what_was_known(demo_snapshot):
    """Properties of a cut of the demo trial at an interim date (the rules above, at scale)."""
    clinical = load_datasets(demo_snapshot / "clinical")
    allocation = load_datasets(demo_snapshot / "allocation")["allocation"]
    cut = pd.Timestamp("2019-03-31")
    out, alloc = cut_datasets(clinical, allocation, cut)
    adsl = out["adsl"]
    assert (adsl["RANDDT"].dropna() <= cut).all()
    assert set(alloc["USUBJID"]) == set(adsl["USUBJID"])
    assert (adsl["DTHDT"].dropna() <= cut).all() and (adsl["LSTALVDT"].dropna() <= cut).all()
    for name, col in (("adqs", "ADT"), ("adlb", "ADT"), ("adae", "ASTDT"), ("adex", "ASTDT")):
        if name in out:
            assert (pd.to_datetime(out[name][col]).dropna() <= cut).all(), name
    tte = out["adtte"]
    assert (tte["ADT"] <= cut).all()
    assert (tte["AVAL"] == (tte["ADT"] - tte["STARTDT"]).dt.days).all()
    os_events = tte[(tte["PARAMCD"] == "OS") & (tte["CNSR"] == 0)]
    assert os_events["USUBJID"].isin(adsl.loc[adsl["DTHFL"] == "Y", "USUBJID"]).all()
    scr = out["screening"]
    assert (scr.loc[scr["OUTCOME"] == "RANDOMISED", "USUBJID"].dropna().isin(adsl["USUBJID"])).all()
