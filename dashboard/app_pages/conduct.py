"""Treatment and conduct: adherence to study treatment, ALS care milestones (non-invasive
ventilation, gastrostomy, permanent assisted ventilation, tracheostomy) and concomitant medications,
protocol deviations and the currency of vital status (``analysis.outputs.care``).

Adherence, care and deviations by category are pooled for blinded roles and by arm for unblinded
ones (an imbalance in ventilation or gastrostomy between arms bears on survival, the primary
endpoint); deviations by site, the important deviations and vital status are never by arm. A delivery
without the concomitant-care (adcm) or deviation (addv) dataset shows why in place of its outputs."""
import streamlit as st

from dashboard import widgets
from dashboard.figures import lazy_tabs, show_figure_of

PAGE = "conduct"
ctx = widgets.page_setup(PAGE, "Treatment and conduct")

tabs = lazy_tabs(PAGE, ["Adherence", "Care milestones", "Medications", "Protocol deviations", "Vital status"])
if tabs[0].open:            # only the open tab is drawn (issue 13)
    with tabs[0]:
        widgets.show_named_table(ctx, PAGE, "adherence")
        widgets.show_named_table(ctx, PAGE, "interruptions")
        widgets.show_named_table(ctx, PAGE, "exposure")
if tabs[1].open:
    with tabs[1]:
        show_figure_of(ctx, PAGE, "care-incidence")
        widgets.show_named_table(ctx, PAGE, "concomitant-care")
if tabs[2].open:
    with tabs[2]:
        widgets.show_named_table(ctx, PAGE, "medications")
if tabs[3].open:
    with tabs[3]:
        widgets.show_named_table(ctx, PAGE, "deviations-by-site")
        widgets.show_named_table(ctx, PAGE, "deviations")
        widgets.show_named_table(ctx, PAGE, "important-deviations")
if tabs[4].open:
    with tabs[4]:
        widgets.show_named_table(ctx, PAGE, "vital-status")
        widgets.show_named_table(ctx, PAGE, "no-contact", "For the data manager: participants to contact.")
if not ctx.unblinded:
    st.caption("Pooled over arms: comparisons by arm are shown to the DSMB only.")
