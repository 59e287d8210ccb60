"""Audit log (trial statistician only): who saw or downloaded unblinded outputs, and sign-ins."""
import pandas as pd
import streamlit as st

from dashboard import audit, widgets

PAGE = "audit"
ctx = widgets.page_setup(PAGE, "Audit log", roles=("statistician",), unblinded_only=True)

last = st.number_input("Most recent entries", min_value=10, max_value=100_000, value=500, step=100,
                       key="audit_last")
events = pd.DataFrame(audit.load_events(last=int(last)),
                      columns=["time", "user", "role", "page", "action", "snapshot_hash", "detail"])
st.caption(f"Log file: `{audit.get_audit_path()}` (append-only).")
widgets.show_table(ctx, PAGE, events.iloc[::-1].reset_index(drop=True), "audit-log")
