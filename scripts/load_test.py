"""Load test of the dashboard over Streamlit's own websocket protocol (issue 16, part 4).

    python scripts/load_test.py --users N --minutes M [--subjects S] [--gc on|off]
                                [--work /tmp/mirocals_bench] [--interval 2] [--seed 1]

Starts its own ``streamlit run dashboard/app.py`` on the demo instance (both roles, allocation
configured) over a demo snapshot (trial size by default, ``--subjects S`` for another size; the
snapshot is generated once under ``--work`` and reused), with the start-up cache warm-up on, and
waits for the warm-up to finish. ``--gc on|off`` sets Streamlit's ``runner.postScriptGC`` (the
``gc.collect(2)`` Streamlit runs after every script run).

Then N simulated users, half ``steering`` (blinded), half ``dsmb`` (unblinded), each one real
websocket session speaking what a browser speaks: ``BackMsg`` protobufs to
``ws://host:port/_stcore/stream``, ``ForwardMsg`` protobufs back. A user

* opens the app (a ``rerun_script`` with an empty client state, as a browser's first load),
* signs in through the form: the ids of the "User name" and "Password" text inputs and of the
  "Sign in" submit button come from the deltas of that first run; the submit is a
  ``rerun_script`` carrying both strings and the button's trigger (a refusal because another
  sign-in for the same name is in flight is retried, as a person would click again),
* then every ~``--interval`` seconds (jittered +-50 %) switches to another page of its navigation
  (a ``rerun_script`` with that page's ``page_script_hash``, as a sidebar click sends).

Page time is from sending the switch to the ``script_finished`` message of that run. Errors are
exceptions drawn by the app, script runs that did not finish successfully, runs that took longer
than ``--page-timeout`` and dropped connections; error boxes (``st.error``) drawn on a page
after sign-in are counted apart (``error_alerts``: a page may mean one). Every message received by a blinded session is
scanned for arm labels and Treg tokens (``leak_tokens``); any hit fails the run (exit 1). The
same scan over the unblinded sessions' messages is reported (``unblinded_arm_messages``) to show
the scan reads real content: the DSMB does see the arms.

Server memory (RSS of the streamlit process, from psutil) is taken after the warm-up
(``rss_start_mb``), every 5 s during the run (``rss_max_mb``) and at the end with every user still
connected (``rss_end_mb``). The last line printed is one JSON object.

Widget values other than the sign-in form are not sent back on page switches (a browser would
resend the sidebar filters' current values); they stay at their defaults.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BLINDED_ROLES = ("steering", "investigator", "author")

# what a blinded session must never receive (raw message bytes: protobuf strings, Arrow buffers
# and chart specs are UTF-8 in the message): arm labels and codes as the study file spells them
# (a sentence's "Placebo-controlled" is not one), and Treg tokens. An Arrow string column is its
# values back to back ("PBOPBOIL2LD"), so no word boundary is asked for: only the short tokens
# must not sit inside lower-case text or digits ("Group Allocation", "xPBO2" are not hits).
LEAK = re.compile(rb"Low-dose IL-2|IL2LD|Placebo(?!-controlled)|(?<![a-z0-9])PBO(?![a-z0-9])"
                  rb"|Group [AB](?![a-z0-9])|TREG|Regulatory T|Treg")


def leak_tokens(message: bytes) -> list[str]:
    """The arm labels and Treg tokens found in one message received by a session (raw bytes)."""
    return [m.group(0).decode("utf-8", "replace") for m in LEAK.finditer(message)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------- server
WARM_DONE = re.compile(r"warm-up finished in ([0-9.]+) s")


def make_snapshot(work: Path, subjects: int | None) -> Path:
    from data_access.demo import make_demo
    root = work / f"demo_{subjects or 'default'}"
    if not (root / "clinical" / "manifest.json").exists():
        t = time.perf_counter()
        make_demo(root, n_subjects=subjects)
        print(f"# generated demo ({subjects or 'trial size'}) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, work: Path, gc_on: bool, warm_up_timeout: float):
    port = _free_port()
    env = {**os.environ, "MIROCALS_DATA": str(root), "MIROCALS_ALLOCATION": str(root / "allocation"),
           "MIROCALS_AUDIT_LOG": str(work / "load_audit.log"), "MIROCALS_WARMUP": "1"}
    for key in ("MIROCALS_DATABASE_LOCKED", "MIROCALS_INSTANCE", "MIROCALS_IDLE_TIMEOUT", "MIROCALS_STUDY"):
        env.pop(key, None)
    log_path = work / f"load_server_{port}.log"
    log = open(log_path, "wb")
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.headless", "true",
                             "--runner.postScriptGC", "true" if gc_on else "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("streamlit did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.3)
    deadline = time.time() + warm_up_timeout
    warm = float("nan")
    while time.time() < deadline:
        text = log_path.read_text(errors="replace")
        if (m := WARM_DONE.search(text)) or "warm-up failed" in text or "warm-up skipped" in text:
            warm = float(m.group(1)) if m else float("nan")
            break
        time.sleep(0.5)
    print(f"# server {url} (pid {proc.pid}, postScriptGC {'on' if gc_on else 'off'}) ready in "
          f"{time.time() - started:.1f} s, warm-up {warm:.1f} s; log {log_path}", file=sys.stderr)
    return proc, url, log, log_path


def rss_mb(pid: int) -> float:
    try:
        import psutil
        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- one simulated user
@dataclass
class Stats:
    pages: list[float] = field(default_factory=list)          # page switch times, ms
    signins: list[float] = field(default_factory=list)        # sign-in times (with retries), ms
    signin_retries: int = 0
    errors: list[str] = field(default_factory=list)
    blinded_leaks: int = 0
    leak_examples: list[str] = field(default_factory=list)
    blinded_messages: int = 0
    error_alerts: int = 0                                      # st.error boxes drawn after sign-in
    error_alert_examples: list[str] = field(default_factory=list)
    unblinded_arm_messages: int = 0
    messages: int = 0
    bytes: int = 0


class User:
    def __init__(self, n: int, role: str, url: str, stats: Stats, rng: random.Random, page_timeout: float):
        self.n, self.role, self.url, self.stats, self.rng = n, role, url, stats, rng
        self.blinded = role in BLINDED_ROLES
        self.page_timeout = page_timeout
        self.ws = None
        self.pages: list[tuple[str, str]] = []       # (page_script_hash, title) from navigation
        self.page_hash = ""
        self.widgets: dict[str, tuple[str, str]] = {}    # label -> (kind, widget id), last run
        self.alerts: list[str] = []

    async def connect(self):
        from websockets.asyncio.client import connect
        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await connect(ws_url, subprotocols=["streamlit"], origin=self.url, max_size=None,
                                open_timeout=60, ping_interval=None)

    async def send_rerun(self, page_hash: str = "", widgets: list | None = None):
        from streamlit.proto.BackMsg_pb2 import BackMsg
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash = page_hash
        cs.context_info.timezone = "UTC"
        cs.context_info.locale = "en-GB"
        cs.context_info.url = self.url + "/"
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        await self.ws.send(msg.SerializeToString())

    def _receive(self, data: bytes):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        self.stats.messages += 1
        self.stats.bytes += len(data)
        hits = leak_tokens(data)
        if self.blinded:
            self.stats.blinded_messages += 1
            if hits:
                self.stats.blinded_leaks += len(hits)
                if len(self.stats.leak_examples) < 5:
                    self.stats.leak_examples.append(f"{self.role}#{self.n}: {hits[:3]}")
        elif hits:
            self.stats.unblinded_arm_messages += 1
        msg = ForwardMsg()
        msg.ParseFromString(data)
        return msg

    async def run_once(self, send) -> tuple[float, list[str]]:
        """Send a rerun and read messages until its run finished; (ms, errors in that run)."""
        errors: list[str] = []
        self.widgets, self.alerts, self.error_alerts = {}, [], []
        t = time.perf_counter()
        await send()
        deadline = time.monotonic() + self.page_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (time.perf_counter() - t) * 1000, errors + [f"timeout after {self.page_timeout:.0f} s"]
            try:
                data = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                continue
            msg = self._receive(data)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash
            elif kind == "navigation":
                self.pages = [(p.page_script_hash, p.page_name) for p in msg.navigation.app_pages]
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                ek = el.WhichOneof("type")
                if ek == "exception":
                    errors.append(f"exception: {el.exception.type}: {el.exception.message[:200]}")
                elif ek == "text_input":
                    self.widgets[el.text_input.label] = ("text", el.text_input.id)
                elif ek == "button":
                    self.widgets[el.button.label] = ("button", el.button.id)
                elif ek == "alert":
                    self.alerts.append(el.alert.body)
                    if el.alert.format == 1:        # Alert.Format.ERROR
                        self.error_alerts.append(el.alert.body)
            elif kind == "page_not_found":
                errors.append(f"page not found: {msg.page_not_found.page_name}")
            elif kind == "script_finished":
                status = msg.script_finished
                if status == ForwardMsgStatus.FINISHED_EARLY_FOR_RERUN:
                    continue          # st.rerun(): the next run follows on the same request
                if status != ForwardMsgStatus.FINISHED_SUCCESSFULLY:
                    errors.append(f"script finished with status {status}")
                return (time.perf_counter() - t) * 1000, errors

    async def sign_in(self, deadline: float) -> bool:
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        t = time.perf_counter()
        _ms, errors = await self.run_once(lambda: self.send_rerun())
        self.stats.errors.extend(errors)
        while time.monotonic() < deadline:
            if "User name" not in self.widgets or "Sign in" not in self.widgets:
                self.stats.errors.append(f"{self.role}#{self.n}: no sign-in form (widgets {sorted(self.widgets)})")
                return False
            states = []
            for label, value in (("User name", self.role), ("Password", f"demo-{self.role}")):
                w = WidgetState(id=self.widgets[label][1])
                w.string_value = value
                states.append(w)
            states.append(WidgetState(id=self.widgets["Sign in"][1], trigger_value=True))
            _ms, errors = await self.run_once(lambda: self.send_rerun(self.page_hash, states))
            self.stats.errors.extend(errors)
            if "Sign out" in self.widgets:
                self.stats.signins.append((time.perf_counter() - t) * 1000)
                return True
            # refused while another sign-in for this name was in flight, or throttled: click again
            self.stats.signin_retries += 1
            await asyncio.sleep(0.2 + self.rng.random() * 0.8)
        self.stats.errors.append(f"{self.role}#{self.n}: not signed in before the end ({self.alerts[:1]})")
        return False

    async def run(self, start_delay: float, deadline: float, interval: float):
        await asyncio.sleep(start_delay)
        try:
            await self.connect()
            if not await self.sign_in(deadline):
                return
            while time.monotonic() < deadline:
                await asyncio.sleep(interval * (0.5 + self.rng.random()))
                if time.monotonic() >= deadline:
                    break
                choices = [h for h, _ in self.pages if h != self.page_hash] or [h for h, _ in self.pages]
                target = self.rng.choice(choices)
                ms, errors = await self.run_once(lambda: self.send_rerun(target))
                self.stats.pages.append(ms)
                self.stats.error_alerts += len(self.error_alerts)
                if self.error_alerts and len(self.stats.error_alert_examples) < 5:
                    self.stats.error_alert_examples.append(f"{self.role}#{self.n}: {self.error_alerts[0][:200]}")
                self.stats.errors.extend(f"{self.role}#{self.n}: {e}" for e in errors)
                if "Sign out" not in self.widgets:
                    self.stats.errors.append(f"{self.role}#{self.n}: signed out after a page switch")
                    return
        except Exception as exc:   # a dropped connection or a protocol failure is an error
            self.stats.errors.append(f"{self.role}#{self.n}: {type(exc).__name__}: {exc}")

    async def close(self):
        if self.ws is not None:
            await self.ws.close()


class ForwardMsgStatus:
    FINISHED_SUCCESSFULLY = 0
    FINISHED_EARLY_FOR_RERUN = 2


async def run_users(url: str, pid: int, users: int, minutes: float, interval: float, seed: int,
                    page_timeout: float) -> tuple[Stats, float, float, list[User]]:
    stats = Stats()
    roles = ["steering" if i % 2 == 0 else "dsmb" for i in range(users)]
    sims = [User(i, role, url, stats, random.Random(seed * 1000 + i), page_timeout) for i, role in enumerate(roles)]
    start = time.monotonic()
    deadline = start + minutes * 60
    stagger = min(0.3, 10.0 / max(users, 1))       # arrivals spread over at most ~10 s
    rss_max = rss_mb(pid)

    async def sample():
        nonlocal rss_max
        while True:
            await asyncio.sleep(5)
            rss_max = max(rss_max, rss_mb(pid))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(u.run(i * stagger, deadline, interval) for i, u in enumerate(sims)))
    sampler.cancel()
    rss_end = rss_mb(pid)                           # every session still connected
    rss_max = max(rss_max, rss_end)
    await asyncio.gather(*(u.close() for u in sims), return_exceptions=True)
    return stats, rss_end, rss_max, sims


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--subjects", type=int, default=None, help="demo size (default: trial size)")
    ap.add_argument("--gc", choices=("on", "off"), default="off",
                    help="Streamlit's runner.postScriptGC (default off: what .streamlit/config.toml ships)")
    ap.add_argument("--interval", type=float, default=2.0, help="mean seconds between page switches")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mirocals_bench"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--page-timeout", type=float, default=120.0)
    ap.add_argument("--warm-up-timeout", type=float, default=900.0)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    root = make_snapshot(args.work, args.subjects)
    proc, url, log, log_path = start_server(root, args.work, args.gc == "on", args.warm_up_timeout)
    try:
        rss_start = rss_mb(proc.pid)
        t = time.monotonic()
        stats, rss_end, rss_max, _ = asyncio.run(run_users(url, proc.pid, args.users, args.minutes,
                                                           args.interval, args.seed, args.page_timeout))
        elapsed = time.monotonic() - t
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    for e in stats.errors[:10]:
        print(f"# error: {e}", file=sys.stderr)
    for e in stats.error_alert_examples:
        print(f"# error box: {e}", file=sys.stderr)
    for e in stats.leak_examples:
        print(f"# LEAK: {e}", file=sys.stderr)
    result = {
        "users": args.users, "minutes": args.minutes, "subjects": args.subjects or "trial size",
        "gc": args.gc, "pages": len(stats.pages),
        "pages_per_s": round(len(stats.pages) / elapsed, 2) if elapsed else None,
        "p50_ms": round(percentile(stats.pages, 0.5), 1), "p95_ms": round(percentile(stats.pages, 0.95), 1),
        "max_ms": round(max(stats.pages), 1) if stats.pages else None,
        "signin_p50_ms": round(percentile(stats.signins, 0.5), 1),
        "signin_max_ms": round(max(stats.signins), 1) if stats.signins else None,
        "signed_in": len(stats.signins), "signin_retries": stats.signin_retries,
        "errors": len(stats.errors), "error_alerts": stats.error_alerts, "blinded_leaks": stats.blinded_leaks,
        "blinded_messages": stats.blinded_messages, "unblinded_arm_messages": stats.unblinded_arm_messages,
        "messages": stats.messages, "mb_received": round(stats.bytes / 2**20, 1),
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1), "rss_max_mb": round(rss_max, 1),
        "rss_per_session_mb": round((rss_end - rss_start) / args.users, 2) if args.users else None,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result))
    if stats.blinded_leaks:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
