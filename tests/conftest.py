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


@pytest.fixture(autouse=True)
def _audit_log_in_tmp(tmp_path, monkeypatch):
    """Keep audit logs written by tests out of the working tree."""
    if "MIROCALS_AUDIT_LOG" not in os.environ:
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
