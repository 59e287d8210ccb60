"""Recruitment projection: when recruitment reaches its target(s), by simulation from the
Poisson-gamma model with site start-up fitted in ``analysis.recruitment_model`` (see its doc).

Every simulated future draws its own ``(L, tau, alpha, beta)`` from the model's grid posterior,
so the uncertainty of the fit reaches the interval, then each site's rate from its posterior
``Gamma(alpha + n_i, beta + H_i)`` (a site not yet recruiting: the prior, from activation + L),
and the arrivals exactly given the rates (unit-rate arrivals mapped through the cumulative
intensity).

:func:`sample_future_randomisations` returns the simulated arrivals (the recruitment still to
come, for the death forecast); :func:`fit_recruitment_projection` summarises them per target
(median date, 50/80/95 % prediction intervals, P(reached by the planned end)) with a monthly fan,
as a :class:`RecruitmentProjection`. The summaries of recruitment so far are in
``analysis.recruitment``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.recruitment import month_range
from analysis.recruitment_model import (LOG_ALPHA, LOG_MEAN_OFFSET, RecruitmentModel, SiteStartUp,
                                        compute_ramp_exposure, fit_recruitment_model, ramp_rate)

__all__ = ["DEFAULT_DRAWS", "HORIZON_DAYS", "QUANTILES", "RecruitmentProjection", "sample_future_randomisations",
           "fit_recruitment_projection"]

DEFAULT_DRAWS = 2000
HORIZON_DAYS = 3652             # 10 years: a date later than the cut + this is "beyond the horizon"
_BLOCK = 64                     # unit-rate arrivals are drawn in blocks of this many arrivals
_CHUNK = 256                    # and this many draws (see _unit_arrivals)
_SATURATED = 6.0                # after L + 6 tau a site's ramp is taken as complete (h > 0.9975)


# --------------------------------------------------------------------------- simulation
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


def _draw_parameters(model: RecruitmentModel, draws: int, seed: int):
    """Per draw: its (lag, ramp) config index and each site's full rate per day, (draws, sites):
    (config, alpha, mean) from the grid posterior (alpha and mean jittered within their cell),
    then each site's rate from its posterior Gamma(alpha + n_i, beta + H_i)."""
    rng = _rng(seed, 0)
    w = model.weights_
    cell = rng.choice(w.size, size=draws, p=w.ravel())
    c, ia, im = np.unravel_index(cell, w.shape)
    da = LOG_ALPHA[1] - LOG_ALPHA[0]
    dm = LOG_MEAN_OFFSET[1] - LOG_MEAN_OFFSET[0]
    a = np.exp(LOG_ALPHA[ia] + (rng.random(draws) - 0.5) * da)
    m = np.exp(model.log_means_[c, im] + (rng.random(draws) - 0.5) * dm)
    b = a / m
    expo = np.stack([compute_ramp_exposure(model.elapsed_, *cfg) for cfg in model.configs_])   # (C, sites)
    rates = rng.gamma(a[:, None] + model.counts_[None, :], 1.0 / (b[:, None] + expo[c]))
    return c, rates


def _unit_arrivals(seed: int, chunk: int, rows: int, n: int) -> np.ndarray:
    """(rows, n) arrival times of a unit-rate Poisson process (cumulative sums of unit
    exponentials) for the draws of chunk ``chunk`` (draws ``chunk * _CHUNK`` on), drawn in
    blocks of ``_BLOCK`` arrivals x ``_CHUNK`` draws from their own streams: the k-th arrival of
    draw d is the same whatever the number of arrivals or draws asked (``--target 304`` and
    ``--target 150,304`` give the same 304 row)."""
    out = np.empty((rows, n))
    total = np.zeros(rows)
    for b in range(0, n, _BLOCK):
        k = min(_BLOCK, n - b)
        e = _rng(seed, 1, b // _BLOCK, chunk).exponential(1.0, size=(_CHUNK, _BLOCK))[:rows, :k]
        out[:, b:b + k] = total[:, None] + np.cumsum(e, axis=1)
        total = out[:, b + k - 1]
    return out


def _arrival_days(elapsed: np.ndarray, lag: float, ramp: float, rates: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Days after the cut at which the cumulative intensity of the sites reaches ``u``, per draw.

    The intensity is tabulated daily until every site's ramp is complete (lag + 6 ramp after its
    activation), then extended linearly at the final rate. ``rates`` (draws, sites), ``u``
    (draws, k), ``elapsed``: days from each site's activation to the cut's end."""
    T = int(np.ceil(max(np.max(lag - elapsed), 0.0) + _SATURATED * ramp)) + 2
    t = np.arange(T + 1, dtype=float)
    grid = compute_ramp_exposure(elapsed[:, None] + t[None, :], lag, ramp) - compute_ramp_exposure(elapsed, lag, ramp)[:, None]
    lam = rates @ grid                                                   # (draws, T+1)
    slope = rates @ ramp_rate(elapsed + T, lag, ramp)                   # intensity after T
    out = np.empty_like(u)
    for i in range(len(u)):
        j = np.searchsorted(lam[i], u[i], side="left")                   # lam[j-1] < u <= lam[j]
        inside = j <= T
        jj = np.clip(j, 1, T)
        lo, hi = lam[i, jj - 1], lam[i, jj]
        step = np.where(hi > lo, (u[i] - lo) / np.where(hi > lo, hi - lo, 1.0), 1.0)
        out[i] = np.where(inside, jj - 1 + step, T + (u[i] - lam[i, T]) / slope[i])
    return out


def _simulate_chunks(model: RecruitmentModel, n_needed: int, draws: int, seed: int):
    """Yield (draw slice, (rows, n_needed) arrival days after the cut) chunk by chunk (memory:
    ``_CHUNK`` draws at a time)."""
    config, rates = _draw_parameters(model, draws, seed)
    for chunk, start in enumerate(range(0, draws, _CHUNK)):
        rows = slice(start, min(start + _CHUNK, draws))
        u = _unit_arrivals(seed, chunk, rows.stop - rows.start, n_needed)
        times = np.empty_like(u)
        cfg = config[rows]
        for c in np.unique(cfg):
            sel = cfg == c
            times[sel] = _arrival_days(model.elapsed_, *model.configs_[c], rates[rows][sel], u[sel])
        yield rows, times


def _simulate(model: RecruitmentModel, n_needed: int, draws: int, seed: int) -> np.ndarray:
    times = np.empty((draws, n_needed))
    for rows, chunk in _simulate_chunks(model, n_needed, draws, seed):
        times[rows] = chunk
    return times


def sample_future_randomisations(adsl: pd.DataFrame, sites, cut_date, n_needed: int, draws: int = DEFAULT_DRAWS,
                                 seed: int = 1, lag_days: float | None = None, ramp_days: float | None = None,
                                 site_col: str = "SITEID", date_col: str = "RANDDT",
                                 model: RecruitmentModel | None = None) -> np.ndarray:
    """Simulated times of the next ``n_needed`` randomisations after ``cut_date``.

    The contract (the death forecast relies on it):

    - returns a float array of shape ``(draws, n_needed)``; row ``d`` is one simulated future of
      the trial's recruitment, sorted ascending: ``out[d, k]`` is the time of the (k+1)-th
      randomisation after the cut, in days after the end of the cut date (> 0). Its calendar
      date is ``cut_date + ceil(out[d, k])`` days; as a survival time origin use the float as it
      is.
    - every value is finite but may be very large (a site rate drawn near 0): compare with your
      own horizon; :data:`HORIZON_DAYS` is the one the projection table uses.
    - the model is the module's Poisson-gamma model with site start-up (see the module doc),
      fitted on ``adsl`` and ``sites`` at ``cut_date`` (or the given ``model`` from
      :func:`fit_recruitment_model`); the uncertainty of the fit is in the spread between rows.
    - seeded: the same arguments give identical arrays; the first ``k`` columns do not depend on
      ``n_needed`` (asking for more randomisations extends each row, it does not redraw it), and
      are those :func:`fit_recruitment_projection` summarises with the same seed and draws.
    - ``n_needed <= 0`` gives an array with 0 columns. Recruitment is not stopped at the planned
      end: the caller decides what happens after it.

    Parameters
    ----------
    adsl : randomised subjects (``site_col``, ``date_col``); rows after the cut are ignored.
    sites : site list with ``id`` and ``activated`` (``Study.sites``, dicts or a DataFrame);
        sites activated after the cut enter when they can (activation + lag, then the ramp-up).
    cut_date : data cut-off.
    n_needed : number of future randomisations to simulate (e.g. target - randomised).
    draws, seed : number of simulated futures and the seed (``numpy.random.default_rng``).
    lag_days, ramp_days : fix the site lag and ramp-up instead of estimating them.
    """
    model = model or fit_recruitment_model(adsl, sites, cut_date, lag_days=lag_days, ramp_days=ramp_days,
                                           site_col=site_col, date_col=date_col)
    n_needed = max(int(n_needed), 0)
    if n_needed == 0:
        return np.empty((int(draws), 0))
    return _simulate(model, n_needed, int(draws), int(seed))


# --------------------------------------------------------------------------- the projection
QUANTILES = {"median": 0.5, "pi50_lower": 0.25, "pi50_upper": 0.75, "pi80_lower": 0.1, "pi80_upper": 0.9,
             "pi95_lower": 0.025, "pi95_upper": 0.975}


@dataclass
class RecruitmentProjection:
    """Result of :func:`fit_recruitment_projection`.

    ``table_``: one row per target (target, median_date, pi50/pi80/pi95 lower and upper,
    p_by_planned_end; dates are Timestamps, NaT beyond the horizon; a target reached by the cut
    has its actual date in every date column and p 1 or 0); ``fan_``: month, median, lower80,
    upper80, lower95, upper95 of the cumulative number randomised at each month end, from the
    cut's month to the month the largest target is reached in 97.5 % of draws (capped at that
    target and at the horizon); ``model_``: the fitted :class:`RecruitmentModel`."""
    cut_date: dt.date
    targets: tuple
    n_randomised: int
    planned_end: dt.date | None
    draws: int
    seed: int
    horizon_days: int
    table_: pd.DataFrame
    fan_: pd.DataFrame
    model_: RecruitmentModel = field(repr=False)

    @property
    def target(self) -> int:
        """The first target (the planned sample size when none was given)."""
        return int(self.targets[0])

    @property
    def sites_(self) -> pd.DataFrame:
        return self.model_.sites_

    @property
    def startup_(self) -> SiteStartUp:
        return self.model_.startup_

    def row(self, target: int | None = None) -> pd.Series:
        """The table row of ``target`` (default: the first)."""
        t = self.target if target is None else int(target)
        return self.table_[self.table_["target"] == t].iloc[0]

    @property
    def horizon_date(self) -> dt.date:
        return self.cut_date + dt.timedelta(days=self.horizon_days)


def _day_to_ts(cut: pd.Timestamp, days: float, horizon: float):
    return cut + pd.Timedelta(days=int(np.ceil(days))) if days <= horizon else pd.NaT


def fit_recruitment_projection(adsl: pd.DataFrame, sites, cut_date, targets, draws: int = DEFAULT_DRAWS,
                               seed: int = 1, planned_end=None, lag_days: float | None = None,
                               ramp_days: float | None = None, horizon_days: int = HORIZON_DAYS, site_col: str = "SITEID",
                               date_col: str = "RANDDT", model: RecruitmentModel | None = None) -> RecruitmentProjection:
    """Project when recruitment reaches each of ``targets`` (see the module doc for the model).

    Parameters
    ----------
    adsl, sites, cut_date, lag_days, ramp_days, site_col, date_col : as :func:`fit_recruitment_model`.
    targets : an int or a sequence of ints (total numbers randomised); one row each, in the
        order given (duplicates dropped).
    draws, seed : simulated futures and seed; the same arguments give identical results.
    planned_end : the planned end of recruitment (``[study] recruitment_end``): the table's
        ``p_by_planned_end`` is the share of draws reaching the target on or before it (NaN
        without one).
    horizon_days : dates later than the cut + this many days are NaT (missing).
    model : a model already fitted on the same data and cut (:func:`fit_recruitment_model`).

    Returns
    -------
    RecruitmentProjection
    """
    targets = tuple(dict.fromkeys(int(t) for t in np.atleast_1d(targets)))
    if not targets or min(targets) < 1:
        raise ValueError(f"targets must be positive numbers, got {targets}")
    model = model or fit_recruitment_model(adsl, sites, cut_date, lag_days=lag_days, ramp_days=ramp_days,
                                           site_col=site_col, date_col=date_col)
    cut = pd.Timestamp(model.cut_date)
    end = pd.Timestamp(planned_end).normalize() if planned_end is not None else None
    n0, draws = model.n_randomised, int(draws)
    need = max(max(targets) - n0, 0)
    open_targets = [t for t in targets if t > n0]
    month_list = month_range(cut.strftime("%Y-%m"), (cut + pd.Timedelta(days=horizon_days)).strftime("%Y-%m"))
    ends = np.array([(pd.Period(m, "M").end_time.normalize() - cut).days for m in month_list], float)
    finish = np.empty((draws, len(open_targets)))
    counts = np.empty((draws, len(ends)))
    if need:                           # chunk by chunk: only the targets' dates and the month-end counts kept
        cols = [t - n0 - 1 for t in open_targets]
        for rows, times in _simulate_chunks(model, need, draws, int(seed)):
            finish[rows] = times[:, cols]
            counts[rows] = [np.searchsorted(row, ends, side="right") for row in times]
    rows = []
    for target in targets:
        row = {"target": target}
        if target <= n0:                          # reached by the cut: its actual date
            when = pd.Timestamp(model.randomised_dates_[target - 1])
            row.update({k: when for k in QUANTILES})
            row["p_by_planned_end"] = np.nan if end is None else float(when <= end)
        else:
            f = finish[:, open_targets.index(target)]
            q = np.quantile(f, list(QUANTILES.values()))
            row.update({k: _day_to_ts(cut, x, horizon_days) for k, x in zip(QUANTILES, q)})
            row["p_by_planned_end"] = (np.nan if end is None else
                                       float(np.mean(np.ceil(f) <= (end - cut).days)))
        rows.append(row)
    table = pd.DataFrame(rows).rename(columns={"median": "median_date"})
    for c in table.columns:
        if c not in ("target", "p_by_planned_end"):
            table[c] = pd.to_datetime(table[c])
    fan_cols = ["month", "median", "lower80", "upper80", "lower95", "upper95"]
    fan = pd.DataFrame(columns=fan_cols)
    if need:                           # to the month the largest target is reached in 97.5 % of draws
        last = np.quantile(finish[:, open_targets.index(max(open_targets))], 0.975)
        keep = int(np.searchsorted(ends, min(last, horizon_days), side="left")) + 1
        qs = np.quantile(n0 + counts[:, :keep], [0.5, 0.1, 0.9, 0.025, 0.975], axis=0)
        fan = pd.DataFrame({"month": month_list[:keep], **{c: qs[i] for i, c in enumerate(fan_cols[1:])}})
    return RecruitmentProjection(model.cut_date, targets, n0, end.date() if end is not None else None, draws,
                                 int(seed), int(horizon_days), table, fan, model)
