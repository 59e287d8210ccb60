"""Benchmark the dashboard in a real browser (Debian chromium via playwright), as a user sees it.

    python scripts/bench_dashboard.py [--sizes default,20000] [--roles steering,dsmb]
                                      [--work /tmp/mirocals_bench] [--apptest] [--repeat 3]

For each demo size a snapshot is generated once under ``--work`` (reused on later runs). For each
role a fresh ``streamlit run dashboard/app.py`` is started (steering on a blinded instance over a
clinical-only copy, the DSMB on an unblinded instance: what production runs), and times:

* ``warm-up``: server start until the start-up cache warm-up says it has finished (server log);
* ``sign-in (cold)``: the first sign-in after that start in a fresh browser, Sign in click to the
  first page drawn (clicked once the sign-in page has loaded, as a person typing would);
* ``first visit PAGE``: each page's first visit after the start (navigation click to the end of
  the run and, when the page shows a chart, the first chart drawn);
* ``switch PAGE``: each page again (a warm server);
* ``filter country``: choosing a country in the sidebar on the first page, until the run ends;
* ``download PNG`` / ``download SVG``: a figure download on the first page, click to file received;
* ``sign-in (warm)``: sign out and in again.

``--apptest`` adds AppTest cold/warm run times per page (no browser: the server-side cost).
Timings are printed as a table (milliseconds).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
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


def clinical_only(root: Path) -> Path:
    """A clinical-only copy of a demo snapshot (what a blinded instance serves)."""
    dest = root.parent / f"{root.name}_clinical_only" / "trial"
    if not (dest / "clinical" / "manifest.json").exists():
        shutil.copytree(root / "clinical", dest / "clinical", dirs_exist_ok=True)
    return dest


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


def _server_env(root: Path, role: str, work: Path) -> dict:
    from dashboard.auth import is_unblinded_role
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIROCALS_")}
    env["MIROCALS_AUDIT_LOG"] = str(work / f"bench_audit_{role}.log")
    if is_unblinded_role(role):
        env.update(MIROCALS_INSTANCE="unblinded", MIROCALS_DATA=str(root), MIROCALS_ALLOCATION=str(root / "allocation"))
    else:
        env.update(MIROCALS_INSTANCE="blinded", MIROCALS_DATA=str(clinical_only(root)))
    return env


WARM_DONE = re.compile(r"warm-up finished in ([0-9.]+) s")


def _wait_warm_up(log: Path, started: float, timeout: float) -> float:
    """Seconds from the server start to the warm-up's end (NaN when it never says so)."""
    while time.perf_counter() - started < timeout:
        text = log.read_text(errors="replace") if log.exists() else ""
        if WARM_DONE.search(text) or "warm-up failed" in text or "warm-up skipped" in text:
            return time.perf_counter() - started
        time.sleep(0.2)
    return float("nan")


def bench_browser(root: Path, role: str, work: Path, warm_up_timeout: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright
    from dashboard.pages_registry import pages_for
    from test_browser import ARGS, CHROMIUM, PAGE_HEADINGS, _free_port, wait_idle
    from test_browser_cells import _clear, _pick
    port = _free_port()
    log = work / f"bench_server_{root.name}_{role}.log"
    log_file = open(log, "wb")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=_server_env(root, role, work), stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    out: dict[str, float] = {}
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        out["server up"] = time.perf_counter() - started
        out["warm-up"] = _wait_warm_up(log, started, warm_up_timeout)
        timeout = 300_000
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            specs = pages_for(role)

            def drawn():
                """Until the run has ended and the first chart on the page (if any) is drawn."""
                wait_idle(page, timeout)
                charts = page.locator("[data-testid=stMain] .js-plotly-plot")
                if charts.count():        # drawn, in view or in a tab not shown
                    charts.first.locator(".main-svg").first.wait_for(state="attached", timeout=timeout)

            def open_page(spec, timeout):
                t = time.perf_counter()
                page.get_by_test_id("stSidebarNav").get_by_text(spec.title, exact=True).click()
                page.get_by_role("heading", name=PAGE_HEADINGS.get(spec.title, spec.title)).first.wait_for(
                    timeout=timeout)
                drawn()
                return time.perf_counter() - t

            def sign_in(key):
                page.goto(url)
                page.get_by_role("textbox", name="User name").fill(role)
                page.get_by_role("textbox", name="Password").fill(f"demo-{role}")
                # a person takes seconds to type: the sign-in page's chart-library preload
                # (widgets._preload_charts) has finished by the time they click
                preload = page.locator(".st-key-chart_preload .js-plotly-plot")
                if preload.count():
                    preload.first.wait_for(state="attached", timeout=timeout)
                t = time.perf_counter()
                page.get_by_role("button", name="Sign in").click()
                page.get_by_text("Data cut-off").first.wait_for(timeout=timeout)
                drawn()
                out[key] = time.perf_counter() - t

            sign_in("sign-in (cold)")
            for rnd, label in ((0, "first visit"), (1, "switch")):
                for spec in specs[1:] + specs[:1]:           # ends on the first page
                    try:
                        out[f"{label} {spec.title}"] = open_page(spec, timeout=timeout)
                    except Exception as exc:  # noqa: BLE001 - one page stuck: say so, time the rest
                        print(f"# {spec.title}: {type(exc).__name__}", file=sys.stderr)
                        out[f"{label} {spec.title}"] = float("nan")
            t = time.perf_counter()
            _pick(page, "Country", "UK")
            out["filter country"] = time.perf_counter() - t
            _clear(page, "Country")
            for fmt in ("PNG", "SVG"):
                t = time.perf_counter()
                with page.expect_download(timeout=timeout) as info:
                    page.get_by_role("button", name=f"Download {fmt}").first.click()
                info.value.path()
                out[f"download {fmt}"] = time.perf_counter() - t
                wait_idle(page, timeout)
            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("textbox", name="User name").wait_for(timeout=timeout)
            sign_in("sign-in (warm)")
            browser.close()
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:       # a run still busy at shutdown: do not wait for it
            proc.kill()
            proc.wait()
        log_file.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="default,20000")
    ap.add_argument("--roles", default="steering,dsmb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--apptest", action="store_true", help="also time AppTest cold/warm runs per page")
    ap.add_argument("--warm-up-timeout", type=float, default=600.0,
                    help="seconds to wait for the start-up warm-up before the cold sign-in")
    ap.add_argument("--work", default="/tmp/mirocals_bench")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MIROCALS_AUDIT_LOG", str(work / "audit.log"))
    rows = []
    for size in args.sizes.split(","):
        root = make_snapshot(work, size)
        for role in args.roles.split(","):
            for what, seconds in bench_browser(root, role, work, args.warm_up_timeout).items():
                rows.append((size, role, what, seconds * 1000))
                print(f"# {size} {role} {what}: {seconds * 1000:.0f} ms", file=sys.stderr, flush=True)
            if args.apptest:
                for title, (cold, warm) in bench_apptest(root, role, args.repeat).items():
                    rows.append((size, role, f"AppTest cold {title}", cold * 1000))
                    rows.append((size, role, f"AppTest warm {title}", warm * 1000))
    print(f"{'size':>8} {'role':<9} {'what':<28} {'ms':>8}")
    for size, role, what, ms in rows:
        print(f"{size:>8} {role:<9} {what:<28} {ms:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
