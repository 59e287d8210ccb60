"""Time the rendering of each report (HTML + PDF) from the demo trial, stage by stage.

Usage: ``python scripts/bench_reports.py [--out DIR] [--subjects N] [--reports dsmb-open ...]``

Target: under 60 s per report on a 2-core machine. Prints one line per stage (time since the
previous stage) and a total per report; exits 1 when a report is over the target.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from data_access.demo import ensure_demo
from reports.render import REPORTS, render_report

TARGET_S = 60.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--subjects", type=int, default=None, help="demo size (default: the full demo, ~220)")
    ap.add_argument("--reports", nargs="*", default=list(REPORTS), choices=list(REPORTS))
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_reports_"))
    t0 = time.perf_counter()
    clinical, allocation = ensure_demo(out / "demo", n_subjects=args.subjects)
    print(f"demo data: {time.perf_counter() - t0:.1f} s ({out / 'demo'})")
    totals = {}
    for name in args.reports:
        marks = [("start", time.perf_counter())]
        stages: dict[str, float] = {}

        def progress(msg, marks=marks, stages=stages):
            # the time since the previous message is spent in the stage that message announced
            now = time.perf_counter()
            last = marks[-1][0]
            stage = "executing cells" if last.startswith("executing cell") else last
            stages[stage] = stages.get(stage, 0.0) + now - marks[-1][1]
            marks.append((msg, now))

        alloc = None if name == "dsmb-open" else allocation
        paths = render_report(name, out / "demo", alloc, out_dir=out / name, progress=progress)
        progress("done")
        totals[name] = marks[-1][1] - marks[0][1]
        print(f"{name}: {totals[name]:.1f} s -> {', '.join(p.name for p in paths)}")
        for stage, secs in stages.items():
            if stage == "start" or stage.startswith("done"):
                continue
            print(f"    {stage:<22s} {secs:6.1f} s")
    worst = max(totals.values())
    print(f"slowest report: {worst:.1f} s (target < {TARGET_S:.0f} s)")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
