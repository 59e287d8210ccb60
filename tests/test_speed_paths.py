"""The speed paths of issue 13, as behaviour (their timings are measured by
``scripts/bench_dashboard.py``, never asserted here):

* figure downloads through one persistent kaleido browser (Debian chromium) per server process,
  with the per-image path when that browser fails;
* the start-up cache warm-up, which must never build anything for another view than the ones its
  instance serves (a blinded instance warms blinded views only, from no allocation);
* the ALSFRS-R trajectories drawn as SVG lines (no WebGL), the same subjects and values.
"""
from __future__ import annotations

import os
import pickle
import signal
import struct
from pathlib import Path

import pytest

from conftest import ARM_TOKENS

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent")


def _figure(title="Speed check"):
    import plotly.graph_objects as go
    return go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="line"), layout=dict(title=title))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- figure export
@needs_chromium
def test_persistent_exporter_returns_png_and_svg_twice_from_one_browser():
    from dashboard.figure_export import Exporter
    exporter = Exporter()
    try:
        images = [exporter.export(_figure(f"Figure {i}"), fmt) for i, fmt in enumerate(["png", "svg", "png", "svg"])]
        pid = exporter.browser_pid()
        assert pid is not None and exporter.running()
        assert exporter.launches == 1 and exporter.fallbacks == 0     # one browser, no per-image path
        for i in (0, 2):
            assert _png_size(images[i]) == (2000, 1200)               # 1000 x 600 at scale 2
        for i in (1, 3):
            assert images[i].lstrip().startswith(b"<svg") and f"Figure {i}".encode() in images[i]
        assert images[0] != images[2]                                 # each figure drawn, not a stale one
        os.kill(pid, 0)                                               # the browser is still up for the next one
    finally:
        exporter.stop()
    assert not exporter.running()


@needs_chromium
def test_exporter_falls_back_when_its_browser_dies_and_starts_a_new_one():
    from dashboard.figure_export import Exporter
    exporter = Exporter(render_seconds=20, retry_seconds=0)
    try:
        assert _png_size(exporter.export(_figure(), "png")) == (2000, 1200)
        first = exporter.browser_pid()
        os.kill(first, signal.SIGKILL)                                # the persistent browser crashes
        data = exporter.export(_figure("After the crash"), "svg")
        assert b"After the crash" in data                             # still served, by the per-image path
        assert exporter.fallbacks == 1 and exporter.last_error
        assert _png_size(exporter.export(_figure(), "png")) == (2000, 1200)
        assert exporter.launches == 2 and exporter.browser_pid() not in (None, first)   # a new one
    finally:
        exporter.stop()


def test_alsfrs_trajectories_are_svg_lines_with_the_same_subjects():
    import numpy as np
    import pandas as pd
    from analysis.figures_alsfrs import plot_spaghetti
    rng = np.random.default_rng(5)
    rows = [(f"s{i}", "T" if i % 2 else "P", v, 91 * v + int(rng.integers(-5, 5)), 40 - v - i % 3)
            for i in range(300) for v in range(6)]
    q = pd.DataFrame(rows, columns=["USUBJID", "ARM", "AVISITN", "ADY", "AVAL"]).assign(PARAMCD="ALSFRST")
    fig = plot_spaghetti(q, group_col="ARM", max_subjects=40, seed=2)
    assert {t.type for t in fig.data} == {"scatter"}                   # no WebGL trace
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["P: 40 of 150 subjects", "T: 40 of 150 subjects"]
    for t in lines:                                                    # 40 subjects, 6 visits, 39 breaks
        assert len(t.x) == 40 * 6 + 39 and np.isnan(np.asarray(t.y, float)).sum() == 39
    again = plot_spaghetti(q, group_col="ARM", max_subjects=40, seed=2)
    assert np.array_equal(np.asarray(again.data[0].y, float), np.asarray(lines[0].y, float), equal_nan=True)


# --------------------------------------------------------------------------- warm-up
def _clear_caches():
    import streamlit as st
    st.cache_data.clear()
    st.cache_resource.clear()


def _cached_resources() -> list[tuple[str, object]]:
    """(function name, value) of every st.cache_resource entry of this process."""
    from streamlit.runtime.caching import cache_resource_api
    out = []
    for caches in list(cache_resource_api._resource_caches._function_caches.values()):
        for cache in list(caches.values()):
            out += [(cache.display_name, r.value) for r in list(cache._mem_cache.values())]
    return out


def _cached_data_bytes() -> list[tuple[str, bytes]]:
    """(function name, pickled value) of every st.cache_data entry of this process."""
    from streamlit.runtime.caching import cache_data_api
    out = []
    for caches in list(cache_data_api._data_caches._function_caches.values()):
        for cache in list(caches.values()):
            mem = getattr(cache.storage, "_mem_cache", None)
            if mem is None:                       # a storage wrapped in another (in-memory) one
                mem = getattr(getattr(cache.storage, "_persist_storage", None), "_mem_cache", {})
            out += [(cache.display_name, v if isinstance(v, bytes) else pickle.dumps(v)) for v in list(mem.values())]
    return out


@pytest.fixture
def instance_env(monkeypatch):
    for key in ("MIROCALS_INSTANCE", "MIROCALS_DATA", "MIROCALS_ALLOCATION", "MIROCALS_DATABASE_LOCKED",
                "MIROCALS_STUDY"):
        monkeypatch.delenv(key, raising=False)
    _clear_caches()
    yield monkeypatch
    _clear_caches()


def test_warm_up_on_a_blinded_instance_builds_blinded_outputs_only(instance_env, blinded_only_snapshot):
    from data_access.view_blinded import BlindedView
    from dashboard import caches
    instance_env.setenv("MIROCALS_INSTANCE", "blinded")
    instance_env.setenv("MIROCALS_DATA", str(blinded_only_snapshot))
    contexts = caches.warm_up_contexts()
    assert [c.role for c in contexts] == ["steering"]      # one per view kind: the blinded roles share outputs
    assert {c.view_kind for c in contexts} == {"blinded"} and {c.snapshot.allocation_dir for c in contexts} == {None}
    built = caches.warm_up(contexts)
    names = {(kind, name) for _, kind, name in built}
    assert {("table", "enrolment"), ("figure", "enrolment"), ("table", "baseline"), ("figure", "spaghetti"),
            ("validation", "validation")} <= names
    from analysis.outputs import FIGURES, OUTPUTS
    assert not [n for k, n in names if (OUTPUTS if k == "table" else FIGURES).get(n) is not None
                and (OUTPUTS if k == "table" else FIGURES)[n].by_arm_only]
    views = [(fn, v) for fn, v in _cached_resources() if fn.endswith("_view")]
    assert views and all(fn.endswith("_blinded_view") and isinstance(v, BlindedView) for fn, v in views)
    assert not [fn for fn, _ in _cached_resources() if "unblinded" in fn]
    # and nothing cached names an arm (the clinical-only data cannot, but the check is what matters)
    cached = _cached_data_bytes()
    assert len({fn for fn, _ in cached}) >= 3                            # the scan sees the displays, tables...
    leaks = [(fn, tok) for fn, data in cached for tok in ARM_TOKENS if tok.encode() in data]
    assert not leaks, leaks


@pytest.mark.parametrize("attack", ["allocation configured", "allocation beside the data", "invalid instance"])
def test_warm_up_on_a_blinded_instance_in_reach_of_an_allocation_builds_nothing(instance_env, demo_snapshot,
                                                                                blinded_only_snapshot, attack):
    from dashboard import caches
    instance_env.setenv("MIROCALS_INSTANCE", "blinded")
    instance_env.setenv("MIROCALS_DATA", str(blinded_only_snapshot))
    if attack == "allocation configured":
        instance_env.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    elif attack == "allocation beside the data":
        instance_env.setenv("MIROCALS_DATA", str(demo_snapshot))
    else:
        instance_env.setenv("MIROCALS_INSTANCE", "blinded-ish")
    assert caches.warm_up_contexts() == []
    assert caches.warm_up() == []
    assert not [fn for fn, _ in _cached_resources() if fn.endswith("_view")]


def test_warm_up_on_the_demo_instance_is_blinded_only(instance_env, demo_snapshot):
    from dashboard import caches
    instance_env.setenv("MIROCALS_DATA", str(demo_snapshot))
    instance_env.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    contexts = caches.warm_up_contexts()
    assert [c.role for c in contexts] == ["steering"]     # no DSMB, no statistician; one blinded context
    assert {c.view_kind for c in contexts} == {"blinded"} and {c.snapshot.allocation_dir for c in contexts} == {None}
    plan = caches.warm_up_plan(contexts)
    from analysis.outputs import FIGURES, OUTPUTS
    assert not [n for _, k, n in plan if k != "validation" and (OUTPUTS if k == "table" else FIGURES)[n].by_arm_only]
    assert plan[0][2] == "enrolment"                      # the first page (Recruitment) first
    names = [(k, n) for _, k, n in plan]
    assert len(names) == len(set(names))                  # each output built once


def test_warm_up_on_an_unblinded_instance_warms_its_unblinded_roles(instance_env, demo_snapshot):
    from dashboard import caches
    instance_env.setenv("MIROCALS_INSTANCE", "unblinded")
    instance_env.setenv("MIROCALS_DATA", str(demo_snapshot))
    instance_env.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    contexts = caches.warm_up_contexts()
    assert [c.role for c in contexts] == ["dsmb"]        # one unblinded context: dsmb and statistician share
    assert {c.view_kind for c in contexts} == {"unblinded"} and all(c.snapshot.allocation_dir for c in contexts)
    from analysis.outputs import OUTPUTS
    assert any(OUTPUTS[n].by_arm_only for _, k, n in caches.warm_up_plan(contexts) if k == "table")


def test_an_output_the_snapshot_lacks_is_still_refused_when_its_answer_is_cached(instance_env, blinded_only_snapshot):
    """``TableUnavailable`` is cached like an output (so a rerun does not rebuild it) and still
    raised to every caller, table, display and figure alike, with the same message."""
    from analysis.outputs import TableUnavailable
    from dashboard import caches
    instance_env.setenv("MIROCALS_INSTANCE", "blinded")
    instance_env.setenv("MIROCALS_DATA", str(blinded_only_snapshot))
    ctx = caches.warm_up_contexts()[0]
    messages = []
    for _ in range(2):
        for get in (caches.get_table, caches.get_display):
            with pytest.raises(TableUnavailable) as exc:
                get(ctx, "projection")             # the default demo is cut after recruitment ended
            messages.append(str(exc.value))
    assert len(set(messages)) == 1 and "projection" in messages[0]
    assert len(caches.get_table(ctx, "enrolment")) > 0  # an available output is a table as before


def test_roles_of_one_view_kind_share_cached_outputs_and_kinds_never_do(instance_env, demo_snapshot):
    """Steering, investigator and author (before lock) read the same blinded view, so an output one
    of them built is a cache hit for the others; the DSMB's unblinded output is a different entry
    (by arm), and the blinded one never shows an arm."""
    from dataclasses import replace
    from dashboard import caches
    from dashboard.context import Context
    from dashboard.snapshots import discover_snapshots, load_data_settings
    instance_env.setenv("MIROCALS_DATA", str(demo_snapshot))
    instance_env.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    snapshot = discover_snapshots(*map(lambda v: None if v is None else str(v), load_data_settings()))[0]
    blinded = {role: Context("u", role, "blinded", replace(snapshot, allocation_dir=None))
               for role in ("steering", "investigator", "author")}
    unblinded = {role: Context("u", role, "unblinded", snapshot) for role in ("dsmb", "statistician")}
    first = caches.get_figure(blinded["steering"], "labs")
    assert all(caches.get_figure(c, "labs") is first for c in blinded.values())       # one cached object
    by_arm = caches.get_figure(unblinded["dsmb"], "labs")
    assert by_arm is not first and caches.get_figure(unblinded["statistician"], "labs") is by_arm
    assert {t.name for t in by_arm.data} != {t.name for t in first.data}
    shown = caches.get_display(blinded["investigator"], "ae")[0]
    assert not [c for c in shown.columns if any(tok in str(c) for tok in ARM_TOKENS)]
    assert [c for c in caches.get_display(unblinded["statistician"], "ae")[0].columns
            if any(tok in str(c) for tok in ARM_TOKENS)]
