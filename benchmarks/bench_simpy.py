"""SimPy engine speed: trials/s and SimPy events/s for a 20-rep and a 100-rep quarter.

    python benchmarks/bench_simpy.py [--trials 40] [--reps 20 100] [--seed 1] [--json]

The model is the demo generator's documented truth (simulator.demo_history.default_truth:
four stages, three segments, NegBin activities, capacity coupling, attrition), the team is N
experienced reps, and the open pipeline is synthetic: 8 deals per rep spread over the stages
with ages of 0–30 days. One process, one chunk per size (serial), so the numbers are the
engine's own. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import numpy as np
import polars as pl

from salesim.scenarios.baseline import generic_team, horizon
from salesim.simulator.demo_history import default_truth
from salesim.simulator.engine_simpy import simulate_chunk
from salesim.simulator.spec import OPEN_DEAL_COLUMNS, SimSpec

AS_OF = dt.date(2026, 6, 30)
OPEN_PER_REP = 8


def quarter_spec(n_reps: int, rng: np.random.Generator) -> SimSpec:
    model = default_truth(AS_OF, reps=n_reps)
    team = generic_team(n_reps, model.team.quota)
    n = OPEN_PER_REP * n_reps
    sizes = [s.size.dist for s in model.deal_size]
    seg = rng.integers(0, len(sizes), n)
    deals = pl.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "owner": [team[i % n_reps].name for i in range(n)],
            "stage": [model.stage_names[k] for k in rng.integers(0, len(model.stages), n)],
            "age_days": rng.uniform(0, 30, n),
            "amount": [float(sizes[k].sample(rng)) for k in seg],
            "segment": [model.deal_size[k].name for k in seg],
        },
        schema=OPEN_DEAL_COLUMNS,
    )
    start, days = horizon(AS_OF)
    return SimSpec(model, team, start, days, open_deals=deals)


def bench(n_reps: int, trials: int, seed: int) -> dict:
    spec = quarter_spec(n_reps, np.random.default_rng(seed))
    simulate_chunk(spec, 1, np.random.SeedSequence(seed + 1))  # warm-up: imports, caches
    t0 = time.perf_counter()
    chunk = simulate_chunk(spec, trials, np.random.SeedSequence(seed))
    seconds = time.perf_counter() - t0
    t = chunk.totals
    return {
        "reps": n_reps,
        "trials": trials,
        "seconds": seconds,
        "trials_per_s": trials / seconds,
        "ms_per_trial": 1e3 * seconds / trials,
        "events_per_trial": chunk.events / trials,
        "events_per_s": chunk.events / seconds,
        "deals_per_trial": float((t["open_start"] + t["created"]).mean()),
        "revenue_mean": float(t["revenue"].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--reps", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    rows = [bench(n, args.trials, args.seed) for n in args.reps]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"SimPy engine, one process, {args.trials} trials per team size")
    print(
        f"{'reps':>5} {'trials/s':>9} {'ms/trial':>9} {'events/trial':>13} {'events/s':>10} "
        f"{'deals/trial':>12}"
    )
    for r in rows:
        print(
            f"{r['reps']:>5} {r['trials_per_s']:>9.1f} {r['ms_per_trial']:>9.1f} "
            f"{r['events_per_trial']:>13,.0f} {r['events_per_s']:>10,.0f} "
            f"{r['deals_per_trial']:>12,.0f}"
        )


if __name__ == "__main__":
    main()
