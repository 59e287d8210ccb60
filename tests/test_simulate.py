"""The trial simulator: determinism, calibration against published ALS figures, randomisation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from data_access.simulate import simulate_trial
from data_access.simulate_parts import ITEM_CODES


@pytest.fixture(scope="module")
def trial(study):
    return simulate_trial(study, seed=11)


def _with_arm(df, trial):
    return df.merge(trial.allocation[["USUBJID", "ARMCD"]], on="USUBJID")


def test_same_seed_same_frames_other_seed_differs(study):
    a, b, c = simulate_trial(study, seed=5), simulate_trial(study, seed=5), simulate_trial(study, seed=6)
    for name in a.clinical:
        pd.testing.assert_frame_equal(a.clinical[name], b.clinical[name])
    pd.testing.assert_frame_equal(a.allocation, b.allocation)
    assert not a.clinical["adsl"]["AGE"].equals(c.clinical["adsl"]["AGE"])


def test_default_size_and_subjects(trial):
    adsl = trial.clinical["adsl"]
    assert len(adsl) == 220 and adsl["USUBJID"].is_unique
    assert set(trial.allocation["USUBJID"]) == set(adsl["USUBJID"])
    assert set(adsl["COUNTRY"]) == {"UK", "France"}
    assert adsl["RANDDT"].max() <= pd.Timestamp("2019-09-30")
    assert adsl["RANDDT"].min() >= pd.Timestamp("2017-06-19")


def test_screening_log_supports_consort(trial):
    scr = trial.clinical["screening"]
    assert scr["SCRNID"].is_unique
    assert (scr["OUTCOME"] == "RANDOMISED").sum() == 220
    assert set(scr.loc[scr["OUTCOME"] == "RANDOMISED", "USUBJID"]) == set(trial.clinical["adsl"]["USUBJID"])
    others = scr[scr["OUTCOME"] != "RANDOMISED"]
    assert set(others["OUTCOME"]) == {"SCREEN FAILURE", "RUN-IN DROP-OUT"}
    assert others["REASON"].notna().all()
    ratio = len(scr) / 220
    assert 1.4 <= ratio <= 2.2
    # randomised people went through a 12-18 week run-in
    r = scr[scr["OUTCOME"] == "RANDOMISED"]
    weeks = (r["RUNINEDT"] - r["SCRNDT"]).dt.days / 7
    assert weeks.between(12, 18.2).all()


def test_stratified_blocks_balance_within_half_a_block(trial, study):
    alloc = trial.allocation
    counts = alloc.groupby(["STRATUM", "ARMCD"]).size().unstack(fill_value=0)
    assert set(counts.index) == {"UK/Bulbar", "UK/Limb", "France/Bulbar", "France/Limb"}
    assert ((counts["IL2LD"] - counts["PBO"]).abs() <= max(study.block_sizes) // 2).all()
    # every complete block is exactly balanced; blocks never mix strata
    for block, g in alloc.groupby("BLOCK"):
        assert g["STRATUM"].nunique() == 1
        if len(g) == g["BLKSIZE"].iloc[0]:
            assert (g["ARMCD"] == "IL2LD").sum() == len(g) // 2, block
    assert alloc["RANDNO"].is_unique
    # strata in the allocation match ADSL
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    assert (alloc.set_index("USUBJID")["STRATUM"] == adsl["COUNTRY"] + "/" + adsl["ONSET"]).all()


def test_baseline_matches_published_population(trial):
    adsl = trial.clinical["adsl"]
    assert 55 <= adsl["AGE"].median() <= 65 and adsl["AGE"].between(18, 75).all()
    assert 0.52 <= (adsl["SEX"] == "M").mean() <= 0.72
    assert 0.04 <= (adsl["ELESCORL"] == "Possible").mean() <= 0.2
    assert 0.1 <= (adsl["PNFHGR"] == "High").mean() <= 0.32
    assert (adsl["SVCPCT"] >= 70).all()
    # date order: onset <= diagnosis <= screening <= randomisation, disease duration <= 24 months
    assert (adsl["ONSETDT"] <= adsl["DIAGDT"]).all() and (adsl["DIAGDT"] <= adsl["SCRNDT"]).all()
    assert (adsl["SCRNDT"] < adsl["RANDDT"]).all()
    assert ((adsl["SCRNDT"] - adsl["ONSETDT"]).dt.days <= 24 * 30.4375).all()
    # dFS is defined from the baseline score and disease duration
    months = (adsl["RANDDT"] - adsl["ONSETDT"]).dt.days / 30.4375
    np.testing.assert_allclose(adsl["DFS"], (48 - adsl["BLALSFRS"]) / months, atol=1e-3)
    # pNfH correlates positively with progression
    assert np.corrcoef(np.log(adsl["PNFH"]), adsl["DFS"])[0, 1] > 0.1


def test_alsfrs_items_sum_and_placebo_decline_about_one_point_per_month(trial):
    q = trial.clinical["adqs"]
    items = q[q["PARAMCD"].str.match(r"ALSFR(S\d\d|05[AB])$")]
    assert items["AVAL"].between(0, 4).all()
    per_visit = items.groupby(["USUBJID", "AVISITN"])
    assert (per_visit.size() == 12).all()                       # 5a or 5b, never both
    total = q[q["PARAMCD"] == "ALSFRST"].set_index(["USUBJID", "AVISITN"])["AVAL"]
    pd.testing.assert_series_equal(per_visit["AVAL"].sum().sort_index(), total.sort_index(), check_names=False)
    tot = _with_arm(q[q["PARAMCD"] == "ALSFRST"], trial)
    pbo = tot[tot["ARMCD"] == "PBO"]
    slopes = pbo.groupby("USUBJID").filter(lambda g: len(g) >= 3).groupby("USUBJID")[["ADY", "AVAL"]].apply(
        lambda g: np.polyfit(g["ADY"] / 30.4375, g["AVAL"], 1)[0])
    assert -1.3 <= slopes.mean() <= -0.7
    # no data after death
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    dth = q["USUBJID"].map(adsl["DTHDT"])
    assert not (q["ADT"] > dth).any()


def test_bulbar_onset_loses_bulbar_items_first(trial):
    q = trial.clinical["adqs"]
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    base = q[(q["ABLFL"] == "Y") & q["PARAMCD"].isin(["BULBAR", "GROSSMOT"])].pivot(
        index="USUBJID", columns="PARAMCD", values="AVAL")
    onset = base.index.map(adsl["ONSET"])
    bulbar, limb = base[onset == "Bulbar"], base[onset == "Limb"]
    assert bulbar["BULBAR"].mean() < limb["BULBAR"].mean()
    assert limb["GROSSMOT"].mean() < bulbar["GROSSMOT"].mean()


def test_placebo_survival_at_640_days_in_range_of_past_trials(study):
    values = []
    for seed in (1, 2, 3):
        t = simulate_trial(study, seed=seed, n_subjects=600)
        tte = _with_arm(t.clinical["adtte"], t)
        pbo = tte[(tte["PARAMCD"] == "OS") & (tte["ARMCD"] == "PBO")]
        km = KaplanMeierFitter().fit(pbo["AVAL"], 1 - pbo["CNSR"])
        values.append(float(km.predict(640)))
    assert 0.5 <= np.mean(values) <= 0.75, values


def test_effect_parameter_changes_truth(study):
    def hr_gap(effect):
        t = simulate_trial(study, seed=3, n_subjects=2000, effect=effect)
        tte = _with_arm(t.clinical["adtte"], t)
        os_ = tte[tte["PARAMCD"] == "OS"]
        rate = os_.groupby("ARMCD").apply(lambda g: (1 - g["CNSR"]).sum() / g["AVAL"].sum(), include_groups=False)
        return rate["IL2LD"] / rate["PBO"]
    assert hr_gap("strong") < 0.6
    assert 0.85 < hr_gap("null") < 1.15


def test_tregs_rise_on_il2_only(trial):
    lb = _with_arm(trial.clinical["adlb"], trial)
    post = lb[(lb["PARAMCD"] == "TREGPCT") & (lb["AVISITN"] > 1)]
    ratio = post.groupby("ARMCD").apply(lambda g: (g["AVAL"] / g["BASE"]).mean(), include_groups=False)
    assert ratio["IL2LD"] > 1.4 and 0.9 < ratio["PBO"] < 1.1


def test_injection_site_reactions_more_frequent_on_il2(trial):
    ae = _with_arm(trial.clinical["adae"], trial)
    isr = ae[ae["AEDECOD"] == "Injection site reaction"].groupby("ARMCD")["USUBJID"].nunique()
    assert isr["IL2LD"] > 1.5 * isr.get("PBO", 0)
    deaths = trial.clinical["adsl"]["DTHFL"].eq("Y").sum()
    assert (ae["AEOUT"] == "FATAL").sum() == deaths


def test_adtte_consistent_with_adsl(trial):
    tte = trial.clinical["adtte"]
    os_ = tte[tte["PARAMCD"] == "OS"].set_index("USUBJID")
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    assert ((os_["CNSR"] == 0) == (adsl["DTHFL"] == "Y")).all()
    assert (os_["AVAL"] == (os_["ADT"] - os_["STARTDT"]).dt.days).all()
    assert os_["AVAL"].max() <= 640
    comp = tte[tte["PARAMCD"] == "DTHTRV"].set_index("USUBJID")
    assert (comp["AVAL"] <= os_["AVAL"]).all()


def test_messy_records_what_it_planted(study):
    t = simulate_trial(study, seed=2, messy=True)
    rules = {p["rule"] for p in t.planted}
    assert {"partial_date", "duplicate_record", "value_out_of_range", "visit_before_randomisation",
            "subject_not_in_adsl", "late_entry", "total_mismatch"} <= rules
    for p in t.planted:
        assert {"dataset", "column", "subject", "rule", "detail"} <= set(p)
