"""Survival: Kaplan-Meier with CI, censor ticks, numbers at risk, the landmark day; pooled for
blinded roles, by arm with log-rank, hazard ratios and monitoring boundaries when unblinded."""
import streamlit as st

from dashboard import state, widgets
from dashboard.figures import show_page_figures

PAGE = "survival"
ctx = widgets.page_setup(PAGE, "Survival")

show_page_figures(ctx, PAGE, "survival")
strata = [] if state.table_unavailable(ctx, "survival-by-stratum") else ["survival-by-stratum"]   # unstratified
names = ["survival", *strata, "at-risk", "km"] + (["treatment-effect", "subgroups", "sequential"]
                                                  if ctx.unblinded else [])
labels = {"survival": "Median and landmark", "survival-by-stratum": "By stratum", "at-risk": "Numbers at risk",
          "km": "KM estimates",
          "treatment-effect": "Treatment effect", "subgroups": "Subgroups", "sequential": "Sequential monitoring"}
for tab, name in zip(st.tabs([labels[n] for n in names]), names):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
if not ctx.unblinded:
    st.caption("Pooled over arms: treatment comparisons are shown to the DSMB only.")
