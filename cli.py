"""The ``salesim`` command line: parse, call one library function per command, render.

Every command turns bad input (``InputError``) into exit status 2 with one message naming
the file, row and column. The shared options are in options.py, the library calls in
api.py and the packages, the terminal text in report.py, the charts in plots.py; what is
left here is each command's parse, its call and where its output goes.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from salesim import outputs, report
from salesim.options import (
    AMOUNT,
    WHOLE,
    currency_option,
    executor_options,
    history_options,
    json_option,
    model_history_options,
    out_option,
    plan_options,
    quiet_option,
    simulation_options,
)
from salesim.outputs import OUTPUT, OUTPUT_DIR
from salesim.report import json_safe as _clean  # noqa: F401 (re-exported)
from salesim.simulator.errors import InputError, printable, terminal_text
from salesim.simulator.units import as_date, money, parse_amount  # noqa: F401 (re-exported)


# --- shared plumbing --------------------------------------------------------------------------
def write_tables(named: dict, path, *, fmt: str | None = None) -> list[str]:
    """Write a result's tables (``tables.encode``) through ``write_output``; the paths. The
    tables beside FILE are no option of their own, so they are checked here, by the same
    rules as every output, before any file is written."""
    from salesim import tables

    files = tables.encode(named, path, fmt)
    outputs.check_beside(click.get_current_context(), [p for p, _ in files[1:]])
    return [str(write_output(p, data)) for p, data in files]


def echo_written(out: dict, what: dict[str, str]) -> None:
    """``Wrote … to …`` for each output a command wrote (``what``: key -> description)."""
    for key, desc in what.items():
        if key in out:
            paths = out[key] if isinstance(out[key], list) else [out[key]]
            echo(f"Wrote {desc} to {', '.join(paths)}")


def echo(message: object = "", **kwargs) -> None:
    """``click.echo`` for everything salesim prints: names come from users' data, and an
    escape sequence in a rep's name must not drive the terminal (shown escaped instead)."""
    click.echo(terminal_text(str(message)), **kwargs)


def handle_errors(fn):
    """Bad input -> exit 2 and one line on stderr; never a traceback. The run size
    (``--trials``, ``--weeks``) and the command's output paths are checked first, before any
    work (outputs.check_command)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            _check_run_size(kwargs)
            outputs.check_command(click.get_current_context())
            return fn(*args, **kwargs)
        except InputError as exc:
            echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _check_run_size(options: dict) -> None:
    """``--trials`` and ``--weeks`` within their documented maxima, before any work."""
    from salesim.simulator import limits

    if options.get("trials") is not None:
        limits.check_trials(options["trials"])
    if options.get("weeks") is not None:
        limits.check_weeks(options["weeks"])


def emit_json(data: dict) -> None:
    echo(json.dumps(_clean(data), indent=2))


def deliver(
    result,
    doc: dict,
    *,
    out_path=None,
    plot_path=None,
    currency=None,
    as_json: bool = False,
    written: dict[str, str],
) -> None:
    """The end of every command with a result object: its tables to ``--out``, its chart to
    ``--plot``, then ``doc`` (``result.to_dict()`` plus the files written) as JSON, or the
    result's text and what was written."""
    from salesim import plots

    if out_path:
        doc["out"] = write_tables(result.tables(), out_path)
    if plot_path:
        doc["plot"] = str(write_output(plot_path, plots.png(result.plot(currency))))
    if as_json:
        emit_json(doc)
        return
    echo(result.to_text())
    echo_written(doc, written)


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write an ``OUTPUT`` option's file atomically (checked before the command ran)."""
    return outputs.write(path, data)


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and not with --quiet."""
    return not quiet and sys.stderr.isatty()


# --- reading a CRM history (calibrate.ingest; docs/formats.md) ---------------------------------


def load_history(history_path, **history_opts):
    """The ``History`` behind a HISTORY argument and ``history_options`` (InputError if bad)."""
    from salesim.scenarios.plan import read_history

    return read_history(history_path, **history_opts)


def _history_files(history_path, history_opts: dict):
    """The files behind a HISTORY and its options (``calibrate.ingest.HistoryFiles``)."""
    from salesim.calibrate.ingest import find_files

    return find_files(
        history_path,
        format=history_opts.get("format", "canonical"),
        **{
            k: history_opts.get(k)
            for k in ("stage_history", "activities", "reps", "close_date_history", "teams")
        },
    )


# --- the group ----------------------------------------------------------------------------------
class SalesimGroup(click.Group):
    """click's group, but a usage error (a bad option value, an unknown command) is one line
    like every other error, not the usage text followed by the message."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare ``salesim``: the help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "salesim"
            echo(f"Error: {printable(exc.format_message())} (see '{command} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, EOFError, KeyboardInterrupt):
            echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(0)


@click.group(
    cls=SalesimGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="salesim")
def main():
    """salesim: Monte Carlo forecasting and planning for sales teams.

    \b
    Typical flow:
      salesim demo                                     # everything, on generated demo data
      salesim demo-data hist --seed 7                  # write demo CRM history
      salesim calibrate hist --as-of 2026-09-30 -o model.toml
      salesim forecast model.toml --history hist --quota 12M
      salesim compare model.toml --history hist --lever prospecting=+20% --lever win-rate=+5pp
      salesim capacity model.toml --history hist --target 7M --confidence 0.8
      salesim backtest hist --quarters 4

    Every command takes --help; bad input exits with status 2 and a message naming the
    file, row and column.
    """


# --- demo-data ------------------------------------------------------------------------------------
@main.command("demo-data")
@click.argument("directory", metavar="DIR", type=OUTPUT_DIR)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed (≥ 0).")
@click.option("--reps", type=int, default=20, show_default=True, help="Seats on the team.")
@click.option(
    "--quarters",
    type=int,
    default=8,
    show_default=True,
    help="Quarters of history ending on --as-of.",
)
@click.option(
    "--as-of",
    "as_of",
    default="2026-09-30",
    show_default=True,
    help="Last day of the history (YYYY-MM-DD).",
)
@click.option(
    "--drift",
    metavar="X",
    default=None,
    help="Conversion drift: every stage's log odds of advancing shift by X per "
    "quarter (--realistic: -0.04).",
)
@click.option(
    "--growth",
    metavar="X",
    default=None,
    help="Creation growth: log outbound and marketing rates change by X per quarter "
    "(negative: decline; --realistic: 0.08).",
)
@click.option(
    "--seasonality",
    metavar="X",
    default=None,
    help="Creation by quarter of the year: log multipliers X·(-0.5, 0, -0.5, 1) for "
    "Q1..Q4 (--realistic: 0.4).",
)
@click.option(
    "--slips",
    metavar="P",
    default=None,
    help="Wins in a quarter's last 21 days slip, with probability P, 1-21 days into "
    "the next quarter (--realistic: 0.4).",
)
@click.option(
    "--shocks",
    metavar="X",
    default=None,
    help="Each quarter draws N(0, X) effects on log outbound, log marketing, "
    "conversion log odds and log speed (--realistic: 0.1).",
)
@click.option(
    "--leavers",
    metavar="P",
    default=None,
    help="Each quarter each rep leaves with probability P in days 30-60 of it, on "
    "top of attrition (--realistic: 0.1).",
)
@click.option(
    "--realistic",
    is_flag=True,
    help="Every ingredient above at its --realistic value unless given.",
)
@click.option(
    "--close-dates",
    is_flag=True,
    help="Reps also set and push expected close dates: close_date_history.csv and an "
    'expected_close column (docs/demo-data.md, "Close dates").',
)
@click.option(
    "--export",
    "export",
    default="canonical",
    show_default=True,
    metavar="LAYOUT",
    help="Write the history as a CRM report export: salesforce, salesforce-onefile, "
    'hubspot or pipedrive (docs/demo-data.md, "CRM exports").',
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the CRM files DIR already holds (without it, such a DIR is refused).",
)
@json_option("the summary")
@quiet_option
@handle_errors
def demo_data(
    directory,
    seed,
    reps,
    quarters,
    as_of,
    drift,
    growth,
    seasonality,
    slips,
    shocks,
    leavers,
    realistic,
    close_dates,
    export,
    force,
    as_json,
    quiet,
):
    """Write demo CRM history generated from known parameters, plus DIR/truth.toml.

    DIR gets opportunities.csv, stage_history.csv, activities.csv and reps.csv (the
    canonical formats) and truth.toml, the model that generated them: calibrate DIR and
    compare the fit with it (docs/demo-data.md). --export writes the same history as a
    Salesforce, HubSpot or Pipedrive report export. A DIR that already holds CRM files is
    refused unless --force is given.

    By default every rate is constant. --drift, --growth, --seasonality, --slips, --shocks
    and --leavers make the history change over time as real CRMs do (all off by default;
    docs/demo-data.md, "Changing histories"); truth.toml records them.

    \b
    Examples:
      salesim demo-data hist --seed 7
      salesim demo-data big --reps 200 --quarters 12 --as-of 2026-06-30 --json
      salesim demo-data real --realistic
      salesim demo-data shrinking --growth -0.1 --drift -0.05 --slips 0.3
      salesim demo-data sf --export salesforce
      salesim demo-data slipping --close-dates
    """
    from salesim.scenarios.demo import demo_data_as_of, write_demo_data
    from salesim.simulator.demo_history import history_days

    day = demo_data_as_of(as_of, seed=seed, reps=reps, quarters=quarters)
    changes = dict(
        drift=drift,
        growth=growth,
        seasonality=seasonality,
        slips=slips,
        shocks=shocks,
        leavers=leavers,
    )
    with _progress_bar(quiet, history_days(day, quarters), "Generating history") as bar:
        out = write_demo_data(
            directory,
            as_of=day,
            seed=seed,
            reps=reps,
            quarters=quarters,
            export=export,
            ingredients=changes,
            realistic=realistic,
            close_dates=close_dates,
            progress=bar.update if bar else None,
            write=write_output,
        )
    if as_json:
        emit_json(out)
        return
    echo(report.demo_data_text(out))


# --- inspect --------------------------------------------------------------------------------------
@main.command("inspect")
@click.argument("history", type=click.Path())
@history_options
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="DATE",
    help="Show the history as it stood at the end of this date (YYYY-MM-DD).",
)
@json_option("what was read")
@handle_errors
def inspect_history(history, as_of, as_json, **history_opts):
    """Read HISTORY (a folder or an opportunities file) and show what was read.

    Counts by status and stage, date range, owners, optional files found, and the notes and
    warnings raised while reading (docs/formats.md). Bad input exits with status 2.

    \b
    Examples:
      salesim inspect hist
      salesim inspect ../shared/data/maven-crm --format maven --json
      salesim inspect report.csv --profile salesforce --stage-history history.csv
      salesim inspect export.csv --map opportunity_id='Opportunity ID' --map owner='Opportunity Owner' --date-format %m/%d/%Y
    """
    from salesim.calibrate.ingest import summarize

    h = load_history(history, **history_opts)
    if as_of is not None:
        h = h.as_of(as_of)
    files = _history_files(history, history_opts)
    s = summarize(h, files)
    if as_json:
        emit_json({"as_of": as_of, **s})
        return
    echo(report.inspect_text(s, files.format, history_opts.get("profile"), as_of))


# --- forecast -------------------------------------------------------------------------------------
def _iso_date(value: str | None, option: str):
    return None if value is None else as_date(value, what="date", column=option)


@main.command("forecast")
@click.argument("model_path", metavar="MODEL.toml", type=click.Path(dir_okay=False))
@model_history_options
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="Forecast from the end of this date (default: the model's as-of date).",
)
@click.option(
    "--start", default=None, help="First day of the horizon (default: the day after --as-of)."
)
@click.option(
    "--weeks",
    type=WHOLE,
    default=None,
    help="Horizon in weeks (default: to the end of the start's calendar quarter).",
)
@click.option(
    "--reps",
    "n_reps",
    type=int,
    default=None,
    help="Forecast for N experienced reps instead of the model's team.",
)
@click.option(
    "--team",
    type=click.Path(dir_okay=False),
    default=None,
    help="Team file: owner, hired[, left, quota] (reps.csv format).",
)
@click.option(
    "--quota",
    type=AMOUNT,
    default=None,
    help="Team quota for the quarter, e.g. 12M, 750k, 1,200,000 (default: the sum of rep quotas).",
)
@click.option("--trials", type=WHOLE, default=10_000, show_default=True, help="Monte Carlo trials.")
@click.option("--seed", type=int, default=None, help="Random seed (default: fresh, reported).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes (default: all cores); results do not depend on it.",
)
@click.option(
    "--engine",
    default="vector",
    show_default=True,
    help="Simulation engine: vector (fast) or simpy (the readable reference); "
    "both follow docs/model.md.",
)
@click.option(
    "--fixed-parameters",
    is_flag=True,
    help="Use point estimates instead of drawing parameters from the posterior.",
)
@json_option("the forecast")
@click.option(
    "--csv",
    "csv_path",
    type=OUTPUT,
    default=None,
    help="Write the weekly bands of cumulative revenue to this CSV.",
)
@out_option(
    "the weekly bands, per-rep revenue and attainment bands (FILE-stem.reps) and a "
    "summary row (FILE-stem.summary)"
)
@click.option(
    "--plot",
    "plot_path",
    type=OUTPUT,
    default=None,
    help="Write a PNG: fan chart by week and histogram of quarter revenue.",
)
@currency_option
@quiet_option
@handle_errors
@executor_options
def forecast_cmd(
    model_path,
    history,
    as_of,
    start,
    weeks,
    n_reps,
    team,
    quota,
    trials,
    seed,
    workers,
    engine,
    fixed_parameters,
    as_json,
    csv_path,
    out_path,
    plot_path,
    currency,
    quiet,
    **history_opts,
):
    """Forecast the quarter's closed revenue with confidence bands.

    Runs the calibrated MODEL.toml from the as-of date to the end of the quarter: P10/P50/P90
    of revenue (closed to date + won in the horizon), P(revenue ≥ quota) with its Monte Carlo
    interval, the split between open and new pipeline, wins and per-rep attainment.

    \b
    Examples:
      salesim forecast model.toml --history hist --as-of 2026-09-30 --quota 12M
      salesim forecast model.toml --history hist --reps 25 --quota 750k --json
      salesim forecast sf.toml --history report.csv --profile salesforce --quota 2M
      salesim forecast model.toml --trials 50000 --workers 2 --csv bands.csv --plot fan.png
      salesim forecast model.toml --history hist --out forecast.xlsx --currency USD
    """
    from salesim import api
    from salesim.scenarios.plan import model_plan

    plan = model_plan(
        model_path,
        history=history,
        history_options=history_opts,
        as_of=as_of,
        start=start,
        weeks=weeks,
        n_reps=n_reps,
        team=team,
        quota=quota,
        fixed_parameters=fixed_parameters,
    )
    _warn(plan)
    with _progress_bar(quiet, trials, "Simulating") as bar:
        result = api.forecast(
            plan,
            trials=trials,
            seed=seed,
            engine=engine,
            workers=workers,
            progress=bar.update if bar else None,
        )
    fc = result.to_dict()
    fc["model"] = str(model_path)
    if csv_path:
        fc["csv"] = write_tables({"weekly": result.tables()["weekly"]}, csv_path, fmt="csv")[0]
    deliver(
        result,
        fc,
        out_path=out_path,
        plot_path=plot_path,
        currency=currency,
        as_json=as_json,
        written={"csv": "weekly bands", "out": "tables", "plot": "plot"},
    )


# --- compare and capacity (scenarios/; docs/scenarios.md) --------------------------------------
def _warn(plan) -> None:
    """Say up front, not only in a note at the bottom, what the plan warns of (a MODEL without
    --history starts with an empty pipeline: the numbers are then much lower)."""
    for warning in plan.warnings:
        echo(f"warning: {warning}", err=True)


def _progress_bar(quiet: bool, length: int, label: str):
    """A click bar on a terminal, else a no-op context giving ``None``."""
    import contextlib

    if show_progress(quiet):
        return click.progressbar(length=length, label=label, file=sys.stderr)
    return contextlib.nullcontext(None)


@main.command("compare")
@click.argument("source", metavar="SCENARIO_OR_MODEL.toml", type=click.Path(dir_okay=False))
@click.option(
    "--lever",
    "levers",
    multiple=True,
    metavar="NAME=VALUE",
    help="A strategy from levers (repeatable; commas combine levers into one "
    "strategy): prospecting=+20%, yield=x1.1, win-rate=+5pp, deal-size=+10%, "
    "cycle-time=-15%, marketing=+30%, headcount=+3@2026-11-01, deal-hours=0.5, "
    "prune-stale=120d.",
)
@click.option(
    "--quota",
    type=AMOUNT,
    default=None,
    help="Team quota for P(quota) (default: the scenario's, else the sum of rep quotas).",
)
@click.option(
    "--trials",
    type=WHOLE,
    default=None,
    help="Trials per run (default: the scenario's, else 4000).",
)
@json_option("the comparison")
@click.option(
    "--plot",
    "plot_path",
    type=OUTPUT,
    default=None,
    help="Write a tornado chart (PNG): per-trial uplift P10–P90 and the mean uplift "
    "with its Monte Carlo interval.",
)
@out_option(
    "one row per strategy (revenue bands, P(quota), uplift) and the baseline (FILE-stem.baseline)"
)
@currency_option
@plan_options
@handle_errors
@executor_options
def compare_cmd(
    source,
    levers,
    quota,
    trials,
    as_json,
    plot_path,
    out_path,
    currency,
    history,
    as_of,
    start,
    weeks,
    n_reps,
    team,
    seed,
    workers,
    engine,
    fixed_parameters,
    quiet,
    **history_opts,
):
    """Compare strategies against the baseline with common random numbers.

    SCENARIO.toml names its strategies (docs/scenarios.md); with a MODEL.toml give them as
    --lever options. Every strategy runs with the baseline's seed, so uplifts are paired
    differences. Reports revenue P10/P50/P90, P(quota), the uplift with its 90% interval,
    the velocity equation's prediction, a ranking and, with costs, uplift per unit cost.

    \b
    Examples:
      salesim compare scenarios/examples/quarter.toml --plot tornado.png --out levers.xlsx
      salesim compare model.toml --history hist --lever prospecting=+20% --lever win-rate=+5pp --lever deal-size=+10% --lever cycle-time=-15% --quota 12M
    """
    from salesim import api
    from salesim.scenarios.plan import COMPARE_TRIALS, load_plan

    plan = load_plan(
        source,
        history=history,
        history_options=history_opts,
        as_of=as_of,
        start=start,
        weeks=weeks,
        n_reps=n_reps,
        team=team,
        quota=quota,
        fixed_parameters=fixed_parameters,
    )
    _warn(plan)
    runs = len(plan.strategies(levers)) + 1
    with _progress_bar(quiet, plan.trials(trials, COMPARE_TRIALS) * runs, "Simulating") as bar:
        result = api.compare(
            plan,
            levers,
            trials=trials,
            seed=seed,
            quota=quota,
            engine=engine,
            workers=workers,
            progress=bar.update if bar else None,
        )
    out = result.to_dict()
    deliver(
        result,
        out,
        out_path=out_path,
        plot_path=plot_path,
        currency=currency,
        as_json=as_json,
        written={"out": "tables", "plot": "tornado chart"},
    )


@main.command("capacity")
@click.argument("source", metavar="SCENARIO_OR_MODEL.toml", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    type=AMOUNT,
    default=None,
    help="Revenue to reach, e.g. 12M (required for headcount; coverage defaults to "
    "the team quota).",
)
@click.option(
    "--confidence", type=float, default=0.8, show_default=True, help="Required P(revenue ≥ target)."
)
@click.option(
    "--solve",
    type=click.Choice(["headcount", "coverage"]),
    default="headcount",
    show_default=True,
    help="headcount: fewest extra reps; coverage: starting pipeline needed.",
)
@click.option(
    "--hire-by",
    "hire_by",
    default=None,
    help="Extra reps start on this date (default: the first day of the horizon).",
)
@click.option(
    "--max-reps",
    "max_reps",
    type=int,
    default=None,
    help="Largest team to try (default: 5 × the team + 20).",
)
@click.option(
    "--trials",
    type=WHOLE,
    default=None,
    help="Trials per run (default: the scenario's, else 2000).",
)
@json_option("the answer")
@click.option(
    "--plot", "plot_path", type=OUTPUT, default=None, help="Write the P(target) curve (PNG)."
)
@out_option(
    "the solver's curve (each candidate's P(target) and revenue bands) and the "
    "answer (FILE-stem.answer)"
)
@currency_option
@plan_options
@handle_errors
@executor_options
def capacity_cmd(
    source,
    target,
    confidence,
    solve,
    hire_by,
    max_reps,
    trials,
    as_json,
    plot_path,
    out_path,
    currency,
    history,
    as_of,
    start,
    weeks,
    n_reps,
    team,
    seed,
    workers,
    engine,
    fixed_parameters,
    quiet,
    **history_opts,
):
    """Solve for what it takes to hit a number with a given confidence.

    --solve headcount (default): the fewest additional reps, starting on --hire-by and
    ramping (with the plan's attrition), such that P(revenue ≥ target) ≥ confidence.
    --solve coverage: the open pipeline at the start (a multiple of the target) needed for
    P(revenue ≥ target) ≥ confidence. Every candidate runs with the same seed; the search
    brackets by doubling and bisects.

    \b
    Examples:
      salesim capacity scenarios/examples/team-plan.toml --target 14M --confidence 0.8
      salesim capacity model.toml --history hist --target 7M --hire-by 2026-10-01 --json
      salesim capacity model.toml --history hist --target 7M --solve coverage --out cov.csv
    """
    from salesim import api
    from salesim.scenarios.capacity import most_runs
    from salesim.scenarios.plan import CAPACITY_TRIALS, load_plan

    plan = load_plan(
        source,
        history=history,
        history_options=history_opts,
        as_of=as_of,
        start=start,
        weeks=weeks,
        n_reps=n_reps,
        team=team,
        quota=None,
        fixed_parameters=fixed_parameters,
    )
    _warn(plan)
    runs = most_runs(len(plan.spec.reps), max_reps) if solve == "headcount" else 2
    label = "Searching" if solve == "headcount" else "Simulating"
    with _progress_bar(quiet, plan.trials(trials, CAPACITY_TRIALS) * runs, label) as bar:
        result = api.capacity(
            plan,
            target,
            confidence=confidence,
            solve=solve,
            hire_by=hire_by,
            max_reps=max_reps,
            trials=trials,
            seed=seed,
            engine=engine,
            workers=workers,
            progress=bar.update if bar else None,
        )
    out = result.to_dict()
    deliver(
        result,
        out,
        out_path=out_path,
        plot_path=plot_path,
        currency=currency,
        as_json=as_json,
        written={"out": "tables", "plot": "P(target) curve"},
    )


# --- calibrate ------------------------------------------------------------------------------------
@main.command("calibrate")
@click.argument("history", type=click.Path())
@history_options
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="DATE",
    help="Fit on what was known at the end of this date (default: the last date in the history).",
)
@click.option(
    "-o", "--output", "output", required=True, type=OUTPUT, help="Model file to write (TOML)."
)
@click.option(
    "--steady",
    is_flag=True,
    help="Pool the whole history: no quarter effects, closing clock or old-deal tails "
    "(the model before changing histories; docs/calibration.md).",
)
@json_option("the summary")
@quiet_option
@handle_errors
def calibrate_cmd(history, as_of, output, steady, as_json, quiet, **history_opts):
    """Fit a model from HISTORY (a folder or an opportunities file) up to --as-of.

    Stage conversions with 90% intervals, censoring-aware stage and cycle durations, deal
    sizes, activities, team ramp and attrition (docs/calibration.md). Writes the model as
    editable TOML; warnings and fallbacks go to stderr and into the model's notes.

    \b
    Examples:
      salesim calibrate hist --as-of 2026-09-30 -o model.toml
      salesim calibrate deals.csv --profile hubspot -o model.toml
      salesim calibrate hist --stages Qualify,Discover,Propose,Negotiate -o model.toml --json
      salesim calibrate ../shared/data/maven-crm --format maven --as-of 2017-09-30 -o maven.toml
    """
    from salesim.calibrate.fit import STEPS, calibrate, summary
    from salesim.simulator.model import dumps

    h = load_history(history, **history_opts)
    day = _iso_date(as_of, "--as-of") if as_of is not None else h.last_date
    with _progress_bar(quiet, len(STEPS), "Calibrating") as bar:
        model = calibrate(
            h,
            day,
            stages=history_opts.get("stages"),
            calendar=not steady,
            progress=(lambda step: bar.update(1)) if bar is not None else None,
        )
    path = write_output(output, dumps(model))
    for note in model.notes:
        echo(f"warning: {note}", err=True)
    s = summary(model)
    if as_json:
        emit_json({**s, "output": str(path)})
        return
    echo(report.calibration_text(s, str(path)))


# --- dashboard and backtest (scenarios/dashboard.py, scenarios/backtest.py) ----------------------


@main.command("dashboard")
@click.argument("history", metavar="HISTORY", type=click.Path())
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Scenario TOML with the quarter's plan (team, hires, quota; docs/scenarios.md).",
)
@click.option(
    "--as-of",
    "as_of",
    required=True,
    help="The dashboard's date (YYYY-MM-DD): figures to date end here.",
)
@click.option(
    "--strategy",
    default=None,
    help="Use this strategy of the scenario as the plan (default: its baseline).",
)
@simulation_options(trials=1000, per="run")
@json_option("the dashboard")
@click.option(
    "--html",
    "html_path",
    type=OUTPUT,
    default=None,
    help="Write a self-contained HTML report (inline charts, no network assets).",
)
@click.option(
    "--plot",
    "plot_path",
    type=OUTPUT,
    default=None,
    help="Write the trajectory chart (plan bands vs actual) as PNG.",
)
@out_option("the stoplight rows (team and each rep) and the coaching pointers (FILE-stem.pointers)")
@currency_option
@quiet_option
@history_options
@handle_errors
@executor_options
def dashboard_cmd(
    history,
    plan_path,
    as_of,
    strategy,
    trials,
    seed,
    engine,
    workers,
    as_json,
    html_path,
    plot_path,
    out_path,
    currency,
    quiet,
    **history_opts,
):
    """Weekly execution stoplight: activities → pipeline → forecast, for the team and each rep.

    Colours come from the plan's own simulated paths: green at or above the plan's P50 for
    the as-of date, yellow from its P20, red below (docs/dashboard.md). Also pipeline health
    (coverage, velocity, waterfall, stale deals, strike zone) and coaching pointers for each
    red line.

    \b
    Examples:
      salesim dashboard hist --plan scenarios/examples/quarter.toml --as-of 2026-11-20
      salesim dashboard hist --plan plan.toml --as-of 2026-11-20 --html report.html --json
      salesim dashboard hist --plan plan.toml --as-of 2026-11-20 --out stoplight.xlsx
    """
    from salesim import tables
    from salesim.scenarios import dashboard, html_report

    day = _iso_date(as_of, "--as-of")
    h = load_history(history, **history_opts)
    plan = dashboard.load_plan(plan_path, strategy)
    prepared = dashboard.prepare(h, plan, day)
    with _progress_bar(quiet, trials * prepared.runs, "Simulating") as bar:
        d = dashboard.run_dashboard(
            prepared,
            trials=trials,
            seed=seed,
            engine=engine,
            workers=workers,
            progress=bar.update if bar else None,
        )
    out = d.to_dict()
    images = {}
    if html_path or plot_path:
        images = html_report.charts(
            d, only=None if html_path else ("trajectory",), currency=currency
        )
    if out_path:
        out["out"] = write_tables(tables.dashboard_tables(_clean(out)), out_path)
    if html_path:
        out["html"] = str(write_output(html_path, html_report.render(d, images)))
    if plot_path:
        out["plot"] = str(write_output(plot_path, images["trajectory"]))
    if as_json:
        emit_json(out)
        return
    echo(report.dashboard_text(out))
    echo_written(out, {"out": "tables", "html": "HTML report", "plot": "trajectory chart"})


def _cutoff_dates(text: str) -> list:
    out = []
    for part in text.split(","):
        if part.strip():
            out.append(_iso_date(part.strip(), "--cutoffs"))
    if not out:
        raise InputError(
            "no dates given", column="--cutoffs", expected="dates such as 2026-03-31,2026-06-30"
        )
    return out


@main.command("backtest")
@click.argument("history", metavar="HISTORY", type=click.Path())
@click.option(
    "--cutoffs",
    default=None,
    metavar="DATE,DATE,…",
    help="Forecast from the end of each date to the end of the next day's quarter.",
)
@click.option(
    "--every",
    default=None,
    metavar="month|quarter",
    help="A cutoff at every month end (or quarter end) whose forecast window the "
    "history covers; with --quarters N only those in the last N quarters.",
)
@click.option(
    "--quarters",
    type=int,
    default=None,
    help="Backtest the last N whole quarters the history covers (default 4).",
)
@simulation_options(trials=2000, per="fold")
@json_option("the backtest")
@click.option(
    "--plot",
    "plot_path",
    type=OUTPUT,
    default=None,
    help="Write the forecast bands vs actuals and the PIT histogram as PNG.",
)
@out_option("one row per fold and the scores (FILE-stem.summary)")
@currency_option
@click.option(
    "--steady",
    is_flag=True,
    help="Calibrate each fold with the pooled model (calibrate --steady), to compare.",
)
@quiet_option
@history_options
@handle_errors
@executor_options
def backtest_cmd(
    history,
    cutoffs,
    every,
    quarters,
    trials,
    seed,
    engine,
    workers,
    as_json,
    plot_path,
    out_path,
    currency,
    steady,
    quiet,
    **history_opts,
):
    """Forecast past quarters from what was known at each cutoff and score the bands.

    Each fold calibrates on the history cut at its cutoff, rebuilds the open pipeline as it
    stood, forecasts the window and compares with what was won, in total and split into open
    and new pipeline: P10/P50/P90, PIT, P10–P90 coverage with its exact interval, a PIT
    histogram, CRPS and the P50's error, against a stage-weighted pipeline and last quarter's
    actual (docs/backtest.md). Cutoffs too early to calibrate on are left out with a note.

    \b
    Examples:
      salesim backtest hist --quarters 4 --plot backtest.png
      salesim backtest hist --every month --quarters 4 --json --out folds.csv
      salesim backtest ../shared/data/maven-crm --format maven --cutoffs 2017-06-30,2017-09-30 --json
    """
    from salesim import api
    from salesim.scenarios.backtest import choose_cutoffs

    given = _cutoff_dates(cutoffs) if cutoffs is not None else None
    h = load_history(history, **history_opts)
    folds = len(choose_cutoffs(h, cutoffs=given, every=every, quarters=quarters))
    with _progress_bar(quiet, folds, "Backtesting") as bar:
        r = api.backtest(
            h,
            cutoffs=given,
            every=every,
            quarters=quarters,
            trials=trials,
            seed=seed,
            engine=engine,
            workers=workers,
            steady=steady,
            progress=bar.update if bar else None,
        )
    out = r.to_dict()
    deliver(
        r,
        out,
        out_path=out_path,
        plot_path=plot_path,
        currency=currency,
        as_json=as_json,
        written={"out": "tables", "plot": "backtest chart"},
    )


# --- bench (scenarios/bench.py; benchmarks/README.md) ---------------------------------------------
@main.command("bench")
@click.option(
    "--reps",
    type=int,
    default=50,
    show_default=True,
    help="Ramped reps on the benchmark team (demo model, one quarter).",
)
@click.option(
    "--trials",
    type=WHOLE,
    default=10_000,
    show_default=True,
    help="Trials of the vector engine (scaling and sweeps derive from it).",
)
@click.option(
    "--engines", default="simpy,vector", show_default=True, help="Engines to time, comma-separated."
)
@click.option(
    "--simpy-trials",
    "simpy_trials",
    type=int,
    default=50,
    show_default=True,
    help="Trials of the SimPy engine (it is slow).",
)
@click.option(
    "--stream",
    "stream_trials",
    type=int,
    default=0,
    help="Also stream N trials (e.g. 1000000) keeping no per-rep arrays, and report "
    "the peak memory.",
)
@click.option(
    "--no-sweep",
    is_flag=True,
    help="Skip cost vs reps (10, 50, 200) and vs horizon (1 vs 4 quarters).",
)
@json_option("the results")
@click.option(
    "--out",
    "out_path",
    type=OUTPUT,
    default=None,
    help="Also write the JSON document to this file.",
)
@quiet_option
@handle_errors
def bench_cmd(
    reps, trials, engines, simpy_trials, stream_trials, no_sweep, as_json, out_path, quiet
):
    """Time the engines on the demo model: trials/s, peak memory, RNG floor, scaling.

    Each run happens in a fresh process. Reports the vector engine's speed-up over SimPy,
    its time against the RNG floor (the time NumPy needs just to draw the random numbers a
    trial consumes), 1 vs 2 workers, and how the cost per trial grows with reps and horizon.
    Speed depends on the machine and its load: see benchmarks/README.md.

    \b
    Examples:
      salesim bench
      salesim bench --reps 50 --trials 10000 --engines simpy,vector --json
    """
    from salesim.scenarios import bench

    names = tuple(e.strip() for e in engines.split(",") if e.strip())
    if stream_trials < 0 or simpy_trials < 1:
        raise InputError("--stream must be ≥ 0 and --simpy-trials ≥ 1", column="--stream")
    kw = dict(
        reps=reps,
        trials=trials,
        engines=names,
        simpy_trials=simpy_trials,
        sweep=not no_sweep,
        stream_trials=stream_trials,
    )
    steps = bench.suite_steps(names, sweep=not no_sweep, stream_trials=stream_trials)
    with _progress_bar(quiet, steps, "Benchmarking") as bar:
        out = bench.run_suite(progress=(lambda step: bar.update(1)) if bar else None, **kw)
    if out_path:
        out["json"] = str(write_output(out_path, json.dumps(_clean(out), indent=2) + "\n"))
    if as_json:
        emit_json(out)
        return
    echo(report.bench_text(out))


# --- demo: the whole job end to end (scenarios/demo.py) -----------------------------------------
@main.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=OUTPUT_DIR,
    default=Path("demo-out"),
    show_default=True,
    help="Folder for every output.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option("--reps", type=int, default=20, show_default=True, help="Seats on the demo team.")
@click.option(
    "--quarters", type=int, default=8, show_default=True, help="Quarters of history to generate."
)
@click.option(
    "--as-of",
    "as_of",
    default="2026-09-30",
    show_default=True,
    metavar="DATE",
    help="Last day of the history; the forecast covers the next quarter.",
)
@click.option(
    "--trials",
    type=WHOLE,
    default=4000,
    show_default=True,
    help="Monte Carlo trials for the forecast and for each strategy.",
)
@click.option("--engine", default=None, help="simpy or vector (default: the fastest available).")
@click.option(
    "--force",
    is_flag=True,
    help="Write even if the --out folder itself holds CRM files (OUT/history, the "
    "demo's own, is always rewritten).",
)
@json_option("everything")
@quiet_option
@handle_errors
def demo_cmd(out_dir, seed, reps, quarters, as_of, trials, engine, force, as_json, quiet):
    """Run salesim end to end on generated demo history.

    Generates two years of CRM history from known parameters (OUT/history/, with
    truth.toml), calibrates it (OUT/model.toml), forecasts the next quarter
    (OUT/forecast.png) and compares the four classic levers with common random numbers
    (OUT/tornado.png).

    \b
    Example:
      salesim demo --out demo-out --trials 2000
    """
    from salesim import plots
    from salesim.scenarios.demo import SIMULATION_RUNS, run_demo

    out_dir = Path(out_dir)
    as_of_date = _iso_date(as_of, "--as-of")
    with _progress_bar(quiet or as_json, trials * SIMULATION_RUNS, "Simulating") as bar:
        out = run_demo(
            out_dir,
            seed=seed,
            reps=reps,
            quarters=quarters,
            as_of=as_of_date,
            trials=trials,
            engine=engine,
            progress=bar.update if bar else None,
        )
    charts = {
        "forecast.png": plots.forecast_figure(out["forecast"]),
        "tornado.png": plots.compare_figure(out["compare"]),
    }
    for name, fig in charts.items():
        out["files"][name] = str(write_output(out_dir / name, plots.png(fig)))
    if as_json:
        emit_json(out)
        return
    echo(report.demo_text(out))


if __name__ == "__main__":  # pragma: no cover
    main()
