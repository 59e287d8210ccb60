"""mirocals: simulate, import, validate, tabulate, report on and serve the MIROCALS trial monitor.

One function per subcommand (``cmd_demo``, ``cmd_cut``, ``cmd_import``, ``cmd_export``,
``cmd_validate``, ``cmd_table``, ``cmd_report``, ``cmd_serve``), registered with ``@subcommand``
(``mirocals.registry``): the function's name gives the subcommand, its docstring the ``--help``
text, the decorator's arguments its options. ``build_parser`` builds the parser from the
registry; tests/test_docs.py checks that the README documents every subcommand and option of it.

Exit status: 0 success, 1 validation errors found (``validate``; a report that failed to render),
2 usage / blinding / data errors (a clear message on stderr).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

from mirocals.registry import SUBCOMMANDS, OneOf, arg, one_of, subcommand

__all__ = ["build_parser", "main"]


# --------------------------------------------------------------------------- argument types
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


def _targets(text: str) -> list[int]:
    try:
        targets = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        targets = []
    if not targets or min(targets) < 1:
        raise argparse.ArgumentTypeError(f"--target wants positive whole numbers separated by commas: {text!r}")
    return targets


def _fail(message: str, status: int = 2) -> int:
    print(f"mirocals: {message}", file=sys.stderr)
    return status


DATA = arg("--data", metavar="DIR", required=True, help="snapshot root or clinical/ directory")
MASK_ARMS = arg("--mask-arms", action="store_true", help="label arms Group A / Group B")


# --------------------------------------------------------------------------- commands
@subcommand(
    arg("--out", metavar="DIR", required=True, help="snapshot root to write (clinical/ and allocation/)"),
    arg("--seed", metavar="N", type=int, default=20170619, help="random seed (default: 20170619)"),
    arg("--cut", metavar="DATE", type=_date, help="data cut-off date (default: study completion)"),
    arg("--subjects", metavar="N", type=int, help="number randomised (default: about 220)"),
    arg("--messy", action="store_true", help="plant realistic data problems (listed in OUT/planted_problems.json)"),
    arg("--effect", default="published", choices=["published", "null", "strong"],
        help="true treatment effect in the simulation (default: published)"),
)
def cmd_demo(args) -> int:
    """write a simulated MIROCALS trial (snapshot + allocation)

    Write a simulated MIROCALS trial for a seed and cut date: OUT/clinical/ (the blinded
    snapshot) and OUT/allocation/ (the randomisation)."""
    from data_access.demo import make_demo
    clinical, allocation = make_demo(args.out, seed=args.seed, cut=args.cut, n_subjects=args.subjects,
                                     messy=args.messy, effect=args.effect)
    print(f"clinical snapshot:  {clinical}\nallocation:         {allocation}")
    return 0


@subcommand(
    arg("--src", metavar="DIR", required=True, help="snapshot root (clinical/ and optional allocation/)"),
    arg("--date", metavar="DATE", required=True, type=_date, help="the cut-off date (YYYY-MM-DD)"),
    arg("--out", metavar="DIR", required=True, help="snapshot root to write"),
)
def cmd_cut(args) -> int:
    """make the snapshot as known at a date"""
    from data_access.cut import cut_snapshot
    cut_snapshot(args.src, args.date, args.out)
    print(f"snapshot cut at {args.date} written to {args.out}")
    return 0


@subcommand(
    arg("--src", metavar="DIR", required=True, help="folder with adsl.xpt, adtte.xpt, ..."),
    arg("--study", metavar="TOML", help="study config TOML mapping the trial's variables (default: MIROCALS)"),
    arg("--out", metavar="DIR", required=True, help="snapshot root to write (clinical/ and allocation/)"),
)
def cmd_import(args) -> int:
    """build a snapshot from an ADaM folder (XPT, SAS7BDAT, CSV, Parquet)"""
    from data_access.adam import import_adam
    try:
        out = import_adam(args.src, args.study, args.out)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(f"snapshot written to {out} (clinical/ and allocation/)")
    return 0


@subcommand(
    DATA,
    arg("--allocation", metavar="DIR", help="allocation directory: arm variables are exported only with it"),
    arg("--format", default="xpt", choices=["xpt", "csv", "parquet"], help="file format (default: xpt)"),
    arg("--out", metavar="DIR", required=True, help="folder to write the ADaM datasets into"),
)
def cmd_export(args) -> int:
    """write a snapshot back out as an ADaM delivery"""
    from data_access.adam import export_adam
    paths = export_adam(args.data, args.out, fmt=args.format, allocation_dir=args.allocation)
    for p in paths:
        print(p)
    return 0


@subcommand(
    arg("path", metavar="PATH", help="a snapshot's clinical/ directory (or the snapshot root)"),
    arg("--allocation", metavar="DIR", help="allocation directory: validate everything, unblinded (arm-revealing lab "
        "parameters and AE terms included), and check the allocation covers every subject. Without it "
        "the snapshot is validated through the blinded view"),
    arg("--format", default="text", choices=["text", "csv", "md"], help="output format (default: text)"),
)
def cmd_validate(args) -> int:
    """report data problems (exit 1 when there are errors)

    Report data problems, one line each; exit status 1 when there is an error. Without
    --allocation the snapshot is validated through its blinded view: arm-revealing lab
    parameters (Tregs, eosinophils) and AE terms are withheld, so neither the checks nor the
    messages see them (what a blinded data manager may run). With --allocation every file is
    validated, unblinded, and the allocation is checked too."""
    from data_access.study import load_snapshot_study
    from data_access.validate import format_problems, has_errors, validate_blinded, validate_snapshot
    path = Path(args.path)
    if not path.exists():
        return _fail(f"{path}: no such directory")
    if (path / "clinical").is_dir():
        path = path / "clinical"
    if args.allocation:
        problems = validate_snapshot(path, study=load_snapshot_study(path), allocation_dir=args.allocation)
        scope = "unblinded: every file and the allocation"
    else:
        problems = validate_blinded(path)
        scope = "blinded view: arm-revealing parameters and AE terms withheld; --allocation validates everything"
    print(format_problems(problems, fmt=args.format))
    n_err = int((problems["severity"] == "error").sum()) if len(problems) else 0
    print(f"{n_err} error(s), {len(problems) - n_err} warning(s) in {path} ({scope})", file=sys.stderr)
    return 1 if has_errors(problems) else 0


def _table_names() -> str:
    from analysis.outputs import OUTPUTS
    return "Tables: " + "; ".join(f"{k}: {s.description}" for k, s in OUTPUTS.items())


@subcommand(
    arg("name", metavar="NAME", help="table name (listed below)"),
    DATA,
    arg("--allocation", metavar="DIR", help="allocation directory (unblinded view only)"),
    arg("--view", required=True, choices=["blinded", "unblinded"], help="the view to read the data through"),
    arg("--cut", metavar="DATE", type=_date, help="cut the snapshot at this date first"),
    arg("--times", metavar="DAYS", type=_times, help="time points in days, e.g. 0,180,365,640"),
    arg("--since", metavar="DATE", type=_date, help="the previous report's cut-off (table 'changes')"),
    arg("--target", metavar="N[,M...]", type=_targets,
        help="the numbers a forecast projects to, one row each (table 'projection': participants "
             "randomised; 'event-projection': deaths); default: the study's planned numbers"),
    MASK_ARMS,
    arg("--format", default="csv", choices=["csv", "md"], help="CSV or Markdown (default: csv)"),
    arg("--display", action="store_true",
        help="the display table people read (labels, estimate (95%% CI), p, %%, not reached) instead of "
             "the machine table (raw columns, for QC double programming)"),
    more_description=_table_names,
)
def cmd_table(args) -> int:
    """print a named table as CSV or Markdown

    Print a named table for a view (blinded: pooled; unblinded: by arm, needs --allocation) and
    an optional cut. A table a view may not see, or whose data were not delivered, is refused
    with a message (exit 2). With --display, the display table (``analysis.outputs.display_table``, as
    the dashboard and the reports show it; with --format md its title and footnotes follow it);
    without, the machine table."""
    from analysis.outputs import OUTPUTS, TableUnavailable, build_table
    from data_access.view_base import BlindingError, DatasetUnreadable
    if args.name not in OUTPUTS:
        return _fail(f"unknown table {args.name!r}; tables: {', '.join(OUTPUTS)}")
    role = "steering" if args.view == "blinded" else "statistician"
    with tempfile.TemporaryDirectory(prefix="mirocals-cut-") as tmp:
        try:
            _apply_cut(args, Path(tmp))
            view = _open(args, role)
            table = build_table(args.name, view, times=args.times, since=args.since, targets=args.target)
            notes = []
            if args.display:          # the display table and footnotes the dashboard and reports show
                from analysis.outputs import display_table, footnotes
                table, notes = display_table(args.name, table, view), footnotes(args.name, view, title=True)
        except (BlindingError, TableUnavailable, DatasetUnreadable) as exc:
            return _fail(str(exc))
        except (ValueError, FileNotFoundError) as exc:
            return _fail(str(exc))
    if not view.blinded:            # every unblinded output is audited before it is shown
        from data_access.audit import AuditWriteError, log_cli
        try:
            log_cli("table", args.name, role="statistician", snapshot_hash=view.snapshot_hash,
                    cut=view.cut_date, detail="unblinded" + (", arms masked" if args.mask_arms else ""))
        except AuditWriteError as exc:
            return _fail(f"the audit entry could not be written, nothing printed: {exc}")
    if args.format == "md":
        print(table.to_markdown(index=False) if _has_tabulate() else _markdown(table))
        if notes:
            print("\n" + "\n".join(notes))
    else:
        sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    return 0


def _open(args, role: str):
    from data_access.views import open_view
    if args.view == "blinded":
        # a blinded view is opened without any allocation path, even when one was given
        return open_view(args.data, role)
    if not args.allocation:
        raise ValueError("an unblinded view needs --allocation DIR")
    return open_view(args.data, role, allocation_dir=args.allocation, mask_arms=args.mask_arms)


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


@subcommand(
    arg("subject", metavar="SUBJECT", help="the participant's USUBJID, e.g. MIR-FR01-0001"),
    DATA,
    arg("--allocation", metavar="DIR", help="allocation directory (unblinded view only)"),
    arg("--view", default="blinded", choices=["blinded", "unblinded"],
        help="the view to read the data through (default: blinded: no arm, no Treg)"),
    arg("--cut", metavar="DATE", type=_date, help="cut the snapshot at this date first"),
    MASK_ARMS,
    arg("--format", default="md", choices=["md", "csv"], help="Markdown (default) or the timeline as CSV"),
)
def cmd_profile(args) -> int:
    """print one participant's whole course

    One participant's timeline (``analysis.outputs.profile``, as the dashboard's Participant page
    shows it): randomisation, treatment cycles, visits done and missed, ALSFRS-R total and domains,
    respiratory function, laboratory values, adverse events, concomitant care, protocol deviations,
    death or last known alive. Blinded (default): no arm and no arm-revealing parameter or
    adverse-event term; unblinded (needs --allocation) adds the arm and every laboratory parameter and
    is audited. A subject not in the snapshot is refused with a message (exit 2)."""
    from analysis.outputs.profile import SubjectNotFound, build_profile, profile_markdown
    from data_access.view_base import BlindingError, DatasetUnreadable
    role = "steering" if args.view == "blinded" else "statistician"
    with tempfile.TemporaryDirectory(prefix="mirocals-cut-") as tmp:
        try:
            _apply_cut(args, Path(tmp))
            view = _open(args, role)
            profile = build_profile(view, args.subject)
            text = (profile_markdown(profile, view) if args.format == "md" else
                    profile.timeline.to_csv(index=False, lineterminator="\n", date_format="%Y-%m-%d"))
        except (SubjectNotFound, BlindingError, DatasetUnreadable, ValueError, FileNotFoundError) as exc:
            return _fail(str(exc))
    if not view.blinded:
        from data_access.audit import AuditWriteError, log_cli
        try:
            log_cli("profile", args.subject, role="statistician", snapshot_hash=view.snapshot_hash,
                    cut=view.cut_date, detail="unblinded" + (", arms masked" if args.mask_arms else ""))
        except AuditWriteError as exc:
            return _fail(f"the audit entry could not be written, nothing printed: {exc}")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


@subcommand(
    arg("name", choices=["dsmb-open", "dsmb-closed", "manuscript"], help="the report"),
    DATA,
    arg("--allocation", metavar="DIR", help="allocation directory (dsmb-closed and manuscript; required there, "
        "ignored by dsmb-open)"),
    arg("--cut", metavar="DATE", type=_date,
        help="cut the snapshot at this date first (in a private temporary folder)"),
    MASK_ARMS,
    arg("--previous-cut", metavar="DATE", type=_date, help="the previous report's data cut-off: the open report "
        "then lists the changes since it"),
    arg("--out", metavar="DIR", required=True, help="folder holding the report folders; this report writes OUT/NAME/"),
    arg("--to", metavar="FORMATS", default="html,pdf",
        help="comma-separated, any of html, pdf, docx (default: html,pdf)"),
    arg("--keep-intermediates", action="store_true",
        help="also keep the intermediate files (Markdown, Typst, .meta.json) in OUT/NAME/ (default: they are "
             "written to a private temporary folder and removed)"),
)
def cmd_report(args) -> int:
    """render a report (dsmb-open, dsmb-closed, manuscript)

    Render a report into its own folder OUT/NAME/ (OUT/dsmb-open/, OUT/dsmb-closed/,
    OUT/manuscript/), marked by a .mirocals-report.json file naming the report; a folder holding
    another report's outputs is refused (exit 2). dsmb-open is pooled and never opens an
    allocation. dsmb-closed needs --allocation given explicitly (an allocation beside --data is
    never used). manuscript needs --allocation and database lock recorded
    (MIROCALS_DATABASE_LOCKED=1). With --cut the snapshot is cut into a private temporary
    folder, removed after the render. OUT/NAME/ holds only the documents asked for (--to html,
    pdf, docx: Word with native tables, through reports/reference.docx), figures/ and tables/
    (and the marker), unless --keep-intermediates. A render that fails exits 1."""
    from reports.notebook import RenderError
    from reports.render import FORMATS, ReportRefused, render_report
    to = tuple(dict.fromkeys(t.strip().lower() for t in args.to.split(",") if t.strip()))
    bad = [t for t in to if t not in FORMATS]
    if bad or not to:
        return _fail(f"report {args.name}: --to {args.to!r}: each format must be one of {', '.join(FORMATS)}")
    try:
        paths = render_report(args.name, data_dir=args.data, allocation_dir=args.allocation, cut=args.cut,
                              mask_arms=args.mask_arms, out_dir=args.out, to=to, previous_cut=args.previous_cut,
                              keep_intermediates=args.keep_intermediates,
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


@subcommand(
    arg("--log", metavar="FILE", help="the audit log (default: env MIROCALS_AUDIT_LOG or audit/audit.log)"),
    arg("--dsn", metavar="DSN", help="the PostgreSQL audit store instead (default: env MIROCALS_AUDIT_DSN "
        "when set; put the password in ~/.pgpass or PGPASSWORD, not here)"),
    arg("--head", metavar="SHA256", help="the last entry's hash noted earlier (detects entries cut off the end)"),
    name="audit verify",
)
def cmd_audit_verify(args) -> int:
    """check the audit log's hash chain (exit 1 at the first broken entry)

    Check that no entry of the audit log was edited, removed, inserted or reordered: each entry
    holds the SHA-256 of the line before it. Exit status 0 when the chain is intact, 1 at the
    first broken entry (named by its line number, or by its row's seq in the PostgreSQL store),
    2 when the store cannot be read. Entries cut off the end are detected only against a hash
    noted earlier (--head). With MIROCALS_AUDIT_DSN set (or --dsn), the PostgreSQL table is checked."""
    import os
    from data_access.audit import verify_command
    if args.dsn:
        if args.log:
            return _fail("give --log (the file) or --dsn (the PostgreSQL store), not both")
        os.environ["MIROCALS_AUDIT_DSN"] = args.dsn
    return verify_command(args.log, args.head)


@subcommand(
    arg("--dsn", metavar="DSN", required=True,
        help="an administrator's connection to the audit database (e.g. 'host=H dbname=mirocals_audit user=postgres')"),
    name="audit init-db",
)
def cmd_audit_init_db(args) -> int:
    """create the PostgreSQL audit table and its roles (data_access/audit_pg.sql)

    Run data_access/audit_pg.sql on the database --dsn names, as an administrator: the table
    audit_log, the roles mirocals_audit_owner (owns it, cannot log in) and mirocals_audit_app
    (INSERT and SELECT only; give it a password, then set MIROCALS_AUDIT_DSN to connect as it),
    and triggers refusing UPDATE, DELETE and TRUNCATE. Running it again changes nothing."""
    from data_access import audit_pg
    try:
        audit_pg.init_db(args.dsn)
    except Exception as exc:                     # psycopg.Error: the server's message, never the DSN
        return _fail(f"{audit_pg.describe(args.dsn)}: cannot be set up: {audit_pg._clean(args.dsn, exc)}")
    print(f"{audit_pg.describe(args.dsn)}: ready; the app connects as mirocals_audit_app (INSERT and SELECT only)")
    return 0


@subcommand(
    one_of(arg("--blinded", action="store_true", help="the blinded instance (no allocation reachable)"),
           arg("--unblinded", action="store_true", help="the unblinded instance (needs --allocation)")),
    arg("--data", metavar="DIR", help="snapshot root or folder of snapshots (default: env MIROCALS_DATA)"),
    arg("--allocation", metavar="DIR",
        help="allocation directory (--unblinded only; default: env MIROCALS_ALLOCATION)"),
    arg("--port", metavar="N", type=int, help="port to listen on (default: Streamlit's, 8501)"),
    arg("--address", metavar="HOST", help="address to bind (default: Streamlit's)"),
)
def cmd_serve(args) -> int:
    """start one audience's dashboard (--blinded or --unblinded)

    Start the dashboard for one audience (streamlit run dashboard/app.py) with
    MIROCALS_INSTANCE, MIROCALS_DATA and MIROCALS_ALLOCATION set. --blinded signs in blinded
    roles only and refuses to start (exit 2) when an allocation is configured (--allocation,
    MIROCALS_ALLOCATION) or readable from the data path (an allocation/ beside or under --data;
    no --data and no MIROCALS_DATA means the built-in demo, whose allocation is in
    ./demo_data/allocation). --unblinded (dsmb, statistician; authors after database lock)
    needs --data and --allocation. Production runs both behind an authenticating reverse proxy."""
    import os
    from mirocals.serve import APP, serve_command, serve_environment
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
    """The ``mirocals`` parser: one subparser per registered subcommand."""
    p = argparse.ArgumentParser(prog="mirocals", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in SUBCOMMANDS.values():
        parent, leaf = sub, command.name
        if " " in command.name:                      # "audit verify": mirocals audit -> verify
            group, leaf = command.name.split(" ", 1)
            if group not in groups:
                g = sub.add_parser(group, help=f"{group} commands ({group} --help lists them)")
                groups[group] = g.add_subparsers(dest=f"{group}_command", required=True, metavar="COMMAND")
            parent = groups[group]
        s = parent.add_parser(leaf, help=command.help, description=command.description)
        for a in command.arguments:
            if isinstance(a, OneOf):
                group = s.add_mutually_exclusive_group(required=True)
                for member in a.args:
                    group.add_argument(*member.flags, **member.options)
            else:
                s.add_argument(*a.flags, **a.options)
        s.set_defaults(func=command.func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
