"""Static export of the dashboard's figures (PNG, SVG) for their downloads."""
from __future__ import annotations

import os
import threading

# kaleido 1.x drives a Chrome-family browser for static export: Debian's chromium
os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")

_IMAGES: dict[tuple, bytes] = {}
_IMAGES_LOCK = threading.Lock()


def figure_bytes(key: tuple, fig, fmt: str) -> bytes:
    """PNG or SVG bytes of a figure through kaleido (Debian chromium), cached by ``key`` (which
    must hold the view kind, role class, snapshot hash and filters)."""
    full_key = (*key, fmt)
    with _IMAGES_LOCK:
        if full_key in _IMAGES:
            return _IMAGES[full_key]
    import plotly.io as pio
    data = pio.to_image(fig, format=fmt, width=1000, height=600, scale=2 if fmt == "png" else 1)
    with _IMAGES_LOCK:
        if len(_IMAGES) > 256:
            _IMAGES.clear()
        _IMAGES[full_key] = data
    return data
