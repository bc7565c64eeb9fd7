"""The vectorised engine: docs/model.md for a whole chunk of trials at once, fast.

Same semantics and result as the SimPy engine (``--engine simpy``), different random numbers
(the two agree in distribution; tests/test_engine_equivalence.py checks it).

What can be done for every trial at once is done in NumPy, vectorised across the chunk:
the parameters drawn from the posterior with the levers applied (``vector_params``), the
team's timeline (leaving and backfill times, rep multipliers: ``Team``), and the
distributions packed into arrays (``compiled_dists.pack``). What depends on each trial's
own history (each rep's open deals and so its prospecting time, the deals each rep-day
creates, reassignments when reps leave) runs one trial at a time in compiled code
(``trial_loop.simulate_trials``), which also draws the trial's random numbers.

Common random numbers (docs/model.md §0): each trial has a key per purpose, and every
seat and every deal its own stream under it, so a strategy run with the baseline's seed
keeps each trial's draws even where it changes how many deals a trial has; its per-trial
revenue tracks the baseline's (benchmarks/crn_pairing.py).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from . import compiled_dists, compiled_random, jit, trial_loop, vector_params
from .calendar import Layout, clock_table, period_at
from .open_pipeline import OpenPipeline
from .results import TOTAL_COLUMNS, ChunkResult
from .spec import STREAMS, SimSpec, child_seed, level_ratio, rep_multiplier
from .units import DAYS_PER_MONTH

CHUNK = 2000  # trials per runner chunk; fixed, so workers never change results
KEYED = ("activities", "deals", "open_pipeline", "marketing")  # trial_loop.KEY_* order
OPEN, WON, LOST = trial_loop.OPEN, trial_loop.WON, trial_loop.LOST
ORIGIN_OPEN, ORIGIN_NEW = trial_loop.ORIGIN_OPEN, trial_loop.ORIGIN_NEW


def simulate_chunk(
    spec: SimSpec,
    n_trials: int,
    seed: np.random.SeedSequence,
    first_trial: int = 0,
    *,
    part: tuple[int, int] | None = None,
    draw_log=None,
) -> ChunkResult:
    """Simulate ``n_trials`` trials of ``spec``; the same seed gives the same numbers.

    ``part=(lo, hi)`` plays only the chunk's trials ``lo … hi - 1`` (the runner spreads one
    chunk over several processes this way): the chunk is prepared whole and every trial
    has its own keys, so each trial's numbers are those of the whole chunk's run.
    ``draw_log`` (benchmarks only): an object whose ``wrap(generator)`` returns a generator
    that records every draw and whose ``add(method, params, n)`` records ``n`` draws of the
    compiled loop, to time the RNG floor (scenarios/bench.py).
    """
    if not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    weeks, n_reps = spec.weeks, len(spec.reps)
    if n_trials <= 0:
        return ChunkResult(
            pl.DataFrame(schema=TOTAL_COLUMNS),
            np.zeros((0, weeks)),
            np.zeros((0, n_reps)),
            0,
            np.zeros(n_reps, dtype=np.int64),
            np.zeros((2, spec.open_deals.height), dtype=np.int64),
        )

    pipeline = OpenPipeline.from_spec(spec)
    # Parameters and team for a whole chunk's worth of trials, of which the first n_trials
    # run: trial i's numbers do not depend on how many trials a (last) chunk has.
    drawn = max(n_trials, CHUNK)
    params_rng = np.random.default_rng(child_seed(seed, STREAMS.index("params")))
    if draw_log is not None:
        params_rng = draw_log.wrap(params_rng)
    p = spec.param_arrays(drawn, params_rng)
    team = Team.draw(spec, p, child_seed(seed, STREAMS.index("team")), draw_log).head(n_trials)
    p = p.head(n_trials)
    cum = np.cumsum(p.segment_probs, axis=1)
    work_days = spec.working_days()
    work_index = np.full(spec.days, -1, dtype=np.int64)
    work_index[work_days] = np.arange(work_days.size)
    capacity = spec.capacity
    out = (
        np.zeros((n_trials, 2, 3), dtype=np.int64),
        np.zeros((n_trials, 2, 3)),
        np.zeros((n_trials, weeks)),
        np.zeros((n_trials, n_reps)),
        np.zeros(n_trials, dtype=np.int64),
        np.zeros(n_trials, dtype=np.int64),
        np.zeros(n_reps, dtype=np.int64),
        np.zeros((2, spec.open_deals.height), dtype=np.int64),
        np.zeros(n_trials, dtype=np.int64),
    )
    calendar, marketing, tail_dists = calendar_arrays(spec, p)
    args = plain(
        trial_keys(seed, n_trials),
        compiled_dists.pack(p.advance + p.lost + p.sizes + (p.lag,) + tail_dists, n_trials),
        np.ascontiguousarray(p.conversion),
        np.ascontiguousarray(p.stall),
        np.ascontiguousarray(cum / cum[:, -1:]),
        p.per_rep_day,
        p.dispersion,
        p.opportunity_yield,
        p.ramp_months,
        marketing,
        (team.start, team.leave, team.tenure0, team.mult),
        (
            pipeline.stage,
            pipeline.age,
            pipeline.amount,
            pipeline.owner,
            pipeline.row,
            pipeline.slip,
            pipeline.scale,
            pipeline.odds,
        ),
        int(spec.days),
        int(spec.quarter_days),
        work_index,
        1 / DAYS_PER_MONTH,
        (
            float(capacity.week_hours),
            float(capacity.deal_hours),
            float(capacity.week_hours - capacity.deal_hours * capacity.free_deals),
            float(capacity.floor),
        ),
        calendar,
    )
    # Draw counts only for the benchmark: without them the loop compiles without counting.
    counts = np.zeros(compiled_random.N_COUNTS) if draw_log is not None else None
    # Scratch space for a trial's deals: 1.5 × the most any trial of the chunk expects
    # (open deals, leads, opportunities at full capacity) plus a margin, and room for 64
    # deals created after their rep left. A trial that needs more is played again with
    # twice as much: its streams are its own, so its numbers are the same.
    expected = (
        pipeline.n
        + marketing.max()
        + float((p.per_rep_day * p.opportunity_yield * calendar[0].max(axis=1)).max())
        * n_reps
        * work_days.size
        * math.exp(p.rep_sigma**2)
    )
    buffers = (int(1.5 * expected) + 256, 64)
    lo, hi = part if part is not None else (0, n_trials)
    trials = np.arange(lo, hi)
    while trials.size:
        _simulate(trials, *args, buffers, out, counts)
        trials = trials[out[-1][trials] == trial_loop.OVERFLOW]
        buffers = (2 * buffers[0], 2 * buffers[1])
    if draw_log is not None and counts is not None:
        record_counts(draw_log, counts)
    # Per-trial outputs are cut to the part; the wins per seat and per open deal are sums
    # over the trials played, so they are the part's already.
    per_trial, sums = out[:6], out[6:8]
    return _result(tuple(a[lo:hi] for a in per_trial) + sums, first_trial + lo)


def plain(*args):
    """``args`` with every array C-contiguous and writable (tuples too): numba compiles a
    version of the loop per layout and flag, so every caller (forecast, compare, capacity,
    a lever that hands over a column or a broadcast view) shares one compilation."""
    out = []
    for a in args:
        if isinstance(a, tuple):
            a = plain(*a)
        elif isinstance(a, np.ndarray) and not (a.flags.c_contiguous and a.flags.writeable):
            a = np.array(a, order="C")
        out.append(a)
    return tuple(out)


_compiled = False  # this process has run the compiled loop


def _simulate(*args) -> None:
    """``trial_loop.simulate_trials``; a process's first call on a cold cache holds the
    compile lock, so processes starting together compile once between them (``jit``)."""
    global _compiled
    if _compiled or not jit.cold():
        trial_loop.simulate_trials(*args)
    else:
        with jit.compile_lock():
            trial_loop.simulate_trials(*args)
        jit.mark_compiled()
    _compiled = True


def calendar_arrays(spec: SimSpec, p: vector_params.ParamArrays):
    """What the compiled loop needs of docs/model.md §6b and §8, as arrays (the layout of
    ``trial_loop.simulate_trials``'s ``calendar`` argument), the marketing leads' mean per
    trial and the tails' distributions (slots after the lag's, two per stage that has one).

    Channels without effects get neutral arrays (factor 1, one quarter with no shift), so a
    model without a calendar runs exactly as before."""
    n, days = p.n, spec.days
    layout = Layout.of(spec.model.calendar, spec.start, days)
    mid = np.arange(days) + 0.5

    def per_day(channel):
        e, off = p.effect(channel), layout.offsets_of(channel)
        return None if e is None or off is None else e[:, period_at(off, mid)]

    out = per_day("outbound")
    out_mult = np.ones((n, days)) if out is None else np.exp(out)
    mkt = per_day("marketing")
    if mkt is None:
        mkt_cum, marketing = np.zeros((0, days + 1)), p.marketing_weekly * days / 7
    else:
        rates = p.marketing_weekly[:, None] / 7 * np.exp(mkt)
        mkt_cum = np.concatenate([np.zeros((n, 1)), np.cumsum(rates, axis=1)], axis=1)
        marketing = mkt_cum[:, -1].copy()

    def quarters(channel):
        e, off = p.effect(channel), layout.offsets_of(channel)
        if e is None or off is None:
            return np.zeros(1), np.zeros((0, 1))
        return np.ascontiguousarray(off, dtype=float), np.ascontiguousarray(e)

    conv_off, conv_shift = quarters("conversion")
    speed_off, log_speed = quarters("speed")
    # The won clock per trial (pace, §8), else one row for all; the lost clock is shared.
    pace = p.effect("pace")
    won = layout.won_clock(() if pace is None else pace, days)
    won = np.ones((1, days)) if won is None else np.atleast_2d(won)
    lost, lost_table = layout.lost_clock or (np.ones(days), clock_table(np.ones(days)))
    clock = (layout.clocked, clock_table(won), np.ascontiguousarray(won), lost_table, lost)
    S = p.conversion.shape[1]
    tail_from, tail_slot = np.full(S, np.inf), np.full(S, -1, dtype=np.int64)
    tail_p, tail_pi = np.zeros((n, S)), np.zeros((n, S))
    dists: list[vector_params.DistArray] = []
    first = 2 * S + len(p.sizes) + 1
    for st, tail in enumerate(p.tails):
        if tail is None:
            continue
        tail_from[st], tail_slot[st] = tail.from_age, first + len(dists)
        tail_p[:, st], tail_pi[:, st] = tail.conversion, tail.stall
        dists += [tail.advance, tail.lost]
    # The slip model's buckets (§6c) as tails, after the stages' tails.
    slip_slot = np.full(max(len(p.slips), 1), -1, dtype=np.int64)
    slip_p = np.zeros((n, max(len(p.slips), 1)))
    slip_weight = np.zeros(n) if p.slip_stage_weight is None else p.slip_stage_weight
    for b, bucket in enumerate(p.slips):
        slip_slot[b], slip_p[:, b] = first + len(dists), bucket.conversion
        dists += [bucket.advance, bucket.lost]
    calendar = (
        out_mult,
        mkt_cum,
        conv_off,
        conv_shift,
        speed_off,
        log_speed,
        clock,
        (tail_from, tail_slot, tail_p, tail_pi, slip_slot, slip_p, slip_weight),
    )
    return calendar, marketing, tuple(dists)


def trial_keys(seed: np.random.SeedSequence, n_trials: int) -> np.ndarray:
    """(trials, purposes, 2) 64-bit keys: for purpose ``k`` (``KEYED``), ``SeedSequence``
    child ``STREAMS.index(k)`` of the chunk's seed generates two words per trial (trial i's
    words are the same however many trials are asked for)."""
    keys = np.empty((n_trials, len(KEYED), 2), dtype=np.uint64)
    for j, name in enumerate(KEYED):
        words = child_seed(seed, STREAMS.index(name)).generate_state(2 * n_trials, np.uint64)
        keys[:, j, :] = words.reshape(n_trials, 2)
    return keys


def record_counts(draw_log, counts: np.ndarray) -> None:
    """The compiled loop's draws, by NumPy method, for ``draw_log`` (the RNG floor)."""
    c = compiled_random
    n_gamma, n_poisson = counts[c.COUNT_GAMMA], counts[c.COUNT_POISSON]
    draw_log.add("random", (), int(counts[c.COUNT_UNIFORM]))
    if n_gamma:
        draw_log.add("standard_gamma", (counts[c.COUNT_GAMMA_SHAPE] / n_gamma,), int(n_gamma))
    if n_poisson:
        draw_log.add("poisson", (counts[c.COUNT_POISSON_MEAN] / n_poisson,), int(n_poisson))


def _result(out, first_trial: int) -> ChunkResult:
    tally, money, weekly, rep, activities, moves, seat_wins, deal_wins = out
    o, w = ORIGIN_OPEN, ORIGIN_NEW
    cols = {
        "trial": np.arange(first_trial, first_trial + len(activities)),
        "revenue": money[:, :, WON].sum(axis=1),
        "revenue_open": money[:, o, WON],
        "revenue_new": money[:, w, WON],
        "wins": tally[:, :, WON].sum(axis=1),
        "wins_open": tally[:, o, WON],
        "wins_new": tally[:, w, WON],
        "losses": tally[:, :, LOST].sum(axis=1),
        "open_start": tally[:, o, :].sum(axis=1),
        "created": tally[:, w, :].sum(axis=1),
        "pipeline_created": money[:, w, :].sum(axis=1),
        "activities": activities,
        "open_end": tally[:, :, OPEN].sum(axis=1),
        "pipeline_end": money[:, :, OPEN].sum(axis=1),
    }
    totals = pl.DataFrame({k: cols[k] for k in TOTAL_COLUMNS}, schema=TOTAL_COLUMNS)
    # Engine events (benchmarks' events/s): deals, their wins and losses, and moves.
    events = int(tally.sum() + tally[:, :, WON].sum() + tally[:, :, LOST].sum() + moves.sum())
    return ChunkResult(totals, weekly.cumsum(axis=1), rep, events, seat_wins, deal_wins)


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
    def draw(
        spec: SimSpec,
        params: vector_params.ParamArrays,
        seed: np.random.SeedSequence,
        draw_log=None,
    ) -> "Team":
        """Each seat draws from its own stream (child ``r`` of ``seed``), its occupants one
        after another: for each, a standard normal per trial (its multiplier) and, with
        attrition, a standard exponential per trial (its stay). So a plan that adds a
        seat leaves every other seat's reps as they were (common random numbers)."""
        n = params.n
        # Mean time to leaving in days; no attrition (or a zero hazard) means never.
        with np.errstate(divide="ignore", over="ignore"):
            mean_stay = np.where(
                params.attrition_monthly > 0, DAYS_PER_MONTH / params.attrition_monthly, np.inf
            )
        seats = []
        ratio = level_ratio(spec, params.per_rep_day)
        for r, rep in enumerate(spec.reps):
            rng = np.random.default_rng(child_seed(seed, r))
            if draw_log is not None:
                rng = draw_log.wrap(rng)
            start, tenure = np.full(n, float(rep.start_day)), np.full(n, float(rep.tenure_days))
            occupants: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
            while True:
                # The seat's own rep may have a measured level; a backfill never has.
                who = rep if not occupants else dataclasses.replace(rep, level=None)
                mult = rep_multiplier(who, rng.standard_normal(n), params.rep_sigma, ratio)
                with np.errstate(over="ignore"):  # a tiny hazard: stays for ever
                    stay = (
                        rng.standard_exponential(n) * mean_stay
                        if spec.attrition
                        else np.full(n, np.inf)
                    )
                leave = np.where(np.isfinite(start), start + stay, np.inf)
                occupants.append((start, leave, tenure, mult))
                # A backfill takes the seat hiring_lag_days after its predecessor leaves.
                start = leave + spec.hiring_lag_days
                if not (spec.backfill and (start < spec.days).any()):
                    break
                start, tenure = np.where(start < spec.days, start, np.inf), np.zeros(n)
            seats.append(occupants)
        width = max(len(o) for o in seats)
        pad = (np.full(n, np.inf), np.full(n, np.inf), np.zeros(n), np.ones(n))
        return Team(
            *(
                np.stack(
                    [
                        np.stack([o[k][i] if k < len(o) else pad[i] for k in range(width)], axis=1)
                        for o in seats
                    ],
                    axis=1,
                )
                for i in range(4)
            )
        )

    def head(self, n: int) -> "Team":
        """The first ``n`` trials."""
        return Team(self.start[:n], self.leave[:n], self.tenure0[:n], self.mult[:n])

    @property
    def occupants(self) -> int:
        return self.start.shape[2]
