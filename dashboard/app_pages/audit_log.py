"""Audit log (trial statistician only): every entry of the audit log (page views, downloads,
sign-ins, report renders and command-line outputs), newest first, with filters by user, action
and date, and the state of the hash chain."""
import pandas as pd
import streamlit as st

from dashboard import audit, widgets

PAGE = "audit"
COLUMNS = {"time": "Time (UTC)", "user": "User", "role": "Role", "action": "Action", "object": "Object",
           "snapshot_hash": "Snapshot", "cut": "Cut-off", "detail": "Detail", "source": "Source"}
SNAPSHOT_CHARS = 12             # as in the page header


def entries_frame(entries: list[dict]) -> pd.DataFrame:
    """The entries as a table for people: labelled columns, time as ``YYYY-MM-DD HH:MM:SS``,
    the snapshot hash shortened, empty cells blank; oldest first (``_date`` kept for filtering)."""
    df = pd.DataFrame(entries, columns=list(COLUMNS))
    when = pd.to_datetime(df["time"], utc=True, format="ISO8601", errors="coerce")
    df["time"] = when.dt.strftime("%Y-%m-%d %H:%M:%S").fillna(df["time"].fillna(""))
    df["snapshot_hash"] = df["snapshot_hash"].fillna("").astype(str).str[:SNAPSHOT_CHARS]
    df = df.fillna("").astype(str)
    df["_date"] = when.dt.date
    return df.rename(columns=COLUMNS)


ctx = widgets.page_setup(PAGE, "Audit log", roles=("statistician",), unblinded_only=True)

path = audit.describe_store()          # the file, or the PostgreSQL table (MIROCALS_AUDIT_DSN)
chain = audit.verify()
if chain.ok:
    st.caption(f"Log: `{path}` (append-only, hash-chained): chain intact, {chain.lines:,} entries"
               + (f" ({chain.lines - chain.chained:,} written before the chain)" if chain.lines > chain.chained
                  else "") + ".")
else:
    st.error(f"Log `{path}`: the hash chain is broken at "
             + (f"row seq {chain.broken_seq}" if chain.broken_seq is not None else f"line {chain.broken_line}")
             + f": {chain.reason}.")

table = entries_frame(audit.load_events())
dates = table["_date"].dropna()
c1, c2, c3 = st.columns(3)
users = c1.multiselect("User", sorted(set(table["User"]) - {""}), key="audit_user")
actions = c2.multiselect("Action", sorted(set(table["Action"]) - {""}), key="audit_action")
span = c3.date_input("Dates (UTC, from - to)", value=(), key="audit_dates", format="YYYY-MM-DD",
                     help="Empty: every date." + (f" Entries from {dates.min()} to {dates.max()}." if len(dates) else ""))

shown = table
if users:
    shown = shown[shown["User"].isin(users)]
if actions:
    shown = shown[shown["Action"].isin(actions)]
if isinstance(span, (tuple, list)) and len(span) == 2:
    shown = shown[shown["_date"].notna() & (shown["_date"] >= span[0]) & (shown["_date"] <= span[1])]
elif isinstance(span, (tuple, list)) and len(span) == 1:
    shown = shown[shown["_date"] == span[0]]
st.caption(f"{len(shown):,} of {len(table):,} entries, newest first.")
widgets.show_table(ctx, PAGE, shown.drop(columns="_date").iloc[::-1].reset_index(drop=True), "audit-log")
