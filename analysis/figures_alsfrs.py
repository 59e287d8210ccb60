"""ALSFRS-R figures: mean change from baseline +/- SE by visit with n under each visit, individual
trajectories (sampled, seeded), stage distributions. Pure: tables in, figures out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.theme import apply_theme, arm_color_map


def plot_alsfrs_change(by_visit: pd.DataFrame, title="ALSFRS-R total: mean change from baseline",
                       subtitle=None, value="mean_change", se="se_change") -> go.Figure:
    """Mean change (+/- SE) by visit and group, from ``summarize_alsfrs_by_visit``; the n per
    visit and group is printed under the x-axis."""
    groups = list(dict.fromkeys(by_visit["group"]))
    colors = arm_color_map(groups)
    fig = go.Figure()
    offset = np.linspace(-4, 4, len(groups)) if len(groups) > 1 else [0]
    for g, dx in zip(groups, offset):
        d = by_visit[by_visit["group"] == g]
        fig.add_trace(go.Scatter(x=d["day"] + dx, y=d[value], mode="lines+markers", name=str(g),
                                 line=dict(color=colors[g]), error_y=dict(type="data", array=d[se].fillna(0)),
                                 customdata=np.c_[d["n"], d["visit"]],
                                 hovertemplate="%{customdata[1]}: %{y:.2f} (n=%{customdata[0]})<extra></extra>"))
    visits = by_visit.drop_duplicates("visit")
    ticks = [f"{v}<br>" + "<br>".join(f"n={int(by_visit[(by_visit['visit'] == v) & (by_visit['group'] == g)]['n'].sum())}"
                                      for g in groups) for v in visits["visit"]]
    fig.update_xaxes(tickvals=visits["day"], ticktext=ticks, title_text="Visit (n per group)")
    fig.update_yaxes(title_text="Mean change from baseline (+/- SE)")
    fig.update_layout(height=480, legend=dict(orientation="h", y=1.08, x=0))
    return apply_theme(fig, title, subtitle)


def plot_spaghetti(adqs: pd.DataFrame, group_col=None, paramcd="ALSFRST", max_subjects=200, seed=1,
                   title="ALSFRS-R total: individual trajectories", subtitle=None) -> go.Figure:
    """Individual trajectories (a seeded random sample of at most ``max_subjects`` per group) with
    the group mean by visit."""
    q = adqs[adqs["PARAMCD"] == paramcd]
    q = q.assign(group="All") if group_col is None else q.assign(group=q[group_col])
    rng = np.random.default_rng(seed)
    groups = list(dict.fromkeys(sorted(q["group"].dropna().unique())))
    colors = arm_color_map(groups)
    fig = go.Figure()
    for g in groups:
        d = q[q["group"] == g]
        ids = d["USUBJID"].unique()
        keep = rng.choice(ids, size=min(max_subjects, len(ids)), replace=False) if len(ids) else ids
        s = d[d["USUBJID"].isin(set(keep))].sort_values(["USUBJID", "ADY"])
        # one trace per group: subjects separated by None breaks (fast at scale)
        x, y = [], []
        for _, t in s.groupby("USUBJID"):
            x += t["ADY"].tolist() + [None]
            y += t["AVAL"].tolist() + [None]
        fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", line=dict(color=colors[g], width=0.6), opacity=0.35,
                                   name=f"{g}: {len(keep)} of {len(ids)} subjects", hoverinfo="skip"))
        m = d.groupby("AVISITN").agg(day=("ADY", "median"), mean=("AVAL", "mean")).reset_index()
        fig.add_trace(go.Scatter(x=m["day"], y=m["mean"], mode="lines+markers", name=f"{g}: mean",
                                 line=dict(color=colors[g], width=3)))
    fig.update_xaxes(title_text="Days since randomisation")
    fig.update_yaxes(title_text="ALSFRS-R total", range=[0, 48.5])
    return apply_theme(fig, title, subtitle)


def plot_stages(stages: pd.DataFrame, title="Stage by visit", subtitle=None) -> go.Figure:
    """Stacked bars of the % of subjects in each stage per visit (and group)."""
    fig = go.Figure()
    stages = stages.sort_values(["group", "AVISITN"])
    x = [stages["group"].astype(str).tolist(), stages["visit"].tolist()]
    for st in sorted(stages["stage"].unique()):
        d = stages.assign(p=np.where(stages["stage"] == st, stages["percent"], 0.0))
        d = d.groupby(["group", "AVISITN", "visit"], sort=True)["p"].sum().reset_index()
        fig.add_trace(go.Bar(x=[d["group"].astype(str).tolist(), d["visit"].tolist()], y=d["p"], name=f"Stage {st}"))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="% of subjects assessed", range=[0, 100])
    return apply_theme(fig, title, subtitle)
