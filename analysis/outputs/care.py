"""Treatment adherence and vital-status currency (issue 14): defined once here, computed by
``analysis.care``. Adherence is pooled on a blinded view and by arm on an unblinded one (cycles
received do not reveal the arm: the placebo is given on the same schedule). Vital-status currency is
by site and never by arm.

Study settings (the study file, with MIROCALS defaults): ``[treatment] cycles`` (19),
``cycle_days`` (28), ``doses_per_cycle`` (5), ``adherence_threshold`` (80, %);
``[data_management] no_contact_days`` (120: longer than the three-monthly visit interval and its
window)."""
from __future__ import annotations

from analysis.display_table import DisplaySpec
from analysis.outputs.base import Output, TableUnavailable, get_adsl, groups_of


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

OUTPUTS = [
    Output("adherence", "Treatment adherence: cycles received against cycles due at the cut-off", _adherence,
           ("group", "n", "cycles_due", "cycles_received", "percent_received", "cycles_complete",
            "cycles_not_received", "doses", "doses_due", "adherence_median", "adherence_q1",
            "adherence_q3", "n_adherent", "percent_adherent", "months_median", "months_q1", "months_q3"),
           population="SAF", needs=("adsl", "adex"), display=_ADHERENCE_DISPLAY, method=_adherence_method),
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
