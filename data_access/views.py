"""Blinded and unblinded views of a snapshot: the blinding safety core.

``open_view(data_dir, role, ...)`` returns a ``BlindedView`` or an ``UnblindedView``. Both query the
snapshot's Parquet files on demand with an in-process DuckDB connection (one per view):
``view.table(name, columns=None, where=None)`` and ``view.sql(query)`` return DataFrames.

This module decides which view a role gets (``ROLES``, ``is_unblinded_role``, ``open_view``). The
views themselves: ``data_access.view_base`` (what both share: DuckDB querying, ``ARM_COLUMNS``,
the errors ``BlindingError``, ``DatasetNotFound`` and ``AllocationMissingError``),
``data_access.view_blinded`` (``BlindedView``: roles steering, investigator, and author before
database lock; what it guarantees and what it does not) and ``data_access.view_unblinded``
(``UnblindedView``: roles dsmb, statistician, and author after database lock).
"""
from __future__ import annotations

from pathlib import Path

from data_access.view_blinded import BlindedView
from data_access.view_unblinded import UnblindedView

BLINDED_ROLES = ("steering", "investigator")
UNBLINDED_ROLES = ("dsmb", "statistician")
LOCK_ROLES = ("author",)              # blinded until the database lock is recorded
ROLES = BLINDED_ROLES + UNBLINDED_ROLES + LOCK_ROLES


def is_unblinded_role(role: str, database_locked: bool = False) -> bool:
    """Whether ``role`` sees unblinded data. Raises ``ValueError`` for an unknown role."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    return role in UNBLINDED_ROLES or (role in LOCK_ROLES and bool(database_locked))


def clinical_dir_of(data_dir) -> Path:
    """``data_dir/clinical`` for a snapshot root, else ``data_dir`` itself."""
    p = Path(data_dir)
    return p / "clinical" if (p / "clinical").is_dir() else p


def open_view(data_dir, role: str, allocation_dir=None, study=None, mask_arms: bool = False,
              database_locked: bool = False) -> BlindedView | UnblindedView:
    """Open the view of a snapshot that ``role`` is allowed to see.

    Parameters
    ----------
    data_dir : snapshot root (containing ``clinical/``) or the clinical part itself.
    role : steering, investigator (blinded); dsmb, statistician (unblinded); author (blinded
        unless ``database_locked``). Anything else raises ``ValueError``.
    allocation_dir : the allocation part; used only for unblinded roles (a blinded view never
        touches it). Default for an unblinded role: ``data_dir/allocation`` when ``data_dir`` is
        a snapshot root that has one.
    study : a ``Study`` (default: the snapshot's own ``study.toml`` when imported, else MIROCALS).
    mask_arms : unblinded only: show arms as their masking codes (Group A / Group B).
    database_locked : whether the database lock is recorded (unblinds the author role).

    Returns
    -------
    BlindedView or UnblindedView.

    A snapshot whose files no longer match its manifest is refused (``SnapshotChangedError``, see
    ``data_access.snapshot.check_published``); ``mirocals validate`` builds its view directly, so it
    still reads and reports such a snapshot.
    """
    from data_access.snapshot import MANIFEST, check_published
    if not is_unblinded_role(role, database_locked):
        check_published(clinical_dir_of(data_dir))      # a file changed after publication: refused
        return BlindedView(clinical_dir_of(data_dir), role, study=study)
    clinical = clinical_dir_of(data_dir)
    if allocation_dir is None and clinical != Path(data_dir) and (Path(data_dir) / "allocation").is_dir():
        allocation_dir = Path(data_dir) / "allocation"
    check_published(clinical)
    if allocation_dir is not None and (Path(allocation_dir) / MANIFEST).exists():
        check_published(allocation_dir)
    return UnblindedView(clinical, role, allocation_dir, study=study, mask_arms=mask_arms)
