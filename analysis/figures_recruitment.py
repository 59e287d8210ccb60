"""Recruitment figures (plotly): cumulative vs plan with projection fan, monthly recruitment by
site, site activation timeline, screening funnel and stratum balance.

Each function takes the table from the matching ``analysis.recruitment`` function, so what is
plotted is exactly what the table shows, and returns a themed ``plotly.graph_objects.Figure``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.theme import NEUTRAL, PALETTE, PLAN_COLOR, apply_theme, arm_color_map


def _month_end(months: pd.Series) -> pd.Series:
    return pd.PeriodIndex(months.astype(str), freq="M").end_time.normalize().to_series(index=months.index)


def _month_start(months: pd.Series) -> pd.Series:
    return pd.PeriodIndex(months.astype(str), freq="M").start_time.to_series(index=months.index)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def plot_cumulative_recruitment(plan_table: pd.DataFrame, projection=None, target: int | None = None,
                                title: str | None = "Cumulative randomised: actual vs planned",
                                subtitle: str | None = None, target_label: str | None = None,
                                plan_label: str = "Planned", projection_note: str | None = None) -> go.Figure:
    """Cumulative randomised (month ends) against the plan, with an optional projection fan.

    Parameters
    ----------
    plan_table : output of ``summarize_cumulative_vs_plan`` (month, actual_cumulative,
        planned_cumulative).
    projection : optional ``RecruitmentProjection``; its ``fan_`` (cumulative randomised at
        month ends: median, 80% and 95% prediction bands) is drawn as 95% and 80% bands and a
        dotted median, and the median date of its first target is marked.
    target : draw a horizontal target line (default: the projection's first target, if any).
    target_label, plan_label : the target line's text (default "Target N") and the plan's legend
        name (e.g. "Target 116 (UK sites)", "Planned (scaled to UK sites)" for a site selection).
    projection_note : the marker's text (``format_projection_sentence``; default: the target and
        the month of its median date).
    """
    fig = go.Figure()
    x = _month_end(plan_table["month"])
    fig.add_trace(go.Scatter(x=x, y=plan_table["planned_cumulative"], name=plan_label, mode="lines",
                             line=dict(color=PLAN_COLOR, dash="dash", width=2)))
    actual = plan_table["actual_cumulative"]
    fig.add_trace(go.Scatter(x=x[actual.notna()], y=actual.dropna(), name="Actual", mode="lines+markers",
                             line=dict(color=PALETTE[0], width=2.5), marker=dict(size=4)))
    if projection is not None and len(projection.fan_):
        fan = projection.fan_
        fx = _month_end(fan["month"])
        for lo, hi, alpha, label in [("lower95", "upper95", 0.15, "95% prediction"),
                                     ("lower80", "upper80", 0.3, "80% prediction")]:
            fig.add_trace(go.Scatter(x=fx, y=fan[hi], mode="lines", line=dict(width=0), showlegend=False,
                                     hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=fx, y=fan[lo], mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(PALETTE[1], alpha), name=label))
        fig.add_trace(go.Scatter(x=fx, y=fan["median"], name="Projected (median)", mode="lines",
                                 line=dict(color=PALETTE[1], dash="dot", width=2)))
        target = target if target is not None else projection.target
        row = projection.row()
        if pd.notna(row["median_date"]):
            note = projection_note or f"{projection.target} expected by {row['median_date']:%Y-%m}"
            fig.add_annotation(x=pd.Timestamp(row["median_date"]), y=projection.target, text=note,
                               showarrow=True, arrowhead=2, ax=-40, ay=-30, font=dict(size=11))
    if target is not None:
        fig.add_hline(y=target, line=dict(color=NEUTRAL, width=1, dash="dot"),
                      annotation_text=target_label or f"Target {target}", annotation_position="top left")
    fig.update_layout(xaxis_title="Month", yaxis_title="Participants randomised (cumulative)",
                      hovermode="x unified", legend=dict(orientation="h", y=-0.18))
    return apply_theme(fig, title, subtitle)


def plot_recruitment_by_site(monthly_table: pd.DataFrame, site_names: dict | None = None,
                             value: str = "randomised",
                             title: str | None = "Randomised per month by site",
                             subtitle: str | None = None) -> go.Figure:
    """Stacked monthly bars per site from ``summarize_recruitment_by_month`` (``value``:
    "randomised" or "screened")."""
    fig = go.Figure()
    sites = list(dict.fromkeys(monthly_table["site_id"]))
    colours = PALETTE + ["#999999", "#AD8BC9", "#7BAFD4", "#B5651D", "#88CCEE", "#44AA99", "#DDCC77",
                         "#882255", "#117733"]
    for i, site in enumerate(sites):
        d = monthly_table[monthly_table["site_id"] == site]
        fig.add_trace(go.Bar(x=_month_start(d["month"]), y=d[value],
                             name=(site_names or {}).get(site, site),
                             marker_color=colours[i % len(colours)], xperiod="M1", xperiodalignment="middle"))
    fig.update_layout(barmode="stack", xaxis_title="Month", yaxis_title=f"Participants {value}",
                      bargap=0.1)
    return apply_theme(fig, title, subtitle)


def plot_site_activation(enrolment_table: pd.DataFrame, cut_date=None,
                         title: str | None = "Site activation and recruitment",
                         subtitle: str | None = None) -> go.Figure:
    """Timeline per site from ``summarize_enrolment``: a bar from activation to the cut (or last
    randomisation), markers at first and last randomisation, randomised / target as text."""
    t = enrolment_table[enrolment_table["site_id"] != "Total"].copy()
    t = t.sort_values("activated", ascending=False, kind="stable")
    end = pd.Timestamp(cut_date) if cut_date is not None else t["last"].max()
    label = t["site_name"].fillna(t["site_id"]).astype(str)
    start = pd.to_datetime(t["activated"])
    dur_ms = ((end - start).dt.total_seconds() * 1000).clip(lower=0)
    text = [f"{r}/{g}" if pd.notna(g) else f"{r}" for r, g in zip(t["randomised"], t["target"])]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=label, x=dur_ms, base=start, orientation="h", name="Active",
                         marker_color=_rgba(PALETTE[4], 0.6), text=text, textposition="inside",
                         hovertemplate="%{y}: active from %{base|%d %b %Y}<extra></extra>"))
    for col, sym, name in [("first", "circle", "First randomised"), ("last", "diamond", "Last randomised")]:
        ok = t[col].notna()
        fig.add_trace(go.Scatter(x=t.loc[ok, col], y=label[ok], mode="markers", name=name,
                                 marker=dict(symbol=sym, size=8, color=PALETTE[0] if col == "first" else PALETTE[1])))
    fig.update_layout(xaxis=dict(type="date", title="Date"), yaxis_title=None,
                      height=max(300, 28 * len(t) + 120), legend=dict(orientation="h", y=-0.12))
    return apply_theme(fig, title, subtitle)


def select_funnel(funnel_table: pd.DataFrame, site: str | None = None) -> pd.DataFrame:
    """The pooled funnel (stage, n, reason) out of a ``summarize_funnel`` table.

    A table built ``by_site`` (the ``funnel`` table) holds each site's funnel and then the
    all-sites funnel (site_id ``"All"``): the all-sites rows are returned, or one site's with
    ``site``. When the table holds sites only (e.g. filtered to some sites), their counts are
    added per stage and reason, stages in table order and reasons most frequent first.
    """
    if "site_id" not in funnel_table.columns:
        if site is not None:
            raise ValueError("site given, but the funnel table has no site_id column")
        return funnel_table.reset_index(drop=True)
    wanted = site if site is not None else "All"
    rows = funnel_table[funnel_table["site_id"].astype(str) == wanted]
    if len(rows) or site is not None:
        return rows.drop(columns="site_id").reset_index(drop=True)
    d = funnel_table.assign(reason=funnel_table["reason"].fillna(""))
    stages = list(dict.fromkeys(d["stage"]))
    parts = []
    for stage in stages:
        g = d[d["stage"] == stage].groupby("reason", sort=False)["n"].sum()
        total = pd.DataFrame({"stage": [stage], "n": [int(g.get("", 0))], "reason": [""]})
        reasons = g.drop("", errors="ignore").sort_index().sort_values(ascending=False, kind="stable")
        parts += [total, pd.DataFrame({"stage": stage, "n": reasons.astype(int).to_numpy(),
                                       "reason": reasons.index})]
    return pd.concat(parts, ignore_index=True)[["stage", "n", "reason"]]


def plot_funnel(funnel_table: pd.DataFrame, title: str | None = "Screening and run-in",
                subtitle: str | None = None, site: str | None = None, by_site: bool = False) -> go.Figure:
    """Horizontal bars of the stage totals of ``summarize_funnel``, reasons in the hover text.

    Parameters
    ----------
    funnel_table : ``summarize_funnel`` output, pooled or ``by_site`` (the ``funnel`` table).
    site : draw this site's funnel instead of the pooled one.
    by_site : one bar per site and stage (grouped, one trace per site; needs ``site_id``)
        instead of the pooled bars.

    Each bar is one stage-total row of the table (pooled: the all-sites rows), never a sum of
    site rows and the all-sites row.
    """
    if by_site:
        if "site_id" not in funnel_table.columns:
            raise ValueError("by_site needs a funnel table with a site_id column (summarize_funnel(by_site=True))")
        sites = [s for s in dict.fromkeys(funnel_table["site_id"].astype(str)) if s != "All"]
        colours = PALETTE + ["#999999", "#AD8BC9", "#7BAFD4", "#B5651D", "#88CCEE", "#44AA99"]
        fig = go.Figure()
        for i, s in enumerate(sites):
            t = select_funnel(funnel_table, s)
            t = t[t["reason"].fillna("") == ""]
            fig.add_trace(go.Bar(y=t["stage"], x=t["n"], orientation="h", name=s,
                                 marker_color=colours[i % len(colours)]))
        fig.update_layout(barmode="group", yaxis=dict(autorange="reversed", title=None), xaxis_title="Participants")
        return apply_theme(fig, title, subtitle)
    table = select_funnel(funnel_table, site)
    totals = table[table["reason"].fillna("") == ""]
    hover = []
    for stage in totals["stage"]:
        r = table[(table["stage"] == stage) & (table["reason"].fillna("") != "")]
        hover.append("<br>".join(f"{a}: {n}" for a, n in zip(r["reason"], r["n"])) or stage)
    colours = [PALETTE[1] if s in ("Screen failure", "Run-in drop-out") else PALETTE[0] for s in totals["stage"]]
    fig = go.Figure(go.Bar(y=totals["stage"], x=totals["n"], orientation="h", marker_color=colours,
                           text=totals["n"], textposition="outside", hovertext=hover,
                           hovertemplate="%{y}: %{x}<br>%{hovertext}<extra></extra>"))
    fig.update_layout(yaxis=dict(autorange="reversed", title=None), xaxis_title="Participants", showlegend=False)
    return apply_theme(fig, title, subtitle)


def plot_balance(balance_table: pd.DataFrame, title: str | None = "Randomised by stratum",
                 subtitle: str | None = None, site_names: dict | None = None,
                 site_countries: dict | None = None) -> go.Figure:
    """Stratum balance from the ``balance`` output (``summarize_balance`` rows; its "Total"
    stratum rows, the sites' totals, are left out and drawn as the Total column).

    Pooled (group "All" only): heatmap of n by site (rows, "FR01 Paris" with ``site_names``) and
    stratum (columns), with a Total column and an "All sites" row. A site-stratum cell the table
    has no row for (a stratum the site cannot have: a French site has no UK stratum) is left
    blank, not drawn as 0; with ``site_countries`` another country's stratum is blank even when
    the table lists it with 0 (``summarize_balance`` lists every cell).
    By group: grouped bars of n per stratum and group over all sites (site_id "All").
    """
    balance_table = balance_table[balance_table["stratum"].astype(str) != "Total"]
    groups = [g for g in dict.fromkeys(balance_table["group"]) if g != "Total"]
    if groups == ["All"]:
        t = balance_table[balance_table["site_id"] != "All"]
        if t.empty:
            t = balance_table
        wide = t.pivot_table(index="site_id", columns="stratum", values="n", aggfunc="sum", sort=False)
        strata = list(wide.columns)
        wide["Total"] = wide[strata].sum(axis=1, min_count=1)
        wide.loc["All sites"] = wide.sum(axis=0, min_count=1)
        z = wide.to_numpy(dtype=float)
        if site_countries:                       # another country's stratum: structural, not a zero
            for i, site in enumerate(wide.index):
                country = site_countries.get(site)
                for j, stratum in enumerate(strata):
                    if country and "/" in str(stratum) and str(stratum).split("/")[0] != country:
                        z[i, j] = np.nan
        labels = [f"{s} {site_names[s]}" if site_names and s in site_names else str(s) for s in wide.index]
        totals = np.zeros(z.shape, dtype=bool)
        totals[:, -1] = totals[-1, :] = True                      # the Total column and the All sites row
        cells, margins = np.where(totals, np.nan, z), np.where(totals, z, np.nan)
        text = lambda m: [["" if np.isnan(v) else f"{int(v)}" for v in row] for row in m]
        fig = go.Figure([go.Heatmap(z=cells, x=list(wide.columns), y=labels, colorscale="Blues", text=text(cells),
                                    texttemplate="%{text}", hoverongaps=False, colorbar=dict(title="n")),
                         go.Heatmap(z=margins, x=list(wide.columns), y=labels, showscale=False, hoverongaps=False,
                                    colorscale=[[0, "#eeeeee"], [1, "#eeeeee"]], text=text(margins),
                                    texttemplate="<b>%{text}</b>")])
        fig.update_layout(yaxis=dict(autorange="reversed", title="Site"), xaxis_title="Stratum",
                          height=max(420, 24 * len(labels) + 160))
        return apply_theme(fig, title, subtitle)
    t = balance_table[balance_table["site_id"] == "All"]
    cmap = arm_color_map(groups)
    fig = go.Figure([go.Bar(x=t.loc[t.group == g, "stratum"], y=t.loc[t.group == g, "n"], name=g,
                            marker_color=cmap[g], text=t.loc[t.group == g, "n"], textposition="outside")
                     for g in groups])
    fig.update_layout(barmode="group", xaxis_title="Stratum", yaxis_title="Participants randomised")
    return apply_theme(fig, title, subtitle)


def plot_enrolment_vs_target(enrolment_table: pd.DataFrame, title: str | None = "Randomised against target by site",
                             subtitle: str | None = None) -> go.Figure:
    """Each site's randomised as % of its target (``summarize_enrolment``), sorted from the
    furthest behind, with the site names and "18/40 (45 %)" beside each bar; sites without a
    target are listed with their count only."""
    t = enrolment_table[~enrolment_table["site_id"].isin(["Total", "All"])].copy()
    target = pd.to_numeric(t["target"], errors="coerce")
    t["pct"] = np.where(target > 0, 100 * t["randomised"] / target, np.nan)
    t = t.sort_values(["pct", "randomised"], ascending=[False, False], na_position="first")
    labels = [f"{r.site_id} {r.site_name}" if isinstance(r.site_name, str) else str(r.site_id)
              for r in t.itertuples()]
    text = [f"{int(r.randomised)}/{int(tg)} ({p:.0f} %)" if np.isfinite(p) else f"{int(r.randomised)} (no target)"
            for r, tg, p in zip(t.itertuples(), pd.to_numeric(t["target"], errors="coerce").fillna(0), t["pct"])]
    fig = go.Figure(go.Bar(x=t["pct"].fillna(0), y=labels, orientation="h", text=text, textposition="outside",
                           marker_color=np.where(t["pct"].fillna(0) >= 100, "#2c7fb8", "#7fcdbb").tolist(),
                           cliponaxis=False))
    fig.add_vline(x=100, line_dash="dash", line_color="#555555")
    top = float(np.nanmax(t["pct"])) if t["pct"].notna().any() else 100.0
    fig.update_layout(xaxis=dict(title="Randomised, % of the site's target", range=[0, max(110.0, top * 1.25)]),
                      yaxis=dict(title=None), height=max(380, 26 * len(labels) + 140), showlegend=False)
    return apply_theme(fig, title, subtitle)
