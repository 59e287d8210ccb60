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


# --------------------------------------------------------------------------- printed figures
# A printed figure (report, manuscript) is laid out at its print size in CSS pixels (96 per inch),
# so a font of ``s`` px prints at ``0.75 * s`` pt: the base font 11 px is 8.25 pt and the smallest
# text (tick labels, the number-at-risk table, panel notes) 10 px = 7.5 pt, above the journals'
# 7 pt minimum. A figure drawn wider than its print size (the CONSORT diagram, laid out from its
# text) is scaled down at export: ``print_font_scale`` says by how much.
PX_PER_IN = 96
PRINT_FONT_SIZE = 11
PRINT_MIN_FONT_SIZE = 10
PT_PER_PX = 0.75

# Arms separated in greyscale by line style as well as colour: the reference arm dashed.
REFERENCE_ARMS = {"Placebo", "PBO", "Group B"}


def arm_dash(group: str) -> str:
    """Line dash of an arm: "dash" for the reference arm (placebo, or its masked code), "solid"
    otherwise."""
    return "dash" if str(group) in REFERENCE_ARMS else "solid"


def _arm_of(trace) -> str | None:
    """The arm a trace draws, from its name ("Placebo (n=109)") or legend group."""
    for text in (getattr(trace, "legendgroup", None), getattr(trace, "name", None)):
        if not text:
            continue
        for arm in ARM_COLORS:
            if str(text) == arm or str(text).startswith(arm + " ("):
                return arm
    return None


def _print_size(size, floor=PRINT_MIN_FONT_SIZE) -> float:
    """A screen font size (px, drawn for the dashboard's 12 px base) at print: one px smaller when
    above the print base, never under the print minimum."""
    size = size or FONT_SIZE
    return max(floor, size - 1 if size > PRINT_FONT_SIZE else size)


def print_style(fig: go.Figure, wrap_cells: bool = True) -> go.Figure:
    """Restyle a figure for print (in place): no title (the caption carries it), the print fonts
    (base :data:`PRINT_FONT_SIZE`, nothing under :data:`PRINT_MIN_FONT_SIZE`, text inside bars
    included), arms in their fixed
    Okabe-Ito colours with the reference arm dashed (separable in greyscale), and the cells of a
    text row marked ``meta="at-risk"`` (Kaplan-Meier numbers at risk) on two lines ("111" over
    "(0, 0)") so that they fit at two-column width, with the plot above it moved up to leave room
    for the x-axis title, and an annotation named "print-wrap" (a panel note) one clause a line. The dashboard never calls this."""
    legend_above = fig.layout.legend.orientation == "h" and (fig.layout.legend.y or 0) >= 1
    fig.update_layout(title=dict(text=None), font=dict(size=PRINT_FONT_SIZE),
                      legend=dict(font=dict(size=PRINT_MIN_FONT_SIZE)),
                      # text inside a bar is not shrunk to the bar's thickness below the print minimum
                      uniformtext=dict(minsize=PRINT_MIN_FONT_SIZE, mode="show"),
                      margin=dict(t=34 if legend_above else 14))      # no title above the plot
    fig.update_xaxes(tickfont=dict(size=PRINT_MIN_FONT_SIZE), title_font=dict(size=PRINT_FONT_SIZE))
    fig.update_yaxes(tickfont=dict(size=PRINT_MIN_FONT_SIZE), title_font=dict(size=PRINT_FONT_SIZE))
    for a in fig.layout.annotations:
        a.font.size = _print_size(a.font.size)
        if a.name == "print-wrap" and a.text:           # a long panel note: one clause a line
            a.text = a.text.replace("; ", ";<br>")
    if any(t.meta == "at-risk" for t in fig.data) and "yaxis2" in fig.layout:
        # the number-at-risk row (two lines a cell in print) under room for the x-axis title
        fig.layout.yaxis.domain = [0.40, 1.0]
        fig.layout.yaxis2.domain = [0.0, 0.24]
    for t in fig.data:
        if getattr(t, "textfont", None) is not None and "text" in (getattr(t, "mode", "") or ""):
            t.textfont.size = _print_size(t.textfont.size)
        if wrap_cells and t.meta == "at-risk" and t.text is not None:
            t.text = [str(s).replace(" (", "<br>(", 1) for s in t.text]
        arm = _arm_of(t)
        if arm is not None and "lines" in (getattr(t, "mode", "") or "") and t.line is not None \
                and (t.line.width is None or t.line.width > 0):
            t.line.color = ARM_COLORS[arm]
            t.line.dash = arm_dash(arm)
    return fig


def smallest_font(fig: go.Figure) -> float:
    """The smallest font size (px) set anywhere in a figure (layout, axes, legend, annotations,
    trace text), for a check that printed text stays legible."""
    sizes = [fig.layout.font.size or FONT_SIZE]
    for ax in [k for k in fig.layout if k.startswith(("xaxis", "yaxis"))]:
        axis = fig.layout[ax]
        if axis.tickfont.size:
            sizes.append(axis.tickfont.size)
    if fig.layout.legend.font.size:
        sizes.append(fig.layout.legend.font.size)
    sizes += [a.font.size for a in fig.layout.annotations if a.font.size]
    sizes += [t.textfont.size for t in fig.data if getattr(t, "textfont", None) is not None and t.textfont.size]
    return float(min(sizes))
