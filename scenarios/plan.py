"""What a run starts from: a MODEL.toml with its history and options, or a SCENARIO.toml that
states all of it, plus the defaults that follow from either (trials, seed).

The CLI's forecast, compare and capacity and the library's ``salesim.baseline`` /
``salesim.load_plan`` resolve these here, once, so the two cannot disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from salesim.calibrate.categories import Calls, current_calls
from salesim.history import OPTIONAL_FILES, History
from salesim.simulator.errors import InputError
from salesim.simulator.spec import SimSpec
from salesim.simulator.units import as_date

# How a CRM history is read (``calibrate.ingest.read_history``'s keywords).
HISTORY_OPTIONS = ("format", "profile", "mapping", "date_format", "stages", *OPTIONAL_FILES)
# Trials per run when neither the caller nor a scenario file says.
COMPARE_TRIALS = 4000
CAPACITY_TRIALS = 2000
NO_HISTORY_WARNING = (
    "no --history: the run starts with no open pipeline and no revenue "
    "closed to date (give --history with the CRM export)"
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The baseline ``spec`` and the scenario file it came from (None for a model);
    ``warnings`` are said up front (the CLI prints them on stderr). A model's plan keeps
    the ``history`` it read (its teams group roll-ups; its deal fields make the per-deal
    view) and its ``as_of`` date, as does a scenario file's ``[history]``; None without one."""

    spec: SimSpec
    scenario: Any = None
    source: str = ""
    warnings: tuple[str, ...] = ()
    calls: Calls | None = None  # the reps' call for the quarter, when the history has one
    history: History | None = None
    as_of: dt.date | None = None

    @property
    def teams(self) -> pl.DataFrame | None:
        """Who reports to whom and where (``History.teams``), for roll-ups."""
        return self.history.teams if self.history is not None else None

    def trials(self, given: int | None, default: int) -> int:
        """The caller's trials, else the scenario's, else ``default``."""
        if given is not None:
            return given
        return self.scenario.trials if self.scenario and self.scenario.trials else default

    def seed(self, given: int | None) -> int:
        """The caller's seed, else the scenario's, else fresh entropy (reported in results)."""
        from .compare import fresh_seed

        if given is not None:
            return given
        if self.scenario is not None and self.scenario.seed is not None:
            return self.scenario.seed
        return fresh_seed()

    def strategies(self, levers=()) -> list:
        """The scenario's strategies, then those of ``levers`` (``--lever`` texts)."""
        from .scenario import parse_lever_args

        own = list(self.scenario.strategies) if self.scenario else []
        return own + list(parse_lever_args(levers, model=self.spec.model))


def option_flag(key: str) -> str:
    """A history option's name on the command line (``mapping`` is ``--map``)."""
    return "--" + {"mapping": "map"}.get(key, key).replace("_", "-")


def history_given(history_options: Mapping[str, object]) -> list[str]:
    """The history options given (``format`` counts when not canonical), as flags."""
    return [
        option_flag(k)
        for k, v in history_options.items()
        if v not in (None, (), "") and not (k == "format" and v == "canonical")
    ]


def read_history(path, **history_options):
    """The ``History`` behind a path and the history options (InputError if bad)."""
    from salesim.calibrate.ingest import read_history as read

    unknown = set(history_options) - set(HISTORY_OPTIONS)
    if unknown:
        raise TypeError(f"not history options: {sorted(unknown)}")
    return read(path, **history_options)


def _date(value: dt.date | str | None, option: str) -> dt.date | None:
    return None if value is None else as_date(value, what="date", column=option)


def model_plan(
    model,
    *,
    history=None,
    history_options: Mapping[str, object] | None = None,
    as_of: dt.date | str | None = None,
    start: dt.date | str | None = None,
    weeks: int | None = None,
    n_reps: int | None = None,
    team=None,
    quota: float | None = None,
    fixed_parameters: bool = False,
) -> Plan:
    """The baseline of a model (a ``Model`` or a MODEL.toml path) as forecast, compare and
    capacity build it: the open pipeline and revenue closed to date from ``history`` (a
    ``History``, or a path read with ``history_options``)."""
    from salesim.simulator.model import Model, load

    from .baseline import baseline_spec

    history_options = dict(history_options or {})
    source = "" if isinstance(model, Model) else str(model)
    model = model if isinstance(model, Model) else load(model)
    warnings: tuple[str, ...] = ()
    if history is None:
        given = history_given(history_options)
        if given:
            raise InputError(
                f"{given[0]} applies to the history; give --history too",
                column=given[0],
                expected="--history FOLDER_OR_FILE",
            )
        warnings = (NO_HISTORY_WARNING,)
    elif isinstance(history, (str, Path)):
        history = read_history(history, **history_options)
    day = _date(as_of, "--as-of") or model.as_of
    spec = baseline_spec(
        model,
        history=history,
        as_of=day,
        start=_date(start, "--start"),
        weeks=weeks,
        n_reps=n_reps,
        team=team,
        quota=quota,
        fixed_parameters=fixed_parameters,
    )
    calls = current_calls(history, day) if history is not None else None
    return Plan(spec, None, source, warnings, calls=calls, history=history, as_of=day)


def load_plan(
    path,
    *,
    history=None,
    history_options: Mapping[str, object] | None = None,
    as_of=None,
    start=None,
    weeks: int | None = None,
    n_reps: int | None = None,
    team=None,
    quota: float | None = None,
    fixed_parameters: bool = False,
) -> Plan:
    """The plan of a SCENARIO.toml or a MODEL.toml. A scenario file states its history,
    dates and team itself: giving them too is an InputError naming the option."""
    from .scenario import is_scenario_file, load_scenario, scenario_history, scenario_spec

    if not Path(path).is_file():
        raise InputError(
            "file not found", file=str(path), expected="a scenario or a model TOML file"
        )
    if not is_scenario_file(path):
        return model_plan(
            path,
            history=history,
            history_options=history_options,
            as_of=as_of,
            start=start,
            weeks=weeks,
            n_reps=n_reps,
            team=team,
            quota=quota,
            fixed_parameters=fixed_parameters,
        )
    given: dict[str, object] = {
        "--history": history,
        "--as-of": as_of,
        "--start": start,
        "--weeks": weeks,
        "--reps": n_reps,
        "--team": team,
    }
    given.update({flag: True for flag in history_given(history_options or {})})
    for flag, value in given.items():
        if value is not None:
            raise InputError(
                f"{flag} only applies to a MODEL; a scenario file states it",
                file=str(path),
                column=flag,
                expected="the scenario's own keys (its [history] table for the history options)",
            )
    sc = load_scenario(path)
    if fixed_parameters:
        sc = dataclasses.replace(sc, fixed_parameters=True)
    history = scenario_history(sc)
    spec = scenario_spec(sc, history)
    if quota is not None:
        spec = dataclasses.replace(spec, quota=quota)
    as_of = sc.as_of if history is not None else None
    return Plan(spec, sc, str(path), history=history, as_of=as_of)
