"""The two engines agree: same docs/model.md, different random numbers, same distributions.

On seven scenarios (plain; capacity-bound; open-pipeline-heavy; hires + attrition + backfill
+ parameter uncertainty; stalled deals; a changing calendar with old deals' tails; open deals
timed by their expected close dates, docs/model.md §6c) quarter
revenue, wins and created pipeline agree between SimPy and the vectorised engine: a two-sample
KS test does not reject at 0.001 and the means agree within 4 standard errors. Fixed seeds;
SimPy runs a few hundred trials of small teams.
"""

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from salesim.simulator import engine_simpy, engine_vector
from salesim.simulator.calendar import CalendarModel, ClosingClock, PeriodEffects
from salesim.simulator.distributions import Empirical, Exponential, Gamma, LogNormal, Weibull
from salesim.simulator.model import (
    BetaPosterior,
    CapacityModel,
    Fitted,
    GammaPosterior,
    SlipBucket,
    SlipModel,
    StageModel,
    StageTail,
)
from salesim.simulator.spec import OPEN_DEAL_COLUMNS, SLIP_COLUMNS, Rep, SimSpec
from tests.factories import simple_model, stage

START = dt.date(2026, 7, 1)
SIMPY_TRIALS, VECTOR_TRIALS = 800, 4000
COLUMNS = ("revenue", "wins", "created", "pipeline_created", "losses", "open_end", "activities")


def open_deals(n, owners, stages, seed):
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "owner": rng.choice(owners, n).tolist(),
            "stage": rng.choice(stages, n).tolist(),
            "age_days": rng.exponential(15.0, n),
            "amount": rng.lognormal(10.0, 0.5, n),
            "segment": ["all"] * n,
        },
        schema=OPEN_DEAL_COLUMNS,
    )


def plain():
    """NB activities, rep multipliers, lag, two stages of mixed families, marketing."""
    m = simple_model(
        per_rep_day=5.0,
        opportunity_yield=0.05,
        dispersion=2.0,
        rep_sigma=0.3,
        lag=Exponential(3.0),
        deal_size=LogNormal(20_000.0, 0.5),
        marketing_weekly=2.0,
        stages=(
            stage("A", 0.6, Gamma(2.0, 5.0), Exponential(6.0)),
            stage("B", 0.5, LogNormal(10.0, 0.5), Weibull(1.3, 8.0)),
        ),
    )
    return SimSpec(
        m, tuple(Rep(f"r{i}") for i in range(4)), START, 92, fixed_parameters=True, attrition=False
    )


def capacity_bound():
    """Long-lived deals pile up: most rep-days prospect at a reduced share."""
    m = simple_model(
        per_rep_day=10.0,
        opportunity_yield=0.1,
        stages=(stage("A", 0.5, Exponential(30.0), Exponential(40.0)),),
        capacity=CapacityModel(week_hours=40, deal_hours=3.0, free_deals=5, floor=0.2),
    )
    return SimSpec(
        m, tuple(Rep(f"r{i}") for i in range(3)), START, 92, fixed_parameters=True, attrition=False
    )


def open_pipeline_heavy():
    """60 aged open deals in three stages (one owner not on the team); little new pipeline."""
    m = simple_model(
        per_rep_day=1.0,
        opportunity_yield=0.05,
        stages=(
            stage("A", 0.6, Gamma(2.0, 5.0), Exponential(6.0)),
            stage("B", 0.5, LogNormal(10.0, 0.5), Weibull(1.3, 8.0)),
            stage("C", 0.7, Weibull(1.5, 12.0), Gamma(2.0, 4.0)),
        ),
        capacity=CapacityModel(week_hours=40, deal_hours=2.0, free_deals=5, floor=0.2),
    )
    deals = open_deals(60, ["r0", "r1", "ghost"], ["A", "B", "C"], seed=5)
    return SimSpec(
        m,
        (Rep("r0"), Rep("r1")),
        START,
        92,
        open_deals=deals,
        fixed_parameters=True,
        attrition=True,
    )


def hires_attrition_uncertainty():
    """Planned hires ramping, 30%/month attrition with backfill, every kind of posterior."""
    stages = (
        StageModel(
            "A",
            BetaPosterior(12, 8),
            Fitted(Gamma(2.0, 5.0), ((0.05, 0.0), (0.0, 0.05))),
            Fitted(Exponential(6.0), ((0.04,),)),
        ),
        StageModel(
            "B",
            BetaPosterior(10, 10),
            Fitted(LogNormal(10.0, 0.5), ((0.04, 0.0), (0.0, 0.02))),
            Fitted(Empirical((2.0, 5.0, 9.0), (3.0, 2.0, 1.0), 0.5)),
        ),
    )
    m = simple_model(
        per_rep_day=6.0,
        opportunity_yield=0.05,
        dispersion=3.0,
        rep_sigma=0.3,
        lag=Exponential(2.0),
        stages=stages,
        ramp_months=2.0,
        deal_size=LogNormal(20_000.0, 0.5),
        marketing_weekly=3.0,
        capacity=CapacityModel(week_hours=40, deal_hours=2.0, free_deals=6, floor=0.2),
    )
    m = dataclasses.replace(
        m,
        team=dataclasses.replace(m.team, ramp_months_sd=0.5, attrition=GammaPosterior(6, 20)),
        activities=dataclasses.replace(m.activities, log_cov=((0.04, 0.0), (0.0, 0.1))),
        marketing=dataclasses.replace(m.marketing, weekly=GammaPosterior(9.0, 3.0)),
    )
    reps = (
        Rep("r0", 400),
        Rep("r1", 30),
        Rep("r2", 200),
        Rep("h1", 0, start_day=20),
        Rep("h2", 0, start_day=45),
    )
    deals = open_deals(20, ["r0", "r1", "r2"], ["A", "B"], seed=6)
    return SimSpec(
        m, reps, START, 92, open_deals=deals, attrition=True, backfill=True, hiring_lag_days=20
    )


def stalled():
    """Stall shares (deals that never close, docs/model.md §5–6) in two of three stages, drawn
    from their posteriors; aged open deals, some older than an empirical duration's end;
    stalled deals keep loading their reps' capacity."""
    stages = (
        StageModel(
            "A",
            BetaPosterior(30, 50),
            Fitted(Gamma(2.0, 5.0)),
            Fitted(Exponential(6.0)),
            stall=BetaPosterior(20, 60),
        ),
        StageModel(
            "B",
            BetaPosterior(50, 50),
            Fitted(LogNormal(10.0, 0.5)),
            Fitted(Empirical((2.0, 5.0, 9.0), (3.0, 2.0, 1.0), 0.5)),
        ),
        StageModel(
            "C",
            BetaPosterior(60, 20),
            Fitted(Weibull(1.5, 12.0)),
            Fitted(Empirical((1.0, 4.0, 20.0), (1.0, 1.0, 1.0), 0.5)),
            stall=BetaPosterior(15, 85),
        ),
    )
    m = simple_model(
        per_rep_day=3.0,
        opportunity_yield=0.1,
        dispersion=2.0,
        rep_sigma=0.2,
        stages=stages,
        deal_size=LogNormal(20_000.0, 0.5),
        marketing_weekly=1.0,
        capacity=CapacityModel(week_hours=40, deal_hours=2.0, free_deals=5, floor=0.2),
    )
    deals = open_deals(40, ["r0", "r1", "ghost"], ["A", "B", "C"], seed=7)
    return SimSpec(
        m, (Rep("r0"), Rep("r1"), Rep("r2")), START, 92, open_deals=deals, attrition=True
    )


def changing_calendar():
    """docs/model.md §6b and §8 at once, with their uncertainty: quarter effects on every
    channel over a horizon that spans two quarters (and open deals that entered in the two
    before), a closing clock that bunches wins at quarter end and spreads losses early, a
    stage whose old open deals follow their tail, and reps with measured levels (§2)."""
    q = tuple(dt.date(2026, m, 1) for m in (1, 4, 7, 10))
    quarters = q + (dt.date(2027, 1, 1),)

    def effects(mean, sd, load):
        return PeriodEffects(quarters, mean, sd, tuple((x,) for x in load))

    cal = CalendarModel(
        outbound=effects((0.0, 0.0, 0.2, -0.3, 0.0), (0, 0, 0.1, 0.15, 0.1), (0, 0, 0.1, 0.1, 0.1)),
        marketing=effects((0.0, 0.0, -0.2, 0.4, 0.0), (0, 0, 0.1, 0.1, 0.1), (0, 0, 0, 0, 0)),
        conversion=effects(
            (0.3, -0.2, 0.4, -0.5, 0.0), (0.05, 0.05, 0.2, 0.2, 0.2), (0, 0, 0.1, 0.1, 0.1)
        ),
        speed=effects((0.2, -0.3, 0.3, -0.2, 0.0), (0.05, 0.05, 0.1, 0.1, 0.1), (0, 0, 0, 0, 0)),
        pace=effects((0.0, 0.0, 0.3, -0.3, 0.0), (0, 0, 0.15, 0.15, 0.15), (0, 0, 0.1, 0.1, 0.1)),
        closing=ClosingClock(
            won=(0.6,) * 4 + (1.0,) * 5 + (1.6,) * 4, lost=(1.5,) * 4 + (1.0,) * 5 + (0.5,) * 4
        ),
    )
    tail = StageTail(
        40.0,
        BetaPosterior(30, 50),
        Fitted(Empirical((45.0, 60.0, 90.0, 150.0), (3.0, 2.0, 2.0, 1.0), 0.5)),
        Fitted(Empirical((42.0, 70.0, 120.0), (2.0, 2.0, 1.0), 0.5)),
        stall=BetaPosterior(20, 60),
    )
    stages = (
        StageModel("A", BetaPosterior(60, 40), Fitted(Gamma(2.0, 6.0)), Fitted(Exponential(8.0))),
        StageModel(
            "B",
            BetaPosterior(50, 50),
            Fitted(LogNormal(15.0, 0.6)),
            Fitted(Weibull(1.3, 12.0)),
            tail=tail,
        ),
    )
    m = simple_model(
        per_rep_day=4.0,
        opportunity_yield=0.06,
        dispersion=3.0,
        rep_sigma=0.2,
        lag=Exponential(2.0),
        stages=stages,
        deal_size=LogNormal(20_000.0, 0.5),
        marketing_weekly=3.0,
    )
    m = dataclasses.replace(m, calendar=cal)
    rng = np.random.default_rng(8)
    n = 60
    deals = pl.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "owner": ["r0", "r1", "r2"] * 20,
            "stage": rng.choice(["A", "B"], n).tolist(),
            "age_days": np.concatenate([rng.uniform(0, 30, 30), rng.uniform(30, 200, 30)]),
            "amount": rng.lognormal(10.0, 0.5, n),
            "segment": ["all"] * n,
        },
        schema=OPEN_DEAL_COLUMNS,
    )
    reps = (Rep("r0", level=0.3, level_sd=0.1), Rep("r1", level=-0.2), Rep("r2"))
    m = dataclasses.replace(
        m, activities=dataclasses.replace(m.activities, log_cov=((0.04, 0.0), (0.0, 0.01)))
    )
    return SimSpec(m, reps, dt.date(2026, 8, 15), 120, open_deals=deals, attrition=False)


def slipping():
    """Open deals with expected close dates and pushes (docs/model.md §6c), beside deals without
    one, with the slip model's parameter uncertainty and a closing clock that acts on the
    others only."""
    lognormal_cov = ((0.02, 0.0), (0.0, 0.01))
    buckets = tuple(
        SlipBucket(
            b,
            BetaPosterior(60 - 20 * b, 40 + 20 * b),
            Fitted(LogNormal(0.8 + 0.4 * b, 0.5), lognormal_cov),
        )
        for b in range(3)
    )
    slips = SlipModel(7.0, buckets, Fitted(LogNormal(0.6, 0.7), lognormal_cov), 0.8, 0.2)
    m = simple_model(
        per_rep_day=3.0,
        opportunity_yield=0.05,
        stages=(
            stage("A", 0.6, Gamma(2.0, 5.0), Exponential(6.0)),
            stage("B", 0.5, LogNormal(10.0, 0.5), Weibull(1.3, 8.0)),
        ),
        deal_size=LogNormal(20_000.0, 0.5),
    )
    clock = ClosingClock(won=(0.6,) * 4 + (1.0,) * 5 + (1.6,) * 4, lost=(1.0,) * 13)
    m = dataclasses.replace(m, slips=slips, calendar=CalendarModel(closing=clock))
    rng = np.random.default_rng(21)
    n = 60
    days = rng.uniform(-20, 80, n)
    deals = open_deals(n, ["r0", "r1", "r2"], ["A", "B"], 22).with_columns(
        pl.Series("days_to_close", np.where(np.arange(n) % 4 == 0, np.nan, days)).fill_nan(None),
        pl.Series("pushes", rng.integers(0, 4, n)),
    )
    deals = deals.cast(OPEN_DEAL_COLUMNS | SLIP_COLUMNS)
    reps = tuple(Rep(f"r{i}") for i in range(3))
    return SimSpec(m, reps, START, 92, open_deals=deals, attrition=False)


SCENARIOS = [
    plain,
    capacity_bound,
    open_pipeline_heavy,
    hires_attrition_uncertainty,
    stalled,
    changing_calendar,
    slipping,
]


@pytest.fixture(scope="module", params=SCENARIOS, ids=lambda f: f.__name__)
def both(request):
    spec = request.param()
    simpy = engine_simpy.simulate_chunk(spec, SIMPY_TRIALS, np.random.SeedSequence(11))
    vector = engine_vector.simulate_chunk(spec, VECTOR_TRIALS, np.random.SeedSequence(12))
    return request.param.__name__, spec, simpy, vector


def agree(x, y, what):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
    assert abs(x.mean() - y.mean()) <= 4 * se + 1e-9, (what, x.mean(), y.mean(), se)
    if x.std() + y.std() > 0:
        p = stats.ks_2samp(x, y).pvalue
        assert p > 0.001, (what, p)


@pytest.mark.parametrize("column", COLUMNS)
def test_totals_agree(both, column):
    _, _, simpy, vector = both
    agree(simpy.totals[column], vector.totals[column], column)


def test_per_seat_revenue_and_weekly_curve_agree(both):
    _, _, simpy, vector = both
    for r in range(simpy.rep_revenue.shape[1]):
        x, y = simpy.rep_revenue[:, r], vector.rep_revenue[:, r]
        se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
        assert abs(x.mean() - y.mean()) <= 4 * se + 1e-9, ("seat", r)
    for w in (3, 7, simpy.weekly.shape[1] - 1):
        agree(simpy.weekly[:, w], vector.weekly[:, w], f"week {w}")


def test_the_scenarios_exercise_what_they_claim(both):
    name, spec, _, vector = both
    t = vector.totals
    if name == "capacity_bound":
        uncoupled = spec.model.activities.per_rep_day * len(spec.reps) * len(spec.working_days())
        assert t["activities"].mean() < 0.7 * uncoupled
    if name == "open_pipeline_heavy":
        assert t["revenue_open"].mean() > 5 * t["revenue_new"].mean()
    if name == "stalled":  # stalled deals stay open: more than without the stall shares
        plain_stages = tuple(dataclasses.replace(s, stall=None) for s in spec.model.stages)
        no_stall = dataclasses.replace(
            spec, model=dataclasses.replace(spec.model, stages=plain_stages)
        )
        base = engine_vector.simulate_chunk(no_stall, VECTOR_TRIALS, np.random.SeedSequence(12))
        assert t["open_end"].mean() > base.totals["open_end"].mean() + 5
    if name == "slipping":  # the dates move the forecast
        plain_model = dataclasses.replace(spec.model, slips=None)
        base = engine_vector.simulate_chunk(
            dataclasses.replace(spec, model=plain_model), VECTOR_TRIALS, np.random.SeedSequence(12)
        )
        gap = t["wins_open"].mean() - base.totals["wins_open"].mean()
        assert abs(gap) > 0.1 * base.totals["wins_open"].mean()
    if name == "changing_calendar":  # the calendar moves the forecast
        flat = dataclasses.replace(spec, model=dataclasses.replace(spec.model, calendar=None))
        base = engine_vector.simulate_chunk(flat, VECTOR_TRIALS, np.random.SeedSequence(12))
        for col in ("created", "losses"):
            assert abs(t[col].mean() - base.totals[col].mean()) > 0.05 * base.totals[col].mean()
        # Pace alone moves the wins of the quarter (up in Q3, down in Q4).
        cal = spec.model.calendar
        no_pace = dataclasses.replace(
            spec,
            model=dataclasses.replace(spec.model, calendar=dataclasses.replace(cal, pace=None)),
        )
        other = engine_vector.simulate_chunk(no_pace, VECTOR_TRIALS, np.random.SeedSequence(12))
        assert (
            abs(vector.weekly[:, 6].mean() - other.weekly[:, 6].mean())
            > 0.05 * other.weekly[:, 6].mean()
        )
    if name == "hires_attrition_uncertainty":
        assert vector.rep_revenue[:, 3:].mean() > 0  # the hires sell
        assert t["revenue"].std() > 0
