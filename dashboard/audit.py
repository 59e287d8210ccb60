"""Append-only audit log of unblinded page views, downloads and sign-ins.

One JSON object per line: ``time`` (UTC, ISO 8601), ``user``, ``role``, ``page``, ``action``,
``snapshot_hash`` and an optional ``detail``. The file (env ``MIROCALS_AUDIT_LOG``, default
``./audit/audit.log``) is only ever opened with ``O_APPEND``: entries are added, never rewritten.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

DEFAULT_AUDIT_LOG = Path("audit") / "audit.log"
# longest value kept per field: whatever a client sends (a 2 MB user name) adds at most this much
FIELD_MAX = {"user": 64, "role": 32, "page": 64, "action": 32, "snapshot_hash": 128, "detail": 1024}
_LOCK = threading.Lock()


def get_audit_path() -> Path:
    """The audit log location (env ``MIROCALS_AUDIT_LOG`` or ``./audit/audit.log``)."""
    return Path(os.environ.get("MIROCALS_AUDIT_LOG") or DEFAULT_AUDIT_LOG)


def log_event(user: str, role: str, page: str, action: str, snapshot_hash: str | None = None,
              detail: str | None = None, path: str | Path | None = None) -> dict:
    """Append one event to the audit log and return it.

    Parameters
    ----------
    user, role : who did it.
    page : the page (or ``"sign-in"``) it happened on.
    action : ``view``, ``download``, ``sign-in``, ``sign-in-failed``, ``sign-out``, ...
    snapshot_hash : content hash of the snapshot that was shown.
    detail : what was downloaded, for instance.
    """
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
             "user": _cap(user, "user"), "role": _cap(role, "role"), "page": _cap(page, "page"),
             "action": _cap(action, "action"), "snapshot_hash": _cap(snapshot_hash, "snapshot_hash")}
    if detail:
        entry["detail"] = _cap(detail, "detail")
    target = Path(path) if path else get_audit_path()
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    with _LOCK:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return entry


def _cap(value, field: str):
    """``value`` cut to ``FIELD_MAX[field]`` characters (an ellipsis marks a cut)."""
    if value is None:
        return None
    text, limit = str(value), FIELD_MAX[field]
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def load_events(path: str | Path | None = None, last: int | None = None) -> list[dict]:
    """Read the audit log (the ``last`` entries only when given); a missing log is empty."""
    target = Path(path) if path else get_audit_path()
    if not target.exists():
        return []
    with open(target, encoding="utf-8") as fh:
        lines = fh.readlines()
    if last:
        lines = lines[-last:]
    return [json.loads(x) for x in lines if x.strip()]
