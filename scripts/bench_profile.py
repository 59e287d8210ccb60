"""Benchmark: the patient profile (issue 14) on the default demo and on a 20,000-subject demo.

Usage: python scripts/bench_profile.py [--subjects 20000] [--data-root DIR] [--repeat 20]

Prints, per trial size and view (blinded, unblinded):
- first profile after the view is opened (derives the visit status of every participant once);
- profile of another participant with the view warm (median and max over ``--repeat`` participants);
- the Participant page in AppTest (headless Streamlit), cold (first participant after sign-in) and
  warm (a participant opened before in the server: the cached profile), median of 5 reruns.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.outputs.profile import build_profile  # noqa: E402
from data_access.demo import make_demo  # noqa: E402
from data_access.views import open_view  # noqa: E402


def bench_build(root: Path, role: str, repeat: int) -> dict:
    view = open_view(root, role)
    ids = view.table("adsl", columns=["USUBJID"])["USUBJID"].tolist()
    t0 = time.perf_counter()
    build_profile(view, ids[0])
    first = time.perf_counter() - t0
    step = max(1, len(ids) // repeat)
    times = []
    for s in ids[1::step][:repeat]:
        t0 = time.perf_counter()
        build_profile(view, s)
        times.append(time.perf_counter() - t0)
    return {"first": first, "median": statistics.median(times), "max": max(times)}


def bench_page(root: Path, role: str) -> dict:
    os.environ["MIROCALS_DATA"] = str(root)
    os.environ["MIROCALS_ALLOCATION"] = str(root / "allocation")
    os.environ.setdefault("MIROCALS_AUDIT_LOG", "/tmp/mirocals_bench_profile_audit.log")
    from tests.test_dashboard_apptest import sign_in, visit
    at = sign_in(role, timeout=600)
    visit(at, "profile.py")
    subject = at.selectbox(key="profile_subject").options[3]
    t0 = time.perf_counter()
    at.selectbox(key="profile_subject").set_value(subject)
    at.run(timeout=600)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        at.run(timeout=600)
        warm.append(time.perf_counter() - t0)
    return {"page_cold": cold, "page_warm": statistics.median(warm)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--data-root", default="/tmp/mirocals_bench_profile")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    print("| trial | view | first profile s | next profile median s | max s | page cold s | page warm s |")
    print("|---|---|---|---|---|---|---|")
    for label, n in (("default", None), (f"{args.subjects:,}", args.subjects)):
        root = Path(args.data_root) / f"demo_{n or 'default'}"
        if not (root / "clinical" / "manifest.json").exists():
            make_demo(root, **({"n_subjects": n} if n else {}))
        for role in ("steering", "dsmb"):
            b = bench_build(root, role, args.repeat)
            p = bench_page(root, role)
            print(f"| {label} | {'blinded' if role == 'steering' else 'unblinded'} | {b['first']:.2f} | "
                  f"{b['median']:.3f} | {b['max']:.3f} | {p['page_cold']:.2f} | {p['page_warm']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
