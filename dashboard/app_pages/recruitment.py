"""Recruitment: cumulative randomised against the plan, by site and month, site activation,
screening funnel and enrolment against target. Pooled for everyone (recruitment is arm-free)."""
import streamlit as st

from dashboard import widgets
from dashboard.figures import show_page_figures

PAGE = "recruitment"
ctx = widgets.page_setup(PAGE, "Recruitment")

show_page_figures(ctx, PAGE, "recruitment")
tabs = st.tabs(["Enrolment vs target", "By site and month", "Against plan", "Projection", "Screening funnel",
                "CONSORT"])
for tab, name in zip(tabs, ["enrolment", "recruitment", "plan", "projection", "funnel", "consort"]):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
