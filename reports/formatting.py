"""Display layouts for report tables: reshape and format what ``analysis.tables.build_table``
returns (long tables, one row per group) into the wide, by-arm layout a DSMB or a journal reads.

Nothing here estimates anything: values are only pivoted, joined as "estimate (lower-upper)" and
rounded. ``groups`` is the display order of the group columns (arms then "Total", or just
"Total"/"All" for a pooled report).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.display import format_ci, format_median


def compute_fmt(value, digits: int = 1) -> str:
    """A number with ``digits`` decimals; blank for missing."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}f}"


def _order(values, groups) -> list:
    present = list(dict.fromkeys(values))
    return [g for g in (groups or present) if g in present] + [g for g in present if groups and g not in groups]


def summarize_by_group_wide(df: pd.DataFrame, index, cell, groups=None, group_col: str = "group",
                            headers: dict | None = None) -> pd.DataFrame:
    """Pivot a long table to one column per group. ``cell(row) -> str`` formats one group's
    values; ``headers`` maps a group to its column title (e.g. with its N)."""
    index = [index] if isinstance(index, str) else list(index)
    d = df.copy()
    d["_cell"] = [cell(r) for r in d.itertuples(index=False)]
    wide = d.pivot_table(index=index, columns=group_col, values="_cell", aggfunc="first", sort=False)
    wide = wide[_order(d[group_col], groups)].reset_index()
    wide.columns.name = None
    return wide.rename(columns=headers or {}).fillna("")


def summarize_survival_display(surv: pd.DataFrame, landmark_day: int) -> pd.DataFrame:
    """Survival table: N, deaths, median (95% CI), survival at the landmark (95% CI, %), RMST; with
    a leading Stratum column when the table is by stratum. A group with no one in it shows N 0."""
    rows = []
    for r in surv.itertuples(index=False):
        row = {"Stratum": r.stratum} if "stratum" in surv.columns else {}
        row.update({"Group": r.group, "N": int(r.n), "Deaths": int(r.events)})
        if r.n:
            row.update({"Median, days (95% CI)": format_median(r.median, r.median_ci_lower, r.median_ci_upper),
                        f"Survival at day {landmark_day}, % (95% CI)":
                            format_ci(r.surv_landmark, r.surv_landmark_ci_lower, r.surv_landmark_ci_upper, 1, 100,
                                      missing=""),
                        f"RMST to day {landmark_day}, days (SE)": f"{r.rmst:.0f} ({r.rmst_se:.1f})"})
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def summarize_effect_display(te: pd.DataFrame, view=None) -> pd.DataFrame:
    """Treatment-effect table: the display table of ``analysis.display.format_display``
    ("treatment-effect"), the same strings the dashboard and ``mirocals table treatment-effect
    --display`` show; the Comparison column first when there are several comparisons (three or
    more arms), left to the caption when there is one; the Note column only when a row has one."""
    from analysis.display import format_display
    out = format_display("treatment-effect", te, view)
    if "Comparison" in out.columns:
        comparison = out.pop("Comparison")
        if comparison.nunique() > 1:
            out.insert(0, "Comparison", comparison)
    if "Note" in out.columns and out["Note"].map(lambda v: str(v).strip() in ("", "—")).all():
        out = out.drop(columns="Note")
    return out.reset_index(drop=True)


def summarize_visits_display(df: pd.DataFrame, groups=None, change: bool = False) -> pd.DataFrame:
    """By-visit summaries (ALSFRS-R, labs): one column per group with "n; mean (SE or SD)"."""
    if change:
        def cell(r):
            return f"{r.n}: {r.mean:.1f} ({r.se:.2f}); change {r.mean_change:+.2f} ({r.se_change:.2f})"
    else:
        def cell(r):
            return f"{r.n}: {r.mean:.2f} ({r.sd:.2f}); median {r.median:.2f}"
    return summarize_by_group_wide(df, "visit", cell, groups).rename(columns={"visit": "Visit"})


def summarize_ae_display(ae: pd.DataFrame, denominators: dict, groups=None) -> pd.DataFrame:
    """AE table by SOC and PT: per group "n (%) [events]" with the group's N in the header
    (per-arm denominators)."""
    headers = {g: f"{g} (N={n})" for g, n in denominators.items()}
    wide = summarize_by_group_wide(
        ae, ["soc", "pt"], lambda r: f"{r.n_subjects} ({r.percent:.1f}%) [{r.n_events}]", groups, headers=headers)
    wide["pt"] = wide["pt"].replace({"All PTs": "(any)"})
    wide.loc[wide["soc"].eq(wide["soc"].shift()), "soc"] = ""          # each SOC named once, on its (any) row
    return wide.rename(columns={"soc": "System organ class", "pt": "Preferred term"})


def summarize_ae_severity_display(sev: pd.DataFrame, denominators: dict, groups=None) -> pd.DataFrame:
    """Subjects by worst severity, any AE and per SOC (preferred terms left to the AE table): per
    group "n (%)" with the group's N in the header."""
    headers = {g: f"{g} (N={n})" for g, n in denominators.items()}
    d = sev[sev["pt"].fillna("").isin(["", "All PTs"])]
    wide = summarize_by_group_wide(d, ["soc", "severity"], lambda r: f"{r.n_subjects} ({r.percent:.1f}%)", groups,
                                   headers=headers)
    wide.loc[wide["soc"].duplicated(), "soc"] = ""
    return wide.rename(columns={"soc": "System organ class", "severity": "Worst severity"})


def summarize_ae_risk_display(risk: pd.DataFrame) -> pd.DataFrame:
    """AE absolute risks per arm and the risk difference (percentage points, Newcombe 95% CI);
    arm names from the comparison, one block per comparison when there are several."""
    rows = []
    several = risk["comparison"].nunique() > 1
    for r in risk.itertuples(index=False):
        rows.append({**({"Comparison": r.comparison} if several else {}),
                     "System organ class": r.soc, "Preferred term": "(any)" if r.pt == "All PTs" else r.pt,
                     "Experimental: n/N (%)": f"{r.n_exp}/{r.N_exp} ({r.risk_exp:.1f}%)",
                     "Reference: n/N (%)": f"{r.n_ref}/{r.N_ref} ({r.risk_ref:.1f}%)",
                     "Difference, % points (95% CI)": format_ci(r.difference, r.ci_lower, r.ci_upper, 1, missing="")})
    out = pd.DataFrame(rows)
    if not several and len(risk):                 # name the arms in the headers
        exp, ref = risk["comparison"].iloc[0].split(" vs ", 1)
        out = out.rename(columns={"Experimental: n/N (%)": f"{exp}: n/N (%)", "Reference: n/N (%)": f"{ref}: n/N (%)"})
    soc = out["System organ class"]
    repeat = soc.eq(soc.shift()) & (risk["comparison"].eq(risk["comparison"].shift()).to_numpy())
    out.loc[repeat, "System organ class"] = ""                    # SOC named once per block
    return out


def summarize_consort_display(consort: pd.DataFrame, groups=None) -> pd.DataFrame:
    """CONSORT counts: stage, reason, one column per group ("All" for the screening stages)."""
    d = consort.copy()
    d["reason"] = d["reason"].fillna("")
    wide = summarize_by_group_wide(d, ["stage", "reason"], lambda r: str(r.n), ["All"] + list(groups or []))
    wide.loc[wide["stage"].duplicated() & (wide["reason"] != ""), "stage"] = ""
    return wide.rename(columns={"stage": "Stage", "reason": "Reason"})


def summarize_strata_display(balance: pd.DataFrame, groups=None) -> pd.DataFrame:
    """Randomised per stratum (country x onset), all sites, one column per group."""
    d = balance[balance["site_id"] == "All"] if "site_id" in balance else balance
    return summarize_by_group_wide(d, "stratum", lambda r: str(r.n), groups).rename(columns={"stratum": "Stratum"})


def summarize_sequential_display(b: pd.DataFrame) -> pd.DataFrame:
    """Group-sequential table: one row per look (labelled, with its events when known)."""
    out = pd.DataFrame({"Look": b["label"] if "label" in b else b["look"],
                        "Information fraction": b["information_fraction"].map("{:.2f}".format),
                        "Cumulative alpha spent": b["cumulative_alpha"].map("{:.4f}".format),
                        "Boundary z": b["boundary_z"].map("{:.3f}".format),
                        "Nominal p (one-sided)": b["nominal_p"].map("{:.4f}".format)})
    if "events" in b:
        out.insert(2, "Deaths", b["events"].astype(int))
    for col, title in (("date", "Date"), ("observed_z", "Observed z"), ("crossed", "Crossed")):
        if col in b:
            out[title] = b[col].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else
                                    "yes" if bool(v) is True and isinstance(v, (bool, np.bool_)) else
                                    "no" if isinstance(v, (bool, np.bool_)) else
                                    (f"{v:.3f}" if isinstance(v, float) else str(v)))
    return out


def summarize_funnel_by_site_display(funnel: pd.DataFrame) -> pd.DataFrame:
    """Screening outcome counts per site (no reasons), one column per stage, sites as rows."""
    d = funnel[funnel["reason"].fillna("") == ""]
    wide = d.pivot_table(index="site_id", columns="stage", values="n", aggfunc="first", sort=False)
    wide = wide.reset_index().rename(columns={"site_id": "Site"})
    wide.columns.name = None
    return wide
