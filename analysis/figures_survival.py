"""Survival figures: Kaplan-Meier curves with CI bands, censor ticks, the landmark marked and the
numbers at risk (cumulative events, censored) in a table row under the x-axis; the subgroup
forest plot; group-sequential boundaries. Pure: data frames in, plotly figures out.

Grayscale-safe: groups differ by line dash as well as by colour (Okabe-Ito palette).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.survival import compute_km_ci, fit_km, split_groups, summarize_at_risk
from analysis.theme import FONT_SIZE, PLAN_COLOR, apply_theme, arm_color_map

DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
COX_PREFERENCE = ("cox_stratified", "cox")


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


# How the KM panel note names the HR and the test it shows (the table's rows say the same in
# analysis.display.METHOD_LABELS).
NOTE_METHODS = {"cox_stratified": "Cox stratified by {strata}",
                "cox": "Cox unadjusted",
                "logrank": "unstratified",
                "logrank_stratified": "stratified by {strata}"}


def format_effect_note(effects: pd.DataFrame, cox_methods=COX_PREFERENCE, test="logrank",
                       sep: str = "<br>", study=None) -> str:
    """The Kaplan-Meier panel note from a treatment-effect table (``build_table("treatment-effect")``
    or :func:`compute_treatment_effects`), e.g. "HR 0.49 (0.28 to 0.85), Cox stratified by country
    and site of onset; log-rank p = 0.012 (unstratified)": the first Cox method of ``cox_methods``
    in the table, named, and the ``test`` log-rank p, named. Numbers are formatted by
    :func:`analysis.display.format_ci` / :func:`analysis.display.format_p`, as the treatment-effect
    display table shows them. One line per comparison (prefixed with it) when there are several,
    joined by ``sep``. The dashboard, the closed report and the manuscript all call this."""
    from analysis.display import format_ci, format_p_phrase, format_strata
    if effects is None or not len(effects):
        return ""
    strata = format_strata(study)          # ``study``: its strata named (default: "the randomisation strata")
    blocks = (list(effects.groupby("comparison", sort=False)) if "comparison" in effects.columns
              else [(None, effects)])
    lines = []
    for comparison, block in blocks:
        te = block.set_index("method")
        parts = []
        for m in cox_methods:
            if m in te.index and pd.notna(te.loc[m, "estimate"]):
                r = te.loc[m]
                parts.append(f"HR {format_ci(r['estimate'], r['ci_lower'], r['ci_upper'], 2)}, "
                             f"{NOTE_METHODS.get(m, m).format(strata=strata)}")
                break
        if test in te.index and pd.notna(te.loc[test, "p_value"]):
            parts.append(f"{format_p_phrase(te.loc[test, 'p_value'], 'log-rank p')} ({NOTE_METHODS.get(test, test).format(strata=strata)})")
        if parts:
            prefix = f"{comparison}: " if comparison is not None and len(blocks) > 1 else ""
            lines.append(prefix + "; ".join(parts))
    return sep.join(lines)


def _default_times(df, time_col, landmark_day, step=80) -> list[int]:
    end = max(float(landmark_day), float(df[time_col].max()) if len(df) else 0.0)
    return list(range(0, int(end) + 1, step))


def plot_km(df, group_col=None, groups=None, landmark_day=640, times=None, show_ci=True, annotation=None,
            title="Overall survival", subtitle=None, show_events=True, time_col="AVAL",
            censor_col="CNSR") -> go.Figure:
    """Kaplan-Meier curves with 95% log-log CI bands, censor ticks, the landmark as a dashed
    vertical line and a numbers-at-risk table under the x-axis.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject: ``time_col``, ``censor_col`` (0 event, 1 censored), ``group_col``.
    group_col : str, optional
        None pools everyone into one curve "All".
    groups : sequence of str, optional
        Group order (experimental first); sorted levels when None.
    landmark_day : float
    times : sequence of float, optional
        Times of the at-risk table (default every 80 days to the landmark or the last time).
    annotation : str, optional
        Panel text, e.g. from :func:`format_effect_note`.
    show_events : bool
        Show "n at risk (cumulative events, censored)" rather than n at risk only.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    parts = [(g, sub) for g, sub in split_groups(df, group_col, groups)]
    levels = [g for g, _ in parts]
    colors = arm_color_map(levels)
    times = list(times) if times is not None else _default_times(df, time_col, landmark_day)
    fig = make_subplots(rows=2, cols=1, row_heights=[0.76, 0.24], vertical_spacing=0.12)
    for i, (g, sub) in enumerate(parts):
        if not len(sub):
            continue
        t = sub[time_col].to_numpy(float)
        e = (sub[censor_col] == 0).to_numpy(int)
        km = fit_km(t, e)
        x = np.concatenate([[0.0], km.time])
        y = np.concatenate([[1.0], km.survival])
        c, dash = colors[g], DASHES[i % len(DASHES)]
        if show_ci:
            lo, hi = compute_km_ci(km.survival, km.greenwood)
            lo, hi = np.concatenate([[1.0], lo]), np.concatenate([[1.0], hi])
            fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0, shape="hv"), showlegend=False,
                                     hoverinfo="skip", legendgroup=str(g)), row=1, col=1)
            fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                                     fillcolor=_rgba(c, 0.13), showlegend=False, hoverinfo="skip",
                                     legendgroup=str(g)), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{g} (n={len(sub)})", legendgroup=str(g),
                                 line=dict(color=c, shape="hv", width=2, dash=dash),
                                 hovertemplate="day %{x:.0f}: S=%{y:.3f}<extra>" + str(g) + "</extra>"),
                      row=1, col=1)
        ct = np.unique(t[e == 0])          # one tick per censoring time: ties draw the same mark
        cs, _ = km.at(ct)
        tick = dict(x=ct, y=cs, mode="markers", marker=dict(symbol="line-ns-open", size=8, color=c),
                    showlegend=False, legendgroup=str(g))
        if "USUBJID" in sub.columns:       # who was censored at each tick: hover, and a click opens the profile
            ids = pd.Series(sub["USUBJID"].astype(str).to_numpy()[e == 0]).groupby(t[e == 0]).agg(", ".join)
            tick.update(customdata=ids.reindex(ct).to_numpy(), meta="subjects",
                        hovertemplate="censored at day %{x:.0f}: %{customdata}<extra></extra>")
        else:
            tick.update(hoverinfo="skip")
        fig.add_trace(go.Scatter(**tick), row=1, col=1)
    fig.add_vline(x=landmark_day, line=dict(color=PLAN_COLOR, dash="dash", width=1), row=1, col=1)
    fig.add_annotation(x=landmark_day, y=0.01, xref="x", yref="y domain", text=f"day {landmark_day}",
                       showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=FONT_SIZE - 2))
    if annotation:
        fig.add_annotation(x=0.02, y=0.04, xref="x domain", yref="y domain", text=annotation, showarrow=False,
                           name="print-wrap",
                           align="left", xanchor="left", yanchor="bottom", bgcolor="rgba(255,255,255,0.85)")
    risk = summarize_at_risk(df, group_col, times, groups=levels if group_col else None,
                             time_col=time_col, censor_col=censor_col)
    for i, g in enumerate(levels):
        r = risk[risk["group"] == g]
        text = ([f"{a} ({ev}, {cn})" for a, ev, cn in zip(r["n_at_risk"], r["n_events"], r["n_censored"])]
                if show_events else [str(a) for a in r["n_at_risk"]])
        fig.add_trace(go.Scatter(x=r["time"], y=[i] * len(r), mode="text", showlegend=False, hoverinfo="skip",
                                 text=text, meta="at-risk", textfont=dict(size=FONT_SIZE - 2, color=colors[g])), row=2, col=1)
    xmax = max(times[-1], landmark_day) * 1.06
    xrange = [-xmax * 0.06, xmax]
    fig.update_xaxes(range=xrange, title_text="Days since randomisation", row=1, col=1)
    fig.update_xaxes(range=xrange, showticklabels=False, showgrid=False, showline=False, ticks="", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], title_text="Survival probability", tickformat=".0%", row=1, col=1)
    risk_title = "At risk (events, censored)" if show_events else "At risk"
    fig.update_yaxes(tickvals=list(range(len(levels))), ticktext=[str(g) for g in levels], showgrid=False,
                     showline=False, ticks="", range=[len(levels) - 0.5, -0.5], row=2, col=1)
    fig.add_annotation(x=0, y=1.0, xref="paper", yref="y2 domain", text=f"<b>{risk_title}</b>", showarrow=False,
                       xanchor="left", yanchor="bottom", font=dict(size=FONT_SIZE - 1))
    fig.update_layout(height=560, legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right",
                                              traceorder="normal"), margin=dict(r=30, t=80))
    return apply_theme(fig, title, subtitle)


def plot_forest(subgroups: pd.DataFrame, title="Hazard ratio by subgroup", subtitle=None,
                labels=("favours experimental", "favours reference"), factor_labels: dict | None = None,
                level_order: dict | None = None) -> go.Figure:
    """Forest plot of subgroup HRs (95% CI) on a log axis with the interaction p per factor.

    Parameters
    ----------
    subgroups : pandas.DataFrame
        The table of :func:`analysis.survival_models.summarize_subgroups`; its "All participants"
        row (when present) is drawn first, as a diamond. With a ``comparison`` column holding
        several comparisons (three or more arms) each gets its own block under a heading.
    labels : (str, str)
        What HR < 1 and HR > 1 favour.
    factor_labels : dict, optional
        Display name of each factor variable (e.g. PNFHGR -> "CSF-pNfH group"); default the
        project's labels (:data:`analysis.baseline.DEFAULT_LABELS`).
    level_order : dict, optional
        Level display order per factor (others keep the table's order); default
        :data:`analysis.baseline.DEFAULT_LEVELS` (e.g. CSF-pNfH Low before High).
    """
    from analysis.baseline import DEFAULT_LABELS, DEFAULT_LEVELS
    from analysis.display import format_ci, format_p_phrase
    from analysis.survival_models import OVERALL
    sg = subgroups.reset_index(drop=True)
    factor_labels = DEFAULT_LABELS if factor_labels is None else factor_labels
    level_order = DEFAULT_LEVELS if level_order is None else level_order
    ylab, y, hr, lo, hi, right, symbol = [], [], [], [], [], [], []

    def add(r, text):
        y.append(len(ylab))
        ylab.append(text)
        hr.append(r.hr)
        lo.append(r.ci_lower)
        hi.append(r.ci_upper)
        symbol.append("diamond" if r.factor == OVERALL else "square")
        right.append(f"{format_ci(r.hr, r.ci_lower, r.ci_upper, 2)}  {r.events_exp}/{r.events_ref}"
                     if pd.notna(r.hr) else f"not estimable  {r.events_exp}/{r.events_ref}")

    several = "comparison" in sg.columns and sg["comparison"].nunique() > 1     # three or more arms
    blocks = sg.groupby("comparison", sort=False) if several else [(None, sg)]
    for comparison, block in blocks:
        if comparison is not None:                     # a heading row per comparison
            ylab.append(f"<b><i>{comparison}</i></b>")
        for r in block[block["factor"] == OVERALL].itertuples(index=False):
            add(r, f"<b>{OVERALL}</b> (n={r.n})")
        for factor, g in block[block["factor"] != OVERALL].groupby("factor", sort=False):
            p = g["p_interaction"].iloc[0]
            ylab.append(f"<b>{factor_labels.get(factor, factor)}</b>"
                        + (f" ({format_p_phrase(p, 'interaction p')})" if pd.notna(p) else ""))
            order = {lev: i for i, lev in enumerate(level_order.get(factor, []))}
            g = g.assign(_o=g["level"].map(lambda v: order.get(v, len(order)))).sort_values("_o", kind="stable")
            for r in g.itertuples(index=False):
                add(r, f"{r.level} (n={r.n})")
    hr, lo, hi = (np.asarray(v, dtype=float) for v in (hr, lo, hi))
    fig = go.Figure(go.Scatter(x=hr, y=y, mode="markers", marker=dict(symbol=symbol, size=9, color="#000000"),
                               error_x=dict(type="data", symmetric=False, array=hi - hr, arrayminus=hr - lo,
                                            color="#000000", thickness=1.5),
                               customdata=np.column_stack([lo, hi]) if len(hr) else None,
                               hovertemplate="HR %{x:.2f} (%{customdata[0]:.2f} to %{customdata[1]:.2f})<extra></extra>",
                               showlegend=False))
    fig.add_vline(x=1, line=dict(color=PLAN_COLOR, dash="dash", width=1))
    finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)], [0.5, 2.0]])
    span = [np.log10(max(finite.min(), 0.01)) - 0.05, np.log10(min(finite.max(), 100)) + 0.05]
    ticks = [t for t in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50)
             if span[0] <= np.log10(t) <= span[1]]
    fig.update_xaxes(type="log", range=span, tickvals=ticks, ticktext=[f"{t:g}" for t in ticks],
                     minor=dict(showgrid=False),
                     title_text=f"Hazard ratio (95% CI), log scale<br>&lt; 1 {labels[0]}; &gt; 1 {labels[1]}")
    fig.update_yaxes(tickvals=list(range(len(ylab))), ticktext=ylab, range=[len(ylab) - 0.5, -0.7],
                     showgrid=False)
    for yy, txt in zip(y, right):
        fig.add_annotation(x=1.0, xref="paper", y=yy, yref="y", text=txt, showarrow=False, xanchor="left",
                           font=dict(size=FONT_SIZE - 1))
    fig.add_annotation(x=1.0, xref="paper", y=-0.7, yref="y", text="<b>HR (95% CI)  events exp/ref</b>",
                       showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=FONT_SIZE - 1))
    fig.update_layout(height=max(300, 28 * len(ylab) + 140), margin=dict(l=230, r=230))
    return apply_theme(fig, title, subtitle)


def plot_boundaries(boundaries: pd.DataFrame, observed: pd.DataFrame | None = None,
                    title="Group-sequential efficacy boundary", subtitle=None) -> go.Figure:
    """Efficacy boundary z by information fraction (Lan-DeMets O'Brien-Fleming type), the
    fixed-sample 1.96 for reference, and the observed z at the looks done so far, joined as a
    path (a look whose z reaches its boundary drawn as a filled red marker).

    Parameters
    ----------
    boundaries : pandas.DataFrame
        :func:`analysis.sequential.compute_obf_boundaries` or :func:`summarize_sequential` output
        (the ``sequential`` table); fractions above 1 (more deaths than planned) are drawn where
        they are.
    observed : pandas.DataFrame, optional
        information_fraction and observed_z (NaN rows, looks still to come, are skipped); a
        ``label`` column names the points.
    """
    b = boundaries[np.isfinite(boundaries["boundary_z"])]
    fig = go.Figure(go.Scatter(x=b["information_fraction"], y=b["boundary_z"], mode="lines+markers+text",
                               name="Efficacy boundary", line=dict(color="#D55E00", width=2),
                               text=[f"{z:.3f}" for z in b["boundary_z"]], textposition="top right",
                               textfont=dict(size=FONT_SIZE - 2)))
    fig.add_hline(y=1.959964, line=dict(color=PLAN_COLOR, dash="dot", width=1),
                  annotation_text="z = 1.96 (fixed sample)", annotation_position="bottom left",
                  annotation_font_size=FONT_SIZE - 2)
    ymax = float(b["boundary_z"].max()) if len(b) else 4.0
    ymin = 0.0
    xmax = max(1.05, float(boundaries["information_fraction"].max()) + 0.05) if len(boundaries) else 1.05
    if observed is not None and "observed_z" in observed and observed["observed_z"].notna().any():
        o = observed[observed["observed_z"].notna()].sort_values("information_fraction")
        z = o["observed_z"].to_numpy(dtype=float)
        bound = (o["boundary_z"].to_numpy(dtype=float) if "boundary_z" in o else np.full(len(o), np.inf))
        hit = z >= bound
        names = (o["label"].astype(str).tolist() if "label" in o else [""] * len(o))
        fig.add_trace(go.Scatter(
            x=o["information_fraction"], y=z, mode="lines+markers", name="Observed z (looks so far)",
            line=dict(color="#0072B2", width=2, dash="dash"),
            marker=dict(size=11, symbol="diamond", color=["#D55E00" if h else "#0072B2" for h in hit],
                        line=dict(color="#0072B2", width=1.5)),
            customdata=names,
            hovertemplate="%{customdata}: z = %{y:.2f} at information fraction %{x:.2f}<extra></extra>"))
        for x, y, name, h in zip(o["information_fraction"], z, names, hit):
            if name:
                fig.add_annotation(x=x, y=y, text=f"{name}: {y:.2f}" + (" (crossed)" if h else ""), showarrow=False,
                                   yshift=-16, font=dict(size=FONT_SIZE - 2, color="#0072B2"))
        ymax = max(ymax, float(z.max()))
        ymin = min(ymin, float(z.min()) - 0.3)
    fig.update_xaxes(range=[0, xmax], title_text="Information fraction (deaths / planned deaths)")
    fig.update_yaxes(range=[ymin, ymax * 1.12], title_text="z statistic (positive favours the experimental arm)")
    fig.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right"))
    return apply_theme(fig, title, subtitle)
