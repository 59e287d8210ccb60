"""The built-in demo trial: simulate MIROCALS, cut it, write it as a snapshot.

``make_demo`` is what ``mirocals demo`` runs; ``ensure_demo`` is what the dashboard and the
report tests call so that a fresh checkout has a trial to show.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np

from data_access.study import Study, load_study

DEFAULT_SEED = 20170619
DEFAULT_DEMO_DIR = Path(os.environ.get("MIROCALS_DEMO_DIR", "demo_data"))


def _default_cut(study: Study) -> dt.date:
    return dt.date.fromisoformat(str(study.raw["study"].get("completion", "2021-07-22")))


def make_demo(out_dir: str | Path, seed: int = DEFAULT_SEED, cut: str | dt.date | None = None,
              n_subjects: int | None = None, messy: bool = False, effect: str | dict = "published",
              study: Study | None = None) -> tuple[Path, Path]:
    """Simulate a MIROCALS-like trial, cut it at ``cut`` and write a snapshot to ``out_dir``.

    Parameters
    ----------
    out_dir : snapshot root; ``out_dir/clinical`` and ``out_dir/allocation`` are written.
    seed : random seed; the same seed and cut give byte-identical Parquet files and manifests
        (the manifest's ``created`` is set to the cut date for a demo, not the wall clock).
    cut : data cut-off date (default: the study completion date, i.e. the final analysis).
    n_subjects : number randomised (default: about 220, as in the real trial).
    messy : plant realistic data problems in the cut data; what was planted is written to
        ``out_dir/planted_problems.json``.
    effect : true treatment effect: "published" (default), "null", "strong" or a parameter dict.

    Returns
    -------
    (clinical_dir, allocation_dir)
    """
    from data_access.cut import cut_datasets
    from data_access.simulate import simulate_trial
    from data_access.simulate_parts import plant_problems
    from data_access.snapshot import write_snapshot

    study = study or load_study()
    cut_date = dt.date.fromisoformat(str(cut)) if cut else _default_cut(study)
    trial = simulate_trial(study, seed=seed, n_subjects=n_subjects, effect=effect, messy=False)
    clinical, allocation = cut_datasets(trial.clinical, trial.allocation, cut_date)
    # problems are planted in the cut data, so that every one recorded is present in the snapshot
    planted = plant_problems(clinical, np.random.default_rng(seed + 1)) if messy else []
    effect_name = effect if isinstance(effect, str) else "custom"
    source = (f"demo seed={seed} subjects={n_subjects or 'default'} effect={effect_name}"
              f"{' messy' if messy else ''}")
    out_dir = Path(out_dir)
    write_snapshot(out_dir, clinical, allocation, study, cut_date, source=source,
                   created=f"{cut_date.isoformat()}T00:00:00+00:00")
    if messy:
        (out_dir / "planted_problems.json").write_text(
            json.dumps(planted, indent=1, sort_keys=True, default=str) + "\n")
    return out_dir / "clinical", out_dir / "allocation"


def ensure_demo(path: str | Path = DEFAULT_DEMO_DIR, seed: int = DEFAULT_SEED,
                n_subjects: int | None = None, cut: str | dt.date | None = None) -> tuple[Path, Path]:
    """Return the demo snapshot at ``path``, generating it first when it is absent."""
    path = Path(path)
    if not (path / "clinical" / "manifest.json").exists():
        make_demo(path, seed=seed, n_subjects=n_subjects, cut=cut)
    return path / "clinical", path / "allocation"
