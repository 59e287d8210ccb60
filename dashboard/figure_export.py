"""Static export of the dashboard's figures (PNG, SVG) for their downloads.

kaleido 1.x drives a Chrome-family browser (Debian's chromium here). ``plotly.io.to_image`` starts
a new browser for every image (about 5 s); the dashboard keeps ONE browser per server process
instead (``Exporter``): an asyncio loop on its own daemon thread holds an open ``kaleido.Kaleido``
and every Streamlit session (a thread) hands its figure to that loop
(``asyncio.run_coroutine_threadsafe``: thread-safe, renders queue on kaleido's tab). When the
persistent browser cannot start or a render through it fails or times out, it is closed, the
figure is exported the old way (a browser for this one image) and the next export starts a new
persistent browser (at most once per ``RETRY_SECONDS``).
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

# kaleido 1.x drives a Chrome-family browser for static export: Debian's chromium
os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")

_LOG = logging.getLogger(__name__)
WIDTH, HEIGHT = 1000, 600
START_SECONDS = 60.0        # to launch the browser and load plotly.js in its tab
RENDER_SECONDS = 60.0       # for one image through the persistent browser
RETRY_SECONDS = 60.0        # after a failure, the per-image path until then

_IMAGES: dict[tuple, bytes] = {}
_IMAGES_LOCK = threading.Lock()


def _opts(fmt: str) -> dict:
    return {"format": fmt, "width": WIDTH, "height": HEIGHT, "scale": 2 if fmt == "png" else 1}


def _fig_dict(fig) -> dict:
    return fig.to_dict() if hasattr(fig, "to_dict") else dict(fig)


class Exporter:
    """One persistent kaleido browser, shared by every thread of the process.

    ``export(fig, fmt)`` returns the image bytes; ``launches`` counts the browsers started,
    ``fallbacks`` the images made by the per-image path (a failure of the persistent one)."""

    def __init__(self, render_seconds: float = RENDER_SECONDS, retry_seconds: float = RETRY_SECONDS):
        self._lock = threading.Lock()          # start / stop, never held during a render
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido = None
        self._failed_at: float | None = None
        self.render_seconds = render_seconds
        self.retry_seconds = retry_seconds
        self.launches = 0
        self.fallbacks = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def running(self) -> bool:
        return self._kaleido is not None

    def browser_pid(self) -> int | None:
        """The process id of the persistent browser (None when there is none)."""
        proc = getattr(self._kaleido, "subprocess", None)
        return getattr(proc, "pid", None)

    def start(self) -> bool:
        """Start the persistent browser unless it runs (or failed less than ``retry_seconds`` ago).
        True when it runs afterwards."""
        with self._lock:
            if self._kaleido is not None:
                return True
            if self._failed_at is not None and time.monotonic() - self._failed_at < self.retry_seconds:
                return False
            import kaleido
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="mirocals-kaleido", daemon=True)
            thread.start()

            async def open_browser():
                k = kaleido.Kaleido(n=1, timeout=self.render_seconds)
                await k.open()
                return k

            try:
                self._kaleido = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(START_SECONDS)
            except Exception as exc:  # noqa: BLE001 - any failure: the per-image path instead
                self._failed(exc, loop, thread, None)
                return False
            self._loop, self._thread = loop, thread
            self.launches += 1
            _LOG.info("figure export: persistent kaleido browser started (pid %s)", self.browser_pid())
            return True

    def _failed(self, exc, loop, thread, k) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._failed_at = time.monotonic()
        _LOG.warning("figure export: persistent kaleido browser unavailable (%s); one browser per image instead",
                     self.last_error)
        self._shutdown(loop, thread, k)

    @staticmethod
    def _shutdown(loop, thread, k) -> None:
        if loop is None:
            return
        if k is not None:
            try:
                asyncio.run_coroutine_threadsafe(k.close(), loop).result(15)
            except Exception:  # noqa: BLE001 - closing a broken browser: nothing more to do
                proc = getattr(k, "subprocess", None)
                if proc is not None:
                    try:
                        proc.kill()
                    except Exception:  # noqa: BLE001
                        pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)

    def stop(self) -> None:
        """Close the persistent browser (a later export starts a new one)."""
        with self._lock:
            loop, thread, k = self._loop, self._thread, self._kaleido
            self._loop = self._thread = self._kaleido = None
        self._shutdown(loop, thread, k)

    # ------------------------------------------------------------------ export
    def export(self, fig, fmt: str) -> bytes:
        """PNG or SVG bytes of ``fig`` through the persistent browser, or the per-image path when
        it cannot be used."""
        fig_dict = _fig_dict(fig)
        if self.start():
            loop, k = self._loop, self._kaleido
            if loop is not None and k is not None:
                future = asyncio.run_coroutine_threadsafe(k.calc_fig(fig_dict, opts=_opts(fmt)), loop)
                try:
                    return future.result(self.render_seconds + 5)
                except Exception as exc:  # noqa: BLE001 - the browser died or hung: restart later
                    future.cancel()
                    with self._lock:
                        if self._kaleido is k:
                            self._loop = self._thread = self._kaleido = None
                            self._failed(exc, loop, None, k)
        self.fallbacks += 1
        return export_once(fig_dict, fmt)


def export_once(fig, fmt: str) -> bytes:
    """PNG or SVG bytes of ``fig`` through a browser started for this image alone."""
    import plotly.io as pio
    o = _opts(fmt)
    return pio.to_image(fig, format=fmt, width=o["width"], height=o["height"], scale=o["scale"])


_EXPORTER = Exporter()


def exporter() -> Exporter:
    """The process's persistent exporter."""
    return _EXPORTER


def _start_and_draw_once() -> None:
    if _EXPORTER.start():       # the first image through a new browser is slow: draw one nobody sees
        import plotly.graph_objects as go
        for fmt in ("png", "svg"):
            _EXPORTER.export(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), fmt)


def start_in_background() -> None:
    """Launch the persistent browser on a daemon thread and draw one throw-away image in each
    format (at server start: the first download then waits for neither)."""
    threading.Thread(target=_start_and_draw_once, name="mirocals-kaleido-start", daemon=True).start()


def figure_bytes(key: tuple, fig, fmt: str) -> bytes:
    """PNG or SVG bytes of a figure (persistent kaleido browser, Debian chromium), cached by
    ``key`` (which must hold the view kind, role class, snapshot hash and filters)."""
    full_key = (*key, fmt)
    with _IMAGES_LOCK:
        if full_key in _IMAGES:
            return _IMAGES[full_key]
    data = _EXPORTER.export(fig, fmt)
    with _IMAGES_LOCK:
        if len(_IMAGES) > 256:
            _IMAGES.clear()
        _IMAGES[full_key] = data
    return data
