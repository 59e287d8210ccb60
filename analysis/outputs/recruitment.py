"""Recruitment outputs (blinded information, pooled unless a view is by arm): enrolment by site
against target, screened and randomised by month, the plan, changes since the previous report,
the projection to the target, the screening funnel, the CONSORT flow and stratum balance. Each is
defined once here; the recruitment outputs follow the dashboard's site filter fully (plan and
targets scaled to the chosen sites) or say they are trial-wide (``filters.filter_note``)."""
from __future__ import annotations

from analysis.display_table import DisplaySpec
from analysis.outputs.base import (no_strata, FigureOutput, table_of, SCREENING, TTE, Output, TableUnavailable, get_adsl, get_tte, groups_of,
                                   screening_or_none, strata_columns)
from analysis.outputs.filters import scaled_plan, site_selection

def _enrolment(view, **_):
    """The selected sites only (a filtered view), each against its own target."""
    from analysis.recruitment import summarize_enrolment
    return summarize_enrolment(screening_or_none(view), get_adsl(view, None), site_selection(view).sites)



def _balance(view, **_):
    """Randomised per site and stratum (and arm for an unblinded view), with each site's total
    over its strata (stratum "Total") and each stratum's total over the sites (site "All", named
    "All sites"). A stratum a site cannot have (its country factor names another country: a French
    site has no UK stratum) has no row (shown '—', never drawn as a zero); a study site (of the
    filter's selection) where nobody is randomised yet has zeros. Rows are stratum-major
    (sites in the study's order, the "All" rows last), so the display reads one row per site
    and one column per stratum then "Total"."""
    import pandas as pd

    from analysis.recruitment import summarize_balance
    group_col, groups = groups_of(view)
    study = view.study
    factors = strata_columns(view)
    long = summarize_balance(get_adsl(view, None), group_col=group_col, groups=groups, strata_cols=factors)
    names = {s.id: s.name for s in study.sites}
    order = {s.id: i for i, s in enumerate(study.sites)}
    country_col = study.col("country")
    position = factors.index(country_col) if country_col in factors else None
    countries = {s.id: s.country for s in study.sites}

    def possible(stratum: str, site: str) -> bool:
        parts = str(stratum).split("/")
        if position is None or len(parts) != len(factors) or site not in countries:
            return True
        return parts[position] == countries[site]

    seen = set(long["site_id"])
    unseen = [s.id for s in site_selection(view).sites if s.id not in seen]     # nobody randomised there yet
    if unseen and len(long):
        cells = long[long["site_id"] == "All"][["stratum", "group"]]
        long = pd.concat([long, *[cells.assign(site_id=site, n=0) for site in unseen]], ignore_index=True)
    long = long[[site == "All" or possible(st, site) for st, site in zip(long["stratum"], long["site_id"])]]
    sites = long[long["site_id"] != "All"]
    totals = (sites.groupby(["site_id", "group"], sort=False, as_index=False)["n"].sum()
              .assign(stratum="Total"))
    grand = long[long["site_id"] == "All"].groupby("group", sort=False, as_index=False)["n"].sum()
    grand = grand.assign(stratum="Total", site_id="All")
    strata = list(dict.fromkeys(long["stratum"]))
    body = pd.concat([sites, totals], ignore_index=True)
    body = body.assign(_s=body["stratum"].map({s: i for i, s in enumerate(strata + ["Total"])}),
                       _site=body["site_id"].map(lambda x: order.get(x, len(order))))
    body = body.sort_values(["_s", "_site", "site_id"], kind="stable").drop(columns=["_s", "_site"])
    margin = pd.concat([long[long["site_id"] == "All"], grand], ignore_index=True)
    out = pd.concat([body, margin], ignore_index=True)
    out["site_name"] = out["site_id"].map(lambda x: "All sites" if x == "All" else names.get(x, ""))
    return out[["site_id", "site_name", "stratum", "group", "n"]].reset_index(drop=True)


def _consort(view, **_):
    from analysis.recruitment import summarize_consort
    group_col, groups = groups_of(view)
    return summarize_consort(view.table("screening"), get_adsl(view, None), get_tte(view, population=None),
                             group_col=group_col, groups=groups)


def _funnel(view, **_):
    from analysis.recruitment import summarize_funnel
    return summarize_funnel(view.table("screening"), by_site=True)



def _funnel_by_site(view, **_):
    """The funnel's stage totals per site (no reasons): one row per site and stage."""
    funnel = _funnel(view)
    rows = (funnel["site_id"] != "All") & (funnel["reason"].fillna("") == "")
    return funnel.loc[rows, ["site_id", "stage", "n"]].reset_index(drop=True)


def _recruitment(view, **_):
    from analysis.recruitment import summarize_recruitment_by_month
    return summarize_recruitment_by_month(screening_or_none(view), get_adsl(view, None))


def _changes(view, since=None, **_):
    from analysis.recruitment import summarize_changes
    if since is None:
        raise TableUnavailable("give the previous report's data cut-off (--since / previous_cut)")
    adae = view.table("adae") if "adae" in view.datasets else None
    return summarize_changes(get_adsl(view, None), since, view.cut_date, screening=screening_or_none(view),
                             adae=adae, sites=view.study.sites)


def _plan(view, **_):
    """Against the trial's plan, or (a view filtered to some sites) the plan scaled by their share
    of the site targets (``site_selection``)."""
    from analysis.recruitment import summarize_cumulative_vs_plan
    sel = site_selection(view)
    plan = scaled_plan(view.study.recruitment_plan, sel.share) if sel.restricted else view.study.recruitment_plan
    return summarize_cumulative_vs_plan(get_adsl(view, None), plan, cut_date=view.cut_date)



def _no_plan(view) -> str | None:
    return None if view.study.recruitment_plan else "the study config has no recruitment plan"


OUTPUTS = [
    Output("enrolment", "Enrolment by site against target", _enrolment,
           ("site_id", "site_name", "country", "activated", "screened", "randomised", "target", "first", "last"),
           population="screened",
           method="Screened (screening log) and randomised (ADSL) per site to the cut-off; targets from the study "
                  "file."),
    Output("recruitment", "Screened and randomised by site and month", _recruitment,
           ("month", "site_id", "screened", "randomised", "cumulative_randomised"), population="screened",
           display=DisplaySpec(labels={"cumulative_randomised": "Randomised, cumulative"})),
    Output("plan", "Cumulative randomised against the recruitment plan", _plan,
           ("month", "actual_cumulative", "planned_cumulative"), population="all", applies=_no_plan,
           display=DisplaySpec(labels={"actual_cumulative": "Randomised, cumulative",
                                       "planned_cumulative": "Planned, cumulative"}),
           method="The plan is the study file's cumulative recruitment plan by month."),
    Output("changes", "Changes since the previous report's cut-off (pooled)", _changes,
           ("item", "at_previous", "at_cut", "new"), population="all",
           display=DisplaySpec(labels={"at_previous": "At the previous cut-off", "at_cut": "At this cut-off",
                                       "new": "New since the previous cut-off"})),
    Output("funnel", "Screening and run-in funnel with reasons", _funnel, ("site_id", "stage", "n", "reason"),
           population="screened", needs=SCREENING,
           method="From the screening log: one row per person screened, with the outcome and its reason."),
    Output("funnel-by-site", "Screening and run-in outcomes by site", _funnel_by_site, ("site_id", "stage", "n"),
           population="screened", needs=SCREENING,
           display=DisplaySpec(arms="cell", spread="stage", index=("site_id",), cell="{n}"),
           method="From the screening log: people screened per site by outcome ('—': none)."),
    Output("consort", "CONSORT flow counts", _consort, ("stage", "group", "n", "reason"), population="screened",
           needs=SCREENING + TTE,
           display=DisplaySpec(arms="cell", index=("stage", "reason"), cell="{n}", blank_repeats=("stage",)),
           method="CONSORT 2025 flow: screening and run-in from the screening log; allocation, follow-up status at "
                  "the cut-off and analysis populations from ADSL; '—': not applicable (a stage before "
                  "allocation has no arm)."),
    Output("balance", "Randomised by site and stratum", _balance, ("site_id", "site_name", "stratum", "group", "n"),
           population="all", applies=no_strata,
           display=DisplaySpec(arms="cell", spread="stratum", index=("site_id", "site_name", "group"), cell="{n}",
                               blank_repeats=("site_id", "site_name"), hide_constant=("group",),
                               labels={"site_name": "Site name"}),
           method="Randomised participants per site and randomisation stratum, with each site's total over its "
                  "strata (Total) and each stratum's total over the sites (All sites); '—': a stratum the site "
                  "cannot have (another country's stratum), not a zero. Unblinded: one row per arm within each "
                  "site, and the site's total (Total)."),
]


# --------------------------------------------------------------------------- figures
def fig_cumulative(view, subtitle=None):
    """Actual against the plan; for a view filtered to some sites the plan line and the target are
    scaled by their share of the site targets (and the subtitle says so); for a filter no plan can
    follow (onset) they stay trial-wide and the subtitle says that."""
    from analysis.figures_recruitment import plot_cumulative_recruitment
    from analysis.outputs.projections import recruitment_projection
    sel = site_selection(view)
    try:
        projection = recruitment_projection(view)
    except TableUnavailable:                  # recruitment over (or not started): plan and actual only
        projection = None
    printed, subtitle = subtitle is None, subtitle or ""
    target_label, plan_label = None, "Planned"
    if sel.restricted:
        target_label, plan_label = f"Target {sel.target} ({sel.label})", f"Planned ({sel.label})"
        subtitle += (f"<br>Plan and target scaled to {sel.label}: its sites' share of the site targets "
                     f"({sel.share:.1%} of {sel.planned_n})")
        if sel.not_by_site:
            subtitle += f"; {sel.not_by_site}: counts only"
    elif sel.label:
        target_label, plan_label = f"Target {sel.target} (trial-wide)", "Planned (trial-wide)"
        subtitle += "<br>Plan and target trial-wide: the plan has no split by onset"
    note = None
    if projection is not None:
        from analysis.outputs.projections import format_projection_sentence
        note = format_projection_sentence(projection, lead=False, coverage=False).rstrip(".")
    return plot_cumulative_recruitment(table_of("plan", view), projection=projection, target=sel.target,
                                       subtitle=None if printed and not subtitle else subtitle,
                                       target_label=target_label, plan_label=plan_label, projection_note=note)


def fig_by_site(view, subtitle=None):
    from analysis.figures_recruitment import plot_recruitment_by_site
    names = {s.id: s.name for s in view.study.sites}
    return plot_recruitment_by_site(table_of("recruitment", view), site_names=names,
                                    subtitle=subtitle)


def fig_activation(view, subtitle=None):
    from analysis.figures_recruitment import plot_site_activation
    return plot_site_activation(table_of("enrolment", view), cut_date=view.cut_date,
                                subtitle=subtitle)


def fig_funnel(view, subtitle=None):
    from analysis.figures_recruitment import plot_funnel
    return plot_funnel(table_of("funnel", view), subtitle=subtitle)


def fig_balance(view, subtitle=None):
    from analysis.figures_recruitment import plot_balance
    study = view.study
    return plot_balance(table_of("balance", view), subtitle=subtitle, site_names={s.id: s.name for s in study.sites},
                        site_countries={s.id: s.country for s in study.sites})


def fig_enrolment(view, subtitle=None):
    """Randomised against target by site, % of target, sorted (the Recruitment page opens with it)."""
    from analysis.figures_recruitment import plot_enrolment_vs_target
    return plot_enrolment_vs_target(table_of("enrolment", view), subtitle=subtitle)


def fig_consort(view, subtitle=None):
    """The CONSORT flow diagram, every box its row of the ``consort`` table."""
    from analysis.figures_consort import plot_consort
    return plot_consort(table_of("consort", view), title=None if subtitle is None else "CONSORT flow diagram",
                        subtitle=subtitle)


FIGURES = [
    FigureOutput("consort", "CONSORT", "CONSORT 2025 flow diagram", fig_consort, table="consort"),
    FigureOutput("enrolment", "Enrolment vs target", "Randomised against target by site (% of target)",
                 fig_enrolment, filter_of="enrolment", table="enrolment"),
    FigureOutput("cumulative", "Cumulative vs plan", "Cumulative randomised against the planned recruitment, with the "
                 "projection to the target when recruitment is open", fig_cumulative, filter_of="plan", table="plan"),
    FigureOutput("by-site", "By site and month", "Randomised by site and month", fig_by_site, filter_of="recruitment", table="recruitment"),
    FigureOutput("activation", "Site activation", "Site activation and enrolment period", fig_activation,
                 filter_of="activation", table="enrolment"),
    FigureOutput("funnel", "Screening funnel", "Screening and run-in funnel", fig_funnel, filter_of="funnel", table="funnel"),
    FigureOutput("balance", "Stratum balance", "Randomised by stratum and site", fig_balance, filter_of="balance", table="balance"),
]
