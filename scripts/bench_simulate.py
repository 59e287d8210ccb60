"""Benchmark: generate the default demo trial and a 20,000-subject trial, end to end
(simulate + cut + write snapshot), and report time and peak memory.

Usage: python scripts/bench_simulate.py [--subjects 20000]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_access.demo import make_demo  # noqa: E402
from data_access.simulate import simulate_trial  # noqa: E402
from data_access.study import load_study  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=20000)
    args = ap.parse_args()
    study = load_study()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (None, args.subjects):
            t0 = time.perf_counter()
            trial = simulate_trial(study, n_subjects=n)
            t_sim = time.perf_counter() - t0
            t0 = time.perf_counter()
            make_demo(Path(tmp) / f"n{n}", n_subjects=n)
            t_all = time.perf_counter() - t0
            rows = sum(len(df) for df in trial.clinical.values())
            print(f"subjects={len(trial.clinical['adsl']):>6}  rows={rows:>9}  simulate={t_sim:6.2f} s  "
                  f"demo (simulate+cut+write)={t_all:6.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
