"""Distributions: sampling agrees with the scipy maths; residuals condition on survival."""

import numpy as np
import pytest
from scipy import stats

from salesim.simulator.distributions import (
    Empirical,
    Exponential,
    Fixed,
    Gamma,
    LogNormal,
    Weibull,
    from_dict,
    split_uniform,
)

FAMILIES = [LogNormal(12.0, 0.8), Gamma(2.5, 6.0), Weibull(1.4, 20.0), Exponential(9.0)]


@pytest.mark.parametrize("dist", FAMILIES, ids=lambda d: d.family)
def test_sample_matches_cdf(dist):
    x = dist.sample(np.random.default_rng(1), 20_000)
    assert stats.kstest(x, dist.cdf).pvalue > 0.001
    se = x.std() / np.sqrt(x.size)
    assert abs(x.mean() - dist.mean) < 4 * se


@pytest.mark.parametrize("dist", FAMILIES, ids=lambda d: d.family)
def test_residual_is_conditional_on_survival(dist):
    age = float(dist.quantile(0.6))
    rng = np.random.default_rng(2)
    r = dist.residual(rng.random(20_000), np.full(20_000, age))
    # Brute force: T - age for draws with T > age.
    t = dist.sample(np.random.default_rng(3), 200_000)
    ref = t[t > age] - age
    assert stats.ks_2samp(r, ref).pvalue > 0.001


@pytest.mark.parametrize("dist", FAMILIES + [Fixed(3.0)], ids=lambda d: d.family)
def test_scaled_multiplies_quantiles(dist):
    q = np.array([0.1, 0.5, 0.9])
    assert np.allclose(dist.scaled(1.7).quantile(q), 1.7 * np.asarray(dist.quantile(q)))


@pytest.mark.parametrize(
    "dist", FAMILIES + [Empirical((1.0, 5.0, 10.0), (1.0, 1.0, 2.0), 0.5)], ids=lambda d: d.family
)
def test_draws_increase_with_their_uniform(dist):
    """Every inverse-CDF draw, residuals included, is non-decreasing in its uniform: a lever
    that lowers a deal's uniform (a higher win rate, docs/model.md §0) only brings its close
    forward."""
    u = np.linspace(0.0, 1.0, 2001)[:-1]
    assert np.all(np.diff(np.asarray(dist.from_uniform(u), dtype=float)) >= 0)
    for age in (0.0, float(dist.quantile(0.3)), float(dist.quantile(0.8))):
        r = np.asarray(dist.residual(u, np.full(u.size, age)), dtype=float)
        assert np.all(np.diff(r) >= -1e-9 * np.maximum(1.0, np.abs(r[1:])))


def test_a_split_uniform_is_uniform_and_independent_of_its_branch():
    """One uniform picks a branch and, split within it, is the next draw's uniform."""
    u = np.random.default_rng(4).random(60_000)
    p, pi = 0.35, 0.2
    adv, lost = u < p, (u >= p) & (u < 1 - pi)
    for v in (split_uniform(u[adv], 0.0, p), split_uniform(u[lost], p, 1 - pi - p)):
        assert v.min() >= 0.0 and v.max() < 1.0
        assert stats.kstest(v, "uniform").pvalue > 0.001
    # Independent of which branch: the two splits have the same law.
    assert (
        stats.ks_2samp(split_uniform(u[adv], 0.0, p), split_uniform(u[lost], p, 1 - pi - p)).pvalue
        > 0.001
    )
    # Rounding never reaches 1 (an inverse CDF there is infinite); a zero width is silent.
    assert split_uniform(np.array([0.3]), 0.0, 0.3)[0] < 1.0
    with np.errstate(all="raise"):
        split_uniform(np.array([0.5]), 0.5, 0.0)


def test_exponential_residual_is_memoryless():
    d = Exponential(10.0)
    u = np.random.default_rng(0).random(5)
    assert np.allclose(d.residual(u, 0.0), d.residual(u, 50.0))


def test_empirical_sampling_and_residual():
    d = Empirical((1.0, 5.0, 10.0), (1.0, 1.0, 2.0))
    x = d.sample(np.random.default_rng(0), 40_000)
    assert set(np.unique(x)) == {1.0, 5.0, 10.0}
    assert abs((x == 10.0).mean() - 0.5) < 4 * np.sqrt(0.25 / x.size)
    assert d.mean == pytest.approx(6.5)
    r = d.residual(np.random.default_rng(1).random(1000), np.full(1000, 4.0))
    assert set(np.unique(r)) == {1.0, 6.0}


def test_fixed_is_degenerate():
    d = Fixed(4.0)
    assert np.all(d.sample(np.random.default_rng(0), 10) == 4.0)
    assert d.residual(np.array([0.3]), np.array([1.0]))[0] == 3.0


def test_from_dict_round_trip_and_errors():
    for d in FAMILIES + [Empirical((1.0, 2.0), (3.0, 4.0), 0.5), Fixed(2.0)]:
        assert from_dict(d.to_dict()) == d
    with pytest.raises(ValueError, match="unknown distribution family"):
        from_dict({"family": "cauchy"})
    with pytest.raises(ValueError, match="positive"):
        from_dict({"family": "lognormal", "median": -1.0, "sigma": 1.0})


def test_empirical_keeps_its_values_ascending():
    """Given in any order, an Empirical holds its values sorted (weights alongside), so its
    CDF is right and its inverse CDF increases with the uniform (docs/model.md §0)."""
    e = Empirical((10.0, 1.0, 30.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0), 0.5)
    assert e.values == (1.0, 2.0, 5.0, 10.0, 30.0) and e.weights == (2.0, 4.0, 5.0, 1.0, 3.0)
    assert e.sf(1.5) == pytest.approx(13 / 15) and e.cdf(5.0) == pytest.approx(11 / 15)
    u = np.linspace(0.0, 1.0, 2001, endpoint=False)
    assert np.all(np.diff(e.from_uniform(u)) >= 0)
    assert np.all(np.diff(e.residual(u, np.full(u.size, 1.5))) >= 0)
    assert from_dict(e.to_dict()) == e
