"""Benchmark the dashboard: warm AppTest run time of every page, and time-to-render in a browser.

    python scripts/bench_dashboard.py [--sizes default,20000] [--roles steering,dsmb] [--repeat 3]
                                      [--no-browser] [--work /tmp/mirocals_bench]

For each demo size a snapshot is generated once under ``--work`` (reused on later runs). AppTest:
sign in through the form, open every page once (cold, fills the caches), then time ``repeat``
further runs of each page and report the median (warm). Browser: ``streamlit run`` on a free
port, Debian chromium via playwright, time from the navigation click until the run is finished.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_snapshot(work: Path, size: str) -> Path:
    from data_access.demo import make_demo
    root = work / f"demo_{size}"
    if not (root / "clinical" / "manifest.json").exists():
        t = time.perf_counter()
        make_demo(root, n_subjects=None if size == "default" else int(size))
        print(f"# generated {size} demo in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


def bench_apptest(root: Path, role: str, repeat: int) -> dict[str, tuple[float, float]]:
    os.environ["MIROCALS_DATA"] = str(root)
    os.environ["MIROCALS_ALLOCATION"] = str(root / "allocation")
    from dashboard.pages_registry import pages_for
    from test_dashboard_apptest import sign_in
    at = sign_in(role, timeout=1800)   # cold runs on a large trial fit models
    out = {}
    for page in pages_for(role):
        at.switch_page(f"app_pages/{page.file}")
        t = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t
        if at.exception:
            raise RuntimeError(f"{role}/{page.file}: {at.exception}")
        warm = []
        for _ in range(repeat):
            t = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t)
        out[page.title] = (cold, statistics.median(warm))
    return out


def bench_browser(root: Path, role: str) -> dict[str, float]:
    import subprocess
    import urllib.request
    from playwright.sync_api import sync_playwright
    from dashboard.pages_registry import pages_for
    from test_browser import ARGS, CHROMIUM, _free_port, open_page, sign_in
    port = _free_port()
    env = {**os.environ, "MIROCALS_DATA": str(root), "MIROCALS_ALLOCATION": str(root / "allocation"),
           "MIROCALS_AUDIT_LOG": str(root / "bench_audit.log")}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
                             str(port), "--server.address", "127.0.0.1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        out = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            sign_in(page, url, role)
            specs = pages_for(role)
            for rnd in range(2):                   # first round warms the server caches
                for spec in specs:
                    elapsed = open_page(page, spec, timeout=120_000)
                    if rnd == 1:
                        out[spec.title] = elapsed
            browser.close()
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:       # a run still busy at shutdown: do not wait for it
            proc.kill()
            proc.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="default,20000")
    ap.add_argument("--roles", default="steering,dsmb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--work", default="/tmp/mirocals_bench")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MIROCALS_AUDIT_LOG", str(work / "audit.log"))
    rows = []
    for size in args.sizes.split(","):
        root = make_snapshot(work, size)
        for role in args.roles.split(","):
            app = bench_apptest(root, role, args.repeat)
            web = {} if args.no_browser else bench_browser(root, role)
            for title, (cold, warm) in app.items():
                rows.append((size, role, title, cold * 1000, warm * 1000, web.get(title, float("nan")) * 1000))
    print(f"{'size':>8} {'role':<9} {'page':<16} {'cold ms':>9} {'warm ms':>9} {'browser ms':>11}")
    for size, role, title, cold, warm, web in rows:
        print(f"{size:>8} {role:<9} {title:<16} {cold:9.0f} {warm:9.0f} {web:11.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
