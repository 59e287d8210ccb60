"""Survival figures: Kaplan-Meier with CI bands, censor ticks, numbers at risk under the axis and
the landmark marked; subgroup forest plot; group-sequential boundaries. Pure: tables in, figures out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.survival import fit_km, compute_loglog_ci, summarize_at_risk
from analysis.theme import PLAN_COLOR, apply_theme, arm_color_map


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def plot_km(df, group_col=None, groups=None, landmark_day=640, times=None, show_ci=True, annotation=None,
            title="Overall survival", subtitle=None, time_col="AVAL", censor_col="CNSR") -> go.Figure:
    """Kaplan-Meier curves per group (pooled "All" when ``group_col`` is None) with 95% log-log CI
    bands, censoring ticks, the landmark as a dashed line, and numbers at risk (cumulative events,
    censored) in a table row under the x-axis. ``annotation``: text for the panel (e.g. HR and p)."""
    levels = ["All"] if group_col is None else (list(groups) if groups else sorted(df[group_col].dropna().unique()))
    colors = arm_color_map(levels)
    times = list(times) if times is not None else list(range(0, int(landmark_day) + 1, 80))
    fig = make_subplots(rows=2, cols=1, row_heights=[0.78, 0.22], vertical_spacing=0.1, shared_xaxes=False)
    for g in levels:
        sub = df if group_col is None else df[df[group_col] == g]
        if not len(sub):
            continue
        t = sub[time_col].to_numpy(float)
        e = (sub[censor_col] == 0).to_numpy(int)
        km = fit_km(t, e)
        x = np.concatenate([[0.0], km.time])
        y = np.concatenate([[1.0], km.survival])
        lo, hi = compute_loglog_ci(km.survival, km.greenwood)
        lo, hi = np.concatenate([[1.0], lo]), np.concatenate([[1.0], hi])
        c = colors[g]
        if show_ci:
            fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0, shape="hv"), showlegend=False,
                                     hoverinfo="skip"), row=1, col=1)
            fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                                     fillcolor=_rgba(c, 0.15), showlegend=False, hoverinfo="skip"), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{g} (n={len(sub)})", line=dict(color=c, shape="hv", width=2),
                                 hovertemplate="day %{x}: S=%{y:.3f}<extra>" + str(g) + "</extra>"), row=1, col=1)
        ct = t[e == 0]
        cs, _ = km.at(ct)
        fig.add_trace(go.Scatter(x=ct, y=cs, mode="markers", marker=dict(symbol="line-ns-open", size=8, color=c),
                                 showlegend=False, hoverinfo="skip"), row=1, col=1)
    fig.add_vline(x=landmark_day, line=dict(color=PLAN_COLOR, dash="dash", width=1), row=1, col=1)
    fig.add_annotation(x=landmark_day, y=1.02, xref="x", yref="y", text=f"day {landmark_day}", showarrow=False,
                       font=dict(size=10))
    if annotation:
        fig.add_annotation(x=0.02, y=0.05, xref="x domain", yref="y domain", text=annotation, showarrow=False,
                           align="left", bgcolor="rgba(255,255,255,0.8)")
    risk = summarize_at_risk(df, group_col, times, groups=levels if group_col else None,
                             time_col=time_col, censor_col=censor_col)
    for i, g in enumerate(levels):
        r = risk[risk["group"] == g]
        fig.add_trace(go.Scatter(x=r["time"], y=[i] * len(r), mode="text", showlegend=False, hoverinfo="skip",
                                 text=[f"{a} ({ev}, {cn})" for a, ev, cn in zip(r["n_at_risk"], r["n_events"], r["n_censored"])],
                                 textfont=dict(size=10, color=colors[g])), row=2, col=1)
    xmax = max(times[-1], landmark_day) * 1.08
    fig.update_xaxes(range=[-xmax * 0.02, xmax], title_text="Days since randomisation", row=1, col=1)
    fig.update_xaxes(range=[-xmax * 0.02, xmax], showticklabels=False, showgrid=False, row=2, col=1)
    fig.update_yaxes(range=[0, 1.05], title_text="Survival probability", tickformat=".0%", row=1, col=1)
    fig.update_yaxes(tickvals=list(range(len(levels))), ticktext=[str(g) for g in levels], showgrid=False,
                     range=[len(levels) - 0.5, -0.5], title_text="At risk (events, censored)",
                     title_font=dict(size=10), row=2, col=1)
    fig.update_layout(height=560, legend=dict(orientation="h", y=1.08, x=0), margin=dict(r=40))
    return apply_theme(fig, title, subtitle)


def plot_forest(subgroups: pd.DataFrame, title="Hazard ratio by subgroup", subtitle=None,
                labels=("favours experimental", "favours reference")) -> go.Figure:
    """Forest plot of subgroup HRs (95% CI) on a log axis with the interaction p per factor."""
    sg = subgroups.reset_index(drop=True)
    ylab = []
    for factor, g in sg.groupby("factor", sort=False):
        p = g["p_interaction"].iloc[0]
        ylab.append(f"<b>{factor}</b> (interaction p={p:.3f})" if pd.notna(p) else f"<b>{factor}</b>")
        ylab += [f"   {lv} (n={n})" for lv, n in zip(g["level"], g["n"])]
    y, hr, lo, hi, k = [], [], [], [], 0
    for factor, g in sg.groupby("factor", sort=False):
        k += 1
        for _, r in g.iterrows():
            y.append(k)
            hr.append(r["hr"])
            lo.append(r["ci_lower"])
            hi.append(r["ci_upper"])
            k += 1
    hr, lo, hi = map(np.asarray, (hr, lo, hi))
    fig = go.Figure(go.Scatter(x=hr, y=y, mode="markers", marker=dict(symbol="square", size=9, color="#0072B2"),
                               error_x=dict(type="data", symmetric=False, array=hi - hr, arrayminus=hr - lo,
                                            color="#0072B2"),
                               hovertemplate="HR %{x:.2f}<extra></extra>", showlegend=False))
    fig.add_vline(x=1, line=dict(color=PLAN_COLOR, dash="dash", width=1))
    ticks = [0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10]
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], minor=dict(showgrid=False),
                     title_text=f"Hazard ratio (95% CI), log scale: < 1 {labels[0]}")
    fig.update_yaxes(tickvals=list(range(len(ylab))), ticktext=ylab, autorange="reversed", showgrid=False)
    fig.update_layout(height=max(300, 28 * len(ylab) + 120), margin=dict(l=260))
    return apply_theme(fig, title, subtitle)


def plot_boundaries(boundaries: pd.DataFrame, observed: pd.DataFrame | None = None,
                    title="Group-sequential efficacy boundary", subtitle=None) -> go.Figure:
    """Boundary z by information fraction (Lan-DeMets O'Brien-Fleming type), with observed z."""
    fig = go.Figure(go.Scatter(x=boundaries["information_fraction"], y=boundaries["boundary_z"],
                               mode="lines+markers", name="Efficacy boundary", line=dict(color="#D55E00")))
    if observed is not None and len(observed):
        fig.add_trace(go.Scatter(x=observed["information_fraction"], y=observed["observed_z"], mode="markers",
                                 name="Observed z", marker=dict(size=10, color="#0072B2")))
    fig.update_xaxes(range=[0, 1.05], title_text="Information fraction")
    fig.update_yaxes(title_text="z statistic")
    return apply_theme(fig, title, subtitle)
