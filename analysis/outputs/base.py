"""The output layer's base: what an output is (:class:`Output`) and the data every output starts
from (a population of ADSL, the survival parameter, a BDS dataset, the arm comparisons).

An output is one table users see, defined once (in one of the modules of this package, by
subject): its name and title, the population and datasets it needs, its computation (a call into
the analysis functions), its machine columns (the CSV for QC double programming, raw values), its
display (``analysis.display.DisplaySpec``: labels, units, arms side by side) and its method in
words (the footnote). The dashboard, the three reports and ``mirocals table NAME [--display]``
all render outputs through :mod:`analysis.outputs`; none formats or recomputes a number itself.

Each output is a function of a *view* (anything with ``table(name)``, ``group_col``,
``arm_levels``, ``blinded``, ``study`` and ``require_unblinded``: see ``data_access.views``), so
this package does no I/O of its own and never sees an allocation a view does not hold.

Populations: efficacy and baseline outputs use the ITT population (``ITTFL == "Y"``), safety
outputs the safety population (``SAFFL == "Y"``); recruitment outputs everyone screened or
randomised.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from analysis.display_table import DisplaySpec


class TableUnavailable(LookupError):
    """The snapshot or study lacks what an output needs (the message says what): the CLI prints
    it, the dashboard shows it as a note and the reports as a sentence."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


POPULATION_WORDS = {"ITT": "ITT population", "SAF": "Safety population", "screened": "Everyone screened",
                    "all": "Everyone randomised"}


@dataclass(frozen=True)
class Output:
    """One table users see, defined once.

    ``title``: what it shows, with units (the caption); ``build(view, times=, since=)``: the
    computation; ``columns``: the machine table's columns in order (a build may leave out the
    optional ones a study does not have, never add one); ``population``: ITT, SAF, screened or
    all; ``by_arm_only``: meaningless pooled, refused on a blinded view; ``needs``: datasets
    (``"functional"`` = the study's functional dataset); ``applies(view)``: why the study makes
    it not applicable, or None; ``display``: how it is shown; ``method``: the method in words for
    the footnote (text, or ``view -> text``); ``listing``: a listing read row by row (shown whole
    in reports)."""
    name: str
    title: str
    build: Callable[..., pd.DataFrame]
    columns: tuple[str, ...]
    population: str = "ITT"
    by_arm_only: bool = False
    needs: tuple[str, ...] = ("adsl",)
    applies: Callable[..., str | None] | None = None
    display: DisplaySpec = field(default_factory=DisplaySpec)
    method: str | Callable[..., str | None] | None = None
    listing: bool = False

    @property
    def description(self) -> str:
        return self.title

    def method_text(self, view) -> str | None:
        text = self.method(view) if callable(self.method) else self.method
        if text and "{landmark}" in text:
            text = text.replace("{landmark}", str(view.study.landmark_day))
        return text or None


@dataclass(frozen=True)
class FigureOutput:
    """One figure users see, defined once, beside the tables it is drawn from.

    ``label``: its short name (a dashboard tab); ``title``: what it shows (a report's caption);
    ``build(view, subtitle)``: the plotly figure, ``subtitle`` the screen's line (cut-off,
    filter, pooled or by arm; ``figure_subtitle``) or None in a report, where the caption says
    it; ``by_arm_only``: refused on a blinded view; ``filter_of``: the output whose filter note
    the figure's caption shows on a filtered dashboard; ``table``: the output it is drawn from
    (its population and N go in a report's caption)."""
    name: str
    label: str
    title: str
    build: Callable
    by_arm_only: bool = False
    filter_of: str | None = None
    table: str = "survival"


def figure_subtitle(view) -> str:
    """Cut-off date, active filter and pooled/by arm: every on-screen figure's subtitle (and so
    every export)."""
    label = getattr(view, "filter_label", None)
    pooled = "pooled over arms" if view.blinded else "by arm"
    return f"Data cut-off {view.cut_date}{f' · filter: {label}' if label else ''} · {pooled}"


def table_of(name: str, view, **kwargs) -> pd.DataFrame:
    """The machine table of output ``name`` (``analysis.outputs.build_table``: its checks
    included), for a figure drawn from it."""
    from analysis.outputs import build_table
    return build_table(name, view, **kwargs)


TTE, SCREENING, AE = ("adsl", "adtte"), ("screening",), ("adsl", "adae")


def dataset_name(view, need: str) -> str:
    return view.study.functional_dataset if need == "functional" else need


DATASET_WORDS = {"screening": "no screening log was delivered", "adqs": "no functional score was delivered",
                 "adlb": "no laboratory data were delivered", "adex": "no exposure data were delivered",
                 "adae": "no adverse events were delivered", "adtte": "no time-to-event data were delivered",
                 "adcm": "no concomitant care (riluzole, ventilation, gastrostomy, other medications) was delivered",
                 "addv": "no protocol deviations were delivered"}


def get_adsl(view, population: str | None = "ITT") -> pd.DataFrame:
    """ADSL restricted to a population flag (ITT -> ITTFL, SAF -> SAFFL; None = all rows)."""
    adsl = view.table("adsl")
    flag = {"ITT": view.study.col("itt_flag"), "SAF": view.study.col("safety_flag")}.get(population or "")
    if flag and flag in adsl.columns:
        adsl = adsl[adsl[flag] == "Y"]
    return adsl.reset_index(drop=True)


def get_tte(view, paramcd: str | None = None, population: str | None = "ITT") -> pd.DataFrame:
    """One ADTTE parameter (default: the study's survival endpoint) with ADSL covariates merged."""
    paramcd = paramcd or view.study.survival_paramcd
    tte = view.table("adtte")
    tte = tte[tte["PARAMCD"] == paramcd]
    adsl = get_adsl(view, population)
    keep = [c for c in adsl.columns if c not in tte.columns or c == "USUBJID"]
    return tte.merge(adsl[keep], on="USUBJID", how="inner").reset_index(drop=True)


def view_memo(view, key: str, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``build()`` once per view object (a view's data never change); callers get copies. For
    results several tables or figures start from (visit status, stages)."""
    memo = view.__dict__.setdefault("_derived", {})
    if key not in memo:
        memo[key] = build()
    return memo[key].copy()


def get_bds(view, dataset: str, population: str = "ITT", paramcds=None, columns=None) -> pd.DataFrame:
    """A BDS dataset restricted to the population (and optionally to some PARAMCDs and columns;
    USUBJID and PARAMCD are always read)."""
    cols = None
    if columns is not None:
        present = view.columns(dataset)
        cols = list(dict.fromkeys(["USUBJID", "PARAMCD", *[c for c in columns if c in present]]))
    if paramcds is not None:          # filtered in DuckDB: a 20,000-subject ADQS has ~4 million rows
        codes = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paramcds) or "NULL"
        bds = view.table(dataset, columns=cols, where=f"PARAMCD IN ({codes})")
    else:
        bds = view.table(dataset, columns=cols)
    ids = get_adsl(view, population)["USUBJID"]
    return bds[bds["USUBJID"].isin(ids)].reset_index(drop=True)


def groups_of(view):
    """(group column, arm levels) of a view; (None, None) pooled."""
    return (view.group_col, tuple(view.arm_levels) if view.group_col else None)


def no_strata(view) -> str | None:
    """Why a by-stratum output does not apply (None when the study has strata)."""
    return None if view.study.strata_factors else "the study has no stratification factors"


def strata_columns(view) -> list[str]:
    return list(view.study.strata_factors)


def comparisons(view) -> list[tuple[str, str]]:
    """(experimental, reference) arm labels: every arm against the study's reference arm, in
    display order (two arms: one comparison, the first arm against the last)."""
    levels = list(view.arm_levels)
    study = view.study
    ref_code = study.reference_arm if study.reference_arm in study.arm_codes else study.arm_codes[-1]
    ref = levels[list(study.arm_codes).index(ref_code)] if len(levels) == len(study.arm_codes) else levels[-1]
    return [(arm, ref) for arm in levels if arm != ref]


def screening_or_none(view):
    """The screening log, or None when the trial was delivered without one (enrolment and
    recruitment by month then come from ADSL alone, with screened counts missing)."""
    return view.table("screening") if "screening" in view.datasets else None


def default_times(view) -> list[int]:
    """Number-at-risk times: every 80 days to the landmark (0, 80, ..., 640)."""
    step = 80
    return list(range(0, view.study.landmark_day + 1, step))

