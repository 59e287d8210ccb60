"""The minimum cell size for blinded roles: ``small_cell_reason`` (a filter selecting, or
isolating by difference, fewer than the study's ``min_cell_size`` subjects), ``SmallCellError`` and
``FilteredView``, the view restricted to a filter that refuses every dataset read below it."""
from __future__ import annotations

import pandas as pd

from dashboard.context import Filters


class SmallCellError(PermissionError):
    """A blinded output asked of a filter that selects (or isolates by difference) fewer than the
    study's minimum cell size k: only the counts (``FilteredView.counts``) may be shown."""

    def __init__(self, reason: str, randomised: int | None = None, screened: int | None = None):
        super().__init__(reason)
        self.reason, self.randomised, self.screened = reason, randomised, screened

    def __str__(self) -> str:
        return self.reason


_FILTER_COLUMNS = (("countries", "COUNTRY", "country"), ("sites", "SITEID", "site"), ("onsets", "ONSET", "onset"))


_POPULATIONS = (("ITTFL", "ITT"), ("SAFFL", "safety"))


def _plural(n: int) -> str:
    return f"{n} participant" + ("" if n == 1 else "s")


def _count_selected(adsl: pd.DataFrame, filters: Filters) -> int:
    keep = pd.Series(True, index=adsl.index)
    for attr, col, _ in _FILTER_COLUMNS:
        values = getattr(filters, attr)
        if values and col in adsl.columns:
            keep &= adsl[col].isin(values)
    return int(keep.sum())


def small_cell_reason(adsl: pd.DataFrame, filters: Filters, k: int) -> str | None:
    """Why a blinded filter gives counts only, or None when per-subject outputs may be shown.

    ``adsl``: the randomised subjects (one row each; COUNTRY, SITEID, ONSET). A filter is refused
    when it selects fewer than ``k`` subjects, and also when it differs from a neighbouring filter
    by 1..k-1 subjects, because the difference of two allowed outputs would then describe those
    few subjects (Site FR08 minus Site FR08 + Onset Limb is the one bulbar subject of FR08):
    the same filter without one of its restrictions, or without one of the values it selects.
    """
    if not filters.active:
        return None
    n = _count_selected(adsl, filters)
    if n < k:
        return (f"This filter selects {_plural(n)}, fewer than the minimum of {k} for blinded outputs: "
                "counts only.")
    for flag, population in _POPULATIONS:      # the ITT and safety tables describe their population only
        if flag in adsl.columns:
            m = _count_selected(adsl[adsl[flag] == "Y"], filters)
            if 0 < m < k:
                return (f"This filter selects {_plural(n)} but {_plural(m)} of the {population} population, "
                        f"fewer than the minimum of {k} for blinded outputs: counts only.")
    for attr, _col, word in _FILTER_COLUMNS:
        values = getattr(filters, attr)
        if not values:
            continue
        wider = [Filters(**{**_as_dict(filters), attr: ()})]
        if len(values) > 1:
            wider += [Filters(**{**_as_dict(filters), attr: tuple(v for v in values if v != drop)})
                      for drop in values]
        for other in wider:
            diff = abs(_count_selected(adsl, other) - n)
            if 0 < diff < k:
                return (f"This filter selects {_plural(n)} but differs by {_plural(diff)} from a neighbouring "
                        f"filter (another {word} selection), fewer than the minimum of {k} for blinded outputs: "
                        "the difference of the two would describe them, so counts only.")
    return None


def _as_dict(filters: Filters) -> dict:
    return {"countries": filters.countries, "sites": filters.sites, "onsets": filters.onsets}


class FilteredView:
    """A view restricted to subjects (and screening records) of some countries, sites and onsets.

    It only subsets rows; every other attribute (``blinded``, ``group_col``, ``require_unblinded``,
    ...) is the wrapped view's own.

    Minimum cell size: on a blinded view whose filter selects fewer than ``study.min_cell_size``
    randomised subjects (or isolates fewer by difference, see ``small_cell_reason``) every dataset
    read (``table``, ``sql``) raises ``SmallCellError``; only ``counts()`` answers.
    """

    _DATA_ATTRS = ("sql", "_query", "_con", "_paths", "_memo")

    def __init__(self, view, filters: Filters):
        self._view, self._filters = view, filters
        self._cache: dict[str, pd.DataFrame] = {}
        self._cells: tuple[int, int | None, str | None] | None = None

    # ----------------------------------------------------------------- the filter, for outputs
    # what an output needs to apply the filter fully or to say it is trial-wide (read by
    # ``analysis.outputs.site_selection`` with getattr: an unfiltered view has none of them)
    @property
    def filters(self) -> Filters:
        return self._filters

    @property
    def selected_sites(self) -> tuple[str, ...] | None:
        """Site ids the filter keeps (the study's list order), None when it restricts no site."""
        return self._filters.site_ids(self._view.study)

    @property
    def filter_label(self) -> str | None:
        """"UK", "FR08", "UK · Bulbar": for figure subtitles and captions."""
        return self._filters.label()

    @property
    def filter_not_by_site(self) -> str | None:
        """The part of the filter no per-site plan or target can follow ("onset Bulbar")."""
        return self._filters.not_by_site()

    def __getattr__(self, name):
        if name in FilteredView._DATA_ATTRS:
            self._check_cells()
        return getattr(self._view, name)

    # ----------------------------------------------------------------- minimum cell size
    def _cell_state(self) -> tuple[int, int | None, str | None]:
        """``(randomised, screened, reason)`` of this filter; ``reason`` is None when outputs may be
        shown (always for an unblinded view)."""
        if self._cells is None:
            view = self._view
            cols = [c for c in ("USUBJID", "COUNTRY", "SITEID", "ONSET", *(f for f, _ in _POPULATIONS))
                    if c in view.columns("adsl")]
            adsl = view.table("adsl", columns=cols)
            randomised = _count_selected(adsl, self._filters)
            screened = len(self._subset("screening", view.table("screening"), adsl=adsl)) \
                if "screening" in view.datasets else None
            reason = None
            if view.blinded:
                reason = small_cell_reason(adsl, self._filters, int(view.study.min_cell_size))
            self._cells = (randomised, screened, reason)
        return self._cells

    def _check_cells(self) -> None:
        randomised, screened, reason = self._cell_state()
        if reason:
            raise SmallCellError(reason, randomised, screened)

    def counts(self) -> dict:
        """The counts path, answered whatever the cell size: randomised and screened subjects the
        filter selects (``screened`` None when the trial has no screening log) and why outputs are
        withheld (``reason``, None when they are not)."""
        randomised, screened, reason = self._cell_state()
        return {"randomised": randomised, "screened": screened, "reason": reason}

    # ----------------------------------------------------------------- rows
    def table(self, name: str, columns=None, where: str | None = None) -> pd.DataFrame:
        self._check_cells()
        if columns is not None or where is not None:
            # the columns the filter reads are read too (and dropped after): a column subset
            # without COUNTRY or USUBJID must not come back unfiltered
            columns = [columns] if isinstance(columns, str) else columns
            present = self._view.columns(name)
            extra = [] if columns is None else [
                c for c in (("COUNTRY", "SITEID", "ONSET", "USUBJID") if name in ("adsl", "screening") else ("USUBJID",))
                if c in present and c not in columns]
            frame = self._view.table(name, columns=None if columns is None else [*columns, *extra], where=where)
            return self._subset(name, frame).drop(columns=extra)
        if name not in self._cache:
            self._cache[name] = self._subset(name, self._view.table(name))
        return self._cache[name]

    def _keep(self, frame: pd.DataFrame) -> pd.Series:
        f, keep = self._filters, pd.Series(True, index=frame.index)
        for col, values in (("COUNTRY", f.countries), ("SITEID", f.sites), ("ONSET", f.onsets)):
            if values and col in frame.columns:
                keep &= frame[col].isin(values)
        return keep

    def _subset(self, name: str, frame: pd.DataFrame, adsl: pd.DataFrame | None = None) -> pd.DataFrame:
        if name in ("adsl", "screening"):
            frame = frame[self._keep(frame)]
            if name == "screening" and self._filters.onsets:  # onset is known when randomised only
                subjects = self.table("adsl") if adsl is None else adsl[self._keep(adsl)]
                ids = set(subjects["USUBJID"])
                frame = frame[frame["USUBJID"].isna() | frame["USUBJID"].isin(ids)]
        elif "USUBJID" in frame.columns:
            frame = frame[frame["USUBJID"].isin(set(self.table("adsl")["USUBJID"]))]
        return frame.reset_index(drop=True)
