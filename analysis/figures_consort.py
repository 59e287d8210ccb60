"""CONSORT 2025 flow diagram drawn from the ``consort`` table (one row per stage, group, reason)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.theme import apply_theme


def _box(fig, x, y, text, w=0.42, h=0.085):
    fig.add_shape(type="rect", x0=x - w / 2, x1=x + w / 2, y0=y - h / 2, y1=y + h / 2,
                  line=dict(color="#333333", width=1), fillcolor="white")
    fig.add_annotation(x=x, y=y, text=text, showarrow=False, font=dict(size=10), align="center")


def _arrow(fig, x0, y0, x1, y1):
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                       arrowhead=2, arrowsize=1, arrowwidth=1, arrowcolor="#333333", text="")


def plot_consort(consort: pd.DataFrame, title="CONSORT flow diagram", subtitle=None, max_reasons=4) -> go.Figure:
    """Assessed -> excluded (with reasons) -> randomised -> per arm: allocated, received,
    discontinued (reasons), died, lost to follow-up, analysed."""
    c = consort.fillna({"reason": ""})

    def n(stage, group="All", reason=""):
        r = c[(c["stage"] == stage) & (c["group"] == group) & (c["reason"] == reason)]
        return int(r["n"].iloc[0]) if len(r) else 0

    fig = go.Figure()
    _box(fig, 0.4, 0.95, f"Assessed for eligibility (n={n('Assessed for eligibility')})", w=0.3)
    excl = c[(c["stage"] == "Excluded") & (c["reason"] != "")]
    top = excl[~excl["reason"].str.contains(":")]
    lines = [f"Excluded (n={n('Excluded')})"] + [f"• {r} (n={k})" for r, k in zip(top["reason"], top["n"])]
    detail = excl[excl["reason"].str.contains(":")].head(max_reasons * 2)
    lines += [f"   – {r.split(': ', 1)[1]} (n={k})" for r, k in zip(detail["reason"], detail["n"])]
    _box(fig, 0.78, 0.8, "<br>".join(lines), w=0.42, h=0.03 + 0.022 * len(lines))
    _arrow(fig, 0.5, 0.905, 0.5, 0.71)
    _arrow(fig, 0.5, 0.8, 0.57, 0.8)
    _box(fig, 0.5, 0.67, f"Randomised (n={n('Randomised')})", w=0.3)
    groups = [g for g in dict.fromkeys(c["group"]) if g != "All"] or ["All"]
    xs = [0.25, 0.75] if len(groups) == 2 else [(i + 0.5) / len(groups) for i in range(len(groups))]
    for g, x in zip(groups, xs):
        _arrow(fig, 0.5, 0.628, x, 0.58)
        _box(fig, x, 0.53, f"<b>{g}</b><br>Allocated (n={n('Allocated', g)})<br>Received allocated intervention "
                           f"(n={n('Received allocated intervention', g)})", w=0.44, h=0.09)
        disc = c[(c["stage"] == "Discontinued") & (c["group"] == g) & (c["reason"] != "")]
        lines = [f"Discontinued (n={n('Discontinued', g)})"] + [f"• {r.title()} (n={k})" for r, k in
                                                               zip(disc["reason"], disc["n"])]
        lines += [f"Died (n={n('Died', g)})", f"Lost to follow-up (n={n('Lost to follow-up', g)})"]
        _arrow(fig, x, 0.485, x, 0.4)
        _box(fig, x, 0.32, "<br>".join(lines), w=0.44, h=0.03 + 0.024 * len(lines))
        _arrow(fig, x, 0.23, x, 0.17)
        _box(fig, x, 0.12, f"Analysed, ITT (n={n('Analysed (ITT)', g)})", w=0.44, h=0.07)
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[0.05, 1.0])
    fig.update_layout(height=720, showlegend=False)
    return apply_theme(fig, title, subtitle)
