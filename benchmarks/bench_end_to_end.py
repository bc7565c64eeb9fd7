"""What users wait for, end to end: each command of the README's tour on its demo history, in
a fresh process, wall and CPU seconds (the process and its workers), on 1 and 2 workers.

    python benchmarks/bench_end_to_end.py [--workers 1,2] [--json out.json]

The first forecast runs with an empty compiled-code cache (``SALESIM_CACHE_DIR`` set to a new
folder: "cold", numba compiles the engine) and again with it filled ("warm"); every later
command reuses it. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = "2026-09-30"
PLAN = ["--history", "hist", "--as-of", AS_OF, "--seed", "1"]
COMMANDS = {  # the README's tour (docs: README.md, "A 5-minute tour"), default trials
    "forecast": ["forecast", "model.toml", *PLAN, "--quota", "5.5M"],
    "compare": [
        "compare",
        "model.toml",
        *PLAN,
        "--quota",
        "5.5M",
        "--lever",
        "prospecting=+20%",
        "--lever",
        "win-rate=+5pp",
        "--lever",
        "deal-size=+10%",
        "--lever",
        "cycle-time=-15%",
    ],
    "capacity": [
        "capacity",
        "model.toml",
        *PLAN,
        "--target",
        "7M",
        "--confidence",
        "0.8",
        "--hire-by",
        "2026-10-01",
    ],
    "capacity coverage": ["capacity", "model.toml", *PLAN, "--solve", "coverage"],
    "backtest": ["backtest", "hist", "--quarters", "4", "--seed", "1"],
}


def timed(args: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "salesim", *args],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]

    rows = []
    with tempfile.TemporaryDirectory(prefix="salesim-e2e-") as tmp:
        cwd = Path(tmp)
        env = {**os.environ, "SALESIM_CACHE_DIR": str(cwd / "cache")}
        setup = [
            [
                "demo-data",
                "hist",
                "--seed",
                "7",
                "--reps",
                "20",
                "--quarters",
                "8",
                "--as-of",
                AS_OF,
            ],
            ["calibrate", "hist", "--as-of", AS_OF, "-o", "model.toml"],
        ]
        for step in setup:
            wall, cpu = timed(step, cwd, env)
            rows.append({"what": step[0], "workers": 1, "wall": wall, "cpu": cpu})
        for what, w in (("forecast, cold", workers[0]), ("forecast, warm", workers[0])):
            wall, cpu = timed([*COMMANDS["forecast"], "--workers", str(w)], cwd, env)
            rows.append({"what": what, "workers": w, "wall": wall, "cpu": cpu})
        for name, cmd in COMMANDS.items():
            for w in workers:
                wall, cpu = timed([*cmd, "--workers", str(w)], cwd, env)
                rows.append({"what": name, "workers": w, "wall": wall, "cpu": cpu})
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'what':<20} {'workers':>7} {'wall s':>7} {'CPU s':>7}")
    for r in rows:
        print(f"{r['what']:<20} {r['workers']:>7} {r['wall']:>7.1f} {r['cpu']:>7.1f}")
    if args.json:
        args.json.write_text(json.dumps({"load": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
