"""Each deal row's choices, compiled with numba: its segment and, stage by stage, whether it
advances, is lost or stalls (docs/model.md §4–5), with the uniform each draw is made at.

One uniform per choice: ``U`` picks a branch and, split within it (``split_uniform``), is
the uniform of the inverse-CDF draw made there (a size, a duration). The inverse CDFs need
scipy's special functions, so ``engine_vector`` applies them afterwards, one vectorised
call per (stage, branch) and per segment; this loop is the per-row branching that NumPy
does slowly (a pass of masks and gathers per stage).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .day_loop import LOST, STALL, WON

ADVANCE, LOSE, NONE = 0, 1, -1      # a row's branch in a stage
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


@njit(cache=True)
def _split(u, lo, width):
    v = (u - lo) / width
    return min(max(v, 0.0), _BELOW_ONE)


@njit(cache=True)
def choose(uniforms, first, trial, conversion, stall, segment_cum):
    """The choices of every row ``j`` (a column of ``uniforms``: row 0 the segment's uniform,
    row ``1 + s`` stage ``s``'s) for a deal entering stage ``first[j]`` in trial ``trial[j]``
    (``conversion``, ``stall``: (trials, S); ``segment_cum``: normalised cumulative segment
    shares, (trials, G)).

    Returns ``steps`` (stages it leaves), ``end`` (WON, LOST or STALL), ``branch`` (S, rows):
    ADVANCE, LOSE or NONE per stage, ``at`` (S, rows): the uniform of that stage's duration,
    ``segment`` and ``size_at``: the segment and the uniform of the amount.
    """
    n_stages, n = conversion.shape[1], uniforms.shape[1]
    n_segments = segment_cum.shape[1]
    steps = np.zeros(n, dtype=np.int64)
    end = np.full(n, WON, dtype=np.int8)
    branch = np.full((n_stages, n), NONE, dtype=np.int8)
    at = np.zeros((n_stages, n))
    segment = np.zeros(n, dtype=np.int64)
    size_at = np.zeros(n)
    for j in range(n):
        t = trial[j]
        u = uniforms[0, j]
        g = 0
        while g < n_segments - 1 and u > segment_cum[t, g]:
            g += 1
        lo = segment_cum[t, g - 1] if g > 0 else 0.0
        segment[j] = g
        size_at[j] = _split(u, lo, segment_cum[t, g] - lo)
        for s in range(first[j], n_stages):
            u = uniforms[1 + s, j]
            p, pi = conversion[t, s], stall[t, s]
            if u < p:
                branch[s, j] = ADVANCE
                at[s, j] = _split(u, 0.0, p)
                steps[j] += 1
            elif u < 1.0 - pi:
                branch[s, j] = LOSE
                at[s, j] = _split(u, p, 1.0 - pi - p)
                steps[j] += 1
                end[j] = LOST
                break
            else:
                end[j] = STALL
                break
    return steps, end, branch, at, segment, size_at
