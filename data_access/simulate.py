"""MIROCALS-like trial simulator (vectorised numpy, seeded).

``simulate_trial`` generates the FULL trial to completion (every subject followed to day 640 or
to death / withdrawal); ``data_access.cut.cut_datasets`` then gives the trial as known at a date.

Documented assumptions (the real values are not public):
- recruitment: each site's rate is proportional to its target times a Gamma(3, 1/3) site factor,
  from activation (plus the run-in) to 2019-09-30; about 1.7 people screened per randomised;
- disease: pre-study progression dFS log-normal (median 0.55 points/month); CSF-pNfH log-normal
  (median 2,200 pg/mL) correlated with dFS; placebo ALSFRS-R decline about 1 point/month, faster
  with higher dFS and pNfH; items lose points in an onset-dependent order (bulbar onset: bulbar
  items first);
- survival: exponential hazard 0.016/month scaled by dFS and pNfH (placebo 640-day survival
  about 0.6);
- treatment effect (``EFFECTS``): "published" (HR 0.52 in low pNfH, 1.37 in high pNfH; ALSFRS-R
  decline 25% slower on IL-2 in low pNfH), "null" (none), "strong" (HR 0.4 and decline 50% slower
  for everyone); a dict with the same keys is accepted.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_access.simulate_parts import (ITEM_CODES, build_adae, build_adlb_adresp, build_adqs,
                                        build_adex, build_screening, plant_problems)

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


@dataclass
class SimulatedTrial:
    clinical: dict[str, pd.DataFrame]
    allocation: pd.DataFrame
    planted: list[dict] = field(default_factory=list)
    truth: dict = field(default_factory=dict)


def _days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _to_dates(days: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(days, dtype="int64"), unit="D"))


def randomise_blocks(strata: np.ndarray, order: np.ndarray, block_sizes, rng) -> tuple:
    """Stratified permuted-block 1:1 allocation. ``order`` is the randomisation order.
    Returns (arm index 0/1 per subject, block id per subject, block size per subject)."""
    n = len(strata)
    arm = np.empty(n, dtype=int)
    block = np.empty(n, dtype=object)
    size = np.empty(n, dtype=int)
    for s in sorted(set(strata)):
        idx = order[strata[order] == s]
        pos, b = 0, 0
        while pos < len(idx):
            bs = int(rng.choice(block_sizes))
            arms = rng.permutation(np.repeat([0, 1], bs // 2))
            take = idx[pos:pos + bs]
            arm[take] = arms[:len(take)]
            b += 1
            block[take] = f"{s}-{b:03d}"
            size[take] = bs
            pos += bs
    return arm, block, size


def simulate_trial(study, seed: int = 20170619, n_subjects: int | None = None,
                   effect: str | dict = "published", messy: bool = False) -> SimulatedTrial:
    """Simulate a MIROCALS-like trial. Same seed and arguments give identical frames."""
    rng = np.random.default_rng(seed)
    eff = dict(EFFECTS[effect]) if isinstance(effect, str) else {**EFFECTS["null"], **effect}
    n = int(n_subjects or DEFAULT_N)
    sites = study.sites
    n_sites = len(sites)
    end = _days(RECRUITMENT_END)
    act = np.array([_days(s.activated) for s in sites])
    target = np.array([s.target for s in sites], dtype=float)

    # ---- recruitment: site by rate x open time; randomisation after a 12-18 week run-in
    factor = rng.gamma(3.0, 1 / 3.0, n_sites)
    open_days = np.maximum(end - (act + 126), 30)
    w = target * factor * open_days
    site_idx = np.sort(rng.choice(n_sites, size=n, p=w / w.sum()))
    run_in = rng.integers(84, 127, n)
    rand_day = act[site_idx] + 126 + (rng.random(n) * open_days[site_idx]).astype(int)
    rand_day = np.minimum(rand_day, end)
    scr_day = rand_day - run_in
    order = np.lexsort((site_idx, rand_day))
    rand_day, scr_day, site_idx, run_in = rand_day[order], scr_day[order], site_idx[order], run_in[order]
    site_id = np.array([sites[i].id for i in site_idx])
    country = np.array([sites[i].country for i in site_idx])
    seq = pd.Series(site_id).groupby(site_id).cumcount().to_numpy() + 1
    usubjid = np.array([f"MIR-{s}-{k:04d}" for s, k in zip(site_id, seq)])

    # ---- baseline
    onset = np.where(rng.random(n) < 0.30, "Bulbar", "Limb")
    stratum = np.char.add(np.char.add(country.astype(str), "/"), onset.astype(str))
    age = np.clip(np.round(rng.normal(59.5, 10.0, n)), 18, 75).astype(int)
    sex = np.where(rng.random(n) < 0.62, "M", "F")
    elesc = rng.choice(["Possible", "Probable lab-supported", "Probable", "Definite"], n,
                       p=[0.11, 0.17, 0.40, 0.32])
    z_dfs = rng.normal(0, 1, n)
    z_pnfh = 0.6 * z_dfs + 0.8 * rng.normal(0, 1, n)
    dfs_latent = np.exp(np.log(0.55) + 0.5 * z_dfs)
    pnfh = np.round(np.exp(np.log(2200) + 0.6 * z_pnfh), 0)
    dur_months = rng.uniform(6, 23, n)                        # onset -> screening
    diagdly = np.minimum(dur_months * rng.uniform(0.35, 0.85, n), dur_months - 0.5)
    onset_day = scr_day - np.round(dur_months * 30.4375).astype(int)
    diag_day = onset_day + np.round(diagdly * 30.4375).astype(int)
    svc = np.round(np.clip(rng.normal(96, 14, n), 70, 140), 1)
    high = pnfh > PNFH_CUTOFF

    # ---- allocation (arm 0 = experimental, arm 1 = reference)
    rand_order = np.lexsort((np.arange(n), rand_day))
    arm, block, blksize = randomise_blocks(stratum, rand_order, list(study.block_sizes) or [2, 4], rng)
    randno = np.empty(n, dtype=int)
    randno[rand_order] = np.arange(1, n + 1)
    il2 = arm == 0

    # ---- progression and outcomes
    base_loss_rate = dfs_latent * (dur_months + run_in / 30.4375)
    slope = 0.86 * np.exp(0.5 * z_dfs + 0.25 * z_pnfh + 0.2 * rng.normal(0, 1, n))
    ratio = np.where(high, eff["slope_ratio_high_pnfh"], eff["slope_ratio_low_pnfh"])
    slope = np.where(il2, slope * ratio, slope)
    hr = np.where(il2, np.where(high, eff["hr_high_pnfh"], eff["hr_low_pnfh"]), 1.0)
    hazard = 0.016 * np.exp(0.45 * z_dfs + 0.35 * z_pnfh) * hr / 30.4375          # per day
    death_t = rng.exponential(1.0, n) / hazard
    trach_t = rng.exponential(1.0, n) / (0.25 * hazard)
    withdraw_t = np.where(rng.random(n) < 0.08, rng.uniform(30, FOLLOW_UP_DAYS, n), np.inf)
    died = (death_t <= FOLLOW_UP_DAYS) & (death_t < withdraw_t)
    stop_t = np.minimum(np.minimum(death_t, withdraw_t), FOLLOW_UP_DAYS).astype(int)
    stop_t = np.maximum(stop_t, 1)

    subjects = pd.DataFrame({
        "USUBJID": usubjid, "SITEID": site_id, "COUNTRY": country, "ONSET": onset, "STRATUM": stratum,
        "rand_day": rand_day, "scr_day": scr_day, "run_in": run_in, "stop_t": stop_t, "died": died,
        "slope": slope, "base_loss": np.clip(base_loss_rate, 1, 20), "il2": il2, "high": high,
        "svc": svc, "pnfh": pnfh, "death_t": death_t, "trach_t": trach_t, "withdraw_t": withdraw_t,
    })
    adqs, bl_total = build_adqs(subjects, study, rng)
    dfs = (48 - bl_total) / ((rand_day - onset_day) / 30.4375)

    rand_dates = _to_dates(rand_day)
    death_dates = _to_dates(rand_day + np.minimum(death_t, 10**4).astype(int))
    stop_dates = _to_dates(rand_day + stop_t)
    withdrew = np.isfinite(withdraw_t) & ~died
    reason = np.where(died, "DEATH", np.where(withdrew, rng.choice(
        ["WITHDRAWAL BY SUBJECT", "ADVERSE EVENT", "LOST TO FOLLOW-UP"], n, p=[0.6, 0.25, 0.15]), None))
    trt_end = np.minimum(stop_t, 18 * 28 + 4)
    adsl = pd.DataFrame({
        "STUDYID": study.id, "USUBJID": usubjid, "SUBJID": [u[-9:] for u in usubjid], "SITEID": site_id,
        "COUNTRY": country, "AGE": age, "AGEGR1": np.where(age < 60, "<60", ">=60"), "SEX": sex,
        "ONSET": onset, "STRATUM": stratum, "ELESCORL": elesc,
        "ONSETDT": _to_dates(onset_day), "DIAGDT": _to_dates(diag_day), "SCRNDT": _to_dates(scr_day),
        "RANDDT": rand_dates, "DIAGDLY": np.round(diagdly, 1), "BLALSFRS": bl_total,
        "DFS": np.round(dfs, 3), "DFSGR": np.where(dfs < 0.6, "<0.6", ">=0.6"), "SVCPCT": svc,
        "PNFH": pnfh, "LOGPNFH": np.round(np.log(pnfh), 4), "PNFHGR": np.where(high, "High", "Low"),
        "ITTFL": "Y", "SAFFL": "Y", "TRTSDT": rand_dates, "TRTEDT": _to_dates(rand_day + trt_end),
        "EOSSTT": np.where(died | withdrew, "DISCONTINUED", "COMPLETED"), "DCSREAS": reason,
        "EOSDT": stop_dates, "DTHFL": np.where(died, "Y", None),
        "DTHDT": death_dates.where(died), "LSTALVDT": stop_dates,
    })
    adtte = _build_adtte(subjects, study)
    screening = build_screening(subjects, sites, rng, end)
    adlb, adresp = build_adlb_adresp(subjects, study, rng)
    adex = build_adex(subjects, rng)
    adae = build_adae(subjects, rng)
    arms = np.array(study.arm_codes)[arm]
    masked = rng.permutation(list(study.masked_labels[:2]))
    allocation = pd.DataFrame({
        "USUBJID": usubjid, "RANDNO": randno, "ARMCD": arms,
        "ARM": np.array(study.arm_labels)[arm], "STRATUM": stratum, "BLOCK": block.astype(str),
        "BLKSIZE": blksize, "MASKCD": np.array(masked)[arm]}).sort_values("RANDNO").reset_index(drop=True)
    clinical = {"screening": screening, "adsl": adsl, "adqs": adqs, "adtte": adtte, "adae": adae,
                "adlb": adlb, "adresp": adresp, "adex": adex}
    planted = plant_problems(clinical, rng) if messy else []
    truth = {"effect": effect if isinstance(effect, str) else "custom", **eff, "seed": seed, "n": n,
             "pnfh_cutoff": PNFH_CUTOFF}
    return SimulatedTrial(clinical, allocation, planted, truth)


def _build_adtte(sub: pd.DataFrame, study) -> pd.DataFrame:
    rand = sub["rand_day"].to_numpy()
    frames = []
    for paramcd, param, t_event in (
            (study.survival_paramcd, "Time to death from any cause (days)", sub["death_t"].to_numpy()),
            (study.composite_paramcd or "DTHTRV", "Time to death, tracheostomy or permanent assisted "
             "ventilation (days)", np.minimum(sub["death_t"], sub["trach_t"]).to_numpy())):
        censor_t = np.minimum(sub["withdraw_t"].to_numpy(), FOLLOW_UP_DAYS)
        event = t_event <= censor_t
        t = np.where(event, np.ceil(t_event), np.floor(censor_t)).astype(int)
        t = np.maximum(t, 1)
        is_death = sub["death_t"].to_numpy() <= t
        frames.append(pd.DataFrame({
            "USUBJID": sub["USUBJID"], "PARAMCD": paramcd, "PARAM": param,
            "STARTDT": _to_dates(rand), "ADT": _to_dates(rand + t), "AVAL": t.astype(float),
            "CNSR": np.where(event, 0, 1),
            "EVNTDESC": np.where(event, np.where(is_death, "DEATH", "TRACHEOSTOMY OR PAV"), None),
            "CNSDTDSC": np.where(event, None, np.where(np.isfinite(sub["withdraw_t"]) &
                                                      (sub["withdraw_t"] < FOLLOW_UP_DAYS),
                                                      "WITHDRAWAL", "END OF FOLLOW-UP (DAY 640)")),
        }))
    return pd.concat(frames, ignore_index=True)
