"""Settings, snapshot discovery, views and keyed caches for the dashboard.

Blinding and caches: ``st.cache_data``/``st.cache_resource`` values are shared by every session
of the server, so every cached function here takes the view kind (``blinded``/``unblinded``), the
role class and the snapshot hash as arguments. Blinded and unblinded views are built by two
different cached functions, and the blinded one is never given an allocation path: a blinded
session cannot reach a cached object that was built from the allocation.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.auth import is_unblinded_role

# kaleido 1.x drives a Chrome-family browser for static export: Debian's chromium
os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")


@dataclass(frozen=True)
class Snapshot:
    """One snapshot the dashboard can show."""
    label: str
    clinical_dir: str
    allocation_dir: str | None
    snapshot_hash: str
    cut_date: str


@dataclass(frozen=True)
class Filters:
    """Sidebar filters; an empty tuple means no restriction."""
    countries: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    onsets: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.countries or self.sites or self.onsets)

    def key(self) -> tuple:
        return (self.countries, self.sites, self.onsets)

    def site_ids(self, study) -> tuple[str, ...] | None:
        """The study's sites this filter keeps (list order), or None when it restricts no site
        (no country or site chosen: every site is in, whatever the onset)."""
        if not (self.countries or self.sites):
            return None
        return tuple(s.id for s in study.sites
                     if (not self.countries or s.country in self.countries) and (not self.sites or s.id in self.sites))

    def label(self) -> str | None:
        """The filter in a few words for subtitles and captions ("UK", "FR08", "UK · Bulbar");
        None when inactive. Sites chosen name the selection (their countries go without saying)."""
        parts = [", ".join(self.sites or self.countries), ", ".join(self.onsets)]
        return " · ".join(p for p in parts if p) or None

    def slug(self, max_values: int = 4) -> str | None:
        """The filter for a file name ("uk", "fr08", "uk-bulbar"; more than ``max_values`` sites:
        "9-sites"); None when inactive."""
        def few(values, word):
            return list(values) if len(values) <= max_values else [f"{len(values)}-{word}"]
        words = few(self.sites, "sites") if self.sites else few(self.countries, "countries")
        words += few(self.onsets, "onsets")
        return re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-") or None

    def not_by_site(self) -> str | None:
        """The part of the filter a per-site plan or target cannot follow ("onset Bulbar"), or None."""
        return f"onset {', '.join(self.onsets)}" if self.onsets else None


@dataclass(frozen=True)
class Context:
    """What a page needs: who is looking, at which snapshot, through which kind of view."""
    user: str
    role: str
    view_kind: str                  # "blinded" or "unblinded"
    snapshot: Snapshot
    filters: Filters = field(default_factory=Filters)
    mask_arms: bool = False

    @property
    def role_class(self) -> str:
        return self.view_kind

    @property
    def unblinded(self) -> bool:
        return self.view_kind == "unblinded"


# --------------------------------------------------------------------------- settings
@st.cache_resource(show_spinner="Preparing the demo trial (first run only)...")
def _ensure_demo(path: str) -> tuple[str, str]:
    from data_access.demo import ensure_demo
    clinical, allocation = ensure_demo(Path(path))
    return str(clinical), str(allocation)


def load_data_settings() -> tuple[Path, str | None]:
    """``(data_root, allocation)`` from env ``MIROCALS_DATA`` / ``MIROCALS_ALLOCATION``.

    Without ``MIROCALS_DATA`` the built-in demo trial in ``./demo_data`` is used (generated on
    first run) together with its allocation. With ``MIROCALS_DATA`` the allocation is used only
    when ``MIROCALS_ALLOCATION`` is set: a blinded deployment simply does not set it.
    """
    data = os.environ.get("MIROCALS_DATA")
    allocation = os.environ.get("MIROCALS_ALLOCATION") or None
    if not data:
        clinical, demo_allocation = _ensure_demo(str(Path("demo_data").resolve()))
        return Path(clinical).parent, allocation or demo_allocation
    return Path(data), allocation


def _allocation_for(root: Path, allocation: str | None, single: bool) -> str | None:
    if not allocation:
        return None
    alloc = Path(allocation)
    if (alloc / "manifest.json").exists() and single:
        return str(alloc)
    for candidate in (alloc / root.name / "allocation", alloc / root.name):
        if (candidate / "manifest.json").exists():
            return str(candidate)
    return str(alloc) if (alloc / "manifest.json").exists() else None


@st.cache_data(ttl=60, show_spinner=False)
def discover_snapshots(data_root: str, allocation: str | None) -> list[Snapshot]:
    """Snapshots under ``data_root``: the root itself and/or its sub-folders holding
    ``clinical/manifest.json``, newest cut first. Cached for a minute."""
    from data_access.snapshot import read_manifest
    root = Path(data_root)
    roots = [root] if (root / "clinical" / "manifest.json").exists() else []
    if root.is_dir():
        roots += sorted(p for p in root.iterdir() if (p / "clinical" / "manifest.json").exists())
    found = []
    for r in roots:
        manifest = read_manifest(r / "clinical")
        found.append(Snapshot(label=f"{r.name} (cut {manifest['cut_date']})", clinical_dir=str(r / "clinical"),
                              allocation_dir=_allocation_for(r, allocation, single=len(roots) == 1),
                              snapshot_hash=manifest["content_hash"], cut_date=str(manifest["cut_date"])))
    return sorted(found, key=lambda s: s.cut_date, reverse=True)


def load_study_config(clinical_dir: str | None = None):
    """The study: ``MIROCALS_STUDY`` when set, else the ``study.toml`` an imported snapshot
    carries (``clinical_dir``, or the ``MIROCALS_DATA`` snapshot), else MIROCALS."""
    return _load_study_config(study_file=os.environ.get("MIROCALS_STUDY") or "",   # by name: see _key
                              data_dir=str(clinical_dir or os.environ.get("MIROCALS_DATA") or ""))


@st.cache_resource(show_spinner=False)
def _load_study_config(study_file: str, data_dir: str):
    from data_access.study import load_snapshot_study, load_study
    return load_study(study_file) if study_file else load_snapshot_study(data_dir or None)


# --------------------------------------------------------------------------- views
@st.cache_resource(max_entries=8, show_spinner=False)
def _blinded_view(clinical_dir: str, view_kind: str, role_class: str, snapshot_hash: str, role: str):
    """A blinded view. Takes no allocation argument at all, so it cannot read the allocation."""
    assert view_kind == "blinded" and role_class == "blinded"
    from data_access.view_blinded import BlindedView
    from data_access.views import clinical_dir_of
    # built directly (not through open_view): an unblinded role on a deployment without an
    # allocation gets the pooled view too, instead of an error for the missing allocation
    view = BlindedView(clinical_dir_of(clinical_dir), role, study=load_study_config(clinical_dir))
    if not view.blinded:  # defence in depth: never serve an unblinded view on this path
        raise RuntimeError("a blinded role was given an unblinded view")
    return view


@st.cache_resource(max_entries=8, show_spinner=False)
def _unblinded_view(clinical_dir: str, allocation_dir: str, view_kind: str, role_class: str,
                    snapshot_hash: str, role: str, mask_arms: bool, locked: bool):
    assert view_kind == "unblinded" and role_class == "unblinded"
    from data_access.views import open_view
    return open_view(clinical_dir, role, allocation_dir=allocation_dir, study=load_study_config(clinical_dir),
                     mask_arms=mask_arms, database_locked=locked)


def get_view(ctx: Context):
    """The (cached) view for a context, wrapped with the sidebar filters."""
    snap = ctx.snapshot
    if ctx.unblinded:
        from dashboard.auth import database_locked
        view = _unblinded_view(clinical_dir=snap.clinical_dir, allocation_dir=snap.allocation_dir,
                               view_kind=ctx.view_kind, role_class=ctx.role_class, snapshot_hash=snap.snapshot_hash,
                               role=ctx.role, mask_arms=ctx.mask_arms, locked=database_locked())
    else:                   # keyword arguments: see _key
        view = _blinded_view(clinical_dir=snap.clinical_dir, view_kind=ctx.view_kind, role_class=ctx.role_class,
                             snapshot_hash=snap.snapshot_hash, role=ctx.role)
    return FilteredView(view, ctx.filters) if ctx.filters.active else view


def view_kind_for(role: str, snapshot: Snapshot) -> str:
    """``unblinded`` only for an unblinded role on a snapshot whose allocation is configured."""
    return "unblinded" if is_unblinded_role(role) and snapshot.allocation_dir else "blinded"


class SmallCellError(PermissionError):
    """A blinded output asked of a filter that selects (or isolates by difference) fewer than the
    study's minimum cell size k: only the counts (``FilteredView.counts``) may be shown."""

    def __init__(self, reason: str, randomised: int | None = None, screened: int | None = None):
        super().__init__(reason)
        self.reason, self.randomised, self.screened = reason, randomised, screened

    def __str__(self) -> str:
        return self.reason


_FILTER_COLUMNS = (("countries", "COUNTRY", "country"), ("sites", "SITEID", "site"), ("onsets", "ONSET", "onset"))


_POPULATIONS = (("ITTFL", "ITT"), ("SAFFL", "safety"))


def _plural(n: int) -> str:
    return f"{n} participant" + ("" if n == 1 else "s")


def _count_selected(adsl: pd.DataFrame, filters: Filters) -> int:
    keep = pd.Series(True, index=adsl.index)
    for attr, col, _ in _FILTER_COLUMNS:
        values = getattr(filters, attr)
        if values and col in adsl.columns:
            keep &= adsl[col].isin(values)
    return int(keep.sum())


def small_cell_reason(adsl: pd.DataFrame, filters: Filters, k: int) -> str | None:
    """Why a blinded filter gives counts only, or None when per-subject outputs may be shown.

    ``adsl``: the randomised subjects (one row each; COUNTRY, SITEID, ONSET). A filter is refused
    when it selects fewer than ``k`` subjects, and also when it differs from a neighbouring filter
    by 1..k-1 subjects, because the difference of two allowed outputs would then describe those
    few subjects (Site FR08 minus Site FR08 + Onset Limb is the one bulbar subject of FR08):
    the same filter without one of its restrictions, or without one of the values it selects.
    """
    if not filters.active:
        return None
    n = _count_selected(adsl, filters)
    if n < k:
        return (f"This filter selects {_plural(n)}, fewer than the minimum of {k} for blinded outputs: "
                "counts only.")
    for flag, population in _POPULATIONS:      # the ITT and safety tables describe their population only
        if flag in adsl.columns:
            m = _count_selected(adsl[adsl[flag] == "Y"], filters)
            if 0 < m < k:
                return (f"This filter selects {_plural(n)} but {_plural(m)} of the {population} population, "
                        f"fewer than the minimum of {k} for blinded outputs: counts only.")
    for attr, _col, word in _FILTER_COLUMNS:
        values = getattr(filters, attr)
        if not values:
            continue
        wider = [Filters(**{**_as_dict(filters), attr: ()})]
        if len(values) > 1:
            wider += [Filters(**{**_as_dict(filters), attr: tuple(v for v in values if v != drop)})
                      for drop in values]
        for other in wider:
            diff = abs(_count_selected(adsl, other) - n)
            if 0 < diff < k:
                return (f"This filter selects {_plural(n)} but differs by {_plural(diff)} from a neighbouring "
                        f"filter (another {word} selection), fewer than the minimum of {k} for blinded outputs: "
                        "the difference of the two would describe them, so counts only.")
    return None


def _as_dict(filters: Filters) -> dict:
    return {"countries": filters.countries, "sites": filters.sites, "onsets": filters.onsets}


class FilteredView:
    """A view restricted to subjects (and screening records) of some countries, sites and onsets.

    It only subsets rows; every other attribute (``blinded``, ``group_col``, ``require_unblinded``,
    ...) is the wrapped view's own.

    Minimum cell size: on a blinded view whose filter selects fewer than ``study.min_cell_size``
    randomised subjects (or isolates fewer by difference, see ``small_cell_reason``) every dataset
    read (``table``, ``sql``) raises ``SmallCellError``; only ``counts()`` answers.
    """

    _DATA_ATTRS = ("sql", "_query", "_con", "_paths", "_memo")

    def __init__(self, view, filters: Filters):
        self._view, self._filters = view, filters
        self._cache: dict[str, pd.DataFrame] = {}
        self._cells: tuple[int, int | None, str | None] | None = None

    # ----------------------------------------------------------------- the filter, for outputs
    # what an output needs to apply the filter fully or to say it is trial-wide (read by
    # ``analysis.outputs.site_selection`` with getattr: an unfiltered view has none of them)
    @property
    def filters(self) -> Filters:
        return self._filters

    @property
    def selected_sites(self) -> tuple[str, ...] | None:
        """Site ids the filter keeps (the study's list order), None when it restricts no site."""
        return self._filters.site_ids(self._view.study)

    @property
    def filter_label(self) -> str | None:
        """"UK", "FR08", "UK · Bulbar": for figure subtitles and captions."""
        return self._filters.label()

    @property
    def filter_not_by_site(self) -> str | None:
        """The part of the filter no per-site plan or target can follow ("onset Bulbar")."""
        return self._filters.not_by_site()

    def __getattr__(self, name):
        if name in FilteredView._DATA_ATTRS:
            self._check_cells()
        return getattr(self._view, name)

    # ----------------------------------------------------------------- minimum cell size
    def _cell_state(self) -> tuple[int, int | None, str | None]:
        """``(randomised, screened, reason)`` of this filter; ``reason`` is None when outputs may be
        shown (always for an unblinded view)."""
        if self._cells is None:
            view = self._view
            cols = [c for c in ("USUBJID", "COUNTRY", "SITEID", "ONSET", *(f for f, _ in _POPULATIONS))
                    if c in view.columns("adsl")]
            adsl = view.table("adsl", columns=cols)
            randomised = _count_selected(adsl, self._filters)
            screened = len(self._subset("screening", view.table("screening"), adsl=adsl)) \
                if "screening" in view.datasets else None
            reason = None
            if view.blinded:
                reason = small_cell_reason(adsl, self._filters, int(view.study.min_cell_size))
            self._cells = (randomised, screened, reason)
        return self._cells

    def _check_cells(self) -> None:
        randomised, screened, reason = self._cell_state()
        if reason:
            raise SmallCellError(reason, randomised, screened)

    def counts(self) -> dict:
        """The counts path, answered whatever the cell size: randomised and screened subjects the
        filter selects (``screened`` None when the trial has no screening log) and why outputs are
        withheld (``reason``, None when they are not)."""
        randomised, screened, reason = self._cell_state()
        return {"randomised": randomised, "screened": screened, "reason": reason}

    # ----------------------------------------------------------------- rows
    def table(self, name: str, columns=None, where: str | None = None) -> pd.DataFrame:
        self._check_cells()
        if columns is not None or where is not None:
            # the columns the filter reads are read too (and dropped after): a column subset
            # without COUNTRY or USUBJID must not come back unfiltered
            columns = [columns] if isinstance(columns, str) else columns
            present = self._view.columns(name)
            extra = [] if columns is None else [
                c for c in (("COUNTRY", "SITEID", "ONSET", "USUBJID") if name in ("adsl", "screening") else ("USUBJID",))
                if c in present and c not in columns]
            frame = self._view.table(name, columns=None if columns is None else [*columns, *extra], where=where)
            return self._subset(name, frame).drop(columns=extra)
        if name not in self._cache:
            self._cache[name] = self._subset(name, self._view.table(name))
        return self._cache[name]

    def _keep(self, frame: pd.DataFrame) -> pd.Series:
        f, keep = self._filters, pd.Series(True, index=frame.index)
        for col, values in (("COUNTRY", f.countries), ("SITEID", f.sites), ("ONSET", f.onsets)):
            if values and col in frame.columns:
                keep &= frame[col].isin(values)
        return keep

    def _subset(self, name: str, frame: pd.DataFrame, adsl: pd.DataFrame | None = None) -> pd.DataFrame:
        if name in ("adsl", "screening"):
            frame = frame[self._keep(frame)]
            if name == "screening" and self._filters.onsets:  # onset is known when randomised only
                subjects = self.table("adsl") if adsl is None else adsl[self._keep(adsl)]
                ids = set(subjects["USUBJID"])
                frame = frame[frame["USUBJID"].isna() | frame["USUBJID"].isin(ids)]
        elif "USUBJID" in frame.columns:
            frame = frame[frame["USUBJID"].isin(set(self.table("adsl")["USUBJID"]))]
        return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- cached results
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


# --------------------------------------------------------------------------- static export
_IMAGES: dict[tuple, bytes] = {}
_IMAGES_LOCK = threading.Lock()


def figure_bytes(key: tuple, fig, fmt: str) -> bytes:
    """PNG or SVG bytes of a figure through kaleido (Debian chromium), cached by ``key`` (which
    must hold the view kind, role class, snapshot hash and filters)."""
    full_key = (*key, fmt)
    with _IMAGES_LOCK:
        if full_key in _IMAGES:
            return _IMAGES[full_key]
    import plotly.io as pio
    data = pio.to_image(fig, format=fmt, width=1000, height=600, scale=2 if fmt == "png" else 1)
    with _IMAGES_LOCK:
        if len(_IMAGES) > 256:
            _IMAGES.clear()
        _IMAGES[full_key] = data
    return data


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
    from analysis.display_table import format_table
    problems = _cached_validation(view_kind=view_kind, role_class=role_class, snapshot_hash=snapshot_hash,
                                  clinical_dir=clinical_dir, allocation_dir=allocation_dir)
    by_rule = (problems.groupby(["rule", "severity"], as_index=False).size()
               .rename(columns={"size": "n"}).sort_values("n", ascending=False))
    late = problems[problems["rule"] == "late_entry"].reset_index(drop=True)
    study = load_study_config(clinical_dir)
    return {name: (df, format_table(df, None, study)) for name, df in
            (("validation-by-rule", by_rule), ("late-data-entry", late), ("validation-problems", problems))}


def get_validation_tables(ctx: Context) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The validation problems as the data-quality page shows them, each as (machine table, display
    table): ``validation-by-rule`` (problems by rule and severity, most first), ``late-data-entry``
    (the late-entry records) and ``validation-problems`` (all). Cached with ``get_validation`` so a
    rerun does not format them again; ``SmallCellError`` likewise."""
    check_cell_size(ctx)
    s = ctx.snapshot
    return _cached_validation_tables(view_kind=ctx.view_kind, role_class=ctx.role_class,
                                     snapshot_hash=s.snapshot_hash, clinical_dir=s.clinical_dir,
                                     allocation_dir=s.allocation_dir if ctx.unblinded else None)
