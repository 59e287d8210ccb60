"""Safety figures: laboratory values over time. Pure: the tables of :mod:`analysis.safety` in,
themed plotly figures out (arm colours from :mod:`analysis.theme`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.theme import NEUTRAL, apply_theme, arm_color_map


def plot_labs_over_time(labs: pd.DataFrame, title: str | None = "Laboratory values over time",
                        subtitle: str | None = None, labels: dict | None = None) -> go.Figure:
    """Mean (+/- SE) by visit and group, one panel per parameter (own y-axis each).

    Parameters
    ----------
    labs : rows of ``summarize_lab_over_time`` for one or more parameters, stacked with a
        ``paramcd`` column: paramcd, group, visit, day (median study day), n, mean, sd.
        SE = sd / sqrt(n) (no bar when n = 1).
    labels : optional paramcd -> panel title (e.g. "Eosinophils (10^9/L)").

    Returns
    -------
    plotly.graph_objects.Figure
        Groups in order of first appearance; x = median study day of the visit, so visits are
        spaced as scheduled; hover gives the visit, mean, SE and n.
    """
    params = list(dict.fromkeys(labs["paramcd"]))
    groups = list(dict.fromkeys(labs["group"].astype(str)))
    colors = arm_color_map(groups)
    labels = labels or {}
    ncol = 2 if len(params) > 1 else 1
    nrow = max(1, int(np.ceil(len(params) / ncol)))
    fig = make_subplots(rows=nrow, cols=ncol, shared_xaxes=True, vertical_spacing=0.14, horizontal_spacing=0.1,
                        subplot_titles=[labels.get(p, p) for p in params] or None)
    offset = dict(zip(groups, np.linspace(-4, 4, len(groups)) if len(groups) > 1 else [0.0]))
    for i, p in enumerate(params):
        r, c = i // ncol + 1, i % ncol + 1
        for g in groups:
            d = labs[(labs["paramcd"] == p) & (labs["group"].astype(str) == g)]
            if not len(d):
                continue
            se = (d["sd"] / np.sqrt(d["n"])).fillna(0)
            fig.add_trace(go.Scatter(x=d["day"] + offset[g], y=d["mean"], mode="lines+markers", name=g,
                                     legendgroup=g, showlegend=i == 0, line=dict(color=colors.get(g, NEUTRAL)),
                                     error_y=dict(type="data", array=se),
                                     customdata=np.c_[d["visit"], d["n"], se],
                                     hovertemplate="%{customdata[0]}: mean %{y:.3g} (SE %{customdata[2]:.2g}, "
                                     "n=%{customdata[1]})<extra>" + g + "</extra>"), row=r, col=c)
        fig.update_yaxes(title_text="Mean (+/- SE)", row=r, col=c)
    fig.update_xaxes(title_text="Days since randomisation", row=nrow)
    fig.update_layout(height=320 * nrow + 120, margin=dict(t=100))
    fig.update_annotations(font_size=13)
    return apply_theme(fig, title, subtitle)
