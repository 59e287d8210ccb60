"""Forecasts: when recruitment reaches its target (Poisson-gamma, Anisimov-Fedorov), with the
probability of reaching it by the planned end. Pooled (recruitment is arm-free). Defined once
here; the cumulative-recruitment figure (``recruitment.fig_cumulative``) draws the projection."""
from __future__ import annotations

from analysis.display_table import DisplaySpec
from analysis.outputs.base import Output, TableUnavailable, get_adsl
from analysis.outputs.filters import site_selection


def recruitment_projection(view):
    """The Poisson-gamma projection to the planned sample size at this cut (seeded, so the same
    cut gives the same dates), or ``TableUnavailable`` saying why there is none: recruitment
    ended, target reached, or nobody randomised yet."""
    from analysis.recruitment_projection import fit_recruitment_projection
    study = view.study
    adsl = get_adsl(view, None)
    end = study.raw.get("study", {}).get("recruitment_end")
    if end is not None and str(view.cut_date) > str(end):
        raise TableUnavailable(f"recruitment ended on {end} (study file); no projection is made after it")
    if not study.planned_n:
        raise TableUnavailable("the study file gives no planned sample size")
    sel = site_selection(view)            # a filtered view: its sites, to their share of the target
    if sel.not_by_site:
        raise TableUnavailable(f"no projection for the {sel.not_by_site} filter: targets are per site, "
                               "with no split by onset")
    target, whose = sel.target, (f" for {sel.label}" if sel.label else "")
    if len(adsl) >= target:
        raise TableUnavailable(f"the target of {target}{whose} was reached ({len(adsl)} randomised)")
    if not len(adsl):
        raise TableUnavailable("nobody is randomised yet: the site rates cannot be estimated")
    return fit_recruitment_projection(adsl, sel.sites, view.cut_date, target)


def _projection(view, **_):
    p = recruitment_projection(view)
    return p.summary().assign(prob_reached=p.prob_reached_)


OUTPUTS = [
    Output("projection", "Projected date to reach the planned sample size", _projection,
           ("cut_date", "target", "randomised", "projected_date", "lower80", "upper80", "lower95", "upper95", "prob_reached"),
           population="all",
           display=DisplaySpec(
               labels={"cut_date": "Data cut-off", "projected_date": "Projected date (median)",
                       "lower80": "80% prediction interval, from", "upper80": "80% prediction interval, to",
                       "lower95": "95% prediction interval, from", "upper95": "95% prediction interval, to",
                       "prob_reached": "Probability of reaching the target by the planned end"},
               proportions=("prob_reached",)),
           method="Poisson-gamma model of the sites' recruitment rates (Anisimov-Fedorov), intervals by "
                  "simulation (seeded). Not yet back-tested: the intervals' coverage is unmeasured."),
]
