"""Shared fixtures.

``demo_snapshot``: the default demo trial (seed 20170619, cut at study completion) written once
per test session as a real snapshot (Parquet + manifests) in a temporary directory. Tests must
not modify it; copy it when a test needs to.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")


@pytest.fixture(scope="session")
def study():
    from data_access.study import load_study
    return load_study()


@pytest.fixture(scope="session")
def demo_snapshot(tmp_path_factory) -> Path:
    """Root of the default demo snapshot (``clinical/`` and ``allocation/``)."""
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("demo") / "trial"
    make_demo(root)
    return root


@pytest.fixture(scope="session")
def blinded_only_snapshot(demo_snapshot, tmp_path_factory) -> Path:
    """A copy of the demo's clinical part with no allocation anywhere near it, as a blinded
    deployment is configured."""
    import shutil
    root = tmp_path_factory.mktemp("blinded") / "trial"
    shutil.copytree(demo_snapshot / "clinical", root / "clinical")
    return root


_SESSION_AUDIT_LOG: list[str] = []       # the session-wide default set below (one path)


@pytest.fixture(scope="session", autouse=True)
def _session_audit_log_in_tmp(tmp_path_factory):
    """The audit log of what runs outside a test function (module- and session-scoped fixtures
    render reports before the per-test fixture below applies): a session temporary file, not
    ``audit/audit.log`` in the working tree. A log the developer exported is left alone."""
    if "MIROCALS_AUDIT_LOG" in os.environ:
        yield
        return
    path = str(tmp_path_factory.mktemp("session_audit") / "audit.log")
    _SESSION_AUDIT_LOG.append(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIROCALS_AUDIT_LOG", path)
        yield


@pytest.fixture(autouse=True)
def _audit_log_in_tmp(tmp_path, monkeypatch):
    """Keep audit logs written by tests out of the working tree: each test its own log."""
    if os.environ.get("MIROCALS_AUDIT_LOG") in (None, *_SESSION_AUDIT_LOG):
        monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(tmp_path / "audit.log"))
    # a developer's exported PostgreSQL audit store must not receive the tests' entries (the
    # store's own tests, tests/test_audit_pg.py, set it to their private server)
    monkeypatch.delenv("MIROCALS_AUDIT_DSN", raising=False)


@pytest.fixture(scope="session")
def report_renders(demo_snapshot, blinded_only_snapshot, tmp_path_factory):
    """The report renders shared by the report tests, each made once per session on first request
    (``report_renders.get("open", ...)``; tests/report_renders.py names them)."""
    from tests.report_renders import ReportRenders
    return ReportRenders(tmp_path_factory.mktemp("report_renders"), demo_snapshot, blinded_only_snapshot)
