"""ALSFRS-R: mean change from baseline +/- SE first, then individual trajectories (sampled),
domains, items, King's and MiToS stages, slopes; one row of tabs, each a figure with its table.
Pooled when blinded, by arm when unblinded."""
import streamlit as st

from dashboard import caches, widgets
from dashboard.figures import show_tabs

PAGE = "alsfrs"
ctx = widgets.page_setup(PAGE, "ALSFRS-R")
why = caches.table_unavailable(ctx, "alsfrs")
if why:                       # a trial delivered without the functional score
    st.info(why)
    st.stop()

show_tabs(ctx, PAGE, [
    ("Change from baseline", ["figure:alsfrs-change", "alsfrs"]),
    ("Individual trajectories", ["figure:spaghetti"]),
    ("Domains", ["figure:domains", "alsfrs-domains"]),
    ("Items", ["alsfrs-items"]),
    ("King's stage", ["figure:kings", "kings"]),
    ("MiToS stage", ["figure:mitos", "mitos"]),
    ("Slopes (mixed model)", ["slopes"]),
])
