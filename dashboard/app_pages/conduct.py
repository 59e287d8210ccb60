"""Treatment and conduct: adherence to study treatment, ALS care milestones (non-invasive
ventilation, gastrostomy, permanent assisted ventilation, tracheostomy) and concomitant medications,
protocol deviations and the currency of vital status (``analysis.outputs.care``).

Adherence, care and deviations by category are pooled for blinded roles and by arm for unblinded
ones (an imbalance in ventilation or gastrostomy between arms bears on survival, the primary
endpoint); deviations by site, the important deviations and vital status are never by arm. A delivery
without the concomitant-care (adcm) or deviation (addv) dataset shows why in place of its outputs."""
import streamlit as st

from dashboard import widgets
from dashboard.figures import show_tabs

PAGE = "conduct"
ctx = widgets.page_setup(PAGE, "Treatment and conduct")

show_tabs(ctx, PAGE, [        # one row of lazy tabs, each a figure and its tables (dashboard.figures)
    ("Adherence", ["adherence", "interruptions", "exposure"]),
    ("Care milestones", ["figure:care-incidence", "concomitant-care"]),
    ("Medications", ["medications"]),
    ("Protocol deviations", ["deviations-by-site", "deviations", "important-deviations"]),
    ("Vital status", ["vital-status", lambda: widgets.show_named_table(
        ctx, PAGE, "no-contact", "For the data manager: participants to contact.")]),
])
if not ctx.unblinded:
    st.caption("Pooled over arms: comparisons by arm are shown to the DSMB only.")
