"""Benchmark the trial simulator: the default trial (about 220 randomised) and a large trial
(20,000 randomised by default), timing ``simulate_trial`` alone (best of ``--repeat`` runs) and
the whole demo (simulate + cut + write snapshot), with rows generated and peak memory.

Targets (issue): default trial < 5 s, 20,000 subjects < 60 s on 2 cores.

Usage: python scripts/bench_simulate.py [--subjects 20000] [--repeat 3] [--no-demo] [--messy]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_access.simulate import simulate_trial  # noqa: E402
from data_access.study import load_study  # noqa: E402

TARGETS = {None: 5.0}
LARGE_TARGET = 60.0


def _time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=20000, help="size of the large trial")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the default trial (best is kept)")
    ap.add_argument("--no-demo", action="store_true", help="skip the simulate+cut+write timing")
    ap.add_argument("--messy", action="store_true", help="also plant data problems")
    args = ap.parse_args()
    study = load_study()
    ok = True
    for n, repeat in ((None, args.repeat), (args.subjects, 1)):
        t_sim, trial = _time(lambda: simulate_trial(study, n_subjects=n, messy=args.messy), repeat)
        rows = sum(len(df) for df in trial.clinical.values())
        target = TARGETS.get(n, LARGE_TARGET)
        ok &= t_sim < target
        line = (f"subjects={len(trial.clinical['adsl']):>6}  rows={rows:>9,}  simulate={t_sim:6.2f} s "
                f"(target < {target:g} s: {'ok' if t_sim < target else 'SLOW'})")
        if not args.no_demo:
            from data_access.demo import make_demo
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                make_demo(Path(tmp) / "trial", n_subjects=n, messy=args.messy)
                line += f"  demo (simulate+cut+write)={time.perf_counter() - t0:6.2f} s"
        print(line, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
