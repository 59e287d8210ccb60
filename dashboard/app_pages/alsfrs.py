"""ALSFRS-R: individual trajectories (sampled), mean change from baseline +/- SE, domains, items,
King's and MiToS stages, slopes. Pooled when blinded, by arm when unblinded."""
import streamlit as st

from dashboard import state, widgets
from dashboard.figures import show_page_figures

PAGE = "alsfrs"
ctx = widgets.page_setup(PAGE, "ALSFRS-R")
why = state.table_unavailable(ctx, "alsfrs")
if why:                       # a trial delivered without the functional score
    st.info(why)
    st.stop()

show_page_figures(ctx, PAGE, "alsfrs")
tables = [("Total by visit", None), ("Domains", "tbl_alsfrs_domains"), ("Items", "tbl_alsfrs_items"),
          ("King's stage", "tbl_kings"),
          ("MiToS stage", "tbl_mitos"), ("Slopes (mixed model)", "tbl_slopes")]
for tab, (label, adapter) in zip(st.tabs([t[0] for t in tables]), tables):
    with tab:
        if adapter is None:
            widgets.show_named_table(ctx, PAGE, "alsfrs")
        else:
            try:
                df = state.get_result(ctx, f"dashboard.results.{adapter}")
            except state.SmallCellError as exc:   # a blinded filter below the minimum cell size
                widgets.show_small_cell_notice(exc)
                continue
            except Exception as exc:              # e.g. the mixed model on one subject
                widgets.show_filtered_failure(ctx, label, exc)
                continue
            widgets.show_table(ctx, PAGE, df, f"alsfrs-{adapter}",
                               f"{label}, ITT (data cut-off {ctx.snapshot.cut_date})")
