"""Data-quality and safety figures (analysis.figures_quality, analysis.figures_safety): what is
drawn is what the tables hold."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures_quality import plot_completeness, plot_entry_lag
from analysis.figures_safety import plot_labs_over_time

COMPLETENESS = pd.DataFrame({
    "site": ["A", "B", "Total"], "subjects": [3, 1, 4], "expected": [8, 1, 9], "done": [4, 1, 5],
    "missed": [3, 0, 3], "overdue": [1, 0, 1], "not_due": [2, 0, 2], "not_expected": [2, 3, 5],
    "percent_done": [50.0, 100.0, 500 / 9]})


def test_completeness_bars_stack_to_the_expected_visits():
    fig = plot_completeness(COMPLETENESS, site_names={"A": "Alpha"})
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert list(bars) == ["Done", "Missed", "Overdue"]
    # lowest % done on top: plotly draws the first category at the bottom
    assert list(bars["Done"].y) == ["B", "A Alpha"]
    stacked = np.sum([list(b.x) for b in bars.values()], axis=0)
    assert list(stacked) == [1, 8]                            # = expected of B, A
    text = next(t for t in fig.data if t.type == "scatter").text
    assert list(text) == ["100% done", "50% done"]
    assert "overall 5 of 9 done (55.6%)" in fig.layout.xaxis.title.text


def test_entry_lag_figure_per_site_with_threshold():
    lag = pd.DataFrame({"dataset": ["adqs"] * 3 + ["adae"], "site": ["A", "B", "Total", "A"],
                        "records": [4, 1, 5, 9], "median_lag": [17.0, 0.0, 4.0, 3.0],
                        "p90_lag": [33.5, 0.0, 33.0, 5.0], "max_lag": [35.0, 0.0, 35.0, 6.0],
                        "late": [1, 0, 1, 0], "percent_late": [25.0, 0.0, 20.0, 0.0]})
    fig = plot_entry_lag(lag, dataset="adqs", late_days=30)
    assert list(fig.data[0].x) == ["A", "B"] and list(fig.data[0].y) == [17.0, 0.0]
    assert list(fig.data[1].y) == [33.5, 0.0]
    assert fig.layout.shapes[0].y0 == 30


def test_labs_figure_mean_and_se_by_group_and_panel():
    labs = pd.DataFrame({
        "paramcd": ["EOS"] * 4 + ["TREG"] * 2, "group": ["X", "X", "Y", "Y", "X", "X"],
        "visit": ["Baseline", "Month 1"] * 3, "day": [0, 28] * 3, "n": [4, 1, 9, 16, 25, 4],
        "mean": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "sd": [2.0, np.nan, 3.0, 8.0, 5.0, 2.0]})
    fig = plot_labs_over_time(labs, labels={"EOS": "Eosinophils (10^9/L)"})
    assert [t.name for t in fig.data] == ["X", "Y", "X"]
    assert [t.showlegend for t in fig.data] == [True, True, False]        # one legend entry per group
    assert list(fig.data[0].error_y.array) == [1.0, 0.0]                  # 2/sqrt(4); n = 1: no bar
    assert list(fig.data[1].error_y.array) == [1.0, 2.0]                  # 3/sqrt(9), 8/sqrt(16)
    assert list(fig.data[1].y) == [3.0, 4.0]
    assert [a.text for a in fig.layout.annotations] == ["Eosinophils (10^9/L)", "TREG"]
