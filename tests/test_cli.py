"""The ``mirocals`` command end to end on a real demo snapshot (subprocess-free: ``main(argv)``)."""
from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import pandas as pd
import pytest

from analysis.outputs import OUTPUTS
from mirocals.cli import main
from tests.conftest import ARM_TOKENS

EXPECTED_COLUMNS = {
    "baseline": ["variable", "level", "statistic", "group", "value"],
    "at-risk": ["group", "time", "n_at_risk", "n_events", "n_censored"],
    "km": ["group", "time", "n_at_risk", "n_events", "n_censored", "survival", "ci_lower", "ci_upper"],
    "survival": ["group", "n", "events", "median", "median_ci_lower", "median_ci_upper", "landmark_day",
                 "surv_landmark", "surv_landmark_ci_lower", "surv_landmark_ci_upper", "rmst"],
    "treatment-effect": ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value"],
    "enrolment": ["site_id", "site_name", "country", "activated", "screened", "randomised", "target",
                  "first", "last"],
    "balance": ["site_id", "site_name", "stratum", "group", "n"],
    "alsfrs": ["group", "visit", "day", "n", "mean", "se", "mean_change", "se_change"],
    "ae": ["soc", "pt", "group", "n_subjects", "percent", "n_events"],
    "consort": ["stage", "group", "n", "reason"],
}


INTERIM = "2018-12-31"


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:          # argparse usage errors
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def table(snapshot, name, view, *extra):
    args = ["table", name, "--data", snapshot, "--view", view, *extra]
    if view == "unblinded":
        args += ["--allocation", snapshot / "allocation"]
    status, out, err = run(*args)
    assert status == 0, err
    return pd.read_csv(io.StringIO(out))


@pytest.mark.parametrize("name", sorted(EXPECTED_COLUMNS))
def test_unblinded_tables_have_documented_columns(demo_snapshot, name):
    df = table(demo_snapshot, name, "unblinded")
    assert list(df.columns)[: len(EXPECTED_COLUMNS[name])] == EXPECTED_COLUMNS[name]
    assert len(df) > 0


def test_unblinded_tables_are_by_arm(demo_snapshot, study):
    km = table(demo_snapshot, "km", "unblinded")
    assert set(study.arm_labels) <= set(km["group"])
    surv = table(demo_snapshot, "survival", "unblinded")
    assert set(surv["group"]) >= set(study.arm_labels)
    # the per-arm Ns add up to the ITT total, which is the randomised count in ADSL
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    arms = surv[surv["group"].isin(study.arm_labels)]
    assert arms["n"].sum() == (adsl["ITTFL"] == "Y").sum()


@pytest.mark.parametrize("name", sorted(n for n, s in OUTPUTS.items() if not s.by_arm_only))
def test_blinded_tables_are_pooled_and_name_no_arm(blinded_only_snapshot, name):
    # the projection exists only while recruiting: asked at a cut in the recruitment period;
    # the changes are since a previous cut
    extra = {"projection": ["--cut", INTERIM], "changes": ["--since", INTERIM]}.get(name, [])
    status, out, err = run("table", name, "--data", blinded_only_snapshot, "--view", "blinded", *extra)
    if name == "labs":            # eosinophils: arm-revealing in MIROCALS (study file), withheld whole
        assert status == 2 and out == "" and "blinded" in err
        return
    assert status == 0, err
    for token in ARM_TOKENS + ("TREG",):
        assert token not in out, f"{name}: blinded output contains {token!r}"
    df = pd.read_csv(io.StringIO(out))
    if "group" in df.columns:
        assert set(df["group"].dropna()) <= {"All", "Total"}


@pytest.mark.parametrize("name", sorted(n for n, s in OUTPUTS.items() if s.by_arm_only))
def test_blinded_by_arm_tables_exit_2(blinded_only_snapshot, name):
    status, out, err = run("table", name, "--data", blinded_only_snapshot, "--view", "blinded")
    assert status == 2
    assert out == ""
    assert "blind" in err.lower()
    for token in ARM_TOKENS:
        assert token not in err


def test_blinded_view_ignores_a_given_allocation(demo_snapshot, blinded_only_snapshot):
    """Passing --allocation to a blinded table changes nothing: the output equals the output of
    a deployment that has no allocation at all."""
    for name in ("km", "baseline", "ae", "alsfrs"):
        with_alloc = run("table", name, "--data", demo_snapshot, "--view", "blinded",
                         "--allocation", demo_snapshot / "allocation")
        without = run("table", name, "--data", blinded_only_snapshot, "--view", "blinded")
        assert with_alloc[0] == 0 and with_alloc[1] == without[1]


def test_unblinded_without_allocation_is_a_clear_error(blinded_only_snapshot):
    status, out, err = run("table", "km", "--data", blinded_only_snapshot, "--view", "unblinded")
    assert status == 2 and "allocation" in err


def test_unknown_table_and_bad_date(demo_snapshot):
    assert run("table", "nope", "--data", demo_snapshot, "--view", "blinded")[0] == 2
    assert run("table", "km", "--data", demo_snapshot, "--view", "blinded", "--cut", "2019-13-01")[0] == 2


def test_markdown_format(demo_snapshot):
    status, out, _ = run("table", "survival", "--data", demo_snapshot, "--view", "blinded", "--format", "md")
    assert status == 0 and out.startswith("| group") and "| All" in out


def test_km_times_option_and_cut(demo_snapshot):
    km = table(demo_snapshot, "km", "blinded", "--times", "0,180,365,640")
    assert sorted(km["time"].unique()) == [0, 180, 365, 640]
    assert km.loc[km["time"] == 0, "survival"].iloc[0] == 1.0
    # at an early cut fewer subjects are randomised than at the end
    early = table(demo_snapshot, "survival", "blinded", "--cut", "2018-12-31")
    full = table(demo_snapshot, "survival", "blinded")
    assert early["n"].iloc[0] < full["n"].iloc[0]


def test_demo_is_byte_identical_for_same_seed_and_cut(tmp_path):
    for d in ("a", "b"):
        assert run("demo", "--out", tmp_path / d, "--seed", 7, "--cut", "2019-06-30")[0] == 0
    for part in ("clinical", "allocation"):
        for f in sorted((tmp_path / "a" / part).iterdir()):
            assert f.read_bytes() == (tmp_path / "b" / part / f.name).read_bytes(), f"{part}/{f.name}"
    manifest = json.loads((tmp_path / "a" / "clinical" / "manifest.json").read_text())
    assert manifest["cut_date"] == "2019-06-30"


def test_validate_exit_status(tmp_path, demo_snapshot):
    status, out, err = run("validate", demo_snapshot / "clinical", "--allocation", demo_snapshot / "allocation")
    assert status == 0, out
    assert run("demo", "--out", tmp_path / "messy", "--messy")[0] == 0
    status, out, err = run("validate", tmp_path / "messy" / "clinical")
    assert status == 1
    planted = json.loads((tmp_path / "messy" / "planted_problems.json").read_text())
    for p in planted:
        assert p["rule"] in out
    assert run("validate", tmp_path / "does-not-exist")[0] == 2


def test_python_m_mirocals_and_the_console_script_run_the_same_command():
    import subprocess
    import sys
    from pathlib import Path
    module = subprocess.run([sys.executable, "-m", "mirocals", "validate", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout.startswith("usage: mirocals validate")
    script = Path(sys.executable).parent / "mirocals"
    if script.exists():                                         # installed with pip install -e .
        assert "from mirocals.cli import main" in script.read_text()
        same = subprocess.run([str(script), "validate", "--help"], capture_output=True, text=True)
        assert same.returncode == 0 and same.stdout == module.stdout


def test_validate_without_allocation_goes_through_the_blinded_view(tmp_path):
    # a messy demo with a negative Treg %, eosinophil count and CSF-pNfH: a blinded data manager
    # (no --allocation) sees the safe lab's problem only; --allocation validates everything
    root = tmp_path / "messy"
    assert run("demo", "--out", root, "--messy")[0] == 0
    adlb = root / "clinical" / "adlb.parquet"
    lb = pd.read_parquet(adlb)
    for code, value in (("TREGPCT", -44.9), ("EOS", -7.7), ("CSFPNFH", -1.5)):
        lb.loc[lb.index[lb["PARAMCD"].eq(code)][0], "AVAL"] = value
    lb.to_parquet(adlb, index=False)
    blinded_status, blinded, blinded_err = run("validate", root)
    full_status, full, full_err = run("validate", root, "--allocation", root / "allocation")
    assert blinded_status == 1 and full_status == 1
    assert "AVAL=-44.9" in full and "AVAL=-7.7" in full and "AVAL=-1.5" in full
    assert "AVAL=-1.5" in blinded                                  # a safe lab is still checked
    assert "-44.9" not in blinded and "-7.7" not in blinded
    assert not re.search(r"(?i)TREG|EOS|eosinophil|regulatory t|injection.?site|influenza", blinded)
    assert "blinded view" in blinded_err and "unblinded" in full_err
    assert set(blinded.splitlines()) < set(full.splitlines()) | {
        line for line in blinded.splitlines() if "subject_not_in_adsl" in line}  # withheld rows uncounted
    csv_status, csv_out, _ = run("validate", root, "--format", "csv")
    assert csv_status == 1 and "-44.9" not in csv_out and not re.search(r"(?i)TREG|EOS", csv_out)


def test_projection_while_recruiting_and_why_not_after(blinded_only_snapshot, study):
    # at an interim cut: one row, the target and the count randomised by then, the median date
    # inside its 80% interval inside its 95% interval, all after the cut; seeded: identical twice
    first = run("table", "projection", "--data", blinded_only_snapshot, "--view", "blinded", "--cut", INTERIM)
    again = run("table", "projection", "--data", blinded_only_snapshot, "--view", "blinded", "--cut", INTERIM)
    assert first[0] == 0 and first[1] == again[1]
    p = pd.read_csv(io.StringIO(first[1]), parse_dates=["cut_date", "median_date", "pi80_lower", "pi80_upper",
                                                         "pi95_lower", "pi95_upper"]).iloc[0]
    adsl = pd.read_parquet(blinded_only_snapshot / "clinical" / "adsl.parquet")
    assert p["target"] == study.planned_n
    assert p["randomised"] == (pd.to_datetime(adsl["RANDDT"]) <= INTERIM).sum()
    assert (pd.Timestamp(INTERIM) < p["pi95_lower"] <= p["pi80_lower"] <= p["median_date"] <= p["pi80_upper"]
            <= p["pi95_upper"])
    assert 0 <= p["p_by_planned_end"] <= 1
    # after the end of recruitment (the demo's final cut): exit 2 and the reason
    status, out, err = run("table", "projection", "--data", blinded_only_snapshot, "--view", "blinded")
    assert status == 2 and out == "" and "recruitment ended on 2019-09-30" in err


def test_changes_agree_with_a_snapshot_cut_at_the_previous_date(blinded_only_snapshot, tmp_path):
    # "at the previous cut" must be what the report at that cut showed: the same counts as the
    # snapshot cut at that date (randomised, died, screened, SAEs)
    prev = "2019-06-30"
    status, out, err = run("table", "changes", "--data", blinded_only_snapshot, "--view", "blinded", "--since", prev)
    assert status == 0, err
    ch = pd.read_csv(io.StringIO(out)).set_index("item")
    from data_access.cut import cut_snapshot
    from data_access.snapshot import load_datasets
    cut_snapshot(blinded_only_snapshot, prev, tmp_path / "prev")
    now, then = load_datasets(blinded_only_snapshot / "clinical"), load_datasets(tmp_path / "prev" / "clinical")
    for d, col in ((then, "at_previous"), (now, "at_cut")):
        assert ch.loc["Randomised", col] == len(d["adsl"])
        assert ch.loc["Died", col] == d["adsl"]["DTHDT"].notna().sum()
        assert ch.loc["Screened", col] == len(d["screening"])
        assert ch.loc["Serious adverse events", col] == (d["adae"]["AESER"] == "Y").sum()
    assert (ch["new"] == ch["at_cut"] - ch["at_previous"]).all() and (ch["new"] >= 0).all()
    assert ch.loc["Randomised", "new"] > 0
    # without --since: exit 2 and what to give
    status, out, err = run("table", "changes", "--data", blinded_only_snapshot, "--view", "blinded")
    assert status == 2 and "--since" in err


# --------------------------------------------------------------------------- issue 10: CLI outputs
ARM_RE = [r"Low-dose IL-2", r"\bIL2LD\b", r"Placebo", r"\bPBO\b", r"Group A\b", r"Group B\b"]
# Treg, eosinophil, injection-site and influenza-like content reveal the arm (IL-2 raises them)
REVEALING_RE = [r"(?i)treg", r"(?i)regulatory[ -]t", r"(?i)eosinophil", r"\bEOS\b", r"(?i)injection[ -]?site",
                r"(?i)influenza[ -]?like"]


def _scan(text: str) -> list[str]:
    import re
    return [pat for pat in ARM_RE + REVEALING_RE if re.search(pat, text)]


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_every_blinded_table_through_the_cli_names_nothing_arm_revealing(demo_snapshot, name):
    """Every table asked for with --view blinded, on the demo snapshot with its allocation beside
    the data AND given with --allocation (ignored by a blinded view), CSV and Markdown: stdout
    names no arm and carries no Treg, eosinophil, injection-site or influenza-like content; stderr
    names no arm. A
    table that is by arm only, or whose whole content is withheld, exits 2 with nothing on stdout."""
    extra = {"projection": ["--cut", INTERIM], "changes": ["--since", INTERIM]}.get(name, [])
    for fmt in ("csv", "md"):
        status, out, err = run("table", name, "--data", demo_snapshot, "--allocation", demo_snapshot / "allocation",
                               "--view", "blinded", "--format", fmt, *extra)
        # stdout carries no arm and no revealing content; a refusal on stderr may name the withheld
        # parameter (withheld content is named as withheld) but never an arm
        assert _scan(out) == [], (name, fmt, _scan(out), out[:500])
        assert not [pat for pat in ARM_RE if __import__("re").search(pat, err)], (name, err)
        if OUTPUTS[name].by_arm_only:
            assert status == 2 and out == "" and "blind" in err.lower()
        else:
            assert status in (0, 2), err
            if status == 2:
                assert out == "" and err, name


def test_blinded_safety_tables_withhold_revealing_terms_but_keep_the_rest(demo_snapshot):
    # the AE table is still there, pooled, with its other terms; only the revealing ones are gone
    status, out, err = run("table", "ae", "--data", demo_snapshot, "--view", "blinded")
    assert status == 0, err
    ae = pd.read_csv(io.StringIO(out))
    assert len(ae) > 5 and set(ae["group"].dropna()) <= {"All", "Total"}
    assert "Fatigue" in set(ae["pt"])


def _scan_export(folder) -> tuple[list, set]:
    """(token hits in any file's bytes, column names of every exported dataset)."""
    hits, columns = [], set()
    for path in sorted(folder.iterdir()):
        text = path.read_bytes().decode("latin-1")
        hits += [(path.name, pat) for pat in ARM_RE if __import__("re").search(pat, text)]
        if path.suffix == ".csv":
            columns |= set(pd.read_csv(path, nrows=5).columns)
        elif path.suffix == ".xpt":
            columns |= {c.upper() for c in pd.read_sas(path, format="xport").columns}
        elif path.suffix == ".parquet":
            columns |= set(pd.read_parquet(path).columns)
    return hits, columns


ARM_VARIABLES = {"ARM", "ARMCD", "ACTARM", "ACTARMCD", "TRT01P", "TRT01A", "TRT01PN", "TRT01AN", "TRTP", "TRTA",
                 "TREATMENT", "EXTRT"}


@pytest.mark.parametrize("fmt", ["csv", "xpt", "parquet"])
def test_export_without_allocation_writes_no_arm(demo_snapshot, tmp_path, fmt):
    status, out, err = run("export", "--data", demo_snapshot, "--format", fmt, "--out", tmp_path / "x")
    assert status == 0, err
    files = sorted((tmp_path / "x").iterdir())
    assert len(files) >= 7 and [str(p) for p in files] == sorted(out.split())
    hits, columns = _scan_export(tmp_path / "x")
    assert hits == [] and not (ARM_VARIABLES & columns), (hits, ARM_VARIABLES & columns)
    # with the allocation the arm is exported (the test sees an arm when there is one)
    assert run("export", "--data", demo_snapshot, "--allocation", demo_snapshot / "allocation", "--format", fmt,
               "--out", tmp_path / "y")[0] == 0
    hits, columns = _scan_export(tmp_path / "y")
    assert hits and "ARM" in columns


def test_import_then_export_of_a_delivery_with_its_own_arm_name(demo_snapshot, tmp_path):
    """Issue 10 item 1 through the commands: a delivery whose arm is TREATMENT (mapped in its
    study file) and whose exposure carries EXTRT, imported with ``mirocals import`` and exported
    with ``mirocals export`` without --allocation: no file carries an arm variable or value, and
    no column maps onto the arm."""
    import numpy as np
    from data_access.study import DEFAULT_STUDY_FILE
    assert run("export", "--data", demo_snapshot, "--allocation", demo_snapshot / "allocation", "--format", "csv",
               "--out", tmp_path / "full")[0] == 0
    src = tmp_path / "delivery"
    src.mkdir()
    for path in sorted((tmp_path / "full").glob("*.csv")):
        df = pd.read_csv(path)
        if path.stem == "adsl":
            df = df.rename(columns={"ARM": "TREATMENT"}).drop(columns=["ARMCD", "TRT01P"])
        elif path.stem == "adex":
            df["EXTRT"] = np.where(df["ARMCD"].eq("IL2LD"), "Low-dose IL-2", "Placebo")
            df = df.drop(columns=["ARM", "ARMCD"])
        else:
            df = df.drop(columns=[c for c in ("ARM", "ARMCD", "TRT01P") if c in df.columns])
        df.to_csv(src / path.name, index=False)
    study_file = tmp_path / "study.toml"
    study_file.write_text(DEFAULT_STUDY_FILE.read_text().replace('arm = "ARM"', 'arm = "TREATMENT"'))
    status, out, err = run("import", "--src", src, "--study", study_file, "--out", tmp_path / "snap")
    assert status == 0, err
    status, out, err = run("export", "--data", tmp_path / "snap", "--format", "csv", "--out", tmp_path / "x")
    assert status == 0, err
    hits, columns = _scan_export(tmp_path / "x")
    assert hits == [] and not (ARM_VARIABLES & columns), (hits, ARM_VARIABLES & columns)
    # no exported column maps onto the arm (the import's own by-value scan, run on what was written)
    from data_access.arm_scan import find_arm_revealing_columns
    from data_access.study import load_study
    alloc = pd.read_parquet(tmp_path / "snap" / "allocation" / "allocation.parquet")
    exported = {p.stem: pd.read_csv(p) for p in (tmp_path / "x").glob("*.csv")}
    assert find_arm_revealing_columns(exported, alloc, load_study(study_file)) == []


def test_unblinded_tables_are_audited_and_audit_verify_checks_the_chain(demo_snapshot, tmp_path, monkeypatch):
    """An unblinded `mirocals table` writes one audit entry (OS user, table, snapshot, cut) before
    it prints; a blinded one writes none; `mirocals audit verify` passes on the real log and
    fails (exit 1) once an entry is edited."""
    import json
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    status, out, err = run("table", "baseline", "--data", demo_snapshot, "--view", "blinded")
    assert status == 0 and not log.exists()
    status, out, err = run("table", "treatment-effect", "--data", demo_snapshot, "--view", "unblinded",
                           "--allocation", demo_snapshot / "allocation")
    assert status == 0, err
    entries = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(e["action"], e["object"], e["source"], e["detail"]) for e in entries] == \
        [("table", "treatment-effect", "cli", "unblinded")]
    manifest = json.loads((demo_snapshot / "clinical" / "manifest.json").read_text())
    assert entries[0]["snapshot_hash"] == manifest["content_hash"] and entries[0]["user"] not in ("", "unknown")
    assert run("table", "km", "--data", demo_snapshot, "--view", "unblinded",
               "--allocation", demo_snapshot / "allocation")[0] == 0
    assert run("audit", "verify", "--log", log)[0] == 0
    # the first entry edited: the second one's hash of its predecessor no longer matches
    log.write_text(log.read_text().replace("treatment-effect", "baseline", 1))
    status, out, err = run("audit", "verify", "--log", log)
    assert status == 1, out + err


def test_display_option_prints_the_display_table_and_without_it_the_machine_table(demo_snapshot):
    from analysis.display import list_display_problems
    machine = table(demo_snapshot, "survival-by-stratum", "unblinded")
    assert "median_ci_lower" in machine.columns                     # the machine table, as before
    shown = table(demo_snapshot, "survival-by-stratum", "unblinded", "--display").fillna("")
    assert list(shown.columns[:2]) == ["Stratum", "Statistic"]             # arms side by side
    assert [c.split(" (N=")[0] for c in shown.columns[2:]] == ["Low-dose IL-2", "Placebo", "Total"]
    medians = shown[shown["Statistic"] == "Median survival, days (95% CI)"]
    assert "not reached (457 to NE)" in set(medians.iloc[:, 2:].to_numpy().ravel())
    assert list_display_problems(shown) == []
    effect = table(demo_snapshot, "treatment-effect", "unblinded", "--display")
    cox = effect.set_index("Analysis").loc["Cox HR stratified by country and site of onset"]
    assert cox["Estimate (95% CI)"] == "0.49 (0.28 to 0.85)" and cox["p"] == "0.011"
    status, out, _ = run("table", "survival", "--data", demo_snapshot, "--view", "blinded", "--display",
                         "--format", "md")
    assert status == 0 and out.startswith("| Statistic") and "None" not in out and "nan" not in out
