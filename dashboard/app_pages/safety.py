"""Safety: it opens with the adverse events by system organ class and preferred term (arms side
by side for unblinded roles, pooled for blinded ones) and the serious adverse events; then the
risk differences, worst severity, deaths, exposure, and the laboratory values over time.
Arm-revealing content declared in the study file (MIROCALS: Tregs, eosinophils, injection-site
reactions, influenza-like illness) is absent from blinded views and shown to unblinded roles only."""
import streamlit as st

from dashboard import widgets
from dashboard.figures import show_tabs

PAGE = "safety"
ctx = widgets.page_setup(PAGE, "Safety")

# eosinophils (IL-2 raises them) and Tregs reveal the arm: blinded views do not hold them; the
# labs figure of a blinded view draws only the parameters declared safe
show_tabs(ctx, PAGE, [
    ("Adverse events", ["ae", "sae"]),
    ("Risk difference", ["ae-risk"]),
    ("Worst severity", ["ae-severity"]),
    ("Deaths", ["deaths"]),
    ("Exposure", ["exposure"]),
    ("Labs over time", ["figure:labs"] + (["labs"] if ctx.unblinded else [])),
    ("Tregs", ["figure:tregs", "tregs"]),
])
if not ctx.unblinded:
    st.caption("Pooled over arms. Laboratory parameters and adverse-event terms that the study file declares "
               "arm-revealing are withheld from blinded views.")
