"""Dataset schemas (pandera): the expected columns of each dataset, their kind and value checks.

Each dataset is described by a list of ``Col``. Validation runs two pandera schemas per dataset,
both lazily so that every failure is collected:

1. ``structure_schema``: required columns present (pandera ``column_in_dataframe``) and each
   present column of the right kind (check ``kind_<kind>``; text where numbers are expected is
   reported row by row when only some values are bad, for the whole column otherwise);
2. ``value_schema``: allowed codes (check ``codes``) and ranges (check ``range``), on the columns
   that passed 1, plus dataset-wide checks such as the ALSFRS-R ranges that depend on PARAMCD.

``data_access.validate`` turns the pandera failure cases into problem rows. Codes and ranges
follow ``data_access/DATASETS.md``; strata levels, arm codes, ALSFRS-R and ADTTE codes come from
the study config when one is given. An optional ``[validation]`` section of the study TOML may set
``age_range = [18, 75]`` and ``paramcd = { adlb = [...], adresp = [...] }``.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

ITEM_RE = r"^ALSFR(S\d\d|05[AB])$"
ITEMS = ("ALSFRS01", "ALSFRS02", "ALSFRS03", "ALSFRS04", "ALSFR05A", "ALSFR05B", "ALSFRS06",
         "ALSFRS07", "ALSFRS08", "ALSFRS09", "ALSFRS10", "ALSFRS11", "ALSFRS12")
DOMAIN_ITEMS = {"BULBAR": ("ALSFRS01", "ALSFRS02", "ALSFRS03"),
                "FINEMOT": ("ALSFRS04", "ALSFR05A", "ALSFR05B", "ALSFRS06"),
                "GROSSMOT": ("ALSFRS07", "ALSFRS08", "ALSFRS09"),
                "RESP": ("ALSFRS10", "ALSFRS11", "ALSFRS12")}
DOMAIN_CODES = tuple(DOMAIN_ITEMS)
TOTAL_CODE = "ALSFRST"
ALSFRS_MAX = {**{c: 4 for c in ITEMS}, **{c: 12 for c in DOMAIN_CODES}, TOTAL_CODE: 48}
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T][0-9:.]*)?$")
KIND_LABEL = {"str": "text", "num": "a number", "int": "a whole number", "date": "a date"}


@dataclass(frozen=True)
class Col:
    """One expected column: ``kind`` is "str", "num", "int" or "date"; ``codes`` the allowed
    values (rule ``invalid_code``); ``lo``/``hi`` an inclusive range (rule ``value_out_of_range``).
    A missing ``required`` column is an error, a missing optional one a warning."""

    name: str
    kind: str
    required: bool = False
    codes: tuple | None = None
    lo: float | None = None
    hi: float | None = None

    @property
    def rule(self) -> str:
        return "invalid_code" if self.codes is not None else "value_out_of_range"

    def describe(self) -> str:
        """How a failing value breaks the check, for messages ("is outside 0-4")."""
        if self.codes is not None:
            return "is not one of " + ", ".join(str(c) for c in self.codes)
        if self.lo is not None and self.hi is not None:
            return f"is outside {self.lo:g}-{self.hi:g}"
        return f"is below {self.lo:g}" if self.lo is not None else f"is above {self.hi:g}"

    def value_checks(self) -> list[pa.Check]:
        # missing values pass; checked here (ignore_na=False) so pandera does not scan every
        # column for NA twice more (at 20,000 subjects most of the validation time)
        if self.codes is not None:
            codes = list(self.codes)
            return [pa.Check(lambda s: s.isna() | s.isin(codes), ignore_na=False, name="codes")]
        if self.lo is not None or self.hi is not None:
            lo = -np.inf if self.lo is None else self.lo
            hi = np.inf if self.hi is None else self.hi
            return [pa.Check(lambda s: s.isna() | s.between(lo, hi), ignore_na=False, name="range")]
        return []


def _alsfrs_codes(study) -> tuple[str, ...]:
    items = tuple(getattr(study, "functional_items", ()) or ITEMS)
    domains = tuple(getattr(study, "functional_domains", ()) or DOMAIN_CODES)
    return items + domains + (getattr(study, "functional_total", None) or TOTAL_CODE,)


def is_mirocals(study) -> bool:
    return study is None or getattr(study, "id", "MIROCALS") == "MIROCALS"


def build_schemas(study=None) -> dict[str, list[Col]]:
    """Expected columns of every dataset (``DATASETS.md``), with codes from ``study`` if given.
    Another trial's study (an imported ADaM delivery) gets ADaM-level schemas instead
    (``build_adam_schemas``): no MIROCALS-specific variable is expected of it."""
    if not is_mirocals(study):
        return build_adam_schemas(study)
    levels = {"COUNTRY": ("UK", "France"), "ONSET": ("Bulbar", "Limb"),
              **dict(getattr(study, "strata_levels", {}) or {})}
    countries, onsets = tuple(levels["COUNTRY"]), tuple(levels["ONSET"])
    factors = tuple(getattr(study, "strata_factors", ()) or ("COUNTRY", "ONSET"))
    strata = (tuple("/".join(p) for p in itertools.product(*[levels[f] for f in factors]))
              if all(levels.get(f) for f in factors) else None)
    tte = (getattr(study, "survival_paramcd", None) or "OS", getattr(study, "composite_paramcd", None) or "DTHTRV")
    conf = (getattr(study, "raw", None) or {}).get("validation", {})
    age_lo, age_hi = conf.get("age_range", (18, 75))
    yn = ("Y", "N")
    return {
        "adsl": [
            Col("STUDYID", "str"), Col("USUBJID", "str", True), Col("SUBJID", "str"), Col("SITEID", "str", True),
            Col("COUNTRY", "str", codes=countries), Col("AGE", "int", lo=age_lo, hi=age_hi),
            Col("AGEGR1", "str", codes=("<60", ">=60")), Col("SEX", "str", codes=("M", "F")),
            Col("ONSET", "str", codes=onsets), Col("STRATUM", "str", codes=strata),
            Col("ELESCORL", "str", codes=("Possible", "Probable lab-supported", "Probable", "Definite")),
            Col("ONSETDT", "date"), Col("DIAGDT", "date"), Col("SCRNDT", "date"), Col("RANDDT", "date", True),
            Col("DIAGDLY", "num", lo=0), Col("BLALSFRS", "num", lo=0, hi=48), Col("DFS", "num", lo=0),
            Col("SVCPCT", "num", lo=0, hi=200), Col("PNFH", "num", lo=0), Col("LOGPNFH", "num"),
            Col("PNFHGR", "str", codes=("Low", "High")), Col("ITTFL", "str", codes=yn),
            Col("SAFFL", "str", codes=yn), Col("TRTSDT", "date"), Col("TRTEDT", "date"),
            Col("EOSSTT", "str", codes=("COMPLETED", "DISCONTINUED", "ONGOING")), Col("DCSREAS", "str"),
            Col("EOSDT", "date"), Col("DTHFL", "str", codes=("Y",)), Col("DTHDT", "date"), Col("LSTALVDT", "date"),
        ],
        "screening": [
            Col("SCRNID", "str", True), Col("SITEID", "str", True), Col("COUNTRY", "str", codes=countries),
            Col("SCRNDT", "date", True),
            Col("OUTCOME", "str", True, codes=("RANDOMISED", "SCREEN FAILURE", "RUN-IN DROP-OUT", "IN RUN-IN")),
            Col("REASON", "str"), Col("RUNINSDT", "date"), Col("RUNINEDT", "date"), Col("USUBJID", "str"),
        ],
        "adqs": _bds(_alsfrs_codes(study)) + [Col("ENTDT", "date")],
        "adlb": _bds(_paramcds(study, "adlb", ("TREG", "TREGPCT", "EOS", "CSFPNFH")), lo=0) + [Col("AVALU", "str")],
        "adresp": _bds(_paramcds(study, "adresp", ("SVCPCT",)), lo=0, hi=200) + [Col("AVALU", "str")],
        "adtte": [
            Col("USUBJID", "str", True), Col("PARAMCD", "str", True, codes=tte), Col("PARAM", "str"),
            Col("STARTDT", "date"), Col("ADT", "date"), Col("AVAL", "num", True, lo=0),
            Col("CNSR", "int", True, codes=(0, 1)), Col("EVNTDESC", "str"), Col("CNSDTDSC", "str"),
        ],
        "adae": [
            Col("USUBJID", "str", True), Col("AESEQ", "int"), Col("AETERM", "str"), Col("AEDECOD", "str", True),
            Col("AEBODSYS", "str", True), Col("ASTDT", "date", True), Col("AENDT", "date"), Col("ASTDY", "num"),
            Col("AESER", "str", codes=yn), Col("AESEV", "str", codes=("MILD", "MODERATE", "SEVERE")),
            Col("AEREL", "str", codes=("RELATED", "NOT RELATED")),
            Col("AEOUT", "str", codes=("RECOVERED", "RECOVERING", "NOT RECOVERED", "FATAL")),
            Col("AESDTH", "str", codes=yn), Col("TRTEMFL", "str", codes=yn), Col("ENTDT", "date"),
        ],
        "adex": [
            Col("USUBJID", "str", True), Col("CYCLE", "int", True, lo=1), Col("ASTDT", "date", True),
            Col("AENDT", "date"), Col("NDOSES", "int", lo=0, hi=5), Col("EXDOSE", "num", lo=0),
        ],
        "adcm": care_schema(), "addv": deviation_schema(),
        "allocation": [
            Col("USUBJID", "str", True), Col("RANDNO", "int"),
            Col("ARMCD", "str", True, codes=tuple(getattr(study, "arm_codes", ())) or None),
            Col("ARM", "str"), Col("STRATUM", "str", codes=strata), Col("BLOCK", "str"), Col("BLKSIZE", "int", lo=1),
            Col("MASKCD", "str"),
        ],
    }


def build_adam_schemas(study) -> dict[str, list[Col]]:
    """ADaM-level expectations for any trial, with the variable names of its study config:
    ADSL one row per subject with the subject, site, population flags (Y/N) and randomisation
    date; ADTTE AVAL >= 0 and CNSR 0/1 (PARAMCDs checked only when ``[validation] paramcd.adtte``
    lists them); ADAE coded terms with Y/N flags; the functional BDS dataset when configured; the
    allocation's arm codes. ``[validation] age_range`` bounds AGE when given (else AGE >= 0)."""
    cols = study.columns
    conf = (getattr(study, "raw", None) or {}).get("validation", {})
    age_lo, age_hi = conf.get("age_range", (0, None))
    yn = ("Y", "N")
    levels = dict(study.strata_levels or {})
    factors = tuple(study.strata_factors)
    strata = (tuple("/".join(p) for p in itertools.product(*[levels[f] for f in factors]))
              if factors and all(levels.get(f) for f in factors) else None)
    tte_codes = conf.get("paramcd", {}).get("adtte")
    adsl = [Col(cols["subject"], "str", True), Col(cols["site"], "str", True),
            Col(cols["randomisation_date"], "date"), Col("AGE", "num", lo=age_lo, hi=age_hi),
            Col("SEX", "str", codes=("M", "F", "U", "UNDIFFERENTIATED")),
            Col(cols["itt_flag"], "str", codes=yn), Col(cols["safety_flag"], "str", codes=yn)]
    adsl += [Col(f, "str", codes=levels.get(f) or None) for f in factors]
    schemas = {
        "adsl": adsl,
        "adtte": [Col("USUBJID", "str", True), Col("PARAMCD", "str", True, codes=tuple(tte_codes) if tte_codes else None),
                  Col("AVAL", "num", True, lo=0), Col("CNSR", "int", True, codes=(0, 1))],
        "adae": [Col("USUBJID", "str", True), Col("AEDECOD", "str", True), Col("AEBODSYS", "str", True),
                 Col("AESER", "str", codes=yn), Col("AESEV", "str", codes=("MILD", "MODERATE", "SEVERE")),
                 Col("TRTEMFL", "str", codes=yn)],
        "allocation": [Col("USUBJID", "str", True), Col("ARMCD", "str", True, codes=tuple(study.arm_codes) or None),
                       Col("STRATUM", "str", codes=strata)],
    }
    schemas["adcm"], schemas["addv"] = care_schema(adam=True), deviation_schema(adam=True)
    if study.raw.get("endpoints", {}).get("functional_dataset"):
        codes = conf.get("paramcd", {}).get(study.functional_dataset)
        schemas[study.functional_dataset] = [Col("USUBJID", "str", True),
                                             Col("PARAMCD", "str", True, codes=tuple(codes) if codes else None),
                                             Col("AVAL", "num", True)]
    return schemas


# ALS care categories of adcm (project variable CARECD; DATASETS.md "adcm")
CARE_CODES = ("NIV", "PAV", "GASTRO", "TRACH", "RILUZOLE", "MED")
CARE_CATEGORIES = ("ALS SUPPORTIVE PROCEDURE", "CONCOMITANT MEDICATION")


# Optional parts of the data contract (issue 14): a delivery without them validates and loads;
# outputs that need one say so with ``absent_note`` (views raise ``DatasetNotFound`` for a missing
# dataset, and a missing column is simply not in ``view.columns(name)``).
OPTIONAL_DATASETS = {
    "adcm": ("concomitant-care dataset (adcm)", "riluzole, NIV, gastrostomy, tracheostomy and other medications"),
    "addv": ("protocol-deviation dataset (addv)", "protocol deviations"),
}
OPTIONAL_COLUMNS = {("adsl", "LSTALVDT"): ("date last known alive (ADSL LSTALVDT)", "vital-status currency")}


def absent_note(datasets, name: str, column: str | None = None, columns=()) -> str | None:
    """None when dataset ``name`` (and ``column``, looked up in ``columns``) is delivered; else the
    sentence an output shows instead of its table, e.g. "This delivery has no concomitant-care
    dataset (adcm), so riluzole, NIV, gastrostomy, tracheostomy and other medications cannot be
    shown." ``datasets``: the names present (``view.datasets``); ``columns``: the dataset's
    columns (``view.columns(name)``) when ``column`` is asked for."""
    if name not in datasets:
        what, shown = OPTIONAL_DATASETS.get(name, (f"{name} dataset", f"the {name} data"))
        return f"This delivery has no {what}, so {shown} cannot be shown."
    if column is not None and column not in set(columns):
        what, shown = OPTIONAL_COLUMNS.get((name, column), (f"{name} {column}", f"{column}"))
        return f"This delivery has no {what}, so {shown} cannot be shown."
    return None


def care_schema(adam: bool = False) -> list[Col]:
    """adcm (optional dataset): concomitant care, one row per medication course, riluzole dose
    period or ALS supportive procedure. ``adam``: what an imported delivery must hold (its own
    CMCAT and dosing variables are not checked)."""
    core = [Col("USUBJID", "str", True), Col("CMTRT", "str"), Col("CMDECOD", "str", True),
            Col("CARECD", "str", codes=CARE_CODES), Col("ASTDT", "date", True), Col("AENDT", "date")]
    if adam:
        return core
    return core + [Col("CMSEQ", "int"), Col("CMCAT", "str", True, codes=CARE_CATEGORIES), Col("CMSCAT", "str"),
                   Col("CMCLAS", "str"), Col("CMCLASCD", "str"), Col("CMDOSE", "num", lo=0),
                   Col("CMDOSU", "str"), Col("CMDOSFRQ", "str"), Col("CMDOSTOT", "num", lo=0), Col("ASTDY", "num")]


def deviation_schema(adam: bool = False) -> list[Col]:
    """addv (optional dataset): protocol deviations, one row per deviation; DVIMPFL ``Y`` for an
    important deviation (ICH E3), ``N`` for a minor one."""
    core = [Col("USUBJID", "str", True), Col("DVTERM", "str"), Col("DVCAT", "str", True),
            Col("DVIMPFL", "str", codes=("Y", "N")), Col("ASTDT", "date", True)]
    if adam:
        return core + [Col("SITEID", "str"), Col("DVDECOD", "str")]
    return core + [Col("SITEID", "str"), Col("DVSEQ", "int"), Col("DVDECOD", "str"), Col("ASTDY", "num"),
                   Col("ENTDT", "date")]


def _paramcds(study, dataset: str, mirocals: tuple) -> tuple | None:
    """Allowed PARAMCDs of a lab-like dataset: ``[validation.paramcd]`` of the study config, the
    MIROCALS codes for MIROCALS, and no code check for another study that does not list them."""
    conf = (getattr(study, "raw", None) or {}).get("validation", {}).get("paramcd", {})
    if dataset in conf:
        return tuple(conf[dataset])
    return mirocals if study is None or getattr(study, "id", "MIROCALS") == "MIROCALS" else None


def _bds(paramcds, lo=None, hi=None) -> list[Col]:
    codes = None if paramcds is None else tuple(paramcds)
    return [Col("USUBJID", "str", True), Col("PARAMCD", "str", True, codes=codes), Col("PARAM", "str"),
            Col("AVISIT", "str"), Col("AVISITN", "int"), Col("ADT", "date", True), Col("ADY", "num"),
            Col("AVAL", "num", True, lo=lo, hi=hi), Col("BASE", "num"), Col("CHG", "num"),
            Col("ABLFL", "str", codes=("Y",))]


# --------------------------------------------------------------------------- kinds
def _is_text(v) -> bool:
    return isinstance(v, str)


def parse_dates(s: pd.Series) -> pd.Series:
    """Dates from ``datetime.date``/``datetime`` objects or full ISO text (``2019-03-07``); partial
    text such as ``2019-03`` and anything else gives NaT (pandas would read it as 1 March)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if kind in ("date", "datetime", "datetime64"):          # Parquet date32 -> datetime.date objects
        return pd.to_datetime(s, errors="coerce")
    if kind in ("string", "empty"):
        # all text (the usual CSV case): strict YYYY-MM-DD in C first, the general rule only for
        # the values that failed it (date-times, partial or invalid dates)
        out = pd.to_datetime(s, errors="coerce", format="%Y-%m-%d")
        rest = out.isna() & s.notna()
        if rest.any():
            r = s[rest]
            full = r.map(lambda v: bool(_FULL_DATE.match(v)))
            out[rest] = pd.to_datetime(r.where(full), errors="coerce", format="mixed")
        return out
    full = s.map(lambda v: not isinstance(v, str) or bool(_FULL_DATE.match(v)))
    return pd.to_datetime(s.where(full), errors="coerce", format="mixed")


def check_kind(s: pd.Series, kind: str):
    """pandera check body: True when the column has the expected kind; a boolean Series (False =
    a value of the wrong kind) when only some values are wrong; False when the whole column is
    stored as the wrong type. Missing values pass."""
    if kind not in ("num", "int", "date"):
        # text: strings (numbers read from a CSV as int are the wrong type); one C pass over the
        # values, missing ones skipped ("empty": all missing)
        if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            return True
        present = s.notna()
        bad = present & ~s.map(_is_text)
        return ~bad if bad.sum() < present.sum() else False
    values = s.dropna()
    if values.empty:
        return True
    if kind in ("num", "int"):
        if pd.api.types.is_bool_dtype(s):
            return False
        if not pd.api.types.is_numeric_dtype(s):
            bad = s.notna() & pd.to_numeric(s, errors="coerce").isna()
            return ~bad if bad.any() else False
        if kind == "int":
            return s.isna() | (s % 1 == 0)
        return True
    # date
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    bad = s.notna() & parse_dates(s).isna()
    return ~bad if bad.any() else False


def structure_schema(cols: list[Col]) -> pa.DataFrameSchema:
    """Required columns present and every present column of the right kind."""
    return pa.DataFrameSchema(
        {c.name: pa.Column(None, checks=[pa.Check(lambda s, k=c.kind: check_kind(s, k), name=f"kind_{c.kind}",
                                                  ignore_na=False)],       # check_kind passes missing values
                           nullable=True, required=c.required) for c in cols})


def value_schema(name: str, cols: list[Col]) -> pa.DataFrameSchema:
    """Codes and ranges of ``cols`` (columns already known to be of the right kind)."""
    checks = []
    names = {c.name for c in cols}
    if name == "adqs" and {"PARAMCD", "AVAL"} <= names:
        checks.append(pa.Check(_alsfrs_in_range, name="alsfrs_range"))
    return pa.DataFrameSchema({c.name: pa.Column(None, checks=c.value_checks(), nullable=True, required=False)
                               for c in cols if c.value_checks()}, checks=checks)


def _alsfrs_in_range(df: pd.DataFrame) -> pd.Series:
    hi = df["PARAMCD"].map(ALSFRS_MAX)
    aval = df["AVAL"]
    bad = hi.notna() & aval.notna() & ((aval < 0) | (aval > hi) | (aval % 1 != 0))
    return ~bad



# --------------------------------------------------------------------------- the data contract
# Columns the contract documents (DATASETS.md) beyond those ``build_schemas`` checks.
CONTRACT_EXTRA = {"adsl": ("DFSGR",),
                  # the reason a cycle was incomplete: optional (a delivery without it is not warned)
                  "adex": ("EXADJ",),
                  # concomitant care and deviations of an imported trial: what outputs read beyond
                  # the ADaM-level schema (care_schema / deviation_schema with adam=True)
                  "adcm": ("CMSEQ", "CMCAT", "CMSCAT", "CMCLAS", "CMCLASCD", "CMDOSE", "CMDOSU", "CMDOSFRQ",
                           "CMDOSTOT", "CMINDC", "ASTDY", "AENDY"),
                  "addv": ("DVSEQ", "DVSCAT", "ASTDY", "ENTDT")}
# ADaM identifier variables every dataset may carry.
CONTRACT_EVERY = ("STUDYID", "USUBJID", "SUBJID", "SITEID")
# ADaM/SDTM variables that hold the arm (or the randomisation list): never part of a blinded
# view's allow-list, whatever a study file maps.
ARM_NAMES = ("ARM", "ARMCD", "ACTARM", "ACTARMCD", "ARMN", "TRT01P", "TRT01A", "TRT01PN", "TRT01AN",
             "TRTP", "TRTPN", "TRTA", "TRTAN", "RANDNO", "RANDID", "MASKCD", "BLOCK", "BLKSIZE")


def contract_columns(study=None) -> dict[str, frozenset[str]]:
    """The data contract as an allow-list: dataset -> the column names a blinded view may show.

    The union of the MIROCALS contract (``build_schemas``: ADaM-standard names, plus
    ``CONTRACT_EXTRA``), the ADaM-level contract of an imported trial (``build_adam_schemas``), the
    study's mapped columns and the ADaM identifiers ``CONTRACT_EVERY`` (``Study.mapped_columns``: ``[columns]`` roles except the arm, strata
    factors, covariates, subgroups, baseline variables; every dataset) and
    ``[blinding.allow_columns]`` (dataset -> columns; ``"*"``: every dataset). Key ``"*"`` holds
    the columns allowed in every dataset. The allocation and arm variables are never allowed; a
    ``xxDTC`` partial-date text is allowed when its ``xxDT`` is."""
    out: dict[str, set[str]] = {}
    for name, cols in build_schemas(None).items():
        out.setdefault(name, set()).update(c.name for c in cols)
    for name, cols in CONTRACT_EXTRA.items():
        out.setdefault(name, set()).update(cols)
    every: set[str] = set(CONTRACT_EVERY)
    if study is not None:
        if not is_mirocals(study):
            for name, cols in build_adam_schemas(study).items():
                out.setdefault(name, set()).update(c.name for c in cols)
        every.update(getattr(study, "mapped_columns", ()))
        for name, cols in (getattr(study, "allowed_columns", {}) or {}).items():
            (every if name == "*" else out.setdefault(name, set())).update(cols)
    out.pop("allocation", None)
    arm = set(ARM_NAMES)
    if study is not None:
        arm |= {str(study.columns.get("arm", "ARM")).upper(), str(study.columns.get("armcd", "ARMCD")).upper()}
    result = {name: frozenset(c.upper() for c in cols if c.upper() not in arm) for name, cols in out.items()}
    result["*"] = frozenset(c for c in every if c not in arm)
    return result
