"""analysis.baseline: long Table 1 statistics and the wide display table (hand-computed cases)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.baseline import DEFAULT_VARIABLES, format_table1, summarize_baseline

COLS = ["variable", "level", "statistic", "group", "value"]


@pytest.fixture
def adsl():
    return pd.DataFrame({
        "USUBJID": list("ABCDEF"),
        "ARM": ["X", "X", "X", "Y", "Y", "Y"],
        "AGE": [50, 60, 70, 40, np.nan, 80],
        "SEX": ["M", "F", "M", "M", "M", None],
    })


def _cont(var, group, n, mean, sd, median, q1, q3, mn, mx):
    vals = dict(n=n, mean=mean, sd=sd, median=median, q1=q1, q3=q3, min=mn, max=mx)
    return [(var, "", k, group, float(v)) for k, v in vals.items()]


def test_pooled_continuous_and_categorical_with_missing(adsl):
    got = summarize_baseline(adsl, ["AGE", "SEX"])
    # AGE non-missing: 40 50 60 70 80 -> mean 60, sd sqrt(250), type-7 quartiles 50 / 70
    exp = _cont("AGE", "All", 5, 60, np.sqrt(250), 60, 50, 70, 40, 80)
    exp += [("AGE", "Missing", "count", "All", 1.0)]
    # SEX: 4 M, 1 F, 1 missing; denominators = 5 non-missing; order M, F (known levels)
    exp += [("SEX", "M", "count", "All", 4.0), ("SEX", "M", "percent", "All", 80.0),
            ("SEX", "F", "count", "All", 1.0), ("SEX", "F", "percent", "All", 20.0),
            ("SEX", "Missing", "count", "All", 1.0), ("SEX", "Missing", "percent", "All", np.nan)]
    pd.testing.assert_frame_equal(got, pd.DataFrame(exp, columns=COLS))
    assert set(got["group"]) == {"All"}


def test_by_arm_with_total_and_per_group_denominators(adsl):
    got = summarize_baseline(adsl, ["AGE", "SEX"], group_col="ARM", groups=["X", "Y"])
    exp = (_cont("AGE", "X", 3, 60, 10, 60, 55, 65, 50, 70)
           + _cont("AGE", "Y", 2, 60, np.sqrt(800), 60, 50, 70, 40, 80)
           + _cont("AGE", "Total", 5, 60, np.sqrt(250), 60, 50, 70, 40, 80)
           + [("AGE", "Missing", "count", "X", 0.0), ("AGE", "Missing", "count", "Y", 1.0),
              ("AGE", "Missing", "count", "Total", 1.0)])
    for g, m, f in [("X", 2, 1), ("Y", 2, 0), ("Total", 4, 1)]:
        denom = m + f
        exp += [("SEX", "M", "count", g, float(m)), ("SEX", "M", "percent", g, 100 * m / denom),
                ("SEX", "F", "count", g, float(f)), ("SEX", "F", "percent", g, 100 * f / denom)]
    exp += [("SEX", "Missing", k, g, v) for g, c in [("X", 0.0), ("Y", 1.0), ("Total", 1.0)]
            for k, v in [("count", c), ("percent", np.nan)]]
    pd.testing.assert_frame_equal(got, pd.DataFrame(exp, columns=COLS))


def test_levels_absent_in_a_group_get_zero_and_no_missing_row_when_complete():
    df = pd.DataFrame({"ARM": ["X", "Y"], "ONSET": ["Bulbar", "Limb"]})
    got = summarize_baseline(df, ["ONSET"], group_col="ARM")
    counts = got[got.statistic == "count"].set_index(["level", "group"])["value"]
    assert counts[("Limb", "X")] == 0 and counts[("Bulbar", "X")] == 1 and counts[("Limb", "Total")] == 1
    assert "Missing" not in set(got["level"])


def test_default_variables_and_missing_column_error():
    assert DEFAULT_VARIABLES == ["AGE", "SEX", "COUNTRY", "ONSET", "ELESCORL", "DIAGDLY", "BLALSFRS",
                                 "DFS", "SVCPCT", "PNFH", "PNFHGR"]
    with pytest.raises(ValueError, match="PNFH"):
        summarize_baseline(pd.DataFrame({"AGE": [1]}), ["AGE", "PNFH"])


def test_format_table1(adsl):
    long = summarize_baseline(adsl, ["AGE", "SEX"], group_col="ARM")
    got = format_table1(long)
    exp = pd.DataFrame([
        ["Age, years: mean (SD)", "60.0 (10.0)", "60.0 (28.3)", "60.0 (15.8)"],
        ["Age, years: median (Q1-Q3)", "60.0 (55.0-65.0)", "60.0 (50.0-70.0)", "60.0 (50.0-70.0)"],
        ["Age, years: missing, n", "0", "1", "1"],
        ["Sex, n (%)", "", "", ""],
        ["  M", "2 (66.7%)", "2 (100.0%)", "4 (80.0%)"],
        ["  F", "1 (33.3%)", "0 (0.0%)", "1 (20.0%)"],
        ["  Missing", "0", "1", "1"],
    ], columns=["Characteristic", "X (N=3)", "Y (N=3)", "Total (N=6)"])
    pd.testing.assert_frame_equal(got, exp)
    assert not any("SE" in c or "p" == c for c in got.columns)
