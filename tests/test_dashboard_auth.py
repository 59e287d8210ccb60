"""Sign-in throttling, lockout, idle expiry, role mapping and the append-only audit log."""
from __future__ import annotations

import hashlib
import json

import bcrypt
import pytest

from dashboard import audit, auth
from data_access.audit import verify


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("MIROCALS_INSTANCE", raising=False)
    monkeypatch.delenv("MIROCALS_IDLE_TIMEOUT", raising=False)
    auth.reset_throttle()
    yield
    auth.reset_throttle()


def _creds(**users):
    return {"users": {u: {"role": r, "name": u, "password_hash": bcrypt.hashpw(f"pw-{u}".encode(),
                                                                               bcrypt.gensalt(4)).decode()}
                      for u, r in users.items()},
            "roles": {"Chair@Example.org": "dsmb", "x@example.org": "admin"}}


@pytest.mark.parametrize("role", auth.ROLES)
def test_demo_accounts_sign_in_with_their_documented_password(role):
    creds = auth.load_credentials(auth.DEFAULT_CREDENTIALS)
    account, _ = auth.check_password(role, f"demo-{role}", creds, now=0.0)
    assert account == {"user": role, "role": role, "name": creds["users"][role]["name"]}


def test_wrong_password_and_unknown_user_give_the_same_message():
    creds = _creds(alice="dsmb")
    a, msg_a = auth.check_password("alice", "nope", creds, now=1000.0)
    b, msg_b = auth.check_password("nobody-here", "nope", creds, now=1000.0)
    assert a is None and b is None and msg_a == msg_b


def test_failures_delay_the_next_attempt_exponentially_never_a_hard_lock():
    creds = _creds(bob="steering")
    t = 5000.0
    assert auth.check_password("bob", "x", creds, now=t)[0] is None          # failure 1: wait 1 s
    account, msg = auth.check_password("bob", "pw-bob", creds, now=t + 0.5)
    assert account is None and "wait" in msg                                  # refused even if right
    t += 1.01
    assert auth.check_password("bob", "x", creds, now=t)[0] is None          # failure 2: wait 2 s
    assert auth.check_password("bob", "pw-bob", creds, now=t + 1.9)[0] is None
    for delay in (2.01, 4.01, 8.01, 16.01, 32.01, 60.01, 60.01):               # failures 3 .. 9
        t += delay
        assert auth.check_password("bob", "x", creds, now=t)[0] is None
    account, msg = auth.check_password("bob", "pw-bob", creds, now=t + 30)
    assert account is None and "wait" in msg
    # the delay stops growing at NAME_MAX_DELAY: a stranger cannot lock the account out
    account, _ = auth.check_password("bob", "pw-bob", creds, now=t + auth.NAME_MAX_DELAY + 0.01)
    assert account["role"] == "steering"
    # success clears the record: a later single failure waits 1 s again, not 60 s
    t2 = t + auth.NAME_MAX_DELAY + 2
    auth.check_password("bob", "x", creds, now=t2)
    assert auth.check_password("bob", "pw-bob", creds, now=t2 + 1.01)[0] is not None


def test_session_expires_after_30_minutes_idle_and_activity_keeps_it_alive():
    state = {}
    state[auth.SESSION_KEY] = auth.make_session({"user": "u", "role": "dsmb"}, now=0.0)
    assert auth.get_session(state, now=29 * 60)["role"] == "dsmb"
    assert auth.get_session(state, now=29 * 60 + 29 * 60) is not None        # touched at 29 min
    assert auth.get_session(state, now=58 * 60 + 30 * 60 + 1) is None
    assert "expired" in state["auth_message"]


def test_sign_out_forgets_the_user():
    state = {auth.SESSION_KEY: auth.make_session({"user": "u", "role": "dsmb"}), "flt_site": ["FR01"]}
    auth.sign_out(state)
    assert state == {}


def test_oidc_email_maps_to_a_known_role_only():
    creds = _creds()
    assert auth.role_for_email("chair@example.org", creds) == "dsmb"
    assert auth.role_for_email("x@example.org", creds) is None               # not a dashboard role
    assert auth.role_for_email("someone@else.org", creds) is None
    assert auth.role_for_email(None, creds) is None


def test_credentials_path_comes_from_env(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[users.zed]\nrole = "author"\npassword_hash = "$2b$04$abc"\n')
    monkeypatch.setenv("MIROCALS_CREDENTIALS", str(path))
    assert auth.load_credentials()["users"]["zed"]["role"] == "author"


def test_author_is_unblinded_only_after_database_lock(monkeypatch):
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    assert [auth.is_unblinded_role(r) for r in auth.ROLES] == [False, False, True, True, False]
    monkeypatch.setenv("MIROCALS_DATABASE_LOCKED", "1")
    assert auth.is_unblinded_role("author") and not auth.is_unblinded_role("steering")


def test_audit_log_appends_json_lines_and_never_truncates(tmp_path):
    path = tmp_path / "sub" / "audit.log"
    path.parent.mkdir()
    path.write_text('{"pre": "existing"}\n')
    audit.log_event("dsmb", "dsmb", "survival", "view", "abc123", path=path)
    audit.log_event("dsmb", "dsmb", "survival", "download", "abc123", detail="km.png", path=path)
    lines = path.read_text().splitlines()
    assert lines[0] == '{"pre": "existing"}'
    first, second = json.loads(lines[1]), json.loads(lines[2])
    assert {k: first[k] for k in ("user", "role", "object", "action", "snapshot_hash", "source")} == \
        {"user": "dsmb", "role": "dsmb", "object": "survival", "action": "view", "snapshot_hash": "abc123",
         "source": "dashboard"}
    assert first["time"].endswith("+00:00") and second["detail"] == "km.png"
    assert [e["action"] for e in audit.load_events(path, last=2)] == ["view", "download"]
    # os.open with O_APPEND only: nothing before is rewritten, and the chain starts after the old line
    assert second["prev"] == hashlib.sha256(lines[1].encode()).hexdigest()
    assert verify(path).ok
