"""Issue 10, items 1 and 5, in the data layer: each test reproduces an attack on the blinding as
the review wrote it and shows that it fails (real snapshots, real DuckDB, no mocks).

- the arm kept in an imported snapshot under the study's own name (``TREATMENT``) or in an
  exposure dataset (``EXTRT``), served by the blinded view and written by ``export``;
- a clinical part that predicts the arm written as a snapshot;
- a renamed Treg parameter (``TREG_PCT``), eosinophils, injection-site reactions and
  influenza-like illness in the blinded view;
- the blinded Data quality page validating the raw files (Treg values in its messages);
- and the false positives a value scan must not produce (SEX, COUNTRY, STRATUM, ONSET, ...).
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_access.adam import export_adam, import_adam
from data_access.arm_scan import find_arm_revealing_columns
from data_access.snapshot import ArmInClinicalError, load_datasets, write_snapshot
from data_access.study import DEFAULT_STUDY_FILE, load_study
from data_access.validate import validate_blinded, validate_snapshot
from data_access.view_base import BlindingError
from data_access.views import open_view

ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")
REVEALING_TEXT = re.compile(r"(?i)eosinophil|regulatory t|treg|injection.?site|influenza")


def _demo(demo_snapshot):
    return load_datasets(demo_snapshot / "clinical"), load_datasets(demo_snapshot / "allocation")["allocation"]


def _arm_of(allocation):
    return allocation.set_index("USUBJID")["ARMCD"]


# --------------------------------------------------------------------------- item 1: import
@pytest.fixture(scope="module")
def treatment_delivery(demo_snapshot, tmp_path_factory) -> tuple[Path, Path]:
    """The demo as a sponsor's delivery whose arm variable is TREATMENT (the study file maps it)
    and whose exposure dataset carries EXTRT and a drug lot per arm; KITNO is a kit number
    (unique per subject: an identifier, not the arm)."""
    base = tmp_path_factory.mktemp("treatment")
    export_adam(demo_snapshot, base / "export", fmt="parquet", allocation_dir=demo_snapshot / "allocation")
    src = base / "delivery"
    src.mkdir()
    arm_cols = ("ARM", "ARMCD", "TRT01P")
    for path in sorted((base / "export").glob("*.parquet")):
        df = pd.read_parquet(path)
        if path.stem == "adsl":
            df = df.rename(columns={"ARM": "TREATMENT"}).drop(columns=["ARMCD", "TRT01P"])
        elif path.stem == "adex":
            df["EXTRT"] = np.where(df["ARMCD"].eq("IL2LD"), "IL-2 1 MIU/mL", "PLACEBO")
            lot = df.groupby("USUBJID").ngroup() % 5
            df["EXLOT"] = np.where(df["ARMCD"].eq("IL2LD"), "L" + lot.astype(str), "P" + lot.astype(str))
            df["KITNO"] = "K" + (df.groupby("USUBJID").ngroup() + 1000).astype(str)
            df = df.drop(columns=["ARM", "ARMCD"])
        else:
            df = df.drop(columns=[c for c in arm_cols if c in df.columns])
        df.to_parquet(src / path.name, index=False)
    study_file = base / "study.toml"
    study_file.write_text(DEFAULT_STUDY_FILE.read_text().replace('arm = "ARM"', 'arm = "TREATMENT"'))
    return src, study_file


@pytest.fixture(scope="module")
def imported(treatment_delivery, tmp_path_factory):
    src, study_file = treatment_delivery
    out = tmp_path_factory.mktemp("imported") / "snap"
    removed: list = []
    import_adam(src, study_file, out, created="2021-07-22T00:00:00+00:00", removed=removed)
    return out, removed


def test_import_strips_the_arm_by_value_and_says_what(imported, treatment_delivery):
    out, removed = imported
    found = {(f.dataset, f.column): f.rule for f in removed}
    assert found[("adsl", "TREATMENT")] == "arm_variable"           # the study's own [columns] arm
    assert found[("adex", "EXTRT")] == "arm_values"                 # "PLACEBO" names the arm
    assert found[("adex", "EXLOT")] == "determines_arm"             # lots are per arm: the arm
    assert ("adex", "KITNO") not in found                           # an identifier, not the arm
    for (dataset, column), rule in found.items():
        assert column not in pd.read_parquet(out / "clinical" / f"{dataset}.parquet").columns, (dataset, column)
    # nothing in the clinical part predicts the arm any more
    clinical, allocation = load_datasets(out / "clinical"), load_datasets(out / "allocation")["allocation"]
    assert find_arm_revealing_columns(clinical, allocation, load_study(treatment_delivery[1])) == []
    assert set(allocation["ARMCD"]) == {"IL2LD", "PBO"} and len(allocation) == len(clinical["adsl"])
    # the variable labels carried beside the datasets do not list a removed column either
    labels = (out / "clinical" / "labels.json").read_text()
    assert "TREATMENT" not in labels and "EXTRT" not in labels


def test_import_message_names_dataset_and_column(treatment_delivery, tmp_path, caplog):
    src, study_file = treatment_delivery
    with caplog.at_level("WARNING", logger="mirocals.import"):
        import_adam(src, study_file, tmp_path / "snap")
    assert "adsl.TREATMENT" in caplog.text and "adex.EXTRT" in caplog.text and "adex.EXLOT" in caplog.text


def test_blinded_sql_cannot_group_by_the_imported_arm(imported):
    out, _ = imported
    view = open_view(out, "steering")
    # the attack of the issue: the arms by the study's own arm variable
    with pytest.raises((BlindingError, ValueError)):
        view.sql("select TREATMENT, count(*) from adsl group by 1")
    with pytest.raises((BlindingError, ValueError)):
        view.sql("select EXTRT, count(*) from adex group by 1")
    # the identifier that stayed in the file is not in the blinded view either (not in the
    # contract): withheld and named
    assert "KITNO" not in view.columns("adex")
    assert ("column", "KITNO") in [w[:2] for w in view.withheld["adex"]]
    with pytest.raises(BlindingError, match="KITNO"):
        view.sql("select KITNO from adex")
    for name in view.datasets:
        text = view.table(name).astype(str).to_csv()
        assert not any(tok in text for tok in ("Low-dose IL-2", "IL2LD", "PLACEBO")), name


def test_export_without_allocation_writes_no_arm(imported, tmp_path):
    out, _ = imported
    alloc = load_datasets(out / "allocation")["allocation"]
    export_adam(out, tmp_path / "csv", fmt="csv")
    exported = {p.stem: pd.read_csv(p) for p in (tmp_path / "csv").glob("*.csv")}
    for name, df in exported.items():
        assert not {"ARM", "ARMCD", "TRT01P", "TREATMENT", "EXTRT"} & set(df.columns), name
    assert find_arm_revealing_columns(exported, alloc, load_study()) == []


def test_export_of_an_old_snapshot_drops_the_mapped_arm(imported, tmp_path, treatment_delivery):
    """A snapshot written before the value split (TREATMENT left in clinical/): export without
    the allocation still writes no arm."""
    out, _ = imported
    clinical = load_datasets(out / "clinical")
    alloc = load_datasets(out / "allocation")["allocation"]
    clinical["adsl"]["TREATMENT"] = clinical["adsl"]["USUBJID"].map(alloc.set_index("USUBJID")["ARM"])
    old = tmp_path / "old"
    write_snapshot(old, clinical, None, load_study(treatment_delivery[1]), "2021-07-22", "old",
                   sidecars={"study.toml": treatment_delivery[1].read_bytes()})
    export_adam(old, tmp_path / "out", fmt="csv")
    assert "TREATMENT" not in pd.read_csv(tmp_path / "out" / "adsl.csv").columns


# --------------------------------------------------------------------------- item 1: snapshot writing
def test_write_snapshot_refuses_a_clinical_part_that_predicts_the_arm(demo_snapshot, study, tmp_path):
    clinical, allocation = _demo(demo_snapshot)
    arm = clinical["adsl"]["USUBJID"].map(_arm_of(allocation))
    clinical["adsl"] = clinical["adsl"].assign(COHORT=np.where(arm.eq("IL2LD"), "C1", "C2"))
    with pytest.raises(ArmInClinicalError) as info:
        write_snapshot(tmp_path / "snap", clinical, allocation, study, "2021-07-22", "test")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "clinical/adsl.parquet" in message and "COHORT" in message and "determines_arm" in message
    assert not any(tok in message for tok in ARM_TOKENS)            # names the column, not the arms
    assert not (tmp_path / "snap" / "clinical").exists()            # nothing written
    # without the allocation nothing can be checked, and validation with it then finds it
    write_snapshot(tmp_path / "snap", clinical, None, study, "2021-07-22", "test")
    problems = validate_snapshot(tmp_path / "snap", study=study, allocation_dir=demo_snapshot / "allocation")
    hit = problems[problems["rule"].eq("arm_revealing_column")]
    assert hit[["dataset", "column", "severity"]].values.tolist() == [["adsl", "COHORT", "error"]]
    assert "adsl.parquet" in hit["message"].iloc[0]


def test_write_snapshot_refuses_arm_labels_in_any_dataset(demo_snapshot, study, tmp_path):
    clinical, allocation = _demo(demo_snapshot)
    labels = allocation.set_index("USUBJID")["ARM"].str.upper()
    clinical["adae"] = clinical["adae"].assign(ACTTRT=clinical["adae"]["USUBJID"].map(labels))
    with pytest.raises(ValueError, match=r"adae\.parquet column ACTTRT \(rule arm_values"):
        write_snapshot(tmp_path / "snap", clinical, allocation, study, "2021-07-22", "test")


# --------------------------------------------------------------------------- false positives
def test_the_demo_has_no_arm_revealing_column(demo_snapshot, study):
    clinical, allocation = _demo(demo_snapshot)
    t0 = time.perf_counter()
    assert find_arm_revealing_columns(clinical, allocation, study) == []       # SEX, COUNTRY, STRATUM,
    assert time.perf_counter() - t0 < 5                                       # ONSET, sites, dates ...
    assert validate_snapshot(demo_snapshot, study=study, allocation_dir=demo_snapshot / "allocation")[
        "rule"].ne("arm_revealing_column").all()


def test_what_determines_the_arm(study):
    rng = np.random.default_rng(7)
    n = 60
    ids = [f"S{i:03d}" for i in range(n)]
    arm = np.array(["IL2LD", "PBO"] * (n // 2))
    allocation = pd.DataFrame({"USUBJID": ids, "ARMCD": arm})
    adsl = pd.DataFrame({
        "USUBJID": ids,
        "SUBJID": [f"{i:04d}" for i in range(n)],                       # identifier: unique per subject
        "STUDYID": "MIROCALS",                                          # constant
        "SEX": rng.choice(["M", "F"], n),                               # ordinary 2-level column
        "SPLIT": np.where(arm == "IL2LD", "yes", "no"),                 # 2-level with the arm's split
        "ONLYPBO": np.where(arm == "PBO", "x", None),                   # missing exactly on one arm
        "DOSECODE": np.where(arm == "IL2LD", " group  a ", "GROUP B"),  # masking codes, any case/spacing
        "WEIGHT": rng.normal(70, 10, n).round(1),                       # measurement
    })
    found = {f.column: f.rule for f in find_arm_revealing_columns({"adsl": adsl}, allocation, study)}
    assert found == {"SPLIT": "determines_arm", "ONLYPBO": "determines_arm", "DOSECODE": "arm_values"}
    # below the minimum number of subjects a 2-level split is chance, not evidence
    few = {"adsl": adsl.head(10)}
    assert find_arm_revealing_columns(few, allocation, study) == [] or \
        {f.rule for f in find_arm_revealing_columns(few, allocation, study)} == {"arm_values"}
    # one data-entry error does not hide a column that is the arm
    noisy = adsl.assign(SPLIT=adsl["SPLIT"].where(adsl.index != 3, "no"))
    assert "SPLIT" in {f.column for f in find_arm_revealing_columns({"adsl": noisy}, allocation, study)}
    # an arm code in a couple of rows by coincidence is not "holding the arm"
    coincidence = adsl.assign(NOTE=[("PBO" if a == "PBO" else None) if i < 4 else None for i, a in enumerate(arm)])
    assert "NOTE" not in {f.column for f in find_arm_revealing_columns({"adsl": coincidence}, allocation, study)}


def test_the_scan_on_a_large_trial(study):
    """Large trials take the sampled pre-check: still every arm-revealing column, no other."""
    rng = np.random.default_rng(11)
    n = 12_000
    ids = np.array([f"S{i:05d}" for i in range(n)])
    arm = rng.choice(["IL2LD", "PBO"], n)
    allocation = pd.DataFrame({"USUBJID": ids, "ARMCD": arm})
    rows = np.repeat(np.arange(n), 10)                        # a 10-row-per-subject dataset
    adex = pd.DataFrame({"USUBJID": ids[rows], "CYCLE": np.tile(np.arange(1, 11), n),
                         "NDOSES": rng.integers(0, 6, len(rows)),
                         "EXLOT": np.where(arm[rows] == "IL2LD", "A", "B") + rng.integers(0, 40, len(rows)).astype(str),
                         "ASTDY": rng.integers(0, 600, len(rows)).astype(float)})
    t0 = time.perf_counter()
    found = find_arm_revealing_columns({"adex": adex}, allocation, study)
    assert [(f.column, f.rule) for f in found] == [("EXLOT", "determines_arm")]
    assert time.perf_counter() - t0 < 10


# --------------------------------------------------------------------------- item 5: views
def _with_renamed_treg(demo_snapshot, tmp_path, study):
    clinical, allocation = _demo(demo_snapshot)
    lb = clinical["adlb"]
    clinical["adlb"] = lb.assign(PARAMCD=lb["PARAMCD"].replace({"TREGPCT": "TREG_PCT"}))
    extra = lb[lb["PARAMCD"].eq("CSFPNFH")].assign(PARAMCD="CRP", PARAM="C-reactive protein", AVALU="mg/L")
    clinical["adlb"] = pd.concat([clinical["adlb"], extra], ignore_index=True)
    write_snapshot(tmp_path / "snap", clinical, allocation, study, "2021-07-22", "test")
    return tmp_path / "snap"


def test_renamed_treg_parameter_is_withheld_and_named(demo_snapshot, tmp_path, study):
    root = _with_renamed_treg(demo_snapshot, tmp_path, study)
    view = open_view(root, "investigator")
    adlb = view.table("adlb")
    assert set(adlb["PARAMCD"]) == {"CSFPNFH"}                        # the allow-list of safe params
    assert not adlb["PARAM"].str.contains(REVEALING_TEXT).any()
    params = {name: reason for kind, name, reason in view.withheld["adlb"] if kind == "param"}
    assert set(params) == {"TREG", "TREG_PCT", "EOS", "CRP"}
    assert "Regulatory T cells (% of CD4)" in params["TREG_PCT"] and "pattern" in params["TREG_PCT"]
    assert "safe parameters" in params["CRP"]
    with pytest.raises(BlindingError):
        view.sql("select * from adlb where PARAM like '%Regulatory T%'")
    with pytest.raises(BlindingError):
        view.table("adlb", where="PARAMCD = 'TREG_PCT'")
    # unblinded views are unchanged: every row
    unblinded = open_view(root, "dsmb")
    assert {"TREG", "TREG_PCT", "EOS", "CRP"} <= set(unblinded.table("adlb")["PARAMCD"])


def test_without_safe_params_only_declared_and_matching_params_are_withheld(demo_snapshot, tmp_path, study):
    """A study that declares no safe parameters (an imported trial) shows every parameter that
    is neither declared arm-revealing nor matched by a pattern; the renamed Treg is still out."""
    root = _with_renamed_treg(demo_snapshot, tmp_path, study)
    raw = {**study.raw, "blinding": {k: v for k, v in study.raw["blinding"].items() if k != "safe_params"}}
    open_study = dataclasses.replace(study, raw=raw)
    view = open_view(root, "steering", study=open_study)
    assert set(view.table("adlb")["PARAMCD"]) == {"CSFPNFH", "CRP"}
    assert {w[1] for w in view.withheld["adlb"] if w[0] == "param"} == {"TREG", "TREG_PCT", "EOS"}


def test_blinded_demo_has_no_eosinophils_tregs_or_revealing_aes(demo_snapshot, blinded_only_snapshot, study):
    view = open_view(blinded_only_snapshot, "steering", study=study)
    for name in view.datasets:
        frame = view.table(name)
        text = frame.astype(str).to_csv()
        assert not REVEALING_TEXT.search(text), name
        assert not any(tok in text for tok in ARM_TOKENS), name
    adae = view.table("adae")
    assert len(adae) and not adae["AEDECOD"].isin(
        ["Injection site reaction", "Influenza like illness", "Eosinophilia"]).any()
    withheld = view.withheld
    assert {w[1] for w in withheld["adae"] if w[0] == "ae_term"} >= {
        "Injection site reaction", "Influenza like illness", "Eosinophilia"}
    assert {w[1] for w in withheld["adlb"] if w[0] == "param"} == {"TREG", "TREGPCT", "EOS"}
    for items in withheld.values():                       # names only: no counts, no subject
        for kind, name, reason in items:
            assert not re.search(r"MIR-|\d{2,}\s+(event|row|subject)", f"{name} {reason}")
    with pytest.raises(BlindingError):
        view.sql("select count(*) from adae where AEDECOD = 'Injection site reaction'")
    with pytest.raises(BlindingError):
        view.sql("select * from adlb where PARAMCD = 'EOS'")
    # the unblinded view still has them all (the DSMB sees them by arm)
    unblinded = open_view(demo_snapshot, "dsmb", study=study)
    assert (unblinded.table("adae")["AEDECOD"] == "Injection site reaction").sum() > 100
    assert {"EOS", "TREG", "TREGPCT"} <= set(unblinded.table("adlb")["PARAMCD"])


# --------------------------------------------------------------------------- item 5: blinded validation
@pytest.fixture(scope="module")
def negative_labs(demo_snapshot, tmp_path_factory):
    """The demo with a negative Treg %, a negative eosinophil count and a negative CSF-pNfH."""
    clinical, allocation = _demo(demo_snapshot)
    lb = clinical["adlb"].copy()
    for code, value in (("TREGPCT", -44.9), ("EOS", -7.7), ("CSFPNFH", -1.5)):
        idx = lb.index[lb["PARAMCD"].eq(code)][0]
        lb.loc[idx, "AVAL"] = value
    clinical["adlb"] = lb
    root = tmp_path_factory.mktemp("neg") / "snap"
    write_snapshot(root, clinical, allocation, load_study(), "2021-07-22", "test")
    return root


def test_blinded_validation_names_no_treg_or_eosinophil_value(negative_labs, study):
    raw = validate_snapshot(negative_labs, study=study)
    raw_text = "\n".join(raw["message"])
    assert "AVAL=-44.9" in raw_text and "AVAL=-7.7" in raw_text            # the attack: raw files
    blinded = validate_blinded(negative_labs, study=study)
    text = "\n".join(blinded["message"])
    assert "AVAL=-1.5" in text                                            # a safe lab is still checked
    assert "-44.9" not in text and "-7.7" not in text
    assert not REVEALING_TEXT.search(text)
    assert list(blinded.columns) == list(raw.columns)


def test_dashboard_blinded_validation_uses_the_blinded_view(negative_labs, study):
    from dashboard.caches import _cached_validation
    from data_access.snapshot import snapshot_hash
    clinical = str(negative_labs / "clinical")
    blinded = _cached_validation("blinded", "blinded", snapshot_hash(clinical), clinical, None)
    text = "\n".join(blinded["message"])
    assert "AVAL=-1.5" in text and "-44.9" not in text and "-7.7" not in text
    unblinded = _cached_validation("unblinded", "unblinded", snapshot_hash(clinical), clinical,
                                   str(negative_labs / "allocation"))
    assert "AVAL=-44.9" in "\n".join(unblinded["message"])


def test_blinded_validation_reports_an_unreadable_file(demo_snapshot, tmp_path, study):
    root = tmp_path / "snap"
    shutil.copytree(demo_snapshot / "clinical", root / "clinical")
    (root / "clinical" / "adex.parquet").write_bytes(b"not parquet")
    problems = validate_blinded(root, study=study)
    row = problems[problems["dataset"].eq("adex")]
    assert "file_unreadable" in set(row["rule"])
