"""Text dates -> calendar days, strictly (docs/formats.md, "Dates").

ISO by default; a strftime pattern when given (a time after the date is dropped); ``auto``
picks between month-first and day-first from the values themselves. A parsed year outside
``YEARS`` is an error the caller reports with file, row and column: it is how a two-digit year
read with ``%Y`` (``10/22/24`` -> year 24) shows itself.
"""

from __future__ import annotations

import polars as pl

from salesim.simulator.errors import InputError

# The plausible years of a CRM date; anything else is a misread (or a typo like 2204).
YEARS = (1970, 2100)
AUTO = "auto"
# ISO date, optionally with a time and zone (the time is dropped: dates are days).
_ISO = (
    r"^\d{4}-\d{1,2}-\d{1,2}"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_TIME_TAILS = (" %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", "T%H:%M:%S")
# What ``auto`` chooses between, for each separator.
_ORDERS = ("%m{0}%d{0}%Y", "%d{0}%m{0}%Y", "%m{0}%d{0}%y", "%d{0}%m{0}%y")


def fast_or_full(text: pl.Series, fast: pl.Expr, full: pl.Expr) -> pl.Series:
    """``fast`` parse of ``text`` (column "t"); ``full`` rules fill in only if it missed any."""
    frame = pl.DataFrame({"t": text})
    out = frame.select(fast.alias("v")).to_series()
    if (out.is_null() & text.is_not_null()).any():
        out = frame.select(pl.coalesce(fast, full).alias("v")).to_series()
    return out


def parse_dates(text: pl.Series, date_format: str | None) -> pl.Series:
    """Trimmed text (null = empty) -> dates; unreadable values become null."""
    t = pl.col("t")
    if date_format:
        tails = [
            date_format + tail
            for tail in _TIME_TAILS
            if "%H" not in date_format and "%I" not in date_format
        ]
        return fast_or_full(
            text,
            t.str.to_datetime(date_format, strict=False).dt.date(),
            pl.coalesce(
                [t.str.to_datetime(f, strict=False).dt.date() for f in tails]
                or [pl.lit(None, pl.Date)]
            ),
        )
    day = t.str.extract(r"^(\d{4}-\d{1,2}-\d{1,2})").str.to_date("%Y-%m-%d", strict=False)
    return fast_or_full(
        text, t.str.to_date("%Y-%m-%d", strict=False), pl.when(t.str.contains(_ISO)).then(day)
    )


def implausible(parsed: pl.Expr) -> pl.Expr:
    """Dates whose year is outside ``YEARS``."""
    return (parsed.dt.year() < YEARS[0]) | (parsed.dt.year() > YEARS[1])


def implausible_message(raw: str, parsed, date_format: str | None) -> str:
    if parsed.year < 100 and date_format and "%Y" in date_format:
        return (
            f"date {raw!r} has a two-digit year, which {date_format} reads as year "
            f"{parsed.year:04d}"
        )
    return f"date {raw!r} is in the year {parsed.year}, outside {YEARS[0]}–{YEARS[1]}"


def expected(date_format: str | None) -> str:
    if not date_format:
        return "an ISO date such as 2024-03-31"
    hint = " (%y for two-digit years)" if "%Y" in date_format else ""
    return f"a date in the format {date_format}{hint}, year {YEARS[0]}–{YEARS[1]}"


def resolve_auto(
    samples: list[tuple[str, pl.Series]], *, file: str | None = None
) -> tuple[str | None, str]:
    """``--date-format auto``: the one format that reads every value, and a note saying so.

    ``samples`` are (column, trimmed text) pairs. ISO if every value is ISO; else, for the
    separator of the first value, month-first or day-first with four- or two-digit years:
    the format under which every value reads to a plausible date. When month-first and
    day-first both read every value and give different days, the values cannot say which,
    and an error asks for the format.
    """
    text = pl.concat([s.drop_nulls().alias("t") for _, s in samples]).unique()
    where = ", ".join(c for c, _ in samples)
    if text.len() == 0:
        return None, "date format auto: no dates to look at; ISO assumed"
    iso = parse_dates(text, None)
    if iso.null_count() == 0:
        return None, f"date format auto: ISO dates ({where})"
    first = text.drop_nulls()[0]
    sep = next((c for c in first if c in "/.-"), "/")
    fits = {}
    for pattern in _ORDERS:
        fmt = pattern.format(sep)
        parsed = parse_dates(text, fmt)
        ok = parsed.is_not_null().all() and not pl.select(implausible(pl.lit(parsed)).any()).item()
        if ok:
            fits[fmt] = parsed
    if not fits:
        raise InputError(
            f"no date format reads every date (e.g. {first!r})",
            file=file,
            column=where,
            expected="dates like 10/22/2024 or 22/10/2024, or --date-format",
        )
    month_first = [f for f in fits if f.startswith("%m")]
    day_first = [f for f in fits if f.startswith("%d")]
    if month_first and day_first and not fits[month_first[0]].equals(fits[day_first[0]]):
        raise InputError(
            f"the dates fit both {month_first[0]} and {day_first[0]} (every day "
            "is 12 or less), which read them differently",
            file=file,
            column=where,
            expected="--date-format naming the order, e.g. %m/%d/%Y or %d/%m/%Y",
        )
    chosen = next(iter(fits))
    return chosen, f"date format auto: {chosen} ({where})"
