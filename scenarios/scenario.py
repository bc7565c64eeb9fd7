"""Scenario files: parse and validate a plan, and turn strategies into ``SimSpec`` changes.

A scenario (TOML, docs/scenarios.md) names a calibrated model and states the quarter, team,
hiring plan, attrition, marketing pipeline, rep time budget and named strategies. Every bad
value raises ``InputError`` naming the file, the line and the dotted key: tomllib gives no
line numbers for keys, so ``simulator.toml_lines.KeyLines`` finds them by scanning the text.

Lever syntax (TOML strings and ``--lever``): ``+20%``, ``-15%``, ``x1.2`` (multipliers; a TOML
number is a multiplier too), ``+5pp`` (win rate only: percentage points of the model's
overall win rate), ``headcount=+3@2026-11-01``, ``deal-hours=0.5``, ``prune-stale=120d``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NoReturn

from salesim.history import OPTIONAL_FILES, History
from salesim.simulator import model as model_io
from salesim.simulator import units
from salesim.simulator.errors import InputError
from salesim.simulator.limits import (
    DATE_RANGE,
    MAX_DAYS,
    MAX_MULTIPLIER,
    MAX_REPS,
    MAX_TRIALS,
    MAX_WEEKS,
    plausible_date,
)
from salesim.simulator.model import GammaPosterior, Model
from salesim.simulator.spec import DAYS_PER_MONTH, Levers, Rep, SimSpec
from salesim.simulator.toml_lines import KeyLines, key_error, key_name

from . import baseline

# A plan value is taken as given: near-zero variance posteriors stand in for a fixed number.
_CERTAIN = 1e9


# --- lever values -------------------------------------------------------------------------------
class LeverError(ValueError):
    """A lever value that cannot be read; callers add where it was written."""

    def __init__(self, message: str, expected: str | None = None):
        super().__init__(message)
        self.expected = expected


MULTIPLIER_SYNTAX = "+20%, -15% or x1.2"
MULTIPLIER_LEVERS = {  # name as written -> Levers field
    "prospecting": "prospecting",
    "yield": "opportunity_yield",
    "opportunity_yield": "opportunity_yield",
    "win_rate": "win_rate",
    "deal_size": "deal_size",
    "cycle_time": "cycle_time",
    "marketing_pipeline": "marketing_pipeline",
    "marketing": "marketing_pipeline",
}
OTHER_LEVERS = ("headcount", "deal_hours", "prune_stale", "prune_stale_days")
LEVER_NAMES = tuple(MULTIPLIER_LEVERS) + OTHER_LEVERS

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_PERCENT = re.compile(rf"^([+-]?){_NUM}\s*%$")
_TIMES = re.compile(rf"^[x×*]\s*{_NUM}$")
_POINTS = re.compile(rf"^([+-]?){_NUM}\s*pp$")
_HEADCOUNT = re.compile(r"^\+?(\d+)\s*(?:@\s*(\S+))?$")
_DAYS = re.compile(rf"^{_NUM}\s*(?:d|days?)?$")
_HOURS = re.compile(rf"^{_NUM}\s*(?:h|hours?)?$")


def lever_name(name: str) -> str:
    """Normalise ``win-rate`` / ``Win_Rate`` to ``win_rate``; unknown names raise."""
    n = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if n not in LEVER_NAMES:
        aliases = ("opportunity_yield", "marketing", "prune_stale_days")
        raise LeverError(
            f"unknown lever {name!r}",
            "one of " + ", ".join(x.replace("_", "-") for x in LEVER_NAMES if x not in aliases),
        )
    return "prune_stale" if n == "prune_stale_days" else n


def overall_win_rate(model: Model) -> float:
    """Probability that a new deal is won: the product of stage conversions (point)."""
    return math.prod(s.conversion.mean for s in model.stages)


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def parse_multiplier(value, *, lever: str, win_rate: float | None = None) -> float:
    """``+20%`` -> 1.2, ``x1.2`` -> 1.2, a number -> itself; ``+5pp`` (win rate only) ->
    ``(w + 0.05) / w`` with ``w`` the model's overall win rate."""
    v = _number(value)
    if v is None:
        if not isinstance(value, str):
            raise LeverError(
                f"{lever} must be a number or a string, got {value!r}", MULTIPLIER_SYNTAX
            )
        s = value.strip().lower()
        if m := _PERCENT.fullmatch(s):
            v = 1 + (-1 if m.group(1) == "-" else 1) * float(m.group(2)) / 100
        elif m := _TIMES.fullmatch(s):
            v = float(m.group(1))
        elif m := _POINTS.fullmatch(s):
            if lever != "win_rate":
                raise LeverError(
                    f"percentage points (pp) only apply to win-rate, not {lever}", MULTIPLIER_SYNTAX
                )
            if not win_rate or win_rate <= 0:
                raise LeverError(
                    "the model's overall win rate is 0; +pp is undefined",
                    "a relative change such as +10%",
                )
            new = win_rate + (-1 if m.group(1) == "-" else 1) * float(m.group(2)) / 100
            if not 0 <= new <= 1:
                raise LeverError(
                    f"win rate {win_rate:.1%} {value} is {new:.1%}, outside 0–100%",
                    "a win rate between 0% and 100%",
                )
            v = new / win_rate
        else:
            extra = ", or +5pp" if lever == "win_rate" else ""
            raise LeverError(f"cannot read {lever} value {value!r}", MULTIPLIER_SYNTAX + extra)
    if v < 0 or (lever == "cycle_time" and v == 0):
        raise LeverError(
            f"{lever} multiplier must be {'> 0' if lever == 'cycle_time' else '≥ 0'}, got {v:g}",
            MULTIPLIER_SYNTAX,
        )
    if not v <= MAX_MULTIPLIER:  # past this, amounts and rates overflow
        raise LeverError(
            f"{lever} multiplier {v:g} is more than {MAX_MULTIPLIER:g}",
            f"a multiplier up to x{MAX_MULTIPLIER:g}",
        )
    return v


@dataclass(frozen=True)
class Hire:
    """``count`` reps starting (tenure 0) on ``date`` (None: the first day of the horizon)."""

    count: int
    date: dt.date | None = None
    quota: float | None = None  # per rep; None: the scenario's per-rep default

    def to_dict(self) -> dict:
        d: dict[str, int | str | float | None] = {
            "count": self.count,
            "date": self.date.isoformat() if self.date else None,
        }
        if self.quota is not None:
            d["quota"] = self.quota
        return d


def _date(value, what: str) -> dt.date:
    try:
        day = units.as_date(value, what=what)
    except InputError:
        raise LeverError(f"cannot read {what} {value!r}", "a date YYYY-MM-DD") from None
    if not plausible_date(day):
        raise LeverError(f"{what} {day} is not allowed", DATE_RANGE)
    return day


def parse_headcount(value) -> Hire:
    """``+3@2026-11-01``, ``3`` or ``{count = 3, date = 2026-11-01, quota = 1.2e6}``."""
    if isinstance(value, dict):
        unknown = set(value) - {"count", "date", "quota"}
        if unknown:
            raise LeverError(
                f"unknown headcount key {sorted(unknown)[0]!r}", "count, date and quota"
            )
        if "count" not in value:
            raise LeverError("headcount needs a count", "{count = 3, date = 2026-11-01}")
        hire = parse_headcount(value["count"])
        date = _date(value["date"], "headcount date") if "date" in value else None
        quota = None
        if "quota" in value:
            quota = _amount(value["quota"], "headcount quota")
        return Hire(hire.count, date, quota)
    if isinstance(value, int) and not isinstance(value, bool):
        count, date = value, None
    elif isinstance(value, str) and (m := _HEADCOUNT.fullmatch(value.strip())):
        count = int(m.group(1))
        date = _date(m.group(2), "headcount date") if m.group(2) else None
    else:
        raise LeverError(f"cannot read headcount {value!r}", "+3 or +3@2026-11-01")
    if not 0 <= count <= MAX_REPS:
        raise LeverError(f"headcount must add 0 to {MAX_REPS:,} reps, got {count}", "+3@2026-11-01")
    return Hire(count, date)


def _nonneg(value, what: str, pattern: re.Pattern, expected: str) -> float:
    v = _number(value)
    if v is None and isinstance(value, str) and (m := pattern.fullmatch(value.strip().lower())):
        v = float(m.group(1))
    if v is None or not 0 <= v < math.inf:
        raise LeverError(f"cannot read {what} {value!r}", expected)
    return v


def _amount(value, what: str) -> float:
    """A number or ``12M`` / ``750k`` / ``1,200,000`` (``units.parse_amount``)."""
    try:
        return units.parse_amount(value, what=what)
    except InputError as exc:
        raise LeverError(f"cannot read {what} {value!r}", exc.expected) from None


# --- strategies ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Strategy:
    """A named set of levers applied to the baseline, with an optional cost (money)."""

    name: str
    levers: Levers = Levers()
    hires: tuple[Hire, ...] = ()
    cost: float | None = None
    given: tuple[tuple[str, str], ...] = ()  # (lever, value as written), for reports
    description: str = ""

    @property
    def neutral(self) -> bool:
        return self.levers.neutral and not any(h.count for h in self.hires)

    def lever_dict(self) -> dict:
        """The non-neutral levers as numbers (multipliers, hours, days, hires)."""
        base = Levers()
        out = {
            f.name: getattr(self.levers, f.name)
            for f in dataclasses.fields(Levers)
            if getattr(self.levers, f.name) != getattr(base, f.name)
        }
        if self.hires:
            out["headcount"] = [h.to_dict() for h in self.hires]
        return out

    def label(self) -> str:
        return ", ".join(f"{k.replace('_', '-')}={v}" for k, v in self.given) or "(none)"


def strategy_from_items(
    name: str, items: Mapping[str, object], *, model: Model, on_error
) -> Strategy:
    """Build a strategy from ``lever -> value`` pairs (TOML table or ``--lever``).

    ``on_error(key, LeverError)`` must raise: it adds where the value was written.
    """
    fields: dict = {}
    hires: list[Hire] = []
    given: list[tuple[str, str]] = []
    cost = None
    description = ""
    w = overall_win_rate(model)
    for raw, value in items.items():
        try:
            key = str(raw).strip().lower().replace("-", "_")
            if key == "cost":
                cost = _amount(value, "cost")
                continue
            if key == "description":
                if not isinstance(value, str):
                    raise LeverError("description must be a string")
                description = value
                continue
            n = lever_name(raw)
            if n in MULTIPLIER_LEVERS:
                f = MULTIPLIER_LEVERS[n]
                if f in fields:
                    raise LeverError(f"lever {n} is given twice")
                fields[f] = parse_multiplier(value, lever=n, win_rate=w)
            elif n == "headcount":
                hires.append(parse_headcount(value))
            elif n == "deal_hours":
                fields["deal_hours"] = _nonneg(
                    value, "deal-hours", _HOURS, "hours per open deal per week, such as 0.5"
                )
            else:
                fields["prune_stale_days"] = _nonneg(
                    value, "prune-stale", _DAYS, "an age in days, such as 120d"
                )
            given.append((n, _as_text(value)))
        except LeverError as exc:
            on_error(raw, exc)
    try:
        levers = Levers(**fields)
    except InputError as exc:
        on_error(exc.column or "levers", LeverError(str(exc)))
    return Strategy(str(name), levers, tuple(hires), cost, tuple(given), description)


def _as_text(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_as_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def parse_lever_args(texts, *, model: Model) -> tuple[Strategy, ...]:
    """``--lever`` options: each is one strategy; commas combine levers into one.

    ``prospecting=+20%`` or ``"prospecting=+10%,win-rate=+2pp"``; the text is the name.
    """
    out = []
    for text in texts:
        items: dict = {}
        for part in str(text).split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InputError(
                    f"cannot read lever {part.strip()!r}",
                    column="--lever",
                    expected="NAME=VALUE such as prospecting=+20%",
                )
            items[key.strip()] = value.strip()

        def fail(key, exc, text=text):
            raise InputError(f"{text}: {exc}", column="--lever", expected=exc.expected) from None

        out.append(strategy_from_items(str(text), items, model=model, on_error=fail))
    return tuple(out)


def combine_levers(base: Levers, extra: Levers) -> Levers:
    """``extra`` on top of ``base``: multipliers multiply, hours and ages replace."""
    kw = {}
    for f in dataclasses.fields(Levers):
        a, b = getattr(base, f.name), getattr(extra, f.name)
        if f.name in ("deal_hours", "prune_stale_days"):
            kw[f.name] = b if b is not None else a
        else:
            kw[f.name] = a * b
    return Levers(**kw)


def default_rep_quota(spec: SimSpec) -> float:
    """Quota of a new hire: the model's per-rep quota, else the team's average seat."""
    if spec.model.team.quota > 0:
        return float(spec.model.team.quota)
    return sum(r.quota for r in spec.reps) / len(spec.reps)


def hire_reps(
    spec: SimSpec, hires, *, prefix: str = "hire", what: str = "", column: str = "headcount"
) -> tuple[Rep, ...]:
    """New reps (tenure 0) for ``hires``, named so they never clash with the team.
    ``what`` prefixes error messages (e.g. the strategy's name)."""
    taken = {r.name for r in spec.reps}
    out: list[Rep] = []
    for h in hires:
        day = 0 if h.date is None else (h.date - spec.start).days
        if day < 0 or day >= spec.days:
            raise InputError(
                f"{what}hire date {h.date} is outside the horizon {spec.start} – "
                f"{spec.start + dt.timedelta(days=spec.days - 1)}",
                column=column,
                expected="a date inside the horizon",
            )
        quota = default_rep_quota(spec) if h.quota is None else h.quota
        for _ in range(h.count):
            k = len(out) + 1
            while f"{prefix}{k}" in taken:
                k += 1
            name = f"{prefix}{k}"
            taken.add(name)
            out.append(Rep(name, tenure_days=0.0, start_day=float(day), quota=quota))
    return tuple(out)


def apply_strategy(spec: SimSpec, strategy: Strategy) -> SimSpec:
    """The baseline ``spec`` with the strategy's levers and extra reps.

    The team quota stays the baseline's, so P(quota) is always against the same number.
    A neutral strategy returns the baseline unchanged (same numbers, same seed).
    """
    if strategy.neutral:
        return spec
    levers = combine_levers(spec.levers, strategy.levers)
    cap = spec.model.capacity
    if (
        levers.deal_hours is not None
        and not dataclasses.replace(cap, deal_hours=levers.deal_hours).leaves_prospecting_time
    ):
        raise InputError(
            f"strategy {strategy.name!r}: {levers.deal_hours:g} h per open deal × "
            f"{cap.free_deals:g} deals leaves no prospecting time in a "
            f"{cap.week_hours:g}-hour week",
            column="deal_hours",
            expected=f"fewer than {cap.week_hours / max(cap.free_deals, 1e-9):g} h",
        )
    return dataclasses.replace(
        spec,
        levers=levers,
        reps=spec.reps
        + hire_reps(
            spec,
            strategy.hires,
            prefix=f"{_slug(strategy.name)}-hire",
            what=f"strategy {strategy.name!r}: ",
        ),
        quota=spec.team_quota,
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:24] or "strategy"


# --- the scenario file --------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the model (with the plan's overrides applied) and the plan.

    ``reps`` None means "the model's team as of ``as_of``" (``scenarios.baseline``).
    """

    file: str
    model: Model
    model_path: Path
    as_of: dt.date
    start: dt.date
    days: int
    history_path: Path | None = None
    history_format: str = "canonical"
    # How the history is read: read_history's profile, mapping, date_format, stages and files.
    history_options: Mapping[str, Any] = field(default_factory=dict)
    quota: float | None = None
    reps: tuple[Rep, ...] | None = None
    quota_per_rep: float | None = None
    hires: tuple[Hire, ...] = ()
    hiring_lag_days: float | None = None
    attrition: bool | None = None
    backfill: bool | None = None
    fixed_parameters: bool = False
    trials: int | None = None
    seed: int | None = None
    strategies: tuple[Strategy, ...] = ()


TOP_KEYS = {
    "model",
    "history",
    "history_format",
    "as_of",
    "quarter",
    "start",
    "weeks",
    "days",
    "quota",
    "trials",
    "seed",
    "fixed_parameters",
    "name",
    "description",
    "team",
    "hiring",
    "attrition",
    "marketing",
    "time",
    "strategies",
}
TABLE_KEYS = {
    "history": {"path", "format", "profile", "map", "date_format", "stages", *OPTIONAL_FILES},
    "team": {"reps", "rep", "quota_per_rep", "tenure_months"},
    "team.rep": {"name", "tenure_months", "quota"},
    "hiring": {"lag_days", "ramp_months", "hire"},
    "hiring.hire": {"date", "count", "quota"},
    "attrition": {"enabled", "monthly", "backfill"},
    "marketing": {"weekly"},
    "time": {"week_hours", "deal_hours"},
}


def is_scenario_file(path) -> bool:
    """A scenario names its model; a model file carries ``salesim_model``."""
    try:
        d = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "model" in d and "salesim_model" not in d


def load_scenario(path) -> Scenario:
    p = Path(path)
    if not p.is_file():
        raise InputError("scenario file not found", file=str(p))
    return loads_scenario(p.read_text(encoding="utf-8"), file=str(p), base_dir=p.parent)


def loads_scenario(text: str, *, file: str = "<scenario>", base_dir=".") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", file=file) from None
    return _Reader(text, file, Path(base_dir)).scenario(data)


class _Reader:
    """Validation with messages that name the file, line and key."""

    def __init__(self, text: str, file: str, base_dir: Path):
        self.file, self.base_dir, self.lines = file, base_dir, KeyLines(text)

    def fail(self, path: tuple, message: str, expected: str | None = None) -> NoReturn:
        raise key_error(self.file, self.lines, path, message, expected) from None

    def check_keys(self, d, path: tuple, allowed: set, what: str):
        if not isinstance(d, dict):
            self.fail(path, f"{key_name(path) or what} must be a table")
        for k in d:
            if k not in allowed:
                self.fail(
                    path + (k,),
                    f"unknown key {k!r} in {what}",
                    "one of " + ", ".join(sorted(allowed)),
                )

    def get(self, d: dict, path: tuple, kind: str, *, default=None, low=None, high=None):
        """Read ``d[path[-1]]`` as ``kind`` (int/float/bool/str/date/amount)."""
        key = path[-1]
        if key not in d:
            return default
        v = d[key]
        try:
            if kind == "amount":
                return _amount(v, key_name(path))
            if kind == "date":
                return _date(v, key_name(path))
            if kind == "bool":
                if not isinstance(v, bool):
                    raise LeverError(f"{key_name(path)} must be true or false, got {v!r}")
                return v
            if kind == "str":
                if not isinstance(v, str) or not v.strip():
                    raise LeverError(f"{key_name(path)} must be a non-empty string")
                return v
            n = _number(v)
            if n is None or (kind == "int" and n != int(n)):
                what = "an integer" if kind == "int" else "a number"
                raise LeverError(f"{key_name(path)} must be {what}, got {v!r}")
            if (low is not None and n < low) or (high is not None and n > high):
                rng = f"≥ {low:,}" if high is None else f"between {low:,} and {high:,}"
                raise LeverError(f"{key_name(path)} must be {rng}, got {v!r}")
            return int(n) if kind == "int" else n
        except LeverError as exc:
            self.fail(path, str(exc), exc.expected)

    # --- sections ---------------------------------------------------------------------------
    def history(self, d: dict) -> tuple[Path | None, str, dict]:
        """``history = "dir"`` (+ ``history_format``), or a ``[history]`` table naming the
        path and how to read it: format, profile (a built-in name or a file relative to the
        scenario), map, date_format, stages, and the files of ``OPTIONAL_FILES``."""
        if "history" not in d:
            return None, self.get(d, ("history_format",), "str", default="canonical"), {}
        h = d["history"]
        if not isinstance(h, dict):
            path = self.path(d, ("history",))
            if not path.exists():
                self.fail(("history",), f"history {path} not found", "a CRM export folder")
            return path, self.get(d, ("history_format",), "str", default="canonical"), {}
        self.check_keys(h, ("history",), TABLE_KEYS["history"], "[history]")
        if "history_format" in d:
            self.fail(
                ("history_format",),
                "history_format with a [history] table",
                "format inside [history]",
            )
        if "path" not in h:
            self.fail(
                ("history", "path"),
                "[history] must name its path",
                'path = "crm-export" (relative to the scenario file)',
            )
        path = self.path(h, ("history", "path"))
        if not path.exists():
            self.fail(
                ("history", "path"),
                f"history {path} not found",
                "a CRM export folder or opportunities file",
            )
        options: dict[str, Any] = {}
        for key in OPTIONAL_FILES:
            if key in h:
                options[key] = self.path(h, ("history", key))
        if "profile" in h:
            from salesim.calibrate.profiles import BUILT_IN

            name = self.get(h, ("history", "profile"), "str")
            options["profile"] = (
                name if name.lower() in BUILT_IN else self.path(h, ("history", "profile"))
            )
        if "map" in h:
            mapping = h["map"]
            if not isinstance(mapping, dict) or not all(
                isinstance(v, str) for v in mapping.values()
            ):
                self.fail(
                    ("history", "map"),
                    "[history] map must be a table",
                    'canonical = "Source column" pairs',
                )
            options["mapping"] = dict(mapping)
        if "date_format" in h:
            options["date_format"] = self.get(h, ("history", "date_format"), "str")
        if "stages" in h:
            stages = h["stages"]
            if not (
                isinstance(stages, str)
                or (isinstance(stages, list) and all(isinstance(x, str) for x in stages))
            ):
                self.fail(
                    ("history", "stages"),
                    "stages must be a list of stage names",
                    '["Qualify", "Propose", ...]',
                )
            options["stages"] = stages
        return path, self.get(h, ("history", "format"), "str", default="canonical"), options

    def scenario(self, d: dict) -> Scenario:
        self.check_keys(d, (), TOP_KEYS, "the scenario")
        if "model" not in d:
            self.fail(
                ("model",),
                "the scenario must name its model",
                'model = "model.toml" (relative to the scenario file)',
            )
        model_path = self.path(d, ("model",))
        if not model_path.is_file():
            self.fail(
                ("model",),
                f"model file {model_path} not found",
                "a model written by 'salesim calibrate'",
            )
        mod = model_io.load(model_path)
        history, history_format, history_options = self.history(d)
        as_of = self.get(d, ("as_of",), "date", default=mod.as_of)
        start, days, first = self.horizon(d, as_of)
        mod, extra = self.plan(d, mod)
        team = self.team(d.get("team", {}), mod)
        if team["reps"] is None and not mod.team.reps:
            self.fail(
                ("team",),
                "the model lists no reps, so the scenario must give the team",
                "[team] reps = N, or [[team.rep]] tables",
            )
        if team["quota_per_rep"] is not None:  # the default quota of every seat, hires too
            mod = dataclasses.replace(
                mod, team=dataclasses.replace(mod.team, quota=team["quota_per_rep"])
            )
        strategies = self.strategies(d.get("strategies", {}), mod, start, days)
        for h, path in extra["hire_paths"]:
            self.check_hire_date(h, path, first, days + (start - first).days)
        return Scenario(
            file=self.file,
            model=mod,
            model_path=model_path,
            history_path=history,
            as_of=as_of,
            start=start,
            days=days,
            history_format=history_format,
            history_options=history_options,
            quota=self.get(d, ("quota",), "amount"),
            reps=team["reps"],
            quota_per_rep=team["quota_per_rep"],
            hires=extra["hires"],
            hiring_lag_days=extra["lag"],
            attrition=extra["attrition"],
            backfill=extra["backfill"],
            fixed_parameters=self.get(d, ("fixed_parameters",), "bool", default=False),
            trials=self.get(d, ("trials",), "int", low=1, high=MAX_TRIALS),
            seed=self.get(d, ("seed",), "int", low=0),
            strategies=strategies,
        )

    def path(self, d: dict, path: tuple) -> Path:
        v = self.get(d, path, "str")
        p = Path(v).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def horizon(self, d: dict, as_of: dt.date) -> tuple[dt.date, int, dt.date]:
        """``(start, days, period_start)``. A quarter that began on or before ``as_of`` runs
        from the day after ``as_of`` (the rest of the quarter); ``period_start`` is where hire
        dates may begin (the quarter's first day)."""
        if "quarter" in d:
            if "start" in d:
                self.fail(("start",), "give either quarter or start, not both")
            q = str(d["quarter"]).strip().upper()
            m = re.fullmatch(r"(\d{4})\s*-?\s*Q([1-4])", q)
            if not m:
                self.fail(("quarter",), f"cannot read quarter {d['quarter']!r}", "e.g. 2026-Q3")
            year, k = int(m.group(1)), int(m.group(2))
            if not plausible_date(dt.date(max(year, 1), 1, 1)):
                self.fail(("quarter",), f"{q} is not allowed", DATE_RANGE)
            first = dt.date(year, 3 * k - 2, 1)
            end = dt.date(year + 1, 1, 1) if k == 4 else dt.date(year, 3 * k + 1, 1)
            if end <= as_of + dt.timedelta(days=1):
                self.fail(
                    ("quarter",),
                    f"{q} is over by the as-of date {as_of}",
                    "a quarter that ends after the as-of date",
                )
            start = max(first, as_of + dt.timedelta(days=1))
            days = (end - start).days
        else:
            start = self.get(d, ("start",), "date", default=as_of + dt.timedelta(days=1))
            if start <= as_of:
                self.fail(
                    ("start",),
                    f"the start {start} is not after the as-of date {as_of}",
                    "a date after the as-of date",
                )
            first = start
            days = (baseline.quarter_end(start) - start).days + 1
        if "weeks" in d and "days" in d:
            self.fail(("days",), "give either weeks or days, not both")
        if "weeks" in d:
            days = 7 * self.get(d, ("weeks",), "int", low=1, high=MAX_WEEKS)
        if "days" in d:
            days = self.get(d, ("days",), "int", low=1, high=MAX_DAYS)
        return start, days, first

    def plan(self, d: dict, mod: Model) -> tuple[Model, dict]:
        """Apply the plan's overrides to the model (taken as given, without uncertainty)."""
        hiring, attr = d.get("hiring", {}), d.get("attrition", {})
        marketing, time = d.get("marketing", {}), d.get("time", {})
        self.check_keys(hiring, ("hiring",), TABLE_KEYS["hiring"], "[hiring]")
        self.check_keys(attr, ("attrition",), TABLE_KEYS["attrition"], "[attrition]")
        self.check_keys(marketing, ("marketing",), TABLE_KEYS["marketing"], "[marketing]")
        self.check_keys(time, ("time",), TABLE_KEYS["time"], "[time]")
        team = mod.team
        ramp = self.get(hiring, ("hiring", "ramp_months"), "float", low=0)
        if ramp is not None:
            team = dataclasses.replace(team, ramp_months=ramp, ramp_months_sd=0.0)
        monthly = self.get(attr, ("attrition", "monthly"), "float", low=0, high=1)
        enabled = self.get(attr, ("attrition", "enabled"), "bool")
        if monthly == 0:
            if enabled:
                self.fail(
                    ("attrition", "monthly"),
                    "attrition is enabled with a zero rate",
                    "monthly > 0, or enabled = false",
                )
            enabled = False
        elif monthly is not None:
            team = dataclasses.replace(team, attrition=_certain(monthly))
        weekly = self.get(marketing, ("marketing", "weekly"), "float", low=0)
        mkt = mod.marketing
        if weekly is not None:
            mkt = dataclasses.replace(mkt, weekly=_certain(weekly))
        cap = mod.capacity
        for key in ("week_hours", "deal_hours"):
            v = self.get(time, ("time", key), "float", low=0)
            if v is not None:
                cap = dataclasses.replace(cap, **{key: v})
        if not cap.leaves_prospecting_time:
            self.fail(
                ("time", "deal_hours" if "deal_hours" in time else "week_hours"),
                f"{cap.deal_hours:g} h per deal × {cap.free_deals:g} deals leaves no "
                f"prospecting time in a {cap.week_hours:g}-hour week",
                "week_hours > deal_hours × the model's free_deals",
            )
        hires, paths = [], []
        rows = hiring.get("hire", [])
        if not isinstance(rows, list):
            self.fail(("hiring", "hire"), "hires must be [[hiring.hire]] tables")
        for i, row in enumerate(rows):
            path = ("hiring", "hire", i)
            self.check_keys(row, path, TABLE_KEYS["hiring.hire"], "[[hiring.hire]]")
            if "date" not in row:
                self.fail(path, "a hire needs a date", "date = 2026-08-01")
            h = Hire(
                self.get(row, path + ("count",), "int", default=1, low=0, high=MAX_REPS),
                self.get(row, path + ("date",), "date"),
                self.get(row, path + ("quota",), "amount"),
            )
            hires.append(h)
            paths.append((h, path + ("date",)))
        model = dataclasses.replace(mod, team=team, marketing=mkt, capacity=cap)
        return model, {
            "hires": tuple(hires),
            "hire_paths": paths,
            "lag": self.get(hiring, ("hiring", "lag_days"), "float", low=0),
            "attrition": enabled,
            "backfill": self.get(attr, ("attrition", "backfill"), "bool"),
        }

    def team(self, t: dict, mod: Model) -> dict:
        self.check_keys(t, ("team",), TABLE_KEYS["team"], "[team]")
        per_rep = self.get(t, ("team", "quota_per_rep"), "amount")
        quota = per_rep if per_rep is not None else mod.team.quota
        tenure = self.get(t, ("team", "tenure_months"), "float", default=24.0, low=0)
        if "reps" in t and "rep" in t:
            self.fail(("team", "reps"), "give either reps = N or [[team.rep]] tables, not both")
        reps = None
        if "reps" in t:
            n = self.get(t, ("team", "reps"), "int", low=1, high=MAX_REPS)
            reps = tuple(Rep(f"rep{i + 1}", tenure * DAYS_PER_MONTH, 0.0, quota) for i in range(n))
        elif "rep" in t:
            rows, out, seen = t["rep"], [], set()
            if not isinstance(rows, list) or not rows:
                self.fail(("team", "rep"), "reps must be [[team.rep]] tables")
            for i, row in enumerate(rows):
                path = ("team", "rep", i)
                self.check_keys(row, path, TABLE_KEYS["team.rep"], "[[team.rep]]")
                name = self.get(row, path + ("name",), "str", default=f"rep{i + 1}")
                if name in seen:
                    self.fail(path + ("name",), f"rep {name!r} is listed twice")
                seen.add(name)
                out.append(
                    Rep(
                        name,
                        self.get(row, path + ("tenure_months",), "float", default=tenure, low=0)
                        * DAYS_PER_MONTH,
                        0.0,
                        self.get(row, path + ("quota",), "amount", default=quota),
                    )
                )
            reps = tuple(out)
        return {"reps": reps, "quota_per_rep": per_rep}

    def strategies(self, s: dict, mod: Model, start: dt.date, days: int) -> tuple[Strategy, ...]:
        if not isinstance(s, dict):
            self.fail(("strategies",), "strategies must be [strategies.NAME] tables")
        out = []
        for name, items in s.items():
            path = ("strategies", name)
            if not isinstance(items, dict):
                self.fail(
                    path,
                    f"strategy {name!r} must be a table of levers",
                    '[strategies.NAME] with prospecting = "+20%" etc.',
                )
            if name.strip().lower() == "baseline":
                self.fail(path, "'baseline' is reserved for the plan without levers")

            def fail(key, exc, path=path):
                self.fail(path + (key,), str(exc), exc.expected)

            st = strategy_from_items(name, items, model=mod, on_error=fail)
            for h in st.hires:
                self.check_hire_date(h, path + ("headcount",), start, days)
            out.append(st)
        return tuple(out)

    def check_hire_date(self, h: Hire, path: tuple, start: dt.date, days: int):
        if h.date is None:
            return
        if h.date < start:
            self.fail(
                path,
                f"hire date {h.date} is before the horizon starts ({start})",
                "a date inside the horizon",
            )
        if h.date >= start + dt.timedelta(days=days):
            self.fail(
                path,
                f"hire date {h.date} is after the horizon ends "
                f"({start + dt.timedelta(days=days - 1)})",
                "a date inside the horizon",
            )


# --- scenario → SimSpec -------------------------------------------------------------------------
def scenario_history(sc: Scenario) -> History | None:
    """The history the scenario's ``[history]`` names (None without one)."""
    if sc.history_path is None:
        return None
    from salesim.calibrate.ingest import read_history

    return read_history(sc.history_path, format=sc.history_format, **sc.history_options)


def scenario_spec(sc: Scenario, history: History | None = None) -> SimSpec:
    """The scenario's baseline, ready to run: ``scenarios.baseline`` builds the team, open
    pipeline and closed-to-date revenue; the plan adds its hires, attrition and backfill.
    ``history``: the scenario's, already read (default: read here).

    The team quota is the scenario's ``quota``, else the sum of the current reps' quotas
    (planned hires do not raise it).
    """
    if history is None:
        history = scenario_history(sc)
    spec = baseline.baseline_spec(
        sc.model,
        history=history,
        as_of=sc.as_of,
        start=sc.start,
        team=sc.reps,
        quota=sc.quota,
        fixed_parameters=sc.fixed_parameters,
    )
    spec = dataclasses.replace(spec, days=sc.days, quota=spec.team_quota or None)
    dated = [(h, h.date) for h in sc.hires if h.date is not None and h.date < spec.start]
    before = [h for h, _ in dated]
    later = [h for h in sc.hires if h not in before]
    # hires dated earlier in the quarter than the start are on the team already
    joined = tuple(
        Rep(
            f"plan-hire{i + 1}",
            float((day - spec.start).days * -1),
            0.0,
            default_rep_quota(spec) if h.quota is None else h.quota,
        )
        for i, (h, day) in enumerate((x, d) for x, d in dated for _ in range(x.count))
    )
    spec = dataclasses.replace(spec, reps=spec.reps + joined)
    spec = dataclasses.replace(spec, reps=spec.reps + hire_reps(spec, later, prefix="plan-hire"))
    kw: dict[str, Any] = {}
    if sc.attrition is not None:
        kw["attrition"] = sc.attrition
    if sc.backfill is not None:
        kw["backfill"] = sc.backfill
    if sc.hiring_lag_days is not None:
        kw["hiring_lag_days"] = sc.hiring_lag_days
    return dataclasses.replace(spec, **kw)


def _certain(mean: float) -> GammaPosterior:
    # Gamma with huge shape: draws equal the mean; tiny floor keeps the shape positive.
    return GammaPosterior(max(mean, 1e-12) * _CERTAIN, _CERTAIN)
