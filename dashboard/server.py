"""The HTTP side of the dashboard: what ``streamlit run dashboard/app.py`` serves besides the app.

``dashboard/app.py`` defines ``app = st.App(...)`` with ``MIDDLEWARE`` below, so Streamlit
serves it through uvicorn with this middleware in front of its own routes. It answers 404 for the
endpoints the dashboard does not use and that would otherwise answer anyone who asks:

* ``/_stcore/metrics``: server metrics, open to anyone by default;
* ``/media/...``: Streamlit's media store, where ``st.download_button`` files live under a stable
  content-hash link with no session check (the dashboard's downloads never use it: see
  ``dashboard.downloads``);
* ``/_stcore/upload_file/...``: uploads (the dashboard has no file upload);
* ``/_stcore/agent/...``: the agent API and its schema;
* ``/_stcore/script-health-check``.

Production still puts an authenticating reverse proxy in front of every path.
"""
from __future__ import annotations

import posixpath

from starlette.middleware import Middleware

BLOCKED_EXACT = ("_stcore/metrics", "_stcore/script-health-check")
BLOCKED_PREFIXES = ("media/", "_stcore/upload_file/", "_stcore/agent/", "_stcore/agent")


def _base_path() -> str:
    try:
        from streamlit import config
        return (config.get_option("server.baseUrlPath") or "").strip("/")
    except Exception:
        return ""


def is_blocked(path: str, base: str = "") -> bool:
    """Whether an HTTP request path is one the dashboard refuses (404)."""
    rel = posixpath.normpath("/" + path.lstrip("/")).replace("//", "/")
    base = base.strip("/")
    if base and (rel == f"/{base}" or rel.startswith(f"/{base}/")):
        rel = rel[len(base) + 1:] or "/"
    rel = rel.lstrip("/")
    return rel in BLOCKED_EXACT or any(rel == p.rstrip("/") or rel.startswith(p) for p in BLOCKED_PREFIXES)


class BlockUnusedEndpoints:
    """ASGI middleware: 404 for the paths ``is_blocked`` names (HTTP and websocket alike)."""

    def __init__(self, app):
        self.app = app
        self.base = _base_path()

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and is_blocked(scope.get("path", ""), self.base):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b"Not found\n"})
            return
        await self.app(scope, receive, send)


MIDDLEWARE = [Middleware(BlockUnusedEndpoints)]


def start_background_work() -> None:
    """At server start (``dashboard/app.py`` imported by uvicorn), once per process: the cache
    warm-up of the pages this instance serves (``dashboard.caches.start_warm_up``, which also
    starts the persistent figure-export browser). ``MIROCALS_WARMUP=0`` turns it off."""
    from dashboard.caches import start_warm_up
    start_warm_up()
