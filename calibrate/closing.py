"""When in the quarter deals close: the closing clock's weekly rates (docs/model.md §8).

Sales teams book wins at quarter end (or let them slip past it) and clean out lost deals at
its start. The fitted stage durations know nothing of the calendar, so each day of the
history gets the number of wins (and losses) the fitted model expected on it: the sum, over
every deal then in its stage, of the chance it closes that day given how long it had been
there (the compensator of the closing process). Observed over expected, by week of the
calendar quarter, is the clock's rate in that week (the maximum-likelihood estimate of a
multiplicative factor on the closing hazard, given the fitted durations).

A clock is kept only when the weekly counts depart from the fitted model beyond chance
(Pearson's χ², p < 0.01). Thirteen rates from a few quarters are noisy, so each week's log
ratio is then shrunk towards 0 by its share of signal (empirical Bayes: the spread of the
log ratios beyond their Poisson noise, ``1/observed``, by the method of moments); a history
whose closes follow the fitted durations all quarter long gets no clock at all. The rates are
scaled to a mean of 1 over the quarter's days, so the clock changes when deals close within a
quarter, not how many.
The durations are not fitted again on the clock: an approximation, exact when durations are
long against a week or short against a quarter.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from scipy import stats

from salesim.simulator.calendar import WEEKS_PER_QUARTER, ClosingClock, weeks_of_quarter
from salesim.simulator.model import StageModel

from .durations import ADVANCE, CENSORED, HALF, LOST, _dist_sf
from .stages import Records

MIN_CLOSES = 130  # closes of an outcome for its clock: about 10 a week of the quarter
CLOCK_P = 0.01  # a weekly pattern is kept when chance would show it less often
_EPOCH = dt.date(1970, 1, 1)


def daily_chance(stage: StageModel, outcome: int, ages: int) -> np.ndarray:
    """P(the stage's ``outcome`` on whole day ``a`` in the stage | still there at its start),
    a = 0 … ages − 1, from the fitted (point) model: whole days as in the fits (an event on
    day a happened in (a − ½, a + ½])."""
    pi = stage.stall.mean if stage.stall is not None else 0.0
    p = min(stage.conversion.mean, 1.0 - pi)
    share, dist = (p, stage.advance.dist) if outcome == ADVANCE else (1 - p - pi, stage.lost.dist)
    lo = np.maximum(np.arange(ages) - HALF, 0.0)
    hi = np.arange(ages) + HALF
    still = p * _dist_sf(stage.advance.dist, lo) + (1 - p - pi) * _dist_sf(stage.lost.dist, lo) + pi
    event = share * (_dist_sf(dist, lo) - _dist_sf(dist, hi))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(still > 1e-12, np.clip(event / still, 0.0, 1.0), 0.0)


def observed_expected(records: Records, stage: StageModel, outcome: int, first: int, last: int):
    """Per calendar day ``first`` … ``last`` (days since 1970-01-01): the stage's observed
    ``outcome`` events and the fitted model's expected number."""
    span = last - first + 1
    observed, expected = np.zeros(span), np.zeros(span)
    if records.t.size == 0:
        return observed, expected
    entry, t = records.entry.astype(np.int64), records.t.astype(np.int64)
    hit = records.kind == outcome
    np.add.at(observed, np.clip(entry[hit] + t[hit] - first, 0, span - 1), 1.0)
    h = daily_chance(stage, outcome, int(t.max()) + 1)
    # Deals entering on the same day share their risk set: at risk on day a while t ≥ a.
    for e in np.unique(entry):
        ti = t[entry == e]
        at_risk = np.cumsum(np.bincount(ti, minlength=h.size)[::-1])[::-1]
        days = e - first + np.arange(h.size)
        ok = (days >= 0) & (days < span)
        np.add.at(expected, days[ok], (at_risk * h)[ok])
    return observed, expected


def shrunk_rates(
    observed: np.ndarray, expected: np.ndarray, n_days: np.ndarray
) -> np.ndarray | None:
    """Weekly rates from observed and expected closes per week of the quarter, each log ratio
    shrunk by its share of signal and the rates scaled to a day-weighted mean of 1; None
    when the closes are too few or show no pattern beyond noise."""
    if observed.sum() < MIN_CLOSES or np.any(expected <= 0):
        return None
    # Beyond chance? Pearson's statistic of the weeks against the fitted model (scaled to
    # the observed total), 12 degrees of freedom.
    fitted = expected * observed.sum() / expected.sum()
    if (
        stats.chi2.sf(float(np.sum((observed - fitted) ** 2 / fitted)), observed.size - 1)
        >= CLOCK_P
    ):
        return None
    z = np.log((observed + 0.5) / (expected + 0.5))
    w = n_days / n_days.sum()
    z = z - np.dot(w, z)
    noise = 1.0 / (observed + 0.5)
    signal = max(float(np.mean(z * z) - np.mean(noise)), 0.0)
    if signal == 0.0:
        return None
    rates = np.exp(z * signal / (signal + noise))
    return rates / np.dot(w, rates)


def first_close(records: list[Records]) -> int | None:
    """The day (since 1970-01-01) of the history's first close, in any stage; None: none."""
    closes = [r.entry[r.kind != CENSORED] + r.t[r.kind != CENSORED] for r in records]
    return int(min(c.min() for c in closes if c.size)) if any(c.size for c in closes) else None


def fit_closing(
    records: list[Records], stages: tuple[StageModel, ...], first: dt.date, as_of: dt.date
) -> tuple[ClosingClock | None, dict, list[str]]:
    """The closing clock from every stage's records (wins: the last stage's advances;
    losses: every stage's), the observed and expected closes per week of the quarter (what
    the rates rest on), and notes."""
    # From the first close in the history: exports often hold no closes before some date.
    a = max((first - _EPOCH).days, first_close(records) or (first - _EPOCH).days)
    b = (as_of - _EPOCH).days
    days = np.arange(a, b + 1)
    week = weeks_of_quarter(days)
    n_days = np.bincount(week, minlength=WEEKS_PER_QUARTER).astype(float)
    found, rates = {}, {}
    for name, outcome, which in (
        ("won", ADVANCE, [len(stages) - 1]),
        ("lost", LOST, range(len(stages))),
    ):
        o, e = np.zeros(days.size), np.zeros(days.size)
        for j in which:
            oj, ej = observed_expected(records[j], stages[j], outcome, a, b)
            o, e = o + oj, e + ej
        ob = np.bincount(week, weights=o, minlength=WEEKS_PER_QUARTER)
        eb = np.bincount(week, weights=e, minlength=WEEKS_PER_QUARTER)
        found[name] = {"observed": ob.tolist(), "expected": eb.tolist()}
        rates[name] = shrunk_rates(ob, eb, np.maximum(n_days, 1.0))
    if rates["won"] is None and rates["lost"] is None:
        return None, found, []
    ones = np.ones(WEEKS_PER_QUARTER)
    shapes = [ones if (shape := rates[k]) is None else shape for k in ("won", "lost")]
    clock = ClosingClock(*(tuple(float(max(x, 0.05)) for x in shape) for shape in shapes))
    notes = []
    for k, what in (("won", "wins"), ("lost", "losses")):
        r = getattr(clock, k)
        if rates[k] is not None:
            notes.append(
                f"closing clock: {what} by week of the quarter run at "
                f"{min(r):.2f}–{max(r):.2f}× the average pace (last three weeks "
                f"{np.mean(r[-3:]):.2f}×, first three {np.mean(r[:3]):.2f}×)"
            )
    return clock, found, notes
