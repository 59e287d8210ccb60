"""Safety outputs: adverse events by SOC and PT (counts, risks and the risk difference, worst
severity), the SAE and death listings, exposure and laboratory parameters over time. Each is
defined once here. Arm-revealing content (eosinophils and Tregs, which IL-2 raises; injection-site
reactions) is declared in the study file and refused or withheld on a blinded view by the view
itself (``data_access.views``)."""
from __future__ import annotations

from analysis.display_table import DisplaySpec
from analysis.outputs.base import AE, FigureOutput, Output, TableUnavailable, comparisons, get_adsl, get_bds, groups_of, view_memo

def _ae(view, **_):
    """Derived once per view: the ``ae-risk`` table starts from it."""
    from analysis.safety import summarize_ae
    group_col, groups = groups_of(view)
    return view_memo(view, "ae", lambda: summarize_ae(view.table("adae"), get_adsl(view, "SAF"),
                                                      group_col=group_col, groups=groups))


def _ae_risk(view, **_):
    view.require_unblinded("AE risk difference table")
    from analysis.safety import summarize_ae_risk
    saf = get_adsl(view, "SAF")
    denominators = saf[view.group_col].value_counts().to_dict()
    return summarize_ae_risk(_ae(view), denominators, comparisons(view))



def _ae_severity(view, **_):
    from analysis.safety import summarize_ae_by_severity
    group_col, groups = groups_of(view)
    return summarize_ae_by_severity(view.table("adae"), get_adsl(view, "SAF"), group_col=group_col,
                                    groups=groups)



def _exposure(view, **_):
    from analysis.safety import summarize_exposure
    group_col, _g = groups_of(view)
    return summarize_exposure(view.table("adex"), get_adsl(view, "SAF"), group_col=group_col)


def _labs(view, paramcd="EOS", **_):
    from analysis.safety import summarize_lab_over_time
    if paramcd.upper() in {c.upper() for c in view.study.arm_revealing_param_codes}:
        view.require_unblinded(f"{paramcd} table (an arm-revealing parameter, [blinding] in the study file)")
    group_col, _g = groups_of(view)
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



def _no_death_flag(view) -> str | None:
    return None if "DTHFL" in view.columns("adsl") else "ADSL has no death flag (DTHFL)"


def _no_revealing(view) -> str | None:
    return None if view.study.arm_revealing_params else "the study config lists no arm-revealing parameters"


_AE_DISPLAY = DisplaySpec(percents=("percent",), digits={"percent": 1}, sentence_case=("severity",),
                          labels={"severity": "Worst severity"}, arms="cell", blank_repeats=("soc", "pt"))
_AE_METHOD = ("Treatment-emergent adverse events, safety population; a participant is counted once per system organ "
              "class and preferred term; % of the arm's safety population.")
def _risk_method(view) -> str:
    pairs = "; ".join(f"experimental arm {exp}, reference arm {ref}" for exp, ref in comparisons(view))
    return (f"{pairs[0].upper()}{pairs[1:]}. Absolute risk per arm (% of the arm's safety population); difference "
            "in percentage points (experimental minus reference) with Newcombe's hybrid score 95% CI (method 10 of "
            "Newcombe 1998).")


_LAB_COLUMNS = ("group", "visit", "day", "n", "mean", "sd", "median", "q1", "q3")


def _lab_display(digits: int) -> DisplaySpec:
    return DisplaySpec(digits={c: digits for c in ("mean", "sd", "median", "q1", "q3")}, drop=("day",),
                       arms="cell", index=("visit",), cell="{n}: {mean} ({sd}); {median} ({q1} to {q3})",
                       cell_label="n: mean (SD); median (Q1 to Q3)")


_LAB_METHOD = "Observed values by scheduled visit, safety population."

OUTPUTS = [
    Output("ae", "Treatment-emergent adverse events by system organ class and preferred term", _ae,
           ("soc", "pt", "group", "n_subjects", "percent", "n_events"), population="SAF", needs=AE,
           display=DisplaySpec(**{**_AE_DISPLAY.__dict__, "index": ("soc", "pt"),
                                  "cell": "{n_subjects} ({percent}) [{n_events}]",
                                  "cell_label": "participants n (% of the arm) [events]"}),
           method=_AE_METHOD),
    Output("ae-risk", "Absolute risk of each adverse event by arm and the risk difference", _ae_risk,
           ("soc", "pt", "comparison", "n_exp", "N_exp", "n_ref", "N_ref", "risk_exp", "risk_ref", "difference",
            "ci_lower", "ci_upper"), by_arm_only=True, population="SAF", needs=AE,
           display=DisplaySpec(
               ci=(("difference", "ci_lower", "ci_upper", "Difference, % points (95% CI)", 1, 1.0),),
               percents=("risk_exp", "risk_ref"), digits={"risk_exp": 1, "risk_ref": 1},
               compose=(("n_exp", "{n_exp}/{N_exp} ({risk_exp})", "Experimental arm: n/N (%)"),
                        ("n_ref", "{n_ref}/{N_ref} ({risk_ref})", "Reference arm: n/N (%)")),
               first=("comparison",), hide_constant=("comparison",), blank_repeats=("soc",)),
           method=_risk_method),
    Output("ae-severity", "Participants by worst severity of treatment-emergent adverse events", _ae_severity,
           ("soc", "pt", "severity", "group", "n_subjects", "percent"), population="SAF", needs=AE,
           display=DisplaySpec(**{**_AE_DISPLAY.__dict__, "index": ("soc", "pt", "severity"),
                                  "cell": "{n_subjects} ({percent})", "cell_label": "participants n (% of the arm)"}),
           method="Worst severity per participant over the treatment-emergent adverse events, any and by system "
                  "organ class; % of the arm's safety population."),
    Output("sae", "Listing of serious adverse events", _sae,
           ("subject", "site_id", "group", "soc", "term", "start", "end", "study_day", "severity", "relationship",
            "outcome", "treatment_emergent"), population="SAF", needs=AE, listing=True,
           display=DisplaySpec(sentence_case=("severity", "relationship", "outcome"), yes_no=("treatment_emergent",))),
    Output("deaths", "Listing of deaths", _deaths,
           ("subject", "site_id", "group", "randomised", "death_date", "study_day", "fatal_ae"), population="all",
           applies=_no_death_flag, listing=True,
           display=DisplaySpec(labels={"randomised": "Randomised", "death_date": "Date of death",
                                       "fatal_ae": "Fatal adverse event"})),
    Output("exposure", "Treatment exposure: cycles of study drug received", _exposure,
           ("group", "n", "mean", "sd", "median", "min", "max"), population="SAF", needs=("adsl", "adex"),
           display=DisplaySpec(labels={"n": "N", "mean": "Cycles received, mean", "sd": "Cycles received, SD",
                                       "median": "Cycles received, median", "min": "Cycles received, minimum",
                                       "max": "Cycles received, maximum"}, digits={"mean": 1, "sd": 1},
                               arms="rows"),
           method="Cycles received to the cut-off (exposure dataset), safety population."),
    Output("labs", "Eosinophils (10^9/L) by visit", _labs, _LAB_COLUMNS, population="SAF", needs=("adsl", "adlb"),
           display=_lab_display(3), method=_LAB_METHOD),
    Output("tregs", "Treg count (cells/uL) by visit", _tregs, _LAB_COLUMNS, by_arm_only=True, population="SAF",
           needs=("adsl", "adlb"), applies=_no_revealing, display=_lab_display(1), method=_LAB_METHOD),
]


# --------------------------------------------------------------------------- figures
def _lab_dataset(study) -> str:
    return study.raw.get("endpoints", {}).get("lab_dataset", "adlb")


def _require_labs(view, params=None) -> None:
    """``TableUnavailable`` (shown as a note) when the snapshot has no lab dataset or no such
    parameters are configured."""
    name = _lab_dataset(view.study)
    if name not in view.datasets:
        raise TableUnavailable(f"no laboratory dataset ({name}) in this snapshot")
    if params is not None and not params:
        raise TableUnavailable("the study config lists no arm-revealing laboratory parameters")


def _lab_table(view, params) -> tuple:
    """Mean/SD by visit (and arm when unblinded) for each parameter with data at 2+ visits, and
    the panel titles ("Eosinophils (10^9/L)")."""
    import pandas as pd
    from analysis.safety import summarize_lab_over_time
    study = view.study
    lab = get_bds(view, _lab_dataset(study), "SAF", params)
    group_col = view.group_col
    groups = tuple(view.arm_levels) if group_col else None
    parts, labels = [], {}
    for p in params:
        d = lab[lab["PARAMCD"] == p]
        if d["AVISITN"].nunique() < 2:
            continue
        unit = d["AVALU"].dropna().iloc[0] if "AVALU" in d and d["AVALU"].notna().any() else None
        name = d["PARAM"].iloc[0] if "PARAM" in d else p
        labels[p] = f"{name} ({unit})" if unit else name
        parts.append(summarize_lab_over_time(d, p, group_col=group_col, groups=groups).assign(paramcd=p))
    return (pd.concat(parts, ignore_index=True) if parts else
            pd.DataFrame(columns=["paramcd", "group", "visit", "day", "n", "mean", "sd"])), labels


def fig_labs(view, subtitle=None):
    """Labs over time, except the arm-revealing parameters (pooled when blinded)."""
    from analysis.figures_safety import plot_labs_over_time
    study = view.study
    _require_labs(view)
    present = view.table(_lab_dataset(study), columns=["PARAMCD"])["PARAMCD"].dropna().unique()
    params = [p for p in sorted(present) if p not in study.arm_revealing_params]
    table, labels = _lab_table(view, params)
    return plot_labs_over_time(table, title="Laboratory values: mean (+/- SE) by visit", labels=labels,
                               subtitle=subtitle and subtitle + " · safety population")


def fig_tregs(view, subtitle=None):
    """Treg counts and percentages by arm: unblinded only (IL-2 raises them)."""
    view.require_unblinded("Treg figure")
    _require_labs(view, list(view.study.arm_revealing_params))
    from analysis.figures_safety import plot_labs_over_time
    table, labels = _lab_table(view, list(view.study.arm_revealing_params))
    return plot_labs_over_time(table, title="Regulatory T cells: mean (+/- SE) by visit", labels=labels,
                               subtitle=subtitle and subtitle + " · safety population")


FIGURES = [
    FigureOutput("labs", "Labs over time", "Laboratory values, mean (SE) by visit, safety population", fig_labs, table="labs"),
    FigureOutput("tregs", "Tregs over time", "Regulatory T cells, mean (SE) by visit and arm, safety population",
                 fig_tregs, by_arm_only=True, table="tregs"),
]
