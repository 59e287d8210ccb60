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

import pandas as pd
import streamlit as st

from dashboard.cell_size import FilteredView, SmallCellError
from dashboard.context import Context, Filters, Snapshot
from dashboard.snapshots import get_view, load_study_config


def _view_args(ctx: Context) -> tuple:
    s = ctx.snapshot
    return (ctx.role, s.clinical_dir, s.allocation_dir if ctx.unblinded else None, ctx.mask_arms)


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


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_table(name: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                  view_args: tuple, times: tuple | None = None, since: str | None = None) -> pd.DataFrame:
    from analysis.outputs import build_table
    view = get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args))
    return build_table(name, view, times=list(times) if times else None, since=since)


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
    return _cached_table(name=name, **_key(ctx), times=tuple(times) if times else None,
                         since=str(since) if since else None)


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_display(name: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                    view_args: tuple, times: tuple | None = None, since: str | None = None):
    from analysis.outputs import display_table, footnotes
    machine = _cached_table(name, view_kind, role_class, snapshot_hash, filters_key, view_args, times, since)
    view = get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args))
    return display_table(name, machine, view), footnotes(name, view)


def get_display(ctx: Context, name: str, times=None, since=None) -> tuple[pd.DataFrame, list[str]]:
    """The display table and footnotes of output ``name`` (``analysis.outputs.display_table`` and
    ``footnotes``: the same the reports and ``mirocals table --display`` show), cached like
    ``get_table``. Raises ``SmallCellError`` for a blinded filter below the minimum cell size."""
    check_cell_size(ctx)
    return _cached_display(name=name, **_key(ctx), times=tuple(times) if times else None,
                           since=str(since) if since else None)


@st.cache_resource(max_entries=256, show_spinner=False)
def _cached_figure(name: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                   view_args: tuple):
    from analysis.outputs import build_figure
    return build_figure(name, get_view(_context_from(view_kind, role_class, snapshot_hash, filters_key, view_args)))


def get_figure(ctx: Context, name: str):
    """Figure ``name`` (``analysis.outputs.build_figure``, with the on-screen subtitle) once per
    snapshot hash, view kind, role and filters; shared read-only (do not mutate it). Raises
    ``SmallCellError`` for a blinded filter below the minimum cell size."""
    check_cell_size(ctx)
    return _cached_figure(name=name, **_key(ctx))


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
