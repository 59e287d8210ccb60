"""The trial simulator: determinism, calibration against published ALS figures, recruitment and
randomisation structure, date invariants, and the precision of planted data problems.

Calibration targets come from the domain brief (MIROCALS and past ALS trials), not from our own
output: placebo ALSFRS-R decline about 1 point/month (PRO-ACT 1.02), placebo survival at 640 days
54-70% in past trials (range widened for sampling), median age 60, 62% men, 11% possible ALS,
about 70% of CSF-pNfH in 750-3700 pg/mL and 21% above, about 1.6-2 screened per randomised.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from data_access.simulate import resolve_effect, simulate_trial
from data_access.simulate_parts import ITEM_CODES

MONTH = 30.4375
ITEM_RE = r"ALSFR(S\d\d|05[AB])$"


@pytest.fixture(scope="module")
def trial(study):
    """The default trial (seed 20170619, 220 randomised)."""
    return simulate_trial(study)


@pytest.fixture(scope="module")
def big(study):
    """A larger trial for calibration figures with little sampling noise."""
    return simulate_trial(study, seed=7, n_subjects=3000)


@pytest.fixture(scope="module")
def messy(study):
    return simulate_trial(study, seed=12, messy=True)


def _with_arm(df, trial):
    return df.merge(trial.allocation[["USUBJID", "ARMCD"]], on="USUBJID")


def _ols_slopes(q: pd.DataFrame) -> pd.Series:
    """Per-subject least-squares slope of AVAL on months (subjects with >= 3 assessments)."""
    x = q["ADY"] / MONTH
    g = q.assign(x=x, xy=x * q["AVAL"], xx=x * x).groupby("USUBJID")
    s = g[["x", "AVAL", "xy", "xx"]].sum()
    k = g.size()
    slope = (k * s["xy"] - s["x"] * s["AVAL"]) / (k * s["xx"] - s["x"] ** 2)
    return slope[k >= 3]


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_frames_other_seed_differs(study):
    a = simulate_trial(study, seed=5, messy=True)
    b = simulate_trial(study, seed=5, messy=True)
    c = simulate_trial(study, seed=6, messy=True)
    assert list(a.clinical) == ["screening", "adsl", "adqs", "adtte", "adae", "adlb", "adresp", "adex", "adcm", "addv"]
    for name in a.clinical:
        pd.testing.assert_frame_equal(a.clinical[name], b.clinical[name])
    pd.testing.assert_frame_equal(a.allocation, b.allocation)
    assert a.planted == b.planted and a.truth == b.truth
    assert not a.clinical["adsl"]["AGE"].equals(c.clinical["adsl"]["AGE"])
    assert not a.allocation["ARMCD"].equals(c.allocation["ARMCD"])


# --------------------------------------------------------------------------- recruitment
def test_default_size_and_recruitment_period(trial, study):
    adsl = trial.clinical["adsl"]
    assert len(adsl) == 220 and adsl["USUBJID"].is_unique
    assert list(trial.allocation["USUBJID"]) == list(adsl["USUBJID"])
    assert set(adsl["COUNTRY"]) == {"UK", "France"}
    assert adsl["RANDDT"].max() <= pd.Timestamp("2019-09-30")
    assert adsl["RANDDT"].min() >= pd.Timestamp("2017-06-19")
    # recruitment falls short of the plan (304 by 2019-09) at every month end after the first months
    plan = dict(study.recruitment_plan)
    for month in ("2018-06", "2018-12", "2019-06"):
        end = pd.Period(month).end_time
        assert (adsl["RANDDT"] <= end).sum() < plan[month]


def test_n_subjects_scales_exactly_over_the_same_period(study):
    t = simulate_trial(study, seed=3, n_subjects=2000)
    adsl, scr = t.clinical["adsl"], t.clinical["screening"]
    assert len(adsl) == 2000 and (scr["OUTCOME"] == "RANDOMISED").sum() == 2000
    assert adsl["RANDDT"].max() <= pd.Timestamp("2019-09-30")
    assert adsl["RANDDT"].min() < pd.Timestamp("2018-03-01")
    assert adsl["RANDDT"].max() > pd.Timestamp("2019-07-01")
    assert 1.5 <= len(scr) / 2000 <= 2.0
    assert _found(t) == set()                     # no data problem arises by chance at scale


def test_screening_log_supports_consort(trial, study):
    scr, adsl = trial.clinical["screening"], trial.clinical["adsl"]
    assert scr["SCRNID"].is_unique
    rand = scr[scr["OUTCOME"] == "RANDOMISED"]
    assert len(rand) == 220
    assert set(rand["USUBJID"]) == set(adsl["USUBJID"])
    assert scr.loc[scr["OUTCOME"] != "RANDOMISED", "USUBJID"].isna().all()
    others = scr[scr["OUTCOME"] != "RANDOMISED"]
    assert set(others["OUTCOME"]) == {"SCREEN FAILURE", "RUN-IN DROP-OUT"}
    assert others["REASON"].notna().all() and rand["REASON"].isna().all()
    assert 1.5 <= len(scr) / 220 <= 2.1
    # nobody is screened at a site before its activation
    act = scr["SITEID"].map({s.id: pd.Timestamp(s.activated) for s in study.sites})
    assert (scr["SCRNDT"] >= act).all()
    # screen failures have no run-in; randomised people went through a 12-18 week run-in
    sf = scr[scr["OUTCOME"] == "SCREEN FAILURE"]
    assert sf["RUNINSDT"].isna().all() and sf["RUNINEDT"].isna().all()
    weeks = (rand["RUNINEDT"] - rand["SCRNDT"]).dt.days / 7
    assert weeks.between(12, 18.2).all()
    drop = scr[scr["OUTCOME"] == "RUN-IN DROP-OUT"]
    assert ((drop["RUNINEDT"] > drop["RUNINSDT"]) & (drop["RUNINSDT"] > drop["SCRNDT"])).all()
    assert ((drop["RUNINEDT"] - drop["SCRNDT"]).dt.days <= 18 * 7).all()
    # the log agrees with ADSL: screening date and randomisation date (end of run-in)
    m = rand.merge(adsl[["USUBJID", "SCRNDT", "RANDDT", "SITEID"]], on="USUBJID", suffixes=("", "_ADSL"))
    assert (m["SCRNDT"] == m["SCRNDT_ADSL"]).all() and (m["RUNINEDT"] == m["RANDDT"]).all()
    assert (m["SITEID"] == m["SITEID_ADSL"]).all()


def test_slow_start_as_in_early_2018(trial):
    """MIROCALS: by early 2018, 56 screened and only 14 randomised (run-in and site start-up)."""
    scr, adsl = trial.clinical["screening"], trial.clinical["adsl"]
    by = pd.Timestamp("2018-03-31")
    screened, randomised = (scr["SCRNDT"] <= by).sum(), (adsl["RANDDT"] <= by).sum()
    assert 30 <= screened <= 90 and 5 <= randomised <= 25
    assert screened >= 2.5 * randomised


# --------------------------------------------------------------------------- randomisation
def test_stratified_blocks(trial, study):
    alloc = trial.allocation
    half = max(study.block_sizes) // 2
    assert alloc["RANDNO"].tolist() == list(range(1, 221))
    counts = alloc.groupby(["STRATUM", "ARMCD"]).size().unstack(fill_value=0)
    assert set(counts.index) == {"UK/Bulbar", "UK/Limb", "France/Bulbar", "France/Limb"}
    assert ((counts["IL2LD"] - counts["PBO"]).abs() <= half).all()
    # at every point of the randomisation, within each stratum, the imbalance stays within half a block
    d = alloc.sort_values("RANDNO").assign(step=lambda a: np.where(a["ARMCD"] == "IL2LD", 1, -1))
    assert d.groupby("STRATUM")["step"].cumsum().abs().max() <= half
    # every complete block is balanced; blocks never mix strata; sizes come from the config
    assert set(alloc["BLKSIZE"]) <= set(study.block_sizes)
    for block, g in alloc.groupby("BLOCK"):
        assert g["STRATUM"].nunique() == 1 and g["BLKSIZE"].nunique() == 1
        assert len(g) <= g["BLKSIZE"].iloc[0]
        if len(g) == g["BLKSIZE"].iloc[0]:
            assert (g["ARMCD"] == "IL2LD").sum() == len(g) // 2, block
    # strata match ADSL; masking key is one-to-one
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    assert (alloc.set_index("USUBJID")["STRATUM"] == adsl["COUNTRY"] + "/" + adsl["ONSET"]).all()
    key = alloc.groupby("ARMCD")["MASKCD"].unique()
    assert sorted(k[0] for k in key) == ["Group A", "Group B"] and all(len(k) == 1 for k in key)
    assert dict(zip(key.index, (k[0] for k in key))) == trial.truth["mask_key"]
    # the clinical part never holds arm-coded variables
    clinical_cols = set().union(*(df.columns for df in trial.clinical.values()))
    assert not {"ARM", "ARMCD", "RANDNO", "BLOCK", "BLKSIZE", "MASKCD"} & clinical_cols


# --------------------------------------------------------------------------- baseline
def test_baseline_matches_published_population(trial, big):
    adsl = trial.clinical["adsl"]
    assert 55 <= adsl["AGE"].median() <= 65 and adsl["AGE"].between(18, 75).all()
    assert (adsl["AGEGR1"] == np.where(adsl["AGE"] < 60, "<60", ">=60")).all()
    assert (adsl["SVCPCT"] >= 70).all()
    b = big.clinical["adsl"]
    assert 0.58 <= (b["SEX"] == "M").mean() <= 0.66
    assert 0.08 <= (b["ELESCORL"] == "Possible").mean() <= 0.14
    assert 0.26 <= (b["ONSET"] == "Bulbar").mean() <= 0.34
    assert 0.65 <= b["PNFH"].between(750, 3700).mean() <= 0.75
    assert 0.17 <= (b["PNFH"] > 3700).mean() <= 0.25
    assert (b["PNFHGR"] == np.where(b["PNFH"] > 3700, "High", "Low")).all()
    np.testing.assert_allclose(b["LOGPNFH"], np.log(b["PNFH"]), atol=1e-4)
    # pNfH is right-skewed and correlates with progression
    assert b["PNFH"].mean() > b["PNFH"].median()
    assert np.corrcoef(b["LOGPNFH"], b["DFS"])[0, 1] > 0.2


def test_baseline_dates_and_dfs(trial):
    adsl = trial.clinical["adsl"]
    assert (adsl["ONSETDT"] <= adsl["DIAGDT"]).all() and (adsl["DIAGDT"] <= adsl["SCRNDT"]).all()
    assert (adsl["SCRNDT"] < adsl["RANDDT"]).all()
    assert ((adsl["SCRNDT"] - adsl["ONSETDT"]).dt.days <= 24 * MONTH).all()
    np.testing.assert_allclose(adsl["DIAGDLY"], (adsl["DIAGDT"] - adsl["ONSETDT"]).dt.days / MONTH, atol=0.051)
    months = (adsl["RANDDT"] - adsl["ONSETDT"]).dt.days / MONTH
    np.testing.assert_allclose(adsl["DFS"], (48 - adsl["BLALSFRS"]) / months, atol=1e-3)
    assert (adsl["DFSGR"] == np.where(adsl["DFS"] < 0.6, "<0.6", ">=0.6")).all()
    base = trial.clinical["adqs"].query("PARAMCD == 'ALSFRST' and ABLFL == 'Y'").set_index("USUBJID")["AVAL"]
    assert (adsl.set_index("USUBJID")["BLALSFRS"] == base.reindex(adsl["USUBJID"])).all()
    # end of study, death and last-known-alive dates
    died = adsl["DTHFL"] == "Y"
    assert (adsl.loc[died, "DCSREAS"] == "DEATH").all() and adsl.loc[~died, "DTHDT"].isna().all()
    assert (adsl.loc[died, "DTHDT"] == adsl.loc[died, "LSTALVDT"]).all()
    assert (adsl["LSTALVDT"] > adsl["RANDDT"]).all() and (adsl["TRTEDT"] <= adsl["LSTALVDT"]).all()
    assert ((adsl["LSTALVDT"] - adsl["RANDDT"]).dt.days <= 640).all()
    assert set(adsl["EOSSTT"]) <= {"COMPLETED", "DISCONTINUED"}
    assert adsl.loc[adsl["EOSSTT"] == "COMPLETED", "DCSREAS"].isna().all()


# --------------------------------------------------------------------------- ALSFRS-R
def test_alsfrs_items_domains_total(trial):
    q = trial.clinical["adqs"]
    items = q[q["PARAMCD"].str.match(ITEM_RE)]
    assert items["AVAL"].between(0, 4).all() and (items["AVAL"] % 1 == 0).all()
    per_visit = items.groupby(["USUBJID", "AVISITN"])
    assert (per_visit.size() == 12).all()                       # 5a or 5b, never both
    assert not (q["PARAMCD"] == "ALSFR05B").loc[q["ABLFL"] == "Y"].any()   # no gastrostomy at entry
    total = q[q["PARAMCD"] == "ALSFRST"].set_index(["USUBJID", "AVISITN"])["AVAL"]
    pd.testing.assert_series_equal(per_visit["AVAL"].sum().sort_index(), total.sort_index(), check_names=False)
    bulbar_items = items[items["PARAMCD"].isin(["ALSFRS01", "ALSFRS02", "ALSFRS03"])]
    bulbar = bulbar_items.groupby(["USUBJID", "AVISITN"])["AVAL"].sum()
    dom = q[q["PARAMCD"] == "BULBAR"].set_index(["USUBJID", "AVISITN"])["AVAL"]
    pd.testing.assert_series_equal(bulbar.sort_index(), dom.sort_index(), check_names=False)
    # once 5b (gastrostomy), never back to 5a
    five = items[items["PARAMCD"].isin(["ALSFR05A", "ALSFR05B"])].sort_values(["USUBJID", "AVISITN"])
    is_b = (five["PARAMCD"] == "ALSFR05B").astype(int)
    assert (is_b.groupby(five["USUBJID"]).diff().fillna(0) >= 0).all()
    # BDS: BASE is the baseline value, CHG = AVAL - BASE, ADY = ADT - RANDDT, entered a few days later
    tot = q[q["PARAMCD"] == "ALSFRST"]
    bl = tot[tot["ABLFL"] == "Y"].set_index("USUBJID")["AVAL"]
    assert (tot["BASE"] == tot["USUBJID"].map(bl)).all() and (tot["CHG"] == tot["AVAL"] - tot["BASE"]).all()
    assert (tot.groupby("USUBJID")["ABLFL"].apply(lambda s: (s == "Y").sum()) == 1).all()
    rand = q["USUBJID"].map(trial.clinical["adsl"].set_index("USUBJID")["RANDDT"])
    assert ((q["ADT"] - rand).dt.days == q["ADY"]).all()
    lag = (q["ENTDT"] - q["ADT"]).dt.days
    assert lag.between(1, 14).all()


def test_visits_follow_schedule_stop_at_death_and_some_are_missed(trial, study):
    q = trial.clinical["adqs"]
    tot = q[q["PARAMCD"] == "ALSFRST"]
    target = tot["AVISITN"].map(dict(enumerate(study.visit_days, start=1)))
    assert ((tot["ADY"] - target).abs() <= study.visit_window).all()
    assert tot["ADY"].max() <= 640
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    assert not (q["ADT"] >= q["USUBJID"].map(adsl["DTHDT"])).any()
    assert not (q["ADT"] > q["USUBJID"].map(adsl["LSTALVDT"])).any()
    # completers: share of scheduled post-baseline visits missed is about 5-10%
    done = adsl.index[adsl["EOSSTT"] == "COMPLETED"]
    seen = tot[tot["USUBJID"].isin(done) & (tot["AVISITN"] > 1)]
    missed = 1 - len(seen) / (len(done) * (len(study.visit_days) - 1))
    assert 0.03 <= missed <= 0.12


def test_placebo_decline_about_one_point_per_month(trial, big):
    for t, lo, hi in ((trial, -1.4, -0.6), (big, -1.3, -0.7)):
        tot = _with_arm(t.clinical["adqs"].query("PARAMCD == 'ALSFRST'"), t)
        slopes = _ols_slopes(tot[tot["ARMCD"] == "PBO"])
        assert lo <= slopes.mean() <= hi, slopes.mean()


def test_bulbar_onset_loses_bulbar_items_first(trial):
    q = trial.clinical["adqs"]
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    base = q[(q["ABLFL"] == "Y") & q["PARAMCD"].isin(["BULBAR", "GROSSMOT"])].pivot(
        index="USUBJID", columns="PARAMCD", values="AVAL")
    onset = base.index.map(adsl["ONSET"])
    bulbar, limb = base[onset == "Bulbar"], base[onset == "Limb"]
    assert bulbar["BULBAR"].mean() < limb["BULBAR"].mean()
    assert limb["GROSSMOT"].mean() < bulbar["GROSSMOT"].mean()


# --------------------------------------------------------------------------- survival
def test_placebo_survival_at_640_days_in_range_of_past_trials(trial, big):
    for t in (trial, big):
        tte = _with_arm(t.clinical["adtte"], t)
        pbo = tte[(tte["PARAMCD"] == "OS") & (tte["ARMCD"] == "PBO")]
        km = KaplanMeierFitter().fit(pbo["AVAL"], 1 - pbo["CNSR"])
        assert 0.5 <= float(km.predict(640)) <= 0.8
    # large trial: within the 54-70% of past trials
    assert 0.54 <= float(km.predict(640)) <= 0.72


def test_adtte_consistent_with_adsl(trial):
    tte = trial.clinical["adtte"]
    assert set(tte["PARAMCD"]) == {"OS", "DTHTRV"}
    os_ = tte[tte["PARAMCD"] == "OS"].set_index("USUBJID")
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    assert ((os_["CNSR"] == 0) == (adsl["DTHFL"] == "Y")).all()
    ev = os_["CNSR"] == 0
    assert (os_.loc[ev, "ADT"] == adsl.loc[os_.index[ev], "DTHDT"]).all()
    assert (os_.loc[~ev, "ADT"] == adsl.loc[os_.index[~ev], "LSTALVDT"]).all()
    assert (os_["STARTDT"] == adsl["RANDDT"]).all()
    assert (os_["AVAL"] == (os_["ADT"] - os_["STARTDT"]).dt.days).all()
    assert os_["AVAL"].between(1, 640).all()
    comp = tte[tte["PARAMCD"] == "DTHTRV"].set_index("USUBJID")
    assert (comp["AVAL"] <= os_["AVAL"]).all() and (comp["CNSR"] <= os_["CNSR"]).all()
    assert (comp["CNSR"] == 0).sum() > (os_["CNSR"] == 0).sum()


def _cox_hr(t, subset=None) -> float:
    tte = _with_arm(t.clinical["adtte"], t).merge(t.clinical["adsl"][["USUBJID", "PNFHGR"]])
    os_ = tte[tte["PARAMCD"] == "OS"]
    if subset:
        os_ = os_[os_["PNFHGR"] == subset]
    d = pd.DataFrame({"T": os_["AVAL"], "E": 1 - os_["CNSR"], "trt": (os_["ARMCD"] == "IL2LD").astype(int)})
    return float(np.exp(CoxPHFitter().fit(d, "T", "E").params_["trt"]))


def test_effect_scenarios_are_recovered(study, big):
    null = simulate_trial(study, seed=7, n_subjects=3000, effect="null")
    strong = simulate_trial(study, seed=7, n_subjects=3000, effect="strong")
    assert 0.85 < _cox_hr(null) < 1.15
    assert _cox_hr(strong) < 0.55
    # published: benefit in low pNfH, harm-or-nothing in high pNfH
    assert _cox_hr(big, "Low") < 0.75 and _cox_hr(big, "High") > 1.0
    # ALSFRS-R: slower decline on IL-2 under "strong", none under "null"
    def arm_slopes(t):
        s = _ols_slopes(t.clinical["adqs"].query("PARAMCD == 'ALSFRST'"))
        return s.groupby(s.index.map(t.allocation.set_index("USUBJID")["ARMCD"])).mean()
    s_null, s_strong = arm_slopes(null), arm_slopes(strong)
    assert abs(s_null["IL2LD"] / s_null["PBO"] - 1) < 0.1
    assert s_strong["IL2LD"] / s_strong["PBO"] < 0.75
    assert strong.truth["hr_low_pnfh"] == 0.4 and big.truth["hr_high_pnfh"] == 1.37


def test_effect_dict_and_errors(study):
    assert resolve_effect({"hr": 0.6}) == {"hr_low_pnfh": 0.6, "hr_high_pnfh": 0.6,
                                           "slope_ratio_low_pnfh": 1.0, "slope_ratio_high_pnfh": 1.0}
    t = simulate_trial(study, seed=1, n_subjects=40, effect={"hr_low_pnfh": 0.7, "slope_ratio": 0.8})
    assert t.truth["effect"] == "custom" and t.truth["hr_low_pnfh"] == 0.7
    assert t.truth["slope_ratio_high_pnfh"] == 0.8 and t.truth["hr_high_pnfh"] == 1.0
    with pytest.raises(ValueError, match="unknown effect"):
        simulate_trial(study, effect="huge")
    with pytest.raises(ValueError, match="unknown effect parameter"):
        resolve_effect({"hazard": 0.5})


# --------------------------------------------------------------------------- labs, exposure, AEs
def test_tregs_rise_on_il2_only_eosinophils_mildly(trial):
    lb = _with_arm(trial.clinical["adlb"], trial)
    assert set(lb["PARAMCD"]) == {"TREG", "TREGPCT", "EOS", "CSFPNFH"}
    post = lb[lb["AVISITN"] > 1]
    ratio = post.groupby(["PARAMCD", "ARMCD"]).apply(lambda g: (g["AVAL"] / g["BASE"]).mean(), include_groups=False)
    assert ratio["TREGPCT", "IL2LD"] > 1.4 and 0.9 < ratio["TREGPCT", "PBO"] < 1.1
    assert ratio["TREG", "IL2LD"] > 1.4
    assert 1.1 < ratio["EOS", "IL2LD"] < 2.0 and 0.9 < ratio["EOS", "PBO"] < 1.1
    # arms separate clearly: every IL-2 post-baseline Treg % above the placebo median
    tp = post[post["PARAMCD"] == "TREGPCT"]
    assert tp.loc[tp["ARMCD"] == "IL2LD", "AVAL"].median() > tp.loc[tp["ARMCD"] == "PBO", "AVAL"].quantile(0.8)
    csf = lb[lb["PARAMCD"] == "CSFPNFH"].set_index("USUBJID")["AVAL"]
    pnfh = trial.clinical["adsl"].set_index("USUBJID")["PNFH"]
    assert csf.index.is_unique and (csf.reindex(pnfh.index) == pnfh).all()
    resp = trial.clinical["adresp"]
    assert set(resp["PARAMCD"]) == {"SVCPCT"} and (resp["CHG"] == resp["AVAL"] - resp["BASE"]).all()


def test_exposure_cycles(trial):
    ex = trial.clinical["adex"]
    assert ex["CYCLE"].between(1, 19).all() and ex["NDOSES"].between(0, 5).all()
    assert not ex.duplicated(["USUBJID", "CYCLE"]).any()
    rand = ex["USUBJID"].map(trial.clinical["adsl"].set_index("USUBJID")["RANDDT"])
    assert ((ex["ASTDT"] - rand).dt.days == (ex["CYCLE"] - 1) * 28).all()
    assert ((ex["AENDT"] - ex["ASTDT"]).dt.days == 4).all()
    completers = trial.clinical["adsl"].query("EOSSTT == 'COMPLETED'")["USUBJID"]
    assert (ex[ex["USUBJID"].isin(completers)].groupby("USUBJID")["CYCLE"].max() == 19).all()


def test_adverse_events(trial):
    ae = _with_arm(trial.clinical["adae"], trial)
    n_arm = trial.allocation["ARMCD"].value_counts()
    for pt in ("Injection site reaction", "Influenza like illness"):
        pct = ae[ae["AEDECOD"] == pt].groupby("ARMCD")["USUBJID"].nunique() / n_arm
        assert pct["IL2LD"] > 1.5 * pct.get("PBO", 0), pt
    adsl = trial.clinical["adsl"].set_index("USUBJID")
    fatal = ae[ae["AEOUT"] == "FATAL"]
    assert (fatal["AESDTH"] == "Y").all() and (fatal["AESER"] == "Y").all()
    assert sorted(fatal["USUBJID"]) == sorted(adsl.index[adsl["DTHFL"] == "Y"])
    assert (fatal["AENDT"] == fatal["USUBJID"].map(adsl["DTHDT"])).all()
    assert (ae.loc[ae["AEOUT"] != "FATAL", "AESDTH"] == "N").all()
    assert set(ae["AEOUT"]) == {"RECOVERED", "RECOVERING", "NOT RECOVERED", "FATAL"}
    assert ae.loc[ae["AEOUT"].isin(["RECOVERING", "NOT RECOVERED"]), "AENDT"].isna().all()
    ended = ae["AENDT"].notna()
    assert (ae.loc[ended, "AENDT"] >= ae.loc[ended, "ASTDT"]).all()
    assert (ae["ASTDT"] > ae["USUBJID"].map(adsl["RANDDT"])).all()
    assert (ae["ASTDT"] <= ae["USUBJID"].map(adsl["LSTALVDT"])).all()
    assert (ae.groupby("USUBJID")["AESEQ"].apply(lambda s: list(s) == list(range(1, len(s) + 1)))).all()


# --------------------------------------------------------------------------- messy data
def test_messy_plants_every_rule_a_few_times(messy):
    rules = pd.Series([p["rule"] for p in messy.planted]).value_counts()
    assert set(rules.index) == {"partial_date", "duplicate_record", "value_out_of_range",
                                "visit_before_randomisation", "subject_not_in_adsl", "late_entry", "total_mismatch",
                                # concomitant care, deviations, LSTALVDT (tests/test_care_data.py)
                                "care_after_death", "care_before_randomisation", "date_order", "missing_value",
                                "site_mismatch", "invalid_code", "last_alive_after_cut", "last_alive_before_record"}
    assert rules["partial_date"] >= 3 and rules["total_mismatch"] >= 3 and rules["late_entry"] >= 2
    for p in messy.planted:
        assert set(p) == {"dataset", "column", "subject", "rule", "detail"}
        assert p["dataset"] in messy.clinical and p["column"] in messy.clinical[p["dataset"]]


def _found(trial) -> set[tuple]:
    """(dataset, column, subject, rule) of every problem present, found by hand from the data."""
    c = trial.clinical
    adsl = c["adsl"].set_index("USUBJID")
    out = set()
    for name, col in (("adsl", "ONSETDT"), ("adae", "ASTDT")):
        df = c[name]
        if col + "C" in df:
            bad = df[df[col].isna() & ~df[col + "C"].str.fullmatch(r"\d{4}-\d{2}-\d{2}")]
            out |= {(name, col, s, "partial_date") for s in bad["USUBJID"]}
    q = c["adqs"]
    items = q[q["PARAMCD"].str.match(ITEM_RE)]
    out |= {("adqs", "AVAL", s, "value_out_of_range") for s in items.loc[~items["AVAL"].between(0, 4), "USUBJID"]}
    uq = q.drop_duplicates(["USUBJID", "PARAMCD", "AVISITN"])
    uitems = uq[uq["PARAMCD"].str.match(ITEM_RE)]
    sums = uitems.groupby(["USUBJID", "AVISITN"])["AVAL"].sum()
    tot = uq[uq["PARAMCD"] == "ALSFRST"].set_index(["USUBJID", "AVISITN"])["AVAL"]
    out |= {("adqs", "AVAL", k[0], "total_mismatch") for k in tot.index[tot != sums.reindex(tot.index)]}
    for name, key in (("adqs", ["USUBJID", "PARAMCD", "AVISITN"]), ("adae", None)):
        df = c[name]
        key = key or [k for k in df.columns if k not in ("AESEQ", "ENTDT")]
        out |= {(name, "USUBJID", s, "duplicate_record") for s in df.loc[df.duplicated(key), "USUBJID"]}
    for name in ("adqs", "adae", "adlb", "adresp", "adex", "adtte"):
        out |= {(name, "USUBJID", s, "subject_not_in_adsl") for s in set(c[name]["USUBJID"]) - set(adsl.index)}
    post = q[q["ABLFL"] != "Y"]
    out |= {("adqs", "ADT", s, "visit_before_randomisation")
            for s in post.loc[post["ADT"] < post["USUBJID"].map(adsl["RANDDT"]), "USUBJID"]}
    out |= {("adqs", "ENTDT", s, "late_entry") for s in q.loc[(q["ENTDT"] - q["ADT"]).dt.days > 30, "USUBJID"]}
    return out


def test_planted_list_is_exactly_what_is_in_the_data(messy, trial):
    # the care, deviation and LSTALVDT problems are checked against validation in tests/test_care_data.py
    planted = {(p["dataset"], p["column"], p["subject"], p["rule"]) for p in messy.planted
               if p["dataset"] not in ("adcm", "addv") and p["column"] != "LSTALVDT"}
    assert _found(messy) == planted
    assert _found(trial) == set()                 # the clean trial has none of these problems


def test_item_codes_match_the_contract(study):
    assert set(ITEM_CODES) | {"ALSFR05B"} == set(study.functional_items)
