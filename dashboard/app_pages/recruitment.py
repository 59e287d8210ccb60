"""Recruitment: cumulative randomised against the plan, by site and month, site activation,
screening funnel and enrolment against target. Pooled for everyone (recruitment is arm-free).

Under a sidebar filter every output says how it follows it (``figures.filter_caption``): the
chosen sites only, the plan and target scaled to their share of the site targets, or trial-wide."""
import datetime as dt

import streamlit as st

from analysis.tables import TABLES
from dashboard import widgets
from dashboard.figures import filter_caption, show_page_figures

PAGE = "recruitment"
ctx = widgets.page_setup(PAGE, "Recruitment")
cut = dt.date.fromisoformat(str(ctx.snapshot.cut_date))


def _caption(name: str, text: str | None = None) -> str | None:
    """The table's caption with how it follows the filter (None unfiltered: the default caption)."""
    note = filter_caption(ctx, name)
    if note is None:
        return text
    return f"{text or f'{TABLES[name].description} (data cut-off {cut})'}. {note}"


if ctx.filters.active:          # the target for the selection, before anything is drawn against it
    st.info(filter_caption(ctx, "plan"), icon=":material/filter_alt:")
show_page_figures(ctx, PAGE, "recruitment")
tabs = st.tabs(["Enrolment vs target", "By site and month", "Against plan", "Projection", "Screening funnel",
                "CONSORT", "Changes since"])
for tab, name in zip(tabs, ["enrolment", "recruitment", "plan", "projection", "funnel", "consort"]):
    with tab:
        widgets.show_named_table(ctx, PAGE, name, caption=_caption(name))
with tabs[-1]:                 # e.g. since the last steering committee meeting or DSMB report
    since = st.date_input("Previous cut-off (e.g. the last meeting's)", value=cut - dt.timedelta(days=91),
                          max_value=cut - dt.timedelta(days=1), key="changes_since")
    widgets.show_named_table(ctx, PAGE, "changes", since=since,
                             caption=_caption("changes", f"Counts on or before {since} and on or before {cut} "
                                              "(data cut-off), pooled" + ("" if ctx.filters.active else
                                              "; sites activated are counted over the whole trial")))
