"""The vectorised engine's day loop, compiled with numba: one trial at a time, day by day.

Everything random is drawn before this loop, in NumPy, by ``engine_vector`` (activity
mixing and uniforms per (working day, trial, seat); every deal row's path: its lag, amount,
stage durations and how it ends). What is left is bookkeeping that depends on what happened
before in the same trial, and so cannot be vectorised across deals: each rep's open deals
(the capacity share of docs/model.md §3), the deals created each day, and reps leaving
(their open deals go to the least-loaded active rep, §2) in time order. As plain NumPy this
took three quarters of the engine's time in small array operations; compiled it is a few
percent (benchmarks/README.md).

The arithmetic mirrors the NumPy engine it replaced operation for operation (the same
float operations in the same order), so results did not change with it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

OPEN, WON, LOST, STALL = 0, 1, 2, 3
ORIGIN_NEW = 1
NEED_ROWS = 1          # a trial's status: it needs more deal rows than it was given


@njit(cache=True)
def poisson_quantile(u: float, lam: float) -> int:
    """Smallest ``k`` with P(Poisson(lam) ≤ k) ≥ u, by sequential search (one uniform per
    count whatever the mean: common random numbers, docs/model.md §0)."""
    if lam > 30.0:
        # exp(-lam) underflows for large means: sum the terms in log space instead.
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
    if u > cum:
        n = 0
        while True:
            n += 1
            prob *= lam / n
            cum += prob
            k = n
            # prob underflowing to 0: the rest of the tail is below double precision.
            if not (u > cum and prob > 0.0):
                break
    return k


@njit(cache=True)
def _count(diff, running, seat, c, e, sign, day, days):
    """Add (sign=+1) or remove a deal from ``seat``'s open count on days in [c, e).
    ``day``: the day being stepped (-1: none); ``running`` already holds days up to it."""
    i0 = int(math.ceil(c))
    i1 = days if not (e < days) else int(math.ceil(e))
    diff[i0, seat] += sign
    diff[i1, seat] -= sign
    if day >= 0:
        if i0 <= day:
            running[seat] += sign
        if i1 <= day:
            running[seat] -= sign


@njit(cache=True)
def _active_at(start, leave, b, r, tau):
    for k in range(start.shape[2]):
        if start[b, r, k] <= tau < leave[b, r, k]:
            return True
    return False


@njit(cache=True)
def simulate_days(trials, days, working, work_index, inv_days_per_month,
                  start, leave, tenure0, mult, rate, ramp_months, yld,
                  week_hours, deal_hours, capacity_base, capacity_floor,
                  mix, uniform, neg_log_u,
                  row_ptr, row_len, row_first, lag, amount, total, end,
                  init_ptr, init_seat, init_created, init_close, init_amount, init_outcome,
                  init_origin, init_counted,
                  tally, money, weekly, rep, yielded, spare, moves):
    """Step ``days`` days of each trial in ``trials`` (local indices into the batch).

    Inputs per trial ``b``: the team's occupants (``start``/``leave``/``tenure0``/``mult``,
    (trials, seats, occupants)); activity draws ``mix``/``uniform`` (trial, working day,
    seat) and ``neg_log_u = -log(uniform)``;
    deal rows ``row_ptr[b] + j`` for ``j`` in ``[row_first[b], row_len[b])``, taken in
    creation order (``lag``, ``amount``, ``total``: the time from entering the first stage
    to leaving the last one it leaves, ``end``: how its path ends); the deals that exist
    before day 0, ``init_*[init_ptr[b]:init_ptr[b + 1]]`` (open pipeline, marketing leads:
    seat, created, close, amount, outcome, origin, and whether they count toward their
    seat's open deals).
    Outputs (``tally``, ``money`` (origin, trial, outcome), ``weekly`` (trial, week), ``rep``,
    ``yielded``, ``spare``, ``moves``) are written for every trial that finishes. Returns
    each trial's status: 0, or ``NEED_ROWS`` when it ran out of deal rows (its outputs are
    then untouched).
    """
    n_seats, n_occ = start.shape[1], start.shape[2]
    n_weeks = weekly.shape[1]
    status = np.zeros(trials.size, dtype=np.int8)
    cap = 1
    for i in range(trials.size):
        b = trials[i]
        cap = max(cap, init_ptr[b + 1] - init_ptr[b] + max(0, row_len[b] - row_first[b]))
    c = np.empty(cap)
    until = np.empty(cap)
    won = np.empty(cap)
    load = np.empty(cap, dtype=np.int64)
    diff = np.empty((days + 1, n_seats), dtype=np.int32)
    running = np.zeros(n_seats, dtype=np.int32)
    n_open = np.zeros(n_seats + 1, dtype=np.int64)
    mine = np.empty(cap, dtype=np.int64)
    rep_b = np.zeros(n_seats)
    week_b = np.zeros(n_weeks)
    day_week = np.zeros(n_weeks)
    # Deals created after their rep left (reassigned at creation): day, time, slot, seat.
    late_day = np.empty(cap, dtype=np.int64)
    late_tau = np.empty(cap)
    late_slot = np.empty(cap, dtype=np.int64)
    late_seat = np.empty(cap, dtype=np.int64)
    late_close = np.empty(cap)
    occupant = np.zeros(n_seats, dtype=np.int64)
    leaver_tau = np.empty(n_seats * n_occ)
    leaver_seat = np.empty(n_seats * n_occ, dtype=np.int64)
    n_events = n_seats * n_occ + cap
    ev_tau = np.empty(n_events)
    ev_kind = np.empty(n_events, dtype=np.int64)
    ev_ref = np.empty(n_events, dtype=np.int64)
    ev_seat = np.empty(n_events, dtype=np.int64)
    ev_close = np.empty(n_events)
    tally_b = np.zeros((2, 3), dtype=np.int64)     # (origin, outcome)
    money_b = np.zeros((2, 3))
    day_money = np.zeros(3)

    for i in range(trials.size):
        b = trials[i]
        fill = 0
        diff[:, :] = 0
        running[:] = 0
        rep_b[:] = 0.0
        week_b[:] = 0.0
        tally_b[:, :] = 0
        money_b[:, :] = 0.0
        spare_b, yielded_b, moves_b = 0.0, 0, 0
        # The deals that exist before day 0 (open pipeline, marketing leads), in order.
        for q in range(init_ptr[b], init_ptr[b + 1]):
            seat, created, close = init_seat[q], init_created[q], init_close[q]
            outcome, origin, counted = init_outcome[q], init_origin[q], init_counted[q]
            c[fill] = created
            until[fill] = close if counted else -np.inf
            won[fill] = init_amount[q] if outcome == WON else 0.0
            load[fill] = seat if counted else -1
            fill += 1
            tally_b[origin, outcome] += 1
            money_b[origin, outcome] += init_amount[q]
            if outcome == WON:
                week_b[int(math.floor(close)) // 7] += init_amount[q]
                if seat >= 0:        # open-pipeline orphans: credited to nobody
                    rep_b[seat] += init_amount[q]
            if counted:
                _count(diff, running, seat, created, close, 1, -1, days)
        occupant[:] = 0
        # Leaving times inside the horizon, in time order (then seat): the day's events.
        n_leavers = 0
        for r in range(n_seats):
            for k in range(n_occ):
                if leave[b, r, k] < days:
                    leaver_tau[n_leavers], leaver_seat[n_leavers] = leave[b, r, k], r
                    n_leavers += 1
        order = np.argsort(leaver_tau[:n_leavers], kind="mergesort")
        next_leaver = 0
        n_late = 0
        row = row_first[b]
        y = yld[b]
        failed = False

        for d in range(days):
            for r in range(n_seats):
                running[r] += diff[d, r]
            if working[d]:
                wi = work_index[d]
                day_spare = 0.0
                day_money[:] = 0.0
                day_week[:] = 0.0
                for seat in range(n_seats):
                    # The seat's occupant on day d: occupants follow one another (a backfill
                    # starts after its predecessor leaves), so it is the first not yet gone.
                    k = occupant[seat]
                    while k < n_occ and leave[b, seat, k] <= d:
                        k += 1
                    occupant[seat] = k
                    if k == n_occ or not start[b, seat, k] <= d:
                        continue
                    st, seat_leave = start[b, seat, k], leave[b, seat, k]
                    rm = ramp_months[b]
                    if rm > 0:
                        months = (tenure0[b, seat, k] + (d - st)) * inv_days_per_month
                        level = mult[b, seat, k] * min(months / rm, 1.0)
                    else:
                        level = mult[b, seat, k] * 1.0
                    share = (week_hours - deal_hours * float(running[seat])) / capacity_base
                    share = min(max(share, capacity_floor), 1.0)
                    mu = rate[b] * level * share
                    if not mu > 0:
                        continue
                    lam = mu * mix[b, wi, seat]
                    # No opportunity iff u ≤ P(0) = exp(-λ): most rep-days, so test it on
                    # -log u (precomputed) and skip the exp.
                    k_new = 0
                    if neg_log_u[b, wi, seat] < lam * y:
                        k_new = poisson_quantile(uniform[b, wi, seat], lam * y)
                    day_spare += lam * (1 - y)
                    yielded_b += k_new
                    for _ in range(k_new):
                        if row >= row_len[b]:
                            failed = True
                            break
                        j = row_ptr[b] + row
                        row += 1
                        created = d + 0.5 + lag[j]
                        if not created < days:     # created after the horizon: nowhere
                            continue
                        now = created + total[j]
                        outcome = OPEN
                        if now < days and end[j] != STALL:
                            outcome = end[j]
                        close = now if outcome != OPEN else np.inf
                        present = seat_leave > created
                        slot = fill
                        fill += 1
                        c[slot] = created
                        until[slot] = close if present else -np.inf
                        won[slot] = amount[j] if outcome == WON else 0.0
                        load[slot] = seat if present else -1
                        tally_b[ORIGIN_NEW, outcome] += 1
                        day_money[outcome] += amount[j]
                        if outcome == WON:
                            day_week[int(math.floor(close)) // 7] += amount[j]
                            rep_b[seat] += amount[j]
                        if present:
                            _count(diff, running, seat, created, close, 1, -1, days)
                        else:
                            late_day[n_late] = int(math.floor(created))
                            late_tau[n_late] = created
                            late_slot[n_late] = slot
                            late_seat[n_late] = seat
                            late_close[n_late] = close
                            n_late += 1
                    if failed:
                        break
                if failed:
                    break
                spare_b += day_spare
                for o in range(3):
                    money_b[ORIGIN_NEW, o] += day_money[o]
                for w in range(n_weeks):
                    week_b[w] += day_week[w]

            # Events in [d, d+1) in time order: leavers (kind 0), late deals (kind 1).
            n_ev = 0
            while next_leaver < n_leavers and leaver_tau[order[next_leaver]] < d + 1:
                q = order[next_leaver]
                ev_tau[n_ev], ev_kind[n_ev], ev_ref[n_ev] = leaver_tau[q], 0, leaver_seat[q]
                ev_seat[n_ev], ev_close[n_ev] = leaver_seat[q], 0.0
                n_ev += 1
                next_leaver += 1
            for q in range(n_late):
                if late_day[q] == d:
                    ev_tau[n_ev], ev_kind[n_ev], ev_ref[n_ev] = late_tau[q], 1, late_slot[q]
                    ev_seat[n_ev], ev_close[n_ev] = late_seat[q], late_close[q]
                    n_ev += 1
            # Insertion sort by (time, kind, ref): a handful of events at most.
            for q in range(1, n_ev):
                t, kd, rf = ev_tau[q], ev_kind[q], ev_ref[q]
                st_, cl = ev_seat[q], ev_close[q]
                p = q - 1
                while p >= 0 and (ev_tau[p] > t or (ev_tau[p] == t and (
                        ev_kind[p] > kd or (ev_kind[p] == kd and ev_ref[p] > rf)))):
                    ev_tau[p + 1], ev_kind[p + 1], ev_ref[p + 1] = ev_tau[p], ev_kind[p], ev_ref[p]
                    ev_seat[p + 1], ev_close[p + 1] = ev_seat[p], ev_close[p]
                    p -= 1
                ev_tau[p + 1], ev_kind[p + 1], ev_ref[p + 1] = t, kd, rf
                ev_seat[p + 1], ev_close[p + 1] = st_, cl

            for q in range(n_ev):
                tau = ev_tau[q]
                leaver = ev_ref[q] if ev_kind[q] == 0 else -2
                # One pass over the trial's deals: open deals per seat at tau (index 0:
                # deals of nobody) and the leaver's open deals.
                n_open[:] = 0
                n_mine = 0
                for j in range(fill):
                    is_open = (c[j] <= tau) & (tau < until[j])
                    n_open[load[j] + 1] += is_open
                    if is_open & (load[j] == leaver):
                        mine[n_mine] = j
                        n_mine += 1
                # The active rep with the fewest open deals at tau; ties: lowest index.
                target = -1
                for r in range(n_seats):
                    if _active_at(start, leave, b, r, tau):
                        if target < 0 or n_open[r + 1] < n_open[target + 1]:
                            target = r
                if ev_kind[q] == 0:
                    frm = leaver
                    for i_mine in range(n_mine):
                        j = mine[i_mine]
                        _count(diff, running, frm, c[j], until[j], -1, d, days)
                        if target < 0:
                            # Nobody left to take them: they stay with the leaver, close.
                            load[j] = -1
                            until[j] = -np.inf
                        else:
                            load[j] = target
                            _count(diff, running, target, c[j], until[j], 1, d, days)
                            rep_b[frm] -= won[j]
                            rep_b[target] += won[j]
                            moves_b += 1
                elif target >= 0:
                    j, frm = ev_ref[q], ev_seat[q]
                    load[j] = target
                    until[j] = ev_close[q]
                    _count(diff, running, target, c[j], ev_close[q], 1, d, days)
                    rep_b[frm] -= won[j]
                    rep_b[target] += won[j]
                    moves_b += 1

        if failed:
            status[i] = NEED_ROWS
            continue
        for r in range(n_seats):
            rep[b, r] = rep_b[r]
        for w in range(n_weeks):
            weekly[b, w] = week_b[w]
        for origin in range(2):
            for o in range(3):
                tally[origin, b, o] = tally_b[origin, o]
                money[origin, b, o] = money_b[origin, o]
        spare[b], yielded[b], moves[b] = spare_b, yielded_b, moves_b
    return status
