"""Are the forecast bands honest on histories that change? (docs/backtest.md, issue 14)

For each setting — today's stationary demo, each ingredient of ``salesim demo-data`` alone
(docs/demo-data.md, "Changing histories", at its ``--realistic`` magnitude) and all of them
together — and each seed: generate ``--quarters`` quarters of history for ``--reps`` seats,
backtest its last ``--folds`` quarter-end cutoffs (calibrating on each cut history, as
``salesim backtest`` does), and score every fold. Per setting and pooled over the changing
settings: P10–P90 coverage with its exact 90 % interval, mean PIT, the chi-square test of PIT
uniformity, CRPS against the better of the two baselines, and the P50's mean absolute
percentage error; the open- and new-pipeline parts' coverage and mean PIT.

    python benchmarks/honesty.py                      # the protocol: 5 seeds × 7 folds
    python benchmarks/honesty.py --steady             # the same with the pooled model
    python benchmarks/honesty.py --truth              # the generating model: engine error
    python benchmarks/honesty.py --close-dates        # reps set and push close dates: slip model
    python benchmarks/honesty.py --close-dates --no-slips   # the same histories without it
    python benchmarks/honesty.py --settings stationary,drift --seeds 2 --out h.json

Runs (setting, seed) pairs on ``--jobs`` processes; results do not depend on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AS_OF = dt.date(2026, 9, 30)
SETTINGS = ("stationary", "drift", "growth", "seasonality", "slips", "shocks", "leavers", "all")


def ingredients(setting: str):
    from salesim.simulator.demo_ingredients import REALISTIC, Ingredients

    if setting == "stationary":
        return Ingredients()
    if setting == "all":
        return Ingredients(**REALISTIC)
    return Ingredients(**{setting: REALISTIC[setting]})


def run_one(args) -> list[dict]:
    """Every fold of one (setting, seed): its scores, as plain numbers."""
    setting, seed, opts = args
    from salesim.calibrate.fit import calibrate
    from salesim.scenarios.backtest import backtest, quarter_cutoffs
    from salesim.simulator.demo_history import generate

    hist = generate(
        10_000 + seed,
        reps=opts["reps"],
        quarters=opts["quarters"],
        as_of=AS_OF,
        ingredients=ingredients(setting),
        close_dates=opts["close_dates"],
    )
    h = hist.to_history()
    steady, slips = opts["steady"], not opts["no_slips"]

    def fit(known, cutoff):
        m = calibrate(known, cutoff, calendar=not steady)
        return m if slips else dataclasses.replace(m, slips=None)

    if opts["truth"]:
        fit = truth_fit(hist)

    r = backtest(
        h,
        quarter_cutoffs(h, opts["folds"]),
        trials=opts["trials"],
        seed=seed,
        engine="vector",
        fit=fit,
    )
    out = []
    for f in r.folds:
        d = f.to_dict()
        out.append(
            {
                "setting": setting,
                "seed": seed,
                "cutoff": str(f.cutoff),
                "actual": f.actual,
                "p10": f.p10,
                "p50": f.p50,
                "p90": f.p90,
                "pit": f.pit,
                "crps": f.crps,
                "covered": f.covered,
                "ape_p50": d["ape_p50"],
                "stage_weighted": f.stage_weighted,
                "last_quarter": f.last_quarter,
                "open": d["open"],
                "new": d["new"],
            }
        )
    return out


def truth_fit(hist):
    """The model that generated the history as a forecaster at the cutoff would know it
    (``truth_as_of``: no later shocks), with the team on the team then, each rep at its true
    activity level."""

    from salesim.calibrate.team import snapshot
    from salesim.simulator.demo_ingredients import truth_as_of

    level = dict(zip(hist.multipliers["owner"], np.log(hist.multipliers["multiplier"])))

    def fit(known, cutoff):
        reps, _, _ = snapshot(known, cutoff)
        reps = tuple(
            dataclasses.replace(r, level=float(level[r.name]), level_sd=0.0)
            if r.name in level
            else r
            for r in reps
        )
        m = truth_as_of(hist.truth, cutoff)
        return dataclasses.replace(m, team=dataclasses.replace(m.team, reps=reps))

    return fit


def summarise(folds: list[dict]) -> dict:
    from salesim.scenarios.backtest import clopper_pearson, pit_uniformity

    n = len(folds)
    hits = sum(f["covered"] for f in folds)
    pits = [f["pit"] for f in folds]
    crps = float(np.mean([f["crps"] for f in folds]))
    base = {}
    for name in ("stage_weighted", "last_quarter"):
        errors = [abs(f[name] - f["actual"]) for f in folds if f[name] is not None]
        base[name] = float(np.mean(errors)) if errors else None
    better = min(v for v in base.values() if v is not None)
    apes = [f["ape_p50"] for f in folds if f["ape_p50"] is not None]
    parts = {}
    for part in ("open", "new"):
        ps = [f[part] for f in folds]
        parts[part] = {
            "coverage": float(np.mean([p["covered"] for p in ps])),
            "mean_pit": float(np.mean([p["pit"] for p in ps])),
        }
    return {
        "folds": n,
        "coverage": hits / n,
        "coverage_interval": clopper_pearson(hits, n),
        "mean_pit": float(np.mean(pits)),
        "pit_p_value": pit_uniformity(pits)["p_value"],
        "crps": crps,
        "baselines_crps": base,
        "crps_vs_better_baseline": crps / better,
        "mape_p50": float(np.mean(apes)) if apes else None,
        "parts": parts,
    }


def table(summaries: dict) -> str:
    rows = [
        "| setting | folds | coverage (90% interval) | mean PIT | PIT χ² p | CRPS / better "
        "baseline | MAPE P50 | open: coverage, PIT | new: coverage, PIT |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        lo, hi = s["coverage_interval"]
        o, w = s["parts"]["open"], s["parts"]["new"]
        rows.append(
            f"| {name} | {s['folds']} | {s['coverage']:.0%} ({lo:.0%}–{hi:.0%}) | "
            f"{s['mean_pit']:.2f} | {s['pit_p_value']:.3f} | "
            f"{s['crps_vs_better_baseline']:.2f} | {s['mape_p50']:.1%} | "
            f"{o['coverage']:.0%}, {o['mean_pit']:.2f} | "
            f"{w['coverage']:.0%}, {w['mean_pit']:.2f} |"
        )
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--folds", type=int, default=7)
    ap.add_argument("--quarters", type=int, default=12)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--steady", action="store_true", help="calibrate with the pooled model (calibrate --steady)"
    )
    ap.add_argument(
        "--truth",
        action="store_true",
        help="forecast with the generating model (engine error alone)",
    )
    ap.add_argument(
        "--close-dates",
        action="store_true",
        help="reps set and push expected close dates (demo-data --close-dates): the slip model",
    )
    ap.add_argument("--no-slips", action="store_true", help="calibrate, then drop the slip model")
    ap.add_argument("--out", default=None, help="write every fold and summary as JSON")
    a = ap.parse_args(argv)
    settings = [s.strip() for s in a.settings.split(",") if s.strip()]
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        ap.error(f"unknown setting(s) {bad}; choose from {', '.join(SETTINGS)}")
    opts = {
        "reps": a.reps,
        "quarters": a.quarters,
        "folds": a.folds,
        "trials": a.trials,
        "steady": a.steady,
        "truth": a.truth,
        "close_dates": a.close_dates,
        "no_slips": a.no_slips,
    }
    jobs = [(s, seed, opts) for s in settings for seed in range(1, a.seeds + 1)]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        folds = [f for out in pool.map(run_one, jobs) for f in out]
    summaries = {s: summarise([f for f in folds if f["setting"] == s]) for s in settings}
    changing = [f for f in folds if f["setting"] != "stationary"]
    if changing and len(settings) > 1:
        summaries["pooled (changing)"] = summarise(changing)
    print(table(summaries))
    print(
        f"\n{len(folds)} folds in {time.time() - t0:.0f} s "
        f"({'true model' if a.truth else 'pooled model' if a.steady else 'calendar model'}; "
        f"{a.trials} trials per fold)"
    )
    if a.out:
        Path(a.out).write_text(
            json.dumps(
                {"options": vars(a), "summaries": summaries, "folds": folds}, indent=1, default=str
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
