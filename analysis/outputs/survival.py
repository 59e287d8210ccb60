"""Survival outputs: numbers at risk, Kaplan-Meier estimates, median and landmark survival (overall
and by randomisation stratum), the treatment effect, subgroup hazard ratios and the
group-sequential look. Each is defined once here: computation, machine columns, display and
method in words."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.display import format_strata
from analysis.display_table import DisplaySpec
from analysis.outputs.base import (no_strata, FigureOutput, table_of, TTE, Output, comparisons, default_times, get_adsl, get_bds, get_tte,
                                   groups_of, strata_columns, view_memo)

def _at_risk(view, times=None, **_):
    from analysis.survival import summarize_at_risk
    group_col, groups = groups_of(view)
    return summarize_at_risk(get_tte(view), group_col=group_col, times=times or default_times(view), groups=groups)


def _km(view, times=None, **_):
    from analysis.survival import summarize_km
    group_col, groups = groups_of(view)
    return summarize_km(get_tte(view), group_col=group_col, times=times, groups=groups)


def _survival(view, **_):
    from analysis.survival import summarize_survival
    group_col, groups = groups_of(view)
    return summarize_survival(get_tte(view), group_col=group_col, landmark_day=view.study.landmark_day,
                              groups=groups)


def _survival_by_stratum(view, **_):
    from analysis.survival import summarize_survival_by_stratum
    group_col, groups = groups_of(view)
    return summarize_survival_by_stratum(get_tte(view), strata_columns(view), group_col=group_col,
                                         landmark_day=view.study.landmark_day, groups=groups)



EFFECT_TABLE_COLUMNS = ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value", "comparison",
                        "note"]



def _treatment_effect(view, **_):
    """Each non-reference arm against the reference arm (column ``comparison``, "A vs B"):
    log-rank and Cox (stratified by the randomisation strata when the study has some; otherwise
    the unstratified rows say so in ``note``), adjusted Cox, landmark and RMST differences, and
    the functional-score slope and joint-rank rows when the snapshot has the functional dataset."""
    view.require_unblinded("treatment-effect table")
    from analysis.survival_models import compute_treatment_effects
    from analysis.alsfrs_models import fit_alsfrs_slopes
    from analysis.joint_rank import compute_joint_rank
    group_col, _g = groups_of(view)
    study = view.study
    tte = get_tte(view)
    strata = [c for c in strata_columns(view) if c in tte.columns]
    covariates = [c for c in study.covariates if c in tte.columns]
    functional = study.functional_dataset in view.datasets
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total]) if functional else None
    adsl = get_adsl(view) if functional else None
    parts = []
    for exp, ref in comparisons(view):
        pair = (exp, ref)
        rows = [compute_treatment_effects(tte[tte[group_col].isin(pair)], group_col=group_col, strata_cols=strata,
                                          covariates=covariates, landmark_day=study.landmark_day, groups=pair)]
        if adqs is not None and len(adqs):
            ids = set(adsl.loc[adsl[group_col].isin(pair), "USUBJID"])
            q = adqs[adqs["USUBJID"].isin(ids)]
            slopes = fit_alsfrs_slopes(q, group_col=group_col, groups=pair, paramcd=study.functional_total)
            rows.append(slopes.effect_table())
            for rule in ("shared-time", "last-change"):      # the primary, then the sensitivity analysis
                rows.append(compute_joint_rank(adsl[adsl["USUBJID"].isin(ids)], q, tte[tte[group_col].isin(pair)],
                                               group_col=group_col, groups=pair, landmark_day=study.landmark_day,
                                               rule=rule).effect_table())
        part = pd.concat(rows, ignore_index=True).assign(comparison=f"{exp} vs {ref}", note="")
        if not strata:
            _add_note(part, ("logrank", "cox"), "unstratified: the study has no stratification factors, so "
                                                "the stratified log-rank test and Cox model do not apply")
        if adqs is None:
            _add_note(part, ("logrank",), f"no {study.functional_dataset} dataset: functional-score effects "
                                          "not estimated")
        parts.append(part)
    if len(view.arm_levels) >= 3:                   # three or more arms: the global test beside the pairs
        from analysis.survival_models import compute_logrank_global
        arms = tte[tte[group_col].isin(view.arm_levels)]
        chi2, df, p = compute_logrank_global(arms["AVAL"], (arms["CNSR"] == 0).astype(int), arms[group_col])
        parts.insert(0, pd.DataFrame([{"method": "logrank_global", "estimate": np.nan, "ci_lower": np.nan,
                                       "ci_upper": np.nan, "statistic": chi2, "p_value": p,
                                       "comparison": f"All {len(view.arm_levels)} arms",
                                       "note": f"chi-square on {df} df"}]))
    return pd.concat([p[EFFECT_TABLE_COLUMNS] for p in parts], ignore_index=True)


def _add_note(part: pd.DataFrame, methods, text: str) -> None:
    rows = part["method"].isin(methods)
    part.loc[rows, "note"] = part.loc[rows, "note"].map(lambda old: f"{old}; {text}" if old else text)


def _subgroups(view, **_):
    """Derived once per view (the table and the dashboard's forest plot share it)."""
    view.require_unblinded("subgroup table")
    return view_memo(view, "subgroups", lambda: _derive_subgroups(view))


def _derive_subgroups(view):
    from analysis.survival_models import summarize_subgroups
    group_col, _g = groups_of(view)
    tte = get_tte(view)
    subgroups = [c for c in view.study.subgroups if c in tte.columns]
    parts = [summarize_subgroups(tte[tte[group_col].isin(pair)], group_col=group_col, subgroups=subgroups,
                                 groups=pair, overall=True).assign(comparison=f"{pair[0]} vs {pair[1]}")
             for pair in comparisons(view)]      # each arm against the reference arm
    return pd.concat(parts, ignore_index=True)



def _no_subgroups(view) -> str | None:
    return None if view.study.subgroups else "the study config lists no subgroups"


def _effect_method(view) -> str:
    from analysis.baseline import variable_labels
    study = view.study
    names = variable_labels(view.labels("adsl") if hasattr(view, "labels") else None)
    covariates = ", ".join(names.get(c, c).split(",")[0] for c in study.covariates) or "none"   # no units
    stratified = (f"Cox model stratified by {format_strata(study)}" if study.strata_factors
                  else "Cox model (the study has no stratification factors)")
    pairs = comparisons(view)
    favours = pairs[0][0] if len(pairs) == 1 else "the first arm named"
    return (f"{'; '.join(f'{exp} vs {ref}' for exp, ref in pairs)}. Hazard ratios (below 1 favours {favours}) from "
            f"Cox models with Efron ties, Wald 95% CI: unadjusted; {stratified}; adjusted for {covariates}. "
            "Log-rank test unstratified (the primary test) and stratified. Difference in survival at day {landmark} "
            "with Greenwood SEs; difference in restricted mean survival to day {landmark} with Klein-Moeschberger "
            "SEs. ALSFRS-R slope difference (points/month) from a linear mixed model with random intercept and "
            "slope; joint rank test (Finkelstein-Schoenfeld: death first, then ALSFRS-R change at the pair's shared "
            "follow-up time) as a win probability with DeLong 95% CI, and as a sensitivity analysis the same test "
            "comparing survivors on their last change whatever their follow-up. With three or more arms, a global "
            "log-rank test (k - 1 df) precedes the pairwise comparisons.")


_SURVIVAL = DisplaySpec(
    labels={"n": "N", "events": "Deaths"},
    ci=(("median", "median_ci_lower", "median_ci_upper", "Median survival, days (95% CI)", 0, 1.0),
        ("surv_landmark", "surv_landmark_ci_lower", "surv_landmark_ci_upper",
         "Survival at day {landmark}, % (95% CI)", 1, 100.0)),
    pairs=(("rmst", "rmst_se", "RMST to day {landmark}, days (SE)", 0),),
    drop=("landmark_day",), arms="rows", index=("stratum",), blank_repeats=("stratum",))
_SURVIVAL_COLUMNS = ("group", "n", "events", "median", "median_ci_lower", "median_ci_upper", "landmark_day",
                     "surv_landmark", "surv_landmark_ci_lower", "surv_landmark_ci_upper", "rmst", "rmst_se")
_SURVIVAL_METHOD = ("Kaplan-Meier estimates. Median with the 95% CI where the log-log pointwise limits cross one "
                    "half (as R survfit); 'not reached' when the curve stays above one half. Survival at day "
                    "{landmark} with log-log 95% CI (Greenwood variance). Restricted mean survival time (RMST) to "
                    "day {landmark} with Klein-Moeschberger SE.")
_AT_RISK_LABELS = {"n_at_risk": "At risk", "n_events": "Deaths (cumulative)", "n_censored": "Censored (cumulative)"}

OUTPUTS = [
    Output("at-risk", "Numbers at risk, cumulative deaths and censored by day", _at_risk,
           ("group", "time", "n_at_risk", "n_events", "n_censored"), needs=TTE,
           display=DisplaySpec(labels=_AT_RISK_LABELS, arms="cell", index=("time",),
                               cell="{n_at_risk} ({n_events}; {n_censored})",
                               cell_label="at risk (deaths; censored), cumulative to the day"),
           method="Numbers at risk at the start of each day; deaths and censorings cumulative to that day."),
    Output("km", "Kaplan-Meier estimates of survival with 95% CI (log-log)", _km,
           ("group", "time", "n_at_risk", "n_events", "n_censored", "survival", "ci_lower", "ci_upper"), needs=TTE,
           display=DisplaySpec(labels=_AT_RISK_LABELS,
                               ci=(("survival", "ci_lower", "ci_upper", "Survival, % (95% CI, log-log)", 1, 100.0),)),
           method="Kaplan-Meier estimate; 95% CI by the log-log transform (Kalbfleisch-Prentice) with Greenwood's "
                  "variance."),
    Output("survival", "Deaths, median survival, survival at the landmark and RMST", _survival,
           _SURVIVAL_COLUMNS, needs=TTE, display=_SURVIVAL, method=_SURVIVAL_METHOD),
    Output("survival-by-stratum", "Median and landmark survival within each randomisation stratum",
           _survival_by_stratum, ("stratum",) + _SURVIVAL_COLUMNS, needs=TTE, applies=no_strata,
           display=_SURVIVAL, method=_SURVIVAL_METHOD + " Within each randomisation stratum."),
    Output("treatment-effect", "Treatment effect estimates", _treatment_effect, tuple(EFFECT_TABLE_COLUMNS),
           by_arm_only=True, needs=TTE,
           display=DisplaySpec(labels={"method": "Analysis", "statistic": "Statistic", "p_value": "p"},
                               ci=(("estimate", "ci_lower", "ci_upper", "Estimate (95% CI)", 2, 1.0),),
                               p_values=("p_value",), digits={"statistic": 2}, first=("comparison",),
                               hide_empty=("note",), hide_constant=("comparison",)),
           method=_effect_method),
    Output("subgroups", "Hazard ratio for death by pre-specified subgroup, with interaction p", _subgroups,
           ("factor", "level", "n", "events_exp", "events_ref", "hr", "ci_lower", "ci_upper", "p_interaction",
            "comparison"), by_arm_only=True, needs=TTE, applies=_no_subgroups,
           display=DisplaySpec(
               labels={"factor": "Subgroup", "level": "Level", "n": "N", "events_exp": "Deaths, experimental arm",
                       "events_ref": "Deaths, reference arm", "p_interaction": "Interaction p"},
               ci=(("hr", "ci_lower", "ci_upper", "Hazard ratio (95% CI)", 2, 1.0),),
               p_values=("p_interaction",), codes=("factor",), blank_repeats=("factor",)),
           method="Cox model within each subgroup level (Efron ties, Wald 95% CI); interaction p: likelihood-ratio "
                  "test of the arm-by-factor interaction."),
]


# --------------------------------------------------------------------------- figures
def fig_km(view, subtitle=None):
    """Kaplan-Meier by arm (pooled when blinded); unblinded, the panel note of
    ``analysis.figures_survival.format_effect_note`` from the treatment-effect table."""
    from analysis.figures_survival import format_effect_note, plot_km
    study = view.study
    note = None if view.blinded else format_effect_note(table_of("treatment-effect", view), study=view.study)
    return plot_km(get_tte(view), view.group_col, view.arm_levels if view.group_col else None, study.landmark_day,
                   annotation=note, subtitle=subtitle)


def fig_forest(view, subtitle=None):
    """Subgroup forest plot of each arm against the reference arm (unblinded only: the subgroups
    table refuses a blinded view)."""
    from analysis.baseline import variable_labels
    from analysis.figures_survival import plot_forest
    sg = table_of("subgroups", view)
    pairs = comparisons(view)
    if len(pairs) > 1:                         # one block per arm against the reference arm
        return plot_forest(sg, subtitle=subtitle, factor_labels=variable_labels(view.labels("adsl")),
                           labels=("favours the first arm named", f"favours {pairs[0][1]}"))
    return plot_forest(sg, title=f"Hazard ratio by subgroup ({sg['comparison'].iloc[0]})",
                       subtitle=subtitle, factor_labels=variable_labels(view.labels("adsl")),
                       labels=tuple(f"favours {a}" for a in pairs[0]))


FIGURES = [
    FigureOutput("km", "Kaplan-Meier", "Kaplan-Meier estimate of survival with numbers at risk (deaths, censored)",
                 fig_km, table="survival"),
    FigureOutput("forest", "Subgroups (forest plot)", "Hazard ratio (95% CI) for death by pre-specified subgroup with "
                 "interaction p", fig_forest, by_arm_only=True, table="subgroups"),
]
