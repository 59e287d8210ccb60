"""Forecasts: when recruitment reaches its target(s) (Poisson-gamma with site lag, fitted in
``analysis.recruitment_model`` and simulated in ``analysis.recruitment_projection``), with the
probability of reaching them by the planned end and the intervals' coverage measured by the
back-test (``scripts/backtest_recruitment.py``). Pooled (recruitment is arm-free). Defined once
here: the ``projection`` table, the sentence the open report (and the dashboard) print
(:func:`format_projection_sentence`); the cumulative-recruitment figure
(``recruitment.fig_cumulative``) draws the same projection."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from analysis.display_table import DisplaySpec
from analysis.outputs.base import Output, TableUnavailable, get_adsl
from analysis.outputs.filters import site_selection

PROJECTION_SEED = 1
PROJECTION_DRAWS = 2000

# Measured by scripts/backtest_recruitment.py with its default arguments (20 simulated trials of 220
# randomised, seeds 1000-1019, cut at 2018-03-31, 2018-07-31, 2018-11-30 and 2019-03-31; targets
# 150, 200 and the final N; 2000 draws): the "all" row of its table, and the "target = final N" row
# for the note. Measure again and update when the model changes. None: not measured.
BACKTEST = {"date": "2026-12-02", "trials": 20, "cuts": 4, "forecasts": 233, "cover50": 46, "cover80": 77,
            "cover95": 95, "median_error": -6, "final_cover80": 70}

PROJECTION_COLUMNS = ("target", "median_date", "pi80_lower", "pi80_upper", "pi95_lower", "pi95_upper",
                      "p_by_planned_end", "cut_date", "randomised", "draws")


def _planned_end(study):
    return study.raw.get("study", {}).get("recruitment_end")


def _memo(view) -> dict:
    return view.__dict__.setdefault("_recruitment_projections", {})


def _recruiting(view):
    """(ADSL, site selection, planned end) of a view the projection applies to, or
    ``TableUnavailable`` saying why not: recruitment ended, a filter with no per-site target,
    nobody randomised yet."""
    adsl = get_adsl(view, None)
    end = _planned_end(view.study)
    if end is not None and str(view.cut_date) > str(end):
        raise TableUnavailable(f"recruitment ended on {end} (study file); no projection is made after it")
    sel = site_selection(view)            # a filtered view: its sites, to their share of the target
    if sel.not_by_site:
        raise TableUnavailable(f"no projection for the {sel.not_by_site} filter: targets are per site, "
                               "with no split by onset")
    if not len(adsl):
        raise TableUnavailable("nobody is randomised yet: the site rates cannot be estimated")
    return adsl, sel, end


def recruitment_model(view):
    """The fitted recruitment model of a view (``analysis.recruitment_model.RecruitmentModel``,
    cached on the view), or ``TableUnavailable`` (see :func:`recruitment_projection`)."""
    from analysis.recruitment_model import fit_recruitment_model
    adsl, sel, _ = _recruiting(view)
    key = ("model", tuple(s.id for s in sel.sites))
    memo = _memo(view)
    if key not in memo:
        try:
            memo[key] = fit_recruitment_model(adsl, sel.sites, view.cut_date, site_col=view.study.col("site"),
                                              date_col=view.study.col("randomisation_date"))
        except ValueError as exc:                 # e.g. no listed site has randomised
            raise TableUnavailable(f"no projection: {exc}") from exc
    return memo[key]


def recruitment_projection(view, targets=None):
    """The recruitment projection at this cut (seeded, so the same cut gives the same dates) to
    ``targets`` (numbers randomised; default: the planned sample size, scaled to a site filter's
    share), or ``TableUnavailable`` saying why there is none: recruitment ended, the target
    reached (every target asked), nobody randomised yet, or a filter with no per-site target.
    Returns ``analysis.recruitment_projection.RecruitmentProjection`` (cached on the view)."""
    from analysis.recruitment_projection import fit_recruitment_projection
    adsl, sel, end = _recruiting(view)
    whose = f" for {sel.label}" if sel.label else ""
    if targets is None or not len(targets):
        if not view.study.planned_n:
            raise TableUnavailable("the study file gives no planned sample size")
        targets = (sel.target,)
    targets = tuple(dict.fromkeys(int(t) for t in targets))
    if len(adsl) >= max(targets):
        what = f"target of {targets[0]}" if len(targets) == 1 else f"targets ({', '.join(map(str, targets))})"
        raise TableUnavailable(f"the {what}{whose} {'was' if len(targets) == 1 else 'were'} reached "
                               f"({len(adsl)} randomised)")
    model = recruitment_model(view)
    key = ("projection", targets, tuple(s.id for s in sel.sites))
    memo = _memo(view)
    if key not in memo:
        memo[key] = fit_recruitment_projection(adsl, sel.sites, view.cut_date, targets, draws=PROJECTION_DRAWS,
                                               seed=PROJECTION_SEED, planned_end=end, model=model)
    return memo[key]


def _projection(view, targets=None, **_):
    p = recruitment_projection(view, targets)
    return p.table_.assign(cut_date=pd.Timestamp(p.cut_date), randomised=p.n_randomised,
                           draws=p.draws)[list(PROJECTION_COLUMNS)]


def backtest_text(backtest=None) -> str:
    """The measured coverage in words (footnote, report): "back-tested on 20 simulated trials x 4
    cuts (80 forecasts, 2026-12-02): the 80 % interval held the true date in 78 %, ..."."""
    b = BACKTEST if backtest is None else backtest
    if not b:
        return "Not yet back-tested: the intervals' coverage is unmeasured."
    return (f"Back-tested on {b['trials']} simulated trials x {b['cuts']} cuts ({b['forecasts']} forecasts, "
            f"measured {b['date']}): the 50 % interval held the true date in {b['cover50']:.0f} %, the 80 % "
            f"interval in {b['cover80']:.0f} %, the 95 % interval in {b['cover95']:.0f} %; median error of the "
            f"projected date {b['median_error']:+.0f} days. For the trial's last randomisation the 80 % interval "
            f"held it in {b['final_cover80']:.0f} % (projected early: the simulated sites stop screening 18 weeks "
            "before the planned end, which the model does not know).")


def _method(view) -> str:
    from analysis.recruitment_projection import HORIZON_DAYS
    try:
        fitted = f" Here: {recruitment_model(view).describe()}."
    except TableUnavailable:
        fitted = ""
    end = _planned_end(view.study)
    return ("Poisson-gamma model of the sites' recruitment rates (Anisimov-Fedorov) with site start-up: a site "
            "randomises nobody for a lag after its activation (start-up and run-in), then its rate ramps up "
            "(1 - exp(-t/tau)) to its full rate; full rates Gamma(alpha, beta). Lag, ramp-up, alpha and beta are "
            "estimated together from the sites' counts (negative binomial) and randomisation dates, as a grid "
            f"posterior with flat priors.{fitted} Prediction intervals from {PROJECTION_DRAWS} simulated futures "
            "(seeded), each drawing the lag, ramp-up, alpha and beta from their posterior and each site's rate from "
            "its own posterior, so the uncertainty of the fit is in the interval. "
            + (f"P(by planned end): share of futures reaching the target by {end} (study file); recruitment is "
               "not stopped there. " if end else "")
            + f"'—': beyond the simulation horizon ({HORIZON_DAYS // 365} years after the cut). " + backtest_text())


def _month(d) -> str:
    return f"{d:%Y-%m}"


class _TableProjection:
    """The parts of a projection :func:`format_projection_sentence` reads, from the ``projection``
    machine table (cached by the dashboard: the sentence is made without fitting again)."""

    def __init__(self, table: pd.DataFrame):
        from analysis.recruitment_projection import HORIZON_DAYS
        if table is None or not len(table):
            raise ValueError("the projection table is empty")
        self.table_ = table
        first = table.iloc[0]
        self.target = int(first["target"])
        self.n_randomised = int(first["randomised"])
        self.cut_date = pd.Timestamp(first["cut_date"]).date()
        self.horizon_date = self.cut_date + dt.timedelta(days=HORIZON_DAYS)

    def row(self, target: int | None = None) -> pd.Series:
        t = self.target if target is None else int(target)
        return self.table_[self.table_["target"] == t].iloc[0]


def format_projection_sentence(projection, target: int | None = None, lead: bool = True,
                               coverage: bool = True) -> str:
    """The projection in one sentence, for the open report and the dashboard: "150 of 304
    participants were randomised by the cut-off. 304 expected by 2021-02 (80 % PI 2020-11 to
    2021-06); P(by planned end) = 35 %." (``lead``: the first sentence; ``coverage``: the
    back-tested coverage of the 80 % interval after it). A date beyond the simulation horizon is
    "after" the horizon's month. ``projection``: a ``RecruitmentProjection`` or the ``projection``
    machine table (the same sentence from either)."""
    if isinstance(projection, pd.DataFrame):
        projection = _TableProjection(projection)
    r = projection.row(target)
    t = int(r["target"])
    after = f"after {_month(projection.horizon_date)}"
    when = lambda d: _month(d) if pd.notna(d) else after
    if pd.isna(r["median_date"]):
        text = (f"{t} not expected within the simulation horizon (median {after}; 80 % PI from "
                f"{when(r['pi80_lower'])})")
    else:
        text = f"{t} expected by {when(r['median_date'])} (80 % PI {when(r['pi80_lower'])} to {when(r['pi80_upper'])})"
    if pd.notna(r["p_by_planned_end"]):
        text += f"; P(by planned end) = {100 * r['p_by_planned_end']:.0f} %"
    text += "."
    if coverage and BACKTEST:
        text += (f" In the back-test the 80 % interval held the true date in {BACKTEST['cover80']:.0f} % of "
                 f"{BACKTEST['forecasts']} forecasts.")
    if lead:
        text = (f"{projection.n_randomised} of {t} participants were randomised by the cut-off "
                f"({projection.cut_date}). " + text)
    return text


def no_projection_sentence(reason: str, randomised: int | None = None, cut_date=None) -> str:
    """Why there is no projection, as the sentence that takes its place (the Recruitment page's
    first line, the open report): "220 participants were randomised by the cut-off (2021-07-22).
    No recruitment projection: recruitment ended on 2019-09-30 (study file); no projection is made
    after it." ``reason``: the ``projection`` output's ``TableUnavailable`` message."""
    reason = str(reason).strip().rstrip(".")
    reason = reason.split("not available: ", 1)[-1]          # check_available's prefix, if any
    lead = ""
    if randomised is not None:
        lead = (f"{randomised} participant{' was' if randomised == 1 else 's were'} randomised by the cut-off"
                + (f" ({cut_date})" if cut_date else "") + ". ")
    return f"{lead}No recruitment projection: {reason}."


OUTPUTS = [
    Output("projection", "Projected date to reach the recruitment target", _projection, PROJECTION_COLUMNS,
           population="all",
           display=DisplaySpec(
               labels={"target": "Target (participants)", "median_date": "Projected date (median)",
                       "pi80_lower": "80% prediction interval, from", "pi80_upper": "80% prediction interval, to",
                       "pi95_lower": "95% prediction interval, from", "pi95_upper": "95% prediction interval, to",
                       "p_by_planned_end": "Probability of reaching the target by the planned end",
                       "cut_date": "Data cut-off", "randomised": "Randomised by the cut-off",
                       "draws": "Simulated futures"},
               proportions=("p_by_planned_end",)),
           method=_method),
]
