"""The options the ``salesim`` commands share, each defined once: value types (amounts,
whole numbers, currencies), the history options, a plan's options, the simulation options,
``--executor``/``--scheduler``, and the output options (``--json``, ``--quiet``, ``--out``,
``--plot``, ``--html``, ``--currency``).

cli.py puts them on its commands; what they mean is the library's (scenarios/plan.py,
simulator/executors.py, calibrate/ingest.py). Option sets a command passes on whole reach
it as one argument each: ``plan`` (``load_plan``'s keywords), ``run`` (seed, engine,
workers) and ``output`` (a ``terminal.Output``, the command's context object).
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable

import click

from salesim.outputs import OUTPUT, OutputPath
from salesim.simulator.errors import InputError
from salesim.simulator.units import parse_amount
from salesim.terminal import Output


# --- values -------------------------------------------------------------------------------------
class AmountType(click.ParamType):
    name = "AMOUNT"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_amount(value, what=param.name if param else "amount")
        except InputError as exc:
            self.fail(str(exc), param, ctx)


AMOUNT = AmountType()


class WholeNumberType(click.ParamType):
    """An int, also written as ``1e6``: the run-size options (``--trials``, ``--weeks``)."""

    name = "INTEGER"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return int(value)
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            self.fail(f"{value!r} is not a whole number", param, ctx)
        return int(number)


WHOLE = WholeNumberType()


class CurrencyType(click.ParamType):
    name = "CURRENCY"

    def convert(self, value, param, ctx):
        from salesim.plots import Currency

        if isinstance(value, Currency):
            return value
        try:
            return Currency(value)
        except InputError as exc:  # click names the option itself
            self.fail(f"{exc.message} (expected {exc.expected})", param, ctx)


def currency_option(fn):
    """``--currency`` on every command that draws a chart."""
    return click.option(
        "--currency",
        type=CurrencyType(),
        default="",
        metavar="SYMBOL|CODE",
        help="Currency on charts: a symbol ($, €) before amounts or an ISO code (USD, EUR) "
        "on axes and titles (default: none; salesim does not guess what the CRM's "
        "amounts are in).",
    )(fn)


def json_option(what: str):
    """``--json``: print ``what`` (the command's result document) as JSON."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


quiet_option = click.option("--quiet", is_flag=True, help="No progress bar.")


def simulation_options(*, trials: int, per: str):
    """``--trials``, ``--seed``, ``--engine`` and ``--workers`` of the commands that run a
    fixed seed (dashboard, backtest), given to the command as ``run``; forecast, compare and
    capacity differ (a fresh seed by default, a scenario file's defaults: ``run_options``)."""
    options = [
        click.option(
            "--trials",
            type=WHOLE,
            default=trials,
            show_default=True,
            help=f"Monte Carlo trials per {per}.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
        click.option(
            "--engine",
            default=None,
            help="Simulation engine (default: vector when registered, else simpy).",
        ),
        click.option(
            "--workers",
            type=int,
            default=1,
            show_default=True,
            help="Worker processes; results do not depend on it.",
        ),
    ]
    return lambda fn: _apply(_gather("run", ("trials", "seed", "engine", "workers"))(fn), options)


by_option = click.option(
    "--by",
    "by",
    multiple=True,
    metavar="LEVEL",
    help="Roll the forecast up by rep, manager, region or segment (the rep's, from the "
    "teams or reps file); repeatable or a comma list. Bands per group come from the same "
    "trials as the team's.",
)


def out_option(what: str):
    """``--out FILE`` on every command whose result is table-shaped."""
    return click.option(
        "--out",
        "out_path",
        type=OUT_TABLES,
        default=None,
        metavar="FILE",
        help=f"Write {what} to FILE: .csv, .parquet or .xlsx (Excel needs salesim[excel]); "
        "other tables go beside it as FILE-stem.<table>.csv|parquet, or as sheets.",
    )


def _out_format(value) -> None:
    """Refuse a bad --out suffix (or Excel without its writer) before anything runs."""
    from salesim import tables

    tables.out_format(value)


OUT_TABLES = OutputPath(check=_out_format)


def demo_history_options(fn: Callable) -> Callable:
    """``--seed``, ``--reps``, ``--quarters`` and ``--as-of`` of a generated demo history
    (demo-data, demo)."""
    options = [
        click.option("--seed", type=int, default=7, show_default=True, help="Random seed (≥ 0)."),
        click.option("--reps", type=int, default=20, show_default=True, help="Seats on the team."),
        click.option(
            "--quarters",
            type=int,
            default=8,
            show_default=True,
            help="Quarters of history ending on --as-of.",
        ),
        click.option(
            "--as-of",
            "as_of",
            default="2026-09-30",
            show_default=True,
            metavar="DATE",
            help="Last day of the history (YYYY-MM-DD); demo forecasts the next quarter.",
        ),
    ]
    return _apply(fn, options)


# --- demo-data: a history that changes (simulator/demo_ingredients.py; docs/demo-data.md) ------
INGREDIENTS = {  # option: (metavar, help)
    "drift": (
        "X",
        "Conversion drift: every stage's log odds of advancing shift by X per quarter "
        "(--realistic: -0.04).",
    ),
    "growth": (
        "X",
        "Creation growth: log outbound and marketing rates change by X per quarter "
        "(negative: decline; --realistic: 0.08).",
    ),
    "seasonality": (
        "X",
        "Creation by quarter of the year: log multipliers X·(-0.5, 0, -0.5, 1) for Q1..Q4 "
        "(--realistic: 0.4).",
    ),
    "slips": (
        "P",
        "Wins in a quarter's last 21 days slip, with probability P, 1-21 days into the "
        "next quarter (--realistic: 0.4).",
    ),
    "shocks": (
        "X",
        "Each quarter draws N(0, X) effects on log outbound, log marketing, conversion "
        "log odds and log speed (--realistic: 0.1).",
    ),
    "leavers": (
        "P",
        "Each quarter each rep leaves with probability P in days 30-60 of it, on top of "
        "attrition (--realistic: 0.1).",
    ),
}


def ingredient_options(fn: Callable) -> Callable:
    """``--drift`` … ``--leavers``: what makes a demo history change (all off unless given)."""
    options = [
        click.option(f"--{name}", metavar=metavar, default=None, help=text)
        for name, (metavar, text) in INGREDIENTS.items()
    ]
    return _apply(fn, options)


# --- where simulations run (simulator.runner executors; docs/scaling.md) --------------------------
def executor_options(fn):
    """``--executor`` and ``--scheduler`` for a command that runs simulations; put it under
    ``@handle_errors``. Every run inside the command uses the chosen executor (numbers never
    depend on it); the command's ``workers`` option sizes it."""

    @functools.wraps(fn)
    def wrapper(*args, executor=None, scheduler=None, **kwargs):
        from salesim.simulator import runner
        from salesim.simulator.executors import make_executor

        pool = make_executor(executor, scheduler, kwargs.get("workers"))
        # Closed on the way out; on an exception (Ctrl-C, SIGTERM) without waiting for chunks.
        with pool or contextlib.nullcontext(), runner.using_executor(pool):
            return fn(*args, **kwargs)

    wrapper = click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        envvar="SALESIM_SCHEDULER",
        show_envvar=True,
        help="Run chunks of trials on this dask.distributed scheduler, e.g. tcp://host:8786 "
        '(needs pip install "salesim[dask]").',
    )(wrapper)
    wrapper = click.option(
        "--executor",
        type=click.Choice(["serial", "processes", "dask"]),
        default=None,
        help="Where chunks of trials run (default: serial for one worker, else processes; "
        "dask with --scheduler). dask without an address starts a local cluster of "
        "--workers processes.",
    )(wrapper)
    return wrapper


# --- reading a CRM history (calibrate.ingest; docs/formats.md) ---------------------------------
def _history_flags(*, reps_file: bool) -> list:
    """The one set of options that says how a CRM history is read. ``reps_file=False`` on the
    commands where ``--reps N`` is a head count (forecast, compare, capacity: ``--team`` names
    a team file there; a reps file in the history folder is still read)."""
    options = [
        click.option(
            "--format",
            "format",
            type=click.Choice(["canonical", "maven"], case_sensitive=False),
            default="canonical",
            show_default=True,
            help="History layout: canonical files, or the Maven CRM sample folder.",
        ),
        click.option(
            "--profile",
            "profile",
            default=None,
            metavar="NAME|FILE.toml",
            help="Mapping profile of a CRM export: salesforce, hubspot, pipedrive or "
            "a profile TOML file (docs/formats.md); the flags below override it.",
        ),
        click.option(
            "--map",
            "mapping",
            multiple=True,
            metavar="CANONICAL=SOURCE",
            help="Read a canonical column from a differently named one, e.g. "
            "--map owner='Opportunity Owner' (repeatable; comma-separated pairs "
            "also work).",
        ),
        click.option(
            "--date-format",
            "date_format",
            default=None,
            metavar="STRFTIME|auto",
            help="Format of text dates, e.g. %m/%d/%Y, or auto (default: the "
            "profile's, else ISO 2024-03-31).",
        ),
        click.option(
            "--stages",
            "stages",
            default=None,
            metavar="A,B,C",
            help="Stage order, first to last (default: the profile's, else inferred "
            "from stage history).",
        ),
        click.option(
            "--stage-history",
            "stage_history",
            type=click.Path(dir_okay=False),
            default=None,
            help="Stage history file (default: stage_history.csv|parquet in the HISTORY folder).",
        ),
        click.option(
            "--activities",
            "activities",
            type=click.Path(dir_okay=False),
            default=None,
            help="Activities file (default: from the HISTORY folder).",
        ),
        click.option(
            "--close-date-history",
            "close_date_history",
            type=click.Path(dir_okay=False),
            default=None,
            help="Expected-close-date history: one row per change (default: "
            "close_date_history.csv|parquet in the HISTORY folder).",
        ),
        click.option(
            "--teams",
            "teams",
            type=click.Path(dir_okay=False),
            default=None,
            help="Teams file: each rep's manager, region and segment (default: from the "
            "HISTORY folder).",
        ),
    ]
    if reps_file:
        options.append(
            click.option(
                "--reps",
                "reps",
                type=click.Path(dir_okay=False),
                default=None,
                help="Reps file (default: from the HISTORY folder).",
            )
        )
    return options


def _apply(fn, options: list):
    for option in reversed(options):
        fn = option(fn)
    return fn


def history_options(fn):
    """The options of a command that reads a HISTORY; pass them on to ``load_history``::

    @history_options
    def calibrate(history, ..., **history_opts):
        h = load_history(history, **history_opts)
    """
    return _apply(fn, _history_flags(reps_file=True))


def model_history_options(fn):
    """``--history PATH`` and the history options, for commands that run a MODEL (forecast,
    compare, capacity); the command gets ``history`` and ``**history_opts``."""
    return _apply(
        fn,
        [
            click.option(
                "--history",
                "history",
                type=click.Path(),
                default=None,
                help="CRM history (folder or opportunities file) with a "
                "MODEL: the pipeline open at --as-of and revenue "
                "already won this quarter.",
            )
        ]
        + _history_flags(reps_file=False),
    )


def plan_trials_option(*, default: int) -> Callable:
    """``--trials`` of compare and capacity: a scenario file's, else ``default`` (the
    library's ``COMPARE_TRIALS``/``CAPACITY_TRIALS``, resolved there)."""
    return click.option(
        "--trials",
        type=WHOLE,
        default=None,
        help=f"Trials per run (default: the scenario's, else {default}).",
    )


# --- gathering: an option set reaches the command as one argument -----------------------------
def _gather(
    name: str, keys: tuple[str, ...] | Callable[[], tuple[str, ...]], make: Callable = dict
) -> Callable:
    """Hand the command the values of ``keys`` as one argument ``name`` (``make(**values)``).
    Put it under ``@handle_errors`` and ``@executor_options``: they read the options one by
    one."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            names = keys() if callable(keys) else keys
            values = {k: kwargs.pop(k) for k in names if k in kwargs}
            return fn(*args, **{name: make(**values)}, **kwargs)

        return wrapper

    return decorate


def output_options(
    *,
    json: str,
    out: str | None = None,
    plot: str | None = None,
    html: str | None = None,
    currency: bool = False,
    quiet: bool = True,
) -> Callable:
    """``--json`` (printing ``json``), and those of ``--out`` (writing ``out``), ``--plot``
    and ``--html`` (help texts), ``--currency`` and ``--quiet`` the command has; it gets
    them as ``output``, a ``terminal.Output``."""
    options = [json_option(json)]
    if html:
        options.append(click.option("--html", "html_path", type=OUTPUT, default=None, help=html))
    if plot:
        options.append(click.option("--plot", "plot_path", type=OUTPUT, default=None, help=plot))
    if out:
        options.append(out_option(out))
    if currency:
        options.append(currency_option)
    if quiet:
        options.append(quiet_option)
    keys = ("as_json", "quiet", "out_path", "plot_path", "html_path", "currency")
    return lambda fn: _apply(_gather("output", keys, Output)(fn), options)


def run_options(fn: Callable) -> Callable:
    """``--seed``, ``--workers`` and ``--engine`` of forecast, compare and capacity (a fresh
    seed by default, or a scenario file's); the command gets them as ``run``, keywords of
    its ``api`` call."""
    options = [
        click.option(
            "--seed",
            type=int,
            default=None,
            help="Seed shared by every run (default: the scenario's, else fresh and reported).",
        ),
        click.option(
            "--workers",
            type=int,
            default=None,
            help="Worker processes (default: all cores); results do not depend on it.",
        ),
        click.option(
            "--engine",
            default=None,
            help="Simulation engine: vector (fast; the default) or simpy (the readable "
            "reference); both follow docs/model.md.",
        ),
    ]
    return _apply(_gather("run", ("seed", "workers", "engine"))(fn), options)


# --- a plan: a SCENARIO.toml or a MODEL.toml (scenarios/plan.py) -------------------------------
PLAN_KEYS = ("history", "as_of", "start", "weeks", "n_reps", "team", "fixed_parameters")


def _plan_keys() -> tuple[str, ...]:
    from salesim.scenarios.plan import HISTORY_OPTIONS  # not at import: ``--help`` stays light

    return PLAN_KEYS + HISTORY_OPTIONS


def _plan_arguments(**values: Any) -> dict:
    """``load_plan``'s keywords from the plan options (the history flags as one dict)."""
    return {
        **{k: values.pop(k) for k in PLAN_KEYS},
        "history_options": values,
    }


def plan_options(*, scenario: bool = True) -> Callable:
    """Options of the commands that take a SCENARIO.toml or a MODEL.toml (``scenario``) or
    only a MODEL.toml (forecast): with a model they build the baseline; a scenario file says
    all of it itself. The command gets them as ``plan``, keywords of ``load_plan``."""

    def model(text: str) -> str:
        return f"With a MODEL: {text}" if scenario else text[0].upper() + text[1:]

    options = [
        click.option(
            "--as-of",
            "as_of",
            default=None,
            help=model("plan from the end of this date (default: the model's as-of date)."),
        ),
        click.option(
            "--start",
            default=None,
            help=model("first day of the horizon (default: the day after --as-of)."),
        ),
        click.option(
            "--weeks",
            type=WHOLE,
            default=None,
            help=model("horizon in weeks (default: to the end of the start's calendar quarter)."),
        ),
        click.option(
            "--reps",
            "n_reps",
            type=int,
            default=None,
            help=model("N experienced reps instead of the model's team."),
        ),
        click.option(
            "--team",
            type=click.Path(dir_okay=False),
            default=None,
            help=model("team file: owner, hired[, left, quota] (reps.csv format)."),
        ),
        click.option(
            "--fixed-parameters",
            is_flag=True,
            help="Use point estimates instead of drawing parameters from the posterior.",
        ),
    ]
    return lambda fn: model_history_options(
        _apply(_gather("plan", _plan_keys, _plan_arguments)(fn), options)
    )
