"""Calibration speed and memory: ``salesim calibrate`` on about 1,000,000 generated
opportunities with stage history, activities and reps. Goal: under 30 s and 4 GB on a 2-core
machine.

    python benchmarks/bench_calibrate.py [--opportunities 1000000] [--seed 1] [--keep DIR]

Generates a demo history (simulator/demo_history.py) large enough, writes the canonical CSV
files, then reads and calibrates them in a fresh child process, so its peak memory (max RSS)
is the calibration's alone. Not a test: timings depend on the machine and its load (CPU time
is shown next to wall time).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEALS_PER_SEAT = 290  # demo default truth: opportunities per seat over 8 quarters (about)


def _run(folder: str, queue) -> None:
    """Child process: read the history, calibrate, summarise; report the timings."""
    from salesim.calibrate.fit import calibrate, summary
    from salesim.calibrate.ingest import read_history
    from salesim.simulator.model import dumps

    times = {}
    t0, c0 = time.perf_counter(), time.process_time()
    history = read_history(folder)
    times["read"] = (time.perf_counter() - t0, time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    steps = {}
    last = [time.perf_counter()]

    def progress(step):
        now = time.perf_counter()
        steps[step] = now - last[0]
        last[0] = now

    model = calibrate(history, history.last_date, progress=progress)
    times["calibrate"] = (time.perf_counter() - t0, time.process_time() - c0)
    dumps(model)
    s = summary(model)
    queue.put(
        {"times": times, "steps": steps, "n": model.n_opportunities, "win_rate": s["win_rate"]}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the generated history here and keep it"
    )
    args = parser.parse_args()

    from salesim.simulator import demo_history

    reps = max(1, round(args.opportunities / DEALS_PER_SEAT))
    t0 = time.perf_counter()
    demo = demo_history.generate(args.seed, reps=reps, quarters=8)
    print(
        f"generated {demo.opportunities.height:,} opportunities, "
        f"{demo.stage_history.height:,} stage-history rows, {demo.activities.height:,} "
        f"activity rows, {demo.reps.height:,} reps in {time.perf_counter() - t0:.1f} s"
    )
    tmp = None
    folder = args.keep
    if folder is None:
        tmp = tempfile.mkdtemp(prefix="salesim-bench-")
        folder = Path(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in demo.csv_texts().items():
        (folder / name).write_text(text)
    del demo

    try:
        ctx = mp.get_context("spawn")  # a fresh interpreter: its max RSS is ours alone
        queue = ctx.Queue()
        child = ctx.Process(target=_run, args=(str(folder), queue))
        child.start()
        out = queue.get()
        child.join()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    (rw, rc), (cw, cc) = out["times"]["read"], out["times"]["calibrate"]
    print(f"read_history  {rw:6.1f} s wall  {rc:6.1f} s CPU")
    print(
        f"calibrate     {cw:6.1f} s wall  {cc:6.1f} s CPU   "
        + ", ".join(f"{k} {v:.1f}" for k, v in out["steps"].items())
    )
    total = rw + cw
    print(
        f"total         {total:6.1f} s wall (goal < 30 s)   peak memory {peak_gb:.2f} GB "
        f"(goal < 4 GB)   {out['n']:,} opportunities, win rate {out['win_rate']:.3f}"
    )


if __name__ == "__main__":
    main()
