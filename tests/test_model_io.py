import numpy as np
from hypothesis import given, settings, strategies as st

from simulator import model as m
from simulator.distributions import Empirical, Gamma, LogNormal, Weibull
from simulator.model import Fitted
from tests.factories import simple_model, stage


def test_round_trip_exact(tmp_path):
    mod = simple_model(stages=(
        stage("A", 0.6, LogNormal(12.3, 0.71), Gamma(2.0, 3.0)),
        stage("B", 0.45, Weibull(1.3, 20.0), Empirical((1.0, 2.0, 5.0), (3.0, 1.5, 0.5), 0.5)),
    ))
    mod = m.Model(**{**mod.__dict__, "stages": (
        m.StageModel("A", m.BetaPosterior(12.5, 7.25),
                     Fitted(LogNormal(12.3, 0.71), ((0.01, 0.002), (0.002, 0.03)), 10, 3.5, 0.04,
                            {"lognormal": 100.0, "gamma": 101.5}),
                     Fitted(Gamma(2.0, 3.0)), 20, 12, 5, 3),) + mod.stages[1:]})
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
    a = mod.draw(np.random.default_rng(1))
    b = mod.draw(np.random.default_rng(1))
    assert a == b
