"""The vectorised NumPy engine: docs/model.md for a whole chunk of trials at once.

Same semantics and result as the SimPy engine (``--engine simpy``), different random numbers
(the two agree in distribution; tests/test_engine_equivalence.py checks it).

Common random numbers (docs/model.md §0): every trial takes a fixed number of draws per
(seat, working day) and a fixed set of rows of deal draws (``DealDraws``), so a strategy run
with the baseline's seed keeps each trial's draws even when it changes how many deals a
trial has; its per-trial revenue tracks the baseline's as closely as SimPy's does
(benchmarks/crn_pairing.py).

How it is fast:
- Every random number is drawn up front, in bulk NumPy calls, for a batch of trials: the
  parameters and the team's timeline (leaving and backfill times, rep multipliers); a gamma
  and a uniform per (trial, working day, seat) for activities (Gamma–Poisson, the Poisson by
  its quantile at the uniform); rows of deal draws.
- Each deal row's whole path (segment, amount, every stage's outcome and duration) does not
  depend on when the deal is created, so it is worked out for all rows at once: the branch
  choices compiled (``deal_rows.choose``), the inverse CDFs in one call per (stage, branch).
  A new deal's close time is then its creation time plus its row's total duration.
- What is left depends on each trial's own history and is stepped day by day, trial by
  trial, in compiled code (``day_loop.simulate_days``): each rep's open deals (the capacity
  share), the opportunities each rep-day yields, and reps leaving (their deals reassigned in
  time order, docs/model.md §2).
- The activities that yield nothing are only counted, so their Poisson draws are summed
  into one draw per trial (exact: given the Gamma mixing, the two parts are independent).
"""

from __future__ import annotations

import ctypes
import functools
import math
import sys
from dataclasses import dataclass

import numpy as np
import polars as pl

from . import day_loop, deal_rows, vector_params
from .distributions import split_uniform
from .errors import InputError
from .results import TOTAL_COLUMNS, ChunkResult
from .spec import DAYS_PER_MONTH, STREAMS, SimSpec, child_seed


@functools.cache
def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory instead of handing each big array back to the OS.

    Every simulated day allocates and frees arrays over (trials × deals); with glibc's
    defaults each is a fresh mmap whose pages fault in again, and on large open pipelines
    that system time exceeded the simulation's own (Maven sample: 11 s of 24 s). Only the
    allocator's thresholds change: results are identical. A no-op off glibc. Done once, on
    the first run, not on import: importing the engine changes nothing in the process.
    """
    if not sys.platform.startswith("linux"):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # <malloc.h>
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(m_mmap_threshold, 32 << 20)   # glibc's maximum on 64-bit
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_top_pad, 256 << 20)


CHUNK = 2000                 # trials per runner chunk; fixed, so workers never change results
BATCH_BYTES = 64_000_000     # working memory per batch of trials inside a chunk

OPEN, WON, LOST, STALL = day_loop.OPEN, day_loop.WON, day_loop.LOST, day_loop.STALL
ORIGIN_OPEN, ORIGIN_NEW = 0, 1


def simulate_chunk(spec: SimSpec, n_trials: int, seed: np.random.SeedSequence,
                   first_trial: int = 0, *, draw_log=None) -> ChunkResult:
    """Simulate ``n_trials`` trials of ``spec``; the same seed gives the same numbers.

    ``draw_log`` (benchmarks only): an object whose ``wrap(generator)`` returns a generator
    that records every draw, to time the RNG floor (scenarios/bench.py).
    """
    _keep_freed_memory()
    if not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    # One stream per purpose (docs/model.md §0), vectorised across trials: parameters and
    # the team for the whole chunk; the others per batch of trials (``batch_streams``).
    rng = {name: np.random.default_rng(child_seed(seed, k)) for k, name in enumerate(STREAMS)}
    if draw_log is not None:
        rng = {name: draw_log.wrap(g) for name, g in rng.items()}
    weeks, n_reps = spec.weeks, len(spec.reps)
    if n_trials <= 0:
        return ChunkResult(pl.DataFrame(schema=TOTAL_COLUMNS), np.zeros((0, weeks)),
                           np.zeros((0, n_reps)), 0)

    pipeline = OpenPipeline.from_spec(spec)
    params = vector_params.trial_params(spec, n_trials, rng["params"])
    team = Team.draw(spec, params, rng["team"])
    step = batch_size(spec, n_trials, pipeline.n)
    parts = [Batch(spec, params, team, pipeline, lo, min(n_trials, lo + step),
                   batch_streams(seed, b, draw_log)).run()
             for b, lo in enumerate(range(0, n_trials, step))]

    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    cols["trial"] = np.arange(first_trial, first_trial + n_trials)
    totals = pl.DataFrame({k: cols[k] for k in TOTAL_COLUMNS}, schema=TOTAL_COLUMNS)
    return ChunkResult(totals=totals, weekly=np.concatenate([p[1] for p in parts]),
                       rep_revenue=np.concatenate([p[2] for p in parts]),
                       events=int(sum(p[3] for p in parts)))


def batch_streams(seed: np.random.SeedSequence, b: int, draw_log=None) -> dict:
    """Batch ``b``'s streams for the purposes whose draws depend on what happens to deals.

    Keyed by the batch, so one batch using more draws (a strategy creates more deals) never
    shifts another's; inside a batch every draw is of a fixed size per trial (``DealDraws``,
    the rep-day grids), so trial ``j``'s numbers are its own (common random numbers).
    """
    out = {}
    for k, name in enumerate(STREAMS):
        if name in ("activities", "deals", "open_pipeline", "marketing"):
            out[name + "_seed"] = ss = child_seed(child_seed(seed, k), b)
            g = np.random.default_rng(ss)
            out[name] = draw_log.wrap(g) if draw_log is not None else g
    return out


def expected_deals(spec: SimSpec, n_open: int, *, levered: bool = True) -> float:
    """A generous per-trial estimate of deals, from the (levered) point estimates (it sizes
    memory, never results; the deal store grows if a trial needs more)."""
    p = spec.model.point()
    if levered:
        p = spec.levers.apply(p)
    n_work = len(spec.working_days())
    outbound = (p.per_rep_day * p.opportunity_yield * len(spec.reps) * n_work
                * max(1.0, math.exp(p.rep_sigma ** 2)))
    return n_open + 1.3 * (outbound + p.marketing_weekly * spec.days / 7) + 16


def draws_block(spec: SimSpec) -> int:
    """Rows of ``DealDraws`` every trial gets (about the mean number of new deals; a trial
    that needs more draws its own): from the spec without its levers, so a strategy and its
    baseline draw the same rows."""
    return int(expected_deals(spec, 0, levered=False) / 1.3) + 16


def batch_size(spec: SimSpec, n_trials: int, n_open: int) -> int:
    """Trials simulated together: as many as fit ``BATCH_BYTES``. Depends on the spec without
    its levers and the chunk's size only, so the numbers do too, and a strategy's trials are
    batched (and so drawn) as its baseline's."""
    deals = expected_deals(spec, n_open, levered=False)
    stages = spec.model.stages
    width = len(draw_columns([st.advance.dist for st in stages],
                             [st.lost.dist for st in stages])[0]) + 1
    reps, work = len(spec.reps), len(spec.working_days())
    per_trial = (24 * work * reps                 # activity draws: gamma, uniform, -log u
                 + 4 * (spec.days + 1) * reps     # open-deal counts per day
                 + (8 * width + 80) * draws_block(spec)   # deal rows, their lists and table
                 + 48 * deals)                    # the deal store
    return int(max(1, min(n_trials, BATCH_BYTES // per_trial)))


# --- every deal's draws, a fixed number per deal --------------------------------------------------
# A deal's row: the uniform that picks its segment and (split, ``split_uniform``) its size,
# then per stage s the uniform U_s that picks advance, lost or stall and (split) the duration
# (an inverse-CDF draw, docs/model.md §5), then drawn values: its lag and, for durations whose
# inverse CDF is slow (gamma), a drawn duration for that branch.
SEG = 0


def slow_inverse(dist) -> bool:
    """Is the inverse CDF too slow to call per deal (``gammaincinv``)? Then engines draw.
    ``dist``: a ``Distribution`` or a ``DistArray``."""
    return getattr(dist, "template", dist).family == "gamma"


def draw_columns(advance, lost) -> tuple[dict, int, tuple]:
    """Where each draw sits in a ``DealDraws`` row: uniforms first (``SEG``, then ("U", s)
    per stage), then drawn values: the lag, and ("advance", s) or ("lost", s) for a slow
    inverse. Depends on the families only, which levers keep. Returns each draw's column,
    the number of uniforms and the distributions drawn, in column order."""
    cols = {("U", s): 1 + s for s in range(len(advance))}
    drawn = [("lag", None)] + [(kind, s) for s, (adv, lst) in enumerate(zip(advance, lost))
                               for kind, d in (("advance", adv), ("lost", lst))
                               if slow_inverse(d)]
    n_uniform = 1 + len(advance)
    cols.update({key: n_uniform + i for i, key in enumerate(drawn)})
    return cols, n_uniform, tuple(drawn)


class DealDraws:
    """Per trial, rows of draws handed to its deals in creation order.

    The first ``block`` rows of every trial of the batch are drawn at once; a trial that
    needs more draws them from its own stream (``_extend``). So row ``j`` of trial ``i``
    holds the same numbers however many rows any trial uses: a strategy that creates one
    more deal shifts that trial's later deals by one row and touches no other trial.
    Drawn durations come from each trial's own distributions (levers scale them, keeping
    each draw's rank). Tables are column-major, (columns, rows): row ``j`` of trial ``i`` is
    column ``i·block + j`` of ``base``. ``take`` returns (columns, deals).
    """

    def __init__(self, p, gi: np.ndarray, seed: np.random.SeedSequence, block: int,
                 rng=None):
        self.p, self.gi, self.seed, self.block = p, gi, seed, block
        self.used = np.zeros(gi.size, dtype=np.int64)
        self.cols, self.n_uniform, self.drawn = draw_columns(p.advance, p.lost)
        self.width = self.n_uniform + len(self.drawn)
        self.more: dict[int, np.ndarray] = {}       # trial -> its rows past the block
        self.base = self._draw(rng or np.random.default_rng(seed), gi, block).reshape(
            self.width, gi.size * block)

    def _draw(self, rng, gi, n) -> np.ndarray:
        """``n`` rows for each trial of ``gi``, a fixed set of draws: (columns, len(gi), n)."""
        p = self.p
        out = np.empty((self.width, gi.size, n))
        rng.random(out=out[:self.n_uniform])
        for i, (kind, s) in enumerate(self.drawn):
            out[self.n_uniform + i] = (p.lag if kind == "lag" else getattr(p, kind)[s]
                                       ).sample_grid(rng, gi, n)
        return out

    def take(self, li: np.ndarray) -> np.ndarray:
        """The next row of trial ``li[j]`` for each ``j`` (``li`` ascending): (columns, len(li))."""
        j = self.next_index(li)
        inside = j < self.block
        if inside.all():
            return np.take(self.base, li * self.block + j, axis=1)
        out = np.empty((self.width, li.size))
        i = np.flatnonzero(inside)
        out[:, i] = np.take(self.base, li[i] * self.block + j[i], axis=1)
        out[:, ~inside] = self.rows_past(li[~inside], j[~inside])
        return out

    def next_index(self, li: np.ndarray) -> np.ndarray:
        """Hand out the next row of trial ``li[j]`` for each ``j`` (``li`` ascending): its
        index among that trial's rows (``block`` and up: past the block)."""
        counts = np.bincount(li, minlength=self.gi.size)
        first = np.cumsum(counts) - counts
        j = self.used[li] + np.arange(li.size) - first[li]
        self.used += counts
        return j

    def rows_past(self, li: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Rows ``j[k] ≥ block`` of trials ``li[k]``: (columns, len(li))."""
        out = np.empty((self.width, li.size))
        for t in np.unique(li):
            m = np.flatnonzero(li == t)
            out[:, m] = self._extend(int(t), int(j[m].max()) + 1)[:, j[m] - self.block]
        return out

    def _extend(self, t: int, need: int) -> np.ndarray:
        """Trial ``t``'s rows past the block (at least ``need - block``), drawn
        ``block // 4`` at a time from its own streams (keyed by trial and piece): rare, so a
        loop is fine. Returns all of them, (columns, rows)."""
        rows = self.more.get(t, np.zeros((self.width, 0)))
        step = max(16, self.block // 4)
        while self.block + rows.shape[1] < need:
            k = rows.shape[1] // step
            rng = np.random.default_rng(child_seed(child_seed(self.seed, 1 + k),
                                                   int(self.gi[t])))
            rows = np.concatenate([rows, self._draw(rng, self.gi[t:t + 1], step)[:, 0]],
                                  axis=1)
        self.more[t] = rows
        return rows


# --- the team's timeline --------------------------------------------------------------------------
@dataclass(frozen=True)
class Team:
    """Every trial's reps, one occupant ``k`` after another per seat (backfills).

    Arrays are (trials, seats, occupants). Occupant k is active on ``[start, leave)``;
    ``tenure0`` is its tenure in days on its start day; ``mult`` its activity multiplier.
    """

    start: np.ndarray
    leave: np.ndarray
    tenure0: np.ndarray
    mult: np.ndarray

    @staticmethod
    def draw(spec: SimSpec, params: vector_params.ParamArrays, rng) -> "Team":
        n, n_reps = params.n, len(spec.reps)
        start = np.tile([r.start_day for r in spec.reps], (n, 1)).astype(float)
        tenure = np.tile([r.tenure_days for r in spec.reps], (n, 1)).astype(float)
        # Mean time to leaving in days; no attrition (or a zero hazard) means never.
        with np.errstate(divide="ignore", over="ignore"):
            mean_stay = np.where(params.attrition_monthly > 0,
                                 DAYS_PER_MONTH / params.attrition_monthly, np.inf)[:, None]

        def occupant(start_k):
            mult = np.exp(params.rep_sigma * rng.standard_normal((n, n_reps)))
            stay = rng.standard_exponential((n, n_reps)) * mean_stay if spec.attrition \
                else np.full((n, n_reps), np.inf)
            return mult, np.where(np.isfinite(start_k), start_k + stay, np.inf)

        mult, leave = occupant(start)
        seats = [(start, leave, tenure, mult)]
        while spec.backfill:
            prev_leave = seats[-1][1]
            nxt = prev_leave + spec.hiring_lag_days
            needed = nxt < spec.days
            if not needed.any():
                break
            nxt = np.where(needed, nxt, np.inf)
            mult, leave = occupant(nxt)
            seats.append((nxt, leave, np.zeros((n, n_reps)), mult))
        return Team(*(np.stack([s[i] for s in seats], axis=2) for i in range(4)))

    @property
    def occupants(self) -> int:
        return self.start.shape[2]

    def active_at(self, gi: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """(len(gi), seats): is the seat occupied at time ``tau[j]`` in trial ``gi[j]``?"""
        t = tau[:, None, None]
        return ((self.start[gi] <= t) & (t < self.leave[gi])).any(axis=2)


# --- the open pipeline at the start ---------------------------------------------------------------
@dataclass(frozen=True)
class OpenPipeline:
    """Open deals after pruning: stage index, age in stage, amount and owner seat (-1: none)."""

    stage: np.ndarray
    age: np.ndarray
    amount: np.ndarray
    owner: np.ndarray

    @property
    def n(self) -> int:
        return len(self.stage)

    @staticmethod
    def from_spec(spec: SimSpec) -> "OpenPipeline":
        """Read and check the spec's open deals (as the SimPy engine does)."""
        cap = spec.capacity
        if cap.week_hours - cap.deal_hours * cap.free_deals <= 0:
            raise InputError("deal hours × free deals leave no prospecting time in the week",
                             column="capacity", expected="week_hours > deal_hours × free_deals")
        df = spec.open_pipeline()
        stages = {name: i for i, name in enumerate(spec.model.stage_names)}
        names = df["stage"].to_list()
        bad = [i for i, name in enumerate(names) if name not in stages]
        if bad:
            raise InputError(f"open deal has unknown stage {names[bad[0]]!r}", row=bad[0] + 1,
                             column="stage", expected="one of " + ", ".join(stages))
        stage = np.array([stages[name] for name in names], dtype=np.int64)
        age = df["age_days"].cast(pl.Float64).to_numpy().astype(float)
        amount = df["amount"].cast(pl.Float64).to_numpy().astype(float)
        for col, values in (("age_days", age), ("amount", amount)):
            bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))
            if bad.size:
                raise InputError(f"open deal has {col} {values[bad[0]]!r}", row=int(bad[0]) + 1,
                                 column=col, expected="a number ≥ 0")
        # Deals of owners not on the team at day 0 are reassigned there (spec.initial_owners);
        # -1: nobody was on the team, the deal belongs to no seat.
        return OpenPipeline(stage, age, amount, spec.initial_owners(df))


# --- one batch of trials --------------------------------------------------------------------------
class Batch:
    """Trials ``lo..hi-1`` of a chunk, stepped day by day (local trial index ``li = gi - lo``).

    Deals live in per-trial rows of a store: ``c`` created (row padding: ``inf``), ``until``
    closed (``inf``: still open at the horizon) while it counts among the open deals of seat
    ``load``, else ``-inf`` (left with a leaver, or not yet assigned); ``won`` its amount if
    won in the horizon. A deal is in some rep's load at time τ iff ``c <= τ < until``.
    What a trial records is tallied as deals are created (their whole path is known then),
    except revenue per seat, which follows deals as they move.
    """

    def __init__(self, spec: SimSpec, params, team: Team, pipeline: OpenPipeline, lo: int,
                 hi: int, rng: dict):
        self.spec, self.p, self.team, self.pipeline = spec, params, team, pipeline
        self.lo, self.B, self.R = lo, hi - lo, len(spec.reps)
        self.days, self.weeks, self.S = spec.days, spec.weeks, len(spec.model.stages)
        self.rng_act, self.rng_market, self.rng_open = (
            rng["activities"], rng["marketing"], rng["open_pipeline"])
        self.seed_open = rng["open_pipeline_seed"]
        gi = np.arange(lo, hi)
        self.draws = DealDraws(params, gi, rng["deals_seed"], draws_block(spec),
                               rng["deals"])
        # Per (stage, branch): the row of its drawn duration, or -1 and the list its
        # inverse-CDF draw goes to (``deal_rows.choose``; lists 0..G-1 are the sizes).
        kinds = ("advance", "lost")
        self.drawn_cols = np.array([[self.draws.cols.get((kind, s), -1) for kind in kinds]
                                    for s in range(self.S)], dtype=np.int64)
        inverse = [(s, kind) for s in range(self.S) for kind in kinds
                   if (kind, s) not in self.draws.cols]
        self.inverse_dists = {key: len(params.sizes) + i for i, key in enumerate(inverse)}
        self.inverse_lists = np.array([[self.inverse_dists.get((s, kind), -1) for kind in kinds]
                                       for s in range(self.S)], dtype=np.int64)
        # Deals that exist before the day loop (open pipeline, then marketing leads):
        # per part, (trial, seat, created, close, amount, outcome, origin, counted).
        self.initial: list[tuple] = []
        cum = np.cumsum(params.segment_probs, axis=1)
        self.seg_cum = np.ascontiguousarray(cum / cum[:, -1:])
        self.conversion = np.ascontiguousarray(params.conversion)
        self.stall = np.ascontiguousarray(params.stall)
        # Gamma mixing shape per trial (inf: Poisson activities, no mixing).
        self.dispersion = params.dispersion[lo:hi]
        sl = slice(lo, hi)
        self.rate = params.per_rep_day[sl][:, None]
        self.ramp_months = params.ramp_months[sl][:, None]
        self.yld = params.opportunity_yield[sl]

    # --- the trial ------------------------------------------------------------------------
    def run(self):
        # Every row of the block's path, once (new deals and marketing leads read it).
        self.table = self._deal_table(np.repeat(self.draws.gi, self.draws.block),
                                      self.draws.base)
        self._open_pipeline()
        self._marketing()
        self._days()
        return self._book()

    # --- deals: creation and paths ----------------------------------------------------------
    def _deal_table(self, gi, rows, first=None):
        """Each row's lag, amount and path from the start of stage ``first[j]`` (None: the
        first stage), which does not depend on when the deal starts (docs/model.md §4–5):
        the sum of its durations in the stages it leaves (``total``) and how it ends
        (``end``: WON after the last stage, LOST, or STALL: it never leaves the stage it is
        in). ``rows``: ``DealDraws`` rows, (columns, rows). The branching is compiled
        (``deal_rows.choose``); the inverse CDFs run here, one call per (stage, branch) and
        per segment."""
        p, cols, n = self.p, self.draws.cols, len(gi)
        first = np.zeros(n, dtype=np.int64) if first is None else first
        end, total, count, which, at = deal_rows.choose(
            np.ascontiguousarray(rows), first, gi, self.conversion, self.stall, self.seg_cum,
            self.drawn_cols, self.inverse_lists)
        amount = np.empty(n)
        for g, size in enumerate(p.sizes):
            m = which[g, :count[g]]
            amount[m] = size.from_uniform(at[g, :count[g]], gi[m])
        for (s, kind), q in self.inverse_dists.items():
            m = which[q, :count[q]]
            if m.size:
                total[m] += getattr(p, kind)[s].from_uniform(at[q, :count[q]], gi[m])
        return {"lag": np.ascontiguousarray(rows[cols["lag", None]]), "amount": amount,
                "total": total, "end": end}

    def _close(self, t, table):
        """Close time (``inf``: open at the horizon) and outcome of deals entering their
        ``table`` paths at ``t``. The day loop times new deals the same way."""
        now = t + table["total"]
        # Durations are ≥ 0, so a deal closes inside the horizon iff its last time is inside.
        closed = (now < self.days) & (table["end"] != STALL)
        return (np.where(closed, now, np.inf),
                np.where(closed, table["end"], OPEN).astype(np.int8))

    def _next_rows(self, li):
        """The table entries (``_deal_table``) of the next row of trial ``li[j]`` for each
        ``j`` (``li`` ascending): read from the block's table, computed past the block."""
        draws = self.draws
        j = draws.next_index(li)
        inside = j < draws.block
        flat = li[inside] * draws.block + j[inside]
        if inside.all():
            return {k: v[flat] for k, v in self.table.items()}
        past = self._deal_table(draws.gi[li[~inside]],
                                draws.rows_past(li[~inside], j[~inside]))
        out = {k: np.empty(li.size, dtype=v.dtype) for k, v in self.table.items()}
        for k in out:
            out[k][inside], out[k][~inside] = self.table[k][flat], past[k]
        return out

    def _open_pipeline(self):
        """Deals open at the start: first outcome conditional on their age (docs/model.md §6)."""
        op = self.pipeline
        if op.n == 0:
            return
        rng, p = self.rng_open, self.p
        li = np.repeat(np.arange(self.B), op.n)
        gi = li + self.lo
        # One row per open deal (the U_s of its stage decides its first outcome and, split,
        # its residual time), then a fixed number of proposals per gamma residual.
        rows = DealDraws(p, gi[::op.n], self.seed_open, op.n, rng).take(li)
        stage = np.tile(op.stage, self.B)
        age = np.tile(op.age, self.B)
        rest = np.zeros(li.size)
        advanced = np.zeros(li.size, dtype=bool)
        for s in np.unique(op.stage):
            idx = np.flatnonzero(stage == s)
            g, a = gi[idx], age[idx]
            conv, pi = p.conversion[g, s], p.stall[g, s]
            w_adv = conv * self._survival(p.advance[s], a, g, op.age[op.stage == s])
            w_lost = (1 - conv - pi) * self._survival(p.lost[s], a, g, op.age[op.stage == s])
            total = w_adv + w_lost + pi
            # Older than any deal either duration allows: stalled when π > 0, else lost at
            # once (docs/model.md §6).
            p_adv = np.divide(w_adv, total, out=np.zeros_like(conv), where=total > 0)
            p_stall = np.divide(pi, total, out=np.zeros_like(conv), where=total > 0)
            first = rows[self.draws.cols["U", s], idx]
            adv = first < p_adv
            stalled = ~adv & (first >= 1.0 - p_stall) & (p_stall > 0)
            u = np.where(adv, split_uniform(first, 0.0, p_adv),
                         split_uniform(first, p_adv, 1.0 - p_stall - p_adv))
            prop_adv = self._proposals(p.advance[s], g)
            prop_lost = self._proposals(p.lost[s], g)
            ia, il = np.flatnonzero(adv), np.flatnonzero(~adv & ~stalled)
            rest[idx[stalled]] = np.inf     # a stalled deal stays open for ever
            rest[idx[ia]] = self._residual(p.advance[s], u[ia], a[ia], g[ia], prop_adv, ia)
            rest[idx[il]] = self._residual(p.lost[s], u[il], a[il], g[il], prop_lost, il)
            advanced[idx] = adv
        inside = rest < self.days
        close = np.where(inside, rest, np.inf)
        outcome = np.where(inside, LOST, OPEN).astype(np.int8)
        w = np.flatnonzero(advanced)
        close[w], outcome[w] = self._close(rest[w], self._deal_table(gi[w], rows[:, w],
                                                                    stage[w] + 1))
        owner = np.tile(op.owner, self.B)
        # Orphans (owner -1) count toward nobody's load and are never reassigned.
        self._add_initial(li, owner, np.zeros(li.size), close, np.tile(op.amount, self.B),
                          outcome, ORIGIN_OPEN, present=owner >= 0)

    PROPOSALS = 6    # draws of T per open deal with a gamma duration (``_residual``)

    def _proposals(self, dist, gi):
        """``PROPOSALS`` draws of ``T`` per deal for ``_residual`` (a fixed number per deal,
        drawn whichever way the deal goes), or None when the inverse CDF is cheap."""
        if not slow_inverse(dist):
            return None
        k = self.PROPOSALS
        return dist.sample(self.rng_open, np.repeat(gi, k)).reshape(gi.size, k)

    def _residual(self, dist, u, age, gi, proposals, which):
        """Remaining time ``T - age | T > age``: inverse CDF on the survival function, except
        for gamma durations, whose inverse (``gammainccinv``) is slow; those take the first
        of their ``proposals[which]`` that passes ``age`` (exact too), and the inverse CDF
        only when none does or ``T > age`` is unlikely."""
        if proposals is None:
            return dist.residual(u, age, gi)
        out = np.empty(age.size)
        t = proposals[which]
        ok = (t > age[:, None]) & (dist.sf(age, gi) >= 0.25)[:, None]
        hit = ok.any(axis=1)
        first = ok.argmax(axis=1)
        tries = np.flatnonzero(hit)
        out[tries] = t[tries, first[tries]] - age[tries]
        rest = np.flatnonzero(~hit)
        out[rest] = dist.residual(u[rest], age[rest], gi[rest])
        return out

    def _survival(self, dist, age, gi, one_trial):
        """``dist.sf(age)`` per (trial, deal); computed once per deal when trials share it."""
        if dist.shared:
            return np.tile(dist.template.sf(one_trial), self.B)
        return dist.sf(age, gi)

    def _marketing(self):
        """Marketing arrivals (docs/model.md §4): a Poisson process of ``weekly / 7`` per day.

        ``K_w ~ Poisson(weekly)`` at uniform times in each week, dropping those after the
        horizon, is the same as ``Poisson(weekly × days / 7)`` uniform times in the horizon.
        """
        rng, p = self.rng_market, self.p
        k = rng.poisson(p.marketing_weekly[self.lo:self.lo + self.B] * self.days / 7)
        li = np.repeat(np.arange(self.B), k)
        if li.size == 0:
            return
        gi = li + self.lo
        t = rng.random(li.size) * self.days
        seat = self._pick_active(gi, t, rng)
        keep = seat >= 0                     # nobody on the team: the lead is dropped
        li, gi, t, seat = li[keep], gi[keep], t[keep], seat[keep]
        table = self._next_rows(li)
        close, outcome = self._close(t, table)
        self._add_initial(li, seat, t, close, table["amount"], outcome, ORIGIN_NEW,
                          present=np.ones(li.size, dtype=bool))

    def _pick_active(self, gi, t, rng):
        """A seat chosen uniformly among those active at ``t[j]`` in trial ``gi[j]`` (-1: none).

        A uniform seat is kept when active (the usual case); the rest choose exactly among
        their active seats, which leaves every active seat equally likely.
        """
        tm = self.team
        seat = np.minimum((rng.random(gi.size) * self.R).astype(np.int64), self.R - 1)
        tt = t[:, None]
        hit = ((tm.start[gi, seat] <= tt) & (tt < tm.leave[gi, seat])).any(axis=1)
        redo = np.flatnonzero(~hit)
        for part in np.array_split(redo, max(1, redo.size // 4096)):
            active = tm.active_at(gi[part], t[part])
            n_active = active.sum(axis=1)
            pick = np.floor(rng.random(part.size) * n_active)
            chosen = (np.cumsum(active, axis=1) > pick[:, None]).argmax(axis=1)
            seat[part] = np.where(n_active > 0, chosen, -1)
        return seat

    def _reps_on(self, d: int):
        """(trials, seats) arrays on day ``d``: active, multiplier × ramp, leaving time."""
        tm, sl, rm = self.team, slice(self.lo, self.lo + self.B), self.ramp_months
        active = level = leave = None
        for k in range(tm.occupants):
            start, lv = tm.start[sl, :, k], tm.leave[sl, :, k]
            on = (start <= d) & (d < lv)
            months = (tm.tenure0[sl, :, k] + (d - start)) * (1 / DAYS_PER_MONTH)
            with np.errstate(invalid="ignore", divide="ignore"):
                ramp = np.where(rm > 0, np.minimum(months / rm, 1.0), 1.0)
            lev = tm.mult[sl, :, k] * ramp
            if active is None:
                active, level, leave = on, lev, lv
            else:
                level = np.where(on, lev, level)
                leave = np.where(on, lv, leave)
                active = active | on
        return active, level, leave

    def _days(self):
        """Step every day (§2–4): activities, the deals they create, reps leaving.

        The random numbers are drawn here, the same number for every trial whatever happens
        in it (common random numbers, docs/model.md §0): per working day a gamma (the
        negative binomial's mixing, NegBin(mean, k) = Poisson(mean × Gamma(k, 1/k)); k = inf
        is Poisson) and a uniform (the count is the Poisson quantile at it) for every
        (trial, seat), active or not; and every deal row's path. ``day_loop.simulate_days``
        then steps the days: the open-deal counts, who creates what, and reassignments
        depend on each trial's own history.
        """
        work_days = self.spec.working_days()
        working = np.zeros(self.days, dtype=np.bool_)
        working[work_days] = True
        work_index = np.full(self.days, -1, dtype=np.int64)
        work_index[work_days] = np.arange(work_days.size)
        # (trial, working day, seat): each trial's draws contiguous for the day loop. One call
        # per trial: numpy's gamma sampler is twice as fast with a scalar shape as with an
        # array of shapes.
        shape = (self.B, work_days.size, self.R)
        mix = np.ones(shape)
        for i, k in enumerate(self.dispersion):
            if np.isfinite(k):
                self.rng_act.standard_gamma(k, out=mix[i])
                mix[i] /= k
        uniform = self.rng_act.random(shape)
        neg_log_u = -np.log(uniform)

        draws, block, table = self.draws, self.draws.block, self.table
        trials = np.arange(self.B)
        row_ptr, row_len = trials * block, np.full(self.B, block)
        tm, sl = self.team, slice(self.lo, self.lo + self.B)
        cap = self.spec.capacity
        moves = np.zeros(self.B, dtype=np.int64)
        init_ptr, initial = self._initial_deals()
        # What each trial records: deals by (origin, trial, outcome), count and amount; won
        # revenue by (trial, week) and by seat; activities (``spare``: the Poisson mean of
        # those yielding nothing).
        self.tally = np.zeros((2, self.B, 3), dtype=np.int64)
        self.money = np.zeros((2, self.B, 3))
        self.weekly = np.zeros((self.B, self.weeks))
        self.rep = np.zeros((self.B, self.R))
        self.yielded = np.zeros(self.B, dtype=np.int64)
        self.spare = np.zeros(self.B)
        while trials.size:
            status = day_loop.simulate_days(
                trials, self.days, working, work_index, 1 / DAYS_PER_MONTH,
                tm.start[sl], tm.leave[sl], tm.tenure0[sl], tm.mult[sl],
                self.rate[:, 0], self.ramp_months[:, 0], self.yld,
                float(cap.week_hours), float(cap.deal_hours),
                float(cap.week_hours - cap.deal_hours * cap.free_deals), float(cap.floor),
                mix, uniform, neg_log_u, row_ptr, row_len, draws.used,
                table["lag"], table["amount"], table["total"], table["end"],
                init_ptr, *initial,
                self.tally, self.money, self.weekly, self.rep, self.yielded, self.spare,
                moves)
            # Trials that ran out of rows run again with their next piece of rows (rare: a
            # block is about the mean number of deals, so most trials need none).
            trials = trials[status == day_loop.NEED_ROWS]
            if trials.size:
                table, row_ptr, row_len = self._more_rows(trials, table, row_ptr, row_len)
        self.moves = int(moves.sum())

    def _more_rows(self, trials, table, row_ptr, row_len):
        """Give each of ``trials`` its rows so far plus its next piece past the block
        (``DealDraws._extend``); returns the table with them appended and where each
        trial's rows now are (its block, then its extension, contiguous)."""
        draws, block = self.draws, self.draws.block
        extra = []
        for t in trials:
            have = draws.more.get(int(t), np.zeros((0, 0))).shape[-1]
            extra.append(draws._extend(int(t), block + have + 1))
        sizes = [x.shape[1] for x in extra]
        gi = np.repeat(draws.gi[trials], sizes)
        extra = self._deal_table(gi, np.concatenate(extra, axis=1))
        n_old = len(table["lag"])
        ptr, length = row_ptr.copy(), row_len.copy()
        gather, pos, at = [], n_old, n_old + len(gi)
        for t, size in zip(trials, sizes):
            ptr[t], length[t] = at, block + size
            gather += [np.arange(t * block, (t + 1) * block), np.arange(pos, pos + size)]
            pos += size
            at += block + size
        gather = np.concatenate(gather)
        table = {k: np.concatenate([v, extra[k]], axis=-1) for k, v in table.items()}
        table = {k: np.concatenate([v, v[..., gather]], axis=-1) for k, v in table.items()}
        return table, ptr, length

    # --- the deal store ------------------------------------------------------------------------
    def _add_initial(self, li, seat, c, e, amount, outcome, origin, *, present):
        """Deals the day loop inserts before day 0 (``li`` ascending): ``present`` ones count
        toward their seat's open deals; the others (orphans) belong to nobody's load."""
        n = li.size
        self.initial.append((li, seat.astype(np.int64), np.asarray(c, dtype=float), e, amount,
                             outcome.astype(np.int8), np.full(n, origin, dtype=np.int8),
                             np.asarray(present, dtype=np.bool_)))

    def _initial_deals(self):
        """The initial deals as flat arrays, trial by trial (each trial's open deals first,
        then its marketing leads), and where each trial's start (``ptr``, B + 1)."""
        parts = self.initial or [(np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0),) * 3
                                 + (np.zeros(0, dtype=np.int8),) * 2
                                 + (np.zeros(0, dtype=np.bool_),)]
        cols = [np.concatenate(x) for x in zip(*parts)]
        order = np.argsort(cols[0], kind="stable")
        li, *rest = (x[order] for x in cols)
        ptr = np.searchsorted(li, np.arange(self.B + 1))
        return ptr, rest

    # --- what a trial records ----------------------------------------------------------------
    def _book(self):
        n = self.tally.transpose(1, 2, 0)   # [trial, outcome, origin]
        m = self.money.transpose(1, 2, 0)
        o, w = ORIGIN_OPEN, ORIGIN_NEW
        totals = {
            "revenue": m[:, WON].sum(axis=1), "revenue_open": m[:, WON, o],
            "revenue_new": m[:, WON, w],
            "wins": n[:, WON].sum(axis=1), "wins_open": n[:, WON, o], "wins_new": n[:, WON, w],
            "losses": n[:, LOST].sum(axis=1), "open_start": n[:, :, o].sum(axis=1),
            "created": n[:, :, w].sum(axis=1), "pipeline_created": m[:, :, w].sum(axis=1),
            "activities": self.yielded + self.rng_act.poisson(self.spare),
            "open_end": n[:, OPEN].sum(axis=1), "pipeline_end": m[:, OPEN].sum(axis=1),
        }
        weekly = self.weekly.cumsum(axis=1)
        events = int(n.sum() + n[:, WON].sum() + n[:, LOST].sum()) + self.moves
        return totals, weekly, self.rep, events
