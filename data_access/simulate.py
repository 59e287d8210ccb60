"""MIROCALS-like trial simulator (vectorised numpy, one seeded generator).

``simulate_trial`` generates the FULL trial to completion (every subject followed to day 640 or
to death / withdrawal); ``data_access.cut.cut_datasets`` then gives the trial as known at a date.
Helpers: ``simulate_recruitment`` (screening, run-in, randomisation), ``simulate_parts``
(ALSFRS-R, labs, SVC, exposure, AEs), ``simulate_messy`` (planted data problems).

Documented assumptions (the real values are not public; the numbers are in ``truth``):

- recruitment: Poisson screening at each site from its activation, rate = target x Gamma(3, 1/3)
  site factor with a start-up ramp; 30% screen failures, 12% run-in drop-outs (about 1.7 screened
  per randomised); run-in 12-18 weeks; randomisation by 2019-09-30 (see simulate_recruitment);
- baseline: age N(59.5, 10) in 18-75; 62% men; 30% bulbar onset; El Escorial 11% possible;
  symptom onset 3-24 months before screening; pre-study progression (latent dFS) log-normal,
  median 0.55 points/month; CSF-pNfH log-normal (median 2,035 pg/mL, log-SD 0.74: about 9%
  < 750, 70% in 750-3700, 21% > 3700), correlated with dFS (r about 0.6 on the log scale);
  SVC N(96, 14) % predicted, >= 70;
- ALSFRS-R: latent loss grows at ``slope`` points/month (placebo mean about 1.0, faster with
  higher dFS and pNfH); items lose points in an onset-dependent order (bulbar onset: bulbar
  items first); 7% of scheduled visits missed;
- survival: exponential death hazard 0.019/month x exp(0.45 z_dFS + 0.35 z_pNfH) (placebo 640-day
  survival about 0.6, within the 54-70% of past trials); tracheostomy / permanent ventilation at
  a quarter of that hazard; 8% withdraw;
- concomitant care (adcm: riluzole, NIV, gastrostomy, tracheostomy, ATC-coded medications) and
  protocol deviations (addv) follow each subject's course (``simulate_care``; drawn from a
  generator of their own, so the other datasets are the same with or without them); LSTALVDT is
  the death date, else the end of follow-up (a cut makes it the last contact before the cut);
- treatment effect (``EFFECTS``): hazard ratio and slope ratio on IL-2 by pNfH group (Low <=
  3700 pg/mL, High > 3700).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_access.simulate_care import NIV_BASE_PER_MONTH, P_PAV, build_care, care_rng, niv_km_limit
from data_access.simulate_parts import build_adae, build_adex, build_adlb_adresp, build_adqs, interruption_reasons
from data_access.simulate_messy import plant_problems
from data_access.simulate_recruitment import build_screening, dates_of, randomise_blocks, simulate_screening

EFFECTS = {
    "published": {"hr_low_pnfh": 0.52, "hr_high_pnfh": 1.37, "slope_ratio_low_pnfh": 0.75,
                  "slope_ratio_high_pnfh": 1.0},
    "null": {"hr_low_pnfh": 1.0, "hr_high_pnfh": 1.0, "slope_ratio_low_pnfh": 1.0,
             "slope_ratio_high_pnfh": 1.0},
    "strong": {"hr_low_pnfh": 0.4, "hr_high_pnfh": 0.4, "slope_ratio_low_pnfh": 0.5,
               "slope_ratio_high_pnfh": 0.5},
}
DEFAULT_N = 220
RECRUITMENT_END = dt.date(2019, 9, 30)
FOLLOW_UP_DAYS = 640
PNFH_CUTOFF = 3700.0
PNFH_LOG_MEDIAN, PNFH_LOG_SD = np.log(2035.0), 0.74
BASE_HAZARD_PER_MONTH = 0.019
PLACEBO_SLOPE_SCALE = 0.86          # median latent ALSFRS-R loss per month on placebo
P_WITHDRAW = 0.08
MONTH = 30.4375
NEVER = 10**6                       # "day" of an event that does not happen


@dataclass
class SimulatedTrial:
    """A simulated trial: clinical datasets (no arm information), the allocation, the planted
    data problems (``messy=True``) and the true parameters."""

    clinical: dict[str, pd.DataFrame]
    allocation: pd.DataFrame
    planted: list[dict] = field(default_factory=list)
    truth: dict = field(default_factory=dict)


def resolve_effect(effect: str | dict) -> dict:
    """Effect parameters for a named scenario, or a dict of parameters.

    A dict may give any of ``hr_low_pnfh``, ``hr_high_pnfh``, ``slope_ratio_low_pnfh``,
    ``slope_ratio_high_pnfh`` (the others default to no effect), or ``hr`` / ``slope_ratio`` for
    both pNfH groups at once. The slope ratio multiplies the ALSFRS-R decline rate on IL-2.
    """
    if isinstance(effect, str):
        if effect not in EFFECTS:
            raise ValueError(f"unknown effect {effect!r}; use one of {sorted(EFFECTS)} or a dict")
        return dict(EFFECTS[effect])
    known = set(EFFECTS["null"]) | {"hr", "slope_ratio"}
    unknown = sorted(set(effect) - known)
    if unknown:
        raise ValueError(f"unknown effect parameter(s) {unknown}; known: {sorted(known)}")
    eff = dict(EFFECTS["null"])
    for short in ("hr", "slope_ratio"):
        if short in effect:
            eff[f"{short}_low_pnfh"] = eff[f"{short}_high_pnfh"] = float(effect[short])
    eff.update({k: float(v) for k, v in effect.items() if k in EFFECTS["null"]})
    if any(v <= 0 for v in eff.values()):
        raise ValueError(f"effect parameters must be positive: {eff}")
    return eff


def _days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def simulate_trial(study, seed: int = 20170619, n_subjects: int | None = None,
                   effect: str | dict = "published", messy: bool = False) -> SimulatedTrial:
    """Simulate a MIROCALS-like trial to completion.

    Parameters
    ----------
    study : ``data_access.study.Study`` (sites, activation dates, strata, block sizes, visits).
    seed : seed of the one ``numpy.random.default_rng`` used; same arguments give identical frames.
    n_subjects : number randomised (default 220, as in MIROCALS); recruitment is spread over the
        same period whatever the number.
    effect : "published", "null", "strong" or a dict (see ``resolve_effect``).
    messy : plant realistic data problems (listed in ``planted``).

    Returns
    -------
    SimulatedTrial with ``clinical`` (screening, adsl, adqs, adtte, adae, adlb, adresp, adex, adcm,
    addv),
    ``allocation``, ``planted`` and ``truth``.
    """
    rng = np.random.default_rng(seed)
    eff = resolve_effect(effect)
    n = int(DEFAULT_N if n_subjects is None else n_subjects)
    if n < 2:
        raise ValueError(f"n_subjects must be at least 2, got {n}")
    sites = study.sites
    site_ids = np.array([s.id for s in sites])
    site_country = np.array([s.country for s in sites])
    end = _days(RECRUITMENT_END)

    # ---- recruitment: screening log, run-in, randomised subjects in randomisation order
    scr = simulate_screening(np.array([_days(s.activated) for s in sites]),
                             np.array([s.target for s in sites], dtype=float), n, end, rng)
    rand_rows = np.flatnonzero(scr["outcome"].to_numpy() == 0)
    r = scr.iloc[rand_rows]
    order = np.lexsort((r["site"].to_numpy(), r["re"].to_numpy()))     # by randomisation day, site
    site_idx = r["site"].to_numpy()[order]
    rand_day, scr_day = r["re"].to_numpy()[order], r["scr"].to_numpy()[order]
    run_in = rand_day - scr_day
    site_id, country = site_ids[site_idx], site_country[site_idx]
    seq = pd.Series(site_id).groupby(site_id).cumcount().to_numpy() + 1
    usubjid = np.array([f"MIR-{s}-{k:04d}" for s, k in zip(site_id, seq)])
    usub_in_scr_order = np.empty(n, dtype=object)
    usub_in_scr_order[order] = usubjid
    screening = build_screening(scr, site_ids, site_country, usub_in_scr_order, rng)

    # ---- baseline characteristics
    onset = np.where(rng.random(n) < 0.30, "Bulbar", "Limb")
    stratum = np.char.add(np.char.add(country.astype(str), "/"), onset.astype(str))
    age = np.clip(np.round(rng.normal(59.5, 10.0, n)), 18, 75).astype(int)
    sex = np.where(rng.random(n) < 0.62, "M", "F")
    elesc = rng.choice(["Possible", "Probable lab-supported", "Probable", "Definite"], n,
                       p=[0.11, 0.17, 0.40, 0.32])
    z_dfs = rng.normal(0, 1, n)
    z_pnfh = 0.6 * z_dfs + 0.8 * rng.normal(0, 1, n)
    dfs_latent = np.exp(np.log(0.55) + 0.5 * z_dfs)
    pnfh = np.round(np.exp(PNFH_LOG_MEDIAN + PNFH_LOG_SD * z_pnfh), 0)
    dur_months = np.minimum(3.0 + rng.gamma(4.0, 2.2, n), 23.9)      # onset -> screening
    diagdly = dur_months * rng.uniform(0.35, 0.9, n)
    onset_day = scr_day - np.round(dur_months * MONTH).astype(int)
    diag_day = onset_day + np.round(diagdly * MONTH).astype(int)
    diagdly = (diag_day - onset_day) / MONTH
    svc = np.round(np.clip(rng.normal(96, 14, n), 70, 140), 1)
    high = pnfh > PNFH_CUTOFF

    # ---- allocation (arm 0 = experimental, arm 1 = reference), in randomisation order
    arm, block, blksize = randomise_blocks(stratum, np.arange(n), list(study.block_sizes) or [2, 4], rng)
    il2 = arm == 0

    # ---- progression and outcomes (days from randomisation)
    slope = PLACEBO_SLOPE_SCALE * np.exp(0.5 * z_dfs + 0.25 * z_pnfh + 0.2 * rng.normal(0, 1, n))
    slope = np.where(il2, slope * np.where(high, eff["slope_ratio_high_pnfh"], eff["slope_ratio_low_pnfh"]), slope)
    hr = np.where(il2, np.where(high, eff["hr_high_pnfh"], eff["hr_low_pnfh"]), 1.0)
    hazard = BASE_HAZARD_PER_MONTH * np.exp(0.45 * z_dfs + 0.35 * z_pnfh) * hr / MONTH   # per day
    death_d = np.minimum(np.ceil(rng.exponential(1.0, n) / hazard), NEVER).astype(int)
    trach_d = np.minimum(np.ceil(rng.exponential(1.0, n) / (0.25 * hazard)), NEVER).astype(int)
    withdraw_d = np.where(rng.random(n) < P_WITHDRAW, rng.integers(30, FOLLOW_UP_DAYS, n), NEVER)
    fu_end = np.minimum(withdraw_d, FOLLOW_UP_DAYS)                    # end of follow-up if alive
    died = death_d <= fu_end
    withdrew = (withdraw_d < FOLLOW_UP_DAYS) & ~died
    stop_t = np.where(died, death_d - 1, fu_end)                       # last day with assessments
    last_alive = np.where(died, death_d, fu_end)

    subjects = pd.DataFrame({
        "USUBJID": usubjid, "SITEID": site_id, "COUNTRY": country, "ONSET": onset, "STRATUM": stratum,
        "rand_day": rand_day, "scr_day": scr_day, "run_in": run_in, "stop_t": stop_t, "died": died,
        "death_d": death_d, "slope": slope, "base_loss": np.clip(dfs_latent * (dur_months + run_in / MONTH), 1, 20),
        "il2": il2, "high": high, "svc": svc, "pnfh": pnfh,
    })
    adqs, bl_total = build_adqs(subjects, study, rng)
    dfs = (48 - bl_total) / ((rand_day - onset_day) / MONTH)
    rand_dates = dates_of(rand_day)
    reason = np.where(died, "DEATH", np.where(withdrew, rng.choice(
        ["WITHDRAWAL BY SUBJECT", "ADVERSE EVENT", "LOST TO FOLLOW-UP"], n, p=[0.6, 0.25, 0.15]), None))
    adsl = pd.DataFrame({
        "STUDYID": study.id, "USUBJID": usubjid, "SUBJID": [u[4:] for u in usubjid], "SITEID": site_id,
        "COUNTRY": country, "AGE": age, "AGEGR1": np.where(age < 60, "<60", ">=60"), "SEX": sex,
        "ONSET": onset, "STRATUM": stratum, "ELESCORL": elesc,
        "ONSETDT": dates_of(onset_day), "DIAGDT": dates_of(diag_day), "SCRNDT": dates_of(scr_day),
        "RANDDT": rand_dates, "DIAGDLY": np.round(diagdly, 1), "BLALSFRS": bl_total,
        "DFS": np.round(dfs, 3), "DFSGR": np.where(dfs < 0.6, "<0.6", ">=0.6"), "SVCPCT": svc,
        "PNFH": pnfh, "LOGPNFH": np.round(np.log(pnfh), 4), "PNFHGR": np.where(high, "High", "Low"),
        "ITTFL": "Y", "SAFFL": "Y", "TRTSDT": rand_dates,
        "TRTEDT": dates_of(rand_day + np.minimum(stop_t, 18 * 28 + 4)),
        "EOSSTT": np.where(died | withdrew, "DISCONTINUED", "COMPLETED"), "DCSREAS": reason,
        "EOSDT": dates_of(rand_day + last_alive), "DTHFL": np.where(died, "Y", None),
        "DTHDT": dates_of(rand_day + np.where(died, death_d, 0)).where(died),
        "LSTALVDT": dates_of(rand_day + last_alive),
    })
    adtte = _build_adtte(usubjid, rand_day, death_d, trach_d, fu_end, withdrew, study)
    adlb, adresp = build_adlb_adresp(subjects, study, rng)
    adex = build_adex(subjects, rng)
    adex["EXADJ"] = interruption_reasons(adex, subjects, np.random.default_rng([seed, 0xE7AD]))
    adae = build_adae(subjects, rng)
    # concomitant care and deviations: their own generator, so the datasets above do not change
    care_sub = subjects.assign(SITEID=site_id, runin_day=scr_day + 1 - rand_day, fu_end=fu_end, trach_d=trach_d,
                               hazard=hazard)
    adcm, addv = build_care(care_sub, adqs, adex, care_rng(seed), PLACEBO_SLOPE_SCALE, study.visit_days)
    masked = rng.permutation(np.array(study.masked_labels[:2]))
    allocation = pd.DataFrame({
        "USUBJID": usubjid, "RANDNO": np.arange(1, n + 1), "ARMCD": np.array(study.arm_codes)[arm],
        "ARM": np.array(study.arm_labels)[arm], "STRATUM": stratum, "BLOCK": block.astype(str),
        "BLKSIZE": blksize, "MASKCD": masked[arm]})
    clinical = {"screening": screening, "adsl": adsl, "adqs": adqs, "adtte": adtte, "adae": adae,
                "adlb": adlb, "adresp": adresp, "adex": adex, "adcm": adcm, "addv": addv}
    planted = plant_problems(clinical, rng) if messy else []
    truth = {"effect": effect if isinstance(effect, str) else "custom", **eff, "seed": seed, "n": n,
             "pnfh_cutoff": PNFH_CUTOFF, "pnfh_log_median": float(PNFH_LOG_MEDIAN), "pnfh_log_sd": PNFH_LOG_SD,
             "base_hazard_per_month": BASE_HAZARD_PER_MONTH, "hazard_log_coef_dfs_z": 0.45,
             "hazard_log_coef_pnfh_z": 0.35, "placebo_slope_scale_per_month": PLACEBO_SLOPE_SCALE,
             "follow_up_days": FOLLOW_UP_DAYS, "p_withdraw": P_WITHDRAW,
             "mask_key": dict(zip(study.arm_codes[:2], masked.tolist())),
             "niv_base_per_month": NIV_BASE_PER_MONTH, "p_pav": P_PAV,
             "niv_free_km": niv_km_limit(care_sub, PLACEBO_SLOPE_SCALE)}
    return SimulatedTrial(clinical, allocation, planted, truth)


def _build_adtte(usubjid, rand_day, death_d, trach_d, fu_end, withdrew, study) -> pd.DataFrame:
    """OS (death) and DTHTRV (death, tracheostomy or permanent assisted ventilation), censored at
    the end of follow-up (withdrawal, or day 640)."""
    frames = []
    cens_desc = np.where(withdrew, "WITHDRAWAL (LAST KNOWN ALIVE)", "END OF FOLLOW-UP (DAY 640)")
    for paramcd, param, t_event in (
            (study.survival_paramcd, "Time to death from any cause (days)", death_d),
            (study.composite_paramcd or "DTHTRV", "Time to death, tracheostomy or permanent assisted "
             "ventilation (days)", np.minimum(death_d, trach_d))):
        event = t_event <= fu_end
        t = np.where(event, t_event, fu_end)
        frames.append(pd.DataFrame({
            "USUBJID": usubjid, "PARAMCD": paramcd, "PARAM": param, "STARTDT": dates_of(rand_day),
            "ADT": dates_of(rand_day + t), "AVAL": t.astype(float), "CNSR": np.where(event, 0, 1),
            "EVNTDESC": np.where(event, np.where(death_d <= t, "DEATH", "TRACHEOSTOMY OR PAV"), None),
            "CNSDTDSC": np.where(event, None, cens_desc)}))
    return pd.concat(frames, ignore_index=True)
