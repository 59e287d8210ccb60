"""What reveals the arm in clinical data: arm variables by name and columns whose values give the arm.

By name: ``ARM_VARIABLE`` (the standard ADaM/SDTM arm variables) and ``is_arm_variable`` (those
or the study's ``[columns] arm`` / ``armcd``). By value: ``find_arm_revealing_columns`` scans
every column of every dataset against an allocation and returns ``ArmFinding`` rows (rules
``arm_values`` and ``determines_arm``). ``adam.split_allocation_report`` (``mirocals import``),
``snapshot.write_snapshot`` and ``validate_snapshot`` with an allocation run the scan.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_access.study import Study

# ADaM/SDTM variables that reveal the allocation: they live in the allocation part only.
ARM_VARIABLE = re.compile(r"^(ARM|ARMCD|ACTARM|ACTARMCD|ARMN|ARMNRS|ACTARMUD|TRT\d\d[PA]N?|TRTP|TRTPN|"
                          r"TRTA|TRTAN|TRTSEQP|TRTSEQA|TRTSEQPN|TRTSEQAN|RANDNO|RANDID|MASKCD)$")

DETERMINES_PURITY = 0.98      # share of (subject, value) pairs whose value sits in the subject's arm
DETERMINES_COVERAGE = 0.5     # share of a dataset's subjects the shared values must cover
TOKEN_AGREEMENT = 0.9         # share of arm-token values that name the subject's own arm
TOKEN_MIN_SUBJECTS = 5        # ... over at least this many subjects (fewer: chance, e.g. codes "A"/"B")
SAMPLE_SUBJECTS = 2000        # large trials: a column clearly mixed on the first 2000 subjects
SAMPLE_PURITY = 0.9           # (purity below 0.9 over 200+ pairs) is not scanned in full


@dataclass(frozen=True)
class ArmFinding:
    """A column of a dataset that reveals the arm.

    ``rule`` is ``arm_variable`` (the study's ``[columns] arm``/``armcd`` or a standard ADaM arm
    variable name), ``arm_values`` (it holds the arm codes, labels or masking codes of the
    subjects' own arms) or ``determines_arm`` (its values, shared by several subjects, each
    occur in one arm only: knowing the value gives the arm). ``detail`` says how strongly, in
    counts, never with the arm values themselves."""
    dataset: str
    column: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.dataset}.{self.column} ({self.rule}: {self.detail})"


def _norm_text(v) -> str:
    return " ".join(str(v).split()).casefold()


def _arm_tokens(allocation: pd.DataFrame, study: Study) -> dict[str, str]:
    """normalised arm code / label / masking code -> ARMCD."""
    tokens: dict[str, str] = {}
    masked = list(study.masked_labels)
    for i, (code, label) in enumerate(zip(study.arm_codes, study.arm_labels)):
        tokens[_norm_text(code)] = str(code)
        tokens[_norm_text(label)] = str(code)
        if i < len(masked):
            tokens[_norm_text(masked[i])] = str(code)
    for col in ("ARM", "MASKCD"):
        if col in allocation.columns and "ARMCD" in allocation.columns:
            pairs = allocation[[col, "ARMCD"]].dropna().drop_duplicates()
            for value, code in pairs.itertuples(index=False):
                tokens.setdefault(_norm_text(value), str(code))
    return tokens


def find_arm_revealing_columns(datasets: dict[str, pd.DataFrame], allocation: pd.DataFrame, study: Study,
                               min_subjects: int | None = None) -> list[ArmFinding]:
    """Every column, in every dataset with the subject variable, whose values reveal the arm.

    A column is flagged when, over the subjects in ``allocation`` (USUBJID, ARMCD, optionally
    ARM and MASKCD):

    - ``arm_values``: its values that equal an arm code, label or masking code (case- and
      space-insensitive), held by at least 5 subjects, name the subject's own arm for at least
      90 % of those rows; or
    - ``determines_arm``: its values determine the arm. Per subject the column's set of
      non-missing values is taken (a subject whose values are all missing has the value
      "missing"); only values held by at least two subjects are informative (a value held by one
      subject says nothing: an identifier such as USUBJID, a kit number or a date is never
      flagged for being unique per subject). The column is flagged when the informative values
      cover at least ``min_subjects`` subjects (``[blinding] scan_min_subjects``, default 20)
      and half of the dataset's subjects, span two arms or more, number two or more, and at
      least 98 % of (subject, value) pairs sit in the value's majority arm. A constant column
      (one value in every arm) is therefore not flagged; a two-level column with the arm's
      split is (it is the arm); SEX, COUNTRY, STRATUM, ONSET, sites, dates and measurements,
      which occur in every arm, are not.

    The subject variable itself is not scanned. In a dataset of more than 4,000 subjects a column
    whose purity over the first 2,000 subjects (200+ pairs) is below 90 % is clearly mixed and is
    not scanned in full (20,000 simulated subjects: 1.8 s for every column of every dataset).
    Returns findings in dataset, column order.
    """
    subj = study.col("subject")
    min_subjects = int(study.scan_min_subjects if min_subjects is None else min_subjects)
    if allocation is None or "USUBJID" not in allocation.columns or "ARMCD" not in allocation.columns:
        raise ValueError("the arm scan needs an allocation with USUBJID and ARMCD")
    alloc = allocation.dropna(subset=["USUBJID", "ARMCD"]).drop_duplicates("USUBJID")
    arm_codes, arm_names = pd.factorize(alloc["ARMCD"].astype(str))
    arm_of = pd.Series(arm_codes, index=alloc["USUBJID"].astype(str).to_numpy())
    n_arms = len(arm_names)
    tokens = _arm_tokens(alloc, study)
    token_arm = {t: int(np.flatnonzero(arm_names == c)[0]) for t, c in tokens.items() if c in set(arm_names)}
    findings: list[ArmFinding] = []
    for name in sorted(datasets):
        df = datasets[name]
        if not isinstance(df, pd.DataFrame) or subj not in df.columns or not len(df):
            continue
        row_arm = df[subj].astype("string").map(arm_of)
        keep = row_arm.notna().to_numpy()
        if not keep.any():
            continue
        arms = row_arm.to_numpy()[keep].astype(np.int64)
        scodes, subjects = pd.factorize(df[subj].astype("string")[keep])
        n_subj = len(subjects)
        subj_arm = np.zeros(n_subj, dtype=np.int64)
        subj_arm[scodes] = arms
        scodes = np.asarray(scodes, dtype=np.int64)
        sample = scodes < SAMPLE_SUBJECTS if n_subj > 2 * SAMPLE_SUBJECTS else None
        for col in df.columns:
            if col == subj:
                continue
            s = df[col] if keep.all() else df[col][keep]
            is_text = (s.dtype == object or pd.api.types.is_string_dtype(s)
                       or isinstance(s.dtype, pd.CategoricalDtype))
            raw_codes = None
            if is_text:
                raw_codes, uniques = pd.factorize(s, use_na_sentinel=True)
                finding = _arm_values(name, col, np.asarray(raw_codes, dtype=np.int64), uniques, arms, token_arm,
                                      scodes)
                if finding:
                    findings.append(finding)
                    continue
            if n_subj < min_subjects or n_arms < 2:
                continue
            if raw_codes is not None and not len(uniques):
                v = np.asarray(raw_codes, dtype=np.int64)
            elif raw_codes is not None:    # text: normalise the distinct values only
                norm, _ = pd.factorize(pd.Index([_norm_text(u) for u in uniques]))
                raw_codes = np.asarray(raw_codes, dtype=np.int64)
                v = np.where(raw_codes >= 0, np.asarray(norm, dtype=np.int64)[np.maximum(raw_codes, 0)], -1)
            else:
                v = np.asarray(pd.factorize(s, use_na_sentinel=True)[0], dtype=np.int64)
            if sample is not None:         # a clearly mixed sample of subjects settles most columns
                stats = _determines_stats(v[sample], scodes[sample], SAMPLE_SUBJECTS, subj_arm[:SAMPLE_SUBJECTS], n_arms)
                if stats is not None and stats["pairs"] >= 200 and stats["purity"] < SAMPLE_PURITY:
                    continue
            finding = _determines(name, col, v, scodes, n_subj, subj_arm, n_arms, min_subjects)
            if finding:
                findings.append(finding)
    return findings


def _arm_values(name, col, codes: np.ndarray, uniques, arms: np.ndarray, token_arm: dict,
                scodes: np.ndarray) -> ArmFinding | None:
    if not len(uniques):
        return None
    named = np.array([token_arm.get(_norm_text(u), -1) for u in uniques], dtype=np.int64)
    if not (named >= 0).any():
        return None
    row_named = np.where(codes >= 0, named[np.maximum(codes, 0)], -1)
    hit = row_named >= 0
    if len(np.unique(scodes[hit])) < TOKEN_MIN_SUBJECTS:
        return None
    agree = float((row_named[hit] == arms[hit]).mean())
    if agree < TOKEN_AGREEMENT:
        return None
    return ArmFinding(name, str(col), "arm_values",
                      f"{int(hit.sum())} value(s) are arm codes or labels, {agree:.0%} of them the subject's own arm")


def _distinct(keys: np.ndarray, size: int) -> np.ndarray:
    """The distinct non-negative int64 ``keys`` (< ``size``), without sorting when it can."""
    if size <= 30_000_000:
        mark = np.zeros(size, dtype=bool)
        mark[keys] = True
        return np.flatnonzero(mark)
    return pd.unique(keys)


def _determines_stats(v: np.ndarray, scodes: np.ndarray, n_subj: int, subj_arm: np.ndarray, n_arms: int):
    """Coverage and purity of a column's informative values (held by 2+ subjects)."""
    present = v >= 0
    n_values = int(v.max()) + 1 if present.any() else 0
    width = n_values + 1                          # code n_values: the "all missing" pseudo-value
    pairs = _distinct(scodes[present] * width + v[present], n_subj * width)
    ps, pv = pairs // width, pairs % width
    has_value = np.zeros(n_subj, dtype=bool)
    has_value[ps] = True
    none = np.flatnonzero(~has_value)
    ps = np.concatenate([ps, none])
    pv = np.concatenate([pv, np.full(len(none), n_values, dtype=np.int64)])
    support = np.bincount(pv, minlength=width)
    informative = support[pv] >= 2
    ps, pv = ps[informative], pv[informative]
    if not len(ps):
        return None
    table = np.bincount(pv * n_arms + subj_arm[ps], minlength=width * n_arms).reshape(-1, n_arms)
    used = table.sum(axis=1) > 0
    return {"covered": int(np.count_nonzero(np.bincount(ps, minlength=n_subj))), "values": int(used.sum()),
            "arms": int((table.sum(axis=0) > 0).sum()), "pairs": int(len(ps)),
            "purity": float(table.max(axis=1).sum() / table.sum())}


def _determines(name, col, v: np.ndarray, scodes: np.ndarray, n_subj: int, subj_arm: np.ndarray, n_arms: int,
                min_subjects: int) -> ArmFinding | None:
    stats = _determines_stats(v, scodes, n_subj, subj_arm, n_arms)
    if stats is None:
        return None
    covered = stats["covered"]
    if covered < min_subjects or covered < DETERMINES_COVERAGE * n_subj:
        return None
    if stats["values"] < 2 or stats["arms"] < 2 or stats["purity"] < DETERMINES_PURITY:
        return None
    return ArmFinding(name, str(col), "determines_arm",
                      f"{stats['values']} value(s) shared by {covered} of {n_subj} subjects; "
                      f"{stats['purity']:.1%} of subject-value pairs fall in a single arm")


def arm_variable_names(study: Study) -> set[str]:
    """The study's own arm variables (``[columns] arm`` and ``armcd``), upper-case."""
    return {str(study.col("arm")).upper(), str(study.columns.get("armcd", "ARMCD")).upper()}


def is_arm_variable(name: str, study: Study | None = None) -> bool:
    """Whether ``name`` is an arm variable by name: a standard ADaM/SDTM arm variable
    (``ARM_VARIABLE``) or the study's ``[columns] arm`` / ``armcd``."""
    n = str(name).upper()
    return bool(ARM_VARIABLE.match(n)) or (study is not None and n in arm_variable_names(study))
