"""Old open deals' observed tails (calibrate/tails.py, docs/model.md §6b): the Aalen–Johansen
estimate agrees with lifelines' AalenJohansenFitter, the tail's conditional shares are what
lifelines' cumulative incidences imply, a tail recovers a known truth, and a forecast of old
deals follows the observed tail where a parametric family extrapolates wrongly."""

from __future__ import annotations

import dataclasses
import math
import warnings

import lifelines  # the test extra's reference for the Aalen–Johansen estimate
import numpy as np
import pytest

from salesim.calibrate.durations import ADVANCE, CENSORED, HALF, LOST, Durations, aalen_johansen
from salesim.calibrate.stages import Pooled, fit_stage
from salesim.calibrate.tails import conditional_outcomes, fit_tail, with_tail
from salesim.simulator import engine_vector
from salesim.simulator.distributions import Gamma, LogNormal
from tests.engine_helpers import col, open_deals, spec_for
from tests.factories import simple_model


def competing(
    seed, n=3000, p=0.4, adv=LogNormal(20.0, 0.8), lost=Gamma(1.5, 10.0), follow=(30, 400)
):
    """Whole-day durations (a day late: see below): advance w.p. p after ``adv``, else lost
    after ``lost``; each deal followed for a uniform time (censored when still open)."""
    rng = np.random.default_rng(seed)
    won = rng.random(n) < p
    t = np.where(won, adv.sample(rng, n), lost.sample(rng, n))
    c = rng.uniform(*follow, n)
    kind = np.where(t <= c, np.where(won, ADVANCE, LOST), CENSORED)
    # Day 1 at least: lifelines' jitter of tied times may push a day-0 event below 0.
    days = np.floor(np.where(kind == CENSORED, c, t)) + 1
    return Durations.from_arrays(days, kind), (t, won, c)


def lifelines_cif(obs: Durations, cause: int, at):
    """lifelines' cumulative incidence of ``cause`` at times ``at``. Censored deals are put
    ¼ day after their day (events at a day come first, as in ours); lifelines breaks tied
    event times by a tiny jitter, which leaves the estimate after each tied block as it is."""
    t = np.repeat(obs.t, obs.count.astype(int))
    kind = np.repeat(obs.kind, obs.count.astype(int))
    durations = np.where(kind == CENSORED, t + 0.25, t)
    event = np.where(kind == ADVANCE, 1, np.where(kind == LOST, 2, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ajf = lifelines.AalenJohansenFitter(calculate_variance=False, seed=0)
        ajf.fit(durations, event, event_of_interest=cause)
    cif = ajf.cumulative_density_
    times = cif.index.to_numpy()
    return cif.to_numpy()[np.searchsorted(times, np.asarray(at) + 0.1, side="right") - 1, 0]


def test_aalen_johansen_agrees_with_lifelines():
    obs, _ = competing(1)
    days, cif_a, cif_l, _ = aalen_johansen(obs)
    assert np.allclose(cif_a, lifelines_cif(obs, 1, days), atol=1e-9)
    assert np.allclose(cif_l, lifelines_cif(obs, 2, days), atol=1e-9)


@pytest.mark.parametrize("age", [10.0, 40.0, 120.0])
def test_tail_shares_are_lifelines_conditional_incidences(age):
    """Of the deals still there after ``age``: the share later advanced is
    (CIF_A(∞) − CIF_A(age)) / S(age), with lifelines' CIFs."""
    obs, _ = competing(2)
    p_a, p_l, plateau, n, *_ = conditional_outcomes(obs, age)
    end = obs.t.max()
    a_age, l_age = lifelines_cif(obs, 1, [age])[0], lifelines_cif(obs, 2, [age])[0]
    a_end, l_end = lifelines_cif(obs, 1, [end])[0], lifelines_cif(obs, 2, [end])[0]
    s_age = 1 - a_age - l_age
    assert p_a == pytest.approx((a_end - a_age) / s_age, abs=1e-9)
    assert p_l == pytest.approx((l_end - l_age) / s_age, abs=1e-9)
    assert plateau == pytest.approx(1 - p_a - p_l, abs=1e-12)
    assert n == obs.count[obs.t > age].sum()


def test_tail_recovers_the_true_conditional_win_share():
    """Long follow-up: the tail's P(advance later | still there after its age) is the truth's
    p·S_A(a) / (p·S_A(a) + (1−p)·S_L(a)), within 4 SE (binomial on the deals still there)."""
    p, adv, lost = 0.4, LogNormal(20.0, 0.8), Gamma(1.5, 10.0)
    obs, _ = competing(3, n=20_000, p=p, adv=adv, lost=lost, follow=(2000, 3000))
    tail, why = fit_tail(obs)
    assert tail is not None, why
    a = tail.from_age
    a = a - HALF  # recorded t > whole age ⟺ T ≥ that age (a day late)
    truth = p * adv.sf(a) / (p * adv.sf(a) + (1 - p) * lost.sf(a))
    se = math.sqrt(truth * (1 - truth) / tail.n_at_risk)
    assert abs(tail.conversion.mean - truth) < 4 * se + 1 / tail.n_at_risk
    assert tail.stall is None  # nothing is left open after every close


def test_thin_stages_get_no_tail_and_say_why():
    obs, _ = competing(4, n=60)
    tail, why = fit_tail(obs)
    assert tail is None and "too few" in why


def test_old_open_deals_are_forecast_from_the_observed_tail():
    """A few slow winners (5 %, median 60 d) among fast ones (median 10 d): a lognormal
    fitted to the bulk passes the goodness-of-fit check, but says old deals win less than
    they do. An old open deal's P(win within the quarter) in the forecast then follows what
    became of old deals in the history (the tail), not the family's extrapolation."""
    rng = np.random.default_rng(5)
    n = 6000
    won = rng.random(n) < 0.5
    slow = rng.random(n) < 0.05
    t = np.where(
        won,
        np.where(slow, LogNormal(60.0, 0.3).sample(rng, n), LogNormal(10.0, 0.5).sample(rng, n)),
        Gamma(2.0, 6.0).sample(rng, n),
    )
    c = rng.uniform(300, 600, n)
    kind = np.where(t <= c, np.where(won, ADVANCE, LOST), CENSORED)
    obs = Durations.from_arrays(np.floor(np.where(kind == CENSORED, c, t)), kind)
    stage, _ = fit_stage("S", obs, Pooled(obs))
    assert stage.advance.dist.family == "lognormal"
    tailed, notes = with_tail(stage, obs)
    assert tailed.tail is not None and "end as observed" in notes[0]
    age = 40.0
    assert tailed.tail.from_age <= age
    # What became of deals 60 days in: the observed conditional shares and timing.
    within = ((t > age) & (t <= age + 92) & won).sum() / (t > age).sum()
    deals = open_deals([("rep1", "S", age, 1.0)] * 50)
    base = simple_model(per_rep_day=1e-9, stages=(stage,))
    plain = (
        col(
            engine_vector.simulate_chunk(
                spec_for(base, 1, deals=deals), 400, np.random.SeedSequence(1)
            ),
            "wins",
        )
        / 50
    )
    tail_model = dataclasses.replace(base, stages=(tailed,))
    seen = (
        col(
            engine_vector.simulate_chunk(
                spec_for(tail_model, 1, deals=deals), 400, np.random.SeedSequence(1)
            ),
            "wins",
        )
        / 50
    )
    se = math.sqrt(within * (1 - within) / (50 * 400))
    assert abs(seen.mean() - within) < 4 * se + 0.02
    assert abs(plain.mean() - within) > 4 * se + abs(seen.mean() - within)
