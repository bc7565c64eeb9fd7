"""Units: money and dates as people write them, one reader and one writer for every module,
and the length of a month.

``parse_amount("12M")``, ``money(1.2e6) == "1.20M"`` and ``as_date("2026-06-30")``; bad
values raise ``InputError`` naming what was being read.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from .errors import InputError
from .limits import MAX_AMOUNT

# The mean calendar month in days: tenures, ramps and attrition hazards are per month.
DAYS_PER_MONTH = 365.25 / 12

AMOUNT_SYNTAX = f"an amount from 0 to {MAX_AMOUNT:.0e} such as 12M, 750k or 1,200,000"
_AMOUNT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kKmMbB]?)")
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9}


def parse_amount(text, *, what: str = "amount") -> float:
    """``12M``, ``750k``, ``1,200,000``, ``$2.5m`` or a number -> float (0 to ``MAX_AMOUNT``)."""
    amount = None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        amount = float(text)
    else:
        s = str(text).strip().replace(",", "").replace("_", "").lstrip("$€£")
        if m := _AMOUNT.fullmatch(s):
            amount = float(m.group(1)) * _SCALE[m.group(2).lower()]
    if amount is None or not 0 <= amount <= MAX_AMOUNT:  # NaN and inf too
        raise InputError(f"cannot read {what} {text!r}", column=what, expected=AMOUNT_SYNTAX)
    return amount


def money(x: float | None) -> str:
    """``1.23M``, ``45.6k``, ``1,234``; ``-`` for a missing or infinite value."""
    if x is None or not math.isfinite(x):
        return "-"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:,.2f}M"
    if a >= 1e4:
        return f"{x / 1e3:,.1f}k"
    return f"{x:,.0f}"


def short_money(x: float, *, m_digits: int = 2, signed: bool = False) -> str:
    """Tight labels for charts and notes: ``1.23M``, ``450k``, ``800``; ``signed`` adds ``+``."""
    sign = "-" if x < 0 else ("+" if signed else "")
    a = abs(x)
    if a >= 1e6:
        return f"{sign}{a / 1e6:.{m_digits}f}M"
    if a >= 1e3:
        return f"{sign}{a / 1e3:.0f}k"
    return f"{sign}{a:.0f}"


def as_date(value: object, *, what: str = "date", column: str | None = None) -> dt.date:
    """A ``date``, a ``datetime`` (its day) or an ISO string -> ``date``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(
            f"not a real {what}: {value!r}",
            column=column,
            expected="an ISO date such as 2026-06-30",
        ) from None
