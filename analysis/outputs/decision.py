"""Interim decision outputs for the DSMB (unblinded only), defined once here: the group-sequential
looks (``sequential``: every look so far at its actual information, the boundary recomputed for
them, the observed z at each), the decision panel (``decision``: conditional and predictive power,
repeated CI, efficacy and futility) and the boundary plot with the observed path of z. The words
the Survival page's alert and the closed report's Summary say about them, and the design
assumptions in words, are in ``analysis.outputs.decision_text``.

The looks. Information fraction = deaths / planned deaths (``[analysis] planned_events``), with
no cap: when the deaths exceed the plan the look uses the observed information (its fraction is
above 1, the spending function stops at alpha, the correlations use the observed fractions; see
``analysis.sequential``). Earlier looks are the data cuts the study file records
(``interim_look_dates``); when it records none, each planned look before this cut is placed at
the date its planned number of deaths was reached and recomputed from the current data
("reconstructed"). The observed z is the log-rank z stratified by the randomisation strata (the
primary analysis), positive when the experimental arm has fewer deaths than expected.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from analysis.display import format_number, format_percent, format_strata
from analysis.display_table import DisplaySpec
from analysis.outputs.base import (TTE, FigureOutput, Output, comparisons, get_tte, strata_columns, table_of,
                                   view_memo)
from analysis.outputs.decision_text import design_assumptions_text

SEQUENTIAL_COLUMNS = ("look", "information_fraction", "cumulative_alpha", "alpha_spent", "boundary_z", "nominal_p",
                      "label", "date", "events", "observed_z", "crossed")
DECISION_QUANTITIES = ("information_fraction", "observed_z", "efficacy_boundary_z", "final_boundary_z",
                       "conditional_power_design", "conditional_power_trend", "conditional_power_null",
                       "predictive_power", "rci_lower", "rci_upper", "efficacy_crossed", "futility_crossed")
THIS_CUT = "This cut"
FINAL = "Final analysis"


# --------------------------------------------------------------------------- the looks
def _trial_wide(view) -> str | None:
    label = getattr(view, "filter_label", None)
    return (f"the interim look is trial-wide (every death counts towards the information fraction); it is "
            f"not computed for the filter {label}" if label else None)


def _sequential_applies(view) -> str | None:
    return _trial_wide(view)


def _decision_applies(view) -> str | None:
    study = view.study
    if not study.planned_events:
        return "the study file sets no planned number of deaths ([analysis] planned_events)"
    if not study.design_hazard_ratio:
        return "the study file sets no design hazard ratio ([analysis] design_hazard_ratio)"
    return _trial_wide(view)


def _primary_tte(view) -> tuple[pd.DataFrame, str]:
    """The survival endpoint of the first comparison's two arms (ITT) and the experimental arm."""
    exp, ref = comparisons(view)[0]
    tte = get_tte(view)
    return tte[tte[view.group_col].isin([exp, ref])].reset_index(drop=True), exp


def _at_date(tte: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    """The survival data as of ``date`` (recomputed from the current data): participants
    randomised by then, deaths dated by then, the others censored at it."""
    start = pd.to_datetime(tte["STARTDT"]).dt.date
    end = pd.to_datetime(tte["ADT"]).dt.date
    keep = start <= date
    out = tte[keep].copy()
    later = (end[keep] > date).to_numpy()
    days = np.array([(date - s).days for s in start[keep]], dtype=float)
    out["AVAL"] = np.where(later, np.minimum(out["AVAL"].to_numpy(dtype=float), days), out["AVAL"])
    out["CNSR"] = np.where(later, 1, out["CNSR"])
    return out


def _logrank(tte: pd.DataFrame, exp: str, group_col: str, strata: list[str]) -> dict:
    from analysis.survival_models import compute_logrank
    events = int((tte["CNSR"] == 0).sum())
    if not len(tte):
        return {"events": 0, "observed_z": np.nan, "o_minus_e": np.nan, "variance": np.nan}
    labels = tte[strata].astype(str).agg("/".join, axis=1) if strata else None
    lr = compute_logrank(tte["AVAL"], (tte["CNSR"] == 0).astype(int), tte[group_col] == exp, labels)
    z = -lr.o_minus_e / np.sqrt(lr.variance) if lr.variance > 0 else np.nan   # fewer deaths than expected: > 0
    return {"events": events, "observed_z": z, "o_minus_e": lr.o_minus_e, "variance": lr.variance}


def _build_looks(view) -> pd.DataFrame:
    study = view.study
    planned = study.planned_events
    tte, exp = _primary_tte(view)
    strata = [c for c in strata_columns(view) if c in tte.columns]
    cut = view.cut_date or dt.date.today()
    now = _logrank(tte, exp, view.group_col, strata)
    fraction = now["events"] / planned
    dated = {"STARTDT", "ADT"} <= set(tte.columns)
    rows = []
    if study.interim_look_dates:                       # recorded: the data cuts of the looks done
        for d in [d for d in study.interim_look_dates if d < cut]:
            rows.append({"label": f"Look {len(rows) + 1}", "date": d.isoformat(), "source": "recorded",
                         **(_logrank(_at_date(tte, d), exp, view.group_col, strata) if dated else
                            {"events": np.nan, "observed_z": np.nan, "o_minus_e": np.nan, "variance": np.nan})})
    else:                                              # reconstructed at the planned numbers of deaths
        death_dates = (sorted(pd.to_datetime(tte.loc[tte["CNSR"] == 0, "ADT"]).dt.date) if dated else [])
        for f in [f for f in sorted(study.sequential_looks) if f < fraction - 1e-9 and f < 1]:
            k = max(1, math.ceil(f * planned - 1e-9))
            if dated and k <= len(death_dates):
                d = death_dates[k - 1]
                rows.append({"label": f"Look {len(rows) + 1}", "date": d.isoformat(), "source": "reconstructed",
                             **_logrank(_at_date(tte, d), exp, view.group_col, strata)})
            else:
                rows.append({"label": f"Look {len(rows) + 1}", "date": None, "source": "planned", "events": k,
                             "observed_z": np.nan, "o_minus_e": np.nan, "variance": np.nan})
    # a look keeps strictly less information than the next (ties at a look's date: one look)
    rows = [r for r in rows if 0 < r["events"] < now["events"]]
    rows = [r for i, r in enumerate(rows) if all(r["events"] < s["events"] for s in rows[i + 1:])]
    rows.append({"label": THIS_CUT, "date": cut.isoformat(), "source": "this cut", **now})
    future = [f for f in sorted(study.sequential_looks) if f > fraction + 1e-9]
    if fraction < 1 and (not future or future[-1] < 1):
        future.append(1.0)
    for i, f in enumerate(future):
        rows.append({"label": FINAL if i == len(future) - 1 else f"Planned look at {f:.0%}", "date": None,
                     "source": "planned", "events": round(f * planned), "observed_z": np.nan, "o_minus_e": np.nan,
                     "variance": np.nan})
    looks = pd.DataFrame(rows)
    looks["information_fraction"] = looks["events"].astype(float) / planned
    return looks


def interim_looks(view) -> pd.DataFrame:
    """Every look of the design as of this cut, one row each (memoised per view): label, date
    (ISO; None for looks to come), source (recorded, reconstructed, this cut, planned), events,
    information_fraction (deaths / planned deaths, no cap), observed_z (stratified log-rank;
    NaN for looks to come), o_minus_e and variance (experimental arm)."""
    return view_memo(view, "interim_looks", lambda: _build_looks(view))


def _sequential(view, **_):
    """Planned looks when the study sets no ``planned_events``; otherwise every look so far at its
    actual information fraction with its observed z, this cut, and the looks still to come, the
    boundaries recomputed for these fractions."""
    view.require_unblinded("group-sequential table")
    from analysis.sequential import compute_obf_boundaries, summarize_sequential
    study = view.study
    if not study.planned_events:
        planned = sorted(study.sequential_looks)
        return compute_obf_boundaries(planned, alpha=study.alpha_one_sided).assign(
            label=[f"Planned look {i + 1}" for i in range(len(planned))])
    looks = interim_looks(view)[["information_fraction", "label", "date", "events", "observed_z"]]
    out = summarize_sequential(looks, alpha=study.alpha_one_sided)
    out["events"] = out["events"].astype(int)
    out.loc[out["observed_z"].isna(), "crossed"] = None
    return out[list(SEQUENTIAL_COLUMNS)]


def _observed_z_words(view) -> str:
    study = view.study
    exp = comparisons(view)[0][0]
    test = (f"the log-rank z stratified by {format_strata(study)} (the primary analysis)" if study.strata_factors
            else "the log-rank z (unstratified: the study has no strata)")
    return f"{test}, positive when {exp} has fewer deaths than expected"


def _looks_words(view) -> str:
    study = view.study
    if study.interim_look_dates:
        return "earlier looks at the data cuts the study file records (interim_look_dates), recomputed from the current data"
    return ("earlier planned looks placed at the date their planned number of deaths was reached and recomputed "
            "from the current data (reconstructed: the study file records no look dates)")


def _sequential_method(view) -> str:
    study = view.study
    planned = (f"; information fraction = deaths / planned deaths ({study.planned_events}), not capped at 1 (more "
               f"deaths than planned: the look uses the observed information and spends the alpha left); "
               f"{_looks_words(view)}; the observed z is {_observed_z_words(view)}" if study.planned_events else "")
    return (f"Lan-DeMets alpha spending with an O'Brien-Fleming-type function, one-sided alpha "
            f"{study.alpha_one_sided}, boundaries recomputed at the actual information of every look{planned}.")


# --------------------------------------------------------------------------- the decision panel
def _pct(p) -> str:
    return "not applicable (final analysis)" if p is None or not np.isfinite(p) else format_percent(p, 0, True)


def _decision(view, **_):
    """The decision quantities at this cut, one row each (quantity, value, note: the quantity in
    words with its value)."""
    view.require_unblinded("interim decision table")
    from analysis.interim import futility_z, interim_decision
    study = view.study
    seq = table_of("sequential", view)
    looks = interim_looks(view)
    here = seq.index[seq["label"] == THIS_CUT][0]
    row, lk = seq.loc[here], looks.loc[here]
    t, z = float(row["information_fraction"]), float(row["observed_z"])
    o_e, v = float(lk["o_minus_e"]), float(lk["variance"])
    log_hr, se = (o_e / v, 1 / np.sqrt(v)) if v > 0 else (np.nan, np.nan)
    pairs = list(zip(seq["information_fraction"], seq["boundary_z"]))
    d = interim_decision(z, t, pairs, study.design_hazard_ratio, study.planned_events, log_hr, se,
                         futility_threshold=study.futility_conditional_power)
    final = t >= 1 - 1e-12 or here == len(seq) - 1
    hr_trend = math.exp(-d.trend_drift / math.sqrt(study.planned_events / 4)) if np.isfinite(d.trend_drift) else np.nan
    events, planned = int(lk["events"]), study.planned_events
    cut_z = futility_z(t, pairs, study.futility_conditional_power)
    follow = _follow_up_note(view, seq, here)
    rows = [
        ("information_fraction", t, f"Information fraction: {events} of {planned} planned deaths "
                                    f"({format_percent(t, 0, True)})" + (
            "; more deaths than planned: this look is the final analysis at the observed information" if t > 1 else
            "; this look is the final analysis" if final else "") + follow),
        ("observed_z", z, f"Observed z: {format_number(z, 2)} (log-rank{' stratified' if study.strata_factors else ''}, "
                          f"the primary analysis; positive favours {comparisons(view)[0][0]})"),
        ("efficacy_boundary_z", d.efficacy_boundary_z,
         f"Efficacy boundary at this look: z = {format_number(d.efficacy_boundary_z, 3)}"),
        ("final_boundary_z", d.final_boundary_z,
         f"Efficacy boundary at the final analysis ({int(seq['events'].iloc[-1])} deaths): "
         f"z = {format_number(d.final_boundary_z, 3)}"),
        ("conditional_power_design", d.conditional_power_design,
         f"Conditional power under the design effect (HR {format_number(study.design_hazard_ratio, 2)}): "
         f"{_pct(d.conditional_power_design)}"),
        ("conditional_power_trend", d.conditional_power_trend,
         f"Conditional power under the current trend (HR {format_number(hr_trend, 2)}): "
         f"{_pct(d.conditional_power_trend)}"),
        ("conditional_power_null", d.conditional_power_null,
         f"Conditional power under the null (HR 1): {_pct(d.conditional_power_null)}"),
        ("predictive_power", d.predictive_power,
         f"Predictive power (flat prior on the effect): {_pct(d.predictive_power)}"),
        ("rci_lower", d.rci_lower, f"Repeated {format_percent(1 - 2 * study.alpha_one_sided, 0, True)} CI for the "
                                   f"hazard ratio, lower limit: {format_number(d.rci_lower, 2)} (HR estimate "
                                   f"{format_number(math.exp(log_hr), 2) if np.isfinite(log_hr) else '—'})"),
        ("rci_upper", d.rci_upper, f"Repeated {format_percent(1 - 2 * study.alpha_one_sided, 0, True)} CI for the "
                                   f"hazard ratio, upper limit: {format_number(d.rci_upper, 2)}"),
        ("efficacy_crossed", d.efficacy_crossed,
         f"Efficacy boundary crossed: {'yes' if d.efficacy_crossed else 'no'} (z {format_number(z, 2)} "
         f"{'≥' if d.efficacy_crossed else '<'} {format_number(d.efficacy_boundary_z, 3)})"),
        ("futility_crossed", d.futility_crossed,
         f"Futility rule met (non-binding: conditional power under the current trend below "
         f"{format_percent(study.futility_conditional_power, 0, True)}): {'yes' if d.futility_crossed else 'no'}"
         + (f" (met when z < {format_number(cut_z, 2)} at this look)" if np.isfinite(cut_z) else
            " (does not apply at the final analysis)" if final else "")),
    ]
    return pd.DataFrame({"quantity": [r[0] for r in rows], "value": pd.Series([r[1] for r in rows], dtype=object),
                         "note": [r[2] for r in rows]})


def _follow_up_note(view, seq: pd.DataFrame, here: int) -> str:
    """Words when no participant is still followed before the landmark at this cut (no further
    death can count: the cut is in effect the final analysis), with the boundary it would have
    as the final analysis (spending the alpha left)."""
    if here == len(seq) - 1:
        return ""
    tte, _ = _primary_tte(view)
    landmark = view.study.landmark_day
    if not landmark or not len(tte) or "CNSDTDSC" not in tte.columns and "ADT" not in tte.columns:
        return ""
    censored = (tte["CNSR"] == 1) & (tte["AVAL"] < landmark)
    at_cut = pd.Series(False, index=tte.index)
    if "CNSDTDSC" in tte.columns:
        at_cut |= tte["CNSDTDSC"].astype(str).str.upper().str.contains("CUT-OFF|CUTOFF", regex=True)
    if "ADT" in tte.columns and view.cut_date:
        at_cut |= pd.to_datetime(tte["ADT"]).dt.date >= view.cut_date
    if (censored & at_cut).any():
        return ""
    from analysis.sequential import compute_obf_boundaries
    fractions = seq["information_fraction"].to_numpy(dtype=float)[:here + 1]
    c = compute_obf_boundaries(fractions, alpha=view.study.alpha_one_sided, last_spends_all=True)["boundary_z"].iloc[-1]
    return (f"; no participant is still followed before day {landmark} at this cut, so no further death will "
            f"count: as the final analysis this cut would spend the alpha left (boundary z = {format_number(c, 3)})")


def _decision_method(view) -> str:
    study = view.study
    return (f"B-value method (Lan and Wittes 1988; Jennison and Turnbull 2000, ch. 10): at information fraction t, "
            f"B(t) = z sqrt(t) is a Brownian motion with drift theta = E[z at the final analysis]. Conditional power: "
            f"probability of crossing the efficacy boundary at a remaining look given the z so far, with theta from "
            f"the design hazard ratio (-log HR x sqrt(planned deaths / 4), 1:1), from the current trend (z / "
            f"sqrt(t)) or 0 (the null). Predictive power: conditional power averaged over theta's posterior under a "
            f"flat prior, N(z / sqrt(t), 1 / t). Repeated CI (Jennison and Turnbull 2000, ch. 9): log-rank "
            f"estimate of the log HR, (O - E) / V, plus and minus this look's boundary z times 1 / sqrt(V) (joint "
            f"coverage {format_percent(1 - 2 * study.alpha_one_sided, 0, True)} over the looks). Observed z: "
            f"{_observed_z_words(view)}. Futility rule, non-binding (the efficacy boundaries ignore it): conditional "
            f"power under the current trend below {format_percent(study.futility_conditional_power, 0, True)}. "
            f"Design assumptions ([analysis] of the study file): {design_assumptions_text(study)}.")


OUTPUTS = [
    Output("sequential", "Group-sequential efficacy boundaries and this data cut", _sequential,
           SEQUENTIAL_COLUMNS, by_arm_only=True, needs=TTE, applies=_sequential_applies,
           display=DisplaySpec(
               labels={"label": "Look", "information_fraction": "Information fraction",
                       "cumulative_alpha": "Cumulative alpha spent", "alpha_spent": "Alpha spent at this look",
                       "boundary_z": "Boundary z", "nominal_p": "Nominal p (one-sided)", "events": "Deaths",
                       "observed_z": "Observed z", "crossed": "Boundary crossed", "date": "Date"},
               digits={"information_fraction": 2, "cumulative_alpha": 4, "alpha_spent": 4, "boundary_z": 3,
                       "nominal_p": 4, "observed_z": 3},
               drop=("look",), yes_no=("crossed",), first=("label",)),
           method=_sequential_method),
    Output("decision", "Interim decision at this data cut: efficacy, conditional and predictive power, repeated "
                       "CI and futility", _decision, ("quantity", "value", "note"), by_arm_only=True, needs=TTE,
           applies=_decision_applies,
           display=DisplaySpec(labels={"note": "Interim decision (quantity: value)"}, drop=("quantity", "value")),
           method=_decision_method),
]


# --------------------------------------------------------------------------- figures
def fig_boundaries(view, subtitle=None):
    """The efficacy boundary by information fraction and, when the study plans its deaths, the
    observed z at every look so far, joined as a path (unblinded only)."""
    from analysis.figures_survival import plot_boundaries
    b = table_of("sequential", view)
    return plot_boundaries(b, observed=b if "observed_z" in b else None, subtitle=subtitle)


FIGURES = [
    FigureOutput("boundaries", "Sequential monitoring", "Efficacy boundary (z) by information fraction and the "
                 "observed z at every look so far", fig_boundaries, by_arm_only=True, table="sequential"),
]
