"""What a model file may hold: every table, key, type and range, checked once, at load.

``check_model(data, text, file)`` walks what tomllib read from a model file, before any
dataclass is built, and raises ``InputError`` at the first bad value, naming the file, the
line (``simulator.toml_lines``), the dotted key and the allowed range::

    model.toml, line 41, key 'activities.per_rep_day': -3.0 is not allowed (expected a
    finite number > 0)

Ranges are what the engines need to be well defined (docs/model.md) and what the calibrator
writes; docs/calibration.md ("The model file") lists them. Unknown keys are errors: a typo
would otherwise silently leave a default in place. The key sets below are what
``simulator.model`` writes; a new field is added here too (the round-trip tests in
tests/test_validation.py fail until it is).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from .calendar import CHANNELS, ClosingClock, PeriodEffects
from .distributions import FAMILIES, Empirical, Fixed, from_dict
from .limits import DATE_RANGE, MAX_AMOUNT, plausible_date
from .toml_lines import KeyLines, key_error, key_name

FORMAT_VERSION = 1  # ``salesim_model = 1``: the file format this code writes and reads


@dataclass(frozen=True)
class Rule:
    """An allowed range: a test and how a person is told of it."""

    expected: str
    ok: Callable[[float], bool]


ANY = Rule("a number", lambda x: True)
FINITE = Rule("a finite number", math.isfinite)
POSITIVE = Rule("a finite number > 0", lambda x: math.isfinite(x) and x > 0)
NONNEGATIVE = Rule("a finite number ≥ 0", lambda x: math.isfinite(x) and x >= 0)
SHARE = Rule("a number from 0 to 1", lambda x: 0 <= x <= 1)  # NaN fails every test
DISPERSION = Rule("a number > 0 (inf: Poisson)", lambda x: x > 0)
FORGETTING = Rule("a number > 0 and ≤ 1", lambda x: 0 < x <= 1)
AMOUNT = Rule(
    f"an amount from 0 to {MAX_AMOUNT:.0e}", lambda x: math.isfinite(x) and 0 <= x <= MAX_AMOUNT
)

# Keys of each table, as simulator.model writes them.
TOP = {
    "salesim_model",
    "as_of",
    "stages",
    "cycle",
    "deal_size",
    "activities",
    "marketing",
    "team",
    "capacity",
    "n_opportunities",
    "source",
    "notes",
    "calendar",
    "diagnostics",
    "slips",
    "calls",
}
SLIPS = {"offset_days", "buckets", "lost_time", "stage_weight", "stage_weight_sd"}
SLIP_BUCKET = {"pushes", "won", "won_time", "n_deals", "n_won"}
STAGE = {
    "name",
    "conversion",
    "advance",
    "lost",
    "n_entered",
    "n_advanced",
    "n_lost",
    "n_open",
    "stall",
    "tail",
}
TAIL = {"from_age", "conversion", "advance", "lost", "stall", "n_at_risk"}
FITTED = {"dist", "log_cov", "n_events", "n_censored", "ks", "aic"}
BETA = {"alpha", "beta"}
GAMMA = {"shape", "rate"}
SEGMENT = {"name", "count", "size"}
ACTIVITIES = {
    "per_rep_day",
    "dispersion",
    "rep_sigma",
    "log_cov",
    "opportunity_yield",
    "lag",
    "n_rep_days",
    "observed",
}
MARKETING = {"weekly", "share"}
TEAM = {"ramp_months", "ramp_months_sd", "attrition", "quota", "calibrated", "reps"}
REP = {"name", "hired", "quota", "level", "level_sd"}
CAPACITY = {"week_hours", "deal_hours", "free_deals", "floor"}
EFFECTS = {
    "periods",
    "mean",
    "sd",
    "common",
    "shock_sd",
    "trend",
    "season",
    "forgetting",
    "observed",
}
CLOCK = {"won", "lost"}
CALLS = {"quarters", "min_deals", "naming_level", "categories", "teams", "reps"}
CALL_RATE = {
    "category",
    "team",
    "n",
    "won",
    "amount",
    "won_amount",
    "rate",
    "amount_rate",
    "concentration",
}
CALL_RATE_NEEDS = ("category", "n", "won", "amount", "won_amount", "rate", "amount_rate")
REP_CALL = {"rep", "team", "category", "n", "won", "rate", "team_rate", "call"}
REP_CALL_NEEDS = ("rep", "category", "n", "won", "rate", "team_rate")
# The categories a call is measured for: the open ones (history.FORECAST_CATEGORIES less
# "closed"); "hot" over-calls, "cold" sandbags, "" neither.
CALL_CATEGORIES = ("commit", "best_case", "pipeline", "omitted")
CALLS_MADE = ("hot", "cold", "")
LEVEL = Rule("a number > 0 and < 1", lambda x: 0 < x < 1)


def check_model(data: dict, text: str, file: str) -> None:
    """Raise ``InputError`` at the first value of a model file that is not allowed."""
    _Check(text, file).model(data)


class _Check:
    """The walk over a model file's tables; every ``path`` is a tuple of keys and indexes."""

    def __init__(self, text: str, file: str):
        self.file, self.lines = file, KeyLines(text)

    def fail(self, path: tuple, message: str, expected: str | None = None) -> NoReturn:
        raise key_error(self.file, self.lines, path, message, expected)

    # --- values ---------------------------------------------------------------------------------
    def table(self, d, path: tuple, keys: set, required=()) -> dict:
        """``d``, the value at ``path``, as a table of known keys with the ``required`` ones."""
        if not isinstance(d, dict):
            self.fail(path, f"{key_name(path)} must be a table")
        unknown = [k for k in d if k not in keys]
        if unknown:
            self.fail(
                path + (unknown[0],),
                "unknown key"
                + ("s " if len(unknown) > 1 else " ")
                + ", ".join(_brief(k) for k in unknown),
                "one of " + ", ".join(sorted(keys)),
            )
        for k in required:
            if k not in d:
                self.fail(
                    path,
                    f"{key_name(path + (k,))} is missing",
                    "a file written by 'salesim calibrate'",
                )
        return d

    def sub(self, d: dict, path: tuple, keys: set, required=()) -> dict | None:
        """An optional sub-table (None when absent)."""
        return self.table(d[path[-1]], path, keys, required) if path[-1] in d else None

    def number(self, d: dict, path: tuple, rule: Rule) -> float | None:
        """``d[path[-1]]`` within ``rule`` (None when absent)."""
        if path[-1] not in d:
            return None
        return self.value(d[path[-1]], path, rule)

    def value(self, v, path: tuple, rule: Rule) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(path, f"{_brief(v)} is not a number", rule.expected)
        if not rule.ok(float(v)):
            self.fail(path, f"{_brief(v)} is not allowed", rule.expected)
        return float(v)

    def numbers(self, d: dict, path: tuple, rule: Rule) -> tuple[float, ...]:
        """A list of numbers within ``rule`` (empty when absent)."""
        return self.list_of(d.get(path[-1], []), path, rule)

    def list_of(self, v, path: tuple, rule: Rule) -> tuple[float, ...]:
        if not isinstance(v, list):
            self.fail(path, f"{key_name(path)} must be a list of numbers", rule.expected)
        return tuple(self.value(x, path + (i,), rule) for i, x in enumerate(v))

    def whole(self, d: dict, path: tuple) -> None:
        v = d.get(path[-1], 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            self.fail(path, f"{_brief(v)} is not allowed", "a whole number ≥ 0")

    def text(self, d: dict, path: tuple) -> str | None:
        v = d.get(path[-1])
        if v is not None and not isinstance(v, str):
            self.fail(path, f"{_brief(v)} is not text", "a string")
        return v

    def texts(self, d: dict, path: tuple) -> None:
        v = d.get(path[-1], [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(path, f"{key_name(path)} must be a list of strings")

    def flag(self, d: dict, path: tuple) -> None:
        if path[-1] in d and not isinstance(d[path[-1]], bool):
            self.fail(path, f"{_brief(d[path[-1]])} is not allowed", "true or false")

    def date(self, d: dict, path: tuple) -> dt.date | None:
        return self.day(d[path[-1]], path) if path[-1] in d else None

    def day(self, v, path: tuple) -> dt.date:
        day = v.date() if isinstance(v, dt.datetime) else v
        if isinstance(day, str):
            try:
                day = dt.date.fromisoformat(day.strip())
            except ValueError:
                self.fail(path, f"{_brief(v)} is not a date", "a date YYYY-MM-DD")
        if not isinstance(day, dt.date):
            self.fail(path, f"{_brief(v)} is not a date", "a date YYYY-MM-DD")
        if not plausible_date(day):
            self.fail(path, f"{day} is not allowed", DATE_RANGE)
        return day

    def tables(
        self, d: dict, path: tuple, keys: set, required=(), *, at_least_one=False
    ) -> list[dict]:
        """An array of tables (``[[name]]``), each of known keys."""
        rows = d.get(path[-1], [])
        if not isinstance(rows, list) or (at_least_one and not rows):
            self.fail(path, f"{key_name(path)} must be one or more [[{key_name(path)}]] tables")
        return [self.table(r, path + (i,), keys, required) for i, r in enumerate(rows)]

    def unique(self, rows: list[dict], path: tuple, key: str) -> None:
        seen = set()
        for i, row in enumerate(rows):
            name = self.text(row, path + (i, key))
            if name in seen:
                self.fail(path + (i, key), f"{_brief(name)} is listed twice", "unique names")
            seen.add(name)

    # --- parts of the model ---------------------------------------------------------------------
    def version(self, d: dict) -> None:
        v = d.get("salesim_model")
        if v is None:
            self.fail(
                (),
                "not a salesim model file: it has no salesim_model version",
                "a model written by 'salesim calibrate'",
            )
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            self.fail(
                ("salesim_model",),
                f"unknown model format {_brief(v)}",
                f"salesim_model = {FORMAT_VERSION}",
            )
        if v > FORMAT_VERSION:
            self.fail(
                ("salesim_model",),
                f"written by a newer salesim (model format {v}; "
                f"this one reads up to {FORMAT_VERSION})",
                "a model from this salesim or an older one; or upgrade salesim",
            )

    def model(self, d: dict) -> None:
        self.version(d)
        self.table(
            d, (), TOP, ("as_of", "stages", "cycle", "deal_size", "activities", "marketing", "team")
        )
        self.date(d, ("as_of",))
        stages = self.tables(d, ("stages",), STAGE, at_least_one=True)
        for i, s in enumerate(stages):
            self.stage(s, ("stages", i))
        self.unique(stages, ("stages",), "name")
        self.stage(d["cycle"], ("cycle",))
        self.deal_size(d)
        self.activities(
            self.table(
                d["activities"],
                ("activities",),
                ACTIVITIES,
                ("per_rep_day", "dispersion", "rep_sigma", "opportunity_yield", "lag"),
            )
        )
        m = self.table(d["marketing"], ("marketing",), MARKETING, ("weekly",))
        self.gamma(m, ("marketing", "weekly"))
        self.number(m, ("marketing", "share"), SHARE)
        self.team(
            self.table(d["team"], ("team",), TEAM, ("ramp_months", "ramp_months_sd", "attrition"))
        )
        self.capacity(d)
        if "calendar" in d:
            self.calendar(self.table(d["calendar"], ("calendar",), set(CHANNELS) | {"closing"}))
        if "slips" in d:
            self.slips(
                self.table(d["slips"], ("slips",), SLIPS, ("offset_days", "buckets", "lost_time"))
            )
        self.whole(d, ("n_opportunities",))
        self.text(d, ("source",))
        self.texts(d, ("notes",))
        self.texts(d, ("diagnostics",))
        if "calls" in d:
            self.calls(d)

    def slips(self, d: dict) -> None:
        """docs/model.md §6c: bucket ``i`` holds the deals pushed ``i`` times (the last: ``i``
        or more), each with P(won) and a time to win; one time to lose."""
        self.number(d, ("slips", "offset_days"), POSITIVE)
        buckets = self.tables(d, ("slips", "buckets"), SLIP_BUCKET, ("pushes", "won", "won_time"))
        if not buckets:
            self.fail(("slips", "buckets"), "no buckets", "one or more [[slips.buckets]] tables")
        for i, b in enumerate(buckets):
            path = ("slips", "buckets", i)
            if b["pushes"] != i or isinstance(b["pushes"], bool):
                self.fail(path + ("pushes",), f"{_brief(b['pushes'])} is not allowed", f"{i}")
            self.beta(b, path + ("won",))
            self.fitted(b, path + ("won_time",))
            self.number(b, path + ("n_deals",), NONNEGATIVE)
            self.number(b, path + ("n_won",), NONNEGATIVE)
        self.fitted(d, ("slips", "lost_time"))
        self.number(d, ("slips", "stage_weight"), FINITE)
        self.number(d, ("slips", "stage_weight_sd"), NONNEGATIVE)

    def stage(self, s: dict, path: tuple) -> None:
        self.table(s, path, STAGE, ("name", "conversion", "advance", "lost"))
        if not (self.text(s, path + ("name",)) or "").strip():
            self.fail(path + ("name",), "a stage needs a name", "a non-empty string")
        self.outcomes(s, path)
        for k in ("n_entered", "n_advanced", "n_lost", "n_open"):
            self.whole(s, path + (k,))
        if self.sub(s, path + ("tail",), TAIL, ("from_age", "conversion", "advance", "lost")):
            tail = s["tail"]
            self.number(tail, path + ("tail", "from_age"), NONNEGATIVE)
            self.outcomes(tail, path + ("tail",))
            self.whole(tail, path + ("tail", "n_at_risk"))

    def outcomes(self, d: dict, path: tuple) -> None:
        """A stage's (or a tail's) conversion, durations and stall share."""
        self.beta(d, path + ("conversion",))
        self.fitted(d, path + ("advance",))
        self.fitted(d, path + ("lost",))
        if "stall" in d:
            self.beta(d, path + ("stall",))

    def beta(self, d: dict, path: tuple) -> None:
        # BetaPosterior.draw takes alpha = 0 or beta = 0 as a point mass at 0 or 1; both 0
        # leave the mean undefined.
        b = self.table(d[path[-1]], path, BETA, ("alpha", "beta"))
        alpha = self.value(b["alpha"], path + ("alpha",), NONNEGATIVE)
        beta = self.value(b["beta"], path + ("beta",), NONNEGATIVE)
        if alpha == 0 and beta == 0:
            self.fail(
                path + ("alpha",),
                "alpha and beta are both 0",
                "alpha + beta > 0 (alpha = 0 alone: never; beta = 0 alone: always)",
            )

    def gamma(self, d: dict, path: tuple) -> None:
        g = self.table(d[path[-1]], path, GAMMA, ("shape", "rate"))
        self.number(g, path + ("shape",), POSITIVE)
        self.number(g, path + ("rate",), POSITIVE)

    def fitted(self, d: dict, path: tuple, *, amounts: bool = False) -> None:
        """A fitted distribution: durations in days, or (``amounts``) deal sizes."""
        f = self.table(d[path[-1]], path, FITTED, ("dist",))
        names = self.dist(f, path + ("dist",), amounts=amounts)
        self.covariance(f, path + ("log_cov",), names)
        self.number(f, path + ("n_events",), NONNEGATIVE)
        self.number(f, path + ("n_censored",), NONNEGATIVE)
        self.number(f, path + ("ks",), SHARE)
        aic = self.sub(f, path + ("aic",), set(FAMILIES))
        for family, v in (aic or {}).items():
            self.value(v, path + ("aic", family), ANY)

    def dist(self, d: dict, path: tuple, *, amounts: bool) -> tuple[str, ...]:
        """A distribution table; returns its parameter names (those ``log_cov`` is over)."""
        family = d[path[-1]].get("family") if isinstance(d[path[-1]], dict) else None
        if family not in FAMILIES:
            self.fail(
                path + ("family",),
                f"unknown distribution family {_brief(family)}",
                "one of " + ", ".join(FAMILIES),
            )
        cls = FAMILIES[family]
        if cls is Empirical:
            t = self.table(
                d[path[-1]], path, {"family", "values", "weights", "jitter"}, ("values", "weights")
            )
            values = self.numbers(t, path + ("values",), NONNEGATIVE)
            weights = self.numbers(t, path + ("weights",), NONNEGATIVE)
            if not values or len(values) != len(weights):
                self.fail(
                    path + ("weights",),
                    f"{len(values)} values and {len(weights)} weights",
                    "as many weights as values, at least one",
                )
            if sum(weights) <= 0:
                self.fail(path + ("weights",), "the weights sum to 0", "a positive sum")
            self.number(t, path + ("jitter",), NONNEGATIVE)
        else:
            t = self.table(d[path[-1]], path, {"family", *cls.param_names}, cls.param_names)
            for name in cls.param_names:  # a constant may be 0 (a lag of none)
                self.number(t, path + (name,), NONNEGATIVE if cls is Fixed else POSITIVE)
        if amounts:
            # Sizes are summed per trial and squared for the spread: past this they overflow.
            mean = _mean(from_dict(t))
            if not mean <= MAX_AMOUNT:
                self.fail(
                    path,
                    f"a mean deal size of {mean:.3g} is not allowed",
                    f"a distribution whose mean is at most {MAX_AMOUNT:.0e}",
                )
        return cls.param_names

    def covariance(self, d: dict, path: tuple, names: tuple[str, ...]) -> None:
        """``log_cov`` over the log-parameters ``names``: empty (no uncertainty) or square,
        symmetric, finite and positive definite (draws use its Cholesky factor)."""
        rows = d.get(path[-1], [])
        n = len(names)
        shape = (
            f"an empty list or a {n}×{n} matrix over log {', '.join(names)}"
            if n
            else "an empty list (this family has no parameters)"
        )
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            self.fail(path, f"{key_name(path)} must be a list of rows", shape)
        if not rows:
            return
        if len(rows) != n or any(len(r) != n for r in rows):
            self.fail(
                path, f"a matrix of {len(rows)} rows of {[len(r) for r in rows]} numbers", shape
            )
        a = np.array([[self.value(x, path + (i,), FINITE) for x in r] for i, r in enumerate(rows)])
        if not np.allclose(a, a.T, rtol=1e-9, atol=0.0):
            self.fail(path, "the matrix is not symmetric", "a symmetric matrix")
        try:
            np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            self.fail(
                path,
                "the matrix is not positive definite",
                "a positive definite covariance: one with a Cholesky factor",
            )

    def deal_size(self, d: dict) -> None:
        rows = self.tables(d, ("deal_size",), SEGMENT, ("name", "count", "size"), at_least_one=True)
        counts = []
        for i, row in enumerate(rows):
            path = ("deal_size", i)
            counts.append(self.value(row["count"], path + ("count",), NONNEGATIVE))
            self.fitted(row, path + ("size",), amounts=True)
        self.unique(rows, ("deal_size",), "name")
        if sum(counts) <= 0:  # a segment's share is its count over the total
            self.fail(
                ("deal_size", 0, "count"), "every segment count is 0", "counts with a positive sum"
            )

    def activities(self, a: dict) -> None:
        path = ("activities",)
        self.number(a, path + ("per_rep_day",), POSITIVE)
        self.number(a, path + ("dispersion",), DISPERSION)
        self.number(a, path + ("rep_sigma",), NONNEGATIVE)
        self.covariance(a, path + ("log_cov",), ("per_rep_day", "dispersion"))
        self.beta(a, path + ("opportunity_yield",))
        self.fitted(a, path + ("lag",))
        self.whole(a, path + ("n_rep_days",))
        self.flag(a, path + ("observed",))

    def team(self, t: dict) -> None:
        path = ("team",)
        self.number(t, path + ("ramp_months",), NONNEGATIVE)
        self.number(t, path + ("ramp_months_sd",), NONNEGATIVE)
        self.gamma(t, path + ("attrition",))
        self.number(t, path + ("quota",), AMOUNT)
        self.flag(t, path + ("calibrated",))
        reps = self.tables(t, path + ("reps",), REP, ("name", "hired"))
        for i, rep in enumerate(reps):
            p = path + ("reps", i)
            self.date(rep, p + ("hired",))
            self.number(rep, p + ("quota",), AMOUNT)
            self.number(rep, p + ("level",), FINITE)
            if self.number(rep, p + ("level_sd",), NONNEGATIVE) is not None and "level" not in rep:
                self.fail(p + ("level_sd",), "level_sd without a level", "both, or neither")
        self.unique(reps, path + ("reps",), "name")

    def capacity(self, d: dict) -> None:
        path = ("capacity",)
        c = self.sub(d, path, CAPACITY, ("week_hours", "deal_hours", "free_deals"))
        if c is None:  # the documented defaults
            return
        week = self.value(c["week_hours"], path + ("week_hours",), POSITIVE)
        hours = self.value(c["deal_hours"], path + ("deal_hours",), NONNEGATIVE)
        free = self.value(c["free_deals"], path + ("free_deals",), NONNEGATIVE)
        self.number(c, path + ("floor",), SHARE)
        if not week - hours * free > 0:  # share(n) divides by W − h·free_deals
            self.fail(
                path + ("deal_hours",),
                f"{hours:g} h per open deal × {free:g} deals "
                f"leaves no prospecting time in a {week:g}-hour week",
                "week_hours > deal_hours × free_deals",
            )

    def calls(self, d: dict) -> None:
        path = ("calls",)
        c = self.table(d["calls"], path, CALLS, ("quarters", "min_deals", "naming_level"))
        self.whole(c, path + ("quarters",))
        self.whole(c, path + ("min_deals",))
        self.number(c, path + ("naming_level",), LEVEL)
        for part in ("categories", "teams"):
            rows = self.tables(c, path + (part,), CALL_RATE, CALL_RATE_NEEDS)
            for i, row in enumerate(rows):
                p = path + (part, i)
                self.counts(row, p)
                self.number(row, p + ("amount",), AMOUNT)
                self.number(row, p + ("won_amount",), AMOUNT)
                self.beta(row, p + ("rate",))
                self.beta(row, p + ("amount_rate",))
                self.number(row, p + ("concentration",), POSITIVE)
                self.text(row, p + ("team",))
        rows = self.tables(c, path + ("reps",), REP_CALL, REP_CALL_NEEDS)
        for i, row in enumerate(rows):
            p = path + ("reps", i)
            self.counts(row, p)
            self.beta(row, p + ("rate",))
            self.number(row, p + ("team_rate",), SHARE)
            self.text(row, p + ("rep",))
            self.text(row, p + ("team",))
            if row.get("call", "") not in CALLS_MADE:
                self.fail(p + ("call",), f"{_brief(row['call'])} is not allowed", "hot, cold or ''")

    def counts(self, row: dict, path: tuple) -> None:
        """A call row's category and its deal-quarters: ``won`` of ``n``."""
        if row["category"] not in CALL_CATEGORIES:
            self.fail(
                path + ("category",),
                f"{_brief(row['category'])} is not allowed",
                ", ".join(CALL_CATEGORIES),
            )
        self.whole(row, path + ("n",))
        self.whole(row, path + ("won",))
        if row["won"] > row["n"]:
            self.fail(path + ("won",), f"{row['won']} won of {row['n']}", "won ≤ n")

    def calendar(self, c: dict) -> None:
        for channel in CHANNELS:
            path = ("calendar", channel)
            e = self.sub(c, path, EFFECTS, ("periods", "mean"))
            if e is None:
                continue
            periods = e["periods"]
            if not isinstance(periods, list):
                self.fail(path + ("periods",), "periods must be a list of dates")
            days = tuple(self.day(x, path + ("periods", i)) for i, x in enumerate(periods))
            mean, sd = (self.numbers(e, path + (k,), ANY) for k in ("mean", "sd"))
            common = e.get("common", [])
            if not isinstance(common, list):
                self.fail(path + ("common",), "common must be a list of rows")
            rows = tuple(self.list_of(r, path + ("common", i), ANY) for i, r in enumerate(common))
            self.numbers(e, path + ("season",), FINITE)
            self.number(e, path + ("shock_sd",), NONNEGATIVE)
            self.number(e, path + ("trend",), FINITE)
            self.number(e, path + ("forgetting",), FORGETTING)
            self.whole(e, path + ("observed",))
            self.built(path, PeriodEffects, days, mean, sd, rows)
        clock = self.sub(c, ("calendar", "closing"), CLOCK, ("won", "lost"))
        if clock is not None:
            path = ("calendar", "closing")
            won, lost = (self.numbers(clock, path + (k,), ANY) for k in ("won", "lost"))
            self.built(path, ClosingClock, won, lost)

    def built(self, path: tuple, cls: type, *args) -> None:
        """Lengths and ranges that a calendar part checks when it is built (its rules are
        written there, once)."""
        try:
            cls(*args)
        except ValueError as exc:
            self.fail(path, str(exc))


def _brief(value) -> str:
    """A value as written, cut short: a hostile file may hold a field of megabytes."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mean(dist) -> float:
    try:
        with np.errstate(all="ignore"):
            return float(dist.mean)
    except OverflowError:
        return math.inf
