"""Recruitment: cumulative randomised against the plan, by site and month, site activation,
screening funnel and enrolment against target. Pooled for everyone (recruitment is arm-free)."""
import datetime as dt

import streamlit as st

from dashboard import widgets
from dashboard.figures import show_page_figures

PAGE = "recruitment"
ctx = widgets.page_setup(PAGE, "Recruitment")

show_page_figures(ctx, PAGE, "recruitment")
tabs = st.tabs(["Enrolment vs target", "By site and month", "Against plan", "Projection", "Screening funnel",
                "CONSORT", "Changes since"])
for tab, name in zip(tabs, ["enrolment", "recruitment", "plan", "projection", "funnel", "consort"]):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
with tabs[-1]:                 # e.g. since the last steering committee meeting or DSMB report
    cut = dt.date.fromisoformat(str(ctx.snapshot.cut_date))
    since = st.date_input("Previous cut-off (e.g. the last meeting's)", value=cut - dt.timedelta(days=91),
                          max_value=cut - dt.timedelta(days=1), key="changes_since")
    widgets.show_named_table(ctx, PAGE, "changes", since=since,
                             caption=f"Counts on or before {since} and on or before {cut} (data cut-off), pooled; "
                                     "sites activated are counted over the whole trial")
