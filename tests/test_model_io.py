import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim.simulator import model as m
from salesim.simulator.distributions import Empirical, Gamma, LogNormal, Weibull
from salesim.simulator.model import Fitted
from salesim.simulator.vector_params import draw_model
from tests.factories import simple_model, stage


def test_round_trip_exact(tmp_path):
    mod = simple_model(
        stages=(
            stage("A", 0.6, LogNormal(12.3, 0.71), Gamma(2.0, 3.0)),
            stage("B", 0.45, Weibull(1.3, 20.0), Empirical((1.0, 2.0, 5.0), (3.0, 1.5, 0.5), 0.5)),
        )
    )
    mod = m.Model(
        **{
            **mod.__dict__,
            "stages": (
                m.StageModel(
                    "A",
                    m.BetaPosterior(12.5, 7.25),
                    Fitted(
                        LogNormal(12.3, 0.71),
                        ((0.01, 0.002), (0.002, 0.03)),
                        10,
                        3.5,
                        0.04,
                        {"lognormal": 100.0, "gamma": 101.5},
                    ),
                    Fitted(Gamma(2.0, 3.0)),
                    20,
                    12,
                    5,
                    3,
                ),
            )
            + mod.stages[1:],
        }
    )
    path = m.save(mod, tmp_path / "model.toml")
    assert m.load(path) == mod
    assert m.loads(m.dumps(mod)) == mod


@settings(max_examples=30, deadline=None)
@given(median=st.floats(0.01, 1e6), sigma=st.floats(0.01, 5), p=st.floats(0.001, 0.999))
def test_round_trip_floats(median, sigma, p):
    mod = simple_model(stages=(stage("S", p, LogNormal(median, sigma), LogNormal(1.0, sigma)),))
    assert m.loads(m.dumps(mod)) == mod


def test_draw_is_reproducible():
    mod = simple_model()
    a = draw_model(mod, 1, np.random.default_rng(1)).trial(0)
    b = draw_model(mod, 1, np.random.default_rng(1)).trial(0)
    assert a == b


def _with_stall(mod, stall):
    s0 = mod.stages[0]
    return m.Model(
        **{
            **mod.__dict__,
            "stages": (
                m.StageModel(s0.name, s0.conversion, s0.advance, s0.lost, 10, 4, 3, 3, stall),
            )
            + mod.stages[1:],
        }
    )


def test_stall_round_trips_and_old_files_load(tmp_path):
    mod = _with_stall(simple_model(), m.BetaPosterior(30.5, 120.25))
    assert m.loads(m.dumps(mod)) == mod
    # No stall: no key in the file (an older file, without the key, loads as no stall).
    plain = simple_model()
    assert "stall" not in m.dumps(plain)
    assert m.loads(m.dumps(plain)).stages[0].stall is None


def one_draw(model, seed):
    """One trial's posterior draw: the one-row case of ``draw_model``."""
    return draw_model(model, 1, np.random.default_rng(seed)).trial(0)


def test_stall_is_drawn_last_and_only_when_present():
    """A model without stalls draws exactly as before; with one, every other draw is the
    same and the stall draw comes after them all."""
    base = simple_model(stages=(stage("S", 0.5, LogNormal(10.0, 0.5), Gamma(2.0, 3.0), n=50),))
    stalled = _with_stall(base, m.BetaPosterior(20.0, 80.0))
    a, b = one_draw(base, 5), one_draw(stalled, 5)
    assert a.stall == (0.0,) and b.stall[0] > 0
    assert b.conversion == tuple(min(c, 1 - s) for c, s in zip(a.conversion, b.stall))
    assert dataclasses.replace(b, stall=a.stall, conversion=a.conversion) == a
    rng = np.random.default_rng(5)
    draw_model(base, 1, rng)
    assert b.stall[0] == m.BetaPosterior(20.0, 80.0).draw(rng)
    assert stalled.point().stall == (0.2,)


def test_win_rate_lever_is_capped_below_the_stall_share():
    from salesim.simulator.spec import Levers

    p = dataclasses.replace(simple_model().point(), conversion=(0.7,), stall=(0.2,))
    assert Levers(win_rate=2.0).apply(p).conversion == (0.8,)
    assert Levers(cycle_time=2.0).apply(p).stall == (0.2,)
