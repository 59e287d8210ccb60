"""Recruitment for the simulator: screening arrivals, run-in, screening log and stratified
permuted-block randomisation (all vectorised numpy, driven by one seeded generator).

Model (documented assumptions; the real figures are not public):

- each site screens people as a Poisson process from its activation date (study config) to
  ``recruitment_end - 18 weeks`` (so that every run-in ends by the end of recruitment); its
  rate is its target times a Gamma(3, 1/3) site factor, and ramps up after activation as
  ``1 - exp(-days / RAMP_DAYS)`` (start-up: few patients are screened in a site's first months);
- each screened person fails screening (``P_SCREEN_FAILURE``), drops out during the 12-18 week
  riluzole-only run-in (``P_RUNIN_DROPOUT``) or is randomised at the end of the run-in: about
  1.7 people are screened per person randomised;
- to randomise exactly ``n`` people, arrivals are generated for about 1.3 ``n`` and thinned at
  random (a thinned Poisson process keeps the shape of its intensity), so recruitment is spread
  over the same period whatever ``n``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RAMP_DAYS = 120.0
RUNIN_DAYS = (84, 126)                      # 12 to 18 weeks
P_SCREEN_FAILURE = 0.30
P_RUNIN_DROPOUT = 0.12
SF_REASONS = ["SVC < 70% predicted", "Disease duration > 24 months", "Declined lumbar puncture",
              "Age out of range", "Other neurological or auto-immune disease", "Withdrew consent", "Other"]
SF_P = [0.2, 0.2, 0.15, 0.05, 0.15, 0.15, 0.1]
RI_REASONS = ["Withdrew consent", "Riluzole intolerance", "Rapid deterioration", "Lost to follow-up",
              "Death during run-in"]
RI_P = [0.35, 0.25, 0.2, 0.1, 0.1]


def dates_of(days) -> pd.Series:
    """Days since 1970-01-01 -> datetime64 Series (midnight)."""
    return pd.Series(pd.to_datetime(np.asarray(days, dtype="int64"), unit="D"))


def simulate_screening(site_act: np.ndarray, site_target: np.ndarray, n: int, end_day: int,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Screened people with exactly ``n`` randomised.

    Parameters
    ----------
    site_act, site_target : activation day (days since 1970-01-01) and recruitment target per site.
    n : number to randomise.
    end_day : last possible randomisation day (end of recruitment).

    Returns
    -------
    DataFrame, one row per screened person, sorted by screening day: ``site`` (site index),
    ``scr`` (screening day), ``outcome`` (0 randomised, 1 screen failure, 2 run-in drop-out),
    ``runin`` (planned run-in length, days), ``re`` (run-in end: randomisation or drop-out day).
    """
    n_sites = len(site_act)
    factor = rng.gamma(3.0, 1 / 3.0, n_sites)
    last_scr = end_day - RUNIN_DAYS[1]
    first = int(site_act.min())
    days = np.arange(first, last_scr + 1)
    since = days[None, :] - site_act[:, None]
    shape = np.where(since >= 0, 1.0 - np.exp(-np.maximum(since, 0) / RAMP_DAYS), 0.0)
    shape *= (site_target * factor)[:, None]
    p_rand = 1.0 - P_SCREEN_FAILURE - P_RUNIN_DROPOUT
    scale = 1.3 * n / p_rand / shape.sum()
    while True:
        counts = rng.poisson(shape * scale)                       # sites x days
        site = np.repeat(np.repeat(np.arange(n_sites), len(days)), counts.ravel())
        scr = np.repeat(np.tile(days, n_sites), counts.ravel())
        u = rng.random(len(scr))
        outcome = np.where(u < P_SCREEN_FAILURE, 1, np.where(u < P_SCREEN_FAILURE + P_RUNIN_DROPOUT, 2, 0))
        n_rand = int((outcome == 0).sum())
        if n_rand >= n:
            break
        scale *= 1.5 * n / max(n_rand, 1)                          # rare: too few arrivals, redraw
    # thin at random to exactly n randomised, keeping the others in the same proportion
    keep = np.zeros(len(scr), dtype=bool)
    rand_idx = np.flatnonzero(outcome == 0)
    keep[rng.choice(rand_idx, n, replace=False)] = True
    others = outcome != 0
    keep[others] = rng.random(int(others.sum())) < n / n_rand
    site, scr, outcome = site[keep], scr[keep], outcome[keep]
    runin = rng.integers(RUNIN_DAYS[0], RUNIN_DAYS[1] + 1, len(scr))
    drop_after = np.maximum((rng.random(len(scr)) * runin).astype(int), 7)
    re = np.where(outcome == 0, scr + runin, np.where(outcome == 2, scr + drop_after, -1))
    order = np.lexsort((site, scr))
    return pd.DataFrame({"site": site[order], "scr": scr[order], "outcome": outcome[order],
                         "runin": runin[order], "re": re[order]})


def build_screening(scr: pd.DataFrame, site_ids: np.ndarray, countries: np.ndarray,
                    usubjid_of_rand: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The screening log (DATASETS.md ``screening``) from ``simulate_screening`` output.

    ``usubjid_of_rand`` gives the USUBJID of each randomised row, in the row order of ``scr``.
    """
    n = len(scr)
    outcome = scr["outcome"].to_numpy()
    sid = site_ids[scr["site"].to_numpy()]
    seq = pd.Series(sid).groupby(sid).cumcount().to_numpy() + 1
    usub = np.full(n, None, dtype=object)
    usub[outcome == 0] = usubjid_of_rand
    reason = np.where(outcome == 1, rng.choice(SF_REASONS, n, p=SF_P),
                      np.where(outcome == 2, rng.choice(RI_REASONS, n, p=RI_P), None))
    s = scr["scr"].to_numpy()
    runin_start = dates_of(s + 1).where(outcome != 1)
    runin_end = dates_of(scr["re"].to_numpy()).where(outcome != 1)
    return pd.DataFrame({
        "SCRNID": [f"SCR-{a}-{k:04d}" for a, k in zip(sid, seq)], "SITEID": sid,
        "COUNTRY": countries[scr["site"].to_numpy()], "SCRNDT": dates_of(s),
        "OUTCOME": np.array(["RANDOMISED", "SCREEN FAILURE", "RUN-IN DROP-OUT"])[outcome],
        "REASON": reason, "RUNINSDT": runin_start, "RUNINEDT": runin_end, "USUBJID": usub})


def randomise_blocks(strata: np.ndarray, order: np.ndarray, block_sizes, rng: np.random.Generator):
    """Stratified permuted-block 1:1 allocation.

    Within each stratum (in sorted stratum order) subjects are taken in ``order`` (randomisation
    order) and filled into consecutive blocks whose sizes are drawn at random from ``block_sizes``
    (even sizes); each block holds a random permutation of equal numbers of arm 0 and arm 1.

    Returns
    -------
    (arm, block_id, block_size): per subject (original positions), arm 0 = experimental.
    """
    n = len(strata)
    sizes_allowed = np.asarray(block_sizes, dtype=int)
    if (sizes_allowed % 2).any() or not len(sizes_allowed):
        raise ValueError(f"block sizes must be even for 1:1 allocation, got {list(block_sizes)}")
    arm = np.empty(n, dtype=int)
    block = np.empty(n, dtype=object)
    size = np.empty(n, dtype=int)
    for s in sorted(set(strata.tolist())):
        idx = order[strata[order] == s]
        m = len(idx)
        sizes = rng.choice(sizes_allowed, m // int(sizes_allowed.min()) + 1)
        ends = np.cumsum(sizes)
        sizes = sizes[: int(np.searchsorted(ends, m)) + 1]        # enough blocks to hold m
        blk = np.repeat(np.arange(len(sizes)), sizes)
        size_rep = np.repeat(sizes, sizes)
        pos = np.arange(len(blk)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        pattern = (pos >= size_rep // 2).astype(int)               # half arm 0, half arm 1
        perm = np.lexsort((rng.random(len(blk)), blk))             # shuffle within each block
        arms = pattern[perm]
        arm[idx] = arms[:m]
        block[idx] = [f"{s}-{b + 1:03d}" for b in blk[:m]]
        size[idx] = size_rep[:m]
    return arm, block, size
