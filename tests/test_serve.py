"""``mirocals serve --blinded|--unblinded`` (issue 10: two instances). Refusals on real folders
(no server started), then one real blinded server on a clinical-only copy of the demo, asked for
``/_stcore/health`` and stopped."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from argparse import Namespace
from pathlib import Path

import pytest

from mirocals.serve import serve_environment
from test_cli import run  # the CLI run in-process: (status, stdout, stderr)


@pytest.fixture(autouse=True)
def _no_deployment_env(monkeypatch):
    for var in ("MIROCALS_DATA", "MIROCALS_ALLOCATION", "MIROCALS_INSTANCE"):
        monkeypatch.delenv(var, raising=False)


def refused(*argv) -> str:
    status, out, err = run("serve", *argv)
    assert status == 2, (argv, err)
    assert out == ""
    return err


def test_help_documents_both_instances():
    status, out, _ = run("serve", "--help")
    assert status == 0
    for text in ("--blinded", "--unblinded", "--port", "--data", "--allocation", "MIROCALS_ALLOCATION",
                 "refuses"):
        assert text in out, text
    status, out, _ = run("--help")
    assert "serve" in out
    assert run("serve")[0] == 2                                   # one of the two is required
    assert run("serve", "--blinded", "--unblinded")[0] == 2


def test_blinded_refuses_an_allocation_given(blinded_only_snapshot, demo_snapshot):
    err = refused("--blinded", "--data", blinded_only_snapshot, "--allocation", demo_snapshot / "allocation")
    assert "--allocation" in err


def test_blinded_refuses_an_allocation_in_the_environment(blinded_only_snapshot, demo_snapshot, monkeypatch):
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    assert "MIROCALS_ALLOCATION" in refused("--blinded", "--data", blinded_only_snapshot)


def test_blinded_refuses_the_demo(tmp_path, monkeypatch):
    # no --data and no MIROCALS_DATA: the dashboard would serve ./demo_data with its allocation
    monkeypatch.chdir(tmp_path)
    err = refused("--blinded")
    assert "demo_data/allocation" in err and "clinical-only" in err


def test_blinded_refuses_an_allocation_readable_from_the_data_path(demo_snapshot, tmp_path):
    # the snapshot root (allocation/ under it), its clinical/ part (allocation/ beside it)
    for data in (demo_snapshot, demo_snapshot / "clinical"):
        err = refused("--blinded", "--data", data)
        assert str(demo_snapshot / "allocation") in err and "clinical-only" in err
    # a folder of snapshots, one of which carries its allocation
    many = tmp_path / "snapshots"
    shutil.copytree(demo_snapshot, many / "cut-2021")
    assert "allocation" in refused("--blinded", "--data", many)
    # an allocation part renamed: found by its manifest ("part": "allocation")
    hidden = tmp_path / "renamed"
    shutil.copytree(demo_snapshot / "clinical", hidden / "clinical")
    shutil.copytree(demo_snapshot / "allocation", hidden / "extra" / "keys")
    assert "keys" in refused("--blinded", "--data", hidden)
    # MIROCALS_DATA pointing at the root is the same as --data
    os.environ["MIROCALS_DATA"] = str(demo_snapshot)
    try:
        refused("--blinded")
    finally:
        del os.environ["MIROCALS_DATA"]
    assert "no such directory" in refused("--blinded", "--data", tmp_path / "missing")


def test_unblinded_needs_an_allocation(blinded_only_snapshot, tmp_path):
    assert "allocation" in refused("--unblinded", "--data", blinded_only_snapshot)
    assert "no such directory" in refused("--unblinded", "--data", blinded_only_snapshot,
                                          "--allocation", tmp_path / "missing")


def test_environment_of_each_instance(blinded_only_snapshot, demo_snapshot):
    def args(**kw):
        return Namespace(**{"blinded": False, "unblinded": False, "data": None, "allocation": None,
                            "port": None, "address": None, **kw})
    env, why = serve_environment(args(blinded=True, data=str(blinded_only_snapshot)),
                                 environ={"PATH": "/usr/bin", "MIROCALS_INSTANCE": "unblinded"})
    assert why is None
    assert env["MIROCALS_INSTANCE"] == "blinded" and env["MIROCALS_DATA"] == str(blinded_only_snapshot.resolve())
    assert "MIROCALS_ALLOCATION" not in env and env["PATH"] == "/usr/bin"
    env, why = serve_environment(args(unblinded=True, data=str(demo_snapshot),
                                      allocation=str(demo_snapshot / "allocation")), environ={})
    assert why is None and env["MIROCALS_INSTANCE"] == "unblinded"
    assert env["MIROCALS_ALLOCATION"] == str((demo_snapshot / "allocation").resolve())
    # the unblinded instance may take its allocation from the environment
    env, why = serve_environment(args(unblinded=True, data=str(demo_snapshot)),
                                 environ={"MIROCALS_ALLOCATION": str(demo_snapshot / "allocation")})
    assert why is None and env["MIROCALS_ALLOCATION"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_blinded_server_starts_and_answers_health(blinded_only_snapshot, tmp_path):
    port = _free_port()
    mirocals = Path(sys.executable).parent / "mirocals"
    cmd = [str(mirocals)] if mirocals.exists() else [sys.executable, "-m", "mirocals"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIROCALS_")}
    env["MIROCALS_AUDIT_LOG"] = str(tmp_path / "audit.log")
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "serve", "--blinded", "--port", str(port), "--address", "127.0.0.1",
                             "--data", str(blinded_only_snapshot)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    body = None
    try:
        while time.perf_counter() - t0 < 20 and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.3)
        print(f"blinded server healthy after {time.perf_counter() - t0:.1f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)        # the server started by this test, and its children
        try:
            out = proc.communicate(timeout=10)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0].decode()
    assert body == "ok", out
    assert "starting the blinded dashboard" in out and "no allocation" in out
