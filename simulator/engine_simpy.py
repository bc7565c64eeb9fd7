"""The SimPy engine: the readable reference implementation of docs/model.md.

One trial is one SimPy environment with plain generator processes: ``rep`` (daily
prospecting), ``outbound`` and ``marketing`` (new deals arriving), ``opportunity`` (a deal
moving stage by stage to won, lost, stalled or still open at the horizon) and ``leaver`` (attrition,
reassignment, backfill). Every random draw comes from the trial's streams
(``simulator.spec.STREAMS``); the engine never reads files or prints.

Deals draw their uniforms when they are created and map them through inverse CDFs
(``Distribution.from_uniform``), so a strategy that scales sizes or durations, or lifts
conversion, keeps every deal's draws (common random numbers).
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import polars as pl
import simpy

from .calendar import Layout, clock_table, shifted_conversion
from .distributions import split_uniform
from .model import TrialParams
from .open_pipeline import OpenPipeline, slip_chance
from .results import TOTAL_COLUMNS, ChunkResult
from .spec import SimSpec, level_ratio, rep_multiplier, trial_streams
from .units import DAYS_PER_MONTH

OPEN, NEW = 0, 1  # deal origins: open at the start, created in the horizon


# --- the things a trial moves around -----------------------------------------------------------
class Person:
    """A rep in a seat; a backfill is a new ``Person`` in the leaver's seat."""

    __slots__ = ("seat", "start", "tenure0", "mult", "leave", "left", "deals")

    def __init__(self, seat: int, start: float, tenure0: float, mult: float, leave: float):
        self.seat, self.start, self.tenure0 = seat, start, tenure0
        self.mult, self.leave = mult, leave
        self.left = False
        self.deals: set[Deal] = set()


class Deal:
    """An open deal. ``u`` holds one uniform per stage (absolute stage index), ``U_s``: it
    picks advance, lost or stall, and split within its branch it is the duration's uniform
    for the inverse CDF (docs/model.md §0, §5)."""

    __slots__ = ("amount", "owner", "origin", "stage", "u", "row")

    def __init__(
        self, amount: float, owner: Person | None, origin: int, stage: int, u, row: int = -1
    ):
        self.amount, self.owner, self.origin, self.stage, self.u = amount, owner, origin, stage, u
        self.row = row  # an open deal's row among the spec's open deals; -1: a new deal


class Ledger:
    """What one trial records (docs/model.md §7)."""

    def __init__(self, days: int, weeks: int, seats: int, quarter_days: int, open_rows: int):
        self.days, self.quarter_days = days, quarter_days
        self.revenue = [0.0, 0.0]  # by origin
        self.wins = [0, 0]
        self.losses = 0
        self.created = 0
        self.pipeline_created = 0.0
        self.activities = 0
        self.weekly = np.zeros(weeks)
        self.rep = np.zeros(seats)
        self.rep_wins = np.zeros(seats, dtype=np.int64)
        # Per open deal (row): won by the quarter's end, by the horizon's end (0 or 1).
        self.deal_wins = np.zeros((2, open_rows), dtype=np.int64)
        self.orphans: set[Deal] = set()  # open deals with no rep active at the start

    def won(self, deal: Deal, t: float) -> None:
        self.revenue[deal.origin] += deal.amount
        self.wins[deal.origin] += 1
        self.weekly[int(t) // 7] += deal.amount
        if deal.owner is not None:
            self.rep[deal.owner.seat] += deal.amount
            self.rep_wins[deal.owner.seat] += 1
        if deal.row >= 0:
            self.deal_wins[0, deal.row] = int(t) < self.quarter_days
            self.deal_wins[1, deal.row] = 1
        self._close(deal)

    def lost(self, deal: Deal) -> None:
        self.losses += 1
        self._close(deal)

    def _close(self, deal: Deal) -> None:
        (deal.owner.deals if deal.owner is not None else self.orphans).discard(deal)


STALL = math.inf  # the wait of a stalled deal: it never leaves its stage (§5)


class Stages:
    """One trial's stage parameters, ready for per-deal inverse-CDF draws (§5, §6b, §8)."""

    def __init__(self, p: TrialParams, layout: Layout, days: int):
        self.n = len(p.conversion)
        self.conversion = p.conversion
        self.stall = p.stall
        self.advance = p.advance
        self.lost = p.lost
        self.tails = p.tails
        self.slips, self.slip_weight = p.slips, p.slip_stage_weight
        self.layout = layout
        self.shift = p.effect("conversion")
        self.log_speed = p.effect("speed")
        won = layout.won_clock(p.effect("pace"), days)  # this trial's (§8)
        self.won_clock = None if won is None else (won, clock_table(won))
        self._adv = [d.from_uniform for d in p.advance]
        self._lost = [d.from_uniform for d in p.lost]

    def at(self, s: int, t):
        """P(advance) and the speed factor of stage ``s`` entered at time(s) ``t`` (§8); the
        stage's own values, untouched, when the trial has no such effects."""
        p = self.conversion[s]
        if self.shift:
            p = shifted_conversion(
                p, self.stall[s], self.layout.effect("conversion", self.shift, t)
            )
        f = np.exp(self.layout.effect("speed", self.log_speed, t)) if self.log_speed else 1.0
        return p, f

    def _wait(self, s: int, advance: bool, begin: float, duration: float) -> float:
        """How long from ``begin`` until an event of ``duration`` happens: a win or a loss
        runs on the closing clock, an earlier stage's advance on plain days (§8)."""
        clock = self.won_clock if advance else self.layout.lost_clock
        if (advance and s < self.n - 1) or clock is None:
            return duration
        return float(self.layout.close(clock, begin, duration)) - begin

    def step(self, deal: Deal, now: float) -> tuple[bool, float]:
        """Advance, lost or stalled (never leaves: wait ``STALL``) from the deal's current
        stage, entered at ``now``, and after how long: advance if ``U_s < p_s``, stall if
        ``U_s ≥ 1 − π_s``; the duration is an inverse-CDF draw at ``U_s`` split within its
        branch, times the speed factor."""
        s = deal.stage
        u, pi = deal.u[s], self.stall[s]
        p, f = self.at(s, now)
        p, f = float(p), float(f)
        if u < p:
            d = f * float(self._adv[s](split_uniform(u, 0.0, p)))
            return True, self._wait(s, True, now, d)
        if u >= 1.0 - pi:
            return False, STALL
        d = f * float(self._lost[s](split_uniform(u, p, 1.0 - pi - p)))
        return False, self._wait(s, False, now, d)

    def first_open(self, prep: OpenPipeline, uniforms: np.ndarray):
        """Outcome and remaining time in the current stage of deals open at the start,
        conditional on having survived ``age`` days there (§6): weights p·S_A(a),
        (1−p−π)·S_L(a) and π; advance if ``U_s`` is below the first share, stall if at or
        above one minus the last. Deals at least as old as their stage's tail use it (§6b);
        the others take the quarter effects of when they entered, at ``−age`` (§8). A deal
        its expected close date times (§6c) uses its bucket of pushes like a tail from age 0,
        its times scaled by its own ``scale``, on plain days."""
        stage, age = prep.stage, prep.age
        advance = np.zeros(stage.size, dtype=bool)
        wait = np.zeros(stage.size)
        for i, s, p, pi, adv_d, lost_d, f, clocked in self._open_groups(prep):
            a, u = age[i], uniforms[i, s]
            go, stalled, rest = _open_outcome(p, pi, adv_d, lost_d, a / f, u)
            rest = rest * f
            advance[i] = go
            closing = ~go | (s == self.n - 1)
            done = ~stalled
            wait[i] = np.where(stalled, STALL, rest)
            won_close = done & go & closing & clocked
            lost_close = done & ~go & clocked
            if won_close.any() and self.won_clock is not None:
                wait[i[won_close]] = self.layout.close(self.won_clock, 0.0, rest[won_close])
            if lost_close.any() and self.layout.lost_clock is not None:
                wait[i[lost_close]] = self.layout.close(
                    self.layout.lost_clock, 0.0, rest[lost_close]
                )
        return advance, wait

    def _open_groups(self, prep: OpenPipeline):
        """The open deals in groups that share their parameters: (indices, stage, P(advance),
        P(stall), durations, time factor, on the closing clock)."""
        timed = prep.slip >= 0
        for s in np.unique(prep.stage):
            tail = self.tails[s]
            here = (prep.stage == s) & ~timed
            old = here & (prep.age >= tail.from_age) if tail is not None else np.zeros_like(here)
            if (i := np.flatnonzero(here & ~old)).size:
                p, f = self.at(s, -prep.age[i])
                yield i, s, p, self.stall[s], self.advance[s], self.lost[s], f, True
            if tail is not None and (i := np.flatnonzero(old)).size:
                yield i, s, tail.conversion, tail.stall, tail.advance, tail.lost, 1.0, True
        for b, bucket in enumerate(self.slips):
            if (i := np.flatnonzero(prep.slip == b)).size:
                p = slip_chance(bucket.conversion, self.slip_weight, prep.odds[i])
                f = prep.scale[i]
                yield i, self.n - 1, p, 0.0, bucket.advance, bucket.lost, f, False


def _open_outcome(p, pi, advance, lost, a, u):
    """§6 for deals of one stage at ages ``a``: whether each advances, stalls, and its
    residual time in the stage (on the durations' own scale)."""
    adv = p * advance.sf(a)
    gone = (1 - p - pi) * lost.sf(a)
    denom = adv + gone + pi
    # Older than any deal either duration allows: stalled when π > 0, else lost at
    # once (docs/model.md §6).
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(denom > 0, adv / denom, 0.0)
        r = np.where(denom > 0, pi / denom, 0.0)
    go = u < q
    stalled = ~go & (u >= 1.0 - r) & (r > 0)
    lose = ~go & ~stalled
    v = np.where(go, split_uniform(u, 0.0, q), split_uniform(u, q, 1.0 - r - q))
    rest = np.zeros(np.shape(a))
    if go.any():
        rest[go] = advance.residual(v[go], a[go])
    if lose.any():
        rest[lose] = lost.residual(v[lose], a[lose])
    return go, stalled, rest


class Team:
    """Who is on the team, and the reassignment rule (§2)."""

    def __init__(self, seats: int):
        self.people: list[Person] = []  # everyone, backfills included
        self.seats: list[Person | None] = [None] * seats  # latest person in each seat

    def add(self, person: Person) -> None:
        self.people.append(person)
        self.seats[person.seat] = person  # a backfill is hired once its seat's rep has left

    def active(self, t: float) -> list[Person]:
        """Reps who have started and not left, in seat order."""
        return [p for p in self.seats if p is not None and p.start <= t and not p.left]

    def least_loaded(self, t: float, exclude: Person | None = None) -> Person | None:
        """The active rep with the fewest open deals (ties: lowest seat), or None."""
        best = None
        for p in self.active(t):
            if p is not exclude and (best is None or len(p.deals) < len(best.deals)):
                best = p
        return best


# --- processes ------------------------------------------------------------------------------------
def opportunity(env, deal: Deal, advance: bool, wait: float, stages: Stages, ledger: Ledger):
    """A deal from its current stage to won, lost, or still open at the horizon (§5)."""
    while True:
        if env.now + wait >= ledger.days:
            return  # its next event falls after the horizon: open at the end
        yield env.timeout(wait)
        if not advance:
            ledger.lost(deal)
            return
        deal.stage += 1
        if deal.stage == stages.n:
            ledger.won(deal, env.now)
            return
        advance, wait = stages.step(deal, env.now)


def rep(env, person: Person, trial: "Trial"):
    """Daily prospecting of one rep on working days while active (§3, §4 outbound)."""
    p, rng, ledger, share = trial.params, trial.rng["activities"], trial.ledger, trial.share
    rate, disp, yld, ramp_months = p.per_rep_day, p.dispersion, p.opportunity_yield, p.ramp_months
    poisson = not math.isfinite(disp)
    for d in trial.work_days:
        if d < person.start:
            continue
        if d >= person.leave:
            return
        yield env.timeout(d - env.now)
        if person.left:
            return
        months = (person.tenure0 + d - person.start) / DAYS_PER_MONTH
        ramp = min(1.0, months / ramp_months) if ramp_months > 0 else 1.0
        mu = rate * trial.outbound[d] * person.mult * ramp * share(len(person.deals))
        if mu <= 0:
            continue
        a = int(rng.poisson(mu) if poisson else rng.negative_binomial(disp, disp / (disp + mu)))
        ledger.activities += a
        k = int(rng.binomial(a, yld)) if a else 0
        if k:
            for lag in np.atleast_1d(p.lag.sample(rng, k)).tolist():
                at = d + 0.5 + lag
                if at < trial.days:  # created after the horizon: counted nowhere
                    env.process(outbound(env, at, person, trial))


def outbound(env, at: float, person: Person, trial: "Trial"):
    """An activity's opportunity, created ``at`` after its lag; then it runs as a deal."""
    yield env.timeout(at - env.now)
    owner = person
    if person.left:  # its rep left during the lag: the leaver's rule (§2)
        owner = trial.team.least_loaded(env.now) or person
    deal = trial.new_deal(owner)
    advance, wait = trial.stages.step(deal, env.now)
    yield from opportunity(env, deal, advance, wait, trial.stages, trial.ledger)


def marketing(env, arrivals: list[tuple[float, float]], trial: "Trial"):
    """Marketing-sourced opportunities: each goes to an active rep chosen at random (§4)."""
    for at, u in arrivals:
        yield env.timeout(at - env.now)
        active = trial.team.active(env.now)
        if not active:
            continue  # nobody to take it: dropped
        deal = trial.new_deal(active[int(u * len(active))])
        advance, wait = trial.stages.step(deal, env.now)
        env.process(opportunity(env, deal, advance, wait, trial.stages, trial.ledger))


def leaver(env, person: Person, trial: "Trial"):
    """A rep leaves: open deals pass to the least-loaded active rep; maybe a backfill (§2)."""
    yield env.timeout(person.leave - env.now)
    person.left = True
    target = trial.team.least_loaded(env.now, exclude=person)
    if target is not None:  # else the deals stay with the leaver and still close
        for deal in person.deals:
            deal.owner = target
        target.deals |= person.deals
        person.deals = set()
    spec = trial.spec
    if spec.backfill and person.leave + spec.hiring_lag_days < trial.days:
        trial.hire(person.seat, person.leave + spec.hiring_lag_days, tenure0=0.0)


# --- one trial ------------------------------------------------------------------------------------
class Prepared:
    """What every trial of a chunk shares: the spec read once into arrays."""

    def __init__(self, spec: SimSpec):
        self.spec = spec
        self.days = int(spec.days)
        self.weeks = spec.weeks
        self.work_days = [int(d) for d in spec.working_days()]
        self.pipeline = pipeline = OpenPipeline.from_spec(spec)
        self.stage, self.age = pipeline.stage, pipeline.age
        self.amount, self.owner, self.row = pipeline.amount, pipeline.owner, pipeline.row
        self.quarter_days, self.open_rows = spec.quarter_days, spec.open_deals.height
        cap = spec.capacity
        self.capacity = cap
        self.share_table = [float(x) for x in cap.share(np.arange(1024))]
        self.layout = Layout.of(spec.model.calendar, spec.start, self.days)

    def share(self, n_open: int) -> float:
        t = self.share_table
        return t[n_open] if n_open < len(t) else float(self.capacity.share(n_open))


class Trial:
    """One Monte Carlo trial: its streams, parameters, team and ledger."""

    def __init__(self, prep: Prepared, rng: dict[str, np.random.Generator]):
        self.prep, self.spec, self.rng = prep, prep.spec, rng
        self.days, self.work_days, self.share = prep.days, prep.work_days, prep.share
        self.params = self.spec.trial_params(rng["params"])
        p = self.params
        self.stages = Stages(p, prep.layout, self.days)
        # The outbound effect of each day's quarter (§8; ones without effects).
        self.outbound = np.exp(
            prep.layout.effect("outbound", p.effect("outbound"), np.arange(self.days) + 0.5)
        )
        self.cum_segments = list(np.cumsum(p.segment_probs) / np.sum(p.segment_probs))
        self.size_from_uniform = [d.from_uniform for d in p.sizes]
        self.env = simpy.Environment()
        self.team = Team(len(self.spec.reps))
        self.ledger = Ledger(
            self.days, prep.weeks, len(self.spec.reps), prep.quarter_days, prep.open_rows
        )
        self.events = 0

    # team ---------------------------------------------------------------------------------------
    def _leave_time(self, start: float, e: float) -> float:
        rate = self.params.attrition_monthly
        if not self.spec.attrition or rate <= 0:
            return math.inf
        return start + e * DAYS_PER_MONTH / rate

    def _add(self, person: Person) -> Person:
        self.team.add(person)
        self.env.process(rep(self.env, person, self))
        if person.leave < self.days:
            self.env.process(leaver(self.env, person, self))
        return person

    def hire(self, seat: int, start: float, tenure0: float) -> Person:
        """A backfill: draws its multiplier and leaving time when it is planned."""
        rng = self.rng["team"]
        mult = math.exp(self.params.rep_sigma * rng.standard_normal())
        return self._add(
            Person(seat, start, tenure0, mult, self._leave_time(start, rng.standard_exponential()))
        )

    def start_team(self) -> list[Person]:
        rng, reps = self.rng["team"], self.spec.reps
        # Drawn for every seat whatever the levers, so the team stream stays aligned.
        z = rng.standard_normal(len(reps))
        ratio = float(level_ratio(self.spec, self.params.per_rep_day))
        mult = [
            float(rep_multiplier(r, z[i], self.params.rep_sigma, ratio)) for i, r in enumerate(reps)
        ]
        e = rng.standard_exponential(len(reps))
        return [
            self._add(
                Person(
                    i,
                    r.start_day,
                    r.tenure_days,
                    float(mult[i]),
                    self._leave_time(r.start_day, float(e[i])),
                )
            )
            for i, r in enumerate(reps)
        ]

    # deals --------------------------------------------------------------------------------------
    def new_deal(self, owner: Person) -> Deal:
        """A deal created now (§4): segment, size and its stage uniforms from ``deals``."""
        u = self.rng["deals"].random(1 + self.stages.n).tolist()
        # u[0] picks the segment and, split within it, the size; u[1:] the stages (§5).
        cum = self.cum_segments
        seg = min(bisect.bisect_left(cum, u[0]), len(cum) - 1)
        lo = cum[seg - 1] if seg else 0.0
        amount = float(self.size_from_uniform[seg](split_uniform(u[0], lo, cum[seg] - lo)))
        deal = Deal(amount, owner, NEW, 0, u[1:])
        owner.deals.add(deal)
        self.ledger.created += 1
        self.ledger.pipeline_created += amount
        return deal

    def start_open_pipeline(self, seats: list[Person]) -> None:
        prep, n = self.prep, self.prep.stage.size
        if n == 0:
            return
        uniforms = self.rng["open_pipeline"].random((n, self.stages.n))
        advance, wait = self.stages.first_open(prep.pipeline, uniforms)
        rows = uniforms.tolist()
        for i in range(n):
            seat = int(prep.owner[i])
            owner = seats[seat] if seat >= 0 else None
            deal = Deal(
                float(prep.amount[i]), owner, OPEN, int(prep.stage[i]), rows[i], int(prep.row[i])
            )
            (owner.deals if owner is not None else self.ledger.orphans).add(deal)
            if wait[i] < self.days:  # else it stays open the whole horizon
                self.env.process(
                    opportunity(
                        self.env, deal, bool(advance[i]), float(wait[i]), self.stages, self.ledger
                    )
                )

    def start_marketing(self) -> None:
        """Per week a Poisson number of leads, at times by the inverse of the week's
        cumulative rate at uniforms, and a uniform each that picks the rep (§4, §8)."""
        rng, weeks = self.rng["marketing"], self.prep.weeks
        p, layout = self.params, self.prep.layout
        if not p.effect("marketing"):  # one rate: uniform within each week
            counts = rng.poisson(p.marketing_weekly, weeks)
            week = np.repeat(np.arange(weeks), counts)
            at = 7.0 * (week + rng.random(week.size))
        else:
            # The daily rate over whole weeks (the last one may run past the horizon).
            day_rate = (
                p.marketing_weekly
                / 7
                * np.exp(
                    layout.effect("marketing", p.effect("marketing"), np.arange(7 * weeks) + 0.5)
                )
            )
            by_week = day_rate.reshape(weeks, 7)
            counts = rng.poisson(by_week.sum(axis=1))
            week = np.repeat(np.arange(weeks), counts)
            u = rng.random(week.size)
            cum = np.concatenate([np.zeros((weeks, 1)), np.cumsum(by_week, axis=1)], axis=1)
            target = u * cum[week, -1]
            day = np.minimum(
                np.array(
                    [np.searchsorted(cum[w], x, side="right") - 1 for w, x in zip(week, target)],
                    dtype=np.int64,
                ),
                6,
            )
            at = 7.0 * week + day + (target - cum[week, day]) / by_week[week, day]
        pick = rng.random(week.size)
        order = np.argsort(at, kind="stable")
        arrivals = [
            (a, u) for a, u in zip(at[order].tolist(), pick[order].tolist()) if a < self.days
        ]
        if arrivals:
            self.env.process(marketing(self.env, arrivals, self))

    # run ----------------------------------------------------------------------------------------
    def run(self) -> None:
        seats = self.start_team()
        self.start_open_pipeline(seats)
        self.start_marketing()
        peek, step, days, n = self.env.peek, self.env.step, self.days, 0
        while peek() < days:
            step()
            n += 1
        self.events = n

    def open_deals(self) -> list[Deal]:
        out = list(self.ledger.orphans)
        for person in self.team.people:
            out.extend(person.deals)
        return out


def simulate_chunk(
    spec: SimSpec, n_trials: int, seed: np.random.SeedSequence, first_trial: int = 0
) -> ChunkResult:
    """Run ``n_trials`` trials with streams spawned from ``seed`` (docs/model.md §0)."""
    prep = Prepared(spec)
    open_start = int(prep.stage.size)
    rows: dict[str, list[float]] = {c: [] for c in TOTAL_COLUMNS}
    weekly = np.zeros((n_trials, prep.weeks))
    rep_revenue = np.zeros((n_trials, len(spec.reps)))
    seat_wins = np.zeros(len(spec.reps), dtype=np.int64)
    deal_wins = np.zeros((2, prep.open_rows), dtype=np.int64)
    events = 0
    for i, streams in enumerate(trial_streams(seed, n_trials)):
        trial = Trial(prep, streams)
        trial.run()
        led, still_open = trial.ledger, trial.open_deals()
        values = {
            "trial": first_trial + i,
            "revenue": led.revenue[OPEN] + led.revenue[NEW],
            "revenue_open": led.revenue[OPEN],
            "revenue_new": led.revenue[NEW],
            "wins": led.wins[OPEN] + led.wins[NEW],
            "wins_open": led.wins[OPEN],
            "wins_new": led.wins[NEW],
            "losses": led.losses,
            "open_start": open_start,
            "created": led.created,
            "pipeline_created": led.pipeline_created,
            "activities": led.activities,
            "open_end": len(still_open),
            # Exactly rounded whatever the order (a set of deals iterates by memory address).
            "pipeline_end": math.fsum(d.amount for d in still_open),
        }
        for c, v in values.items():
            rows[c].append(v)
        weekly[i] = np.cumsum(led.weekly)
        rep_revenue[i] = led.rep
        seat_wins += led.rep_wins
        deal_wins += led.deal_wins
        events += trial.events
    totals = pl.DataFrame(rows, schema=TOTAL_COLUMNS)
    return ChunkResult(totals, weekly, rep_revenue, events, seat_wins, deal_wins)
