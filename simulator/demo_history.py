"""Demo CRM history generated from known parameters ("truth"), to test calibration against.

``generate`` plays docs/model.md forward over ``quarters`` quarters ending at ``as_of`` and
returns the canonical frames (salesim/history.py schemas) plus the ``Model`` it used, so a
calibrator's estimates can be compared with the truth. docs/demo-data.md describes it.
``Ingredients`` (simulator/demo_ingredients.py) make the history change over time: quarter
effects by the rules of docs/model.md §8, wins slipping past quarter ends, reps leaving
mid-quarter; all off by default.

Speed matters (benchmarks calibrate a million generated deals), so each deal's random numbers
(segment, amount, and a uniform and two durations per stage) are drawn in blocks, its path is
worked out with arrays over the deals created together, and the day loop works on arrays over
reps; per-rep open-deal counts live in a (rep × day) difference array.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import expit, logit

from salesim.history import (
    ACTIVITY_COLUMNS,
    CATEGORY_CHANGE_COLUMNS,
    CLOSE_DATE_CHANGE_COLUMNS,
    OPPORTUNITY_COLUMNS,
    REP_COLUMNS,
    STAGE_HISTORY_COLUMNS,
    History,
)

from .calendar import clock_table, period_at, period_offsets, quarter_end, quarters_between, warp
from .demo_ingredients import (
    LEAVING_DAYS,
    PLAYED,
    SLIP_DAYS,
    Ingredients,
    draw_effects,
    truth_calendar,
    truth_notes,
)
from .distributions import Distribution, Exponential, Gamma, LogNormal, Weibull
from .errors import InputError
from .model import (
    ActivityModel,
    BetaPosterior,
    CapacityModel,
    Fitted,
    GammaPosterior,
    MarketingModel,
    Model,
    RepSnapshot,
    SegmentSize,
    StageModel,
    TeamModel,
    TrialParams,
)
from .units import DAYS_PER_MONTH

# Pseudo-observations behind the truth's posteriors: large, so draws equal the truth.
TRUTH_N = 1e9
HIRING_LAG_DAYS = 45  # a leaver's seat is refilled this many days after the leaving day
MAX_TENURE_DAYS = 20 * 365  # cap on the starting team's tenures
CALL_SHARE = 0.6  # activities.csv splits each day's count into calls and emails
MARKETING_PER_REP_WEEK = 0.7  # team marketing arrivals per week, per seat (≈ 27% of deals)
DEFAULT_QUOTA = 300_000.0  # per rep per quarter
_BLOCK = 1 << 15  # deal paths drawn per block


# --- the default truth ---------------------------------------------------------------------------
def _known(p: float) -> BetaPosterior:
    return BetaPosterior(p * TRUTH_N, TRUTH_N - p * TRUTH_N)


def _stage(name: str, p: float, advance: Distribution, lost: Distribution) -> StageModel:
    return StageModel(name, _known(p), Fitted(advance), Fitted(lost))


def _moment_gamma(mean: float, var: float) -> Gamma:
    return Gamma(mean * mean / var, var / mean)


def _cycle(stages: tuple[StageModel, ...]) -> StageModel:
    """Created → won/lost as one step. Won and lost cycle times are sums of stage durations,
    not a named family: they are stored as gammas with the exact mean and variance."""
    p = [s.conversion.mean for s in stages]
    adv = [(s.advance.dist.mean, float(s.advance.dist.frozen().var())) for s in stages]
    lost = [(s.lost.dist.mean, float(s.lost.dist.frozen().var())) for s in stages]
    win = math.prod(p)
    won = _moment_gamma(sum(m for m, _ in adv), sum(v for _, v in adv))
    # Lost cycle: a mixture over the stage where the deal is lost.
    weights, means, second = [], [], []
    reach, m_before, v_before = 1.0, 0.0, 0.0
    for pk, (ma, va), (ml, vl) in zip(p, adv, lost):
        weights.append(reach * (1 - pk))
        m, v = m_before + ml, v_before + vl
        means.append(m)
        second.append(v + m * m)
        reach, m_before, v_before = reach * pk, m_before + ma, v_before + va
    w = np.array(weights) / sum(weights)
    mean = float(w @ means)
    lost_cycle = _moment_gamma(mean, float(w @ second) - mean * mean)
    return _stage("created→closed", win, won, lost_cycle)


def default_truth(as_of: dt.date, reps: int = 20) -> Model:
    """The documented default parameters (docs/demo-data.md): a plausible B2B team.

    ``reps`` only scales the team's weekly marketing arrivals (they are per team, not per
    rep). The team snapshot (``team.reps``) is filled in by ``generate``.
    """
    stages = (
        _stage("Qualify", 0.55, Gamma(2.0, 3.0), Exponential(4.0)),
        _stage("Discover", 0.60, LogNormal(9.0, 0.6), Weibull(1.2, 7.0)),
        _stage("Propose", 0.65, Weibull(1.5, 16.0), LogNormal(8.0, 0.7)),
        _stage("Negotiate", 0.75, LogNormal(21.0, 0.45), Gamma(2.5, 5.0)),
    )
    segments = (
        ("SMB", 0.55, LogNormal(12_000.0, 0.6)),
        ("Mid-Market", 0.33, LogNormal(45_000.0, 0.55)),
        ("Enterprise", 0.12, LogNormal(160_000.0, 0.7)),
    )
    y = 0.035
    weekly = MARKETING_PER_REP_WEEK * reps
    return Model(
        as_of=as_of,
        stages=stages,
        cycle=_cycle(stages),
        deal_size=tuple(SegmentSize(n, share * TRUTH_N, Fitted(d)) for n, share, d in segments),
        activities=ActivityModel(
            per_rep_day=12.0,
            dispersion=3.0,
            rep_sigma=0.3,
            log_cov=(),
            opportunity_yield=_known(y),
            lag=Fitted(Gamma(2.0, 1.5)),
        ),
        marketing=MarketingModel(GammaPosterior(weekly * TRUTH_N, TRUTH_N)),
        team=TeamModel(
            ramp_months=3.0,
            ramp_months_sd=0.0,
            attrition=GammaPosterior(0.025 * TRUTH_N, TRUTH_N),
            quota=DEFAULT_QUOTA,
            calibrated=True,
        ),
        capacity=CapacityModel(week_hours=40.0, deal_hours=2.0, free_deals=12.0, floor=0.2),
        source="simulator.demo_history",
        notes=("truth: generated parameters",),
    )


# --- the result ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoHistory:
    """Generated history (salesim/history.py schemas) and the truth that generated it.

    ``multipliers`` (owner, multiplier) holds each rep's drawn activity multiplier, which no
    CSV records. ``start`` is the first day of the history, ``as_of`` its last.
    ``ingredients`` are what changed over it (none: a stationary history).
    """

    opportunities: pl.DataFrame
    stage_history: pl.DataFrame
    activities: pl.DataFrame
    reps: pl.DataFrame
    truth: Model
    stages: tuple[str, ...]
    start: dt.date
    as_of: dt.date
    multipliers: pl.DataFrame
    ingredients: Ingredients = field(default_factory=Ingredients)
    # With ``close_dates``: every expected close date the reps set and pushed (CSV
    # close_date_history.csv), and each deal's real end, after the as-of date too
    # (``opportunity_id``, ``ends``: the day it closes, ``won``), which no CSV records.
    close_date_changes: pl.DataFrame | None = None
    ends: pl.DataFrame | None = None
    # With ``close_dates``: each deal's forecast category over time (``_Categories``), a
    # ``forecast_category`` column on close_date_history.csv (CATEGORY_CHANGE_COLUMNS).
    category_changes: pl.DataFrame | None = None
    # Close-date and category rows merged for the CSV, one per deal and day.
    close_date_rows: pl.DataFrame | None = None

    def to_history(self) -> History:
        return History(
            opportunities=self.opportunities,
            stages=self.stages,
            stage_history=self.stage_history,
            activities=self.activities,
            reps=self.reps,
            source="simulator.demo_history",
            close_date_changes=self.close_date_changes,
            category_changes=self.category_changes,
        )

    def csv_texts(self) -> dict[str, str]:
        """File name -> CSV text of the four canonical files (ISO dates, empty = none), and
        close_date_history.csv with ``close_dates``."""
        texts = {
            "opportunities.csv": self.opportunities.write_csv(),
            "stage_history.csv": self.stage_history.write_csv(),
            "activities.csv": self.activities.write_csv(),
            "reps.csv": self.reps.write_csv(),
        }
        if self.close_date_rows is not None:
            texts["close_date_history.csv"] = self.close_date_rows.write_csv()
        elif self.close_date_changes is not None:
            cols = ("opportunity_id", "changed", "expected_close", "previous")
            texts["close_date_history.csv"] = self.close_date_changes.select(cols).write_csv()
        return texts

    def summary(self) -> dict:
        status = self.opportunities["status"]
        hired = self.reps.filter(pl.col("hired") >= self.start).height
        left = self.reps["left"].is_not_null().sum()
        return {
            "start": self.start,
            "as_of": self.as_of,
            "opportunities": self.opportunities.height,
            "won": int((status == "won").sum()),
            "lost": int((status == "lost").sum()),
            "open": int((status == "open").sum()),
            "stage_history_rows": self.stage_history.height,
            "activity_rows": self.activities.height,
            "reps": self.reps.height,
            "reps_hired": hired,
            "reps_left": int(left),
            "reps_active": self.reps.height - int(left),
            "ingredients": self.ingredients.on(),
        }


# --- generation ----------------------------------------------------------------------------------
def history_start(as_of: dt.date, quarters: int) -> dt.date:
    """First day of a history of ``quarters`` quarters (3 calendar months each) ending on
    ``as_of``: 2024-10-01 for 8 quarters to 2026-09-30."""
    nxt = as_of + dt.timedelta(days=1)
    months = nxt.year * 12 + nxt.month - 1 - 3 * quarters
    y, m = divmod(months, 12)
    if y < 1:
        raise InputError(
            f"{quarters} quarters before {as_of} is before year 1",
            column="quarters",
            expected="fewer quarters",
        )
    return dt.date(y, m + 1, min(nxt.day, calendar.monthrange(y, m + 1)[1]))


def history_days(as_of: dt.date, quarters: int) -> int:
    """Days in the history window (what ``generate`` reports to ``progress``)."""
    return (as_of - history_start(as_of, quarters)).days + 1


def generate(
    rng=None,
    *,
    reps: int = 20,
    quarters: int = 8,
    as_of: dt.date = dt.date(2026, 9, 30),
    truth: Model | None = None,
    ingredients: Ingredients | None = None,
    close_dates: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DemoHistory:
    """Generate ``quarters`` quarters of CRM history ending on ``as_of`` for ``reps`` seats.

    ``truth=None`` uses ``default_truth(as_of, reps)``; otherwise the given model's point
    estimates, and its quarter effects if it has some (then ``ingredients`` may only add
    slips and leavers). ``ingredients`` (default: none) make the history change over time.
    ``close_dates``: reps also set and push expected close dates (``_CloseDates``) and call
    forecast categories (``_Categories``), each drawn from a stream of its own after every
    other, so nothing else changes.
    ``progress(n)`` is called as days are simulated.
    """
    if not isinstance(reps, (int, np.integer)) or reps < 1:
        raise InputError(f"need at least one rep, got {reps!r}", column="reps")
    if not isinstance(quarters, (int, np.integer)) or quarters < 1:
        raise InputError(f"need at least one quarter, got {quarters!r}", column="quarters")
    if not isinstance(as_of, dt.date):
        raise InputError(f"as-of must be a date, got {as_of!r}", column="as_of")
    ingredients = Ingredients() if ingredients is None else ingredients
    rng = np.random.default_rng(rng)
    truth = default_truth(as_of, reps) if truth is None else truth
    p = truth.point()
    start = history_start(as_of, quarters)
    days = history_days(as_of, quarters)
    periods = quarters_between(start, as_of)
    ingredients.check_history(len(periods))
    # The ingredients' streams come after the first four, so a history without them draws
    # exactly what it always did.
    team_rng, activity_rng, deal_rng, marketing_rng, shock_rng, slip_rng, leaver_rng = rng.spawn(7)

    effects = _quarter_effects(truth, ingredients, shock_rng, periods)
    cal = _Calendar.of(start, days, periods, effects)
    team = _draw_team(team_rng, p, reps, days, cal, ingredients.leavers, leaver_rng)
    deals = _Paths(deal_rng, p, cal, ingredients.slips, slip_rng)
    sim = _Simulation(p, truth.capacity, team, deals, start, days, cal)
    sim.run(activity_rng, marketing_rng, progress)
    if truth.calendar is None or truth.calendar.empty:
        truth = dataclasses.replace(truth, calendar=truth_calendar(ingredients, periods, effects))
    truth = dataclasses.replace(truth, notes=truth.notes + truth_notes(ingredients))
    demo = _assemble(sim, truth, p, start, as_of, days, ingredients)
    if not close_dates:
        return demo
    dates_rng, categories_rng = rng.spawn(2)  # the first is what spawn(1) gave before
    demo = _CloseDates().play(demo, sim, dates_rng)
    return _Categories().play(demo, sim, categories_rng)


def _quarter_effects(
    truth: Model, ingredients: Ingredients, rng: np.random.Generator, periods: tuple[dt.date, ...]
) -> dict[str, np.ndarray]:
    """Effect per history quarter of each channel that has one: the truth's own quarter
    effects (their means; a quarter outside them takes the nearest) or, without those, the
    ingredients' draws."""
    cal = truth.calendar
    if cal is None or cal.empty:
        return draw_effects(ingredients, rng, periods)
    if cal.closing is not None or cal.pace is not None:
        raise InputError(
            "the demo generator has no closing clock or pace; the truth has one",
            expected="a truth without calendar.closing and calendar.pace",
        )
    if ingredients.channels():
        raise InputError(
            "the truth has its own quarter effects; --drift, --growth, "
            "--seasonality and --shocks would add a second set",
            expected="those options off, or a truth without a calendar",
        )
    return {
        c: np.array([e.mean[e.at(q)] for q in periods])
        for c in PLAYED
        if (e := cal.channel(c)) is not None
    }


@dataclass(frozen=True)
class _Calendar:
    """The history's calendar quarters and their effects (docs/model.md §8). Times are days
    from ``start``; a time outside the window takes the nearest day inside it."""

    day_quarter: np.ndarray  # index of the history quarter of each day of the window
    first_day: np.ndarray  # each history quarter's first day (the first may be before 0)
    last_day: np.ndarray  # each history quarter's last day
    effects: dict[str, np.ndarray]  # channel -> effect per history quarter (absent: none)

    @classmethod
    def of(
        cls, start: dt.date, days: int, periods: tuple[dt.date, ...], effects: dict[str, np.ndarray]
    ) -> _Calendar:
        first = period_offsets(periods, start)
        last = period_offsets([quarter_end(q) for q in periods], start)
        return cls(period_at(first, np.arange(days)), first, last, effects)

    @property
    def days(self) -> int:
        return self.day_quarter.size

    def quarter(self, t) -> np.ndarray:
        """History-quarter index at times ``t``."""
        d = np.clip(np.floor(t), 0, self.days - 1).astype(np.int64)
        return self.day_quarter[d]

    def factor(self, channel: str, t) -> np.ndarray | None:
        """``exp(effect)`` at times ``t`` (None: the channel does not change)."""
        e = self.effects.get(channel)
        return None if e is None else np.exp(e[self.quarter(t)])


@dataclass
class _Team:
    hire: np.ndarray  # day hired (int; < 0 for the team already there at the start)
    leave: np.ndarray  # continuous leaving time (inf: never)
    multiplier: np.ndarray  # rep-to-rep variation, LogNormal(median 1, rep_sigma)
    names: list[str]


def _draw_team(
    rng: np.random.Generator,
    p: TrialParams,
    seats: int,
    days: int,
    cal: _Calendar,
    leavers: float,
    leaver_rng: np.random.Generator,
) -> _Team:
    """Seats filled at the start with steady-state tenures, leaving at the attrition hazard
    (and, with ``leavers``, mid-quarter) and refilled ``HIRING_LAG_DAYS`` after the leaving
    day (docs/model.md §2)."""
    mean_stay = DAYS_PER_MONTH / p.attrition_monthly if p.attrition_monthly > 0 else math.inf
    # Under a constant hazard, tenures of a team in steady state are exponential too
    # (capped, so that a near-zero hazard cannot date hires centuries back).
    tenure = np.floor(
        np.minimum(rng.exponential(min(mean_stay, MAX_TENURE_DAYS), seats), MAX_TENURE_DAYS)
    )
    hire = [-tenure]
    leave = [_mid_quarter(leaver_rng, leavers, cal, -tenure, _stays(rng, mean_stay, seats))]
    while True:
        refill = np.floor(leave[-1]) + HIRING_LAG_DAYS
        refill = np.sort(refill[refill < days])
        if refill.size == 0:
            break
        hire.append(refill)
        leave.append(
            _mid_quarter(
                leaver_rng, leavers, cal, refill, refill + _stays(rng, mean_stay, refill.size)
            )
        )
    hire_all = np.concatenate(hire).astype(np.int64)
    leave_all = np.concatenate(leave)
    multiplier = np.exp(p.rep_sigma * rng.standard_normal(hire_all.size))
    width = max(4, len(str(hire_all.size)))
    names = [f"rep{i + 1:0{width}d}" for i in range(hire_all.size)]
    return _Team(hire_all, leave_all, multiplier, names)


def _stays(rng, mean_stay, n):
    return rng.exponential(mean_stay, n) if math.isfinite(mean_stay) else np.full(n, np.inf)


def _mid_quarter(
    rng: np.random.Generator, share: float, cal: _Calendar, hire: np.ndarray, leave: np.ndarray
) -> np.ndarray:
    """``--leavers``: in each history quarter a rep on the team leaves with probability
    ``share`` at a uniform time ``LEAVING_DAYS`` into the quarter, unless gone already.
    Draws a (reps × quarters) table of uniforms, then one of times."""
    if share <= 0 or hire.size == 0:
        return leave
    shape = (hire.size, cal.first_day.size)
    go = rng.random(shape) < share
    lo, hi = LEAVING_DAYS
    t = cal.first_day[None, :] + lo + (hi - lo) * rng.random(shape)
    on_team = t >= np.maximum(hire, 0.0)[:, None]  # the window starts at 0
    return np.minimum(leave, np.where(go & on_team, t, np.inf).min(axis=1))


class _Paths:
    """Every deal's segment, amount and path: deal ``i`` gets row ``i`` of random numbers
    drawn in blocks (a segment uniform and amount, then per stage a uniform, an advance and a
    lost duration).

    A path is the last stage the deal enters (``last``), whether it is won, its entry time
    into each stage and its closing time, relative to creation. Conversion and speed effects
    act by the quarter in which the deal enters each stage, so with them a path is worked out
    when the deal is created (``take``); without them it does not depend on when, and whole
    blocks are worked out as they are drawn. Then, with ``slips``, some wins slip.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        p: TrialParams,
        cal: _Calendar,
        slips: float,
        slip_rng: np.random.Generator,
    ):
        self.rng, self.p, self.cal = rng, p, cal
        self.slips, self.slip_rng = slips, slip_rng
        self.timed = "conversion" in cal.effects or "speed" in cal.effects
        self.cols: dict[str, np.ndarray] = {}
        self.n = 0  # paths handed out
        self.drawn = 0  # paths drawn

    @property
    def close(self) -> np.ndarray:
        """Closing offsets of the handed-out paths, by deal index (longer than ``n``)."""
        return self.cols["close"]

    def take(self, created: np.ndarray) -> np.ndarray:
        """Indices of the paths of deals created at times ``created``."""
        n = created.size
        while self.drawn < self.n + n:
            self._draw_block()
        lo, hi = self.n, self.n + n
        self.n = hi
        if n and self.timed:
            c = self.cols
            self._work_out(lo, hi, created, c["u"][lo:hi], c["adv"][lo:hi], c["lost"][lo:hi])
        if n and self.slips > 0:
            self._slip(lo, hi, created)
        return np.arange(lo, hi)

    def _draw_block(self):
        rng, p, b = self.rng, self.p, _BLOCK
        s = len(p.conversion)
        seg = np.searchsorted(
            np.cumsum(p.segment_probs), rng.random(b) * sum(p.segment_probs), side="right"
        ).clip(0, len(p.sizes) - 1)
        amount = np.empty(b)
        for k, size in enumerate(p.sizes):
            mask = seg == k
            amount[mask] = size.sample(rng, int(mask.sum()))
        u = rng.random((b, s))
        adv = np.column_stack([d.sample(rng, b) for d in p.advance])
        lost = np.column_stack([d.sample(rng, b) for d in p.lost])
        lo = self.drawn
        self._store(
            lo,
            segment=seg.astype(np.int16),
            amount=np.round(amount),
            last=np.zeros(b, dtype=np.int16),
            won=np.zeros(b, dtype=bool),
            entry=np.zeros((b, s)),
            close=np.zeros(b),
        )
        self.drawn += b
        if self.timed:  # kept until the deals are created
            self._store(lo, u=u, adv=adv, lost=lost)
        else:
            self._work_out(lo, lo + b, None, u, adv, lost)

    def _store(self, lo: int, **arrays: np.ndarray):
        """Write rows ``lo…`` of each column, doubling a column's room when it is full."""
        for name, a in arrays.items():
            col = self.cols.get(name)
            need = lo + a.shape[0]
            if col is None or col.shape[0] < need:
                room = np.zeros(
                    (max(need, 2 * (0 if col is None else col.shape[0])),) + a.shape[1:],
                    dtype=a.dtype,
                )
                if col is not None:
                    room[:lo] = col[:lo]
                self.cols[name] = col = room
            col[lo:need] = a

    def _work_out(
        self,
        lo: int,
        hi: int,
        created: np.ndarray | None,
        u: np.ndarray,
        adv: np.ndarray,
        lost: np.ndarray,
    ):
        """Paths of rows ``lo:hi`` from their uniforms and durations, stage by stage: a deal
        entering stage ``k`` at time ``t`` advances iff its uniform < ``expit(logit p_k +
        e_conversion)`` and takes its duration × ``exp(e_speed)``, with the effects of ``t``'s
        quarter (``created`` None: no effects)."""
        p, c = self.p, self.cols
        m, s = u.shape
        entry = c["entry"][lo:hi]
        close = np.zeros(m)
        last = np.full(m, s - 1, dtype=np.int16)
        going = np.ones(m, dtype=bool)
        speed = np.ones(m)
        for k in range(s):
            pk: float | np.ndarray = p.conversion[k]
            if created is not None:
                t = created + entry[:, k]
                if (shift := self.cal.effects.get("conversion")) is not None and 0 < pk < 1:
                    pk = expit(logit(pk) + shift[self.cal.quarter(t)])
                if (f := self.cal.factor("speed", t)) is not None:
                    speed = f
            ahead = u[:, k] < pk
            lose = going & ~ahead
            last[lose] = k
            close[lose] = entry[lose, k] + lost[lose, k] * speed[lose]
            going &= ahead
            if k + 1 < s:
                entry[:, k + 1] = entry[:, k] + adv[:, k] * speed
        close[going] = entry[going, s - 1] + adv[going, s - 1] * speed[going]
        c["close"][lo:hi], c["last"][lo:hi], c["won"][lo:hi] = close, last, going

    def _slip(self, lo: int, hi: int, created: np.ndarray):
        """``--slips``: a win closing in the last ``SLIP_DAYS`` days of its quarter moves, with
        probability ``slips``, 1…``SLIP_DAYS`` whole days (uniform) past the quarter's end.
        Only the closing time moves. Wins closing after as-of are left alone: they are open
        at as-of either way. Draws a uniform per candidate win, then a day count each."""
        c = self.cols
        close = created + c["close"][lo:hi]
        day = np.floor(close)
        rows = np.flatnonzero(c["won"][lo:hi] & (day < self.cal.days))
        end = self.cal.last_day[self.cal.quarter(close[rows])]
        late = end - day[rows] < SLIP_DAYS
        rows, end = rows[late], end[late]
        go = self.slip_rng.random(rows.size) < self.slips
        by = self.slip_rng.integers(1, SLIP_DAYS + 1, rows.size)
        rows, shift = rows[go], (end + by - day[rows])[go]
        c["close"][lo + rows] += shift

    def arrays(self) -> dict:
        """The handed-out paths as one set of arrays."""
        if not self.cols:
            self._draw_block()  # no deals at all: still give arrays of the right shape
        return {
            k: self.cols[k][: self.n]
            for k in ("segment", "amount", "last", "won", "entry", "close")
        }


class _Simulation:
    """The day loop of docs/model.md §2–§4 over the history window (day 0 = ``start``)."""

    def __init__(
        self,
        p: TrialParams,
        capacity: CapacityModel,
        team: _Team,
        paths: _Paths,
        start: dt.date,
        days: int,
        cal: _Calendar,
    ):
        self.p, self.capacity, self.team, self.paths = p, capacity, team, paths
        self.days, self.cal = days, cal
        self.outbound = cal.factor("outbound", np.arange(days))  # per day; None: constant
        self.working = np.array([(start + dt.timedelta(days=d)).weekday() < 5 for d in range(days)])
        n_reps = team.hire.size
        # diff[r, k]: change in rep r's open deals at the start of day k (column ``days``
        # collects everything at or after the end of the window).
        self.diff = np.zeros((n_reps, days + 1), dtype=np.int32)
        cap = 1024
        self.owner = np.zeros(cap, dtype=np.int64)
        self.created = np.zeros(cap)
        self.end = np.zeros(cap)
        self.marketing = np.zeros(cap, dtype=bool)
        self.alive = np.zeros(0, dtype=np.int64)  # deals that may still be open
        self.pending = np.zeros(0, dtype=np.int64)  # leads due after their rep has left
        self.activity_log: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = []

    # -- deals -------------------------------------------------------------------------------
    def _add_deals(self, owners: np.ndarray, times: np.ndarray, marketing: bool) -> np.ndarray:
        idx = self.paths.take(times)
        if idx.size == 0:
            return idx
        top = idx[-1] + 1
        if top > self.owner.size:
            grow = max(top, 2 * self.owner.size)
            self.owner = np.resize(self.owner, grow)
            self.created = np.resize(self.created, grow)
            self.end = np.resize(self.end, grow)
            self.marketing = np.resize(self.marketing, grow)
        self.owner[idx] = owners
        self.created[idx] = times
        self.end[idx] = times + self.paths.close[idx]
        self.marketing[idx] = marketing
        self._count(owners, times, self.end[idx], +1)
        self.alive = np.concatenate([self.alive, idx])
        return idx

    def _count(self, owners, begin, end, sign):
        """Add ``sign`` to each owner's open count on the days [ceil(begin), ceil(end))."""
        k0 = np.minimum(np.ceil(begin), self.days).astype(np.int64)
        k1 = np.minimum(np.ceil(end), self.days).astype(np.int64)
        np.add.at(self.diff, (owners, k0), sign)
        np.add.at(self.diff, (owners, k1), -sign)

    def _active(self, t: float) -> np.ndarray:
        return (self.team.hire <= t) & (self.team.leave > t)

    # -- the loop ------------------------------------------------------------------------------
    def run(self, activity_rng, marketing_rng, progress):
        team = self.team
        arrivals = self._marketing_arrivals(marketing_rng)
        day_of_arrival = np.floor(arrivals[0]).astype(np.int64)
        bounds = np.searchsorted(day_of_arrival, np.arange(self.days + 1))
        order = np.argsort(team.leave, kind="stable")
        leaves = order[team.leave[order] < self.days]
        next_leave = 0
        open_now = np.zeros(team.hire.size, dtype=np.int64)
        for d in range(self.days):
            open_now += self.diff[:, d]
            lo, hi = bounds[d], bounds[d + 1]
            if hi > lo:
                self._assign_marketing(arrivals[0][lo:hi], arrivals[1][lo:hi], d)
            if self.working[d]:
                self._prospect(activity_rng, d, open_now)
            # Today's leavers and leads arriving for reps who have left, in time order.
            events = []
            while next_leave < leaves.size and team.leave[leaves[next_leave]] < d + 1:
                r = leaves[next_leave]
                events.append((team.leave[r], 0, r))
                next_leave += 1
            due = self.created[self.pending] < d + 1
            events += [(self.created[i], 1, i) for i in self.pending[due]]
            self.pending = self.pending[~due]
            for _, kind, x in sorted(events):
                self._reassign(x) if kind == 0 else self._adopt(x)
            self.alive = self.alive[self.end[self.alive] > d + 1]
            if progress is not None:
                progress(1)

    def _marketing_arrivals(self, rng):
        """Times of Poisson arrivals per week, uniform in the week, and one uniform each to
        pick the rep (docs/model.md §4). With marketing effects (§8) a week's count has the
        week's total rate and each time inverts the cumulative rate at its uniform."""
        weeks = math.ceil(self.days / 7)
        rates = self.cal.factor("marketing", np.arange(7 * weeks))
        if rates is None:
            k = rng.poisson(self.p.marketing_weekly, weeks)
            t = np.repeat(7.0 * np.arange(weeks), k) + 7.0 * rng.random(int(k.sum()))
        else:
            table = clock_table(rates)
            week = table[7::7] - table[:-7:7]  # each week's days' factors, summed
            k = rng.poisson(self.p.marketing_weekly / 7 * week)
            begin = np.repeat(7.0 * np.arange(weeks), k)
            t = warp(table, rates, begin, np.repeat(week, k) * rng.random(int(k.sum())))
        pick = rng.random(t.size)
        order = np.argsort(t, kind="stable")
        t, pick = t[order], pick[order]
        keep = t < self.days
        return t[keep], pick[keep]

    def _assign_marketing(self, times, picks, d):
        # The active set only changes inside a day when someone leaves (hires are whole days).
        base = (self.team.hire <= d) & (self.team.leave > d)
        cuts = np.sort(self.team.leave[base & (self.team.leave < d + 1)])
        seg = np.searchsorted(cuts, times, side="left")
        owners = np.full(times.size, -1)
        for j in np.unique(seg):
            active = np.flatnonzero(base & (self.team.leave > (cuts[j - 1] if j else d)))
            if active.size:
                m = seg == j
                owners[m] = active[(picks[m] * active.size).astype(np.int64)]
        keep = owners >= 0  # nobody active: the lead is dropped
        self._add_deals(owners[keep], times[keep], marketing=True)

    def _prospect(self, rng, d, open_now):
        p, team = self.p, self.team
        who = np.flatnonzero(self._active(d))  # a rep acts at the start of the day
        if who.size == 0:
            return
        tenure = (d - team.hire[who]) / DAYS_PER_MONTH
        ramp = np.clip(tenure / p.ramp_months, 0.0, 1.0) if p.ramp_months > 0 else 1.0
        mu = p.per_rep_day * team.multiplier[who] * ramp * self.capacity.share(open_now[who])
        if self.outbound is not None:
            mu = mu * self.outbound[d]
        if math.isinf(p.dispersion):
            acts = rng.poisson(mu)
        else:
            acts = rng.negative_binomial(p.dispersion, p.dispersion / (p.dispersion + mu))
        calls = rng.binomial(acts, CALL_SHARE)
        self.activity_log.append((who, d, calls, acts - calls))
        made = rng.binomial(acts, p.opportunity_yield)
        n = int(made.sum())
        if n:
            owners = np.repeat(who, made)
            idx = self._add_deals(owners, d + 0.5 + p.lag.sample(rng, n), marketing=False)
            late = self.created[idx] > team.leave[owners]
            self.pending = np.concatenate([self.pending, idx[late]])

    def _reassign(self, r: int):
        """Rep ``r`` leaves: its open deals pass on (docs/model.md §2)."""
        t = self.team.leave[r]
        a = self.alive
        mine = a[(self.owner[a] == r) & (self.created[a] <= t) & (self.end[a] > t)]
        self._hand_over(mine, r, t, np.full(mine.size, math.floor(t) + 1.0))

    def _adopt(self, i: int):
        """A lead is created after its rep left: it passes on by the same rule."""
        t = self.created[i]
        self._hand_over(np.array([i]), int(self.owner[i]), t, np.array([t]))

    def _hand_over(self, deals: np.ndarray, r: int, t: float, begin: np.ndarray):
        """``deals`` of rep ``r`` pass at time ``t`` to the active rep with the fewest open
        deals (ties: lowest index); with nobody active they stay with ``r`` and still close.
        ``begin``: when each deal starts counting for the new owner."""
        active = self._active(t)
        active[r] = False
        candidates = np.flatnonzero(active)
        if deals.size == 0 or candidates.size == 0:
            return
        a = self.alive
        is_open = (self.created[a] <= t) & (self.end[a] > t)
        counts = np.bincount(self.owner[a[is_open]], minlength=self.team.hire.size)
        q = candidates[np.argmin(counts[candidates])]
        self._count(np.full(deals.size, r), begin, self.end[deals], -1)
        self._count(np.full(deals.size, q), begin, self.end[deals], +1)
        self.owner[deals] = q


# --- frames --------------------------------------------------------------------------------------
def _dates(start: dt.date, offsets: np.ndarray) -> pl.Series:
    epoch = (start - dt.date(1970, 1, 1)).days
    return pl.Series(np.asarray(offsets, dtype=np.int64) + epoch, dtype=pl.Int32).cast(pl.Date)


def _labels(labels: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    return pl.Series(list(labels), dtype=pl.String).gather(np.asarray(codes, dtype=np.int64))


def _kept(sim: _Simulation, days: int) -> np.ndarray:
    """The deals the history records, in row order: by creation (leads still in their lag
    are dropped)."""
    created = sim.created[: sim.paths.n]
    keep = np.flatnonzero(created < days)
    return keep[np.argsort(created[keep], kind="stable")]


def _assemble(
    sim: _Simulation,
    truth: Model,
    p: TrialParams,
    start: dt.date,
    as_of: dt.date,
    days: int,
    ingredients: Ingredients,
) -> DemoHistory:
    team, paths = sim.team, sim.paths.arrays()
    stages = truth.stage_names
    keep = _kept(sim, days)
    c = sim.created[keep]
    entry = c[:, None] + paths["entry"][keep]
    last = paths["last"][keep].astype(np.int64)
    entered = (np.arange(len(stages))[None, :] <= last[:, None]) & (entry < days)
    n_entered = entered.sum(axis=1)
    close = c + paths["close"][keep]
    closed = close < days
    status = np.where(closed, np.where(paths["won"][keep], 1, 2), 0)  # open, won, lost
    n = keep.size
    width = max(7, len(str(n)))
    ids = pl.select(
        (pl.lit("OPP-") + pl.int_range(1, n + 1).cast(pl.String).str.zfill(width)).alias(
            "opportunity_id"
        )
    ).to_series()
    names = pl.Series(team.names, dtype=pl.String)
    seg_names = pl.Series(list(p.segments), dtype=pl.String)
    stage_names = pl.Series(list(stages), dtype=pl.String)
    closed_day = np.where(closed, np.floor(close), 0)
    opportunities = pl.DataFrame(
        {
            "opportunity_id": ids,
            "owner": names.gather(sim.owner[keep]),
            "created": _dates(start, np.floor(c)),
            "stage": stage_names.gather(n_entered - 1),
            "status": _labels(("open", "won", "lost"), status),
            "closed": _dates(start, closed_day),
            "amount": pl.Series(paths["amount"][keep], dtype=pl.Float64),
            "segment": seg_names.gather(paths["segment"][keep].astype(np.int64)),
            "source": _labels(("outbound", "marketing"), sim.marketing[keep]),
        }
    ).with_columns(
        pl.when(pl.Series(closed)).then(pl.col("closed")).otherwise(None).alias("closed")
    )
    row, col = np.nonzero(entered)  # row-major: by deal, then stage
    stage_history = pl.DataFrame(
        {
            "opportunity_id": ids.gather(row),
            "stage": stage_names.gather(col),
            "entered": _dates(start, np.floor(entry[row, col])),
        }
    )
    activities = _activities(sim, names, start)
    listed = np.flatnonzero(team.hire < days)
    left = team.leave[listed] < days
    reps = pl.DataFrame(
        {
            "owner": names.gather(listed),
            "hired": _dates(start, team.hire[listed]),
            "left": _dates(start, np.floor(np.where(left, team.leave[listed], 0.0))),
            "quota": pl.Series(np.full(listed.size, truth.team.quota), dtype=pl.Float64),
        }
    ).with_columns(pl.when(pl.Series(left)).then(pl.col("left")).otherwise(None).alias("left"))
    multipliers = pl.DataFrame(
        {"owner": names.gather(listed), "multiplier": team.multiplier[listed]}
    )
    on_team = listed[~left]
    snapshot = tuple(
        RepSnapshot(team.names[i], start + dt.timedelta(days=int(team.hire[i])), truth.team.quota)
        for i in on_team
    )
    n_marketing = int(sim.marketing[keep].sum())
    truth = dataclasses.replace(
        truth,
        as_of=as_of,
        n_opportunities=n,
        team=dataclasses.replace(truth.team, reps=snapshot),
        marketing=dataclasses.replace(truth.marketing, share=n_marketing / n if n else 0.0),
    )
    # The ignores below: polars types cast()'s mapping with a union key type, and
    # Mapping is invariant in its key, so a dict[str, dtype] schema is wrongly rejected.
    return DemoHistory(
        opportunities=opportunities.cast(OPPORTUNITY_COLUMNS),  # type: ignore[arg-type]
        stage_history=stage_history.cast(STAGE_HISTORY_COLUMNS),  # type: ignore[arg-type]
        activities=activities.cast(ACTIVITY_COLUMNS),  # type: ignore[arg-type]
        reps=reps.cast(REP_COLUMNS),  # type: ignore[arg-type]
        truth=truth,
        stages=stages,
        start=start,
        as_of=as_of,
        multipliers=multipliers,
        ingredients=ingredients,
    )


@dataclass(frozen=True)
class _CloseDates:
    """How reps set and push expected close dates (docs/demo-data.md, "Close dates").

    On the day a deal is created, and each time its date has passed with the deal still
    open, its rep sets the date ``max(end − now, min_days) × exp(−optimism + noise·η)`` days
    ahead (at least a day), ``end`` being when the deal really ends. ``η`` is standard
    normal, correlated ``persistence`` from one setting of a deal to the next (a rep who
    misjudges a deal keeps misjudging it). A deal that will be lost goes quiet before it
    dies, and its rep's date is more optimistic (``optimism_lost``). The rep notices a passed
    date 0…``lag_days`` days late (uniform); at most ``max_pushes`` pushes a deal. So dates run
    early, a pushed deal tends to slip again, and pushes foretell losses, as in real CRMs.
    """

    optimism: float = 0.1
    optimism_lost: float = 1.0
    noise: float = 0.35
    persistence: float = 0.6
    min_days: float = 7.0
    lag_days: int = 5
    max_pushes: int = 12

    def notes(self) -> tuple[str, ...]:
        return (
            f"truth: close dates set max(real end - now, {self.min_days:g} d) x "
            f"exp(-{self.optimism:g} (lost: -{self.optimism_lost:g}) + {self.noise:g} z) "
            f"ahead, z correlated "
            f"{self.persistence:g} between settings of a deal; pushed 0-{self.lag_days} days "
            f"after the date passes, at most {self.max_pushes} times (not in the model)",
        )

    def play(self, demo: DemoHistory, sim: _Simulation, rng: np.random.Generator) -> DemoHistory:
        """``demo`` with each deal's expected close dates: their changes (``changed`` up to
        the as-of date), an ``expected_close`` column (open deals' date at the as-of date)
        and ``ends``. Draws ``η`` per deal, then per round of pushes a lag and a new ``η``,
        whether or not each deal is pushed."""
        days = (demo.as_of - demo.start).days + 1
        keep = _kept(sim, days)
        n = keep.size
        created = sim.created[keep]
        close = created + sim.paths.cols["close"][keep]
        won = sim.paths.cols["won"][keep]
        bias = np.where(won, self.optimism, self.optimism_lost)
        eta = rng.standard_normal(n)
        now = np.floor(created)
        date = self._set(now, close, bias, eta)
        rows = [(np.arange(n), now, date, np.full(n, -1.0))]
        for _ in range(self.max_pushes):
            seen = date + 1 + rng.integers(0, self.lag_days + 1, n)
            eta = self.persistence * eta + math.sqrt(1 - self.persistence**2) * (
                rng.standard_normal(n)
            )
            pushed = np.flatnonzero((np.floor(close) > seen) & (seen < days))
            if pushed.size == 0:
                break
            new = self._set(seen[pushed], close[pushed], bias[pushed], eta[pushed])
            rows.append((pushed, seen[pushed], new, date[pushed]))
            date = date.copy()
            date[pushed] = new
        return self._frames(demo, rows, close, won, days)

    def _set(
        self, now: np.ndarray, end: np.ndarray, bias: np.ndarray, eta: np.ndarray
    ) -> np.ndarray:
        ahead = np.maximum(end - now, self.min_days) * np.exp(-bias + self.noise * eta)
        return now + np.maximum(np.floor(ahead), 1.0)

    def _frames(self, demo: DemoHistory, rows, close, won, days) -> DemoHistory:
        deal = np.concatenate([r[0] for r in rows])
        changed = np.concatenate([r[1] for r in rows])
        order = np.lexsort((changed, deal))
        deal, changed = deal[order], changed[order]
        new = np.concatenate([r[2] for r in rows])[order]
        old = np.concatenate([r[3] for r in rows])[order]
        ids = demo.opportunities["opportunity_id"]
        changes = pl.DataFrame(
            {
                "opportunity_id": ids.gather(deal),
                "changed": _dates(demo.start, changed),
                "expected_close": _dates(demo.start, new),
                "previous": _dates(demo.start, np.maximum(old, 0)),
                "stage": pl.Series([None] * deal.size, dtype=pl.String),
                "amount": pl.Series([None] * deal.size, dtype=pl.Float64),
                "probability": pl.Series([None] * deal.size, dtype=pl.Float64),
            }
        ).with_columns(
            pl.when(pl.Series(old >= 0)).then(pl.col("previous")).otherwise(None).alias("previous")
        )
        # The date each deal had at the end of the as-of day (the last set by then).
        last = np.full(ids.len(), -1.0)
        last[deal] = new  # rows are in time order per deal, so the last write wins
        opps = demo.opportunities.with_columns(
            pl.when(pl.col("status") == "open")
            .then(_dates(demo.start, np.maximum(last, 0)))
            .otherwise(None)
            .alias("expected_close")
        )
        ends = pl.DataFrame(
            {"opportunity_id": ids, "ends": _dates(demo.start, np.floor(close)), "won": won}
        )
        truth = dataclasses.replace(demo.truth, notes=demo.truth.notes + self.notes())
        return dataclasses.replace(
            demo,
            opportunities=opps,
            close_date_changes=changes.cast(CLOSE_DATE_CHANGE_COLUMNS),  # type: ignore[arg-type]
            ends=ends,
            truth=truth,
        )


CATEGORY_ORDER = ("commit", "best_case", "pipeline", "omitted")


@dataclass(frozen=True)
class _Categories:
    """How reps call forecast categories (docs/demo-data.md, "Forecast categories").

    The day before each quarter starts, the rep of every deal open then calls its category
    for the quarter, knowing more than the CRM does: the category is drawn from ``if_won``
    when the deal will be won inside that quarter, else from ``if_not`` (probabilities of
    ``CATEGORY_ORDER``). One rep in ``hot_every`` (the first of reps.csv, the 21st, …)
    over-calls: ``hot_if_not`` for the deals they will not win in the quarter. A new deal
    gets a category the same way on the day it is created (for the quarter it is created
    in; not a call: calls are made at quarter starts). A deal's category is recorded when
    it changes; close_date_history.csv gets a row for it and a ``forecast_category`` column
    (the category from that row's day on).
    """

    if_won: tuple[float, ...] = (0.6, 0.25, 0.12, 0.03)
    if_not: tuple[float, ...] = (0.06, 0.19, 0.5, 0.25)
    hot_if_not: tuple[float, ...] = (0.8, 0.1, 0.05, 0.05)
    hot_every: int = 20  # the 1st, 21st, … rep of reps.csv over-calls

    def notes(self, hot: list[str]) -> tuple[str, ...]:
        def rule(p: tuple[float, ...]) -> str:
            return ", ".join(f"{c} {x:g}" for c, x in zip(CATEGORY_ORDER, p, strict=True))

        return (
            "truth: forecast categories called the day before each quarter starts, "
            f"P(category | won inside the quarter): {rule(self.if_won)}; "
            f"P(category | not): {rule(self.if_not)}",
            f"truth: {', '.join(hot)} over-call: P(category | not won inside the quarter): "
            f"{rule(self.hot_if_not)}",
        )

    def play(self, demo: DemoHistory, sim: _Simulation, rng: np.random.Generator) -> DemoHistory:
        """``demo`` with ``category_changes`` and the merged close-date rows. Draws one
        uniform per deal at creation, then one per deal per quarter start, open or not."""
        assert demo.close_date_changes is not None and demo.ends is not None
        days = (demo.as_of - demo.start).days + 1
        keep = _kept(sim, days)
        n = keep.size
        created = np.floor(sim.created[keep])
        end = np.floor(sim.created[keep] + sim.paths.cols["close"][keep])
        won = sim.paths.cols["won"][keep]
        owners = demo.opportunities["owner"]
        hot = [str(r) for r in demo.reps["owner"][:: self.hot_every]]
        is_hot = owners.is_in(hot).to_numpy()
        table = np.array([self.if_won, self.if_not, self.hot_if_not]).cumsum(axis=1)
        table[:, -1] = 1.0

        def call(u: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
            wins = won & (end >= q0) & (end <= q1)
            row = np.where(wins, 0, np.where(is_hot, 2, 1))
            return (u[:, None] > table[row]).sum(axis=1)

        quarters = quarters_between(demo.start, demo.as_of)
        starts = np.array([(q - demo.start).days for q in quarters])
        ends_ = np.array([(quarter_end(q) - demo.start).days for q in quarters])
        which = np.searchsorted(starts, created, side="right") - 1
        first = call(rng.random(n), starts[which], ends_[which])
        deal, day, cat = [np.arange(n)], [created], [first]
        for q0, q1 in zip(starts[1:], ends_[1:], strict=True):
            u = rng.random(n)
            d = q0 - 1
            open_ = np.flatnonzero((created <= d) & (end > d))
            deal.append(open_)
            day.append(np.full(open_.size, float(d)))
            cat.append(call(u, np.full(n, q0), np.full(n, q1))[open_])
        return self._frames(
            demo, np.concatenate(deal), np.concatenate(day), np.concatenate(cat), hot
        )

    def _frames(self, demo, deal, day, cat, hot: list[str]) -> DemoHistory:
        ids = demo.opportunities["opportunity_id"]
        seq = np.arange(deal.size)  # creation before calls on the same day
        calls = pl.DataFrame(
            {
                "opportunity_id": ids.gather(deal),
                "changed": _dates(demo.start, day),
                "forecast_category": _labels(CATEGORY_ORDER, cat),
                "__seq": seq,
            }
        ).sort("opportunity_id", "changed", "__seq")
        calls = calls.group_by("opportunity_id", "changed", maintain_order=True).agg(
            pl.col("forecast_category").last()
        )
        changes = (
            calls.with_columns(
                pl.col("forecast_category").shift(1).over("opportunity_id").alias("previous")
            )
            .filter(pl.col("forecast_category").ne_missing(pl.col("previous")))
            .select(*CATEGORY_CHANGE_COLUMNS)
            .cast(CATEGORY_CHANGE_COLUMNS)  # type: ignore[arg-type]
        )
        dates = demo.close_date_changes.select(
            "opportunity_id", "changed", "expected_close", "previous"
        )
        rows = (
            dates.join(
                changes.select("opportunity_id", "changed", "forecast_category"),
                on=["opportunity_id", "changed"],
                how="full",
                coalesce=True,
            )
            .sort("opportunity_id", "changed")
            .with_columns(
                pl.col("expected_close", "forecast_category").forward_fill().over("opportunity_id")
            )
        )
        # Row order as the close-date rows had it: by deal in row order, then by day.
        order = ids.to_frame().with_row_index("__row")
        rows = (
            rows.join(order, on="opportunity_id")
            .sort("__row", "changed")
            .select("opportunity_id", "changed", "expected_close", "previous", "forecast_category")
        )
        truth = dataclasses.replace(demo.truth, notes=demo.truth.notes + self.notes(hot))
        return dataclasses.replace(
            demo, category_changes=changes, close_date_rows=rows, truth=truth
        )


def _activities(sim: _Simulation, names: pl.Series, start: dt.date) -> pl.DataFrame:
    if not sim.activity_log:
        return pl.DataFrame(schema=ACTIVITY_COLUMNS)
    who = np.concatenate([w for w, _, _, _ in sim.activity_log])
    day = np.concatenate([np.full(w.size, d) for w, d, _, _ in sim.activity_log])
    calls = np.concatenate([x for _, _, x, _ in sim.activity_log])
    emails = np.concatenate([x for _, _, _, x in sim.activity_log])
    n = who.size
    # One row per rep per working day per kind, zero counts included: a row says the rep
    # was on the team that day.
    return pl.DataFrame(
        {
            "owner": names.gather(np.repeat(who, 2)),
            "date": _dates(start, np.repeat(day, 2)),
            "kind": _labels(("call", "email"), np.tile([0, 1], n)),
            "count": pl.Series(np.column_stack([calls, emails]).ravel(), dtype=pl.Int64),
        }
    )
