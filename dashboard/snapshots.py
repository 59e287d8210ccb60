"""Settings, snapshot discovery, the study configuration and the views of a context.

Blinding: blinded and unblinded views are built by two different cached functions
(``st.cache_resource``, shared by every session of the server, keyed by the view kind, role class
and snapshot hash), and the blinded one is never given an allocation path: a blinded session
cannot reach a cached object that was built from the allocation. ``get_view`` wraps the view in
``FilteredView`` when the sidebar filters are active.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboard.auth import is_unblinded_role
from dashboard.cell_size import FilteredView
from dashboard.context import Context, Snapshot


# --------------------------------------------------------------------------- settings
@st.cache_resource(max_entries=4, show_spinner="Preparing the demo trial (first run only)...")
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


def _folder_stamp(root: Path) -> tuple:
    """What changes when a snapshot is published under ``root`` (one ``stat`` per sub-folder): the
    root's and each sub-folder's modification time, and whether its manifest is there. A snapshot is
    published by renaming its finished ``clinical/`` folder into place (``write_snapshot``), which
    changes the modification time of the folder holding it."""
    def one(p: Path) -> tuple:
        try:
            return (p.name, p.stat().st_mtime_ns, (p / "clinical").stat().st_mtime_ns
                    if (p / "clinical" / "manifest.json").exists() else None)
        except OSError:
            return (p.name, None, None)
    if not root.is_dir():
        return ()
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return ()
    return (one(root), *(one(p) for p in children))


def discover_snapshots(data_root: str, allocation: str | None) -> list[Snapshot]:
    """Snapshots under ``data_root``: the root itself and/or its sub-folders holding
    ``clinical/manifest.json``, newest cut first. Cached until a snapshot is published or removed
    (the folders' modification times, ``_folder_stamp``): a new snapshot is seen on the next rerun."""
    return _discover(data_root, allocation, _folder_stamp(Path(data_root)))


@st.cache_data(max_entries=16, show_spinner=False)
def _discover(data_root: str, allocation: str | None, stamp: tuple) -> list[Snapshot]:
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


# --------------------------------------------------------------------------- the session's snapshot
PINNED = "_snapshot_pinned"         # session state: (clinical_dir, content hash) this session shows
PICKER = "flt_snapshot"             # the sidebar's snapshot picker (a label)
NOTE = "_snapshot_note"             # a one-off note: the snapshot shown was withdrawn
KNOWN = "_snapshot_known"           # the snapshots published when the session last chose one


def _set_picker(state, label: str) -> None:
    try:
        state[PICKER] = label
    except Exception:  # noqa: BLE001 - the picker was drawn already in this run: it follows next run
        pass


def _pin(state, snapshot: Snapshot, found: list[Snapshot]) -> None:
    state[PINNED] = (snapshot.clinical_dir, snapshot.snapshot_hash)
    _set_picker(state, snapshot.label)
    state[KNOWN] = tuple((s.clinical_dir, s.snapshot_hash) for s in found)


def session_snapshot(found: list[Snapshot], state) -> tuple[Snapshot, Snapshot | None]:
    """``(shown, newer)``: the snapshot this session shows and a newer one published since, if any.

    A session keeps the snapshot it started with (or last chose) until the user chooses another:
    a snapshot published while users are signed in is offered (``newer``), never switched to under
    them, so every output of a page, and of the pages that follow, comes from one snapshot (one
    content hash). Only when the snapshot shown is no longer published (removed, or its folder now
    holds other content) does the session move to the newest, and ``take_note`` says so once.
    ``newer`` is the newest snapshot when it was published after the session chose its own (a user
    who chose an older snapshot on purpose is not asked again about the ones already listed)."""
    pinned = state.get(PINNED)
    shown = next((s for s in found if pinned and (s.clinical_dir, s.snapshot_hash) == tuple(pinned)), None)
    if shown is None:
        if pinned:
            old = next((s for s in found if s.clinical_dir == pinned[0]), None)
            state[NOTE] = (f"The snapshot this session showed ({Path(pinned[0]).parent.name}, content "
                           f"{pinned[1][:12]}) is no longer published"
                           + (" (its folder now holds other content)" if old else "")
                           + f": now showing {found[0].label}, content {found[0].snapshot_hash[:12]}.")
        shown = found[0]
        _pin(state, shown, found)
    elif state.get(PICKER) != shown.label:
        _set_picker(state, shown.label)      # the picker shows the session's snapshot
    known = {tuple(k) for k in state.get(KNOWN, ())}
    newer = found[0] if found[0] != shown and (found[0].clinical_dir, found[0].snapshot_hash) not in known else None
    return shown, newer


def choose_snapshot(found: list[Snapshot], state, label: str | None = None) -> None:
    """The user chose a snapshot (the picker's label, or ``label``): the session shows it from now on."""
    label = label or state.get(PICKER)
    chosen = next((s for s in found if s.label == label), None)
    if chosen is not None:
        _pin(state, chosen, found)
        state.pop(NOTE, None)


def take_note(state) -> str | None:
    """The one-off note that the snapshot shown was withdrawn (then cleared)."""
    return state.pop(NOTE, None)


def show_snapshot_notices(found: list[Snapshot], shown: Snapshot, newer: Snapshot | None) -> None:
    """Under the page header: that the snapshot shown was withdrawn (once), and a newer snapshot
    published since the session chose its own, with a button to show it."""
    note = take_note(st.session_state)
    if note:
        st.warning(note, icon=":material/update:")
    if newer is not None:
        st.info(f"A new snapshot has been published: **{newer.label}** (content `{newer.snapshot_hash[:12]}`). "
                f"This session keeps showing {shown.label} (content `{shown.snapshot_hash[:12]}`) until you "
                "choose the new one.", icon=":material/update:")
        st.button(f"Show the new snapshot ({newer.label})", key="snapshot_switch", on_click=choose_snapshot,
                  args=(found, st.session_state, newer.label))


def snapshot_problem(snapshot: Snapshot, unblinded: bool) -> str | None:
    """Why the snapshot cannot be shown, or None: a file changed after publication
    (``data_access.snapshot.check_published``: hashed once per process per file state, then one
    ``stat`` per file) in its clinical part or, for an unblinded view, its allocation."""
    from data_access.snapshot import SnapshotError, check_published
    try:
        check_published(snapshot.clinical_dir)
        if unblinded and snapshot.allocation_dir:
            check_published(snapshot.allocation_dir)
    except SnapshotError as exc:
        return str(exc)
    return None


def load_study_config(clinical_dir: str | None = None):
    """The study: ``MIROCALS_STUDY`` when set, else the ``study.toml`` an imported snapshot
    carries (``clinical_dir``, or the ``MIROCALS_DATA`` snapshot), else MIROCALS."""
    return _load_study_config(study_file=os.environ.get("MIROCALS_STUDY") or "",   # by name: see caches._key
                              data_dir=str(clinical_dir or os.environ.get("MIROCALS_DATA") or ""))


@st.cache_resource(max_entries=32, show_spinner=False)      # every cache bounded (issue 16)
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
    from data_access.snapshot import check_published
    check_published(clinical_dir_of(clinical_dir))      # changed after publication: refused (page_setup says so)
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
    else:                   # keyword arguments: see caches._key
        view = _blinded_view(clinical_dir=snap.clinical_dir, view_kind=ctx.view_kind, role_class=ctx.role_class,
                             snapshot_hash=snap.snapshot_hash, role=ctx.role)
    if view.snapshot_hash != snap.snapshot_hash:      # never outputs of two snapshots on one page
        from data_access.snapshot import SnapshotError
        raise SnapshotError(f"{snap.clinical_dir} now holds snapshot {view.snapshot_hash[:12]}, not the "
                            f"{snap.snapshot_hash[:12]} this page shows: reload the page")
    return FilteredView(view, ctx.filters) if ctx.filters.active else view


def view_kind_for(role: str, snapshot: Snapshot) -> str:
    """``unblinded`` only for an unblinded role on a snapshot whose allocation is configured."""
    return "unblinded" if is_unblinded_role(role) and snapshot.allocation_dir else "blinded"


# --------------------------------------------------------------------------- no allocation
def allocation_missing_message(snapshot: Snapshot) -> str:
    """What an unblinded role is told on every page when the deployment has no allocation for the
    snapshot shown: which variable (``MIROCALS_ALLOCATION``) and folder, what an allocation folder
    holds, what is shown instead and what to do."""
    configured = os.environ.get("MIROCALS_ALLOCATION") or None
    if configured is None:
        where = "the environment variable MIROCALS_ALLOCATION is not set"
    elif not Path(configured).exists():
        where = f"MIROCALS_ALLOCATION points at {configured}, which does not exist"
    else:
        name = Path(snapshot.clinical_dir).parent.name
        where = (f"MIROCALS_ALLOCATION points at {configured}, which holds no allocation for this snapshot "
                 f"(looked for allocation.parquet and manifest.json in {configured}, {configured}/{name} and "
                 f"{configured}/{name}/allocation)")
    return (f"No allocation configured: {where}. Your role sees results by arm, but without the allocation "
            "(the randomisation list) this dashboard can show only pooled results: every output below is pooled "
            "over arms and the by-arm outputs (treatment effect, subgroups, interim decision, Tregs) are not shown. "
            "Set MIROCALS_ALLOCATION to the allocation folder (the `allocation` folder `mirocals demo` writes "
            "beside `clinical`) on the unblinded instance and restart the dashboard.")


def allocation_missing_note(ctx: Context, what: str) -> str:
    """The note in place of one by-arm output for an unblinded role without an allocation."""
    variable = ("MIROCALS_ALLOCATION is not set" if not os.environ.get("MIROCALS_ALLOCATION")
                else f"MIROCALS_ALLOCATION={os.environ['MIROCALS_ALLOCATION']} holds no allocation for this snapshot")
    return f"{what}: by arm only, and no allocation is configured ({variable}). Not shown."
