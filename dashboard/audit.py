"""The dashboard's side of the audit log (``data_access.audit``: one schema, hash-chained).

``log_event`` keeps the dashboard's call shape (``page`` is written as the entry's ``object``,
``source`` is ``dashboard``); ``log_ctx`` takes the user, role, snapshot hash and cut-off from a
page context. When the entry cannot be written, the page (or download) is stopped with an error
in a running Streamlit script, and ``AuditWriteError`` is raised elsewhere: the output it would
record is never shown.
"""
from __future__ import annotations

from pathlib import Path

from data_access.audit import (  # noqa: F401  (re-exported for the dashboard's callers)
    DEFAULT_AUDIT_LOG, FIELD_MAX, AuditWriteError, describe_store, get_audit_path, read_entries, record,
    verify,
)


def log_event(user: str, role: str, page: str, action: str, snapshot_hash: str | None = None,
              detail: str | None = None, path: str | Path | None = None, cut=None) -> dict:
    """Append one dashboard event (``page`` -> ``object``) and return it.

    action : ``view``, ``download``, ``download-refused``, ``sign-in``, ``sign-in-failed``,
    ``sign-in-refused``, ``sign-out``, ...; snapshot_hash / cut : the snapshot shown."""
    try:
        return record(action, page, user=user, role=role, source="dashboard",
                      snapshot_hash=snapshot_hash, cut=cut, detail=detail, path=path)
    except AuditWriteError:
        _stop_page()
        raise


def log_ctx(ctx, page: str, action: str, detail: str | None = None) -> dict:
    """``log_event`` for a page context: its user, role, snapshot hash and cut-off date."""
    snapshot = getattr(ctx, "snapshot", None)
    return log_event(ctx.user, ctx.role, page, action, getattr(snapshot, "snapshot_hash", None),
                     detail=detail, cut=getattr(snapshot, "cut_date", None))


def load_events(path: str | Path | None = None, last: int | None = None) -> list[dict]:
    """The audit entries (the ``last`` ones only when given), oldest first, in the current schema
    (old lines mapped: ``page``/``report`` -> ``object``, ``snapshot`` -> ``snapshot_hash``)."""
    return read_entries(path, last)


def _stop_page() -> None:
    """In a running page: an error instead of the output, and the script stops."""
    try:
        import streamlit as st
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:                     # pragma: no cover
        return
    if get_script_run_ctx(suppress_warning=True) is None:
        return
    # the page view is logged once per view (dashboard.widgets._VIEWED): forget it, so the next
    # rerun tries to log again and shows nothing either while the log cannot be written
    st.session_state.pop("_audit_viewed", None)
    st.error("This output cannot be shown: the audit log cannot be written. "
             "Tell the trial statistician.")
    st.stop()
