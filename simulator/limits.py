"""The documented maxima and plausible ranges of what salesim accepts: each number once.

A value beyond them is a mistake (a unit slip, an extra zero, a corrupted file), and past
them memory or floating point gives out: ``--trials 1e12`` would ask for terabytes, a horizon
of 450 000 weeks overflows the calendar, a deal of 1e300 overflows the sums. The model file
(``simulator.model_checks``), the scenario file (``scenarios.scenario``), the runner and the
command line all check against these; docs/scenarios.md and docs/calibration.md list them.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers

from .errors import InputError

MAX_TRIALS = 10_000_000  # Monte Carlo trials in one run
MAX_WEEKS = 520  # a horizon of ten years
MAX_DAYS = 7 * MAX_WEEKS
MAX_REPS = 100_000  # seats on a team, or reps a plan adds
MAX_AMOUNT = 1e15  # money: a deal's mean size, a quota (1e15 even in yen or won)
MAX_ACTIVITIES = (
    1_000_000_000  # activities on one row of an activity log (sums stay exact in int64)
)
MAX_MULTIPLIER = 1_000.0  # a lever's multiplier (x1000)
FIRST_DATE = dt.date(1970, 1, 1)
LAST_DATE = dt.date(2100, 12, 31)


def whole_in_range(value, low: int, high: int, *, what: str, column: str | None = None) -> int:
    """``value`` as an int if it is a whole number in ``[low, high]``, else ``InputError``
    (naming ``column``, an option such as ``--trials``, when given)."""
    number = (
        float(value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
        else math.nan
    )
    if not (number.is_integer() and low <= number <= high):  # NaN and inf fail
        raise InputError(
            f"{what + ' ' if column is None else ''}{value!r} is not allowed",
            column=column,
            expected=f"a whole number from {low:,} to {high:,}",
        )
    return int(number)


def check_trials(trials, *, column: str | None = "--trials") -> int:
    """Trials of one run: a whole number from 1 to ``MAX_TRIALS``."""
    return whole_in_range(trials, 1, MAX_TRIALS, what="trials", column=column)


def check_weeks(weeks, *, column: str | None = "--weeks") -> int:
    """A horizon in weeks: a whole number from 1 to ``MAX_WEEKS``."""
    return whole_in_range(weeks, 1, MAX_WEEKS, what="weeks", column=column)


def plausible_date(day: dt.date) -> bool:
    return FIRST_DATE <= day <= LAST_DATE


DATE_RANGE = f"a date from {FIRST_DATE} to {LAST_DATE}"
