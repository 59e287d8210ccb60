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
    def min_cell_size(self) -> int:
        """Minimum cell size k (``[blinding] min_cell_size``, default 5): a blinded output computed
        on a filtered subset of fewer than k subjects shows counts only, and names no subject."""
        return int(self.raw.get("blinding", {}).get("min_cell_size", 5))

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


def load_snapshot_study(data_dir: str | Path | None) -> Study:
    """The study of a snapshot: the ``study.toml`` that ``mirocals import`` stored in its clinical
    part (or the snapshot root), else the default study (MIROCALS)."""
    if data_dir is not None:
        p = Path(data_dir)
        for candidate in (p / SNAPSHOT_STUDY_FILE, p / "clinical" / SNAPSHOT_STUDY_FILE):
            if candidate.is_file():
                return load_study(candidate)
    return load_study()
