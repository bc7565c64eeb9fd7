"""The Monte Carlo runner: reproducible on any number of workers, and its summaries."""

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesim.simulator import runner
from salesim.simulator.distributions import Exponential, Fixed
from salesim.simulator.errors import InputError
from salesim.simulator.model import BetaPosterior
from salesim.simulator.results import wilson
from salesim.simulator.runner import ProcessExecutor
from salesim.simulator.spec import Rep, SimSpec
from tests.factories import simple_model, stage

START = dt.date(2026, 7, 1)
CHUNK = runner.CHUNK_SIZES["simpy"]


def run(spec, trials, seed=None, **kw):
    """The runner on the SimPy engine, whose chunk size (CHUNK) these tests are written
    around (the library's default engine is the vector one)."""
    return runner.run(spec, trials, seed, **{"engine": "simpy", **kw})


def small_spec(**kw) -> SimSpec:
    model = simple_model(
        per_rep_day=3.0, opportunity_yield=0.05, marketing_weekly=1.0, attrition=0.2
    )
    kw.setdefault("reps", tuple(Rep(f"rep{i + 1}", quota=20_000.0) for i in range(3)))
    return SimSpec(model, start=START, days=28, backfill=True, **kw)


def same(a, b) -> bool:
    return (
        a.totals.equals(b.totals)
        and np.array_equal(a.chunks.weekly, b.chunks.weekly)
        and np.array_equal(a.chunks.rep_revenue, b.chunks.rep_revenue)
    )


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(2) as ex:
        yield ex


# --- reproducibility -----------------------------------------------------------------------------
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**63), trials=st.integers(1, 2 * CHUNK + 7))
def test_one_or_two_workers_give_identical_results(pool, seed, trials):
    spec = small_spec()
    serial = run(spec, trials, seed, workers=1)
    parallel = run(spec, trials, seed, workers=2, executor=pool)
    assert same(serial, parallel)
    assert serial.totals["trial"].to_list() == list(range(trials))


def test_default_executor_uses_processes_for_several_chunks():
    spec = small_spec()
    a = run(spec, CHUNK + 3, 5, workers=1)
    b = run(spec, CHUNK + 3, 5, workers=2)  # spawns its own pool
    assert same(a, b) and b.extra["workers"] == 2 and a.extra["workers"] == 1


def test_more_trials_keep_the_first_ones():
    spec = small_spec()
    a = run(spec, CHUNK, 3, workers=1)
    b = run(spec, CHUNK + 20, 3, workers=1)
    assert b.totals.head(CHUNK).equals(a.totals)
    assert np.array_equal(b.chunks.weekly[:CHUNK], a.chunks.weekly)


def test_fresh_entropy_is_recorded_and_reproduces():
    spec = small_spec()
    a = run(spec, 12, None, workers=1)
    assert isinstance(a.seed, int) and a.seed > 0
    assert same(a, run(spec, 12, a.seed, workers=1))
    assert not same(a, run(spec, 12, a.seed + 1, workers=1))


def test_progress_reports_every_trial():
    seen = []
    run(small_spec(), CHUNK + 9, 1, workers=1, progress=seen.append)
    assert seen == [CHUNK, 9]


@pytest.mark.parametrize(
    "kw, column",
    [
        ({"engine": "nope"}, "--engine"),
        ({"trials": 0}, "--trials"),
        ({"workers": 0}, "--workers"),
        ({"seed": -1}, "--seed"),
        ({"executor": "cluster"}, "executor"),
    ],
)
def test_bad_arguments_are_input_errors(kw, column):
    args = {"trials": 5, "seed": 1, "workers": 1, **kw}
    with pytest.raises(InputError) as err:
        run(small_spec(), **args)
    assert err.value.column == column


# --- summaries ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result():
    spec = small_spec(
        quota=50_000.0,
        closed_to_date=7_000.0,
        reps=(Rep("a", quota=20_000.0, closed_to_date=7_000.0), Rep("b"), Rep("c", quota=10_000.0)),
    )
    return run(spec, 300, 11, workers=1)


def test_revenue_band_and_p_quota(result):
    q = result.closed_to_date + result.totals["revenue"].to_numpy()
    band = result.revenue_band()
    assert band["mean"] == pytest.approx(q.mean())
    assert [band[k] for k in ("p10", "p50", "p90")] == pytest.approx(
        np.quantile(q, [0.1, 0.5, 0.9]).tolist()
    )
    p, lo, hi = result.p_quota()
    assert p == pytest.approx(np.mean(q >= 50_000.0))
    assert 0 <= lo <= p <= hi <= 1
    p2, _, _ = result.p_quota(0.0)
    assert p2 == 1.0
    no_quota = dataclasses.replace(result, quota=None)
    assert no_quota.p_quota() is None and no_quota.summary()["p_quota_interval"] is None


def test_wilson_interval_covers_known_values():
    lo, hi = wilson(50, 100, 0.9)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(2 * 1.6449 * 0.05, rel=0.02)
    assert wilson(0, 200)[0] == 0.0 and 0 < wilson(0, 200)[1] < 0.02
    assert wilson(200, 200)[1] == 1.0


def test_weekly_bands_rise_to_the_revenue_band(result):
    w = result.weekly_bands()
    assert w["week"].to_list() == list(range(1, 5))
    assert w["end"].to_list()[-1] == START + dt.timedelta(days=27)
    for q in ("p10", "p25", "p50", "p75", "p90"):
        assert np.all(np.diff(w[q].to_numpy()) >= 0)
    assert w["p50"][-1] == pytest.approx(result.revenue_band()["p50"])
    assert w["p10"][0] >= result.closed_to_date


def test_origin_wins_and_rep_attainment(result):
    t = result.totals
    o = result.origin_bands()
    assert o["open_pipeline"]["mean"] == 0.0
    assert o["new_pipeline"]["mean"] == pytest.approx(t["revenue_new"].mean())
    assert result.wins_band()["mean"] == pytest.approx(t["wins"].mean())
    ra = result.rep_attainment()
    assert ra["rep"].to_list() == ["a", "b", "c"]
    a = (7_000.0 + result.chunks.rep_revenue[:, 0]) / 20_000.0
    assert ra["p50"][0] == pytest.approx(np.quantile(a, 0.5))
    assert ra["p_attain"][0] == pytest.approx(np.mean(a >= 1))
    assert ra["p50"][1] is None  # no quota, no attainment
    assert ra["closed_to_date"].to_list() == [7_000.0, 0.0, 0.0]
    assert sum(result.histogram()["counts"]) == result.trials


def test_summary_has_the_json_contract(result):
    s = result.summary()
    assert set(s) >= {
        "trials",
        "seed",
        "engine",
        "quota",
        "revenue",
        "p_quota",
        "p_quota_interval",
        "weekly",
        "by_origin",
        "wins",
    }
    assert set(s["revenue"]) == {"mean", "std", "p10", "p50", "p90"}
    assert set(s["by_origin"]) == {"open_pipeline", "new_pipeline"}
    assert set(s["wins"]) == {"mean", "p10", "p50", "p90"}
    assert {"week", "p10", "p50", "p90"} <= set(s["weekly"][0])


# --- parameter uncertainty ------------------------------------------------------------------------
def test_parameter_uncertainty_widens_the_bands():
    """A small history (wide posteriors) spreads revenue more than its point estimates.

    The sample variance ratio has SE ≈ ratio·sqrt(4/(n-1)); the true ratio here is ≈ 5.
    """
    model = simple_model(
        stages=(stage("S", 0.5, Exponential(8.0), Exponential(5.0), n=6.0),),
        per_rep_day=5.0,
        opportunity_yield=0.04,
        deal_size=Fixed(1000.0),
    )
    acts = dataclasses.replace(model.activities, opportunity_yield=BetaPosterior(4.0, 96.0))
    model = dataclasses.replace(model, activities=acts)
    spec = SimSpec(model, tuple(Rep(f"r{i}") for i in range(3)), START, 91, attrition=False)
    n = 600
    drawn = run(spec, n, 21, workers=1).totals["revenue"].to_numpy()
    fixed = (
        run(dataclasses.replace(spec, fixed_parameters=True), n, 21, workers=1)
        .totals["revenue"]
        .to_numpy()
    )
    ratio = drawn.var(ddof=1) / fixed.var(ddof=1)
    assert ratio > 1 + 4 * ratio * math.sqrt(4 / (n - 1))
    wide = np.subtract(*np.quantile(drawn, [0.9, 0.1]))
    narrow = np.subtract(*np.quantile(fixed, [0.9, 0.1]))
    assert wide > narrow
    # Same centre: the posterior means are the point estimates.
    se = math.sqrt(drawn.var(ddof=1) / n + fixed.var(ddof=1) / n)
    assert abs(drawn.mean() - fixed.mean()) < 4 * se


# --- memory ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep_reps", [True, False])
def test_the_arrays_a_run_keeps_match_the_documented_formula(keep_reps):
    """docs/scaling.md: memory per trial is ``runner.bytes_per_trial``; here it is checked
    against what the runner really allocates (not a timing or RSS measurement)."""
    spec = small_spec(reps=tuple(Rep(f"r{i}") for i in range(7)))
    trials = CHUNK + 9
    r = run(spec, trials, 4, workers=1, keep_reps=keep_reps)
    kept = r.totals.estimated_size() + r.chunks.weekly.nbytes + r.chunks.rep_revenue.nbytes
    assert kept == trials * runner.bytes_per_trial(spec.weeks, 7, keep_reps)


def test_streaming_seats_keeps_each_seats_mean_and_p_attain():
    spec = small_spec(
        reps=(Rep("a", quota=5_000.0, closed_to_date=1_000.0), Rep("b"), Rep("c", quota=8_000.0))
    )
    kept = run(spec, CHUNK + 9, 8, workers=1).rep_attainment()
    streamed = run(spec, CHUNK + 9, 8, workers=1, keep_reps=False).rep_attainment()
    same_cols = ["rep", "quota", "closed_to_date", "revenue_mean", "p_attain"]
    assert streamed.select(same_cols).equals(kept.select(same_cols))
    assert streamed["p50"].to_list() == [None] * 3 and kept["p50"][0] is not None


def test_chunks_are_made_lazily():
    """A huge trial count makes no list of chunks: the plan is a generator."""
    plan = runner.chunk_plan(10**15, CHUNK)
    assert next(plan) == (0, CHUNK) and next(plan) == (CHUNK, CHUNK)


def test_executors_draw_tasks_only_as_results_are_taken():
    drawn = []

    def tasks():
        for i in range(10**9):
            drawn.append(i)
            yield i

    results = runner.in_order(lambda t: _Done(t * 2), tasks(), ahead=3)
    assert [next(results) for _ in range(5)] == [0, 2, 4, 6, 8]
    assert len(drawn) == 5 + 2  # the five taken and two submitted ahead


class _Done:
    """A finished future."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def test_seat_sums_do_not_depend_on_the_chunks():
    """Streamed chunk by chunk or summed over the whole array, in any memory layout: the
    same bits (float sums are order-sensitive)."""
    from salesim.simulator.results import SeatSums

    rng = np.random.default_rng(0)
    x = rng.lognormal(8.0, 1.0, size=(5_000, 6))
    whole = SeatSums([1e4] * 6, [0.0] * 6)
    whole.add(x)
    pieces = SeatSums([1e4] * 6, [0.0] * 6)
    for a, b in ((0, 7), (7, 2_000), (2_000, 2_001), (2_001, 5_000)):
        pieces.add(np.asfortranarray(x[a:b]))
    assert whole.revenue.tobytes() == pieces.revenue.tobytes()
    assert np.array_equal(whole.attained, pieces.attained)
    r = run(small_spec(), CHUNK + 9, 6, workers=1)
    assert (
        dataclasses.replace(r, seats=None).seat_sums().revenue.tobytes()
        == r.seat_sums().revenue.tobytes()
    )


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 60), ahead=st.integers(1, 9), taken=st.integers(0, 60))
def test_in_order_keeps_order_and_its_bound(n, ahead, taken):
    drawn = []

    def tasks():
        for i in range(n):
            drawn.append(i)
            yield i

    results = runner.in_order(lambda t: _Done(-t), tasks(), ahead)
    got = [r for _, r in zip(range(taken), results)]
    assert got == [-i for i in range(min(taken, n))]
    assert len(drawn) <= min(n, len(got) + ahead)
