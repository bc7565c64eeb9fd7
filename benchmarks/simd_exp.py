"""How fast an ``exp`` that the compiler can vectorise runs over an array, against libm's.

The trial loop calls libm's ``exp`` and ``log`` one deal at a time (benchmarks/README.md:
29% of its time on an AVX-512 Xeon). LLVM does not vectorise a loop that calls them (numba
would need an SVML-patched LLVM, which the PyPI wheels are not), but it does vectorise one
written in arithmetic only: Cody–Waite range reduction, a polynomial, and the power of two
set in the exponent bits. This measures that ``exp`` against libm's over the same array,
and its error: what batching the engine's maths could gain at best.

    python benchmarks/simd_exp.py [--n 65536] [--repeats 200]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
INV_LN2 = 1.4426950408889634
SHIFT = 6755399441055744.0  # 1.5 · 2^52: adding it rounds to an integer in the low bits
SHIFT_BITS = np.int64(0x4338000000000000)


@intrinsic
def _bits(typingctx, x):
    """The float64's bits as an int64 (a bitcast, which vectorises)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, x):
    """The int64's bits as a float64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(inline="always")
def branchless_exp(x):
    """e^x for x in [-708, 709], with no branch and no call. Outside that range it returns
    the value at the nearer end (not 0 or inf): 2^k stays a normal number."""
    x = min(max(x, -708.0), 709.0)
    shifted = x * INV_LN2 + SHIFT
    k = shifted - SHIFT  # round(x / ln 2)
    r = x - k * LN2_HI - k * LN2_LO  # |r| ≤ ln(2) / 2
    p = 1.0 + r * (
        1.0
        + r
        * (
            1 / 2
            + r
            * (
                1 / 6
                + r
                * (
                    1 / 24
                    + r
                    * (
                        1 / 120
                        + r
                        * (
                            1 / 720
                            + r
                            * (
                                1 / 5040
                                + r
                                * (
                                    1 / 40320
                                    + r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800)))
                                )
                            )
                        )
                    )
                )
            )
        )
    )
    two_k = (_bits(shifted) - SHIFT_BITS + np.int64(1023)) << np.int64(52)
    return p * _from_bits(two_k)


@njit
def libm_loop(x, out):
    for i in range(x.size):
        out[i] = math.exp(x[i])


@njit
def branchless_loop(x, out):
    for i in range(x.size):
        out[i] = branchless_exp(x[i])


def _ns_per_value(loop, x, out, repeats):
    loop(x, out)  # compile
    t = time.perf_counter()
    for _ in range(repeats):
        loop(x, out)
    return (time.perf_counter() - t) / repeats / x.size * 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 16)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    # The range of the engine's exponents: σ·z for log-normal sizes and durations.
    x = np.random.default_rng(0).uniform(-30.0, 30.0, args.n)
    exact, fast = np.empty_like(x), np.empty_like(x)
    libm = _ns_per_value(libm_loop, x, exact, args.repeats)
    branchless = _ns_per_value(branchless_loop, x, fast, args.repeats)
    error = float(np.max(np.abs(fast / exact - 1.0)))
    print(f"libm exp:       {libm:.2f} ns per value")
    print(
        f"branchless exp: {branchless:.2f} ns per value ({libm / branchless:.1f}× faster; "
        f"max relative error {error:.1e})"
    )


if __name__ == "__main__":
    main()
