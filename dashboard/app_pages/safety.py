"""Safety: adverse events by SOC and PT, SAE and death listings, exposure, labs over time.
Treg counts (arm-revealing) are shown to unblinded roles only."""
import streamlit as st

from dashboard import widgets
from dashboard.figures import show_page_figures

PAGE = "safety"
ctx = widgets.page_setup(PAGE, "Safety")

show_page_figures(ctx, PAGE, "safety")
names = (["ae"] + (["ae-risk"] if ctx.unblinded else []) + ["ae-severity", "sae", "deaths", "exposure", "labs"]
         + (["tregs"] if ctx.unblinded else []))
labels = {"ae": "AEs by SOC/PT", "ae-risk": "Risk difference", "ae-severity": "Worst severity", "sae": "SAE listing",
          "deaths": "Deaths", "exposure": "Exposure", "labs": "Eosinophils", "tregs": "Tregs"}
for tab, name in zip(st.tabs([labels[n] for n in names]), names):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
