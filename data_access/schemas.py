"""Dataset schemas: expected columns, their kind, and value checks (pandera).

``SCHEMAS[name]`` lists ``Col`` entries. ``required`` columns missing from a file are errors;
other expected columns missing are warnings (another trial may not collect them). Value checks
are pandera checks; the validator turns their failure cases into problem rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandera.pandas as pa

ITEM_RE = r"^ALSFR(S\d\d|05[AB])$"
DOMAIN_CODES = ("BULBAR", "FINEMOT", "GROSSMOT", "RESP")
TOTAL_CODE = "ALSFRST"


@dataclass(frozen=True)
class Col:
    name: str
    kind: str                      # "str", "num", "int", "date"
    required: bool = False
    checks: tuple = field(default=())
    rule: str = "invalid_code"     # rule reported when a check fails


def _codes(*values):
    return (pa.Check.isin(list(values)),)


def _range(lo, hi):
    return (pa.Check.in_range(lo, hi),)


def build_schemas(study=None) -> dict[str, list[Col]]:
    levels = dict(getattr(study, "strata_levels", {}) or {})
    countries = levels.get("COUNTRY", ("UK", "France"))
    onsets = levels.get("ONSET", ("Bulbar", "Limb"))
    yn = _codes("Y", "N")
    return {
        "adsl": [
            Col("USUBJID", "str", True), Col("SITEID", "str", True), Col("RANDDT", "date", True),
            Col("COUNTRY", "str", False, _codes(*countries)), Col("ONSET", "str", False, _codes(*onsets)),
            Col("STRATUM", "str"), Col("AGE", "num", False, _range(18, 75), "value_out_of_range"),
            Col("SEX", "str", False, _codes("M", "F")),
            Col("ELESCORL", "str", False, _codes("Possible", "Probable lab-supported", "Probable", "Definite")),
            Col("ONSETDT", "date"), Col("DIAGDT", "date"), Col("SCRNDT", "date"),
            Col("BLALSFRS", "num", False, _range(0, 48), "value_out_of_range"),
            Col("DFS", "num", False, (pa.Check.ge(0),), "value_out_of_range"),
            Col("SVCPCT", "num", False, _range(0, 200), "value_out_of_range"),
            Col("PNFH", "num", False, (pa.Check.gt(0),), "value_out_of_range"),
            Col("ITTFL", "str", True, yn), Col("SAFFL", "str", False, yn), Col("DTHFL", "str", False, _codes("Y")),
            Col("DTHDT", "date"), Col("EOSSTT", "str", False, _codes("COMPLETED", "DISCONTINUED", "ONGOING")),
        ],
        "screening": [
            Col("SCRNID", "str", True), Col("SITEID", "str", True), Col("SCRNDT", "date", True),
            Col("OUTCOME", "str", True, _codes("RANDOMISED", "SCREEN FAILURE", "RUN-IN DROP-OUT", "IN RUN-IN")),
            Col("REASON", "str"), Col("USUBJID", "str"),
        ],
        "adqs": _bds() + [Col("ENTDT", "date")], "adlb": _bds(), "adresp": _bds(),
        "adtte": [
            Col("USUBJID", "str", True), Col("PARAMCD", "str", True),
            Col("AVAL", "num", True, (pa.Check.ge(0),), "value_out_of_range"),
            Col("CNSR", "num", True, _codes(0, 1)), Col("STARTDT", "date"), Col("ADT", "date"),
        ],
        "adae": [
            Col("USUBJID", "str", True), Col("AEDECOD", "str", True), Col("AEBODSYS", "str", True),
            Col("ASTDT", "date", True), Col("AENDT", "date"), Col("AESER", "str", False, yn),
            Col("AESEV", "str", False, _codes("MILD", "MODERATE", "SEVERE")),
            Col("TRTEMFL", "str", False, yn), Col("AESDTH", "str", False, yn),
        ],
        "adex": [
            Col("USUBJID", "str", True), Col("CYCLE", "num", True, (pa.Check.ge(1),), "value_out_of_range"),
            Col("ASTDT", "date", True), Col("NDOSES", "num", False, _range(0, 5), "value_out_of_range"),
        ],
        "allocation": [
            Col("USUBJID", "str", True), Col("ARMCD", "str", True), Col("RANDNO", "num"), Col("STRATUM", "str"),
        ],
    }


def _bds() -> list[Col]:
    return [Col("USUBJID", "str", True), Col("PARAMCD", "str", True), Col("AVAL", "num", True),
            Col("ADT", "date", True), Col("AVISITN", "num"), Col("ABLFL", "str", False, _codes("Y")),
            Col("ADY", "num"), Col("BASE", "num"), Col("CHG", "num")]


def pandera_schema(cols: list[Col], present: set[str]) -> pa.DataFrameSchema:
    """A pandera schema holding only the value checks of columns present in the file."""
    return pa.DataFrameSchema({c.name: pa.Column(None, checks=list(c.checks), nullable=True, required=False)
                               for c in cols if c.checks and c.name in present})
