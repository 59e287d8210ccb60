"""Validation's cross-dataset rules: duplicates, date order, subjects not in ADSL, visits and
deaths before randomisation, strata (ADSL and the allocation), ALSFRS-R domain and total sums, late
entry.

``cross_checks`` runs every rule over the working copies of the readable datasets (dates parsed
by ``validate_dataset.check_dataset``) and adds problem rows to a ``ProblemReport``; a rule the
data are too malformed for is itself reported. Rule names are listed at the end of
``data_access/DATASETS.md``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data_access.schemas import DOMAIN_ITEMS, ITEMS, TOTAL_CODE
from data_access.validate_care import check_care
from data_access.validate_dataset import ProblemReport, subject_of

LATE_ENTRY_DAYS = 30
BDS = ("adqs", "adlb", "adresp")


def _is_date(df, *cols) -> bool:
    return all(c in df and pd.api.types.is_datetime64_any_dtype(df[c]) for c in cols)


def cross_checks(r: ProblemReport, d: dict[str, pd.DataFrame], study) -> None:
    """Every cross-dataset rule over the readable datasets ``d`` (name -> working copy)."""
    adsl = d.get("adsl")
    if adsl is not None and "USUBJID" not in adsl:
        adsl = None
    rules = [("duplicate_record", "", lambda: _duplicates(r, d)), ("date_order", "", lambda: _date_order(r, d)),
             ("late_entry", "", lambda: _late_entry(r, d))]
    if adsl is not None:
        rules += [("subject_not_in_adsl", "", lambda: _subjects_in_adsl(r, adsl, d)),
                  ("visit_before_randomisation", "", lambda: _visits_after_randomisation(r, adsl, d)),
                  ("death_before_randomisation", "adsl", lambda: _deaths(r, adsl, d.get("adtte"), study)),
                  ("stratum_mismatch", "adsl", lambda: _strata(r, adsl, d.get("allocation"), study))]
    if "adqs" in d:
        rules.append(("total_mismatch", "adqs", lambda: _alsfrs_sums(r, d["adqs"])))
    rules.append(("care_checks", "", lambda: check_care(r, d, study)))   # adcm, addv, LSTALVDT (validate_care)
    for rule, dataset, check in rules:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - data too malformed for this rule: say so, go on
            r.add(dataset or "adsl", "", None, rule, f"{rule} could not be checked ({type(exc).__name__}: {exc})")


def _duplicates(r: ProblemReport, d: dict[str, pd.DataFrame]) -> None:
    adsl = d.get("adsl")
    if adsl is not None and "USUBJID" in adsl:
        counts = adsl["USUBJID"].value_counts()
        for s, n in counts[counts > 1].items():
            r.add("adsl", "USUBJID", s, "duplicate_subject", f"{s} appears {n} times (one row per subject expected)")
    keys = {**{n: ["USUBJID", "PARAMCD", "AVISITN"] for n in BDS}, "adtte": ["USUBJID", "PARAMCD"],
            "adex": ["USUBJID", "CYCLE"], "screening": ["SCRNID"], "allocation": ["USUBJID"]}
    if "adae" in d:
        keys["adae"] = [c for c in d["adae"].columns if c not in ("AESEQ", "ENTDT")]
    for name, key in keys.items():
        df = d.get(name)
        if df is None or not key or not set(key) <= set(df.columns):
            continue
        dup = df[df.duplicated(key, keep="first")]
        who = "SCRNID" if name == "screening" else "USUBJID" if "USUBJID" in key else key[0]
        same = "identical records" if name == "adae" else "same " + "+".join(key)
        for s, g in dup.groupby(who, dropna=False, sort=True):
            r.add(name, who, s, "duplicate_record", f"{len(g)} duplicated record(s) for {s} ({same})")


def _date_order(r: ProblemReport, d: dict[str, pd.DataFrame]) -> None:
    """Dates that must not decrease along a chain (each against the latest earlier date)."""
    chains = {"adsl": ["ONSETDT", "DIAGDT", "SCRNDT", "RANDDT"], "screening": ["SCRNDT", "RUNINSDT", "RUNINEDT"],
              "adae": ["ASTDT", "AENDT"], "adex": ["ASTDT", "AENDT"]}
    for name, chain in chains.items():
        df = d.get(name)
        chain = [c for c in chain if df is not None and _is_date(df, c)]
        subjects = subject_of(name, df) if df is not None else None
        for j in range(1, len(chain)):
            earlier = df[chain[:j]]
            latest = earlier.max(axis=1)
            bad = latest.notna() & df[chain[j]].notna() & (df[chain[j]] < latest)
            for idx in df.index[bad.to_numpy(dtype=bool)]:
                prev = earlier.loc[idx].idxmax()
                r.add(name, chain[j], subjects[idx], "date_order",
                      f"{chain[j]} {df.at[idx, chain[j]]:%Y-%m-%d} of {subjects[idx]} is before "
                      f"{prev} {df.at[idx, prev]:%Y-%m-%d}")


def _subjects_in_adsl(r: ProblemReport, adsl: pd.DataFrame, d: dict[str, pd.DataFrame]) -> None:
    known = set(adsl["USUBJID"].dropna())
    for name, df in d.items():
        if name in ("adsl", "allocation") or "USUBJID" not in df:
            continue
        counts = df["USUBJID"].dropna().value_counts()
        for s in sorted(set(counts.index) - known):
            r.add(name, "USUBJID", s, "subject_not_in_adsl", f"{counts[s]} record(s) for {s}, who is not in ADSL")
    scr = d.get("screening")
    if scr is not None and {"OUTCOME", "USUBJID", "SCRNID"} <= set(scr.columns):
        for s in scr.loc[scr["OUTCOME"].eq("RANDOMISED") & scr["USUBJID"].isna(), "SCRNID"]:
            r.add("screening", "USUBJID", s, "subject_not_in_adsl",
                  f"{s} is RANDOMISED in the screening log but has no USUBJID")


def _visits_after_randomisation(r: ProblemReport, adsl: pd.DataFrame, d: dict[str, pd.DataFrame]) -> None:
    """Post-baseline records dated before randomisation; baseline records before screening."""
    if not _is_date(adsl, "RANDDT"):
        return
    one = adsl.drop_duplicates("USUBJID").set_index("USUBJID")
    rand = one["RANDDT"]
    scrn = one["SCRNDT"] if _is_date(one, "SCRNDT") else rand
    for name in BDS:
        df = d.get(name)
        if df is None or not _is_date(df, "ADT") or "USUBJID" not in df:
            continue
        base = df["ABLFL"].eq("Y") if "ABLFL" in df else pd.Series(False, index=df.index)
        limit = df["USUBJID"].map(scrn).where(base, df["USUBJID"].map(rand))
        bad = df[df["ADT"] < limit]
        visit = bad["AVISIT"] if "AVISIT" in bad else bad["ADT"].dt.strftime("%Y-%m-%d")
        for (s, v), g in bad.groupby([bad["USUBJID"], visit], sort=True):
            adt = g["ADT"].min()
            if base[g.index].all():
                msg = f"baseline ({v}) of {s} dated {adt:%Y-%m-%d}, before screening ({scrn[s]:%Y-%m-%d})"
            else:
                msg = (f"{v} of {s} dated {adt:%Y-%m-%d}, {(rand[s] - adt).days} days before randomisation "
                       f"({rand[s]:%Y-%m-%d}); {len(g)} record(s)")
            r.add(name, "ADT", s, "visit_before_randomisation", msg)


def _deaths(r: ProblemReport, adsl: pd.DataFrame, adtte, study) -> None:
    if _is_date(adsl, "DTHDT", "RANDDT"):
        for _, row in adsl[adsl["DTHDT"] < adsl["RANDDT"]].iterrows():
            r.add("adsl", "DTHDT", row["USUBJID"], "death_before_randomisation",
                  f"DTHDT {row['DTHDT']:%Y-%m-%d} of {row['USUBJID']} is before RANDDT {row['RANDDT']:%Y-%m-%d}")
    os_code = getattr(study, "survival_paramcd", None) or "OS"
    if adtte is None or not _is_date(adtte, "ADT") or not {"PARAMCD", "CNSR", "USUBJID"} <= set(adtte.columns) \
            or not _is_date(adsl, "RANDDT"):
        return
    rand = adsl.drop_duplicates("USUBJID").set_index("USUBJID")["RANDDT"]
    deaths = adtte[adtte["PARAMCD"].eq(os_code) & adtte["CNSR"].eq(0)]
    for _, row in deaths[deaths["ADT"] < deaths["USUBJID"].map(rand)].iterrows():
        r.add("adtte", "ADT", row["USUBJID"], "death_before_randomisation",
              f"{os_code} death ADT {row['ADT']:%Y-%m-%d} of {row['USUBJID']} is before randomisation "
              f"({rand[row['USUBJID']]:%Y-%m-%d})")


def _strata(r: ProblemReport, adsl: pd.DataFrame, allocation, study) -> None:
    factors = list(getattr(study, "strata_factors", ()) or ("COUNTRY", "ONSET"))
    if {"STRATUM", *factors} <= set(adsl.columns):
        expected = adsl[factors].astype(str).agg("/".join, axis=1)
        for _, row in adsl[adsl["STRATUM"].astype(str) != expected].iterrows():
            r.add("adsl", "STRATUM", row["USUBJID"], "stratum_mismatch",
                  f"STRATUM={row['STRATUM']!r} of {row['USUBJID']} but {'/'.join(factors)} is "
                  f"{expected[row.name]!r}")
    if allocation is None or "USUBJID" not in allocation:
        return
    for s in sorted(set(adsl["USUBJID"].dropna()) - set(allocation["USUBJID"].dropna())):
        r.add("allocation", "USUBJID", s, "allocation_missing_subject", f"randomised subject {s} has no allocation")
    if "STRATUM" in allocation and "STRATUM" in adsl:
        adsl_stratum = adsl.drop_duplicates("USUBJID").set_index("USUBJID")["STRATUM"]
        m = allocation.assign(STRATUM_ADSL=allocation["USUBJID"].map(adsl_stratum))
        m = m[m["USUBJID"].isin(adsl_stratum.index)]
        for _, row in m[m["STRATUM"] != m["STRATUM_ADSL"]].iterrows():
            r.add("allocation", "STRATUM", row["USUBJID"], "stratum_mismatch",
                  f"{row['USUBJID']} randomised in stratum {row['STRATUM']!r} but ADSL says {row['STRATUM_ADSL']!r}")


def _assessments_wide(q: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    """AVAL one row per (USUBJID, AVISITN), one column per PARAMCD in ``codes``; of duplicated
    records the first counts (as ``drop_duplicates`` then ``pivot``, which take ~2 s on a
    20,000-subject ADQS; this numpy pivot on integer codes takes a fraction of it)."""
    sc, subjects = pd.factorize(q["USUBJID"])
    vc, visits = pd.factorize(q["AVISITN"])
    pc = pd.Categorical(q["PARAMCD"], categories=codes).codes
    keep = pc >= 0
    nv = max(len(visits), 1)
    keys, row = np.unique(sc[keep].astype(np.int64) * nv + vc[keep], return_inverse=True)
    arr = np.full((len(keys), len(codes)), np.nan)
    aval = pd.to_numeric(q["AVAL"], errors="coerce").to_numpy(float)[keep]
    arr[row[::-1], pc[keep][::-1]] = aval[::-1]                       # reversed: the first record wins
    index = pd.MultiIndex.from_arrays([subjects[keys // nv], visits[keys % nv]], names=["USUBJID", "AVISITN"])
    return pd.DataFrame(arr, index=index, columns=codes).sort_index()


def _alsfrs_sums(r: ProblemReport, adqs: pd.DataFrame) -> None:
    """Exactly one of items 5a/5b per assessment; domains and total equal their items' sum."""
    if not {"USUBJID", "PARAMCD", "AVAL", "AVISITN"} <= set(adqs.columns):
        return
    q = adqs.dropna(subset=["USUBJID", "PARAMCD", "AVISITN"])
    wide = _assessments_wide(q, list(ITEMS) + list(DOMAIN_ITEMS) + [TOTAL_CODE])
    has_items = wide[list(ITEMS)].notna().any(axis=1)
    if not has_items.any():
        return
    cache = {}

    def at(key):                   # visit label of a flagged assessment, looked up only when needed
        if "label" not in cache:
            cache["label"] = q.groupby(["USUBJID", "AVISITN"])["AVISIT"].first() if "AVISIT" in q else None
        label = cache["label"]
        return f"{label.get(key, f'visit {key[1]}')}" if label is not None else f"visit {key[1]}"
    n5 = wide[["ALSFR05A", "ALSFR05B"]].notna().sum(axis=1)
    for key in wide.index[has_items & (n5 != 1)]:
        what = "both ALSFR05A and ALSFR05B" if n5[key] == 2 else "neither ALSFR05A nor ALSFR05B"
        r.add("adqs", "PARAMCD", key[0], "invalid_code", f"{key[0]} at {at(key)} has {what} (exactly one expected)")
    groups = {**{dom: list(its) for dom, its in DOMAIN_ITEMS.items()}, TOTAL_CODE: list(ITEMS)}
    for code, its in groups.items():
        n_expected = len(its) - (1 if "ALSFR05A" in its else 0)
        complete = (wide[its].notna().sum(axis=1) == n_expected) & (n5 == 1 if "ALSFR05A" in its else True)
        expected = wide[its].sum(axis=1)
        bad = complete & wide[code].notna() & (wide[code] != expected)
        for key in wide.index[bad]:
            r.add("adqs", "AVAL", key[0], "total_mismatch",
                  f"{code}={wide.at[key, code]:g} for {key[0]} at {at(key)} but its items sum to {expected[key]:g}")


def _late_entry(r: ProblemReport, d: dict[str, pd.DataFrame]) -> None:
    """Records entered more than ``LATE_ENTRY_DAYS`` after the visit / event date (warning)."""
    for name, df in d.items():
        ref = next((c for c in ("ADT", "ASTDT") if _is_date(df, c)), None)
        if ref is None or not _is_date(df, "ENTDT") or "USUBJID" not in df:
            continue
        lag = (df["ENTDT"] - df[ref]).dt.days
        late = df[lag > LATE_ENTRY_DAYS]
        what = late["AVISIT"] if "AVISIT" in late else late["AEDECOD"] if "AEDECOD" in late else late[ref]
        for (s, w), g in late.groupby([late["USUBJID"], what], sort=True):
            r.add(name, "ENTDT", s, "late_entry",
                  f"{w} of {s} ({ref} {g[ref].min():%Y-%m-%d}) entered {int(lag[g.index].max())} days later "
                  f"(more than {LATE_ENTRY_DAYS}); {len(g)} record(s)")

