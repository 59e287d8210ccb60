"""Words about the interim decision, for the dashboard and the reports: the study's design
assumptions as (what, value) pairs and as one sentence (``design_assumptions``,
``design_assumptions_text``: the closed report's design table and the decision footnote), the
Survival page's alert (``decision_alert``) and the closed report's opening sentences
(``decision_summary``), both read from the ``decision`` table that ``analysis.outputs.decision``
defines.
"""
from __future__ import annotations

import pandas as pd

from analysis.display import format_number, format_percent

__all__ = ["design_assumptions", "design_assumptions_text", "decision_alert", "decision_summary"]


# --------------------------------------------------------------------------- the design assumptions
def design_assumptions(study) -> list[tuple[str, str]]:
    """The design assumptions of the study file (``[analysis]``) as (what, value) pairs in words,
    with the power they give (the reports print them beside the results)."""
    from analysis.interim import conditional_power, drift_from_hazard_ratio
    from analysis.sequential import compute_obf_boundaries
    looks = sorted(study.sequential_looks)
    out = []
    if study.design_hazard_ratio:
        out.append(("Hazard ratio the trial is powered for (experimental vs reference)",
                    format_number(study.design_hazard_ratio, 2)))
    if study.control_survival_landmark:
        s = study.control_survival_landmark
        exp = (f"; experimental arm {format_percent(s ** study.design_hazard_ratio, 0, proportion=True)} under "
               f"that hazard ratio" if study.design_hazard_ratio else "")
        out.append((f"Control-arm survival at day {study.landmark_day}", format_percent(s, 0, proportion=True) + exp))
    if study.planned_events:
        out.append(("Deaths planned at the final analysis", str(study.planned_events)))
    out.append(("Looks (information fractions)", ", ".join(format_number(f, 2) for f in looks)))
    out.append(("Efficacy boundary", f"Lan-DeMets O'Brien-Fleming-type alpha spending, one-sided alpha "
                                     f"{study.alpha_one_sided}"))
    out.append(("Futility rule (non-binding)", f"conditional power under the current trend below "
                                               f"{format_percent(study.futility_conditional_power, 0, True)}"))
    if study.design_hazard_ratio and study.planned_events:
        b = compute_obf_boundaries(looks, alpha=study.alpha_one_sided)
        power = conditional_power(0.0, 0.0, drift_from_hazard_ratio(study.design_hazard_ratio, study.planned_events),
                                  list(zip(b["information_fraction"], b["boundary_z"])))
        out.append(("Power of this design at that hazard ratio (log-rank, 1:1)", format_percent(power, 0, True)))
    return out


def design_assumptions_text(study) -> str:
    """:func:`design_assumptions` as one sentence (the decision footnote)."""
    return "; ".join(f"{what.lower() if i else what} {value}" for i, (what, value) in
                     enumerate(design_assumptions(study)))


# --------------------------------------------------------------------------- words for the page and the report
def _values(decision: pd.DataFrame) -> dict:
    return dict(zip(decision["quantity"], decision["value"]))


def _notes(decision: pd.DataFrame) -> dict:
    return dict(zip(decision["quantity"], decision["note"]))


def _rci_words(v: dict, level: str) -> str:
    return (f"repeated {level} CI for the hazard ratio {format_number(v['rci_lower'], 2)} to "
            f"{format_number(v['rci_upper'], 2)}")


def _level(decision: pd.DataFrame) -> str:
    note = _notes(decision).get("rci_lower", "")
    return note.split("Repeated ")[1].split(" CI")[0] if "Repeated " in note else "95 %"


def decision_alert(decision: pd.DataFrame) -> tuple[str, str] | None:
    """("error", words) when the efficacy boundary is crossed, ("warning", words) when the futility
    rule is met, None otherwise: the Survival page's alert, from the ``decision`` table."""
    v, n = _values(decision), _notes(decision)
    where = (f"at information fraction {format_number(v['information_fraction'], 2)}")
    if bool(v.get("efficacy_crossed")):
        return ("error", f"Efficacy boundary crossed at this data cut: observed z {format_number(v['observed_z'], 2)} "
                         f"≥ boundary {format_number(v['efficacy_boundary_z'], 3)} {where}; "
                         f"{_rci_words(v, _level(decision))}.")
    if bool(v.get("futility_crossed")):
        cp = n["conditional_power_trend"]
        return ("warning", f"Futility rule met at this data cut {where}: {cp[0].lower()}{cp[1:]}. "
                           f"{n['futility_crossed'].split(': yes')[0]}.")
    return None


def decision_summary(decision: pd.DataFrame) -> str:
    """The closed report's opening sentences: crossed or not (efficacy, futility), the information
    fraction, the conditional powers, the predictive power and the repeated CI."""
    v, n = _values(decision), _notes(decision)
    z, c = format_number(v["observed_z"], 2), format_number(v["efficacy_boundary_z"], 3)
    if bool(v.get("efficacy_crossed")):
        head = f"**The efficacy boundary is crossed at this data cut** (observed z {z} ≥ boundary {c})."
    elif bool(v.get("futility_crossed")):
        head = (f"**The non-binding futility rule is met at this data cut**; the efficacy boundary is not crossed "
                f"(observed z {z} < boundary {c}).")
    else:
        head = (f"Neither the efficacy boundary nor the futility rule is crossed at this data cut (observed z {z} "
                f"< boundary {c}).")
    cps = "; ".join(n[q] if i == 0 else n[q][0].lower() + n[q][1:] for i, q in enumerate(
        ("conditional_power_design", "conditional_power_trend", "conditional_power_null", "predictive_power")))
    return f"{head} {n['information_fraction']}. {cps}; {_rci_words(v, _level(decision))}."
