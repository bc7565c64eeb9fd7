"""The SimPy engine against closed forms, zero-variance cases and conservation properties.

Closed forms follow docs/model.md; tolerances are k·SE of the Monte Carlo mean (k = 4).
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from salesim.simulator.distributions import Empirical, Exponential, Fixed, Gamma, LogNormal, Weibull
from salesim.simulator.engine_simpy import Person, Team, simulate_chunk
from salesim.simulator.model import CapacityModel
from salesim.simulator.spec import DAYS_PER_MONTH, Levers, Rep, SimSpec, child_seed, trial_streams
from tests.engine_helpers import START, K, assert_mean, col, hypoexp_cdf, open_deals, spec_for
from tests.factories import simple_model, stage


def run(spec, n, seed=1):
    return simulate_chunk(spec, n, np.random.SeedSequence(seed))


# --- analytic: new pipeline ----------------------------------------------------------------------
def test_new_pipeline_matches_closed_form():
    """One stage, Poisson activities, fixed yield and size, exponential lag and durations."""
    rate, yld, p, adv, lost, lag, size, reps = 5.0, 0.02, 0.45, 10.0, 6.0, 3.0, 10_000.0, 5
    model = simple_model(
        stages=(stage("S", p, Exponential(adv), Exponential(lost)),),
        per_rep_day=rate,
        opportunity_yield=yld,
        lag=Exponential(lag),
        deal_size=Fixed(size),
    )
    spec = spec_for(model, reps)
    chunk = run(spec, 400)
    left = spec.days - (spec.working_days() + 0.5)  # time from the activity to the horizon
    opp = reps * rate * yld  # opportunities per working day
    created = opp * np.sum(1 - np.exp(-left / lag))
    wins = opp * p * np.sum(hypoexp_cdf(left, lag, adv))
    losses = opp * (1 - p) * np.sum(hypoexp_cdf(left, lag, lost))
    assert_mean(col(chunk, "created"), created)
    assert_mean(col(chunk, "wins"), wins)
    assert_mean(col(chunk, "losses"), losses)
    assert_mean(col(chunk, "revenue"), size * wins)
    assert_mean(col(chunk, "activities"), reps * rate * len(left))
    assert np.all(col(chunk, "revenue") == size * col(chunk, "wins"))


def test_negative_binomial_activities_are_overdispersed():
    rate, disp = 5.0, 2.0
    model = simple_model(per_rep_day=rate, dispersion=disp, opportunity_yield=0.0)
    spec = spec_for(model, 1)
    a = col(run(spec, 500, seed=3), "activities")
    n_days = len(spec.working_days())
    var = n_days * (rate + rate**2 / disp)
    assert_mean(a, n_days * rate)
    # Sample variance of a near-normal sum: SE ≈ var·sqrt(2/(n-1)).
    assert abs(a.var(ddof=1) - var) < K * var * math.sqrt(2 / (a.size - 1))


def test_ramp_rep_multipliers_and_planned_hire():
    rate, ramp, sigma = 4.0, 2.0, 0.5
    model = simple_model(per_rep_day=rate, opportunity_yield=0.0, ramp_months=ramp, rep_sigma=sigma)
    team = (Rep("new", tenure_days=0.0), Rep("hire", tenure_days=0.0, start_day=10.0))
    spec = spec_for(model, team)
    wd = spec.working_days()
    expected = 0.0
    for r in team:
        d = wd[wd >= r.start_day]
        expected += rate * np.sum(np.minimum(1.0, (d - r.start_day) / DAYS_PER_MONTH / ramp))
    expected *= math.exp(sigma**2 / 2)  # E[m_r] for LogNormal(median 1, sigma)
    assert_mean(col(run(spec, 400, seed=5), "activities"), expected)


def test_attrition_stops_prospecting():
    rate, h, reps = 5.0, 0.4, 4
    model = simple_model(per_rep_day=rate, opportunity_yield=0.0, attrition=h)
    spec = spec_for(model, reps, attrition=True)
    wd = spec.working_days()
    expected = reps * rate * np.sum(np.exp(-wd * h / DAYS_PER_MONTH))  # P(still there on d)
    assert_mean(col(run(spec, 400, seed=7), "activities"), expected)


def test_marketing_arrivals():
    weekly, days = 3.0, 92  # 13 full weeks and one day
    model = simple_model(opportunity_yield=0.0, marketing_weekly=weekly)
    chunk = run(spec_for(model, 3, days=days), 400, seed=11)
    assert_mean(col(chunk, "created"), weekly * days / 7)


def test_capacity_floor_cuts_prospecting():
    """50 deals that never close hold the rep at the capacity floor all quarter."""
    rate, floor = 5.0, 0.2
    model = simple_model(
        stages=(stage("S", 0.5, Fixed(1000.0), Fixed(1000.0)),),
        per_rep_day=rate,
        opportunity_yield=0.0,
        capacity=CapacityModel(week_hours=40, deal_hours=1.0, free_deals=0, floor=floor),
    )
    spec = spec_for(model, 1, deals=open_deals([("rep1", "S", 0.0, 1.0)] * 50))
    chunk = run(spec, 300, seed=2)
    assert_mean(col(chunk, "activities"), rate * floor * len(spec.working_days()))
    assert np.all(col(chunk, "open_end") == 50)


# --- analytic: open pipeline ---------------------------------------------------------------------
def test_open_pipeline_matches_closed_form():
    """Deals in the last of two stages, conditioned on their age there (§6)."""
    p, adv, lost = 0.4, LogNormal(20.0, 0.8), Exponential(15.0)
    model = simple_model(
        stages=(stage("A", 0.6, Exponential(5.0), Exponential(5.0)), stage("B", p, adv, lost)),
        opportunity_yield=0.0,
    )
    ages, amounts = [0.0, 10.0, 40.0, 120.0], [1_000.0, 2_000.0, 3_000.0, 4_000.0]
    rows = [("rep1", "B", a, x) for a, x in zip(ages, amounts)] * 15
    spec = spec_for(model, 1, deals=open_deals(rows))
    chunk = run(spec, 400, seed=4)
    revenue = wins = losses = 0.0
    for a, x in zip(ages, amounts):
        sa, sl = adv.sf(a), lost.sf(a)
        q = p * sa / (p * sa + (1 - p) * sl)
        p_win = q * (sa - adv.sf(a + spec.days)) / sa
        p_loss = (1 - q) * (sl - lost.sf(a + spec.days)) / sl
        revenue += 15 * x * p_win
        wins += 15 * p_win
        losses += 15 * p_loss
    assert_mean(col(chunk, "revenue_open"), revenue)
    assert_mean(col(chunk, "wins"), wins)
    assert_mean(col(chunk, "losses"), losses)
    assert np.all(col(chunk, "revenue_new") == 0)


def test_zero_variance_open_pipeline_books_on_its_day():
    """Fixed durations and p = 1: every deal wins at (10 - age), in a known week; a deal
    older than any duration allows is lost at once (docs/model.md §6)."""
    model = simple_model(stages=(stage("S", 1.0, Fixed(10.0), Fixed(3.0)),), opportunity_yield=0.0)
    ages = [0.0, 2.5, 9.0, 12.0]  # wins at 10, 7.5 and 1; the last is lost at once
    deals = open_deals([("rep1", "S", a, 100.0 * (i + 1)) for i, a in enumerate(ages)])
    chunk = run(spec_for(model, 1, days=14, deals=deals), 3)
    assert np.all(col(chunk, "revenue") == 600.0)
    assert np.all(col(chunk, "losses") == 1)
    assert np.all(chunk.weekly == np.array([300.0, 600.0]))
    assert np.all(chunk.rep_revenue[:, 0] == 600.0)


def test_stalled_deals_stay_open_closed_form():
    """One stage with a stall share π (docs/model.md §5–6), exponential durations: new deals
    win w.p. p, are lost w.p. 1 − p − π, and stall (open at the end) w.p. π; an open deal
    of age a weighs p·S_A(a), (1−p−π)·S_L(a) and π."""
    p, pi, adv, lost, lag, rate, yld = 0.4, 0.25, 12.0, 6.0, 3.0, 5.0, 0.02
    age, n_open = 20.0, 10
    model = simple_model(
        stages=(stage("S", p, Exponential(adv), Exponential(lost), stall=pi),),
        per_rep_day=rate,
        opportunity_yield=yld,
        lag=Exponential(lag),
    )
    spec = spec_for(model, 2, deals=open_deals([("rep1", "S", age, 1.0)] * n_open))
    chunk = run(spec, 400, seed=7)
    d = spec.days
    left = d - (spec.working_days() + 0.5)
    opp = 2 * rate * yld
    created = opp * np.sum(1 - np.exp(-left / lag))
    w = np.array([p * math.exp(-age / adv), (1 - p - pi) * math.exp(-age / lost), pi])
    q = w / w.sum()
    wins = opp * p * np.sum(hypoexp_cdf(left, lag, adv)) + n_open * q[0] * (1 - math.exp(-d / adv))
    losses = opp * (1 - p - pi) * np.sum(hypoexp_cdf(left, lag, lost)) + n_open * q[1] * (
        1 - math.exp(-d / lost)
    )
    assert_mean(col(chunk, "created"), created)
    assert_mean(col(chunk, "wins"), wins)
    assert_mean(col(chunk, "losses"), losses)
    assert_mean(col(chunk, "open_end"), n_open + created - wins - losses)
    assert_mean(col(chunk, "wins_open"), n_open * q[0] * (1 - math.exp(-d / adv)))


def test_zero_variance_stall_and_deals_older_than_every_duration():
    """p = 0.5, π = 0.5: no deal is lost. A deal older than both fixed durations stalls
    (with π = 0 it would be lost at once, as in the test above)."""
    model = simple_model(
        stages=(stage("S", 0.5, Fixed(10.0), Fixed(3.0), stall=0.5),), opportunity_yield=0.0
    )
    deals = open_deals([("rep1", "S", 12.0, 100.0)] * 5 + [("rep1", "S", 0.0, 1.0)] * 40)
    chunk = run(spec_for(model, 1, days=14, deals=deals), 20)
    assert np.all(col(chunk, "losses") == 0)
    wins, open_end = col(chunk, "wins"), col(chunk, "open_end")
    assert np.all(wins + open_end == 45) and np.all(open_end >= 5)
    assert np.all(col(chunk, "revenue") == wins)  # only the young deals can win
    assert_mean(wins, 40 * 0.5)


def test_orphan_deals_without_active_reps_still_close():
    model = simple_model(stages=(stage("S", 1.0, Fixed(2.0), Fixed(2.0)),), opportunity_yield=0.0)
    team = (Rep("later", tenure_days=0.0, start_day=30.0),)
    chunk = run(spec_for(model, team, deals=open_deals([("gone", "S", 0.0, 50.0)])), 2)
    assert np.all(col(chunk, "revenue") == 50.0)
    assert np.all(chunk.rep_revenue == 0.0)  # nobody's revenue


# --- rules ---------------------------------------------------------------------------------------
def test_least_loaded_rep_takes_a_leavers_deals():
    team = Team(4)
    people = [Person(i, 0.0, 100.0, 1.0, math.inf) for i in range(3)]
    people.append(Person(3, 5.0, 0.0, 1.0, math.inf))  # not started yet
    for p in people:
        team.add(p)
    for p, n in zip(people, (3, 1, 1, 0)):
        p.deals = set(range(n))
    assert team.least_loaded(1.0) is people[1]  # tie 1-1: lowest seat
    assert team.least_loaded(1.0, exclude=people[1]) is people[2]
    assert team.least_loaded(6.0) is people[3]  # has started by then
    people[1].left = people[2].left = True
    assert team.least_loaded(1.0) is people[0]
    people[0].left = True
    assert team.least_loaded(1.0) is None


def test_unknown_owners_go_to_least_loaded_rep_in_row_order():
    model = simple_model()
    team = (Rep("a"), Rep("b"), Rep("c", start_day=5.0))
    deals = open_deals(
        [
            ("a", "Qualify", 0, 1),
            ("x", "Qualify", 0, 1),
            ("y", "Qualify", 0, 1),
            ("c", "Qualify", 0, 1),
            ("a", "Qualify", 0, 1),
        ]
    )
    spec = spec_for(model, team, deals=deals)
    # a holds 2; x -> b (0 < 2), y -> b (1 < 2); c has not started, so its deal is
    # reassigned too: a and b hold 2 each, the lowest index (a) takes it.
    assert spec.initial_owners().tolist() == [0, 1, 1, 0, 0]


def test_streams_do_not_depend_on_spawn_state():
    seed = np.random.SeedSequence(42)
    first = [s["deals"].random() for s in trial_streams(seed, 3)]
    seed.spawn(5)  # spawning changes the object's counter, not the trial streams
    assert [s["deals"].random() for s in trial_streams(seed, 3)] == first
    assert (
        child_seed(np.random.SeedSequence(42), 1).spawn_key
        == np.random.SeedSequence(42).spawn(2)[1].spawn_key
    )


def test_unknown_open_stage_is_an_input_error():
    from salesim.simulator.errors import InputError

    # Checked once, as the spec is built, for both engines.
    with pytest.raises(InputError, match="row 1.*stage"):
        spec_for(simple_model(), 1, deals=open_deals([("rep1", "Nope", 1.0, 5.0)]))


# --- properties ----------------------------------------------------------------------------------
durations = st.one_of(
    st.floats(1.0, 60.0).map(Exponential),
    st.tuples(st.floats(1.0, 60.0), st.floats(0.1, 1.5)).map(lambda t: LogNormal(*t)),
    st.tuples(st.floats(0.5, 4.0), st.floats(1.0, 30.0)).map(lambda t: Gamma(*t)),
    st.tuples(st.floats(0.5, 3.0), st.floats(1.0, 60.0)).map(lambda t: Weibull(*t)),
    st.floats(0.0, 40.0).map(Fixed),
    st.just(Empirical((1.0, 7.0, 30.0), (1.0, 2.0, 1.0), 0.5)),
)


@st.composite
def specs(draw, capacity=True):
    n_stages = draw(st.integers(1, 3))
    stages = tuple(
        stage(
            f"S{i}",
            draw(st.floats(0.0, 1.0)),
            draw(durations),
            draw(durations),
            n=draw(st.sampled_from([20.0, 1e6])),
            stall=draw(st.one_of(st.none(), st.floats(0.01, 0.6))),
        )
        for i in range(n_stages)
    )
    cap = (
        CapacityModel(
            week_hours=40,
            deal_hours=draw(st.floats(0.0, 5.0)),
            free_deals=draw(st.floats(0.0, 6.0)),
            floor=draw(st.floats(0.05, 1.0)),
        )
        if capacity
        else CapacityModel(week_hours=40, deal_hours=0.0, free_deals=0, floor=1)
    )
    model = simple_model(
        stages=stages,
        per_rep_day=draw(st.floats(0.0, 8.0)),
        dispersion=draw(st.sampled_from([math.inf, 0.7, 3.0])),
        rep_sigma=draw(st.sampled_from([0.0, 0.6])),
        opportunity_yield=draw(st.floats(0.0, 0.3)),
        lag=draw(durations),
        deal_size=draw(st.sampled_from([Fixed(1000.0), LogNormal(5000.0, 1.0)])),
        marketing_weekly=draw(st.sampled_from([0.0, 2.5])),
        ramp_months=draw(st.sampled_from([0.0, 3.0])),
        attrition=draw(st.floats(0.0, 0.8)),
        capacity=cap,
    )
    team = tuple(
        Rep(
            f"r{i}",
            tenure_days=draw(st.floats(0.0, 400.0)),
            start_day=draw(st.sampled_from([0.0, 0.0, 12.0])),
        )
        for i in range(draw(st.integers(1, 4)))
    )
    names = [f"S{i}" for i in range(n_stages)]
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([r.name for r in team] + ["ghost"]),
                st.sampled_from(names),
                st.floats(0.0, 200.0),
                st.floats(0.0, 50_000.0),
            ),
            max_size=12,
        )
    )
    return SimSpec(
        model,
        team,
        START,
        draw(st.integers(5, 92)),
        open_deals=open_deals(rows),
        attrition=draw(st.booleans()),
        backfill=draw(st.booleans()),
        hiring_lag_days=draw(st.floats(0.0, 30.0)),
        fixed_parameters=draw(st.booleans()),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), seed=st.integers(0, 2**32))
def test_conservation_and_bookkeeping(spec, seed):
    chunk = run(spec, 3, seed)
    t = chunk.totals
    assert (t["open_start"] + t["created"] == t["wins"] + t["losses"] + t["open_end"]).all()
    rev = col(chunk, "revenue")
    assert np.all(rev >= 0) and np.all(col(chunk, "pipeline_end") >= 0)
    assert np.allclose(col(chunk, "revenue_open") + col(chunk, "revenue_new"), rev)
    assert (t["wins_open"] + t["wins_new"] == t["wins"]).all()
    assert np.all(np.diff(chunk.weekly, axis=1) >= 0)
    assert np.allclose(chunk.weekly[:, -1], rev)
    credited = chunk.rep_revenue.sum(axis=1)
    if any(r.start_day == 0 for r in spec.reps):  # else open deals may have no owner
        assert np.allclose(credited, rev)
    assert np.all(credited <= rev + 1e-6)
    assert (t["open_start"] == spec.open_deals.height).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), seed=st.integers(0, 2**32))
def test_no_yield_no_marketing_no_pipeline_means_no_revenue(spec, seed):
    model = dataclasses.replace(
        spec.model,
        activities=dataclasses.replace(
            spec.model.activities, opportunity_yield=stage("x", 0.0, Fixed(1), Fixed(1)).conversion
        ),
    )
    model = dataclasses.replace(model, marketing=simple_model().marketing)
    chunk = run(dataclasses.replace(spec, model=model, open_deals=open_deals([])), 3, seed)
    assert np.all(col(chunk, "revenue") == 0) and np.all(col(chunk, "created") == 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs(capacity=False),
    seed=st.integers(0, 2**32),
    win=st.floats(1.0, 2.0),
    faster=st.floats(0.3, 1.0),
)
def test_common_random_numbers_make_levers_monotone_per_trial(spec, seed, win, faster):
    """Without capacity coupling every deal keeps its draws: a higher win rate can only add
    wins inside the horizon, trial by trial; so can a shorter cycle for new deals. (Not for
    open deals: shorter durations make a deal of a given age look staler, §6.)"""
    base = col(run(spec, 3, seed), "revenue")
    more = col(run(dataclasses.replace(spec, levers=Levers(win_rate=win)), 3, seed), "revenue")
    assert np.all(more >= base - 1e-6)
    new_only = dataclasses.replace(spec, open_deals=open_deals([]))
    base = col(run(new_only, 3, seed), "revenue")
    fast = col(
        run(dataclasses.replace(new_only, levers=Levers(cycle_time=faster)), 3, seed), "revenue"
    )
    assert np.all(fast >= base - 1e-6)


def test_same_seed_same_numbers_and_first_trial_only_labels():
    spec = spec_for(simple_model(marketing_weekly=2.0), 3, attrition=True, backfill=True)
    a = simulate_chunk(spec, 5, np.random.SeedSequence(9), first_trial=100)
    b = simulate_chunk(spec, 5, np.random.SeedSequence(9))
    assert a.totals.drop("trial").equals(b.totals.drop("trial"))
    assert a.totals["trial"].to_list() == list(range(100, 105))
    assert np.array_equal(a.weekly, b.weekly) and np.array_equal(a.rep_revenue, b.rep_revenue)
    c = simulate_chunk(spec, 5, np.random.SeedSequence(10))
    assert not c.totals.drop("trial").equals(b.totals.drop("trial"))


def test_inverse_cdf_draws_follow_each_family():
    """The engine maps uniforms through ``from_uniform``; check it against scipy's laws."""
    u = np.random.default_rng(0).random(20_000)
    for d in (LogNormal(12.0, 0.8), Gamma(2.5, 6.0), Weibull(1.4, 20.0), Exponential(9.0)):
        assert np.allclose(d.from_uniform(u[:50]), d.frozen().ppf(u[:50]))
        assert stats.kstest(d.from_uniform(u), d.frozen().cdf).pvalue > 1e-3
    e = Empirical((1.0, 5.0), (1.0, 3.0), jitter=0.5)
    x = e.from_uniform(u)
    assert np.all(((x >= 0.5) & (x <= 1.5)) | ((x >= 4.5) & (x <= 5.5)))
    assert abs(np.mean(x > 3) - 0.75) < K * math.sqrt(0.75 * 0.25 / x.size)
