"""Figures shown on each page: thin adapters from a view to the analysis layer's ``plot_*``
functions (the same functions the reports call) fed by the named tables of ``analysis.outputs``.
Each adapter takes the view only, so ``state.get_result`` caches it per snapshot hash, view kind,
role and filters."""
from __future__ import annotations

from analysis.outputs import build_table, get_adsl

from dashboard import state, widgets


def _filter_part(view) -> str:
    """" · filter: UK" for a view filtered in the sidebar, "" otherwise."""
    label = getattr(view, "filter_label", None)
    return f" · filter: {label}" if label else ""


def _subtitle(view) -> str:
    """Cut-off date, active filter and pooled/by arm: every figure's subtitle (and so every export)."""
    pooled = "pooled over arms" if view.blinded else "by arm"
    return f"Data cut-off {view.cut_date}{_filter_part(view)} · {pooled}"


def filter_caption(ctx: state.Context, name: str) -> str | None:
    """How the output ``name`` (a table name, or "activation") follows the context's filter:
    applied (the chosen sites only, plan and target scaled) or trial-wide; None unfiltered."""
    if not ctx.filters.active:
        return None
    from analysis.outputs import filter_note
    return filter_note(name, state.get_view(ctx))


# --------------------------------------------------------------------------- recruitment
def fig_cumulative(view):
    """Actual against the plan; for a view filtered to some sites the plan line and the target are
    scaled by their share of the site targets (and the subtitle says so); for a filter no plan can
    follow (onset) they stay trial-wide and the subtitle says that."""
    from analysis.figures_recruitment import plot_cumulative_recruitment
    from analysis.outputs import TableUnavailable, recruitment_projection, site_selection
    sel = site_selection(view)
    try:
        projection = recruitment_projection(view)
    except TableUnavailable:                  # recruitment over (or not started): plan and actual only
        projection = None
    subtitle, target_label, plan_label = _subtitle(view), None, "Planned"
    if sel.restricted:
        target_label, plan_label = f"Target {sel.target} ({sel.label})", f"Planned ({sel.label})"
        subtitle += (f"<br>Plan and target scaled to {sel.label}: its sites' share of the site targets "
                     f"({sel.share:.1%} of {sel.planned_n})")
        if sel.not_by_site:
            subtitle += f"; {sel.not_by_site}: counts only"
    elif sel.label:
        target_label, plan_label = f"Target {sel.target} (trial-wide)", "Planned (trial-wide)"
        subtitle += "<br>Plan and target trial-wide: the plan has no split by onset"
    return plot_cumulative_recruitment(build_table("plan", view), projection=projection, target=sel.target,
                                       subtitle=subtitle, target_label=target_label, plan_label=plan_label)


def fig_by_site(view):
    from analysis.figures_recruitment import plot_recruitment_by_site
    names = {s.id: s.name for s in view.study.sites}
    return plot_recruitment_by_site(build_table("recruitment", view), site_names=names,
                                    subtitle=_subtitle(view))


def fig_activation(view):
    from analysis.figures_recruitment import plot_site_activation
    return plot_site_activation(build_table("enrolment", view), cut_date=view.cut_date,
                                subtitle=_subtitle(view))


def fig_funnel(view):
    from analysis.figures_recruitment import plot_funnel
    return plot_funnel(build_table("funnel", view), subtitle=_subtitle(view))


def fig_balance(view):
    from analysis.figures_recruitment import plot_balance
    return plot_balance(build_table("balance", view), subtitle=_subtitle(view))


# --------------------------------------------------------------------------- efficacy and safety
def fig_km(view):
    """Kaplan-Meier by arm (pooled when blinded); unblinded, the panel note of
    ``analysis.figures_survival.format_effect_note`` from the treatment-effect table."""
    from analysis.figures_survival import format_effect_note, plot_km
    from analysis.outputs import get_tte
    study = view.study
    note = None if view.blinded else format_effect_note(build_table("treatment-effect", view), study=view.study)
    return plot_km(get_tte(view), view.group_col, view.arm_levels if view.group_col else None, study.landmark_day,
                   annotation=note, subtitle=_subtitle(view))


def fig_forest(view):
    """Subgroup forest plot of each arm against the reference arm (unblinded only: the subgroups
    table refuses a blinded view)."""
    from analysis.baseline import variable_labels
    from analysis.figures_survival import plot_forest
    from analysis.outputs import comparisons
    sg = build_table("subgroups", view)
    pairs = comparisons(view)
    if len(pairs) > 1:                         # one block per arm against the reference arm
        return plot_forest(sg, subtitle=_subtitle(view), factor_labels=variable_labels(view.labels("adsl")),
                           labels=("favours the first arm named", f"favours {pairs[0][1]}"))
    return plot_forest(sg, title=f"Hazard ratio by subgroup ({sg['comparison'].iloc[0]})",
                       subtitle=_subtitle(view), factor_labels=variable_labels(view.labels("adsl")),
                       labels=tuple(f"favours {a}" for a in pairs[0]))


def fig_alsfrs_change(view):
    from analysis.figures_alsfrs import plot_alsfrs_change
    return plot_alsfrs_change(build_table("alsfrs", view), subtitle=_subtitle(view))


def fig_spaghetti(view):
    from analysis.figures_alsfrs import plot_spaghetti
    from analysis.outputs import get_bds
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return plot_spaghetti(adqs, view.group_col, paramcd=study.functional_total, subtitle=_subtitle(view))


def fig_kings(view):
    from analysis.figures_alsfrs import plot_stages
    return plot_stages(build_table("kings", view), title="King's stage by visit (5 = death)", subtitle=_subtitle(view))


def fig_mitos(view):
    from analysis.figures_alsfrs import plot_stages
    return plot_stages(build_table("mitos", view), title="MiToS stage by visit (5 = death)", subtitle=_subtitle(view))


def fig_domains(view):
    from analysis.figures_alsfrs import plot_domains
    return plot_domains(build_table("alsfrs-domains", view), subtitle=_subtitle(view))


# --------------------------------------------------------------------------- safety
def _lab_dataset(study) -> str:
    return study.raw.get("endpoints", {}).get("lab_dataset", "adlb")


def _require_labs(view, params=None) -> None:
    """``TableUnavailable`` (shown as a note) when the snapshot has no lab dataset or no such
    parameters are configured."""
    from analysis.outputs import TableUnavailable
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
    from analysis.outputs import get_bds
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


def fig_labs(view):
    """Labs over time, except the arm-revealing parameters (pooled when blinded)."""
    from analysis.figures_safety import plot_labs_over_time
    study = view.study
    _require_labs(view)
    present = view.table(_lab_dataset(study), columns=["PARAMCD"])["PARAMCD"].dropna().unique()
    params = [p for p in sorted(present) if p not in study.arm_revealing_params]
    table, labels = _lab_table(view, params)
    return plot_labs_over_time(table, title="Laboratory values: mean (+/- SE) by visit", labels=labels,
                               subtitle=_subtitle(view) + " · safety population")


def fig_tregs(view):
    """Treg counts and percentages by arm: unblinded only (IL-2 raises them)."""
    view.require_unblinded("Treg figure")
    _require_labs(view, list(view.study.arm_revealing_params))
    from analysis.figures_safety import plot_labs_over_time
    table, labels = _lab_table(view, list(view.study.arm_revealing_params))
    return plot_labs_over_time(table, title="Regulatory T cells: mean (+/- SE) by visit", labels=labels,
                               subtitle=_subtitle(view) + " · safety population")


# --------------------------------------------------------------------------- data quality
def fig_completeness(view):
    from analysis.figures_quality import plot_completeness
    names = {s.id: s.name for s in view.study.sites}
    return plot_completeness(build_table("completeness", view), site_names=names,
                             subtitle=f"Data cut-off {view.cut_date}{_filter_part(view)} · all randomised · "
                             f"window {view.study.visit_window} days after the target day")


def fig_entry_lag(view):
    from analysis.completeness import LATE_ENTRY_DAYS
    from analysis.figures_quality import plot_entry_lag
    return plot_entry_lag(build_table("entry-lag", view), dataset=view.study.functional_dataset,
                          late_days=LATE_ENTRY_DAYS, title="ALSFRS-R forms: data-entry lag by site",
                          subtitle=f"Data cut-off {view.cut_date}{_filter_part(view)} · days from visit to data entry")


# page -> [(figure name, adapter in this module, unblinded only)]
PAGE_FIGURES: dict[str, list[tuple[str, str, bool]]] = {
    "recruitment": [("Cumulative vs plan", "fig_cumulative", False),
                    ("By site and month", "fig_by_site", False),
                    ("Site activation", "fig_activation", False),
                    ("Screening funnel", "fig_funnel", False)],
    "balance": [("Stratum balance", "fig_balance", False)],
    "survival": [("Kaplan-Meier", "fig_km", False), ("Subgroups (forest plot)", "fig_forest", True)],
    "alsfrs": [("Mean change from baseline", "fig_alsfrs_change", False),
               ("Individual trajectories", "fig_spaghetti", False),
               ("Domains", "fig_domains", False),
               ("King's stages", "fig_kings", False),
               ("MiToS stages", "fig_mitos", False)],
    "safety": [("Labs over time", "fig_labs", False),
               ("Tregs over time", "fig_tregs", True)],
    "quality": [("Completeness by site", "fig_completeness", False)],
}


def show_page_figures(ctx: state.Context, page: str, key: str, tabs: bool = True) -> None:
    """Every figure registered for a page (in tabs), each with its PNG/SVG downloads."""
    import streamlit as st
    specs = [s for s in PAGE_FIGURES.get(key, []) if ctx.unblinded or not s[2]]
    if not specs:
        return
    containers = st.tabs([s[0] for s in specs]) if tabs and len(specs) > 1 else [st.container() for _ in specs]
    for box, (name, adapter, _u) in zip(containers, specs):
        with box:
            show_figure_of(ctx, page, name, adapter)


def show_figure_of(ctx: state.Context, page: str, name: str, adapter: str) -> None:
    """One figure from an adapter of this module (cached per view), with its downloads; a note
    instead when the snapshot lacks its data (``TableUnavailable``) or a blinded filter is below
    the minimum cell size (``state.SmallCellError``: the notice, no figure, no download)."""
    import streamlit as st
    from analysis.outputs import TableUnavailable
    try:
        fig = state.get_result(ctx, f"dashboard.figures.{adapter}")
    except TableUnavailable as exc:  # the snapshot lacks the data: say so, show the rest
        st.info(f"{name}: {exc}")
        return
    except state.SmallCellError as exc:   # a blinded filter below the minimum cell size
        widgets.show_small_cell_notice(exc)
        return
    except Exception as exc:               # e.g. a model on a filter holding one arm only
        widgets.show_filtered_failure(ctx, name, exc)
        return
    widgets.show_figure(ctx, page, fig, name)
    note = filter_caption(ctx, _FILTER_NOTES[adapter]) if adapter in _FILTER_NOTES else None
    if note:
        st.caption(note)


# figure adapter -> the output whose filter note its caption shows (recruitment: plan, targets, sites)
_FILTER_NOTES = {"fig_cumulative": "plan", "fig_by_site": "recruitment", "fig_activation": "activation",
                 "fig_funnel": "funnel", "fig_balance": "balance"}
