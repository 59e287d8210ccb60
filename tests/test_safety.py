"""analysis.safety: AE tables, severity, listings, exposure and labs on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.safety import (list_deaths, list_saes, summarize_ae, summarize_ae_by_severity,
                             summarize_exposure, summarize_exposure_distribution,
                             summarize_lab_over_time)

D = pd.Timestamp


@pytest.fixture
def adsl():
    # 5 subjects; S5 not in the safety population (never dosed)
    return pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3", "S4", "S5"],
        "SITEID": ["A", "A", "B", "B", "B"],
        "ARM": ["Drug", "Drug", "Placebo", "Placebo", "Drug"],
        "SAFFL": ["Y", "Y", "Y", "Y", "N"],
        "RANDDT": pd.to_datetime(["2018-01-01"] * 5),
        "DTHFL": [None, "Y", None, "Y", None],
        "DTHDT": pd.to_datetime([None, "2018-03-02", None, "2018-02-01", None]),
    })


@pytest.fixture
def adae():
    rows = [  # USUBJID, SOC, PT, TRTEMFL, AESER, AESEV, AEOUT, ASTDT
        ("S1", "Infections", "Cold", "Y", "N", "MILD", "RECOVERED", "2018-01-10"),
        ("S1", "Infections", "Cold", "Y", "N", "MODERATE", "RECOVERED", "2018-01-20"),
        ("S2", "Infections", "Flu", "Y", "Y", "SEVERE", "FATAL", "2018-02-20"),
        ("S3", "Infections", "Cold", "Y", "N", "MILD", "RECOVERED", "2018-01-05"),
        ("S3", "Skin", "Rash", "Y", "N", "MILD", "RECOVERED", "2018-01-06"),
        ("S4", "Skin", "Rash", "N", "N", "MILD", "RECOVERED", "2017-12-20"),   # not treatment-emergent
        ("S5", "Skin", "Rash", "Y", "N", "MILD", "RECOVERED", "2018-01-07"),   # not in safety pop
        ("S4", "Cardiac", "Arrest", "Y", "Y", "SEVERE", "FATAL", "2018-02-01"),
    ]
    df = pd.DataFrame(rows, columns=["USUBJID", "AEBODSYS", "AEDECOD", "TRTEMFL", "AESER", "AESEV",
                                     "AEOUT", "ASTDT"])
    df["ASTDT"] = pd.to_datetime(df["ASTDT"])
    df["AENDT"] = df["ASTDT"] + pd.Timedelta(days=3)
    df["ASTDY"] = (df["ASTDT"] - D("2018-01-01")).dt.days
    df["AEREL"] = "NOT RELATED"
    df["ARM"] = "SHOULD BE IGNORED"     # group is taken from adsl, not adae
    return df


def test_ae_by_arm_denominators_and_order(adae, adsl):
    got = summarize_ae(adae, adsl, group_col="ARM", groups=["Drug", "Placebo"])
    # safety pop: Drug {S1, S2} N=2, Placebo {S3, S4} N=2, Total 4
    spec = [  # soc, pt, (subjects, events) per Drug, Placebo, Total
        ("Any adverse event", "", (2, 3), (2, 3), (4, 6)),
        ("Infections", "All PTs", (2, 3), (1, 1), (3, 4)),
        ("Infections", "Cold", (1, 2), (1, 1), (2, 3)),
        ("Infections", "Flu", (1, 1), (0, 0), (1, 1)),
        ("Cardiac", "All PTs", (0, 0), (1, 1), (1, 1)),
        ("Cardiac", "Arrest", (0, 0), (1, 1), (1, 1)),
        ("Skin", "All PTs", (0, 0), (1, 1), (1, 1)),
        ("Skin", "Rash", (0, 0), (1, 1), (1, 1)),
    ]
    rows = []
    for soc, pt, *cells in spec:
        for g, (ns, ne), denom in zip(["Drug", "Placebo", "Total"], cells, [2, 2, 4]):
            rows.append((soc, pt, g, ns, 100.0 * ns / denom, ne))
    exp = pd.DataFrame(rows, columns=["soc", "pt", "group", "n_subjects", "percent", "n_events"])
    pd.testing.assert_frame_equal(got, exp)


def test_ae_pooled_and_serious_only(adae, adsl):
    got = summarize_ae(adae, adsl, serious_only=True)
    exp = pd.DataFrame([
        ("Any adverse event", "", "All", 2, 50.0, 2),
        ("Cardiac", "All PTs", "All", 1, 25.0, 1), ("Cardiac", "Arrest", "All", 1, 25.0, 1),
        ("Infections", "All PTs", "All", 1, 25.0, 1), ("Infections", "Flu", "All", 1, 25.0, 1),
    ], columns=["soc", "pt", "group", "n_subjects", "percent", "n_events"])
    pd.testing.assert_frame_equal(got, exp)


def test_ae_by_worst_severity(adae, adsl):
    got = summarize_ae_by_severity(adae, adsl)
    n = got.set_index(["soc", "pt", "severity"])["n_subjects"]
    # S1 Cold mild+moderate -> moderate once; S3 Cold mild
    assert n[("Infections", "Cold", "MILD")] == 1 and n[("Infections", "Cold", "MODERATE")] == 1
    # any AE worst: S1 moderate, S2 severe, S3 mild, S4 severe
    assert [n[("Any adverse event", "", s)] for s in ["MILD", "MODERATE", "SEVERE"]] == [1, 1, 2]
    assert got.loc[got.soc == "Any adverse event", "percent"].tolist() == [25.0, 25.0, 50.0]


def test_list_saes(adae, adsl):
    got = list_saes(adae, adsl[adsl.SAFFL == "Y"])
    assert list(got.columns) == ["subject", "site_id", "soc", "term", "start", "end", "study_day",
                                 "severity", "relationship", "outcome", "treatment_emergent"]
    assert got["subject"].tolist() == ["S2", "S4"] and got["study_day"].tolist() == [50, 31]
    by_arm = list_saes(adae, adsl, group_col="ARM")
    assert by_arm["group"].tolist() == ["Drug", "Placebo"]


def test_list_deaths(adae, adsl):
    got = list_deaths(adsl, adae)
    exp = pd.DataFrame({"subject": ["S4", "S2"], "site_id": ["B", "A"],
                        "randomised": pd.to_datetime(["2018-01-01", "2018-01-01"]),
                        "death_date": pd.to_datetime(["2018-02-01", "2018-03-02"]),
                        "study_day": pd.array([31, 60], dtype="Int64"),
                        "fatal_ae": ["Arrest", "Flu"]})
    pd.testing.assert_frame_equal(got, exp)
    assert "group" not in got.columns
    assert list_deaths(adsl, adae, group_col="ARM")["group"].tolist() == ["Placebo", "Drug"]


@pytest.fixture
def adex():
    # S1 3 cycles, S2 1 cycle + one cycle with 0 doses, S3 2 cycles, S4 no record (0 cycles)
    return pd.DataFrame({"USUBJID": ["S1", "S1", "S1", "S2", "S2", "S3", "S3"],
                         "CYCLE": [1, 2, 3, 1, 2, 1, 2], "NDOSES": [5, 5, 4, 5, 0, 5, 5]})


def test_exposure(adex, adsl):
    got = summarize_exposure(adex, adsl, group_col="ARM")
    exp = pd.DataFrame({"group": ["Drug", "Placebo", "Total"], "n": [2, 2, 4], "mean": [2.0, 1.0, 1.5],
                        "sd": [np.sqrt(2), np.sqrt(2), np.sqrt(5 / 3)], "median": [2.0, 1.0, 1.5],
                        "min": [1, 0, 0], "max": [3, 2, 3]})
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)
    dist = summarize_exposure_distribution(adex, adsl)
    assert dist.to_dict("list") == {"group": ["All"] * 4, "cycles": [0, 1, 2, 3], "n": [1, 1, 1, 1],
                                    "percent": [25.0] * 4}


def test_lab_over_time():
    bds = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3", "S1", "S2", "S3", "S1"],
        "ARM": ["Drug", "Drug", "Placebo", "Drug", "Drug", "Placebo", "Drug"],
        "PARAMCD": ["EOS"] * 6 + ["TREG"],
        "AVISIT": ["Baseline"] * 3 + ["Month 1"] * 3 + ["Baseline"],
        "AVISITN": [0, 0, 0, 1, 1, 1, 0],
        "ADY": [0, 0, 0, 27, 29, 30, 0],
        "AVAL": [0.2, 0.4, 0.3, 0.5, np.nan, 0.1, 99.0],
    })
    got = summarize_lab_over_time(bds, "EOS", group_col="ARM")
    exp = pd.DataFrame({"group": ["Drug", "Drug", "Placebo", "Placebo"],
                        "visit": ["Baseline", "Month 1", "Baseline", "Month 1"],
                        "day": [0.0, 27.0, 0.0, 30.0], "n": [2, 1, 1, 1],
                        "mean": [0.3, 0.5, 0.3, 0.1], "sd": [np.sqrt(0.02), np.nan, np.nan, np.nan],
                        "median": [0.3, 0.5, 0.3, 0.1], "q1": [0.25, 0.5, 0.3, 0.1],
                        "q3": [0.35, 0.5, 0.3, 0.1]})
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)
    pooled = summarize_lab_over_time(bds, "EOS")
    assert pooled["group"].tolist() == ["All", "All"] and pooled["n"].tolist() == [3, 2]


@pytest.mark.parametrize("x1, n1, x2, n2, lower, upper", [
    # Newcombe (1998) Stat Med 17:873, Table II, method 10 (hybrid score)
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (0, 10, 0, 10, -0.2775, 0.2775),
])
def test_risk_difference_matches_newcombe_1998(x1, n1, x2, n2, lower, upper):
    from analysis.safety import compute_risk_difference
    d, lo, hi = compute_risk_difference(x1, n1, x2, n2)
    assert float(d) == pytest.approx(x1 / n1 - x2 / n2)
    assert (float(lo), float(hi)) == pytest.approx((lower, upper), abs=5e-5)
