"""Tables beyond the named registry that a page shows: thin adapters from a view to one analysis
function each (no statistics here). Cached like figures via ``state.get_result``."""
from __future__ import annotations

import pandas as pd

from analysis.tables import get_adsl, get_bds


def _groups(view):
    return view.group_col, (tuple(view.arm_levels) if view.group_col else None)


def _subject_groups(view):
    if not view.group_col:
        return None
    adsl = get_adsl(view)
    return dict(zip(adsl["USUBJID"], adsl[view.group_col]))


def _by_visit_for_each(view, paramcds, label: str) -> pd.DataFrame:
    """Mean score and change by visit for each PARAMCD, derived once per view (table and figure
    share it). Only the columns the summary uses are read, and the rows are split by PARAMCD in
    one pass (a 20,000-subject ADQS has ~3 million item rows: 4.5 s -> about 1 s)."""
    from analysis.tables import view_memo
    return view_memo(view, f"by_visit_{label}", lambda: _derive_by_visit_for_each(view, paramcds, label))


def _derive_by_visit_for_each(view, paramcds, label: str) -> pd.DataFrame:
    from analysis.alsfrs import summarize_alsfrs_by_visit
    group_col, groups = _groups(view)
    adqs = get_bds(view, view.study.functional_dataset, paramcds=paramcds,
                   columns=["AVISITN", "AVISIT", "ADY", "AVAL", "CHG", "BASE", "ABLFL", group_col or ""])
    by_code = dict(tuple(adqs.groupby("PARAMCD", sort=False, observed=True)))
    parts = [summarize_alsfrs_by_visit(by_code[p], paramcd=p, group_col=group_col, groups=groups)
             .assign(**{label: p}) for p in paramcds if p in by_code]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out[[label] + [c for c in out.columns if c != label]] if len(out) else out


def tbl_alsfrs_domains(view) -> pd.DataFrame:
    """Mean change from baseline by visit for each ALSFRS-R domain."""
    return _by_visit_for_each(view, view.study.functional_domains, "domain")


def tbl_alsfrs_items(view) -> pd.DataFrame:
    """Mean score and change from baseline by visit for each ALSFRS-R item (5a and 5b apart:
    each subject answers one of them, by gastrostomy status)."""
    return _by_visit_for_each(view, view.study.functional_items, "item")


STAGINGS = ("derive_kings_stage", "derive_mitos_stage")


def _stages(view, derive_name: str) -> pd.DataFrame:
    """Stage distribution by visit, derived once per view (the table and its figure share it);
    King's and MiToS are derived together from one read of the items (at 20,000 subjects the
    read is ~1 s of each)."""
    from analysis.tables import view_memo
    both = view_memo(view, "stages", lambda: _derive_stages(view))
    return both[both["_staging"] == derive_name].drop(columns="_staging").reset_index(drop=True)


def _derive_stages(view) -> pd.DataFrame:
    """King's and MiToS distributions stacked (column ``_staging``: the derivation's name)."""
    from analysis import alsfrs
    study = view.study
    adqs = get_bds(view, study.functional_dataset, paramcds=study.functional_items,
                   columns=["AVISITN", "AVISIT", "ADT", "ADY", "AVAL", "ABLFL"] + [view.group_col or ""])
    adsl = get_adsl(view)
    keep = ["USUBJID", "DTHDT", "RANDDT"] + ([view.group_col] if view.group_col else [])
    deaths = adsl[[c for c in keep if c in adsl.columns]]
    deaths = deaths[deaths["DTHDT"].notna()] if "DTHDT" in deaths.columns else None
    groups = tuple(view.arm_levels) if view.group_col else None
    return pd.concat([alsfrs.summarize_stages(getattr(alsfrs, name)(adqs, deaths=deaths, group_col=view.group_col),
                                              group_col=view.group_col, subject_groups=_subject_groups(view),
                                              groups=groups).assign(_staging=name)
                      for name in STAGINGS], ignore_index=True)


def tbl_kings(view) -> pd.DataFrame:
    """King's stage distribution by visit (derived from the items)."""
    return _stages(view, "derive_kings_stage")


def tbl_mitos(view) -> pd.DataFrame:
    """MiToS stage distribution by visit (derived from the items)."""
    return _stages(view, "derive_mitos_stage")


def tbl_slopes(view) -> pd.DataFrame:
    """ALSFRS-R total slope (points/month) from the linear mixed model, per group (pooled when
    blinded)."""
    from analysis.alsfrs import fit_alsfrs_slopes
    study = view.study
    group_col, groups = _groups(view)
    adqs = get_bds(view, study.functional_dataset, paramcds=[study.functional_total])
    return fit_alsfrs_slopes(adqs, group_col=group_col, groups=groups, paramcd=study.functional_total).slopes
