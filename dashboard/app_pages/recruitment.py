"""Recruitment: it opens with the projection sentence (when the target is expected, or why no
projection is made: recruitment ended, target reached) and enrolment against target by site
(% of target, sorted, site names); then, in the same row of tabs, cumulative against the plan,
by site and month, site activation, the screening funnel, CONSORT and changes since a previous
cut-off. Each tab holds a figure and the table it is drawn from. Pooled for everyone
(recruitment is arm-free).

Under a sidebar filter every output says how it follows it (its footnote, ``analysis.outputs.filters``):
the chosen sites only, the plan and target scaled to their share of the site targets, or trial-wide."""
import datetime as dt

import streamlit as st

from analysis.outputs import TableUnavailable

from dashboard import caches, cell_size, widgets
from dashboard.figures import filter_caption, show_tabs

PAGE = "recruitment"
ctx = widgets.page_setup(PAGE, "Recruitment")
widgets.keep_widget_state(ctx, "changes_since")   # filters kept while their tab is closed
cut = dt.date.fromisoformat(str(ctx.snapshot.cut_date))


def projection_sentence() -> str | None:
    """The projection in one sentence, from the cached ``projection`` table (never fitted on a
    rerun), or the sentence saying why there is none."""
    from analysis.outputs.projections import format_projection_sentence, no_projection_sentence
    try:
        return format_projection_sentence(caches.get_table(ctx, "projection"))
    except TableUnavailable as exc:          # recruitment ended, target reached, nobody randomised yet
        try:
            enrolment = caches.get_table(ctx, "enrolment")
            randomised = int(enrolment.loc[enrolment["site_id"] == "Total", "randomised"].sum())
        except (TableUnavailable, cell_size.SmallCellError):
            randomised = None
        return no_projection_sentence(str(exc), randomised, ctx.snapshot.cut_date)
    except cell_size.SmallCellError:         # the page shows counts only then (page_setup)
        return None


if ctx.filters.active:          # the target for the selection, before anything is drawn against it
    st.info(filter_caption(ctx, "plan"), icon=":material/filter_alt:")
sentence = projection_sentence()
if sentence:
    st.markdown(f"**{sentence}**")


def changes_since() -> None:                 # e.g. since the last steering committee meeting or DSMB report
    since = st.date_input("Previous cut-off (e.g. the last meeting's)", value=cut - dt.timedelta(days=91),
                          max_value=cut - dt.timedelta(days=1), key="changes_since")
    widgets.show_named_table(ctx, PAGE, "changes", since=since,
                             caption=f"Counts on or before {since} and on or before {cut} (data cut-off).")


show_tabs(ctx, PAGE, [
    ("Enrolment vs target", ["figure:enrolment", "enrolment"]),
    ("Cumulative vs plan", ["figure:cumulative", "plan", "projection"]),
    ("By site and month", ["figure:by-site", "recruitment"]),
    ("Site activation", ["figure:activation"]),
    ("Screening funnel", ["figure:funnel", "funnel"]),
    ("CONSORT", ["figure:consort", "consort"]),     # lazy tabs: the diagram is drawn when its tab is opened
    ("Changes since", [changes_since]),
])
