"""Dataset builders for the simulator (ALSFRS-R items, screening log, labs, exposure, AEs) and
the planting of realistic data problems for ``--messy``."""
from __future__ import annotations

import numpy as np
import pandas as pd

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
    points (two items declining at a time, so the total falls about one point per unit of x)."""
    n = len(sub)
    vdays = np.array(study.visit_days)
    vnames = np.array(study.visit_names)
    nv = len(vdays)
    jitter = np.where(vdays == 0, 0, rng.integers(-7, 8, (n, nv)))
    day = vdays[None, :] + jitter
    present = (day < sub["stop_t"].to_numpy()[:, None]) | (vdays[None, :] == 0)
    present &= (rng.random((n, nv)) > 0.07) | (vdays[None, :] == 0)
    prio = np.stack([PRIORITY[o] for o in sub["ONSET"]]) + rng.normal(0, 1.2, (n, 12))
    rank = np.argsort(np.argsort(prio, axis=1), axis=1)
    x = sub["base_loss"].to_numpy()[:, None] + sub["slope"].to_numpy()[:, None] * day / MONTH
    loss = 4 * np.clip((x[:, :, None] - 4 * rank[:, None, :]) / 8, 0, 1)
    scores = np.clip(np.round(4 - loss + rng.normal(0, 0.25, loss.shape)), 0, 4).astype(int)
    # items never improve: running minimum over visits
    scores = np.minimum.accumulate(scores, axis=1)
    gastro = scores[:, :, 2] <= 1                                   # swallowing lost -> 5b used
    total = scores.sum(axis=2)
    bl_total = total[:, 0]
    s_idx, v_idx = np.nonzero(present)
    rand = sub["rand_day"].to_numpy()
    adt = rand[s_idx] + day[s_idx, v_idx]
    base = {"USUBJID": sub["USUBJID"].to_numpy()[s_idx], "AVISIT": vnames[v_idx], "AVISITN": v_idx + 1,
            "ADY": day[s_idx, v_idx], "adt": adt}
    frames = []
    for j, code in enumerate(ITEM_CODES):
        aval = scores[s_idx, v_idx, j]
        code_j = np.where(gastro[s_idx, v_idx], "ALSFR05B", code) if code == "ALSFR05A" else code
        name = np.where(gastro[s_idx, v_idx], "ALSFRS-R 5b Cutting food (gastrostomy)",
                        f"ALSFRS-R {ITEM_NAMES[j]}") if code == "ALSFR05A" else f"ALSFRS-R {ITEM_NAMES[j]}"
        frames.append(pd.DataFrame({**base, "PARAMCD": code_j, "PARAM": name, "AVAL": aval,
                                    "BASE": scores[s_idx, 0, j], "ord": j}))
    for k, (code, idx) in enumerate(DOMAINS.items()):
        dom = scores[:, :, idx].sum(axis=2)
        frames.append(pd.DataFrame({**base, "PARAMCD": code, "PARAM": f"ALSFRS-R {DOMAIN_NAMES[code]}",
                                    "AVAL": dom[s_idx, v_idx], "BASE": dom[s_idx, 0], "ord": 12 + k}))
    frames.append(pd.DataFrame({**base, "PARAMCD": "ALSFRST", "PARAM": "ALSFRS-R total",
                                "AVAL": total[s_idx, v_idx], "BASE": bl_total[s_idx], "ord": 16}))
    q = pd.concat(frames, ignore_index=True).sort_values(["USUBJID", "AVISITN", "ord"], kind="stable")
    q["AVAL"] = q["AVAL"].astype(float)
    q["BASE"] = q["BASE"].astype(float)
    q["CHG"] = q["AVAL"] - q["BASE"]
    q["ABLFL"] = np.where(q["AVISITN"] == 1, "Y", None)
    q["ADT"] = _dates(q["adt"].to_numpy()).to_numpy()
    q["ENTDT"] = _dates(q["adt"].to_numpy() + rng.integers(1, 11, len(q))).to_numpy()
    q["ADY"] = q["ADY"].astype(int)
    cols = ["USUBJID", "PARAMCD", "PARAM", "AVISIT", "AVISITN", "ADT", "ADY", "AVAL", "BASE", "CHG",
            "ABLFL", "ENTDT"]
    return q[cols].reset_index(drop=True), bl_total


SF_REASONS = ["SVC < 70% predicted", "Disease duration > 24 months", "Declined lumbar puncture",
              "Age out of range", "Other neurological or auto-immune disease", "Withdrew consent", "Other"]
SF_P = [0.2, 0.2, 0.15, 0.05, 0.15, 0.15, 0.1]
RI_REASONS = ["Withdrew consent", "Riluzole intolerance", "Rapid deterioration", "Lost to follow-up",
              "Death during run-in"]
RI_P = [0.35, 0.25, 0.2, 0.1, 0.1]


def build_screening(sub: pd.DataFrame, sites, rng, end_day: int) -> pd.DataFrame:
    """One row per screened person: the randomised, plus screen failures (~0.5 per randomised)
    and run-in drop-outs (~0.2 per randomised) at the same sites."""
    n = len(sub)
    site_ids = np.array([s.id for s in sites])
    countries = {s.id: s.country for s in sites}
    act = {s.id: (s.activated - pd.Timestamp("1970-01-01").date()).days for s in sites}
    n_sf, n_ri = int(round(0.5 * n)), int(round(0.2 * n))
    counts = sub["SITEID"].value_counts()
    w = np.array([counts.get(s, 0) + 0.5 for s in site_ids], dtype=float)
    other_site = rng.choice(site_ids, n_sf + n_ri, p=w / w.sum())
    a = np.array([act[s] for s in other_site])
    scr = a + (rng.random(n_sf + n_ri) * (end_day - 30 - a)).astype(int)
    is_sf = np.arange(n_sf + n_ri) < n_sf
    run_len = rng.integers(14, 120, n_sf + n_ri)
    others = pd.DataFrame({
        "SITEID": other_site, "scr": scr,
        "OUTCOME": np.where(is_sf, "SCREEN FAILURE", "RUN-IN DROP-OUT"),
        "REASON": np.where(is_sf, rng.choice(SF_REASONS, n_sf + n_ri, p=SF_P),
                           rng.choice(RI_REASONS, n_sf + n_ri, p=RI_P)),
        "rs": np.where(is_sf, -1, scr + 1), "re": np.where(is_sf, -1, scr + 1 + run_len), "USUBJID": None})
    rand = pd.DataFrame({"SITEID": sub["SITEID"], "scr": sub["scr_day"], "OUTCOME": "RANDOMISED",
                         "REASON": None, "rs": sub["scr_day"] + 1, "re": sub["rand_day"],
                         "USUBJID": sub["USUBJID"]})
    s = pd.concat([rand, others], ignore_index=True).sort_values(["scr", "SITEID"], kind="stable")
    s = s.reset_index(drop=True)
    s["SCRNID"] = [f"SCR-{sid}-{k:04d}" for sid, k in
                   zip(s["SITEID"], s.groupby("SITEID").cumcount() + 1)]
    s["COUNTRY"] = s["SITEID"].map(countries)
    s["SCRNDT"] = _dates(s["scr"].to_numpy()).to_numpy()
    s["RUNINSDT"] = _dates(s["rs"].to_numpy()).where(s["rs"].to_numpy() >= 0).to_numpy()
    s["RUNINEDT"] = _dates(s["re"].to_numpy()).where(s["re"].to_numpy() >= 0).to_numpy()
    return s[["SCRNID", "SITEID", "COUNTRY", "SCRNDT", "OUTCOME", "REASON", "RUNINSDT", "RUNINEDT", "USUBJID"]]


LAB_VISITS = (0, 28, 56, 84, 168, 336, 504)


def build_adlb_adresp(sub: pd.DataFrame, study, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tregs (rising on IL-2), eosinophils, baseline CSF-pNfH; SVC % predicted over time."""
    n = len(sub)
    vdays = np.array(LAB_VISITS)
    names = dict(zip(study.visit_days, study.visit_names))
    vnum = {d: i + 1 for i, d in enumerate(study.visit_days)}
    present = (vdays[None, :] < sub["stop_t"].to_numpy()[:, None]) | (vdays[None, :] == 0)
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
    common = {"USUBJID": sub["USUBJID"].to_numpy()[s_idx], "AVISIT": [names[d] for d in vdays[v_idx]],
              "AVISITN": [vnum[d] for d in vdays[v_idx]], "ADT": _dates(rand + vdays[v_idx]).to_numpy(),
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
    df = df.sort_values(["USUBJID", "PARAMCD", "AVISITN"], kind="stable").reset_index(drop=True)
    df["AVAL"] = df["AVAL"].astype(float)
    base = df[df["AVISITN"] == 1].set_index(["USUBJID", "PARAMCD"])["AVAL"]
    df["BASE"] = pd.MultiIndex.from_frame(df[["USUBJID", "PARAMCD"]]).map(base).astype(float)
    df["CHG"] = df["AVAL"] - df["BASE"]
    df["ABLFL"] = np.where(df["AVISITN"] == 1, "Y", None)
    return df[["USUBJID", "PARAMCD", "PARAM", "AVISIT", "AVISITN", "ADT", "ADY", "AVAL", "BASE", "CHG",
               "ABLFL", "AVALU"]]


def build_adex(sub: pd.DataFrame, rng) -> pd.DataFrame:
    """One row per treatment cycle (every 28 days, up to 19) started before death/withdrawal."""
    cycles = np.arange(19)
    start = cycles[None, :] * 28
    on = start < sub["stop_t"].to_numpy()[:, None]
    s_idx, c_idx = np.nonzero(on)
    rand = sub["rand_day"].to_numpy()[s_idx]
    nd = np.where(rng.random(len(s_idx)) < 0.05, rng.integers(0, 5, len(s_idx)), 5)
    return pd.DataFrame({"USUBJID": sub["USUBJID"].to_numpy()[s_idx], "CYCLE": c_idx + 1,
                         "ASTDT": _dates(rand + start[0, c_idx]).to_numpy(),
                         "AENDT": _dates(rand + start[0, c_idx] + 4).to_numpy(), "NDOSES": nd,
                         "EXDOSE": 2.0})


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
    years = sub["stop_t"].to_numpy() / 365.25
    il2 = sub["il2"].to_numpy()
    frames = []
    for soc, pt, rate, mult, p_ser, p_rel in AE_TERMS:
        k = rng.poisson(rate * np.where(il2, mult, 1.0) * years)
        idx = np.repeat(np.arange(len(sub)), k)
        day = (rng.random(len(idx)) * sub["stop_t"].to_numpy()[idx]).astype(int) + 1
        ser = rng.random(len(idx)) < p_ser
        frames.append(pd.DataFrame({
            "i": idx, "ASTDY": day, "AEDECOD": pt, "AEBODSYS": soc, "AESER": np.where(ser, "Y", "N"),
            "AESEV": np.where(ser, "SEVERE", rng.choice(["MILD", "MODERATE", "SEVERE"], len(idx), p=[0.6, 0.32, 0.08])),
            "AEREL": np.where(rng.random(len(idx)) < p_rel, "RELATED", "NOT RELATED"),
            "dur": rng.integers(1, 30, len(idx)), "fatal": False}))
    dead = np.nonzero(sub["died"].to_numpy())[0]
    choice = rng.choice(len(FATAL_TERMS), len(dead), p=[t[2] for t in FATAL_TERMS])
    frames.append(pd.DataFrame({
        "i": dead, "ASTDY": np.maximum(sub["stop_t"].to_numpy()[dead] - rng.integers(0, 10, len(dead)), 1),
        "AEDECOD": [FATAL_TERMS[c][1] for c in choice], "AEBODSYS": [FATAL_TERMS[c][0] for c in choice],
        "AESER": "Y", "AESEV": "SEVERE", "AEREL": "NOT RELATED", "dur": 0, "fatal": True}))
    ae = pd.concat(frames, ignore_index=True)
    rand = sub["rand_day"].to_numpy()[ae["i"]]
    stop = sub["stop_t"].to_numpy()[ae["i"]]
    end_day = np.where(ae["fatal"], stop, np.minimum(ae["ASTDY"] + ae["dur"], stop))
    ae["USUBJID"] = sub["USUBJID"].to_numpy()[ae["i"]]
    ae["AETERM"] = ae["AEDECOD"].str.lower()
    ae["ASTDT"] = _dates(rand + ae["ASTDY"]).to_numpy()
    ae["AENDT"] = _dates(rand + end_day).to_numpy()
    recovered = ae["ASTDY"] + ae["dur"] < stop
    ae["AEOUT"] = np.where(ae["fatal"], "FATAL", np.where(recovered, "RECOVERED", "NOT RECOVERED"))
    ae["AESDTH"] = np.where(ae["fatal"], "Y", "N")
    ae["TRTEMFL"] = "Y"
    ae["ENTDT"] = _dates(rand + ae["ASTDY"] + rng.integers(1, 15, len(ae))).to_numpy()
    ae = ae.sort_values(["USUBJID", "ASTDY", "AEDECOD"], kind="stable").reset_index(drop=True)
    ae["AESEQ"] = ae.groupby("USUBJID").cumcount() + 1
    return ae[["USUBJID", "AESEQ", "AETERM", "AEDECOD", "AEBODSYS", "ASTDT", "AENDT", "ASTDY", "AESER",
               "AESEV", "AEREL", "AEOUT", "AESDTH", "TRTEMFL", "ENTDT"]]


def plant_problems(clinical: dict[str, pd.DataFrame], rng) -> list[dict]:
    """Plant realistic EDC problems in place; return what was planted (dataset, column, subject,
    rule, detail)."""
    planted: list[dict] = []
    adsl, adqs, adae = clinical["adsl"], clinical["adqs"], clinical["adae"]
    subjects = adsl["USUBJID"].to_numpy()
    pick = rng.choice(len(subjects), 12, replace=False)
    # partial dates: onset known to the month only, an AE start known to the year only
    adsl["ONSETDTC"] = adsl["ONSETDT"].dt.strftime("%Y-%m-%d")
    for i in pick[:2]:
        adsl.loc[i, "ONSETDTC"] = adsl.loc[i, "ONSETDT"].strftime("%Y-%m")
        adsl.loc[i, "ONSETDT"] = pd.NaT
        planted.append(dict(dataset="adsl", column="ONSETDT", subject=subjects[i], rule="partial_date",
                            detail=f"onset date known as {adsl.loc[i, 'ONSETDTC']}"))
    adae["ASTDTC"] = adae["ASTDT"].dt.strftime("%Y-%m-%d")
    j = int(rng.integers(len(adae)))
    adae.loc[j, "ASTDTC"] = adae.loc[j, "ASTDT"].strftime("%Y")
    adae.loc[j, "ASTDT"] = pd.NaT
    planted.append(dict(dataset="adae", column="ASTDT", subject=adae.loc[j, "USUBJID"], rule="partial_date",
                        detail=f"AE start known as {adae.loc[j, 'ASTDTC']}"))
    # out-of-range item scores (and hence totals that do not match... the total is left as it was)
    items = adqs.index[adqs["PARAMCD"].isin(["ALSFRS01", "ALSFRS08"]) & (adqs["AVISITN"] > 1)]
    for k, r in enumerate(rng.choice(items, 2, replace=False)):
        bad = 5.0 if k == 0 else -1.0
        adqs.loc[r, "AVAL"] = bad
        planted.append(dict(dataset="adqs", column="AVAL", subject=adqs.loc[r, "USUBJID"],
                            rule="value_out_of_range", detail=f"{adqs.loc[r, 'PARAMCD']}={bad}"))
        planted.append(dict(dataset="adqs", column="AVAL", subject=adqs.loc[r, "USUBJID"],
                            rule="total_mismatch", detail="total no longer equals the sum of items"))
    # a total that does not equal its items
    tot = adqs.index[(adqs["PARAMCD"] == "ALSFRST") & (adqs["AVISITN"] == 3)]
    r = int(rng.choice(tot))
    adqs.loc[r, "AVAL"] = adqs.loc[r, "AVAL"] - 3
    planted.append(dict(dataset="adqs", column="AVAL", subject=adqs.loc[r, "USUBJID"], rule="total_mismatch",
                        detail="ALSFRST 3 below the sum of items"))
    # a visit dated before randomisation
    s = subjects[pick[3]]
    rows = adqs.index[(adqs["USUBJID"] == s) & (adqs["AVISITN"] == 2)]
    if len(rows):
        adqs.loc[rows, "ADT"] = adsl.loc[pick[3], "RANDDT"] - pd.Timedelta(days=20)
        planted.append(dict(dataset="adqs", column="ADT", subject=s, rule="visit_before_randomisation",
                            detail="Month 1 dated 20 days before randomisation"))
    # duplicate records
    dup_q = adqs[adqs["USUBJID"] == subjects[pick[4]]].head(3)
    dup_a = adae.iloc[[int(rng.integers(len(adae)))]]
    clinical["adqs"] = adqs = pd.concat([adqs, dup_q], ignore_index=True)
    clinical["adae"] = adae = pd.concat([adae, dup_a], ignore_index=True)
    planted.append(dict(dataset="adqs", column="USUBJID", subject=subjects[pick[4]], rule="duplicate_record",
                        detail="3 records entered twice"))
    planted.append(dict(dataset="adae", column="USUBJID", subject=dup_a["USUBJID"].iloc[0],
                        rule="duplicate_record", detail="AE entered twice"))
    # a subject missing from ADSL (records exist elsewhere)
    ghost = "MIR-FR99-0001"
    rows = adqs[adqs["USUBJID"] == subjects[pick[5]]].head(17).assign(USUBJID=ghost)
    clinical["adqs"] = adqs = pd.concat([adqs, rows], ignore_index=True)
    planted.append(dict(dataset="adqs", column="USUBJID", subject=ghost, rule="subject_not_in_adsl",
                        detail="ALSFRS-R records for a subject absent from ADSL"))
    # late data entry
    for i in pick[6:8]:
        rows = adqs.index[(adqs["USUBJID"] == subjects[i]) & (adqs["AVISITN"] == 2)]
        if len(rows):
            adqs.loc[rows, "ENTDT"] = adqs.loc[rows, "ADT"] + pd.Timedelta(days=120)
            planted.append(dict(dataset="adqs", column="ENTDT", subject=subjects[i], rule="late_entry",
                                detail="entered 120 days after the visit"))
    return planted
