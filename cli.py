"""The ``salesim`` command line: parse, call one library function per command, render.

Every command turns bad input (``InputError``) into exit status 2 with one message naming
the file, row and column. The shared options are in options.py, the library calls in
api.py, what is printed and written in terminal.py (text from report.py, charts from
plots.py); what is left here is each command's options, its one call and its help.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from salesim import report
from salesim.options import (
    AMOUNT,
    WHOLE,
    by_option,
    demo_history_options,
    executor_options,
    history_options,
    ingredient_options,
    output_options,
    plan_options,
    plan_trials_option,
    run_options,
    simulation_options,
)
from salesim.outputs import OUTPUT, OUTPUT_DIR
from salesim.report import json_safe as _clean  # noqa: F401 (re-exported)
from salesim.simulator.units import parse_amount  # noqa: F401 (re-exported)
from salesim.terminal import (
    Output,
    SalesimGroup,
    echo,  # noqa: F401 (re-exported)
    handle_errors,
    warn,
    write_output,
    write_tables,
)


def load_history(history_path, **history_opts):
    """The ``History`` behind a HISTORY argument and ``history_options`` (InputError if bad)."""
    from salesim.scenarios.plan import read_history

    return read_history(history_path, **history_opts)


# --- the group ----------------------------------------------------------------------------------
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
@demo_history_options
@ingredient_options
@click.option(
    "--realistic",
    is_flag=True,
    help="Every ingredient above at its --realistic value unless given.",
)
@click.option(
    "--close-dates",
    is_flag=True,
    help="Reps also set and push expected close dates and call forecast categories: "
    'close_date_history.csv and an expected_close column (docs/demo-data.md, "Close dates", '
    '"Forecast categories").',
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
@handle_errors
@output_options(json="the summary")
def demo_data(
    directory,
    seed,
    reps,
    quarters,
    as_of,
    realistic,
    close_dates,
    export,
    force,
    output,
    **ingredients,
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
    from salesim.scenarios.demo import write_demo_data

    with output.progress("Generating history") as bar:
        out = write_demo_data(
            directory,
            as_of=as_of,
            seed=seed,
            reps=reps,
            quarters=quarters,
            export=export,
            ingredients=ingredients,
            realistic=realistic,
            close_dates=close_dates,
            progress=bar,
            write=write_output,
        )
    output.show(out, report.demo_data_text(out))


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
@handle_errors
@output_options(json="what was read", quiet=False)
def inspect_history(history, as_of, output, **history_opts):
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
    from salesim import api

    doc = api.inspect_history(history, as_of, **history_opts)
    output.show(doc, report.inspect_text(doc, doc["format"], history_opts.get("profile"), as_of))


# --- forecast, compare and capacity (scenarios/; docs/scenarios.md) -----------------------------
@main.command("forecast")
@click.argument("model_path", metavar="MODEL.toml", type=click.Path(dir_okay=False))
@click.option(
    "--quota",
    type=AMOUNT,
    default=None,
    help="Team quota for the quarter, e.g. 12M, 750k, 1,200,000 (default: the sum of rep quotas).",
)
@click.option("--trials", type=WHOLE, default=10_000, show_default=True, help="Monte Carlo trials.")
@click.option(
    "--csv",
    "csv_path",
    type=OUTPUT,
    default=None,
    help="Write the weekly bands of cumulative revenue to this CSV.",
)
@by_option
@handle_errors
@executor_options
@plan_options(scenario=False)
@run_options
@output_options(
    json="the forecast",
    plot="Write a PNG: fan chart by week and histogram of quarter revenue.",
    out="the weekly bands, per-rep revenue and attainment bands (FILE-stem.reps), a "
    "summary row (FILE-stem.summary) and, with --by, the roll-ups (FILE-stem.by)",
    currency=True,
)
def forecast_cmd(model_path, quota, trials, csv_path, by, plan, run, output):
    """Forecast the quarter's closed revenue with confidence bands.

    Runs the calibrated MODEL.toml from the as-of date to the end of the quarter: P10/P50/P90
    of revenue (closed to date + won in the horizon), P(revenue ≥ quota) with its Monte Carlo
    interval, the split between open and new pipeline, wins and per-rep attainment; with
    --by, the same per manager, region, segment or rep (docs/scenarios.md, "Roll-ups").

    \b
    Examples:
      salesim forecast model.toml --history hist --as-of 2026-09-30 --quota 12M
      salesim forecast model.toml --history hist --reps 25 --quota 750k --json
      salesim forecast sf.toml --history report.csv --profile salesforce --quota 2M
      salesim forecast model.toml --trials 50000 --workers 2 --csv bands.csv --plot fan.png
      salesim forecast model.toml --history hist --out forecast.xlsx --currency USD
      salesim forecast model.toml --history hist --by manager --by region --json
    """
    from salesim import api
    from salesim.scenarios.plan import model_plan

    baseline = model_plan(model_path, quota=quota, **plan)
    warn(baseline.warnings)
    with output.progress("Simulating") as bar:
        result = api.forecast(baseline, trials=trials, progress=bar, by=by, **run)
    doc = {**result.to_dict(), "model": str(model_path)}
    if csv_path:
        doc["csv"] = write_tables(
            {"weekly": result.output_tables()["weekly"]}, csv_path, fmt="csv"
        )[0]
    output.deliver(result, doc, written={"csv": "weekly bands", "out": "tables", "plot": "plot"})


@main.command("deals")
@click.argument("model_path", metavar="MODEL.toml", type=click.Path(dir_okay=False))
@click.option("--trials", type=WHOLE, default=10_000, show_default=True, help="Monte Carlo trials.")
@click.option(
    "--inactive-days",
    type=WHOLE,
    default=30,
    show_default=True,
    help="Flag a deal inactive after this many days without activity (its last activity "
    "date, when the export has one).",
)
@handle_errors
@executor_options
@plan_options(scenario=False)
@run_options
@output_options(
    json="the deals (a list under 'deals')",
    plot="Write a PNG: the deals that move the quarter most, amount and expected value.",
    out="one row per open deal",
    currency=True,
)
def deals_cmd(model_path, trials, inactive_days, plan, run, output):
    """Every open deal with its odds from the simulation, sorted by what moves the quarter.

    Runs the forecast (the same engine run as salesim forecast) and counts, per open deal,
    the trials in which it is won: P(win) by the horizon's end, P(win this quarter),
    expected value in the quarter (amount × P(win this quarter)), with its owner, stage,
    age, expected close, forecast category, pushes and risk flags: old (older than the
    model's won-cycle P90), pushed (≥ 2 pushes), inactive (no activity in --inactive-days),
    overdue (past its expected close date). docs/scenarios.md, "Deals".

    \b
    Examples:
      salesim deals model.toml --history hist --as-of 2026-09-30
      salesim deals model.toml --history hist --as-of 2026-09-30 --json
      salesim deals model.toml --history hist --as-of 2026-09-30 --out deals.csv
      salesim deals sf.toml --history report.csv --profile salesforce --inactive-days 14
    """
    from salesim import api
    from salesim.scenarios.plan import model_plan

    baseline = model_plan(model_path, **plan)
    warn(baseline.warnings)
    with output.progress("Simulating") as bar:
        view = api.deals(baseline, trials=trials, progress=bar, inactive_days=inactive_days, **run)
    output.deliver(
        view, {**view.to_dict(), "model": str(model_path)}, written={"out": "deals", "plot": "plot"}
    )


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
@plan_trials_option(default=4000)
@handle_errors
@executor_options
@plan_options()
@run_options
@output_options(
    json="the comparison",
    plot="Write a tornado chart (PNG): per-trial uplift P10–P90 and the mean uplift "
    "with its Monte Carlo interval.",
    out="one row per strategy (revenue bands, P(quota), uplift) and the baseline "
    "(FILE-stem.baseline)",
    currency=True,
)
def compare_cmd(source, levers, quota, trials, plan, run, output):
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
    from salesim.scenarios.plan import load_plan

    baseline = load_plan(source, quota=quota, **plan)
    warn(baseline.warnings)
    with output.progress("Simulating") as bar:
        result = api.compare(baseline, levers, trials=trials, quota=quota, progress=bar, **run)
    output.deliver(result, written={"out": "tables", "plot": "tornado chart"})


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
@plan_trials_option(default=2000)
@handle_errors
@executor_options
@plan_options()
@run_options
@output_options(
    json="the answer",
    plot="Write the P(target) curve (PNG).",
    out="the solver's curve (each candidate's P(target) and revenue bands) and the "
    "answer (FILE-stem.answer)",
    currency=True,
)
def capacity_cmd(source, target, confidence, solve, hire_by, max_reps, trials, plan, run, output):
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
    from salesim.scenarios.plan import load_plan

    baseline = load_plan(source, quota=None, **plan)
    warn(baseline.warnings)
    with output.progress("Searching" if solve == "headcount" else "Simulating") as bar:
        result = api.capacity(
            baseline,
            target,
            confidence=confidence,
            solve=solve,
            hire_by=hire_by,
            max_reps=max_reps,
            trials=trials,
            progress=bar,
            **run,
        )
    output.deliver(result, written={"out": "tables", "plot": "P(target) curve"})


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
    "-o", "--output", "model_path", required=True, type=OUTPUT, help="Model file to write (TOML)."
)
@click.option(
    "--steady",
    is_flag=True,
    help="Pool the whole history: no quarter effects, closing clock or old-deal tails "
    "(the model before changing histories; docs/calibration.md).",
)
@handle_errors
@output_options(json="the summary")
def calibrate_cmd(history, as_of, model_path, steady, output, **history_opts):
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
    from salesim import api
    from salesim.calibrate.fit import summary
    from salesim.simulator.model import dumps

    with output.progress("Calibrating") as bar:
        model = api.calibrate(history, as_of, steady=steady, progress=bar, **history_opts)
    path = write_output(model_path, dumps(model))
    warn(model.notes)
    doc = {**summary(model), "output": str(path)}
    output.show(doc, report.calibration_text(doc, str(path)))


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
@by_option
@history_options
@handle_errors
@executor_options
@simulation_options(trials=1000, per="run")
@output_options(
    json="the dashboard",
    html="Write a self-contained HTML report (inline charts, no network assets).",
    plot="Write the trajectory chart (plan bands vs actual) as PNG.",
    out="the stoplight rows (team and each rep) and the coaching pointers (FILE-stem.pointers)",
    currency=True,
)
def dashboard_cmd(history, plan_path, as_of, strategy, by, run, output, **history_opts):
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
      salesim dashboard hist --plan plan.toml --as-of 2026-11-20 --by manager
    """
    from salesim import api

    with output.progress("Simulating") as bar:
        d = api.dashboard(
            history,
            plan_path,
            as_of,
            strategy=strategy,
            progress=bar,
            by=by,
            **run,
            **history_opts,
        )
    output.deliver(d, written={"out": "tables", "html": "HTML report", "plot": "trajectory chart"})


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
@click.option(
    "--steady",
    is_flag=True,
    help="Calibrate each fold with the pooled model (calibrate --steady), to compare.",
)
@history_options
@handle_errors
@executor_options
@simulation_options(trials=2000, per="fold")
@output_options(
    json="the backtest",
    plot="Write the forecast bands vs actuals and the PIT histogram as PNG.",
    out="one row per fold and the scores (FILE-stem.summary)",
    currency=True,
)
def backtest_cmd(history, cutoffs, every, quarters, steady, run, output, **history_opts):
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

    with output.progress("Backtesting") as bar:
        result = api.backtest(
            history,
            cutoffs=cutoffs,
            every=every,
            quarters=quarters,
            steady=steady,
            progress=bar,
            **run,
            **history_opts,
        )
    output.deliver(result, written={"out": "tables", "plot": "backtest chart"})


# --- movement (scenarios/movement.py) -------------------------------------------------------------
@main.command("movement")
@click.argument("history", metavar="HISTORY", type=click.Path())
@click.option("--from", "start", required=True, metavar="DATE", help="The earlier snapshot.")
@click.option("--to", "end", required=True, metavar="DATE", help="The later snapshot.")
@click.option(
    "--quarter",
    default=None,
    metavar="DATE",
    help="Any day of the quarter whose pipeline to follow (default: the --to date's).",
)
@click.option(
    "--model",
    "model_path",
    default=None,
    metavar="MODEL.toml",
    type=click.Path(dir_okay=False),
    help="Also forecast at both dates (same seed) and split the change in mean revenue.",
)
@history_options
@handle_errors
@executor_options
@simulation_options(trials=2000, per="forecast")
@output_options(
    json="the movement",
    plot="Write the pipeline waterfall as PNG.",
    out="the waterfall and one row per deal that moved (FILE-stem.deals)",
    currency=True,
)
def movement_cmd(history, start, end, quarter, model_path, run, output, **history_opts):
    """What changed in the quarter's pipeline between two snapshots, and why.

    Follows every deal from the end of --from to the end of --to: the waterfall of the
    quarter's pipeline (new, pulled in, pushed out, won, lost, amount changed; its amounts
    add up), stage moves, and the deals that moved most. With --model, the forecast at both
    dates with the same seed, its change in mean revenue split into closed to date and the
    open and new pipeline's wins (docs/forecast-call.md).

    \b
    Examples:
      salesim movement hist --from 2026-09-23 --to 2026-09-30
      salesim movement report.csv --profile salesforce --close-date-history hist.csv --from 2026-11-30 --to 2026-12-07 --json
      salesim movement hist --from 2026-09-23 --to 2026-09-30 --model model.toml --plot waterfall.png
    """
    from salesim import api

    with output.progress("Simulating") as bar:
        result = api.movement(
            history,
            start,
            end,
            quarter=quarter,
            model=model_path,
            progress=bar if model_path else None,
            **run,
            **history_opts,
        )
    output.deliver(result, written={"out": "tables", "plot": "waterfall"})


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
@click.option(
    "--out",
    "out_path",
    type=OUTPUT,
    default=None,
    help="Also write the JSON document to this file.",
)
@handle_errors
@output_options(json="the results")
def bench_cmd(reps, trials, engines, simpy_trials, stream_trials, no_sweep, output):
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
    from salesim import api

    with output.progress("Benchmarking") as bar:
        out = api.bench(
            reps=reps,
            trials=trials,
            engines=engines,
            simpy_trials=simpy_trials,
            stream_trials=stream_trials,
            sweep=not no_sweep,
            progress=bar,
        )
    if output.out_path:
        out["json"] = str(write_output(output.out_path, json.dumps(_clean(out), indent=2) + "\n"))
    output.show(out, report.bench_text(out))


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
@demo_history_options
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
@handle_errors
@output_options(json="everything")
def demo_cmd(out_dir, seed, reps, quarters, as_of, trials, engine, force, output):
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
    from salesim.scenarios.demo import run_demo

    out_dir = Path(out_dir)
    quiet = Output(quiet=output.quiet or output.as_json)  # the JSON is the whole output
    with quiet.progress("Simulating") as bar:
        out = run_demo(
            out_dir,
            seed=seed,
            reps=reps,
            quarters=quarters,
            as_of=as_of,
            trials=trials,
            engine=engine,
            progress=bar,
        )
    charts = {
        "forecast.png": plots.forecast_figure(out["forecast"]),
        "tornado.png": plots.compare_figure(out["compare"]),
    }
    for name, fig in charts.items():
        out["files"][name] = str(write_output(out_dir / name, plots.png(fig)))
    output.show(out, report.demo_text(out))


if __name__ == "__main__":  # pragma: no cover
    main()
