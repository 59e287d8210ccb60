"""Display values: what people read in place of machine values. p-values as ``0.012`` /
``<0.001``, estimates with their CI as ``0.49 (0.28 to 0.85)``, proportions and percentages as
``74.1 %``, a median not reached as ``not reached`` (``not reached (457 to NE)`` when its lower
limit is), ``—`` for anything missing or not applicable, dates as YYYY-MM-DD, methods and
strata in words, headers without machine names; and :func:`list_display_problems`, what in a
shown table is still machine output.

Pure: no Streamlit, no I/O. Tables are laid out by :mod:`analysis.display_table` (an output's
``DisplaySpec``), which the dashboard, the reports and ``mirocals table NAME --display`` reach
through ``analysis.outputs.display_table``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["METHOD_LABELS", "STRATUM_WORDS", "format_strata", "format_method", "COLUMN_LABELS", "MISSING",
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
    "joint_rank": "Joint rank test (survival, then ALSFRS-R at the shared follow-up): win probability",
    "joint_rank_last_change": "Joint rank test, sensitivity (survivors on their last change): win probability",
    "logrank_global": "Log-rank test, all arms (global)",
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
        return text.replace("_", " ").capitalize()          # not_due -> Not due
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
