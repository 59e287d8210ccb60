"""Keyed caches of the dashboard's outputs: named tables, their display tables and footnotes,
figures, the cell counts of a filter and the snapshot's validation problems.

Blinding and caches: ``st.cache_data``/``st.cache_resource`` values are shared by every session
of the server, so every cached function here takes the view kind (``blinded``/``unblinded``), the
role class, the snapshot hash, the filters and the view's own arguments, and rebuilds its view
from them (``dashboard.snapshots.get_view``). Every output getter (table, display, figure,
validation) checks the minimum cell size of a blinded filter (``check_cell_size``) before it looks
up a cached output; ``cell_counts`` is the counts path, answered whatever the cell size.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard.cell_size import FilteredView, SmallCellError
from dashboard.context import Context, Filters, Snapshot
from dashboard.snapshots import get_view, load_study_config


# The role a cached output is built with: one per view kind. A view's data depend on its kind
# (blinded or unblinded), the snapshot, the allocation and the masking, never on which role of that
# kind asked (``data_access.views``: the role names only appear in messages), so the blinded roles
# (steering, investigator, author before lock) share one set of cached outputs and the unblinded
# roles (dsmb, statistician, author after lock) another; the kinds never share (``view_kind`` is
# in every key). The warm-up then builds each output once per kind, not once per role.
CACHE_ROLE = {"blinded": "steering", "unblinded": "dsmb"}


def _view_args(ctx: Context) -> tuple:
    s = ctx.snapshot
    return (CACHE_ROLE[ctx.view_kind], s.clinical_dir, s.allocation_dir if ctx.unblinded else None, ctx.mask_arms)


def _key(ctx: Context) -> dict:
    """The cache-key arguments of a context, by name: view kind, role class, snapshot hash,
    filters and the view's own arguments. The cached functions are called with keyword arguments
    (the same cache key as positional ones): a positional argument costs Streamlit an
    ``inspect.signature`` of the function on every lookup, a large part of a warm rerun."""
    return {"view_kind": ctx.view_kind, "role_class": ctx.role_class, "snapshot_hash": ctx.snapshot.snapshot_hash,
            "filters_key": ctx.filters.key(), "view_args": _view_args(ctx)}


def _context_from(view_kind, role_class, snapshot_hash, filters_key, view_args) -> Context:
    role, clinical_dir, allocation_dir, mask = view_args
    snap = Snapshot("", clinical_dir, allocation_dir, snapshot_hash, "")
    return Context("", role, view_kind, snap, Filters(*filters_key), mask)


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_counts(view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                   view_args: tuple) -> dict:
    view = get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args))
    if isinstance(view, FilteredView):
        return view.counts()
    screened = len(view.table("screening", columns=["SCRNID"])) if "screening" in view.datasets else None
    return {"randomised": len(view.table("adsl", columns=["USUBJID"])), "screened": screened, "reason": None}


def cell_counts(ctx: Context) -> dict:
    """The counts path: ``{"randomised", "screened", "reason"}`` for the context's filter, answered
    whatever the cell size (``reason``: why blinded outputs are withheld, None when they are not;
    always None for an unblinded context or an unfiltered view)."""
    return _cached_counts(**_key(ctx))


def check_cell_size(ctx: Context) -> None:
    """Raise ``SmallCellError`` when the context is blinded and its filter is below the minimum
    cell size (before any cached output is looked up; the view enforces it again)."""
    if ctx.unblinded or not ctx.filters.active:
        return
    counts = cell_counts(ctx)
    if counts["reason"]:
        raise SmallCellError(counts["reason"], counts["randomised"], counts["screened"])


@dataclass(frozen=True)
class _Unavailable:
    """A ``TableUnavailable`` answer, cached like an output (an exception is not cached, so an
    output the snapshot lacks was otherwise rebuilt on every rerun that asked for it)."""
    message: str


def _or_unavailable(build):
    from analysis.outputs import TableUnavailable
    try:
        return build()
    except TableUnavailable as exc:
        return _Unavailable(str(exc))


def _raise_unavailable(value):
    if isinstance(value, _Unavailable):
        from analysis.outputs import TableUnavailable
        raise TableUnavailable(value.message)
    return value


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_table(name: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                  view_args: tuple, times: tuple | None = None, since: str | None = None) -> pd.DataFrame:
    from analysis.outputs import build_table
    view = get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args))
    return _or_unavailable(lambda: build_table(name, view, times=list(times) if times else None, since=since))


def table_unavailable(ctx: Context, name: str) -> str | None:
    """Why the named table cannot be built for this snapshot (``TableUnavailable``), or None."""
    from analysis.outputs import TableUnavailable, check_available
    try:
        check_available(name, get_view(ctx))
    except TableUnavailable as exc:
        return str(exc)
    return None


def get_table(ctx: Context, name: str, times=None, since=None) -> pd.DataFrame:
    """A named table (``analysis.outputs.build_table``) for the context, cached per snapshot hash,
    view kind, role, filters and arguments (``since``: ISO date, for ``changes``). Raises
    ``SmallCellError`` for a blinded filter below the minimum cell size."""
    check_cell_size(ctx)
    return _raise_unavailable(_cached_table(name=name, **_key(ctx), times=tuple(times) if times else None,
                                            since=str(since) if since else None))


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_display(name: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                    view_args: tuple, times: tuple | None = None, since: str | None = None):
    from analysis.outputs import display_table, footnotes
    machine = _cached_table(name, view_kind, role_class, snapshot_hash, filters_key, view_args, times, since)
    if isinstance(machine, _Unavailable):
        return machine
    view = get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args))
    return display_table(name, machine, view), footnotes(name, view)


def get_display(ctx: Context, name: str, times=None, since=None) -> tuple[pd.DataFrame, list[str]]:
    """The display table and footnotes of output ``name`` (``analysis.outputs.display_table`` and
    ``footnotes``: the same the reports and ``mirocals table --display`` show), cached like
    ``get_table``. Raises ``SmallCellError`` for a blinded filter below the minimum cell size."""
    check_cell_size(ctx)
    return _raise_unavailable(_cached_display(name=name, **_key(ctx), times=tuple(times) if times else None,
                                              since=str(since) if since else None))


@st.cache_resource(max_entries=256, show_spinner=False)
def _cached_figure(name: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                   view_args: tuple):
    from analysis.outputs import build_figure
    view = get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args))
    return _or_unavailable(lambda: build_figure(name, view))


def get_figure(ctx: Context, name: str):
    """Figure ``name`` (``analysis.outputs.build_figure``, with the on-screen subtitle) once per
    snapshot hash, view kind, role and filters; shared read-only (do not mutate it). Raises
    ``SmallCellError`` for a blinded filter below the minimum cell size."""
    check_cell_size(ctx)
    return _raise_unavailable(_cached_figure(name=name, **_key(ctx)))


@st.cache_data(max_entries=16, show_spinner="Validating the snapshot...")
def _cached_validation(view_kind: str, role_class: str, snapshot_hash: str, clinical_dir: str,
                       allocation_dir: str | None) -> pd.DataFrame:
    from data_access.validate import validate_blinded, validate_snapshot
    if view_kind == "blinded":
        # the blinded path never names an allocation and validates through the blinded view: no
        # withheld row or column (Treg, eosinophil, arm-revealing AE) reaches a check or a message
        return validate_blinded(clinical_dir, study=load_study_config(clinical_dir))
    return validate_snapshot(clinical_dir, study=load_study_config(clinical_dir), allocation_dir=allocation_dir)


def get_validation(ctx: Context) -> pd.DataFrame:
    """Validation problems of the context's snapshot (with allocation checks when unblinded).
    The problems name subjects, so a blinded filter below the minimum cell size gets
    ``SmallCellError``."""
    check_cell_size(ctx)
    s = ctx.snapshot
    return _cached_validation(view_kind=ctx.view_kind, role_class=ctx.role_class, snapshot_hash=s.snapshot_hash,
                              clinical_dir=s.clinical_dir, allocation_dir=s.allocation_dir if ctx.unblinded else None)


@st.cache_data(max_entries=16, show_spinner=False)
def _cached_validation_tables(view_kind: str, role_class: str, snapshot_hash: str, clinical_dir: str,
                              allocation_dir: str | None) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    from data_access.rule_text import rule_text
    from data_access.validate import describe_problems, summarize_problems_by_rule
    problems = _cached_validation(view_kind=view_kind, role_class=role_class, snapshot_hash=snapshot_hash,
                                  clinical_dir=clinical_dir, allocation_dir=allocation_dir)
    by_rule = summarize_problems_by_rule(problems)
    shown = by_rule.assign(rule=by_rule["rule"].map(rule_text)).rename(
        columns={"rule": "Rule", "errors": "Errors", "warnings": "Warnings", "subjects": "Subjects concerned"})
    return {"validation-by-rule": (by_rule, shown), "validation-problems": (problems, describe_problems(problems))}


def get_validation_tables(ctx: Context) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The validation problems as the data-quality page shows them, each as (machine table, display
    table): ``validation-by-rule`` (one row per rule: errors, warnings, subjects concerned; most
    first; the rule in words on screen) and ``validation-problems`` (every problem: site, subject,
    dataset, column, rule, value, message, severity; ``data_access.validate.describe_problems`` on
    screen, row for row). The late-entry records are among the problems (rule "Entered late"), not
    a second table. Cached with ``get_validation`` so a rerun does not format them again;
    ``SmallCellError`` likewise."""
    check_cell_size(ctx)
    s = ctx.snapshot
    return _cached_validation_tables(view_kind=ctx.view_kind, role_class=ctx.role_class,
                                     snapshot_hash=s.snapshot_hash, clinical_dir=s.clinical_dir,
                                     allocation_dir=s.allocation_dir if ctx.unblinded else None)


# --------------------------------------------------------------------------- start-up warm-up
# output modules (``analysis.outputs.<module>``) in the order of the pages that show them: the
# first page a role opens after signing in (Recruitment) is warmed first
PAGE_ORDER = ("recruitment", "projections", "baseline", "functional", "survival", "decision", "events", "safety",
              "care", "conduct")
WARM_USER = "start-up warm-up"
CHANGES_DAYS = 91        # dashboard/app_pages/recruitment.py: "changes since" defaults to the cut minus 91 days


def warm_up_contexts() -> list[Context]:
    """The contexts the start-up warm-up builds: one per view kind among the roles this instance
    signs in (the roles of a kind share cached outputs, ``CACHE_ROLE``), on the
    snapshot a page shows first, unfiltered, arms not masked. Never crosses views: nothing when
    the instance refuses to serve (``instance.startup_problems``); on a blinded or demo instance
    only blinded contexts, built from a snapshot with no allocation at all; unblinded contexts only
    on an unblinded instance (which signs in no blinded role)."""
    from dataclasses import replace
    from dashboard import instance
    from dashboard.snapshots import discover_snapshots, load_data_settings, view_kind_for
    if instance.startup_problems():
        return []
    kind = instance.instance_kind()
    root, allocation = load_data_settings()
    found = discover_snapshots(str(root), allocation)
    if not found:
        return []
    snapshot = found[0]                  # the one ``widgets.page_setup`` shows unless another is picked
    if kind != "unblinded":              # blinded and demo instances: blinded views only, no allocation path
        snapshot = replace(snapshot, allocation_dir=None)
    contexts, kinds = [], set()
    from dashboard.auth import is_unblinded_role
    for role in instance.allowed_roles():
        if kind != "unblinded" and is_unblinded_role(role):    # the demo's DSMB: its pages are unblinded
            continue
        view_kind = view_kind_for(role, snapshot)
        if view_kind != ("unblinded" if kind == "unblinded" else "blinded") or view_kind in kinds:
            continue                     # one context per view kind: the roles of a kind share outputs
        kinds.add(view_kind)
        contexts.append(Context(WARM_USER, role, view_kind, snapshot))
    return contexts


def _module_of(output) -> str:
    return getattr(output.build, "__module__", "").rsplit(".", 1)[-1]


def warm_up_plan(contexts: list[Context]) -> list[tuple[Context, str, str]]:
    """``(context, "table" | "figure" | "validation", name)`` in the order the warm-up builds them:
    the first page (Recruitment) of every role, then the first role's other pages in page order
    (``PAGE_ORDER``), then the next role's, and so on. By-arm-only outputs for unblinded contexts
    only."""
    from analysis.outputs import FIGURES, OUTPUTS
    rank = {m: i for i, m in enumerate(PAGE_ORDER)}
    items = []
    for ci, ctx in enumerate(contexts):
        for kind, registry in (("table", OUTPUTS), ("figure", FIGURES)):
            for name, spec in registry.items():
                if spec.by_arm_only and not ctx.unblinded:
                    continue
                page = rank.get(_module_of(spec), len(PAGE_ORDER))
                items.append((page > 1, ci, page, kind == "figure", ctx, kind, name))
        items.append((True, ci, rank["conduct"], True, ctx, "validation", "validation"))
    items.sort(key=lambda item: item[:4])
    return [(ctx, kind, name) for *_, ctx, kind, name in items]


def warm_up(contexts: list[Context] | None = None, log=None) -> list[tuple[Context, str, str]]:
    """Build (and so cache) every output of every page for ``contexts`` (default:
    ``warm_up_contexts()``): display tables and footnotes, figures, the validation tables. An
    output that fails is skipped (its page says why when it is opened). Returns what was built."""
    from analysis.outputs import TableUnavailable
    from data_access.view_base import BlindingError
    contexts = warm_up_contexts() if contexts is None else contexts
    built = []
    for ctx, kind, name in warm_up_plan(contexts):
        try:
            if kind == "table" and name == "changes":      # the Recruitment page's default: 91 days before the cut
                import datetime as dt
                get_display(ctx, name, since=dt.date.fromisoformat(str(ctx.snapshot.cut_date)[:10])
                            - dt.timedelta(days=CHANGES_DAYS))
            elif kind == "table":
                get_display(ctx, name)
            elif kind == "figure":
                get_figure(ctx, name)
            else:
                get_validation_tables(ctx)
        except (TableUnavailable, BlindingError):     # not for this snapshot, or by arm only
            continue
        except Exception as exc:  # noqa: BLE001 - the page reports it; the warm-up goes on
            if log:               # the type only: a message could quote data
                log(f"warm-up: {kind} {name} for {ctx.role} skipped ({type(exc).__name__})")
            continue
        built.append((ctx, kind, name))
    return built


_WARM_STARTED = False
_WARM_LOCK = __import__("threading").Lock()


def start_warm_up(wait_for_runtime: bool = True) -> bool:
    """Start the warm-up on a daemon thread, once per process (False when it was started already
    or ``MIROCALS_WARMUP=0``). It waits for Streamlit's runtime to be started (so the server's own
    start is not slowed, and it fills the caches the sessions read), starts the persistent figure-export browser, builds ``warm_up_contexts()`` and prints
    ``warm-up finished in S s`` to the server log."""
    import os
    import sys
    import threading
    import time
    global _WARM_STARTED
    if os.environ.get("MIROCALS_WARMUP", "1").strip() in ("0", "false", "no"):
        return False
    with _WARM_LOCK:
        if _WARM_STARTED:
            return False
        _WARM_STARTED = True

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def run() -> None:
        start = time.perf_counter()
        try:
            if wait_for_runtime:
                from streamlit.runtime import Runtime, RuntimeState
                # until the server is up (its runtime started): the start-up itself is not slowed
                while time.perf_counter() - start < 120 and not (
                        Runtime.exists() and Runtime.instance().state not in (RuntimeState.INITIAL,)):
                    time.sleep(0.1)
                if not Runtime.exists():
                    log("warm-up: no Streamlit runtime after 120 s; warming the process's caches anyway")
            contexts = warm_up_contexts()
            if not contexts:
                log("warm-up skipped: nothing this instance may serve")
                return
            from dashboard import figure_export
            figure_export.start_in_background()
            built = warm_up(contexts, log=log)
            log(f"warm-up finished in {time.perf_counter() - start:.1f} s: {len(built)} outputs for "
                + ", ".join(f"{c.role} ({c.view_kind})" for c in contexts))
        except Exception as exc:  # noqa: BLE001 - a failed warm-up only means cold first visits
            log(f"warm-up failed ({type(exc).__name__}) after {time.perf_counter() - start:.1f} s")

    threading.Thread(target=run, name="mirocals-warm-up", daemon=True).start()
    return True
