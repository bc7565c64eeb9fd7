"""The library call behind each ``salesim`` command, and the functions ``import salesim``
offers: the CLI parses, calls one of these and renders, so a notebook and ``salesim …`` give
the same numbers and every decision (defaults, bounds, validation) is made here or below.

Defaults are the CLI's: the vector engine (``runner.default_engine``), one worker unless
asked (``workers=None``: every core, in spawned processes), trials and seed from a scenario
file when the plan came from one. ``progress(n)`` is called with the units of work done
(trials; folds for a backtest; steps for calibration and bench); a progress display with an
``expect(total)`` method is told the total first (``runner.expect``).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from salesim.results import CapacityAnswer, Comparison, DealsView, Forecast
from salesim.scenarios.plan import CAPACITY_TRIALS, COMPARE_TRIALS, Plan, model_plan, read_history
from salesim.simulator.errors import InputError
from salesim.simulator.model import Model
from salesim.simulator.runner import Progress, expect
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
    by: Iterable[str] | str | None = None,
) -> Forecast:
    """Forecast the quarter of ``plan`` (a ``Plan`` or ``SimSpec``): see ``Forecast``.
    ``by``: roll-up levels (rep, manager, region, segment; a list or a comma list), grouped
    by the plan's teams (``Plan.teams``: a bare ``SimSpec`` has none, so only ``rep``
    groups)."""
    from salesim.scenarios.forecast import forecast as run

    p = _plan(plan)
    expect(progress, trials)
    return run(
        p.spec,
        trials=trials,
        seed=seed,
        engine=engine,
        workers=workers,
        progress=progress,
        by=by,
        teams=p.teams,
        calls=p.calls,
    )


def deals(
    plan,
    *,
    trials: int = 10_000,
    seed: int | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    inactive_days: int = 30,
) -> DealsView:
    """Every deal open in ``plan`` (a model's ``Plan`` with its history: ``baseline(model,
    history, as_of=…)``) with P(win) and P(win this quarter) from one forecast run, its
    expected value in the quarter and risk flags (``inactive_days``: no activity in that
    many days); see ``DealsView``."""
    from salesim.scenarios.deals import deals_view

    p = _plan(plan)
    if p.history is None or p.as_of is None:
        raise InputError(
            "the per-deal view needs the history the open deals come from",
            column="--history",
            expected="--history FOLDER_OR_FILE (a plan from a model and its history)",
        )
    expect(progress, trials)
    return deals_view(
        p.spec,
        p.history,
        p.as_of,
        trials=trials,
        seed=seed,
        engine=engine,
        workers=workers,
        progress=progress,
        inactive_days=inactive_days,
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
    strategies = p.strategies(levers)
    trials = p.trials(trials, COMPARE_TRIALS)
    expect(progress, trials * (len(strategies) + 1))  # the baseline and each strategy
    return run(
        p.spec,
        strategies,
        trials=trials,
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
    from salesim.scenarios.capacity import most_runs, solve_coverage, solve_headcount

    p = _plan(plan)
    trials = p.trials(trials, CAPACITY_TRIALS)
    kw = dict(
        confidence=confidence,
        trials=trials,
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
        expect(progress, trials * most_runs(len(p.spec.reps), max_reps))
        return solve_headcount(p.spec, target, hire_date=hire, max_reps=max_reps, **kw)
    if solve == "coverage":
        if hire_by is not None or max_reps is not None:
            raise InputError(
                "--hire-by and --max-reps apply to --solve headcount", column="--solve"
            )
        expect(progress, trials * 2)  # the run, then the check at the answer
        return solve_coverage(p.spec, quota=target, **kw)
    raise InputError(
        f"cannot solve for {solve!r}", column="--solve", expected="headcount or coverage"
    )


def backtest(
    history,
    *,
    cutoffs: Iterable[dt.date] | str | None = None,
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
    ``history_options``; cutoffs as ``salesim backtest`` chooses them (``cutoffs``: dates, or
    a text of comma-separated dates as ``--cutoffs`` takes it)."""
    from salesim.scenarios import backtest as bt

    if isinstance(cutoffs, str):
        cutoffs = bt.parse_cutoffs(cutoffs)
    h = _history(history, history_options)
    days = bt.choose_cutoffs(h, cutoffs=cutoffs, every=every, quarters=quarters)
    expect(progress, len(days))
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
    by: Iterable[str] | str | None = None,
    **history_options,
):
    """The weekly stoplight of ``history`` against the plan of a scenario file
    (``scenarios.dashboard.Dashboard``); ``by``: roll-up levels of its forecast, as
    ``forecast``'s."""
    from salesim.scenarios import dashboard as db

    day = as_date(as_of, what="date", column="--as-of")
    prepared = db.prepare(_history(history, history_options), db.load_plan(plan, strategy), day)
    expect(progress, trials * prepared.runs)
    return db.run_dashboard(
        prepared,
        trials=trials,
        seed=seed,
        engine=engine,
        workers=workers,
        progress=progress,
        by=by,
    )


def movement(
    history,
    start: dt.date | str,
    end: dt.date | str,
    *,
    quarter: dt.date | str | None = None,
    model=None,
    trials: int = 2000,
    seed: int | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    **history_options,
):
    """What changed in the quarter's pipeline from the end of ``start`` to the end of
    ``end`` (``scenarios.movement.Movement``); with ``model`` (a ``Model`` or MODEL.toml),
    also the forecast at both dates, same seed, and where its change came from."""
    from salesim.scenarios import movement as mv

    h = _history(history, history_options)
    a = as_date(start, what="date", column="--from")
    b = as_date(end, what="date", column="--to")
    q = None if quarter is None else as_date(quarter, what="date", column="--quarter")
    result = mv.movement(h, a, b, quarter=q)
    if model is None:
        return result
    expect(progress, 2 * trials)
    moved = mv.forecast_movement(
        model, h, a, b, trials=trials, seed=seed, engine=engine, workers=workers, progress=progress
    )
    return mv.Movement({**result.to_dict(), "forecast": moved})


def calibrate(
    history,
    as_of: dt.date | str | None = None,
    *,
    steady: bool = False,
    progress: Progress | None = None,
    **history_options,
) -> Model:
    """Fit a model from ``history`` (a ``History`` or a path read with ``history_options``)
    as it stood at the end of ``as_of`` (default: the last date in the history).
    ``steady``: pool the whole history (no quarter effects, closing clock or old-deal
    tails). ``progress(1)`` after each calibration step."""
    from salesim.calibrate.fit import STEPS
    from salesim.calibrate.fit import calibrate as fit

    h = _history(history, history_options)
    day = h.last_date if as_of is None else as_date(as_of, what="date", column="--as-of")
    expect(progress, len(STEPS))
    return fit(
        h,
        day,
        stages=history_options.get("stages"),
        calendar=not steady,
        progress=None if progress is None else lambda step: progress(1),
    )


def inspect_history(history, as_of: dt.date | str | None = None, **history_options) -> dict:
    """What was read from ``history`` (a path read with ``history_options``), as it stood
    at the end of ``as_of`` if given: counts, date range, owners, files found, notes
    (``salesim inspect --json``; ``format`` names the layout read)."""
    from salesim.calibrate.ingest import OPTIONAL_FILES, find_files, summarize

    h = read_history(history, **history_options)
    if as_of is not None:
        h = h.as_of(as_of)
    files = find_files(
        history,
        format=history_options.get("format", "canonical"),
        **{k: history_options.get(k) for k in OPTIONAL_FILES},
    )
    return {"as_of": as_of, **summarize(h, files)}


def bench(
    *,
    reps: int = 50,
    trials: int = 10_000,
    engines: str | Iterable[str] = ("simpy", "vector"),
    simpy_trials: int = 50,
    stream_trials: int = 0,
    sweep: bool = True,
    progress: Progress | None = None,
) -> dict:
    """The speed suite of ``salesim bench`` (``scenarios.bench.run_suite``): its JSON
    document. ``engines``: names, or a comma-separated text as ``--engines`` takes it;
    ``progress(1)`` after each measurement."""
    from salesim.scenarios import bench as suite

    if isinstance(engines, str):
        engines = [e.strip() for e in engines.split(",") if e.strip()]
    names = tuple(engines)
    if stream_trials < 0 or simpy_trials < 1:
        raise InputError("--stream must be ≥ 0 and --simpy-trials ≥ 1", column="--stream")
    expect(progress, suite.suite_steps(names, sweep=sweep, stream_trials=stream_trials))
    return suite.run_suite(
        reps=reps,
        trials=trials,
        engines=names,
        simpy_trials=simpy_trials,
        sweep=sweep,
        stream_trials=stream_trials,
        progress=None if progress is None else lambda step: progress(1),
    )


def _history(history, history_options: dict):
    from salesim.calibrate.history import History

    return history if isinstance(history, History) else read_history(history, **history_options)
