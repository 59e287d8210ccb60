"""Report renders shared by the report tests (tests/test_reports.py, test_reports_docx.py,
test_blinding_reports.py): each render below runs at most once per test session, the first time a
test module asks for it, side by side with the others asked for at the same time (each render is
mostly one single-threaded kernel). The ``report_renders`` fixture (tests/conftest.py) hands out
one :class:`ReportRenders`; tests read its folders and must not modify them (copy one first).

A render is named by its key:

- ``open``: the open report from a snapshot whose allocation beside the data is garbage, passed
  too (the open report never reads it: the render would fail), HTML + PDF + Word, intermediates
  kept (tests read ``<stem>.md``); its progress messages are kept in ``messages``;
- ``closed``, ``manuscript``: the closed report and the manuscript (database lock recorded) by
  arm from the demo, HTML + PDF + Word, intermediates kept;
- ``again``: the open report from a deployment with no allocation at all, HTML;
- ``changes``: the open report with the changes since ``PREVIOUS``, HTML;
- ``masked``: the closed report with masked arms (Group A / Group B), HTML;
- ``cli-clean``, ``cli-keep``: ``mirocals report dsmb-open --to html,docx`` in its own process
  (what reaches the console is kept), without and with ``--keep-intermediates``.

The unblinded renders are audited into ``audit`` (one log for the session's shared renders).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = "2019-06-30"     # the "changes" open report lists the changes since this cut-off
REPORT_OF = {"open": "dsmb-open", "closed": "dsmb-closed", "manuscript": "manuscript", "again": "dsmb-open",
             "changes": "dsmb-open", "masked": "dsmb-closed", "cli-clean": "dsmb-open", "cli-keep": "dsmb-open"}
ALL_FORMATS = ("html", "pdf", "docx")
FORMATS = {"open": ALL_FORMATS, "closed": ALL_FORMATS, "manuscript": ALL_FORMATS, "again": ("html",),
           "changes": ("html",), "masked": ("html",), "cli-clean": ("html", "docx"), "cli-keep": ("html", "docx")}
WORKERS = 4


def cli(*args) -> subprocess.CompletedProcess:
    """The real command in its own process: what reaches the console (the kernel's too)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mirocals", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=900)


class ReportRenders:
    """The session's shared renders, made on first request (``get``)."""

    def __init__(self, out: Path, demo_snapshot: Path, blinded_only_snapshot: Path):
        self.out = Path(out)
        self.demo = Path(demo_snapshot)
        self.blinded_only = Path(blinded_only_snapshot)
        self.audit = self.out / "audit.log"
        self.messages: list[str] = []           # the "open" render's progress messages
        self.paths: dict[str, list[Path]] = {}   # key -> documents written (API renders)
        self.runs: dict[str, subprocess.CompletedProcess] = {}   # key -> the CLI run
        self._lock = threading.Lock()
        self._bad_root: Path | None = None

    def folder(self, key: str) -> Path:
        """The report's own folder of render ``key``."""
        return self.out / key / REPORT_OF[key]

    def get(self, *keys: str) -> "ReportRenders":
        """Render the ``keys`` not rendered yet (side by side), then return self."""
        with self._lock:
            todo = [k for k in keys if k not in self.paths and k not in self.runs]
            if todo:
                self._render(todo)
        return self

    # ------------------------------------------------------------------ rendering
    def _open_root_with_bad_allocation(self) -> Path:
        """The demo's clinical part beside an allocation folder whose files are garbage: any attempt
        to read the allocation would fail the render."""
        if self._bad_root is None:
            root = self.out / "badalloc" / "trial"
            shutil.copytree(self.demo / "clinical", root / "clinical")
            (root / "allocation").mkdir()
            (root / "allocation" / "allocation.parquet").write_bytes(b"not a parquet file")
            (root / "allocation" / "manifest.json").write_text("{broken")
            self._bad_root = root
        return self._bad_root

    def _job(self, key: str):
        from reports.render import render_report
        name, to = REPORT_OF[key], FORMATS[key]
        if key.startswith("cli-"):
            return lambda: cli("report", name, "--data", self.demo, "--out", self.out / key, "--to", ",".join(to),
                               *(["--keep-intermediates"] if key == "cli-keep" else []))
        if key == "open":
            bad = self._open_root_with_bad_allocation()
            data, alloc, progress = bad, bad / "allocation", self.messages.append
        elif key in ("again", "changes"):
            data, alloc, progress = self.blinded_only, None, lambda m: None
        else:
            data, alloc, progress = self.demo, self.demo / "allocation", lambda m: None
        return lambda: render_report(name, data, alloc, out_dir=self.out / key, progress=progress, to=to,
                                     mask_arms=key == "masked", previous_cut=PREVIOUS if key == "changes" else None,
                                     keep_intermediates=key in ("open", "closed", "manuscript", "again", "changes",
                                                                "masked"))

    def _render(self, keys: list[str]) -> None:
        env = {"MIROCALS_AUDIT_LOG": str(self.audit),
               "MIROCALS_DATABASE_LOCKED": "1"}          # the manuscript is by arm only after lock
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            jobs = {k: self._job(k) for k in keys}
            with ThreadPoolExecutor(max_workers=min(WORKERS, len(jobs))) as pool:
                futures = {k: pool.submit(job) for k, job in jobs.items()}
                results = {k: f.result() for k, f in futures.items()}
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        for k, result in results.items():
            if k.startswith("cli-"):
                self.runs[k] = result
            else:
                self.paths[k] = result
