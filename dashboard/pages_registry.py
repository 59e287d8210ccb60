"""Which pages exist and which roles may open them (the navigation shows only those)."""
from __future__ import annotations

from dataclasses import dataclass

from dashboard.auth import ROLES


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    url: str
    roles: tuple[str, ...] = ROLES


PAGES = (
    PageSpec("recruitment.py", "Recruitment", ":material/group_add:", "recruitment"),
    PageSpec("balance.py", "Stratum balance", ":material/balance:", "balance"),
    PageSpec("baseline.py", "Baseline", ":material/table_chart:", "baseline"),
    PageSpec("alsfrs.py", "ALSFRS-R", ":material/trending_down:", "alsfrs"),
    PageSpec("survival.py", "Survival", ":material/monitor_heart:", "survival"),
    PageSpec("safety.py", "Safety", ":material/health_and_safety:", "safety"),
    PageSpec("conduct.py", "Treatment and conduct", ":material/medication:", "conduct"),
    PageSpec("quality.py", "Data quality", ":material/fact_check:", "quality"),
    PageSpec("profile.py", "Participant", ":material/person_search:", "profile"),
    PageSpec("audit_log.py", "Audit log", ":material/policy:", "audit", ("statistician",)),
)


def pages_for(role: str) -> list[PageSpec]:
    """The pages shown in the navigation for a role."""
    return [p for p in PAGES if role in p.roles]
