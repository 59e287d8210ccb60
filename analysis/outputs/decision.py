"""Interim decision outputs for the DSMB (unblinded only): the group-sequential look at this data
cut against its efficacy boundary, and the boundary plot. Defined once here."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.display_table import DisplaySpec
from analysis.outputs.base import FigureOutput, Output, get_tte, table_of


def _sequential(view, **_):
    """Planned looks, and, when the study sets ``planned_events``, this data cut as a look at its
    observed information fraction (deaths / planned events) with the observed log-rank z
    (positive favours the experimental arm) against the boundary recomputed for that fraction;
    planned looks before it keep their planned fractions, the final look stays at 1."""
    view.require_unblinded("group-sequential table")
    from analysis.sequential import compute_obf_boundaries, summarize_sequential
    from analysis.survival_models import compute_logrank
    study = view.study
    planned = sorted(study.sequential_looks)
    if not study.planned_events:
        return compute_obf_boundaries(planned, alpha=study.alpha_one_sided).assign(
            label=[f"Planned look {i + 1}" for i in range(len(planned))])
    tte = get_tte(view)
    groups = tuple(view.arm_levels)
    tte = tte[tte[view.group_col].isin([groups[0], groups[-1]])]
    events = int((tte["CNSR"] == 0).sum())
    fraction = min(events / study.planned_events, 1.0)
    lr = compute_logrank(tte["AVAL"], (tte["CNSR"] == 0).astype(int), tte[view.group_col] == groups[0])
    z = -lr.o_minus_e / np.sqrt(lr.variance) if lr.variance > 0 else np.nan   # fewer deaths than expected: > 0
    before = [f for f in planned if f < fraction - 1e-9]
    fractions = before + [fraction] + ([1.0] if fraction < 1.0 else [])
    labels = ([f"Planned look {i + 1}" for i in range(len(before))] + [f"This cut ({view.cut_date})"]
              + (["Final analysis"] if fraction < 1.0 else []))
    looks = pd.DataFrame({"information_fraction": fractions, "label": labels,
                          "events": [round(f * study.planned_events) for f in before] + [events]
                          + ([study.planned_events] if fraction < 1.0 else []),
                          "observed_z": [np.nan] * len(before) + [z] + ([np.nan] if fraction < 1.0 else [])})
    out = summarize_sequential(looks, alpha=study.alpha_one_sided)
    out.loc[out["observed_z"].isna(), "crossed"] = None
    return out


def _sequential_method(view) -> str:
    study = view.study
    planned = (f"; information fraction = deaths / planned deaths ({study.planned_events}); the observed z is "
               f"the unstratified log-rank z, positive favours the experimental arm" if study.planned_events else "")
    return (f"Lan-DeMets alpha spending with an O'Brien-Fleming-type function, one-sided alpha "
            f"{study.alpha_one_sided}{planned}.")


OUTPUTS = [
    Output("sequential", "Group-sequential efficacy boundaries and this data cut", _sequential,
           ("look", "information_fraction", "cumulative_alpha", "alpha_spent", "boundary_z", "nominal_p", "label",
            "events", "observed_z", "crossed"), by_arm_only=True,
           display=DisplaySpec(
               labels={"label": "Look", "information_fraction": "Information fraction",
                       "cumulative_alpha": "Cumulative alpha spent", "alpha_spent": "Alpha spent at this look",
                       "boundary_z": "Boundary z", "nominal_p": "Nominal p (one-sided)", "events": "Deaths",
                       "observed_z": "Observed z", "crossed": "Boundary crossed", "date": "Date"},
               digits={"information_fraction": 2, "cumulative_alpha": 4, "alpha_spent": 4, "boundary_z": 3,
                       "nominal_p": 4, "observed_z": 3},
               drop=("look",), yes_no=("crossed",), first=("label",)),
           method=_sequential_method),
]


# --------------------------------------------------------------------------- figures
def fig_boundaries(view, subtitle=None):
    """The efficacy boundary by information fraction and, when the study plans its deaths, this
    cut's observed z against it (unblinded only)."""
    from analysis.figures_survival import plot_boundaries
    b = table_of("sequential", view)
    return plot_boundaries(b, observed=b if "observed_z" in b else None, subtitle=subtitle)


FIGURES = [
    FigureOutput("boundaries", "Sequential monitoring", "Efficacy boundary (z) by information fraction and the "
                 "observed z at this cut", fig_boundaries, by_arm_only=True, table="sequential"),
]
