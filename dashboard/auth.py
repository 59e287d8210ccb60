"""Sign-in: bcrypt password accounts with roles, throttling, idle expiry and optional OIDC.

Accounts come from ``dashboard/credentials.toml`` (``[users.<name>]`` with ``password_hash``,
``role`` and ``name``), or from ``[credentials]`` in ``st.secrets``; env ``MIROCALS_CREDENTIALS``
overrides the file path. When ``st.secrets`` has an ``[auth]`` section, single sign-on through
``st.login`` is offered too, and the identity's e-mail is mapped to a role by the ``[roles]`` table
of the credentials.

Throttling (module-level state, one lock, shared by every session of the process):

* The check and the record are one critical section: an attempt *reserves* its slot (counts as a
  failure, marks its name and its client address as in flight) before bcrypt runs, so concurrent
  attempts for the same name or from the same address are refused, not processed. A success
  clears the name's record afterwards.
* Per user name: a delay that doubles after each failure (1 s, 2 s, ... capped at
  ``NAME_MAX_DELAY``), never a hard lock, so a stranger cannot lock a named account out.
* Per client address: ``ADDRESS_FREE_FAILURES`` failures are free, then the delay doubles up to a
  short lock of ``ADDRESS_LOCK_SECONDS``: one password tried against many names is slowed.
* Both tables are bounded (``MAX_TRACKED`` entries each; stale entries are forgotten after
  ``FORGET_AFTER_SECONDS``, the oldest evicted first) and keyed by names capped at
  ``NAME_MAX_CHARS``.
* Unknown names are checked against a dummy hash at the same bcrypt cost as the real accounts
  (the highest cost found in the credentials), so both paths cost the same.

Sessions expire after ``IDLE_TIMEOUT_SECONDS`` without activity; the check runs on every rerun
and on every download (``get_session``). Instances (env ``MIROCALS_INSTANCE``) limit the roles
that may sign in: see ``dashboard.instance``.
"""
from __future__ import annotations

import os
import re
import threading
import time
import tomllib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import bcrypt

ROLES = ("steering", "investigator", "dsmb", "statistician", "author")
UNBLINDED_ROLES = ("dsmb", "statistician")
DEFAULT_CREDENTIALS = Path(__file__).parent / "credentials.toml"
SESSION_KEY = "mirocals_auth"
EXPIRED_KEY = "_auth_expired"          # set (to the sign-in method) when a session just expired
IDLE_TIMEOUT_SECONDS = 30 * 60        # env MIROCALS_IDLE_TIMEOUT (seconds) overrides it


def idle_timeout() -> float:
    """Seconds without activity after which a session expires."""
    try:
        return float(os.environ.get("MIROCALS_IDLE_TIMEOUT") or IDLE_TIMEOUT_SECONDS)
    except ValueError:
        return float(IDLE_TIMEOUT_SECONDS)


NAME_MAX_CHARS = 64
BASE_DELAY_SECONDS = 1.0
NAME_MAX_DELAY = 60.0
ADDRESS_FREE_FAILURES = 5
ADDRESS_LOCK_SECONDS = 5 * 60
FORGET_AFTER_SECONDS = 15 * 60
MAX_TRACKED = 5000
DEFAULT_COST = 12
BCRYPT_MAX_BYTES = 72                  # bcrypt reads 72 bytes; bcrypt 5 raises beyond (a timing tell)
MESSAGE_FAILED = "Unknown user name or wrong password."
MESSAGE_BUSY = "Another sign-in attempt for this name or from this address is in progress: try again in a moment."


@dataclass
class _Failures:
    count: int = 0
    next_allowed: float = 0.0
    last: float = 0.0
    in_flight: bool = False
    before: float = 0.0                 # next_allowed before the attempt in flight reserved its slot
    refused: int = 0                    # attempts refused since the last one that ran


@dataclass(frozen=True)
class Attempt:
    """The outcome of one sign-in attempt: ``ok``, ``failed`` or ``refused`` (throttled)."""
    account: dict | None
    message: str
    outcome: str
    user: str                           # the name as logged: stripped, printable, capped
    refused_count: int = 0              # for a refusal: how many in a row for this name/address

    @property
    def worth_logging(self) -> bool:
        """Every attempt that ran; refusals only the 1st, 2nd, 4th, 8th, ... in a row (a flood of
        cheap refused attempts must not flood the audit log)."""
        n = self.refused_count
        return self.outcome != "refused" or (n & (n - 1)) == 0


_BY_NAME: OrderedDict[str, _Failures] = OrderedDict()
_BY_ADDRESS: OrderedDict[str, _Failures] = OrderedDict()
_LOCK = threading.Lock()
_DUMMY: dict[int, bytes] = {}
_DUMMY_LOCK = threading.Lock()


def database_locked() -> bool:
    """Whether database lock is recorded for this deployment (env ``MIROCALS_DATABASE_LOCKED``)."""
    return os.environ.get("MIROCALS_DATABASE_LOCKED", "").lower() in ("1", "true", "yes")


def is_unblinded_role(role: str) -> bool:
    """DSMB and statisticians always; authors only after database lock; nobody on a blinded
    instance (``MIROCALS_INSTANCE=blinded``)."""
    from dashboard.instance import is_blinded_instance
    if is_blinded_instance():
        return False
    return role in UNBLINDED_ROLES or (role == "author" and database_locked())


def safe_name(username) -> str:
    """A user name fit for the audit log and the throttling table: stripped, control characters
    replaced, at most ``NAME_MAX_CHARS`` characters."""
    text = str(username or "")[:4 * NAME_MAX_CHARS].strip()
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", "?", text)[:NAME_MAX_CHARS]


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


_COST = re.compile(r"^\$2[abxy]?\$(\d{2})\$")


def hash_cost(stored: str | bytes) -> int | None:
    """The bcrypt cost of a stored hash (``$2b$11$...`` -> 11), or None."""
    m = _COST.match(stored.decode() if isinstance(stored, bytes) else str(stored or ""))
    return int(m.group(1)) if m else None


def credentials_cost(credentials: dict) -> int:
    """The highest bcrypt cost among the accounts (``DEFAULT_COST`` when there is none)."""
    costs = [hash_cost(u.get("password_hash", "")) for u in credentials.get("users", {}).values()]
    return max((c for c in costs if c), default=DEFAULT_COST)


def dummy_hash(cost: int) -> bytes:
    """A valid hash of a random secret at ``cost``: what an unknown name is checked against."""
    with _DUMMY_LOCK:
        if cost not in _DUMMY:
            _DUMMY[cost] = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))
        return _DUMMY[cost]


def _forget_stale(table: OrderedDict, now: float) -> None:
    """Drop records untouched for ``FORGET_AFTER_SECONDS`` past their delay (oldest first)."""
    while table:
        key, rec = next(iter(table.items()))
        if rec.in_flight or now < max(rec.next_allowed, rec.last) + FORGET_AFTER_SECONDS:
            break
        table.popitem(last=False)


def _record(table: OrderedDict, key: str, now: float) -> _Failures:
    rec = table.get(key)
    if rec is None:
        while len(table) >= MAX_TRACKED:     # bounded: evict the least recently touched
            table.popitem(last=False)
        rec = table[key] = _Failures()
    table.move_to_end(key)
    rec.last = now
    return rec


def _name_delay(count: int) -> float:
    return min(BASE_DELAY_SECONDS * 2 ** (count - 1), NAME_MAX_DELAY)


def _address_delay(count: int) -> float:
    if count < ADDRESS_FREE_FAILURES:
        return 0.0
    return min(BASE_DELAY_SECONDS * 2 ** (count - ADDRESS_FREE_FAILURES), ADDRESS_LOCK_SECONDS)


def _reserve(name: str, address: str | None, now: float) -> tuple[str | None, int]:
    """Check the throttles and, when allowed, record the attempt as a failure and mark it in
    flight, all under the lock. Returns ``(refusal message or None, refusals in a row)``."""
    with _LOCK:
        _forget_stale(_BY_NAME, now)
        _forget_stale(_BY_ADDRESS, now)
        by_name = _BY_NAME.get(name)
        by_addr = _BY_ADDRESS.get(address) if address else None
        busy = (by_name and by_name.in_flight) or (by_addr and by_addr.in_flight)
        waits = [r.next_allowed - now for r in (by_name, by_addr) if r and now < r.next_allowed]
        if busy or waits:
            blocking = [r for r in (by_name, by_addr) if r and (r.in_flight or now < r.next_allowed)]
            for r in blocking:
                r.refused += 1
            n = max(r.refused for r in blocking)
            if busy:
                return MESSAGE_BUSY, n
            return f"Too many failed sign-ins: please wait {int(max(waits)) + 1} s before trying again.", n
        rec = _record(_BY_NAME, name, now)
        rec.count += 1
        rec.next_allowed = now + _name_delay(rec.count)
        rec.in_flight = True
        rec.refused = 0
        if address:
            rec = _record(_BY_ADDRESS, address, now)
            rec.before = rec.next_allowed
            rec.count += 1
            rec.next_allowed = now + _address_delay(rec.count)
            rec.in_flight = True
            rec.refused = 0
    return None, 0


def _release(name: str, address: str | None, ok: bool) -> None:
    with _LOCK:
        rec = _BY_NAME.get(name)
        if rec is not None:
            rec.in_flight = False
            if ok:                            # the account's own success clears its delay
                del _BY_NAME[name]
        rec = _BY_ADDRESS.get(address) if address else None
        if rec is not None:
            rec.in_flight = False
            if ok:          # a success undoes its own reservation only: it forgives no failure
                rec.count = max(rec.count - 1, 0)
                rec.next_allowed = rec.before


def attempt_sign_in(username: str, password: str, credentials: dict, now: float | None = None,
                    address: str | None = None, allowed_roles=None) -> Attempt:
    """One throttled sign-in attempt (see the module docstring). ``allowed_roles`` defaults to
    the roles this instance signs in (``dashboard.instance.allowed_roles``)."""
    if allowed_roles is None:
        from dashboard.instance import allowed_roles as instance_roles
        allowed_roles = instance_roles()
    now = time.monotonic() if now is None else now
    raw = (username or "").strip()
    name = safe_name(raw)
    address = safe_name(address) or None if address else None
    refused, in_a_row = _reserve(name, address, now)
    if refused:
        return Attempt(None, refused, "refused", name, in_a_row)
    ok = False
    try:
        users = credentials.get("users", {})
        account = users.get(raw) if len(raw) <= NAME_MAX_CHARS else None
        stored = str((account or {}).get("password_hash", "")).encode()
        if hash_cost(stored) is None:
            account, stored = None, dummy_hash(credentials_cost(credentials))
        secret = (password or "").encode()[:BCRYPT_MAX_BYTES]
        try:
            ok = bcrypt.checkpw(secret, stored) and account is not None
        except ValueError:
            ok = False
        role = (account or {}).get("role")
        ok = ok and role in ROLES and role in allowed_roles
    finally:
        _release(name, address, ok)
    if ok:
        return Attempt({"user": raw, "role": role, "name": account.get("name", raw)}, "Signed in.", "ok", name)
    return Attempt(None, MESSAGE_FAILED, "failed", name)


def check_password(username: str, password: str, credentials: dict, now: float | None = None,
                   address: str | None = None) -> tuple[dict | None, str]:
    """``(account, message)``: the account dict (``user``, ``role``, ``name``) on success,
    otherwise ``None`` and a message that does not say whether the name exists."""
    result = attempt_sign_in(username, password, credentials, now=now, address=address)
    return result.account, result.message


def throttle_sizes() -> tuple[int, int]:
    """How many names and addresses the throttle currently tracks."""
    with _LOCK:
        return len(_BY_NAME), len(_BY_ADDRESS)


def reset_throttle() -> None:
    """Forget every recorded failure (tests)."""
    with _LOCK:
        _BY_NAME.clear()
        _BY_ADDRESS.clear()


def role_for_email(email: str | None, credentials: dict) -> str | None:
    """The role an OIDC identity maps to (``[roles]`` table), or None; only roles this instance
    signs in."""
    if not email:
        return None
    from dashboard.instance import allowed_roles
    roles = {k.lower(): v for k, v in credentials.get("roles", {}).items()}
    role = roles.get(email.lower())
    return role if role in ROLES and role in allowed_roles() else None


def oidc_role(user: dict, credentials: dict) -> tuple[str | None, str, str]:
    """``(role, "", "")`` for a single sign-on identity whose e-mail the ``[roles]`` table maps,
    else ``(None, reason, message)``: a short reason for the audit log, a message for the user.
    An e-mail the provider marks unverified (``email_verified`` false) maps to no role: some
    providers let a user set any address, and the mapping trusts the address."""
    email = str(user.get("email") or "").strip()
    shown = safe_name(email).replace("`", "'")
    if not email:
        return None, "no e-mail", ("Your single sign-on identity carries no e-mail address, so it maps "
                                   "to no role: the provider must release the e-mail (scope `email`).")
    if user.get("email_verified") in (False, "false", "False"):
        return None, "e-mail not verified", (f"The e-mail `{shown}` is not verified by your single sign-on "
                                             "provider: it maps to no role until the provider has verified it.")
    role = role_for_email(email, credentials)
    if role is None:
        return None, "no role", (f"`{shown}` has no role in this dashboard (on this instance): ask the trial "
                                 "statistician to add it to the [roles] table of the dashboard's credentials.")
    return role, "", ""


def make_session(account: dict, method: str = "password", now: float | None = None) -> dict:
    """The session-state record of a signed-in user."""
    return {"user": account["user"], "role": account["role"], "name": account.get("name", account["user"]),
            "method": method, "last_seen": time.time() if now is None else now}


def get_session(session_state, now: float | None = None, touch: bool = True) -> dict | None:
    """The signed-in user's record, or None. Expires it after the idle timeout (and when its role
    may not sign in to this instance), recording the sign-in method under ``EXPIRED_KEY`` so the
    caller can end a single sign-on identity too; touches it otherwise."""
    record = session_state.get(SESSION_KEY)
    if not record:
        return None
    from dashboard.instance import allowed_roles
    now = time.time() if now is None else now
    if now - record["last_seen"] > idle_timeout() or record.get("role") not in allowed_roles():
        session_state[SESSION_KEY] = None
        session_state[EXPIRED_KEY] = record.get("method", "password")
        minutes = idle_timeout() / 60
        session_state["auth_message"] = (f"Your session expired after {minutes:g} minutes without activity."
                                         if minutes >= 1 else "Your session expired without activity.")
        return None
    if touch:
        record["last_seen"] = now
    return record


def sign_out(session_state) -> None:
    """Forget the signed-in user (and every other session key)."""
    for key in list(session_state.keys()):
        del session_state[key]


def oidc_configured() -> bool:
    return bool(_secrets_section("auth"))


def oidc_identity_fresh(user: dict, now: float | None = None) -> bool:
    """Whether a single sign-on identity was issued (``iat`` / ``auth_time``) within the idle
    timeout: an older identity kept in Streamlit's cookie is not signed in silently."""
    now = time.time() if now is None else now
    issued = user.get("auth_time") or user.get("iat")
    try:
        return 0 <= now - float(issued) <= idle_timeout()
    except (TypeError, ValueError):
        return False
