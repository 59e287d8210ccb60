"""ALSFRS-R: individual trajectories (sampled), mean change from baseline +/- SE, domains, items,
King's and MiToS stages, slopes. Pooled when blinded, by arm when unblinded."""
import streamlit as st

from dashboard import caches, widgets
from dashboard.figures import show_page_figures

PAGE = "alsfrs"
ctx = widgets.page_setup(PAGE, "ALSFRS-R")
why = caches.table_unavailable(ctx, "alsfrs")
if why:                       # a trial delivered without the functional score
    st.info(why)
    st.stop()

show_page_figures(ctx, PAGE, "alsfrs")
tables = [("Total by visit", "alsfrs"), ("Domains", "alsfrs-domains"), ("Items", "alsfrs-items"),
          ("King's stage", "kings"), ("MiToS stage", "mitos"), ("Slopes (mixed model)", "slopes")]
for tab, (label, name) in zip(st.tabs([t[0] for t in tables]), tables):
    with tab:
        widgets.show_named_table(ctx, PAGE, name)
