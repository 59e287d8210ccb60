"""Which figures each page shows, and showing one: the figures themselves are defined once, in
``analysis.outputs`` (``FIGURES``: beside the tables they are drawn from, the same builders the
reports call), and cached per snapshot hash, view kind, role and filters (``caches.get_figure``)."""
from __future__ import annotations

from dashboard import caches, cell_size, context, snapshots, widgets


def filter_caption(ctx: context.Context, name: str) -> str | None:
    """How the output ``name`` (a table name, or "activation") follows the context's filter:
    applied (the chosen sites only, plan and target scaled) or trial-wide; None unfiltered."""
    if not ctx.filters.active:
        return None
    from analysis.outputs import filter_note
    return filter_note(name, snapshots.get_view(ctx))


# page -> the figures it shows, in tab order (``analysis.outputs.FIGURES`` names)
PAGE_FIGURES: dict[str, list[str]] = {
    "recruitment": ["enrolment", "cumulative", "by-site", "activation", "funnel"],
    "balance": ["balance"],
    "survival": ["km", "forest", "boundaries", "event-projection"],
    "alsfrs": ["alsfrs-change", "spaghetti", "domains", "kings", "mitos"],
    "safety": ["labs", "tregs"],
}


def show_page_figures(ctx: context.Context, page: str, key: str, tabs: bool = True) -> None:
    """Every figure registered for a page (in tabs), each with its PNG/SVG downloads; by-arm-only
    figures for unblinded roles only."""
    import streamlit as st
    from analysis.outputs import FIGURES
    specs = [FIGURES[n] for n in PAGE_FIGURES.get(key, []) if ctx.unblinded or not FIGURES[n].by_arm_only]
    if not specs:
        return
    containers = st.tabs([s.label for s in specs]) if tabs and len(specs) > 1 else [st.container() for _ in specs]
    for box, spec in zip(containers, specs):
        with box:
            show_figure_of(ctx, page, spec.name)


def show_figure_of(ctx: context.Context, page: str, name: str) -> None:
    """Figure ``name`` (cached per view), with its downloads; a note instead when the snapshot
    lacks its data (``TableUnavailable``) or a blinded filter is below the minimum cell size
    (``cell_size.SmallCellError``: the notice, no figure, no download)."""
    import streamlit as st
    from analysis.outputs import FIGURES, TableUnavailable
    spec = FIGURES[name]
    try:
        fig = caches.get_figure(ctx, name)
    except TableUnavailable as exc:  # the snapshot lacks the data: say so, show the rest
        st.info(f"{spec.label}: {exc}")
        return
    except cell_size.SmallCellError as exc:   # a blinded filter below the minimum cell size
        widgets.show_small_cell_notice(exc)
        return
    except Exception as exc:               # e.g. a model on a filter holding one arm only
        widgets.show_filtered_failure(ctx, spec.label, exc)
        return
    widgets.show_figure(ctx, page, fig, spec.label)
    note = filter_caption(ctx, spec.filter_of) if spec.filter_of else None
    if note:
        st.caption(note)
