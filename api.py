"""The functions ``import salesim`` offers, one per CLI command that runs simulations; the
CLI calls these same functions, so a notebook and ``salesim …`` give the same numbers.

Defaults are the CLI's: the vector engine (``runner.default_engine``), one worker unless
asked (``workers=None``: every core, in spawned processes), trials and seed from a scenario
file when the plan came from one. ``progress(n)`` is called with the units of work done
(trials; folds for a backtest).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from salesim.results import CapacityAnswer, Comparison, Forecast
from salesim.scenarios.plan import CAPACITY_TRIALS, COMPARE_TRIALS, Plan, model_plan, read_history
from salesim.simulator.errors import InputError
from salesim.simulator.runner import Progress
from salesim.simulator.units import as_date


def _plan(plan) -> Plan:
    """A ``Plan``, or a bare ``SimSpec`` taken as one."""
    return plan if isinstance(plan, Plan) else Plan(plan)


def baseline(
    model,
    history=None,
    *,
    as_of: dt.date | str | None = None,
    start: dt.date | str | None = None,
    weeks: int | None = None,
    reps: int | None = None,
    team=None,
    quota: float | None = None,
    fixed_parameters: bool = False,
    **history_options,
) -> Plan:
    """The baseline plan of a model (``Model`` or MODEL.toml path): its team from
    ``as_of`` (default: the model's) to the quarter's end, with the pipeline open at
    ``as_of`` and the revenue closed to date from ``history`` (a ``History`` or a path read
    with ``history_options``). ``.spec`` is the ``SimSpec`` the engines run."""
    return model_plan(
        model,
        history=history,
        history_options=history_options,
        as_of=as_of,
        start=start,
        weeks=weeks,
        n_reps=reps,
        team=team,
        quota=quota,
        fixed_parameters=fixed_parameters,
    )


def forecast(
    plan,
    *,
    trials: int = 10_000,
    seed: int | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
) -> Forecast:
    """Forecast the quarter of ``plan`` (a ``Plan`` or ``SimSpec``): see ``Forecast``."""
    from salesim.scenarios.forecast import forecast as run

    return run(
        _plan(plan).spec,
        trials=trials,
        seed=seed,
        engine=engine,
        workers=workers,
        progress=progress,
    )


def compare(
    plan,
    levers: Iterable[str] = (),
    *,
    trials: int | None = None,
    seed: int | None = None,
    quota: float | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    executor=None,
) -> Comparison:
    """Each strategy of the plan's scenario file, and each of ``levers`` (texts such as
    ``"win-rate=+5pp"``, as ``--lever`` takes them), against the baseline with common random
    numbers. ``trials`` and ``seed``: the scenario's, else 4000 and fresh entropy."""
    from salesim.scenarios.compare import compare as run

    p = _plan(plan)
    return run(
        p.spec,
        p.strategies(levers),
        trials=p.trials(trials, COMPARE_TRIALS),
        seed=p.seed(seed),
        quota=quota,
        engine=engine,
        workers=workers,
        progress=progress,
        executor=executor,
        source=p.source,
    )


def capacity(
    plan,
    target: float | None = None,
    *,
    confidence: float = 0.8,
    solve: str = "headcount",
    hire_by: dt.date | str | None = None,
    max_reps: int | None = None,
    trials: int | None = None,
    seed: int | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    executor=None,
) -> CapacityAnswer:
    """``solve="headcount"``: the fewest extra reps, starting on ``hire_by`` (default: the
    first day), for P(revenue ≥ target) ≥ confidence (up to ``max_reps`` seats, default
    ``capacity.default_max_reps``). ``solve="coverage"``: the open pipeline at the start, as
    a multiple of ``target`` (default: the team quota), for that confidence."""
    from salesim.scenarios.capacity import solve_coverage, solve_headcount

    p = _plan(plan)
    kw = dict(
        confidence=confidence,
        trials=p.trials(trials, CAPACITY_TRIALS),
        seed=p.seed(seed),
        engine=engine,
        workers=workers,
        progress=progress,
        executor=executor,
        source=p.source,
    )
    if solve == "headcount":
        if target is None:
            raise InputError(
                "--target is required", column="--target", expected="an amount such as 12M"
            )
        hire = None if hire_by is None else as_date(hire_by, what="date", column="--hire-by")
        return solve_headcount(p.spec, target, hire_date=hire, max_reps=max_reps, **kw)
    if solve == "coverage":
        if hire_by is not None or max_reps is not None:
            raise InputError(
                "--hire-by and --max-reps apply to --solve headcount", column="--solve"
            )
        return solve_coverage(p.spec, quota=target, **kw)
    raise InputError(
        f"cannot solve for {solve!r}", column="--solve", expected="headcount or coverage"
    )


def backtest(
    history,
    *,
    cutoffs: Iterable[dt.date] | None = None,
    every: str | None = None,
    quarters: int | None = None,
    trials: int = 2000,
    seed: int = 0,
    engine: str | None = None,
    workers: int | None = 1,
    steady: bool = False,
    progress: Progress | None = None,
    **history_options,
):
    """Re-forecast past quarters from what was known at each cutoff and score the bands
    (``scenarios.backtest.BacktestResult``). ``history``: a ``History`` or a path read with
    ``history_options``; cutoffs as ``salesim backtest`` chooses them."""
    from salesim.scenarios import backtest as bt

    h = _history(history, history_options)
    days = bt.choose_cutoffs(h, cutoffs=cutoffs, every=every, quarters=quarters)
    return bt.backtest(
        h,
        days,
        trials=trials,
        seed=seed,
        engine=engine,
        workers=workers,
        fit=bt.steady_fit if steady else bt.default_fit,
        progress=progress,
    )


def dashboard(
    history,
    plan: str,
    as_of: dt.date | str,
    *,
    strategy: str | None = None,
    trials: int = 1000,
    seed: int = 0,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    **history_options,
):
    """The weekly stoplight of ``history`` against the plan of a scenario file
    (``scenarios.dashboard.Dashboard``)."""
    from salesim.scenarios import dashboard as db

    day = as_date(as_of, what="date", column="--as-of")
    prepared = db.prepare(_history(history, history_options), db.load_plan(plan, strategy), day)
    return db.run_dashboard(
        prepared, trials=trials, seed=seed, engine=engine, workers=workers, progress=progress
    )


def _history(history, history_options: dict):
    from salesim.calibrate.history import History

    return history if isinstance(history, History) else read_history(history, **history_options)
