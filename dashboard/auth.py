"""Sign-in: bcrypt password accounts with roles, throttling, idle expiry and optional OIDC.

Accounts come from ``dashboard/credentials.toml`` (``[users.<name>]`` with ``password_hash``,
``role`` and ``name``), or from ``[credentials]`` in ``st.secrets``; env ``MIROCALS_CREDENTIALS``
overrides the file path. When ``st.secrets`` has an ``[auth]`` section, single sign-on through
``st.login`` is offered too, and the identity's e-mail is mapped to a role by the ``[roles]`` table
of the credentials.

Failed sign-ins are throttled per user name on the server (module-level state behind a lock,
shared by every session of the process): after each failure the next attempt is refused for an
exponentially growing delay, and after ``MAX_FAILURES`` failures the name is locked for
``LOCKOUT_SECONDS``. A session expires after ``IDLE_TIMEOUT_SECONDS`` without a rerun.
"""
from __future__ import annotations

import os
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt

ROLES = ("steering", "investigator", "dsmb", "statistician", "author")
UNBLINDED_ROLES = ("dsmb", "statistician")
DEFAULT_CREDENTIALS = Path(__file__).parent / "credentials.toml"
SESSION_KEY = "mirocals_auth"
IDLE_TIMEOUT_SECONDS = 30 * 60
MAX_FAILURES = 5
LOCKOUT_SECONDS = 5 * 60
BASE_DELAY_SECONDS = 1.0
# a valid hash to check against for unknown names, so both paths cost one bcrypt check
_DUMMY_HASH = bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(4))


@dataclass
class _Failures:
    count: int = 0
    next_allowed: float = 0.0


_FAILURES: dict[str, _Failures] = {}
_FAILURES_LOCK = threading.Lock()


def database_locked() -> bool:
    """Whether database lock is recorded for this deployment (env ``MIROCALS_DATABASE_LOCKED``)."""
    return os.environ.get("MIROCALS_DATABASE_LOCKED", "").lower() in ("1", "true", "yes")


def is_unblinded_role(role: str) -> bool:
    """DSMB and statisticians always; authors only after database lock."""
    return role in UNBLINDED_ROLES or (role == "author" and database_locked())


def _secrets_section(name: str):
    try:
        import streamlit as st
        if name in st.secrets:
            return st.secrets[name].to_dict() if hasattr(st.secrets[name], "to_dict") else dict(st.secrets[name])
    except Exception:  # no secrets file: nothing configured
        return None
    return None


def load_credentials(path: str | Path | None = None) -> dict:
    """Return ``{"users": {name: {...}}, "roles": {email: role}}`` from the configured source."""
    env_path = os.environ.get("MIROCALS_CREDENTIALS")
    if path is None and not env_path:
        from_secrets = _secrets_section("credentials")
        if from_secrets:
            return {"users": from_secrets.get("users", {}), "roles": from_secrets.get("roles", {})}
    with open(Path(path or env_path or DEFAULT_CREDENTIALS), "rb") as fh:
        raw = tomllib.load(fh)
    return {"users": raw.get("users", {}), "roles": raw.get("roles", {})}


def check_password(username: str, password: str, credentials: dict,
                   now: float | None = None) -> tuple[dict | None, str]:
    """Check a user name and password against the credentials, with throttling.

    Returns ``(account, message)``: the account dict (``user``, ``role``, ``name``) on success,
    otherwise ``None`` and a message that does not say whether the name exists.
    """
    now = time.monotonic() if now is None else now
    username = (username or "").strip()
    with _FAILURES_LOCK:
        state = _FAILURES.get(username)
        if state and now < state.next_allowed:
            wait = int(state.next_allowed - now) + 1
            if state.count >= MAX_FAILURES:
                return None, f"Too many failed sign-ins: this account is locked for {wait} s."
            return None, f"Please wait {wait} s before trying again."
    account = credentials.get("users", {}).get(username)
    stored = (account or {}).get("password_hash", "").encode() or _DUMMY_HASH
    try:
        ok = bcrypt.checkpw((password or "").encode(), stored) and account is not None
    except ValueError:
        ok = False
    role = (account or {}).get("role")
    if ok and role in ROLES:
        with _FAILURES_LOCK:
            _FAILURES.pop(username, None)
        return {"user": username, "role": role, "name": account.get("name", username)}, "Signed in."
    with _FAILURES_LOCK:
        state = _FAILURES.setdefault(username, _Failures())
        state.count += 1
        if state.count >= MAX_FAILURES:
            state.next_allowed = now + LOCKOUT_SECONDS
        else:
            state.next_allowed = now + BASE_DELAY_SECONDS * 2 ** (state.count - 1)
    return None, "Unknown user name or wrong password."


def role_for_email(email: str | None, credentials: dict) -> str | None:
    """The role an OIDC identity maps to (``[roles]`` table), or None."""
    if not email:
        return None
    roles = {k.lower(): v for k, v in credentials.get("roles", {}).items()}
    role = roles.get(email.lower())
    return role if role in ROLES else None


def make_session(account: dict, method: str = "password", now: float | None = None) -> dict:
    """The session-state record of a signed-in user."""
    return {"user": account["user"], "role": account["role"], "name": account.get("name", account["user"]),
            "method": method, "last_seen": time.time() if now is None else now}


def get_session(session_state, now: float | None = None) -> dict | None:
    """The signed-in user's record, or None; expires it after the idle timeout and touches it."""
    record = session_state.get(SESSION_KEY)
    if not record:
        return None
    now = time.time() if now is None else now
    if now - record["last_seen"] > IDLE_TIMEOUT_SECONDS:
        session_state[SESSION_KEY] = None
        session_state["auth_message"] = "Your session expired after 30 minutes without activity."
        return None
    record["last_seen"] = now
    return record


def sign_out(session_state) -> None:
    """Forget the signed-in user (and every other session key)."""
    for key in list(session_state.keys()):
        del session_state[key]


def oidc_configured() -> bool:
    return bool(_secrets_section("auth"))
