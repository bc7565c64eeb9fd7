"""Reps on the team keep the activity level the history measured (docs/model.md §2): both
engines give such a rep exp(level + level_sd·z) of the model's point rate, whatever the
trial's draw of the typical rep's rate; calibration recovers the demo reps' true multipliers
(posterior z-scores ~ N(0, 1)); the forecast uses the levels."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest

from salesim.calibrate import activities as acts
from salesim.calibrate.fit import calibrate
from salesim.simulator import engine_simpy, engine_vector
from salesim.simulator.demo_history import generate
from salesim.simulator.spec import Rep
from tests.engine_helpers import assert_mean, col, spec_for
from tests.factories import simple_model

ENGINES = {
    "simpy": (engine_simpy.simulate_chunk, 600),
    "vector": (engine_vector.simulate_chunk, 6000),
}


@pytest.fixture(params=list(ENGINES))
def engine(request):
    return request.param


def run(engine, spec, seed=1):
    simulate, n = ENGINES[engine]
    return simulate(spec, n, np.random.SeedSequence(seed))


def test_a_measured_rep_sells_at_its_own_level(engine):
    """Poisson activities, yield 1: a rep measured at level log 2 (sd 0) makes twice the
    typical rep's deals, and a rep without a level the typical rep's."""
    m = simple_model(per_rep_day=2.0, opportunity_yield=1.0)
    reps = (Rep("known", level=math.log(2.0)), Rep("fresh"))
    out = run(engine, spec_for(m, reps))
    work = len(spec_for(m, 1).working_days())
    assert_mean(col(out, "created"), 2.0 * work * (2.0 + 1.0))


def test_a_measured_rate_does_not_move_with_the_trials_draw(engine):
    """The typical rep's rate is uncertain (log sd 0.5): a rep without a level inherits that
    uncertainty, a rep measured exactly (sd 0) does not — its created count is Poisson; one
    whose level is half its own data (level_sd² = rep_sigma²/2) keeps half of it."""
    m = simple_model(per_rep_day=2.0, opportunity_yield=1.0, rep_sigma=0.3)
    m = dataclasses.replace(
        m, activities=dataclasses.replace(m.activities, log_cov=((0.25, 0.0), (0.0, 1e-12)))
    )
    work = len(spec_for(m, 1).working_days())
    known = col(run(engine, spec_for(m, (Rep("a", level=0.0),), fixed_parameters=False)), "created")
    fresh = col(run(engine, spec_for(m, (Rep("a"),), fixed_parameters=False)), "created")
    mean = 2.0 * work
    assert_mean(known, mean)
    # Poisson: variance = mean (within 4 SE of a sample variance); the fresh rep's far more.
    se_var = mean * math.sqrt(2 / (known.size - 1))
    assert abs(known.var() - mean) < 4 * se_var
    assert fresh.var() > 3 * mean
    m2 = dataclasses.replace(m, activities=dataclasses.replace(m.activities, rep_sigma=0.2))
    half = col(
        run(
            engine,
            spec_for(
                m2, (Rep("a", level=0.0, level_sd=0.2 / math.sqrt(2)),), fixed_parameters=False
            ),
        ),
        "created",
    )
    # log rate = level + sd·z + ½(log draw): variance 0.02 + 0.25/4 on the log scale.
    expected_var = mean + mean**2 * (math.exp(0.02 + 0.0625) - 1)
    assert abs(half.var() / expected_var - 1) < 0.25


def level_errors(d, as_of):
    """Per measured rep: (est − true)/sd of its log level, both relative to the measured
    reps' mean (the level's reference), and whether it was hired in the history's last
    year."""
    m = calibrate(d.to_history(), as_of, calendar=False)
    levels = {r.name: (r.level, r.level_sd) for r in m.team.reps if r.level is not None}
    truth = dict(zip(d.multipliers["owner"], np.log(d.multipliers["multiplier"])))
    hired = dict(zip(d.reps["owner"], d.reps["hired"]))
    names = sorted(levels)
    true = np.array([truth[n] for n in names])
    est = np.array([levels[n][0] for n in names])
    sd = np.array([levels[n][1] for n in names])
    z = ((est - est.mean()) - (true - true.mean())) / sd
    recent = np.array([hired[n] > as_of - dt.timedelta(days=365) for n in names])
    return z, recent, est, true


def test_calibration_recovers_the_reps_true_multipliers():
    """Demo reps' true multipliers (rep_sigma 0.3): the measured levels' posterior z-scores
    have sd ≈ 1 (the shrinkage is honest) and the levels track the truth."""
    z, _, est, true = level_errors(
        generate(21, reps=30, quarters=6, as_of=dt.date(2026, 9, 30)), dt.date(2026, 9, 30)
    )
    assert z.size >= 20
    assert 0.6 < z.std() < 1.5
    assert np.corrcoef(est, true)[0, 1] > 0.8


def test_growth_does_not_make_recent_hires_look_stronger():
    """Creation growing 15 % a quarter: reps hired in the last year sold when everyone sold
    more, yet their measured levels are not inflated (rep × quarter fit): their mean z is
    within 4 SE of the other reps'."""
    from salesim.simulator.demo_ingredients import Ingredients

    zs, recents = [], []
    for seed in (31, 32, 33):
        d = generate(
            seed,
            reps=30,
            quarters=8,
            as_of=dt.date(2026, 9, 30),
            ingredients=Ingredients(growth=0.15),
        )
        z, recent, _, _ = level_errors(d, dt.date(2026, 9, 30))
        zs.append(z)
        recents.append(recent)
    z, recent = np.concatenate(zs), np.concatenate(recents)
    assert recent.sum() >= 8
    gap = z[recent].mean() - z[~recent].mean()
    assert abs(gap) < 4 * math.sqrt(1 / recent.sum() + 1 / (~recent).sum()), gap


def test_forecasts_give_the_team_its_measured_levels():
    from salesim.scenarios.baseline import baseline_spec

    d = generate(22, reps=10, quarters=4, as_of=dt.date(2026, 9, 30))
    h = d.to_history()
    m = calibrate(h, dt.date(2026, 9, 30), calendar=False)
    spec = baseline_spec(m, history=h)
    measured = [r for r in spec.reps if r.level is not None]
    assert measured and all(r.level_sd > 0 for r in measured)
    assert {r.name for r in measured} <= {r.name for r in m.team.reps}
    rd, _ = acts.rep_days(h.as_of(dt.date(2026, 9, 30)), dt.date(2026, 9, 30))
    assert set(
        acts.rep_levels(
            rd, m.activities, ramp_months=m.team.ramp_months, free_deals=m.capacity.free_deals
        )
    ) >= {r.name for r in measured}
