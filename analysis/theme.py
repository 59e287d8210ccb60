"""One plotly look for every figure: dashboard, reports and manuscript.

Every figure module builds its traces, then calls :func:`apply_theme`. Colours come from the
Okabe-Ito palette (colour-blind safe); arms get fixed colours so "Low-dose IL-2" is the same
blue in every figure, whether the labels are real or masked ("Group A" / "Group B").

Examples
--------
>>> import plotly.graph_objects as go
>>> fig = apply_theme(go.Figure(), title="Cumulative randomised", subtitle="Cut 2019-09-30")
>>> fig.layout.template.layout.font.size
12
"""
from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

FONT_FAMILY = "Arial, Helvetica, sans-serif"
FONT_SIZE = 12
TITLE_SIZE = 15
SUBTITLE_SIZE = 11
FONT_COLOR = "#222222"
GRID_COLOR = "#E5E5E5"
AXIS_COLOR = "#555555"

# Okabe & Ito (2008) colour-blind-safe palette (black moved last)
PALETTE = [
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#000000",  # black
]
NEUTRAL = "#7F7F7F"     # pooled "All" / "Total"
PLAN_COLOR = "#555555"  # planned / reference lines

# Fixed arm colours: experimental = blue, reference = vermillion; masked codes follow the same order.
ARM_COLORS: dict[str, str] = {
    "Low-dose IL-2": PALETTE[0],
    "IL2LD": PALETTE[0],
    "Group A": PALETTE[0],
    "Placebo": PALETTE[1],
    "PBO": PALETTE[1],
    "Group B": PALETTE[1],
    "All": NEUTRAL,
    "Total": "#000000",
}

TEMPLATE_NAME = "mirocals"


def _build_template() -> go.layout.Template:
    axis = dict(
        showline=True, linecolor=AXIS_COLOR, linewidth=1, ticks="outside", tickcolor=AXIS_COLOR,
        showgrid=True, gridcolor=GRID_COLOR, zeroline=False, automargin=True,
        title=dict(font=dict(size=FONT_SIZE)), tickfont=dict(size=FONT_SIZE - 1),
    )
    return go.layout.Template(
        layout=go.Layout(
            font=dict(family=FONT_FAMILY, size=FONT_SIZE, color=FONT_COLOR),
            title=dict(font=dict(size=TITLE_SIZE), x=0.0, xref="paper", xanchor="left"),
            paper_bgcolor="white",
            plot_bgcolor="white",
            colorway=PALETTE,
            xaxis=axis,
            yaxis=axis,
            legend=dict(bgcolor="rgba(255,255,255,0)", font=dict(size=FONT_SIZE - 1)),
            hoverlabel=dict(font=dict(family=FONT_FAMILY)),
            margin=dict(l=60, r=20, t=60, b=50),
        )
    )


pio.templates[TEMPLATE_NAME] = _build_template()


def arm_color_map(groups=None) -> dict[str, str]:
    """Colour for each group label.

    Known labels (arm labels, codes, masked codes, "All", "Total") keep their fixed colours;
    unknown labels take the next unused palette colours in the order given.

    Parameters
    ----------
    groups : iterable of str, optional
        Group labels in display order. None returns the fixed map.

    Returns
    -------
    dict
        label -> hex colour.
    """
    if groups is None:
        return dict(ARM_COLORS)
    out: dict[str, str] = {}
    used = set()
    for g in groups:
        if g in ARM_COLORS:
            out[g] = ARM_COLORS[g]
            used.add(ARM_COLORS[g])
    spare = [c for c in PALETTE if c not in used]
    i = 0
    for g in groups:
        if g not in out:
            out[g] = spare[i % len(spare)]
            i += 1
    return out


def apply_theme(fig: go.Figure, title: str | None = None, subtitle: str | None = None) -> go.Figure:
    """Apply the project template and an optional title / subtitle to a figure (in place).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    title : str, optional
        Main title (left aligned).
    subtitle : str, optional
        Smaller grey line under the title: put the data cut-off date and population (N) here.

    Returns
    -------
    plotly.graph_objects.Figure
        The same figure, for chaining.
    """
    fig.update_layout(template=pio.templates[TEMPLATE_NAME])
    if title or subtitle:
        text = title or ""
        if subtitle:
            sub = f"<span style='font-size:{SUBTITLE_SIZE}px;color:#666666'>{subtitle}</span>"
            text = f"{text}<br>{sub}" if text else sub
        fig.update_layout(title=dict(text=text))
    return fig
