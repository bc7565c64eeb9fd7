"""Every core, the same numbers: a chunk cut into parts, capacity, compare and backtest give
the same JSON on one worker and on two (docs/scaling.md, "On one machine")."""

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from salesim.scenarios.backtest import backtest
from salesim.scenarios.capacity import solve_coverage, solve_headcount
from salesim.scenarios.compare import compare_levers
from salesim.simulator import engine_vector, runner
from salesim.simulator.demo_history import generate
from salesim.simulator.distributions import Exponential, LogNormal
from salesim.simulator.runner import ProcessExecutor
from salesim.simulator.spec import Levers, Rep, SimSpec
from tests.factories import simple_model, stage
from tests.test_capacity import open_pipeline

START = dt.date(2026, 7, 1)


def spec(n_reps=3, **kw) -> SimSpec:
    m = simple_model(
        stages=(
            stage("Q", 0.5, Exponential(8.0), Exponential(4.0)),
            stage("C", 0.5, LogNormal(12.0, 0.4), Exponential(6.0)),
        ),
        per_rep_day=3.0,
        opportunity_yield=0.1,
        attrition=0.2,
        deal_size=LogNormal(median=9_876.5, sigma=0.7),
    )
    reps = tuple(Rep(f"r{i}", tenure_days=500.0, quota=100_000.0) for i in range(n_reps))
    return SimSpec(model=m, reps=reps, start=START, days=91, backfill=True, **kw)


def as_json(result) -> str:
    return json.dumps(result.to_dict(), default=str, sort_keys=True)


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(2) as ex:
        yield ex


def test_parts_of_a_chunk_are_the_chunk():
    s, seed = spec(), np.random.SeedSequence(8)
    whole = engine_vector.simulate_chunk(s, 30, seed, first_trial=60)
    parts = [
        engine_vector.simulate_chunk(s, 30, seed, first_trial=60, part=p)
        for p in runner.part_plan(30, 4)
    ]
    assert [p.totals["trial"][0] for p in parts] == [60, 67, 75, 82]
    assert np.array_equal(np.concatenate([p.weekly for p in parts]), whole.weekly)
    assert np.array_equal(np.concatenate([p.rep_revenue for p in parts]), whole.rep_revenue)
    assert sum(p.events for p in parts) == whole.events


def test_part_plan_and_parts_per_chunk():
    assert runner.part_plan(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert runner.part_plan(2, 5) == [(0, 1), (1, 2)]  # never an empty part
    assert runner.parts_per_chunk(1, 2) == 2
    assert runner.parts_per_chunk(3, 8) == 3
    assert runner.parts_per_chunk(5, 2) == 1


def test_one_chunk_runs_on_every_worker():
    a = runner.run(spec(), 300, 4, workers=1)
    b = runner.run(spec(), 300, 4, workers=2)  # spawns its own pool: one chunk, two parts
    assert b.extra["workers"] == 2
    assert a.totals.equals(b.totals) and np.array_equal(a.chunks.weekly, b.chunks.weekly)
    # the sums over a chunk's trials (wins per seat, per open deal) add up over its parts
    assert np.array_equal(a.chunks.seat_wins, b.chunks.seat_wins) and a.chunks.seat_wins.sum() > 0
    assert np.array_equal(a.chunks.deal_wins, b.chunks.deal_wins)


def test_capacity_headcount_same_json_on_two_workers(pool):
    kw = {"trials": 150, "seed": 3, "engine": "vector", "max_reps": 8}
    one = solve_headcount(spec(), 260_000.0, workers=1, **kw)
    two = solve_headcount(spec(), 260_000.0, workers=2, executor=pool, **kw)
    assert one["runs"] > 2 and as_json(one) == as_json(two)


def test_capacity_coverage_same_json_on_two_workers(pool):
    s = spec(open_deals=open_pipeline(20))
    kw = {"quota": 450_000.0, "trials": 150, "seed": 3, "engine": "vector"}
    one = solve_coverage(s, workers=1, **kw)
    two = solve_coverage(s, workers=2, executor=pool, **kw)
    assert as_json(one) == as_json(two)


def test_compare_same_json_on_two_workers(pool):
    levers = {"more calls": Levers(prospecting=1.3), "bigger": {"deal_size": 1.1}}
    kw = {"trials": 150, "seed": 5, "engine": "vector", "quota": 250_000.0}
    one = compare_levers(spec(), levers, workers=1, **kw)
    two = compare_levers(spec(), levers, workers=2, executor=pool, **kw)
    assert as_json(one) == as_json(two)


@dataclasses.dataclass(frozen=True)
class TruthFit:
    """The generating model with the team at the cutoff: a fit that pickles, so its folds
    can run in worker processes."""

    truth: object

    def __call__(self, known, cutoff):
        from salesim.calibrate.team import snapshot

        reps, _, _ = snapshot(known, cutoff)
        t = self.truth
        return dataclasses.replace(t, as_of=cutoff, team=dataclasses.replace(t.team, reps=reps))


def test_backtest_folds_same_json_on_two_workers():
    demo = generate(np.random.default_rng(4), reps=4, quarters=6, as_of=dt.date(2026, 6, 30))
    h, fit = demo.to_history(), TruthFit(demo.truth)
    cutoffs = [dt.date(2025, 9, 30), dt.date(2025, 12, 31), dt.date(2026, 3, 31)]
    done = []
    one = backtest(h, cutoffs, trials=60, seed=2, engine="vector", fit=fit, workers=1)
    two = backtest(
        h, cutoffs, trials=60, seed=2, engine="vector", fit=fit, workers=2, progress=done.append
    )
    assert len(one.folds) == 3 and done == [1, 1, 1]
    assert as_json(one) == as_json(two)
