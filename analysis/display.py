"""Display tables: what people read, from the machine tables ``analysis.tables.build_table`` returns.

``format_display(name, dataset, view)`` turns a named table (or any table a page shows) into its
display form: human headers with units, estimates with their CI as ``0.49 (0.28 to 0.85)``,
p-values as ``0.012`` / ``<0.001``, proportions and percentages as ``74.1 %``, a median not
reached as ``not reached`` (``not reached (457 to NE)`` when its lower limit is), ``—`` for
anything missing or not applicable, dates as YYYY-MM-DD, methods in words and study labels in
place of ADaM codes. The machine table is left untouched (the CSV for QC double programming).

Pure: no Streamlit, no I/O. The dashboard, the reports and ``mirocals table NAME --display`` all
call this one function. Per-table specifics live in one dict, :data:`DISPLAY_SPECS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["METHOD_LABELS", "STRATUM_WORDS", "format_strata", "format_method", "COLUMN_LABELS", "DISPLAY_SPECS", "DisplaySpec", "MISSING", "format_display",
           "format_p", "format_p_phrase", "format_ci", "format_number", "format_median", "format_percent",
           "format_header",
           "is_snake_case", "list_display_problems"]

MISSING = "—"

METHOD_LABELS = {
    "logrank": "Log-rank test (unadjusted, primary)",
    "logrank_stratified": "Log-rank test stratified by the randomisation strata",
    "cox": "Cox HR (unadjusted)",
    "cox_stratified": "Cox HR stratified by the randomisation strata",
    "cox_adjusted": "Cox HR adjusted for prognostic covariates",
    "landmark_difference": "Difference in survival at the landmark",
    "rmst_difference": "Difference in restricted mean survival (days)",
    "alsfrs_slope_difference": "ALSFRS-R slope difference (points/month)",
    "joint_rank": "Joint rank test (survival, then ALSFRS-R change): win probability",
}

# Randomisation strata factors in words (a factor not listed is shown by its own name, lower case).
STRATUM_WORDS = {"COUNTRY": "country", "ONSET": "site of onset", "REGION": "region", "SEX": "sex"}


def format_strata(study=None) -> str:
    """The study's randomisation strata in words ("country and site of onset" for MIROCALS;
    "the randomisation strata" when no study is given)."""
    factors = list(getattr(study, "strata_factors", ()) or ())
    if not factors:
        return "the randomisation strata"
    words = [STRATUM_WORDS.get(str(f).upper(), str(f).lower()) for f in factors]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def format_method(code, study=None) -> str:
    """A method code in words; the stratified methods name the study's strata
    (``cox_stratified`` -> "Cox HR stratified by country and site of onset")."""
    text = str(code)
    if study is not None and text in ("cox_stratified", "logrank_stratified"):
        return METHOD_LABELS[text].replace("the randomisation strata", format_strata(study))
    return METHOD_LABELS.get(text, text)


# Headers shared by every table (a table's own labels in DISPLAY_SPECS come first).
COLUMN_LABELS = {
    "group": "Arm", "comparison": "Comparison", "site_id": "Site", "site": "Site", "site_name": "Site name",
    "country": "Country", "stratum": "Stratum", "stage": "Stage", "reason": "Reason", "n": "n",
    "month": "Month", "visit": "Visit", "day": "Study day (mean)", "time": "Day", "subject": "Subject",
    "USUBJID": "Subject", "SITEID": "Site", "AVISIT": "Visit", "AVISITN": "Visit number", "PARAMCD": "Parameter",
    "screened": "Screened", "randomised": "Randomised", "target": "Target", "activated": "Activated",
    "first": "First randomised", "last": "Last randomised", "item": "Item", "domain": "Domain",
    "mean": "Mean", "sd": "SD", "se": "SE", "median": "Median", "q1": "Q1", "q3": "Q3", "min": "Min", "max": "Max",
    "soc": "System organ class", "pt": "Preferred term", "term": "Adverse event term",
    "severity": "Severity", "n_subjects": "Subjects, n", "percent": "Subjects, %", "n_events": "Events, n",
    "study_day": "Study day", "start": "Start date", "end": "End date", "outcome": "Outcome",
    "relationship": "Relationship to study drug", "treatment_emergent": "Treatment-emergent",
    "status": "Status", "rule": "Rule", "message": "Message", "dataset": "Dataset", "variable": "Variable",
    "value": "Value", "note": "Note", "label": "Label", "estimate": "Estimate", "p_value": "p",
}

# ADaM datasets in words (the entry-lag table's ``dataset`` column).
DATASET_LABELS = {"adqs": "ALSFRS-R forms", "adae": "Adverse events", "adsl": "Subject level",
                  "adtte": "Time to event", "adlb": "Laboratory", "adex": "Exposure", "screening": "Screening log"}


@dataclass(frozen=True)
class DisplaySpec:
    """How one named table is shown.

    ``labels``: headers (``{landmark}`` is the study's landmark day); ``ci``: (estimate, lower,
    upper, header, digits, scale) triples merged into one "est (lo to hi)" column (``median`` as
    the estimate of a survival median: "not reached"); ``pairs``: (value, se, header, digits)
    merged as "value (se)"; ``proportions``: 0-1 columns shown as %; ``percents``: 0-100 columns
    shown as %; ``p_values``; ``digits``: decimals per float column (default 2; whole-number
    columns as integers); ``drop``: columns not shown; ``codes``: columns whose values are
    variable codes (shown with their labels); ``sentence_case``: upper-case codes shown as words
    (SEVERE -> Severe, not due -> Not due); ``yes_no``: Y/N and True/False shown as yes/no;
    ``first``: columns moved to the front."""
    labels: dict = field(default_factory=dict)
    ci: tuple = ()
    pairs: tuple = ()
    proportions: tuple = ()
    percents: tuple = ()
    p_values: tuple = ()
    digits: dict = field(default_factory=dict)
    drop: tuple = ()
    codes: tuple = ()
    sentence_case: tuple = ()
    yes_no: tuple = ()
    first: tuple = ()


_SURVIVAL = DisplaySpec(
    labels={"n": "N", "events": "Deaths"},
    ci=(("median", "median_ci_lower", "median_ci_upper", "Median survival, days (95% CI)", 0, 1.0),
        ("surv_landmark", "surv_landmark_ci_lower", "surv_landmark_ci_upper",
         "Survival at day {landmark}, % (95% CI)", 1, 100.0)),
    pairs=(("rmst", "rmst_se", "RMST to day {landmark}, days (SE)", 0),),
    drop=("landmark_day",))
_BY_VISIT = DisplaySpec(labels={"n": "n", "mean_change": "Mean change from baseline", "se_change": "SE of change"})
_VISITS = DisplaySpec(labels={"visit_day": "Target day", "target_date": "Target date",
                              "window_end": "Window closes", "assessment_date": "Assessment date",
                              "days_since_target": "Days since target"}, sentence_case=("status",))
_AE = DisplaySpec(percents=("percent",), digits={"percent": 1}, sentence_case=("severity",),
                  labels={"severity": "Worst severity"})

DISPLAY_SPECS: dict[str, DisplaySpec] = {
    "baseline": DisplaySpec(),
    "at-risk": DisplaySpec(labels={"n_at_risk": "At risk", "n_events": "Deaths (cumulative)",
                                   "n_censored": "Censored (cumulative)"}),
    "km": DisplaySpec(labels={"n_at_risk": "At risk", "n_events": "Deaths (cumulative)",
                              "n_censored": "Censored (cumulative)"},
                      ci=(("survival", "ci_lower", "ci_upper", "Survival, % (95% CI, log-log)", 1, 100.0),)),
    "survival": _SURVIVAL,
    "survival-by-stratum": _SURVIVAL,
    "treatment-effect": DisplaySpec(
        labels={"method": "Analysis", "statistic": "Statistic", "p_value": "p"},
        ci=(("estimate", "ci_lower", "ci_upper", "Estimate (95% CI)", 2, 1.0),),
        p_values=("p_value",), digits={"statistic": 2}),
    "subgroups": DisplaySpec(
        labels={"factor": "Subgroup", "level": "Level", "n": "N", "events_exp": "Deaths, experimental arm",
                "events_ref": "Deaths, reference arm", "p_interaction": "Interaction p"},
        ci=(("hr", "ci_lower", "ci_upper", "Hazard ratio (95% CI)", 2, 1.0),),
        p_values=("p_interaction",), codes=("factor",)),
    "sequential": DisplaySpec(
        labels={"label": "Look", "information_fraction": "Information fraction",
                "cumulative_alpha": "Cumulative alpha spent", "alpha_spent": "Alpha spent at this look",
                "boundary_z": "Boundary z", "nominal_p": "Nominal p (one-sided)", "events": "Deaths",
                "observed_z": "Observed z", "crossed": "Boundary crossed", "date": "Date"},
        digits={"information_fraction": 2, "cumulative_alpha": 4, "alpha_spent": 4, "boundary_z": 3,
                "nominal_p": 4, "observed_z": 3},
        drop=("look",), yes_no=("crossed",), first=("label",)),
    "enrolment": DisplaySpec(),
    "recruitment": DisplaySpec(labels={"cumulative_randomised": "Randomised, cumulative"}),
    "plan": DisplaySpec(labels={"actual_cumulative": "Randomised, cumulative",
                                "planned_cumulative": "Planned, cumulative"}),
    "changes": DisplaySpec(labels={"at_previous": "At the previous cut-off", "at_cut": "At this cut-off",
                                   "new": "New since the previous cut-off"}),
    "projection": DisplaySpec(
        labels={"cut_date": "Data cut-off", "projected_date": "Projected date (median)",
                "lower80": "80% prediction interval, from", "upper80": "80% prediction interval, to",
                "lower95": "95% prediction interval, from", "upper95": "95% prediction interval, to",
                "prob_reached": "Probability of reaching the target by the planned end"},
        proportions=("prob_reached",)),
    "funnel": DisplaySpec(),
    "consort": DisplaySpec(),
    "balance": DisplaySpec(),
    "alsfrs": _BY_VISIT,
    "ae": _AE,
    "ae-risk": DisplaySpec(
        labels={"n_exp": "Experimental arm, n", "N_exp": "Experimental arm, N", "n_ref": "Reference arm, n",
                "N_ref": "Reference arm, N", "risk_exp": "Experimental arm, %", "risk_ref": "Reference arm, %"},
        ci=(("difference", "ci_lower", "ci_upper", "Difference, % points (95% CI, Newcombe)", 1, 1.0),),
        percents=("risk_exp", "risk_ref"), digits={"risk_exp": 1, "risk_ref": 1}),
    "ae-severity": _AE,
    "sae": DisplaySpec(sentence_case=("severity", "relationship", "outcome"), yes_no=("treatment_emergent",)),
    "deaths": DisplaySpec(labels={"randomised": "Randomised", "death_date": "Date of death",
                                  "fatal_ae": "Fatal adverse event"}),
    "exposure": DisplaySpec(labels={"n": "N", "mean": "Cycles received, mean", "sd": "SD",
                                    "median": "Median", "min": "Min", "max": "Max"}),
    "labs": DisplaySpec(digits={c: 3 for c in ("mean", "sd", "median", "q1", "q3")}),
    "tregs": DisplaySpec(digits={c: 1 for c in ("mean", "sd", "median", "q1", "q3")}),
    "visit-status": _VISITS,
    "overdue-visits": _VISITS,
    "completeness": DisplaySpec(labels={"subjects": "Subjects", "expected": "Expected", "done": "Done",
                                        "missed": "Missed", "overdue": "Overdue", "not_due": "Not due",
                                        "not_expected": "Not expected", "percent_done": "Done, % of expected"},
                                percents=("percent_done",), digits={"percent_done": 1}),
    "entry-lag": DisplaySpec(labels={"records": "Records", "median_lag": "Median lag, days",
                                     "p90_lag": "90th percentile lag, days", "max_lag": "Maximum lag, days",
                                     "late": "Entered late, n", "percent_late": "Entered late, %"},
                             percents=("percent_late",),
                             digits={"percent_late": 1, "median_lag": 1, "p90_lag": 1, "max_lag": 1}),
    # tables a page shows beyond the named registry
    "alsfrs-tbl_alsfrs_domains": _BY_VISIT,
    "alsfrs-tbl_alsfrs_items": _BY_VISIT,
    "alsfrs-tbl_kings": DisplaySpec(labels={"percent": "Subjects, %"}, percents=("percent",)),
    "alsfrs-tbl_mitos": DisplaySpec(labels={"percent": "Subjects, %"}, percents=("percent",)),
    "alsfrs-tbl_slopes": DisplaySpec(ci=(("slope", "ci_lower", "ci_upper", "Slope, points/month (95% CI)", 2, 1.0),),
                                     labels={"se": "SE"}, digits={"se": 3}),
}
# decimals of columns that mean the same in every table (a table's own ``digits`` come first)
DEFAULT_DIGITS = {"day": 0}

_SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")


# --------------------------------------------------------------------------- values
def _missing(value) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_number(value, digits: int = 2) -> str:
    """A number with ``digits`` decimals (an integer as itself); ``—`` when missing."""
    if _missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def format_p(p, missing: str = MISSING) -> str:
    """p-value: 3 decimals, ``<0.001`` below; ``missing`` when there is none."""
    if _missing(p):
        return missing
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_p_phrase(p, name: str = "p", missing: str = MISSING) -> str:
    """``name = 0.012`` or ``name <0.001`` (the p string of :func:`format_p`, as in the tables),
    for a note or a label: never ``p=0.000``."""
    text = format_p(p, missing)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def format_ci(est, lo, hi, digits: int = 2, scale: float = 1.0, missing: str = MISSING) -> str:
    """``est (lo to hi)``; ``est`` alone when the interval is missing, ``NE`` for a missing limit;
    ``missing`` when the estimate is missing and so are its limits."""
    if _missing(est):
        return "NE" if not _missing(lo) else missing
    s = f"{est * scale:.{digits}f}"
    if _missing(lo) and _missing(hi):
        return s
    lo_s = "NE" if _missing(lo) else f"{lo * scale:.{digits}f}"
    hi_s = "NE" if _missing(hi) else f"{hi * scale:.{digits}f}"
    return f"{s} ({lo_s} to {hi_s})"


def format_median(est, lo, hi, digits: int = 0) -> str:
    """Median survival (95% CI): ``not reached`` when the curve stays above one half, with the
    lower limit when that one is reached (``not reached (457 to NE)``)."""
    if _missing(est):
        return "not reached" + ("" if _missing(lo) else f" ({lo:.{digits}f} to NE)")
    return format_ci(est, lo, hi, digits)


def format_percent(value, digits: int = 1, proportion: bool = False) -> str:
    """``74.1 %`` from 74.09 (or from 0.7409 when ``proportion``); ``—`` when missing."""
    if _missing(value):
        return MISSING
    return f"{float(value) * (100 if proportion else 1):.{digits}f} %"


def _format_date(value) -> str:
    return MISSING if _missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _format_text(value, yes_no: bool = False, sentence: bool = False) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)) or (yes_no and str(value).upper() in ("Y", "N", "TRUE", "FALSE")):
        return "yes" if str(value).upper() in ("Y", "TRUE") else "no"
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return _format_date(value)
    if isinstance(value, (float, np.floating)):
        return format_number(value)
    text = str(value)
    if text in METHOD_LABELS:
        return METHOD_LABELS[text]
    if sentence and (text.isupper() or text.islower()):
        return text.capitalize()
    return text


# --------------------------------------------------------------------------- headers
def is_snake_case(text) -> bool:
    """``site_id``, ``median_ci_lower``: a machine name, not a header for people."""
    return bool(_SNAKE.match(str(text)))


def format_header(column, labels: dict | None = None, landmark=None) -> str:
    """The header of a column: the table's own label, the shared label, else the name in words
    (``median_lag`` -> ``Median lag``) so no machine name reaches a reader."""
    text = (labels or {}).get(column) or COLUMN_LABELS.get(column)
    if text is None:
        name = str(column)
        text = (name.replace("_", " ").strip().capitalize() if "_" in name or name.islower() and len(name) > 1
                else name)
    return text.replace("{landmark}", str(landmark if landmark is not None else "landmark"))


# --------------------------------------------------------------------------- tables
def _study_of(view_or_study):
    return getattr(view_or_study, "study", view_or_study)


def _variable_labels(view_or_study) -> dict:
    from analysis.baseline import variable_labels
    delivered = None
    labels = getattr(view_or_study, "labels", None)
    if callable(labels):
        try:
            delivered = labels("adsl")
        except Exception:         # a view without ADSL labels: the project's defaults
            delivered = None
    return variable_labels(delivered)


def _landmark(dataset: pd.DataFrame, study):
    if "landmark_day" in dataset.columns and len(dataset):
        return int(dataset["landmark_day"].iloc[0])
    return getattr(study, "landmark_day", None)


def _format_column(s: pd.Series, col: str, spec: DisplaySpec) -> pd.Series:
    if col in spec.p_values:
        return s.map(format_p)
    if col in spec.proportions:
        return s.map(lambda v: format_percent(v, spec.digits.get(col, 1), proportion=True))
    if col in spec.percents:
        return s.map(lambda v: format_percent(v, spec.digits.get(col, 1)))
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.map(_format_date)
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        return s.map(lambda v: "yes" if v else "no")
    if pd.api.types.is_integer_dtype(s):
        return s if not s.isna().any() else s.astype(object).map(format_number)      # Int64 with <NA>: "—"
    if pd.api.types.is_float_dtype(s):
        digits = spec.digits.get(col, DEFAULT_DIGITS.get(col))
        present = s.dropna()
        if digits is None and len(present) and np.allclose(present, present.round()):
            return s.map(lambda v: MISSING if _missing(v) else str(int(round(v))))
        return s.map(lambda v: format_number(v, 2 if digits is None else digits))
    return s.map(lambda v: _format_text(v, yes_no=col in spec.yes_no, sentence=col in spec.sentence_case))


def _merge_ci(out: pd.DataFrame, spec: DisplaySpec, landmark) -> dict:
    """Merge each (estimate, lower, upper) triple present into one column in place of the
    estimate; returns the merged columns' headers."""
    headers = {}
    for est, lo, hi, header, digits, scale in spec.ci:
        if not {est, lo, hi} <= set(out.columns):
            continue
        fmt = (lambda e, l, h: format_median(e, l, h, digits)) if est == "median" else \
              (lambda e, l, h, d=digits, k=scale: format_ci(e, l, h, d, k))
        out[est] = [fmt(e, l, h) for e, l, h in zip(out[est], out[lo], out[hi])]
        out.drop(columns=[lo, hi], inplace=True)
        headers[est] = header
    for value, se, header, digits in spec.pairs:
        if {value, se} <= set(out.columns):
            out[value] = [MISSING if _missing(v) else
                          f"{v:.{digits}f}" + ("" if _missing(e) else f" ({e:.1f})")
                          for v, e in zip(out[value], out[se])]
            out.drop(columns=[se], inplace=True)
            headers[value] = header
    return headers


def format_display(name: str, dataset: pd.DataFrame, view_or_study=None) -> pd.DataFrame:
    """The display table of a table ``name`` (a key of ``analysis.tables.TABLES``, or any name:
    then only the shared rules apply).

    Parameters
    ----------
    name : str
        The table's name; its specifics come from :data:`DISPLAY_SPECS`.
    dataset : pandas.DataFrame
        The machine table, as ``build_table`` returns it (not modified). A table already in
        display form passes through with its headers and values unchanged.
    view_or_study : view or Study, optional
        For the landmark day, the variable labels a delivery carries and the study's labels.

    Returns
    -------
    pandas.DataFrame
        Same rows; human headers; every value a display string except whole-number columns
        (kept as integers so they still sort and add up). No ``None``, ``NaT`` or ``nan``; a
        ``group`` column that is "All" on every row (a blinded, pooled table) is dropped.
    """
    if not isinstance(dataset, pd.DataFrame):
        raise TypeError(f"format_display needs a DataFrame, got {type(dataset).__name__}")
    spec = DISPLAY_SPECS.get(name, DisplaySpec())
    study = _study_of(view_or_study)
    variables = _variable_labels(view_or_study)
    if name == "baseline" and {"variable", "level", "statistic", "group", "value"} <= set(dataset.columns):
        from analysis.baseline import format_table1
        dataset = format_table1(dataset, labels=variables)
    out = dataset.copy()
    landmark = _landmark(out, study)
    if "group" in out.columns and len(out) and out["group"].astype(str).eq("All").all():
        out = out.drop(columns="group")            # pooled: the one group says nothing
    out = out.drop(columns=[c for c in spec.drop if c in out.columns and
                            not (c == "look" and "label" not in out.columns)])
    headers = _merge_ci(out, spec, landmark)
    if "method" in out.columns and study is not None:       # stratified methods name the strata
        out["method"] = out["method"].map(lambda v: MISSING if _missing(v) else format_method(v, study))
    for col in out.columns:
        if col in headers:
            continue
        if col in spec.codes:
            out[col] = out[col].map(lambda v: MISSING if _missing(v) else variables.get(str(v), str(v)))
        elif col == "dataset" and out[col].dtype == object:
            out[col] = out[col].map(lambda v: MISSING if _missing(v) else DATASET_LABELS.get(str(v), str(v)))
        elif col == "pt":
            out[col] = out[col].map(lambda v: "(any)" if v == "All PTs" else _format_text(v))
        else:
            out[col] = _format_column(out[col], col, spec)
    out = out[[c for c in spec.first if c in out.columns] + [c for c in out.columns if c not in spec.first]]
    labels = {**spec.labels, **headers}
    out.columns = [format_header(c, labels, landmark) for c in out.columns]
    return out.reset_index(drop=True)


_MACHINE_VALUES = {"None", "NaT", "nan", "NaN", "<NA>"}


def list_display_problems(dataset: pd.DataFrame) -> list[str]:
    """What in a shown table is still machine output: headers in snake_case, cells that read
    ``None``, ``NaT``, ``nan`` or ``<NA>`` (or are missing), method codes. Empty when clean."""
    problems = [f"snake_case header {c!r}" for c in dataset.columns if is_snake_case(c)]
    for col in dataset.columns:
        values = dataset[col]
        if values.isna().any():
            problems.append(f"{col!r}: missing value shown")
        text = set(values.dropna().astype(str))
        problems += [f"{col!r}: {v!r}" for v in sorted(text & _MACHINE_VALUES)]
        problems += [f"{col!r}: method code {v!r}" for v in sorted(text & set(METHOD_LABELS))]
    return problems
