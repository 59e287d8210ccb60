"""Conduct outputs for the data manager (pooled): the status of every scheduled visit at the cut,
completeness by site, overdue visits, the missed and overdue visits to chase (``missed-visits``)
and data-entry lag. Each is defined once here."""
from __future__ import annotations

import pandas as pd

from analysis.display_table import DisplaySpec
from analysis.outputs.base import FigureOutput, Output, table_of, get_adsl, view_memo
from data_access.view_base import quote_name

def _visit_status(view, **_):
    """Derived once per view (the completeness, overdue and figure builders all start from it);
    callers get a copy."""
    return view_memo(view, "visit-status", lambda: _derive_visit_status(view))


def _derive_visit_status(view):
    from analysis.completeness import derive_visit_status
    study = view.study
    adsl = get_adsl(view, None)
    adsl = adsl[[c for c in ("USUBJID", "SITEID", "RANDDT", "DTHDT", "EOSSTT", "EOSDT") if c in adsl.columns]]
    # one row per subject and visit (several rows per visit count once, with the first date):
    # aggregated in DuckDB, so a 20,000-subject ADQS sends ~0.4 million rows, not 3.4 million
    name = quote_name(study.functional_dataset)
    adqs = view.sql(f'SELECT "USUBJID", "AVISITN", MIN("ADT") AS "ADT" FROM {name} '
                    f'GROUP BY "USUBJID", "AVISITN" ORDER BY "USUBJID", "AVISITN"')
    return derive_visit_status(adsl, adqs, study.visit_days, study.visit_names, study.visit_window,
                               cut_date=view.cut_date)


def _completeness(view, **_):
    from analysis.completeness import summarize_completeness_by_site
    return summarize_completeness_by_site(_visit_status(view), get_adsl(view, None)[["USUBJID", "SITEID"]])


def _overdue_visits(view, **_):
    from analysis.completeness import list_overdue_visits
    return list_overdue_visits(_visit_status(view))


def _missed_visits(view, **_):
    from analysis.completeness import list_missed_visits
    return list_missed_visits(_visit_status(view), site_names={s.id: s.name for s in view.study.sites})


def _entry_lag(view, **_):
    """Per dataset that has a data-entry date (ENTDT): empty (with the columns) when none has."""
    from analysis.completeness import summarize_entry_lag
    adsl = get_adsl(view, None)[["USUBJID", "SITEID"]]
    parts = []
    for name, date_col in ((view.study.functional_dataset, "ADT"), ("adae", "ASTDT")):
        if name not in view.datasets:
            continue
        cols = view.columns(name)
        if "ENTDT" not in cols or date_col not in cols:
            continue
        keep = ["USUBJID", date_col, "ENTDT"] + (["AVISITN"] if "AVISITN" in cols else [])
        parts.append(summarize_entry_lag(view.table(name, columns=keep), adsl, date_col=date_col)
                     .assign(dataset=name))
    cols = ["dataset", "site", "records", "median_lag", "p90_lag", "max_lag", "late", "percent_late"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)



_VISITS = DisplaySpec(labels={"visit_day": "Target day", "target_date": "Target date",
                              "window_end": "Window closes", "assessment_date": "Assessment date",
                              "days_since_target": "Days since target"}, sentence_case=("status",))
_VISITS_METHOD = ("Scheduled visits from the study file's visit days and window; a visit is missed when its window "
                  "closed before the cut-off without an assessment, overdue when the target day passed and the "
                  "window is still open.")
_ALL_FUNCTIONAL = ("adsl", "functional")

OUTPUTS = [
    Output("visit-status", "Status of every scheduled visit at the cut-off", _visit_status,
           ("USUBJID", "site", "AVISITN", "AVISIT", "visit_day", "target_date", "window_end", "status",
            "assessment_date", "days_since_target"), population="all", needs=_ALL_FUNCTIONAL, display=_VISITS,
           method=_VISITS_METHOD, listing=True),
    Output("completeness", "Expected, done, missed and overdue visits by site", _completeness,
           ("site", "subjects", "expected", "done", "missed", "overdue", "not_due", "not_expected", "percent_done"),
           population="all", needs=_ALL_FUNCTIONAL,
           display=DisplaySpec(labels={"subjects": "Subjects", "expected": "Expected", "done": "Done",
                                       "missed": "Missed", "overdue": "Overdue", "not_due": "Not due",
                                       "not_expected": "Not expected", "percent_done": "Done, % of expected"},
                               percents=("percent_done",), digits={"percent_done": 1}),
           method=_VISITS_METHOD + " Expected: visits whose target day is before the cut-off."),
    Output("overdue-visits", "Visits overdue at the cut-off (window still open)", _overdue_visits,
           ("site", "USUBJID", "AVISIT", "target_date", "window_end", "days_since_target"), population="all",
           needs=_ALL_FUNCTIONAL, display=_VISITS, method=_VISITS_METHOD, listing=True),
    Output("missed-visits", "Missed and overdue visits to chase, one row per visit", _missed_visits,
           ("site", "site_name", "USUBJID", "AVISITN", "AVISIT", "target_date", "window_end", "status",
            "days_overdue"), population="all", needs=_ALL_FUNCTIONAL,
           display=DisplaySpec(labels={"site_name": "Site name", "target_date": "Target date",
                                       "window_end": "Window closes", "status": "Status",
                                       "days_overdue": "Days since target date"},
                               drop=("AVISITN",), sentence_case=("status",)),
           method=_VISITS_METHOD + " Days since target date: from the visit's target date to the cut-off.",
           listing=True),
    Output("entry-lag", "Data-entry lag by site (days from visit or event to entry)", _entry_lag,
           ("dataset", "site", "records", "median_lag", "p90_lag", "max_lag", "late", "percent_late"),
           population="all",
           display=DisplaySpec(labels={"records": "Records", "median_lag": "Median lag, days",
                                       "p90_lag": "90th percentile lag, days", "max_lag": "Maximum lag, days",
                                       "late": "Entered late, n", "percent_late": "Entered late, %"},
                               percents=("percent_late",),
                               digits={"percent_late": 1, "median_lag": 1, "p90_lag": 1, "max_lag": 1},
                               blank_repeats=("dataset",)),
           method="Days from the visit or event date to its data-entry date (ENTDT)."),
]


# --------------------------------------------------------------------------- figures
def fig_completeness(view, subtitle=None):
    from analysis.figures_quality import plot_completeness
    names = {s.id: s.name for s in view.study.sites}
    return plot_completeness(table_of("completeness", view), site_names=names,
                             subtitle=subtitle and f"{subtitle} · window {view.study.visit_window} days after the "
                             "target day")


def fig_entry_lag(view, subtitle=None):
    from analysis.completeness import LATE_ENTRY_DAYS
    from analysis.figures_quality import plot_entry_lag
    return plot_entry_lag(table_of("entry-lag", view), dataset=view.study.functional_dataset,
                          late_days=LATE_ENTRY_DAYS, title="ALSFRS-R forms: data-entry lag by site",
                          subtitle=subtitle and f"{subtitle} · days from visit to data entry")


FIGURES = [
    FigureOutput("completeness", "Completeness by site", "Scheduled visits done, missed and overdue by site",
                 fig_completeness, table="completeness"),
    FigureOutput("entry-lag", "Data-entry lag by site", "ALSFRS-R forms: data-entry lag by site", fig_entry_lag, table="entry-lag"),
]
