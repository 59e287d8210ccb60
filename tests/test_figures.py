"""Figures show what their tables say: KM at-risk row, pooled vs by-arm traces, forest on a log
axis, ALSFRS-R change with n per visit, CONSORT counts."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.figures_alsfrs import plot_alsfrs_change
from analysis.figures_consort import plot_consort
from analysis.figures_survival import plot_forest, plot_km
from analysis.survival import summarize_at_risk
from analysis.outputs import build_table, get_tte
from data_access.views import open_view


@pytest.fixture(scope="module")
def views(demo_snapshot):
    return (open_view(demo_snapshot, "steering"),
            open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation"))


def _texts(fig):
    out = [a.text for a in fig.layout.annotations or []]
    for tr in fig.data:
        if getattr(tr, "name", None):
            out.append(tr.name)
        if getattr(tr, "text", None) is not None:
            out += list(tr.text)
    out += [str(t) for t in (fig.layout.yaxis2.ticktext or [])] if "yaxis2" in fig.layout else []
    return " ".join(str(t) for t in out)


def test_km_pooled_and_by_arm(views, study):
    blinded, unblinded = views
    pooled = plot_km(get_tte(blinded))
    text = _texts(pooled)
    assert "All (n=220)" in text and not any(a in text for a in study.arm_labels)
    by_arm = plot_km(get_tte(unblinded), "ARM", unblinded.arm_levels, annotation="HR x")
    text = _texts(by_arm)
    assert all(a in text for a in study.arm_labels) and "day 640" in text and "HR x" in text
    # the at-risk row is the at-risk table
    risk = summarize_at_risk(get_tte(unblinded), "ARM", list(range(0, 641, 80)), groups=unblinded.arm_levels)
    row = risk[risk["group"] == study.arm_labels[0]]
    expected = [f"{a} ({e}, {c})" for a, e, c in zip(row["n_at_risk"], row["n_events"], row["n_censored"])]
    texts = [list(tr.text) for tr in by_arm.data if tr.mode == "text"]
    assert expected in texts


def test_forest_log_axis_and_interaction(views):
    sg = build_table("subgroups", views[1])
    fig = plot_forest(sg)
    assert fig.layout.xaxis.type == "log"
    assert "interaction p " in " ".join(fig.layout.yaxis.ticktext)
    # readable factor names, the overall row first (a diamond), CSF-pNfH Low before High
    ticks = list(fig.layout.yaxis.ticktext)
    assert ticks[0].startswith("<b>All participants</b> (n=")
    assert any(t.startswith("<b>CSF-pNfH group</b> (interaction p ") for t in ticks)
    assert not any("PNFHGR" in t for t in ticks)
    assert ticks.index(next(t for t in ticks if t.startswith("Low (n="))) < \
        ticks.index(next(t for t in ticks if t.startswith("High (n=")))
    assert fig.data[0].marker.symbol[0] == "diamond" and set(fig.data[0].marker.symbol[1:]) == {"square"}
    # the overall row is the table's and the treatment-effect table's unadjusted Cox HR
    te = build_table("treatment-effect", views[1]).set_index("method")
    assert fig.data[0].x[0] == pytest.approx(te.loc["cox", "estimate"])


def test_alsfrs_change_shows_n(views):
    table = build_table("alsfrs", views[1])
    fig = plot_alsfrs_change(table)
    first = table.iloc[1]
    assert any(f"n={int(first['n'])}" in t for t in fig.layout.xaxis.ticktext)


def test_consort_boxes_carry_counts(views):
    c = build_table("consort", views[1])
    text = _texts(plot_consort(c))
    assert f"Randomised (n={int(c.loc[c['stage'] == 'Randomised', 'n'].iloc[0])})" in text
    for arm, n in c[c["stage"] == "Allocated"][["group", "n"]].itertuples(index=False):
        assert f"Allocated (n={int(n)})" in text, arm


def test_km_censor_ticks_one_per_censoring_time():
    # times 1, 2+, 2+, 3, 5+ in one group: censor ticks at 2 (S = 4/5) and 5 (S = 4/5 * 1/2 = 2/5)
    import pandas as pd
    from analysis.figures_survival import plot_km
    df = pd.DataFrame({"AVAL": [1, 2, 2, 3, 5], "CNSR": [0, 1, 1, 0, 1]})
    fig = plot_km(df, None, None, 640)
    ticks = [tr for tr in fig.data if tr.mode == "markers"]
    assert len(ticks) == 1
    assert list(ticks[0].x) == [2, 5] and list(ticks[0].y) == pytest.approx([0.8, 0.4])
