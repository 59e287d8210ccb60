"""Concomitant care (``adcm``) and protocol deviations (``addv``) for the simulator (issue 14).

``build_care`` takes the per-subject frame of ``data_access.simulate`` (USUBJID, SITEID, ONSET,
rand_day, runin_day, stop_t, death_d, fu_end, slope, hazard = death hazard per day, trach_d = day
of tracheostomy or permanent assisted ventilation, the DTHTRV event of ADTTE), the simulated ADQS
and ADEX, and a generator of its own (``care_rng``: the other datasets' random numbers are not
disturbed, so adding these datasets changed none of them). Rates and their sources are in
``data_access/DATASETS.md`` ("Concomitant care and deviations in the simulator").

Consistency with each subject's simulated course (days from randomisation):

- NIV: constant hazard ``NIV_BASE_PER_MONTH`` x (ALSFRS-R slope / median placebo slope) **
  ``NIV_SLOPE_POWER`` x ``NIV_BULBAR`` for bulbar onset; a permanent assisted ventilation (PAV)
  starts NIV that day if it has not started. Recorded only before death, before a tracheostomy
  and by the end of follow-up. The slope carries the simulated treatment effect, so under the
  ``published`` effect NIV follows the slower decline on IL-2 in low pNfH; under ``null`` the
  rates do not depend on the arm. Nothing here reads the arm.
- Tracheostomy / PAV: exactly the DTHTRV events of ADTTE (tracheostomy or PAV before death);
  ``P_PAV`` of them are PAV (NIV >= 22 h/day), the others tracheostomy.
- Gastrostomy (PEG 70 %, RIG 30 %): where the simulated ALSFRS-R switches from item 5a to 5b
  (gastrostomy in place), dated between the last 5a and the first 5b assessment.
- Riluzole: 50 mg twice daily from the start of run-in; some doses reduced (50 mg once daily),
  some restored, a few stopped; a dose change is a new row, the previous one ends the day before.
- Other medications: ATC level-2 classes (``MEDS``), some ongoing at randomisation, others
  started during follow-up; none depends on the arm.
- Deviations: scheduled ALSFRS-R visits missed (from ADQS), cycles with missed injections (from
  ADEX NDOSES < 5) and random deviations (``DEVIATIONS``) at rates multiplied by a site factor
  (Gamma, mean 1), so sites differ; never after death or the end of follow-up.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MONTH = 30.4375
NEVER = 10**6
NIV_BASE_PER_MONTH = 0.016        # NIV hazard per month at the median placebo slope, limb onset
NIV_SLOPE_POWER = 1.0
NIV_BULBAR = 1.2
P_PAV = 0.7                       # share of DTHTRV tracheostomy-or-PAV events that are PAV
P_PEG = 0.7
RILUZOLE_P_REDUCE, RILUZOLE_P_RESTORE, RILUZOLE_P_STOP = 0.10, 0.4, 0.04
CARE_CODES = {"NIV": "NON-INVASIVE VENTILATION", "PAV": "PERMANENT ASSISTED VENTILATION",
              "GASTRO": "GASTROSTOMY", "TRACH": "TRACHEOSTOMY", "RILUZOLE": "RILUZOLE",
              "MED": "(other concomitant medication)"}
PROCEDURE_CAT, MED_CAT = "ALS SUPPORTIVE PROCEDURE", "CONCOMITANT MEDICATION"
# (ATC level-2 code, class name, CMDECOD, CMTRT, P(ongoing at randomisation), new courses per
# subject-year, mean course length in days)
MEDS = [
    ("N02", "ANALGESICS", "PARACETAMOL", "Paracetamol 1 g", 0.20, 0.30, 30),
    ("M03", "MUSCLE RELAXANTS", "BACLOFEN", "Baclofen 10 mg", 0.15, 0.12, 200),
    ("N06", "PSYCHOANALEPTICS", "SERTRALINE", "Sertraline 50 mg", 0.12, 0.10, 200),
    ("A06", "DRUGS FOR CONSTIPATION", "MACROGOL", "Macrogol sachet", 0.10, 0.20, 60),
    ("A02", "DRUGS FOR ACID RELATED DISORDERS", "OMEPRAZOLE", "Omeprazole 20 mg", 0.12, 0.08, 120),
    ("N05", "PSYCHOLEPTICS", "ZOLPIDEM", "Zolpidem 10 mg", 0.08, 0.08, 90),
    ("A03", "DRUGS FOR FUNCTIONAL GASTROINTESTINAL DISORDERS", "GLYCOPYRRONIUM BROMIDE",
     "Glycopyrronium (sialorrhoea)", 0.05, 0.10, 200),
    ("P01", "ANTIPROTOZOALS", "QUININE", "Quinine sulfate (cramps)", 0.06, 0.05, 150),
    ("J01", "ANTIBACTERIALS FOR SYSTEMIC USE", "AMOXICILLIN", "Amoxicillin 1 g", 0.0, 0.15, 7),
    ("B01", "ANTITHROMBOTIC AGENTS", "ENOXAPARIN", "Enoxaparin 4000 IU", 0.03, 0.04, 40),
    ("C09", "AGENTS ACTING ON THE RENIN-ANGIOTENSIN SYSTEM", "RAMIPRIL", "Ramipril 5 mg", 0.15, 0.02, 400),
    ("A11", "VITAMINS", "COLECALCIFEROL", "Vitamin D3", 0.20, 0.08, 300),
]
# (DVCAT, DVDECOD, DVTERM, P(important), per subject-year; None: once at randomisation with that P)
DEVIATIONS = [
    ("VISIT SCHEDULE", "VISIT OUT OF WINDOW", "Visit done outside the +/- 14-day window", 0.0, 0.30),
    ("ASSESSMENT", "ASSESSMENT NOT DONE", "SVC or ALSFRS-R not assessed at a visit", 0.0, 0.10),
    ("LABORATORY", "SAMPLE NOT COLLECTED OR MISHANDLED", "Blood or CSF sample not collected or mishandled",
     0.0, 0.08),
    ("SAFETY REPORTING", "SAE REPORTED LATE", "SAE reported to the sponsor after 24 hours", 1.0, 0.03),
    ("CONCOMITANT MEDICATION", "PROHIBITED MEDICATION", "Prohibited immunomodulating medication taken",
     1.0, 0.015),
    ("ELIGIBILITY", "ELIGIBILITY CRITERION NOT MET", "Randomised without meeting an eligibility criterion",
     1.0, None, 0.02),
    ("INFORMED CONSENT", "CONSENT PROCESS DEVIATION", "Consent form version not up to date at a visit",
     1.0, None, 0.015),
]
ADCM_COLUMNS = ["USUBJID", "CMSEQ", "CMTRT", "CMDECOD", "CMCAT", "CMSCAT", "CARECD", "CMCLAS", "CMCLASCD",
                "CMDOSE", "CMDOSU", "CMDOSFRQ", "CMDOSTOT", "ASTDT", "AENDT", "ASTDY"]
ADDV_COLUMNS = ["USUBJID", "SITEID", "DVSEQ", "DVTERM", "DVDECOD", "DVCAT", "DVIMPFL", "ASTDT", "ASTDY",
                "ENTDT"]


def care_rng(seed: int) -> np.random.Generator:
    """The generator of the care datasets: seeded from the trial's seed, apart from the main one."""
    return np.random.default_rng(np.random.SeedSequence([abs(int(seed)), 14, int(int(seed) < 0)]))


def _dates(days) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(days, dtype="int64"), unit="D"))


def niv_rates(sub: pd.DataFrame, median_slope: float) -> np.ndarray:
    """NIV hazard per day of each subject (before PAV, which starts NIV too)."""
    rel = np.maximum(sub["slope"].to_numpy(float), 1e-6) / median_slope
    bulbar = np.where(sub["ONSET"].to_numpy() == "Bulbar", NIV_BULBAR, 1.0)
    return NIV_BASE_PER_MONTH / MONTH * rel ** NIV_SLOPE_POWER * bulbar


def niv_km_limit(sub: pd.DataFrame, median_slope: float, days=(180, 365, 640)) -> dict[int, float]:
    """What the Kaplan-Meier estimate of NIV-free survival (death, tracheostomy, withdrawal and
    day 640 censoring) converges to for these subjects: exp(-int_0^t sum_i l_i e^(-L_i s) /
    sum_i e^(-L_i s) ds), l_i = NIV hazard + P_PAV x trach/PAV hazard, L_i = l_i + death +
    tracheostomy hazards (withdrawal is the same for everyone and cancels)."""
    tr = 0.25 * sub["hazard"].to_numpy(float)
    lam = niv_rates(sub, median_slope) + P_PAV * tr
    tot = niv_rates(sub, median_slope) + sub["hazard"].to_numpy(float) + tr
    grid = np.unique(np.r_[np.arange(0, max(days) + 1, 4), list(days)]).astype(float)
    h = np.array([float((lam * np.exp(-tot * t)).sum() / np.exp(-tot * t).sum()) for t in grid])
    cum = np.r_[0.0, np.cumsum((h[1:] + h[:-1]) / 2 * np.diff(grid))]
    out = {int(t): float(np.exp(-c)) for t, c in zip(grid, cum) if int(t) in days}
    return out


def build_care(sub: pd.DataFrame, adqs: pd.DataFrame, adex: pd.DataFrame, rng: np.random.Generator,
               median_slope: float, visit_days) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(adcm, addv) for the subjects of ``sub`` (see the module docstring); ``visit_days`` is the
    study's ALSFRS-R schedule (days from randomisation, AVISITN = position + 1)."""
    # the two ADQS parameters used (one pass over the large ADQS)
    q = adqs.loc[adqs["PARAMCD"].isin(["ALSFRST", "ALSFR05B"]), ["USUBJID", "PARAMCD", "AVISITN", "ADY"]]
    return _adcm(sub, q, rng, median_slope), _addv(sub, q, adex, rng, visit_days)


def _procedures(sub, adqs, rng, median_slope) -> pd.DataFrame:
    n = len(sub)
    death, fu_end, trach = (sub[c].to_numpy() for c in ("death_d", "fu_end", "trach_d"))
    niv_lat = np.minimum(np.ceil(rng.exponential(1.0, n) / niv_rates(sub, median_slope)), NEVER).astype(int)
    tv_event = (trach < death) & (trach <= fu_end)
    pav = tv_event & (rng.random(n) < P_PAV)
    trach_only = np.where(tv_event & ~pav, trach, NEVER)
    niv = np.minimum(niv_lat, np.where(pav, trach, NEVER))
    niv_rec = (niv < death) & (niv <= fu_end) & (niv < trach_only)
    rows = [pd.DataFrame({"i": np.flatnonzero(niv_rec), "day": niv[niv_rec], "CARECD": "NIV",
                          "CMTRT": "Non-invasive ventilation (BiPAP)"}),
            pd.DataFrame({"i": np.flatnonzero(pav), "day": trach[pav], "CARECD": "PAV",
                          "CMTRT": "NIV 22 hours or more per day"}),
            pd.DataFrame({"i": np.flatnonzero(trach_only < NEVER), "day": trach_only[trach_only < NEVER],
                          "CARECD": "TRACH", "CMTRT": "Tracheostomy (invasive ventilation)"})]
    # gastrostomy: between the last assessment with item 5a and the first with 5b
    first_b = adqs.loc[adqs["PARAMCD"] == "ALSFR05B"].groupby("USUBJID", sort=True)["ADY"].min()
    if len(first_b):
        visits = adqs.loc[(adqs["PARAMCD"] == "ALSFRST") & adqs["USUBJID"].isin(first_b.index), ["USUBJID", "ADY"]]
        visits = visits[visits["ADY"].to_numpy() < visits["USUBJID"].map(first_b).to_numpy()]
        prev = visits.groupby("USUBJID", sort=True)["ADY"].max().reindex(first_b.index).fillna(0).to_numpy()
        fb = first_b.to_numpy()
        gday = (prev + 1 + np.floor(rng.random(len(fb)) * (fb - prev))).astype(int)
        pos = pd.Series(np.arange(n), index=sub["USUBJID"].to_numpy())
        peg = rng.random(len(fb)) < P_PEG
        rows.append(pd.DataFrame({"i": pos.loc[first_b.index].to_numpy(), "day": gday, "CARECD": "GASTRO",
                                  "CMTRT": np.where(peg, "Percutaneous endoscopic gastrostomy (PEG)",
                                                    "Radiologically inserted gastrostomy (RIG)")}))
    proc = pd.concat(rows, ignore_index=True)
    proc["CMDECOD"] = proc["CARECD"].map(CARE_CODES)
    proc["CMCAT"], proc["end"] = PROCEDURE_CAT, np.nan
    return proc


def _riluzole(sub, rng) -> pd.DataFrame:
    n = len(sub)
    stop, death, died = sub["stop_t"].to_numpy(), sub["death_d"].to_numpy(), sub["died"].to_numpy()
    span = np.maximum(stop, 2)
    t_red = np.where(rng.random(n) < RILUZOLE_P_REDUCE, 1 + (rng.random(n) * (span - 1)).astype(int), NEVER)
    t_res = np.where((t_red < NEVER) & (rng.random(n) < RILUZOLE_P_RESTORE),
                     t_red + rng.integers(14, 121, n), NEVER)
    t_res = np.where(t_res <= stop, t_res, NEVER)
    t_stop = np.where((t_red == NEVER) & (rng.random(n) < RILUZOLE_P_STOP),
                      1 + (rng.random(n) * (span - 1)).astype(int), NEVER)
    last_end = np.where(t_stop < NEVER, t_stop, np.where(died, death, np.nan))   # ongoing: no end date
    start = sub["runin_day"].to_numpy()
    i = np.arange(n)
    red, res = t_red < NEVER, t_res < NEVER
    frames = [
        pd.DataFrame({"i": i, "day": start, "end": np.where(red, t_red - 1, last_end), "CMDOSFRQ": "BID"}),
        pd.DataFrame({"i": i[red], "day": t_red[red], "end": np.where(res, t_res - 1, last_end)[red],
                      "CMDOSFRQ": "QD"}),
        pd.DataFrame({"i": i[res], "day": t_res[res], "end": last_end[res], "CMDOSFRQ": "BID"})]
    ril = pd.concat(frames, ignore_index=True)
    ril["CMDOSE"] = 50.0
    ril["CMDOSTOT"] = np.where(ril["CMDOSFRQ"] == "BID", 100.0, 50.0)
    ril["CMDOSU"] = "mg"
    ril["CMTRT"], ril["CMDECOD"], ril["CARECD"], ril["CMCAT"] = "Rilutek 50 mg", "RILUZOLE", "RILUZOLE", MED_CAT
    ril["CMSCAT"] = "BACKGROUND THERAPY (RILUZOLE)"
    ril["CMCLAS"], ril["CMCLASCD"] = "OTHER NERVOUS SYSTEM DRUGS", "N07"
    return ril


def _meds(sub, rng) -> pd.DataFrame:
    n = len(sub)
    stop = np.maximum(sub["stop_t"].to_numpy(), 1)
    bulbar = sub["ONSET"].to_numpy() == "Bulbar"
    frames = []
    for code, cls, decod, verbatim, p0, rate, mean_len in MEDS:
        mult = np.where(bulbar, 3.0, 1.0) if code == "A03" else 1.0
        base = np.flatnonzero(rng.random(n) < p0)
        k = rng.poisson(rate * mult * stop / 365.25)
        new = np.repeat(np.arange(n), k)
        i = np.concatenate([base, new])
        day = np.concatenate([-rng.integers(30, 700, len(base)),
                              1 + (rng.random(len(new)) * stop[new]).astype(int)])
        length = np.ceil(rng.exponential(mean_len, len(i)) + (7 if code == "J01" else 0)).astype(int)
        end = (day + length).astype(float)
        end[end > sub["stop_t"].to_numpy()[i]] = np.nan           # still taken at the end of follow-up
        frames.append(pd.DataFrame({"i": i, "day": day, "end": end, "CMTRT": verbatim, "CMDECOD": decod,
                                    "CMCLAS": cls, "CMCLASCD": code}))
    meds = pd.concat(frames, ignore_index=True)
    meds["CARECD"], meds["CMCAT"], meds["CMSCAT"] = "MED", MED_CAT, "OTHER"
    return meds


def _adcm(sub, adqs, rng, median_slope) -> pd.DataFrame:
    cm = pd.concat([_procedures(sub, adqs, rng, median_slope), _riluzole(sub, rng), _meds(sub, rng)],
                   ignore_index=True)
    rand = sub["rand_day"].to_numpy()[cm["i"].to_numpy()]
    cm["USUBJID"] = sub["USUBJID"].to_numpy()[cm["i"].to_numpy()]
    cm["ASTDY"] = cm["day"].astype(int)
    cm["ASTDT"] = _dates(rand + cm["day"].to_numpy()).to_numpy()
    end = cm["end"].to_numpy(float)
    cm["AENDT"] = _dates(rand + np.nan_to_num(end)).where(~np.isnan(end)).to_numpy()
    cm = cm.sort_values(["USUBJID", "ASTDY", "CARECD", "CMDECOD"], kind="stable").reset_index(drop=True)
    cm["CMSEQ"] = cm.groupby("USUBJID").cumcount() + 1
    for col in ADCM_COLUMNS:
        if col not in cm:
            cm[col] = None
    return cm[ADCM_COLUMNS]


def _addv(sub, adqs, adex, rng, visit_days) -> pd.DataFrame:
    n = len(sub)
    stop = np.maximum(sub["stop_t"].to_numpy(), 1)
    pos = pd.Series(np.arange(n), index=sub["USUBJID"].to_numpy())
    sites, site_idx = np.unique(sub["SITEID"].to_numpy(), return_inverse=True)
    frailty = rng.gamma(2.0, 0.5, len(sites))[site_idx]
    frames = []
    # scheduled ALSFRS-R visits missed while the subject was followed (visits fall within 7 days)
    tot = adqs[(adqs["PARAMCD"] == "ALSFRST") & adqs["USUBJID"].isin(pos.index)]
    vdays = np.asarray(visit_days)
    done = np.zeros((n, len(vdays) + 1), dtype=bool)
    done[pos.loc[tot["USUBJID"]].to_numpy(), np.clip(tot["AVISITN"].to_numpy(int), 0, len(vdays))] = True
    due = (vdays[None, :] + 7 <= sub["stop_t"].to_numpy()[:, None]) & (vdays[None, :] > 0)
    mi, mv = np.nonzero(due & ~done[:, 1:])
    frames.append(pd.DataFrame({"i": mi, "day": vdays[mv], "DVCAT": "VISIT SCHEDULE", "DVDECOD": "MISSED VISIT",
                                "DVTERM": [f"Scheduled visit (day {d}) not done" for d in vdays[mv]], "imp": 0.0}))
    # cycles with missed injections
    short = adex[adex["NDOSES"] < 5]
    short = short[short["USUBJID"].isin(pos.index)]
    cyc_day = (short["ASTDT"].to_numpy("datetime64[D]").astype(int)
               - sub["rand_day"].to_numpy()[pos.loc[short["USUBJID"]].to_numpy()])
    frames.append(pd.DataFrame({"i": pos.loc[short["USUBJID"]].to_numpy(), "day": cyc_day,
                                "DVCAT": "STUDY TREATMENT", "DVDECOD": "INJECTIONS MISSED IN A CYCLE",
                                "DVTERM": [f"Cycle {c}: {d} of 5 injections given" for c, d in
                                           zip(short["CYCLE"], short["NDOSES"])],
                                "imp": np.where(short["NDOSES"].to_numpy() == 0, 1.0, 0.0)}))
    for cat, decod, term, p_imp, rate, *once in DEVIATIONS:
        if rate is None:
            i = np.flatnonzero(rng.random(n) < once[0] * frailty)
            day = np.zeros(len(i), dtype=int)
        else:
            i = np.repeat(np.arange(n), rng.poisson(rate * frailty * stop / 365.25))
            day = 1 + (rng.random(len(i)) * stop[i]).astype(int)
        frames.append(pd.DataFrame({"i": i, "day": day, "DVCAT": cat, "DVDECOD": decod, "DVTERM": term,
                                    "imp": p_imp}))
    dv = pd.concat(frames, ignore_index=True)
    dv = dv[dv["day"].to_numpy() <= sub["stop_t"].to_numpy()[dv["i"].to_numpy()]]
    dv = dv.drop_duplicates(["i", "day", "DVDECOD", "DVTERM"])      # one deviation of a kind a day
    rand = sub["rand_day"].to_numpy()[dv["i"].to_numpy()]
    dv = dv.assign(USUBJID=sub["USUBJID"].to_numpy()[dv["i"].to_numpy()],
                   SITEID=sub["SITEID"].to_numpy()[dv["i"].to_numpy()],
                   DVIMPFL=np.where(rng.random(len(dv)) < dv["imp"].to_numpy(), "Y", "N"),
                   ASTDY=dv["day"].astype(int), ASTDT=_dates(rand + dv["day"].to_numpy()).to_numpy(),
                   ENTDT=_dates(rand + dv["day"].to_numpy() + rng.integers(1, 21, len(dv))).to_numpy())
    dv = dv.sort_values(["USUBJID", "ASTDY", "DVCAT", "DVDECOD"], kind="stable").reset_index(drop=True)
    dv["DVSEQ"] = dv.groupby("USUBJID").cumcount() + 1
    return dv[ADDV_COLUMNS]
