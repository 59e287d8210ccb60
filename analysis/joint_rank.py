"""Joint rank test of function and survival (CAFS; Berry et al. 2013, Finkelstein-Schoenfeld 1999).

Pure: DataFrames in, a result dataclass out (``JointRankResult``, with ``effect_table()`` giving a
row of the treatment-effect table, ``analysis.alsfrs_models.EFFECT_COLUMNS``: the win probability
with its 95% CI, z, p). Two pair rules:

- ``shared-time`` (the primary, as Finkelstein and Schoenfeld 1999 define it; method
  ``joint_rank``): a pair is compared on survival when survival tells them apart (both died:
  the earlier death is worse; one died at t and the other was followed to t or beyond: the
  survivor is better); otherwise (both alive, or one censored before the other's death) on the
  functional outcome at their shared follow-up time, the shorter of the two: each one's change
  from baseline at their last assessment on or before that time. :func:`compute_shared_time_matrix`
  forms every pair in blocks (O(N^2) time, O(N) memory per block row).
- ``last-change`` (a sensitivity analysis; method ``joint_rank_last_change``): a survivor
  censored before a death ties with it, and two survivors are compared on each one's last change
  whatever their follow-up (so a participant lost early can outrank a completer);
  :func:`compute_joint_scores` gives its scores in O(N log N).

``compute_win_probability_ci`` gives the DeLong interval of the win probability. The mixed-model
slope is in ``analysis.alsfrs_models``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.alsfrs_models import EFFECT_COLUMNS


def _joint_counts(died, time, change, ref_died, ref_time, ref_change):
    """Wins and losses of each query patient against every patient of a reference set.

    Pair rules (see :func:`compute_joint_scores`); O((n + m) log m) with sorted searches."""
    died, time, change = np.asarray(died, bool), np.asarray(time, float), np.asarray(change, float)
    ref_died = np.asarray(ref_died, bool)
    ref_time, ref_change = np.asarray(ref_time, float), np.asarray(ref_change, float)
    td = np.sort(ref_time[ref_died])                                   # reference death times
    fa = np.sort(ref_time[~ref_died])                                  # reference follow-up (alive)
    ca = np.sort(ref_change[~ref_died & ~np.isnan(ref_change)])        # reference survivor changes
    wins, losses = np.zeros(len(died)), np.zeros(len(died))
    d, a = died, ~died
    # query died at t: beats earlier deaths; loses to later deaths and to survivors followed >= t
    t = time[d]
    wins[d] = np.searchsorted(td, t, side="left")
    losses[d] = (len(td) - np.searchsorted(td, t, side="right")) + (len(fa) - np.searchsorted(fa, t, side="left"))
    # query alive, followed to f: beats deaths at <= f; survivors compared on change (NaN = tie)
    f, c = time[a], change[a]
    w = np.searchsorted(td, f, side="right").astype(float)
    known = ~np.isnan(c)
    w[known] += np.searchsorted(ca, c[known], side="left")
    lo = np.zeros(len(f))
    lo[known] = len(ca) - np.searchsorted(ca, c[known], side="right")
    wins[a], losses[a] = w, lo
    return wins, losses


def compute_joint_scores(died, time, change) -> np.ndarray:
    """Score of each patient by the ``last-change`` rule (the sensitivity analysis): wins minus
    losses over all other patients.

    Pair rules (i vs j):

    1. both died: the earlier death is worse (same day: tie);
    2. one died at t, the other is alive with follow-up f: the survivor is better if f >= t,
       otherwise (censored before that death) the pair is a tie;
    3. both alive: the larger change in ALSFRS-R from baseline (less decline) is better; equal
       or missing change (no post-baseline assessment): tie.

    Parameters
    ----------
    died : array of bool
    time : array of float
        Day of death for those who died, last day known alive (capped at the landmark) otherwise.
    change : array of float
        Functional outcome for survivors (NaN allowed; ignored for deaths).

    Returns
    -------
    ndarray
        Scores (integers as floats), summing to 0. Computed in O(N log N) without forming pairs.
    """
    w, l = _joint_counts(died, time, change, died, time, change)
    return w - l


@dataclass
class JointRankResult:
    """Result of :func:`compute_joint_rank`.

    ``scores``: USUBJID, group, died, time, change, score. ``win_probability``: P(a random
    experimental patient does better than a random reference patient) + P(tie) / 2 (0.5 = no
    difference; the treatment-effect estimate). ``mean_score_difference``: mean score
    experimental - reference. ``statistic``: Finkelstein-Schoenfeld z (> 0 favours experimental).
    """
    scores: pd.DataFrame
    statistic: float
    p_value: float
    win_probability: float
    win_ratio: float
    mean_score_difference: float
    n_excluded: int = 0
    ci_lower: float = np.nan
    ci_upper: float = np.nan
    method: str = "joint_rank"

    def effect_table(self) -> pd.DataFrame:
        return pd.DataFrame([(self.method, self.win_probability, self.ci_lower, self.ci_upper, self.statistic,
                              self.p_value)], columns=EFFECT_COLUMNS)


def _post_baseline_changes(adqs, paramcd, landmark_day) -> pd.DataFrame:
    """USUBJID, ADY, _chg: the changes from baseline after baseline up to the landmark (CHG, or
    AVAL - BASE), sorted by subject and day."""
    q = adqs[(adqs["PARAMCD"] == paramcd) & (adqs["ADY"] > 0) & (adqs["ADY"] <= landmark_day)]
    if "ABLFL" in q.columns:
        q = q[q["ABLFL"].ne("Y")]
    chg = q["CHG"] if "CHG" in q.columns else pd.Series(np.nan, index=q.index)
    if "BASE" in q.columns:
        chg = chg.fillna(q["AVAL"] - q["BASE"])
    return q.assign(_chg=chg).dropna(subset=["_chg"]).sort_values(["USUBJID", "ADY"])[["USUBJID", "ADY", "_chg"]]


def _functional_change(adqs, paramcd, landmark_day):
    return _post_baseline_changes(adqs, paramcd, landmark_day).groupby("USUBJID")["_chg"].last()


def functional_trajectories(changes: pd.DataFrame, ids) -> tuple[np.ndarray, np.ndarray]:
    """(days, values): the distinct assessment days (sorted) and, per subject of ``ids`` (rows) and
    day (columns), the change from baseline at the subject's last assessment on or before that
    day (NaN before the first). ``changes``: USUBJID, ADY, _chg (:func:`_post_baseline_changes`)."""
    ids = list(ids)
    days = np.unique(changes["ADY"].to_numpy(float))
    values = np.full((len(ids), len(days)), np.nan)
    pos = pd.Series(np.arange(len(ids)), index=ids)
    c = changes[changes["USUBJID"].isin(pos.index)]
    if len(c):
        values[pos.loc[c["USUBJID"]].to_numpy(), np.searchsorted(days, c["ADY"].to_numpy(float))] = c["_chg"]
        values = pd.DataFrame(values).ffill(axis=1).to_numpy()
    return days, values


def compute_shared_time_matrix(died, time, days, values, rows=None, block: int = 256) -> np.ndarray:
    """Outcome of every pair by the ``shared-time`` rule (Finkelstein and Schoenfeld 1999): +1 when
    patient i (a row: ``rows``, default all) does better than patient j (a column: all
    patients), -1 when worse, 0 for a tie; int8, rows x N.

    Survival first: both died, the earlier death is worse; one died at t and the other was followed
    to t or beyond, the survivor is better. Otherwise (both alive, or one censored before the
    other's death) the pair is compared on function at their shared follow-up time s = the
    shorter of the two times: each one's value at their last assessment on or before s
    (``days``/``values`` from :func:`functional_trajectories`); a missing value ties.

    ``died``: bool; ``time``: day of death, or last day known alive capped at the landmark."""
    rows = np.arange(len(died)) if rows is None else np.asarray(rows)
    out = np.zeros((len(rows), len(died)), dtype=np.int8)
    for start, part in _shared_time_blocks(died, time, days, values, rows, block):
        out[start:start + len(part)] = part
    return out


def _shared_time_blocks(died, time, days, values, rows, block: int = 256):
    """(start, outcomes of rows[start:start + block] against every patient): the blocks of
    :func:`compute_shared_time_matrix`, for callers that sum them without keeping N x N."""
    died, time = np.asarray(died, bool), np.asarray(time, float)
    values = np.asarray(values, dtype=np.float32)
    if values.shape[1] == 0:                                     # no assessment at all: function ties
        values = np.full((len(died), 1), np.nan, dtype=np.float32)
        days = np.array([-np.inf])
    own_k = np.searchsorted(days, time, side="right") - 1         # each one's last assessment by their time
    own_v = np.where(own_k >= 0, values[np.arange(len(died)), np.maximum(own_k, 0)], np.nan)
    by_day = np.ascontiguousarray(values.T)                      # day x patient: a row per assessment day
    for start in range(0, len(rows), block):
        r = rows[start:start + block]
        dq, tq = died[r][:, None], time[r][:, None]
        dr, tr = died[None, :], time[None, :]
        win = (dq & dr & (tq > tr)) | (~dq & dr & (tq >= tr))
        loss = (dq & dr & (tq < tr)) | (dq & ~dr & (tr >= tq))
        on_function = ~(dq & dr) & ~win & ~loss
        # the shared time is the shorter follow-up: the row's own time when the column's is longer
        # (row: its own last value; column: its value on the row's day), else the column's
        row_first = tq <= tr
        k_row = own_k[r]
        vq = np.where(row_first, own_v[r][:, None], values[r][:, np.maximum(own_k, 0)])
        vr = np.where(row_first, by_day[np.maximum(k_row, 0)], own_v[None, :])
        k_ok = np.where(row_first, (k_row >= 0)[:, None], (own_k >= 0)[None, :])
        vq = np.where(row_first | (own_k >= 0)[None, :], vq, np.nan)
        ok = on_function & k_ok & ~np.isnan(vq) & ~np.isnan(vr)
        win |= ok & (vq > vr)
        loss |= ok & (vq < vr)
        yield start, win.astype(np.int8) - loss.astype(np.int8)


def _shared_time_scores(died, time, days, values, trt):
    """Scores (wins - losses over everyone) and the experimental-vs-reference counts of the
    ``shared-time`` rule, summed block by block (memory O(block x N), not N x N): (u, w, l, rw, rl)
    with w/l each experimental patient's wins/losses against the reference arm and rw/rl each
    reference patient's wins/losses against the experimental arm."""
    n = len(died)
    u = np.zeros(n)
    w, l = np.zeros(int(trt.sum())), np.zeros(int(trt.sum()))
    rw, rl = np.zeros(int((~trt).sum())), np.zeros(int((~trt).sum()))
    exp_pos = np.cumsum(trt) - 1                                 # row -> index among the experimental
    for start, part in _shared_time_blocks(died, time, days, values, np.arange(n)):
        u[start:start + len(part)] = part.sum(axis=1)
        rows_exp = trt[start:start + len(part)]
        if rows_exp.any():
            cross = part[rows_exp][:, ~trt]                       # experimental rows vs reference columns
            idx = exp_pos[start:start + len(part)][rows_exp]
            w[idx] = (cross == 1).sum(axis=1)
            l[idx] = (cross == -1).sum(axis=1)
            rw += (cross == -1).sum(axis=0)
            rl += (cross == 1).sum(axis=0)
    return u, w, l, rw, rl


def compute_joint_rank(adsl, adqs, adtte, group_col, groups, landmark_day=640, paramcd="ALSFRST",
                       tte_paramcd="OS", rule: str = "shared-time") -> JointRankResult:
    """Joint rank test of function and survival (CAFS; Berry et al. 2013, Finkelstein-Schoenfeld 1999).

    Every pair of patients is compared by ``rule`` (see the module docstring): ``shared-time``
    (the primary, :func:`compute_shared_time_matrix`) or ``last-change`` (the sensitivity
    analysis, :func:`compute_joint_scores`), on survival to ``landmark_day`` (deaths after it count
    as alive at the landmark) and on the change from baseline in ALSFRS-R (``paramcd``, CHG or
    AVAL - BASE) after baseline up to the landmark. A missing functional value ties. A patient's
    score U is wins minus losses; the Finkelstein-Schoenfeld statistic is T = sum of U over the
    experimental arm, with permutation variance n1 n2 / (N (N - 1)) * sum(U^2), z = T / sqrt(Var),
    two-sided normal p-value.

    Parameters
    ----------
    adsl : DataFrame or None
        Population (USUBJID and ``group_col``); None takes the subjects of ``adtte``.
    adqs : DataFrame
        BDS (USUBJID, PARAMCD, ADY, CHG and/or AVAL, BASE, ABLFL).
    adtte : DataFrame
        Time to death: USUBJID, AVAL (days from randomisation), CNSR (0 = death)[, PARAMCD: rows
        with ``tte_paramcd`` are used when the column is present].
    group_col, groups : str, sequence
        Group column and labels (first experimental, last reference).
    landmark_day : float
        Horizon for both components (the primary landmark, 640 days in MIROCALS).

    Returns
    -------
    JointRankResult
        ``effect_table()`` row method="joint_rank": estimate = win probability of the
        experimental arm (0.5 = no difference, > 0.5 favours experimental) with its 95% CI
        (:func:`compute_win_probability_ci`), statistic z,
        p_value. Subjects without a survival record are excluded (``n_excluded``).
    """
    exp_label, ref_label = groups[0], groups[-1]
    tte = adtte
    if "PARAMCD" in tte.columns and (tte["PARAMCD"] == tte_paramcd).any():
        tte = tte[tte["PARAMCD"] == tte_paramcd]
    tte = tte.drop_duplicates("USUBJID").set_index("USUBJID")
    if adsl is not None and group_col in adsl.columns:
        pop = adsl.drop_duplicates("USUBJID").set_index("USUBJID")[group_col]
    else:
        pop = tte[group_col]
    pop = pop[pop.isin([exp_label, ref_label])]
    ids = pop.index[pop.index.isin(tte.index)]
    n_excluded = len(pop) - len(ids)
    grp, t = pop.loc[ids].to_numpy(), tte.loc[ids]
    died = ((t["CNSR"] == 0) & (t["AVAL"] <= landmark_day)).to_numpy()
    time = np.minimum(t["AVAL"].to_numpy(float), landmark_day)
    if rule not in ("shared-time", "last-change"):
        raise ValueError(f"rule must be 'shared-time' or 'last-change', not {rule!r}")
    changes = _post_baseline_changes(adqs, paramcd, landmark_day)
    change = changes.groupby("USUBJID")["_chg"].last().reindex(ids).to_numpy(float)
    change[died] = np.nan
    trt = grp == exp_label
    if rule == "shared-time":
        days, values = functional_trajectories(changes, ids)
        u, w, l, rw, rl = _shared_time_scores(died, time, days, values, trt)
    else:
        u = compute_joint_scores(died, time, change)
    n1, n2, n = int(trt.sum()), int((~trt).sum()), len(u)
    t_stat = float(u[trt].sum())
    var = n1 * n2 / (n * (n - 1)) * float(np.sum(u ** 2)) if n > 1 else 0.0
    z = t_stat / np.sqrt(var) if var > 0 else np.nan
    p = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
    if rule == "last-change":
        w, l = _joint_counts(died[trt], time[trt], change[trt], died[~trt], time[~trt], change[~trt])
        rw, rl = _joint_counts(died[~trt], time[~trt], change[~trt], died[trt], time[trt], change[trt])
    wins, losses = float(w.sum()), float(l.sum())
    pairs = n1 * n2
    win_p = (wins + 0.5 * (pairs - wins - losses)) / pairs if pairs else np.nan
    ci = (np.nan, np.nan)
    if n1 > 1 and n2 > 1:
        ci = compute_win_probability_ci((w + 0.5 * (n2 - w - l)) / n2, (rl + 0.5 * (n1 - rw - rl)) / n1)
    scores = pd.DataFrame({"USUBJID": ids, "group": grp, "died": died, "time": time, "change": change,
                           "score": u})
    msd = float(u[trt].mean() - u[~trt].mean()) if n1 and n2 else np.nan
    return JointRankResult(scores, float(z), p, float(win_p), wins / losses if losses else np.nan, msd,
                           n_excluded, *ci, method="joint_rank" if rule == "shared-time" else "joint_rank_last_change")


def compute_win_probability_ci(v_exp, v_ref, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% CI of a win probability (a Mann-Whitney-type AUC) from its structural components
    (DeLong, DeLong & Clarke-Pearson 1988): ``v_exp[i]`` is experimental patient i's share of
    wins (+ half the ties) against the reference arm, ``v_ref[j]`` the experimental arm's share
    against reference patient j. var = s2(v_exp) / n1 + s2(v_ref) / n2; the interval is Wald on
    the logit scale so that it stays inside (0, 1)."""
    v_exp, v_ref = np.asarray(v_exp, float), np.asarray(v_ref, float)
    theta = float(v_exp.mean())
    var = v_exp.var(ddof=1) / len(v_exp) + v_ref.var(ddof=1) / len(v_ref)
    if not 0 < theta < 1 or not var > 0:
        return np.nan, np.nan
    logit, se = np.log(theta / (1 - theta)), np.sqrt(var) / (theta * (1 - theta))
    lo, hi = logit - z * se, logit + z * se
    return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))
