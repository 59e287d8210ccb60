"""Named tables: the one registry behind ``mirocals table``, the dashboard and the reports.

Each table is a small function of a *view* (anything with ``table(name)``, ``group_col``,
``arm_levels``, ``blinded``, ``study`` and ``require_unblinded``: see ``data_access.views``)
that selects the analysis population and calls one pure analysis function. The view is passed
in, so this module does no I/O of its own and never sees an allocation a view does not hold.

Populations: efficacy and baseline tables use the ITT population (``ITTFL == "Y"``), safety
tables the safety population (``SAFFL == "Y"``); recruitment tables use everyone screened.

A table whose data the snapshot does not hold (a trial without a screening log, a functional
score or labs; a study without strata) raises ``TableUnavailable`` saying why: the CLI prints it,
the dashboard shows it as a note and the reports as a sentence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd


class TableUnavailable(LookupError):
    """The snapshot or study lacks what a table needs (the message says what)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    build: Callable[..., pd.DataFrame]
    by_arm_only: bool = False        # meaningless pooled: refused on a blinded view
    population: str = "ITT"
    needs: tuple[str, ...] = ("adsl",)   # datasets; "functional" = the study's functional dataset
    applies: Callable[..., str | None] | None = None   # view -> why not applicable, or None


def dataset_name(view, need: str) -> str:
    return view.study.functional_dataset if need == "functional" else need


def check_available(name: str, view) -> None:
    """Raise ``TableUnavailable`` when the snapshot lacks a dataset table ``name`` needs or the
    study makes it not applicable."""
    spec = TABLES[name]
    missing = [dataset_name(view, n) for n in spec.needs if dataset_name(view, n) not in view.datasets]
    if missing:
        raise TableUnavailable(f"{name} table not available: no {' or '.join(missing)} dataset in this "
                               f"snapshot ({DATASET_WORDS.get(missing[0], 'it was not delivered')})")
    why = spec.applies(view) if spec.applies else None
    if why:
        raise TableUnavailable(f"{name} table not available: {why}")


DATASET_WORDS = {"screening": "no screening log was delivered", "adqs": "no functional score was delivered",
                 "adlb": "no laboratory data were delivered", "adex": "no exposure data were delivered",
                 "adae": "no adverse events were delivered", "adtte": "no time-to-event data were delivered"}


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


def view_memo(view, key: str, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``build()`` once per view object (a view's data never change); callers get copies. For
    results several tables or figures start from (visit status, stages)."""
    memo = view.__dict__.setdefault("_derived", {})
    if key not in memo:
        memo[key] = build()
    return memo[key].copy()


def get_bds(view, dataset: str, population: str = "ITT", paramcds=None, columns=None) -> pd.DataFrame:
    """A BDS dataset restricted to the population (and optionally to some PARAMCDs and columns;
    USUBJID and PARAMCD are always read)."""
    cols = None
    if columns is not None:
        present = view.columns(dataset)
        cols = list(dict.fromkeys(["USUBJID", "PARAMCD", *[c for c in columns if c in present]]))
    if paramcds is not None:          # filtered in DuckDB: a 20,000-subject ADQS has ~4 million rows
        codes = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paramcds) or "NULL"
        bds = view.table(dataset, columns=cols, where=f"PARAMCD IN ({codes})")
    else:
        bds = view.table(dataset, columns=cols)
    ids = get_adsl(view, population)["USUBJID"]
    return bds[bds["USUBJID"].isin(ids)].reset_index(drop=True)


def _groups(view):
    return (view.group_col, tuple(view.arm_levels) if view.group_col else None)


def strata_columns(view) -> list[str]:
    return list(view.study.strata_factors)


# --------------------------------------------------------------------------- filters: the sites selected
# A dashboard view filtered in the sidebar says what it keeps through three attributes (an
# unfiltered view, the CLI's and the reports', has none of them): ``selected_sites`` (site ids,
# None when no site is restricted), ``filter_label`` ("UK", "FR08 · Bulbar") and
# ``filter_not_by_site`` (the part of the filter no per-site plan can follow: "onset Bulbar").
@dataclass(frozen=True)
class SiteSelection:
    """The sites a view covers and the recruitment plan's share of them.

    ``sites``: the study's sites selected (every site when the filter restricts none);
    ``share``: their share of the sum of the site targets (1.0 for every site); ``target``: the
    planned sample size scaled by ``share``; ``label``: the filter in words, None unfiltered;
    ``restricted``: the filter restricts sites; ``not_by_site``: see above."""
    sites: tuple
    share: float
    target: int
    planned_n: int
    label: str | None = None
    restricted: bool = False
    not_by_site: str | None = None

    @property
    def site_targets(self) -> int:
        return sum(int(s.target or 0) for s in self.sites)


def _half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def site_selection(view) -> SiteSelection:
    """The sites a (filtered) view covers, their share of the site targets and the planned N
    scaled by it: the planned N times the selected sites' targets over all sites' targets
    (their number over all sites' when the study gives no targets)."""
    study = view.study
    everyone = tuple(study.sites)
    ids = getattr(view, "selected_sites", None)
    label, other = getattr(view, "filter_label", None), getattr(view, "filter_not_by_site", None)
    if ids is None:
        return SiteSelection(everyone, 1.0, int(study.planned_n), int(study.planned_n), label, False, other)
    chosen = tuple(s for s in everyone if s.id in set(ids))
    total = sum(int(s.target or 0) for s in everyone)
    share = (sum(int(s.target or 0) for s in chosen) / total if total
             else len(chosen) / len(everyone) if everyone else 0.0)
    return SiteSelection(chosen, share, _half_up(study.planned_n * share), int(study.planned_n), label, True, other)


def scaled_plan(plan, share: float) -> tuple[tuple[str, int], ...]:
    """The recruitment plan (month, cumulative) with every cumulative number scaled by ``share``."""
    return tuple((month, _half_up(cumulative * share)) for month, cumulative in plan)


def filter_note(name: str, view) -> str | None:
    """How a recruitment output follows the view's filter, for its caption (None unfiltered):
    applied fully (plan and target scaled to the chosen sites, only those sites listed) or
    trial-wide, saying which part."""
    sel = site_selection(view)
    if sel.label is None:
        return None
    n_all = len(view.study.sites)
    other = (f" The {sel.not_by_site} filter applies to the counts only: the plan and the site targets "
             "have no split by onset." if sel.not_by_site else "")
    if name in ("plan", "projection"):
        if not sel.restricted:
            return (f"Plan and target are trial-wide (planned N {sel.planned_n}): the plan has no split by "
                    f"onset, so the actual curve ({sel.label}) is set against the whole trial's plan.")
        total = sum(int(s.target or 0) for s in view.study.sites)
        share = (f"these sites' share of the site targets ({sel.site_targets} of {total}, {sel.share:.1%})"
                 if total else f"these sites' share of the sites ({sel.share:.1%})")
        what = ("Projected to the target" if name == "projection" else "Plan and target scaled to the selection")
        return (f"{what}. Target for {sel.label} ({len(sel.sites)} of {n_all} sites): {sel.target} of the "
                f"trial's {sel.planned_n}, {share}; the plan curve is the trial's plan scaled by the same "
                "share." + other)
    if name in ("enrolment", "activation"):
        if not sel.restricted:
            return (f"Every site; counts are {sel.label} only, targets are the sites' whole targets "
                    "(trial-wide: no split by onset).")
        return f"{sel.label} sites only ({len(sel.sites)} of {n_all}), each against its own target." + other
    if name == "changes":
        return (f"{sel.label} only, except sites activated: counted over the whole trial (trial-wide).")
    return f"{sel.label} only."


# --------------------------------------------------------------------------- builders
def _baseline(view, **_):
    from analysis.baseline import summarize_baseline, DEFAULT_VARIABLES
    group_col, groups = _groups(view)
    adsl = get_adsl(view)
    wanted = view.study.baseline_variables or DEFAULT_VARIABLES
    variables = [v for v in wanted if v in adsl.columns]
    return summarize_baseline(adsl, variables, group_col=group_col, groups=groups)


def _at_risk(view, times=None, **_):
    from analysis.survival import summarize_at_risk
    group_col, groups = _groups(view)
    return summarize_at_risk(get_tte(view), group_col=group_col, times=times or default_times(view), groups=groups)


def _km(view, times=None, **_):
    from analysis.survival import summarize_km
    group_col, groups = _groups(view)
    return summarize_km(get_tte(view), group_col=group_col, times=times, groups=groups)


def _survival(view, **_):
    from analysis.survival import summarize_survival
    group_col, groups = _groups(view)
    return summarize_survival(get_tte(view), group_col=group_col, landmark_day=view.study.landmark_day,
                              groups=groups)


def _survival_by_stratum(view, **_):
    from analysis.survival import summarize_survival_by_stratum
    group_col, groups = _groups(view)
    return summarize_survival_by_stratum(get_tte(view), strata_columns(view), group_col=group_col,
                                         landmark_day=view.study.landmark_day, groups=groups)


EFFECT_TABLE_COLUMNS = ["method", "estimate", "ci_lower", "ci_upper", "statistic", "p_value", "comparison",
                        "note"]


def comparisons(view) -> list[tuple[str, str]]:
    """(experimental, reference) arm labels: every arm against the study's reference arm, in
    display order (two arms: one comparison, the first arm against the last)."""
    levels = list(view.arm_levels)
    study = view.study
    ref_code = study.reference_arm if study.reference_arm in study.arm_codes else study.arm_codes[-1]
    ref = levels[list(study.arm_codes).index(ref_code)] if len(levels) == len(study.arm_codes) else levels[-1]
    return [(arm, ref) for arm in levels if arm != ref]


def _treatment_effect(view, **_):
    """Each non-reference arm against the reference arm (column ``comparison``, "A vs B"):
    log-rank and Cox (stratified by the randomisation strata when the study has some; otherwise
    the unstratified rows say so in ``note``), adjusted Cox, landmark and RMST differences, and
    the functional-score slope and joint-rank rows when the snapshot has the functional dataset."""
    view.require_unblinded("treatment-effect table")
    from analysis.survival_models import compute_treatment_effects
    from analysis import alsfrs
    group_col, _g = _groups(view)
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
            slopes = alsfrs.fit_alsfrs_slopes(q, group_col=group_col, groups=pair, paramcd=study.functional_total)
            rows.append(slopes.effect_table())
            rows.append(alsfrs.compute_joint_rank(adsl[adsl["USUBJID"].isin(ids)], q, tte[tte[group_col].isin(pair)],
                                                  group_col=group_col, groups=pair,
                                                  landmark_day=study.landmark_day).effect_table())
        part = pd.concat(rows, ignore_index=True).assign(comparison=f"{exp} vs {ref}", note="")
        if not strata:
            _add_note(part, ("logrank", "cox"), "unstratified: the study has no stratification factors, so "
                                                "the stratified log-rank test and Cox model do not apply")
        if adqs is None:
            _add_note(part, ("logrank",), f"no {study.functional_dataset} dataset: functional-score effects "
                                          "not estimated")
        parts.append(part)
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
    group_col, _g = _groups(view)
    tte = get_tte(view)
    subgroups = [c for c in view.study.subgroups if c in tte.columns]
    parts = [summarize_subgroups(tte[tte[group_col].isin(pair)], group_col=group_col, subgroups=subgroups,
                                 groups=pair, overall=True).assign(comparison=f"{pair[0]} vs {pair[1]}")
             for pair in comparisons(view)]      # each arm against the reference arm
    return pd.concat(parts, ignore_index=True)


def _enrolment(view, **_):
    """The selected sites only (a filtered view), each against its own target."""
    from analysis.recruitment import summarize_enrolment
    return summarize_enrolment(_screening_or_none(view), get_adsl(view, None), site_selection(view).sites)


def _screening_or_none(view):
    """The screening log, or None when the trial was delivered without one (enrolment and
    recruitment by month then come from ADSL alone, with screened counts missing)."""
    return view.table("screening") if "screening" in view.datasets else None


def _balance(view, **_):
    from analysis.recruitment import summarize_balance
    group_col, groups = _groups(view)
    return summarize_balance(get_adsl(view, None), group_col=group_col, groups=groups,
                             strata_cols=strata_columns(view))


def _alsfrs(view, **_):
    from analysis.alsfrs import summarize_alsfrs_by_visit
    group_col, groups = _groups(view)
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return summarize_alsfrs_by_visit(adqs, paramcd=study.functional_total, group_col=group_col,
                                     groups=groups)


def _ae(view, **_):
    """Derived once per view: the ``ae-risk`` table starts from it."""
    from analysis.safety import summarize_ae
    group_col, groups = _groups(view)
    return view_memo(view, "ae", lambda: summarize_ae(view.table("adae"), get_adsl(view, "SAF"),
                                                      group_col=group_col, groups=groups))


def _ae_risk(view, **_):
    view.require_unblinded("AE risk difference table")
    from analysis.safety import summarize_ae_risk
    saf = get_adsl(view, "SAF")
    denominators = saf[view.group_col].value_counts().to_dict()
    return summarize_ae_risk(_ae(view), denominators, comparisons(view))


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
    return summarize_recruitment_by_month(_screening_or_none(view), get_adsl(view, None))


def recruitment_projection(view):
    """The Poisson-gamma projection to the planned sample size at this cut (seeded, so the same
    cut gives the same dates), or ``TableUnavailable`` saying why there is none: recruitment
    ended, target reached, or nobody randomised yet."""
    from analysis.recruitment import fit_recruitment_projection
    study = view.study
    adsl = get_adsl(view, None)
    end = study.raw.get("study", {}).get("recruitment_end")
    if end is not None and str(view.cut_date) > str(end):
        raise TableUnavailable(f"recruitment ended on {end} (study file); no projection is made after it")
    if not study.planned_n:
        raise TableUnavailable("the study file gives no planned sample size")
    sel = site_selection(view)            # a filtered view: its sites, to their share of the target
    if sel.not_by_site:
        raise TableUnavailable(f"no projection for the {sel.not_by_site} filter: targets are per site, "
                               "with no split by onset")
    target, whose = sel.target, (f" for {sel.label}" if sel.label else "")
    if len(adsl) >= target:
        raise TableUnavailable(f"the target of {target}{whose} was reached ({len(adsl)} randomised)")
    if not len(adsl):
        raise TableUnavailable("nobody is randomised yet: the site rates cannot be estimated")
    return fit_recruitment_projection(adsl, sel.sites, view.cut_date, target)


def _projection(view, **_):
    p = recruitment_projection(view)
    return p.summary().assign(prob_reached=p.prob_reached_)


def _changes(view, since=None, **_):
    from analysis.recruitment import summarize_changes
    if since is None:
        raise TableUnavailable("give the previous report's data cut-off (--since / previous_cut)")
    adae = view.table("adae") if "adae" in view.datasets else None
    return summarize_changes(get_adsl(view, None), since, view.cut_date, screening=_screening_or_none(view),
                             adae=adae, sites=view.study.sites)


def _plan(view, **_):
    """Against the trial's plan, or (a view filtered to some sites) the plan scaled by their share
    of the site targets (``site_selection``)."""
    from analysis.recruitment import summarize_cumulative_vs_plan
    sel = site_selection(view)
    plan = scaled_plan(view.study.recruitment_plan, sel.share) if sel.restricted else view.study.recruitment_plan
    return summarize_cumulative_vs_plan(get_adsl(view, None), plan, cut_date=view.cut_date)


def _sequential(view, **_):
    """Planned looks, and, when the study sets ``planned_events``, this data cut as a look at its
    observed information fraction (deaths / planned events) with the observed log-rank z
    (positive favours the experimental arm) against the boundary recomputed for that fraction;
    planned looks before it keep their planned fractions, the final look stays at 1."""
    view.require_unblinded("group-sequential table")
    from analysis.sequential import compute_obf_boundaries, summarize_sequential
    from analysis.survival_models import compute_logrank
    study = view.study
    planned = sorted(study.sequential_looks)
    if not study.planned_events:
        return compute_obf_boundaries(planned, alpha=study.alpha_one_sided).assign(
            label=[f"Planned look {i + 1}" for i in range(len(planned))])
    tte = get_tte(view)
    groups = tuple(view.arm_levels)
    tte = tte[tte[view.group_col].isin([groups[0], groups[-1]])]
    events = int((tte["CNSR"] == 0).sum())
    fraction = min(events / study.planned_events, 1.0)
    lr = compute_logrank(tte["AVAL"], (tte["CNSR"] == 0).astype(int), tte[view.group_col] == groups[0])
    z = -lr.o_minus_e / np.sqrt(lr.variance) if lr.variance > 0 else np.nan   # fewer deaths than expected: > 0
    before = [f for f in planned if f < fraction - 1e-9]
    fractions = before + [fraction] + ([1.0] if fraction < 1.0 else [])
    labels = ([f"Planned look {i + 1}" for i in range(len(before))] + [f"This cut ({view.cut_date})"]
              + (["Final analysis"] if fraction < 1.0 else []))
    looks = pd.DataFrame({"information_fraction": fractions, "label": labels,
                          "events": [round(f * study.planned_events) for f in before] + [events]
                          + ([study.planned_events] if fraction < 1.0 else []),
                          "observed_z": [np.nan] * len(before) + [z] + ([np.nan] if fraction < 1.0 else [])})
    out = summarize_sequential(looks, alpha=study.alpha_one_sided)
    out.loc[out["observed_z"].isna(), "crossed"] = None
    return out


def _exposure(view, **_):
    from analysis.safety import summarize_exposure
    group_col, _g = _groups(view)
    return summarize_exposure(view.table("adex"), get_adsl(view, "SAF"), group_col=group_col)


def _labs(view, paramcd="EOS", **_):
    from analysis.safety import summarize_lab_over_time
    if paramcd.upper() in {c.upper() for c in view.study.arm_revealing_param_codes}:
        view.require_unblinded(f"{paramcd} table (an arm-revealing parameter, [blinding] in the study file)")
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
    """Derived once per view (the completeness, overdue and figure builders all start from it);
    callers get a copy."""
    return view_memo(view, "visit-status", lambda: _derive_visit_status(view))


def _derive_visit_status(view):
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


TTE, SCREENING, AE = ("adsl", "adtte"), ("screening",), ("adsl", "adae")


def _no_strata(view) -> str | None:
    return None if view.study.strata_factors else "the study has no stratification factors"


def _no_subgroups(view) -> str | None:
    return None if view.study.subgroups else "the study config lists no subgroups"


def _no_plan(view) -> str | None:
    return None if view.study.recruitment_plan else "the study config has no recruitment plan"


def _no_death_flag(view) -> str | None:
    return None if "DTHFL" in view.columns("adsl") else "ADSL has no death flag (DTHFL)"


def _no_revealing(view) -> str | None:
    return None if view.study.arm_revealing_params else "the study config lists no arm-revealing parameters"


TABLES: dict[str, TableSpec] = {s.name: s for s in [
    TableSpec("baseline", "Baseline characteristics (Table 1), ITT", _baseline),
    TableSpec("at-risk", "Numbers at risk, cumulative events and censored", _at_risk, needs=TTE),
    TableSpec("km", "Kaplan-Meier estimates with 95% CI (log-log)", _km, needs=TTE),
    TableSpec("survival", "Median, landmark survival and RMST", _survival, needs=TTE),
    TableSpec("survival-by-stratum", "Median and landmark survival within each randomisation stratum",
              _survival_by_stratum, needs=TTE, applies=_no_strata),
    TableSpec("treatment-effect", "Treatment effect estimates (unblinded only)", _treatment_effect, True,
              needs=TTE),
    TableSpec("subgroups", "Subgroup hazard ratios with interaction p (unblinded only)", _subgroups, True,
              needs=TTE, applies=_no_subgroups),
    TableSpec("sequential", "Group-sequential boundaries (unblinded only)", _sequential, True),
    TableSpec("enrolment", "Enrolment by site against target", _enrolment, population="screened"),
    TableSpec("recruitment", "Screened and randomised by site and month", _recruitment, population="screened"),
    TableSpec("plan", "Cumulative randomised against the recruitment plan", _plan, population="all",
              applies=_no_plan),
    TableSpec("changes", "Changes since the previous report's cut-off (pooled)", _changes, population="all"),
    TableSpec("projection", "Projected date to reach the planned sample size (Poisson-gamma, 80% and 95% "
              "prediction intervals)", _projection, population="all"),
    TableSpec("funnel", "Screening and run-in funnel with reasons", _funnel, population="screened", needs=SCREENING),
    TableSpec("consort", "CONSORT flow counts", _consort, population="screened", needs=SCREENING + TTE),
    TableSpec("balance", "Stratum balance by site", _balance, population="all", applies=_no_strata),
    TableSpec("alsfrs", "ALSFRS-R total: mean change from baseline by visit", _alsfrs, needs=("adsl", "functional")),
    TableSpec("ae", "Treatment-emergent AEs by SOC and PT, safety population", _ae, population="SAF", needs=AE),
    TableSpec("ae-risk", "Absolute risk of each AE per arm and the risk difference with Newcombe 95% CI "
              "(unblinded only)", _ae_risk, True, population="SAF", needs=AE),
    TableSpec("ae-severity", "Subjects by worst AE severity, safety population", _ae_severity, population="SAF",
              needs=AE),
    TableSpec("sae", "Listing of serious adverse events", _sae, population="SAF", needs=AE),
    TableSpec("deaths", "Listing of deaths", _deaths, population="all", applies=_no_death_flag),
    TableSpec("exposure", "Treatment exposure (cycles received)", _exposure, population="SAF",
              needs=("adsl", "adex")),
    TableSpec("labs", "Eosinophils over time", _labs, population="SAF", needs=("adsl", "adlb")),
    TableSpec("tregs", "Treg counts over time (unblinded only)", _tregs, True, population="SAF",
              needs=("adsl", "adlb"), applies=_no_revealing),
    TableSpec("visit-status", "Status of every scheduled visit at the cut", _visit_status, population="all",
              needs=("adsl", "functional")),
    TableSpec("completeness", "Expected, done, missed and overdue visits by site", _completeness,
              population="all", needs=("adsl", "functional")),
    TableSpec("overdue-visits", "Visits overdue at the cut (window still open)", _overdue_visits,
              population="all", needs=("adsl", "functional")),
    TableSpec("entry-lag", "Data-entry lag by site (days from visit or event to entry)", _entry_lag,
              population="all"),
]}


def build_table(name: str, view, times=None, since=None) -> pd.DataFrame:
    """Build the named table for a view. Raises ``KeyError`` for an unknown name, the view's
    ``BlindingError`` for a by-arm-only table on a blinded view and ``TableUnavailable`` (saying
    why) when the snapshot lacks a dataset the table needs or the study makes it not applicable.
    ``times``: number-at-risk times (``at-risk``, ``km``); ``since``: the previous report's
    cut-off (``changes``)."""
    spec = TABLES[name]
    if spec.by_arm_only:
        view.require_unblinded(f"{name} table")
    check_available(name, view)
    return spec.build(view, times=times, since=since)
