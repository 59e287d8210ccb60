"""Study configuration: load a study TOML into a typed, read-only ``Study``.

MIROCALS ships as the default study (``data_access/studies/mirocals.toml``). Another trial is
supported by writing its own TOML with the same sections, not by changing code.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STUDY_FILE = Path(__file__).parent / "studies" / "mirocals.toml"
SNAPSHOT_STUDY_FILE = "study.toml"     # the study config an imported snapshot carries (clinical/)


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    country: str
    activated: dt.date
    target: int


@dataclass(frozen=True)
class Study:
    """A parsed study configuration. ``raw`` keeps the whole TOML for less common settings."""

    id: str
    title: str
    planned_n: int
    landmark_day: int
    report_author: str
    arm_codes: tuple[str, ...]
    arm_labels: tuple[str, ...]
    masked_labels: tuple[str, ...]
    reference_arm: str
    strata_factors: tuple[str, ...]
    strata_levels: dict[str, tuple[str, ...]]
    block_sizes: tuple[int, ...]
    survival_paramcd: str
    composite_paramcd: str | None
    functional_dataset: str
    functional_total: str
    functional_items: tuple[str, ...]
    functional_domains: tuple[str, ...]
    arm_revealing_params: tuple[str, ...]
    covariates: tuple[str, ...]
    baseline_variables: tuple[str, ...]
    subgroups: tuple[str, ...]
    sequential_looks: tuple[float, ...]
    alpha_one_sided: float
    visit_names: tuple[str, ...]
    visit_days: tuple[int, ...]
    visit_window: int
    sites: tuple[Site, ...]
    recruitment_plan: tuple[tuple[str, int], ...]
    columns: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def arm_label_of(self) -> dict[str, str]:
        """ARMCD -> display label."""
        return dict(zip(self.arm_codes, self.arm_labels))

    @property
    def planned_events(self) -> int | None:
        """Events (survival endpoint) expected at the final analysis: the denominator of the
        information fraction at a data cut (``[analysis] planned_events``); None when not set."""
        value = self.raw.get("analysis", {}).get("planned_events")
        return int(value) if value else None

    @property
    def design_hazard_ratio(self) -> float | None:
        """The hazard ratio (experimental vs reference) the trial is powered for (``[analysis]
        design_hazard_ratio``): the design effect of the conditional power; None when not set."""
        value = self.raw.get("analysis", {}).get("design_hazard_ratio")
        return float(value) if value else None

    @property
    def control_survival_landmark(self) -> float | None:
        """Survival of the reference (control) arm at the landmark day assumed by the design
        (``[analysis] control_survival_landmark``, a proportion); None when not set."""
        value = self.raw.get("analysis", {}).get("control_survival_landmark")
        return float(value) if value else None

    @property
    def futility_conditional_power(self) -> float:
        """The non-binding futility rule: conditional power under the current trend below this
        (``[analysis] futility_conditional_power``, default 0.10)."""
        return float(self.raw.get("analysis", {}).get("futility_conditional_power", 0.10))

    @property
    def interim_look_dates(self) -> tuple[dt.date, ...]:
        """Data cuts of the efficacy looks already done (``[analysis] interim_look_dates``), in
        order; empty when the study file records none."""
        return tuple(sorted(_date(d) for d in self.raw.get("analysis", {}).get("interim_look_dates", [])))

    @property
    def min_cell_size(self) -> int:
        """Minimum cell size k (``[blinding] min_cell_size``, default 5): a blinded output computed
        on a filtered subset of fewer than k subjects shows counts only, and names no subject."""
        return int(self.raw.get("blinding", {}).get("min_cell_size", 5))

    # ------------------------------------------------------------ blinding declarations
    @property
    def _blinding(self) -> dict:
        return self.raw.get("blinding", {}) or {}

    @property
    def arm_revealing_param_codes(self) -> tuple[str, ...]:
        """Every BDS PARAMCD declared arm-revealing: ``[blinding] arm_revealing_params`` (the
        Treg family, shown by arm on the unblinded Tregs outputs) plus
        ``[blinding] arm_revealing_safety_params`` (safety labs that reveal the arm, e.g.
        eosinophils: shown by arm to unblinded roles among the safety labs). Matched
        case-insensitively; blinded views withhold their rows."""
        codes = list(self.arm_revealing_params) + list(self._blinding.get("arm_revealing_safety_params", []))
        return tuple(dict.fromkeys(str(c) for c in codes))

    @property
    def arm_revealing_param_patterns(self) -> tuple[str, ...]:
        """``[blinding] arm_revealing_param_patterns``: regular expressions (Python syntax, searched,
        e.g. ``(?i)treg|regulatory t``) matched against PARAMCD and PARAM of every BDS dataset;
        a matching parameter is withheld from blinded views whatever its code."""
        return tuple(str(p) for p in self._blinding.get("arm_revealing_param_patterns", []))

    @property
    def arm_revealing_ae_patterns(self) -> tuple[str, ...]:
        """``[blinding] arm_revealing_ae``: regular expressions searched in the AE term columns
        (``ae_term_columns``: verbatim term, preferred term, SOC, ...); matching AE rows are
        withheld from blinded views (MIROCALS: injection-site reactions, influenza-like illness,
        eosinophilia)."""
        return tuple(str(p) for p in self._blinding.get("arm_revealing_ae", []))

    @property
    def ae_term_columns(self) -> tuple[str, ...]:
        """``[blinding] ae_term_columns``: the AE columns ``arm_revealing_ae`` is matched against
        (default AETERM, AEDECOD, AELLT, AEHLT, AEHLGT, AEBODSYS, AESOC)."""
        return tuple(self._blinding.get("ae_term_columns",
                                        ["AETERM", "AEDECOD", "AELLT", "AEHLT", "AEHLGT", "AEBODSYS", "AESOC"]))

    @property
    def ae_dataset(self) -> str:
        """``[blinding] ae_dataset`` (default ``adae``): the dataset ``arm_revealing_ae`` applies to."""
        return str(self._blinding.get("ae_dataset", "adae"))

    @property
    def arm_revealing_medication_patterns(self) -> tuple[str, ...]:
        """``[blinding] arm_revealing_medications`` (regular expressions, e.g. a premedication given
        only with the active drug) plus ``arm_revealing_ae``: searched in the concomitant-care
        columns ``medication_term_columns``, so a medication whose name or indication (CMINDC
        "injection site reaction") reveals the arm is withheld from blinded views."""
        return (tuple(str(p) for p in self._blinding.get("arm_revealing_medications", []))
                + self.arm_revealing_ae_patterns)

    @property
    def medication_term_columns(self) -> tuple[str, ...]:
        """``[blinding] medication_term_columns`` (default CMTRT, CMDECOD, CMINDC)."""
        return tuple(self._blinding.get("medication_term_columns", ["CMTRT", "CMDECOD", "CMINDC"]))

    @property
    def medication_dataset(self) -> str:
        """``[blinding] medication_dataset`` (default ``adcm``)."""
        return str(self._blinding.get("medication_dataset", "adcm"))

    @property
    def arm_revealing_exposure(self) -> tuple[str, ...]:
        """``[blinding] arm_revealing_exposure``: exposure variables (columns of any dataset)
        whose values reveal the arm; withheld from blinded views (MIROCALS: none, EXDOSE is the
        same for placebo by design)."""
        return tuple(str(c).upper() for c in self._blinding.get("arm_revealing_exposure", []))

    @property
    def safe_params(self) -> dict[str, tuple[str, ...]] | None:
        """``[blinding.safe_params]``: dataset -> the BDS PARAMCDs a blinded view may show. When
        the study declares it, blinded views are allow-list for every dataset with a PARAMCD
        column (a dataset it does not name shows no parameter); when it does not (None), every
        parameter not declared arm-revealing is shown."""
        safe = self._blinding.get("safe_params")
        if safe is None:
            return None
        return {str(k).lower(): tuple(str(c) for c in v) for k, v in safe.items()}

    @property
    def allowed_columns(self) -> dict[str, tuple[str, ...]]:
        """``[blinding.allow_columns]``: dataset -> extra columns a blinded view shows beyond the
        data contract and the study's mapped columns (key ``"*"``: every dataset)."""
        extra = self._blinding.get("allow_columns", {}) or {}
        return {str(k).lower() if k != "*" else "*": tuple(str(c).upper() for c in v) for k, v in extra.items()}

    @property
    def scan_min_subjects(self) -> int:
        """``[blinding] scan_min_subjects`` (default 20): a column is judged to determine the arm
        only when it covers at least this many subjects (below it, chance agreement is likely)."""
        return int(self._blinding.get("scan_min_subjects", 20))

    @property
    def mapped_columns(self) -> tuple[str, ...]:
        """Columns the study file maps by name (``[columns]`` except the arm variables, strata
        factors, covariates, subgroups, baseline variables): part of a blinded view's allow-list."""
        arm = {self.columns.get("arm", "ARM").upper(), self.columns.get("armcd", "ARMCD").upper()}
        names = [v for k, v in self.columns.items() if k not in ("arm", "armcd")]
        names += list(self.strata_factors) + list(self.covariates) + list(self.subgroups)
        names += list(self.baseline_variables)
        return tuple(dict.fromkeys(str(n).upper() for n in names if str(n).upper() not in arm))

    @property
    def site_by_id(self) -> dict[str, Site]:
        return {s.id: s for s in self.sites}

    def col(self, role: str) -> str:
        """The dataset column playing ``role`` (subject, site, country, arm, ...)."""
        return self.columns[role]


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def load_study(path: str | Path | None = None) -> Study:
    """Read a study TOML (default: MIROCALS) and return a ``Study``.

    Raises ``ValueError`` naming the file and the missing key when a required setting is absent.
    """
    path = Path(path) if path else DEFAULT_STUDY_FILE
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    try:
        st, arms, strat, ep = raw["study"], raw["arms"], raw.get("stratification", {}), raw["endpoints"]
        an, vis, blind = raw.get("analysis", {}), raw.get("visits", {}), raw.get("blinding", {})
        _check_design(an, path)
        return Study(
            id=st["id"],
            title=st.get("title", st["id"]),
            planned_n=int(st.get("planned_n", 0)),
            landmark_day=int(st.get("landmark_day", 0)),
            report_author=st.get("report_author", "Trial Statistics Unit"),
            arm_codes=tuple(arms["codes"]),
            arm_labels=tuple(arms.get("labels", arms["codes"])),
            masked_labels=tuple(arms.get("masked_labels",
                                         [f"Group {chr(65 + i)}" for i in range(len(arms["codes"]))])),
            reference_arm=arms.get("reference", arms["codes"][-1]),
            strata_factors=tuple(strat.get("factors", [])),
            strata_levels={k: tuple(v) for k, v in strat.get("levels", {}).items()},
            block_sizes=tuple(strat.get("block_sizes", [])),
            survival_paramcd=ep["survival"],
            composite_paramcd=ep.get("composite"),
            functional_dataset=ep.get("functional_dataset", "adqs"),
            functional_total=ep.get("functional_total", "ALSFRST"),
            functional_items=tuple(ep.get("functional_items", [])),
            functional_domains=tuple(ep.get("functional_domains", [])),
            arm_revealing_params=tuple(blind.get("arm_revealing_params", [])),
            covariates=tuple(an.get("covariates", [])),
            baseline_variables=tuple(an.get("baseline_variables", [])),
            subgroups=tuple(an.get("subgroups", [])),
            sequential_looks=tuple(float(x) for x in an.get("sequential_looks", [1.0])),
            alpha_one_sided=float(an.get("alpha_one_sided", 0.025)),
            visit_names=tuple(vis.get("names", [])),
            visit_days=tuple(int(d) for d in vis.get("days", [])),
            visit_window=int(vis.get("window_days", 14)),
            sites=tuple(Site(s["id"], s["name"], s["country"], _date(s["activated"]), int(s["target"]))
                        for s in raw.get("sites", [])),
            recruitment_plan=tuple((m["month"], int(m["cumulative"]))
                                   for m in raw.get("recruitment_plan", {}).get("months", [])),
            columns={"subject": "USUBJID", "site": "SITEID", "country": "COUNTRY", "arm": "ARM",
                     "armcd": "ARMCD", "randomisation_date": "RANDDT", "itt_flag": "ITTFL",
                     "safety_flag": "SAFFL", **raw.get("columns", {})},
            raw=raw,
        )
    except KeyError as exc:
        raise ValueError(f"{path}: study config is missing required setting {exc}") from None


def _check_design(an: dict, path) -> None:
    """Reject design assumptions outside their range, naming the file and the key."""
    checks = {"design_hazard_ratio": lambda v: v > 0, "control_survival_landmark": lambda v: 0 < v < 1,
              "futility_conditional_power": lambda v: 0 <= v < 1}
    for key, ok in checks.items():
        if key in an:
            value = an[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
                raise ValueError(f"{path}: [analysis] {key} = {value!r} is out of range")
    for d in an.get("interim_look_dates", []):
        try:
            _date(d)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: [analysis] interim_look_dates holds {d!r}, not a date (YYYY-MM-DD)") from None


def load_snapshot_study(data_dir: str | Path | None) -> Study:
    """The study of a snapshot: the ``study.toml`` that ``mirocals import`` stored in its clinical
    part (or the snapshot root), else the default study (MIROCALS)."""
    if data_dir is not None:
        p = Path(data_dir)
        for candidate in (p / SNAPSHOT_STUDY_FILE, p / "clinical" / SNAPSHOT_STUDY_FILE):
            if candidate.is_file():
                return load_study(candidate)
    return load_study()
