"""The environment and the command line of ``mirocals serve`` (one audience's dashboard).

``serve_environment`` decides what the dashboard process sees (and refuses a blinded instance
with an allocation configured or reachable); ``serve_command`` is its ``streamlit run`` line.
Neither starts anything: ``mirocals.cli.cmd_serve`` does.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["APP", "serve_command", "serve_environment"]

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def serve_environment(args, environ=None) -> tuple[dict, str | None]:
    """(environment for the dashboard, refusal message or None) for ``mirocals serve``."""
    environ = dict(os.environ if environ is None else environ)
    data = args.data or environ.get("MIROCALS_DATA") or None
    allocation = args.allocation or environ.get("MIROCALS_ALLOCATION") or None
    env = {k: v for k, v in environ.items() if k not in ("MIROCALS_ALLOCATION", "MIROCALS_INSTANCE")}
    if args.blinded:
        if args.allocation:
            return env, ("--blinded refuses to start with an allocation (--allocation given): a blinded "
                         "instance must have no allocation reachable")
        if allocation:
            return env, ("--blinded refuses to start: MIROCALS_ALLOCATION is set in the environment "
                         f"({allocation}); unset it for the blinded instance")
        if not data:
            return env, ("--blinded refuses to start on the built-in demo: its allocation sits in "
                         "./demo_data/allocation. Point --data at a clinical-only snapshot (a copy of the "
                         "snapshot's clinical/ part with no allocation/ beside or under it)")
        path = Path(data)
        if not path.exists():
            return env, f"--data {data}: no such directory"
        from data_access.snapshot import find_allocations
        reachable = find_allocations(path)
        if reachable:
            return env, ("--blinded refuses to start: an allocation is readable from the data path ("
                         + ", ".join(str(p) for p in reachable[:3]) + "). Point --data at a clinical-only "
                         "snapshot (copy the clinical/ part to a folder with no allocation beside or under it)")
        env.update(MIROCALS_INSTANCE="blinded", MIROCALS_DATA=str(path.resolve()))
        return env, None
    # unblinded
    if not allocation:
        return env, "--unblinded needs the allocation (--allocation DIR or MIROCALS_ALLOCATION)"
    if not Path(allocation).exists():
        return env, f"--allocation {allocation}: no such directory"
    if not data:
        return env, "--unblinded needs the data (--data DIR or MIROCALS_DATA)"
    if not Path(data).exists():
        return env, f"--data {data}: no such directory"
    env.update(MIROCALS_INSTANCE="unblinded", MIROCALS_DATA=str(Path(data).resolve()),
               MIROCALS_ALLOCATION=str(Path(allocation).resolve()))
    return env, None


def serve_command(args) -> list[str]:
    """The ``streamlit run`` command line of ``mirocals serve``."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    if args.port:
        cmd += ["--server.port", str(args.port)]
    if args.address:
        cmd += ["--server.address", args.address]
    return cmd
