"""What a dashboard page works on: the snapshot shown (``Snapshot``), the sidebar filters
(``Filters``) and who is looking through which kind of view (``Context``). Plain frozen
dataclasses: their fields are the keys of every cache (``dashboard.caches``)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snapshot:
    """One snapshot the dashboard can show."""
    label: str
    clinical_dir: str
    allocation_dir: str | None
    snapshot_hash: str
    cut_date: str


@dataclass(frozen=True)
class Filters:
    """Sidebar filters; an empty tuple means no restriction."""
    countries: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    onsets: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.countries or self.sites or self.onsets)

    def key(self) -> tuple:
        return (self.countries, self.sites, self.onsets)

    def site_ids(self, study) -> tuple[str, ...] | None:
        """The study's sites this filter keeps (list order), or None when it restricts no site
        (no country or site chosen: every site is in, whatever the onset)."""
        if not (self.countries or self.sites):
            return None
        return tuple(s.id for s in study.sites
                     if (not self.countries or s.country in self.countries) and (not self.sites or s.id in self.sites))

    def label(self) -> str | None:
        """The filter in a few words for subtitles and captions ("UK", "FR08", "UK · Bulbar");
        None when inactive. Sites chosen name the selection (their countries go without saying)."""
        parts = [", ".join(self.sites or self.countries), ", ".join(self.onsets)]
        return " · ".join(p for p in parts if p) or None

    def slug(self, max_values: int = 4) -> str | None:
        """The filter for a file name ("uk", "fr08", "uk-bulbar"; more than ``max_values`` sites:
        "9-sites"); None when inactive."""
        def few(values, word):
            return list(values) if len(values) <= max_values else [f"{len(values)}-{word}"]
        words = few(self.sites, "sites") if self.sites else few(self.countries, "countries")
        words += few(self.onsets, "onsets")
        return re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-") or None

    def not_by_site(self) -> str | None:
        """The part of the filter a per-site plan or target cannot follow ("onset Bulbar"), or None."""
        return f"onset {', '.join(self.onsets)}" if self.onsets else None


@dataclass(frozen=True)
class Context:
    """What a page needs: who is looking, at which snapshot, through which kind of view."""
    user: str
    role: str
    view_kind: str                  # "blinded" or "unblinded"
    snapshot: Snapshot
    filters: Filters = field(default_factory=Filters)
    mask_arms: bool = False

    @property
    def role_class(self) -> str:
        return self.view_kind

    @property
    def unblinded(self) -> bool:
        return self.view_kind == "unblinded"
