"""Back-test of the recruitment projection: does the prediction interval hold the true date?

Simulates MIROCALS trials (``data_access.simulate.simulate_trial``, one per seed), cuts each at
several dates during recruitment (``data_access.cut.cut_adsl``: what was known at the cut),
projects the dates the trial reaches each target (``analysis.recruitment_projection``) and
compares them with the date the simulated trial actually reached it (the target-th
randomisation). Reports the coverage of the 50/80/95 % prediction intervals and the error of the
median (projected - true, days), by cut, by target and overall, as a Markdown table; a target
already reached at a cut is not forecast there. The planned N (304), never reached in a trial
that randomises 220, checks P(reached by the planned end) only (true answer: 0); with
``--subjects 304`` the trials reach it, before the planned end.

    .venv/bin/python scripts/backtest_recruitment.py                 # 20 seeds x 4 cuts
    .venv/bin/python scripts/backtest_recruitment.py --seeds 5 --draws 500 --csv out.csv
    .venv/bin/python scripts/backtest_recruitment.py --subjects 304   # trials that reach the planned N
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CUTS = ("2018-03-31", "2018-07-31", "2018-11-30", "2019-03-31")
TARGETS = (150, 200, None)          # None: the number the simulated trial randomised in the end
FIRST_SEED = 1000


def backtest(seeds, cuts=CUTS, targets=TARGETS, draws: int = 2000, study=None, project=None,
             n_subjects: int | None = None) -> pd.DataFrame:
    """One row per (seed, cut, target) forecast: the truth, the projected median and intervals,
    whether each interval held the truth, the median's error in days, P(by the planned end).

    ``targets``: numbers to randomise (None: the trial's final number); the study's planned N is
    added for the P(by planned end) check only (``kind`` "planned"). ``project``: the projection
    function (default ``fit_recruitment_projection``; another model can be passed to compare);
    ``n_subjects``: the number each simulated trial randomises (default: the simulator's 220)."""
    from analysis.recruitment_projection import fit_recruitment_projection
    from data_access.cut import cut_adsl
    from data_access.simulate import simulate_trial
    from data_access.study import load_study
    study = study or load_study()
    project = project or fit_recruitment_projection
    end = pd.Timestamp(str(study.raw["study"]["recruitment_end"]))
    rows = []
    for seed in seeds:
        adsl = simulate_trial(study, seed=int(seed), n_subjects=n_subjects).clinical["adsl"]
        true_dates = pd.to_datetime(adsl["RANDDT"]).sort_values().reset_index(drop=True)
        wanted = [len(true_dates) if t is None else int(t) for t in targets]
        for cut in cuts:
            seen = cut_adsl(adsl, pd.Timestamp(cut))
            open_targets = [t for t in dict.fromkeys(wanted) if t > len(seen)]
            planned = [int(study.planned_n)] if study.planned_n and study.planned_n > max(wanted) else []
            if not open_targets and not planned:
                continue
            p = project(seen, study.sites, cut, open_targets + planned, draws=draws, seed=int(seed),
                        planned_end=end)
            for r in p.table_.itertuples(index=False):
                truth = true_dates.iloc[r.target - 1] if r.target <= len(true_dates) else pd.NaT
                row = {"seed": seed, "cut": cut, "target": r.target, "randomised": len(seen),
                       "kind": "planned" if r.target in planned else "target", "truth": truth,
                       "median": r.median_date, "p_by_planned_end": r.p_by_planned_end,
                       "reached_by_end": bool(pd.notna(truth) and truth <= end), "lag_days": p.startup_.lag_days,
                       "ramp_days": p.startup_.ramp_days}
                for level in (50, 80, 95):
                    lo, hi = getattr(r, f"pi{level}_lower"), getattr(r, f"pi{level}_upper")
                    row[f"cov{level}"] = (bool(pd.notna(truth) and lo <= truth and (pd.isna(hi) or truth <= hi))
                                          if pd.notna(truth) else np.nan)
                row["error_days"] = ((r.median_date - truth).days if pd.notna(truth) and pd.notna(r.median_date)
                                     else np.nan)
                rows.append(row)
    return pd.DataFrame(rows)


def summarize_backtest(results: pd.DataFrame) -> pd.DataFrame:
    """Coverage (%) of the 50/80/95 % intervals and the median error (days: median, IQR) by cut,
    by target and overall, over the forecasts whose truth is known (kind "target")."""
    r = results[results["kind"] == "target"]

    def one(g, label):
        e = g["error_days"]
        return {"forecasts": label, "n": len(g), "cover 50 %": 100 * g["cov50"].mean(),
                "cover 80 %": 100 * g["cov80"].mean(), "cover 95 %": 100 * g["cov95"].mean(),
                "median error (days)": e.median(), "error IQR (days)": f"{e.quantile(.25):.0f} to {e.quantile(.75):.0f}",
                "mean abs error (days)": e.abs().mean()}

    out = [one(g, f"cut {c}") for c, g in r.groupby("cut")]
    final = r.groupby("seed")["target"].transform("max") == r["target"]
    label = np.where(final & ~r["target"].isin([150, 200]), "target = final N", "target " + r["target"].astype(str))
    out += [one(g, t) for t, g in r.groupby(label, sort=False)]
    out.append(one(r, "all"))
    return pd.DataFrame(out)


def summarize_planned_end(results: pd.DataFrame) -> pd.DataFrame:
    """Mean P(reached by the planned end) against how often it was, by kind of target."""
    g = results.groupby("kind")
    return pd.DataFrame({"forecasts": g.size(), "mean P(by planned end)": 100 * g["p_by_planned_end"].mean(),
                         "reached by planned end (%)": 100 * g["reached_by_end"].mean()}).reset_index()


def _markdown(df: pd.DataFrame, floatfmt: str = ".0f") -> str:
    cols = list(df.columns)
    fmt = lambda v: (f"{v:{floatfmt}}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="number of simulated trials (default 20)")
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED, help=f"first seed (default {FIRST_SEED})")
    ap.add_argument("--cuts", default=",".join(CUTS), help="cut dates, comma-separated")
    ap.add_argument("--draws", type=int, default=2000, help="simulation draws per forecast (default 2000)")
    ap.add_argument("--subjects", type=int, help="number each simulated trial randomises (default: 220)")
    ap.add_argument("--csv", help="write every forecast to this CSV")
    args = ap.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    t0 = time.perf_counter()
    res = backtest(seeds, cuts=tuple(args.cuts.split(",")), draws=args.draws, n_subjects=args.subjects)
    secs = time.perf_counter() - t0
    if args.csv:
        res.to_csv(args.csv, index=False)
    print(f"Recruitment projection back-test: {args.seeds} simulated trials of {args.subjects or 220} randomised "
          f"(seeds {seeds.start}-{seeds.stop - 1}) x cuts {args.cuts}; targets 150, 200 and the final N; "
          f"{args.draws} draws; {secs:.0f} s\n")
    print(_markdown(summarize_backtest(res)))
    print()
    print(_markdown(summarize_planned_end(res)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
