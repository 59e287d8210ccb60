"""Downloads bound to the session that asked for them: no HTTP link at all.

Streamlit's ``st.download_button`` serves its bytes from the media store at
``/media/<content-hash>.<ext>``: the link is the same every time, answers any request that knows
it (no cookie, no session), outlives the sign-out and is not audited. This module replaces it.

A download is a plain button inside a fragment. Its click reruns the fragment on the server,
where ``serve`` checks the session (signed in, not idle-expired, the same user and role the page
was built for), builds the bytes, writes the ``download`` audit entry (nothing is delivered when
that write fails) and then delivers the bytes *over this session's own websocket* inside a
sandboxed ``srcdoc`` iframe (Streamlit's iframe sandbox includes ``allow-downloads``), whose
script turns them into a Blob and triggers the download once. No URL ever names the file, so
there is nothing to fetch without the session, nothing left behind at sign-out or session end,
and every serve is audited. A click after the idle timeout or sign-out serves nothing and is
audited as ``download-refused``.

Tests see the bytes a click would deliver through ``offered`` (a hook called for every offer
with ``(file_name, mime, fetch)``; ``fetch()`` runs the same checked, audited path as a click),
or by decoding the delivered iframe with ``delivered_files``.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Callable

import streamlit as st

from dashboard import audit, auth

MAX_BYTES = 150 * 1024 * 1024         # base64 adds a third: stays under server.maxMessageSize (200 MB)
_MARK = "mirocals-download"


def offered(file_name: str, mime: str, fetch: Callable[[], bytes | None]) -> None:
    """Hook called for every download offered (tests replace it to capture the bytes)."""


def serve(ctx, page: str, file_name: str, build: Callable[[], bytes]) -> bytes | None:
    """The bytes of a download for this session, or None when the session may not have them.

    Checks the session on the server (idle expiry included), audits the serve (``download``) or
    the refusal (``download-refused``), and builds the bytes only after both."""
    snapshot = ctx.snapshot.snapshot_hash
    session = auth.get_session(st.session_state)
    if session is None or session["user"] != ctx.user or session["role"] != ctx.role:
        why = "session expired or signed out" if session is None else "signed in as someone else"
        audit.log_ctx(ctx, page, "download-refused", detail=f"{file_name}: {why}")
        return None
    if ctx.unblinded and not auth.is_unblinded_role(ctx.role):
        audit.log_ctx(ctx, page, "download-refused", detail=f"{file_name}: role not unblinded on this instance")
        return None
    audit.log_ctx(ctx, page, "download", detail=file_name)
    return build()


def delivery_html(data: bytes, file_name: str, mime: str, nonce: str | None = None) -> str:
    """The ``srcdoc`` page that hands ``data`` to the browser as a download, once."""
    nonce = nonce or secrets.token_hex(8)

    def js(value) -> str:          # a JS string literal that cannot close the script element
        return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")

    payload = base64.b64encode(data).decode("ascii")
    return (f"<!doctype html><html><body><script id='{_MARK}'>\n"
            "(function () {\n"
            f"  var key = 'mirocals-dl-' + {js(nonce)};\n"
            "  try { if (sessionStorage.getItem(key)) return; sessionStorage.setItem(key, '1'); }\n"
            "  catch (e) {}\n"
            f"  var b64 = '{payload}';\n"
            "  var bin = atob(b64), bytes = new Uint8Array(bin.length);\n"
            "  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);\n"
            f"  var url = URL.createObjectURL(new Blob([bytes], {{type: {js(mime)}}}));\n"
            "  var a = document.createElement('a');\n"
            f"  a.href = url; a.download = {js(file_name)}; document.body.appendChild(a); a.click();\n"
            "  setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 60000);\n"
            "})();\n</script></body></html>")


_PAYLOAD = re.compile(r"var b64 = '([A-Za-z0-9+/=]*)'.*?a\.download = (\"(?:[^\"\\]|\\.)*\");", re.S)


def delivered_files(srcdoc: str) -> list[tuple[str, bytes]]:
    """``(file_name, bytes)`` of the downloads a delivery page holds (for tests)."""
    return [(json.loads(name), base64.b64decode(b64)) for b64, name in _PAYLOAD.findall(srcdoc or "")]


@st.fragment
def _button(ctx, page: str, label: str, file_name: str, mime: str, build, key: str) -> None:
    if not st.button(label, key=key):
        return
    data = serve(ctx, page, file_name, build)
    if data is None:
        st.rerun(scope="app")       # the whole page reruns: the sign-in form, nothing else
    if len(data) > MAX_BYTES:
        st.error(f"{file_name} is too large to download here ({len(data) / 1e6:,.0f} MB).")
        return
    st.iframe(delivery_html(data, file_name, mime), height=1, alt=f"download of {file_name}")


def offer(ctx, page: str, label: str, file_name: str, mime: str, build: Callable[[], bytes], key: str) -> None:
    """A download button: ``build`` runs only when it is clicked, for this session only."""
    offered(file_name, mime, lambda: serve(ctx, page, file_name, build))
    _button(ctx, page, label, file_name, mime, build, key)
