"""Survival. Unblinded: the interim decision alert when the efficacy boundary or the futility rule
is crossed at this cut (trial-wide whatever the filter), then the treatment-effect summary first
(log-rank, hazard ratios, landmark and RMST differences), then Kaplan-Meier by arm with CI, censor
ticks, numbers at risk and the landmark day, survival within each stratum, subgroups, the interim
decision with the monitoring boundaries, and the death forecast. Blinded: the pooled Kaplan-Meier
first; a blinded page computes nothing by arm."""
import dataclasses

import streamlit as st

from dashboard import caches, context, widgets
from dashboard.figures import show_tabs

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


def trial_wide(name: str):
    """Output ``name`` computed on every subject whatever the filter (the interim look)."""
    def show() -> None:
        if name.startswith("figure:"):
            from dashboard.figures import show_figure_of
            show_figure_of(trial, PAGE, name.split(":", 1)[1])
        else:
            widgets.show_named_table(trial, PAGE, name)
        if ctx.filters.active:
            st.caption("Trial-wide: the interim look counts every death, so the filter does not apply here.")
    return show


strata = [] if caches.table_unavailable(ctx, "survival-by-stratum") else ["survival-by-stratum"]  # unstratified
km = ("Kaplan-Meier", ["figure:km", "survival", "at-risk"])
effect = ("Treatment effect", ["treatment-effect"])
# by-arm-only items are left out for blinded roles (and named as needing the allocation for an
# unblinded role whose deployment has none: dashboard.figures.show_tabs)
decision = ([trial_wide("decision"), trial_wide("figure:boundaries"), trial_wide("sequential")] if ctx.unblinded
            else ["decision", "figure:boundaries", "sequential"])
show_tabs(ctx, PAGE, [
    *([effect, km] if ctx.unblinded else [km, effect]),
    ("By stratum", strata),
    ("Subgroups", ["figure:forest", "subgroups"]),
    ("Interim decision", decision),
    ("Death forecast", ["figure:event-projection", "event-projection"]),
    ("KM estimates", ["km"]),
])
if not ctx.unblinded:
    st.caption("Pooled over arms: treatment comparisons are shown to the DSMB only.")
