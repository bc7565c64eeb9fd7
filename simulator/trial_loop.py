"""The vectorised engine's trial loop, compiled with numba: docs/model.md, one trial at a time.

``engine_vector`` prepares a chunk of trials in NumPy (parameters drawn from the posterior,
levers applied, the team's timeline, distributions packed) and ``simulate_trials`` plays
each trial, day by day. Before day 0 come the deals that exist already: the open pipeline
(§6: each deal's first outcome given its age) and the marketing leads of the horizon (§4:
a Poisson number at uniform times, each to a random active rep). Then every working day
each active rep's opportunities, given the capacity share its open deals leave (§3), become
new deals after their lag; and reps leave (§2), their open deals (and deals created for
them after they left) going to the least-loaded active rep.

A deal's path (segment, amount, every stage's outcome and duration) does not depend on
when it starts, so it is worked out when the deal starts and what the trial records is
tallied then; only revenue per seat follows deals as they move.

Random numbers (docs/model.md §0) come from streams keyed per trial and purpose
(``compiled_random``): per seat for activities (working day ``w`` reads draw ``w``), per deal
(open deal ``i``; the ``n``-th deal of seat ``r``; marketing lead ``j``), and per trial for
counts. A deal reads its fixed uniforms by position (docs/model.md §0: 0 its segment and
size, 1 + s stage s, then its lag, or a lead's arrival and seat picks) and draws what varies
(gamma values) after them, so a lever that changes one deal's path, or how many deals a
seat makes, leaves every other deal's numbers alone: common random numbers.

Mostly one long function on purpose: numba reference-counts the arrays handed to a
helper at every call, which cost more than the work in the hot loops, so helpers here
take scalars only (``compiled_random``, ``compiled_dists``) and array work stays inline.
The exception is ``_play_events``, the reassignments of a day with a leaver or a late
deal: rare, so its calls cost nothing measurable, and out of the long function it makes
that compile faster.
"""

from __future__ import annotations

import math

import numpy as np

from . import compiled_dists as cd
from .compiled_random import (
    COUNT_GAMMA,
    COUNT_GAMMA_SHAPE,
    COUNT_POISSON,
    COUNT_POISSON_MEAN,
    COUNT_UNIFORM,
    group_member,
    negbin_quantile,
    poisson,
    poisson_quantile,
    skip,
    standard_gamma,
    stream_group,
    substream,
    uniform_at,
)
from .jit import njit

OPEN, WON, LOST = 0, 1, 2  # how a deal stands at the end (stalled: OPEN)
ORIGIN_OPEN, ORIGIN_NEW = 0, 1
KEY_ACTIVITIES, KEY_DEALS, KEY_OPEN, KEY_MARKETING = 0, 1, 2, 3  # keys[t, purpose]
FROM_OPEN, FROM_MARKETING, FROM_OUTBOUND = 0, 1, 2  # where a deal comes from
DONE, OVERFLOW = 0, 1  # a trial's status: OVERFLOW needs bigger buffers
LEAVES, LATE_DEAL = 0, 1  # reassignment events: a rep leaves; a deal made
# for a rep who has left needs an owner
NOBODY, ARRIVING = -1, -2  # load of a deal in nobody's load; of a late deal
# being reassigned
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


@njit(inline="always")
def _split(u, lo, width):
    """``split_uniform``: the uniform inside the branch [lo, lo + width) that ``u`` picked."""
    if not width > 0.0:
        return 0.0
    return min(max((u - lo) / width, 0.0), _BELOW_ONE)


@njit
def _count_table(m, size):
    """K ~ NegBin(size, mean m) (Poisson when size is inf): log P(0), P(0), P(K ≤ 1),
    P(K ≤ 2) and m / (size + m), so most days' counts need no search."""
    if np.isfinite(size):
        ratio = m / (size + m)
        log_p0 = -size * math.log1p(m / size)
        p0 = math.exp(log_p0)
        p1 = p0 * (size / 1.0 * ratio)
        p2 = p1 * ((size + 1.0) / 2.0 * ratio)
    else:
        ratio, log_p0 = 0.0, -m
        p0 = math.exp(log_p0)
        p1 = p0 * m
        p2 = p1 * (m / 2.0)
    return log_p0, p0, p0 + p1, p0 + p1 + p2, ratio


@njit
def _run_spare(state, mu, n, k_sum, kd, y):
    """The Poisson mean of the activities that yielded nothing over a run of ``n`` days with
    one activity mean ``mu`` and ``k_sum`` opportunities: with the day's mixing
    G ~ Gamma(kd, rate kd) and opportunities Poisson(mu·y·G), G given its day's count is
    Gamma(kd + K, rate kd + mu·y), so the run's sum is Gamma(n·kd + k_sum, rate kd + mu·y).
    Returns the mean and the new state."""
    if not n > 0:
        return 0.0, state
    g, state = standard_gamma(state, n * kd + k_sum)
    return (1.0 - y) * mu * g / (kd + mu * y), state


@njit(inline="always")
def _period(offsets, t):
    """The quarter that time ``t`` falls in (``calendar.period_at``): its index among the
    quarters starting at ``offsets``, clamped to them."""
    j = 0
    while j + 1 < offsets.size and offsets[j + 1] <= t:
        j += 1
    return j


@njit(inline="always")
def _clock(table, rates, begin, duration):
    """``calendar.warp``: when a closing duration started at ``begin`` (≥ 0) ends."""
    n = rates.size
    if not begin < n:
        return begin + duration
    d0 = int(begin)
    target = table[d0] + (begin - d0) * rates[d0] + duration
    if not target < table[n]:
        return n + (target - table[n])
    lo, hi = d0, n - 1  # table[lo] ≤ target < table[hi + 1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if table[mid] <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo + (target - table[lo]) / rates[lo]


@njit
def _play_events(
    n_ev,
    ev_tau,
    ev_kind,
    ev_ref,
    ev_seat,
    ev_close,
    d,
    t,
    days,
    start,
    leave,
    running,
    n_open_of,
    born_first,
    born_next,
    ends_first,
    ends_next,
    seat_first,
    seat_next,
    moved_on,
    day_load,
    moved_today,
    mine,
    load,
    c,
    until,
    won,
    is_won,
    diff,
    rep_b,
    wins_b,
):
    """Day ``d``'s events of ``simulate_trials`` in time order (§2): a rep leaving (its
    open deals go to the least-loaded active rep) or a deal made for a rep who had left
    (it needs an owner). Returns the number of deals moved. A function of its own, called
    only on days with events (rare), so the trial loop compiles in less time; its array
    arguments' reference counting then costs nothing measurable."""
    n_seats, n_occ = start.shape[1], start.shape[2]
    moves = 0
    n_moved = 0
    for q in range(n_ev):
        tau = ev_tau[q]
        leaver = ev_ref[q] if ev_kind[q] == LEAVES else ARRIVING
        # Open deals per seat at tau: those open at the start of the day, plus those
        # created since, minus those closed since, by the loads the day started
        # with; then the moves made today.
        for r in range(n_seats):
            n_open_of[r] = running[r]
        j = born_first[d]
        while j >= 0:
            was = day_load[j] if moved_on[j] == d else load[j]
            if was >= 0 and c[j] <= tau < until[j]:
                n_open_of[was] += 1
            j = born_next[j]
        j = ends_first[d]
        while j >= 0:
            was = day_load[j] if moved_on[j] == d else load[j]
            if was >= 0 and c[j] <= d and until[j] <= tau:
                n_open_of[was] -= 1
            j = ends_next[j]
        for i_mv in range(n_moved):
            j = moved_today[i_mv]
            if c[j] <= tau < until[j]:  # so not stranded: load[j] is a seat
                n_open_of[load[j]] += 1
                if day_load[j] >= 0:
                    n_open_of[day_load[j]] -= 1
        # The leaver's open deals. Its seat's list keeps only the leads that arrive
        # later (for the backfill who will hold the seat then); the open deals move
        # or stay stranded, the closed ones are done.
        n_mine = 0
        if leaver >= 0:
            j = seat_first[leaver]
            seat_first[leaver] = -1
            while j >= 0:
                following = seat_next[j]
                if load[j] == leaver and c[j] > tau:
                    seat_next[j], seat_first[leaver] = seat_first[leaver], j
                elif load[j] == leaver and tau < until[j]:
                    mine[n_mine] = j
                    n_mine += 1
                j = following
        # The active rep with the fewest open deals at tau; ties: lowest index.
        target = -1
        for r in range(n_seats):
            active = False
            for kk in range(n_occ):
                active |= start[t, r, kk] <= tau < leave[t, r, kk]
            if active and (target < 0 or n_open_of[r] < n_open_of[target]):
                target = r
        if ev_kind[q] == LEAVES:
            moved, frm = n_mine, leaver
        else:
            moved, frm = 1 if target >= 0 else 0, ev_seat[q]
            if target >= 0:
                j = ev_ref[q]
                mine[0], until[j] = j, ev_close[q]
                load[j] = ARRIVING  # below: joins target, leaves nobody
                i1 = days if not (until[j] < days) else int(math.ceil(until[j]))
                if until[j] < days and i1 > 0:
                    ends_next[j], ends_first[i1 - 1] = ends_first[i1 - 1], j
        for i_mine in range(moved if target >= 0 else n_mine):
            j = mine[i_mine]
            if moved_on[j] != d:  # the load it had at the start of the day
                moved_on[j], day_load[j] = d, (load[j] if load[j] >= 0 else -1)
                moved_today[n_moved] = j
                n_moved += 1
            # Off one seat's open days from tomorrow on, onto another's (§2).
            i0 = max(int(math.ceil(c[j])), d + 1)
            i1 = days if not (until[j] < days) else int(math.ceil(until[j]))
            if load[j] >= 0 and i0 < i1:
                diff[i0, frm] -= 1
                diff[i1, frm] += 1
            if target < 0:
                # Nobody left to take them: they stay with the leaver, close.
                load[j] = NOBODY
                until[j] = -np.inf
                continue
            load[j] = target
            seat_next[j], seat_first[target] = seat_first[target], j
            if i0 < i1:
                diff[i0, target] += 1
                diff[i1, target] -= 1
            rep_b[frm] -= won[j]
            rep_b[target] += won[j]
            wins_b[frm] -= is_won[j]
            wins_b[target] += is_won[j]
            moves += 1
    return moves


@njit
def simulate_trials(
    trials,
    keys,
    P,
    conversion,
    stall,
    segment_cum,
    rate,
    dispersion,
    yld,
    ramp_months,
    marketing_mean,
    team,
    open_deals,
    days,
    quarter_days,
    work_index,
    inv_days_per_month,
    capacity,
    calendar,
    buffers,
    out,
    counts,
):
    """Play each trial ``t`` in ``trials``; write what it records into ``out``.

    ``keys[t, purpose]``: two 64-bit words per purpose (``KEY_*``). ``P``: packed
    distributions (``compiled_dists.Packed``; slots: advance ``s``, lost ``S + s``, sizes
    ``2S + g``, lag ``2S + G``). Per trial: ``conversion``/``stall`` (trials, S),
    ``segment_cum`` (trials, G) normalised cumulative shares, activities ``rate``,
    ``dispersion`` (inf: Poisson), ``yld``, ``ramp_months``, ``marketing_mean`` (leads in
    the horizon). ``team``: (start, leave, tenure0, mult), each (trials, seats, occupants).
    ``open_deals``: (stage, age, amount, owner seat or -1, row before pruning: its stream,
    bucket of pushes when its expected close date times it (-1: not), its time scale, the
    stage model's log odds of its win). ``quarter_days``: a win before this time is won this
    quarter (``SimSpec.quarter_days``).
    ``work_index[d]``: day ``d``'s index among working days, -1 on weekends. ``capacity``:
    (week_hours, deal_hours, week_hours - deal_hours × free_deals, floor). ``calendar``
    (docs/model.md §6b, §8; built by ``engine_vector.calendar_arrays``): per trial and day
    the outbound multiplier; per trial the marketing leads' cumulative mean at each day (no
    rows: a flat rate); the conversion quarters' first days and each trial's log-odds
    shifts, the speed quarters' and log factors; the closing clock (a flag, then the won and
    lost cumulative tables and daily rates, the won ones per trial or in one row for all);
    per stage the tail's age (inf: none), its first slot (-1: none), and per trial and stage
    its P(advance) and P(stall); per bucket of pushes the slip model's first slot, per
    trial and bucket its P(won), and per trial its stage weight (§6c). ``buffers``: (deal
    store size, late deals size) of scratch arrays; a trial with more deals stops and
    reports OVERFLOW. ``out``: (tally, money (trials, origin, outcome), weekly (trials,
    weeks), rep (trials, seats), activities, moves, seat_wins (seats), deal_wins (2, open
    deal rows), status (trials)); seat_wins and deal_wins are counts over the finished
    trials, added to. ``counts``: draws by kind (``compiled_random.COUNT_*``), added to;
    ``None`` (a build without counting) except for the benchmark's RNG floor.
    """
    family, params, values, cum, meta, shared = P
    out_mult, mkt_cum, conv_off, conv_shift, speed_off, log_speed, clock, tails = calendar
    clocked, won_tables, won_clocks, lost_table, lost_rates = clock
    tail_from, tail_slot, tail_p, tail_pi, slip_slot, slip_p, slip_weight = tails
    n_conv, n_speed = conv_off.size, speed_off.size
    mkt_shaped = mkt_cum.shape[0] > 0
    # An open deal's survival may be kept across trials only when its duration is the same
    # in every trial: no per-trial speed factors.
    speed_free = n_speed == 1 and log_speed.shape[0] == 0
    start, leave, tenure0, mult = team
    o_stage, o_age, o_amount, o_owner, o_row, o_slip, o_scale, o_odds = open_deals
    week_hours, deal_hours, capacity_base, capacity_floor = capacity
    tally, money, weekly, rep, activities, moves, seat_wins, deal_wins, status = out
    n_seats, n_occ = start.shape[1], start.shape[2]
    n_stages, n_segments = conversion.shape[1], segment_cum.shape[1]
    size0, lag_slot = 2 * n_stages, 2 * n_stages + n_segments
    n_open, n_weeks = o_stage.size, weekly.shape[1]
    # A deal's fixed uniforms: 0 segment and size, 1 + s stage s, then its lag (a lead: its
    # arrival, its seat, a second seat pick); its further draws start after them.
    pos_lag = pos_arrival = n_stages + 1
    pos_seat, pos_repick, n_fixed = n_stages + 2, n_stages + 3, n_stages + 4
    cap, cap_late = buffers  # scratch sizes (deals, late deals)

    # The deal store: created, open until (-inf: in nobody's load), won amount, the seat
    # whose load it is in (-1: nobody). Deals created after their rep left wait for their
    # reassignment in ``late_*``: day, time, slot, seat, close.
    c, until, won = np.empty(cap), np.empty(cap), np.empty(cap)
    is_won = np.empty(cap, np.int64)  # 1: won (a count that moves with the deal's owner)
    load, mine = np.empty(cap, np.int64), np.empty(cap, np.int64)
    # For the reassignment events (§2), which need each seat's open deals at a time tau on
    # day d: linked lists of the deals in each seat's load, of the deals created inside
    # each day and of those closing inside each day; and the deals moved today, with the
    # seat they started the day in. Seat s then has running[s] open deals at the start of
    # day d, corrected by today's lists.
    seat_first, seat_next = np.empty(n_seats, np.int64), np.empty(cap, np.int64)
    born_first, born_next = np.empty(days + 1, np.int64), np.empty(cap, np.int64)
    ends_first, ends_next = np.empty(days + 1, np.int64), np.empty(cap, np.int64)
    moved_on, day_load = np.empty(cap, np.int64), np.empty(cap, np.int64)
    moved_today = np.empty(cap, np.int64)
    late_day, late_tau = np.empty(cap_late, np.int64), np.empty(cap_late)
    late_slot, late_seat = np.empty(cap_late, np.int64), np.empty(cap_late, np.int64)
    late_close = np.empty(cap_late)
    n_ev_cap = n_seats * n_occ + cap_late
    ev_tau, ev_kind, ev_ref = (
        np.empty(n_ev_cap),
        np.empty(n_ev_cap, np.int64),
        np.empty(n_ev_cap, np.int64),
    )
    ev_seat, ev_close = np.empty(n_ev_cap, np.int64), np.empty(n_ev_cap)
    # The deals starting on one day (before day 0: the open pipeline, then the leads):
    # where each comes from, its index there, its seat and (outbound) its rep's leaving.
    item_from, item_index = np.empty(cap, np.int64), np.empty(cap, np.int64)
    item_seat, item_leave = np.empty(cap, np.int64), np.empty(cap)
    diff = np.empty((days + 1, n_seats), np.int32)
    running = np.zeros(n_seats, np.int32)
    n_open_of = np.zeros(n_seats, np.int64)
    occupant = np.zeros(n_seats, np.int64)
    leaver_tau, leaver_seat = np.empty(n_seats * n_occ), np.empty(n_seats * n_occ, np.int64)
    order = np.empty(n_seats * n_occ, np.int64)
    seat_h = np.empty(n_seats, np.uint64)  # each seat's activity stream
    deal_group = np.empty(n_seats, np.uint64)  # what the streams of a seat's deals share
    made = np.zeros(n_seats, np.int64)  # deals each seat has made (its deal streams)
    # Per seat, the last opportunity mean and its count table (``_count_table``).
    seat_m, seat_log_p0, seat_p0 = np.empty(n_seats), np.empty(n_seats), np.empty(n_seats)
    seat_c1, seat_c2, seat_ratio = np.empty(n_seats), np.empty(n_seats), np.empty(n_seats)
    run_mu, run_n, run_k = np.empty(n_seats), np.zeros(n_seats), np.zeros(n_seats)
    ramped_on = np.empty((n_seats, n_occ))
    sf_adv, sf_lost = np.empty(n_open), np.empty(n_open)
    # The trial's parameters, gathered per trial: slot k's (a, b) and, per stage, the
    # branch bounds and the factors that split a uniform within its branch.
    n_slots = family.size
    pa, pb, prow = np.empty(n_slots), np.empty(n_slots), np.empty(n_slots, np.int64)
    # Per conversion quarter and stage (§8): the branch bounds and split factors.
    adv_hi, lost_hi = np.empty((n_conv, n_stages)), np.empty((n_conv, n_stages))
    adv_scale, lost_scale = np.empty((n_conv, n_stages)), np.empty((n_conv, n_stages))
    speed = np.ones(n_speed)  # per speed quarter: the duration factor
    rep_b, week_b = np.zeros(n_seats), np.zeros(n_weeks)
    wins_b = np.zeros(n_seats, np.int64)
    open_won = np.zeros(n_open, np.int64)  # per open deal: 2 won this quarter, 1 later
    tally_b, money_b = np.zeros((2, 3), np.int64), np.zeros((2, 3))
    n_uniform, n_gamma, gamma_shape, n_poisson, poisson_mean = 0, 0, 0.0, 0, 0.0
    sf_ready = False  # sf_adv/sf_lost hold the shared slots' values

    for t in trials:
        # What this trial draws is counted only if it finishes (a replayed trial once).
        counted_before = (n_uniform, n_gamma, gamma_shape, n_poisson, poisson_mean)
        ka0, ka1 = keys[t, KEY_ACTIVITIES, 0], keys[t, KEY_ACTIVITIES, 1]
        kd0, kd1 = keys[t, KEY_DEALS, 0], keys[t, KEY_DEALS, 1]
        ko0, ko1 = keys[t, KEY_OPEN, 0], keys[t, KEY_OPEN, 1]
        km0, km1 = keys[t, KEY_MARKETING, 0], keys[t, KEY_MARKETING, 1]
        cs = substream(ka0, ka1, 1, 0)  # the trial's stream for counts
        open_group, lead_group = stream_group(ko0, ko1, 0), stream_group(km0, km1, 1)
        fill, n_late, moves_b = 0, 0, 0
        # Plain loops, not slice assignments: each of those compiles a helper of its own.
        for r in range(n_seats):
            seat_first[r], running[r], occupant[r], made[r] = -1, 0, 0, 0
            rep_b[r], seat_m[r], run_mu[r], run_n[r], run_k[r] = 0.0, -1.0, -1.0, 0.0, 0.0
            wins_b[r] = 0
        for i in range(n_open):
            open_won[i] = 0
        for i in range(days + 1):
            born_first[i], ends_first[i] = -1, -1
            for r in range(n_seats):
                diff[i, r] = 0
        for w in range(n_weeks):
            week_b[w] = 0.0
        for origin in range(2):
            for o in range(3):
                tally_b[origin, o], money_b[origin, o] = 0, 0.0
        activity_group = stream_group(ka0, ka1, 0)
        for r in range(n_seats):
            seat_h[r] = group_member(activity_group, r)
            deal_group[r] = stream_group(kd0, kd1, r)
        for kk in range(n_slots):
            pa[kk], pb[kk] = params[kk, t, 0], params[kk, t, 1]
            prow[kk] = meta[kk, 0] + (t if meta[kk, 1] else 0)
        # This trial's won clock (its pace, §8), or the one all trials share.
        won_table = won_tables[t if won_tables.shape[0] > 1 else 0]
        won_rates = won_clocks[t if won_clocks.shape[0] > 1 else 0]
        for j in range(n_conv):
            for st in range(n_stages):
                p, pi = conversion[t, st], stall[t, st]
                if conv_shift.shape[0] > 0 and conv_shift[t, j] != 0.0:
                    # calendar.shifted_conversion: the log odds of advancing move.
                    room = 1.0 - pi
                    q = p / room if room > 0.0 else 0.0
                    if 0.0 < q < 1.0:
                        p = room / (
                            1.0 + math.exp(-(math.log(q) - math.log1p(-q) + conv_shift[t, j]))
                        )
                adv_hi[j, st], lost_hi[j, st] = p, 1.0 - pi
                adv_scale[j, st] = 1.0 / p if p > 0.0 else 0.0
                lost_scale[j, st] = 1.0 / (1.0 - pi - p) if 1.0 - pi - p > 0.0 else 0.0
        if log_speed.shape[0] > 0:
            for j in range(n_speed):
                speed[j] = math.exp(log_speed[t, j])
        # Leaving times inside the horizon, in time order (then seat): the days' events.
        n_leavers = 0
        for r in range(n_seats):
            for k in range(n_occ):
                if leave[t, r, k] < days:
                    leaver_tau[n_leavers], leaver_seat[n_leavers] = leave[t, r, k], r
                    n_leavers += 1
        # Stable insertion sort by time (a handful of leavers; a sort call compiles slowly).
        for q in range(n_leavers):
            p = q
            while p > 0 and leaver_tau[order[p - 1]] > leaver_tau[q]:
                order[p] = order[p - 1]
                p -= 1
            order[p] = q
        next_leaver = 0
        kd, y, rm = dispersion[t], yld[t], ramp_months[t]
        # The day each occupant is fully ramped: tenure (months) reaches ramp_months.
        inv_rm = 1.0 / rm if rm > 0 else 0.0
        for r in range(n_seats):
            for k in range(n_occ):
                ramped_on[r, k] = (
                    start[t, r, k] + rm / inv_days_per_month - tenure0[t, r, k]
                    if rm > 0
                    else -np.inf
                )
        negbin = np.isfinite(kd)
        spare, yielded = 0.0, 0
        # Its quantile at one uniform: more marketing never means fewer leads in a trial.
        n_leads = poisson_quantile(uniform_at(substream(km0, km1, 0, 0), 0), marketing_mean[t])
        n_uniform += 1
        overflow = n_open + n_leads > cap

        for d in range(-1, days):
            if overflow:
                break
            # --- which deals start today ---------------------------------------------------
            n_items = 0
            if d < 0:
                for i in range(n_open):
                    item_from[n_items], item_index[n_items] = FROM_OPEN, i
                    n_items += 1
                for j in range(n_leads):
                    item_from[n_items], item_index[n_items] = FROM_MARKETING, j
                    n_items += 1
            else:
                for r in range(n_seats):
                    running[r] += diff[d, r]
            wi = work_index[d] if d >= 0 else -1
            if wi >= 0:
                for seat in range(n_seats):
                    # The seat's occupant on day d: occupants follow one another (a backfill
                    # starts after its predecessor leaves), so it is the first not yet gone.
                    k = occupant[seat]
                    while k < n_occ and leave[t, seat, k] <= d:
                        k += 1
                    occupant[seat] = k
                    if k == n_occ or not start[t, seat, k] <= d:
                        continue
                    level = mult[t, seat, k]
                    if d < ramped_on[seat, k]:  # still ramping (§2)
                        months = (
                            tenure0[t, seat, k] + (d - start[t, seat, k])
                        ) * inv_days_per_month
                        level *= months * inv_rm
                    share = (week_hours - deal_hours * float(running[seat])) / capacity_base
                    mu = rate[t] * out_mult[t, d] * level * min(max(share, capacity_floor), 1.0)
                    if not mu > 0:
                        continue
                    # Opportunities: Binomial(NegBin(mu, kd), y) = NegBin(mu·y, kd), by their
                    # quantile at the day's uniform (one per day: common random numbers).
                    m = mu * y
                    if m != seat_m[seat]:
                        seat_m[seat] = m
                        (
                            seat_log_p0[seat],
                            seat_p0[seat],
                            seat_c1[seat],
                            seat_c2[seat],
                            seat_ratio[seat],
                        ) = _count_table(m, kd)
                    u = uniform_at(seat_h[seat], wi)
                    n_uniform += 1
                    # Most days' counts are 0, 1 or 2: compared without branching, as
                    # which of them it is cannot be predicted.
                    k_new = (
                        np.int64(u > seat_p0[seat])
                        + np.int64(u > seat_c1[seat])
                        + np.int64(u > seat_c2[seat])
                    )
                    if k_new == 3:
                        if negbin:
                            k_new = negbin_quantile(u, seat_log_p0[seat], seat_ratio[seat], kd)
                        else:
                            k_new = poisson_quantile(u, m)
                    yielded += k_new
                    # The activities that yielded nothing are only counted: given the day's
                    # mixing they are Poisson(λ(1 - y)); a run of days with one mean adds up
                    # to one gamma, drawn when the run ends (``_run_spare``).
                    if y < 1.0:
                        if not negbin:
                            spare += mu * (1.0 - y)
                        else:
                            if mu != run_mu[seat]:
                                x, cs = _run_spare(
                                    cs, run_mu[seat], run_n[seat], run_k[seat], kd, y
                                )
                                spare += x
                                n_gamma += run_n[seat] > 0
                                gamma_shape += run_n[seat] * kd + run_k[seat]
                                run_mu[seat], run_n[seat], run_k[seat] = mu, 0.0, 0.0
                            run_n[seat] += 1.0
                            run_k[seat] += k_new
                    if n_items + max(k_new, 2) > cap:
                        overflow = True
                        break
                    # Two items written whatever the count (the unused ones are
                    # overwritten): no branch on it for the usual counts.
                    first = made[seat]
                    for i_new in range(max(k_new, 2)):
                        item_from[n_items + i_new] = FROM_OUTBOUND
                        item_index[n_items + i_new] = first + i_new
                        item_seat[n_items + i_new] = seat
                        item_leave[n_items + i_new] = leave[t, seat, k]
                    made[seat] = first + k_new
                    n_items += k_new
            if overflow or fill + n_items > cap:
                overflow = True
                break

            # --- each deal starting today: its path, then what the trial records ---------
            for q in range(n_items):
                src, idx = item_from[q], item_index[q]
                origin, counted = ORIGIN_NEW, True
                close, outcome = np.inf, OPEN
                moving = True  # still going through the stages
                if src == FROM_OPEN:
                    # Its first outcome: timed by its expected close date (§6c); else
                    # conditional on its age (§6): from the stage's tail when it is that
                    # old (§6b), else with the quarter effects of when it entered the
                    # stage, at -age (§8).
                    h = group_member(open_group, o_row[idx])
                    state = skip(h, n_fixed)
                    st, age, slip = o_stage[idx], o_age[idx], o_slip[idx]
                    old = slip >= 0 or age >= tail_from[st]
                    if slip >= 0:
                        k_adv, k_lost = slip_slot[slip], slip_slot[slip] + 1
                        # open_pipeline.slip_chance, on scalars
                        q = min(max(slip_p[t, slip], 1e-12), 1.0 - 1e-12)
                        z = math.log(q / (1.0 - q)) + slip_weight[t] * o_odds[idx]
                        p, pi, f = 1.0 / (1.0 + math.exp(-z)), 0.0, o_scale[idx]
                    elif old:
                        k_adv, k_lost = tail_slot[st], tail_slot[st] + 1
                        p, pi, f = tail_p[t, st], tail_pi[t, st], 1.0
                    else:
                        k_adv, k_lost = st, n_stages + st
                        p, pi = adv_hi[_period(conv_off, -age), st], stall[t, st]
                        f = speed[_period(speed_off, -age)]
                    a_f = age / f
                    for kk in (k_adv, k_lost):
                        if not (sf_ready and shared[kk] and (old or speed_free)):
                            if family[kk] == cd.EMPIRICAL:
                                x = cd.empirical_sf(values, cum, kk, prow[kk], meta[kk, 2], a_f)
                            else:
                                x = cd.sf(family[kk], pa[kk], pb[kk], a_f)
                            if kk == k_adv:
                                sf_adv[idx] = x
                            else:
                                sf_lost[idx] = x
                    w_adv, w_lost = p * sf_adv[idx], (1.0 - p - pi) * sf_lost[idx]
                    total = w_adv + w_lost + pi
                    # Older than any deal either duration allows: stalled when π > 0, else
                    # lost at once.
                    p_adv = w_adv / total if total > 0.0 else 0.0
                    p_stall = pi / total if total > 0.0 else 0.0
                    u = uniform_at(h, 1 + st)
                    n_uniform += 1
                    if u < p_adv or not (p_stall > 0.0 and u >= 1.0 - p_stall):
                        if u < p_adv:
                            kk, uu, surv = k_adv, _split(u, 0.0, p_adv), sf_adv[idx]
                        else:
                            kk = k_lost
                            uu = _split(u, p_adv, 1.0 - p_stall - p_adv)
                            surv = sf_lost[idx]
                        if family[kk] == cd.EMPIRICAL:
                            rest = 0.0
                            if surv > 0.0:
                                rest = cd.empirical_residual(
                                    values, cum, kk, prow[kk], meta[kk, 2], uu, a_f
                                )
                        else:
                            rest, state, tries = cd.residual(
                                family[kk], pa[kk], pb[kk], uu, a_f, surv, state
                            )
                            n_gamma += tries
                            gamma_shape += tries * pa[kk]
                        rest *= f
                        time = rest
                        # A deal its date times closes when it did in history: no clock.
                        if clocked and slip < 0 and u >= p_adv:
                            time = _clock(lost_table, lost_rates, 0.0, rest)
                        elif clocked and slip < 0 and st == n_stages - 1:
                            time = _clock(won_table, won_rates, 0.0, rest)
                        if u >= p_adv:
                            moving = False
                            if time < days:
                                close, outcome = time, LOST
                    else:
                        time, moving = np.inf, False  # stalled: open for ever
                    origin, seat, amount = ORIGIN_OPEN, o_owner[idx], o_amount[idx]
                    counted = seat >= 0  # -1: nobody was on the team
                    path_from = st + 1
                else:
                    if src == FROM_MARKETING:
                        h = group_member(lead_group, idx)
                        state = skip(h, n_fixed)
                        if mkt_shaped:
                            # The inverse of the cumulative rate at the uniform (§8).
                            target = uniform_at(h, pos_arrival) * mkt_cum[t, days]
                            lo, hi = 0, days - 1
                            while lo < hi:
                                mid = (lo + hi + 1) // 2
                                if mkt_cum[t, mid] <= target:
                                    lo = mid
                                else:
                                    hi = mid - 1
                            step = mkt_cum[t, lo + 1] - mkt_cum[t, lo]
                            time = lo + ((target - mkt_cum[t, lo]) / step if step > 0.0 else 0.0)
                        else:
                            time = uniform_at(h, pos_arrival) * days
                        seat = min(int(uniform_at(h, pos_seat) * n_seats), n_seats - 1)
                        n_uniform += 2
                        active = False
                        for kk in range(n_occ):
                            active |= start[t, seat, kk] <= time < leave[t, seat, kk]
                        if not active:
                            # Choose exactly among the active seats: each stays equally likely.
                            n_active = 0
                            for r in range(n_seats):
                                for kk in range(n_occ):
                                    if start[t, r, kk] <= time < leave[t, r, kk]:
                                        n_active += 1
                            if n_active == 0:
                                continue  # nobody on the team: the lead is dropped
                            pick = int(uniform_at(h, pos_repick) * n_active)
                            n_uniform += 1
                            seat = -1
                            for r in range(n_seats):
                                for kk in range(n_occ):
                                    if start[t, r, kk] <= time < leave[t, r, kk]:
                                        if pick == 0 and seat < 0:
                                            seat = r
                                        pick -= 1
                    else:
                        seat = item_seat[q]
                        h = group_member(deal_group[seat], idx)
                        state = skip(h, n_fixed)
                        u = uniform_at(h, pos_lag)
                        n_uniform += 1
                        fam = family[lag_slot]
                        if fam == cd.EMPIRICAL:
                            lag = cd.empirical_quantile(
                                values,
                                cum,
                                lag_slot,
                                prow[lag_slot],
                                meta[lag_slot, 2],
                                pa[lag_slot],
                                u,
                            )
                        else:
                            lag, state = cd.draw(fam, pa[lag_slot], pb[lag_slot], u, state)
                            if fam == cd.GAMMA:
                                n_gamma += 1
                                gamma_shape += pa[lag_slot]
                        time = d + 0.5 + lag
                        if not time < days:  # created after the horizon: counted nowhere
                            continue
                        counted = item_leave[q] > time  # else it waits for a new owner
                    # The segment's uniform picks the segment and, split, is the size's.
                    u = uniform_at(h, 0)
                    n_uniform += 1
                    g = 0
                    for kk in range(n_segments - 1):
                        g += u > segment_cum[t, kk]
                    lo = segment_cum[t, g - 1] if g > 0 else 0.0
                    uu, kk = _split(u, lo, segment_cum[t, g] - lo), size0 + g
                    fam = family[kk]
                    if fam == cd.EMPIRICAL:
                        amount = cd.empirical_quantile(
                            values, cum, kk, prow[kk], meta[kk, 2], pa[kk], uu
                        )
                    else:
                        amount, state = cd.draw(fam, pa[kk], pb[kk], uu, state)
                        if fam == cd.GAMMA:
                            n_gamma += 1
                            gamma_shape += pa[kk]
                    path_from = 0
                created = time if src != FROM_OPEN else 0.0

                # The stages (§5): stage ``st`` reads its uniform at position 1 + st and,
                # split within the branch it picks, the duration's.
                for st in range(path_from, n_stages if moving else 0):
                    if not time < days:
                        moving = False  # durations are ≥ 0: it cannot close inside
                        break
                    u = uniform_at(h, 1 + st)
                    n_uniform += 1
                    j = _period(conv_off, time)  # the quarter it enters the stage (§8)
                    if u < adv_hi[j, st]:
                        kk, uu = st, min(u * adv_scale[j, st], _BELOW_ONE)
                    elif u < lost_hi[j, st]:
                        kk = n_stages + st
                        uu = min(max((u - adv_hi[j, st]) * lost_scale[j, st], 0.0), _BELOW_ONE)
                    else:
                        moving = False  # stalled: open for ever
                        break
                    fam = family[kk]
                    if fam == cd.EMPIRICAL:
                        x = cd.empirical_quantile(
                            values, cum, kk, prow[kk], meta[kk, 2], pa[kk], uu
                        )
                    else:
                        x, state = cd.draw(fam, pa[kk], pb[kk], uu, state)
                        if fam == cd.GAMMA:
                            n_gamma += 1
                            gamma_shape += pa[kk]
                    x *= speed[_period(speed_off, time)]
                    if clocked and kk >= n_stages:
                        time = _clock(lost_table, lost_rates, time, x)
                    elif clocked and st == n_stages - 1:
                        time = _clock(won_table, won_rates, time, x)
                    else:
                        time += x
                    if kk >= n_stages:
                        moving = False
                        if time < days:
                            close, outcome = time, LOST
                        break
                if moving and time < days:  # past the last stage: won
                    close, outcome = time, WON

                # Into the store, and what the trial records.
                slot = fill
                fill += 1
                c[slot] = created
                until[slot] = close if counted else -np.inf
                won[slot] = amount if outcome == WON else 0.0
                is_won[slot] = 1 if outcome == WON else 0
                load[slot] = seat if counted else -1
                tally_b[origin, outcome] += 1
                money_b[origin, outcome] += amount
                if outcome == WON:
                    week_b[int(math.floor(close)) // 7] += amount
                    if seat >= 0:  # open-pipeline orphans: nobody's
                        rep_b[seat] += amount
                        wins_b[seat] += 1
                    if src == FROM_OPEN:
                        open_won[idx] = 2 if close < quarter_days else 1
                moved_on[slot] = -1
                if counted:
                    # Open on days [ceil(created), ceil(close)): the seat's open deals (§3).
                    i0 = int(math.ceil(created))
                    i1 = days if not (close < days) else int(math.ceil(close))
                    diff[i0, seat] += 1
                    diff[i1, seat] -= 1
                    seat_next[slot], seat_first[seat] = seat_first[seat], slot
                    if i0 > created:  # created inside day i0 - 1
                        born_next[slot], born_first[i0 - 1] = born_first[i0 - 1], slot
                    if close < days and i1 > 0:  # closes inside (i1 - 1, i1]
                        ends_next[slot], ends_first[i1 - 1] = ends_first[i1 - 1], slot
                elif src == FROM_OUTBOUND:
                    if n_late == cap_late:
                        overflow = True
                        break
                    late_day[n_late], late_tau[n_late] = int(math.floor(created)), created
                    late_slot[n_late], late_seat[n_late] = slot, seat
                    late_close[n_late] = close
                    n_late += 1
            if d < 0 and not overflow:
                sf_ready = True
            if overflow or d < 0:
                continue

            # --- events in [d, d+1) in time order: leavers, then late deals ---------------
            n_ev = 0
            while next_leaver < n_leavers and leaver_tau[order[next_leaver]] < d + 1:
                q = order[next_leaver]
                ev_tau[n_ev], ev_kind[n_ev], ev_ref[n_ev] = leaver_tau[q], LEAVES, leaver_seat[q]
                ev_seat[n_ev], ev_close[n_ev] = leaver_seat[q], 0.0
                n_ev += 1
                next_leaver += 1
            for q in range(n_late):
                if late_day[q] == d:
                    ev_tau[n_ev], ev_kind[n_ev], ev_ref[n_ev] = late_tau[q], LATE_DEAL, late_slot[q]
                    ev_seat[n_ev], ev_close[n_ev] = late_seat[q], late_close[q]
                    n_ev += 1
            # Insertion sort by (time, kind, ref): a handful of events at most.
            for q in range(1, n_ev):
                tq, kq, fq, sq, cq = ev_tau[q], ev_kind[q], ev_ref[q], ev_seat[q], ev_close[q]
                p = q - 1
                while p >= 0 and (
                    ev_tau[p] > tq
                    or (
                        ev_tau[p] == tq
                        and (ev_kind[p] > kq or (ev_kind[p] == kq and ev_ref[p] > fq))
                    )
                ):
                    ev_tau[p + 1], ev_kind[p + 1], ev_ref[p + 1] = ev_tau[p], ev_kind[p], ev_ref[p]
                    ev_seat[p + 1], ev_close[p + 1] = ev_seat[p], ev_close[p]
                    p -= 1
                ev_tau[p + 1], ev_kind[p + 1], ev_ref[p + 1] = tq, kq, fq
                ev_seat[p + 1], ev_close[p + 1] = sq, cq

            if n_ev > 0:
                moves_b += _play_events(
                    n_ev,
                    ev_tau,
                    ev_kind,
                    ev_ref,
                    ev_seat,
                    ev_close,
                    d,
                    t,
                    days,
                    start,
                    leave,
                    running,
                    n_open_of,
                    born_first,
                    born_next,
                    ends_first,
                    ends_next,
                    seat_first,
                    seat_next,
                    moved_on,
                    day_load,
                    moved_today,
                    mine,
                    load,
                    c,
                    until,
                    won,
                    is_won,
                    diff,
                    rep_b,
                    wins_b,
                )

        if overflow:
            status[t] = OVERFLOW
            n_uniform, n_gamma, gamma_shape, n_poisson, poisson_mean = counted_before
            continue
        # --- what the trial records (§7) ---------------------------------------------------
        if negbin and y < 1.0:
            for r in range(n_seats):
                x, cs = _run_spare(cs, run_mu[r], run_n[r], run_k[r], kd, y)
                spare += x
                n_gamma += run_n[r] > 0
                gamma_shape += run_n[r] * kd + run_k[r]
        extra, cs = poisson(cs, spare)
        n_poisson += 1
        poisson_mean += spare
        activities[t] = yielded + extra
        for r in range(n_seats):
            rep[t, r] = rep_b[r]
            seat_wins[r] += wins_b[r]
        for i in range(n_open):
            if open_won[i] > 0:
                deal_wins[1, o_row[i]] += 1
                if open_won[i] == 2:
                    deal_wins[0, o_row[i]] += 1
        for w in range(n_weeks):
            weekly[t, w] = week_b[w]
        for origin in range(2):
            for o in range(3):
                tally[t, origin, o] = tally_b[origin, o]
                money[t, origin, o] = money_b[origin, o]
        moves[t] = moves_b
        status[t] = DONE
    # None (every run but the benchmark's): numba prunes this branch when it compiles, and
    # the counters above, read nowhere else, compile to nothing: the counting build is a
    # separate compilation that only ``salesim bench`` makes.
    if counts is not None:
        counts[COUNT_UNIFORM] += n_uniform
        counts[COUNT_GAMMA] += n_gamma
        counts[COUNT_GAMMA_SHAPE] += gamma_shape
        counts[COUNT_POISSON] += n_poisson
        counts[COUNT_POISSON_MEAN] += poisson_mean
