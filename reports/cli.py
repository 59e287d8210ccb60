"""The ``mirocals`` console command.

Subcommands: demo, cut, import, export, validate, table, report, serve. Each has ``--help``. Exit status: 0 success,
1 validation errors found, 2 usage / blinding / data errors (a clear message on stderr).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _times(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--times wants numbers separated by commas: {text!r}") from None


def _fail(message: str, status: int = 2) -> int:
    print(f"mirocals: {message}", file=sys.stderr)
    return status


# --------------------------------------------------------------------------- commands
def cmd_demo(args) -> int:
    from data_access.demo import make_demo
    clinical, allocation = make_demo(args.out, seed=args.seed, cut=args.cut, n_subjects=args.subjects,
                                     messy=args.messy, effect=args.effect)
    print(f"clinical snapshot:  {clinical}\nallocation:         {allocation}")
    return 0


def cmd_cut(args) -> int:
    from data_access.cut import cut_snapshot
    cut_snapshot(args.src, args.date, args.out)
    print(f"snapshot cut at {args.date} written to {args.out}")
    return 0


def cmd_import(args) -> int:
    from data_access.adam import import_adam
    try:
        out = import_adam(args.src, args.study, args.out)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"snapshot written to {out} (clinical/ and allocation/)")
    return 0


def cmd_export(args) -> int:
    from data_access.adam import export_adam
    paths = export_adam(args.data, args.out, fmt=args.format, allocation_dir=args.allocation)
    for p in paths:
        print(p)
    return 0


def cmd_validate(args) -> int:
    from data_access.validate import format_problems, has_errors, validate_snapshot
    path = Path(args.path)
    if not path.exists():
        return _fail(f"{path}: no such directory")
    if (path / "clinical").is_dir():
        path = path / "clinical"
    from data_access.study import load_snapshot_study
    problems = validate_snapshot(path, study=load_snapshot_study(path), allocation_dir=args.allocation)
    print(format_problems(problems, fmt=args.format))
    n_err = int((problems["severity"] == "error").sum()) if len(problems) else 0
    print(f"{n_err} error(s), {len(problems) - n_err} warning(s) in {path}", file=sys.stderr)
    return 1 if has_errors(problems) else 0


def _open(args, role: str):
    from data_access.views import open_view
    if args.view == "blinded":
        # a blinded view is opened without any allocation path, even when one was given
        return open_view(args.data, role)
    if not args.allocation:
        raise ValueError("an unblinded view needs --allocation DIR")
    return open_view(args.data, role, allocation_dir=args.allocation, mask_arms=args.mask_arms)


def cmd_table(args) -> int:
    from analysis.tables import TABLES, TableUnavailable, build_table
    from data_access.views import BlindingError
    if args.name not in TABLES:
        return _fail(f"unknown table {args.name!r}; tables: {', '.join(TABLES)}")
    role = "steering" if args.view == "blinded" else "statistician"
    with tempfile.TemporaryDirectory(prefix="mirocals-cut-") as tmp:
        try:
            _apply_cut(args, Path(tmp))
            view = _open(args, role)
            table = build_table(args.name, view, times=args.times, since=args.since)
        except (BlindingError, TableUnavailable) as exc:
            return _fail(str(exc))
        except (ValueError, FileNotFoundError) as exc:
            return _fail(str(exc))
    if args.format == "md":
        print(table.to_markdown(index=False) if _has_tabulate() else _markdown(table))
    else:
        sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    return 0


def _apply_cut(args, tmp: Path) -> None:
    """With --cut, cut the snapshot into ``tmp`` and point args at the cut copy."""
    if not args.cut:
        return
    from data_access.cut import cut_snapshot
    data, allocation = args.data, args.allocation
    src = tmp / "src"
    src.mkdir()
    (src / "clinical").symlink_to(_clinical_dir(data).resolve())
    if args.view == "unblinded" and allocation:
        (src / "allocation").symlink_to(Path(allocation).resolve())
    cut_snapshot(src, args.cut, tmp / "cut")
    args.data = str(tmp / "cut")
    if args.view == "unblinded" and allocation:
        args.allocation = str(tmp / "cut" / "allocation")


def _clinical_dir(data: str) -> Path:
    p = Path(data)
    return p / "clinical" if (p / "clinical").is_dir() else p


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


def _markdown(table) -> str:
    """A GitHub pipe table without the optional ``tabulate`` dependency."""
    cols = [str(c) for c in table.columns]
    rows = [["" if v is None or (isinstance(v, float) and v != v) else
             (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r]
            for r in table.itertuples(index=False)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def cmd_report(args) -> int:
    from reports.render import RenderError, ReportRefused, render_report
    to = tuple(t.strip() for t in args.to.split(",") if t.strip())
    try:
        paths = render_report(args.name, data_dir=args.data, allocation_dir=args.allocation, cut=args.cut,
                              mask_arms=args.mask_arms, out_dir=args.out, to=to, previous_cut=args.previous_cut,
                              progress=lambda msg: print(f"[{args.name}] {msg}", file=sys.stderr))
    except ReportRefused as exc:
        return _fail(f"report {args.name} refused: {exc}")
    except (ValueError, FileNotFoundError) as exc:
        return _fail(f"report {args.name}: {exc}")
    except RenderError as exc:
        return _fail(f"report {args.name} failed: {exc}", status=1)
    for p in paths:
        print(p)
    return 0


# --------------------------------------------------------------------------- serve
APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def serve_environment(args, environ=None) -> tuple[dict, str | None]:
    """(environment for the dashboard, refusal message or None) for ``mirocals serve``."""
    import os
    environ = dict(os.environ if environ is None else environ)
    data = args.data or environ.get("MIROCALS_DATA") or None
    allocation = args.allocation or environ.get("MIROCALS_ALLOCATION") or None
    env = {k: v for k, v in environ.items() if k not in ("MIROCALS_ALLOCATION", "MIROCALS_INSTANCE")}
    if args.blinded:
        if args.allocation:
            return env, ("--blinded refuses to start with an allocation (--allocation given): a blinded "
                         "instance must have no allocation reachable")
        if allocation:
            return env, ("--blinded refuses to start: MIROCALS_ALLOCATION is set in the environment "
                         f"({allocation}); unset it for the blinded instance")
        if not data:
            return env, ("--blinded refuses to start on the built-in demo: its allocation sits in "
                         "./demo_data/allocation. Point --data at a clinical-only snapshot (a copy of the "
                         "snapshot's clinical/ part with no allocation/ beside or under it)")
        path = Path(data)
        if not path.exists():
            return env, f"--data {data}: no such directory"
        from data_access.snapshot import find_allocations
        reachable = find_allocations(path)
        if reachable:
            return env, ("--blinded refuses to start: an allocation is readable from the data path ("
                         + ", ".join(str(p) for p in reachable[:3]) + "). Point --data at a clinical-only "
                         "snapshot (copy the clinical/ part to a folder with no allocation beside or under it)")
        env.update(MIROCALS_INSTANCE="blinded", MIROCALS_DATA=str(path.resolve()))
        return env, None
    # unblinded
    if not allocation:
        return env, "--unblinded needs the allocation (--allocation DIR or MIROCALS_ALLOCATION)"
    if not Path(allocation).exists():
        return env, f"--allocation {allocation}: no such directory"
    if not data:
        return env, "--unblinded needs the data (--data DIR or MIROCALS_DATA)"
    if not Path(data).exists():
        return env, f"--data {data}: no such directory"
    env.update(MIROCALS_INSTANCE="unblinded", MIROCALS_DATA=str(Path(data).resolve()),
               MIROCALS_ALLOCATION=str(Path(allocation).resolve()))
    return env, None


def serve_command(args) -> list[str]:
    """The ``streamlit run`` command line of ``mirocals serve``."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    if args.port:
        cmd += ["--server.port", str(args.port)]
    if args.address:
        cmd += ["--server.address", args.address]
    return cmd


def cmd_serve(args) -> int:
    import os
    env, refusal = serve_environment(args)
    if refusal:
        return _fail(refusal)
    cmd = serve_command(args)
    instance = env["MIROCALS_INSTANCE"]
    print(f"mirocals: starting the {instance} dashboard (data {env['MIROCALS_DATA']}"
          + (f", allocation {env['MIROCALS_ALLOCATION']}" if instance == "unblinded" else ", no allocation")
          + f"): {' '.join(cmd[2:])}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os.chdir(APP.parent.parent)                # .streamlit/config.toml of the project
    os.execve(sys.executable, cmd, env)        # the process becomes the server (signals reach it)
    return 0  # pragma: no cover


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from analysis.tables import TABLES
    p = argparse.ArgumentParser(prog="mirocals", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="write a simulated MIROCALS trial (snapshot + allocation)")
    d.add_argument("--out", required=True, help="snapshot root to write (clinical/ and allocation/)")
    d.add_argument("--seed", type=int, default=20170619)
    d.add_argument("--cut", type=_date, help="data cut-off date (default: study completion)")
    d.add_argument("--subjects", type=int, help="number randomised (default: about 220)")
    d.add_argument("--messy", action="store_true", help="plant realistic data problems")
    d.add_argument("--effect", default="published", choices=["published", "null", "strong"],
                   help="true treatment effect in the simulation")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("cut", help="make the snapshot as known at a date")
    c.add_argument("--src", required=True, help="snapshot root (clinical/ and optional allocation/)")
    c.add_argument("--date", required=True, type=_date)
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_cut)

    i = sub.add_parser("import", help="build a snapshot from an ADaM folder (XPT, SAS7BDAT, CSV, Parquet)")
    i.add_argument("--src", required=True, help="folder with adsl.xpt, adtte.xpt, ...")
    i.add_argument("--study", help="study config TOML mapping the trial's variables (default: MIROCALS)")
    i.add_argument("--out", required=True)
    i.set_defaults(func=cmd_import)

    e = sub.add_parser("export", help="write a snapshot back out as an ADaM delivery")
    e.add_argument("--data", required=True, help="snapshot root or clinical/ directory")
    e.add_argument("--allocation", help="allocation directory: arm variables are exported only with it")
    e.add_argument("--format", default="xpt", choices=["xpt", "csv", "parquet"])
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("validate", help="report data problems (exit 1 when there are errors)")
    v.add_argument("path", help="a snapshot's clinical/ directory (or the snapshot root)")
    v.add_argument("--allocation", help="allocation directory, to check it covers every subject")
    v.add_argument("--format", default="text", choices=["text", "csv", "md"])
    v.set_defaults(func=cmd_validate)

    t = sub.add_parser("table", help="print a named table as CSV or Markdown",
                       description="Tables: " + "; ".join(f"{k}: {s.description}" for k, s in TABLES.items()))
    t.add_argument("name", help="table name: " + ", ".join(TABLES))
    t.add_argument("--data", required=True, help="snapshot root or clinical/ directory")
    t.add_argument("--allocation", help="allocation directory (unblinded view only)")
    t.add_argument("--view", required=True, choices=["blinded", "unblinded"])
    t.add_argument("--cut", type=_date, help="cut the snapshot at this date first")
    t.add_argument("--times", type=_times, help="time points in days, e.g. 0,180,365,640")
    t.add_argument("--since", type=_date, help="the previous report's cut-off (table 'changes')")
    t.add_argument("--mask-arms", action="store_true", help="label arms Group A / Group B")
    t.add_argument("--format", default="csv", choices=["csv", "md"])
    t.set_defaults(func=cmd_table)

    r = sub.add_parser(
        "report", help="render a report (dsmb-open, dsmb-closed, manuscript)",
        description="Render a report into its own folder OUT/NAME/ (OUT/dsmb-open/, OUT/dsmb-closed/, "
                    "OUT/manuscript/), marked by a .mirocals-report.json file naming the report; a folder "
                    "holding another report's outputs is refused (exit 2). dsmb-open is pooled and never "
                    "opens an allocation. dsmb-closed needs --allocation given explicitly (an allocation "
                    "beside --data is never used). manuscript needs --allocation and database lock "
                    "recorded (MIROCALS_DATABASE_LOCKED=1). With --cut the snapshot is cut into a private "
                    "temporary folder, removed after the render.")
    r.add_argument("name", choices=["dsmb-open", "dsmb-closed", "manuscript"])
    r.add_argument("--data", required=True, help="snapshot root or clinical/ directory")
    r.add_argument("--allocation", help="allocation directory (dsmb-closed and manuscript; required there, "
                   "ignored by dsmb-open)")
    r.add_argument("--cut", type=_date, help="cut the snapshot at this date first (in a private temporary folder)")
    r.add_argument("--mask-arms", action="store_true", help="label arms Group A / Group B")
    r.add_argument("--previous-cut", type=_date, help="the previous report's data cut-off: the open report "
                   "then lists the changes since it")
    r.add_argument("--out", required=True, help="folder holding the report folders; this report writes OUT/NAME/")
    r.add_argument("--to", default="html,pdf", help="html, pdf or html,pdf")
    r.set_defaults(func=cmd_report)

    s = sub.add_parser(
        "serve", help="start one audience's dashboard (--blinded or --unblinded)",
        description="Start the dashboard for one audience (streamlit run dashboard/app.py) with "
                    "MIROCALS_INSTANCE, MIROCALS_DATA and MIROCALS_ALLOCATION set. --blinded signs in "
                    "blinded roles only and refuses to start (exit 2) when an allocation is configured "
                    "(--allocation, MIROCALS_ALLOCATION) or readable from the data path (an allocation/ "
                    "beside or under --data; no --data and no MIROCALS_DATA means the built-in demo, whose "
                    "allocation is in ./demo_data/allocation). --unblinded (dsmb, statistician; authors after "
                    "database lock) needs --data and --allocation. Production runs both behind an "
                    "authenticating reverse proxy.")
    aud = s.add_mutually_exclusive_group(required=True)
    aud.add_argument("--blinded", action="store_true", help="the blinded instance (no allocation reachable)")
    aud.add_argument("--unblinded", action="store_true", help="the unblinded instance (needs --allocation)")
    s.add_argument("--data", help="snapshot root or folder of snapshots (default: env MIROCALS_DATA)")
    s.add_argument("--allocation", help="allocation directory (--unblinded only; default: env MIROCALS_ALLOCATION)")
    s.add_argument("--port", type=int, help="port to listen on (default: Streamlit's, 8501)")
    s.add_argument("--address", help="address to bind (default: Streamlit's)")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
