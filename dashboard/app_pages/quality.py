"""Data quality: validation problems of the snapshot (``data_access.validate``), by rule and in
full, including late data entry. Blinded roles get the checks that need no allocation."""
import streamlit as st

from dashboard import state, widgets

PAGE = "quality"
ctx = widgets.page_setup(PAGE, "Data quality")

problems = state.get_validation(ctx)
c1, c2, c3 = st.columns(3)
c1.metric("Errors", int((problems["severity"] == "error").sum()))
c2.metric("Warnings", int((problems["severity"] == "warning").sum()))
c3.metric("Subjects concerned", int(problems["subject"].dropna().nunique()))
if problems.empty:
    st.success("No validation problems in this snapshot.")
tab_rule, tab_late, tab_all = st.tabs(["By rule", "Late data entry", "All problems"])
with tab_rule:
    by_rule = (problems.groupby(["rule", "severity"], as_index=False).size()
               .rename(columns={"size": "n"}).sort_values("n", ascending=False))
    widgets.show_table(ctx, PAGE, by_rule, "validation-by-rule")
with tab_late:
    widgets.show_table(ctx, PAGE, problems[problems["rule"] == "late_entry"].reset_index(drop=True),
                       "late-data-entry")
with tab_all:
    widgets.show_table(ctx, PAGE, problems, "validation-problems")
