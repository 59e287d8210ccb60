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
from contextlib import redirect_stderr, redirect_stdout
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from data_access.adam import ARM_VARIABLE
from data_access.study import load_study
from data_access.views import open_view

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


def write_delivery(folder: Path) -> Path:
    """adsl.xpt, adtte.xpt and adae.xpt as a sponsor sends them: SAS dates with DATE9. formats,
    labels, the arm in TRT01P (ADSL) and TRTP (ADTTE, ADAE)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [dict(zip(("USUBJID", "SITEID", "TRT01P", "AGE", "SEX", "WEIGHT", "AVAL", "CNSR", "SAFFL"), s))
            for s in SUBJECTS]
    adsl = pd.DataFrame({
        "STUDYID": "EXAMPLE-3", "USUBJID": [r["USUBJID"] for r in rows], "SITEID": [r["SITEID"] for r in rows],
        "TRT01P": [r["TRT01P"] for r in rows], "AGE": [float(r["AGE"]) for r in rows],
        "SEX": [r["SEX"] for r in rows], "WEIGHT": [r["WEIGHT"] for r in rows],
        "FASFL": "Y", "SAFFL": [r["SAFFL"] for r in rows], "RANDDT": RANDDT,
    })
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
    pyreadstat.write_xport(adtte, str(folder / "adtte.xpt"), table_name="ADTTE", file_format_version=5,
                           variable_format={"STARTDT": "DATE9.", "ADT": "DATE9."},
                           column_labels={"AVAL": "Analysis Value", "CNSR": "Censor", "ADT": "Analysis Date"})
    arm_of = {r["USUBJID"]: r["TRT01P"] for r in rows}
    adae = pd.DataFrame(AES, columns=["USUBJID", "AEBODSYS", "AEDECOD", "AESEV", "AESER", "TRTEMFL"])
    adae.insert(0, "STUDYID", "EXAMPLE-3")
    adae["TRTA"] = adae["USUBJID"].map(arm_of)
    adae["ASTDT"] = RANDDT + dt.timedelta(days=10)
    pyreadstat.write_xport(adae, str(folder / "adae.xpt"), table_name="ADAE", file_format_version=5,
                           variable_format={"ASTDT": "DATE9."})
    return folder


def run_cli(*argv):
    from reports.cli import main
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


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
    from analysis.tables import build_table
    v = unblinded(root) if view == "unblinded" else blinded(root)
    with v:
        return build_table(name, v, times=times)
