"""ALSFRS-R analyses: score and change from baseline by visit, King's and MiToS stages (the
mixed-model slope is in :mod:`analysis.alsfrs_models`, the joint rank test in
:mod:`analysis.joint_rank`).

Input: an ADQS-like BDS frame (USUBJID, PARAMCD, AVISIT, AVISITN, ADT, ADY, AVAL, BASE, CHG,
ABLFL) with PARAMCDs ALSFRS01..ALSFRS12, ALSFR05A / ALSFR05B (items), BULBAR, FINEMOT, GROSSMOT,
RESP (domains) and ALSFRST (total); in unblinded views the caller merges a group column.
``group_col=None`` pools all subjects under the label "All".
"""
from __future__ import annotations

import numpy as np
import pandas as pd


ITEM_CODES = ["ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFR05A", "ALSFR05B", "ALSFRS06",
              "ALSFRS07", "ALSFRS08", "ALSFRS09", "ALSFRS10", "ALSFRS11", "ALSFRS12"]
DOMAIN_CODES = {"BULBAR": "Bulbar (1-3)", "FINEMOT": "Fine motor (4-6)", "GROSSMOT": "Gross motor (7-9)",
                "RESP": "Respiratory (10-12)"}
DEATH_STAGE = 5


def _with_group(df, group_col):
    return df.assign(group="All") if group_col is None else df.assign(group=df[group_col])


def summarize_alsfrs_by_visit(adqs, paramcd="ALSFRST", group_col=None, groups=None) -> pd.DataFrame:
    """Mean (SE) score and mean (SE) change from baseline per visit and group.

    Works for any PARAMCD (item, domain or total).

    Parameters
    ----------
    adqs : DataFrame
        BDS rows; only ``paramcd`` is used.
    paramcd : str
    group_col : str, optional
        Group column (None: pooled, group "All").
    groups : sequence of str, optional
        Group order for the output (first experimental, last reference); other groups dropped.

    Returns
    -------
    DataFrame
        group, visit, day, n, mean, se, mean_change, se_change; sorted by group then visit number.
        ``day`` is the median study day (ADY) of the visit's assessments; ``n`` the number of
        non-missing AVAL. SE = SD / sqrt(n) with the n - 1 SD (NaN when n = 1). Change is CHG
        (or AVAL - BASE when CHG is missing); at baseline rows (ABLFL = "Y") it is 0 by
        definition, so the baseline mean change is 0 with SE 0.
    """
    q = _with_group(adqs[adqs["PARAMCD"] == paramcd], group_col)
    chg = q["CHG"] if "CHG" in q.columns else pd.Series(np.nan, index=q.index, dtype=float)
    if "BASE" in q.columns:
        chg = chg.fillna(q["AVAL"] - q["BASE"])
    if "ABLFL" in q.columns:
        chg = chg.mask(q["ABLFL"].eq("Y"), 0.0)
    q = q.assign(_chg=chg.astype(float), AVAL=q["AVAL"].astype(float))
    agg = q.groupby(["group", "AVISITN"], sort=True).agg(
        visit=("AVISIT", "first"), day=("ADY", "median"), n=("AVAL", "count"), mean=("AVAL", "mean"),
        sd=("AVAL", "std"), mean_change=("_chg", "mean"), sd_change=("_chg", "std"),
        n_change=("_chg", "count")).reset_index()
    agg["se"] = agg["sd"] / np.sqrt(agg["n"])
    agg["se_change"] = agg["sd_change"] / np.sqrt(agg["n_change"])
    if groups is not None:
        order = {g: i for i, g in enumerate(groups)}
        agg = agg[agg["group"].isin(order)]
        agg = agg.assign(_o=agg["group"].map(order)).sort_values(["_o", "AVISITN"])
    cols = ["group", "visit", "day", "n", "mean", "se", "mean_change", "se_change"]
    return agg[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- stages
def _items_wide(adqs, group_col=None):
    """Items one row per subject x visit (columns = item PARAMCDs; duplicates: first kept).

    A numpy pivot on integer codes (pandas pivot_table / unstack are slow at 2 million rows)."""
    cols = [c for c in ["USUBJID", "PARAMCD", "AVISITN", "AVISIT", "ADT", "ADY", "AVAL", group_col]
            if c is not None and c in adqs.columns]
    items = adqs.loc[adqs["PARAMCD"].isin(ITEM_CODES).to_numpy(), cols]
    sc = pd.factorize(items["USUBJID"])[0]
    vc, vis = pd.factorize(items["AVISITN"])
    pc = pd.Categorical(items["PARAMCD"], categories=ITEM_CODES).codes
    keys, row = np.unique(sc.astype(np.int64) * max(len(vis), 1) + vc, return_inverse=True)
    arr = np.full((len(keys), len(ITEM_CODES)), np.nan)
    arr[row[::-1], pc[::-1]] = items["AVAL"].to_numpy(float)[::-1]      # reversed: first record wins
    first = np.unique(row, return_index=True)[1]
    cols = ["USUBJID", "AVISITN", "AVISIT", "ADY"] + ([group_col] if group_col in items.columns else [])
    info = items.iloc[first][cols].set_index(["USUBJID", "AVISITN"])
    return pd.DataFrame(arr, index=info.index, columns=ITEM_CODES), info, items


def _death_rows(adqs, deaths, assessed, group_col):
    """Stage-5 rows for every visit a dead subject missed after death.

    A visit counts when its scheduled day (median ADY over all subjects) is on or after the
    death day and, when dates are known, its scheduled date for that subject is not after the
    latest date in the data (so visits beyond the data cut are not filled in)."""
    if deaths is None or len(deaths) == 0:
        return None
    d = deaths.drop_duplicates("USUBJID").set_index("USUBJID")
    cols = [c for c in ["USUBJID", "ADT", "ADY", group_col] if c is not None and c in adqs.columns]
    first = adqs[cols].drop_duplicates("USUBJID").set_index("USUBJID")      # any row: RANDDT = ADT - ADY
    randdt = None
    if "RANDDT" in d.columns:
        randdt = pd.to_datetime(d["RANDDT"])
    elif "ADT" in first.columns:
        randdt = pd.to_datetime(first["ADT"]) - pd.to_timedelta(first["ADY"], unit="D")
    if "DTHDY" in d.columns:
        dday = d["DTHDY"].astype(float)
    else:
        dthdt = pd.to_datetime(d["DTHDT"])
        dday = (dthdt - randdt.reindex(d.index)).dt.days.astype(float)
    dday = dday.dropna()
    if dday.empty:
        return None
    grid = adqs.groupby("AVISITN").agg(AVISIT=("AVISIT", "first"), ADY=("ADY", "median")).reset_index()
    pairs = pd.DataFrame({"USUBJID": dday.index, "_dday": dday.to_numpy()}).merge(grid, how="cross")
    pairs = pairs[pairs["ADY"] >= pairs["_dday"]]
    if randdt is not None and "ADT" in adqs.columns:
        ends = [pd.to_datetime(adqs["ADT"]).max()]
        if "DTHDT" in d.columns:
            ends.append(pd.to_datetime(d["DTHDT"]).max())
        data_end = max(e for e in ends if pd.notna(e))
        sched = randdt.reindex(pairs["USUBJID"]).to_numpy() + pd.to_timedelta(pairs["ADY"], unit="D").to_numpy()
        pairs = pairs[sched <= np.datetime64(data_end)]
    done = pd.MultiIndex.from_frame(pairs[["USUBJID", "AVISITN"]]).isin(assessed)
    pairs = pairs[~done].assign(stage=DEATH_STAGE)
    if group_col is not None:
        pairs[group_col] = pairs["USUBJID"].map(first[group_col]) if group_col in first.columns else \
            pairs["USUBJID"].map(d[group_col])
    return pairs.drop(columns="_dday")


def _stage_frame(w, info, stage, items, deaths, group_col):
    out = info.assign(stage=pd.array(stage, dtype="Int64")).reset_index()
    extra = _death_rows(items, deaths, w.index, group_col)
    if extra is not None and len(extra):
        out = pd.concat([out, extra[out.columns]], ignore_index=True)
    cols = ["USUBJID", "AVISITN", "AVISIT", "ADY", "stage"] + ([group_col] if group_col else [])
    return out[cols].sort_values(["USUBJID", "AVISITN"]).reset_index(drop=True)


def derive_kings_stage(adqs, deaths=None, group_col=None) -> pd.DataFrame:
    """King's clinical stage per subject and visit from the ALSFRS-R items (Balendra et al. 2014).

    Stage 4 if item 10 (dyspnoea) = 0, item 12 (respiratory insufficiency) < 4 or item 5b is used
    (gastrostomy); otherwise the number of regions involved: bulbar (any of items 1-3 < 4), upper
    limb (item 4 or 5a < 4), lower limb (item 8 < 4). When ``deaths`` is given, a subject who died
    is stage 5 at every later visit (see below). A visit missing one of items 1, 2, 3, 4, 5a, 8,
    10 or 12 and not already stage 4 gets a missing stage (<NA>).

    Parameters
    ----------
    adqs : DataFrame
        BDS rows including the item PARAMCDs (other PARAMCDs ignored).
    deaths : DataFrame, optional
        USUBJID with DTHDT (date; NaT = alive) or DTHDY (days from randomisation); optional
        RANDDT (otherwise derived as ADT - ADY) and ``group_col``. A dead subject gets a stage-5
        row at each visit scheduled (median ADY) on or after the death day and not after the
        latest date in the data, unless assessed at that visit.
    group_col : str, optional
        Group column carried into the output (for :func:`summarize_stages`).

    Returns
    -------
    DataFrame
        USUBJID, AVISITN, AVISIT, ADY, stage (Int64 0-5)[, group_col].
    """
    w, info, items = _items_wide(adqs, group_col)
    s4 = (w["ALSFRS10"] == 0) | (w["ALSFRS12"] < 4) | w["ALSFR05B"].notna()
    bulbar = (w[["ALSFRS01", "ALSFRS02", "ALSFRS03"]] < 4).any(axis=1)
    upper = (w["ALSFRS04"] < 4) | (w["ALSFR05A"] < 4)
    lower = w["ALSFRS08"] < 4
    needed = ["ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFRS08", "ALSFRS10", "ALSFRS12"]
    complete = w[needed].notna().all(axis=1) & (w["ALSFR05A"].notna() | w["ALSFR05B"].notna())
    stage = np.where(s4, 4.0, bulbar.astype(int) + upper.astype(int) + lower.astype(int))
    stage = np.where(s4 | complete, stage, np.nan)
    return _stage_frame(w, info, stage, items, deaths, group_col)


def derive_mitos_stage(adqs, deaths=None, group_col=None) -> pd.DataFrame:
    """MiToS stage per subject and visit: the number of functional domains lost (Chio et al. 2015).

    Walking / self-care lost if item 8 <= 1 or item 6 <= 1; swallowing if item 3 <= 1;
    communicating if item 1 <= 1 and item 4 <= 1; breathing if item 10 <= 1 or item 12 <= 2.
    Death is stage 5 (``deaths`` as in :func:`derive_kings_stage`). A visit missing any of
    items 1, 3, 4, 6, 8, 10, 12 gets a missing stage.

    Returns
    -------
    DataFrame
        USUBJID, AVISITN, AVISIT, ADY, stage (Int64 0-5)[, group_col].
    """
    w, info, items = _items_wide(adqs, group_col)
    lost = (((w["ALSFRS08"] <= 1) | (w["ALSFRS06"] <= 1)).astype(int) + (w["ALSFRS03"] <= 1).astype(int)
            + ((w["ALSFRS01"] <= 1) & (w["ALSFRS04"] <= 1)).astype(int)
            + ((w["ALSFRS10"] <= 1) | (w["ALSFRS12"] <= 2)).astype(int))
    needed = ["ALSFRS01", "ALSFRS03", "ALSFRS04", "ALSFRS06", "ALSFRS08", "ALSFRS10", "ALSFRS12"]
    complete = w[needed].notna().all(axis=1)
    stage = np.where(complete, lost.to_numpy(float), np.nan)
    return _stage_frame(w, info, stage, items, deaths, group_col)


def summarize_stages(stages, group_col=None, subject_groups=None, groups=None) -> pd.DataFrame:
    """Number and percentage of subjects in each stage per visit (and group).

    Parameters
    ----------
    stages : DataFrame
        From :func:`derive_kings_stage` / :func:`derive_mitos_stage`; missing stages are dropped.
    group_col : str, optional
        Group column in ``stages`` (or, when absent there, looked up through ``subject_groups``);
        None pools subjects under "All".
    subject_groups : mapping, optional
        USUBJID -> group label, for stage frames derived without a group column.
    groups : sequence of str, optional
        Group order for the output.

    Returns
    -------
    DataFrame
        group, visit, AVISITN, stage, n, percent (of subjects with a stage at that visit and
        group, deaths included).
    """
    s = stages.dropna(subset=["stage"])
    if group_col is None:
        grp = pd.Series("All", index=s.index)
    elif group_col in s.columns:
        grp = s[group_col]
    else:
        grp = s["USUBJID"].map(subject_groups)
    s = s.assign(group=grp.to_numpy(), stage=s["stage"].astype(int)).dropna(subset=["group"])
    n = s.groupby(["group", "AVISITN", "stage"]).agg(visit=("AVISIT", "first"), n=("USUBJID", "size")).reset_index()
    n["percent"] = 100 * n["n"] / n.groupby(["group", "AVISITN"])["n"].transform("sum")
    if groups is not None:
        order = {g: i for i, g in enumerate(groups)}
        n = n[n["group"].isin(order)].assign(_o=lambda d: d["group"].map(order))
        n = n.sort_values(["_o", "AVISITN", "stage"])
    return n[["group", "visit", "AVISITN", "stage", "n", "percent"]].reset_index(drop=True)
