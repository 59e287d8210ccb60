"""Back-test of the death projection: do the prediction intervals hold what happened?

Simulates MIROCALS trials (``data_access.simulate.simulate_trial``, one per seed, to completion),
cuts each at several dates (``data_access.cut``: what was known at the cut), projects the deaths
as the ``event-projection`` output does (``analysis.event_projection_trial.project_trial_deaths``:
recruitment model for the participants still to come, hazard model chosen by AIC, dropout,
parameter uncertainty) and compares with the uncut trial:

- the date the primary analysis's deaths (within day 640) reach each target (30, 45, 60): the
  target-th such death, or "never" when the trial ends with fewer (an interval open at the top,
  i.e. not reached in that share of the draws, holds "never"); a target already reached at the
  cut is not forecast there;
- the number of deaths one year after the cut and at the final analysis.

Reports the coverage of the 50/80/95 % prediction intervals and the error of the median
(projected - true: days for dates, deaths for counts), by cut, by quantity and overall, as
Markdown tables.

    .venv/bin/python scripts/backtest_events.py                     # 20 seeds x 4 cuts, pooled
    .venv/bin/python scripts/backtest_events.py --by-arm            # the DSMB's total (arms fitted apart)
    .venv/bin/python scripts/backtest_events.py --seeds 3 --draws 500 --csv out.csv
    .venv/bin/python scripts/backtest_events.py --bench     # time the table: 220 and 20,000 subjects
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CUTS = ("2018-09-30", "2019-03-31", "2019-09-30", "2020-03-31")
TARGETS = (30, 45, 60)
FIRST_SEED = 2000
LEVELS = (50, 80, 95)


def _truth_dates(tte: pd.DataFrame, landmark: int) -> pd.Series:
    dead = tte[(tte["CNSR"] == 0) & (tte["AVAL"] <= landmark)]
    return pd.to_datetime(dead["ADT"]).sort_values().reset_index(drop=True)


def _interval_holds(lo, hi, truth) -> bool:
    """[lo, hi] holds the truth; NaT at the top means "not reached" (infinite), and a truth of NaT
    means "never"."""
    top = np.inf if pd.isna(hi) else hi
    bottom = np.inf if pd.isna(lo) else lo
    t = np.inf if pd.isna(truth) else truth
    if t is np.inf:
        return top is np.inf
    return (bottom is not np.inf) and bottom <= t and (top is np.inf or t <= top)


def backtest(seeds, cuts=CUTS, targets=TARGETS, draws: int = 2000, by_arm: bool = False, study=None,
             effect: str = "published") -> pd.DataFrame:
    """One row per (seed, cut, quantity) forecast: the truth, the projected median and intervals,
    whether each interval held the truth and the median's error."""
    from analysis.event_projection import QUANTILES
    from analysis.event_projection_trial import project_trial_deaths
    from data_access.cut import cut_adsl, cut_adtte
    from data_access.simulate import simulate_trial
    from data_access.study import load_study
    study = study or load_study()
    landmark = study.landmark_day
    rows = []
    for seed in seeds:
        trial = simulate_trial(study, seed=int(seed), effect=effect)
        adsl_all = trial.clinical["adsl"]
        os_all = trial.clinical["adtte"]
        os_all = os_all[os_all["PARAMCD"] == study.survival_paramcd]
        truth = _truth_dates(os_all, landmark)
        for cut in cuts:
            ts = pd.Timestamp(cut)
            adsl = cut_adsl(adsl_all, ts)
            later = set(adsl_all["USUBJID"]) - set(adsl["USUBJID"])
            tte = cut_adtte(os_all, ts, later).merge(adsl[["USUBJID", "RANDDT", "EOSSTT"]], on="USUBJID")
            group_col = groups = None
            if by_arm:
                tte = tte.merge(trial.allocation[["USUBJID", "ARM"]], on="USUBJID")
                group_col, groups = "ARM", tuple(study.arm_labels)
            p = project_trial_deaths(study, adsl, tte, ts, group_col=group_col, groups=groups, draws=draws,
                                     seed=int(seed))
            main = p.groups[-1]
            observed = p.observed(main)
            base = {"seed": seed, "cut": cut, "randomised": len(adsl), "observed": observed,
                    "model": p.fits[main][0].model if main in p.fits else "by arm"}
            for target in targets:
                if target <= observed:
                    continue
                days = p.target_days(main, target)
                q = {k: v for k, v in _quantiles(days, QUANTILES).items()}
                true = truth.iloc[target - 1] if target <= len(truth) else pd.NaT
                to_date = (lambda d: pd.NaT if not np.isfinite(d) else ts + pd.Timedelta(days=int(d)))
                row = {**base, "quantity": f"date of death {target}", "kind": "date",
                       "truth": true, "median": to_date(q["median"])}
                for level in LEVELS:
                    lo, hi = to_date(q[f"pi{level}_lower"]), to_date(q[f"pi{level}_upper"])
                    row[f"cov{level}"] = _interval_holds(lo, hi, true)
                row["error"] = ((row["median"] - true).days if pd.notna(true) and pd.notna(row["median"])
                                else np.nan)
                row["never"] = pd.isna(true)
                rows.append(row)
            one_year = ts + pd.Timedelta(days=365)
            for label, values, true in (
                    ("deaths one year after the cut", p.deaths_by_day(main, 365), int((truth <= one_year).sum())),
                    ("deaths at the final analysis", p.total_deaths(main), len(truth))):
                q = _quantiles(np.asarray(values, float), QUANTILES)
                row = {**base, "quantity": label, "kind": "count", "truth": true, "median": q["median"]}
                for level in LEVELS:
                    row[f"cov{level}"] = bool(q[f"pi{level}_lower"] <= true <= q[f"pi{level}_upper"])
                row["error"] = q["median"] - true
                row["never"] = False
                rows.append(row)
    return pd.DataFrame(rows)


def _quantiles(values: np.ndarray, quantiles: dict) -> dict:
    v = np.sort(values)
    n = len(v)
    return {k: v[max(int(np.ceil(q * n)) - 1, 0)] for k, q in quantiles.items()}


def summarize_backtest(results: pd.DataFrame, by: str) -> pd.DataFrame:
    """Coverage (%) of the 50/80/95 % intervals and the median error (median and IQR of
    projected - true) by ``by`` (a column) and overall."""
    def one(g, label):
        err = g["error"].dropna()
        unit = " days" if (g["kind"] == "date").all() else (" deaths" if (g["kind"] == "count").all() else "")
        return {by: label, "forecasts": len(g), **{f"{lvl}% PI coverage": f"{100 * g[f'cov{lvl}'].mean():.0f}%"
                                                   for lvl in LEVELS},
                "median error": (f"{err.median():+.0f}{unit} (IQR {err.quantile(0.25):+.0f} to "
                                 f"{err.quantile(0.75):+.0f})" if len(err) else "—")}
    out = [one(g, k) for k, g in results.groupby(by, sort=False)]
    return pd.DataFrame(out)


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)]
    return "\n".join(lines)


def bench(sizes=(None, 20000), cuts=("2019-06-30", None), repeat: int = 3) -> pd.DataFrame:
    """Seconds to build the ``event-projection`` table (a fresh view each time, so the hazard fit,
    the recruitment model and the simulation are all timed; median of ``repeat``) on demo snapshots
    of each size (None: the default 220) cut at each date (None: the study's completion), blinded
    (pooled) and unblinded (by arm)."""
    import tempfile
    from analysis.outputs import build_table
    from analysis.outputs.events import DRAWS, event_projection
    from data_access.demo import make_demo
    from data_access.views import open_view
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for cut in cuts:
                root = Path(tmp) / f"trial-{n}-{cut}"
                make_demo(root, n_subjects=n, cut=cut)
                for role in ("steering", "dsmb"):
                    times = []
                    for _ in range(repeat):
                        view = open_view(root, role, allocation_dir=root / "allocation" if role == "dsmb" else None)
                        start = time.perf_counter()
                        table = build_table("event-projection", view)
                        times.append(time.perf_counter() - start)
                    p = event_projection(view)
                    rows.append({"subjects": n or 220, "cut": view.cut_date, "view": "blinded (pooled)" if role ==
                                 "steering" else "unblinded (by arm)", "draws": DRAWS,
                                 "deaths observed": int(table["observed"].iloc[-1]),
                                 "at risk": p.at_risk[p.groups[-1]],
                                 "to come (median)": int(np.median(p.n_future)),
                                 "seconds": f"{float(np.median(times)):.2f}"})
                if n and str(view.cut_date) < str(view.study.raw["study"]["recruitment_end"]):
                    # the table projects to the study's planned N (304), reached long before by 20,000:
                    # time the same projection with the recruitment still to come to N = n as well
                    from analysis.event_projection_trial import project_trial_deaths
                    from analysis.outputs import get_adsl, get_tte
                    view = open_view(root, "steering")
                    adsl, tte = get_adsl(view, None), get_tte(view)
                    times = []
                    for _ in range(repeat):
                        start = time.perf_counter()
                        p = project_trial_deaths(view.study, adsl, tte, view.cut_date, target_n=n, draws=DRAWS)
                        times.append(time.perf_counter() - start)
                    rows.append({"subjects": n, "cut": view.cut_date, "view": f"blinded, projected to N = {n}",
                                 "draws": DRAWS, "deaths observed": p.observed("All"), "at risk": p.at_risk["All"],
                                 "to come (median)": int(np.median(p.n_future)),
                                 "seconds": f"{float(np.median(times)):.2f}"})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="number of simulated trials (default 20)")
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED)
    ap.add_argument("--cuts", default=",".join(CUTS), help="comma-separated cut dates")
    ap.add_argument("--targets", default=",".join(str(t) for t in TARGETS), help="death targets")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--by-arm", action="store_true", help="project by arm (the DSMB's total) instead of pooled")
    ap.add_argument("--effect", default="published", help="simulated treatment effect (published, null, strong)")
    ap.add_argument("--csv", help="write the per-forecast rows here")
    ap.add_argument("--bench", action="store_true", help="time the event-projection table instead")
    args = ap.parse_args(argv)
    if args.bench:
        print(to_markdown(bench()))
        return 0
    start = time.perf_counter()
    results = backtest(range(args.first_seed, args.first_seed + args.seeds), cuts=args.cuts.split(","),
                       targets=[int(t) for t in args.targets.split(",")], draws=args.draws, by_arm=args.by_arm,
                       effect=args.effect)
    elapsed = time.perf_counter() - start
    if args.csv:
        results.to_csv(args.csv, index=False)
    dates = results[results["kind"] == "date"]
    counts = results[results["kind"] == "count"]
    print(f"Death projection back-test: {args.seeds} simulated trials (seeds {args.first_seed}-"
          f"{args.first_seed + args.seeds - 1}, effect {args.effect}), cuts {args.cuts}, {args.draws} draws, "
          f"{'by arm (total)' if args.by_arm else 'pooled'}; {elapsed:.0f} s.\n")
    print(f"Date each target is reached ({int(dates['never'].sum())} of {len(dates)} forecasts: the trial never "
          "reaches the target, held by an interval open at the top):\n")
    print(to_markdown(summarize_backtest(dates, "quantity")))
    print()
    print(to_markdown(summarize_backtest(dates, "cut")))
    print()
    all_dates = summarize_backtest(dates.assign(all="all dates"), "all")
    print(to_markdown(all_dates))
    print("\nDeaths counted by the primary analysis:\n")
    print(to_markdown(summarize_backtest(counts, "quantity")))
    print("\nModels chosen (pooled fits):", results.drop_duplicates(["seed", "cut"])["model"].value_counts().to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
