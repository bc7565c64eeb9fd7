"""Censored competing-risk duration fits (calibrate/durations.py) on generated data."""

import math

import numpy as np
import pytest
from scipy import stats

from salesim.calibrate.durations import (
    ADVANCE,
    CENSORED,
    LOST,
    CompetingRisks,
    Durations,
    aalen_johansen,
    conversion_posterior,
    fit_family,
    make_dist,
)
from salesim.simulator.distributions import Empirical, Exponential, Gamma, LogNormal, Weibull
from salesim.simulator.model import Fitted


def competing_sample(rng, n, p, advance, lost, entry_days, as_of_day):
    """Deals entering uniformly on days [0, entry_days) and observed at the end of
    ``as_of_day``: each advances with probability ``p`` after ``advance`` days, else is lost
    after ``lost`` days; times are continuous from midday of the entry day and recorded in
    whole days, as a CRM does."""
    enter = rng.integers(0, entry_days, n)
    adv = rng.random(n) < p
    t = np.where(adv, advance.sample(rng, n), lost.sample(rng, n))
    open_ = enter + 0.5 + t >= as_of_day + 1
    kind = np.where(open_, CENSORED, np.where(adv, ADVANCE, LOST))
    days = np.where(open_, as_of_day - enter, np.floor(0.5 + t))
    return Durations.from_arrays(days, kind)


def median_z(fitted: Fitted, truth) -> float:
    """(fitted - true) median in standard errors, by the delta method on log-parameters."""
    d = fitted.dist
    theta = np.log(d.params())
    grad = np.zeros(theta.size)
    for i in range(theta.size):
        h = np.zeros(theta.size)
        h[i] = 1e-5
        grad[i] = (
            math.log(d.with_params(np.exp(theta + h)).quantile(0.5))
            - math.log(d.with_params(np.exp(theta - h)).quantile(0.5))
        ) / 2e-5
    se = math.sqrt(grad @ np.asarray(fitted.log_cov) @ grad)
    return (math.log(d.quantile(0.5)) - math.log(truth.quantile(0.5))) / se


def test_grouping_counts_identical_observations():
    d = Durations.from_arrays(
        [3, 3, 0, 5, 3, 5], [ADVANCE, ADVANCE, LOST, CENSORED, LOST, CENSORED]
    )
    assert d.n_total == 6
    assert (d.n(ADVANCE), d.n(LOST), d.n(CENSORED)) == (2, 2, 2)
    assert d.t.size == 4  # (3, A) ×2, (0, L), (3, L), (5, C) ×2
    both = Durations.concat([d, d])
    assert both.t.size == 4 and both.n_total == 12
    with pytest.raises(ValueError):
        Durations.from_arrays([-1], [ADVANCE])


def test_posterior_is_exact_beta_without_censoring():
    obs = Durations.from_arrays([1] * 30 + [2] * 12, [ADVANCE] * 30 + [LOST] * 12)
    post = conversion_posterior(obs, LogNormal(5, 1), LogNormal(5, 1))
    exact = stats.beta(31, 13)
    assert post.mean == pytest.approx(exact.mean(), rel=1e-6)
    assert post.alpha + post.beta == pytest.approx(44, rel=1e-4)


def test_aalen_johansen_without_censoring_is_the_empirical_split():
    obs = Durations.from_arrays([1, 1, 2, 4, 4, 4], [ADVANCE, LOST, ADVANCE, ADVANCE, LOST, LOST])
    days, cif_a, cif_l, at_risk = aalen_johansen(obs)
    assert list(days) == [1, 2, 4]
    np.testing.assert_allclose(cif_a, [1 / 6, 2 / 6, 3 / 6])
    np.testing.assert_allclose(cif_l, [1 / 6, 1 / 6, 3 / 6])
    np.testing.assert_allclose(at_risk, [6, 4, 3])


@pytest.mark.parametrize(
    "family, advance, lost",
    [
        ("lognormal", LogNormal(20.0, 0.6), LogNormal(9.0, 0.8)),
        ("gamma", Gamma(2.5, 8.0), Gamma(1.5, 6.0)),
        ("weibull", Weibull(1.6, 25.0), Weibull(0.9, 10.0)),
        ("exponential", Exponential(18.0), Exponential(7.0)),
    ],
)
def test_each_family_recovers_its_parameters(family, advance, lost):
    rng = np.random.default_rng(11)
    obs = competing_sample(rng, 6000, 0.55, advance, lost, entry_days=400, as_of_day=399)
    fit = CompetingRisks(families=(family,)).fit(obs)
    for fitted, truth in ((fit.advance_, advance), (fit.lost_, lost)):
        assert fitted.dist.family == family
        z = (np.log(fitted.dist.params()) - np.log(truth.params())) / fitted.se_log()
        assert np.all(np.abs(z) < 4), (family, fitted.dist, truth, z)
    lo, hi = fit.conversion_.interval(0.999)
    assert lo < 0.55 < hi


def test_intervals_cover_the_truth_at_about_their_nominal_rate():
    """Twenty replicates: 90% intervals of p and of both medians (60 in all)."""
    advance, lost, p = LogNormal(15.0, 0.7), Gamma(2.0, 5.0), 0.4
    rng = np.random.default_rng(2024)
    hits, n = 0, 0
    for _ in range(20):
        obs = competing_sample(rng, 1500, p, advance, lost, entry_days=300, as_of_day=299)
        fit = CompetingRisks().fit(obs)
        lo, hi = fit.conversion_.interval(0.9)
        hits += lo <= p <= hi
        for fitted, truth in ((fit.advance_, advance), (fit.lost_, lost)):
            if fitted.dist.family == truth.family:
                hits += abs(median_z(fitted, truth)) < 1.645
            else:  # another family won on AIC: judge its median by draws
                meds = [fitted.draw(rng).quantile(0.5) for _ in range(300)]
                q = np.quantile(meds, [0.05, 0.95])
                hits += q[0] <= truth.quantile(0.5) <= q[1]
        n += 3
    # Binomial(60, 0.9): mean 54, sd 2.3.
    assert 47 <= hits <= 60, hits / n


def test_censoring_matters():
    """Deals entered over the last 45 days; about half are still open. The censoring-aware fit
    recovers p and both medians; using closed deals only is badly biased."""
    advance, lost, p = LogNormal(30.0, 0.5), LogNormal(12.0, 0.6), 0.5
    rng = np.random.default_rng(7)
    obs = competing_sample(rng, 20000, p, advance, lost, entry_days=45, as_of_day=44)
    assert obs.n(CENSORED) > 0.4 * obs.n_total

    fit = CompetingRisks().fit(obs)
    post = fit.conversion_
    sd_p = math.sqrt(post.mean * (1 - post.mean) / (post.alpha + post.beta + 1))
    assert abs(post.mean - p) < 4 * sd_p
    assert abs(median_z(fit.advance_, advance)) < 4
    assert abs(median_z(fit.lost_, lost)) < 4

    # Closed deals only: the naive win share and naive duration fits.
    n_a, n_l = obs.n(ADVANCE), obs.n(LOST)
    naive_p = n_a / (n_a + n_l)
    assert naive_p < p - 10 * sd_p  # quick losses are over-represented
    t_a, w_a = obs.part(ADVANCE)
    theta, _ = fit_family("lognormal", t_a, w_a)
    naive_median = make_dist("lognormal", theta).quantile(0.5)
    assert naive_median < 0.75 * advance.quantile(0.5)  # only the quick ones closed
    assert abs(fit.advance_.dist.quantile(0.5) / advance.quantile(0.5) - 1) < 0.1


def test_same_day_transitions_are_fine():
    # A third of the deals advance the day they enter (t = 0 means T in (0, ½]).
    rng = np.random.default_rng(3)
    t = np.concatenate([np.zeros(300), rng.integers(1, 30, 600)])
    kind = np.concatenate([np.full(300, ADVANCE), np.where(rng.random(600) < 0.5, ADVANCE, LOST)])
    fit = CompetingRisks().fit(Durations.from_arrays(t, kind))
    assert np.isfinite(fit.loglik_)
    assert 0.6 < fit.p_ < 0.75
    assert fit.advance_.dist.cdf(0.5) > 0.2


def test_rejected_family_falls_back_to_the_empirical_distribution():
    # Two well-separated humps: no single family fits.
    rng = np.random.default_rng(5)
    n = 4000
    t = np.where(rng.random(n) < 0.5, rng.normal(5, 1, n), rng.normal(60, 3, n)).clip(0)
    obs = Durations.from_arrays(np.floor(0.5 + t), np.full(n, ADVANCE))
    obs = Durations.concat([obs, Durations.from_arrays(np.full(2000, 8.0), np.full(2000, LOST))])
    fit = CompetingRisks().fit(obs)
    assert isinstance(fit.advance_.dist, Empirical)
    assert fit.advance_.dist.jitter == 0.5
    assert fit.advance_.ks > 0.03 and len(fit.advance_.aic) == 4
    assert any("empirical" in note for note in fit.notes_)
    # The empirical CDF between the humps is about one half.
    assert abs(fit.advance_.dist.cdf(30.0) - 0.5) < 0.03


def test_a_borrowed_outcome_is_kept_and_p_still_fitted():
    rng = np.random.default_rng(8)
    lost = Fitted(Exponential(10.0))
    t = np.floor(0.5 + rng.exponential(20.0, 500))
    obs = Durations.concat(
        [
            Durations.from_arrays(t, np.full(500, ADVANCE)),
            Durations.from_arrays([3.0] * 50, [CENSORED] * 50),
        ]
    )
    fit = CompetingRisks(lost=lost).fit(obs)
    assert fit.lost_ is lost
    assert fit.conversion_.mean > 0.95
    assert abs(fit.advance_.dist.mean / 20.0 - 1) < 0.15


def test_fits_are_deterministic():
    rng = np.random.default_rng(1)
    obs = competing_sample(rng, 2000, 0.5, LogNormal(10, 0.5), Exponential(5), 200, 199)
    a, b = CompetingRisks().fit(obs), CompetingRisks().fit(obs)
    assert a.advance_ == b.advance_ and a.lost_ == b.lost_ and a.conversion_ == b.conversion_


# --- the stall ("never closes") share ---------------------------------------------------------
def stall_sample(rng, n, p, pi, advance, lost, entry_days, as_of_day):
    """As ``competing_sample``, but a share ``pi`` of the deals never leave (a stall): they
    are open at the as-of date whatever their age. One uniform picks the outcome, as the
    engines do: advance if U < p, stall if U ≥ 1 − π, else lost."""
    enter = rng.integers(0, entry_days, n)
    u = rng.random(n)
    adv, stall = u < p, u >= 1 - pi
    t = np.where(adv, advance.sample(rng, n), lost.sample(rng, n))
    open_ = stall | (enter + 0.5 + t >= as_of_day + 1)
    kind = np.where(open_, CENSORED, np.where(adv, ADVANCE, LOST))
    days = np.where(open_, as_of_day - enter, np.floor(0.5 + np.where(open_, 0.0, t)))
    return Durations.from_arrays(days, kind)


def beta_sd(post) -> float:
    a, b = post.alpha, post.beta
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


@pytest.mark.parametrize("pi", [0.08, 0.25])
def test_stall_share_is_recovered_and_the_test_keeps_it(pi):
    from salesim.calibrate.durations import STALL_LRT

    p, advance, lost = 0.45, LogNormal(20.0, 0.6), Gamma(2.0, 6.0)
    rng = np.random.default_rng(31)
    obs = stall_sample(rng, 6000, p, pi, advance, lost, entry_days=400, as_of_day=399)
    fit = CompetingRisks().fit(obs)
    assert fit.lrt_ > STALL_LRT and fit.stall_ is not None
    assert abs(fit.stall_.mean - pi) < 4 * beta_sd(fit.stall_), (fit.stall_.mean, pi)
    assert abs(fit.conversion_.mean - p) < 4 * beta_sd(fit.conversion_)
    lo, hi = fit.stall_.interval(0.999)
    assert lo < pi < hi
    for fitted, truth in ((fit.advance_, advance), (fit.lost_, lost)):
        if fitted.dist.family == truth.family:
            assert abs(median_z(fitted, truth)) < 4
    assert any("never close" in n for n in fit.notes_)


def test_ignoring_the_stall_share_is_biased():
    """The two-outcome fit of the same data stretches the durations' tails to explain deals
    open for ever, and over-states the advance share of the open deals."""
    p, pi, advance, lost = 0.45, 0.2, LogNormal(20.0, 0.6), Gamma(2.0, 6.0)
    obs = stall_sample(np.random.default_rng(32), 6000, p, pi, advance, lost, 400, 399)
    two = CompetingRisks(stall=False).fit(obs)
    three = CompetingRisks().fit(obs)
    assert two.stall_ is None and two.pi_ == 0.0
    assert abs(two.conversion_.mean - p) > 6 * beta_sd(two.conversion_)
    assert abs(three.conversion_.mean - p) < 4 * beta_sd(three.conversion_)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_stalls_the_share_is_exactly_zero(seed):
    """No stall in the data: the likelihood-ratio test does not fire and the fit is the
    two-outcome fit, exactly."""
    from salesim.calibrate.durations import STALL_LRT

    rng = np.random.default_rng(seed)
    obs = competing_sample(
        rng, 4000, 0.5, LogNormal(15.0, 0.7), Gamma(2.0, 5.0), entry_days=200, as_of_day=199
    )
    fit, two = CompetingRisks().fit(obs), CompetingRisks(stall=False).fit(obs)
    assert fit.lrt_ <= STALL_LRT
    assert fit.stall_ is None and fit.pi_ == 0.0
    assert (fit.conversion_, fit.advance_, fit.lost_) == (two.conversion_, two.advance_, two.lost_)


def test_stall_posterior_without_open_deals_is_the_dirichlet():
    """With no open deals the posterior is Dirichlet(prior + (advances, losses, 0)): the grid
    gives its marginal means and variances (a prior with a stall mode inside the simplex)."""
    from salesim.calibrate.durations import stall_posterior

    obs = Durations.from_arrays([1] * 30 + [2] * 12, [ADVANCE] * 30 + [LOST] * 12)
    conv, stall = stall_posterior(obs, LogNormal(5, 1), LogNormal(5, 1), prior=(1, 1, 3))
    total = 31 + 13 + 3
    for post, a in ((conv, 31), (stall, 3)):
        exact = stats.beta(a, total - a)
        assert post.mean == pytest.approx(exact.mean(), rel=1e-3)
        assert post.alpha + post.beta == pytest.approx(total, rel=1e-2)


@pytest.mark.parametrize("n_old, kept", [(2, False), (60, True)])
def test_profile_test_with_empirical_durations_needs_more_than_a_few_old_deals(n_old, kept):
    """With empirical durations (ending at the longest observed), open deals older than
    every closed deal can only be stalls; two of them are not evidence enough, sixty are."""
    from salesim.calibrate.durations import STALL_LRT, profile_stall_lrt

    rng = np.random.default_rng(4)
    t_a, t_l = rng.integers(1, 31, 300), rng.integers(1, 21, 300)
    obs = Durations.from_arrays(
        np.concatenate([t_a, t_l, np.full(50, 5), np.full(n_old, 100)]),
        np.concatenate([np.full(300, ADVANCE), np.full(300, LOST), np.full(50 + n_old, CENSORED)]),
    )
    adv = Empirical(tuple(float(x) for x in range(1, 31)), (1.0,) * 30, 0.5)
    lost = Empirical(tuple(float(x) for x in range(1, 21)), (1.0,) * 20, 0.5)
    assert (profile_stall_lrt(obs, adv, lost) > STALL_LRT) == kept
