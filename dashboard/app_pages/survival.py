"""Survival: Kaplan-Meier with CI, censor ticks, numbers at risk, the landmark day; pooled for
blinded roles, by arm with log-rank, hazard ratios, the interim decision and monitoring boundaries
when unblinded. For unblinded roles an alert heads the page when the efficacy boundary or the
futility rule is crossed at this cut (trial-wide whatever the filter); a blinded page computes
nothing of it."""
import dataclasses

import streamlit as st

from dashboard import caches, context, widgets
from dashboard.figures import show_page_figures

PAGE = "survival"
ctx = widgets.page_setup(PAGE, "Survival")
# the interim look counts every death: trial-wide, whatever the sidebar filter
trial = dataclasses.replace(ctx, filters=context.Filters()) if ctx.unblinded else None

if ctx.unblinded and not caches.table_unavailable(trial, "decision"):
    from analysis.outputs.decision_text import decision_alert
    try:
        alert = decision_alert(caches.get_table(trial, "decision"))
    except Exception as exc:        # say so rather than lose the page
        alert = ("warning", f"The interim decision could not be computed at this cut: {exc}.")
    if alert:
        level, text = alert
        (st.error if level == "error" else st.warning)(
            text + (" (Trial-wide: the filter does not apply.)" if ctx.filters.active else "")
            + " See the Interim decision tab.", icon="🚨" if level == "error" else "⚠️")

show_page_figures(ctx, PAGE, "survival")
strata = [] if caches.table_unavailable(ctx, "survival-by-stratum") else ["survival-by-stratum"]   # unstratified
names = ["survival", *strata, "at-risk", "km"] + (["treatment-effect", "subgroups", "decision", "sequential"]
                                                  if ctx.unblinded else [])
labels = {"survival": "Median and landmark", "survival-by-stratum": "By stratum", "at-risk": "Numbers at risk",
          "km": "KM estimates", "treatment-effect": "Treatment effect", "subgroups": "Subgroups",
          "decision": "Interim decision", "sequential": "Sequential monitoring"}
for tab, name in zip(st.tabs([labels[n] for n in names]), names):
    with tab:
        trial_wide = name in ("decision", "sequential")
        widgets.show_named_table(trial if trial_wide else ctx, PAGE, name)
        if trial_wide and ctx.filters.active:
            st.caption("Trial-wide: the interim look counts every death, so the filter does not apply here.")
if not ctx.unblinded:
    st.caption("Pooled over arms: treatment comparisons are shown to the DSMB only.")
