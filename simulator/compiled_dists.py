"""Distributions for the vectorised engine's compiled trial loop.

``pack`` turns per-trial distributions (``vector_params.DistArray``, one per *slot*: a
stage's advance or lost duration, a segment's size, the lag) into plain arrays, from which
the trial loop reads slot ``k`` of trial ``t``: a family code and two parameters, or (an
empirical slot) a table. The compiled functions below are the maths of
``simulator.distributions`` (which wraps scipy) rewritten for compiled code, and
tests/test_compiled_dists.py holds the two together:

- ``quantile`` (inverse CDF at a uniform), ``sf``, ``isf`` and ``residual`` (the time left
  given survival to an age) for the parametric families, taking scalars (compiled
  functions that take arrays pay reference counting on every call); ``empirical_*`` for
  tables;
- ``draw``: the inverse CDF at a uniform, except for gamma, whose inverse CDF is slow:
  gamma values are drawn (``Gamma(shape) × scale``, so a scale lever keeps every draw's
  rank), and a gamma residual is drawn by rejection while survival is likely.

The normal quantile is Acklam's rational approximation (relative error < 1.2e-9, far
below any Monte Carlo error here); the incomplete gamma function is the usual series and
continued fraction.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .compiled_random import standard_gamma
from .distributions import Empirical
from .jit import njit

LOGNORMAL, GAMMA, WEIBULL, EXPONENTIAL, FIXED, EMPIRICAL = range(6)
FAMILY_CODES = {
    "lognormal": LOGNORMAL,
    "gamma": GAMMA,
    "weibull": WEIBULL,
    "exponential": EXPONENTIAL,
    "fixed": FIXED,
    "empirical": EMPIRICAL,
}
GAMMA_TRIES = 64  # rejection proposals for a gamma residual before the inverse CDF
GAMMA_REJECT_FROM = 0.25  # ... tried while P(T > age) ≥ this: at most 4 proposals expected


class Packed(NamedTuple):
    """Distribution slots as arrays (a tuple, so compiled code takes it as one argument).

    ``family[k]``; ``params[k, t]``: (median, sigma) lognormal, (shape, scale) gamma and
    Weibull, (scale, -) exponential, (value, -) fixed, (jitter, -) empirical. Empirical
    slots: ``values[k, :n]`` ascending and cumulative probabilities ``cum[row, :n]``, where
    ``meta[k] = (first row, per-trial rows?, n)`` and trial ``t`` reads row ``first + t``
    when rows are per trial, else ``first``. ``shared[k]``: every trial has the same
    distribution.
    """

    family: np.ndarray
    params: np.ndarray
    values: np.ndarray
    cum: np.ndarray
    meta: np.ndarray
    shared: np.ndarray


def pack(dists, n_trials: int) -> Packed:
    """``dists``: a sequence of ``DistArray`` (the slots), each for ``n_trials`` trials."""
    k = len(dists)
    family = np.array([FAMILY_CODES[d.template.family] for d in dists], dtype=np.int64)
    params = np.zeros((k, n_trials, 2))
    width = max([len(d.template.values) for d in dists if d.is_empirical] or [1])
    values = np.full((k, width), np.inf)
    meta = np.zeros((k, 3), dtype=np.int64)
    tables = [np.ones((1, width))]
    for slot, d in enumerate(dists):
        if isinstance(d.template, Empirical):
            v = np.asarray(d.template.values, dtype=float)  # Empirical keeps them ascending
            w = (
                d.weights
                if d.weights is not None
                else np.asarray(d.template.weights, dtype=float)[None, :]
            )
            c = np.cumsum(np.asarray(w, dtype=float), axis=1)
            c /= c[:, -1:]
            c[:, -1] = 1.0
            rows = np.ones((c.shape[0], width))
            rows[:, : v.size] = c
            values[slot, : v.size] = v
            meta[slot] = (sum(r.shape[0] for r in tables), d.weights is not None, v.size)
            params[slot, :, 0] = d.template.jitter
            tables.append(rows)
            continue
        p = d.params if d.params is not None else d.template.params()[None, :]
        params[slot, :, : p.shape[1]] = np.broadcast_to(p, (n_trials, p.shape[1]))
    shared = np.array([d.shared for d in dists], dtype=np.bool_)
    return Packed(family, params, values, np.concatenate(tables), meta, shared)


# --- special functions ----------------------------------------------------------------------------
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


@njit(inline="always")
def _tail(q):
    """Acklam's tail approximation at q = sqrt(-2 log p)."""
    return (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
        (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
    )


@njit(inline="always")
def ndtri(p):
    """The standard normal quantile (Acklam's approximation; ±inf at 0 and 1)."""
    if not p > 0.0:
        return -np.inf
    if not p < 1.0:
        return np.inf
    if p < _P_LOW:
        return _tail(math.sqrt(-2.0 * math.log(p)))
    if p > 1.0 - _P_LOW:
        return -_tail(math.sqrt(-2.0 * math.log1p(-p)))
    q = p - 0.5
    r = q * q
    return (
        (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
        * q
        / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)
    )


@njit
def log_gammaincc(a, x):
    """log Q(a, x), the regularised upper incomplete gamma function, without underflow."""
    if not x > 0.0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        # Series for P(a, x); Q is not small here.
        ap, term = a, 1.0 / a
        total = term
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        p = total * math.exp(log_front)
        return math.log1p(-p) if p < 1.0 else -np.inf
    # Continued fraction for Q(a, x) (modified Lentz).
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return log_front + math.log(h)


@njit
def gammaincc(a, x):
    """The regularised upper incomplete gamma function Q(a, x)."""
    return math.exp(log_gammaincc(a, x))


@njit
def gamma_isf(a, q):
    """x with Q(a, x) = q: Newton's method on log Q (whose slope stays near -1 in the far
    tail, where Q itself underflows) inside a bracket that bisection keeps."""
    if not q < 1.0:
        return 0.0
    if not q > 0.0:
        return np.inf
    log_q = math.log(q)
    z = -ndtri(q)
    x = a * (1.0 - 1.0 / (9.0 * a) + z / (3.0 * math.sqrt(a))) ** 3  # Wilson–Hilferty
    if not x > 0.0:
        x = 1e-3 * a
    lo, hi = 0.0, np.inf
    for _ in range(200):
        log_qx = log_gammaincc(a, x)
        f = log_qx - log_q
        if f > 0.0:
            lo = x
        else:
            hi = x
        if f == 0.0:
            break
        # d log Q / dx = -density / Q.
        slope = math.exp((a - 1.0) * math.log(x) - x - math.lgamma(a) - log_qx)
        step = f / slope if slope > 0.0 else 0.0
        nxt = x + step
        if not (lo < nxt < hi) or step == 0.0:
            nxt = (lo + hi) / 2.0 if np.isfinite(hi) else 2.0 * x + 1.0
        if abs(nxt - x) <= 1e-14 * x:
            x = nxt
            break
        x = nxt
    return x


# --- parametric families: scalars in, scalars out ------------------------------------------------
@njit(inline="always")
def _minus_log1m(u):
    """-log(1 - u), as log1p where 1 - u would lose digits (log is faster than log1p)."""
    return -math.log1p(-u) if u < 0.01 else -math.log(1.0 - u)


# Compiled functions that take arrays pay reference counting on every call; these take the
# family code and its two parameters. The quantile path (quantile, draw, ndtri) is inlined
# by numba: as calls, the loop ran ~7% slower; the rarer functions stay calls, which keeps
# the compile time down.
@njit(inline="always")
def quantile(fam, a, b, u):
    """The inverse CDF at the uniform ``u``."""
    if fam == LOGNORMAL:
        return a * math.exp(b * ndtri(u))
    if fam == WEIBULL:
        return b * math.exp(math.log(_minus_log1m(u)) / a)
    if fam == EXPONENTIAL:
        return a * _minus_log1m(u)
    if fam == GAMMA:
        return b * gamma_isf(a, 1.0 - u)
    return a


@njit(inline="always")
def draw(fam, a, b, u, state):
    """A value: the inverse CDF at ``u``, or (gamma) ``Gamma(shape) × scale`` drawn from
    the stream; and the stream's new state."""
    if fam == GAMMA:
        x, state = standard_gamma(state, a)
        return b * x, state
    return quantile(fam, a, b, u), state


@njit
def sf(fam, a, b, x):
    """P(T > x)."""
    if fam == FIXED:
        return 1.0 if x < a else 0.0
    if not x > 0.0:
        return 1.0
    if fam == LOGNORMAL:
        return 0.5 * math.erfc(math.log(x / a) / (b * math.sqrt(2.0)))
    if fam == WEIBULL:
        return math.exp(-((x / b) ** a))
    if fam == EXPONENTIAL:
        return math.exp(-x / a)
    return gammaincc(a, x / b)


@njit
def isf(fam, a, b, q):
    """x with P(T > x) = q."""
    if fam == LOGNORMAL:
        return a * math.exp(-b * ndtri(q))
    if fam == WEIBULL:
        return b * math.exp(math.log(-math.log(q)) / a)
    if fam == EXPONENTIAL:
        return -a * math.log(q)
    if fam == GAMMA:
        return b * gamma_isf(a, q)
    return a


@njit
def residual(fam, a, b, u, age, survival, state):
    """Time left, ``T - age`` given ``T > age`` (``survival = sf(age)``), at the uniform
    ``u`` by inverse CDF on the survival function (as ``Distribution.residual``). Gamma
    first tries rejection while survival is likely: draws until one passes ``age`` (exact
    too; its inverse CDF is slow). Returns the time, the new state and the gammas drawn."""
    tries = 0
    if not survival > 0.0:
        return 0.0, state, tries
    if fam == GAMMA and survival >= GAMMA_REJECT_FROM:
        while tries < GAMMA_TRIES:
            x, state = standard_gamma(state, a)
            tries += 1
            if b * x > age:
                return b * x - age, state, tries
    q = min(max((1.0 - u) * survival, 1e-300), 1.0)
    return max(isf(fam, a, b, q) - age, 0.0), state, tries


# --- empirical: a table per slot (and trial) ------------------------------------------------------
@njit
def _first_at_least(a, row, lo, hi, x):
    """The first ``j`` in [lo, hi) with ``a[row, j] >= x`` (``a[row]`` ascending), else hi."""
    while lo < hi:
        mid = (lo + hi) // 2
        if a[row, mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit
def _first_above(a, row, hi, x):
    """The first ``j`` in [0, hi) with ``a[row, j] > x`` (``a[row]`` ascending), else hi."""
    lo = 0
    while lo < hi:
        mid = (lo + hi) // 2
        if a[row, mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit
def empirical_quantile(values, cum, k, row, n, jitter, u):
    """The first value whose cumulative probability reaches ``u``; the jitter spreads it by
    ``u``'s position inside that value's step (as ``Empirical.from_uniform``)."""
    # np.int64: a literal 0 would compile a second version of _first_at_least.
    j = min(_first_at_least(cum, row, np.int64(0), n, u), n - 1)
    x = values[k, j]
    if jitter > 0.0:
        below = cum[row, j - 1] if j > 0 else 0.0
        step = cum[row, j] - below
        within = min(max((u - below) / step, 0.0), 1.0) if step > 0.0 else 0.0
        x = max(x + jitter * (2.0 * within - 1.0), 0.0)
    return x


@njit
def empirical_sf(values, cum, k, row, n, x):
    j = _first_above(values, k, n, x)  # values ≤ x
    return 1.0 if j == 0 else max(0.0, 1.0 - cum[row, j - 1])


@njit
def empirical_residual(values, cum, k, row, n, u, age):
    """A value above ``age`` (the table renormalised, as ``Empirical.residual``) minus age."""
    j0 = _first_above(values, k, n, age)
    if j0 == n:
        return 0.0
    before = cum[row, j0 - 1] if j0 > 0 else 0.0
    j = min(_first_at_least(cum, row, j0, n, before + u * (1.0 - before)), n - 1)
    return max(values[k, j] - age, 0.0)
