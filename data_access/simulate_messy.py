"""Planting realistic EDC data problems in simulated (or cut) trial data, for ``--messy``.

Every problem planted is recorded as ``{dataset, column, subject, rule, detail}`` with the rule
names of DATASETS.md, so that validation can be tested against a known list. Each problem is
planted on a different subject, and nothing else about that subject is changed, so a planted
problem never causes an unrecorded one (e.g. a moved visit date also moves its entry date, lest
it look like a late entry).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

GHOST = "MIR-XX99-0001"
ITEMS_FOR_RANGE = ("ALSFRS01", "ALSFRS08")


def _rec(planted: list, dataset, column, subject, rule, detail) -> None:
    planted.append({"dataset": dataset, "column": column, "subject": str(subject), "rule": rule,
                    "detail": detail})


def plant_problems(clinical: dict[str, pd.DataFrame], rng: np.random.Generator) -> list[dict]:
    """Plant problems in ``clinical`` (frames replaced in the dict); return what was planted.

    Planted (when the data allow it, e.g. in an early data cut): partial onset dates (ADSL
    ONSETDT null, ONSETDTC text) and a partial AE start date (ASTDTC); out-of-range ALSFRS-R item
    scores (5 and -1, which also break the total); a total 3 points below its items; a
    post-baseline visit dated before randomisation; duplicated ALSFRS-R and AE records; ALSFRS-R
    and AE records of a subject absent from ADSL; ALSFRS-R visits entered 120 days late.

    Parameters
    ----------
    clinical : dataset name -> DataFrame (needs adsl, adqs, adae).
    rng : the generator to draw subjects and records from.
    """
    planted: list[dict] = []
    adsl, adqs, adae = (clinical[k].copy() for k in ("adsl", "adqs", "adae"))
    for df in (adqs, adae):
        df.reset_index(drop=True, inplace=True)
    # subjects with a post-baseline ALSFRS-R assessment, in random order; one problem each
    post = adqs[adqs["AVISITN"] > 1]
    with_post = np.array(sorted(set(post["USUBJID"]) & set(adsl["USUBJID"])), dtype=object)
    pool = list(rng.permutation(with_post))
    with_ae = set(adae["USUBJID"])

    def take(need_ae=False):
        """The next subject of the pool (with an AE when ``need_ae``; ``need_ae`` may also be a
        test the subject must pass)."""
        for k, s in enumerate(pool):
            if (need_ae(s) if callable(need_ae) else not need_ae or s in with_ae):
                return pool.pop(k)
        return None

    # partial dates: onset known to the month only (2 subjects), an AE start to the year only
    adsl["ONSETDTC"] = adsl["ONSETDT"].dt.strftime("%Y-%m-%d")
    for _ in range(2):
        s = take()
        if s is None:
            break
        i = adsl.index[adsl["USUBJID"] == s][0]
        adsl.loc[i, "ONSETDTC"] = adsl.loc[i, "ONSETDT"].strftime("%Y-%m")
        adsl.loc[i, "ONSETDT"] = pd.NaT
        _rec(planted, "adsl", "ONSETDT", s, "partial_date", f"onset date known only as {adsl.loc[i, 'ONSETDTC']}")
    adae["ASTDTC"] = adae["ASTDT"].dt.strftime("%Y-%m-%d")
    s = take(need_ae=True)
    if s is not None:
        j = adae.index[adae["USUBJID"] == s][0]
        adae.loc[j, "ASTDTC"] = adae.loc[j, "ASTDT"].strftime("%Y")
        adae.loc[j, "ASTDT"] = pd.NaT
        _rec(planted, "adae", "ASTDT", s, "partial_date", f"AE start date known only as {adae.loc[j, 'ASTDTC']}")
    # out-of-range item scores: the item total then no longer matches either
    for bad in (5.0, -1.0):
        s = take()
        if s is None:
            break
        rows = adqs.index[(adqs["USUBJID"] == s) & (adqs["AVISITN"] > 1) & adqs["PARAMCD"].isin(ITEMS_FOR_RANGE)]
        r = int(rows[0])
        code, visit = adqs.loc[r, "PARAMCD"], adqs.loc[r, "AVISIT"]
        adqs.loc[r, "AVAL"] = bad
        adqs.loc[r, "CHG"] = bad - adqs.loc[r, "BASE"]
        _rec(planted, "adqs", "AVAL", s, "value_out_of_range", f"{code} = {bad:g} at {visit}")
        _rec(planted, "adqs", "AVAL", s, "total_mismatch", f"{code} = {bad:g} at {visit}: items no longer sum "
             "to the domain and total")
    # a total that does not equal the sum of its items
    s = take()
    if s is not None:
        r = int(adqs.index[(adqs["USUBJID"] == s) & (adqs["PARAMCD"] == "ALSFRST") & (adqs["AVISITN"] > 1)][0])
        adqs.loc[r, "AVAL"] -= 3
        adqs.loc[r, "CHG"] -= 3
        _rec(planted, "adqs", "AVAL", s, "total_mismatch", f"ALSFRST at {adqs.loc[r, 'AVISIT']} is 3 below "
             "the sum of its items")
    # a post-baseline visit dated before randomisation (entry date moved with it)
    s = take()
    if s is not None:
        visit = adqs.loc[(adqs["USUBJID"] == s) & (adqs["AVISITN"] > 1), "AVISITN"].min()
        rows = (adqs["USUBJID"] == s) & (adqs["AVISITN"] == visit)
        rand = adsl.loc[adsl["USUBJID"] == s, "RANDDT"].iloc[0]
        lag = adqs.loc[rows, "ENTDT"] - adqs.loc[rows, "ADT"]
        adqs.loc[rows, "ADT"] = rand - pd.Timedelta(days=20)
        adqs.loc[rows, "ADY"] = -20
        adqs.loc[rows, "ENTDT"] = adqs.loc[rows, "ADT"] + lag
        _rec(planted, "adqs", "ADT", s, "visit_before_randomisation",
             f"{adqs.loc[rows, 'AVISIT'].iloc[0]} dated 20 days before randomisation")
    # duplicate records: three ALSFRS-R records and one AE entered twice
    s = take()
    if s is not None:
        adqs = pd.concat([adqs, adqs[adqs["USUBJID"] == s].head(3)], ignore_index=True)
        _rec(planted, "adqs", "USUBJID", s, "duplicate_record", "3 ALSFRS-R records entered twice")
    s = take(need_ae=True)
    if s is not None:
        adae = pd.concat([adae, adae[adae["USUBJID"] == s].head(1)], ignore_index=True)
        _rec(planted, "adae", "USUBJID", s, "duplicate_record", "an AE entered twice")
    # a subject missing from ADSL: ALSFRS-R records and AEs under an unknown USUBJID
    s = take(need_ae=True)
    if s is not None:
        ghost_q = adqs[(adqs["USUBJID"] == s) & (adqs["AVISITN"] == 1)].assign(USUBJID=GHOST)
        ghost_a = adae[adae["USUBJID"] == s].head(2).assign(USUBJID=GHOST, AESEQ=lambda d: range(1, len(d) + 1))
        adqs = pd.concat([adqs, ghost_q], ignore_index=True)
        adae = pd.concat([adae, ghost_a], ignore_index=True)
        _rec(planted, "adqs", "USUBJID", GHOST, "subject_not_in_adsl", "baseline ALSFRS-R of a subject absent "
             "from ADSL")
        _rec(planted, "adae", "USUBJID", GHOST, "subject_not_in_adsl", "AEs of a subject absent from ADSL")
    # late data entry: a post-baseline visit entered 120 days after it took place
    for _ in range(2):
        s = take()
        if s is None:
            break
        visit = adqs.loc[(adqs["USUBJID"] == s) & (adqs["AVISITN"] > 1), "AVISITN"].min()
        rows = (adqs["USUBJID"] == s) & (adqs["AVISITN"] == visit)
        adqs.loc[rows, "ENTDT"] = adqs.loc[rows, "ADT"] + pd.Timedelta(days=120)
        _rec(planted, "adqs", "ENTDT", s, "late_entry", f"{adqs.loc[rows, 'AVISIT'].iloc[0]} entered 120 days "
             "after the visit")
    clinical.update(adsl=adsl, adqs=adqs, adae=adae)
    if {"adcm", "addv"} <= set(clinical):
        _plant_care(clinical, planted, take)
    return planted


def _plant_care(clinical: dict[str, pd.DataFrame], planted: list, take) -> None:
    """Concomitant care, deviations and LSTALVDT (issue 14; rules of ``data_access.validate_care``),
    each on a subject of its own: NIV after death, gastrostomy before randomisation, a medication
    ending before it starts, a deviation of a subject absent from ADSL, a deviation without
    category (DVCAT), a deviation at another site than the subject's, an importance flag that is
    not Y/N, LSTALVDT after the cut (later than any other date) and LSTALVDT before a visit."""
    adsl, cm, dv = (clinical[k].copy().reset_index(drop=True) for k in ("adsl", "adcm", "addv"))
    one = adsl.set_index("USUBJID")
    dead = set(one.index[one["DTHDT"].notna()]) if "DTHDT" in one else set()
    with_niv = set(cm.loc[cm["CARECD"].isin(["NIV", "PAV", "TRACH"]), "USUBJID"])
    with_gastro = set(cm.loc[cm["CARECD"] == "GASTRO", "USUBJID"])
    with_med = set(cm.loc[(cm["CARECD"] == "MED") & cm["AENDT"].notna(), "USUBJID"])
    with_dv = set(dv["USUBJID"])
    date_cols = [df[c] for df in clinical.values() for c in df.columns
                 if c not in ("ENTDT", "LSTALVDT") and pd.api.types.is_datetime64_any_dtype(df[c])]
    latest = max(c.max() for c in date_cols if c.notna().any())

    def pick(ok):
        return take(lambda s: ok(s))

    s = pick(lambda s: s in dead and s not in with_niv)
    if s is not None:
        day = one.at[s, "DTHDT"] + pd.Timedelta(days=10)
        cm = pd.concat([cm, pd.DataFrame([{"USUBJID": s, "CMSEQ": int(cm.loc[cm["USUBJID"] == s, "CMSEQ"].max()) + 1,
                                          "CMTRT": "Non-invasive ventilation (BiPAP)",
                                          "CMDECOD": "NON-INVASIVE VENTILATION", "CMCAT": "ALS SUPPORTIVE PROCEDURE",
                                          "CARECD": "NIV", "ASTDT": day,
                                          "ASTDY": (day - one.at[s, "RANDDT"]).days}])], ignore_index=True)
        _rec(planted, "adcm", "ASTDT", s, "care_after_death", f"NIV started {day:%Y-%m-%d}, 10 days after death")
    s = pick(lambda s: s not in dead and s not in with_gastro)
    if s is not None:
        day = one.at[s, "RANDDT"] - pd.Timedelta(days=10)
        cm = pd.concat([cm, pd.DataFrame([{"USUBJID": s, "CMSEQ": int(cm.loc[cm["USUBJID"] == s, "CMSEQ"].max()) + 1,
                                          "CMTRT": "Percutaneous endoscopic gastrostomy (PEG)", "CMDECOD": "GASTROSTOMY",
                                          "CMCAT": "ALS SUPPORTIVE PROCEDURE", "CARECD": "GASTRO", "ASTDT": day,
                                          "ASTDY": -10}])], ignore_index=True)
        _rec(planted, "adcm", "ASTDT", s, "care_before_randomisation", "gastrostomy 10 days before randomisation")
    s = pick(lambda s: s in with_med)
    if s is not None:
        i = cm.index[(cm["USUBJID"] == s) & (cm["CARECD"] == "MED") & cm["AENDT"].notna()][0]
        cm.loc[i, "AENDT"] = cm.loc[i, "ASTDT"] - pd.Timedelta(days=5)
        _rec(planted, "adcm", "AENDT", s, "date_order", f"{cm.loc[i, 'CMDECOD']} ends 5 days before it starts")
    ghost = dv.head(1).assign(USUBJID=GHOST, DVSEQ=1)
    dv = pd.concat([dv, ghost], ignore_index=True)
    _rec(planted, "addv", "USUBJID", GHOST, "subject_not_in_adsl", "a deviation of a subject absent from ADSL")
    for column, rule, detail in (("DVCAT", "missing_value", "a deviation without category (DVCAT empty)"),
                                 ("SITEID", "site_mismatch", "a deviation recorded at another site"),
                                 ("DVIMPFL", "invalid_code", "importance flag DVIMPFL = 'MAJOR' (Y/N expected)")):
        s = pick(lambda s: s in with_dv)
        if s is None:
            break
        i = dv.index[dv["USUBJID"] == s][0]
        other = sorted(set(adsl["SITEID"]) - {dv.loc[i, "SITEID"]})
        dv.loc[i, column] = {"DVCAT": None, "SITEID": other[0] if other else "XX99", "DVIMPFL": "MAJOR"}[column]
        _rec(planted, "addv", column, s, rule, detail)
    s = pick(lambda s: s not in dead)
    if s is not None:
        i = adsl.index[adsl["USUBJID"] == s][0]
        adsl.loc[i, "LSTALVDT"] = latest + pd.Timedelta(days=45)
        _rec(planted, "adsl", "LSTALVDT", s, "last_alive_after_cut", "LSTALVDT 45 days after the latest date "
             "of the delivery")
    s = pick(lambda s: s not in dead)
    if s is not None:
        i = adsl.index[adsl["USUBJID"] == s][0]
        adsl.loc[i, "LSTALVDT"] = adsl.loc[i, "RANDDT"] + pd.Timedelta(days=1)
        _rec(planted, "adsl", "LSTALVDT", s, "last_alive_before_record", "LSTALVDT the day after randomisation, "
             "before the subject's later visits")
    clinical.update(adsl=adsl, adcm=cm, addv=dv)
