"""The slip model in both engines (docs/model.md §6c): an open deal with an expected close date
is won with its bucket's P(won), at its time scale × the bucket's time to win, on plain days;
a model without a slip model, or deals without dates, run exactly as before.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from salesim.calibrate.fit import calibrate
from salesim.simulator import demo_history, engine_simpy, engine_vector
from salesim.simulator.calendar import CalendarModel, ClosingClock
from salesim.simulator.distributions import Exponential, LogNormal
from salesim.simulator.model import BetaPosterior, Fitted, SlipBucket, SlipModel
from salesim.simulator.open_pipeline import win_odds
from salesim.simulator.spec import OPEN_DEAL_COLUMNS, SLIP_COLUMNS
from tests.engine_helpers import assert_mean, col, spec_for
from tests.factories import simple_model, stage

ENGINES = {"simpy": (engine_simpy, 600), "vector": (engine_vector, 4000)}
BIG = 1e9


def slip_model(
    q=(0.6, 0.35, 0.15), mu=(0.0, 0.3, 0.6), sigma=(0.4, 0.5, 0.6), weight=0.0
) -> SlipModel:
    return SlipModel(
        offset_days=7.0,
        buckets=tuple(
            SlipBucket(
                b,
                BetaPosterior(q[b] * BIG, (1 - q[b]) * BIG),
                Fitted(LogNormal(math.exp(mu[b]), sigma[b])),
            )
            for b in range(3)
        ),
        lost_time=Fitted(LogNormal(0.5, 0.5)),
        stage_weight=weight,
    )


def dated_deals(days_to_close, pushes, stage_name="B") -> pl.DataFrame:
    n = len(days_to_close)
    return pl.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "owner": ["rep1"] * n,
            "stage": [stage_name] * n,
            "age_days": [5.0] * n,
            "amount": [1000.0] * n,
            "segment": ["all"] * n,
            "days_to_close": days_to_close,
            "pushes": pushes,
        },
        schema=OPEN_DEAL_COLUMNS | SLIP_COLUMNS,
    )


def model(slips=slip_model(), calendar=None):
    m = simple_model(
        per_rep_day=0.0,
        stages=(
            stage("A", 0.5, Exponential(10.0), Exponential(5.0)),
            stage("B", 0.5, Exponential(20.0), Exponential(8.0)),
        ),
    )
    return dataclasses.replace(m, slips=slips, calendar=calendar)


def p_won_in(days: float, d: float, b: int, m=slip_model(), odds: float = 0.0) -> float:
    """P(won within ``days``) of a deal ``d`` days from its date in bucket ``b``, whose stage
    model's log odds of a win are ``odds``."""
    bucket = m.buckets[b]
    scale = max(d, 0.0) + m.offset_days
    dist = bucket.won_time.dist
    q = bucket.won.mean
    won = 1 / (1 + math.exp(-(math.log(q / (1 - q)) + m.stage_weight * odds)))
    return won * stats.norm.cdf((math.log(days / scale) - math.log(dist.median)) / dist.sigma)


# A closing clock that would bunch wins at the quarter's end: it must not act on these deals.
CLOCK = CalendarModel(closing=ClosingClock(won=(0.3,) * 12 + (5.0,), lost=(1.0,) * 13))


@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize(
    "calendar, weight", [(None, 0.0), (CLOCK, 0.0), (None, 1.5)], ids=["plain", "clock", "stage"]
)
def test_wins_match_the_slip_model(name, calendar, weight):
    engine, trials = ENGINES[name]
    d = [-10.0, 20.0, 40.0, 20.0, 60.0, 20.0]
    pushes = [0, 0, 0, 1, 2, 5]  # 5 pushes: the last bucket, 2 or more
    slips = slip_model(weight=weight)
    m = model(slips=slips, calendar=calendar)
    odds = float(win_odds(m.stages, np.array([1]), np.array([5.0]))[0])  # stage B, age 5
    spec = spec_for(m, deals=dated_deals(d, pushes), days=92)
    out = engine.simulate_chunk(spec, trials, np.random.SeedSequence(3))
    expected = sum(p_won_in(92, x, min(k, 2), slips, odds) for x, k in zip(d, pushes))
    assert_mean(col(out, "wins_open"), expected)
    # Week by week as well: half of the horizon.
    early = sum(p_won_in(42, x, min(k, 2), slips, odds) for x, k in zip(d, pushes))
    weeks = out.weekly[:, 5] / 1000.0  # cumulative won amount after 6 weeks, in deals
    assert_mean(weeks, early)


@pytest.mark.parametrize("name", ENGINES)
def test_a_deal_pushed_twice_closes_less_often_than_a_fresh_one(name, calibrated_demo):
    """The same expected date, 30 days after the start: pushed twice, the calibrated slip model
    gives it a lower chance to be won this quarter."""
    engine, trials = ENGINES[name]
    m = calibrated_demo
    stage_name = m.stage_names[-1]
    wins = {}
    for pushes in (0, 2):
        deals = dated_deals([30.0] * 20, [pushes] * 20, stage_name)
        spec = spec_for(m, deals=deals, days=92)
        wins[pushes] = col(
            engine.simulate_chunk(spec, trials // 4, np.random.SeedSequence(5)), "wins_open"
        )
    diff = wins[0] - wins[2]
    assert diff.mean() > 4 * diff.std(ddof=1) / math.sqrt(diff.size)


@pytest.fixture(scope="module")
def calibrated_demo():
    demo = demo_history.generate(11, reps=10, quarters=6, close_dates=True)
    m = calibrate(demo.to_history(), demo.as_of)
    assert m.slips is not None
    return m


@pytest.mark.parametrize("name", ENGINES)
def test_without_slips_or_dates_the_numbers_are_as_before(name):
    """A model without a slip model ignores the date columns; deals without a date are not
    timed by it: both run exactly as a model and deals without them."""
    engine, _ = ENGINES[name]
    dated = dated_deals([10.0, 30.0, None], [0, 1, 2])
    plain = dated.select(list(OPEN_DEAL_COLUMNS))
    undated = dated.with_columns(pl.lit(None, pl.Float64).alias("days_to_close"))
    seed = np.random.SeedSequence(9)
    before = engine.simulate_chunk(spec_for(model(slips=None), deals=plain), 50, seed)
    for m, deals in ((model(slips=None), dated), (model(), undated)):
        after = engine.simulate_chunk(spec_for(m, deals=deals), 50, seed)
        assert after.totals.equals(before.totals)
        assert np.array_equal(after.weekly, before.weekly)
