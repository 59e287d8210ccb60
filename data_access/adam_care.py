"""A sponsor's concomitant-care and protocol-deviation datasets in an ADaM import (issue 14).

``map_care_datasets`` (called by ``data_access.adam.import_adam`` before the arm is split off, so
the arm scan covers these datasets like every other) finds them in the delivery through the study
file and gives them the snapshot's names and the variables of the data contract
(``data_access/DATASETS.md``: adcm, addv). A delivery without them imports as before.

Study file (all optional)::

    [datasets]
    concomitant_care = "cm"          # file stem (default: adcm, else SDTM cm)
    deviations = "dv"                # file stem (default: addv, else SDTM dv)

    [concomitant_care]               # regular expressions over CMTRT, CMDECOD, CMINDC, CMCAT
    niv = "(?i)non.?invasive ventilation|bipap"
    pav = "(?i)permanent assisted ventilation"
    gastrostomy = "(?i)gastrostom|\\bPEG\\b"
    tracheostomy = "(?i)tracheostom"
    riluzole = "(?i)riluzol"

    [deviations]
    important_column = "DVSCAT"
    important_values = ["MAJOR"]
"""
from __future__ import annotations

import warnings

import pandas as pd

from data_access.study import Study

# the optional datasets of concomitant care and protocol deviations (issue 14): where a sponsor's
# delivery may hold them (file stems, first found wins; ``[datasets]`` of the study file overrides)
CARE_DATASET_NAMES = {"adcm": ("adcm", "cm"), "addv": ("addv", "dv")}
CARE_PATTERNS = {     # CARECD from the sponsor's terms (``[concomitant_care]`` overrides), in this order
    "TRACH": r"(?i)trach[eo]ostom|invasive (?:mechanical )?ventilation via",
    "PAV": r"(?i)permanent assisted ventilation|\bPAV\b|22 ?h",
    "NIV": r"(?i)non.?invasive ventilation|\bNIV\b|\bNIPPV\b|bi.?pap|\bBPAP\b",
    "GASTRO": r"(?i)gastrostom|\bPEG\b|\bRIG\b|\bPRG\b",
    "RILUZOLE": r"(?i)riluzol|rilutek|tiglutik|teglutik",
}
IMPORTANT_VALUES = ("Y", "YES", "MAJOR", "IMPORTANT", "CRITICAL")


def map_care_datasets(datasets: dict[str, pd.DataFrame], labels: dict, study: Study
                      ) -> tuple[dict[str, pd.DataFrame], dict]:
    """The sponsor's concomitant-care and deviation datasets under the snapshot's names ``adcm``
    and ``addv``, with the variables the data contract needs derived where the delivery lacks them.

    Which dataset: ``[datasets] concomitant_care`` / ``deviations`` of the study file (a file stem,
    e.g. ``"cm"`` or ``"pdev"``), else ``adcm`` or SDTM ``cm``, ``addv`` or SDTM ``dv``. Absent:
    nothing is made up (views then have no such dataset). Derived when missing:

    - ASTDT / AENDT from SDTM ``--STDTC`` / ``--ENDTC`` (full ISO dates; a partial one stays as
      text in ASTDTC for validation to report as ``partial_date``);
    - adcm CARECD (NIV, PAV, GASTRO, TRACH, RILUZOLE, MED) by searching CMDECOD then CMTRT with
      the regular expressions of ``[concomitant_care]`` (keys niv, pav, gastrostomy,
      tracheostomy, riluzole; defaults ``CARE_PATTERNS``);
    - addv DVIMPFL (``Y`` important, ``N`` minor) from ``[deviations] important_column`` and
      ``important_values`` (default: the first of DVSCAT, DVCAT, DVSEV holding one of Y, YES,
      MAJOR, IMPORTANT, CRITICAL); a listed value gives ``Y``, any other ``N``, a missing one
      stays missing. Without such a column DVIMPFL is absent (outputs cannot tell important
      from minor).
    Returns (datasets, labels) with the renamed entries."""
    conf = study.raw.get("datasets", {}) or {}
    out, labels = dict(datasets), dict(labels)
    for target, key in (("adcm", "concomitant_care"), ("addv", "deviations")):
        names = [str(conf[key]).lower()] if conf.get(key) else list(CARE_DATASET_NAMES[target])
        source = next((n for n in names if n in out), None)
        if source is None:
            continue
        df = out.pop(source).copy()
        labels[target] = labels.pop(source, {})
        prefix = "CM" if target == "adcm" else "DV"
        for adam_col, sdtm in (("ASTDT", f"{prefix}STDTC"), ("AENDT", f"{prefix}ENDTC")):
            if adam_col not in df and sdtm in df:
                from data_access.schemas import parse_dates
                text = df[sdtm].astype(object).where(df[sdtm].notna(), None)
                df[adam_col] = parse_dates(text)
                df[adam_col + "C"] = text.where(df[adam_col].isna() & text.notna(), None)
        out[target] = _care_codes(df, study) if target == "adcm" else _importance(df, study)
    return out, labels


def _care_codes(cm: pd.DataFrame, study: Study) -> pd.DataFrame:
    if "CARECD" in cm:
        return cm
    conf = study.raw.get("concomitant_care", {}) or {}
    keys = {"TRACH": "tracheostomy", "PAV": "pav", "NIV": "niv", "GASTRO": "gastrostomy", "RILUZOLE": "riluzole"}
    text = pd.Series("", index=cm.index, dtype="string")
    for col in ("CMTRT", "CMDECOD", "CMINDC", "CMCAT"):
        if col in cm:
            text = text + " " + cm[col].astype("string").fillna("")
    code = pd.Series("MED", index=cm.index, dtype=object)
    for cd in ("RILUZOLE", "GASTRO", "NIV", "PAV", "TRACH"):            # later wins: most specific last
        with warnings.catch_warnings():                                  # a study's pattern may have groups
            warnings.simplefilter("ignore", UserWarning)
            hit = text.str.contains(conf.get(keys[cd], CARE_PATTERNS[cd]), regex=True).fillna(False)
        code[hit.to_numpy(dtype=bool)] = cd
    cm["CARECD"] = code
    return cm


def _importance(dv: pd.DataFrame, study: Study) -> pd.DataFrame:
    if "DVIMPFL" in dv:
        return dv
    conf = study.raw.get("deviations", {}) or {}
    values = {str(v).strip().upper() for v in conf.get("important_values", IMPORTANT_VALUES)}
    col = conf.get("important_column")
    if col is None:
        col = next((c for c in ("DVSCAT", "DVCAT", "DVSEV") if c in dv and
                    dv[c].astype("string").str.strip().str.upper().isin(values).any()), None)
    if col is None or col not in dv:
        return dv
    raw = dv[col].astype("string").str.strip().str.upper()
    dv["DVIMPFL"] = raw.isin(values).map({True: "Y", False: "N"}).astype(object).where(raw.notna(), None)
    return dv
