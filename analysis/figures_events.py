"""Death projection figure (plotly): the fan chart of an ``analysis.event_projection.EventProjection``
(observed deaths to the cut, projected median with 80 % and 95 % prediction bands to the final
analysis), returned as a themed ``plotly.graph_objects.Figure``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.event_projection import EventProjection, _sorted_quantiles
from analysis.theme import NEUTRAL, PLAN_COLOR, apply_theme, arm_color_map


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def plot_event_projection(projection: EventProjection, target: int | None = None, title: str | None = None,
                          subtitle: str | None = None, target_label: str | None = None):
    """Fan chart: cumulative deaths counted by the primary analysis (within the landmark) to the
    cut, then the projection's median with 80 % and 95 % prediction bands to the final analysis,
    one fan per group ("All" pooled; each arm and "Total" by arm), the ``target`` line (planned
    deaths, for the pooled or total curve) and the cut and planned final analysis dates."""
    fig = go.Figure()
    groups = list(projection.groups)
    colours = arm_color_map(groups)
    pooled = groups == ["All"]
    for group in groups:
        colour = colours[group] if not pooled else "#0072B2"
        name = "" if pooled else f"{group}: "
        fan = projection.fan(group)
        if len(fan) > 1:
            for lo, hi, alpha, label in (("lower95", "upper95", 0.12, "95% prediction"),
                                         ("lower80", "upper80", 0.25, "80% prediction")):
                fig.add_trace(go.Scatter(x=fan["date"], y=fan[hi], mode="lines", line=dict(width=0, shape="hv"),
                                         showlegend=False, hoverinfo="skip", legendgroup=group))
                fig.add_trace(go.Scatter(x=fan["date"], y=fan[lo], mode="lines", line=dict(width=0, shape="hv"),
                                         fill="tonexty", fillcolor=_rgba(colour, alpha), name=name + label,
                                         legendgroup=group))
            fig.add_trace(go.Scatter(x=fan["date"], y=fan["median"], mode="lines", name=name + "projected (median)",
                                     line=dict(color=colour, dash="dot", width=2, shape="hv"), legendgroup=group))
        obs = projection.observed_curve(group, start=projection.start_date)
        fig.add_trace(go.Scatter(x=obs["date"], y=obs["deaths"], mode="lines", name=name + "observed",
                                 line=dict(color=colour, width=2.5, shape="hv"), legendgroup=group))
    if target:
        fig.add_hline(y=target, line=dict(color=NEUTRAL, width=1, dash="dash"),
                      annotation_text=target_label or f"Planned deaths {target}", annotation_position="top left")
        main = groups[-1]
        days = projection.target_days(main, target)
        q = _sorted_quantiles(days)
        if np.isfinite(q["median"]) and q["median"] > 0:
            when = pd.Timestamp(projection.cut_date) + pd.Timedelta(days=int(q["median"]))
            fig.add_annotation(x=when, y=target, text=f"{target} deaths: {when:%b %Y} (median)", showarrow=True,
                               arrowhead=2, ax=-50, ay=-30, font=dict(size=11))
    for date, text in ((projection.cut_date, "Data cut-off"),
                       (projection.planned_final_date, "Planned final analysis")):
        if date is not None:
            fig.add_vline(x=pd.Timestamp(date).timestamp() * 1000, line=dict(color=PLAN_COLOR, width=1, dash="dot"),
                          annotation_text=text, annotation_position="top right", annotation_font_size=10)
    fig.update_layout(xaxis_title="Date", yaxis_title=f"Deaths by day {projection.landmark_day} (cumulative)",
                      hovermode="x unified", legend=dict(orientation="h", y=-0.18))
    return apply_theme(fig, title, subtitle)
