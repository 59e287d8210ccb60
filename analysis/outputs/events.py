"""Forecast of deaths: when the planned number of deaths (the final analysis) is reached and how
many deaths are expected by the analysis date, pooled for blinded roles and by arm for the DSMB.
Defined once here: the ``event-projection`` table and its fan chart (``analysis.event_hazards``
fits the hazards, ``analysis.event_projection`` simulates, ``analysis.event_projection_trial``
feeds it the study and the recruitment to come, ``analysis.figures_events`` draws the fan)."""
from __future__ import annotations

import math

import pandas as pd

from analysis.display_table import DisplaySpec
from analysis.outputs.base import TTE, FigureOutput, Output, TableUnavailable, get_adsl, get_tte
from analysis.outputs.filters import site_selection

DRAWS = 2000
SEED = 20170619
# scripts/backtest_events.py (README, "Death forecast"), measured 2026-12-02: 20 simulated trials
# (seeds 2000-2019, published effect) cut at 2018-09-30, 2019-03-31, 2019-09-30 and 2020-03-31,
# 2000 draws; dates of the 30th, 45th and 60th deaths (183 forecasts) and the deaths at the final
# analysis (80); coverage of the 50/80/95 % intervals (%), median error of the projected median
BACKTEST = {
    "date": "2026-12-02", "trials": 20, "cuts": 4,
    "pooled": {"forecasts": 183, "cover": (47, 81, 97), "error_days": -26,
               "final": {"forecasts": 80, "cover": (45, 75, 96), "error_deaths": 4}},
    "by arm": {"forecasts": 183, "cover": (43, 79, 96), "error_days": -41,
               "final": {"forecasts": 80, "cover": (39, 75, 90), "error_deaths": 5}},
}


def backtest_text(by_arm: bool, backtest=None) -> str:
    """The measured coverage in words (the footnote): the pooled projection's for a blinded view,
    the by-arm total's for the DSMB."""
    b = BACKTEST if backtest is None else backtest
    if not b:
        return "Not yet back-tested: the intervals' coverage is unmeasured."
    r = b["by arm" if by_arm else "pooled"]
    f = r["final"]
    return (f"Back-tested{' by arm (the total)' if by_arm else ''} on {b['trials']} simulated trials x {b['cuts']} "
            f"cuts (scripts/backtest_events.py, measured {b['date']}): the 50%, 80% and 95% intervals held the true "
            f"date of the target death in {r['cover'][0]}%, {r['cover'][1]}% and {r['cover'][2]}% of "
            f"{r['forecasts']} forecasts, median error {r['error_days']:+d} days (projected early); the deaths "
            f"at the final analysis in {f['cover'][0]}%, {f['cover'][1]}% and {f['cover'][2]}% of "
            f"{f['forecasts']}, median error {f['error_deaths']:+d} deaths. The projection runs early because "
            "the hazard of the trial population falls with follow-up (the frailer die first), which a model "
            "fitted to early follow-up does not foresee.")


def event_projection(view):
    """The death projection of a view (by arm when it is unblinded), simulated once per view
    object (the table, its footnote and its figure share it)."""
    memo = view.__dict__.setdefault("_derived", {})
    if "event-projection" not in memo:
        memo["event-projection"] = _project(view)
    return memo["event-projection"]


def _project(view):
    from analysis.event_projection_trial import project_trial_deaths
    from analysis.outputs.projections import recruitment_model
    sel = site_selection(view)
    if sel.not_by_site:
        raise TableUnavailable(f"no death projection for the {sel.not_by_site} filter: the recruitment still to "
                               "come is projected per site, with no split by onset")
    tte = get_tte(view)
    if not len(tte):
        raise TableUnavailable("nobody is randomised yet: there is no follow-up to fit a hazard to")
    by_arm = view.group_col is not None
    try:                               # the recruitment projection's fit, when this view has one
        model = recruitment_model(view)
    except TableUnavailable:           # recruitment over: nobody to come
        model = None
    return project_trial_deaths(view.study, get_adsl(view, None), tte, view.cut_date, sites=sel.sites,
                                target_n=sel.target, group_col=view.group_col if by_arm else None,
                                groups=tuple(view.arm_levels) if by_arm else None, draws=DRAWS, seed=SEED,
                                recruitment_model=model)


def _targets(view, targets):
    """The total deaths projected to: the given targets, else the study's planned deaths (scaled by
    the selected sites' share on a site-filtered view)."""
    if targets:
        out = list(dict.fromkeys(int(t) for t in (targets if isinstance(targets, (list, tuple)) else [targets])))
        if any(t <= 0 for t in out):
            raise TableUnavailable(f"targets must be positive numbers of deaths, got {out}")
        return out
    planned = view.study.planned_events
    if not planned:
        raise TableUnavailable("the study file gives no planned number of deaths ([analysis] planned_events); "
                               "give targets (--target)")
    sel = site_selection(view)
    return [max(1, math.floor(planned * sel.share + 0.5)) if sel.restricted else int(planned)]


def _shares(view) -> dict:
    """Each arm's share of the allocation (the study's ratio; equal when it gives none)."""
    levels = list(view.arm_levels)
    ratio = view.study.raw.get("arms", {}).get("ratio")
    if not ratio or len(ratio) != len(levels):
        ratio = [1] * len(levels)
    return {g: r / sum(ratio) for g, r in zip(levels, ratio)}


def _design_survival(view) -> dict:
    """Survival at the landmark the design assumes, per group: the reference arm's
    (``control_survival_landmark``), the other arms' at the design hazard ratio, and pooled
    (weighted by the allocation ratio). Empty when the study file sets no design assumption."""
    study = view.study
    control = getattr(study, "control_survival_landmark", None)
    hr = getattr(study, "design_hazard_ratio", None)
    if not control or not hr:
        return {}
    codes = list(study.arm_codes)
    ref = codes.index(study.reference_arm) if study.reference_arm in codes else len(codes) - 1
    arm_surv = [control if i == ref else control ** hr for i in range(len(codes))]
    ratio = study.raw.get("arms", {}).get("ratio") or [1] * len(codes)
    if len(ratio) != len(codes):
        ratio = [1] * len(codes)
    pooled = sum(s * r for s, r in zip(arm_surv, ratio)) / sum(ratio)
    out = {"All": pooled, "Total": pooled}
    if view.group_col and len(view.arm_levels) == len(codes):
        out.update(dict(zip(view.arm_levels, arm_surv)))
    return out


COLUMNS = ("group", "target", "observed", "median_date", "pi50_lower", "pi50_upper", "pi80_lower", "pi80_upper",
           "pi95_lower", "pi95_upper", "p_by_planned_end", "p_reached", "expected_by_final",
           "expected_by_final_lower80", "expected_by_final_upper80", "expected_by_final_lower95",
           "expected_by_final_upper95", "final_date", "surv_landmark", "surv_landmark_design", "model")


def _event_projection(view, targets=None, **_):
    """One row per target: pooled ("All") on a blinded view; on an unblinded view each arm's rows
    (its share of the target by the allocation ratio, rounded up) then the "Total" row, for each
    target."""
    totals = _targets(view, targets)
    projection = event_projection(view)
    shares = _shares(view) if view.group_col is not None else {}
    rows = [projection.summary({g: [t if g in ("All", "Total") else max(1, math.ceil(t * shares[g] - 1e-9))]})
            for t in totals for g in projection.groups]
    table = pd.concat(rows, ignore_index=True)
    design = _design_survival(view)
    table.insert(table.columns.get_loc("model"), "surv_landmark_design",
                 table["group"].map(lambda g: design.get(g, float("nan"))).astype(float))
    return table[list(COLUMNS)]


_SHORT = {"exponential": "exponential", "weibull": "Weibull", "piecewise": "piecewise"}


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def _method(view) -> str:
    from analysis.event_hazards import MIN_EVENTS_PER_PIECE
    from analysis.event_projection_trial import recruitment_end
    try:
        projection = event_projection(view)
    except TableUnavailable:
        return None
    study = view.study
    landmark = study.landmark_day
    by_arm = view.group_col is not None
    fits = []
    for group, (chosen, candidates) in projection.fits.items():
        aics = ", ".join(f"{_SHORT[c.model]} {c.aic:.1f}" for c in candidates)
        rate = 100 * 30.4375 * chosen.deaths / chosen.exposure if chosen.exposure else float("nan")
        drop = projection.dropout[group]
        fits.append(f"{group + ': ' if by_arm else ''}{chosen.label} chosen (AIC {aics}); {chosen.deaths} deaths "
                    f"by day {landmark} in {chosen.exposure / 30.4375:.0f} person-months ({rate:.2f} per 100 "
                    f"person-months); {drop.lost} lost to follow-up")
    final = projection.planned_final_date
    future = int(pd.Series(projection.n_future).median()) if len(projection.n_future) else 0
    end = recruitment_end(study)
    design = _design_survival(view)
    design_text = ""
    if design:
        design_text = (f" Design assumption: survival at day {landmark} {_percent(design['All'])} pooled (control "
                       f"{_percent(study.control_survival_landmark)}, hazard ratio {study.design_hazard_ratio:g}); "
                       f"the fitted model's is in the table.")
    backtest = " " + backtest_text(by_arm)
    arms = (" Each arm is fitted and simulated on its own (its share of each target: the target times its share "
            "of the allocation, rounded up); Total is the sum of the arms within each draw, its fitted survival the "
            "arms' weighted by their numbers." if by_arm else "")
    return (f"Deaths counted as the primary analysis counts them: within day {landmark} of randomisation. "
            f"Hazard of death fitted by maximum likelihood as exponential, Weibull and piecewise exponential "
            f"(pieces from days 0, 180, 360 and 540; a piece with fewer than {MIN_EVENTS_PER_PIECE} deaths merged "
            f"into the one before); "
            f"the lowest AIC is chosen. {'; '.join(fits)}. Participants censored before day {landmark} and before "
            f"the cut who are no longer followed are lost to follow-up: an exponential dropout hazard. "
            f"{projection.draws} simulation draws (seeded): each takes the hazard parameters from the asymptotic "
            f"normal of their logarithms and the dropout rate from its gamma posterior, the randomisations still to "
            f"come from the recruitment model"
            + (f" to the planned end of recruitment ({end}; median {future} more)" if future and end else
               f" (median {future} more)" if future else " (none: recruitment is over)")
            + f", and simulates the death of every participant at risk given survival to the cut and of every "
            f"participant to come.{arms} Prediction intervals (PI): the draws' 10th-90th (80%) and 2.5th-97.5th "
            f"(95%) percentiles; a date shown as — is not reached in that share of the draws. "
            + (f"Probability by the planned final analysis: the share of draws reaching the target by {final} (the "
               f"planned end of recruitment plus {landmark} days). " if final else "")
            + f"Final analysis: the date the last participant randomised reaches day {landmark}."
            + design_text + backtest)


_DISPLAY = DisplaySpec(
    labels={"target": "Target deaths", "observed": "Deaths at the cut-off",
            "p_by_planned_end": "Probability reached by the planned final analysis",
            "p_reached": "Probability reached at all",
            "final_date": "Final analysis date, median",
            "surv_landmark": "Survival at day {landmark}, fitted",
            "surv_landmark_design": "Survival at day {landmark}, design", "model": "Hazard model"},
    proportions=("p_by_planned_end", "p_reached", "surv_landmark", "surv_landmark_design"),
    compose=(("median_date", "{median_date} ({pi80_lower} to {pi80_upper})", "Date reached, median (80% PI)"),
             ("pi95_lower", "{pi95_lower} to {pi95_upper}", "95% PI"),
             ("expected_by_final", "{expected_by_final} ({expected_by_final_lower80} to {expected_by_final_upper80}; "
              "{expected_by_final_lower95} to {expected_by_final_upper95})",
              "Deaths at the final analysis, median (80% PI; 95% PI)")),
    drop=("pi50_lower", "pi50_upper"), hide_empty=("surv_landmark_design",))

OUTPUTS = [
    Output("event-projection", "Projected date the planned deaths are reached, and deaths by the final analysis",
           _event_projection, COLUMNS, needs=TTE, display=_DISPLAY, method=_method),
]


# --------------------------------------------------------------------------- figure
def fig_event_projection(view, subtitle=None):
    """Observed deaths (within the landmark) to the cut, then the projection's median and 80/95 %
    bands to the final analysis, with the planned deaths line: pooled, or each arm and the total."""
    from analysis.figures_events import plot_event_projection
    projection = event_projection(view)
    target = _targets(view, None)[0] if view.study.planned_events else None
    return plot_event_projection(projection, target=target, subtitle=subtitle,
                                 title="Deaths: observed and projected to the final analysis")


FIGURES = [
    FigureOutput("event-projection", "Death forecast", "Cumulative deaths within the primary analysis's follow-up, "
                 "observed to the cut-off and projected to the final analysis (median, 80% and 95% prediction "
                 "bands), with the planned deaths",
                 fig_event_projection, table="event-projection"),
]


# --------------------------------------------------------------------------- words for the reports
def describe_event_projection(machine: pd.DataFrame, view) -> str:
    """The projection in sentences (the reports' text beside the table): for the first target,
    the deaths counted so far, when the target is reached (or was, or is not expected to be), the
    probability by the planned final analysis and the deaths expected by the final analysis,
    with the fitted survival at the landmark against the design's; by arm, each arm's expected
    deaths. Pooled on a blinded view (its machine table has the pooled row only)."""
    from analysis.event_projection_trial import planned_final_date
    landmark = view.study.landmark_day
    month = lambda d: "not reached" if pd.isna(d) else f"{pd.Timestamp(d):%B %Y}"
    day = lambda d: "—" if pd.isna(d) else f"{pd.Timestamp(d):%Y-%m-%d}"
    pooled = machine[machine["group"].isin(["All", "Total"])]
    if not len(pooled):
        return ""
    r = pooled.iloc[0]
    target, observed = int(r["target"]), int(r["observed"])
    expected = (f"{r['expected_by_final']:.0f} deaths (80% prediction interval {r['expected_by_final_lower80']:.0f} "
                f"to {r['expected_by_final_upper80']:.0f}; 95% {r['expected_by_final_lower95']:.0f} to "
                f"{r['expected_by_final_upper95']:.0f})")
    projection = event_projection(view)
    complete = projection.at_risk[r["group"]] == 0 and not projection.n_future.any()
    if complete:                      # nobody at risk, nobody to come: the count is final
        text = (f"Follow-up to day {landmark} is complete: the final analysis counts {observed} deaths, "
                + (f"the target of {target} reached on {day(r['median_date'])}." if observed >= target else
                   f"short of the target of {target}."))
    elif observed >= target:
        text = (f"{observed} deaths by day {landmark} were counted by the cut-off: the target of {target} was reached "
                f"on {day(r['median_date'])}. The final analysis is expected to count {expected}.")
    elif r["p_reached"] == 0:
        text = (f"{observed} deaths by day {landmark} were counted by the cut-off, against a target of {target}: "
                f"no simulated course of the trial reaches it. The final analysis is expected to count {expected}.")
    else:
        final = planned_final_date(view.study)
        by = (f"; probability of reaching it by the planned final analysis ({final}): "
              f"{100 * r['p_by_planned_end']:.0f}%" if final is not None and pd.notna(r["p_by_planned_end"]) else "")
        text = (f"{observed} of the {target} deaths targeted (deaths by day {landmark}) were counted by the cut-off. "
                f"The {target}th death is projected for {month(r['median_date'])} (80% prediction interval "
                f"{month(r['pi80_lower'])} to {month(r['pi80_upper'])}; 95% {month(r['pi95_lower'])} to "
                f"{month(r['pi95_upper'])}){by}. The final analysis (the last participant at day {landmark}, "
                f"median {day(r['final_date'])}) is expected to count {expected}.")
    if pd.notna(r["surv_landmark_design"]):
        text += (f" Survival at day {landmark} from the fitted hazard model: {100 * r['surv_landmark']:.0f}%, "
                 f"against {100 * r['surv_landmark_design']:.0f}% assumed by the design.")
    arms = machine[~machine["group"].isin(["All", "Total"])].drop_duplicates("group")
    if len(arms):
        text += (" By arm, deaths at the final analysis: " if complete else
                 " By arm, deaths expected at the final analysis: ") + "; ".join(
            f"{a.group} {a.expected_by_final:.0f}"
            + ("" if complete else f" (80% prediction interval {a.expected_by_final_lower80:.0f} to "
                                   f"{a.expected_by_final_upper80:.0f})")
            + f", survival at day {landmark} {100 * a.surv_landmark:.0f}% (fitted)"
            + (f" against {100 * a.surv_landmark_design:.0f}% (design)" if pd.notna(a.surv_landmark_design) else "")
            for a in arms.itertuples()) + "."
    return text
