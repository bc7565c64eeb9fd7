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
def choose(rows, first, trial, conversion, stall, segment_cum, drawn, group):
    """The choices of every deal row ``j`` (a column of ``rows``: row 0 the segment's
    uniform, row ``1 + s`` stage ``s``'s, further rows drawn values) for a deal entering
    stage ``first[j]`` in trial ``trial[j]`` (``conversion``, ``stall``: (trials, S);
    ``segment_cum``: normalised cumulative segment shares, (trials, G)).

    For branch ``b`` (ADVANCE, LOSE) of stage ``s``, ``drawn[s, b]`` is the row of ``rows``
    holding its drawn duration, or -1; then ``group[s, b]`` is the list its inverse-CDF
    draw goes to. Lists ``0..G-1`` are the segments' sizes.

    Returns ``end`` (WON, LOST or STALL after the stages it leaves), ``total`` (the drawn
    durations on its path, summed) and the lists: ``count[q]`` entries of list ``q`` are
    the rows ``which[q, :count[q]]`` (ascending) and their uniforms ``at[q, :count[q]]``.
    """
    n_stages, n = conversion.shape[1], rows.shape[1]
    n_segments = segment_cum.shape[1]
    n_lists = max(n_segments, group.max() + 1)
    end = np.full(n, WON, dtype=np.int8)
    total = np.zeros(n)
    count = np.zeros(n_lists, dtype=np.int64)
    # Untouched pages of np.empty are never faulted in: lists cost what they hold.
    which = np.empty((n_lists, n), dtype=np.int64)
    at = np.empty((n_lists, n))
    for j in range(n):
        t = trial[j]
        u = rows[0, j]
        g = 0
        for k in range(n_segments - 1):
            g += u > segment_cum[t, k]
        lo = segment_cum[t, g - 1] if g > 0 else 0.0
        which[g, count[g]] = j
        at[g, count[g]] = _split(u, lo, segment_cum[t, g] - lo)
        count[g] += 1
        for s in range(first[j], n_stages):
            u = rows[1 + s, j]
            p, pi = conversion[t, s], stall[t, s]
            if u < p:
                b, lo, width = ADVANCE, 0.0, p
            elif u < 1.0 - pi:
                b, lo, width = LOSE, p, 1.0 - pi - p
            else:
                end[j] = STALL
                break
            col = drawn[s, b]
            if col >= 0:
                total[j] += rows[col, j]
            else:
                q = group[s, b]
                which[q, count[q]] = j
                at[q, count[q]] = _split(u, lo, width)
                count[q] += 1
            if b == LOSE:
                end[j] = LOST
                break
    return end, total, count, which, at
