"""The death projection of a trial as the ``event-projection`` output makes it: the randomisations
still to come from the recruitment model (``future_arrivals``: the Poisson-gamma model of
``analysis.recruitment_projection``, stopped at the planned end of recruitment), the study's
planned end of recruitment, planned final analysis date and allocation ratio, and
``project_trial_deaths``, which feeds them to ``analysis.event_projection.project_deaths``.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analysis.event_projection import DEFAULT_DRAWS, DEFAULT_SEED, EventProjection, project_deaths

__all__ = ["future_arrivals", "recruitment_end", "planned_final_date", "allocation_ratio", "project_trial_deaths"]


# --------------------------------------------------------------------------- future randomisations
def future_arrivals(adsl: pd.DataFrame, sites, cut_date, target_n: int, recruitment_end=None,
                    draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED, model=None, site_col: str = "SITEID",
                    date_col: str = "RANDDT") -> np.ndarray:
    """Days after the cut of the randomisations still to come, shape (draws, target_n -
    randomised), NaN where nobody comes: none once the target is reached or the planned end of
    recruitment (``recruitment_end``) has passed, and none after that end. From the recruitment
    model (``analysis.recruitment_projection.sample_future_randomisations``: the Poisson-gamma
    model with site start-up, its parameters drawn per simulated future; ``model``: one already
    fitted on the same data and cut)."""
    from analysis.recruitment_projection import sample_future_randomisations
    cut = pd.Timestamp(cut_date).normalize()
    randomised = int((pd.to_datetime(adsl[date_col]) <= cut).sum()) if len(adsl) else 0
    n_needed = int(target_n) - randomised
    end_days = None if recruitment_end is None else (pd.Timestamp(recruitment_end) - cut).days
    if n_needed <= 0 or (end_days is not None and end_days <= 0) or not randomised:
        return np.full((int(draws), 0), np.nan)
    times = np.asarray(sample_future_randomisations(adsl, sites, cut.date(), n_needed, draws=draws, seed=seed,
                                                    site_col=site_col, date_col=date_col, model=model), float)
    times = np.where(np.isfinite(times), times, np.nan)
    if end_days is not None:
        times = np.where(times <= end_days, times, np.nan)
    return times


def recruitment_end(study) -> dt.date | None:
    """The planned end of recruitment (``[study] recruitment_end``), None when not set."""
    end = study.raw.get("study", {}).get("recruitment_end")
    return None if end is None else pd.Timestamp(str(end)).date()


def planned_final_date(study) -> dt.date | None:
    """The planned final analysis date: the planned end of recruitment plus the landmark day (the
    last participant randomised at the planned end reaches day 640); None without a planned end."""
    end = recruitment_end(study)
    return None if end is None else (pd.Timestamp(end) + pd.Timedelta(days=study.landmark_day)).date()


def allocation_ratio(study, n_arms: int):
    """The study's allocation ratio when it has one per arm, else None (equal)."""
    ratio = study.raw.get("arms", {}).get("ratio")
    return list(ratio) if ratio and len(ratio) == n_arms else None


def project_trial_deaths(study, adsl: pd.DataFrame, tte: pd.DataFrame, cut_date, sites=None,
                         target_n: int | None = None, group_col: str | None = None, groups=None,
                         draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED,
                         recruitment_model=None) -> EventProjection:
    """The death projection of a trial at a cut, as the ``event-projection`` output makes it:
    future randomisations from the recruitment model (``sites``, default the study's, up to
    ``target_n``, default the planned sample size, and to the planned end of recruitment), then
    :func:`project_deaths` (by arm when ``group_col`` is given) with the study's landmark,
    allocation ratio and planned final analysis date. ``adsl``: everyone randomised (the
    recruitment model's input); ``tte``: the survival parameter of the ITT population with
    ADSL's EOSSTT merged; ``recruitment_model``: the recruitment model already fitted on ``adsl``
    at the cut (``analysis.recruitment_model.fit_recruitment_model``), else fitted here."""
    arrivals = future_arrivals(adsl, study.sites if sites is None else sites, cut_date,
                               study.planned_n if target_n is None else target_n, recruitment_end(study),
                               draws=draws, seed=seed, model=recruitment_model, site_col=study.col("site"),
                               date_col=study.col("randomisation_date"))
    ratio = allocation_ratio(study, len(groups)) if group_col is not None else None
    return project_deaths(tte, cut_date, study.landmark_day, group_col=group_col, groups=groups, arrivals=arrivals,
                          allocation_ratio=ratio, draws=draws, seed=seed,
                          planned_final_date=planned_final_date(study))
