"""Functional outputs (ALSFRS-R): the total, the domains and the items by visit (mean and mean
change from baseline), King's and MiToS stages derived from the items, and the total's slope from
the linear mixed model. Each is defined once here."""
from __future__ import annotations

import pandas as pd

from analysis.display_table import DisplaySpec
from analysis.outputs.base import FigureOutput, Output, table_of, get_adsl, get_bds, groups_of, view_memo

def _alsfrs(view, **_):
    from analysis.alsfrs import summarize_alsfrs_by_visit
    group_col, groups = groups_of(view)
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return summarize_alsfrs_by_visit(adqs, paramcd=study.functional_total, group_col=group_col,
                                     groups=groups)



def _subjectgroups_of(view):
    if not view.group_col:
        return None
    adsl = get_adsl(view)
    return dict(zip(adsl["USUBJID"], adsl[view.group_col]))


def _by_visit_for_each(view, paramcds, label: str) -> pd.DataFrame:
    """Mean score and change by visit for each PARAMCD, derived once per view (table and figure
    share it). Only the columns the summary uses are read, and the rows are split by PARAMCD in
    one pass (a 20,000-subject ADQS has ~3 million item rows: 4.5 s -> about 1 s)."""
    return view_memo(view, f"by_visit_{label}", lambda: _derive_by_visit_for_each(view, paramcds, label))


def _derive_by_visit_for_each(view, paramcds, label: str) -> pd.DataFrame:
    from analysis.alsfrs import summarize_alsfrs_by_visit
    group_col, groups = groups_of(view)
    adqs = get_bds(view, view.study.functional_dataset, paramcds=paramcds,
                   columns=["AVISITN", "AVISIT", "ADY", "AVAL", "CHG", "BASE", "ABLFL", "PARAM", group_col or ""])
    by_code = dict(tuple(adqs.groupby("PARAMCD", sort=False, observed=True)))
    names = (adqs.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"].to_dict() if "PARAM" in adqs.columns
             else {})
    parts = [summarize_alsfrs_by_visit(by_code[p], paramcd=p, group_col=group_col, groups=groups)
             .assign(**{label: p, "parameter": names.get(p, p)}) for p in paramcds if p in by_code]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out[[label, "parameter"] + [c for c in out.columns if c not in (label, "parameter")]] if len(out) else out


def _domains(view, **_) -> pd.DataFrame:
    """Mean change from baseline by visit for each ALSFRS-R domain."""
    return _by_visit_for_each(view, view.study.functional_domains, "domain")


def _items(view, **_) -> pd.DataFrame:
    """Mean score and change from baseline by visit for each ALSFRS-R item (5a and 5b apart:
    each subject answers one of them, by gastrostomy status)."""
    return _by_visit_for_each(view, view.study.functional_items, "item")


STAGINGS = ("derive_kings_stage", "derive_mitos_stage")


def _stages(view, derive_name: str) -> pd.DataFrame:
    """Stage distribution by visit, derived once per view (the table and its figure share it);
    King's and MiToS are derived together from one read of the items (at 20,000 subjects the
    read is ~1 s of each)."""
    both = view_memo(view, "stages", lambda: _derive_stages(view))
    return both[both["_staging"] == derive_name].drop(columns="_staging").reset_index(drop=True)


def _derive_stages(view) -> pd.DataFrame:
    """King's and MiToS distributions stacked (column ``_staging``: the derivation's name)."""
    from analysis import alsfrs
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=study.functional_items,
                   columns=["AVISITN", "AVISIT", "ADT", "ADY", "AVAL", "ABLFL"] + [view.group_col or ""])
    adsl = get_adsl(view)
    keep = ["USUBJID", "DTHDT", "RANDDT"] + ([view.group_col] if view.group_col else [])
    deaths = adsl[[c for c in keep if c in adsl.columns]]
    deaths = deaths[deaths["DTHDT"].notna()] if "DTHDT" in deaths.columns else None
    groups = tuple(view.arm_levels) if view.group_col else None
    return pd.concat([alsfrs.summarize_stages(getattr(alsfrs, name)(adqs, deaths=deaths, group_col=view.group_col),
                                              group_col=view.group_col, subject_groups=_subjectgroups_of(view),
                                              groups=groups).assign(_staging=name)
                      for name in STAGINGS], ignore_index=True)


def _kings(view, **_) -> pd.DataFrame:
    """King's stage distribution by visit (derived from the items)."""
    return _stages(view, "derive_kings_stage")


def _mitos(view, **_) -> pd.DataFrame:
    """MiToS stage distribution by visit (derived from the items)."""
    return _stages(view, "derive_mitos_stage")


def _slopes(view, **_) -> pd.DataFrame:
    """ALSFRS-R total slope (points/month) from the linear mixed model, per group (pooled when
    blinded)."""
    from analysis.alsfrs_models import fit_alsfrs_slopes
    study = view.study
    group_col, groups = groups_of(view)
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return fit_alsfrs_slopes(adqs, group_col=group_col, groups=groups, paramcd=study.functional_total).slopes



_BY_VISIT_COLUMNS = ("group", "visit", "day", "n", "mean", "se", "mean_change", "se_change")
_FUNCTIONAL = ("adsl", "functional")


def _by_visit_display(index=()) -> DisplaySpec:
    return DisplaySpec(labels={"parameter": "Parameter"}, drop=("day", "domain", "item"),
                       digits={"mean": 1, "se": 2, "mean_change": 2, "se_change": 2},
                       arms="cell", index=(*index, "visit"), blank_repeats=index,
                       cell="{n}: {mean} ({se}); {mean_change} ({se_change})",
                       cell_label="n: mean (SE); mean change from baseline (SE)")


_STAGES_DISPLAY = DisplaySpec(drop=("AVISITN",), percents=("percent",), digits={"percent": 1}, arms="cell",
                              index=("visit", "stage"), cell="{n} ({percent})", blank_repeats=("visit",),
                              cell_label="participants n (% of those assessed at the visit)")
_BY_VISIT_METHOD = ("Observed scores by scheduled visit (ITT); change from the participant's baseline; visits at "
                    "their median study day.")

OUTPUTS = [
    Output("alsfrs", "ALSFRS-R total (0-48 points) by visit: mean and mean change from baseline", _alsfrs,
           _BY_VISIT_COLUMNS, needs=_FUNCTIONAL, display=_by_visit_display(), method=_BY_VISIT_METHOD),
    Output("alsfrs-domains", "ALSFRS-R domains (0-12 points each) by visit: mean and mean change from baseline",
           _domains, ("domain", "parameter") + _BY_VISIT_COLUMNS, needs=_FUNCTIONAL,
           display=_by_visit_display(("parameter",)), method=_BY_VISIT_METHOD),
    Output("alsfrs-items", "ALSFRS-R items (0-4 points each) by visit: mean and mean change from baseline",
           _items, ("item", "parameter") + _BY_VISIT_COLUMNS, needs=_FUNCTIONAL,
           display=_by_visit_display(("parameter",)),
           method=_BY_VISIT_METHOD + " Items 5a and 5b apart: each participant answers one of them, by gastrostomy."),
    Output("kings", "King's clinical stage by visit", _kings, ("group", "visit", "AVISITN", "stage", "n", "percent"),
           needs=_FUNCTIONAL, display=_STAGES_DISPLAY,
           method="King's stage (1-4; 5 = death) derived from the ALSFRS-R items (Balendra 2014)."),
    Output("mitos", "MiToS functional stage by visit", _mitos, ("group", "visit", "AVISITN", "stage", "n", "percent"),
           needs=_FUNCTIONAL, display=_STAGES_DISPLAY,
           method="MiToS stage (0-4; 5 = death) derived from the ALSFRS-R items (Chio 2015)."),
    Output("slopes", "ALSFRS-R total: slope (points/month) from the linear mixed model", _slopes,
           ("group", "n_subjects", "slope", "se", "ci_lower", "ci_upper"), needs=_FUNCTIONAL,
           display=DisplaySpec(ci=(("slope", "ci_lower", "ci_upper", "Slope, points/month (95% CI)", 2, 1.0),),
                               labels={"se": "SE", "n_subjects": "Participants, n"}, digits={"se": 3}, arms="rows"),
           method="Linear mixed model of the ALSFRS-R total on time with a random intercept and slope per "
                  "participant (REML), one slope per arm; Wald 95% CI."),
]


# --------------------------------------------------------------------------- figures
def fig_alsfrs_change(view, subtitle=None):
    from analysis.figures_alsfrs import plot_alsfrs_change
    return plot_alsfrs_change(table_of("alsfrs", view), subtitle=subtitle)


def fig_spaghetti(view, subtitle=None):
    from analysis.figures_alsfrs import plot_spaghetti
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return plot_spaghetti(adqs, view.group_col, paramcd=study.functional_total, subtitle=subtitle)


def fig_kings(view, subtitle=None):
    from analysis.figures_alsfrs import plot_stages
    return plot_stages(table_of("kings", view), title="King's stage by visit (5 = death)", subtitle=subtitle)


def fig_mitos(view, subtitle=None):
    from analysis.figures_alsfrs import plot_stages
    return plot_stages(table_of("mitos", view), title="MiToS stage by visit (5 = death)", subtitle=subtitle)


def fig_domains(view, subtitle=None):
    from analysis.figures_alsfrs import plot_domains
    return plot_domains(table_of("alsfrs-domains", view), subtitle=subtitle)


FIGURES = [
    FigureOutput("alsfrs-change", "Mean change from baseline", "ALSFRS-R total, mean change from baseline (SE) by "
                 "visit", fig_alsfrs_change, table="alsfrs"),
    FigureOutput("spaghetti", "Individual trajectories", "ALSFRS-R total, individual trajectories (a seeded sample)",
                 fig_spaghetti, table="alsfrs"),
    FigureOutput("domains", "Domains", "ALSFRS-R domains, mean change from baseline (SE) by visit", fig_domains, table="alsfrs-domains"),
    FigureOutput("kings", "King's stages", "King's stage by visit (5 = death)", fig_kings, table="kings"),
    FigureOutput("mitos", "MiToS stages", "MiToS stage by visit (5 = death)", fig_mitos, table="mitos"),
]
