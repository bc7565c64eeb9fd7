"""What makes a demo history change over time (docs/demo-data.md, "Changing histories").

``Ingredients`` are the options of ``salesim demo-data`` that make a history non-stationary.
Four are the model's own quarter effects (docs/model.md §8, ``simulator/calendar.py``):
conversion drift, creation growth, seasonality and quarter shocks. Two are things the model
has no parameter for, so that backtests can see how forecasts cope with them: wins slipping
past a quarter's end and reps leaving mid-quarter.

This module checks the options, draws the quarter effects they give, and says what the truth
records (``truth_calendar``, ``truth_notes``) and what a forecaster at a cutoff would know of
it (``truth_as_of``). ``demo_history`` plays the ingredients forward.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, fields

import numpy as np

from .calendar import CalendarModel, PeriodEffects, add_quarters, quarter_of_year
from .errors import InputError
from .model import Model

# The quarter-effect channels the generator plays (docs/model.md §8; not pace, which
# belongs to a forecast's calendar, not to anything an ingredient generates).
PLAYED = ("outbound", "marketing", "conversion", "speed")
# The magnitudes ``--realistic`` switches on (docs/demo-data.md states each one's meaning).
REALISTIC = {
    "drift": -0.04,
    "growth": 0.08,
    "seasonality": 0.4,
    "slips": 0.4,
    "shocks": 0.1,
    "leavers": 0.1,
}
# Largest |value| accepted: beyond these a history is a caricature, not a CRM.
LIMITS = {
    "drift": 0.5,
    "growth": 0.5,
    "seasonality": 1.0,
    "slips": 1.0,
    "shocks": 0.5,
    "leavers": 1.0,
}
MAX_GROWTH_FOLD = 20.0  # growth may multiply creation at most this much over a history
SEASON_SHAPE = (-0.5, 0.0, -0.5, 1.0)  # log creation multipliers Q1..Q4, per unit seasonality
FUTURE_QUARTERS = 4  # quarters after as-of that the truth's calendar covers
SLIP_DAYS = 21  # a win in a quarter's last 21 days may slip 1–21 days past it
LEAVING_DAYS = (30.0, 60.0)  # a mid-quarter leaver leaves this many days into the quarter


@dataclass(frozen=True)
class Ingredients:
    """What changes over a demo history; every field 0 means a stationary history.

    ``drift``: change per quarter of every stage's log odds of advancing. ``growth``: change
    per quarter of the log outbound and marketing rates. ``seasonality``: log creation
    multipliers ``seasonality·SEASON_SHAPE`` by quarter of the year. ``shocks``: sd of each
    calendar quarter's own effect on each channel. ``slips``: probability that a win in a
    quarter's last ``SLIP_DAYS`` days closes 1–``SLIP_DAYS`` days after the quarter instead.
    ``leavers``: probability that a rep leaves in days ``LEAVING_DAYS`` of a quarter, on top
    of attrition. Errors name the ``salesim demo-data`` option.
    """

    drift: float = 0.0
    growth: float = 0.0
    seasonality: float = 0.0
    slips: float = 0.0
    shocks: float = 0.0
    leavers: float = 0.0

    def __post_init__(self):
        for name in NAMES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise InputError(f"needs a number, got {value!r}", column=f"--{name}")
            value = float(value)
            low = 0.0 if name in ("slips", "shocks", "leavers") else -LIMITS[name]
            if not (math.isfinite(value) and low <= value <= LIMITS[name]):
                raise InputError(
                    f"must be between {low:g} and {LIMITS[name]:g}, got {value!r}",
                    column=f"--{name}",
                )
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(cls, realistic: bool = False, **given) -> Ingredients:
        """The ingredients of ``salesim demo-data``'s options: ``given`` values are numbers or
        text as typed (``None``: not given); ``realistic`` puts every ingredient not given at
        its ``REALISTIC`` magnitude."""
        unknown = set(given) - set(NAMES)
        if unknown:
            raise InputError(
                f"unknown ingredient(s) {sorted(unknown)}", expected=f"some of {', '.join(NAMES)}"
            )
        values = dict(REALISTIC) if realistic else {}
        for name, value in given.items():
            if value is not None:
                values[name] = _number(value, name)
        return cls(**values)

    def on(self) -> dict[str, float]:
        """The ingredients switched on (``--json``'s ``ingredients``), option → value."""
        return {name: getattr(self, name) for name in NAMES if getattr(self, name) != 0}

    def channels(self) -> tuple[str, ...]:
        """The calendar channels these ingredients give an effect (in ``PLAYED`` order)."""
        creation = bool(self.growth or self.seasonality or self.shocks)
        has = {
            "outbound": creation,
            "marketing": creation,
            "conversion": bool(self.drift or self.shocks),
            "speed": bool(self.shocks),
        }
        return tuple(c for c in PLAYED if has[c])

    def check_history(self, quarters: int) -> None:
        """Growth compounds: refuse histories where it multiplies creation absurdly."""
        fold = math.exp(self.growth * (quarters - 1))
        if fold > MAX_GROWTH_FOLD:
            raise InputError(
                f"{self.growth:g} per quarter over {quarters} quarters multiplies "
                f"creation by {fold:,.0f}",
                column="--growth",
                expected=f"at most {MAX_GROWTH_FOLD:g}-fold over the history",
            )


NAMES = tuple(f.name for f in fields(Ingredients))


def _number(value, name: str) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise InputError(f"not a number: {value!r}", column=f"--{name}") from None
    return value


# --- quarter effects ------------------------------------------------------------------------------
def trend_and_season(
    trend: float, season: tuple[float, ...], periods: tuple[dt.date, ...]
) -> np.ndarray:
    """The effect without shocks in each of ``periods``: ``trend`` per quarter counted from
    ``periods[0]`` (effect 0 there) plus the quarter of the year's ``season`` (if any)."""
    j = np.arange(len(periods), dtype=float)
    s = (
        np.array([season[quarter_of_year(p)] for p in periods])
        if season
        else np.zeros(len(periods))
    )
    return trend * j + s


def _shape(ing: Ingredients, channel: str) -> tuple[float, tuple[float, ...]]:
    """A channel's (trend, season) under the ingredients."""
    if channel in ("outbound", "marketing"):
        season = tuple(ing.seasonality * x for x in SEASON_SHAPE) if ing.seasonality else ()
        return ing.growth, season
    if channel == "conversion":
        return ing.drift, ()
    return 0.0, ()


def draw_effects(
    ing: Ingredients, rng: np.random.Generator, periods: tuple[dt.date, ...]
) -> dict[str, np.ndarray]:
    """Realised effect per history quarter of each channel the ingredients touch: trend and
    season plus the quarter's shock. The shocks are ``len(PLAYED)`` rows of
    ``len(periods)`` standard normals, drawn in ``PLAYED`` order whatever is switched on."""
    z = rng.standard_normal((len(PLAYED), len(periods)))
    out = {}
    for c in ing.channels():
        trend, season = _shape(ing, c)
        out[c] = trend_and_season(trend, season, periods) + ing.shocks * z[PLAYED.index(c)]
    return out


# --- what the truth records -----------------------------------------------------------------------
def truth_calendar(
    ing: Ingredients, periods: tuple[dt.date, ...], realised: dict[str, np.ndarray]
) -> CalendarModel | None:
    """The truth's quarter effects: realised values (sd 0) in the history's quarters, then
    ``FUTURE_QUARTERS`` quarters of trend + season with the shocks' sd still to come."""
    if not realised:
        return None
    n = len(periods)
    future = tuple(add_quarters(periods[-1], k) for k in range(1, FUTURE_QUARTERS + 1))
    effects = {}
    for c, values in realised.items():
        trend, season = _shape(ing, c)
        ahead = trend_and_season(trend, season, periods + future)[n:]
        effects[c] = PeriodEffects(
            periods=periods + future,
            mean=tuple(float(x) for x in np.concatenate([values, ahead])),
            sd=(0.0,) * n + (ing.shocks,) * FUTURE_QUARTERS,
            shock_sd=ing.shocks,
            trend=trend,
            season=season,
            observed=n,
        )
    return _calendar(effects)


def truth_notes(ing: Ingredients) -> tuple[str, ...]:
    """A note per ingredient switched on: its value, and where the truth holds it (or that
    the model cannot)."""
    notes = []
    if ing.drift:
        notes.append(
            f"truth: conversion drift {ing.drift:+g} per quarter in every stage's log "
            "odds of advancing (calendar.conversion.trend)"
        )
    if ing.growth:
        notes.append(
            f"truth: creation growth {ing.growth:+g} per quarter in the log outbound "
            "and marketing rates (calendar.outbound/marketing.trend)"
        )
    if ing.seasonality:
        season = ", ".join(f"{ing.seasonality * x:+g}" for x in SEASON_SHAPE)
        notes.append(
            f"truth: seasonality {ing.seasonality:g}: log creation multipliers Q1..Q4 "
            f"{season} (calendar.outbound/marketing.season)"
        )
    if ing.shocks:
        notes.append(
            f"truth: quarter shocks N(0, {ing.shocks:g}) on log outbound, log "
            "marketing, conversion log odds and log speed; history quarters hold the "
            f"drawn effects, later quarters sd {ing.shocks:g} (calendar.*.shock_sd)"
        )
    if ing.slips:
        notes.append(
            f"truth: slips {ing.slips:g} of wins in a quarter's last {SLIP_DAYS} days "
            f"to 1–{SLIP_DAYS} days into the next quarter (not in the model)"
        )
    if ing.leavers:
        lo, hi = LEAVING_DAYS
        notes.append(
            f"truth: leavers {ing.leavers:g} of the reps on the team leave in each "
            f"quarter, {lo:g}–{hi:g} days into it, on top of team.attrition (the base "
            "hazard; not in the model)"
        )
    return tuple(notes)


def truth_as_of(truth: Model, cutoff: dt.date) -> Model:
    """The truth as a forecaster at the end of ``cutoff`` would know it: quarters that start
    after ``cutoff`` get the predictive effect (trend + season, sd ``shock_sd``) instead of
    what was realised, and ``as_of = cutoff``. Everything else is unchanged.

    For truths ``demo_history.generate`` wrote: their trend counts from the first stored
    quarter (``trend_and_season``).
    """
    cal = truth.calendar
    if cal is None:
        return dataclasses.replace(truth, as_of=cutoff)
    hidden = {}
    for c in PLAYED:
        e = cal.channel(c)
        if e is None:
            continue
        known = np.array([p <= cutoff for p in e.periods])
        mean = np.where(known, e.mean, trend_and_season(e.trend, e.season, e.periods))
        sd = np.where(known, e.sd if e.sd else 0.0, e.shock_sd)
        hidden[c] = dataclasses.replace(
            e,
            mean=tuple(float(x) for x in mean),
            sd=tuple(float(x) for x in sd),
            observed=min(int(known.sum()), e.observed),
        )
    return dataclasses.replace(truth, as_of=cutoff, calendar=_calendar(hidden, cal.closing))


def _calendar(effects: dict[str, PeriodEffects], closing=None) -> CalendarModel:
    return CalendarModel(
        outbound=effects.get("outbound"),
        marketing=effects.get("marketing"),
        conversion=effects.get("conversion"),
        speed=effects.get("speed"),
        closing=closing,
    )
