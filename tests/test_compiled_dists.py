"""compiled_dists: the compiled distribution maths agrees with simulator.distributions.

Special functions against scipy.special; every family's quantile, sf, isf and residual
against the scipy-backed classes; gamma draws and residuals (sampled, not inverted) by
their law, KS against the exact (conditional) CDF with fixed seeds; empirical tables as
``pack`` lays them out, against ``Empirical`` and ``DistArray``.

The compiled functions are called through the small @njit loops below (one compilation
each; calls from Python would cost more than the work).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import special, stats

from salesim.simulator import compiled_dists as cd
from salesim.simulator.distributions import Empirical, Exponential, Fixed, Gamma, LogNormal, Weibull
from salesim.simulator.model import Fitted
from salesim.simulator.vector_params import DistArray, draw_dist

K = 4.0  # tolerances are K standard errors
EPS = np.finfo(float).eps
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None)


# --- vectorising wrappers ----------------------------------------------------------------
@njit
def _ndtri_many(p):
    out = np.empty(p.size)
    for i in range(p.size):
        out[i] = cd.ndtri(p[i])
    return out


@njit
def _gammaincc_many(a, x):
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = cd.gammaincc(a[i], x[i])
    return out


@njit
def _gamma_isf_many(a, q):
    out = np.empty(q.size)
    for i in range(q.size):
        out[i] = cd.gamma_isf(a[i], q[i])
    return out


@njit
def _quantile_many(fam, a, b, u):
    out = np.empty(u.size)
    for i in range(u.size):
        out[i] = cd.quantile(fam, a, b, u[i])
    return out


@njit
def _sf_many(fam, a, b, x):
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = cd.sf(fam, a, b, x[i])
    return out


@njit
def _isf_many(fam, a, b, q):
    out = np.empty(q.size)
    for i in range(q.size):
        out[i] = cd.isf(fam, a, b, q[i])
    return out


@njit
def _draw_many(fam, a, b, u, h):
    """A draw per uniform, all from one stream; and the stream's final state."""
    out = np.empty(u.size)
    for i in range(u.size):
        out[i], h = cd.draw(fam, a, b, u[i], h)
    return out, h


@njit
def _residual_many(fam, a, b, u, age, survival, h):
    """Residuals at one age for every uniform, all from one stream; the gammas drawn each."""
    out = np.empty(u.size)
    tries = np.empty(u.size, dtype=np.int64)
    for i in range(u.size):
        out[i], h, tries[i] = cd.residual(fam, a, b, u[i], age, survival, h)
    return out, tries, h


# Empirical slot k of trial t[i], read as the Packed docstring lays it out.
@njit
def _slot(meta, params, k, t):
    return meta[k, 0] + (t if meta[k, 1] else 0), meta[k, 2], params[k, t, 0]


@njit
def _empirical_quantile_many(values, cum, meta, params, k, t, u):
    out = np.empty(u.size)
    for i in range(u.size):
        row, n, jitter = _slot(meta, params, k, t[i])
        out[i] = cd.empirical_quantile(values, cum, k, row, n, jitter, u[i])
    return out


@njit
def _empirical_sf_many(values, cum, meta, params, k, t, x):
    out = np.empty(x.size)
    for i in range(x.size):
        row, n, _ = _slot(meta, params, k, t[i])
        out[i] = cd.empirical_sf(values, cum, k, row, n, x[i])
    return out


@njit
def _empirical_residual_many(values, cum, meta, params, k, t, u, age):
    out = np.empty(u.size)
    for i in range(u.size):
        row, n, _ = _slot(meta, params, k, t[i])
        out[i] = cd.empirical_residual(values, cum, k, row, n, u[i], age[i])
    return out


def _family(d):
    """Family code and (a, b) as ``pack`` stores them."""
    p = d.params()
    return cd.FAMILY_CODES[d.family], float(p[0]), float(p[1]) if p.size > 1 else 0.0


# --- ndtri ---------------------------------------------------------------------------------
def test_ndtri_matches_scipy_within_acklams_error():
    p = np.concatenate(
        [
            np.logspace(-300, -1, 3000),
            np.linspace(0.001, 0.999, 9981),
            1 - np.logspace(-16, -1, 1500),
        ]
    )
    x, ref = _ndtri_many(p), special.ndtri(p)
    err = np.abs(x - ref)
    # Acklam's bound is relative (1.15e-9): 1e-8 absolute out to |x| = 8 (p ~ 1e-15),
    # beyond that the relative bound (at p = 1e-300, |x| = 37: 4e-8 absolute).
    assert np.all(err[np.abs(ref) <= 8] < 1e-8)
    assert np.all(err <= 1.2e-9 * np.abs(ref) + 1e-15)
    assert _ndtri_many(np.array([0.0, 1.0])).tolist() == [-np.inf, np.inf]


def test_ndtri_is_nondecreasing():
    # A fine grid, and the two joins of Acklam's central and tail pieces ulp by ulp.
    around = [c + np.arange(-20000, 20000) * np.spacing(c) for c in (0.02425, 1 - 0.02425)]
    for p in [
        np.linspace(1e-9, 1 - 1e-9, 2_000_001),
        np.logspace(-300, -2, 100_000),
        1 - np.logspace(-16, -2, 100_000)[::-1],
        *around,
    ]:
        assert np.all(np.diff(_ndtri_many(p)) >= -1e-8)


# --- incomplete gamma ------------------------------------------------------------------------
SHAPES = [0.2, 0.5, 1.0, 2.5, 10.0, 100.0, 1000.0, 1e4]


@pytest.mark.parametrize("a", SHAPES)
def test_gammaincc_matches_scipy(a):
    x = np.concatenate(
        [
            [0.0, 1e-300, 1e-10],
            a * np.array([1e-3, 0.01, 0.1, 0.5, 0.9, 1, 1.1, 2, 5, 10, 30]),
            a + np.sqrt(a) * np.linspace(-5, 40, 91),
        ]
    )
    x = x[x >= 0]
    got, ref = _gammaincc_many(np.full(x.size, a), x), special.gammaincc(a, x)
    # 1e-12 relative, except that the front factor exp(a log x - x - lgamma a) is rounded
    # from terms of size a log x (~2e5 at a = 1e4): that floor is a few eps times their
    # sum (2.7e-11 relative at a = 1e4, 1.3e-12 at 1000; below 1e-12 for a <= 100).
    with np.errstate(divide="ignore"):
        terms = a * np.abs(np.log(x)) + x + abs(math.lgamma(a))
    tol = np.maximum(1e-12, 2 * EPS * np.where(np.isfinite(terms), terms, 0.0))
    ok = (np.abs(got - ref) <= tol * ref) | (np.abs(got - ref) < 1e-14)
    assert ok.all(), list(zip(x[~ok], got[~ok], ref[~ok]))
    assert got[0] == 1.0


@pytest.mark.parametrize("a", SHAPES)
def test_gamma_isf_inverts_gammaincc_and_matches_scipy(a):
    q = np.array([1e-50, 1e-20, 1e-10, 1e-5, 0.01, 0.1, 0.5, 0.9, 0.99, 1 - 1e-6])
    x = _gamma_isf_many(np.full(q.size, a), q)
    back = _gammaincc_many(np.full(q.size, a), x)
    np.testing.assert_allclose(back, q, rtol=1e-10, atol=0)
    np.testing.assert_allclose(x, special.gammainccinv(a, q), rtol=1e-9, atol=0)
    assert cd.gamma_isf(a, 1.0) == 0.0 and cd.gamma_isf(a, 0.0) == np.inf


@PROPERTY
@given(log_a=st.floats(math.log(0.2), math.log(1e4)), log10_q=st.floats(-50.0, -1e-6))
def test_gamma_isf_inverts_gammaincc_property(log_a, log10_q):
    a, q = math.exp(log_a), 10.0**log10_q
    x = cd.gamma_isf(a, q)
    assert abs(cd.gammaincc(a, x) - q) <= 1e-10 * q


@pytest.mark.parametrize("a", [0.5, 2.5, 30.0, 100.0, 1000.0])
def test_gamma_isf_converges_in_the_far_tail(a):
    # residual clips q at 1e-300, so gamma_isf is asked for tails this far out.
    q = np.array([1e-100, 1e-200, 1e-300])
    x = _gamma_isf_many(np.full(q.size, a), q)
    np.testing.assert_allclose(x, special.gammainccinv(a, q), rtol=1e-9)


# --- parametric families -------------------------------------------------------------------
DISTS = [
    LogNormal(12.0, 0.8),
    LogNormal(3.0, 2.5),
    Gamma(2.5, 6.0),
    Gamma(0.3, 2.0),
    Gamma(200.0, 0.1),
    Weibull(1.4, 20.0),
    Weibull(0.5, 3.0),
    Exponential(9.0),
]
U_TAILS = np.concatenate(
    [np.logspace(-10, -1, 19), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-10, -1, 19)]
)


def _u_grid(d):
    # Gamma's quantile inverts Q at 1 - u, which rounds: at u = 1e-10 that is a 1e-6
    # relative error in u, ~1e-6/shape in the quantile. Its isf near q = 1 is as badly
    # conditioned. So gamma's grid stops 1e-6 from the end where the rounding happens.
    return U_TAILS[U_TAILS >= 1e-6] if isinstance(d, Gamma) else U_TAILS


@pytest.mark.parametrize("d", DISTS + [Fixed(3.0)], ids=repr)
def test_quantile_sf_isf_match_the_scipy_backed_class(d):
    fam, a, b = _family(d)
    u = _u_grid(d)
    np.testing.assert_allclose(_quantile_many(fam, a, b, u), d.quantile(u), rtol=1e-7, atol=0)
    q = 1 - u[::-1]
    np.testing.assert_allclose(_isf_many(fam, a, b, q), d.isf(q), rtol=1e-7, atol=0)
    x = np.concatenate([[-1.0, 0.0], np.atleast_1d(d.quantile(U_TAILS)), [2.9, 3.0, 3.1]])
    np.testing.assert_allclose(_sf_many(fam, a, b, x), d.sf(x), rtol=1e-7, atol=1e-300)


RESIDUAL_U = np.random.default_rng(3).random(2000)


@pytest.mark.parametrize(
    "d", [d for d in DISTS if not isinstance(d, Gamma)] + [Fixed(3.0)], ids=repr
)
def test_residual_matches_distribution_residual(d):
    fam, a, b = _family(d)
    ages = np.concatenate([[0.0, 2.9, 3.0], np.atleast_1d(d.isf([0.7, 0.3, 1e-3, 1e-9, 1e-200]))])
    h = np.uint64(7)
    for age in ages:
        survival = cd.sf(fam, a, b, age)
        got, tries, h_after = _residual_many(fam, a, b, RESIDUAL_U, age, survival, h)
        ref = d.residual(RESIDUAL_U, np.full(RESIDUAL_U.size, age))
        # Relative to the inverted time (residual + age), the quantity computed: in the
        # tail the residual is a small difference of it.
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7 * (ref.max() + age) + 1e-300)
        assert h_after == h and np.all(tries == 0)


@pytest.mark.parametrize("d", DISTS + [Fixed(3.0)], ids=repr)
def test_residual_is_zero_without_survival(d):
    fam, a, b = _family(d)
    assert cd.residual(fam, a, b, 0.5, 1e9, 0.0, np.uint64(1))[::2] == (0.0, 0)


@pytest.mark.parametrize(
    "d", [d for d in DISTS if not isinstance(d, Gamma)] + [Fixed(3.0)], ids=repr
)
def test_draw_is_the_quantile_except_for_gamma(d):
    fam, a, b = _family(d)
    x, h = _draw_many(fam, a, b, U_TAILS, np.uint64(5))
    assert x.tolist() == _quantile_many(fam, a, b, U_TAILS).tolist()
    assert h == np.uint64(5)


N_GAMMA = 100_000


@pytest.mark.parametrize("d", [d for d in DISTS if isinstance(d, Gamma)], ids=repr)
def test_gamma_draw_follows_gamma_and_keeps_rank_under_scaling(d):
    fam, a, b = _family(d)
    u = np.zeros(N_GAMMA)  # gamma ignores the uniform
    x, h = _draw_many(fam, a, b, u, np.uint64(11))
    assert h != np.uint64(11)
    assert stats.kstest(x, d.cdf).pvalue > 0.001
    assert abs(x.mean() - d.mean) < K * math.sqrt(a) * b / math.sqrt(N_GAMMA)
    # Same stream, doubled scale: every draw doubles (a scale lever keeps ranks).
    x2, _ = _draw_many(fam, a, 2 * b, u, np.uint64(11))
    np.testing.assert_allclose(x2, 2 * x, rtol=1e-15)


@pytest.mark.parametrize("d", [d for d in DISTS if isinstance(d, Gamma)], ids=repr)
@pytest.mark.parametrize("p_age", [0.2, 0.6, 0.9, 0.999])  # survival 0.8 and 0.4 by
def test_gamma_residual_has_the_conditional_law(d, p_age):  # rejection; 0.1, 1e-3 by isf
    fam, a, b = _family(d)
    age = float(d.quantile(p_age))
    survival = cd.sf(fam, a, b, age)
    u = np.random.default_rng(13).random(N_GAMMA)
    r, tries, _ = _residual_many(fam, a, b, u, age, survival, np.uint64(17))
    assert r.min() > 0.0
    # T - age given T > age: P(R <= r) = 1 - sf(age + r) / sf(age).
    sf_age = d.sf(age)
    assert stats.kstest(r, lambda t: 1 - d.sf(age + t) / sf_age).pvalue > 0.001
    if survival >= 0.25:
        # Rejection: proposals until one passes age, geometric with success p = survival
        # (mean 1/p, variance (1-p)/p^2).
        p = survival
        assert tries.min() >= 1
        assert abs(tries.mean() - 1 / p) < K * math.sqrt((1 - p) / p**2 / N_GAMMA)
    else:
        # Inverse CDF on the survival function, as Gamma.residual.
        assert np.all(tries == 0)
        np.testing.assert_allclose(r + age, d.residual(u, np.full(N_GAMMA, age)) + age, rtol=1e-9)


def test_gamma_residual_far_beyond_the_mode_matches_distribution_residual():
    d = Gamma(100.0, 1.0)
    fam, a, b = _family(d)
    u = RESIDUAL_U[:200]
    for log10_s in (-150, -200):
        age = float(d.isf(10.0**log10_s))
        got, _, _ = _residual_many(fam, a, b, u, age, cd.sf(fam, a, b, age), np.uint64(1))
        # On the inverted time (residual + age): the residual itself is a small difference.
        np.testing.assert_allclose(got + age, d.residual(u, np.full(u.size, age)) + age, rtol=1e-9)


# --- empirical tables ------------------------------------------------------------------------
VALUES = (1.0, 2.0, 5.0, 10.0, 30.0)
WEIGHTS = (3.0, 1.0, 0.5, 2.0, 1.0)
UNSORTED = (2, 4, 0, 3, 1)  # a permutation of the positions above
U_EMP = np.random.default_rng(21).random(5000)
X_EMP = np.array([-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 4.0, 5.0, 9.99, 10.0, 20.0, 30.0, 31.0])


def _permuted(values, weights, order):
    return tuple(values[i] for i in order), tuple(weights[i] for i in order)


def _shared_slot(e, n_trials=3):
    """``e`` packed as slot 1, behind a parametric slot, for ``n_trials`` trials."""
    return cd.pack([DistArray(LogNormal(12.0, 0.8)), DistArray(e)], n_trials)


def _at(packed, fn, k, t, *arrays):
    return fn(
        packed.values,
        packed.cum,
        packed.meta,
        packed.params,
        k,
        np.full(arrays[0].size, t, dtype=np.int64),
        *arrays,
    )


@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_empirical_with_sorted_values_matches_empirical(jitter):
    e = Empirical(VALUES, WEIGHTS, jitter)
    p = _shared_slot(e)
    for t in range(3):  # shared: every trial reads the same row
        np.testing.assert_allclose(
            _at(p, _empirical_quantile_many, 1, t, U_EMP), e.from_uniform(U_EMP), rtol=0, atol=1e-9
        )
        np.testing.assert_allclose(
            _at(p, _empirical_sf_many, 1, t, X_EMP), e.sf(X_EMP), rtol=0, atol=1e-12
        )
        u = U_EMP[:1000]  # Empirical.residual loops in Python
        for age in X_EMP:
            ages = np.full(u.size, age)
            np.testing.assert_array_equal(
                _at(p, _empirical_residual_many, 1, t, u, ages), e.residual(u, ages)
            )


@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_empirical_with_unsorted_values_has_the_same_law(jitter):
    values, weights = _permuted(VALUES, WEIGHTS, UNSORTED)
    sorted_e = Empirical(VALUES, WEIGHTS, jitter)
    p, ref = _shared_slot(Empirical(values, weights, jitter)), _shared_slot(sorted_e)
    # Empirical sorts the values: the table is that of the sorted distribution, exactly.
    assert p.values.tolist() == ref.values.tolist()
    np.testing.assert_allclose(p.cum, ref.cum, rtol=0, atol=1e-15)
    # And its law is the distribution's: a fine grid of uniforms lands on each value in
    # proportion to its weight (up to the grid's resolution).
    m = 100_000
    x = _at(p, _empirical_quantile_many, 1, 0, (np.arange(m) + 0.5) / m)
    if jitter == 0:
        freq = np.array([np.mean(x == v) for v in values])
        np.testing.assert_allclose(freq, np.asarray(weights) / sum(weights), atol=2 / m)
    np.testing.assert_allclose(
        _at(p, _empirical_quantile_many, 1, 0, U_EMP),
        sorted_e.from_uniform(U_EMP),
        rtol=0,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        _at(p, _empirical_sf_many, 1, 0, X_EMP), sorted_e.sf(X_EMP), rtol=0, atol=1e-12
    )
    # DistArray.sf with per-trial weights (aligned with the template's values, which
    # Empirical keeps in ascending order) agrees.
    e = Empirical(values, weights, jitter)
    unsorted_w = DistArray(e, None, np.asarray(e.weights)[None, :] / sum(weights))
    np.testing.assert_allclose(
        _at(p, _empirical_sf_many, 1, 0, X_EMP),
        unsorted_w.sf(X_EMP, np.zeros(X_EMP.size, dtype=int)),
        rtol=0,
        atol=1e-12,
    )


def test_empirical_sf_with_unsorted_values_matches_empirical_sf():
    e = Empirical(*_permuted(VALUES, WEIGHTS, UNSORTED))
    np.testing.assert_allclose(
        _at(_shared_slot(e), _empirical_sf_many, 1, 0, X_EMP), e.sf(X_EMP), rtol=0, atol=1e-12
    )


N_TRIALS = 20


@pytest.mark.parametrize("jitter", [0.0, 0.5])
@pytest.mark.parametrize("order", [(0, 1, 2, 3, 4), UNSORTED], ids=["sorted", "unsorted"])
def test_empirical_with_per_trial_weights_matches_dist_array(jitter, order):
    values, weights = _permuted(VALUES, WEIGHTS, order)
    d = draw_dist(Fitted(Empirical(values, weights, jitter)), N_TRIALS, np.random.default_rng(31))
    assert d.weights.shape == (N_TRIALS, len(VALUES))
    # Slot 2, behind a shared empirical slot: the per-trial rows start after its row.
    p = cd.pack(
        [DistArray(Weibull(1.4, 20.0)), DistArray(Empirical((4.0, 8.0), (1.0, 1.0))), d], N_TRIALS
    )
    assert p.meta[2].tolist() == [2, 1, len(VALUES)]
    # The reference: the same per-trial law with the values given sorted (Empirical sorts
    # them, so the draws' weights follow the ascending values either way).
    ref = DistArray(Empirical(VALUES, WEIGHTS, jitter), None, d.weights)
    n = U_EMP.size
    for t in range(N_TRIALS):
        ti = np.full(n, t)
        np.testing.assert_allclose(
            _at(p, _empirical_quantile_many, 2, t, U_EMP),
            ref.from_uniform(U_EMP, ti),
            rtol=0,
            atol=1e-9,
        )
        np.testing.assert_allclose(
            _at(p, _empirical_sf_many, 2, t, X_EMP),
            d.sf(X_EMP, np.full(X_EMP.size, t)),
            rtol=0,
            atol=1e-12,
        )
        for age in (0.0, 1.5, 5.0, 10.0, 30.0):
            ages = np.full(n, age)
            np.testing.assert_array_equal(
                _at(p, _empirical_residual_many, 2, t, U_EMP, ages), ref.residual(U_EMP, ages, ti)
            )


@PROPERTY
@given(
    table=st.lists(
        st.tuples(st.integers(0, 40).map(float), st.floats(0.01, 100.0)), min_size=1, max_size=12
    ),
    jitter=st.sampled_from([0.0, 0.5, 3.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_empirical_tables_match_empirical_property(table, jitter, seed):
    # Any table, ties and all: the compiled draws equal those of the stably sorted
    # distribution (the same law as the table's).
    values, weights = zip(*table)
    order = np.argsort(values, kind="stable")
    e = Empirical(*_permuted(values, weights, order), jitter)
    p = _shared_slot(Empirical(values, weights, jitter), n_trials=1)
    u = np.random.default_rng(seed).random(200)
    np.testing.assert_allclose(
        _at(p, _empirical_quantile_many, 1, 0, u), e.from_uniform(u), rtol=0, atol=1e-9
    )
    x = np.concatenate([np.asarray(values), np.asarray(values) + 0.5, [-1.0]])
    np.testing.assert_allclose(_at(p, _empirical_sf_many, 1, 0, x), e.sf(x), rtol=0, atol=1e-12)
    ages = np.resize(x, u.size)  # every value, just above each, and below all
    np.testing.assert_array_equal(
        _at(p, _empirical_residual_many, 1, 0, u, ages), e.residual(u, ages)
    )


# --- pack ------------------------------------------------------------------------------------
def test_pack_lays_out_slots():
    n = 4
    gamma_params = np.array([[2.0, 5.0], [2.5, 6.0], [3.0, 7.0], [3.5, 8.0]])
    weights = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8]])
    dists = [
        DistArray(LogNormal(12.0, 0.8)),
        DistArray(Gamma(2.5, 6.0), gamma_params),
        DistArray(Weibull(1.4, 20.0)),
        DistArray(Exponential(9.0)),
        DistArray(Fixed(3.0)),
        DistArray(Empirical((5.0, 1.0), (1.0, 3.0), 0.5)),
        DistArray(Empirical((3.0, 1.0, 2.0), (1.0, 1.0, 1.0)), None, weights),
    ]
    p = cd.pack(dists, n)
    assert p.family.tolist() == [
        cd.LOGNORMAL,
        cd.GAMMA,
        cd.WEIBULL,
        cd.EXPONENTIAL,
        cd.FIXED,
        cd.EMPIRICAL,
        cd.EMPIRICAL,
    ]
    assert p.shared.tolist() == [True, False, True, True, True, True, False]
    assert p.params.shape == (7, n, 2)
    # Shared parameters are repeated for every trial; per-trial ones kept row by row.
    for k, row in [
        (0, [12.0, 0.8]),
        (2, [1.4, 20.0]),
        (3, [9.0, 0.0]),
        (4, [3.0, 0.0]),
        (5, [0.5, 0.0]),
        (6, [0.0, 0.0]),
    ]:
        assert p.params[k].tolist() == [row] * n
    assert p.params[1].tolist() == gamma_params.tolist()
    # Values ascending, padded with inf to the widest table.
    assert p.values.shape == (7, 3)
    assert p.values[5].tolist() == [1.0, 5.0, np.inf]
    assert p.values[6].tolist() == [1.0, 2.0, 3.0]
    assert np.all(np.isinf(p.values[:5]))
    # Row 0 is padding; slot 5 shares row 1; slot 6 has a row per trial from row 2.
    assert p.meta.tolist() == [[0, 0, 0]] * 5 + [[1, 0, 2], [2, 1, 3]]
    assert p.cum.shape == (2 + n, 3)
    np.testing.assert_allclose(p.cum[1], [0.75, 1.0, 1.0])
    # Per-trial weights follow the template's values, which Empirical keeps ascending.
    np.testing.assert_allclose(p.cum[2:], np.cumsum(weights, axis=1))
    assert np.all(p.cum[:, -1] == 1.0)
