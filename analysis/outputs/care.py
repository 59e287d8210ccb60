"""Treatment adherence, concomitant care, protocol deviations and vital-status currency (issue
14): defined once here, computed by ``analysis.care``. Adherence, care and deviations are pooled
on a blinded view and by arm on an unblinded one (cycles received do not reveal the arm: the
placebo is given on the same schedule). Deviations by site, the listing of important deviations and
vital-status currency are never by arm.

Study settings (the study file, with MIROCALS defaults): ``[treatment] cycles`` (19),
``cycle_days`` (28), ``doses_per_cycle`` (5), ``adherence_threshold`` (80, %);
``[data_management] no_contact_days`` (120: longer than the three-monthly visit interval and its
window)."""
from __future__ import annotations

from analysis.display_table import DisplaySpec
from analysis.outputs.base import FigureOutput, Output, TableUnavailable, get_adsl, get_tte, groups_of


def treatment_settings(study) -> dict:
    t = study.raw.get("treatment", {}) or {}
    return {"cycles": int(t.get("cycles", 19)), "cycle_days": int(t.get("cycle_days", 28)),
            "doses_per_cycle": int(t.get("doses_per_cycle", 5)),
            "threshold": float(t.get("adherence_threshold", 80))}


def no_contact_days(study) -> int:
    return int((study.raw.get("data_management", {}) or {}).get("no_contact_days", 120))


def _site_names(view) -> dict:
    return {s.id: s.name for s in view.study.sites}


def _adherence(view, **_):
    from analysis.care import summarize_adherence
    group_col, groups = groups_of(view)
    return summarize_adherence(view.table("adex"), get_adsl(view, "SAF"), view.cut_date, group_col=group_col,
                               groups=groups, **treatment_settings(view.study))


def _interruptions(view, **_):
    from analysis.care import summarize_interruptions
    group_col, groups = groups_of(view)
    return summarize_interruptions(view.table("adex"), get_adsl(view, "SAF"), group_col=group_col, groups=groups,
                                   doses_per_cycle=treatment_settings(view.study)["doses_per_cycle"])


def _need_last_alive(view) -> None:
    if "LSTALVDT" not in view.columns("adsl"):
        raise TableUnavailable("ADSL has no date last known alive (LSTALVDT), so the currency of vital status "
                               "cannot be measured")


def _vital_status(view, **_):
    from analysis.care import vital_status_by_site
    _need_last_alive(view)
    return vital_status_by_site(get_adsl(view, None), view.cut_date, no_contact_days(view.study),
                                site_col=view.study.col("site"), site_names=_site_names(view))


def _no_contact(view, **_):
    from analysis.care import no_recent_contact
    _need_last_alive(view)
    return no_recent_contact(get_adsl(view, None), view.cut_date, no_contact_days(view.study),
                             site_col=view.study.col("site"))


def _adherence_method(view) -> str:
    s = treatment_settings(view.study)
    return (f"Cycles scheduled every {s['cycle_days']} days from the first dose, at most {s['cycles']}; a cycle is "
            f"due when its scheduled start is on or before the cut-off, the end of study and the day before death; "
            f"received: at least one of its {s['doses_per_cycle']} daily doses given; complete: all of them. "
            f"Adherence: cycles received / cycles due per participant (participants with a cycle due); adherent: "
            f"{s['threshold']:g} % or more. Time on treatment: first to last dose. Safety population.")


def _vital_method(view) -> str:
    return ("In follow-up: not known to have died and no end of study on or before the cut-off. Days since last "
            "known alive: cut-off minus the date last known alive (LSTALVDT), participants in follow-up. No contact: "
            f"more than {no_contact_days(view.study)} days, or no date recorded. Ended: completed or withdrew "
            "without a recorded death.")


_ADHERENCE_DISPLAY = DisplaySpec(
    labels={"n": "Participants"}, arms="rows",
    percents=("percent_received", "percent_adherent", "adherence_median", "adherence_q1", "adherence_q3"),
    digits={"percent_received": 1, "percent_adherent": 1, "adherence_median": 0, "adherence_q1": 0,
            "adherence_q3": 0, "months_median": 1, "months_q1": 1, "months_q3": 1},
    compose=(("cycles_received", "{cycles_received} of {cycles_due} ({percent_received})",
              "Cycles received, n of due (%)"),
             ("cycles_complete", "{cycles_complete}", "Cycles with every dose, n"),
             ("cycles_not_received", "{cycles_not_received}", "Cycles due but not received, n"),
             ("doses", "{doses} of {doses_due}", "Doses received, n of due"),
             ("adherence_median", "{adherence_median} ({adherence_q1} to {adherence_q3})",
              "Adherence per participant, median (IQR)"),
             ("n_adherent", "{n_adherent} ({percent_adherent})", "Adherent participants, n (%)"),
             ("months_median", "{months_median} ({months_q1} to {months_q3})",
              "Time on treatment, months, median (IQR)")))

_VITAL_DISPLAY = DisplaySpec(
    labels={"randomised": "Randomised", "died": "Died", "ended": "Ended follow-up alive",
            "in_follow_up": "In follow-up", "missing_date": "No date last known alive",
            "median_days": "Days since last known alive, median", "max_days": "Days since last known alive, maximum",
            "no_contact": "No contact beyond the limit, n"},
    digits={"median_days": 0, "max_days": 0})

def _care(view):
    """(table, curves) once per view: the table and the figure start from them."""
    from analysis.care import summarize_care
    memo = view.__dict__.setdefault("_derived", {})
    if "care" not in memo:
        group_col, groups = groups_of(view)
        memo["care"] = summarize_care(view.table("adcm"), get_tte(view), group_col=group_col, groups=groups,
                                      times=_care_times(view))
    table, curves = memo["care"]
    return table.copy(), curves.copy()


def _care_times(view) -> tuple[int, int]:
    landmark = int(view.study.landmark_day)
    return (landmark // 2, landmark)


def _care_table(view, **_):
    return _care(view)[0]


def _medications(view, **_):
    from analysis.care import summarize_medications
    group_col, groups = groups_of(view)
    return summarize_medications(view.table("adcm"), get_adsl(view), group_col=group_col, groups=groups)


def _deviations(view, **_):
    from analysis.care import summarize_deviations
    group_col, groups = groups_of(view)
    return summarize_deviations(view.table("addv"), get_adsl(view, None), group_col=group_col, groups=groups)


def _deviations_by_site(view, **_):
    from analysis.care import deviations_by_site
    return deviations_by_site(view.table("addv"), get_adsl(view, None), site_col=view.study.col("site"),
                              site_names=_site_names(view))


def _important_deviations(view, **_):
    from analysis.care import list_important_deviations
    return list_important_deviations(view.table("addv"), get_adsl(view, None), site_col=view.study.col("site"))


def _care_method(view) -> str:
    mid, landmark = _care_times(view)
    return ("Time from randomisation to the first record of each procedure in the concomitant-care dataset (non-"
            "invasive ventilation also starts with permanent assisted ventilation); participants in whom it began "
            "before randomisation are not at risk. Cumulative incidence by the Aalen-Johansen estimator with death "
            f"as a competing event, at days {mid} and {landmark}; censored at the end of follow-up for survival. "
            "% of participants at risk. ITT population.")


_CARE_DISPLAY = DisplaySpec(
    arms="rows", index=("care_label",), drop=("care",),
    labels={"care_label": "Procedure", "n": "Participants", "prevalent": "Begun before randomisation, n",
            "at_risk": "At risk, n", "deaths_first": "Died first, n"},
    percents=("percent_events", "cif_320", "cif_640"), digits={"percent_events": 1, "cif_320": 1, "cif_640": 1},
    compose=(("events", "{events} ({percent_events})", "Began after randomisation, n (% at risk)"),
             ("cif_320", "{cif_320}", "Cumulative incidence by day 320"),
             ("cif_640", "{cif_640}", "Cumulative incidence by day 640")))


def fig_care(view, subtitle=None):
    """Cumulative incidence of each ALS care milestone (pooled, or by arm), death competing."""
    from analysis.figures_care import plot_care_incidence
    from analysis.outputs import check_available
    check_available("concomitant-care", view)          # says which dataset was not delivered
    table, curves = _care(view)
    return plot_care_incidence(curves, table, subtitle=subtitle and subtitle + " · ITT population")


OUTPUTS = [
    Output("adherence", "Treatment adherence: cycles received against cycles due at the cut-off", _adherence,
           ("group", "n", "cycles_due", "cycles_received", "percent_received", "cycles_complete",
            "cycles_not_received", "doses", "doses_due", "adherence_median", "adherence_q1",
            "adherence_q3", "n_adherent", "percent_adherent", "months_median", "months_q1", "months_q3"),
           population="SAF", needs=("adsl", "adex"), display=_ADHERENCE_DISPLAY, method=_adherence_method),
    Output("interruptions", "Treatment interruptions: cycles with doses not given, by reason", _interruptions,
           ("reason", "group", "cycles", "n_subjects", "percent"), population="SAF", needs=("adsl", "adex"),
           display=DisplaySpec(arms="cell", index=("reason",), cell="{cycles} [{n_subjects} ({percent})]",
                               cell_label="cycles [participants n (% of the arm)]", percents=("percent",),
                               digits={"percent": 1}, sentence_case=("reason",), labels={"reason": "Reason"}),
           method=lambda view: (f"A cycle counts when fewer than its {treatment_settings(view.study)['doses_per_cycle']} "
                                "daily doses were given; the reason recorded in the exposure dataset (EXADJ); death "
                                "or withdrawal: follow-up ended during the cycle. Safety population.")),
    Output("concomitant-care", "ALS care milestones: non-invasive ventilation, gastrostomy, permanent assisted "
           "ventilation and tracheostomy after randomisation", _care_table,
           ("care", "care_label", "group", "n", "prevalent", "at_risk", "events", "percent_events", "deaths_first",
            "cif_320", "cif_640"), needs=("adsl", "adtte", "adcm"), display=_CARE_DISPLAY, method=_care_method),
    Output("medications", "Concomitant medications by ATC class (participants taking at least one)", _medications,
           ("atc_code", "atc_class", "group", "n_subjects", "percent"), needs=("adsl", "adcm"),
           display=DisplaySpec(arms="cell", index=("atc_code", "atc_class"), cell="{n_subjects} ({percent})",
                               cell_label="participants n (% of the arm)", percents=("percent",),
                               digits={"percent": 1}, labels={"atc_code": "ATC code", "atc_class": "ATC class"},
                               sentence_case=("atc_class",)),
           method="Medications other than study drug at any time during the study, coded to ATC level 2, riluzole "
                  "(N07) included; a participant counts once per class. Riluzole dose reduced: a once-daily dose "
                  "after randomisation. ITT population."),
    Output("deviations", "Protocol deviations by category and importance", _deviations,
           ("category", "importance", "group", "n_deviations", "n_subjects", "percent"), population="all",
           needs=("adsl", "addv"),
           display=DisplaySpec(arms="cell", index=("category", "importance"),
                               cell="{n_deviations} [{n_subjects} ({percent})]", sentence_case=("category",),
                               cell_label="deviations [participants n (% of the arm)]", percents=("percent",),
                               digits={"percent": 1}, blank_repeats=("category",),
                               labels={"category": "Category", "importance": "Importance"}),
           method="Important: a deviation that may affect the participant's rights, safety or well-being or the "
                  "reliability of the primary results (ICH E3), as graded in the deviation dataset (DVIMPFL)."),
    Output("deviations-by-site", "Protocol deviations by site", _deviations_by_site,
           ("site", "site_name", "participants", "deviations", "important", "subjects_with_important",
            "per_participant"), population="all", needs=("adsl", "addv"),
           display=DisplaySpec(labels={"participants": "Participants", "deviations": "Deviations",
                                       "important": "Important deviations",
                                       "subjects_with_important": "Participants with an important deviation",
                                       "per_participant": "Deviations per participant"},
                               digits={"per_participant": 2}),
           method="Site: the participant's site in ADSL. Important as graded in the deviation dataset (DVIMPFL)."),
    Output("important-deviations", "Listing of important protocol deviations", _important_deviations,
           ("USUBJID", "site", "date", "study_day", "category", "term"), population="all", needs=("adsl", "addv"),
           listing=True, display=DisplaySpec(labels={"date": "Date", "study_day": "Study day", "category": "Category",
                                                     "term": "Deviation"}, sentence_case=("category",))),
    Output("vital-status", "Currency of vital status by site: days since each participant was last known alive",
           _vital_status,
           ("site", "site_name", "randomised", "died", "ended", "in_follow_up", "missing_date", "median_days",
            "max_days", "no_contact"), population="all", display=_VITAL_DISPLAY, method=_vital_method),
    Output("no-contact", "Participants in follow-up with no recent contact", _no_contact,
           ("USUBJID", "site", "randomised", "last_known_alive", "days_since"), population="all", listing=True,
           display=DisplaySpec(labels={"randomised": "Randomised", "last_known_alive": "Last known alive",
                                       "days_since": "Days since last known alive"}),
           method=_vital_method),
]

FIGURES = [
    FigureOutput("care-incidence", "Care milestones", "Cumulative incidence of non-invasive ventilation, "
                 "gastrostomy, permanent assisted ventilation and tracheostomy, death a competing event",
                 fig_care, table="concomitant-care"),
]
