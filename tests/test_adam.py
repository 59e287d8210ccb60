"""ADaM deliveries: read XPT with SAS date formats and latin-1 text, split the arm variables into
the allocation, and round-trip the demo through XPT."""
from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stdout

import pandas as pd
import pyreadstat
import pytest

from data_access.adam import load_adam_folder, split_allocation
from data_access.arm_scan import ARM_VARIABLE
from data_access.study import load_study


def test_xpt_dates_are_read_through_their_formats(tmp_path):
    df = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "RANDDT": [dt.date(2019, 3, 1), dt.date(2020, 2, 29)],
                       "AGE": [61.0, 70.0]})
    pyreadstat.write_xport(df, str(tmp_path / "adsl.xpt"), table_name="ADSL", file_format_version=5,
                           variable_format={"RANDDT": "DATE9."},
                           column_labels={"USUBJID": "Unique Subject Identifier",
                                          "RANDDT": "Date of Randomization", "AGE": "Age"})
    # raw SAS storage is days since 1960-01-01: read without conversion to prove it
    raw, _ = pyreadstat.read_xport(str(tmp_path / "adsl.xpt"), disable_datetime_conversion=True)
    assert raw["RANDDT"].tolist() == [(dt.date(2019, 3, 1) - dt.date(1960, 1, 1)).days,
                                      (dt.date(2020, 2, 29) - dt.date(1960, 1, 1)).days]
    delivery = load_adam_folder(tmp_path)
    adsl = delivery.datasets["adsl"]
    assert list(adsl["RANDDT"].dt.date) == [dt.date(2019, 3, 1), dt.date(2020, 2, 29)]
    assert delivery.labels["adsl"]["RANDDT"] == "Date of Randomization"


def test_latin1_csv_and_unreadable_file_reported(tmp_path):
    (tmp_path / "adae.csv").write_bytes("USUBJID,AETERM\nS-1,Réaction au site\n".encode("latin-1"))
    (tmp_path / "adlb.xpt").write_bytes(b"not a transport file")
    delivery = load_adam_folder(tmp_path)
    assert delivery.datasets["adae"]["AETERM"].iloc[0] == "Réaction au site"
    assert "adlb.xpt" in delivery.errors


def test_split_allocation_moves_every_arm_variable(study):
    adsl = pd.DataFrame({"USUBJID": ["A", "B", "C"], "TRT01P": ["Placebo", "Low-dose IL-2", "Placebo"],
                         "ARM": ["Placebo", "Low-dose IL-2", "Placebo"], "COUNTRY": ["UK", "France", "UK"],
                         "ONSET": ["Limb", "Bulbar", "Limb"], "AGE": [50, 60, 70]})
    adtte = pd.DataFrame({"USUBJID": ["A", "B"], "TRTP": ["Placebo", "Low-dose IL-2"], "AVAL": [10, 20]})
    from dataclasses import replace
    st = replace(study, columns={**study.columns, "arm": "TRT01P"})
    clinical, allocation = split_allocation({"adsl": adsl, "adtte": adtte}, st)
    for name, df in clinical.items():
        assert not [c for c in df.columns if ARM_VARIABLE.match(c)], name
    assert allocation["ARMCD"].tolist() == ["PBO", "IL2LD", "PBO"]
    assert allocation["STRATUM"].tolist() == ["UK/Limb", "France/Bulbar", "UK/Limb"]
    bad = adsl.assign(TRT01P=["Placebo", "Drug X", "Placebo"])
    with pytest.raises(ValueError, match="Drug X"):
        split_allocation({"adsl": bad}, st)


def test_demo_round_trips_through_xpt(demo_snapshot, tmp_path, study):
    from mirocals.cli import main
    with redirect_stdout(io.StringIO()):
        assert main(["export", "--data", str(demo_snapshot), "--allocation", str(demo_snapshot / "allocation"),
                     "--format", "xpt", "--out", str(tmp_path / "xpt")]) == 0
    # the exported ADSL carries the arm; the clinical part of the re-import does not
    exported = pyreadstat.read_xport(str(tmp_path / "xpt" / "adsl.xpt"))[0]
    assert {"ARM", "TRT01P"} <= set(exported.columns)
    with redirect_stdout(io.StringIO()):
        assert main(["import", "--src", str(tmp_path / "xpt"), "--out", str(tmp_path / "snap")]) == 0
    assert "ARM" not in pd.read_parquet(tmp_path / "snap" / "clinical" / "adsl.parquet").columns

    def tables(root):
        out = {}
        for name in ("baseline", "km", "survival", "ae", "alsfrs", "treatment-effect"):
            buf = io.StringIO()
            with redirect_stdout(buf):
                assert main(["table", name, "--data", str(root), "--allocation", str(root / "allocation"),
                             "--view", "unblinded"]) == 0
            out[name] = pd.read_csv(io.StringIO(buf.getvalue()))
        return out

    original, reimported = tables(demo_snapshot), tables(tmp_path / "snap")
    for name in original:
        pd.testing.assert_frame_equal(original[name], reimported[name], check_dtype=False, obj=name)
