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


# page -> the figures it shows (``analysis.outputs.FIGURES`` names), in the order of its tabs
PAGE_FIGURES: dict[str, list[str]] = {
    "recruitment": ["enrolment", "cumulative", "by-site", "activation", "funnel"],
    "balance": ["balance"],
    "survival": ["km", "forest", "boundaries", "event-projection"],
    "alsfrs": ["alsfrs-change", "spaghetti", "domains", "kings", "mitos"],
    "safety": ["labs", "tregs"],
}

FIGURE = "figure:"          # a tab item naming a figure ("figure:km"); any other string names a table


def by_arm_only(item) -> bool:
    """A tab item (``"figure:NAME"`` or a table name) that exists by arm only."""
    from analysis.outputs import FIGURES, OUTPUTS
    if not isinstance(item, str):
        return False
    if item.startswith(FIGURE):
        return FIGURES[item[len(FIGURE):]].by_arm_only
    return OUTPUTS[item].by_arm_only if item in OUTPUTS else False


def tabs_key(page: str) -> str:
    """The session-state key holding the label of ``page``'s open tab (``lazy_tabs``)."""
    return f"tabs_{page}"


def lazy_tabs(page: str, labels: list[str]):
    """``page``'s one row of tabs, lazy: a tab click reruns the page and only the open tab is
    drawn (``box.open`` is True for that tab only; the first tab is open by default). Drawing
    every tab on every run (Streamlit's default) made ALSFRS-R draw 5 figures and 7 tables for
    one visible tab (issue 13). The open tab's label is ``st.session_state[tabs_key(page)]``."""
    import streamlit as st
    return st.tabs(labels, key=tabs_key(page), on_change="rerun")


def show_tabs(ctx: context.Context, page: str, tabs) -> None:
    """A page's one row of tabs: ``tabs`` is a list of ``(label, items)``, each item a figure
    (``"figure:NAME"``, with its downloads), an output table (its name, ``widgets.show_named_table``)
    or a callable drawing something else. By-arm-only items are left out for a blinded role;
    for an unblinded role without a configured allocation each says so in its place
    (``snapshots.allocation_missing_note``). Tabs left with nothing are dropped; labels must
    be unique (one row, no repeated name). Only the open tab is drawn (``lazy_tabs``)."""
    import streamlit as st
    from dashboard.auth import is_unblinded_role
    missing_allocation = not ctx.unblinded and is_unblinded_role(ctx.role)
    kept = []
    for label, items in tabs:
        items = [i for i in items if ctx.unblinded or missing_allocation or not by_arm_only(i)]
        if items:
            kept.append((label, items))
    labels = [label for label, _ in kept]
    if len(set(labels)) != len(labels):
        raise ValueError(f"repeated tab names on the {page} page: {labels}")
    for box, (_label, items) in zip(lazy_tabs(page, labels), kept):
        if not box.open:                   # a hidden tab: drawn when it is opened (a rerun)
            continue
        with box:
            for item in items:
                if missing_allocation and by_arm_only(item):
                    st.warning(snapshots.allocation_missing_note(ctx, _item_title(item)),
                               icon=":material/lock:")
                elif callable(item):
                    item()
                elif item.startswith(FIGURE):
                    show_figure_of(ctx, page, item[len(FIGURE):])
                else:
                    widgets.show_named_table(ctx, page, item)


def _item_title(item: str) -> str:
    from analysis.outputs import FIGURES, OUTPUTS
    if item.startswith(FIGURE):
        return FIGURES[item[len(FIGURE):]].title
    return OUTPUTS[item].title


def show_figure_of(ctx: context.Context, page: str, name: str) -> None:
    """Figure ``name`` (cached per view), with its downloads; a note instead when the snapshot
    lacks its data (``TableUnavailable``) or a blinded filter is below the minimum cell size
    (``cell_size.SmallCellError``: the notice, no figure, no download)."""
    import streamlit as st
    from analysis.outputs import FIGURES, TableUnavailable
    from data_access.view_base import DatasetUnreadable
    spec = FIGURES[name]
    try:
        fig = caches.get_figure(ctx, name)
    except TableUnavailable as exc:  # the snapshot lacks the data: say so, show the rest
        st.info(f"{spec.label}: {exc}")
        return
    except DatasetUnreadable as exc:       # a damaged file: named, the rest of the page still works
        widgets.show_unreadable(spec.label, exc)
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
