"""Filters as part of an output's input: the sites a (dashboard-filtered) view covers, the plan
and target scaled to them, and the footnote saying how an output follows the filter (applied
fully, or trial-wide and which part)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------- filters: the sites selected
# A dashboard view filtered in the sidebar says what it keeps through three attributes (an
# unfiltered view, the CLI's and the reports', has none of them): ``selected_sites`` (site ids,
# None when no site is restricted), ``filter_label`` ("UK", "FR08 · Bulbar") and
# ``filter_not_by_site`` (the part of the filter no per-site plan can follow: "onset Bulbar").
@dataclass(frozen=True)
class SiteSelection:
    """The sites a view covers and the recruitment plan's share of them.

    ``sites``: the study's sites selected (every site when the filter restricts none);
    ``share``: their share of the sum of the site targets (1.0 for every site); ``target``: the
    planned sample size scaled by ``share``; ``label``: the filter in words, None unfiltered;
    ``restricted``: the filter restricts sites; ``not_by_site``: see above."""
    sites: tuple
    share: float
    target: int
    planned_n: int
    label: str | None = None
    restricted: bool = False
    not_by_site: str | None = None

    @property
    def site_targets(self) -> int:
        return sum(int(s.target or 0) for s in self.sites)


def _half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def site_selection(view) -> SiteSelection:
    """The sites a (filtered) view covers, their share of the site targets and the planned N
    scaled by it: the planned N times the selected sites' targets over all sites' targets
    (their number over all sites' when the study gives no targets)."""
    study = view.study
    everyone = tuple(study.sites)
    ids = getattr(view, "selected_sites", None)
    label, other = getattr(view, "filter_label", None), getattr(view, "filter_not_by_site", None)
    if ids is None:
        return SiteSelection(everyone, 1.0, int(study.planned_n), int(study.planned_n), label, False, other)
    chosen = tuple(s for s in everyone if s.id in set(ids))
    total = sum(int(s.target or 0) for s in everyone)
    share = (sum(int(s.target or 0) for s in chosen) / total if total
             else len(chosen) / len(everyone) if everyone else 0.0)
    return SiteSelection(chosen, share, _half_up(study.planned_n * share), int(study.planned_n), label, True, other)


def scaled_plan(plan, share: float) -> tuple[tuple[str, int], ...]:
    """The recruitment plan (month, cumulative) with every cumulative number scaled by ``share``."""
    return tuple((month, _half_up(cumulative * share)) for month, cumulative in plan)


def filter_note(name: str, view) -> str | None:
    """How a recruitment output follows the view's filter, for its caption (None unfiltered):
    applied fully (plan and target scaled to the chosen sites, only those sites listed) or
    trial-wide, saying which part."""
    sel = site_selection(view)
    if sel.label is None:
        return None
    n_all = len(view.study.sites)
    other = (f" The {sel.not_by_site} filter applies to the counts only: the plan and the site targets "
             "have no split by onset." if sel.not_by_site else "")
    if name in ("plan", "projection"):
        if not sel.restricted:
            return (f"Plan and target are trial-wide (planned N {sel.planned_n}): the plan has no split by "
                    f"onset, so the actual curve ({sel.label}) is set against the whole trial's plan.")
        total = sum(int(s.target or 0) for s in view.study.sites)
        share = (f"these sites' share of the site targets ({sel.site_targets} of {total}, {sel.share:.1%})"
                 if total else f"these sites' share of the sites ({sel.share:.1%})")
        what = ("Projected to the target" if name == "projection" else "Plan and target scaled to the selection")
        return (f"{what}. Target for {sel.label} ({len(sel.sites)} of {n_all} sites): {sel.target} of the "
                f"trial's {sel.planned_n}, {share}; the plan curve is the trial's plan scaled by the same "
                "share." + other)
    if name in ("enrolment", "activation"):
        if not sel.restricted:
            return (f"Every site; counts are {sel.label} only, targets are the sites' whole targets "
                    "(trial-wide: no split by onset).")
        return f"{sel.label} sites only ({len(sel.sites)} of {n_all}), each against its own target." + other
    if name == "changes":
        return (f"{sel.label} only, except sites activated: counted over the whole trial (trial-wide).")
    return f"{sel.label} only."

