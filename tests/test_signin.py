"""Sign-in attacks from issue 10 item 7, and the two instances (dashboard side).

Each test reproduces an attack as written in the issue and shows it fails: concurrent attempts,
one password against many names, locking a named account out, telling unknown names by timing,
a 2 MB user name, an unbounded failure table, idle expiry on downloads, single sign-on re-entry;
then the blinded instance that refuses an allocation and a DSMB sign-in.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import bcrypt
import pytest

from dashboard import audit, auth, downloads, instance

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for key in ("MIROCALS_INSTANCE", "MIROCALS_IDLE_TIMEOUT", "MIROCALS_DATABASE_LOCKED", "MIROCALS_CREDENTIALS"):
        monkeypatch.delenv(key, raising=False)
    instance._CACHE.clear()
    auth.reset_throttle()
    yield
    auth.reset_throttle()
    instance._CACHE.clear()


@pytest.fixture(scope="module")
def small_trial(tmp_path_factory) -> Path:
    """A small demo trial: ``clinical/`` and ``allocation/``."""
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("signin") / "trial"
    make_demo(root, n_subjects=60)
    return root


@pytest.fixture(scope="module")
def clinical_only(small_trial, tmp_path_factory) -> Path:
    """Its clinical part alone, with no allocation anywhere near it."""
    import shutil
    root = tmp_path_factory.mktemp("clinical_only") / "trial"
    shutil.copytree(small_trial / "clinical", root / "clinical")
    return root


def _creds(**users):
    return {"users": {u: {"role": r, "name": u,
                          "password_hash": bcrypt.hashpw(f"pw-{u}".encode(), bcrypt.gensalt(4)).decode()}
                      for u, r in users.items()}, "roles": {}}


def _slow_checkpw(monkeypatch, seconds=0.3):
    """Count the bcrypt checks that actually run (each takes ``seconds``)."""
    calls = []
    real = bcrypt.checkpw

    def checkpw(password, hashed):
        calls.append(hashed)
        time.sleep(seconds)
        return real(password, hashed)

    monkeypatch.setattr(auth.bcrypt, "checkpw", checkpw)
    return calls


def _together(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# --------------------------------------------------------------------------- throttling
def test_ten_simultaneous_attempts_for_one_name_run_one_bcrypt(monkeypatch):
    creds = _creds(dsmb="dsmb")
    calls = _slow_checkpw(monkeypatch)
    results = _together(10, lambda i: auth.attempt_sign_in("dsmb", f"guess-{i}", creds, address=f"10.0.0.{i}"))
    assert len(calls) == 1
    assert sorted(r.outcome for r in results) == ["failed"] + ["refused"] * 9


def test_simultaneous_attempts_from_one_address_run_one_bcrypt(monkeypatch):
    creds = _creds(**{f"user{i}": "steering" for i in range(10)})
    calls = _slow_checkpw(monkeypatch)
    results = _together(10, lambda i: auth.attempt_sign_in(f"user{i}", "Spring2026!", creds, address="203.0.113.7"))
    assert len(calls) == 1 and [r.outcome for r in results].count("refused") == 9


def test_one_password_against_many_names_from_one_address_is_slowed():
    creds = _creds(alice="dsmb")
    t = 10_000.0
    outcomes = [auth.attempt_sign_in(f"name{i}", "Spring2026!", creds, now=t + i * 0.01,
                                     address="203.0.113.8").outcome for i in range(12)]
    assert outcomes[:auth.ADDRESS_FREE_FAILURES] == ["failed"] * auth.ADDRESS_FREE_FAILURES
    assert set(outcomes[auth.ADDRESS_FREE_FAILURES:]) == {"refused"}
    # and it keeps growing while the address keeps failing, up to a short lock
    now = t + 1
    waits = []
    for _ in range(30):
        attempt = auth.attempt_sign_in(f"other{now}", "x", creds, now=now, address="203.0.113.8")
        if attempt.outcome == "refused":
            now = auth._BY_ADDRESS["203.0.113.8"].next_allowed + 0.01
            continue
        waits.append(auth._BY_ADDRESS["203.0.113.8"].next_allowed - now)
    assert waits == sorted(waits) and max(waits) == auth.ADDRESS_LOCK_SECONDS
    # another address is not affected
    assert auth.attempt_sign_in("alice", "pw-alice", creds, now=now, address="198.51.100.1").account


def test_a_stranger_cannot_lock_the_dsmb_out():
    creds = _creds(dsmb="dsmb")
    t = 20_000.0
    for i in range(40):                     # a botnet: a new address for every guess, as fast as allowed
        auth.attempt_sign_in("dsmb", f"guess-{i}", creds, now=t, address=f"192.0.2.{i}")
        t = auth._BY_NAME["dsmb"].next_allowed + 0.01
    assert auth._BY_NAME["dsmb"].next_allowed - (t - 0.01) <= auth.NAME_MAX_DELAY
    # the DSMB member waits at most NAME_MAX_DELAY, then signs in
    assert auth.attempt_sign_in("dsmb", "pw-dsmb", creds, now=t + auth.NAME_MAX_DELAY, address="198.51.100.9").account


def test_unknown_names_cost_the_same_bcrypt_as_real_ones(monkeypatch):
    creds = auth.load_credentials(auth.DEFAULT_CREDENTIALS)
    real_costs = {auth.hash_cost(u["password_hash"]) for u in creds["users"].values()}
    assert real_costs == {11}
    calls = _slow_checkpw(monkeypatch, 0)
    auth.attempt_sign_in("nobody-here", "x", creds, now=30_000.0)
    auth.attempt_sign_in("x" * 65, "x", creds, now=30_000.0)
    auth.attempt_sign_in("dsmb", "x", creds, now=30_000.0)
    assert [auth.hash_cost(h) for h in calls] == [11, 11, 11]
    assert calls[0] == calls[1] != calls[2]


def test_overlong_passwords_are_checked_not_refused_early(monkeypatch):
    calls = _slow_checkpw(monkeypatch, 0)
    auth.attempt_sign_in("dsmb", "p" * 10_000, _creds(dsmb="dsmb"), now=31_000.0)
    assert len(calls) == 1                  # bcrypt 5 would raise before hashing: a timing tell


def test_a_2mb_user_name_is_logged_truncated(tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").set_value("A" * 2_000_000)
    at.text_input(key="login_password").set_value("x")
    at.button[0].click()
    at.run()
    assert any("wrong password" in e.value for e in at.error)
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["action"] == "sign-in-failed" and entry["user"] == "A" * auth.NAME_MAX_CHARS
    assert log.stat().st_size < 1000
    assert all(len(k) <= auth.NAME_MAX_CHARS for k in auth._BY_NAME)


def test_the_failure_table_is_bounded(monkeypatch):
    monkeypatch.setattr(auth, "MAX_TRACKED", 50)
    creds = _creds(someone="steering")           # cost 4: 500 dummy checks stay fast
    for i in range(500):
        auth.attempt_sign_in(f"name-{i}" + "x" * 100, "x", creds, now=40_000.0 + i, address=f"10.1.{i // 250}.{i % 250}")
    names, addresses = auth.throttle_sizes()
    assert names <= 50 and addresses <= 50
    # stale records are forgotten
    auth.attempt_sign_in("late", "x", creds, now=40_500.0 + auth.FORGET_AFTER_SECONDS + auth.NAME_MAX_DELAY + 1)
    assert auth.throttle_sizes() == (1, 0)


# --------------------------------------------------------------------------- expiry, single sign-on
class _Ctx(SimpleNamespace):
    pass


def _ctx(user="dsmb", role="dsmb"):
    return _Ctx(user=user, role=role, unblinded=True, snapshot=SimpleNamespace(snapshot_hash="h" * 64))


def test_an_expired_session_cannot_download(tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    session_state = {auth.SESSION_KEY: auth.make_session({"user": "dsmb", "role": "dsmb"},
                                                          now=time.time() - auth.IDLE_TIMEOUT_SECONDS - 1)}
    monkeypatch.setattr(downloads, "st", SimpleNamespace(session_state=session_state))
    built = []
    assert downloads.serve(_ctx(), "survival", "km.csv", lambda: built.append(1) or b"data") is None
    assert not built and session_state[auth.SESSION_KEY] is None
    assert [(e["action"], e["detail"]) for e in audit.load_events(log)] == \
        [("download-refused", "km.csv: session expired or signed out")]
    # a live session gets it, audited
    session_state[auth.SESSION_KEY] = auth.make_session({"user": "dsmb", "role": "dsmb"})
    assert downloads.serve(_ctx(), "survival", "km.csv", lambda: b"data") == b"data"
    assert audit.load_events(log)[-1]["action"] == "download"
    # signed in as someone else since the page was built: refused
    assert downloads.serve(_ctx("statistician", "statistician"), "survival", "km.csv", lambda: b"x") is None


def test_single_sign_on_identity_must_be_fresh():
    now = 1_000_000.0
    assert auth.oidc_identity_fresh({"iat": now - 60}, now=now)
    assert not auth.oidc_identity_fresh({"iat": now - auth.IDLE_TIMEOUT_SECONDS - 1}, now=now)
    assert not auth.oidc_identity_fresh({"email": "a@b.org"}, now=now)   # no issue time: not fresh


def test_expiry_records_the_method_so_single_sign_on_is_ended():
    state = {auth.SESSION_KEY: auth.make_session({"user": "a@b.org", "role": "dsmb"}, method="oidc", now=0.0)}
    assert auth.get_session(state, now=auth.IDLE_TIMEOUT_SECONDS + 1) is None
    assert state[auth.EXPIRED_KEY] == "oidc"


def test_delivery_page_holds_the_bytes_and_triggers_one_download():
    html = downloads.delivery_html(b"a,b\n1,2\n", 'x"</script>.csv', "text/csv")
    assert "</script>.csv" not in html and "sessionStorage" in html
    assert downloads.delivered_files(html) == [('x"</script>.csv', b"a,b\n1,2\n")]


# --------------------------------------------------------------------------- two instances
def test_instances_sign_in_their_own_roles(monkeypatch):
    creds = auth.load_credentials(auth.DEFAULT_CREDENTIALS)

    def signs_in(role):
        auth.reset_throttle()
        return auth.attempt_sign_in(role, f"demo-{role}", creds, now=50_000.0).account is not None

    assert all(signs_in(r) for r in auth.ROLES)                                   # the demo
    monkeypatch.setenv("MIROCALS_INSTANCE", "blinded")
    assert [signs_in(r) for r in auth.ROLES] == [True, True, False, False, True]
    assert not any(auth.is_unblinded_role(r) for r in auth.ROLES)
    monkeypatch.setenv("MIROCALS_DATABASE_LOCKED", "1")
    assert not signs_in("author")
    monkeypatch.setenv("MIROCALS_INSTANCE", "unblinded")
    assert [signs_in(r) for r in auth.ROLES] == [False, False, True, True, True]
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED")
    assert not signs_in("author")
    monkeypatch.setenv("MIROCALS_INSTANCE", "typo")
    assert not any(signs_in(r) for r in auth.ROLES)                               # fail closed
    assert instance.startup_problems()


def test_a_session_of_a_role_the_instance_does_not_sign_in_is_dropped(monkeypatch):
    state = {auth.SESSION_KEY: auth.make_session({"user": "dsmb", "role": "dsmb"})}
    monkeypatch.setenv("MIROCALS_INSTANCE", "blinded")
    assert auth.get_session(state) is None


def test_blinded_instance_refuses_an_allocation(small_trial, clinical_only, monkeypatch, tmp_path):
    monkeypatch.setenv("MIROCALS_INSTANCE", "blinded")
    monkeypatch.setenv("MIROCALS_DATA", str(clinical_only))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)
    assert instance.startup_problems() == []
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(small_trial / "allocation"))
    assert any("MIROCALS_ALLOCATION" in p for p in instance.startup_problems())
    monkeypatch.delenv("MIROCALS_ALLOCATION")
    monkeypatch.setenv("MIROCALS_DATA", str(small_trial))                       # allocation/ beside clinical/
    assert any("readable from the data path" in p for p in instance.startup_problems())
    monkeypatch.delenv("MIROCALS_DATA")                                           # the demo has its allocation
    assert any("MIROCALS_DATA is not set" in p for p in instance.startup_problems())
    monkeypatch.setenv("MIROCALS_INSTANCE", "unblinded")                          # and the other way round
    assert any("needs its allocation" in p for p in instance.startup_problems())
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(small_trial / "allocation"))
    assert instance.startup_problems() == []


def test_blinded_instance_with_an_allocation_shows_only_an_error_page(small_trial, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MIROCALS_INSTANCE", "blinded")
    monkeypatch.setenv("MIROCALS_DATA", str(small_trial))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(small_trial / "allocation"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert any("refuses to serve data" in e.value for e in at.error)
    assert not at.text_input and not at.dataframe


def test_blinded_instance_refuses_a_dsmb_sign_in(clinical_only, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MIROCALS_INSTANCE", "blinded")
    monkeypatch.setenv("MIROCALS_DATA", str(clinical_only))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "Blinded instance" in " ".join(c.value for c in at.caption)
    at.text_input(key="login_user").set_value("dsmb")
    at.text_input(key="login_password").set_value("demo-dsmb")
    at.button[0].click()
    at.run()
    assert any("wrong password" in e.value for e in at.error)
    assert auth.SESSION_KEY not in at.session_state or not at.session_state[auth.SESSION_KEY]


def test_demo_sign_in_page_says_it_is_one_mixed_instance(clinical_only, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MIROCALS_DATA", str(clinical_only))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    text = " ".join(w.value for w in at.warning)
    assert "one mixed demo instance" in text and "demo accounts" in text and "two instances" in text


def test_an_insider_signing_in_between_guesses_does_not_reset_the_address_throttle():
    creds = _creds(insider="investigator")
    t, address = 60_000.0, "203.0.113.20"
    outcomes = []
    for i in range(8):
        outcomes.append(auth.attempt_sign_in(f"victim{i}", "guess", creds, now=t, address=address).outcome)
        t = max(t, auth._BY_ADDRESS[address].next_allowed) + 0.01
        assert auth.attempt_sign_in("insider", "pw-insider", creds, now=t, address=address).account
        t += 0.01
    assert outcomes == ["failed"] * 8
    assert auth._BY_ADDRESS[address].count == 8          # the successes forgave nothing


# --------------------------------------------------------------------------- single sign-on (AppTest)
def _oidc_app(small_trial, monkeypatch, iat):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MIROCALS_DATA", str(small_trial))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(small_trial / "allocation"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "c", "client_secret": "s",
                          "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}
    at.user = {"is_logged_in": True, "email": "dsmb.chair@example.org", "name": "Chair", "iat": iat}
    return at


def test_a_fresh_single_sign_on_identity_signs_in(small_trial, monkeypatch):
    at = _oidc_app(small_trial, monkeypatch, time.time() - 60)
    at.run()
    assert not at.exception
    record = at.session_state[auth.SESSION_KEY]
    assert record["role"] == "dsmb" and record["method"] == "oidc"


def test_an_old_single_sign_on_identity_is_not_signed_in_silently(small_trial, monkeypatch):
    at = _oidc_app(small_trial, monkeypatch, time.time() - auth.IDLE_TIMEOUT_SECONDS - 60)
    at.run()
    assert not at.exception
    assert auth.SESSION_KEY not in at.session_state or not at.session_state[auth.SESSION_KEY]
    assert at.button(key="relogin_oidc").label.startswith("Sign in again")


def test_after_expiry_the_next_rerun_does_not_sign_the_identity_back_in(small_trial, monkeypatch):
    at = _oidc_app(small_trial, monkeypatch, time.time() - 60)
    at.run()
    assert at.session_state[auth.SESSION_KEY]["method"] == "oidc"
    at.session_state[auth.SESSION_KEY]["last_seen"] = time.time() - auth.IDLE_TIMEOUT_SECONDS - 1
    at.run()                                       # expires: st.logout ends the identity
    assert at.session_state[auth.EXPIRED_KEY] == "oidc-ended"
    at.run()
    assert not at.exception and not at.session_state[auth.SESSION_KEY]
    assert at.button(key="login_oidc").label == "Sign in with single sign-on"    # a new st.login
    # and even with the identity still present, this session does not map it again
    at.user = {"is_logged_in": True, "email": "dsmb.chair@example.org", "iat": time.time() - 60}
    at.run()
    assert not at.session_state[auth.SESSION_KEY] and at.button(key="relogin_oidc") is not None


def test_a_flood_of_refused_attempts_logs_a_few_lines_only():
    creds = _creds(dsmb="dsmb")
    t = 70_000.0
    first = auth.attempt_sign_in("dsmb", "guess", creds, now=t, address="192.0.2.50")
    flood = [auth.attempt_sign_in("dsmb", "guess", creds, now=t + 0.0001 * i, address="192.0.2.50")
             for i in range(1, 1001)]
    assert first.worth_logging and {a.outcome for a in flood} == {"refused"}
    assert [a.refused_count for a in flood if a.worth_logging] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def test_sign_in_page_preloads_the_chart_library_with_an_empty_hidden_chart(tmp_path, monkeypatch):
    """The sign-in page holds one plotly chart, hidden and empty (no trace, no text): the browser
    loads the charting library while the user types. Nothing of the trial is in it, so it can
    reveal nothing before sign-in."""
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(tmp_path / "audit.log"))
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    assert spec["data"] == [] and not spec["layout"].get("annotations") and not spec["layout"].get("title")
    assert any(".st-key-chart_preload{display:none}" in m.value for m in at.markdown)
    assert at.text_input(key="login_user") is not None                   # the form is still the page
