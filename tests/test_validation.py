"""Bad model, scenario and option values, through the command line (issue 16, items 1, 3, 7).

Every case exits with status 2 and one line on stderr that names the file, the line and the
dotted key (or the option), with no traceback and no output file written; every model the
calibrator writes still loads.
"""

from __future__ import annotations

import math
import tomllib

import pytest
import tomli_w
from click.testing import CliRunner

from salesim.calibrate.fit import calibrate
from salesim.cli import main
from salesim.simulator import demo_history, limits
from salesim.simulator import model as model_io
from salesim.simulator.demo_ingredients import Ingredients
from salesim.simulator.errors import InputError
from tests.factories import simple_model
from tests.test_engine_calendar import uncertain_calendar_model


# --- models the calibrator writes -----------------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated():
    """A demo history with every ingredient of a real CRM, calibrated with and without its
    quarter effects."""
    demo = demo_history.generate(3, reps=6, quarters=6, ingredients=Ingredients.from_options(True))
    history = demo.to_history()
    return {
        "changing": calibrate(history, demo.as_of),
        "steady": calibrate(history, demo.as_of, calendar=False),
        "plain": calibrate(demo_history.generate(4, reps=4, quarters=4).to_history(), demo.as_of),
    }


def test_every_model_the_calibrator_writes_loads(calibrated, tmp_path):
    models = {**calibrated, "tails": uncertain_calendar_model(), "factory": simple_model()}
    assert calibrated["changing"].calendar is not None
    for name, model in models.items():
        path = model_io.save(model, tmp_path / f"{name}.toml")
        assert model_io.load(path) == model, name


def test_demo_data_truth_and_calibrate_cli_outputs_load(tmp_path):
    hist = tmp_path / "hist"
    res = CliRunner().invoke(
        main, ["demo-data", str(hist), "--reps", "4", "--quarters", "4", "--realistic", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    model_io.load(hist / "truth.toml")
    res = CliRunner().invoke(
        main, ["calibrate", str(hist), "-o", str(tmp_path / "m.toml"), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    model_io.load(tmp_path / "m.toml")


# --- the bad-input matrix -------------------------------------------------------------------------
def one_line_error(res, *words):
    """Exit 2, one error line on stderr holding every word, no traceback."""
    assert res.exit_code == 2, (res.output, res.exception)
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    # A warning said before the error (forecast without --history) is not the error's.
    lines = [x for x in res.stderr.strip().splitlines() if not x.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def at(d: dict, path: str):
    """The table holding the last key of a dotted ``path`` (``stages[0].conversion.alpha``)
    and that key."""
    parts = [
        int(p) if p.isdigit() else p for p in path.replace("[", ".").replace("]", "").split(".")
    ]
    for p in parts[:-1]:
        d = d[p]
    return d, parts[-1]


def setting(path: str, value):
    def edit(d):
        table, key = at(d, path)
        table[key] = value

    return edit


def dropping(path: str):
    def edit(d):
        table, key = at(d, path)
        del table[key]

    return edit


NAN, INF = math.nan, math.inf
MODEL_CASES = [  # (edit of the model's table, dotted key in the message, words)
    (setting("activities.per_rep_day", -3.0), "activities.per_rep_day", "finite number > 0"),
    (setting("activities.per_rep_day", NAN), "activities.per_rep_day", "nan is not allowed"),
    (setting("activities.per_rep_day", "fast"), "activities.per_rep_day", "not a number"),
    (setting("activities.dispersion", 0.0), "activities.dispersion", "inf: Poisson"),
    (setting("activities.rep_sigma", INF), "activities.rep_sigma", "finite number ≥ 0"),
    (
        setting("activities.log_cov", [[1.0, 2.0], [2.0, 1.0]]),
        "activities.log_cov",
        "not positive definite",
    ),
    (
        setting("activities.log_cov", [[1.0, 0.5], [0.4, 1.0]]),
        "activities.log_cov",
        "not symmetric",
    ),
    (setting("activities.log_cov", [[1.0]]), "activities.log_cov", "2×2"),
    (setting("activities.log_cov", [[NAN, 0.0], [0.0, 1.0]]), "activities.log_cov[0]", "finite"),
    (
        setting("activities.opportunity_yield.beta", -1.0),
        "activities.opportunity_yield.beta",
        "≥ 0",
    ),
    (setting("stages[0].conversion.alpha", -1.0), "stages[0].conversion.alpha", "≥ 0"),
    (
        setting("stages[1].conversion", {"alpha": 0.0, "beta": 0.0}),
        "stages[1].conversion.alpha",
        "both 0",
    ),
    (setting("stages[0].n_open", -1), "stages[0].n_open", "whole number ≥ 0"),
    (setting("stages[1].name", "Qualify"), "stages[1].name", "listed twice"),
    (
        setting("stages[0].lost", {"dist": {"family": "exponential", "scale": -2.0}}),
        "stages[0].lost.dist.scale",
        "finite number > 0",
    ),
    (
        setting("stages[0].lost", {"dist": {"family": "beta", "a": 2.0}}),
        "stages[0].lost.dist.family",
        "unknown distribution family",
    ),
    (
        setting(
            "stages[0].lost",
            {"dist": {"family": "empirical", "values": [1.0, 2.0], "weights": [0.0, 0.0]}},
        ),
        "stages[0].lost.dist.weights",
        "sum to 0",
    ),
    (
        setting(
            "stages[0].lost",
            {"dist": {"family": "empirical", "values": [1.0, 2.0], "weights": [1.0]}},
        ),
        "stages[0].lost.dist.weights",
        "as many weights as values",
    ),
    (
        setting(
            "stages[0].lost", {"dist": {"family": "empirical", "values": [-1.0], "weights": [1.0]}}
        ),
        "stages[0].lost.dist.values[0]",
        "≥ 0",
    ),
    (
        setting(
            "stages[0].lost",
            {"dist": {"family": "exponential", "scale": 2.0}, "log_cov": [[1.0, 0.0], [0.0, 1.0]]},
        ),
        "stages[0].lost.log_cov",
        "1×1",
    ),
    (
        setting(
            "deal_size[0].size", {"dist": {"family": "lognormal", "median": 1e300, "sigma": 1.0}}
        ),
        "deal_size[0].size.dist",
        "mean deal size",
    ),
    (setting("deal_size[0].count", -5.0), "deal_size[0].count", "≥ 0"),
    (setting("marketing.share", 1.7), "marketing.share", "from 0 to 1"),
    (setting("marketing.weekly.rate", INF), "marketing.weekly.rate", "finite number > 0"),
    (setting("capacity.floor", 3.0), "capacity.floor", "from 0 to 1"),
    (setting("capacity.deal_hours", 10.0), "capacity.deal_hours", "no prospecting time"),
    (setting("team.ramp_months", -1.0), "team.ramp_months", "≥ 0"),
    (setting("team.attrition.shape", 0.0), "team.attrition.shape", "> 0"),
    (setting("team.quota", 1e300), "team.quota", "an amount from 0"),
    (setting("team.reps[0].hired", "1900-01-01"), "team.reps[0].hired", "1970-01-01"),
    (setting("as_of", "9999-12-31"), "as_of", "2100-12-31"),
    (setting("salesim_model", 99), "salesim_model", "written by a newer salesim"),
    (setting("salesim_model", 0), "salesim_model", "unknown model format"),
    (dropping("salesim_model"), None, "no salesim_model version"),
    (setting("forecast_me", 1), "forecast_me", "unknown key"),
    (setting("activities.per_rep_dya", 1.0), "activities.per_rep_dya", "unknown key"),
    (dropping("activities.dispersion"), "activities", "activities.dispersion is missing"),
    (setting("calendar.outbound.sd", [-0.1] * 8), "calendar.outbound", "sds ≥ 0"),
    (
        setting("calendar.closing", {"won": [1.0] * 12, "lost": [1.0] * 13}),
        "calendar.closing",
        "13 rates",
    ),
    (setting("calendar.outbound.forgetting", 0.0), "calendar.outbound.forgetting", "≤ 1"),
]


@pytest.fixture(scope="module")
def model_table(calibrated):
    return tomllib.loads(model_io.dumps(calibrated["changing"]))


def write_model(tmp_path, d: dict):
    path = tmp_path / "model.toml"
    path.write_text(tomli_w.dumps(d), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "edit, key, words", MODEL_CASES, ids=[f"{c[1]}-{c[2]}" for c in MODEL_CASES]
)
def test_bad_model_values_exit_2_naming_file_line_and_key(model_table, tmp_path, edit, key, words):
    d = tomllib.loads(tomli_w.dumps(model_table))  # a deep copy
    edit(d)
    path = write_model(tmp_path, d)
    out = tmp_path / "bands.csv"
    res = CliRunner().invoke(main, ["forecast", str(path), "--trials", "20", "--csv", str(out)])
    line = one_line_error(res, str(path), words, *([f"key '{key}'"] if key else []))
    if key:
        assert ", line " in line
    assert not out.exists()


def test_the_line_is_the_key_s_line(model_table, tmp_path):
    d = tomllib.loads(tomli_w.dumps(model_table))
    d["marketing"]["share"] = 1.7
    path = write_model(tmp_path, d)
    text = path.read_text().splitlines()
    expected = next(i for i, s in enumerate(text, 1) if s.startswith("share = 1.7"))
    with pytest.raises(InputError) as info:
        model_io.load(path)
    assert (info.value.line, info.value.key) == (expected, "marketing.share")
    assert str(info.value).startswith(
        f"{path}, line {expected}, key 'marketing.share': 1.7 "
        "is not allowed (expected a number from 0 to 1)"
    )


def test_a_huge_value_is_not_echoed_whole(model_table, tmp_path):
    d = tomllib.loads(tomli_w.dumps(model_table))
    d["activities"]["per_rep_day"] = "x" * 100_000
    res = CliRunner().invoke(main, ["forecast", str(write_model(tmp_path, d))])
    assert len(one_line_error(res, "activities.per_rep_day", "xxx... is not a number")) < 300


# The slip model's table (docs/model.md §6c), from a demo history with close dates.
SLIP_CASES = [
    (setting("slips.offset_days", -1.0), "slips.offset_days", "finite number > 0"),
    (setting("slips.buckets[1].pushes", 5), "slips.buckets[1].pushes", "5 is not allowed"),
    (setting("slips.buckets[0].won.alpha", -1.0), "slips.buckets[0].won.alpha", "≥ 0"),
    (
        setting("slips.buckets[2].won_time.dist.sigma", 0.0),
        "slips.buckets[2].won_time.dist.sigma",
        "> 0",
    ),
    (setting("slips.lost_time.dist.median", NAN), "slips.lost_time.dist.median", "nan"),
    (setting("slips.buckets", []), "slips.buckets", "one or more"),
    (setting("slips.offset", 7.0), "slips.offset", "unknown key"),
    (dropping("slips.lost_time"), "slips", "slips.lost_time is missing"),
]


@pytest.fixture(scope="module")
def slip_table():
    demo = demo_history.generate(3, reps=4, quarters=4, close_dates=True)
    model = calibrate(demo.to_history(), demo.as_of)
    assert model.slips is not None
    return tomllib.loads(model_io.dumps(model))


@pytest.mark.parametrize("edit, key, words", SLIP_CASES, ids=[c[1] for c in SLIP_CASES])
def test_bad_slip_model_values_exit_2_naming_the_key(slip_table, tmp_path, edit, key, words):
    d = tomllib.loads(tomli_w.dumps(slip_table))
    edit(d)
    path = write_model(tmp_path, d)
    res = CliRunner().invoke(main, ["forecast", str(path), "--trials", "20"])
    line = one_line_error(res, str(path), words, f"key '{key}'")
    assert ", line " in line


def test_not_toml_and_not_utf8(tmp_path):
    bad = tmp_path / "model.toml"
    bad.write_text("salesim_model = = 1\n")
    one_line_error(CliRunner().invoke(main, ["forecast", str(bad)]), "not valid TOML")
    bad.write_bytes(b"\xff\xfe\x00s\x00a")
    one_line_error(CliRunner().invoke(main, ["forecast", str(bad)]), "cannot read the model")


# --- scenario values ------------------------------------------------------------------------------
SCENARIO_CASES = [  # (the scenario's lines after `model = ...`, dotted key, words)
    ("trials = 1e12", "trials", "between 1 and 10,000,000"),
    ("trials = 1000000000000", "trials", "between 1 and 10,000,000"),
    ("trials = 0", "trials", "between 1"),
    ("trials = 2.5", "trials", "an integer"),
    ("weeks = 450000", "weeks", "between 1 and 520"),
    ("days = 0", "days", "between 1 and 3,640"),
    ("quota = -3", "quota", "amount"),
    ("quota = 1e300", "quota", "from 0 to 1e+15"),
    ("quota = nan", "quota", "amount"),
    ("as_of = 1900-01-01", "as_of", "1970-01-01 to 2100-12-31"),
    ('quarter = "9999-Q1"', "quarter", "2100-12-31"),
    ("start = 2200-01-01", "start", "2100-12-31"),
    ("[attrition]\nmonthly = 1.5", "attrition.monthly", "between 0 and 1"),
    ("[marketing]\nweekly = -1", "marketing.weekly", "≥ 0"),
    ("[marketing]\nweekly = inf", "marketing.weekly", "a number"),
    ("[time]\nweek_hours = -1", "time.week_hours", "≥ 0"),
    ("[team]\nreps = 1000000000", "team.reps", "between 1 and 100,000"),
    ("[team]\nreps = 2\ntenure_months = nan", "team.tenure_months", "a number"),
    ("[[hiring.hire]]\ndate = 2026-08-01\ncount = 1000000000", "hiring.hire[0].count", "100,000"),
    ("[hiring]\nlag_days = -4", "hiring.lag_days", "≥ 0"),
    ('[strategies.a]\nprospecting = "x5000"', "strategies.a.prospecting", "more than 1000"),
    ("[strategies.a]\ndeal_size = 1e300", "strategies.a.deal_size", "more than 1000"),
    ('[strategies.a]\nheadcount = "+999999999"', "strategies.a.headcount", "100,000"),
    ("[strategies.a]\ndeal_hours = inf", "strategies.a.deal_hours", "cannot read"),
    (
        f'[strategies.a]\nprune_stale = "{"9" * 400}d"',  # a float of inf days
        "strategies.a.prune_stale",
        "cannot read",
    ),
    ("[strategies.a]\ncost = 1e300", "strategies.a.cost", "1e+15"),
    (
        "[strategies.a]\nheadcount = {count = 1, date = 1900-01-01}",
        "strategies.a.headcount",
        "1970-01-01",
    ),
]


@pytest.fixture
def plan_dir(tmp_path):
    model_io.save(simple_model(quota=60_000.0), tmp_path / "model.toml")
    return tmp_path


@pytest.mark.parametrize(
    "body, key, words", SCENARIO_CASES, ids=[c[1] + "-" + c[0][:20] for c in SCENARIO_CASES]
)
def test_bad_scenario_values_exit_2_naming_file_line_and_key(plan_dir, body, key, words):
    plan = plan_dir / "plan.toml"
    plan.write_text(f'model = "model.toml"\n{body}\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["compare", str(plan), "--trials", "20"])
    line = body.count("\n") + 2
    one_line_error(res, str(plan), f"line {line}, key '{key}'", words)


# --- options --------------------------------------------------------------------------------------
OPTION_CASES = [  # (arguments after the command's input, the option, words)
    (["--trials", "1e12"], "--trials", "10,000,000"),
    (["--trials", "1000000000000"], "--trials", "10,000,000"),
    (["--trials", "0"], "--trials", "from 1"),
    (["--weeks", "450000"], "--weeks", "from 1 to 520"),
    (["--weeks", "0"], "--weeks", "from 1 to 520"),
    (["--reps", "1000000000"], "--reps", "100,000"),
    (["--scheduler", "not a url"], "--scheduler", "host:port"),
    (["--scheduler", "tcp://host:99999"], "--scheduler", "host:port"),
    (["--scheduler", "tcp://:8786"], "--scheduler", "host:port"),
]


@pytest.mark.parametrize(
    "args, option, words", OPTION_CASES, ids=[" ".join(c[0]) for c in OPTION_CASES]
)
def test_bad_options_exit_2_at_once(tmp_path, args, option, words):
    path = model_io.save(simple_model(), tmp_path / "model.toml")
    out = tmp_path / "bands.csv"
    res = CliRunner().invoke(main, ["forecast", str(path), *args, "--csv", str(out)])
    one_line_error(res, f"option {option}", words)
    assert not out.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["backtest", "no-such-history"],
        ["dashboard", "no-such-history", "--plan", "p.toml", "--as-of", "2026-09-30"],
        ["compare", "no-such-plan.toml"],
        ["capacity", "no-such-plan.toml", "--target", "1M"],
    ],
)
def test_trials_are_checked_before_any_work(command):
    """Before a history is read or a model calibrated: the input here does not even exist."""
    res = CliRunner().invoke(main, [*command, "--trials", "1e12"])
    one_line_error(res, "option --trials", "10,000,000")


def test_trials_written_as_a_power_of_ten_are_whole_numbers(tmp_path):
    path = model_io.save(simple_model(), tmp_path / "model.toml")
    res = CliRunner().invoke(
        main,
        ["forecast", str(path), "--trials", "2e1", "--seed", "1", "--engine", "simpy", "--json"],
    )
    assert res.exit_code == 0, res.output
    assert '"trials": 20' in res.stdout


def test_the_library_checks_the_same_maxima():
    from salesim.scenarios.baseline import horizon
    from salesim.simulator.runner import run
    from tests.engine_helpers import spec_for

    with pytest.raises(InputError, match="10,000,000"):
        run(spec_for(simple_model()), limits.MAX_TRIALS + 1)
    with pytest.raises(InputError, match="520"):
        horizon(simple_model().as_of, weeks=450_000)
