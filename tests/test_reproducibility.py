"""The same seed gives byte-identical forecasts: on any worker count, in another process, with
float deal sizes (docs/scaling.md, "Same numbers everywhere").

Integer amounts would hide a summation-order dependence (their sums are exact in any order),
so every model here draws lognormal, non-integer deal sizes, and every comparison is of the
whole forecast JSON, not a few keys.
"""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesim.scenarios.forecast import summarise
from salesim.simulator import runner
from salesim.simulator.demo_history import default_truth
from salesim.simulator.distributions import Exponential, LogNormal
from salesim.simulator.model import save
from salesim.simulator.runner import ProcessExecutor, run
from salesim.simulator.spec import Rep, SimSpec
from tests.factories import simple_model, stage

START = dt.date(2026, 7, 1)


def float_spec() -> SimSpec:
    """Deals of lognormal (non-integer) size that stay open, close and are reassigned when a
    rep leaves: every sum an engine makes sees float amounts."""
    model = simple_model(
        stages=(
            stage("Qualify", 0.6, Exponential(9.0), Exponential(6.0)),
            stage("Propose", 0.5, Exponential(12.0), Exponential(8.0)),
        ),
        per_rep_day=4.0,
        opportunity_yield=0.05,
        marketing_weekly=1.5,
        attrition=0.4,
        deal_size=LogNormal(median=12_345.67, sigma=0.8),
    )
    reps = tuple(Rep(f"rep{i + 1}", quota=30_000.0) for i in range(4))
    return SimSpec(model, reps, START, 42, backfill=True, quota=90_000.0)


def forecast_json(spec: SimSpec, result) -> str:
    return json.dumps(summarise(spec, result), default=str, sort_keys=True)


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(2) as ex:
        yield ex


def test_float_amounts_really_are_floats():
    result = run(float_spec(), 20, 1, workers=1)
    amounts = result.totals["pipeline_end"].to_list() + result.totals["revenue"].to_list()
    assert any(a != round(a) for a in amounts)


@pytest.mark.parametrize("engine", ["simpy", "vector"])
def test_workers_give_the_same_forecast_json_on_float_amounts(pool, engine):
    spec = float_spec()
    trials = 2 * runner.CHUNK_SIZES[engine] + 13
    serial = run(spec, trials, 2024, engine=engine, workers=1)
    parallel = run(spec, trials, 2024, engine=engine, executor=pool)
    assert forecast_json(spec, serial) == forecast_json(spec, parallel)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**63), trials=st.integers(1, 3 * runner.CHUNK_SIZES["simpy"]))
def test_any_seed_and_trial_count_gives_one_answer(pool, seed, trials):
    """Serial and two workers, many seeds and chunk splits (short runs keep it cheap)."""
    spec = float_spec()
    a = run(spec, trials, seed, workers=1)
    b = run(spec, trials, seed, executor=pool)
    assert forecast_json(spec, a) == forecast_json(spec, b)


@pytest.mark.parametrize("engine", ["simpy", "vector"])
def test_two_processes_print_byte_identical_json(tmp_path, engine):
    """A fresh interpreter each (different hash seeds, so different set orders and memory
    addresses): the same bytes."""
    model = save(default_truth(dt.date(2026, 6, 30), reps=4), tmp_path / "m.toml")
    cmd = [
        sys.executable,
        "-m",
        "salesim",
        "forecast",
        str(model),
        "--reps",
        "4",
        "--trials",
        "120",
        "--seed",
        "9",
        "--engine",
        engine,
        "--workers",
        "1",
        "--json",
        "--quiet",
    ]
    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        res = subprocess.run(cmd, capture_output=True, env=env, timeout=300, check=False)
        assert res.returncode == 0, res.stderr.decode()
        outs.append(res.stdout)
    assert outs[0] == outs[1]
    flows = json.loads(outs[0])["flows"]
    assert flows["pipeline_end"]["mean"] != round(flows["pipeline_end"]["mean"])


def test_cli_executor_processes_prints_the_serial_json(tmp_path):
    from click.testing import CliRunner

    from salesim import cli

    model = save(default_truth(dt.date(2026, 6, 30), reps=3), tmp_path / "m.toml")
    args = [
        "forecast",
        str(model),
        "--reps",
        "3",
        "--trials",
        "130",
        "--seed",
        "4",
        "--engine",
        "simpy",
        "--json",
        "--quiet",
    ]
    outs = [
        CliRunner().invoke(cli.main, args + extra)
        for extra in (["--workers", "1"], ["--executor", "processes", "--workers", "2"])
    ]
    assert [o.exit_code for o in outs] == [0, 0], outs[1].output
    assert outs[0].stdout == outs[1].stdout
