"""The speed suite: engines, RNG floor, workers, cost vs reps and horizon, a million trials.

    python benchmarks/bench_suite.py                      # everything (about 5 minutes)
    python benchmarks/bench_suite.py --stream 0           # without the million-trial run
    python benchmarks/bench_suite.py --out results.json   # also keep the JSON

The same measurements as ``salesim bench`` (scenarios/bench.py), with the streaming run on by
default. Figures depend on the machine and its load: benchmarks/README.md records the latest
run and how it was made. Nothing here is a test; nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from salesim import report  # noqa: E402
from salesim.scenarios import bench  # noqa: E402
from salesim.simulator.model import write_atomic  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--simpy-trials", type=int, default=50)
    ap.add_argument("--engines", default="simpy,vector")
    ap.add_argument(
        "--stream", type=int, default=1_000_000, help="trials of the streaming run (0: skip)"
    )
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON document here")
    args = ap.parse_args(argv)
    out = bench.run_suite(
        reps=args.reps,
        trials=args.trials,
        simpy_trials=args.simpy_trials,
        engines=tuple(args.engines.split(",")),
        sweep=not args.no_sweep,
        stream_trials=args.stream,
        progress=lambda step: print(f"… {step}", file=sys.stderr, flush=True),
    )
    print(report.bench_text(out))
    if args.out:
        write_atomic(args.out, json.dumps(report.json_safe(out), indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
