"""Common random numbers: per-trial correlation of revenue, baseline vs one lever.

``salesim compare`` runs the baseline and each strategy with the same seed, so an uplift is
a paired difference; the closer the pairing, the smaller its standard error. Prints, per
engine and lever, the per-trial correlation of revenue with the baseline's.

    python benchmarks/crn_pairing.py [--trials 2000] [--simpy-trials 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time

import numpy as np

from salesim.calibrate.fit import calibrate
from salesim.scenarios.baseline import baseline_spec
from salesim.simulator import demo_history, runner
from salesim.simulator.spec import Levers

LEVERS = {
    "win_rate ×1.1": Levers(win_rate=1.1),
    "prospecting ×1.2": Levers(prospecting=1.2),
    "cycle_time ×0.85": Levers(cycle_time=0.85),
    "deal_size ×1.1": Levers(deal_size=1.1),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--simpy-trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    as_of = dt.date(2026, 9, 30)
    demo = demo_history.generate(a.seed, reps=20, quarters=8, as_of=as_of)
    history = demo.to_history()
    spec = baseline_spec(calibrate(history, as_of), history=history, as_of=as_of)
    for engine, n in (("vector", a.trials), ("simpy", a.simpy_trials)):
        if n <= 0:
            continue
        t0 = time.perf_counter()
        base = runner.run(spec, n, seed=a.seed, engine=engine, workers=1)
        rev = base.chunks.totals["revenue"].to_numpy()
        for name, lev in LEVERS.items():
            other = runner.run(
                dataclasses.replace(spec, levers=lev), n, seed=a.seed, engine=engine, workers=1
            )
            r2 = other.chunks.totals["revenue"].to_numpy()
            d = r2 - rev
            print(
                f"{engine:6} {name:18} corr {np.corrcoef(rev, r2)[0, 1]:.3f}  "
                f"uplift {d.mean():12,.0f} ± {d.std(ddof=1) / np.sqrt(n):10,.0f} (SE)"
            )
        print(f"{engine:6} {n} trials × {1 + len(LEVERS)} runs: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
