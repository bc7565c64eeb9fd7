"""The Monte Carlo runner: many trials of one ``SimSpec``, the same numbers on any worker count.

``SeedSequence(seed)`` gives child ``i`` to chunk ``i``; every chunk holds a fixed number of
trials (per engine), and each trial spawns its own streams from its chunk's child
(docs/model.md §0). Chunks are made lazily, mapped in order by an *executor* that holds only
a few in flight, and copied into arrays sized for the requested trials as they arrive, so
memory is the per-trial outputs only: ``bytes_per_trial`` (a row of totals, the cumulative
weekly curve and, unless ``keep_reps=False``, revenue per seat: ``8 × (14 + weeks + reps)``
bytes, ≈ 0.4 kB for 20 reps over 13 weeks).

Engines and executors are registries, so a new engine or a cluster executor plugs in by
adding an entry.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import polars as pl

from . import engine_simpy, engine_vector
from .errors import InputError
from .limits import check_trials
from .results import TOTAL_COLUMNS, ChunkResult, SeatSums, SimResult
from .spec import SimSpec, child_seed
from .task_order import in_order

# name -> simulate_chunk(spec, n_trials, seed, first_trial) -> ChunkResult
ENGINES: dict[str, Callable] = {
    "simpy": engine_simpy.simulate_chunk,
    "vector": engine_vector.simulate_chunk,
}
# Trials per chunk, fixed per engine: changing it changes every trial's streams.
CHUNK_SIZES: dict[str, int] = {"simpy": 50, "vector": engine_vector.CHUNK}
DEFAULT_CHUNK = 50
# What every long run reports as it goes: ``progress(n)`` with the units of work just done
# (trials for a simulation, folds for a backtest). One signature for every command.
Progress = Callable[[int], None]


def expect(progress: Progress | None, total: int) -> None:
    """Tell ``progress`` the whole job's units before the first call, when it asks (an
    ``expect(total)`` method: the CLI's progress bar); a plain callable only counts."""
    hook = getattr(progress, "expect", None)
    if callable(hook):
        hook(total)


def default_engine() -> str:
    """The engine a caller gets without asking, in the library and the CLI alike: the
    vectorised one when it is registered (many runs), else the SimPy reference."""
    return "vector" if "vector" in ENGINES else "simpy"


# --- executors: map a function over tasks, results in task order ---------------------------------
class Executor(Protocol):
    """What ``run`` needs of an executor: results in task order, and a way to shut down
    (leaving the ``with`` block on an exception may stop work in flight)."""

    workers: int

    def map(self, fn: Callable, tasks: Iterable) -> Iterator: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None: ...


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
    deadlock. Each worker dies with this process (``_die_with_parent``), and leaving a run on
    an exception (Ctrl-C, a SIGTERM turned into ``SystemExit``) terminates the workers rather
    than waiting for their chunks. ``map`` keeps at most ``in_flight`` chunks (default: two
    per worker) submitted ahead of the one being collected, so memory does not grow with the
    number of chunks.
    """

    def __init__(self, workers: int | None = None, *, in_flight: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.in_flight = in_flight or 2 * self.workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent,
                initargs=(os.getpid(),),
            )
        pool = self._pool
        return in_order(lambda task: pool.submit(fn, task), tasks, self.in_flight)

    def close(self, abort: bool = False) -> None:
        """Shut the pool down: waits for running chunks, or with ``abort`` kills them."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:  # (Python 3.14's pool.terminate_workers(); _processes is there since 3.2)
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        pool.shutdown(cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(abort=exc_type is not None)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the process that started it ends, even by
    SIGKILL (nothing else would: an orphaned worker waits on its queue for minutes).

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``; it fires
    when the *thread* that started the pool ends, so start pools from a long-lived thread).
    Elsewhere, and as a backstop, a daemon thread notices the parent's pid going away.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(
        target=_watch_parent, args=(parent,), daemon=True, name="salesim-parent-watch"
    ).start()


def _watch_parent(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:  # re-parented (to init or a subreaper) once it dies
        time.sleep(every)
    os._exit(1)


def _dask(workers: int):
    from .dask_executor import DaskExecutor  # optional extra: imported only when asked for

    return DaskExecutor(None, workers)  # SALESIM_SCHEDULER, else a LocalCluster


EXECUTORS: dict[str, Callable[[int], Executor]] = {
    "serial": SerialExecutor,
    "processes": ProcessExecutor,
    "dask": _dask,
}

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


def chunk_plan(trials: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(first_trial, n_trials)`` of every chunk, made as they are asked for."""
    return ((first, min(chunk, trials - first)) for first in range(0, trials, chunk))


# --- the run --------------------------------------------------------------------------------------
def run(
    spec: SimSpec,
    trials: int = 10_000,
    seed: int | None = None,
    *,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    executor: str | Executor | None = None,
    keep_reps: bool = True,
) -> SimResult:
    """Run ``trials`` Monte Carlo trials of ``spec``.

    ``seed`` None draws fresh entropy, recorded in ``SimResult.seed`` (rerun with it to
    reproduce). The defaults are the CLI's and the API's: ``engine`` None is
    ``default_engine()``; one worker unless asked (``workers=None``: every core, in spawned
    processes, which a script then needs a ``__main__`` guard for). ``executor`` is a name
    in ``EXECUTORS``, an object with ``map(fn, tasks)`` (kept open by the caller, e.g.
    across runs), or None: serial for one worker or one chunk, else processes.
    ``progress(n)`` is called with the number of trials of each finished chunk.
    ``keep_reps=False`` keeps no revenue per seat (``chunks.rep_revenue`` has zero
    columns): streaming a million trials then needs only the totals and the weekly curve.
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise InputError(
            f"unknown engine {engine!r}", column="--engine", expected="one of " + ", ".join(ENGINES)
        )
    trials = check_trials(trials)
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed must be a whole number ≥ 0, got {seed!r}", column="--seed")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers must be ≥ 1, got {workers}", column="--workers")

    root = np.random.SeedSequence(None if seed is None else int(seed))
    size = CHUNK_SIZES.get(engine, DEFAULT_CHUNK)
    n_chunks = math.ceil(trials / size)
    simulate = ENGINES[engine]
    # Tasks are made lazily: an executor draws the next one only when it has room for it.
    tasks = (
        (simulate, spec, n, child_seed(root, i), first)
        for i, (first, n) in enumerate(chunk_plan(int(trials), size))
    )

    if executor is None:
        executor = _SCOPED_EXECUTOR.get()
    own = executor is None or isinstance(executor, str)
    if executor is None:
        executor = "serial" if min(workers, n_chunks) == 1 else "processes"
    if isinstance(executor, str):
        if executor not in EXECUTORS:
            raise InputError(
                f"unknown executor {executor!r}",
                column="executor",
                expected="one of " + ", ".join(EXECUTORS),
            )
        executor = EXECUTORS[executor](min(workers, n_chunks))

    # What is kept per trial: bytes_per_trial(spec.weeks, len(spec.reps), keep_reps).
    weekly = np.empty((trials, spec.weeks))
    rep_revenue = np.empty((trials, len(spec.reps) if keep_reps else 0))
    seats = SeatSums([r.quota for r in spec.reps], [r.closed_to_date for r in spec.reps])
    deal_wins = np.zeros((2, spec.open_deals.height), dtype=np.int64)
    totals: list[pl.DataFrame] = []
    events = 0
    # An executor we made is closed here; leaving on an exception stops its workers at once.
    with executor if own else contextlib.nullcontext():
        for (first, n), chunk in zip(
            chunk_plan(int(trials), size), executor.map(_run_chunk, tasks)
        ):
            weekly[first : first + n] = chunk.weekly
            if keep_reps:
                rep_revenue[first : first + n] = chunk.rep_revenue
            seats.add(chunk.rep_revenue, chunk.seat_wins)
            deal_wins += chunk.deal_wins
            totals.append(chunk.totals)
            events += chunk.events
            if progress is not None:
                progress(n)

    quota = spec.quota if spec.quota is not None else (spec.team_quota or None)
    assert isinstance(root.entropy, int)  # built from an int or from fresh entropy
    return SimResult(
        engine=engine,
        seed=int(root.entropy),
        trials=int(trials),
        quota=quota,
        rep_names=tuple(r.name for r in spec.reps),
        rep_quotas=tuple(float(r.quota) for r in spec.reps),
        chunks=ChunkResult(
            pl.concat(totals), weekly, rep_revenue, events, seats.wins.copy(), deal_wins
        ),
        extra={
            "chunk_size": CHUNK_SIZES.get(engine, DEFAULT_CHUNK),
            "workers": getattr(executor, "workers", None),
            "fixed_parameters": spec.fixed_parameters,
        },
        closed_to_date=float(spec.closed_to_date),
        rep_closed_to_date=tuple(float(r.closed_to_date) for r in spec.reps),
        start=spec.start,
        days=int(spec.days),
        seats=seats,
        quarter_days=spec.quarter_days,
    )


def bytes_per_trial(weeks: int, reps: int, keep_reps: bool = True) -> int:
    """Memory a run keeps per trial (docs/scaling.md): a row of totals (one 8-byte number
    per ``TOTAL_COLUMNS`` entry), the cumulative weekly curve and, with ``keep_reps``,
    revenue per seat, all 8-byte numbers."""
    return 8 * (len(TOTAL_COLUMNS) + weeks + (reps if keep_reps else 0))
