"""Render the nginx configuration of a MIROCALS deployment, and write htpasswd lines.

    python deploy/render_nginx.py site --blinded-name steering.example.org \\
        --unblinded-name dsmb.example.org --cert /etc/mirocals/tls/fullchain.pem \\
        --key /etc/mirocals/tls/privkey.pem \\
        --blinded-htpasswd /etc/mirocals/nginx/blinded.htpasswd \\
        --unblinded-htpasswd /etc/mirocals/nginx/unblinded.htpasswd \\
        [--blinded-upstream 127.0.0.1:8501] [--unblinded-upstream 127.0.0.1:8502] \\
        [--https-port 443] [--http-port 80] [--listen-address ADDR] \\
        [--out /etc/nginx/sites-available/mirocals.conf] [--standalone DIR]

    python deploy/render_nginx.py htpasswd USER [--cost 5]   # password read from stdin

``site`` fills ``deploy/nginx/mirocals.conf.template`` (printed, or written to ``--out``).
``--standalone DIR`` writes a whole configuration instead (``DIR/nginx.conf`` including
``DIR/mirocals.conf``, pid, logs and temporary files in ``DIR``) for
``nginx -p DIR -c DIR/nginx.conf -e DIR/error.log``: what tests/test_deploy_nginx.py runs.

Refused (exit 2, with the reason): an upstream that is not a loopback address (the instances
listen on 127.0.0.1 only; the proxy is their only way in), the same host name or the same user
file for both instances, a name or path nginx would misread (spaces, ``;``, braces, quotes).

``htpasswd`` prints ``USER:<bcrypt hash>`` for an instance's user file. nginx checks the hash on
every request, in its worker's event loop, and a browser's first load of the dashboard (sign-in
page and first page) is 98 requests: the page, Streamlit's static files, the websocket (later
loads a few: Streamlit marks its static files ``immutable``, cached a year). The default cost is
therefore 5 (as ``htpasswd -B``): nginx spent 0.21 s of CPU on that first load with cost-5 user
files, 1.28 s with cost 8 (tests/test_deploy_nginx.py, chromium, 2026-12-02, 2 cores). The app's
own accounts keep cost 11-12; the user file is readable by root and nginx's group only.
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SITE_TEMPLATE = HERE / "nginx" / "mirocals.conf.template"
STANDALONE_TEMPLATE = HERE / "nginx" / "standalone.conf.template"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
# what may appear inside an nginx directive argument unquoted
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._:/\[\]@+-]+$")
NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class ConfigError(ValueError):
    """A setting that would give an unsafe or broken configuration."""


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with every ``{{NAME}}`` replaced by ``values[NAME]``; a name without a value
    is an error (nothing is left unfilled)."""
    missing = sorted({m for m in PLACEHOLDER.findall(template) if m not in values})
    if missing:
        raise ConfigError(f"no value for {', '.join(missing)} in the template")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def check_upstream(option: str, value: str) -> str:
    """``HOST:PORT`` on a loopback address (127.0.0.0/8, ::1, localhost) or ``unix:/path``."""
    if value.startswith("unix:"):
        return _token(option, value)
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{option} {value!r}: expected HOST:PORT (e.g. 127.0.0.1:8501) or unix:/path")
    bare = host.strip("[]")
    if bare != "localhost":
        try:
            loopback = ipaddress.ip_address(bare).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(f"{option} {value!r}: the instances must listen on a loopback address "
                              "(mirocals serve --address 127.0.0.1), so that the proxy is the only way in")
    return value


def _token(option: str, value: str) -> str:
    if not SAFE_TOKEN.match(value):
        raise ConfigError(f"{option} {value!r}: only letters, digits and . _ : / [ ] @ + - are allowed "
                          "(nginx would misread spaces, quotes, ';' or braces)")
    return value


def _name(option: str, value: str) -> str:
    if not NAME.match(value):
        raise ConfigError(f"{option} {value!r}: not a host name (e.g. dsmb.example.org)")
    return value.lower()


def _listen(address: str | None, port: int) -> str:
    if not 0 < port < 65536:
        raise ConfigError(f"port {port}: expected 1-65535")
    if not address:
        return str(port)
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise ConfigError(f"--listen-address {address!r}: expected an IP address") from None
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def site_values(args) -> dict[str, str]:
    """The template's values from the command-line options, checked."""
    blinded, unblinded = _name("--blinded-name", args.blinded_name), _name("--unblinded-name", args.unblinded_name)
    if blinded == unblinded:
        raise ConfigError(f"--blinded-name and --unblinded-name are both {blinded!r}: each instance needs "
                          "its own host name (its own origin, cookies and user file)")
    b_pw, u_pw = (str(Path(p).resolve()) for p in (args.blinded_htpasswd, args.unblinded_htpasswd))
    if b_pw == u_pw:
        raise ConfigError(f"--blinded-htpasswd and --unblinded-htpasswd are both {b_pw}: the steering "
                          "committee's users would reach the unblinded instance; give each instance its own user file")
    return {
        "BLINDED_NAME": blinded,
        "UNBLINDED_NAME": unblinded,
        "BLINDED_UPSTREAM": check_upstream("--blinded-upstream", args.blinded_upstream),
        "UNBLINDED_UPSTREAM": check_upstream("--unblinded-upstream", args.unblinded_upstream),
        "BLINDED_HTPASSWD": _token("--blinded-htpasswd", b_pw),
        "UNBLINDED_HTPASSWD": _token("--unblinded-htpasswd", u_pw),
        "TLS_CERT": _token("--cert", str(Path(args.cert).resolve())),
        "TLS_KEY": _token("--key", str(Path(args.key).resolve())),
        "HTTPS_LISTEN": _listen(args.listen_address, args.https_port),
        "HTTP_LISTEN": _listen(args.listen_address, args.http_port),
        "HTTPS_PORT_SUFFIX": "" if args.https_port == 443 else f":{args.https_port}",
    }


def render_site(args) -> str:
    return fill(SITE_TEMPLATE.read_text(), site_values(args))


def write_standalone(args, directory: Path) -> Path:
    """``directory/mirocals.conf`` (the site) and ``directory/nginx.conf`` (the whole
    configuration, everything nginx writes in ``directory``); returns the latter."""
    directory = Path(directory).resolve()
    _token("--standalone", str(directory))
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    site = directory / "mirocals.conf"
    site.write_text(render_site(args))
    conf = directory / "nginx.conf"
    conf.write_text(fill(STANDALONE_TEMPLATE.read_text(),
                         {"PREFIX": str(directory), "SITE": str(site), "WORKERS": str(args.workers),
                          "USER_DIRECTIVE": f"user {_token('--user', args.user)};\n" if args.user else ""}))
    return conf


def htpasswd_line(user: str, password: str, cost: int = 5) -> str:
    """``user:<bcrypt hash>``, one line of an nginx user file."""
    import bcrypt
    if not user or ":" in user or any(c.isspace() for c in user):
        raise ConfigError(f"user name {user!r}: no colon or white space")
    if not password:
        raise ConfigError("empty password")
    if len(password.encode()) > 72:
        raise ConfigError("password longer than 72 bytes (bcrypt reads 72)")
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="render_nginx.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("site", help="the nginx site configuration of both instances")
    s.add_argument("--blinded-name", required=True, metavar="HOST", help="host name of the blinded instance")
    s.add_argument("--unblinded-name", required=True, metavar="HOST", help="host name of the unblinded instance")
    s.add_argument("--cert", required=True, help="TLS certificate chain (PEM), valid for both names")
    s.add_argument("--key", required=True, help="its private key (PEM)")
    s.add_argument("--blinded-htpasswd", required=True, metavar="FILE", help="user file of the blinded instance")
    s.add_argument("--unblinded-htpasswd", required=True, metavar="FILE", help="user file of the unblinded instance")
    s.add_argument("--blinded-upstream", default="127.0.0.1:8501", metavar="HOST:PORT")
    s.add_argument("--unblinded-upstream", default="127.0.0.1:8502", metavar="HOST:PORT")
    s.add_argument("--https-port", type=int, default=443)
    s.add_argument("--http-port", type=int, default=80)
    s.add_argument("--listen-address", metavar="ADDR", help="address nginx listens on (default: all)")
    s.add_argument("--workers", default="auto", help="worker_processes of --standalone (default auto)")
    s.add_argument("--user", help="user of --standalone's worker processes when nginx starts as root "
                                  "(default: nginx's, nobody)")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--out", metavar="FILE", help="write the site here (default: print it)")
    out.add_argument("--standalone", metavar="DIR", help="write a whole configuration into DIR")
    h = sub.add_parser("htpasswd", help="print USER:<bcrypt hash> (password from stdin)")
    h.add_argument("user")
    h.add_argument("--cost", type=int, default=5, help="bcrypt cost (default 5: checked on every request)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "htpasswd":
            password = sys.stdin.readline().rstrip("\n")
            print(htpasswd_line(args.user, password, args.cost))
        elif args.standalone:
            print(write_standalone(args, Path(args.standalone)))
        elif args.out:
            Path(args.out).write_text(render_site(args))
        else:
            sys.stdout.write(render_site(args))
    except ConfigError as exc:
        print(f"render_nginx.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
