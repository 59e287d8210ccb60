"""Projection of deaths: when a number of deaths (the final analysis's planned deaths) is reached
and how many deaths the primary analysis will count, by simulation from a hazard model fitted to
the deaths observed so far.

The endpoint is the primary analysis's: death within ``landmark_day`` (640) days of
randomisation; a participant is followed to that day, so the final analysis is on the date the
last participant randomised reaches it.

- The hazard of death and the dropout hazard are fitted in ``analysis.event_hazards``
  (exponential, Weibull or piecewise exponential by AIC; exponential dropout). Who is where at
  the cut (dead, lost, at risk) is :func:`follow_up_status`: lost are participants censored
  before day 640 and before the cut who are no longer followed (ADSL ``EOSSTT`` not ongoing;
  without ADSL status, censored before the cut).
- Each simulation draw takes the hazard parameters from the asymptotic normal of their logs
  (observed information), the dropout rate from its gamma posterior (Jeffreys prior), the future
  randomisations given as ``arrivals`` (for a trial: the recruitment model, see
  ``analysis.event_projection_trial``), and then the death time of everyone still at risk, given
  survival to their follow-up at the cut, and of everyone still to come. A death counts when it
  falls before dropout and by day 640.
- By arm (an unblinded view), each arm has its own fit, its own at-risk participants and the
  future randomisations allocated to it by the allocation ratio; the total is the sum of the
  arms' deaths within each draw.

``project_deaths`` returns an :class:`EventProjection` (summary per target, fan, observed
curve). Pure: DataFrames in, results out; seeded (same inputs and seed -> identical results).
The trial-level entry point (study settings, recruitment to come) is
``analysis.event_projection_trial.project_trial_deaths``; the fan chart is
``analysis.figures_events.plot_event_projection``.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.event_hazards import DEFAULT_BREAKS, HazardFit, fit_dropout, fit_hazard_models

__all__ = ["DEFAULT_DRAWS", "DEFAULT_SEED", "QUANTILES", "follow_up_status", "project_deaths", "EventProjection"]

DEFAULT_DRAWS = 2000
DEFAULT_SEED = 20170619
QUANTILES = {"median": 0.5, "pi50_lower": 0.25, "pi50_upper": 0.75, "pi80_lower": 0.1, "pi80_upper": 0.9,
             "pi95_lower": 0.025, "pi95_upper": 0.975}


# --------------------------------------------------------------------------- who is where at the cut
def follow_up_status(tte: pd.DataFrame, cut_date, landmark_day: int) -> pd.DataFrame:
    """Each participant's state at the cut for the landmark endpoint: ``origin`` (randomisation
    date: STARTDT, else RANDDT), ``time`` (follow-up to the landmark, days), ``death`` (died by
    the landmark), ``lost`` (censored before the landmark and before the cut, and no longer
    followed: ADSL EOSSTT other than ONGOING when present), ``at_risk`` (alive, followed, short of
    the landmark: may still die within it)."""
    cut = pd.Timestamp(cut_date).normalize()
    origin_col = "STARTDT" if "STARTDT" in tte.columns else "RANDDT"
    origin = pd.to_datetime(tte[origin_col]).dt.normalize()
    aval = pd.to_numeric(tte["AVAL"], errors="coerce").to_numpy(float)
    cnsr = pd.to_numeric(tte["CNSR"], errors="coerce").to_numpy(float)
    keep = np.isfinite(aval) & np.isfinite(cnsr) & origin.notna().to_numpy()
    death = keep & (cnsr == 0) & (aval <= landmark_day)
    censored = keep & ~death
    end = (pd.to_datetime(tte["ADT"]).dt.normalize() if "ADT" in tte.columns
           else origin + pd.to_timedelta(aval, unit="D"))
    before_cut = (end < cut).to_numpy() & end.notna().to_numpy()
    if "EOSSTT" in tte.columns:
        status = tte["EOSSTT"].astype(object).fillna("ONGOING").astype(str).str.upper().to_numpy()
        not_followed = status != "ONGOING"
    else:
        not_followed = np.ones(len(tte), bool)
    short = aval < landmark_day
    lost = censored & short & before_cut & not_followed
    at_risk = censored & short & ~lost
    return pd.DataFrame({"origin": origin, "time": np.minimum(np.where(keep, aval, 0.0), landmark_day),
                         "death": death, "lost": lost, "at_risk": at_risk, "used": keep}, index=tte.index)


# --------------------------------------------------------------------------- simulation
def _cumhaz_draws(fit: HazardFit, logp: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cumulative hazard at times ``t`` (participants) for each draw (rows of ``logp``), shape
    (draws, participants), in the dtype of ``logp``."""
    t = np.asarray(t, logp.dtype)[None, :]
    if fit.model == "exponential":
        return np.exp(logp[:, :1]) * t
    if fit.model == "weibull":
        return (t / np.exp(logp[:, 1:2])) ** np.exp(logp[:, :1])
    c = np.asarray(fit.breaks, logp.dtype)
    rates = np.exp(logp)
    at = _piece_starts(rates, c)
    j = np.searchsorted(c, t[0], side="right") - 1
    return at[:, j] + rates[:, j] * (t - c[j])


def _piece_starts(rates: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Cumulative hazard at the start of each piece, per draw."""
    return np.concatenate([np.zeros((len(rates), 1), rates.dtype), np.cumsum(rates[:, :-1] * np.diff(c), axis=1)],
                          axis=1)


def _invert_cells(fit: HazardFit, logp: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The time T with H(T) = u, cell by cell: cell i has the parameters of draw ``rows[i]``
    (rows of ``logp``) and cumulative hazard ``u[i]``."""
    if fit.model == "exponential":
        return u / np.exp(logp[rows, 0])
    if fit.model == "weibull":
        return np.exp(logp[rows, 1]) * u ** (1.0 / np.exp(logp[rows, 0]))
    c = np.asarray(fit.breaks, logp.dtype)
    rates = np.exp(logp)
    at = _piece_starts(rates, c)
    j = np.zeros(len(u), dtype=np.intp)
    for m in range(1, len(c)):
        j += u >= at[rows, m]
    return c[j] + (u - at[rows, j]) / rates[rows, j]


def _death_times(fit: HazardFit, logp: np.ndarray, t0: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Death times T > t0 (days from randomisation) given survival to t0, for each draw (rows of
    ``logp``) and participant (``t0``): the cumulative hazard inverted at H(t0) + e, ``e`` unit
    exponential, shape (draws, participants)."""
    u = _cumhaz_draws(fit, logp, t0) + e
    rows = np.repeat(np.arange(len(logp)), u.shape[1])
    return _invert_cells(fit, logp, rows, u.ravel()).reshape(u.shape)


def _deaths_by(fit: HazardFit, logp: np.ndarray, t0: np.ndarray, landmark: float, rng) -> tuple:
    """Which (draw, participant) cells die by the landmark, and when: the cell dies by day L when
    its unit exponential e <= H(L) - H(t0), and only those cells' times are inverted. Returns
    (draw index, participant index, death time)."""
    h0 = _cumhaz_draws(fit, logp, t0)
    e = rng.standard_exponential(h0.shape, dtype=logp.dtype)
    room = _cumhaz_draws(fit, logp, np.array([landmark])) - h0
    r, c = np.nonzero(e <= room)
    return r, c, _invert_cells(fit, logp, r, h0[r, c] + e[r, c])


def _sorted_quantiles(values: np.ndarray) -> dict:
    """The QUANTILES of the draws (axis 0) by the inverted empirical CDF, so each is a value some
    draw had (a day, a count); inf (not reached) stays inf."""
    v = np.sort(values, axis=0)
    n = len(v)
    return {k: v[max(int(math.ceil(q * n)) - 1, 0)] for k, q in QUANTILES.items()}


@dataclass
class EventProjection:
    """Result of :func:`project_deaths`. Days are counted from the cut date (day 1 = the day
    after the cut).

    ``groups``: the groups projected ("All" pooled; each arm then "Total" by arm);
    ``fits``: group -> (chosen HazardFit, candidates) ("Total" has none); ``dropout``: group ->
    DropoutFit; ``observed_dates``: group -> sorted dates of the deaths counted so far;
    ``counts``: group -> (draws, horizon) future deaths per day; ``final_days``: per draw, the
    day the last participant reaches the landmark; ``planned_final_date``: the planned final
    analysis date (planned end of recruitment + landmark), None when unknown."""
    cut_date: dt.date
    landmark_day: int
    draws: int
    seed: int
    groups: list
    fits: dict
    dropout: dict
    observed_dates: dict
    at_risk: dict
    counts: dict
    final_days: np.ndarray
    planned_final_date: dt.date | None
    n_future: np.ndarray
    start_date: dt.date | None = None
    _cum: dict = field(default_factory=dict, repr=False)

    def cumulative(self, group) -> np.ndarray:
        """(draws, horizon) future deaths to each day (int32)."""
        if group not in self._cum:
            self._cum[group] = np.cumsum(self.counts[group], axis=1, dtype=np.int32)
        return self._cum[group]

    def observed(self, group) -> int:
        return len(self.observed_dates[group])

    def _date(self, day) -> pd.Timestamp:
        if not np.isfinite(day):
            return pd.NaT
        return pd.Timestamp(self.cut_date) + pd.Timedelta(days=int(day))

    def target_days(self, group, target: int) -> np.ndarray:
        """Per draw, the day (after the cut; <= 0 when reached before it) the group's deaths reach
        ``target``; inf when the primary analysis never counts that many."""
        target = int(target)
        obs = self.observed_dates[group]
        if target <= len(obs):
            day = (pd.Timestamp(obs[target - 1]) - pd.Timestamp(self.cut_date)).days if target > 0 else 0
            return np.full(self.draws, float(day))
        need = target - len(obs)
        cum = self.cumulative(group)
        if cum.shape[1] == 0:
            return np.full(self.draws, np.inf)
        hit = cum >= need
        return np.where(hit[:, -1], hit.argmax(axis=1).astype(float), np.inf)

    def deaths_by_day(self, group, day: int) -> np.ndarray:
        """Per draw, the deaths counted (observed + future) by day ``day`` after the cut."""
        cum = self.cumulative(group)
        base = sum(1 for d in self.observed_dates[group]
                   if pd.Timestamp(d) <= pd.Timestamp(self.cut_date) + pd.Timedelta(days=int(day)))
        if day <= 0 or cum.shape[1] == 0:
            return np.full(self.draws, base)
        return base + cum[:, min(int(day), cum.shape[1] - 1)]

    def total_deaths(self, group) -> np.ndarray:
        """Per draw, the deaths the final analysis counts (every participant to the landmark)."""
        cum = self.cumulative(group)
        return self.observed(group) + (cum[:, -1] if cum.shape[1] else 0)

    def summary(self, targets: dict) -> pd.DataFrame:
        """One row per group and target: ``targets`` maps group -> list of targets (the deaths in
        that group). Dates are Timestamps (NaT: not reached in that share of draws)."""
        planned = None if self.planned_final_date is None else (
            pd.Timestamp(self.planned_final_date) - pd.Timestamp(self.cut_date)).days
        rows = []
        for group in self.groups:
            total = _sorted_quantiles(self.total_deaths(group).astype(float))
            final = _sorted_quantiles(self.final_days)["median"]
            fit = self.fits.get(group, (None,))[0]
            surv = (float(fit.survival(self.landmark_day)) if fit is not None else
                    sum(f.n * float(f.survival(self.landmark_day)) for f, _ in self.fits.values())
                    / sum(f.n for f, _ in self.fits.values()))
            for target in targets.get(group, []):
                days = self.target_days(group, target)
                q = _sorted_quantiles(days)
                rows.append({
                    "group": group, "target": int(target), "observed": self.observed(group),
                    **{("median_date" if k == "median" else k): self._date(v) for k, v in q.items()},
                    "p_by_planned_end": float(np.mean(days <= planned)) if planned is not None else np.nan,
                    "p_reached": float(np.mean(np.isfinite(days))),
                    "expected_by_final": total["median"],
                    "expected_by_final_lower80": total["pi80_lower"],
                    "expected_by_final_upper80": total["pi80_upper"],
                    "expected_by_final_lower95": total["pi95_lower"],
                    "expected_by_final_upper95": total["pi95_upper"],
                    "final_date": self._date(final),
                    "surv_landmark": surv,
                    "model": fit.label if fit is not None else "Sum of the arms",
                })
        return pd.DataFrame(rows)

    def fan(self, group, step: int = 7, quantile_end: float = 0.975) -> pd.DataFrame:
        """Cumulative deaths (observed + projected) from the cut every ``step`` days to the day the
        last participant reaches the landmark in ``quantile_end`` of draws: date, median, lower80,
        upper80, lower95, upper95."""
        cum = self.cumulative(group)
        obs = self.observed(group)
        end = int(min(np.sort(self.final_days)[max(int(math.ceil(quantile_end * self.draws)) - 1, 0)],
                      cum.shape[1] - 1)) if cum.shape[1] else 0
        days = np.unique(np.append(np.arange(0, end + 1, step), end))
        values = np.zeros((self.draws, len(days))) + obs
        if cum.shape[1]:
            values = values + np.where(days[None, :] > 0, cum[:, np.clip(days, 0, cum.shape[1] - 1)], 0)
        q = {k: np.quantile(values, p, axis=0, method="inverted_cdf") for k, p in
             (("median", 0.5), ("lower80", 0.1), ("upper80", 0.9), ("lower95", 0.025), ("upper95", 0.975))}
        return pd.DataFrame({"date": pd.Timestamp(self.cut_date) + pd.to_timedelta(days, unit="D"), **q})

    def observed_curve(self, group, start=None) -> pd.DataFrame:
        """Cumulative deaths counted so far: date, deaths (a step at each death date), from
        ``start`` (default: the first death) to the cut."""
        dates = pd.to_datetime(pd.Series(self.observed_dates[group], dtype="datetime64[ns]"))
        counts = dates.value_counts().sort_index().cumsum()
        first = pd.Timestamp(start) if start is not None else (counts.index.min() if len(counts) else
                                                                   pd.Timestamp(self.cut_date))
        out = pd.DataFrame({"date": [first, *counts.index, pd.Timestamp(self.cut_date)],
                            "deaths": [0, *counts.to_numpy(), self.observed(group)]})
        return out.sort_values("date", kind="stable").reset_index(drop=True)


def project_deaths(tte: pd.DataFrame, cut_date, landmark_day: int = 640, group_col: str | None = None,
                   groups=None, arrivals: np.ndarray | None = None, allocation_ratio=None,
                   draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED, breaks=DEFAULT_BREAKS,
                   planned_final_date=None, chunk_cells: int = 2_000_000) -> EventProjection:
    """Simulate the deaths still to come to the final analysis (module doc).

    Parameters
    ----------
    tte : one row per participant of the survival parameter (AVAL days, CNSR, STARTDT or RANDDT,
        ADT; EOSSTT from ADSL when available; ``group_col`` by arm).
    cut_date : the data cut-off.
    landmark_day : the primary analysis's follow-up (deaths after it are not counted).
    group_col, groups : by arm (each group fitted and simulated on its own, plus "Total"); None
        pooled ("All").
    arrivals : days after the cut of the randomisations to come, (draws, m), NaN for none
        (``future_arrivals``); None: nobody more.
    allocation_ratio : the arms' ratio (default equal) by which a future participant joins an arm.
    draws, seed : simulation size and seed (``numpy.random.default_rng``).
    planned_final_date : the planned final analysis date (for ``p_by_planned_end``).
    chunk_cells : draws are simulated in chunks of about this many draw x participant cells.
    """
    cut = pd.Timestamp(cut_date).normalize()
    draws = int(draws)
    rng = np.random.default_rng(seed)
    status = follow_up_status(tte, cut, landmark_day)
    if not status["used"].any():
        raise ValueError("no participant with a follow-up time")
    arr = np.full((draws, 0), np.nan) if arrivals is None else np.asarray(arrivals, float)
    if arr.shape[0] != draws:
        raise ValueError(f"arrivals has {arr.shape[0]} rows for {draws} draws")
    valid_arr = np.isfinite(arr)
    by_arm = group_col is not None
    labels = list(groups) if by_arm else ["All"]
    if by_arm:
        ratio = np.asarray(allocation_ratio if allocation_ratio is not None else [1] * len(labels), float)
        arm_of_arrival = np.searchsorted(np.cumsum(ratio / ratio.sum()), rng.random(arr.shape), side="right")
        arm_of_arrival = np.minimum(arm_of_arrival, len(labels) - 1)
    origin_days = (status["origin"] - cut).dt.days.to_numpy(float)
    last_current = np.nanmax(np.where(status["used"], origin_days, np.nan)) + landmark_day
    last_future = (np.where(valid_arr, arr, -np.inf).max(axis=1) if arr.shape[1] else np.full(draws, -np.inf))
    final_days = np.maximum(last_current, last_future + landmark_day)
    horizon = int(max(np.ceil(final_days.max()), 0)) + 2
    fits, dropout, observed, at_risk, counts = {}, {}, {}, {}, {}
    for gi, label in enumerate(labels):
        rows = (tte[group_col] == label).to_numpy() if by_arm else np.ones(len(tte), bool)
        st = status[rows & status["used"].to_numpy()]
        if not len(st):
            raise ValueError(f"no participant in group {label!r}")
        chosen, candidates = fit_hazard_models(st["time"].to_numpy(), st["death"].to_numpy(), breaks)
        drop = fit_dropout(st["time"].to_numpy(), st["lost"].to_numpy())
        fits[label], dropout[label] = (chosen, candidates), drop
        died = st[st["death"]]
        observed[label] = sorted((died["origin"] + pd.to_timedelta(died["time"], unit="D")).tolist())
        risk = st[st["at_risk"]]
        at_risk[label] = len(risk)
        t0 = risk["time"].to_numpy(float)
        off0 = origin_days[rows & status["used"].to_numpy()][st["at_risk"].to_numpy()]
        mine = valid_arr & (arm_of_arrival == gi) if by_arm else valid_arr
        logp = chosen.draw(rng, draws)
        mu = drop.draw(rng, draws)
        per_day = np.zeros((draws, horizon), dtype=np.int32)
        width = len(t0) + arr.shape[1]
        step = max(1, int(chunk_cells // max(width, 1)))
        for a in range(0, draws, step):
            b = min(a + step, draws)
            parts = []
            lp = logp[a:b].astype(np.float32)
            if len(t0):
                r, c, t = _deaths_by(chosen, lp, t0.astype(np.float32), landmark_day, rng)
                parts.append((r, t, t0[c], off0[c]))
            if arr.shape[1]:
                r, c, t = _deaths_by(chosen, lp, np.zeros(arr.shape[1], np.float32), landmark_day, rng)
                keep = mine[a:b][r, c]
                r, c, t = r[keep], c[keep], t[keep]
                parts.append((r, t, 0.0, arr[a:b][r, c]))
            for r, t, start, offset in parts:
                # a death before day L counts unless the participant drops out first: dropout time
                # after ``start`` exponential with the draw's rate (drawn only for these deaths)
                kept = rng.standard_exponential(len(r)) > mu[a + r] * (t - start)
                day = np.clip(np.ceil(offset[kept] + t[kept]).astype(np.int64), 1, horizon - 1)
                flat = r[kept] * horizon + day
                per_day[a:b] += np.bincount(flat, minlength=(b - a) * horizon).reshape(b - a, horizon).astype(np.int32)
        counts[label] = per_day
    if by_arm:
        total = "Total"
        counts[total] = sum(counts[g] for g in labels)
        observed[total] = sorted(d for g in labels for d in observed[g])
        at_risk[total] = sum(at_risk[g] for g in labels)
        labels = labels + [total]
    planned = None if planned_final_date is None else pd.Timestamp(planned_final_date).date()
    return EventProjection(cut.date(), int(landmark_day), draws, int(seed), labels, fits, dropout, observed, at_risk,
                           counts, final_days, planned, valid_arr.sum(axis=1),
                           status.loc[status["used"], "origin"].min().date())
