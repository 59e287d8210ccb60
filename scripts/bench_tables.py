"""Benchmark: time every named table on the default demo and on a 20,000-subject demo.

Usage: python scripts/bench_tables.py [--subjects 20000] [--skip-large]
Prints, per table and view, the time to build it after start-up (view opened, modules imported),
plus the wall time of one `mirocals table` process including start-up.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from analysis.outputs import OUTPUTS, TableUnavailable, build_table  # noqa: E402
from data_access.demo import make_demo  # noqa: E402
from data_access.views import open_view  # noqa: E402


def start_up() -> float:
    """Import every module the tables use (what a `mirocals table` process does before its
    table): excluded from the per-table times, reported on its own."""
    import importlib
    t0 = time.perf_counter()
    for name in ("analysis.survival", "analysis.survival_models", "analysis.alsfrs", "analysis.alsfrs_models",
                 "analysis.joint_rank", "analysis.baseline", "analysis.recruitment", "analysis.recruitment_projection",
                 "analysis.safety", "analysis.sequential", "analysis.completeness"):
        importlib.import_module(name)
    return time.perf_counter() - t0


def bench(root: Path, label: str) -> float:
    total = 0.0
    for view_kind in ("blinded", "unblinded"):
        if view_kind == "blinded":
            view = open_view(root, "steering")
        else:
            view = open_view(root, "statistician", allocation_dir=root / "allocation")
        for name, spec in OUTPUTS.items():
            if spec.by_arm_only and view_kind == "blinded":
                continue
            since = (pd.Timestamp(view.cut_date) - pd.Timedelta(days=182)).date()   # `changes`: half a year
            t0 = time.perf_counter()
            try:
                build_table(name, view, since=since)
            except TableUnavailable as exc:          # e.g. no projection after recruitment ended
                print(f"{label:>10} {view_kind:>9} {name:>18}   not applicable: {exc}")
                continue
            dt = time.perf_counter() - t0
            total += dt
            print(f"{label:>10} {view_kind:>9} {name:>18} {dt * 1000:9.1f} ms")
    print(f"{label:>10} {'all':>9} {'TOTAL':>18} {total:9.2f} s")
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "default"
        t0 = time.perf_counter()
        make_demo(small)
        print(f"default demo generated in {time.perf_counter() - t0:.2f} s")
        print(f"start-up (imports of the analysis modules): {start_up():.2f} s")
        bench(small, "default")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mirocals", "table", "km", "--data", str(small),
                        "--view", "blinded"], check=True, capture_output=True)
        print(f"one `mirocals table km` process incl. start-up: {time.perf_counter() - t0:.2f} s")
        if not args.skip_large:
            large = Path(tmp) / "large"
            t0 = time.perf_counter()
            make_demo(large, n_subjects=args.subjects)
            print(f"{args.subjects}-subject demo generated in {time.perf_counter() - t0:.2f} s")
            bench(large, f"n={args.subjects}")


if __name__ == "__main__":
    main()
