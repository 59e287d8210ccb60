"""Single sign-on for real (issue 16): ``st.login`` against a running OpenID provider, in chromium.

The provider is ``oidc-provider-mock`` (a Flask app: authorization, token, userinfo, JWKS and
end-session endpoints, real RS256-signed ID tokens), served by werkzeug on a free loopback port in
a thread of the test. Its authorization page is a form: the subject typed there becomes the
identity, and its claims are whatever the test stored for that subject (``PUT /users/<sub>``;
an unknown subject gets ``{"email": sub}``). The dashboard is ``streamlit run dashboard/app.py``
(``tests/test_browser.run_server``) with an ``[auth]`` section in a secrets file under tmp_path
(``STREAMLIT_SECRETS_FILES``: the repository's ``.streamlit`` folder is not touched) and a
credentials file whose ``[roles]`` table maps one e-mail to the DSMB role.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import threading
import urllib.request
from pathlib import Path
from unittest import mock

import pytest

from tests import test_browser
from tests.test_browser import browser, wait_idle  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

MAPPED = "chair@dsmb.example.org"
UNMAPPED = "stranger@example.org"
UNVERIFIED = "member@dsmb.example.org"       # in [roles], but the provider says it is not verified
CLIENT_ID = "mirocals-dashboard"


@pytest.fixture(scope="module")
def provider():
    """oidc-provider-mock on 127.0.0.1:<free port>; yields its base URL."""
    import werkzeug.serving
    from oidc_provider_mock import app as provider_app
    server = werkzeug.serving.make_server("127.0.0.1", 0, provider_app(require_nonce=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        # the mapped identity has a display name; the unmapped one gets the mock's default claims
        for sub, claims in ((MAPPED, {"email": MAPPED, "email_verified": True, "name": "Dr Chair"}),
                            (UNVERIFIED, {"email": UNVERIFIED, "email_verified": False})):
            request = urllib.request.Request(f"{url}/users/{sub}", method="PUT", data=json.dumps(claims).encode(),
                                             headers={"Content-Type": "application/json"})
            assert urllib.request.urlopen(request, timeout=5).status == 204
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def sso_dashboard(provider: str, tmp: Path, env_extra: dict | None = None):
    """``streamlit run dashboard/app.py`` with single sign-on configured against ``provider``;
    yields ``(url, audit_log, server_log)``."""
    port = test_browser._free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = tmp / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    credentials = tmp / "credentials.toml"
    credentials.write_text(f'[roles]\n"{MAPPED}" = "dsmb"\n"{UNVERIFIED}" = "dsmb"\n')
    env = {"STREAMLIT_SECRETS_FILES": str(secrets_file), "MIROCALS_CREDENTIALS": str(credentials),
           **(env_extra or {})}
    with contextlib.ExitStack() as stack:
        # run_server picks its own port (patched while it starts): the redirect URI above names it
        with mock.patch.object(test_browser, "_free_port", return_value=port):
            served, audit_log, server_log, proc = stack.enter_context(test_browser.run_server(tmp, env, n_subjects=40))
        # the port taken meanwhile: another server answered the health check
        assert served == url and proc.poll() is None, server_log.read_text(errors="replace")[-2000:]
        yield url, audit_log, server_log


@pytest.fixture(scope="module")
def dashboard(provider, tmp_path_factory):
    with sso_dashboard(provider, tmp_path_factory.mktemp("oidc")) as served:
        yield served


def _sign_in_with_sso(page, url, subject):
    """From the dashboard's sign-in page through the provider's authorization form and back."""
    page.goto(url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.wait_for_url("**/oauth2/authorize?**", timeout=30_000)
    page.get_by_placeholder("sub").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{url}/**", timeout=30_000)


def _events(audit_log: Path) -> list[dict]:
    from dashboard.audit import load_events
    return load_events(audit_log)


def test_a_mapped_email_signs_in_and_signing_out_ends_the_session(dashboard, browser):
    from dashboard.pages_registry import pages_for
    url, audit_log, server_log = dashboard
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    _sign_in_with_sso(page, url, MAPPED)
    # the DSMB's first page, unblinded, under the provider's display name
    first = pages_for("dsmb")[0]
    page.get_by_role("heading", name=first.title).first.wait_for(timeout=60_000)
    page.get_by_text("Data cut-off").first.wait_for(timeout=60_000)
    wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar").inner_text()
    assert "Dr Chair" in sidebar and "role: dsmb" in sidebar and "UNBLINDED" in sidebar
    signed_in = [e for e in _events(audit_log) if e.get("action") == "sign-in"]
    assert [(e["user"], e["role"], e["detail"]) for e in signed_in] == [(MAPPED, "dsmb", "oidc")]
    assert any(c["name"] == "_streamlit_user" for c in context.cookies())     # Streamlit's identity cookie

    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    # st.logout sends the browser to the provider's end-session page, then back to the dashboard
    page.get_by_role("button", name="End session").click()
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=60_000)
    assert not any(c["name"].startswith("_streamlit_user") for c in context.cookies())
    page.reload()           # a new session: st.user is not logged in (no "sign in again", no data)
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=60_000)
    wait_idle(page)
    text = page.inner_text("body")
    assert "Data cut-off" not in text and "Sign in again" not in text and "UNBLINDED" not in text
    assert any(e.get("action") == "sign-out" and e["user"] == MAPPED for e in _events(audit_log))
    assert len([e for e in _events(audit_log) if e.get("action") == "sign-in"]) == 1
    assert "Traceback" not in server_log.read_text(errors="replace")
    context.close()


@pytest.mark.parametrize("subject, shown, reason", [
    (UNMAPPED, "has no role in this dashboard", "no role"),
    (UNVERIFIED, "is not verified by your single sign-on provider", "e-mail not verified"),
])
def test_an_identity_without_a_role_is_refused_and_sees_no_data(dashboard, browser, subject, shown, reason):
    url, audit_log, server_log = dashboard
    context = browser.new_context()
    page = context.new_page()
    _sign_in_with_sso(page, url, subject)
    page.get_by_text(shown).wait_for(timeout=60_000)
    wait_idle(page)
    text = page.inner_text("body")
    assert subject in text and "Data cut-off" not in text and "UNBLINDED" not in text
    assert not page.get_by_test_id("stSidebarNav").count()
    page.reload()                   # the identity cookie is still there: refused again, audited per session
    page.get_by_text(shown).wait_for(timeout=60_000)
    wait_idle(page)
    mine = [e for e in _events(audit_log) if e.get("user") == subject]
    assert [(e["action"], e["detail"]) for e in mine] == [("sign-in-failed", f"oidc: {reason}")] * 2
    # its sign-out ends the identity
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=60_000)
    assert not any(c["name"].startswith("_streamlit_user") for c in context.cookies())
    assert "Traceback" not in server_log.read_text(errors="replace")
    context.close()


def test_denying_at_the_provider_comes_back_signed_out(dashboard, browser):
    url, audit_log, _server_log = dashboard
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.wait_for_url("**/oauth2/authorize?**", timeout=30_000)
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(f"{url}/**", timeout=30_000)
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=60_000)
    wait_idle(page)
    assert "Data cut-off" not in page.inner_text("body")
    assert not any(c["name"].startswith("_streamlit_user") for c in context.cookies())
    context.close()


def test_an_idle_single_sign_on_session_expires_and_ends_the_identity(provider, browser, tmp_path):
    """After the idle timeout the next click signs out and ends the identity (``st.logout``):
    coming back needs a new single sign-on, not the identity cookie."""
    idle = 8      # long enough for the identity (its iat) to be mapped fresh on a loaded machine
    with sso_dashboard(provider, tmp_path, {"MIROCALS_IDLE_TIMEOUT": str(idle)}) as (url, audit_log, server_log):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        _sign_in_with_sso(page, url, MAPPED)
        page.get_by_text("Data cut-off").first.wait_for(timeout=60_000)
        wait_idle(page)
        page.wait_for_timeout((idle + 1) * 1000)
        page.get_by_test_id("stSidebarNav").get_by_text("Baseline", exact=True).click()
        page.get_by_role("button", name="End session").click()        # the provider's end of session
        page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=60_000)
        wait_idle(page)
        assert not any(c["name"].startswith("_streamlit_user") for c in context.cookies())
        text = page.inner_text("body")
        assert "Data cut-off" not in text and "Sign in again" not in text
        assert "Traceback" not in server_log.read_text(errors="replace")
        context.close()


def test_the_role_of_an_identity_needs_a_verified_mapped_email():
    from dashboard import auth
    creds = {"roles": {MAPPED: "dsmb"}}
    assert auth.oidc_role({"email": MAPPED.upper(), "email_verified": True}, creds)[0] == "dsmb"
    assert auth.oidc_role({"email": MAPPED}, creds)[0] == "dsmb"     # no claim: the provider vouches for it
    assert auth.oidc_role({"email": MAPPED, "email_verified": "false"}, creds)[:2] == (None, "e-mail not verified")
    assert auth.oidc_role({"sub": "x"}, creds)[:2] == (None, "no e-mail")
    assert auth.oidc_role({"email": UNMAPPED}, creds)[:2] == (None, "no role")
