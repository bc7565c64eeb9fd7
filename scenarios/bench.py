"""The speed benchmark behind ``salesim bench`` (benchmarks/README.md holds the latest figures).

Scenario: the demo model (``simulator.demo_history.default_truth``) with the pipeline open at
the demo history's as-of date, N ramped reps, one quarter, posterior draws on, attrition on.
Each measurement runs in a fresh process, so its peak memory is its own: ``peak_mb`` is the
largest resident set of the run's processes (the interpreter and libraries included).

What ``run_suite`` measures (each a row of ``results``; ``purpose`` says which):
- ``engines``: trials/s of each engine on one core, in the same run (``vector_vs_simpy``);
- ``scaling``: the vectorised engine with 1 and 2 worker processes;
- ``reps`` and ``horizon``: seconds per trial with 10, 50, 200 reps and 1 vs 4 quarters;
- ``stream`` (optional): a long run that keeps no per-rep arrays, for its peak memory;
and the RNG floor: the time NumPy needs just to draw the random numbers one trial of the
vectorised engine consumes (counted by wrapping its generators), against the engine's time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import numpy as np
import polars as pl

from salesim.simulator.errors import InputError
from salesim.simulator.spec import SimSpec

HISTORY_SEED = 7
AS_OF = dt.date(2026, 9, 30)
REPS_SWEEP = (10, 50, 200)
FLOOR_REPEATS = 5  # turns of engine and floor timings (``_floor_run``)
TARGETS = {"vector_vs_simpy": 100.0, "seconds_10k": 2.0, "floor_ratio": 3.0, "stream_mb": 1024.0}


# --- the scenario ---------------------------------------------------------------------------------
def bench_spec(reps: int = 50, quarters: int = 1) -> SimSpec:
    """The demo model, its open pipeline at the as-of date, ``reps`` ramped reps, and a
    horizon of ``quarters`` calendar quarters from the day after the as-of date."""
    from salesim.scenarios.baseline import baseline_spec
    from salesim.simulator import demo_history

    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise InputError(f"reps must be a whole number ≥ 1, got {reps!r}", column="--reps")
    hist = demo_history.generate(HISTORY_SEED, reps=reps, quarters=2, as_of=AS_OF)
    spec = baseline_spec(hist.truth, history=hist.to_history(), as_of=AS_OF, n_reps=reps)
    if quarters > 1:
        year, month = spec.start.year, spec.start.month + 3 * quarters
        end = dt.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
        spec = dataclasses.replace(spec, days=(end - spec.start).days)
    return spec


def describe(spec: SimSpec) -> dict:
    return {
        "model": "demo truth (simulator.demo_history.default_truth)",
        "history_seed": HISTORY_SEED,
        "as_of": AS_OF,
        "start": spec.start,
        "days": spec.days,
        "reps": len(spec.reps),
        "tenure_days": spec.reps[0].tenure_days,
        "open_deals": spec.open_deals.height,
        "fixed_parameters": spec.fixed_parameters,
        "attrition": spec.attrition,
    }


# --- counting random draws: the RNG floor ---------------------------------------------------------
# Distribution parameters each Generator method takes before ``size``.
_PARAMS = {
    "random": 0,
    "standard_normal": 0,
    "standard_exponential": 0,
    "standard_gamma": 1,
    "gamma": 2,
    "poisson": 1,
    "weibull": 1,
    "exponential": 1,
    "uniform": 2,
    "beta": 2,
    "normal": 2,
    "lognormal": 2,
    "binomial": 2,
    "negative_binomial": 2,
    "dirichlet": 1,
    "multivariate_normal": 2,
}
_VECTOR_PARAMS = {"dirichlet", "multivariate_normal"}
# Generator methods that take ``out=`` (float64), and the block they fill at a time: large
# enough that a call's overhead is noise, small enough (512 KiB) to stay in L2 cache.
_FILLS_OUT = {"random", "standard_normal", "standard_exponential", "standard_gamma"}
REPLAY_BLOCK = 1 << 16


class DrawLog:
    """Counts the numbers drawn from wrapped generators, by method and (rounded) mean
    parameters, so ``replay`` can draw as many again in bulk: the RNG floor."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self._vector_args: dict = {}

    def wrap(self, generator) -> "_Recording":
        return _Recording(generator, self)

    def record(self, method: str, params: tuple, kwargs: dict, out) -> None:
        if method in _VECTOR_PARAMS:  # one draw = one row (a vector)
            key: tuple[str, tuple[float, ...]] = (method, ())
            self._vector_args.setdefault(key, (params, kwargs))
            self.counts[key] += int(np.shape(out)[0]) if np.ndim(out) > 1 else 1
            return
        key = (method, tuple(_round(float(np.mean(p))) for p in params))
        self.counts[key] += int(np.size(out))

    def add(self, method: str, params: tuple, n: int) -> None:
        """``n`` draws that compiled code made, as NumPy's ``method`` with these parameters."""
        self.counts[(method, tuple(_round(float(p)) for p in params))] += int(n)

    @property
    def draws(self) -> int:
        return sum(self.counts.values())

    def by_method(self) -> dict:
        out: Counter = Counter()
        for (method, _), n in self.counts.items():
            out[method] += n
        return dict(out.most_common())

    def replay(self, rng: np.random.Generator) -> float:
        """Seconds to draw every counted number again, in bulk. The kinds that can fill an
        array fill one buffer, a block at a time: the time NumPy needs to draw, not to
        allocate and page in a fresh array of millions (a quarter more, or worse)."""
        buffer = np.empty(REPLAY_BLOCK)
        t = time.perf_counter()
        for key, n in self.counts.items():
            method, params = key
            draw = getattr(rng, method)
            if method in _VECTOR_PARAMS:
                args, kwargs = self._vector_args[key]
                draw(*args, size=n, **kwargs)
            elif method in _FILLS_OUT:
                for start in range(0, n, REPLAY_BLOCK):
                    draw(*params, out=buffer[: min(REPLAY_BLOCK, n - start)])
            else:
                draw(*params, size=n)
        return time.perf_counter() - t


def _round(x: float) -> float:
    """Two significant digits: draws with nearly equal parameters cost the same."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 1 - int(math.floor(math.log10(abs(x)))))


class _Recording:
    """A Generator that tells a ``DrawLog`` what it draws."""

    def __init__(self, generator, log: DrawLog):
        self._generator, self._log = generator, log

    def __getattr__(self, name):
        fn = getattr(self._generator, name)
        if name not in _PARAMS:
            return fn

        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            self._log.record(
                name, args[: _PARAMS[name]], {k: v for k, v in kwargs.items() if k != "size"}, out
            )
            return out

        return call


# --- measurements in a fresh process --------------------------------------------------------------
def _peak_mb() -> float:
    """Largest resident set of this process and its finished children (MB)."""
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, else kB
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) * scale / 2**20


def _timed_run(
    spec: SimSpec, engine: str, trials: int, workers: int, keep_reps: bool, seed: int
) -> dict:
    from salesim.simulator import runner

    executor = runner.ProcessExecutor(workers) if workers > 1 else runner.SerialExecutor()
    try:
        # Warm up: worker processes start and import outside the timed run.
        runner.run(
            spec,
            min(trials, workers * runner.CHUNK_SIZES.get(engine, 50)),
            seed + 1,
            engine=engine,
            executor=executor,
            keep_reps=keep_reps,
        )
        t = time.perf_counter()
        result = runner.run(
            spec, trials, seed, engine=engine, executor=executor, keep_reps=keep_reps
        )
        seconds = time.perf_counter() - t
    finally:
        executor.close()
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "mean_revenue": float(result.totals.select(pl.col("revenue").mean()).item()),
    }


def _floor_run(spec: SimSpec, trials: int, repeats: int) -> dict:
    """The engine and the RNG floor timed in turns, the fastest of each kept: on a machine
    whose speed drifts (a shared VM), back-to-back blocks of one then the other could
    catch them in different phases and flatter the ratio or not; noise only adds time."""
    from salesim.simulator import engine_vector

    log = DrawLog()
    engine_vector.simulate_chunk(spec, trials, np.random.SeedSequence(0), draw_log=log)
    engines, floors = [], []
    for r in range(repeats):
        engines.append(
            _seconds(lambda: engine_vector.simulate_chunk(spec, trials, np.random.SeedSequence(0)))
        )
        floors.append(log.replay(np.random.default_rng(r)))
    engine, floor = min(engines), min(floors)
    pairs = [e / f for e, f in zip(engines, floors)]
    return {
        "trials": trials,
        "draws_per_trial": log.draws / trials,
        "by_method": {k: v / trials for k, v in log.by_method().items()},
        "rng_floor_s": floor / trials,
        "vector_s": engine / trials,
        "ratio": engine / floor,
        "repeats": repeats,
        "pair_ratio_range": [min(pairs), max(pairs)],
    }


def _seconds(fn: Callable) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def isolated(fn: Callable, *args):
    """``fn(*args)`` in a fresh (spawned) process, so peak memory and caches are its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def measure(
    spec: SimSpec,
    engine: str,
    trials: int,
    workers: int = 1,
    *,
    purpose: str,
    keep_reps: bool = True,
    seed: int = 0,
) -> dict:
    """One timed run, as a ``results`` row."""
    out = isolated(_timed_run, spec, engine, trials, workers, keep_reps, seed)
    return {
        "engine": engine,
        "workers": workers,
        "reps": len(spec.reps),
        "trials": trials,
        "seconds": out["seconds"],
        "trials_per_s": trials / out["seconds"],
        "peak_mb": out["peak_mb"],
        "days": spec.days,
        "purpose": purpose,
        "keep_reps": keep_reps,
        "mean_revenue": out["mean_revenue"],
    }


# --- the suite ------------------------------------------------------------------------------------
def machine() -> dict:
    import polars
    import scipy

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "polars": polars.__version__,
        "platform": platform.platform(),
        "load_average": list(load) if load else None,
    }


def suite_steps(engines, *, workers=(1, 2), sweep: bool = True, stream_trials: int = 0) -> int:
    """How many measurements ``run_suite`` makes (each calls ``progress`` once)."""
    if "vector" not in engines:
        return len(engines)
    return (
        len(engines)
        + 1
        + len(workers)
        + (len(REPS_SWEEP) + 1 if sweep else 0)
        + (1 if stream_trials else 0)
    )


def run_suite(
    *,
    reps: int = 50,
    trials: int = 10_000,
    engines=("simpy", "vector"),
    simpy_trials: int | None = None,
    workers=(1, 2),
    sweep: bool = True,
    stream_trials: int = 0,
    floor_trials: int = 2000,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Every measurement above; returns the ``salesim bench --json`` document."""
    from salesim.simulator import runner

    engines = tuple(engines)
    unknown = [e for e in engines if e not in runner.ENGINES]
    if not engines or unknown:
        raise InputError(
            f"unknown engine(s) {', '.join(unknown) or '(none given)'}",
            column="--engines",
            expected="a comma list of " + ", ".join(runner.ENGINES),
        )
    for name, value in (("--trials", trials), ("--reps", reps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"must be a whole number ≥ 1, got {value!r}", column=name)
    if simpy_trials is None:
        simpy_trials = max(10, min(trials, 50))
    note = progress or (lambda step: None)
    spec = bench_spec(reps)
    results: list[dict] = []

    for engine in engines:
        n = simpy_trials if engine == "simpy" else trials
        note(f"{engine}: {n:,} trials on one core")
        results.append(measure(spec, engine, n, 1, purpose="engines"))
    out: dict = {
        "machine": machine(),
        "scenario": describe(spec),
        "results": results,
        "rng_floor_s": None,
        "vector_vs_simpy": None,
    }
    speed = {r["engine"]: r["trials_per_s"] for r in results}
    if "simpy" in speed and "vector" in speed:
        out["vector_vs_simpy"] = speed["vector"] / speed["simpy"]
    if "vector" not in engines:
        return out

    note(f"RNG floor: {floor_trials:,} trials")
    floor = isolated(_floor_run, spec, min(floor_trials, trials), FLOOR_REPEATS)
    out["rng_floor_s"] = floor["rng_floor_s"]
    out["rng_floor"] = floor

    chunk = runner.CHUNK_SIZES["vector"]
    per_round = chunk * max(workers)
    even = -(-trials // per_round) * per_round  # whole rounds of chunks for every worker
    for w in workers:
        note(f"scaling: {even:,} trials on {w} worker(s)")
        results.append(measure(spec, "vector", even, w, purpose="scaling"))

    if sweep:
        n = max(runner.CHUNK_SIZES["vector"], trials // 5)  # a whole chunk: per-day costs shared
        for r in REPS_SWEEP:
            note(f"cost vs reps: {r} reps, {n:,} trials")
            results.append(measure(bench_spec(r), "vector", n, 1, purpose="reps"))
        note(f"cost vs horizon: 4 quarters, {n:,} trials")
        results.append(measure(bench_spec(reps, quarters=4), "vector", n, 1, purpose="horizon"))
        out["growth"] = growth(results, reps)

    if stream_trials:
        note(f"streaming: {stream_trials:,} trials on {max(workers)} worker(s)")
        results.append(
            measure(spec, "vector", stream_trials, max(workers), purpose="stream", keep_reps=False)
        )
    out["targets"] = targets(out)
    return out


def growth(results: list[dict], reps: int) -> dict:
    """How cost per trial grows with reps and with the horizon (a log-log slope)."""
    by_reps = sorted(
        ((r["reps"], r["seconds"] / r["trials"]) for r in results if r["purpose"] == "reps")
    )
    out: dict[str, Any] = {"reps": [{"reps": k, "ms_per_trial": 1e3 * v} for k, v in by_reps]}
    if len(by_reps) >= 2:
        (r0, c0), (r1, c1) = by_reps[0], by_reps[-1]
        out["reps_exponent"] = math.log(c1 / c0) / math.log(r1 / r0)
    quarter = [r for r in results if r["purpose"] == "reps" and r["reps"] == reps]
    year = [r for r in results if r["purpose"] == "horizon"]
    if quarter and year:
        q, y = quarter[0], year[0]
        cq, cy = q["seconds"] / q["trials"], y["seconds"] / y["trials"]
        out["horizon"] = [
            {"days": q["days"], "ms_per_trial": 1e3 * cq},
            {"days": y["days"], "ms_per_trial": 1e3 * cy},
        ]
        out["horizon_exponent"] = math.log(cy / cq) / math.log(y["days"] / q["days"])
    return out


def targets(out: dict) -> dict:
    """The issue's targets, each with the measured value and whether it was met."""
    res = out["results"]
    t: dict = {}
    if out.get("vector_vs_simpy") is not None:
        v = out["vector_vs_simpy"]
        t["vector_vs_simpy"] = {
            "target": f"≥ {TARGETS['vector_vs_simpy']:g}×",
            "value": v,
            "met": v >= TARGETS["vector_vs_simpy"],
        }
    head = [r for r in res if r["engine"] == "vector" and r["purpose"] == "engines"]
    if head:
        n = head[0]["trials"]
        secs = head[0]["seconds"] * 10_000 / n
        t["seconds_10k"] = {
            "target": f"≤ {TARGETS['seconds_10k']:g} s for 10,000 trials, "
            "one core" + ("" if n == 10_000 else f" (scaled from {n:,} trials)"),
            "value": secs,
            "met": secs <= TARGETS["seconds_10k"],
        }
    if out.get("rng_floor"):
        r = out["rng_floor"]["ratio"]
        t["floor_ratio"] = {
            "target": f"within {TARGETS['floor_ratio']:g}× the RNG floor",
            "value": r,
            "met": r <= TARGETS["floor_ratio"],
        }
    stream = [r for r in res if r["purpose"] == "stream"]
    if stream:
        mb = stream[0]["peak_mb"]
        t["stream_mb"] = {
            "target": f"{stream[0]['trials']:,} trials with peak memory < "
            f"{TARGETS['stream_mb']:g} MB",
            "value": mb,
            "met": mb < TARGETS["stream_mb"],
        }
    return t
