"""docs/model.md §6b and §8 in both engines, against closed forms: quarter effects on creation,
conversion and speed (by the quarter a stage was entered), the closing clock, old open deals'
tails; and the posterior draws of the calendar and tails (one-row and many-row draws
agree, moments as stored)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from scipy import special, stats

from salesim.simulator import engine_simpy, engine_vector, vector_params
from salesim.simulator.calendar import (
    CalendarModel,
    ClosingClock,
    PeriodEffects,
    add_quarters,
    shifted_conversion,
    week_of_quarter,
)
from salesim.simulator.distributions import Empirical, Fixed
from salesim.simulator.model import BetaPosterior, Fitted, StageTail, dumps, loads
from salesim.simulator.vector_params import draw_model
from tests.engine_helpers import assert_mean, col, open_deals, spec_for
from tests.factories import simple_model, stage

ENGINES = {
    "simpy": (engine_simpy.simulate_chunk, 400),
    "vector": (engine_vector.simulate_chunk, 4000),
}
Q2, Q3, Q4 = dt.date(2026, 4, 1), dt.date(2026, 7, 1), dt.date(2026, 10, 1)  # START is Q3


def known(periods, values) -> PeriodEffects:
    return PeriodEffects(tuple(periods), tuple(float(v) for v in values))


def run(engine, spec, seed=1, n=None):
    simulate, trials = ENGINES[engine]
    return simulate(spec, n or trials, np.random.SeedSequence(seed))


def with_calendar(model, **parts):
    return dataclasses.replace(model, calendar=CalendarModel(**parts))


@pytest.fixture(params=list(ENGINES))
def engine(request):
    return request.param


# --- quarter effects ------------------------------------------------------------------------------
def test_outbound_and_marketing_effects_scale_creation_by_quarter(engine):
    """Poisson activities, yield 1 and no lag: created = Σ_days rate·exp(e[quarter]) per rep
    plus marketing's Σ_days weekly/7·exp(e[quarter]), over Q3 and Q4."""
    m = simple_model(
        per_rep_day=2.0,
        opportunity_yield=1.0,
        marketing_weekly=7.0,
        stages=(stage("S", 0.5, Fixed(1.0), Fixed(1.0)),),
    )
    m = with_calendar(
        m,
        outbound=known((Q3, Q4), (math.log(1.5), math.log(0.5))),
        marketing=known((Q3, Q4), (math.log(2.0), 0.0)),
    )
    spec = spec_for(m, 2, days=184)
    work = spec.working_days()
    q3_work, q4_work = int((work < 92).sum()), int((work >= 92).sum())
    expected = 2 * 2.0 * (1.5 * q3_work + 0.5 * q4_work) + (2.0 * 92 + 1.0 * 92)
    assert_mean(col(run(engine, spec), "created"), expected)


@pytest.mark.parametrize("p, stall, shift", [(0.5, None, 1.0), (0.3, 0.2, -0.8)])
def test_conversion_shift_acts_on_the_log_odds_of_advancing(engine, p, stall, shift):
    """Deals close the moment they are created: wins / created = p' of §8 for Q3's shift;
    open deals that entered in Q2 convert at Q2's."""
    m = simple_model(
        per_rep_day=1.5,
        opportunity_yield=1.0,
        stages=(stage("S", p, Fixed(0.0), Fixed(0.0), stall=stall),),
    )
    m = with_calendar(m, conversion=known((Q2, Q3), (-shift, shift)))
    pi = stall or 0.0
    q3, q2 = (float(shifted_conversion(p, pi, x)) for x in (shift, -shift))
    assert q3 == pytest.approx((1 - pi) * special.expit(special.logit(p / (1 - pi)) + shift))
    # Open deals 50 days into a stage whose durations are 60 days: they close on day 10.
    m = dataclasses.replace(m, stages=(stage("S", p, Fixed(60.0), Fixed(60.0), stall=stall),))
    fresh = spec_for(
        dataclasses.replace(m, stages=(stage("S", p, Fixed(0.0), Fixed(0.0), stall=stall),)), 1
    )
    out = run(engine, fresh)
    assert_mean(col(out, "wins") - q3 * col(out, "created"), 0.0)
    deals = open_deals([("rep1", "S", 50.0, 1.0)] * 40)
    aged = run(engine, spec_for(m, 1, deals=deals))
    # P(advance | open at 50) = p' / (p' + (1 − p' − π) + π) = p' (both durations survive).
    assert_mean(col(aged, "wins_open"), 40 * q2)


def test_speed_scales_the_durations_of_the_quarter_a_stage_was_entered(engine):
    """A 60-day advance: an open deal that entered in Q2 (speed ×2 there), 10 days old, has
    2·(60 − 10/2) = 110 days left; a deal created in Q3 (speed ×½) takes 30."""
    m = simple_model(per_rep_day=1e-9, stages=(stage("S", 1.0 - 1e-9, Fixed(60.0), Fixed(60.0)),))
    m = with_calendar(m, speed=known((Q2, Q3), (math.log(2.0), math.log(0.5))))
    deals = open_deals([("rep1", "S", 10.0, 100.0)] * 5)
    out = run(engine, spec_for(m, 1, days=184, deals=deals), n=50)
    assert np.all(out.weekly[:, 110 // 7 - 1] == 0) and np.all(out.weekly[:, 110 // 7] == 500)
    m = dataclasses.replace(
        m,
        activities=dataclasses.replace(
            m.activities, per_rep_day=3.0, opportunity_yield=BetaPosterior(1e9, 1e-9)
        ),
    )
    out = run(engine, spec_for(m, 1, days=40), n=50)
    # Created on day d at d + ½ and won 30 days later: nothing created after day 9 wins.
    work = spec_for(m, 1, days=40).working_days()
    assert_mean(col(out, "wins"), 3.0 * (work + 0.5 + 30 < 40).sum())


# --- the closing clock ----------------------------------------------------------------------------
def slow_start(rate_first_two_weeks):
    return (rate_first_two_weeks,) * 2 + (1.0,) * 11


def test_closing_clock_warps_wins_but_not_earlier_advances(engine):
    """Won clock at ½ for the quarter's first two weeks: a 14-day win from day 0 ends on day
    21 (Λ(14) = 7, then 7 more days); as the second of two stages it starts on day 3 and
    ends on day 24; the first stage's 3-day advance is not warped."""
    clock = ClosingClock(won=slow_start(0.5), lost=(1.0,) * 13)
    one = with_calendar(
        simple_model(per_rep_day=1e-9, stages=(stage("S", 1.0 - 1e-9, Fixed(14.0), Fixed(14.0)),)),
        closing=clock,
    )
    out = run(engine, spec_for(one, 1, deals=open_deals([("rep1", "S", 0.0, 1.0)] * 3)), n=20)
    assert np.all(out.weekly[:, 2] == 0) and np.all(out.weekly[:, 3] == 3)  # day 21
    two = with_calendar(
        simple_model(
            per_rep_day=1e-9,
            stages=(
                stage("A", 1.0 - 1e-9, Fixed(3.0), Fixed(3.0)),
                stage("B", 1.0 - 1e-9, Fixed(12.5), Fixed(12.5)),
            ),
        ),
        closing=clock,
    )
    # From day 3: Λ(3) = 1.5, + 12.5 = 14 = Λ(21).
    out = run(engine, spec_for(two, 1, deals=open_deals([("rep1", "A", 0.0, 1.0)] * 3)), n=20)
    assert np.all(out.weekly[:, 2] == 0) and np.all(out.weekly[:, 3] == 3)


def test_pace_speeds_the_won_clock_by_calendar_quarter(engine):
    """Pace log 2 in Q3 and log ½ in Q4: a 40-day win from day 0 (Q3, 92 days) runs at
    rate 2 and ends on day 20; one from day 80 (Q3 until day 92) has used 24 of its 40
    days by the quarter's end, then runs at ½ for the other 16: day 92 + 32 = 124.
    Earlier stages' advances and losses are not paced."""
    m = simple_model(per_rep_day=1e-9, stages=(stage("S", 1.0 - 1e-9, Fixed(40.0), Fixed(40.0)),))
    m = with_calendar(m, pace=known((Q3, Q4), (math.log(2.0), math.log(0.5))))
    deals = open_deals([("rep1", "S", 0.0, 1.0)] * 2)
    out = run(engine, spec_for(m, 1, days=184, deals=deals), n=20)
    assert np.all(out.weekly[:, 20 // 7] == 2) and np.all(out.weekly[:, 20 // 7 - 1] == 0)
    # From day 80: the deal entered its stage 80 days after a Q3 start; use a later start.
    late = spec_for(m, 1, days=150, deals=deals)
    late = dataclasses.replace(late, start=dt.date(2026, 7, 1) + dt.timedelta(days=80))
    out = run(engine, late, n=20)
    w = (124 - 80) // 7  # in days from the later start
    assert np.all(out.weekly[:, w] == 2) and np.all(out.weekly[:, w - 1] == 0)
    lost = with_calendar(
        simple_model(per_rep_day=1e-9, stages=(stage("S", 1e-9, Fixed(14.0), Fixed(14.0)),)),
        pace=known((Q3,), (math.log(2.0),)),
    )
    out = run(engine, spec_for(lost, 1, days=10, deals=deals), n=20)
    assert np.all(col(out, "losses") == 0)  # 14 days: a loss is not paced


def test_closing_clock_warps_losses(engine):
    """Lost clock at 2 in the first two weeks: a 14-day loss ends on day 7, inside a 10-day
    horizon (on plain days it would still be open)."""
    m = simple_model(per_rep_day=1e-9, stages=(stage("S", 1e-9, Fixed(14.0), Fixed(14.0)),))
    deals = open_deals([("rep1", "S", 0.0, 1.0)] * 4)
    plain = run(engine, spec_for(m, 1, days=10, deals=deals), n=20)
    fast = run(
        engine,
        spec_for(
            with_calendar(m, closing=ClosingClock(won=(1.0,) * 13, lost=slow_start(2.0))),
            1,
            days=10,
            deals=deals,
        ),
        n=20,
    )
    assert np.all(col(plain, "losses") == 0) and np.all(col(fast, "losses") == 4)


def test_week_of_quarter_bins():
    assert week_of_quarter(dt.date(2026, 7, 1)) == 0
    assert week_of_quarter(dt.date(2026, 7, 8)) == 1
    assert week_of_quarter(dt.date(2026, 9, 30)) == 12  # day 92 shares the last week
    assert add_quarters(dt.date(2026, 11, 5), 1) == dt.date(2027, 1, 1)
    assert add_quarters(dt.date(2026, 2, 5), -1) == dt.date(2025, 10, 1)


# --- old open deals' tails ------------------------------------------------------------------------
def test_old_open_deals_follow_the_tail(engine):
    """Young deals are lost at once (the stage never advances); deals 40 days old are past
    the tail's 30 days and win at the tail's 100 days, 60 days from now."""
    tail = StageTail(
        30.0,
        BetaPosterior(1e9, 1e-9),
        Fitted(Empirical((100.0,), (1.0,))),
        Fitted(Empirical((200.0,), (1.0,))),
    )
    s = dataclasses.replace(stage("S", 1e-9, Fixed(1.0), Fixed(1.0)), tail=tail)
    m = simple_model(per_rep_day=1e-9, stages=(s,))
    deals = open_deals([("rep1", "S", 10.0, 1.0)] * 3 + [("rep1", "S", 40.0, 1.0)] * 2)
    out = run(engine, spec_for(m, 1, deals=deals), n=20)
    assert np.all(col(out, "wins") == 2) and np.all(col(out, "losses") == 3)
    assert np.all(out.weekly[:, 60 // 7] == 2) and np.all(out.weekly[:, 60 // 7 - 1] == 0)


# --- posterior draws ------------------------------------------------------------------------------
def uncertain_calendar_model():
    quarters = (Q2, Q3, Q4)
    eff = PeriodEffects(
        quarters, (0.1, -0.2, 0.3), (0.05, 0.1, 0.2), ((0.0, 0.0), (0.1, 0.0), (0.1, 0.1))
    )
    tail = StageTail(
        30.0,
        BetaPosterior(20, 30),
        Fitted(Empirical((40.0, 80.0), (3.0, 1.0))),
        Fitted(Empirical((35.0, 90.0), (2.0, 2.0))),
        stall=BetaPosterior(5, 20),
    )
    s = dataclasses.replace(stage("S", 0.5, Fixed(5.0), Fixed(5.0), n=50), tail=tail)
    return with_calendar(simple_model(stages=(s,)), conversion=eff, speed=eff)


def test_effect_draws_have_the_stored_mean_and_covariance():
    eff = uncertain_calendar_model().calendar.conversion
    x = eff.draw(np.random.default_rng(0), 40_000)
    assert np.allclose(x.mean(axis=0), eff.mean, atol=4 * 0.25 / math.sqrt(40_000))
    assert np.allclose(np.cov(x.T), eff.covariance(), atol=0.003)


def test_vector_draws_of_tails_and_effects_match_model_draw():
    model = uncertain_calendar_model()
    n = 3000
    vec = vector_params.draw_model(model, n, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    ref = [draw_model(model, 1, rng).trial(0) for _ in range(n)]

    def fields(p):
        t = p.tails[0]
        return {
            "tail_p": t.conversion,
            "tail_pi": t.stall,
            "tail_w": t.advance.weights[0],
            "conv1": p.effect("conversion")[1],
            "speed2": p.effect("speed")[2],
        }

    got = [fields(vec.trial(i)) for i in range(n)]
    want = [fields(p) for p in ref]
    for k in got[0]:
        x, y = np.array([g[k] for g in got]), np.array([w[k] for w in want])
        assert stats.ks_2samp(x, y).pvalue > 0.001, k
    assert np.all(vec.tails[0].conversion + vec.tails[0].stall <= 1)


def test_a_model_without_calendar_or_tails_draws_what_it_always_did():
    m = uncertain_calendar_model()
    bare = dataclasses.replace(
        m, calendar=None, stages=tuple(dataclasses.replace(s, tail=None) for s in m.stages)
    )
    a = draw_model(bare, 1, np.random.default_rng(5)).trial(0)
    b = draw_model(m, 1, np.random.default_rng(5)).trial(0)
    assert a.conversion == b.conversion and a.advance == b.advance and a.sizes == b.sizes


def test_calendar_and_tails_round_trip_through_toml():
    m = dataclasses.replace(uncertain_calendar_model(), diagnostics=("win rate fell",))
    m = dataclasses.replace(
        m,
        calendar=dataclasses.replace(
            m.calendar, closing=ClosingClock(won=(0.8,) * 6 + (1.2,) * 7, lost=(1.0,) * 13)
        ),
    )
    assert loads(dumps(m)) == m


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda e: dataclasses.replace(e, mean=(0.0,)), "one entry per quarter"),
        (lambda e: dataclasses.replace(e, periods=(Q2, Q4, add_quarters(Q4, 1))), "consecutive"),
        (lambda e: dataclasses.replace(e, sd=(0.1, -0.1, 0.1)), "sds ≥ 0"),
    ],
)
def test_bad_quarter_effects_are_rejected_on_load(edit, words):
    from salesim.simulator.errors import InputError

    m = uncertain_calendar_model()
    text = dumps(m)
    bad = dumps(
        dataclasses.replace(
            m,
            calendar=dataclasses.replace(
                m.calendar,
                conversion=dataclasses.replace(m.calendar.conversion, mean=(0.0, 0.0, 0.0)),
            ),
        )
    )
    assert loads(bad).calendar.conversion.mean == (0.0, 0.0, 0.0) and loads(text) == m
    with pytest.raises(ValueError, match=words):
        edit(m.calendar.conversion)
    broken = text.replace("sd = [\n    0.05,", "sd = [\n    -0.05,")
    with pytest.raises(InputError, match="sds"):
        loads(broken)
