"""The Monte Carlo runner: many trials of one ``SimSpec``, the same numbers on any worker count.

``SeedSequence(seed)`` gives child ``i`` to chunk ``i``; every chunk holds a fixed number of
trials (per engine), and each trial spawns its own streams from its chunk's child
(docs/model.md §0). Chunks are mapped in order by an *executor* and copied into arrays sized
for the requested trials as they arrive, so memory is the per-trial outputs only: one row of
totals (14 numbers), the cumulative weekly curve and revenue per seat, i.e. about
``8 × (14 + weeks + reps)`` bytes a trial (≈ 0.4 kB for 20 reps over 13 weeks).

Engines and executors are registries, so a new engine or a cluster executor plugs in by
adding an entry.
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np
import polars as pl

from . import engine_simpy, engine_vector
from .errors import InputError
from .limits import check_trials
from .results import ChunkResult, SimResult
from .spec import SimSpec, child_seed

# name -> simulate_chunk(spec, n_trials, seed, first_trial) -> ChunkResult
ENGINES: dict[str, Callable] = {"simpy": engine_simpy.simulate_chunk,
                                "vector": engine_vector.simulate_chunk}
# Trials per chunk, fixed per engine: changing it changes every trial's streams.
CHUNK_SIZES: dict[str, int] = {"simpy": 50, "vector": engine_vector.CHUNK}
DEFAULT_CHUNK = 50


# --- executors: map a function over tasks, results in task order ---------------------------------
class SerialExecutor:
    """Runs chunks one after another in this process."""

    def __init__(self, workers: int = 1):
        self.workers = 1

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        return map(fn, tasks)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ProcessExecutor:
    """Worker processes (``concurrent.futures``); the pool is kept until ``close``.

    Workers are *spawned*: forking a process that already runs polars' thread pool can
    deadlock.
    """

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool.map(fn, tasks)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _dask(workers: int):
    from .dask_executor import DaskExecutor   # optional extra: imported only when asked for

    return DaskExecutor(None, workers)        # SALESIM_SCHEDULER, else a LocalCluster


EXECUTORS: dict[str, Callable[[int], object]] = {"serial": SerialExecutor,
                                                 "processes": ProcessExecutor,
                                                 "dask": _dask}

# An executor object for runs that do not name one (the CLI's --executor/--scheduler).
_SCOPED_EXECUTOR: contextvars.ContextVar = contextvars.ContextVar("executor", default=None)


@contextlib.contextmanager
def using_executor(executor):
    """Runs inside this block that pass no ``executor`` use this one (None: no change).

    Lets a command send every run of a library function to, e.g., a dask cluster without
    threading an argument through it; results never depend on the executor.
    """
    token = _SCOPED_EXECUTOR.set(executor)
    try:
        yield executor
    finally:
        _SCOPED_EXECUTOR.reset(token)


def scoped_executor():
    """The executor of the enclosing ``using_executor`` block (None outside one)."""
    return _SCOPED_EXECUTOR.get()


def _run_chunk(task) -> ChunkResult:
    simulate, spec, n, seed, first = task
    return simulate(spec, n, seed, first)


def chunk_plan(trials: int, chunk: int) -> list[tuple[int, int]]:
    """``(first_trial, n_trials)`` of every chunk."""
    return [(first, min(chunk, trials - first)) for first in range(0, trials, chunk)]


# --- the run --------------------------------------------------------------------------------------
def run(spec: SimSpec, trials: int = 10_000, seed: int | None = None, *, engine: str = "simpy",
        workers: int | None = None, progress: Callable[[int], None] | bool | None = False,
        executor: str | object | None = None, keep_reps: bool = True) -> SimResult:
    """Run ``trials`` Monte Carlo trials of ``spec``.

    ``seed`` None draws fresh entropy, recorded in ``SimResult.seed`` (rerun with it to
    reproduce). ``workers`` defaults to every core; ``executor`` is a name in ``EXECUTORS``,
    an object with ``map(fn, tasks)`` (kept open by the caller, e.g. across runs), or None:
    serial for one worker or one chunk, else processes. ``progress(n)`` is called with the
    number of trials of each finished chunk. ``keep_reps=False`` keeps no revenue per seat
    (``chunks.rep_revenue`` has zero columns): streaming a million trials then needs only
    the totals and the weekly curve.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}", column="--engine",
                         expected="one of " + ", ".join(ENGINES))
    trials = check_trials(trials)
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed must be a whole number ≥ 0, got {seed!r}", column="--seed")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers must be ≥ 1, got {workers}", column="--workers")

    root = np.random.SeedSequence(None if seed is None else int(seed))
    plan = chunk_plan(int(trials), CHUNK_SIZES.get(engine, DEFAULT_CHUNK))
    simulate = ENGINES[engine]
    tasks = ((simulate, spec, n, child_seed(root, i), first)
             for i, (first, n) in enumerate(plan))

    if executor is None:
        executor = _SCOPED_EXECUTOR.get()
    own = executor is None or isinstance(executor, str)
    if executor is None:
        executor = "serial" if min(workers, len(plan)) == 1 else "processes"
    if isinstance(executor, str):
        if executor not in EXECUTORS:
            raise InputError(f"unknown executor {executor!r}", column="executor",
                             expected="one of " + ", ".join(EXECUTORS))
        executor = EXECUTORS[executor](min(workers, len(plan)))

    weekly = np.empty((trials, spec.weeks))
    rep_revenue = np.empty((trials, len(spec.reps) if keep_reps else 0))
    totals: list[pl.DataFrame] = []
    events = 0
    try:
        for (first, n), chunk in zip(plan, executor.map(_run_chunk, tasks)):
            weekly[first:first + n] = chunk.weekly
            if keep_reps:
                rep_revenue[first:first + n] = chunk.rep_revenue
            totals.append(chunk.totals)
            events += chunk.events
            if callable(progress):
                progress(n)
    finally:
        if own:
            executor.close()

    quota = spec.quota if spec.quota is not None else (spec.team_quota or None)
    return SimResult(
        engine=engine, seed=int(root.entropy), trials=int(trials), quota=quota,
        rep_names=tuple(r.name for r in spec.reps),
        rep_quotas=tuple(float(r.quota) for r in spec.reps),
        chunks=ChunkResult(pl.concat(totals), weekly, rep_revenue, events),
        extra={"chunk_size": CHUNK_SIZES.get(engine, DEFAULT_CHUNK),
               "workers": getattr(executor, "workers", None),
               "fixed_parameters": spec.fixed_parameters},
        closed_to_date=float(spec.closed_to_date),
        rep_closed_to_date=tuple(float(r.closed_to_date) for r in spec.reps),
        start=spec.start, days=int(spec.days),
    )
