"""What an engine runs: a calibrated model plus a team, an open pipeline, a horizon and levers.

``scenarios/`` builds a ``SimSpec``; both engines (``simulator.engine_simpy`` and
``simulator.engine_vector``) take the same ``SimSpec`` and follow docs/model.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .calendar import quarter_end
from .errors import InputError
from .levers import Levers
from .model import Model, TrialParams
from .units import DAYS_PER_MONTH  # noqa: F401 (spec's users read it here too)
from .vector_params import ParamArrays, draw_model

OPEN_DEAL_COLUMNS = {
    "opportunity_id": pl.String,
    "owner": pl.String,  # must be one of the spec's reps (else reassigned, see model.md)
    "stage": pl.String,  # one of the model's stages
    "age_days": pl.Float64,  # days already spent in that stage at the start
    "amount": pl.Float64,
    "segment": pl.String,
}
# Optional: when the deal is expected to close, in days from the start (negative: the date
# has passed; null: no date), and how often its date was pushed. With a slip model they time
# the deal (docs/model.md §6c).
SLIP_COLUMNS = {"days_to_close": pl.Float64, "pushes": pl.Int64}


def empty_open_deals() -> pl.DataFrame:
    return pl.DataFrame(schema=OPEN_DEAL_COLUMNS)


# Per-trial random streams, spawned in this order (docs/model.md §0).
STREAMS = ("params", "team", "activities", "deals", "open_pipeline", "marketing")


def child_seed(seed: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """The ``i``-th child of ``seed``, as a first ``seed.spawn`` would give it.

    ``spawn`` counts the children it has made, so spawning twice from one object gives new
    streams; building the child from its key makes reruns (and strategies compared with
    common random numbers) get the same streams.
    """
    return np.random.SeedSequence(
        seed.entropy, spawn_key=tuple(seed.spawn_key) + (int(i),), pool_size=seed.pool_size
    )


def trial_streams(seed: np.random.SeedSequence, n_trials: int):
    """For each trial of a chunk: ``{purpose: Generator}`` for every name in ``STREAMS``."""
    for i in range(n_trials):
        trial = child_seed(seed, i)
        yield {name: np.random.default_rng(child_seed(trial, k)) for k, name in enumerate(STREAMS)}


@dataclass(frozen=True)
class Rep:
    """A seat on the team. Reps already on the team have ``start_day == 0``; planned hires
    start later with zero tenure. ``tenure_days`` is the tenure on ``start_day``. ``level``
    (with ``level_sd``): the rep's own log activity multiplier as the history measured it
    (docs/model.md §2); None: drawn from the population like a new hire's."""

    name: str
    tenure_days: float = 365.0
    start_day: float = 0.0
    quota: float = 0.0
    closed_to_date: float = 0.0  # won earlier in the quarter, before the horizon (reports)
    level: float | None = None
    level_sd: float = 0.0

    def __post_init__(self):
        if self.tenure_days < 0 or self.start_day < 0 or self.quota < 0:
            raise InputError("tenure, start day and quota must be ≥ 0", column=self.name)
        if self.level is not None and not (
            math.isfinite(self.level) and math.isfinite(self.level_sd) and self.level_sd >= 0
        ):
            raise InputError("a rep's level must be finite and its sd ≥ 0", column=self.name)


def level_ratio(spec: "SimSpec", per_rep_day):
    """The model's point ``per_rep_day`` (levered) over the trial's: what keeps a measured
    rep's own rate from moving with the trial's draw of the typical rep's, as far as its own
    data set it (``rep_multiplier``; docs/model.md §2)."""
    rate = np.asarray(per_rep_day, dtype=float)
    point = spec.model.activities.per_rep_day * spec.levers.prospecting
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rate > 0, point / np.where(rate > 0, rate, 1.0), 1.0)


def rep_multiplier(rep: "Rep", z, rep_sigma, ratio):
    """A seat's first occupant's activity multiplier from its standard normal ``z``:
    ``exp(rep_sigma·z)`` without a measured level, else ``exp(level + level_sd·z)·ratio^w``
    (``level_ratio``) with ``w = 1 − level_sd²/rep_sigma²``, the weight of the rep's own data
    in its level: the rest of its rate is the typical rep's, and moves with the trial's
    draw of it (all of it when ``rep_sigma`` is 0)."""
    if rep.level is None:
        return np.exp(np.asarray(rep_sigma) * z)
    sigma = float(rep_sigma)
    w = max(1.0 - (rep.level_sd / sigma) ** 2, 0.0) if sigma > 0 else 0.0
    return np.exp(rep.level + rep.level_sd * np.asarray(z)) * np.asarray(ratio) ** w


@dataclass(frozen=True)
class SimSpec:
    """One scenario, ready to run: the model, who sells, what is open, for how long."""

    model: Model
    reps: tuple[Rep, ...]
    start: dt.date
    days: int = 91
    open_deals: pl.DataFrame = field(default_factory=empty_open_deals)
    levers: Levers = Levers()
    fixed_parameters: bool = False
    attrition: bool = True  # reps may leave (monthly hazard from the model)
    backfill: bool = False  # a leaver's seat is refilled after hiring_lag_days
    hiring_lag_days: float = 60.0
    quota: float | None = None  # team quota for the horizon; None: sum of rep quotas
    closed_to_date: float = 0.0  # won earlier in the same quarter; counts toward quota
    notes: tuple[str, ...] = ()  # assumptions taken while building the spec (reports)

    def __post_init__(self):
        if self.days <= 0:
            raise InputError(f"horizon must be at least one day, got {self.days}", column="days")
        if not self.reps:
            raise InputError("the team has no reps", column="reps")
        self._check_open_deals()
        if not self.capacity.leaves_prospecting_time:
            raise InputError(
                "deal hours × free deals leave no prospecting time in the week",
                column="capacity",
                expected="week_hours > deal_hours × free_deals",
            )

    def _check_open_deals(self) -> None:
        """Every open deal in a stage the model has, with an age and amount finite and ≥ 0.
        Rows are counted in ``open_deals`` (the engines read them after pruning)."""
        deals = self.open_deals
        stage_index = set(self.model.stage_names)
        names = deals["stage"].to_list()
        bad = [i for i, s in enumerate(names) if s not in stage_index]
        if bad:
            raise InputError(
                f"open deal has unknown stage {names[bad[0]]!r}",
                row=bad[0] + 1,
                column="stage",
                expected="one of " + ", ".join(self.model.stage_names),
            )
        for col in ("age_days", "amount"):
            values = deals[col].cast(pl.Float64).to_numpy()
            wrong = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))
            if wrong.size:
                raise InputError(
                    f"open deal has {col} {values[wrong[0]]!r}",
                    row=int(wrong[0]) + 1,
                    column=col,
                    expected="a number ≥ 0",
                )

    @property
    def weeks(self) -> int:
        return math.ceil(self.days / 7)

    @property
    def quarter_days(self) -> int:
        """Days of the horizon inside the calendar quarter of its start: a win on a day
        before this one is won this quarter."""
        return min(self.days, (quarter_end(self.start) - self.start).days + 1)

    @property
    def team_quota(self) -> float:
        return float(self.quota) if self.quota is not None else sum(r.quota for r in self.reps)

    @property
    def capacity(self):
        cap = self.model.capacity
        if self.levers.deal_hours is not None:
            cap = dataclasses.replace(cap, deal_hours=self.levers.deal_hours)
        return cap

    def working_days(self) -> np.ndarray:
        """Day offsets (0-based) of Mon–Fri days in the horizon."""
        wd = np.array(
            [(self.start + dt.timedelta(days=int(d))).weekday() < 5 for d in range(self.days)]
        )
        return np.flatnonzero(wd)

    def initial_owners(self, open_deals: pl.DataFrame | None = None) -> np.ndarray:
        """Seat index (``reps`` order) owning each open deal at day 0; -1: nobody.

        Owners who are not reps active at day 0 are reassigned, in row order, to the active
        rep with the fewest open deals at that moment (ties: lowest index), as a leaver's
        deals are (docs/model.md §2, §6). Deterministic: no random draws.
        """
        deals = self.open_pipeline() if open_deals is None else open_deals
        active = {r.name: i for i, r in enumerate(self.reps) if r.start_day <= 0}
        owners = np.array([active.get(o, -1) for o in deals["owner"].to_list()], dtype=np.int64)
        if not active:
            return owners
        load = np.bincount(owners[owners >= 0], minlength=len(self.reps)).astype(np.int64)
        eligible = np.array(sorted(active.values()))
        for row in np.flatnonzero(owners < 0):
            seat = eligible[np.argmin(load[eligible])]
            owners[row] = seat
            load[seat] += 1
        return owners

    def open_pipeline(self) -> pl.DataFrame:
        """The open deals after ``prune_stale_days``."""
        if self.levers.prune_stale_days is None:
            return self.open_deals
        return self.open_deals.filter(pl.col("age_days") <= self.levers.prune_stale_days)

    def param_arrays(self, n: int, rng: np.random.Generator) -> ParamArrays:
        """``n`` trials' parameters: posterior draws (or point estimates), levered.

        The posterior draw consumes ``rng`` even with fixed parameters, so switching
        ``fixed_parameters`` does not shift the other streams.
        """
        drawn = draw_model(self.model, n, rng)
        p = ParamArrays.repeat(self.model.point(), n) if self.fixed_parameters else drawn
        return self.levers.apply(p)

    def trial_params(self, rng: np.random.Generator) -> TrialParams:
        """One trial's parameters (the SimPy engine's): the one-row case of ``param_arrays``."""
        return self.param_arrays(1, rng).trial(0)
