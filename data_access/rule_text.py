"""Validation rules in words, for the people who read and answer the problems (the data-quality
page, the per-site query lists): ``rule_text("late_entry")`` -> "Entered late (more than 30 days
after the visit or event)".

The machine tables keep the rule ids (``data_access/DATASETS.md`` lists them); only what people
read goes through :func:`rule_text`. A rule without an entry in :data:`RULE_TEXT` (one added to
``data_access.validate_rules`` since) still reads as words: its id with the underscores as
spaces and a capital first letter ("Visit after death" for ``visit_after_death``).
"""
from __future__ import annotations

from data_access.validate_rules import LATE_ENTRY_DAYS

__all__ = ["RULE_TEXT", "rule_text"]

RULE_TEXT = {
    "file_unreadable": "File cannot be read",
    "file_empty": "File is empty",
    "missing_column": "Column missing",
    "wrong_type": "Value of the wrong type",
    "partial_date": "Partial date (day or month unknown)",
    "duplicate_record": "Duplicated record",
    "duplicate_subject": "Subject listed more than once in ADSL",
    "subject_not_in_adsl": "Subject not in ADSL",
    "value_out_of_range": "Value out of range",
    "invalid_code": "Code not allowed",
    "total_mismatch": "Total or domain does not equal the sum of its items",
    "date_order": "Dates in the wrong order",
    "visit_before_randomisation": "Visit dated before randomisation",
    "death_before_randomisation": "Death dated before randomisation",
    "stratum_mismatch": "Stratum does not match its factors",
    "allocation_missing_subject": "Randomised subject without allocation",
    "late_entry": f"Entered late (more than {LATE_ENTRY_DAYS} days after the visit or event)",
    "arm_revealing_column": "Column reveals the allocation",
    "care_after_death": "Care or deviation dated after death",
    "care_before_randomisation": "Ventilation, gastrostomy or tracheostomy before randomisation",
    "missing_value": "Required value missing",
    "site_mismatch": "Site does not match ADSL",
    "last_alive_after_death": "Last known alive after death",
    "last_alive_before_record": "Last known alive before a later record",
    "last_alive_after_cut": "Last known alive after the data cut-off",
}


def rule_text(rule) -> str:
    """The rule ``rule`` in words (:data:`RULE_TEXT`), or, for a rule without an entry, its id
    read as words ("visit_after_death" -> "Visit after death"). Empty for a missing rule."""
    if rule is None or (isinstance(rule, float) and rule != rule):
        return ""
    rule = str(rule)
    if rule in RULE_TEXT:
        return RULE_TEXT[rule]
    words = " ".join(rule.replace("-", "_").split("_")).strip()
    return words[:1].upper() + words[1:]
