"""Data-quality figures: visit completeness and data-entry lag by site. Pure: the tables of
:mod:`analysis.completeness` in, themed plotly figures out. No arm anywhere."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.theme import NEUTRAL, PALETTE, apply_theme

STATUS_COLORS = {"done": PALETTE[2], "missed": PALETTE[1], "overdue": PALETTE[3]}
STATUS_LABELS = {"done": "Done", "missed": "Missed", "overdue": "Overdue"}


def plot_completeness(completeness: pd.DataFrame, site_names: dict | None = None,
                      title: str | None = "Expected visits by site: done, missed, overdue",
                      subtitle: str | None = None) -> go.Figure:
    """Horizontal stacked bars of the expected visits of each site (done, missed, overdue), sites
    ordered by % done (lowest on top, where the eye starts), % done printed after each bar.

    Parameters
    ----------
    completeness : output of ``summarize_completeness_by_site`` (the Total row is left out of the
        bars and given in the x-axis title).
    site_names : optional site id -> name for the labels.
    """
    sites = completeness[completeness["site"] != "Total"].copy()
    sites = sites.sort_values(["percent_done", "site"], ascending=[False, False], kind="stable", na_position="first")
    names = site_names or {}
    labels = [f"{s} {names[s]}" if s in names else str(s) for s in sites["site"]]
    fig = go.Figure()
    for status in ("done", "missed", "overdue"):
        fig.add_trace(go.Bar(y=labels, x=sites[status], name=STATUS_LABELS[status], orientation="h",
                             marker_color=STATUS_COLORS[status], customdata=sites["expected"],
                             hovertemplate="%{y}: %{x} " + status + " of %{customdata} expected<extra></extra>"))
    pct = sites["percent_done"].map(lambda p: "" if pd.isna(p) else f"{p:.0f}% done")
    fig.add_trace(go.Scatter(y=labels, x=sites["expected"], mode="text", text=pct, textposition="middle right",
                             showlegend=False, hoverinfo="skip", textfont=dict(color=NEUTRAL)))
    total = completeness[completeness["site"] == "Total"]
    xtitle = "Expected visits (target date reached, subject still followed)"
    if len(total) and pd.notna(total["percent_done"].iloc[0]):
        t = total.iloc[0]
        xtitle += f" · overall {t['done']} of {t['expected']} done ({t['percent_done']:.1f}%)"
    top = float(sites["expected"].max()) if len(sites) else 1.0
    fig.update_xaxes(title_text=xtitle, range=[0, top * 1.18 + 1])
    fig.update_layout(barmode="stack", height=max(320, 26 * len(sites) + 160), legend=dict(traceorder="normal"))
    return apply_theme(fig, title, subtitle)


def plot_entry_lag(entry_lag: pd.DataFrame, dataset: str | None = None, late_days: int = 30,
                   title: str | None = "Data-entry lag by site", subtitle: str | None = None) -> go.Figure:
    """Median and 90th percentile of the entry lag (days) per site, with the late-entry threshold.

    Parameters
    ----------
    entry_lag : output of ``summarize_entry_lag`` (optionally stacked with a ``dataset`` column;
        pick one with ``dataset``).
    """
    d = entry_lag if dataset is None or "dataset" not in entry_lag else entry_lag[entry_lag["dataset"] == dataset]
    d = d[d["site"] != "Total"]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=d["site"], y=d["median_lag"], name="Median", marker_color=PALETTE[0],
                         customdata=d[["records", "late"]],
                         hovertemplate="%{x}: median %{y:.0f} days (%{customdata[0]} records, "
                         "%{customdata[1]} late)<extra></extra>"))
    fig.add_trace(go.Scatter(x=d["site"], y=d["p90_lag"], name="90th percentile", mode="markers",
                             marker=dict(color=PALETTE[1], symbol="diamond", size=9)))
    fig.add_hline(y=late_days, line_dash="dash", line_color=NEUTRAL,
                  annotation_text=f"late: > {late_days} days", annotation_position="top left")
    fig.update_yaxes(title_text="Days from visit to data entry", rangemode="tozero")
    fig.update_layout(height=380)
    return apply_theme(fig, title, subtitle)
