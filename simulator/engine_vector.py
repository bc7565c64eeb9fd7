"""The vectorised NumPy engine: docs/model.md for a whole chunk of trials at once.

Same semantics and result as the SimPy engine (``--engine simpy``), different random numbers
(the two agree in distribution; tests/test_engine_equivalence.py checks it).

How it is fast:
- Parameters and the team's timeline (leaving and backfill times, rep multipliers) are
  drawn for every trial up front; they do not depend on what happens to deals.
- Days are stepped with arrays of shape (trials, reps). A day's activities are a
  Gamma–Poisson draw per active rep; only the opportunities they yield are drawn one by one.
  The activities that yield nothing are only counted, so their Poisson draws are summed
  into one draw per trial (exact: given the Gamma mixing, the two parts are independent).
- Each new deal's whole path (segment, amount, every stage's outcome and duration) is drawn
  when it is created, so its close time is known at once. A difference array indexed by
  (day, trial, rep) then gives every rep's open deals at the start of each day (the capacity
  share) by one running sum.
- Reps leaving, and deals created for a rep who has already left, are rare events. They are
  handled in time order at the end of each day, all trials with one that day at once; each
  moves deals between reps exactly as docs/model.md §2 says, using every deal's known times.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

from . import vector_params
from .errors import InputError
from .results import TOTAL_COLUMNS, ChunkResult
from .spec import DAYS_PER_MONTH, STREAMS, SimSpec, child_seed

CHUNK = 2000                 # trials per runner chunk; fixed, so workers never change results
BATCH_BYTES = 160_000_000    # working memory per batch of trials inside a chunk

OPEN, WON, LOST = 0, 1, 2
ORIGIN_OPEN, ORIGIN_NEW = 0, 1
_NOBODY = np.iinfo(np.int64).max


def simulate_chunk(spec: SimSpec, n_trials: int, seed: np.random.SeedSequence,
                   first_trial: int = 0, *, draw_log=None) -> ChunkResult:
    """Simulate ``n_trials`` trials of ``spec``; the same seed gives the same numbers.

    ``draw_log`` (benchmarks only): an object whose ``wrap(generator)`` returns a generator
    that records every draw, to time the RNG floor (scenarios/bench.py).
    """
    if not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    # One stream per purpose for the whole chunk (docs/model.md §0), vectorised across trials.
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
    parts = [Batch(spec, params, team, pipeline, lo, min(n_trials, lo + step), rng).run()
             for lo in range(0, n_trials, step)]

    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    cols["trial"] = np.arange(first_trial, first_trial + n_trials)
    totals = pl.DataFrame({k: cols[k] for k in TOTAL_COLUMNS}, schema=TOTAL_COLUMNS)
    return ChunkResult(totals=totals, weekly=np.concatenate([p[1] for p in parts]),
                       rep_revenue=np.concatenate([p[2] for p in parts]),
                       events=int(sum(p[3] for p in parts)))


def expected_deals(spec: SimSpec, n_open: int) -> float:
    """A generous per-trial estimate of deals, from the levered point estimates (it sizes
    memory, never results; the deal store grows if a trial needs more)."""
    p = spec.levers.apply(spec.model.point())
    n_work = len(spec.working_days())
    outbound = (p.per_rep_day * p.opportunity_yield * len(spec.reps) * n_work
                * max(1.0, math.exp(p.rep_sigma ** 2)))
    return n_open + 1.3 * (outbound + p.marketing_weekly * spec.days / 7) + 16


def batch_size(spec: SimSpec, n_trials: int, n_open: int) -> int:
    """Trials simulated together: as many as fit ``BATCH_BYTES``. Depends on the spec and the
    chunk's size only, so the numbers do too."""
    per_trial = (spec.days + 1) * len(spec.reps) * 4 * 3 + 48 * expected_deals(spec, n_open)
    return int(max(1, min(n_trials, BATCH_BYTES // per_trial)))


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
        self.rng_act, self.rng_deals = rng["activities"], rng["deals"]
        self.rng_market, self.rng_open = rng["marketing"], rng["open_pipeline"]
        self.diff = np.zeros((self.days + 1, self.B, self.R), dtype=np.int32)
        self.running = np.zeros((self.B, self.R), dtype=np.int32)
        self.spare = np.zeros(self.B)            # Poisson mean of activities yielding nothing
        self.yielded = np.zeros(self.B, dtype=np.int64)
        self.rep = np.zeros((self.B, self.R))
        self.moves = 0
        # Deals by (origin, trial, outcome): count and amount; won revenue by (trial, week).
        self.tally = np.zeros((2, self.B * 3), dtype=np.int64)
        self.money = np.zeros((2, self.B * 3))
        self.weekly = np.zeros(self.B * self.weeks)
        # day -> [(li, slot, seat, created, close)] of deals created after their rep left
        self.late: dict[int, list] = defaultdict(list)
        cap = int(expected_deals(spec, pipeline.n)) + 16
        self.fill = np.zeros(self.B, dtype=np.int64)
        self.c = np.full((self.B, cap), np.inf)
        self.until = np.full((self.B, cap), -np.inf)
        self.won = np.zeros((self.B, cap))
        self.load = np.full((self.B, cap), -1, dtype=np.int32)
        probs = params.segment_probs
        self.seg_cum = _cum_table(probs)
        self.seg_same = self.seg_cum[0] if np.all(probs == probs[:1]) else None
        conv = params.conversion
        self.conv_same = conv[0] if np.all(conv == conv[:1]) else None
        disp = params.dispersion[lo:hi]
        self.k_same = float(disp[0]) if np.all(disp == disp[0]) else None
        sl = slice(lo, hi)
        self.rate = params.per_rep_day[sl][:, None]
        self.ramp_months = params.ramp_months[sl][:, None]
        self.yld = params.opportunity_yield[sl]

    # --- the trial ------------------------------------------------------------------------
    def run(self):
        self._open_pipeline()
        self._marketing()
        lv = self.team.leave[self.lo:self.lo + self.B]
        li, seat, _ = np.nonzero(lv < self.days)
        tau = lv[lv < self.days]
        day = np.floor(tau).astype(np.int64)
        self.leave_by_day = {int(d): (li[day == d], seat[day == d], tau[day == d])
                             for d in np.unique(day)}
        working = np.zeros(self.days, dtype=bool)
        working[self.spec.working_days()] = True
        for d in range(self.days):
            self.running += self.diff[d]
            if working[d]:
                self._prospect(d)
            self._events(d)
        return self._book()

    # --- deals: creation and paths ----------------------------------------------------------
    def _walk(self, gi, t, stage, rng):
        """Continue deals from the start of ``stage`` at time ``t`` (docs/model.md §5).

        ``stage`` None: every deal starts in the first stage. Returns the close time (``inf``
        if open at the horizon) and the outcome. A deal's draws stop once it passes the
        horizon: what happens after it is never recorded.
        """
        p, days, S = self.p, self.days, self.S
        t = np.asarray(t, dtype=float)
        close = np.full(len(gi), np.inf)
        outcome = np.full(len(gi), OPEN, dtype=np.int8)
        if stage is not None:
            done = np.flatnonzero((stage >= S) & (t < days))
            close[done], outcome[done] = t[done], WON
        # The deals still moving, carried as compact arrays from stage to stage.
        idx = np.zeros(0, dtype=np.int64)
        now = np.zeros(0)
        for s in range(S):
            if stage is None:      # new deals: all enter the first stage
                enter = np.flatnonzero(t < days) if s == 0 else None
            else:
                enter = np.flatnonzero((stage == s) & (t < days))
            if enter is not None and enter.size:
                idx, now = np.concatenate([idx, enter]), np.concatenate([now, t[enter]])
            if idx.size == 0:
                continue
            conv = self.conv_same[s] if self.conv_same is not None else p.conversion[gi[idx], s]
            adv = rng.random(idx.size) < conv
            ia, il = np.flatnonzero(adv), np.flatnonzero(~adv)
            dur = np.empty(idx.size)
            dur[ia] = p.advance[s].sample(rng, ia if p.advance[s].shared else gi[idx[ia]])
            dur[il] = p.lost[s].sample(rng, il if p.lost[s].shared else gi[idx[il]])
            now += dur
            inside = now < days
            gone = np.flatnonzero(~adv & inside)
            close[idx[gone]], outcome[idx[gone]] = now[gone], LOST
            keep = adv & inside
            if s == S - 1:
                won = idx[keep]
                close[won], outcome[won] = now[keep], WON
            idx, now = idx[keep], now[keep]
        return close, outcome

    def _new_deals(self, gi, created, rng):
        """Segment, amount and path of deals created at ``created`` (docs/model.md §4–5)."""
        u = rng.random(len(gi))
        seg = (np.searchsorted(self.seg_same, u, side="left").clip(max=len(self.p.sizes) - 1)
               if self.seg_same is not None else _row_pick(self.seg_cum, gi, u))
        amount = np.empty(len(gi))
        for g, size in enumerate(self.p.sizes):
            m = np.flatnonzero(seg == g)
            amount[m] = size.sample(rng, m if size.shared else gi[m])
        close, outcome = self._walk(gi, created, None, rng)
        return amount, close, outcome

    def _open_pipeline(self):
        """Deals open at the start: first outcome conditional on their age (docs/model.md §6)."""
        op = self.pipeline
        if op.n == 0:
            return
        rng, p = self.rng_open, self.p
        li = np.repeat(np.arange(self.B), op.n)
        gi = li + self.lo
        stage = np.tile(op.stage, self.B)
        age = np.tile(op.age, self.B)
        rest = np.zeros(li.size)
        advanced = np.zeros(li.size, dtype=bool)
        for s in np.unique(op.stage):
            idx = np.flatnonzero(stage == s)
            g, a = gi[idx], age[idx]
            conv = p.conversion[g, s]
            w_adv = conv * self._survival(p.advance[s], a, g, op.age[op.stage == s])
            w_lost = (1 - conv) * self._survival(p.lost[s], a, g, op.age[op.stage == s])
            total = w_adv + w_lost
            # Older than any deal either duration allows: lost at once (docs/model.md §6).
            p_adv = np.divide(w_adv, total, out=np.zeros_like(conv), where=total > 0)
            adv = rng.random(idx.size) < p_adv
            u = rng.random(idx.size)
            ia, il = np.flatnonzero(adv), np.flatnonzero(~adv)
            rest[idx[ia]] = self._residual(p.advance[s], u[ia], a[ia], g[ia])
            rest[idx[il]] = self._residual(p.lost[s], u[il], a[il], g[il])
            advanced[idx] = adv
        inside = rest < self.days
        close = np.where(inside, rest, np.inf)
        outcome = np.where(inside, LOST, OPEN).astype(np.int8)
        w = np.flatnonzero(advanced)
        close[w], outcome[w] = self._walk(gi[w], rest[w], stage[w] + 1, rng)
        owner = np.tile(op.owner, self.B)
        # Orphans (owner -1) count toward nobody's load and are never reassigned.
        self._insert(li, owner, np.zeros(li.size), close, np.tile(op.amount, self.B), outcome,
                     ORIGIN_OPEN, present=owner >= 0)

    def _residual(self, dist, u, age, gi):
        """Remaining time ``T - age | T > age``: inverse CDF on the survival function, except
        for gamma durations, whose inverse (``gammainccinv``) is slow; those draw ``T`` until
        it passes ``age`` (exact too) unless that would take more than a few tries."""
        if dist.is_empirical or dist.template.family != "gamma":
            return dist.residual(u, age, gi)
        out = np.empty(age.size)
        tries = np.flatnonzero(dist.sf(age, gi) >= 0.25)
        rest = np.setdiff1d(np.arange(age.size), tries, assume_unique=True)
        out[rest] = dist.residual(u[rest], age[rest], gi[rest])
        while tries.size:
            t = dist.sample(self.rng_open, tries if dist.shared else gi[tries])
            ok = t > age[tries]
            out[tries[ok]] = t[ok] - age[tries[ok]]
            tries = tries[~ok]
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
        amount, close, outcome = self._new_deals(gi, t, rng)
        self._insert(li, seat, t, close, amount, outcome, ORIGIN_NEW,
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

    def _prospect(self, d: int):
        """One working day of activities and the opportunities they yield (§3–4)."""
        p = self.p
        active, level, leave = self._reps_on(d)
        mu = self.rate * level * self.spec.capacity.share(self.running)
        cells = np.flatnonzero(active & (mu > 0))
        if cells.size == 0:
            return
        li = cells // self.R
        lam = mu.ravel()[cells]
        # NegBin(mean, size k) = Poisson(mean × Gamma(k, 1/k)); k = inf is Poisson.
        if self.k_same is not None:
            if math.isfinite(self.k_same):
                lam *= self.rng_act.standard_gamma(self.k_same, lam.size) / self.k_same
        else:
            k = p.dispersion[self.lo + li]
            finite = np.flatnonzero(np.isfinite(k))
            lam[finite] *= self.rng_act.standard_gamma(k[finite]) / k[finite]
        y = self.yld[li]
        yielded = self.rng_act.poisson(lam * y)
        self.spare += np.bincount(li, weights=lam * (1 - y), minlength=self.B)
        cell = np.repeat(cells, yielded)
        if cell.size == 0:
            return
        li = cell // self.R
        self.yielded += np.bincount(li, minlength=self.B)
        gi = li + self.lo
        created = d + 0.5 + p.lag.sample(self.rng_deals, li if p.lag.shared else gi)
        keep = created < self.days      # created after the horizon: counted nowhere
        cell, li, gi, created = cell[keep], li[keep], gi[keep], created[keep]
        amount, close, outcome = self._new_deals(gi, created, self.rng_deals)
        seat = cell % self.R
        # A deal created after its rep has left is reassigned when it is created (§2).
        present = leave.ravel()[cell] > created
        slots = self._insert(li, seat, created, close, amount, outcome, ORIGIN_NEW,
                             present=present)
        late = np.flatnonzero(~present)
        if late.size:
            when = np.floor(created[late]).astype(np.int64)
            for day in np.unique(when):
                j = late[when == day]
                self.late[int(day)].append((li[j], slots[j], seat[j], created[j], close[j]))

    # --- the deal store ------------------------------------------------------------------------
    def _insert(self, li, seat, c, e, amount, outcome, origin, *, present):
        """Append deals (``li`` ascending) to their trials' rows; the present ones count
        toward their seats' loads. Returns each deal's slot in its row."""
        counts = np.bincount(li, minlength=self.B)
        need = int((self.fill + counts).max())
        cap = self.c.shape[1]
        if need > cap:
            grow = max(need, int(cap * 1.5)) - cap
            pad = ((0, 0), (0, grow))
            self.c = np.pad(self.c, pad, constant_values=np.inf)
            self.until = np.pad(self.until, pad, constant_values=-np.inf)
            self.won = np.pad(self.won, pad)
            self.load = np.pad(self.load, pad, constant_values=-1)
            cap += grow
        first = np.cumsum(counts) - counts
        slot = self.fill[li] + np.arange(li.size) - first[li]
        flat = li * cap + slot
        won = np.where(outcome == WON, amount, 0.0)
        self.c.reshape(-1)[flat] = c
        everyone = bool(present.all())
        self.until.reshape(-1)[flat] = e if everyone else np.where(present, e, -np.inf)
        self.won.reshape(-1)[flat] = won
        self.load.reshape(-1)[flat] = seat if everyone else np.where(present, seat, -1)
        self.fill += counts
        key = li * 3 + outcome
        self.tally[origin] += np.bincount(key, minlength=3 * self.B)
        self.money[origin] += np.bincount(key, weights=amount, minlength=3 * self.B)
        w = np.flatnonzero(outcome == WON)
        self.weekly += np.bincount(li[w] * self.weeks + (np.floor(e[w]) // 7).astype(np.int64),
                                   weights=amount[w], minlength=self.weekly.size)
        seated = w[seat[w] >= 0]         # credited to the owner (open-pipeline orphans: nobody)
        np.add.at(self.rep.reshape(-1), li[seated] * self.R + seat[seated], won[seated])
        if everyone:
            self._count(li, seat, c, e, +1)
        else:
            self._count(li[present], seat[present], c[present], e[present], +1)
        return slot

    def _count(self, li, seat, c, e, sign: int, day: int | None = None):
        """Add (sign=+1) or remove a deal from its seat's open count on days in [c, e).

        ``day``: the day being stepped; counts for days up to it are already summed into
        ``running`` and are corrected there.
        """
        if li.size == 0:
            return
        base = li * self.R + seat
        i0 = np.ceil(c).astype(np.int64)
        i1 = np.minimum(np.ceil(e), self.days).astype(np.int64)
        stride = self.B * self.R
        up = np.full(li.size, sign, dtype=np.int32)   # ufunc.at is fast with matching dtypes
        flat = self.diff.reshape(-1)
        np.add.at(flat, i0 * stride + base, up)
        np.subtract.at(flat, i1 * stride + base, up)
        if day is not None:
            m0, m1 = i0 <= day, i1 <= day
            run = self.running.reshape(-1)
            np.add.at(run, base[m0], up[m0])
            np.subtract.at(run, base[m1], up[m1])

    # --- reps leaving and late deals ---------------------------------------------------------
    def _events(self, d: int):
        """Events in ``[d, d+1)`` in time order: leavers and deals created after their rep left."""
        # (li, time, kind, ref, seat, close); kind 0: a leaver (ref = seat), 1: a late deal
        # (ref = its slot, seat = its rep, close = its close time).
        parts = []
        if d in self.leave_by_day:
            l_li, l_seat, l_tau = self.leave_by_day[d]
            parts.append((l_li, l_tau, np.zeros(l_li.size, dtype=np.int64), l_seat, l_seat,
                          np.zeros(l_li.size)))
        for li, slot, seat, when, close in self.late.pop(d, []):
            parts.append((li, when, np.ones(li.size, dtype=np.int64), slot, seat, close))
        if not parts:
            return
        cols = [np.concatenate(x) for x in zip(*parts)]
        order = np.lexsort((cols[3], cols[2], cols[1], cols[0]))
        li, tau, kind, ref, seat, close = (x[order] for x in cols)
        starts = np.flatnonzero(np.r_[True, li[1:] != li[:-1]])
        rank = np.arange(li.size) - np.repeat(starts, np.diff(np.r_[starts, li.size]))
        for r in range(int(rank.max()) + 1):
            m = rank == r     # at most one event per trial: these trials run side by side
            self._handle(d, li[m], tau[m], kind[m], ref[m], seat[m], close[m])

    def _handle(self, d, li, tau, kind, ref, seat, close):
        width = int(self.fill[li].max())
        t = tau[:, None]
        load = self.load[li, :width]
        open_now = (self.c[li, :width] <= t) & (t < self.until[li, :width])
        key = load + (np.arange(li.size) * self.R)[:, None]
        n_open = np.bincount(key[open_now], minlength=li.size * self.R).reshape(li.size, self.R)
        active = self.team.active_at(li + self.lo, tau)
        # The active rep with the fewest open deals at that moment; ties: lowest index.
        target = np.where(active, n_open, _NOBODY).argmin(axis=1)
        has = active.any(axis=1)

        leaving = np.flatnonzero(kind == 0)
        mine = open_now[leaving] & (load[leaving] == ref[leaving, None])   # the leaver's deals
        r, slot = np.nonzero(mine)
        r = leaving[r]
        if r.size:
            ml, frm, to, ok = li[r], ref[r], target[r], has[r]
            cc, ee = self.c[ml, slot], self.until[ml, slot]
            self._count(ml, frm, cc, ee, -1, d)
            # Nobody left to take them: they stay with the leaver and still close.
            self.load[ml, slot] = np.where(ok, to, -1)
            self.until[ml[~ok], slot[~ok]] = -np.inf
            ml, slot, frm, to, cc, ee = (x[ok] for x in (ml, slot, frm, to, cc, ee))
            self._count(ml, to, cc, ee, +1, d)
            self._credit(ml, frm, to, self.won[ml, slot])
        late = np.flatnonzero((kind == 1) & has)
        if late.size:
            ml, slot, frm, to, ee = li[late], ref[late], seat[late], target[late], close[late]
            self.load[ml, slot] = to
            self.until[ml, slot] = ee
            self._count(ml, to, self.c[ml, slot], ee, +1, d)
            self._credit(ml, frm, to, self.won[ml, slot])

    def _credit(self, li, frm, to, won):
        """Moved deals take their (future) win with them: wins go to the owner at the time."""
        self.moves += li.size
        flat = self.rep.reshape(-1)
        np.add.at(flat, li * self.R + frm, -won)
        np.add.at(flat, li * self.R + to, won)

    # --- what a trial records ----------------------------------------------------------------
    def _book(self):
        n = self.tally.reshape(2, self.B, 3).transpose(1, 2, 0)   # [trial, outcome, origin]
        m = self.money.reshape(2, self.B, 3).transpose(1, 2, 0)
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
        weekly = self.weekly.reshape(self.B, self.weeks).cumsum(axis=1)
        events = int(n.sum() + n[:, WON].sum() + n[:, LOST].sum()) + self.moves
        return totals, weekly, self.rep, events


# --- small helpers --------------------------------------------------------------------------------
def _cum_table(probs: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities, each row offset by its index (one searchsorted)."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    return cum + np.arange(len(cum))[:, None]


def _row_pick(table: np.ndarray, gi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Category of each ``u`` under row ``gi`` of a ``_cum_table``."""
    k = table.shape[1]
    pos = np.searchsorted(table.ravel(), u + gi, side="left") - gi * k
    return np.clip(pos, 0, k - 1)
