"""analysis/interim.py and the ``decision`` output: conditional power (design effect, current
trend, null), predictive power, repeated CI and the non-binding futility rule at the interim look.

Checked three ways:
- hand cases of the closed forms (Lan & Wittes 1988; Jennison & Turnbull 2000, ch. 9-10);
- Monte Carlo of the Brownian motion (seeded) where looks remain before the final one;
- reference values computed with rpact 3.3.4 (Debian bookworm r-cran-rpact): the numbers are
  written below with the R calls that gave them, and ``test_rpact_live`` recomputes them when
  Rscript and rpact are installed (scripts/setup-system.sh), skipping cleanly otherwise.

Then the output on the default demo (seed 20170619, cut 2021-07-22), its blinding (refused on a
blinded view and by ``mirocals table decision --view blinded``), and the Survival page's alert
(AppTest: shown to the DSMB, nothing of it on a steering committee page).
"""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy import stats

from analysis.interim import (conditional_power, drift_from_hazard_ratio, futility_z, interim_decision,
                              predictive_power, repeated_ci, trend_drift)
from analysis.sequential import compute_obf_boundaries


def _looks(fractions):
    b = compute_obf_boundaries(fractions)
    return list(zip(b["information_fraction"], b["boundary_z"]))


TWO = _looks([0.5, 1.0])                 # 30 and 60 of 60 deaths
THREE = _looks([1 / 3, 2 / 3, 1.0])      # 20, 40 and 60 of 60 deaths
THETA_HR05_60 = drift_from_hazard_ratio(0.5, 60)

# ---------------------------------------------------------------------------- rpact 3.3.4 reference values
# d2 <- getDesignGroupSequential(kMax = 2, alpha = 0.025, sided = 1, typeOfDesign = "asOF", informationRates = c(0.5, 1))
# sr <- getStageResults(d2, dataInput = getDataset(cumulativeEvents = 30, cumulativeLogRanks = -1.5,
#                       cumulativeAllocationRatios = 1), directionUpper = FALSE)   # z = 1.5 favouring treatment
# getConditionalPower(sr, nPlanned = 30, thetaH1 = 0.5 | 1 | <none: observed>)$conditionalPower[2]
RPACT_CP2 = {"design": 0.730474, "null": 0.09956841, "trend": 0.5855004}
# d3 <- the same with kMax = 3, informationRates = c(1/3, 2/3, 1); at 20 deaths, z = 1.2:
# getConditionalPower(sr3, nPlanned = c(20, 20), thetaH1 = 0.5)$conditionalPower[2:3]  (cumulative)
RPACT_CP3_DESIGN = (0.2113428, 0.7298288)
RPACT_CP3_TREND = 0.5475
# getRepeatedConfidenceIntervals(d3, getDataset(cumulativeEvents = c(20, 40), cumulativeLogRanks = c(-1.2, -2.2),
#                                cumulativeAllocationRatios = c(1, 1)), directionUpper = FALSE)   (HR scale)
RPACT_RCI = ((0.1112524, 3.072961), (0.2253988, 1.103494))

R_SCRIPT = r"""
suppressMessages(library(rpact))
d2 <- getDesignGroupSequential(kMax = 2, alpha = 0.025, sided = 1, typeOfDesign = "asOF", informationRates = c(0.5, 1))
sr <- getStageResults(d2, dataInput = getDataset(cumulativeEvents = 30, cumulativeLogRanks = -1.5,
                      cumulativeAllocationRatios = 1), directionUpper = FALSE)
out <- c(getConditionalPower(sr, nPlanned = 30, thetaH1 = 0.5)$conditionalPower[2],
         getConditionalPower(sr, nPlanned = 30, thetaH1 = 1)$conditionalPower[2],
         getConditionalPower(sr, nPlanned = 30)$conditionalPower[2])
d3 <- getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1, typeOfDesign = "asOF", informationRates = c(1/3, 2/3, 1))
sr3 <- getStageResults(d3, dataInput = getDataset(cumulativeEvents = 20, cumulativeLogRanks = -1.2,
                       cumulativeAllocationRatios = 1), directionUpper = FALSE)
out <- c(out, getConditionalPower(sr3, nPlanned = c(20, 20), thetaH1 = 0.5)$conditionalPower[2:3],
         getConditionalPower(sr3, nPlanned = c(20, 20))$conditionalPower[3])
rci <- suppressMessages(getRepeatedConfidenceIntervals(d3, dataInput = getDataset(cumulativeEvents = c(20, 40),
          cumulativeLogRanks = c(-1.2, -2.2), cumulativeAllocationRatios = c(1, 1)), directionUpper = FALSE))
out <- c(out, rci[1, 1], rci[2, 1], rci[1, 2], rci[2, 2])
du <- getDesignGroupSequential(kMax = 2, alpha = 0.025, sided = 1, typeOfDesign = "asUser",
        informationRates = c(30/78, 1), userAlphaSpending = c(d2$alphaSpent[1], 0.025))
out <- c(out, du$criticalValues[2])
cat(sprintf("%.9f", out), sep = "\n")
"""


def test_conditional_power_closed_form_on_hand_cases():
    # final look only: CP = 1 - Phi((c - z sqrt(t) - theta (1 - t)) / sqrt(1 - t))
    z, t, c = 1.0, 0.5, 1.96
    assert conditional_power(z, t, 0.0, [(1.0, c)]) == pytest.approx(stats.norm.sf((c - np.sqrt(0.5)) / np.sqrt(0.5)))
    assert conditional_power(z, t, 0.0, [(1.0, c)]) == pytest.approx(0.038209, abs=1e-6)
    # current trend: theta = z / sqrt(t), so B(1) has mean z / sqrt(t) (the z "continues")
    assert conditional_power(2.0, 0.25, trend_drift(2.0, 0.25), [(1.0, c)]) == pytest.approx(
        stats.norm.sf((c - 4.0) / np.sqrt(0.75)))
    # the design drift: -log(HR) sqrt(D / 4) = 0.6931 x sqrt(15) = 2.6845 for HR 0.5 and 60 deaths
    assert THETA_HR05_60 == pytest.approx(np.log(2) * np.sqrt(15))
    # with no data (t = 0, z = 0) CP under the design drift is the power; fixed sample: 1.96 + 0.8416
    assert conditional_power(0.0, 0.0, 1.959964 + 0.841621, [(1.0, 1.959964)]) == pytest.approx(0.80, abs=1e-5)
    # a look already beyond the boundary with nothing to lose: CP under the null is still < 1
    assert 0 < conditional_power(3.0, 0.9, 0.0, [(1.0, 2.0)]) < 1
    # no look left: not applicable
    assert np.isnan(conditional_power(2.0, 1.0, 0.0, [(1.0, 2.0)]))
    # an infinite remaining boundary (no alpha left) cannot be crossed
    assert conditional_power(1.0, 0.5, 2.0, [(1.0, np.inf)]) == 0.0


def test_predictive_power_closed_form_on_hand_cases():
    # flat prior: PP = Phi((z - c sqrt(t)) / sqrt(1 - t)) (Jennison & Turnbull 2000, sec. 10.3)
    for z, t, c in [(1.0, 0.5, 1.96), (2.2, 0.75, 2.02), (-0.5, 0.3, 1.99)]:
        assert predictive_power(z, t, [(1.0, c)]) == pytest.approx(stats.norm.cdf((z - c * np.sqrt(t)) / np.sqrt(1 - t)))
    # PP is CP averaged over theta ~ N(z / sqrt(t), 1 / t): check by quadrature against the formula
    z, t = 1.3, 0.4
    grid = np.linspace(-8, 8, 4001)
    theta = z / np.sqrt(t) + grid / np.sqrt(t)
    cp = np.array([conditional_power(z, t, th, [(1.0, 1.96)]) for th in theta])
    assert np.trapezoid(cp * stats.norm.pdf(grid), grid) == pytest.approx(predictive_power(z, t, [(1.0, 1.96)]), abs=1e-6)
    # when z equals the final boundary at t, PP is below 1/2 (shrinks towards no effect)... and above the null CP
    assert conditional_power(1.0, 0.5, 0.0, [(1.0, 1.96)]) < predictive_power(1.0, 0.5, [(1.0, 1.96)]) < 0.5


def test_several_remaining_looks_agree_with_monte_carlo():
    # the recursion over looks 2 and 3 against a simulated Brownian motion from B(1/3) = z sqrt(1/3)
    rng = np.random.default_rng(20240611)
    z, t = 1.2, 1 / 3
    n = 400_000
    (s2, c2), (s3, c3) = THREE[1], THREE[2]
    for theta in (THETA_HR05_60, 0.0, trend_drift(z, t)):
        b2 = z * np.sqrt(t) + theta * (s2 - t) + rng.standard_normal(n) * np.sqrt(s2 - t)
        b3 = b2 + theta * (s3 - s2) + rng.standard_normal(n) * np.sqrt(s3 - s2)
        mc = np.mean((b2 >= c2 * np.sqrt(s2)) | (b3 >= c3 * np.sqrt(s3)))
        assert conditional_power(z, t, theta, THREE) == pytest.approx(mc, abs=0.003)
    # predictive power: theta drawn from its flat-prior posterior
    theta = z / np.sqrt(t) + rng.standard_normal(n) / np.sqrt(t)
    b2 = z * np.sqrt(t) + theta * (s2 - t) + rng.standard_normal(n) * np.sqrt(s2 - t)
    b3 = b2 + theta * (s3 - s2) + rng.standard_normal(n) * np.sqrt(s3 - s2)
    mc = np.mean((b2 >= c2 * np.sqrt(s2)) | (b3 >= c3 * np.sqrt(s3)))
    assert predictive_power(z, t, THREE) == pytest.approx(mc, abs=0.003)
    # a remaining look with an unreachable boundary reduces to the final look's closed form
    assert conditional_power(1.0, 0.5, 2.0, [(0.75, 50.0), (1.0, 1.96)]) == pytest.approx(
        conditional_power(1.0, 0.5, 2.0, [(1.0, 1.96)]), abs=1e-9)


def test_against_rpact_reference_values():
    assert conditional_power(1.5, 0.5, THETA_HR05_60, TWO) == pytest.approx(RPACT_CP2["design"], abs=1e-6)
    assert conditional_power(1.5, 0.5, 0.0, TWO) == pytest.approx(RPACT_CP2["null"], abs=1e-6)
    assert conditional_power(1.5, 0.5, trend_drift(1.5, 0.5), TWO) == pytest.approx(RPACT_CP2["trend"], abs=1e-6)
    # three looks: rpact's stage-2 value is crossing at look 2, its stage-3 value crossing at 2 or 3
    assert conditional_power(1.2, 1 / 3, THETA_HR05_60, THREE[:2]) == pytest.approx(RPACT_CP3_DESIGN[0], abs=1e-6)
    assert conditional_power(1.2, 1 / 3, THETA_HR05_60, THREE) == pytest.approx(RPACT_CP3_DESIGN[1], abs=1e-6)
    assert conditional_power(1.2, 1 / 3, trend_drift(1.2, 1 / 3), THREE) == pytest.approx(RPACT_CP3_TREND, abs=1e-6)
    # repeated CIs: rpact estimates log HR = -2 z / sqrt(d) with SE 2 / sqrt(d) (V = d / 4)
    for (d, z, (_, c)), ref in zip([(20, 1.2, THREE[0]), (40, 2.2, THREE[1])], RPACT_RCI):
        assert repeated_ci(-2 * z / np.sqrt(d), 2 / np.sqrt(d), c) == pytest.approx(ref, rel=1e-6)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript not installed (scripts/setup-system.sh)")
def test_rpact_live():
    probe = subprocess.run(["Rscript", "-e", "cat(requireNamespace('rpact', quietly = TRUE))"], capture_output=True,
                           text=True, timeout=60)
    if probe.stdout.strip() != "TRUE":
        pytest.skip("R package rpact not installed (Debian r-cran-rpact)")
    run = subprocess.run(["Rscript", "-e", R_SCRIPT], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    got = [float(x) for x in run.stdout.splitlines() if re.fullmatch(r"-?\d+\.\d+", x.strip())]   # not [PROGRESS]
    assert len(got) == 11, run.stdout
    ours = [conditional_power(1.5, 0.5, THETA_HR05_60, TWO), conditional_power(1.5, 0.5, 0.0, TWO),
            conditional_power(1.5, 0.5, trend_drift(1.5, 0.5), TWO),
            conditional_power(1.2, 1 / 3, THETA_HR05_60, THREE[:2]), conditional_power(1.2, 1 / 3, THETA_HR05_60, THREE),
            conditional_power(1.2, 1 / 3, trend_drift(1.2, 1 / 3), THREE),
            *repeated_ci(-2 * 1.2 / np.sqrt(20), 2 / np.sqrt(20), THREE[0][1]),
            *repeated_ci(-2 * 2.2 / np.sqrt(40), 2 / np.sqrt(40), THREE[1][1]),
            compute_obf_boundaries([0.5, 78 / 60])["boundary_z"].iloc[-1]]
    np.testing.assert_allclose(ours, got, rtol=2e-6, atol=1e-7)


def test_repeated_ci_excludes_one_exactly_when_the_boundary_is_crossed():
    c = 2.5
    for z in (2.4, 2.5 + 1e-9, 2.6, -2.6, 0.3):
        v = 15.0
        lo, hi = repeated_ci(-z / np.sqrt(v), 1 / np.sqrt(v), c)      # (O - E) / V, SE 1 / sqrt(V)
        assert (hi < 1 or lo > 1) == (abs(z) >= c)
    assert repeated_ci(-0.5, 0.3, np.inf) == (0.0, np.inf)
    assert np.isnan(repeated_ci(np.nan, 0.3, 2.0)[0])


def test_futility_rule_and_its_z_threshold():
    zf = futility_z(0.5, TWO, 0.10)
    assert conditional_power(zf, 0.5, trend_drift(zf, 0.5), TWO) == pytest.approx(0.10, abs=1e-7)
    below = interim_decision(zf - 0.01, 0.5, TWO, 0.5, 60, log_hr=0.0, se=0.4)
    above = interim_decision(zf + 0.01, 0.5, TWO, 0.5, 60, log_hr=0.0, se=0.4)
    assert below.futility_crossed and not above.futility_crossed
    assert not below.efficacy_crossed
    # crossing the efficacy boundary is never futile; at the final analysis the rule does not apply
    assert not interim_decision(3.5, 0.5, TWO, 0.5, 60, -1.0, 0.3).futility_crossed
    final = interim_decision(0.1, 1.0, TWO, 0.5, 60, -0.02, 0.26)
    assert np.isnan(final.conditional_power_trend) and np.isnan(final.predictive_power)
    assert not final.futility_crossed and not final.efficacy_crossed
    assert final.efficacy_boundary_z == final.final_boundary_z


def test_interim_decision_collects_every_quantity():
    d = interim_decision(1.5, 0.5, TWO, 0.5, 60, log_hr=-2 * 1.5 / np.sqrt(30), se=2 / np.sqrt(30))
    assert d.efficacy_boundary_z == pytest.approx(2.962588, abs=1e-6)
    assert d.final_boundary_z == pytest.approx(1.968596, abs=1e-6)
    assert (d.conditional_power_design, d.conditional_power_null, d.conditional_power_trend) == pytest.approx(
        (RPACT_CP2["design"], RPACT_CP2["null"], RPACT_CP2["trend"]), abs=1e-6)
    assert d.predictive_power == pytest.approx(stats.norm.cdf((1.5 - 1.968596 * np.sqrt(0.5)) / np.sqrt(0.5)), abs=1e-6)
    assert d.rci_lower < 1 < d.rci_upper and not d.efficacy_crossed and not d.futility_crossed
    with pytest.raises(ValueError):
        interim_decision(1.5, 0.4, TWO, 0.5, 60, 0.0, 0.3)            # no look at 0.4


# ---------------------------------------------------------------------------- the output on the demo
QUANTITIES = ["information_fraction", "observed_z", "efficacy_boundary_z", "final_boundary_z",
              "conditional_power_design", "conditional_power_trend", "conditional_power_null", "predictive_power",
              "rci_lower", "rci_upper", "efficacy_crossed", "futility_crossed"]


@pytest.fixture(scope="module")
def dsmb(demo_snapshot):
    from data_access.views import open_view
    return open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation")


def test_decision_table_on_the_demo(dsmb):
    from analysis.outputs import build_table, display_table, footnotes
    table = build_table("decision", dsmb)
    assert list(table.columns) == ["quantity", "value", "note"]
    assert table["quantity"].tolist() == QUANTITIES
    v = dict(zip(table["quantity"], table["value"]))
    seq = build_table("sequential", dsmb)
    here = seq[seq["label"] == "This cut"].iloc[0]
    assert v["information_fraction"] == pytest.approx(here["information_fraction"])
    assert v["observed_z"] == pytest.approx(here["observed_z"])
    assert v["efficacy_boundary_z"] == pytest.approx(here["boundary_z"])
    assert v["final_boundary_z"] == pytest.approx(seq["boundary_z"].iloc[-1])
    # the observed z is the stratified log-rank of the treatment-effect table (the primary analysis)
    effect = build_table("treatment-effect", dsmb).set_index("method")
    assert v["observed_z"] == pytest.approx(np.sqrt(effect.loc["logrank_stratified", "statistic"]), rel=1e-9)
    looks = list(zip(seq["information_fraction"], seq["boundary_z"]))
    t, z = v["information_fraction"], v["observed_z"]
    assert v["conditional_power_design"] == pytest.approx(conditional_power(z, t, THETA_HR05_60, looks))
    assert v["conditional_power_null"] == pytest.approx(conditional_power(z, t, 0.0, looks))
    assert v["predictive_power"] == pytest.approx(predictive_power(z, t, looks))
    assert v["efficacy_crossed"] == (z >= v["efficacy_boundary_z"]) and isinstance(v["futility_crossed"], bool)
    assert v["rci_lower"] < v["rci_upper"]
    assert (v["rci_upper"] < 1) == v["efficacy_crossed"]                  # RCI excludes 1 iff crossed
    # the default demo (seed 20170619, cut 2021-07-22): 56 of 60 deaths, z 2.61 over 2.057
    assert t == pytest.approx(56 / 60)
    assert (round(z, 2), round(v["efficacy_boundary_z"], 3)) == (2.61, 2.057)
    assert v["efficacy_crossed"] is True and v["futility_crossed"] is False
    shown = display_table("decision", table, dsmb)
    text = " ".join(shown.iloc[:, 0])
    assert list(shown.columns) == ["Interim decision (quantity: value)"]
    for words in ("Conditional power under the design effect (HR 0.50): ", "Conditional power under the null",
                  "Predictive power", "Repeated 95 % CI", "Efficacy boundary crossed: yes", "Futility rule met",
                  "56 of 60 planned deaths"):
        assert words in text
    assert "%" in shown.iloc[4, 0] and "quantity" not in text
    notes = " ".join(footnotes("decision", dsmb))
    for words in ("Lan and Wittes", "non-binding", "flat prior", "Design assumptions", "hazard ratio the trial",
                  "0.50", "day 640 64 %", "60", "one-sided alpha 0.025"):
        assert words.lower() in notes.lower(), words


def test_decision_when_deaths_exceed_the_plan(demo_snapshot):
    from tests.test_sequential import _unblinded
    from analysis.outputs import build_table
    view = _unblinded(demo_snapshot, planned_events=40)
    v = dict(zip(*[build_table("decision", view)[c] for c in ("quantity", "value")]))
    assert v["information_fraction"] == pytest.approx(56 / 40)
    assert v["efficacy_boundary_z"] == v["final_boundary_z"]
    assert np.isnan(v["conditional_power_trend"]) and np.isnan(v["predictive_power"])
    assert v["futility_crossed"] is False


def test_futility_when_the_comparison_goes_the_other_way(demo_snapshot):
    # the demo with the arms' roles swapped (placebo "experimental"): z = -2.61 at 93 % of the
    # deaths, conditional power under the trend about 0: the futility rule is met, the alert warns
    from dataclasses import replace
    from analysis.outputs import build_table
    from analysis.outputs.decision_text import decision_alert, decision_summary
    from data_access.study import load_study
    from data_access.views import open_view
    study = load_study()
    swapped = replace(study, reference_arm=study.arm_codes[0])
    view = open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation", study=swapped)
    table = build_table("decision", view)
    v = dict(zip(table["quantity"], table["value"]))
    assert v["observed_z"] == pytest.approx(-2.6125, abs=1e-4)
    assert v["conditional_power_trend"] < 0.10 and v["futility_crossed"] is True and v["efficacy_crossed"] is False
    assert v["rci_lower"] > 1                                   # the HR of placebo vs IL-2
    level, text = decision_alert(table)
    assert level == "warning" and text.startswith("Futility rule met at this data cut")
    assert decision_summary(table).startswith("**The non-binding futility rule is met at this data cut**")


def test_alert_and_summary_words(dsmb):
    from analysis.outputs import build_table
    from analysis.outputs.decision_text import decision_alert, decision_summary
    table = build_table("decision", dsmb)
    level, text = decision_alert(table)
    assert level == "error" and text.startswith("Efficacy boundary crossed at this data cut: observed z 2.61")
    assert "repeated 95 % CI for the hazard ratio" in text
    summary = decision_summary(table)
    assert summary.startswith("**The efficacy boundary is crossed at this data cut**")
    for words in ("Information fraction", "Conditional power under the design effect",
                  "conditional power under the current trend", "conditional power under the null",
                  "predictive power", "repeated 95 % CI"):
        assert words in summary
    quiet = table.copy()
    quiet.loc[quiet["quantity"] == "efficacy_crossed", "value"] = False
    assert decision_alert(quiet) is None
    assert decision_summary(quiet).startswith("Neither the efficacy boundary nor the futility rule")


def test_design_assumptions_from_the_study_file():
    from data_access.study import load_study
    from analysis.outputs.decision_text import design_assumptions
    study = load_study()
    assert (study.design_hazard_ratio, study.control_survival_landmark, study.planned_events,
            study.futility_conditional_power, study.alpha_one_sided) == (0.5, 0.64, 60, 0.10, 0.025)
    rows = dict(design_assumptions(study))
    assert rows["Hazard ratio the trial is powered for (experimental vs reference)"] == "0.50"
    assert rows["Control-arm survival at day 640"].startswith("64 %")
    assert rows["Deaths planned at the final analysis"] == "60"
    # power at HR 0.5 with 60 deaths and the OBF look at 0.5: 76 % (the fixed-sample 77 %)
    assert rows["Power of this design at that hazard ratio (log-rank, 1:1)"] == "76 %"


def test_study_file_design_assumptions_are_range_checked(tmp_path):
    from data_access.study import DEFAULT_STUDY_FILE, load_study
    text = DEFAULT_STUDY_FILE.read_text()
    for old, new in [("design_hazard_ratio = 0.5", "design_hazard_ratio = -1"),
                     ("control_survival_landmark = 0.64", "control_survival_landmark = 64"),
                     ("interim_look_dates = []", "interim_look_dates = [\"soon\"]")]:
        assert old in text
        bad = tmp_path / "study.toml"
        bad.write_text(text.replace(old, new))
        with pytest.raises(ValueError, match=r"\[analysis\]"):
            load_study(bad)


def test_decision_is_refused_on_a_blinded_view_and_by_the_cli(demo_snapshot):
    from analysis.outputs import build_figure, build_table
    from data_access.view_base import BlindingError
    from data_access.views import open_view
    from tests.test_cli import run
    blinded = open_view(demo_snapshot, "steering")
    for name in ("decision", "sequential"):
        with pytest.raises(BlindingError):
            build_table(name, blinded)
    with pytest.raises(BlindingError):
        build_figure("boundaries", blinded)
    status, out, err = run("table", "decision", "--data", demo_snapshot, "--view", "blinded")
    assert status == 2 and out == "" and "decision" in err
    status, out, _ = run("table", "decision", "--data", demo_snapshot, "--view", "unblinded",
                         "--allocation", demo_snapshot / "allocation")
    assert status == 0 and out.splitlines()[0] == "quantity,value,note"


def test_decision_is_trial_wide():
    # a filtered view (the dashboard's sidebar) is refused with the reason; the page uses the
    # unfiltered view for the alert and these tabs
    from types import SimpleNamespace
    from analysis.outputs.decision import _decision_applies, _sequential_applies
    from data_access.study import load_study
    view = SimpleNamespace(study=load_study(), filter_label="UK")
    assert "trial-wide" in _decision_applies(view) and "trial-wide" in _sequential_applies(view)
    assert _decision_applies(SimpleNamespace(study=load_study())) is None


# ---------------------------------------------------------------------------- the Survival page (AppTest)
from tests.test_dashboard_apptest import _deployment, sign_in, visit, visit_all_tabs   # noqa: E402,F401

ALERT = "Efficacy boundary crossed"


def test_survival_page_alerts_the_dsmb_above_everything():
    at = visit(sign_in("dsmb"), "survival.py")
    errors = [e.value for e in at.error]
    assert any(e.startswith(ALERT) for e in errors), errors
    # above the figures and the tables: the first element after the page header (banner, title, cut-off)
    body = [str(getattr(n, "value", "")) for n in at.main]
    first_alert = next(i for i, v in enumerate(body) if v.startswith(ALERT))
    header = next(i for i, v in enumerate(body) if v.startswith("Data cut-off"))
    assert first_alert == header + 1, body[:first_alert + 1]
    assert "Interim decision" in [t.label for t in at.tabs]
    assert "Interim decision (quantity: value)" in visit_all_tabs(at, "survival.py").text      # its tab


@pytest.mark.parametrize("role", ["steering", "investigator"])
def test_blinded_survival_page_shows_nothing_of_the_decision(role):
    seen = visit_all_tabs(sign_in(role), "survival.py")          # every tab
    text = seen.text
    for words in (ALERT, "Futility rule", "Interim decision", "Conditional power", "Sequential monitoring",
                  "boundary"):
        assert words not in text, words
    assert not seen.get("error") and not seen.get("warning")


def test_survival_page_alert_is_trial_wide_under_a_filter():
    # a DSMB member filtering to the UK: the alert, the decision tab and the boundary figure stay
    # trial-wide (drawn on every subject, said so under each)
    at = sign_in("dsmb")
    at.session_state["flt_country"] = ["UK"]
    at = visit(at, "survival.py")
    alerts = [e.value for e in at.error if e.value.startswith(ALERT)]
    assert alerts and "Trial-wide: the filter does not apply." in alerts[0]
    assert "observed z 2.61" in alerts[0]                            # the whole trial's z, not the UK's
    seen = visit_all_tabs(at, "survival.py")                        # every tab (the decision's)
    text = seen.text
    assert text.count("Trial-wide: the interim look counts every death") == 3   # decision, figure, boundaries
    assert "the interim look is trial-wide" not in text              # nothing refused for the filter
    titles = " ".join(c.proto.spec for c in seen.get("plotly_chart"))
    assert "Efficacy boundary" in titles or "boundary" in titles.lower()
