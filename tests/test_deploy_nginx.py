"""The deployment, running (issue 16 part 1): both instances behind Debian's nginx.

A demo snapshot is published the way a deployment publishes one (``data_access.publish``: one
folder of snapshots both instances read, the allocation apart), then ``mirocals serve --blinded``
and ``mirocals serve --unblinded`` start on loopback ports, and ``/usr/sbin/nginx`` runs the
configuration of ``deploy/render_nginx.py`` (``deploy/nginx/mirocals.conf.template``) from a
private prefix in tmp_path, with a self-signed certificate for two host names:
``steering.mirocals.test`` (blinded) and ``dsmb.mirocals.test`` (unblinded). Real HTTPS requests
(the certificate trusted, host names checked) then check authentication on every path, the
websocket through the proxy, the per-instance user files, the redirect from plain HTTP and that
nothing but the proxy answers; one chromium session signs in through the proxy.
"""
from __future__ import annotations

import base64
import datetime as dt
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

NGINX = "/usr/sbin/nginx"
ROOT = Path(__file__).resolve().parents[1]
RENDER = ROOT / "deploy" / "render_nginx.py"
BLINDED, UNBLINDED = "steering.mirocals.test", "dsmb.mirocals.test"
USERS = {BLINDED: ("steering", "proxy-steering-pw"), UNBLINDED: ("dsmb", "proxy-dsmb-pw")}
COST = 5                                    # the user files' bcrypt cost (render_nginx.py's default)
SECURITY_HEADERS = ("strict-transport-security", "x-content-type-options", "x-frame-options",
                    "referrer-policy", "content-security-policy")

needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(),
                                 reason=f"{NGINX} is absent: install Debian's nginx (scripts/setup-system.sh)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for both host names (and its key), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MIROCALS test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(BLINDED), x509.DNSName(UNBLINDED)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _htpasswd(path: Path, user: str, password: str) -> None:
    out = subprocess.run([sys.executable, str(RENDER), "htpasswd", user, "--cost", str(COST)], input=password + "\n",
                         capture_output=True, text=True, check=True).stdout
    path.write_text(out)
    path.chmod(0o640)


def _wait(predicate, what: str, logs: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not start within {timeout:.0f} s:\n"
                + "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists()))


def _healthy(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok"
    except OSError:
        return False


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)       # the process this test started, and its children
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """Both instances and nginx, as deployed; yields a dict of ports, paths and the TLS context."""
    if not Path(NGINX).exists():
        pytest.skip(f"{NGINX} is absent: install Debian's nginx (scripts/setup-system.sh)")
    from data_access.demo import make_demo
    from data_access.publish import publish_snapshot
    tmp = tmp_path_factory.mktemp("deploy")
    make_demo(tmp / "incoming" / "cut-2019-06-30", n_subjects=80, cut="2019-06-30")
    data_root, alloc_root = tmp / "srv" / "snapshots", tmp / "unblinded" / "allocation"
    publish_snapshot(tmp / "incoming" / "cut-2019-06-30", data_root, alloc_root)

    ports = {"blinded": _free_port(), "unblinded": _free_port(), "https": _free_port(), "http": _free_port()}
    mirocals = Path(sys.executable).parent / "mirocals"
    cmd = [str(mirocals)] if mirocals.exists() else [sys.executable, "-m", "mirocals"]
    procs, logs = [], []
    try:
        for kind in ("blinded", "unblinded"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("MIROCALS_")}
            env.update(MIROCALS_AUDIT_LOG=str(tmp / f"audit-{kind}.log"), MIROCALS_WARMUP="0",
                       MIROCALS_TRUST_PROXY="1")
            argv = [*cmd, "serve", f"--{kind}", "--data", str(data_root), "--port", str(ports[kind]),
                    "--address", "127.0.0.1"]
            if kind == "unblinded":
                argv += ["--allocation", str(alloc_root)]
            log = tmp / f"{kind}.log"
            logs.append(log)
            procs.append(subprocess.Popen(argv, env=env, cwd=tmp, stdout=open(log, "wb"),
                                          stderr=subprocess.STDOUT, start_new_session=True))

        cert, key = _self_signed(tmp)
        _htpasswd(tmp / "blinded.htpasswd", *USERS[BLINDED])
        _htpasswd(tmp / "unblinded.htpasswd", *USERS[UNBLINDED])
        prefix = tmp / "nginx"
        subprocess.run([sys.executable, str(RENDER), "site", "--blinded-name", BLINDED, "--unblinded-name", UNBLINDED,
                        "--cert", str(cert), "--key", str(key),
                        "--blinded-htpasswd", str(tmp / "blinded.htpasswd"),
                        "--unblinded-htpasswd", str(tmp / "unblinded.htpasswd"),
                        "--blinded-upstream", f"127.0.0.1:{ports['blinded']}",
                        "--unblinded-upstream", f"127.0.0.1:{ports['unblinded']}",
                        "--https-port", str(ports["https"]), "--http-port", str(ports["http"]),
                        "--listen-address", "127.0.0.1", "--workers", "1", "--standalone", str(prefix),
                        # as root (CI containers), nginx's workers would run as nobody, who cannot
                        # read pytest's private temporary folder: here they stay root
                        *(["--user", "root"] if os.geteuid() == 0 else [])],
                       check=True, capture_output=True)
        nginx_argv = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
        checked = subprocess.run([*nginx_argv, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        logs.append(prefix / "error.log")
        procs.append(subprocess.Popen(nginx_argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        _wait(lambda: _accepts(ports["https"]) and _accepts(ports["http"]), "nginx", logs, 10)
        for kind in ("blinded", "unblinded"):
            _wait(lambda: _healthy(ports[kind]), f"the {kind} instance", logs)
        tls = ssl.create_default_context(cafile=str(cert))
        yield {"ports": ports, "tls": tls, "tmp": tmp, "prefix": prefix, "logs": logs,
               "data_root": data_root, "alloc_root": alloc_root}
    finally:
        for proc in reversed(procs):
            _stop(proc)


# --------------------------------------------------------------------------- HTTP helpers
def _auth(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _tls_socket(dep, server_name: str | None, timeout: float = 10):
    raw = socket.create_connection(("127.0.0.1", dep["ports"]["https"]), timeout=timeout)
    if server_name is None:                         # no SNI, no host name check
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        return ctx.wrap_socket(raw)
    return dep["tls"].wrap_socket(raw, server_hostname=server_name)


def get(dep, host: str, path: str, headers: dict | None = None):
    """``(status, headers (lower-case names), body)`` of an HTTPS GET through nginx, the certificate
    checked for ``host``."""
    class Connection(http.client.HTTPSConnection):
        def connect(self):
            self.sock = _tls_socket(dep, host)
    conn = Connection(host, dep["ports"]["https"], timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def websocket_upgrade(dep, host: str, headers: dict | None = None) -> tuple[int, bytes]:
    """Open ``/_stcore/stream`` as a browser does; ``(status, raw answer head)``."""
    sock = _tls_socket(dep, host)
    try:
        origin = f"https://{host}:{dep['ports']['https']}"
        lines = [f"GET /_stcore/stream HTTP/1.1", f"Host: {host}:{dep['ports']['https']}", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                 "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
                 "Sec-WebSocket-Protocol: streamlit", f"Origin: {origin}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        return int(head.split(b" ", 2)[1]), head
    finally:
        sock.close()


def static_asset(dep, host: str) -> str:
    """The path of one of Streamlit's static files, as its index page names it."""
    status, _, body = get(dep, host, "/", _auth(*USERS[host]))
    assert status == 200
    found = re.search(rb'(?:src|href)="\.?(/?static/[^"]+\.(?:js|css))"', body)
    assert found, body[:500]
    return "/" + found.group(1).decode().lstrip("/")


def page_path(host: str) -> str:
    from dashboard.pages_registry import pages_for
    return "/" + pages_for("steering" if host == BLINDED else "dsmb")[1].url


# --------------------------------------------------------------------------- tests
@needs_nginx
@pytest.mark.parametrize("host", [BLINDED, UNBLINDED])
def test_every_path_needs_the_instance_credential(deployment, host):
    dep = deployment
    user, password = USERS[host]
    ok = _auth(user, password)
    # what the app answers once authenticated: (status, body check)
    paths = {
        "/": (200, lambda b: b"<html" in b.lower() and b"static/" in b),
        page_path(host): (200, lambda b: b"<html" in b.lower()),
        "/_stcore/health": (200, lambda b: b == b"ok"),
        "/_stcore/host-config": (200, lambda b: b.startswith(b"{")),
        static_asset(dep, host): (200, lambda b: len(b) > 1000),
        "/media/0123456789abcdef0123456789abcdef.png": (404, lambda b: b == b"Not found\n"),   # dashboard/server.py
        "/_stcore/metrics": (404, lambda b: b == b"Not found\n"),
        # static serving is off: the app's page, not a file
        "/app/static/anything.txt": (200, lambda b: b"<html" in b.lower()),
    }
    for path, (expected, body_ok) in paths.items():
        for headers in ({}, _auth(user, "wrong"), _auth("nobody", password)):
            status, head, body = get(dep, host, path, headers)
            assert status == 401, (host, path, headers, status, body[:200])
            assert head.get("www-authenticate", "").startswith("Basic realm="), head
            assert b"streamlit" not in body.lower(), body[:200]
            assert all(h in head for h in SECURITY_HEADERS), (path, head)
        status, head, body = get(dep, host, path, ok)
        assert status == expected and body_ok(body), (host, path, status, body[:300])
        assert all(h in head for h in SECURITY_HEADERS), (path, head)
        assert "server" not in head or "/" not in head["server"], head["server"]     # no nginx version
    # the session's websocket: refused without the credential, upgraded with it (Origin kept valid
    # by the proxy passing Host with its port)
    assert websocket_upgrade(dep, host)[0] == 401
    assert websocket_upgrade(dep, host, _auth(user, "wrong"))[0] == 401
    status, head = websocket_upgrade(dep, host, ok)
    assert status == 101 and b"upgrade: websocket" in head.lower(), head


@needs_nginx
def test_a_credential_works_on_its_own_instance_only(deployment):
    steering, dsmb = _auth(*USERS[BLINDED]), _auth(*USERS[UNBLINDED])
    for host, other in ((UNBLINDED, steering), (BLINDED, dsmb)):
        for path in ("/", "/_stcore/health", page_path(host)):
            assert get(deployment, host, path, other)[0] == 401, (host, path)
        assert websocket_upgrade(deployment, host, other)[0] == 401
    # the realms say which instance asks
    realms = {h: get(deployment, h, "/")[1]["www-authenticate"] for h in (BLINDED, UNBLINDED)}
    assert "blinded" in realms[BLINDED] and "unblinded" in realms[UNBLINDED], realms


@needs_nginx
def test_plain_http_only_redirects_to_https(deployment):
    ports = deployment["ports"]
    for host in (BLINDED, UNBLINDED):
        conn = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=10)
        conn.request("GET", "/_stcore/health?x=1", headers={"Host": f"{host}:{ports['http']}"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 301, (host, resp.status)
        assert resp.getheader("Location") == f"https://{host}:{ports['https']}/_stcore/health?x=1"
        assert b"ok" != body and b"streamlit" not in body.lower()
    # an IP address or any other name: closed without an answer
    conn = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=10)
    conn.request("GET", "/", headers={"Host": "127.0.0.1"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()


@needs_nginx
def test_nothing_but_the_proxy_answers(deployment):
    dep, ports = deployment, deployment["ports"]
    # plain HTTP sent to the HTTPS port: nginx's 400, nothing of the app
    conn = http.client.HTTPConnection("127.0.0.1", ports["https"], timeout=10)
    conn.request("GET", "/_stcore/health", headers={"Host": BLINDED})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 400 and body != b"ok"
    # a TLS handshake without a known name (an IP address, no SNI) is refused
    for name in (None, "mirocals.test"):
        with pytest.raises(ssl.SSLError):
            sock = _tls_socket(dep, name)
            sock.close()
    # a known name in the handshake, another in the request: closed unanswered, even with a credential
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(dep, BLINDED, "/_stcore/health", {"Host": "127.0.0.1", **_auth(*USERS[BLINDED])})
    # the instances listen on the loopback address only
    listening = _listening_addresses()
    for kind in ("blinded", "unblinded"):
        addresses = listening.get(ports[kind], set())
        assert addresses and addresses <= {"127.0.0.1"}, (kind, addresses)


def _listening_addresses() -> dict[int, set[str]]:
    """Port -> local addresses of the listening TCP sockets (from /proc/net/tcp and tcp6)."""
    out: dict[int, set[str]] = {}
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state != "0A":                                   # LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            if v6:
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, raw)
            else:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            out.setdefault(int(hex_port, 16), set()).add(addr)
    return out


def test_the_renderer_refuses_unsafe_settings(tmp_path):
    base = ["site", "--blinded-name", BLINDED, "--unblinded-name", UNBLINDED, "--cert", "c.pem", "--key", "k.pem",
            "--blinded-htpasswd", str(tmp_path / "a"), "--unblinded-htpasswd", str(tmp_path / "b")]

    def refused(*extra, replace=None) -> str:
        argv = list(base)
        for old, new in (replace or {}).items():
            argv[argv.index(old) + 1] = new
        run = subprocess.run([sys.executable, str(RENDER), *argv, *extra], capture_output=True, text=True)
        assert run.returncode == 2 and not run.stdout, (extra, replace, run.stdout[:200])
        return run.stderr
    assert "loopback" in refused("--blinded-upstream", "10.1.2.3:8501")
    assert "loopback" in refused("--unblinded-upstream", "0.0.0.0:8502")
    assert "own host name" in refused(replace={"--unblinded-name": BLINDED})
    assert "own user file" in refused(replace={"--unblinded-htpasswd": str(tmp_path / "a")})
    assert "misread" in refused(replace={"--cert": "my cert.pem"})
    assert "not a host name" in refused(replace={"--blinded-name": "steering;example"})
    ok = subprocess.run([sys.executable, str(RENDER), *base], capture_output=True, text=True, check=True).stdout
    assert "{{" not in ok and f"server_name {UNBLINDED};" in ok and "proxy_pass http://127.0.0.1:8502;" in ok


DEBIAN_CONF = Path("/etc/nginx/nginx.conf")


@needs_nginx
@pytest.mark.skipif(not DEBIAN_CONF.exists(), reason=f"{DEBIAN_CONF} is absent (Debian's nginx-common)")
def test_the_site_fits_debians_nginx_conf(tmp_path):
    """The production route of the README: the rendered site in Debian's own nginx.conf (its http
    defaults, e.g. ssl_protocols, included) passes ``nginx -t``; Debian's default site must go, as the
    README says (both claim the default server on port 80)."""
    (tmp_path / "a.htpasswd").write_text("")
    (tmp_path / "b.htpasswd").write_text("")
    cert, key = _self_signed(tmp_path)
    site = tmp_path / "mirocals.conf"
    subprocess.run([sys.executable, str(RENDER), "site", "--blinded-name", "steering.example.org",
                    "--unblinded-name", "dsmb.example.org", "--cert", str(cert), "--key", str(key),
                    "--blinded-htpasswd", str(tmp_path / "a.htpasswd"), "--unblinded-htpasswd",
                    str(tmp_path / "b.htpasswd"), "--out", str(site)], check=True)
    text = DEBIAN_CONF.read_text()
    # nginx's own files stay in tmp_path: pid, logs, temporary folders
    text = re.sub(r"(?m)^\s*pid [^;]+;", f"pid {tmp_path}/nginx.pid;", text)
    text = re.sub(r"(?m)^(\s*)(error_log|access_log) [^;]+;", rf"\1\2 {tmp_path}/\2.log;", text)
    text = text.replace("http {", "http {\n" + "".join(
        f"\t{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")), 1)

    def check(sites: str) -> subprocess.CompletedProcess:
        conf = tmp_path / "nginx.conf"
        conf.write_text(re.sub(r"(?m)^\s*include /etc/nginx/sites-enabled/\*;", f"\tinclude {sites};", text))
        return subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "err.log")],
                              capture_output=True, text=True)
    result = check(str(site))
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr
    default = Path("/etc/nginx/sites-available/default")
    if default.exists():
        (tmp_path / "sites").mkdir()
        shutil.copy(site, tmp_path / "sites" / "mirocals.conf")
        shutil.copy(default, tmp_path / "sites" / "default")
        both = check(f"{tmp_path}/sites/*")
        assert both.returncode != 0 and "duplicate default server" in both.stderr, both.stderr


@needs_nginx
def test_publishing_a_snapshot_is_one_step_for_both_instances(deployment, tmp_path):
    """Readers polling the published folders while new snapshots are published never see a snapshot
    without all its files or, on the unblinded side, without its allocation."""
    from data_access.publish import publish_snapshot
    from data_access.snapshot import MANIFEST, SnapshotError, verify_snapshot
    data_root, alloc_root = deployment["data_root"], deployment["alloc_root"]
    incoming = deployment["tmp"] / "incoming" / "cut-2019-06-30"
    seen, half, stop = set(), [], threading.Event()

    expected = {f.name: f.stat().st_size for f in (incoming / "clinical").iterdir()}

    def reader():
        # one stat per file, so that it looks often: a listed snapshot must have every file whole
        # and, on the unblinded side, its allocation
        while True:
            last = stop.is_set()                # one whole pass after the last publication
            for p in data_root.iterdir():
                if (p / "clinical" / MANIFEST).exists():
                    seen.add(p.name)
                    sizes = {}
                    for f in expected:
                        try:
                            sizes[f] = (p / "clinical" / f).stat().st_size
                        except OSError:
                            sizes[f] = None
                    if sizes != expected or not (alloc_root / p.name / "allocation" / MANIFEST).exists():
                        half.append((p.name, {f: n for f, n in sizes.items() if n != expected[f]}))
            if last:
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        names = [f"cut-2019-06-30-r{i}" for i in range(6)]
        for name in names:
            assert publish_snapshot(incoming, data_root, alloc_root, name=name)["published"]
    finally:
        stop.set()
        thread.join(10)
    assert not half, half
    assert set(names) <= seen
    assert not any(verify_snapshot(data_root / n / "clinical") for n in names)
    assert not [p for p in data_root.iterdir() if p.name.startswith(".")]      # no staging left
    # the same content again: nothing to do; other content under a published name: refused
    assert not publish_snapshot(incoming, data_root, alloc_root, name=names[0])["published"]
    other = tmp_path / "other"
    shutil.copytree(incoming, other)
    (other / "clinical" / "adsl.parquet").write_bytes(b"tampered")
    with pytest.raises(SnapshotError, match="does not match its manifest"):
        publish_snapshot(other, data_root, alloc_root, name="cut-x")
    assert not (data_root / "cut-x").exists() and not (alloc_root / "cut-x").exists()
    # the allocation never goes where the blinded instance would find it, nor is it left out
    with pytest.raises(SnapshotError, match="blinded instance would find it"):
        publish_snapshot(incoming, data_root, data_root / "allocation", name="cut-y")
    with pytest.raises(SnapshotError, match="allocation part"):
        publish_snapshot(incoming, data_root, name="cut-y")
    # the blinded instance still serves the published folder (it refuses one with an allocation
    # readable from it)
    assert get(deployment, BLINDED, "/_stcore/health", _auth(*USERS[BLINDED]))[2] == b"ok"
    assert "allocation" not in " ".join(str(p) for p in data_root.rglob("*"))


@needs_nginx
@pytest.mark.browser
def test_the_blinded_instance_signs_in_through_the_proxy_in_chromium(deployment):
    """Chromium, given the proxy credential, loads the app over the proxied websocket and signs in."""
    from test_browser import ARGS, CHROMIUM, sign_in
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser tests")
    from playwright.sync_api import Error as PlaywrightError, sync_playwright
    port = deployment["ports"]["https"]
    url = f"https://{BLINDED}:{port}/"
    rules = f"--host-resolver-rules=MAP {BLINDED} 127.0.0.1, MAP {UNBLINDED} 127.0.0.1"
    cpu_before, requests_before = _nginx_cpu_seconds(deployment), _access_lines(deployment)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rules])
        try:
            # without the proxy credential chromium gets the 401 challenge and no page
            anonymous = browser.new_context(ignore_https_errors=True)
            with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
                anonymous.new_page().goto(url)
            anonymous.close()
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900},
                                          http_credentials={"username": USERS[BLINDED][0],
                                                            "password": USERS[BLINDED][1]})
            page = context.new_page()
            sign_in(page, url, "steering")
            text = page.inner_text("body")
            assert "UNBLINDED" not in text and "Traceback" not in text
            context.close()
        finally:
            browser.close()
    access = (deployment["prefix"] / "access.log").read_text()
    assert re.search(r'"GET /_stcore/stream HTTP/1.1" 101 ', access), access[-2000:]
    print(f"chromium through nginx: {_access_lines(deployment) - requests_before} requests, nginx CPU "
          f"{_nginx_cpu_seconds(deployment) - cpu_before:.2f} s (bcrypt cost {COST} user files)")


def _access_lines(dep) -> int:
    return len((dep["prefix"] / "access.log").read_text().splitlines())


def _nginx_cpu_seconds(dep) -> float:
    """User + system CPU seconds of nginx's master and worker processes so far."""
    master = int((dep["prefix"] / "nginx.pid").read_text())
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == master or ppid == master:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
