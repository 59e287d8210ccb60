"""Which instance this dashboard process is: env ``MIROCALS_INSTANCE``.

* ``blinded``: signs in blinded roles only (steering, investigator, and authors before database
  lock), never builds an unblinded view, and refuses to serve any data when an allocation is
  configured (``MIROCALS_ALLOCATION``) or readable under its data path (``MIROCALS_DATA``, its
  sub-folders and its parent's ``allocation/``). Without ``MIROCALS_DATA`` it refuses too: the
  built-in demo trial carries its allocation.
* ``unblinded``: signs in the DSMB and statisticians (and authors after database lock); refuses
  to serve without ``MIROCALS_ALLOCATION``.
* unset (or empty): the demo, one mixed instance that signs in every role.

Production runs two instances (``mirocals serve --blinded`` and ``mirocals serve --unblinded``)
behind a reverse proxy that authenticates every path.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "MIROCALS_INSTANCE"
KINDS = ("blinded", "unblinded", "demo")
BLINDED_ROLES = ("steering", "investigator", "author")
UNBLINDED_ROLES = ("dsmb", "statistician", "author")
ALL_ROLES = ("steering", "investigator", "dsmb", "statistician", "author")


class InstanceError(RuntimeError):
    """The instance is misconfigured and must not serve data."""


def instance_kind() -> str:
    """``blinded``, ``unblinded`` or ``demo``; an unknown value is an error."""
    raw = os.environ.get(ENV, "").strip().lower()
    if not raw:
        return "demo"
    if raw not in ("blinded", "unblinded"):
        raise InstanceError(f"{ENV}={raw!r}: expected 'blinded', 'unblinded' or unset.")
    return raw


def is_blinded_instance() -> bool:
    """True on a blinded instance, and when ``MIROCALS_INSTANCE`` is invalid (fail closed)."""
    try:
        return instance_kind() == "blinded"
    except InstanceError:
        return True


def allowed_roles() -> tuple[str, ...]:
    """The roles this instance signs in (none when ``MIROCALS_INSTANCE`` is invalid)."""
    from dashboard.auth import database_locked
    try:
        kind = instance_kind()
    except InstanceError:
        return ()
    locked = database_locked()
    if kind == "blinded":
        return tuple(r for r in BLINDED_ROLES if not (r == "author" and locked))
    if kind == "unblinded":
        return tuple(r for r in UNBLINDED_ROLES if not (r == "author" and not locked))
    return ALL_ROLES


def readable_allocations(data_root: str | Path) -> list[Path]:
    """Allocation folders readable from ``data_root`` (``data_access.snapshot.find_allocations``:
    itself, the ``allocation/`` beside it, any folder under it)."""
    from data_access.snapshot import find_allocations
    return find_allocations(data_root)


def blinded_problems(data: str | None = None, allocation: str | None = None) -> list[str]:
    """Why a blinded instance must not serve (empty when it may). ``data`` and ``allocation``
    default to env ``MIROCALS_DATA`` and ``MIROCALS_ALLOCATION``."""
    data = os.environ.get("MIROCALS_DATA") if data is None else data
    allocation = os.environ.get("MIROCALS_ALLOCATION") if allocation is None else allocation
    problems = []
    if allocation:
        problems.append(f"an allocation is configured (MIROCALS_ALLOCATION={allocation}).")
    if not data:
        problems.append("MIROCALS_DATA is not set: the built-in demo trial carries its allocation; "
                        "point MIROCALS_DATA at a clinical-only data path.")
    else:
        problems += [f"an allocation is readable from the data path: {p}" for p in readable_allocations(data)]
    return problems


def startup_problems() -> list[str]:
    """Why this instance must not serve data (empty when it may)."""
    try:
        kind = instance_kind()
    except InstanceError as exc:
        return [str(exc)]
    if kind == "blinded":
        return blinded_problems()
    if kind == "unblinded" and not os.environ.get("MIROCALS_ALLOCATION"):
        return ["an unblinded instance needs its allocation (MIROCALS_ALLOCATION is not set)."]
    return []


_CACHE: dict = {}
CACHE_SECONDS = 30.0


def startup_problems_cached(now: float | None = None) -> list[str]:
    """``startup_problems``, re-checked at most every ``CACHE_SECONDS`` for the same settings
    (every rerun asks)."""
    import time
    now = time.monotonic() if now is None else now
    key = tuple(os.environ.get(k, "") for k in (ENV, "MIROCALS_DATA", "MIROCALS_ALLOCATION"))
    hit = _CACHE.get(key)
    if hit is None or now - hit[0] > CACHE_SECONDS:
        hit = _CACHE[key] = (now, startup_problems())
    return list(hit[1])
