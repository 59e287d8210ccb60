"""Lan-DeMets O'Brien-Fleming-type boundaries.

Reference values (one-sided alpha 0.025): ../shared/reports.md, which agree with the R packages
ldbounds (`bounds(t, iuse = 1, alpha = 0.025)`) and gsDesign (`sfLDOF`): 4 equal looks
4.3326, 2.9631, 2.3590, 2.0141; looks at 1/3, 2/3, 1: 3.7103, 2.5114, 1.9930. The total type I
error is checked independently with the multivariate normal CDF of (Z_1, ..., Z_K), whose
correlation is corr(Z_i, Z_j) = sqrt(t_i / t_j) for i < j (Jennison & Turnbull 2000, sec. 3.1).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.figures_survival import plot_boundaries
from analysis.sequential import BOUNDARY_COLUMNS, compute_obf_boundaries, compute_obf_spending, summarize_sequential


@pytest.mark.parametrize("fractions, expected", [
    ([0.25, 0.5, 0.75, 1.0], [4.333, 2.963, 2.359, 2.014]),
    ([1 / 3, 2 / 3, 1.0], [3.710, 2.511, 1.993]),
])
def test_reference_boundaries(fractions, expected):
    b = compute_obf_boundaries(fractions, alpha=0.025)
    assert list(b.columns) == BOUNDARY_COLUMNS
    np.testing.assert_allclose(b["boundary_z"], expected, atol=0.002)
    np.testing.assert_allclose(b["nominal_p"], stats.norm.sf(b["boundary_z"]))


def test_four_decimal_agreement_with_ldbounds():
    b = compute_obf_boundaries([0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(b["boundary_z"], [4.3326, 2.9631, 2.3590, 2.0141], atol=6e-5)


def _mvn(corr):
    # seeded: scipy's multivariate normal CDF uses randomised quasi-Monte Carlo
    return stats.multivariate_normal(mean=np.zeros(len(corr)), cov=corr, seed=20240101, abseps=1e-8, releps=1e-8,
                                     maxpts=2_000_000)


def test_first_crossing_probabilities_by_multivariate_normal():
    t = np.array([1 / 3, 2 / 3, 1.0])
    b = compute_obf_boundaries(t)
    z = b["boundary_z"].to_numpy()
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    # P(no crossing at any look) = P(Z_1 < c_1, ..., Z_K < c_K) = 1 - alpha
    p_none = _mvn(corr).cdf(z)
    assert 1 - p_none == pytest.approx(0.025, abs=2e-5)
    # P(no crossing by look 2) = 1 - cumulative alpha at look 2
    p_none2 = _mvn(corr[:2, :2]).cdf(z[:2])
    assert 1 - p_none2 == pytest.approx(b["cumulative_alpha"].iloc[1], abs=2e-6)


def test_spending_function_formula():
    # alpha(t) = 2 - 2 Phi(z_{1 - 0.0125} / sqrt(t)); alpha(1) = 0.025 exactly
    assert compute_obf_spending([1.0])[0] == pytest.approx(0.025)
    assert compute_obf_spending([0.25])[0] == pytest.approx(2 - 2 * stats.norm.cdf(2.241403 / 0.5), rel=1e-5)
    b = compute_obf_boundaries([0.5, 1.0])
    assert b["alpha_spent"].sum() == pytest.approx(0.025)
    # the first look spends alpha(t1) alone, so its boundary is the normal quantile
    assert b["boundary_z"].iloc[0] == pytest.approx(stats.norm.isf(compute_obf_spending([0.5])[0]))
    # a single look at t = 1 is the fixed-sample test
    assert compute_obf_boundaries([1.0])["boundary_z"].iloc[0] == pytest.approx(1.959964, abs=1e-5)


def test_tiny_first_fraction_gives_infinite_or_huge_boundary():
    b = compute_obf_boundaries([0.001, 0.5, 1.0])
    assert b["boundary_z"].iloc[0] > 20 or np.isinf(b["boundary_z"].iloc[0])
    assert b["boundary_z"].iloc[-1] == pytest.approx(compute_obf_boundaries([0.5, 1.0])["boundary_z"].iloc[-1],
                                                      abs=1e-4)


def test_summarize_flags_crossing_and_keeps_columns():
    looks = pd.DataFrame({"date": ["2020-01-01", "2021-06-01"], "information_fraction": [0.5, 1.0],
                          "observed_z": [3.1, 1.5]})
    out = summarize_sequential(looks)
    assert out["crossed"].tolist() == [True, False] and out["crossed"].iloc[0] is True
    assert out["date"].tolist() == ["2020-01-01", "2021-06-01"]
    assert out["observed_z"].tolist() == [3.1, 1.5]
    fig = plot_boundaries(out, out)
    assert len(fig.data) == 2


def test_invalid_fractions():
    for bad in ([0.5, 0.4], [0.0, 1.0], [0.5, 0.5], [0.5, float("inf")], []):
        with pytest.raises(ValueError):
            compute_obf_boundaries(bad)


def test_more_deaths_than_planned_use_the_observed_information():
    # 30 then 78 deaths against 60 planned: the first look spends alpha(0.5), the second (t = 1.3)
    # all the alpha left, with corr(Z1, Z2) = sqrt(30 / 78). rpact 3.3.4 (asUser spending
    # c(alpha(0.5), 0.025) at informationRates c(30/78, 1)) gives 2.962588, 1.972651; capping the
    # fraction at 1 (the bug of issue 12) gives the 2-look design's 1.968596 instead.
    b = compute_obf_boundaries([0.5, 78 / 60])
    np.testing.assert_allclose(b["boundary_z"], [2.962588, 1.972651], atol=2e-6)
    assert b["cumulative_alpha"].tolist() == pytest.approx([compute_obf_spending([0.5])[0], 0.025])
    assert compute_obf_boundaries([0.5, 1.0])["boundary_z"].iloc[-1] == pytest.approx(1.968596, abs=2e-6)
    # scale-free: the same looks expressed over the observed maximum, with the planned spending
    t = np.array([30 / 78, 1.0])
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    assert 1 - _mvn(corr).cdf(b["boundary_z"].to_numpy()) == pytest.approx(0.025, abs=2e-5)
    # a look after the alpha is spent has an infinite boundary
    assert np.isinf(compute_obf_boundaries([0.5, 1.1, 1.3])["boundary_z"].iloc[-1])
    assert compute_obf_spending([1.3])[0] == pytest.approx(0.025)


def test_a_final_analysis_short_of_the_plan_can_spend_all_the_alpha():
    b = compute_obf_boundaries([0.5, 0.9], last_spends_all=True)
    assert b["alpha_spent"].sum() == pytest.approx(0.025)
    t = np.array([0.5, 0.9])
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    assert 1 - _mvn(corr).cdf(b["boundary_z"].to_numpy()) == pytest.approx(0.025, abs=2e-5)


def test_fast():
    start = time.perf_counter()
    compute_obf_boundaries(np.linspace(0.1, 1, 10))
    assert time.perf_counter() - start < 2.0


def _unblinded(snapshot, **analysis):
    """The demo's unblinded view with the study's [analysis] settings replaced (looks, planned
    deaths, look dates)."""
    from dataclasses import replace
    from data_access.study import load_study
    from data_access.views import open_view
    study = load_study()
    raw = {**study.raw, "analysis": {**study.raw["analysis"], **analysis}}
    looks = tuple(float(f) for f in raw["analysis"].get("sequential_looks", study.sequential_looks))
    return open_view(snapshot / "clinical", "statistician", allocation_dir=snapshot / "allocation",
                     study=replace(study, raw=raw, sequential_looks=looks))


def _deaths(view):
    from analysis.outputs import get_tte
    tte = get_tte(view)
    return sorted(pd.to_datetime(tte.loc[tte["CNSR"] == 0, "ADT"]).dt.date)


def test_sequential_table_places_this_cut_at_its_observed_information(demo_snapshot):
    # The demo's final cut as a look: deaths / planned events; look 1 reconstructed at the date of
    # the 30th death (its actual information); the boundary recomputed for the looks (look 1,
    # observed, 1); the log-rank z stratified by the randomisation strata (the primary analysis),
    # checked against lifelines' independent test stratified the same way.
    from lifelines.statistics import logrank_test
    from analysis.outputs import build_table, get_tte
    from data_access.views import open_view
    view = open_view(demo_snapshot / "clinical", "statistician", allocation_dir=demo_snapshot / "allocation")
    table = build_table("sequential", view)
    tte = get_tte(view)
    deaths = int((tte["CNSR"] == 0).sum())
    planned = view.study.planned_events
    fraction = deaths / planned
    assert 0.5 < fraction < 1
    assert table["label"].tolist() == ["Look 1", "This cut", "Final analysis"]
    dates = _deaths(view)
    first = sum(d <= dates[round(0.5 * planned) - 1] for d in dates)       # ties on that day count
    assert table["events"].tolist() == [first, deaths, planned]
    assert table["date"].tolist()[:2] == [dates[round(0.5 * planned) - 1].isoformat(), str(view.cut_date)]
    assert table["date"].isna().tolist() == [False, False, True]
    assert table["information_fraction"].tolist() == pytest.approx([first / planned, fraction, 1.0])
    ref = compute_obf_boundaries([first / planned, fraction, 1.0])
    assert table["boundary_z"].to_numpy() == pytest.approx(ref["boundary_z"].to_numpy())
    exp, pbo = view.arm_levels[0], view.arm_levels[-1]
    # stratified log-rank = sum over strata of O - E and V; lifelines per stratum gives each
    # stratum's chi-square only, so compare with the project's survdiff-checked treatment-effect row
    effect = build_table("treatment-effect", view).set_index("method")
    z = table.loc[1, "observed_z"]
    assert abs(z) == pytest.approx(np.sqrt(effect.loc["logrank_stratified", "statistic"]), rel=1e-9)
    a, b = tte[tte["ARM"] == exp], tte[tte["ARM"] == pbo]
    chi2 = logrank_test(a["AVAL"], b["AVAL"], a["CNSR"] == 0, b["CNSR"] == 0).test_statistic
    assert abs(z) != pytest.approx(np.sqrt(chi2), rel=1e-6)            # not the unstratified test
    km_exp = (a["CNSR"] == 0).mean() < (b["CNSR"] == 0).mean()           # positive: fewer deaths on IL-2
    assert (z > 0) == km_exp
    assert table.loc[1, "crossed"] == (z >= table.loc[1, "boundary_z"])
    assert table["crossed"].isna().tolist() == [False, False, True]
    assert table.loc[0, "observed_z"] < table.loc[0, "boundary_z"] and table.loc[0, "crossed"] is False


def test_unequal_planned_looks_are_recomputed_at_their_actual_information(demo_snapshot):
    # Looks planned at 1/3 and 2/3 of 60 deaths: reconstructed at the 20th and 40th deaths. When
    # no other death shares those days, the fractions are exactly 1/3 and 2/3 and the first two
    # boundaries are the reference values 3.710 and 2.511 (test_reference_boundaries).
    from analysis.outputs import build_table
    view = _unblinded(demo_snapshot, sequential_looks=[1 / 3, 2 / 3, 1.0])
    table = build_table("sequential", view)
    dates = _deaths(view)
    counts = [sum(d <= dates[k - 1] for d in dates) for k in (20, 40)]
    assert table["label"].tolist() == ["Look 1", "Look 2", "This cut", "Final analysis"]
    assert table["events"].tolist()[:2] == counts
    ref = compute_obf_boundaries([counts[0] / 60, counts[1] / 60, len(dates) / 60, 1.0])
    assert table["boundary_z"].to_numpy() == pytest.approx(ref["boundary_z"].to_numpy())
    if counts == [20, 40]:
        np.testing.assert_allclose(table["boundary_z"].iloc[:2], [3.710, 2.511], atol=0.002)
    else:                                    # ties: the actual information, not the planned one
        assert table["information_fraction"].iloc[:2].tolist() != pytest.approx([1 / 3, 2 / 3])
    assert table["observed_z"].notna().tolist() == [True, True, True, False]


def test_more_deaths_than_planned_make_this_cut_the_final_look(demo_snapshot):
    # 40 deaths planned: this cut (more deaths) is the final look, at its observed information (no
    # cap), spending what is left; look 1 at the 20th death.
    from analysis.outputs import build_table
    view = _unblinded(demo_snapshot, planned_events=40)
    table = build_table("sequential", view)
    dates = _deaths(view)
    first = sum(d <= dates[19] for d in dates)
    assert table["label"].tolist() == ["Look 1", "This cut"]
    assert table["information_fraction"].tolist() == pytest.approx([first / 40, len(dates) / 40])
    assert table["information_fraction"].iloc[-1] > 1
    assert table["cumulative_alpha"].iloc[-1] == pytest.approx(0.025)
    ref = compute_obf_boundaries([first / 40, len(dates) / 40])
    assert table["boundary_z"].to_numpy() == pytest.approx(ref["boundary_z"].to_numpy())
    capped = compute_obf_boundaries([first / 40, 1.0])["boundary_z"].iloc[-1]
    assert table["boundary_z"].iloc[-1] > capped + 1e-3          # lower correlation, higher boundary
    if first == 20:                                              # 20 then 56 deaths against 40: rpact 3.3.4
        assert table["boundary_z"].iloc[-1] == pytest.approx(RPACT_20_56_OF_40, abs=2e-6)


# rpact 3.3.4: getDesignGroupSequential(kMax = 2, alpha = 0.025, typeOfDesign = "asUser",
# informationRates = c(20/56, 1), userAlphaSpending = c(<OF spending at 0.5>, 0.025))$criticalValues[2]
RPACT_20_56_OF_40 = 1.9736284


def test_recorded_look_dates_are_the_earlier_looks(demo_snapshot):
    from analysis.outputs import build_table
    view = _unblinded(demo_snapshot, interim_look_dates=["2019-06-01", "2030-01-01"])
    table = build_table("sequential", view)
    dates = _deaths(view)
    import datetime as dt
    assert table["label"].tolist() == ["Look 1", "This cut", "Final analysis"]      # a date after the cut: no look
    assert table.loc[0, "date"] == "2019-06-01"
    assert table.loc[0, "events"] == sum(d <= dt.date(2019, 6, 1) for d in dates)
