"""Blinded and unblinded views on a real small snapshot (Parquet written by write_snapshot, DuckDB)."""
from __future__ import annotations

import datetime as dt
import re
import importlib.util
import threading
from pathlib import Path

import pandas as pd
import pytest

from data_access.snapshot import read_manifest, write_snapshot
from data_access.view_base import ARM_COLUMNS, AllocationMissingError, BlindingError, DatasetNotFound
from data_access.view_blinded import BlindedView
from data_access.view_unblinded import UnblindedView
from data_access.views import open_view

needs_simulator = pytest.mark.skipif(importlib.util.find_spec("data_access.simulate") is None,
                                     reason="data_access.simulate has not landed yet")
ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")
SUBJECTS = ["S1", "S2", "S3", "S4"]
ARMCD = {"S1": "IL2LD", "S2": "PBO", "S3": "PBO", "S4": "IL2LD"}
LABEL = {"IL2LD": "Low-dose IL-2", "PBO": "Placebo"}
MASK = {"IL2LD": "Group B", "PBO": "Group A"}            # the key deliberately not in arm order


def clinical_frames():
    adsl = pd.DataFrame({
        "USUBJID": SUBJECTS, "SITEID": ["FR01", "FR01", "UK01", "UK02"],
        "RANDDT": pd.to_datetime(["2018-01-10", "2018-02-01", "2018-03-05", "2018-04-01"]),
        "AGE": [61, 55, 70, 48],
        "TRT01P": ["x", "x", "x", "x"],     # contract violation: an arm variable in the clinical part
    })
    adlb = pd.DataFrame({
        "USUBJID": ["S2", "S1", "S1", "S3", "S4", "S4", "S2", "S3", "S1"],
        "PARAMCD": ["EOS", "TREG", "EOS", "TREGPCT", "EOS", None, "TREG", "CSFPNFH", "CSFPNFH"],
        "ADT": pd.to_datetime(["2018-02-01", "2018-01-10", "2018-01-10", "2018-03-05", "2018-04-01",
                               "2018-05-01", "2018-03-01", "2018-03-05", "2018-01-10"]),
        "AVAL": [0.2, 61.0, 0.3, 7.5, 0.1, 0.4, 30.0, 3100.0, 2900.0],
    })
    adtte = pd.DataFrame({"USUBJID": ["S3", "S1", "S2", "S4"], "PARAMCD": ["OS"] * 4,
                          "AVAL": [300.0, 500.0, 640.0, 100.0], "CNSR": [0, 1, 1, 0]})
    screening = pd.DataFrame({"SCRNID": ["P1", "P2", "P3", "P4", "P5"],
                              "OUTCOME": ["RANDOMISED", "SCREEN FAILURE", "RANDOMISED", "RANDOMISED", "RANDOMISED"],
                              "USUBJID": ["S1", None, "S2", "S3", "S4"]})
    sites = pd.DataFrame({"SITEID": ["FR01", "UK01", "UK02"], "TARGET": [40, 18, 20]})   # no USUBJID
    return {"adsl": adsl, "adlb": adlb, "adtte": adtte, "screening": screening, "sites": sites}


def allocation_frame():
    codes = [ARMCD[s] for s in SUBJECTS]
    return pd.DataFrame({"USUBJID": SUBJECTS, "RANDNO": [1, 2, 3, 4], "ARMCD": codes,
                         "ARM": [LABEL[c] for c in codes], "STRATUM": ["France/Limb"] * 2 + ["UK/Limb"] * 2,
                         "BLOCK": ["F-1", "F-1", "U-1", "U-1"], "BLKSIZE": [2, 2, 2, 2],
                         "MASKCD": [MASK[c] for c in codes]})


@pytest.fixture(scope="module")
def snap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("views") / "trial"
    write_snapshot(root, clinical_frames(), allocation_frame(), "MIROCALS", dt.date(2019, 6, 30), "test",
                   created="2019-06-30T00:00:00+00:00")
    return root


@pytest.fixture(scope="module")
def clinical_only(tmp_path_factory) -> Path:
    """A blinded deployment: the clinical part and no allocation anywhere."""
    root = tmp_path_factory.mktemp("blinded") / "trial"
    write_snapshot(root, clinical_frames(), None, "MIROCALS", dt.date(2019, 6, 30), "test",
                   created="2019-06-30T00:00:00+00:00")
    return root


class Untouchable:
    """An allocation path that fails the test if anything converts, opens or inspects it."""

    def __fspath__(self):
        raise AssertionError("the blinded view touched the allocation path")

    def __str__(self):
        raise AssertionError("the blinded view touched the allocation path")

    def __truediv__(self, other):
        raise AssertionError("the blinded view touched the allocation path")


def no_arm_token(text: str) -> bool:
    return not any(tok.lower() in text.lower() for tok in ARM_TOKENS)


# ----------------------------------------------------------------- roles
@pytest.mark.parametrize("role, locked, blinded", [
    ("steering", False, True), ("investigator", False, True), ("author", False, True),
    ("dsmb", False, False), ("statistician", False, False), ("author", True, False),
    ("steering", True, True),
])
def test_roles(snap, role, locked, blinded):
    view = open_view(snap, role, allocation_dir=snap / "allocation", database_locked=locked)
    assert view.blinded is blinded and view.role == role
    assert isinstance(view, BlindedView if blinded else UnblindedView)


@pytest.mark.parametrize("role", ["admin", "DSMB", "", None])
def test_unknown_role(snap, role):
    with pytest.raises(ValueError, match="unknown role"):
        open_view(snap, role)


# ----------------------------------------------------------------- blinded
def test_blinded_datasets_have_no_arm_columns_or_revealing_rows(clinical_only, study):
    view = open_view(clinical_only, "steering", study=study)
    assert view.datasets == ("adlb", "adsl", "adtte", "screening", "sites")
    for name in view.datasets:
        assert not set(view.table(name).columns) & set(ARM_COLUMNS), name
        assert not set(view.columns(name)) & set(ARM_COLUMNS), name
    src = clinical_frames()
    # allow-list: only the safe parameters of adlb (MIROCALS: CSF-pNfH); Tregs, eosinophils and
    # rows without a PARAMCD are absent
    expected = src["adlb"][src["adlb"]["PARAMCD"].eq("CSFPNFH")].reset_index(drop=True)
    got = view.table("adlb")
    pd.testing.assert_frame_equal(got.assign(ADT=got["ADT"].astype("datetime64[ns]")), expected)
    pd.testing.assert_frame_equal(view.table("adtte"), src["adtte"])     # row order kept
    assert list(view.table("adsl").columns) == ["USUBJID", "SITEID", "RANDDT", "AGE"]
    # the undeclared TARGET of a dataset outside the contract is withheld and named; SITEID
    # (mapped by the study file) is shown
    assert list(view.table("sites").columns) == ["SITEID"]
    withheld = view.withheld
    assert ("column", "TRT01P", "arm variable") in withheld["adsl"]
    assert [w[:2] for w in withheld["sites"]] == [("column", "TARGET")]
    assert {w[1] for w in withheld["adlb"] if w[0] == "param"} == {"EOS", "TREG", "TREGPCT", "(missing)"}
    assert all(no_arm_token(" ".join(w)) for items in withheld.values() for w in items)


def test_blinded_view_attributes(clinical_only, study):
    view = open_view(clinical_only / "clinical", "investigator", study=study)    # the part dir itself
    assert view.group_col is None and view.arm_levels == ("All",)
    assert view.allocation_hash is None and view.study is study
    assert view.cut_date == dt.date(2019, 6, 30)
    assert view.snapshot_hash == read_manifest(clinical_only / "clinical")["content_hash"]
    assert view.manifest["part"] == "clinical"


def test_blinded_view_never_touches_the_allocation(snap, clinical_only):
    view = open_view(snap, "steering", allocation_dir=Untouchable())
    with_alloc_dir = view.table("adlb")
    assert not (clinical_only / "allocation").exists()
    pd.testing.assert_frame_equal(open_view(clinical_only, "steering").table("adlb"), with_alloc_dir)


def test_blinded_view_holds_no_allocation(snap):
    view = open_view(snap, "steering", allocation_dir=snap / "allocation")
    for key, value in vars(view).items():
        assert not isinstance(value, (pd.DataFrame, pd.Series)), key
        assert "alloc" not in key.lower(), key
        assert "allocation" not in str(value), key
        if isinstance(value, dict):
            assert all("allocation" not in str(v) for v in value.values()), key
    registered = view.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")
    tables = view.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1")
    assert sorted(registered["view_name"]) == sorted(view.datasets) and tables.empty


@pytest.mark.parametrize("ask", [
    lambda v: v.require_unblinded("KM by arm"),
    lambda v: v.table("adsl", columns=["ARM"]),
    lambda v: v.table("adsl", columns=["armcd"]),
    lambda v: v.table("adsl", where="ARMCD = 'PBO'"),
    lambda v: v.table("adlb", where="PARAMCD = 'TREG'"),
    lambda v: v.sql("SELECT * FROM allocation"),
    lambda v: v.sql('SELECT "TRT01P" FROM adsl'),
    lambda v: v.sql("SELECT USUBJID, RANDNO FROM adsl"),
    lambda v: v.sql("SELECT * FROM adlb WHERE PARAMCD IN ('EOS', 'tregpct')"),
    lambda v: v.sql("SELECT * FROM read_parquet('../allocation/allocation.parquet')"),
    lambda v: v.sql("SELECT * FROM 'x/adlb.parquet'"),
    lambda v: v.sql("SET enable_external_access = true"),
    lambda v: v.sql("SELECT 1; DROP VIEW adlb"),
    lambda v: v.table("adsl", where="1 = 1; SET lock_configuration = false"),
])
def test_asking_a_blinded_view_by_arm_is_an_error(snap, ask):
    view = open_view(snap, "steering")
    with pytest.raises(BlindingError) as info:
        ask(view)
    assert isinstance(info.value, PermissionError)
    assert no_arm_token(str(info.value))


def test_blinded_sql_cannot_read_files_even_by_absolute_path(snap):
    view = open_view(snap, "investigator")
    for path in (snap / "allocation" / "allocation.parquet", snap / "clinical" / "adlb.parquet"):
        with pytest.raises(BlindingError):
            view.sql(f"SELECT count(*) FROM read_parquet('{path}')")


def test_blinded_repr_and_errors_name_no_arm(snap):
    view = open_view(snap, "steering")
    assert no_arm_token(repr(view)) and no_arm_token(str(view))
    with pytest.raises(DatasetNotFound) as info:
        view.table("allocation_list")
    assert no_arm_token(str(info.value)) and isinstance(info.value, KeyError)


def test_blinded_queries_on_demand(snap):
    view = open_view(snap, "steering")
    got = view.table("adlb", columns=["USUBJID", "AVAL"], where="AVAL > 2950")
    pd.testing.assert_frame_equal(got, pd.DataFrame({"USUBJID": ["S3"], "AVAL": [3100.0]}))
    counts = view.sql("SELECT SITEID, count(*) AS n FROM adsl GROUP BY SITEID ORDER BY SITEID")
    assert counts.to_dict("list") == {"SITEID": ["FR01", "UK01", "UK02"], "n": [2, 1, 1]}


# ----------------------------------------------------------------- unblinded
def test_unblinded_adds_arm_to_every_dataset_with_usubjid(snap, study):
    view = open_view(snap, "dsmb", allocation_dir=snap / "allocation", study=study)
    assert view.group_col == "ARM" and view.arm_levels == ("Low-dose IL-2", "Placebo")
    assert view.allocation_hash == read_manifest(snap / "allocation")["content_hash"]
    src = clinical_frames()
    for name in ("adsl", "adlb", "adtte", "screening"):
        got = view.table(name)
        ids = src[name]["USUBJID"]
        codes = ids.map(ARMCD).astype(object)
        expected = src[name].assign(ARMCD=codes.where(codes.notna(), None),
                                    ARM=codes.map(LABEL).astype(object).where(codes.notna(), None))
        if "ADT" in got or "RANDDT" in got:
            for col in ("ADT", "RANDDT"):
                if col in got:
                    got[col] = got[col].astype("datetime64[ns]")
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    pd.testing.assert_frame_equal(view.table("sites"), src["sites"])       # nothing to join
    assert {"TREG", "TREGPCT"} <= set(view.table("adlb")["PARAMCD"])       # unblinded: all rows
    view.require_unblinded("KM by arm")                                    # no error
    assert no_arm_token(repr(view))


def test_unblinded_default_allocation_is_the_snapshots_own(snap):
    view = open_view(snap, "statistician")
    assert view.table("adsl")["ARMCD"].tolist() == [ARMCD[s] for s in SUBJECTS]


def test_masked_arms_show_group_labels_only(snap):
    view = open_view(snap, "dsmb", allocation_dir=snap / "allocation", mask_arms=True)
    assert view.arm_levels == ("Group A", "Group B")
    adsl = view.table("adsl")
    assert adsl["ARM"].tolist() == [MASK[ARMCD[s]] for s in SUBJECTS] == ["Group B", "Group A", "Group A", "Group B"]
    assert adsl["ARMCD"].tolist() == adsl["ARM"].tolist()
    for name in view.datasets:
        text = view.table(name).astype(str).to_csv()
        assert "Low-dose IL-2" not in text and "Placebo" not in text and "IL2LD" not in text, name
    alloc = view.sql("SELECT * FROM allocation")
    assert "RANDNO" not in alloc and set(alloc["ARM"]) == {"Group A", "Group B"}


def test_unblinded_needs_an_allocation(clinical_only):
    with pytest.raises(AllocationMissingError, match="needs the allocation") as info:
        open_view(clinical_only, "dsmb")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(AllocationMissingError, match="no allocation snapshot"):
        open_view(clinical_only, "statistician", allocation_dir=clinical_only / "allocation")


def test_views_are_read_only(snap):
    view = open_view(snap, "statistician")
    for query in ("DROP VIEW adsl", "CREATE TABLE t AS SELECT 1", "SELECT 1; SELECT 2"):
        with pytest.raises(ValueError, match="read-only"):
            view.sql(query)
    assert len(view.table("adsl")) == 4


def test_not_a_snapshot(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a snapshot"):
        open_view(tmp_path, "steering")


def test_views_are_safe_across_threads(snap):
    view = open_view(snap, "statistician")
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(len(view.table("adlb", where="PARAMCD = 'EOS'")))
        except Exception as exc:      # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [3] * 80


# ----------------------------------------------------------------- the demo trial (once the simulator lands)
@needs_simulator
def test_demo_snapshot_blinded_and_unblinded(demo_snapshot, blinded_only_snapshot, study):
    blind = open_view(blinded_only_snapshot, "steering", study=study)
    for name in blind.datasets:
        frame = blind.table(name)
        assert not set(frame.columns) & set(ARM_COLUMNS), name
        if "PARAMCD" in frame:
            assert not set(frame["PARAMCD"].dropna()) & set(study.arm_revealing_param_codes), name
    unblind = open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation", study=study)
    assert unblind.snapshot_hash == blind.snapshot_hash
    for name in unblind.datasets:
        frame = unblind.table(name)
        if "USUBJID" in frame:
            assert {"ARM", "ARMCD"} <= set(frame.columns), name
    adsl = unblind.table("adsl")
    assert set(adsl["ARM"]) == set(unblind.arm_levels) and adsl["ARM"].notna().all()
    assert len(adsl) == len(blind.table("adsl"))


def test_memoised_reads_hand_out_independent_copies(snap):
    # A view memoises small query results; a caller that edits what it got must not change what
    # the next caller reads.
    view = open_view(snap, "steering")
    first = view.table("adsl")
    first.loc[:, "AGE"] = -1
    first.drop(first.index[:2], inplace=True)
    again = view.table("adsl")
    assert len(again) == len(first) + 2 == 4
    assert sorted(again["AGE"]) == [48, 55, 61, 70]
    assert sorted(view.table("adsl", where="AGE > 60")["AGE"]) == [61, 70]   # another query, not the memo


# --------------------------------------------------------------------------- a damaged dataset file
@pytest.fixture(scope="module")
def damaged_snapshot(demo_snapshot, tmp_path_factory):
    """The demo with its adae.parquet cut in half (a copy interrupted in transfer)."""
    import shutil
    root = tmp_path_factory.mktemp("damaged") / "trial"
    shutil.copytree(demo_snapshot, root)
    path = root / "clinical" / "adae.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return root


@pytest.mark.parametrize("kind", ["blinded", "unblinded"])
def test_a_damaged_file_is_named_and_the_other_datasets_still_work(damaged_snapshot, kind):
    from data_access.view_base import DatasetUnreadable
    from analysis.outputs import TableUnavailable, build_table
    view = (open_view(damaged_snapshot, "steering") if kind == "blinded" else
            open_view(damaged_snapshot, "dsmb", allocation_dir=damaged_snapshot / "allocation"))
    path = str(damaged_snapshot / "clinical" / "adae.parquet")
    assert "adae" not in view.datasets and path in view.unreadable["adae"]
    with pytest.raises(DatasetUnreadable, match=re.escape(path)):
        view.table("adae")
    with pytest.raises(TableUnavailable, match=re.escape(path) + ".*damaged or incomplete.*still work"):
        build_table("ae", view)
    assert len(build_table("enrolment", view)) > 0              # needs no adae: still built
    assert len(build_table("survival", view)) > 0


def test_cli_names_the_damaged_file_in_one_line_and_exits_2(damaged_snapshot):
    from tests.test_cli import run
    status, out, err = run("table", "sae", "--data", damaged_snapshot, "--view", "blinded")
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(damaged_snapshot / "clinical" / "adae.parquet") in err
    status, out, err = run("table", "baseline", "--data", damaged_snapshot, "--view", "blinded")
    assert status == 0 and out.startswith("variable,")


def test_report_refuses_a_snapshot_with_a_damaged_file_in_one_line(damaged_snapshot, tmp_path):
    """A report is one document sent on: it is not made with tables missing because a file is
    broken. `mirocals report` exits 2 before any folder or kernel, one line naming the file and
    what to do (the dashboard, by contrast, shows what does not need the file)."""
    from tests.test_cli import run
    out = tmp_path / "out"
    status, stdout, err = run("report", "dsmb-open", "--data", damaged_snapshot, "--out", out, "--to", "html")
    assert status == 2 and stdout == "" and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(damaged_snapshot / "clinical" / "adae.parquet") in lines[0]
    assert "no report is made from a snapshot with a damaged dataset" in lines[0]
    assert "still work" not in lines[0] and "Traceback" not in err
