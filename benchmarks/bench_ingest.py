"""Ingestion speed: read_history on a synthetic CRM export of N opportunities with about
three stage-history rows each (default 1,000,000 and ~3,000,000). Goal: a few seconds.

    python benchmarks/bench_ingest.py [--opportunities 1000000] [--seed 1] [--parquet]

Writes the files to a temporary folder (deleted afterwards) and times read_history and a cut
at an as-of date. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from salesim.calibrate.ingest import read_history

STAGES = ("Qualify", "Discover", "Propose", "Negotiate")


def synthetic_history(n: int, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Opportunities and stage history with the canonical columns, as text dates."""
    start = np.datetime64("2020-01-01")
    created = start + rng.integers(0, 4 * 365, n).astype("timedelta64[D]")
    reached = rng.integers(1, len(STAGES) + 1, n)  # stages entered: 1..4
    gaps = rng.integers(1, 30, (n, len(STAGES))).astype("timedelta64[D]")
    entered = created[:, None] + np.cumsum(gaps, axis=1) - gaps[:, :1]
    outcome = rng.choice(np.array(["open", "won", "lost"]), n, p=[0.1, 0.3, 0.6])
    won = outcome == "won"
    reached[won] = len(STAGES)
    closed = entered[np.arange(n), reached - 1] + rng.integers(1, 30, n).astype("timedelta64[D]")
    ids = np.char.add("OPP-", np.arange(n).astype(str))
    opps = pl.DataFrame(
        {
            "opportunity_id": ids,
            "owner": np.char.add("rep", rng.integers(0, 200, n).astype(str)),
            "created": created.astype(str),
            "stage": np.array(STAGES)[reached - 1],
            "status": outcome,
            "closed": np.where(outcome == "open", "", closed.astype(str)),
            "amount": np.round(rng.lognormal(9, 1, n), 2),
            "segment": rng.choice(np.array(["SMB", "Mid-Market", "Enterprise"]), n),
            "source": rng.choice(np.array(["outbound", "marketing"]), n),
        }
    )
    rows = np.repeat(np.arange(n), reached)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(reached) - reached, reached)
    history = pl.DataFrame(
        {
            "opportunity_id": ids[rows],
            "stage": np.array(STAGES)[pos],
            "entered": entered[rows, pos].astype(str),
        }
    )
    return opps, history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parquet", action="store_true", help="also time Parquet files")
    args = parser.parse_args()

    opps, history = synthetic_history(args.opportunities, np.random.default_rng(args.seed))
    with tempfile.TemporaryDirectory(prefix="salesim-bench-") as tmp:
        folder = Path(tmp)
        opps.write_csv(folder / "opportunities.csv")
        history.write_csv(folder / "stage_history.csv")
        print(f"{opps.height:,} opportunities, {history.height:,} stage-history rows")
        runs = [("csv", folder)]
        if args.parquet:
            pq = folder / "parquet"
            pq.mkdir()
            opps.write_parquet(pq / "opportunities.parquet")
            history.write_parquet(pq / "stage_history.parquet")
            runs.append(("parquet", pq))
        # CPU time next to wall time: on a shared machine the wall time also measures the
        # other processes.
        for name, path in runs:
            w0, c0 = time.perf_counter(), time.process_time()
            h = read_history(path)
            w1, c1 = time.perf_counter(), time.process_time()
            h.as_of(dt.date(2022, 6, 30))
            w2, c2 = time.perf_counter(), time.process_time()
            print(
                f"{name:8s} read_history {w1 - w0:6.2f} s (cpu {c1 - c0:5.2f} s)   "
                f"as_of {w2 - w1:6.2f} s (cpu {c2 - c1:5.2f} s)   "
                f"stages {' > '.join(h.stages)}"
            )


if __name__ == "__main__":
    main()
