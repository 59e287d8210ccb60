"""ALSFRS-R analyses: scores and change from baseline by visit, King's and MiToS stages, the
linear mixed-model slope, and the joint rank test (Berry et al. 2013; Finkelstein-Schoenfeld).

Input: an ADQS-like BDS frame (USUBJID, PARAMCD, AVISIT, AVISITN, ADY, AVAL, BASE, CHG, ABLFL),
with a group column merged by the caller in unblinded views. ``group_col=None`` pools ("All").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

MONTH = 30.4375
Z975 = stats.norm.ppf(0.975)
EFFECT_COLUMNS = ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value"]


def _with_group(df, group_col):
    return df.assign(group="All") if group_col is None else df.assign(group=df[group_col])


def summarize_alsfrs_by_visit(adqs, paramcd="ALSFRST", group_col=None, groups=None) -> pd.DataFrame:
    """Mean (SE) score and mean (SE) change from baseline per visit and group, with n.

    ``day`` is the median study day of the visit's assessments. At baseline the change is 0 with
    SE 0 by definition. SE = SD / sqrt(n) (n - 1 denominator for the SD)."""
    q = _with_group(adqs[adqs["PARAMCD"] == paramcd], group_col)
    agg = q.groupby(["group", "AVISITN", "AVISIT"], sort=True).agg(
        day=("ADY", "median"), n=("AVAL", "count"), mean=("AVAL", "mean"), sd=("AVAL", "std"),
        mean_change=("CHG", "mean"), sd_change=("CHG", "std"), n_change=("CHG", "count")).reset_index()
    agg["se"] = agg["sd"] / np.sqrt(agg["n"])
    agg["se_change"] = agg["sd_change"] / np.sqrt(agg["n_change"])
    if groups is not None:
        agg["group"] = pd.Categorical(agg["group"], categories=list(groups), ordered=True)
        agg = agg.sort_values(["group", "AVISITN"]).assign(group=lambda d: d["group"].astype(str))
    out = agg.rename(columns={"AVISIT": "visit"})
    return out[["group", "visit", "day", "n", "mean", "se", "mean_change", "se_change"]].reset_index(drop=True)


def _items_wide(adqs):
    items = adqs[adqs["PARAMCD"].str.match(r"^ALSFR(S\d\d|05[AB])$")]
    return items.pivot_table(index=["USUBJID", "AVISITN", "AVISIT"], columns="PARAMCD", values="AVAL",
                             aggfunc="first")


def derive_kings_stage(adqs, deaths=None) -> pd.DataFrame:
    """King's stage per subject and visit from the items (Balendra 2014 / Roche 2012 rules):
    4 if item 10 = 0, item 12 < 4 or item 5b used (gastrostomy); else the number of regions
    involved (bulbar: items 1-3 < 4; upper limb: item 4 or 5a < 4; lower limb: item 8 < 4).
    Death (``deaths``: USUBJID, DTHDT) adds stage 5 rows is left to the caller's visit grid."""
    w = _items_wide(adqs)
    g = lambda c: w[c] if c in w else pd.Series(np.nan, index=w.index)  # noqa: E731
    stage4 = (g("ALSFRS10") == 0) | (g("ALSFRS12") < 4) | g("ALSFR05B").notna()
    bulbar = (g("ALSFRS01") < 4) | (g("ALSFRS02") < 4) | (g("ALSFRS03") < 4)
    upper = (g("ALSFRS04") < 4) | (g("ALSFR05A") < 4)
    lower = g("ALSFRS08") < 4
    stage = np.where(stage4, 4, bulbar.astype(int) + upper.astype(int) + lower.astype(int))
    return pd.DataFrame({"stage": stage}, index=w.index).reset_index()


def derive_mitos_stage(adqs) -> pd.DataFrame:
    """MiToS stage = number of functional domains lost (0-4): walking/self-care (item 8 <= 1 or
    item 6 <= 1), swallowing (item 3 <= 1), communicating (items 1 <= 1 and 4 <= 1), breathing
    (item 10 <= 1 or item 12 <= 2)."""
    w = _items_wide(adqs)
    g = lambda c: w[c] if c in w else pd.Series(np.nan, index=w.index)  # noqa: E731
    lost = (((g("ALSFRS08") <= 1) | (g("ALSFRS06") <= 1)).astype(int) + (g("ALSFRS03") <= 1).astype(int)
            + ((g("ALSFRS01") <= 1) & (g("ALSFRS04") <= 1)).astype(int)
            + ((g("ALSFRS10") <= 1) | (g("ALSFRS12") <= 2)).astype(int))
    return pd.DataFrame({"stage": lost.to_numpy()}, index=w.index).reset_index()


def summarize_stages(stages, subject_groups=None, group_col=None) -> pd.DataFrame:
    """n and % of subjects in each stage per visit (and group: ``subject_groups`` maps USUBJID
    to the group label)."""
    s = stages.copy()
    s["group"] = "All" if group_col is None else s["USUBJID"].map(subject_groups)
    n = s.groupby(["group", "AVISITN", "AVISIT", "stage"]).size().rename("n").reset_index()
    n["percent"] = 100 * n["n"] / n.groupby(["group", "AVISITN"])["n"].transform("sum")
    return n.rename(columns={"AVISIT": "visit"})[["group", "visit", "AVISITN", "stage", "n", "percent"]]


@dataclass
class SlopeFit:
    slopes: pd.DataFrame              # group, slope, se, ci_lower, ci_upper (points/month)
    difference: float = np.nan        # experimental - reference (positive = slower decline)
    diff_se: float = np.nan
    n_subjects: int = 0

    def effect_table(self) -> pd.DataFrame:
        d, se = self.difference, self.diff_se
        z = d / se if se and se > 0 else np.nan
        return pd.DataFrame([("alsfrs_slope_difference", d, d - Z975 * se, d + Z975 * se, z,
                              float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan)], columns=EFFECT_COLUMNS)


def fit_alsfrs_slopes(adqs, group_col=None, groups=None, paramcd="ALSFRST") -> SlopeFit:
    """Linear mixed model AVAL ~ months * group, random intercept and slope per subject
    (statsmodels MixedLM, REML). Slopes are in points per month (months = ADY / 30.4375)."""
    import statsmodels.formula.api as smf
    q = adqs[adqs["PARAMCD"] == paramcd].dropna(subset=["AVAL", "ADY"]).copy()
    q["months"] = q["ADY"] / MONTH
    if group_col is None:
        model = smf.mixedlm("AVAL ~ months", q, groups=q["USUBJID"], re_formula="~months")
        res = model.fit(reml=True, method=["lbfgs", "powell"])
        b, se = res.params["months"], res.bse["months"]
        tab = pd.DataFrame([{"group": "All", "slope": b, "se": se, "ci_lower": b - Z975 * se, "ci_upper": b + Z975 * se}])
        return SlopeFit(tab, n_subjects=q["USUBJID"].nunique())
    exp_label, ref_label = groups[0], groups[-1]
    q = q[q[group_col].isin([exp_label, ref_label])]
    q["TRT"] = (q[group_col] == exp_label).astype(float)
    model = smf.mixedlm("AVAL ~ months * TRT", q, groups=q["USUBJID"], re_formula="~months")
    res = model.fit(reml=True, method=["lbfgs", "powell"])
    cov = res.cov_params()
    b_ref, b_int = res.params["months"], res.params["months:TRT"]
    se_ref = np.sqrt(cov.loc["months", "months"])
    se_exp = np.sqrt(cov.loc["months", "months"] + cov.loc["months:TRT", "months:TRT"]
                     + 2 * cov.loc["months", "months:TRT"])
    rows = [{"group": exp_label, "slope": b_ref + b_int, "se": se_exp},
            {"group": ref_label, "slope": b_ref, "se": se_ref}]
    tab = pd.DataFrame(rows)
    tab["ci_lower"] = tab["slope"] - Z975 * tab["se"]
    tab["ci_upper"] = tab["slope"] + Z975 * tab["se"]
    return SlopeFit(tab, float(b_int), float(np.sqrt(cov.loc["months:TRT", "months:TRT"])), q["USUBJID"].nunique())


@dataclass
class JointRankResult:
    scores: pd.DataFrame              # USUBJID, group, died, outcome, score
    statistic: float                  # z
    p_value: float
    mean_score_difference: float

    def effect_table(self) -> pd.DataFrame:
        return pd.DataFrame([("joint_rank", self.mean_score_difference, np.nan, np.nan, self.statistic,
                              self.p_value)], columns=EFFECT_COLUMNS)


def compute_joint_scores(died, death_time, change) -> np.ndarray:
    """Each patient's score = (#patients they beat) - (#patients who beat them), comparing every
    pair: if either died, the later (or no) death is better; if both survived, the larger change
    in ALSFRS-R (less decline) is better; ties score 0. O(N log N): this pairwise ordering is a
    total preorder, so the score equals 2 * midrank - (N + 1) on a composite key."""
    died = np.asarray(died, bool)
    key = np.where(died, np.asarray(death_time, float) - 1e7, np.asarray(change, float))
    return 2 * stats.rankdata(key, method="average") - (len(key) + 1)


def compute_joint_rank(adsl, adqs, adtte, group_col, groups, landmark_day=640, paramcd="ALSFRST") -> JointRankResult:
    """Joint rank test of function and survival (CAFS). Deaths up to the landmark rank below all
    survivors (earlier death = worse); survivors are ranked by their change from baseline in
    ALSFRS-R at the last assessment up to the landmark (patients with no post-baseline
    assessment get change 0, documented simplification). Test statistic: Finkelstein-Schoenfeld
    T = sum of scores in the experimental arm, Var = n1 n2 / (N (N - 1)) * sum(U^2), z = T / sqrt(Var).
    Estimate: mean score in the experimental arm minus the reference arm."""
    exp_label, ref_label = groups[0], groups[-1]
    tte = adtte.drop_duplicates("USUBJID").set_index("USUBJID")
    subj = tte[tte[group_col].isin([exp_label, ref_label])]
    died = (subj["CNSR"] == 0) & (subj["AVAL"] <= landmark_day)
    q = adqs[(adqs["PARAMCD"] == paramcd) & (adqs["ADY"] <= landmark_day)].sort_values(["USUBJID", "ADY"])
    change = q.groupby("USUBJID")["CHG"].last().reindex(subj.index).fillna(0.0)
    u = compute_joint_scores(died.to_numpy(), subj["AVAL"].to_numpy(), change.to_numpy())
    trt = (subj[group_col] == exp_label).to_numpy()
    n1, n2, n = trt.sum(), (~trt).sum(), len(u)
    t_stat = u[trt].sum()
    var = n1 * n2 / (n * (n - 1)) * np.sum(u ** 2)
    z = t_stat / np.sqrt(var) if var > 0 else np.nan
    scores = pd.DataFrame({"USUBJID": subj.index, "group": subj[group_col].to_numpy(), "died": died.to_numpy(),
                           "outcome": np.where(died, subj["AVAL"], change), "score": u})
    return JointRankResult(scores, float(z), float(2 * stats.norm.sf(abs(z))), float(u[trt].mean() - u[~trt].mean()))
