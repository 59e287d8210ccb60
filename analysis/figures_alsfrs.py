"""ALSFRS-R figures: mean change from baseline +/- SE by visit with n under each visit, individual
trajectories (sampled, seeded), stage distributions and the four domains. Pure: tables in,
plotly figures out (styled by :mod:`analysis.theme`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.theme import NEUTRAL, apply_theme, arm_color_map

DOMAIN_LABELS = {"BULBAR": "Bulbar (items 1-3)", "FINEMOT": "Fine motor (items 4-6)",
                 "GROSSMOT": "Gross motor (items 7-9)", "RESP": "Respiratory (items 10-12)"}
# stages 0-4 light to dark (sequential, colour-blind safe), death black
STAGE_COLORS = ["#DEEBF7", "#9ECAE1", "#4292C6", "#08519C", "#08306B", "#000000"]


def _groups(table):
    return list(dict.fromkeys(table["group"].astype(str)))


def _visit_axis(table):
    """Visits in schedule order (by median day) -> position 0..k-1."""
    order = table.groupby("visit", sort=False)["day"].median().sort_values(kind="stable")
    return {v: i for i, v in enumerate(order.index)}


def _n_ticks(table, groups, pos):
    """Tick text per visit: the visit name then one "n=" line per group (in group order)."""
    n = table.pivot_table(index="visit", columns="group", values="n", aggfunc="sum")
    text = []
    for v in pos:
        lines = [f"n={int(n.loc[v, g]) if g in n.columns and pd.notna(n.loc[v, g]) else 0}" for g in groups]
        text.append(f"{v}<br>" + "<br>".join(lines))
    return list(pos.values()), text


def plot_alsfrs_change(by_visit: pd.DataFrame, title="ALSFRS-R total: mean change from baseline",
                       subtitle=None, value="mean_change", se="se_change") -> go.Figure:
    """Mean change (+/- SE) by visit and group from ``summarize_alsfrs_by_visit``.

    Visits are evenly spaced in schedule order; the n per visit and group is printed under each
    visit (one line per group, in legend order). Groups are offset slightly so their error bars
    do not overlap. Use ``value="mean"``, ``se="se"`` to plot the score instead of the change."""
    table = by_visit.assign(group=by_visit["group"].astype(str))
    groups = _groups(table)
    colors = arm_color_map(groups)
    pos = _visit_axis(table)
    fig = go.Figure()
    offset = np.linspace(-0.08, 0.08, len(groups)) if len(groups) > 1 else [0.0]
    for g, dx in zip(groups, offset):
        d = table[table["group"] == g]
        fig.add_trace(go.Scatter(x=d["visit"].map(pos) + dx, y=d[value], mode="lines+markers", name=g,
                                 line=dict(color=colors[g]), error_y=dict(type="data", array=d[se].fillna(0)),
                                 customdata=np.c_[d["n"], d["visit"], d["day"]],
                                 hovertemplate="%{customdata[1]} (day %{customdata[2]}): %{y:.2f} "
                                 "(n=%{customdata[0]})<extra>" + g + "</extra>"))
    vals, text = _n_ticks(table, groups, pos)
    fig.update_xaxes(tickvals=vals, ticktext=text, tickangle=0, showgrid=False,
                     title_text="Visit (n: " + ", ".join(groups) + ")" if len(groups) > 1 else "Visit (n)")
    ylab = "Mean change from baseline (+/- SE)" if value == "mean_change" else "Mean (+/- SE)"
    fig.update_yaxes(title_text=ylab)
    fig.update_layout(height=480, legend=dict(x=0.99, xanchor="right", y=0.99, yanchor="top"),
                      margin=dict(b=70 + 16 * len(groups)))
    return apply_theme(fig, title, subtitle)


def plot_spaghetti(adqs: pd.DataFrame, group_col=None, paramcd="ALSFRST", max_subjects=200, seed=1,
                   title="ALSFRS-R total: individual trajectories", subtitle=None, groups=None) -> go.Figure:
    """Individual trajectories (a seeded random sample of at most ``max_subjects`` per group) with
    the mean of all subjects by visit (median visit day on the x-axis).

    One SVG line trace per group with NaN breaks between subjects (at most ``max_subjects`` of them,
    whatever the trial size), so the browser draws one path per group: at this size SVG draws in
    about a tenth of the time WebGL takes to start (``go.Scattergl`` costs a WebGL context, about
    1 s in a browser without a GPU, and static export would need WebGL too). The legend says how
    many subjects are drawn out of how many."""
    q = adqs.loc[adqs["PARAMCD"] == paramcd, ["USUBJID", "AVISITN", "ADY", "AVAL"]
                 + ([group_col] if group_col else [])]
    q = q.assign(group="All") if group_col is None else q.assign(group=q[group_col].astype(str))
    if groups is None:
        groups = sorted(q["group"].dropna().unique())
    colors = arm_color_map(groups)
    rng = np.random.default_rng(seed)
    fig = go.Figure()
    for g in groups:
        d = q[q["group"] == g]
        ids = d["USUBJID"].unique()
        keep = rng.choice(ids, size=min(max_subjects, len(ids)), replace=False) if len(ids) else ids
        s = d[d["USUBJID"].isin(keep)].sort_values(["USUBJID", "ADY"])
        brk = np.flatnonzero(s["USUBJID"].to_numpy()[1:] != s["USUBJID"].to_numpy()[:-1]) + 1
        x = np.insert(s["ADY"].to_numpy(float), brk, np.nan)
        y = np.insert(s["AVAL"].to_numpy(float), brk, np.nan)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=colors[g], width=0.7), opacity=0.3,
                                   name=f"{g}: {len(keep)} of {len(ids)} subjects", hoverinfo="skip",
                                   legendgroup=g))
        m = d.groupby("AVISITN").agg(day=("ADY", "median"), mean=("AVAL", "mean"), n=("AVAL", "count")).reset_index()
        fig.add_trace(go.Scatter(x=m["day"], y=m["mean"], mode="lines+markers", name=f"{g}: mean",
                                 line=dict(color=colors[g] if g != "All" else "#000000", width=3),
                                 customdata=m["n"], legendgroup=g,
                                 hovertemplate="day %{x}: mean %{y:.1f} (n=%{customdata})<extra></extra>"))
    fig.update_xaxes(title_text="Days since randomisation")
    top = 48.5 if paramcd == "ALSFRST" else None
    fig.update_yaxes(title_text=paramcd if paramcd != "ALSFRST" else "ALSFRS-R total",
                     range=[0, top] if top else None)
    fig.update_layout(height=480)
    return apply_theme(fig, title, subtitle)


def plot_stages(stages: pd.DataFrame, title="King's stage by visit", subtitle=None, stage_name="Stage",
                death_stage=5) -> go.Figure:
    """Stacked bars of the % of subjects in each stage per visit (grouped by group) from
    ``summarize_stages``; stage 5 is labelled death. Hover gives n and %."""
    st = stages.assign(group=stages["group"].astype(str))
    frame = st.drop_duplicates(["group", "AVISITN"]).sort_values(["AVISITN"])
    groups = _groups(st)
    frame = frame.assign(_g=frame["group"].map({g: i for i, g in enumerate(groups)})).sort_values(["_g", "AVISITN"])
    many = len(groups) > 1
    x = [frame["group"].tolist(), frame["visit"].tolist()] if many else frame["visit"].tolist()
    fig = go.Figure()
    for k in sorted(st["stage"].unique()):
        d = frame[["group", "AVISITN"]].merge(st[st["stage"] == k], on=["group", "AVISITN"], how="left")
        label = "Death" if k == death_stage else f"{stage_name} {k}"
        fig.add_trace(go.Bar(x=x, y=d["percent"].fillna(0), name=label, customdata=d["n"].fillna(0),
                             marker_color=STAGE_COLORS[min(int(k), len(STAGE_COLORS) - 1)],
                             hovertemplate=label + ": %{y:.1f}% (n=%{customdata})<extra></extra>"))
    fig.update_layout(barmode="stack", height=460, legend=dict(traceorder="normal"))
    fig.update_yaxes(title_text="% of subjects (assessed or dead)", range=[0, 100])
    return apply_theme(fig, title, subtitle)


def plot_domains(domain_table: pd.DataFrame, title="ALSFRS-R domains: mean change from baseline",
                 subtitle=None, value="mean_change", se="se_change") -> go.Figure:
    """Mean change (+/- SE) by visit and group for each domain, one panel per domain (shared
    y-axis). Input: ``summarize_alsfrs_by_visit`` rows for each domain PARAMCD stacked with a
    ``domain`` column (as the dashboard's domain table)."""
    domains = [d for d in DOMAIN_LABELS if d in set(domain_table["domain"])] or \
        list(dict.fromkeys(domain_table["domain"]))
    groups = _groups(domain_table)
    colors = arm_color_map(groups)
    ncol = 2 if len(domains) > 1 else 1
    nrow = int(np.ceil(len(domains) / ncol))
    fig = make_subplots(rows=nrow, cols=ncol, shared_yaxes=True, shared_xaxes=True,
                        subplot_titles=[DOMAIN_LABELS.get(d, d) for d in domains],
                        vertical_spacing=0.12, horizontal_spacing=0.06)
    for i, dom in enumerate(domains):
        r, c = i // ncol + 1, i % ncol + 1
        for g in groups:
            d = domain_table[(domain_table["domain"] == dom) & (domain_table["group"].astype(str) == g)]
            fig.add_trace(go.Scatter(x=d["day"], y=d[value], mode="lines+markers", name=g, legendgroup=g,
                                     showlegend=i == 0, line=dict(color=colors.get(g, NEUTRAL)),
                                     error_y=dict(type="data", array=d[se].fillna(0)),
                                     customdata=np.c_[d["n"], d["visit"]],
                                     hovertemplate="%{customdata[1]}: %{y:.2f} (n=%{customdata[0]})<extra>"
                                     + g + "</extra>"), row=r, col=c)
    fig.update_xaxes(title_text="Days since randomisation", row=nrow)
    fig.update_yaxes(matches="y")
    fig.update_yaxes(title_text="Mean change (+/- SE)", col=1)
    fig.update_layout(height=300 * nrow + 120, margin=dict(b=90),
                      legend=dict(orientation="h", x=0, y=-0.08 * 2 / nrow, yanchor="top"))
    return apply_theme(fig, title, subtitle)
