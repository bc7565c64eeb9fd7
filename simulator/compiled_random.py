"""Random streams and samplers for the vectorised engine's compiled trial loop.

A NumPy ``Generator`` costs about 10 µs to create, so one per deal is out of reach, and one
per trial makes a trial's deals share a stream (a lever that adds a deal shifts every later
deal's numbers). The compiled loop instead derives a small stream for every seat and every
deal from a per-trial key that ``SeedSequence`` generated (``engine_vector.trial_keys``):

- A stream is a SplitMix64 sequence (Steele, Lea & Flood 2014; the generator behind Java's
  ``SplittableRandom``, which passes TestU01's BigCrush): its state is one 64-bit word, the
  next number is ``mix64(state += GOLDEN)``. Seeding it costs a hash, nothing else.
- ``substream(key, i, j)`` is the state of stream ``(i, j)`` of a key: a hash of the
  128-bit key and the two indices. Streams of different ``(i, j)`` are as unrelated as
  hash outputs; they could only overlap if two states landed within a few hundred steps
  of each other in a 2^64 cycle.

Samplers take a stream's state and return the value and the new state: plain scalars, which
compiled code passes for free (a function taking arrays pays reference counting on every
call). They follow the textbook methods: uniforms from the top 53 bits,
normals by the ziggurat (Marsaglia & Tsang 2000, 256 layers), gammas by Marsaglia & Tsang
(2000; shape < 1 by the ``Gamma(a + 1)·U^(1/a)`` boost), Poisson by multiplication below a
mean of 10 and by Hörmann's PTRS (1993) above. tests/test_compiled_random.py checks
SplitMix64 against its reference outputs and every sampler's law.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit

# What the compiled loop counts of its draws, by kind (``engine_vector``: the RNG floor).
COUNT_UNIFORM, COUNT_GAMMA, COUNT_GAMMA_SHAPE, COUNT_POISSON, COUNT_POISSON_MEAN = range(5)
N_COUNTS = 5

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@njit(inline="always")
def mix64(z):
    """SplitMix64's output function: a bijective 64-bit hash."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def substream(key0, key1, i, j):
    """The state of stream ``(i, j)`` (integers ≥ 0) of the key ``(key0, key1)``."""
    return group_member(stream_group(key0, key1, i), j)


@njit(inline="always")
def stream_group(key0, key1, i):
    """What the streams ``(i, ·)`` of a key share: ``substream(key0, key1, i, j)`` is
    ``group_member(stream_group(key0, key1, i), j)``: a loop over ``j`` hashes the key once."""
    return mix64(mix64(key0 + GOLDEN * np.uint64(i + 1)) ^ key1)


@njit(inline="always")
def group_member(group, j):
    """Stream ``j`` of a ``stream_group``."""
    return mix64(group + GOLDEN * np.uint64(j + 1))


@njit(inline="always")
def uniform(state):
    """A uniform on [0, 1) with 53 random bits, and the new state."""
    state += GOLDEN
    return float(mix64(state) >> _S11) * _TO_UNIT, state


@njit(inline="always")
def uniform_at(h, pos):
    """The uniform that ``pos`` (0-based) calls of ``uniform`` from state ``h`` would reach:
    SplitMix64 can jump, so a deal reads its fixed draws in any order."""
    return float(mix64(h + GOLDEN * np.uint64(pos + 1)) >> _S11) * _TO_UNIT


@njit(inline="always")
def skip(h, n):
    """State ``h`` after ``n`` draws."""
    return h + GOLDEN * np.uint64(n)


# --- normals: the ziggurat ------------------------------------------------------------------------
ZIGGURAT_R = 3.6541528853610088  # start of the base layer's tail
_ZIGGURAT_V = 0.00492867323399  # area of each of the 256 layers


def _ziggurat_tables():
    """Layer tables of Marsaglia & Tsang's ziggurat for 52-bit uniforms: ``k[i]`` the
    integer acceptance bound, ``w[i]`` the scale, ``f[i]`` the density at the layer edge."""
    m = 2.0**52
    k, w, f = np.zeros(256, dtype=np.uint64), np.zeros(256), np.zeros(256)
    dn = tn = ZIGGURAT_R
    q = _ZIGGURAT_V / math.exp(-0.5 * dn * dn)
    k[0], k[1] = int(dn / q * m), 0
    w[0], w[255] = q / m, dn / m
    f[0], f[255] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIGGURAT_V / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = int(dn / tn * m)
        tn = dn
        f[i], w[i] = math.exp(-0.5 * dn * dn), dn / m
    return k, w, f


_ZK, _ZW, _ZF = _ziggurat_tables()
_LOW8, _LOW1 = np.uint64(0xFF), np.uint64(1)
_MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
_S1, _S8 = np.uint64(1), np.uint64(8)


# normal and standard_gamma are calls, not inlined by numba (inline="always" copies a
# function's IR into every call site: with these and the quantiles inlined, compiling took
# twice as long; a call costs the gamma families a little, benchmarks/README.md).
@njit
def normal(state):
    """A standard normal (ziggurat), and the new state."""
    while True:
        state += GOLDEN
        r = mix64(state)
        layer = r & _LOW8
        r >>= _S8
        negative = (r & _LOW1) != 0
        rabs = (r >> _S1) & _MANTISSA
        x = float(rabs) * _ZW[layer]
        if negative:
            x = -x
        if rabs < _ZK[layer]:
            return x, state  # inside the layer's rectangle: ~99% of draws
        if layer == 0:
            # The tail beyond R (Marsaglia 1964).
            while True:
                u1, state = uniform(state)
                u2, state = uniform(state)
                xx, yy = -math.log1p(-u1) / ZIGGURAT_R, -math.log1p(-u2)
                if yy + yy > xx * xx:
                    return (-(ZIGGURAT_R + xx) if negative else ZIGGURAT_R + xx), state
        u, state = uniform(state)
        if (_ZF[layer - 1] - _ZF[layer]) * u + _ZF[layer] < math.exp(-0.5 * x * x):
            return x, state


@njit
def standard_gamma(state, shape):
    """Gamma(shape, scale 1) (Marsaglia & Tsang's squeeze method), and the new state."""
    if not shape > 0.0:
        return 0.0, state
    boost = 1.0
    if shape < 1.0:
        # Gamma(a) = Gamma(a + 1) · U^(1/a).
        u, state = uniform(state)
        boost = math.exp(math.log1p(-u) / shape)
        shape += 1.0
    b = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * b)
    while True:
        x, state = normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, state = uniform(state)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + b * (1.0 - v + math.log(v)):
            return b * v * boost, state


@njit
def poisson(state, lam):
    """Poisson(lam) (multiplication of uniforms below a mean of 10, PTRS above), and the
    new state."""
    if not lam > 0.0:
        return 0, state
    if lam < 10.0:
        limit = math.exp(-lam)
        k = 0
        prod, state = uniform(state)
        while prod > limit:
            k += 1
            u, state = uniform(state)
            prod *= u
        return k, state
    # Hörmann (1993), transformed rejection with squeeze.
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u, state = uniform(state)
        v, state = uniform(state)
        u -= 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k), state
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(
            a / (us * us) + b
        ) <= -lam + k * loglam - math.lgamma(k + 1.0):
            return int(k), state


# --- counts by their quantile at one uniform (common random numbers) ------------------------------
@njit
def poisson_quantile(u, lam):
    """Smallest ``k`` with P(Poisson(lam) ≤ k) ≥ u, by sequential search (one uniform per
    count whatever the mean: common random numbers, docs/model.md §0)."""
    if lam > 30.0:
        # Summing the terms directly loses precision for large means (exp(-lam) is tiny):
        # sum them in log space, up to 40 standard deviations past the mean.
        log_lam, log_p = math.log(lam), -lam
        cum, k = math.exp(log_p), 0
        limit = lam + 40.0 * math.sqrt(lam) + 100.0
        while cum < u and k < limit:
            k += 1
            log_p += log_lam - math.log(k)
            cum += math.exp(log_p)
        return k
    prob = math.exp(-lam)
    cum = prob
    k = 0
    while u > cum and prob > 0.0:  # prob underflowing: the tail is below precision
        k += 1
        prob *= lam / k
        cum += prob
    return k


@njit
def negbin_quantile(u, log_p0, ratio, size):
    """Smallest ``k`` with P(K ≤ k) ≥ u for K ~ NegBin(size, mean m), given
    ``log_p0 = log P(K = 0) = size · log(size / (size + m))`` and ``ratio = m / (size + m)``:
    P(k + 1) = P(k) · (size + k) / (k + 1) · ratio."""
    if log_p0 > -700.0:  # exp underflows below about -745
        prob = math.exp(log_p0)
        cum = prob
        k = 0
        while u > cum and prob > 0.0:
            prob *= (size + k) / (k + 1) * ratio
            k += 1
            cum += prob
        return k
    # P(0) underflows (a large mean): sum the terms in log space.
    mean = size * ratio / (1.0 - ratio)
    limit = mean + 40.0 * math.sqrt(mean / (1.0 - ratio)) + 100.0
    log_p, log_ratio = log_p0, math.log(ratio)
    cum, k = 0.0, 0
    while cum < u and k < limit:
        log_p += math.log((size + k) / (k + 1)) + log_ratio
        k += 1
        cum += math.exp(log_p)
    return k
