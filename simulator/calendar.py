"""What the calendar does to the model: quarter effects and the closing clock (docs/model.md §8).

Real histories change from quarter to quarter: creation grows or shrinks, win rates drift,
cycles speed up, some quarters are just better than others, and deals bunch up at (or slip
past) the quarter's end. Two model parts say so, both optional (a model without them is the
stationary model of docs/model.md §1–§7):

- ``PeriodEffects``: one *channel*'s effect in each calendar quarter, with its uncertainty.
  Channels (``CHANNELS``): ``outbound`` and ``marketing`` (log multipliers of the rates at
  which reps and marketing create opportunities), ``conversion`` (a shift of every stage's
  log odds of advancing rather than being lost), ``speed`` (a log multiplier of stage
  durations) and ``pace`` (a log multiplier of the rate at which deals are won: the won
  closing clock's rate). Conversion and speed act on a stage by the quarter in which the
  deal *entered* it (a cohort's quality); pace by the calendar quarter in which the win
  would come (a good or a bad quarter for closing, for every deal in flight). Each Monte
  Carlo trial draws one effect per quarter: ``mean + sd·z + common·w`` with independent
  standard normals ``z`` (per quarter: its own shock) and ``w`` (shared by the quarters:
  the uncertainty of the level and trend they come from).
- ``ClosingClock``: deals close (are won or lost) on a clock that runs faster or slower by
  week of the calendar quarter (13 weekly rates, mean 1 over a quarter): a clock fast in the
  last weeks bunches wins at quarter end, one slow there lets them slip into the next quarter.
  A closing duration ``D`` that starts at time ``e`` ends at ``Λ⁻¹(Λ(e) + D)`` where
  ``Λ(t) = ∫₀ᵗ rate``.

Dates and quarters are calendar quarters (Jan–Mar, …); the helpers here are the one place
that says how a date maps to a quarter, a week of the quarter or a period index.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

CHANNELS = ("outbound", "marketing", "conversion", "speed", "pace")
WEEKS_PER_QUARTER = 13  # the closing clock's bins; a quarter's days 85-92 share bin 12
MIN_CLOCK_RATE = 0.05  # a rate of 0 would stop the clock for ever


# --- quarters -------------------------------------------------------------------------------------
def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_end(day: dt.date) -> dt.date:
    return add_quarters(quarter_start(day), 1) - dt.timedelta(days=1)


def add_quarters(day: dt.date, n: int) -> dt.date:
    """The first day of the quarter ``n`` quarters after ``day``'s (``n`` may be negative)."""
    q = quarter_index(day) + n
    return dt.date(q // 4, 3 * (q % 4) + 1, 1)


def quarter_index(day: dt.date) -> int:
    """A running quarter number: 4 × year + (quarter − 1)."""
    return 4 * day.year + (day.month - 1) // 3


def quarter_label(day: dt.date) -> str:
    """``Q4 2026``: the calendar quarter ``day`` falls in, as titles name it."""
    return f"Q{quarter_of_year(day) + 1} {day.year}"


def quarter_of_year(day: dt.date) -> int:
    """0 for Jan–Mar … 3 for Oct–Dec."""
    return (day.month - 1) // 3


def week_of_quarter(day: dt.date) -> int:
    """0 … 12: the week of the calendar quarter ``day`` falls in (days 85-92 are week 12)."""
    return min((day - quarter_start(day)).days // 7, WEEKS_PER_QUARTER - 1)


def quarters_between(first: dt.date, last: dt.date) -> tuple[dt.date, ...]:
    """First days of the calendar quarters from ``first``'s to ``last``'s."""
    out, q = [], quarter_start(first)
    while q <= last:
        out.append(q)
        q = add_quarters(q, 1)
    return tuple(out)


# The same rules for arrays of days (days since 1970-01-01), as the fits count them.
def quarter_indexes(days) -> np.ndarray:
    """``quarter_index`` of each day."""
    d = np.asarray(days).astype("datetime64[D]")
    months = d.astype("datetime64[M]").astype(np.int64)  # since 1970-01
    return 4 * (1970 + months // 12) + (months % 12) // 3


def weeks_of_quarter(days) -> np.ndarray:
    """``week_of_quarter`` of each day."""
    d = np.asarray(days, dtype=np.int64)
    months = d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first = (months - months % 3).astype("datetime64[M]").astype("datetime64[D]")
    return np.minimum((d - first.astype(np.int64)) // 7, WEEKS_PER_QUARTER - 1)


def period_offsets(periods, start: dt.date) -> np.ndarray:
    """Day offsets from ``start`` of each period's first day."""
    return np.array([(p - start).days for p in periods], dtype=float)


def period_at(offsets: np.ndarray, t) -> np.ndarray:
    """Index of the period that time ``t`` (days from the start) falls in, given the periods'
    first days ``offsets``; times before the first period or after the last take the
    nearest one."""
    i = np.searchsorted(offsets, np.asarray(t, dtype=float), side="right") - 1
    return np.clip(i, 0, len(offsets) - 1)


# --- quarter effects ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodEffects:
    """One channel's effect in each calendar quarter (module docstring).

    ``periods`` are consecutive quarters' first days. Per trial, quarter ``i`` has effect
    ``mean[i] + sd[i]·z_i + Σ_j common[i][j]·w_j`` (``z``, ``w`` standard normal); ``sd`` and
    ``common`` empty mean none. Times before the first quarter or after the last take the
    nearest one. The other fields describe the fit (read by people and the diagnostics;
    engines do not use them): ``shock_sd`` the sd of a quarter's own shock, ``trend`` the
    change per quarter, ``season`` the effect of each quarter of the year (Q1…Q4; empty:
    none), ``forgetting`` the weight of a quarter relative to the next one in the fit (1:
    every quarter alike), ``observed`` the quarters whose effect the history measured.
    """

    periods: tuple[dt.date, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...] = ()
    common: tuple[tuple[float, ...], ...] = ()
    shock_sd: float = 0.0
    trend: float = 0.0
    season: tuple[float, ...] = ()
    forgetting: float = 1.0
    observed: int = 0

    def __post_init__(self):
        n = len(self.periods)
        if n == 0:
            raise ValueError("quarter effects need at least one quarter")
        if (
            len(self.mean) != n
            or (self.sd and len(self.sd) != n)
            or (self.common and len(self.common) != n)
        ):
            raise ValueError(
                "quarter effects: periods, mean, sd and common must have one entry per quarter"
            )
        if any(quarter_start(p) != p for p in self.periods) or any(
            add_quarters(a, 1) != b for a, b in zip(self.periods, self.periods[1:])
        ):
            raise ValueError("quarter effects: periods must be consecutive quarters' first days")
        values = list(self.mean) + list(self.sd) + [x for row in self.common for x in row]
        if not all(math.isfinite(float(x)) for x in values) or any(s < 0 for s in self.sd):
            raise ValueError("quarter effects: means and loadings must be finite, sds ≥ 0")
        if len({len(r) for r in self.common}) > 1:
            raise ValueError("quarter effects: every row of common needs the same length")

    @property
    def n_common(self) -> int:
        return len(self.common[0]) if self.common else 0

    @property
    def uncertain(self) -> bool:
        return any(s > 0 for s in self.sd) or any(x != 0 for r in self.common for x in r)

    def covariance(self) -> np.ndarray:
        n = len(self.periods)
        cov = np.diag(np.square(np.asarray(self.sd, dtype=float))) if self.sd else np.zeros((n, n))
        if self.common:
            c = np.asarray(self.common, dtype=float)
            cov = cov + c @ c.T
        return cov

    def draw(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Effects per quarter for one trial (``size=None``) or ``size`` trials (rows). Draws
        ``len(periods)`` normals, then ``n_common``, per trial, in that order."""
        n, m = len(self.periods), self.n_common
        rows = 1 if size is None else size
        z = rng.standard_normal((rows, n + m))
        x = np.broadcast_to(np.asarray(self.mean, dtype=float), (rows, n)).copy()
        if self.sd:
            x += z[:, :n] * np.asarray(self.sd, dtype=float)
        if m:
            x += z[:, n:] @ np.asarray(self.common, dtype=float).T
        return x[0] if size is None else x

    def at(self, day: dt.date) -> int:
        """Index of the quarter ``day`` falls in (clamped to the stored quarters)."""
        return int(
            period_at(period_offsets(self.periods, self.periods[0]), (day - self.periods[0]).days)
        )


@dataclass(frozen=True)
class ClosingClock:
    """Rates of the closing clock by week of the calendar quarter (``WEEKS_PER_QUARTER``
    values each, mean 1 over a quarter's days): ``won`` for the last stage's advance (a win),
    ``lost`` for a loss in any stage. Stage advances before the last run on plain days."""

    won: tuple[float, ...]
    lost: tuple[float, ...]

    def __post_init__(self):
        for name in ("won", "lost"):
            v = getattr(self, name)
            if len(v) != WEEKS_PER_QUARTER or not all(
                math.isfinite(x) and x >= MIN_CLOCK_RATE for x in v
            ):
                raise ValueError(
                    f"closing clock: {name} needs {WEEKS_PER_QUARTER} rates, each "
                    f"≥ {MIN_CLOCK_RATE}"
                )

    def daily(self, which: str, start: dt.date, days: int) -> np.ndarray:
        """The clock's rate on each of ``days`` days from ``start``."""
        first = (start - dt.date(1970, 1, 1)).days
        return np.asarray(getattr(self, which), dtype=float)[
            weeks_of_quarter(first + np.arange(days))
        ]


def clock_table(rates: np.ndarray) -> np.ndarray:
    """``Λ`` at whole days 0 … len(rates): the cumulative clock (``warp``'s table); for a
    row of rates per trial, a row of ``Λ`` per trial."""
    rates = np.asarray(rates, dtype=float)
    zero = np.zeros(rates.shape[:-1] + (1,))
    return np.concatenate([zero, np.cumsum(rates, axis=-1)], axis=-1)


def warp(table: np.ndarray, rates: np.ndarray, begin, duration):
    """When a closing duration ``duration`` started at ``begin`` ends on the clock
    (``Λ⁻¹(Λ(begin) + duration)``). Times are days from the start, 0 ≤ begin; beyond the
    table the clock runs at rate 1 (only "after the horizon" matters there)."""
    begin = np.asarray(begin, dtype=float)
    days = rates.size
    d0 = np.clip(np.floor(begin), 0, days - 1).astype(np.int64)
    inside = begin < days
    lam0 = np.where(inside, table[d0] + (begin - d0) * rates[d0], table[days] + (begin - days))
    target = lam0 + np.asarray(duration, dtype=float)
    k = np.clip(np.searchsorted(table, target, side="right") - 1, 0, days - 1)
    out = k + (target - table[k]) / rates[k]
    return np.where(target >= table[days], days + (target - table[days]), out)


@dataclass(frozen=True)
class CalendarModel:
    """The calendar's part of the model: quarter effects per channel (``None``: the channel
    does not change) and the closing clock (``None``: plain days)."""

    outbound: PeriodEffects | None = None
    marketing: PeriodEffects | None = None
    conversion: PeriodEffects | None = None
    speed: PeriodEffects | None = None
    pace: PeriodEffects | None = None
    closing: ClosingClock | None = None

    def channel(self, name: str) -> PeriodEffects | None:
        return getattr(self, name)

    @property
    def empty(self) -> bool:
        return self.closing is None and all(self.channel(c) is None for c in CHANNELS)


# --- a calendar laid over one horizon (what the engines use) --------------------------------------
def shifted_conversion(p, stall, shift):
    """A stage's P(advance) with its log odds of advancing rather than being lost shifted by
    ``shift`` (§8): ``(1 − π)·expit(logit(p / (1 − π)) + shift)``; 0 and ``1 − π`` stay."""
    p, stall, shift = (np.asarray(x, dtype=float) for x in (p, stall, shift))
    room = 1.0 - stall
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.where(room > 0, p / np.where(room > 0, room, 1.0), 0.0)
        odds = np.log(q) - np.log1p(-q) + shift
        moved = room / (1.0 + np.exp(-odds))
    out = np.where((q > 0) & (q < 1), moved, p)
    return out[()] if out.ndim == 0 else out


@dataclass(frozen=True)
class Layout:
    """A ``CalendarModel`` laid over a horizon of ``days`` days from ``start``: each channel's
    quarter starts as day offsets (``None``: no effects), the won clock's weekly rates by day
    and the lost clock's with its ``clock_table`` (``None``: plain days)."""

    offsets: tuple[np.ndarray | None, ...]
    won_rates: np.ndarray | None = None
    lost_clock: tuple[np.ndarray, np.ndarray] | None = None  # rates, ``clock_table``

    @staticmethod
    def of(calendar: CalendarModel | None, start: dt.date, days: int) -> "Layout":
        if calendar is None:
            return Layout((None,) * len(CHANNELS))
        offsets = tuple(
            None if (fx := calendar.channel(c)) is None else period_offsets(fx.periods, start)
            for c in CHANNELS
        )
        clock = calendar.closing
        if clock is None:
            return Layout(offsets)
        lost = clock.daily("lost", start, days)
        return Layout(offsets, clock.daily("won", start, days), (lost, clock_table(lost)))

    def offsets_of(self, channel: str) -> np.ndarray | None:
        return self.offsets[CHANNELS.index(channel)]

    def effect(self, channel: str, effects, t):
        """The effect of ``channel`` at time(s) ``t`` (0 where the channel has none)."""
        off = self.offsets_of(channel)
        if off is None or len(effects) == 0:
            return np.zeros(np.shape(t))[()] if np.ndim(t) else 0.0
        return np.asarray(effects, dtype=float)[period_at(off, t)]

    @property
    def clocked(self) -> bool:
        return self.won_rates is not None or self.offsets_of("pace") is not None

    def won_clock(self, pace, days: int) -> np.ndarray | None:
        """The won clock's daily rates for trials whose pace effects are ``pace`` (per
        quarter, a row per trial or one row; empty: none): the weekly rates times
        ``exp(pace)`` of each day's quarter. None: plain days."""
        off = self.offsets_of("pace")
        if self.won_rates is None and (off is None or len(pace) == 0):
            return None
        rates = self.won_rates if self.won_rates is not None else np.ones(days)
        if off is not None and len(pace):
            rates = rates * np.exp(
                np.asarray(pace, dtype=float)[..., period_at(off, np.arange(days) + 0.5)]
            )
        return rates

    def close(self, clock: tuple[np.ndarray, np.ndarray] | None, begin, duration):
        """When a closing duration started at ``begin`` ends on ``clock`` (its rates and
        ``clock_table``: the trial's won clock, or ``lost_clock``); plain days without one."""
        if clock is None:
            return np.asarray(begin, dtype=float) + duration
        rates, table = clock
        return warp(table, rates, begin, duration)
