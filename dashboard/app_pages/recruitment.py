"""Recruitment: cumulative randomised against the plan, by site and month, site activation,
screening funnel and enrolment against target. Pooled for everyone (recruitment is arm-free).

Under a sidebar filter every output says how it follows it (its footnote, ``analysis.outputs.filters``):
the chosen sites only, the plan and target scaled to their share of the site targets, or trial-wide."""
import datetime as dt

import streamlit as st

from dashboard import widgets
from dashboard.figures import filter_caption, show_page_figures

PAGE = "recruitment"
ctx = widgets.page_setup(PAGE, "Recruitment")
cut = dt.date.fromisoformat(str(ctx.snapshot.cut_date))


if ctx.filters.active:          # the target for the selection, before anything is drawn against it
    st.info(filter_caption(ctx, "plan"), icon=":material/filter_alt:")
show_page_figures(ctx, PAGE, "recruitment")
tabs = st.tabs(["Enrolment vs target", "By site and month", "Against plan", "Projection", "Screening funnel",
                "CONSORT", "Changes since"])
for tab, name in zip(tabs, ["enrolment", "recruitment", "plan", "projection", "funnel", "consort"]):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
with tabs[-1]:                 # e.g. since the last steering committee meeting or DSMB report
    since = st.date_input("Previous cut-off (e.g. the last meeting's)", value=cut - dt.timedelta(days=91),
                          max_value=cut - dt.timedelta(days=1), key="changes_since")
    widgets.show_named_table(ctx, PAGE, "changes", since=since,
                             caption=f"Counts on or before {since} and on or before {cut} (data cut-off).")
