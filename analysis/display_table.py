"""Display tables: the display form of a machine table by an output's ``DisplaySpec`` (human
headers with units, estimates with their CI, p-values, percentages, ``not reached``, ``—``,
dates as YYYY-MM-DD, study labels, arms side by side with their N). The values are formatted by
:mod:`analysis.display`; callers reach this through ``analysis.outputs.display_table``.

Pure: no Streamlit, no I/O. The machine table is left untouched (the CSV for QC double
programming)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.display import (DATASET_LABELS, MISSING, _format_date, _format_text, _missing,
                              format_ci, format_header, format_median, format_method, format_number, format_p,
                              format_percent)

__all__ = ["DisplaySpec", "format_table", "ALL_PARTICIPANTS"]

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
    ``first``: columns moved to the front; ``blank_repeats``: columns whose value is shown once,
    on the first of the rows that repeat it (a system organ class over its preferred terms).

    Arms side by side (a by-arm machine table has one row per ``group``): ``arms="cell"`` puts
    the ``index`` columns as rows and one column per arm holding ``cell`` (a template over the
    formatted columns, e.g. ``"{n_subjects} ({percent}) [{n_events}]"``, described for the
    footnote by ``cell_label``); ``arms="rows"`` puts each value column as a row (``index``
    columns first) and one column per arm. Arm headers carry the arm's N in the output's
    population ("Low-dose IL-2 (N=110)"); a pooled table has one column, "All participants".
    ``spread`` names the column spread over the columns (default ``group``, the arm);
    ``hide_empty``: columns left out when no row has a value (a notes column);
    ``hide_constant``: columns left out when every row has the same value (one comparison: the
    footnote names it); ``compose``: (column, template, header) triples: the column becomes the
    template over the formatted columns (``"{n_exp}/{N_exp} ({risk_exp})"``), and the other
    columns the template names are left out."""
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
    blank_repeats: tuple = ()
    arms: str | None = None
    index: tuple = ()
    cell: str | None = None
    cell_label: str | None = None
    spread: str = "group"
    hide_empty: tuple = ()
    hide_constant: tuple = ()
    compose: tuple = ()


# decimals of columns that mean the same in every table (a table's own ``digits`` come first)
DEFAULT_DIGITS = {"day": 0}


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


def _map_unique(s: pd.Series, fn) -> pd.Series:
    """``s.map(fn)``, calling ``fn`` once per distinct value (missing values: once, with the first
    missing value as ``map`` would pass it). Listings repeat their values (dates, statuses, visit
    names): a 20,000-subject visit listing has 440,000 rows but a few thousand distinct values,
    so this formats it in a fraction of the time. Unhashable values fall back to ``map``."""
    if len(s) < 64:
        return s.map(fn)
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError:                        # unhashable cells (lists)
        return s.map(fn)
    values = [fn(u) for u in uniques]
    missing = codes < 0
    if missing.any():
        values.append(fn(s[missing].iloc[0]))
        codes = np.where(missing, len(values) - 1, codes)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return pd.Series(out[codes], index=s.index, name=s.name)


def _format_column(s: pd.Series, col: str, spec: DisplaySpec) -> pd.Series:
    if col in spec.p_values:
        return _map_unique(s, format_p)
    if col in spec.proportions:
        return _map_unique(s, lambda v: format_percent(v, spec.digits.get(col, 1), proportion=True))
    if col in spec.percents:
        return _map_unique(s, lambda v: format_percent(v, spec.digits.get(col, 1)))
    if pd.api.types.is_datetime64_any_dtype(s):
        return _map_unique(s, _format_date)
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        return _map_unique(s, lambda v: "yes" if v else "no")
    if pd.api.types.is_integer_dtype(s):
        return s if not s.isna().any() else _map_unique(s.astype(object), format_number)   # Int64 with <NA>: "—"
    if pd.api.types.is_float_dtype(s):
        digits = spec.digits.get(col, DEFAULT_DIGITS.get(col))
        present = s.dropna()
        if digits is None and len(present) and np.allclose(present, present.round()):
            return _map_unique(s, lambda v: MISSING if _missing(v) else str(int(round(v))))
        return _map_unique(s, lambda v: format_number(v, 2 if digits is None else digits))
    return _map_unique(s, lambda v: _format_text(v, yes_no=col in spec.yes_no, sentence=col in spec.sentence_case))


def _merge_ci(out: pd.DataFrame, spec: DisplaySpec, landmark) -> dict:
    """Merge each (estimate, lower, upper) triple present into one column in place of the
    estimate; returns the merged columns' headers."""
    headers = {}
    for est, lo, hi, header, digits, scale in spec.ci:
        if not {est, lo, hi} <= set(out.columns):
            continue
        fmt = (lambda e, l, h: format_median(e, l, h, digits)) if est == "median" else \
              (lambda e, l, h, d=digits, k=scale: format_ci(e, l, h, d, k))
        nobody = out["n"].eq(0).tolist() if "n" in out.columns else [False] * len(out)   # no one: no median
        out[est] = [MISSING if none else fmt(e, l, h) for e, l, h, none in zip(out[est], out[lo], out[hi], nobody)]
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


ALL_PARTICIPANTS = "All participants"


def format_table(dataset: pd.DataFrame, spec: DisplaySpec | None = None, view_or_study=None,
                 arm_counts: dict | None = None, baseline: bool = False) -> pd.DataFrame:
    """The display table of a machine table, by the rules of ``spec`` (the output's
    ``display``; ``analysis.outputs.display_table`` is what callers use).

    Parameters
    ----------
    dataset : pandas.DataFrame
        The machine table (not modified). A table already in display form passes through with
        its headers and values unchanged.
    spec : DisplaySpec, optional
        The output's display rules (default: only the shared rules).
    view_or_study : view or Study, optional
        For the landmark day, the variable labels a delivery carries and the study's labels.
    arm_counts : dict, optional
        N per group (arm, "Total", "All") in the output's population, for the arm headers.
    baseline : bool
        The table is Table 1's long form (``summarize_baseline``): laid out by ``format_table1``.

    Returns
    -------
    pandas.DataFrame
        Human headers; every value a display string except whole-number columns of a table not
        laid out by arm (kept as integers so they still sort and add up). No ``None``, ``NaT`` or
        ``nan``; a pooled table's one group is headed "All participants" (by arm) or dropped.
    """
    if not isinstance(dataset, pd.DataFrame):
        raise TypeError(f"format_table needs a DataFrame, got {type(dataset).__name__}")
    spec = spec or DisplaySpec()
    study = _study_of(view_or_study)
    variables = _variable_labels(view_or_study)
    if baseline and {"variable", "level", "statistic", "group", "value"} <= set(dataset.columns):
        from analysis.baseline import format_table1
        dataset = format_table1(dataset.assign(group=dataset["group"].replace({"All": ALL_PARTICIPANTS})),
                                labels=variables)
    out = dataset.copy()
    landmark = _landmark(out, study)
    by_arm = bool(spec.arms) and spec.spread in out.columns and len(out)
    if not by_arm and "group" in out.columns and len(out) and out["group"].astype(str).eq("All").all():
        out = out.drop(columns="group")            # pooled: the one group says nothing
    out = out.drop(columns=[c for c in spec.drop if c in out.columns and
                            not (c == "look" and "label" not in out.columns)])
    headers = _merge_ci(out, spec, landmark)
    if "method" in out.columns and study is not None:       # stratified methods name the strata
        out["method"] = out["method"].map(lambda v: MISSING if _missing(v) else format_method(v, study))
    for col in out.columns:
        if col in headers or (by_arm and col == spec.spread):
            continue
        if col in spec.codes:
            out[col] = out[col].map(lambda v: MISSING if _missing(v) else variables.get(str(v), str(v)))
        elif col == "dataset" and out[col].dtype == object:
            out[col] = out[col].map(lambda v: MISSING if _missing(v) else DATASET_LABELS.get(str(v), str(v)))
        elif col == "pt":
            out[col] = out[col].map(lambda v: "(any)" if v == "All PTs" else _format_text(v))
        else:
            out[col] = _format_column(out[col], col, spec)
    for col, template, header in spec.compose:
        names = re.findall(r"\{(\w+)\}", template)
        if set(names) <= set(out.columns):
            out[col] = [template.format(**dict(zip(names, r))) for r in out[names].itertuples(index=False)]
            out = out.drop(columns=[c for c in names if c != col])
            headers[col] = header
    out = out.drop(columns=[c for c in spec.hide_empty if c in out.columns
                            and out[c].map(lambda v: str(v).strip() in ("", MISSING)).all()]
                   + [c for c in spec.hide_constant if c in out.columns and len(out) and out[c].nunique() == 1])
    labels = {**spec.labels, **headers}
    if by_arm:
        out = _arms_side_by_side(out, spec, labels, landmark, arm_counts or {})
    out = out[[c for c in spec.first if c in out.columns] + [c for c in out.columns if c not in spec.first]]
    _blank_repeats(out, [c for c in spec.blank_repeats if c in out.columns])
    out.columns = [format_header(c, labels, landmark) for c in out.columns]
    return out.reset_index(drop=True)


def _blank_repeats(out: pd.DataFrame, columns: list) -> None:
    """Show each value of a hierarchy of columns (SOC, then PT) once: a cell is blanked when it and
    every column above it in the hierarchy repeat the row before."""
    same = pd.Series(True, index=out.index)
    original = out[columns].copy()
    for col in columns:
        same &= original[col].eq(original[col].shift())
        out.loc[same, col] = ""


def _arm_header(group, arm_counts: dict) -> str:
    name = ALL_PARTICIPANTS if str(group) == "All" else str(group)
    n = arm_counts.get(group)
    return name if n is None else f"{name} (N={n})"


def _arms_side_by_side(out: pd.DataFrame, spec: DisplaySpec, labels: dict, landmark, arm_counts: dict) -> pd.DataFrame:
    """One column per arm (in the machine table's order): ``cell`` per index row, or (``arms="rows"``)
    each value column as a row named by its header. Cells no arm has are ``—``."""
    index = [c for c in spec.index if c in out.columns]
    spread = spec.spread
    groups = list(dict.fromkeys(out[spread]))
    values = [c for c in out.columns if c not in index and c != spread]
    d = out.copy()
    if spec.arms == "rows":
        d = d.melt(id_vars=index + [spread], value_vars=values, var_name="_statistic", value_name="_cell")
        d["_statistic"] = d["_statistic"].map(lambda c: format_header(c, labels, landmark))
        rows = index + ["_statistic"]
    else:
        template = spec.cell or " ".join("{" + c + "}" for c in values)
        d["_cell"] = [template.format(**{k: ("" if _missing(v) else v) for k, v in zip(d.columns, r)})
                      for r in d.itertuples(index=False, name=None)]
        rows = index
    keys = d.drop_duplicates(rows)[rows]
    if spec.arms == "rows" and index:          # each index value's statistics together, in column order
        order = {k: i for i, k in enumerate(dict.fromkeys(d["_statistic"]))}
        keys = keys.assign(_first=keys.groupby(index, sort=False).ngroup(),
                           _stat=keys["_statistic"].map(order)).sort_values(["_first", "_stat"])[rows]
    wide = d.pivot_table(index=rows, columns=spread, values="_cell", aggfunc="first", sort=False)
    wide = keys.merge(wide.reset_index(), on=rows, how="left")
    wide = wide[rows + [g for g in groups if g in wide.columns]]
    wide.columns = [c if c in rows or spread != "group" else _arm_header(c, arm_counts) for c in wide.columns]
    wide = wide.rename(columns={"_statistic": "Statistic"}).fillna(MISSING)
    for c in wide.columns[len(rows):]:
        wide[c] = wide[c].map(lambda v: MISSING if str(v).strip() in ("", "nan") else str(v))   # one type
    return wide
