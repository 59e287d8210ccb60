"""Safety: adverse events by SOC and PT, SAE and death listings, exposure, labs over time.
Arm-revealing content declared in the study file (MIROCALS: Tregs, eosinophils, injection-site
reactions, influenza-like illness) is absent from blinded views and shown to unblinded roles only."""
import streamlit as st

from dashboard import widgets
from dashboard.figures import show_page_figures

PAGE = "safety"
ctx = widgets.page_setup(PAGE, "Safety")

show_page_figures(ctx, PAGE, "safety")
# eosinophils (IL-2 raises them) and Tregs reveal the arm: blinded views do not hold them
names = (["ae"] + (["ae-risk"] if ctx.unblinded else []) + ["ae-severity", "sae", "deaths", "exposure"]
         + (["labs", "tregs"] if ctx.unblinded else []))
labels = {"ae": "AEs by SOC/PT", "ae-risk": "Risk difference", "ae-severity": "Worst severity", "sae": "SAE listing",
          "deaths": "Deaths", "exposure": "Exposure", "labs": "Eosinophils", "tregs": "Tregs"}
for tab, name in zip(st.tabs([labels[n] for n in names]), names):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
if not ctx.unblinded:
    st.caption("Pooled over arms. Laboratory parameters and adverse-event terms that the study file declares "
               "arm-revealing are withheld from blinded views.")
