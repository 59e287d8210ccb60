"""The output layer: every table users see, defined once, rendered by everyone.

Which file holds what:

- ``base.py``: what an output is (:class:`Output`), ``TableUnavailable`` and the data every
  output starts from (ADSL in a population, the survival parameter, BDS datasets, comparisons);
- ``filters.py``: the dashboard's site filter as an output input (sites selected, plan and
  target scaled to them, the footnote saying how an output follows the filter);
- one module per subject holding its outputs' definitions (tables, then the figures drawn from
  them): ``baseline``, ``recruitment``, ``survival``, ``decision`` (the interim look; its words
  for the dashboard's alert and the closed report in ``decision_text``), ``projections``
  (recruitment forecast), ``events`` (death forecast), ``functional`` (ALSFRS-R), ``safety``,
  ``care`` (treatment adherence, vital-status currency), ``conduct`` (visits, data entry).

This module assembles them into :data:`OUTPUTS` and gives the four calls the dashboard, the
reports and ``mirocals table`` make: :func:`build_table` (the machine table, raw values, the CSV
for QC double programming), :func:`display_table` (what people read), :func:`footnotes` (cut-off,
population and N, filter, method in words) and :func:`caption` (title, population, cut-off).
"""
from __future__ import annotations

import pandas as pd

from analysis.display_table import format_table
from analysis.outputs import (baseline, care, conduct, decision, events, functional, projections, recruitment,
                              safety, survival)
from analysis.outputs.base import (AE, DATASET_WORDS, POPULATION_WORDS, SCREENING, TTE, FigureOutput, Output,
                                   TableUnavailable, figure_subtitle,
                                   comparisons, dataset_name, default_times, get_adsl, get_bds, get_tte, groups_of,
                                   screening_or_none, strata_columns, view_memo)
from analysis.outputs.filters import SiteSelection, filter_note, scaled_plan, site_selection
from analysis.outputs.projections import recruitment_projection
from analysis.outputs.survival import EFFECT_TABLE_COLUMNS

__all__ = ["OUTPUTS", "FIGURES", "Output", "FigureOutput", "build_figure", "figure_subtitle", "TableUnavailable", "build_table", "check_available", "display_table", "footnotes",
           "caption", "arm_counts", "population_counts", "population_text", "describe_population", "get_adsl",
           "get_bds", "get_tte", "view_memo", "comparisons",
           "groups_of", "strata_columns", "default_times", "dataset_name", "screening_or_none", "site_selection",
           "SiteSelection", "scaled_plan", "filter_note", "recruitment_projection", "EFFECT_TABLE_COLUMNS",
           "DATASET_WORDS", "POPULATION_WORDS", "AE", "SCREENING", "TTE"]

OUTPUTS: dict[str, Output] = {}
FIGURES: dict[str, FigureOutput] = {}
for _module in (baseline, survival, decision, events, recruitment, projections, functional, safety, care, conduct):
    for _registry, _items in ((OUTPUTS, _module.OUTPUTS), (FIGURES, getattr(_module, "FIGURES", []))):
        for _item in _items:
            if _item.name in _registry:
                raise ValueError(f"{_item.name!r} is defined twice")
            _registry[_item.name] = _item


def build_figure(name: str, view, printed: bool = False):
    """Figure ``name`` (:data:`FIGURES`) for a view: with the on-screen subtitle (cut-off, filter,
    pooled or by arm), or ``printed`` without it (a report's caption says it). Raises the view's
    ``BlindingError`` for a by-arm-only figure on a blinded view and ``TableUnavailable`` when
    the snapshot lacks its data."""
    spec = FIGURES[name]
    if spec.by_arm_only:
        view.require_unblinded(f"{name} figure")
    return spec.build(view, subtitle=None if printed else figure_subtitle(view))


def check_available(name: str, view) -> None:
    """Raise ``TableUnavailable`` when the snapshot lacks a dataset output ``name`` needs or the
    study makes it not applicable."""
    spec = OUTPUTS[name]
    unreadable = getattr(view, "unreadable", None) or {}
    broken = [dataset_name(view, n) for n in spec.needs if dataset_name(view, n) in unreadable]
    if broken:
        raise TableUnavailable(f"{name} table not available: {unreadable[broken[0]]}")
    missing = [dataset_name(view, n) for n in spec.needs if dataset_name(view, n) not in view.datasets]
    if missing:
        raise TableUnavailable(f"{name} table not available: no {' or '.join(missing)} dataset in this "
                               f"snapshot ({DATASET_WORDS.get(missing[0], 'it was not delivered')})")
    why = spec.applies(view) if spec.applies else None
    if why:
        raise TableUnavailable(f"{name} table not available: {why}")


def build_table(name: str, view, times=None, since=None, targets=None) -> pd.DataFrame:
    """The machine table of output ``name`` for a view. Raises ``KeyError`` for an unknown name,
    the view's ``BlindingError`` for a by-arm-only output on a blinded view and
    ``TableUnavailable`` (saying why) when the snapshot lacks a dataset the output needs or the
    study makes it not applicable. ``times``: number-at-risk times (``at-risk``, ``km``);
    ``since``: the previous report's cut-off (``changes``); ``targets``: the numbers a forecast
    projects to (``projection``: participants, ``event-projection``: deaths; default: the
    study's planned numbers). The columns are the output's
    declared ``columns`` (in order; optional ones may be absent): a build that adds one fails
    here, not in a reader's CSV."""
    spec = OUTPUTS[name]
    if spec.by_arm_only:
        view.require_unblinded(f"{name} table")
    check_available(name, view)
    table = spec.build(view, times=times, since=since, targets=targets)
    extra = [c for c in table.columns if c not in spec.columns]
    if extra:
        raise RuntimeError(f"output {name!r} built undeclared machine columns {extra}; declare them in its "
                           f"definition ({type(spec).__module__})")
    return table


def arm_counts(name: str, view) -> dict:
    """N per group in output ``name``'s population: each arm and "Total" by arm, "All" pooled
    (the arm headers of a display table). Empty for an output on the screened (not randomised)."""
    return population_counts(OUTPUTS[name].population if name in OUTPUTS else "ITT", view)


def population_counts(population: str, view) -> dict:
    """N per group in a population (ITT, SAF, all; empty for the screened)."""
    if population == "screened" or not hasattr(view, "table"):
        return {}
    adsl = get_adsl(view, None if population == "all" else population)
    if view.group_col and view.group_col in adsl.columns:
        counts = adsl[view.group_col].value_counts()
        return {**{g: int(counts.get(g, 0)) for g in view.arm_levels}, "Total": len(adsl)}
    return {"All": len(adsl)}


def display_table(name: str, machine: pd.DataFrame, view=None) -> pd.DataFrame:
    """The display table of output ``name`` from its machine table (human headers with units, arms
    side by side, ``0.49 (0.28 to 0.85)``, ``<0.001``, ``not reached``, ``—``, %, YYYY-MM-DD,
    study labels). ``view``: the view it was built on (for the arm N, the landmark day, the
    delivery's labels); a study is enough without the arm N. A name that is not an output gets
    the shared rules only."""
    spec = OUTPUTS[name].display if name in OUTPUTS else None
    counts = arm_counts(name, view) if view is not None and hasattr(view, "group_col") else {}
    return format_table(machine, spec, view, arm_counts=counts, baseline=name == "baseline")


def population_text(name: str, view) -> str:
    """Output ``name``'s population with its N (per arm when by arm): "ITT population, N = 220
    (Low-dose IL-2 110, Placebo 110)"."""
    return describe_population(OUTPUTS[name].population, view)


def describe_population(population: str, view) -> str:
    """A population (ITT, SAF, all, screened) in words with its N, per arm when by arm."""
    words = POPULATION_WORDS.get(population, population)
    if population == "screened":
        if "screening" in view.datasets:
            return f"{words}, N = {len(view.table('screening', columns=['USUBJID']))}"
        return words
    counts = population_counts(population, view)
    total = counts.get("Total", counts.get("All", 0))
    arms = [f"{g} {n}" for g, n in counts.items() if g not in ("Total", "All")]
    return f"{words}, N = {total}" + (f" ({', '.join(arms)})" if arms else "")


def caption(name: str, view, title: str | None = None) -> str:
    """"<title>. <population and N>; data cut-off <date>." (a report's table or figure caption)."""
    return f"{title or OUTPUTS[name].title}. {population_text(name, view)}; data cut-off {view.cut_date}."


def footnotes(name: str, view, title: bool = False) -> list[str]:
    """What a reader needs under output ``name``: its cells (by-arm tables), the method in words,
    how it follows the active filter, and the cut-off with the population and N. ``title``:
    start with the title (the dashboard, where no caption carries it)."""
    spec = OUTPUTS[name]
    notes = [spec.title + "."] if title else []
    if spec.display.cell_label:
        notes.append(f"Cells: {spec.display.cell_label}.")
    method = spec.method_text(view)
    if method:
        notes.append(method)
    label = getattr(view, "filter_label", None)
    if label:
        notes.append(filter_note(name, view) or f"Filter: {label}.")
    notes.append(f"{population_text(name, view)}; data cut-off {view.cut_date}.")
    return notes
