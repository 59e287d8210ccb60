"""Figures of concomitant care: cumulative incidence of the ALS care milestones (non-invasive
ventilation, gastrostomy, permanent assisted ventilation, tracheostomy), one panel each, one
step line per group (pooled: "All")."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.theme import apply_theme, arm_color_map

DASHES = ("solid", "dash", "dot", "dashdot")


def plot_care_incidence(curves: pd.DataFrame, table: pd.DataFrame, title: str | None = None,
                        subtitle: str | None = None) -> go.Figure:
    """One panel per care type (``table``'s care_label, in its order), cumulative incidence (%)
    against days from randomisation; the legend names each group with its N at risk per panel
    in the hover. Groups are told apart by colour and line style (greyscale-safe)."""
    cares = list(dict.fromkeys(table["care"]))
    labels = dict(zip(table["care"], table["care_label"]))
    groups = list(dict.fromkeys(table["group"]))
    colours = arm_color_map(groups)
    fig = make_subplots(rows=1, cols=len(cares), shared_yaxes=True, subplot_titles=[labels[c] for c in cares],
                        horizontal_spacing=0.03)
    for i, care in enumerate(cares, start=1):
        for j, g in enumerate(groups):
            c = curves[(curves["care"] == care) & (curves["group"] == g)].sort_values("time")
            at_risk = table.loc[(table["care"] == care) & (table["group"] == g), "at_risk"]
            fig.add_trace(go.Scatter(
                x=c["time"], y=c["cif"], mode="lines", line={"shape": "hv", "color": colours.get(g),
                                                              "dash": DASHES[j % len(DASHES)], "width": 2},
                name=("All participants" if g == "All" else str(g)), legendgroup=str(g), showlegend=i == 1,
                hovertemplate=f"{g}: %{{y:.1f}} % by day %{{x:.0f}} (at risk at start "
                              f"{int(at_risk.iloc[0]) if len(at_risk) else 0})<extra></extra>"), row=1, col=i)
        fig.update_xaxes(title_text="Days from randomisation", row=1, col=i)
    fig.update_yaxes(title_text="Cumulative incidence (%)", range=[0, 100], row=1, col=1)
    fig.update_layout(height=380, legend={"orientation": "h", "y": -0.25})
    return apply_theme(fig, title, subtitle)
