"""Dataset builders for the simulator: ALSFRS-R items (adqs), labs and SVC (adlb, adresp),
exposure (adex) and adverse events (adae).

Every builder takes the per-subject frame made by ``data_access.simulate`` (columns USUBJID,
ONSET, rand_day, stop_t = last study day with assessments, death_d = day of death (large when
alive), died, il2, high, slope, base_loss, svc, pnfh) and the seeded generator.
``plant_problems`` (``--messy``) lives in ``data_access.simulate_messy`` and is re-exported here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data_access.simulate_messy import plant_problems  # noqa: F401  (re-export for data_access.demo)

ITEM_CODES = ["ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFR05A", "ALSFRS06", "ALSFRS07",
              "ALSFRS08", "ALSFRS09", "ALSFRS10", "ALSFRS11", "ALSFRS12"]
ITEM_NAMES = ["1 Speech", "2 Salivation", "3 Swallowing", "4 Handwriting", "5a Cutting food (no gastrostomy)",
              "6 Dressing and hygiene", "7 Turning in bed", "8 Walking", "9 Climbing stairs", "10 Dyspnoea",
              "11 Orthopnoea", "12 Respiratory insufficiency"]
DOMAINS = {"BULBAR": [0, 1, 2], "FINEMOT": [3, 4, 5], "GROSSMOT": [6, 7, 8], "RESP": [9, 10, 11]}
DOMAIN_NAMES = {"BULBAR": "bulbar domain (1-3)", "FINEMOT": "fine motor domain (4-6)",
                "GROSSMOT": "gross motor domain (7-9)", "RESP": "respiratory domain (10-12)"}
# order in which items start to decline (lower = earlier), by site of onset
PRIORITY = {"Bulbar": np.array([0, 2, 1, 5, 6, 7, 9, 8, 10, 4, 11, 3], dtype=float),
            "Limb": np.array([7, 9, 8, 0, 1, 2, 5, 3, 4, 6, 11, 10], dtype=float)}
MONTH = 30.4375


def _dates(days) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(days, dtype="int64"), unit="D"))


def build_adqs(sub: pd.DataFrame, study, rng) -> tuple[pd.DataFrame, np.ndarray]:
    """ALSFRS-R items, domains and total at each scheduled visit before death/withdrawal.

    Latent loss x(t) = base_loss + slope * months; item j loses 4*clip((x - 4*rank_j)/8, 0, 1)
    points (two items declining at a time, so the total falls about one point per unit of x).
    Items never improve. Visits fall within +/- 7 days of the schedule (the last one not after
    day 640); 7% of post-baseline visits are missed. Item 5b replaces 5a from the first visit at
    which swallowing (item 3) is <= 1 (gastrostomy; never at baseline) and has no BASE/CHG, since
    its baseline was scored as 5a. Returns (adqs, baseline totals per subject)."""
    n = len(sub)
    vdays = np.array(study.visit_days)
    vnames = np.array(study.visit_names)
    nv = len(vdays)
    jitter = np.where(vdays == 0, 0, rng.integers(-7, 8, (n, nv)))
    jitter[:, -1] = -np.abs(jitter[:, -1])                          # last visit by the end of follow-up
    day = vdays[None, :] + jitter
    present = (day <= sub["stop_t"].to_numpy()[:, None]) | (vdays[None, :] == 0)
    present &= (rng.random((n, nv)) > 0.07) | (vdays[None, :] == 0)
    prio = np.stack([PRIORITY[o] for o in sub["ONSET"]]) + rng.normal(0, 1.2, (n, 12))
    rank = np.argsort(np.argsort(prio, axis=1), axis=1)
    x = sub["base_loss"].to_numpy()[:, None] + sub["slope"].to_numpy()[:, None] * day / MONTH
    loss = 4 * np.clip((x[:, :, None] - 4 * rank[:, None, :]) / 8, 0, 1)
    scores = np.clip(np.round(4 - loss + rng.normal(0, 0.25, loss.shape)), 0, 4).astype(int)
    # items never improve: running minimum over visits
    scores = np.minimum.accumulate(scores, axis=1)
    gastro = scores[:, :, 2] <= 1                                   # swallowing lost -> 5b used
    gastro[:, 0] = False                                            # gastrostomy excludes at entry
    gastro = np.logical_or.accumulate(gastro, axis=1)
    total = scores.sum(axis=2)
    bl_total = total[:, 0]
    # long format, built directly in (USUBJID, visit, parameter) order with integer indexing
    perm = np.argsort(sub["USUBJID"].to_numpy().astype(str), kind="stable")
    s_sorted, v_idx = np.nonzero(present[perm])
    s_idx = perm[s_sorted]
    doms = np.stack([scores[:, :, idx].sum(axis=2) for idx in DOMAINS.values()], axis=2)
    vals = np.concatenate([scores, doms, total[:, :, None]], axis=2)          # n x visits x 17
    n_par = vals.shape[2]
    rs, rv = np.repeat(s_idx, n_par), np.repeat(v_idx, n_par)
    rp = np.tile(np.arange(n_par), len(s_idx))
    codes = np.array(ITEM_CODES + list(DOMAINS) + ["ALSFRST"], dtype=object)
    names = np.array([f"ALSFRS-R {x}" for x in ITEM_NAMES] + [f"ALSFRS-R {DOMAIN_NAMES[d]}" for d in DOMAINS]
                     + ["ALSFRS-R total"], dtype=object)
    is5b = (rp == ITEM_CODES.index("ALSFR05A")) & gastro[rs, rv]
    paramcd, param = codes[rp], names[rp]
    paramcd[is5b], param[is5b] = "ALSFR05B", "ALSFRS-R 5b Cutting food (gastrostomy)"
    aval = vals[rs, rv, rp].astype(float)
    base = vals[rs, 0, rp].astype(float)
    base[is5b] = np.nan                                             # 5b has no baseline (5a then)
    ady = day[rs, rv]
    adt = sub["rand_day"].to_numpy()[rs] + ady
    entry_lag = np.repeat(rng.integers(1, 11, len(s_idx)), n_par)  # a visit's form is entered at once
    q = pd.DataFrame({
        "USUBJID": sub["USUBJID"].to_numpy()[rs], "PARAMCD": paramcd, "PARAM": param,
        "AVISIT": vnames.astype(object)[rv], "AVISITN": rv + 1, "ADT": _dates(adt), "ADY": ady.astype(int),
        "AVAL": aval, "BASE": base, "CHG": aval - base, "ABLFL": np.where(rv == 0, "Y", None),
        "ENTDT": _dates(adt + entry_lag)})
    return q, bl_total


LAB_VISITS = (0, 28, 56, 84, 168, 336, 504)


def build_adlb_adresp(sub: pd.DataFrame, study, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tregs (rising on IL-2), eosinophils, baseline CSF-pNfH; SVC % predicted over time."""
    n = len(sub)
    vdays = np.array(LAB_VISITS)
    names = dict(zip(study.visit_days, study.visit_names))
    vnum = {d: i + 1 for i, d in enumerate(study.visit_days)}
    present = (vdays[None, :] <= sub["stop_t"].to_numpy()[:, None]) | (vdays[None, :] == 0)
    s_idx, v_idx = np.nonzero(present)
    il2 = sub["il2"].to_numpy()[s_idx]
    post = vdays[v_idx] > 0
    tpct0 = np.clip(rng.normal(5.5, 1.2, n), 2, 10)
    tpct = tpct0[s_idx] * np.where(il2 & post, rng.normal(1.75, 0.2, len(s_idx)), rng.normal(1.0, 0.08, len(s_idx)))
    cd4 = np.clip(rng.normal(800, 200, n), 300, 1500)[s_idx]
    eos0 = np.exp(rng.normal(np.log(0.15), 0.4, n))
    eos = eos0[s_idx] * np.where(il2 & post, rng.normal(1.5, 0.2, len(s_idx)), rng.normal(1.0, 0.1, len(s_idx)))
    svc = sub["svc"].to_numpy()[s_idx] - 1.6 * sub["slope"].to_numpy()[s_idx] * vdays[v_idx] / MONTH \
        + rng.normal(0, 3, len(s_idx))
    rand = sub["rand_day"].to_numpy()[s_idx]
    srank = np.empty(n, dtype=int)
    srank[np.argsort(sub["USUBJID"].to_numpy().astype(str), kind="stable")] = np.arange(n)
    common = {"_r": srank[s_idx], "USUBJID": sub["USUBJID"].to_numpy()[s_idx],
              "AVISIT": np.array([names[d] for d in vdays], dtype=object)[v_idx],
              "AVISITN": np.array([vnum[d] for d in vdays])[v_idx], "ADT": _dates(rand + vdays[v_idx]).to_numpy(),
              "ADY": vdays[v_idx]}
    lab = [("TREG", "Regulatory T cells (count)", np.round(cd4 * tpct / 100, 1), "cells/uL"),
           ("TREGPCT", "Regulatory T cells (% of CD4)", np.round(tpct, 2), "%"),
           ("EOS", "Eosinophils", np.round(eos, 3), "10^9/L")]
    frames = [pd.DataFrame({**common, "PARAMCD": c, "PARAM": p, "AVAL": v, "AVALU": u}) for c, p, v, u in lab]
    bl = v_idx == 0
    frames.append(pd.DataFrame({k: (np.asarray(v)[bl]) for k, v in common.items()}).assign(
        PARAMCD="CSFPNFH", PARAM="CSF phosphorylated neurofilament heavy chain",
        AVAL=sub["pnfh"].to_numpy()[s_idx][bl], AVALU="pg/mL"))
    adlb = _bds(pd.concat(frames, ignore_index=True))
    adresp = _bds(pd.DataFrame({**common, "PARAMCD": "SVCPCT", "PARAM": "Slow vital capacity (% predicted)",
                                "AVAL": np.round(np.clip(svc, 10, 150), 1), "AVALU": "%"}))
    return adlb, adresp


def _bds(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by USUBJID (via the integer rank ``_r``), PARAMCD, AVISITN; add BASE (the visit-1
    value), CHG and ABLFL."""
    pcode = pd.factorize(df["PARAMCD"], sort=True)[0]
    order = np.lexsort((df["AVISITN"].to_numpy(), pcode, df["_r"].to_numpy()))
    df = df.iloc[order].reset_index(drop=True)
    df["AVAL"] = df["AVAL"].astype(float)
    key = df["_r"].to_numpy() * 64 + pcode[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    first = np.repeat(start, np.diff(np.r_[start, len(df)]))          # first row of each group
    aval = df["AVAL"].to_numpy()
    df["BASE"] = np.where(df["AVISITN"].to_numpy()[first] == 1, aval[first], np.nan)
    df["CHG"] = df["AVAL"] - df["BASE"]
    df["ABLFL"] = np.where(df["AVISITN"] == 1, "Y", None)
    return df[["USUBJID", "PARAMCD", "PARAM", "AVISIT", "AVISITN", "ADT", "ADY", "AVAL", "BASE", "CHG",
               "ABLFL", "AVALU"]]


def build_adex(sub: pd.DataFrame, rng) -> pd.DataFrame:
    """One row per treatment cycle (every 28 days, up to 19) started before death/withdrawal;
    5 daily injections per cycle, fewer when a dose is missed or follow-up stops mid-cycle."""
    cycles = np.arange(19)
    start = cycles[None, :] * 28
    on = start <= sub["stop_t"].to_numpy()[:, None]
    s_idx, c_idx = np.nonzero(on)
    rand = sub["rand_day"].to_numpy()[s_idx]
    nd = np.where(rng.random(len(s_idx)) < 0.05, rng.integers(0, 5, len(s_idx)), 5)
    nd = np.minimum(nd, sub["stop_t"].to_numpy()[s_idx] - start[0, c_idx] + 1)
    return pd.DataFrame({"USUBJID": sub["USUBJID"].to_numpy()[s_idx], "CYCLE": c_idx + 1,
                         "ASTDT": _dates(rand + start[0, c_idx]).to_numpy(),
                         "AENDT": _dates(rand + start[0, c_idx] + 4).to_numpy(), "NDOSES": nd,
                         "EXDOSE": 2.0})



# why doses of a cycle were not given (not all 5): its own generator (``simulate``), so no other
# dataset changes; the same shares in both arms (nothing here reads the arm)
INTERRUPTION_REASONS = (("ADVERSE EVENT", 0.35), ("INTERCURRENT ILLNESS", 0.20), ("PARTICIPANT DECISION", 0.20),
                        ("HOSPITALISATION", 0.10), ("MISSED APPOINTMENT", 0.15))


def interruption_reasons(adex: pd.DataFrame, sub: pd.DataFrame, rng) -> np.ndarray:
    """EXADJ for each adex row: null for a complete cycle (5 doses); DEATH or WITHDRAWAL when follow-up
    ended during the cycle; else one of ``INTERRUPTION_REASONS``."""
    s = sub.set_index("USUBJID")
    start = (adex["CYCLE"].to_numpy() - 1) * 28
    stop = adex["USUBJID"].map(s["stop_t"]).to_numpy()
    died = adex["USUBJID"].map(s["died"]).to_numpy().astype(bool)
    names = np.array([r for r, _ in INTERRUPTION_REASONS], dtype=object)
    drawn = names[rng.choice(len(names), len(adex), p=[p for _, p in INTERRUPTION_REASONS])]
    cut_short = start + 4 > stop
    reason = np.where(cut_short, np.where(died, "DEATH", "WITHDRAWAL"), drawn).astype(object)
    reason[adex["NDOSES"].to_numpy() >= 5] = None
    return reason

# (SOC, PT, events per subject-year on placebo, multiplier on IL-2, P(serious), relatedness)
AE_TERMS = [
    ("General disorders and administration site conditions", "Injection site reaction", 0.6, 6.0, 0.0, 0.9),
    ("General disorders and administration site conditions", "Influenza like illness", 0.2, 4.0, 0.0, 0.7),
    ("General disorders and administration site conditions", "Fatigue", 0.5, 1.3, 0.0, 0.3),
    ("Nervous system disorders", "Headache", 0.35, 1.2, 0.0, 0.3),
    ("Gastrointestinal disorders", "Nausea", 0.3, 1.1, 0.0, 0.3),
    ("Gastrointestinal disorders", "Constipation", 0.3, 1.0, 0.0, 0.1),
    ("Gastrointestinal disorders", "Dysphagia", 0.25, 1.0, 0.1, 0.0),
    ("Injury, poisoning and procedural complications", "Fall", 0.45, 1.0, 0.1, 0.0),
    ("Infections and infestations", "Nasopharyngitis", 0.3, 1.0, 0.0, 0.0),
    ("Infections and infestations", "Pneumonia", 0.06, 1.0, 1.0, 0.0),
    ("Blood and lymphatic system disorders", "Eosinophilia", 0.03, 3.0, 0.0, 0.8),
    ("Investigations", "Alanine aminotransferase increased", 0.12, 1.0, 0.0, 0.2),
    ("Musculoskeletal and connective tissue disorders", "Muscle spasms", 0.3, 1.0, 0.0, 0.0),
]
FATAL_TERMS = [("Respiratory, thoracic and mediastinal disorders", "Respiratory failure", 0.7),
               ("Respiratory, thoracic and mediastinal disorders", "Pneumonia aspiration", 0.15),
               ("Nervous system disorders", "Amyotrophic lateral sclerosis", 0.15)]


def build_adae(sub: pd.DataFrame, rng) -> pd.DataFrame:
    """Adverse events: Poisson counts per term over follow-up (rates in ``AE_TERMS``, higher on
    IL-2 for injection-site reactions and flu-like illness), plus one fatal event per death
    (AEOUT FATAL, AESDTH Y, ending on the day of death). An event still going on at the end of
    follow-up has no end date (AEOUT NOT RECOVERED or RECOVERING)."""
    years = np.maximum(sub["stop_t"].to_numpy(), 1) / 365.25
    il2 = sub["il2"].to_numpy()
    frames = []
    for soc, pt, rate, mult, p_ser, p_rel in AE_TERMS:
        k = rng.poisson(rate * np.where(il2, mult, 1.0) * years)
        idx = np.repeat(np.arange(len(sub)), k)
        day = (rng.random(len(idx)) * np.maximum(sub["stop_t"].to_numpy()[idx], 1)).astype(int) + 1
        ser = rng.random(len(idx)) < p_ser
        frames.append(pd.DataFrame({
            "i": idx, "ASTDY": day, "AEDECOD": pt, "AEBODSYS": soc, "AESER": np.where(ser, "Y", "N"),
            "AESEV": np.where(ser, "SEVERE", rng.choice(["MILD", "MODERATE", "SEVERE"], len(idx), p=[0.6, 0.32, 0.08])),
            "AEREL": np.where(rng.random(len(idx)) < p_rel, "RELATED", "NOT RELATED"),
            "dur": rng.integers(1, 30, len(idx)), "fatal": False}))
    dead = np.nonzero(sub["died"].to_numpy())[0]
    choice = rng.choice(len(FATAL_TERMS), len(dead), p=[t[2] for t in FATAL_TERMS])
    frames.append(pd.DataFrame({
        "i": dead, "ASTDY": np.maximum(sub["death_d"].to_numpy()[dead] - rng.integers(0, 10, len(dead)), 1),
        "AEDECOD": [FATAL_TERMS[c][1] for c in choice], "AEBODSYS": [FATAL_TERMS[c][0] for c in choice],
        "AESER": "Y", "AESEV": "SEVERE", "AEREL": "NOT RELATED", "dur": 0, "fatal": True}))
    # two events of one term starting the same day are one event (and would look duplicated)
    ae = pd.concat(frames, ignore_index=True).drop_duplicates(["i", "AEDECOD", "ASTDY"]).reset_index(drop=True)
    rand = sub["rand_day"].to_numpy()[ae["i"]]
    stop = np.maximum(sub["stop_t"].to_numpy()[ae["i"]], 1)
    end_day = np.where(ae["fatal"], sub["death_d"].to_numpy()[ae["i"]], ae["ASTDY"] + ae["dur"])
    ae["USUBJID"] = sub["USUBJID"].to_numpy()[ae["i"]]
    ae["AETERM"] = ae["AEDECOD"].str.lower()
    ae["ASTDT"] = _dates(rand + ae["ASTDY"]).to_numpy()
    recovered = ae["fatal"].to_numpy() | (ae["ASTDY"] + ae["dur"] <= stop).to_numpy()
    ae["AENDT"] = _dates(rand + end_day).where(recovered).to_numpy()
    ongoing = np.where(rng.random(len(ae)) < 0.4, "RECOVERING", "NOT RECOVERED")
    ae["AEOUT"] = np.where(ae["fatal"], "FATAL", np.where(recovered, "RECOVERED", ongoing))
    ae["AESDTH"] = np.where(ae["fatal"], "Y", "N")
    ae["TRTEMFL"] = "Y"
    ae["ENTDT"] = _dates(rand + ae["ASTDY"] + rng.integers(1, 15, len(ae))).to_numpy()
    ae = ae.sort_values(["USUBJID", "ASTDY", "AEDECOD"], kind="stable").reset_index(drop=True)
    ae["AESEQ"] = ae.groupby("USUBJID").cumcount() + 1
    return ae[["USUBJID", "AESEQ", "AETERM", "AEDECOD", "AEBODSYS", "ASTDT", "AENDT", "ASTDY", "AESER",
               "AESEV", "AEREL", "AEOUT", "AESDTH", "TRTEMFL", "ENTDT"]]
