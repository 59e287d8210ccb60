"""Named tables: the one registry behind ``mirocals table``, the dashboard and the reports.

Each table is a small function of a *view* (anything with ``table(name)``, ``group_col``,
``arm_levels``, ``blinded``, ``study`` and ``require_unblinded``: see ``data_access.views``)
that selects the analysis population and calls one pure analysis function. The view is passed
in, so this module does no I/O of its own and never sees an allocation a view does not hold.

Populations: efficacy and baseline tables use the ITT population (``ITTFL == "Y"``), safety
tables the safety population (``SAFFL == "Y"``); recruitment tables use everyone screened.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

ARM_COLUMNS = ("ARM", "ARMCD")


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    build: Callable[..., pd.DataFrame]
    by_arm_only: bool = False        # meaningless pooled: refused on a blinded view
    population: str = "ITT"


def get_adsl(view, population: str | None = "ITT") -> pd.DataFrame:
    """ADSL restricted to a population flag (ITT -> ITTFL, SAF -> SAFFL; None = all rows)."""
    adsl = view.table("adsl")
    flag = {"ITT": view.study.col("itt_flag"), "SAF": view.study.col("safety_flag")}.get(population or "")
    if flag and flag in adsl.columns:
        adsl = adsl[adsl[flag] == "Y"]
    return adsl.reset_index(drop=True)


def get_tte(view, paramcd: str | None = None, population: str | None = "ITT") -> pd.DataFrame:
    """One ADTTE parameter (default: the study's survival endpoint) with ADSL covariates merged."""
    paramcd = paramcd or view.study.survival_paramcd
    tte = view.table("adtte")
    tte = tte[tte["PARAMCD"] == paramcd]
    adsl = get_adsl(view, population)
    keep = [c for c in adsl.columns if c not in tte.columns or c == "USUBJID"]
    return tte.merge(adsl[keep], on="USUBJID", how="inner").reset_index(drop=True)


def get_bds(view, dataset: str, population: str = "ITT", paramcds=None) -> pd.DataFrame:
    """A BDS dataset restricted to the population (and optionally to some PARAMCDs)."""
    bds = view.table(dataset)
    if paramcds is not None:
        bds = bds[bds["PARAMCD"].isin(list(paramcds))]
    ids = get_adsl(view, population)["USUBJID"]
    return bds[bds["USUBJID"].isin(ids)].reset_index(drop=True)


def _groups(view):
    return (view.group_col, tuple(view.arm_levels) if view.group_col else None)


def strata_columns(view) -> list[str]:
    return list(view.study.strata_factors)


# --------------------------------------------------------------------------- builders
def _baseline(view, **_):
    from analysis.baseline import summarize_baseline, DEFAULT_VARIABLES
    group_col, groups = _groups(view)
    adsl = get_adsl(view)
    variables = [v for v in DEFAULT_VARIABLES if v in adsl.columns]
    return summarize_baseline(adsl, variables, group_col=group_col, groups=groups)


def _at_risk(view, times=None, **_):
    from analysis.survival import summarize_at_risk
    group_col, _g = _groups(view)
    return summarize_at_risk(get_tte(view), group_col=group_col, times=times or default_times(view))


def _km(view, times=None, **_):
    from analysis.survival import summarize_km
    group_col, _g = _groups(view)
    return summarize_km(get_tte(view), group_col=group_col, times=times)


def _survival(view, **_):
    from analysis.survival import summarize_survival
    group_col, _g = _groups(view)
    return summarize_survival(get_tte(view), group_col=group_col, landmark_day=view.study.landmark_day)


def _treatment_effect(view, **_):
    view.require_unblinded("treatment-effect table")
    from analysis.survival import compute_treatment_effects
    from analysis import alsfrs
    group_col, groups = _groups(view)
    study = view.study
    tte = get_tte(view)
    covariates = [c for c in study.covariates if c in tte.columns]
    parts = [compute_treatment_effects(tte, group_col=group_col, strata_cols=strata_columns(view),
                                       covariates=covariates, landmark_day=study.landmark_day,
                                       groups=groups)]
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    if len(adqs):
        slopes = alsfrs.fit_alsfrs_slopes(adqs, group_col=group_col, groups=groups,
                                          paramcd=study.functional_total)
        parts.append(slopes.effect_table())
        parts.append(alsfrs.compute_joint_rank(get_adsl(view), adqs, tte, group_col=group_col,
                                               groups=groups, landmark_day=study.landmark_day).effect_table())
    cols = ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value"]
    return pd.concat([p[cols] for p in parts], ignore_index=True)


def _subgroups(view, **_):
    view.require_unblinded("subgroup table")
    from analysis.survival import summarize_subgroups
    group_col, groups = _groups(view)
    tte = get_tte(view)
    subgroups = [c for c in view.study.subgroups if c in tte.columns]
    return summarize_subgroups(tte, group_col=group_col, subgroups=subgroups, groups=groups)


def _enrolment(view, **_):
    from analysis.recruitment import summarize_enrolment
    return summarize_enrolment(view.table("screening"), get_adsl(view, None), view.study.sites)


def _balance(view, **_):
    from analysis.recruitment import summarize_balance
    group_col, groups = _groups(view)
    return summarize_balance(get_adsl(view, None), group_col=group_col, groups=groups)


def _alsfrs(view, **_):
    from analysis.alsfrs import summarize_alsfrs_by_visit
    group_col, groups = _groups(view)
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return summarize_alsfrs_by_visit(adqs, paramcd=study.functional_total, group_col=group_col,
                                     groups=groups)


def _ae(view, **_):
    from analysis.safety import summarize_ae
    group_col, groups = _groups(view)
    return summarize_ae(view.table("adae"), get_adsl(view, "SAF"), group_col=group_col, groups=groups)


def _consort(view, **_):
    from analysis.recruitment import summarize_consort
    group_col, groups = _groups(view)
    return summarize_consort(view.table("screening"), get_adsl(view, None), get_tte(view, population=None),
                             group_col=group_col, groups=groups)


def _funnel(view, **_):
    from analysis.recruitment import summarize_funnel
    return summarize_funnel(view.table("screening"), by_site=True)


def _ae_severity(view, **_):
    from analysis.safety import summarize_ae_by_severity
    group_col, groups = _groups(view)
    return summarize_ae_by_severity(view.table("adae"), get_adsl(view, "SAF"), group_col=group_col,
                                    groups=groups)


def _recruitment(view, **_):
    from analysis.recruitment import summarize_recruitment_by_month
    return summarize_recruitment_by_month(view.table("screening"), get_adsl(view, None))


def _plan(view, **_):
    from analysis.recruitment import summarize_cumulative_vs_plan
    return summarize_cumulative_vs_plan(get_adsl(view, None), view.study.recruitment_plan,
                                        cut_date=view.cut_date)


def _sequential(view, **_):
    view.require_unblinded("group-sequential table")
    from analysis.sequential import compute_obf_boundaries
    study = view.study
    return compute_obf_boundaries(list(study.sequential_looks), alpha=study.alpha_one_sided)


def _exposure(view, **_):
    from analysis.safety import summarize_exposure
    group_col, _g = _groups(view)
    return summarize_exposure(view.table("adex"), get_adsl(view, "SAF"), group_col=group_col)


def _labs(view, paramcd="EOS", **_):
    from analysis.safety import summarize_lab_over_time
    if paramcd in view.study.arm_revealing_params:
        view.require_unblinded(f"{paramcd} table")
    group_col, _g = _groups(view)
    return summarize_lab_over_time(get_bds(view, "adlb", "SAF", [paramcd]), paramcd, group_col=group_col)


def _tregs(view, **kw):
    view.require_unblinded("Treg table")
    return _labs(view, paramcd=view.study.arm_revealing_params[0])


def _sae(view, **_):
    from analysis.safety import list_saes
    return list_saes(view.table("adae"), get_adsl(view, "SAF"), group_col=view.group_col)


def _deaths(view, **_):
    from analysis.safety import list_deaths
    return list_deaths(get_adsl(view, None), view.table("adae"), group_col=view.group_col)


def _visit_status(view, **_):
    from analysis.completeness import derive_visit_status
    study = view.study
    adsl = get_adsl(view, None)
    adsl = adsl[[c for c in ("USUBJID", "SITEID", "RANDDT", "DTHDT", "EOSSTT", "EOSDT") if c in adsl.columns]]
    adqs = view.table(study.functional_dataset, columns=["USUBJID", "AVISITN", "ADT"])
    return derive_visit_status(adsl, adqs, study.visit_days, study.visit_names, study.visit_window,
                               cut_date=view.cut_date)


def _completeness(view, **_):
    from analysis.completeness import summarize_completeness_by_site
    return summarize_completeness_by_site(_visit_status(view), get_adsl(view, None)[["USUBJID", "SITEID"]])


def _overdue_visits(view, **_):
    from analysis.completeness import list_overdue_visits
    return list_overdue_visits(_visit_status(view))


def _entry_lag(view, **_):
    """Per dataset that has a data-entry date (ENTDT): empty (with the columns) when none has."""
    from analysis.completeness import summarize_entry_lag
    adsl = get_adsl(view, None)[["USUBJID", "SITEID"]]
    parts = []
    for name, date_col in ((view.study.functional_dataset, "ADT"), ("adae", "ASTDT")):
        if name not in view.datasets:
            continue
        cols = view.columns(name)
        if "ENTDT" not in cols or date_col not in cols:
            continue
        keep = ["USUBJID", date_col, "ENTDT"] + (["AVISITN"] if "AVISITN" in cols else [])
        parts.append(summarize_entry_lag(view.table(name, columns=keep), adsl, date_col=date_col)
                     .assign(dataset=name))
    cols = ["dataset", "site", "records", "median_lag", "p90_lag", "max_lag", "late", "percent_late"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def default_times(view) -> list[int]:
    """Number-at-risk times: every 80 days to the landmark (0, 80, ..., 640)."""
    step = 80
    return list(range(0, view.study.landmark_day + 1, step))


TABLES: dict[str, TableSpec] = {s.name: s for s in [
    TableSpec("baseline", "Baseline characteristics (Table 1), ITT", _baseline),
    TableSpec("at-risk", "Numbers at risk, cumulative events and censored", _at_risk),
    TableSpec("km", "Kaplan-Meier estimates with 95% CI (log-log)", _km),
    TableSpec("survival", "Median, landmark survival and RMST", _survival),
    TableSpec("treatment-effect", "Treatment effect estimates (unblinded only)", _treatment_effect, True),
    TableSpec("subgroups", "Subgroup hazard ratios with interaction p (unblinded only)", _subgroups, True),
    TableSpec("sequential", "Group-sequential boundaries (unblinded only)", _sequential, True),
    TableSpec("enrolment", "Enrolment by site against target", _enrolment, population="screened"),
    TableSpec("recruitment", "Screened and randomised by site and month", _recruitment, population="screened"),
    TableSpec("plan", "Cumulative randomised against the recruitment plan", _plan, population="all"),
    TableSpec("funnel", "Screening and run-in funnel with reasons", _funnel, population="screened"),
    TableSpec("consort", "CONSORT flow counts", _consort, population="screened"),
    TableSpec("balance", "Stratum balance by site", _balance, population="all"),
    TableSpec("alsfrs", "ALSFRS-R total: mean change from baseline by visit", _alsfrs),
    TableSpec("ae", "Treatment-emergent AEs by SOC and PT, safety population", _ae, population="SAF"),
    TableSpec("ae-severity", "Subjects by worst AE severity, safety population", _ae_severity, population="SAF"),
    TableSpec("sae", "Listing of serious adverse events", _sae, population="SAF"),
    TableSpec("deaths", "Listing of deaths", _deaths, population="all"),
    TableSpec("exposure", "Treatment exposure (cycles received)", _exposure, population="SAF"),
    TableSpec("labs", "Eosinophils over time", _labs, population="SAF"),
    TableSpec("tregs", "Treg counts over time (unblinded only)", _tregs, True, population="SAF"),
    TableSpec("visit-status", "Status of every scheduled visit at the cut", _visit_status, population="all"),
    TableSpec("completeness", "Expected, done, missed and overdue visits by site", _completeness,
              population="all"),
    TableSpec("overdue-visits", "Visits overdue at the cut (window still open)", _overdue_visits,
              population="all"),
    TableSpec("entry-lag", "Data-entry lag by site (days from visit or event to entry)", _entry_lag,
              population="all"),
]}


def build_table(name: str, view, times=None) -> pd.DataFrame:
    """Build the named table for a view. Raises ``KeyError`` for an unknown name and the view's
    ``BlindingError`` for a by-arm-only table on a blinded view."""
    spec = TABLES[name]
    if spec.by_arm_only:
        view.require_unblinded(f"{name} table")
    return spec.build(view, times=times)
