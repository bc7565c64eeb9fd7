"""The calibrated model: the one hand-off from ``calibrate/`` to the engines.

A ``Model`` is a frozen tree of dataclasses. It serialises to a TOML file a person can read
and edit (``save``/``load``, with ``load(save(m)) == m`` exactly) and draws one parameter set
per Monte Carlo trial (``simulator.vector_params.draw_model``: the posterior drawn for ``n``
trials at once; one trial is its one-row case), or gives point estimates (``Model.point``).
docs/model.md says what every field means to the engines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import signal
import tempfile
import threading
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import tomli_w
from scipy import stats

from .calendar import CHANNELS, CalendarModel, ClosingClock, PeriodEffects
from .distributions import Distribution, Empirical, from_dict
from .errors import InputError
from .model_checks import FORMAT_VERSION, check_model


# --- posteriors ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BetaPosterior:
    """Beta(alpha, beta) posterior of a probability (prior stated where it is fitted)."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        lo, hi = stats.beta.ppf([(1 - level) / 2, (1 + level) / 2], self.alpha, self.beta)
        return float(lo), float(hi)

    def draw(self, rng: np.random.Generator, size: int | None = None):
        """One draw (a float), or ``size`` draws (an array)."""
        if self.alpha <= 0 or self.beta <= 0:  # a point mass at 0 or 1 (e.g. hand-edited)
            return self.mean if size is None else np.full(size, self.mean)
        x = rng.beta(self.alpha, self.beta, size)
        return float(x) if size is None else x


@dataclass(frozen=True)
class GammaPosterior:
    """Gamma(shape, rate) posterior of a positive rate."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        lo, hi = stats.gamma.ppf(
            [(1 - level) / 2, (1 + level) / 2], self.shape, scale=1 / self.rate
        )
        return float(lo), float(hi)

    def draw(self, rng: np.random.Generator, size: int | None = None):
        """One draw (a float), or ``size`` draws (an array)."""
        x = rng.gamma(self.shape, 1 / self.rate, size)
        return float(x) if size is None else x


@dataclass(frozen=True)
class Fitted:
    """A fitted distribution with its uncertainty and diagnostics.

    ``log_cov`` is the covariance of the log-parameters (``dist.param_names`` order), from the
    inverse observed information; empty means no uncertainty. For ``Empirical`` the weights
    are counts and uncertainty is a Dirichlet draw over them.
    """

    dist: Distribution
    log_cov: tuple[tuple[float, ...], ...] = ()
    n_events: float = 0.0
    n_censored: float = 0.0
    ks: float | None = None  # sup |fitted - nonparametric| (goodness of fit)
    aic: dict = field(default_factory=dict)  # family -> AIC of every family tried

    def draw_params(self, rng: np.random.Generator, size: int | None = None):
        """Posterior draws of the distribution's parameters, one (``size=None``) or ``size``
        rows: Dirichlet weights over the counts (``Empirical``), else the parameters drawn
        log-normal; None without uncertainty. ``draw`` and ``vector_params.draw_dist`` both
        draw through it."""
        d = self.dist
        if isinstance(d, Empirical):
            return rng.dirichlet(np.maximum(np.asarray(d.weights), 1e-9), size)
        if not self.log_cov:
            return None
        return np.exp(
            rng.multivariate_normal(
                np.log(d.params()), np.asarray(self.log_cov), size=size, method="cholesky"
            )
        )

    def draw(self, rng: np.random.Generator) -> Distribution:
        x = self.draw_params(rng)
        if x is None:
            return self.dist
        return (
            self.dist.with_weights(x)
            if isinstance(self.dist, Empirical)
            else self.dist.with_params(x)
        )

    def se_log(self) -> np.ndarray:
        """Standard errors of the log-parameters."""
        return np.sqrt(np.diag(np.asarray(self.log_cov))) if self.log_cov else np.zeros(0)


# --- model parts -----------------------------------------------------------------------------
@dataclass(frozen=True)
class StageTail:
    """How deals still in a stage after ``from_age`` days end, as observed (docs/model.md §6):
    of the entries still in the stage at ``from_age``, the share that later advanced
    (``conversion``), that never left within the history (``stall``; None: none), and when
    the others advanced or were lost (``advance``, ``lost``: empirical, days in the stage)."""

    from_age: float
    conversion: BetaPosterior
    advance: Fitted
    lost: Fitted
    stall: BetaPosterior | None = None
    n_at_risk: int = 0


@dataclass(frozen=True)
class StageModel:
    """One stage: P(advance | entered), competing advance/lost durations (days in stage), and
    P(stall | entered): the share that never leaves the stage (None: no stall, π = 0).
    ``tail``: how open deals older than its ``from_age`` end (None: as the fitted curves say)."""

    name: str
    conversion: BetaPosterior
    advance: Fitted
    lost: Fitted
    n_entered: int = 0
    n_advanced: int = 0
    n_lost: int = 0
    n_open: int = 0
    stall: BetaPosterior | None = None
    tail: StageTail | None = None


@dataclass(frozen=True)
class SegmentSize:
    """Deal size of one segment; ``count`` deals seen (its share of new deals)."""

    name: str
    count: float
    size: Fitted


@dataclass(frozen=True)
class ActivityModel:
    """Prospecting activities of a ramped rep and their yield in opportunities.

    Daily count per rep ~ NegBin(mean = per_rep_day × rep multiplier, size = dispersion);
    rep multiplier ~ LogNormal(median 1, rep_sigma) drawn once per rep per trial.
    ``log_cov`` is over (log per_rep_day, log dispersion). Without activities.csv,
    ``observed`` is False and an "activity" is an outbound opportunity (yield 1, lag 0).
    """

    per_rep_day: float
    dispersion: float
    rep_sigma: float
    log_cov: tuple[tuple[float, ...], ...]
    opportunity_yield: BetaPosterior
    lag: Fitted
    n_rep_days: int = 0
    observed: bool = True

    def draw(self, rng: np.random.Generator, size: int):
        """``size`` posterior draws of (per_rep_day, dispersion), as two arrays."""
        if not self.log_cov:
            return np.full(size, self.per_rep_day), np.full(size, self.dispersion)
        z = np.exp(
            rng.multivariate_normal(
                np.log([self.per_rep_day, self.dispersion]),
                np.asarray(self.log_cov),
                size=size,
                method="cholesky",
            )
        )
        return z[:, 0], z[:, 1]


@dataclass(frozen=True)
class MarketingModel:
    """Marketing-sourced opportunities arriving for the whole team, per week (Poisson)."""

    weekly: GammaPosterior
    share: float = 0.0  # share of all opportunities that were marketing-sourced


@dataclass(frozen=True)
class RepSnapshot:
    """A rep on the team at the as-of date. ``level``: the posterior mean of its log activity
    multiplier as the history shows it (relative to ``ActivityModel.per_rep_day``), with sd
    ``level_sd``; None: not measured (a forecast draws it from the population)."""

    name: str
    hired: dt.date
    quota: float = 0.0
    level: float | None = None
    level_sd: float | None = None  # None with ``level``; 0 means known exactly


@dataclass(frozen=True)
class TeamModel:
    """Ramp (linear to full productivity at ``ramp_months``) and monthly attrition hazard."""

    ramp_months: float
    ramp_months_sd: float
    attrition: GammaPosterior
    quota: float = 0.0  # default quota per rep per quarter
    calibrated: bool = False  # False: documented defaults (no reps.csv)
    reps: tuple[RepSnapshot, ...] = ()  # active at as_of

    def ramp(self, tenure_months, ramp_months: float | None = None):
        r = self.ramp_months if ramp_months is None else ramp_months
        t = np.asarray(tenure_months, dtype=float)
        return np.clip(t / r, 0.0, 1.0) if r > 0 else np.ones_like(t)


@dataclass(frozen=True)
class CapacityModel:
    """Time on deals is time not prospecting: share = clip((W - h·n)/(W - h·free), floor, 1)."""

    week_hours: float = 40.0
    deal_hours: float = 1.0
    free_deals: float = 20.0
    floor: float = 0.2

    @property
    def leaves_prospecting_time(self) -> bool:
        """A rep at ``free_deals`` open deals still has hours to prospect: the rule every
        check of ``week_hours``, ``deal_hours`` and ``free_deals`` applies."""
        return self.week_hours - self.deal_hours * self.free_deals > 0

    def share(self, n_open):
        base = self.week_hours - self.deal_hours * self.free_deals
        n = np.asarray(n_open, dtype=float)
        return np.clip((self.week_hours - self.deal_hours * n) / base, self.floor, 1.0)


# --- per-trial parameters ----------------------------------------------------------------------
# --- rep judgement (calibrate/categories.py; shown beside a forecast, never simulated) ------------
@dataclass(frozen=True)
class CallRate:
    """How often deals open in a forecast category at a quarter's start were won inside that
    quarter, for everyone (``team`` "") or one team. ``rate`` counts deals (Jeffreys prior);
    ``amount_rate`` weighs them by amount (its Beta has the effective number of deals)."""

    category: str
    team: str
    n: int  # deal-quarters
    won: int
    amount: float
    won_amount: float
    rate: BetaPosterior
    amount_rate: BetaPosterior
    concentration: float | None = None  # the reps' beta-binomial κ (everyone's rows only)


@dataclass(frozen=True)
class RepCall:
    """A rep's share won of their deals in a category, shrunk toward their team's rate
    (``team_rate``); ``call`` is "hot" (converts below it: over-calls) or "cold" (above it:
    sandbags) when the posterior interval at ``CallReliability.naming_level`` excludes it."""

    rep: str
    team: str
    category: str
    n: int
    won: int
    rate: BetaPosterior
    team_rate: float
    call: str = ""


@dataclass(frozen=True)
class CallReliability:
    """Forecast-category reliability measured over ``quarters`` whole quarters."""

    quarters: int
    min_deals: int  # fewest deal-quarters for a team or rep row
    naming_level: float
    categories: tuple[CallRate, ...]
    teams: tuple[CallRate, ...] = ()
    reps: tuple[RepCall, ...] = ()


@dataclass(frozen=True)
class TailParams:
    """One draw of a ``StageTail``."""

    from_age: float
    conversion: float
    stall: float
    advance: Distribution
    lost: Distribution


@dataclass(frozen=True)
class TrialParams:
    """One parameter set: what a single Monte Carlo trial runs with."""

    conversion: tuple[float, ...]
    advance: tuple[Distribution, ...]
    lost: tuple[Distribution, ...]
    segments: tuple[str, ...]
    segment_probs: tuple[float, ...]
    sizes: tuple[Distribution, ...]
    per_rep_day: float
    dispersion: float
    rep_sigma: float
    opportunity_yield: float
    lag: Distribution
    marketing_weekly: float
    ramp_months: float
    attrition_monthly: float
    stall: tuple[float, ...] = ()  # P(stall) per stage; () means zeros (no stall)
    tails: tuple[TailParams | None, ...] = ()  # per stage; () means none
    effects: tuple[tuple[float, ...], ...] = ()  # per channel (calendar.CHANNELS), per
    # quarter; () or an empty row: none
    # Per bucket of pushes (docs/model.md §6c), as a tail from age 0: P(won), no stall, the
    # time to win and to lose in units of a deal's days to its expected close; (): none.
    slips: tuple[TailParams, ...] = ()
    slip_stage_weight: float = 0.0  # SlipModel.stage_weight, drawn

    def __post_init__(self):
        if not self.stall:
            object.__setattr__(self, "stall", (0.0,) * len(self.conversion))
        if not self.tails:
            object.__setattr__(self, "tails", (None,) * len(self.conversion))
        if not self.effects:
            object.__setattr__(self, "effects", ((),) * len(CHANNELS))

    def effect(self, channel: str) -> tuple[float, ...]:
        """The quarter effects of a channel (empty: the channel does not change)."""
        return self.effects[CHANNELS.index(channel)]


@dataclass(frozen=True)
class SlipBucket:
    """Open deals whose expected close date has been pushed ``pushes`` times (the last
    bucket: that many or more): P(won) and the time to win, in units of their days to the
    expected close (docs/model.md §6c)."""

    pushes: int
    won: BetaPosterior  # P(won eventually | open with an expected close date)
    won_time: Fitted  # LogNormal: days to the win / (days to the expected close⁺ + offset)
    n_deals: float = 0.0  # deals behind it (each counted once over its snapshots)
    n_won: float = 0.0


@dataclass(frozen=True)
class SlipModel:
    """How an open deal with an expected close date ends (docs/model.md §6c): per bucket of
    pushes, the chance it is won and when, relative to its date; the time to a loss
    likewise, for every bucket."""

    offset_days: float  # added to the days to the expected close (≥ 0) before scaling
    buckets: tuple[SlipBucket, ...]  # pushes 0, 1, …; the last: that many or more
    lost_time: Fitted  # LogNormal, in the same units as ``won_time``
    # Weight of the stage model's log odds of a win (open_pipeline.win_odds) in a deal's
    # log odds of being won, and its sd: what the deal's stage and age add to its date.
    stage_weight: float = 0.0
    stage_weight_sd: float = 0.0

    def bucket(self, pushes: int) -> int:
        """Index of the bucket of a deal pushed ``pushes`` times."""
        return min(int(pushes), len(self.buckets) - 1)


@dataclass(frozen=True)
class Model:
    as_of: dt.date
    stages: tuple[StageModel, ...]
    cycle: StageModel  # created → won/lost as one step (summary, win rate)
    deal_size: tuple[SegmentSize, ...]
    activities: ActivityModel
    marketing: MarketingModel
    team: TeamModel
    capacity: CapacityModel = CapacityModel()
    n_opportunities: int = 0
    source: str = ""
    notes: tuple[str, ...] = ()  # warnings and fallbacks taken during calibration
    calendar: CalendarModel | None = None  # quarter effects and closing clock (docs/model.md §8)
    diagnostics: tuple[str, ...] = ()  # what the history contradicts (calibrate.diagnostics)
    slips: SlipModel | None = None  # open deals' expected close dates (docs/model.md §6c)
    calls: CallReliability | None = None  # forecast-category reliability (calibrate.categories)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def win_rate(self) -> float:
        return self.cycle.conversion.mean

    def point(self) -> TrialParams:
        """Point estimates (``--fixed-parameters``)."""
        total = sum(s.count for s in self.deal_size)
        return TrialParams(
            conversion=tuple(
                min(s.conversion.mean, 1.0 - (s.stall.mean if s.stall else 0.0))
                for s in self.stages
            ),
            advance=tuple(s.advance.dist for s in self.stages),
            lost=tuple(s.lost.dist for s in self.stages),
            segments=tuple(s.name for s in self.deal_size),
            segment_probs=tuple(s.count / total for s in self.deal_size),
            sizes=tuple(s.size.dist for s in self.deal_size),
            per_rep_day=self.activities.per_rep_day,
            dispersion=self.activities.dispersion,
            rep_sigma=self.activities.rep_sigma,
            opportunity_yield=self.activities.opportunity_yield.mean,
            lag=self.activities.lag.dist,
            marketing_weekly=self.marketing.weekly.mean,
            ramp_months=self.team.ramp_months,
            attrition_monthly=self.team.attrition.mean,
            stall=tuple(s.stall.mean if s.stall is not None else 0.0 for s in self.stages),
            tails=tuple(_tail_point(s.tail) for s in self.stages),
            effects=self._effects(lambda e: tuple(float(x) for x in e.mean)),
            slips=tuple(
                TailParams(0.0, b.won.mean, 0.0, b.won_time.dist, self.slips.lost_time.dist)
                for b in self.slips.buckets
            )
            if self.slips is not None
            else (),
            slip_stage_weight=self.slips.stage_weight if self.slips is not None else 0.0,
        )

    def _effects(self, take) -> tuple[tuple[float, ...], ...]:
        cal = self.calendar
        if cal is None:
            return ()
        return tuple(take(cal.channel(c)) if cal.channel(c) is not None else () for c in CHANNELS)


def _tail_point(tail: StageTail | None) -> TailParams | None:
    if tail is None:
        return None
    pi = tail.stall.mean if tail.stall is not None else 0.0
    return TailParams(
        tail.from_age, min(tail.conversion.mean, 1.0 - pi), pi, tail.advance.dist, tail.lost.dist
    )


def joint_shares(conversion: BetaPosterior, stall: BetaPosterior, rng, size=None):
    """Advanced and never-left shares drawn together from the Dirichlet whose marginals the
    two Betas are (advanced ~ Beta(a, l + s), never left ~ Beta(s, a + l)): the advanced
    share, then the never-left share of the rest, ``(1 − c)·Beta(s, l)``. Two Betas that
    are not such a pair (hand-edited) are drawn apart, the advanced share capped at
    ``1 − π``."""
    a, s = conversion.alpha, stall.alpha
    lost = conversion.beta - s
    c = rng.beta(conversion.alpha, conversion.beta, size)
    if lost > 0 and abs(stall.beta - (a + lost)) <= 1e-9 * (a + lost):
        return c, (1.0 - c) * rng.beta(s, lost, size)
    pi = rng.beta(stall.alpha, stall.beta, size)
    return np.minimum(c, 1.0 - pi), pi


# --- TOML ------------------------------------------------------------------------------------
def _encode(obj):
    """Dataclass tree -> TOML-able dict (distributions as family tables)."""
    if isinstance(obj, Distribution):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return {
            f.name: _encode(getattr(obj, f.name))
            for f in fields(obj)
            if getattr(obj, f.name) is not None
        }  # TOML has no null: absent means None
    if isinstance(obj, (list, tuple)):
        return [_encode(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return obj  # tomli-w writes nan/inf
    return obj


def _tuple2(rows):
    return tuple(tuple(float(x) for x in r) for r in rows)


def _fitted(d: dict) -> Fitted:
    return Fitted(
        dist=from_dict(d["dist"]),
        log_cov=_tuple2(d.get("log_cov", [])),
        n_events=float(d.get("n_events", 0.0)),
        n_censored=float(d.get("n_censored", 0.0)),
        ks=float(d["ks"]) if "ks" in d else None,
        aic={k: float(v) for k, v in d.get("aic", {}).items()},
    )


def _stage(d: dict) -> StageModel:
    return StageModel(
        name=str(d["name"]),
        conversion=BetaPosterior(**d["conversion"]),
        advance=_fitted(d["advance"]),
        lost=_fitted(d["lost"]),
        n_entered=int(d.get("n_entered", 0)),
        n_advanced=int(d.get("n_advanced", 0)),
        n_lost=int(d.get("n_lost", 0)),
        n_open=int(d.get("n_open", 0)),
        stall=BetaPosterior(**d["stall"]) if "stall" in d else None,
        tail=_tail(d["tail"]) if "tail" in d else None,
    )


def _tail(d: dict) -> StageTail:
    return StageTail(
        from_age=float(d["from_age"]),
        conversion=BetaPosterior(**d["conversion"]),
        advance=_fitted(d["advance"]),
        lost=_fitted(d["lost"]),
        stall=BetaPosterior(**d["stall"]) if "stall" in d else None,
        n_at_risk=int(d.get("n_at_risk", 0)),
    )


def _floats(v) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _effects(d: dict) -> PeriodEffects:
    return PeriodEffects(
        periods=tuple(_date(x) for x in d["periods"]),
        mean=_floats(d["mean"]),
        sd=_floats(d.get("sd", ())),
        common=tuple(_floats(r) for r in d.get("common", ())),
        shock_sd=float(d.get("shock_sd", 0.0)),
        trend=float(d.get("trend", 0.0)),
        season=_floats(d.get("season", ())),
        forgetting=float(d.get("forgetting", 1.0)),
        observed=int(d.get("observed", 0)),
    )


def _calendar(d: dict) -> CalendarModel:
    closing = d.get("closing")
    return CalendarModel(
        **{c: _effects(d[c]) for c in CHANNELS if c in d},
        closing=ClosingClock(_floats(closing["won"]), _floats(closing["lost"]))
        if closing is not None
        else None,
    )


def _call_rate(d: dict) -> CallRate:
    return CallRate(
        category=str(d["category"]),
        team=str(d.get("team", "")),
        n=int(d["n"]),
        won=int(d["won"]),
        amount=float(d["amount"]),
        won_amount=float(d["won_amount"]),
        rate=BetaPosterior(**d["rate"]),
        amount_rate=BetaPosterior(**d["amount_rate"]),
        concentration=float(d["concentration"]) if "concentration" in d else None,
    )


def _calls(d: dict) -> CallReliability:
    return CallReliability(
        quarters=int(d["quarters"]),
        min_deals=int(d["min_deals"]),
        naming_level=float(d["naming_level"]),
        categories=tuple(_call_rate(c) for c in d.get("categories", [])),
        teams=tuple(_call_rate(c) for c in d.get("teams", [])),
        reps=tuple(
            RepCall(
                rep=str(r["rep"]),
                team=str(r.get("team", "")),
                category=str(r["category"]),
                n=int(r["n"]),
                won=int(r["won"]),
                rate=BetaPosterior(**r["rate"]),
                team_rate=float(r["team_rate"]),
                call=str(r.get("call", "")),
            )
            for r in d.get("reps", [])
        ),
    )


def model_to_dict(model: Model) -> dict:
    d = _encode(model)
    return {"salesim_model": FORMAT_VERSION, **d}


def model_from_dict(d: dict) -> Model:
    a, t = d["activities"], d["team"]
    return Model(
        as_of=_date(d["as_of"]),
        stages=tuple(_stage(s) for s in d["stages"]),
        cycle=_stage(d["cycle"]),
        deal_size=tuple(
            SegmentSize(str(s["name"]), float(s["count"]), _fitted(s["size"]))
            for s in d["deal_size"]
        ),
        activities=ActivityModel(
            per_rep_day=float(a["per_rep_day"]),
            dispersion=float(a["dispersion"]),
            rep_sigma=float(a["rep_sigma"]),
            log_cov=_tuple2(a.get("log_cov", [])),
            opportunity_yield=BetaPosterior(**a["opportunity_yield"]),
            lag=_fitted(a["lag"]),
            n_rep_days=int(a.get("n_rep_days", 0)),
            observed=bool(a.get("observed", True)),
        ),
        marketing=MarketingModel(
            weekly=GammaPosterior(**d["marketing"]["weekly"]),
            share=float(d["marketing"].get("share", 0.0)),
        ),
        team=TeamModel(
            ramp_months=float(t["ramp_months"]),
            ramp_months_sd=float(t["ramp_months_sd"]),
            attrition=GammaPosterior(**t["attrition"]),
            quota=float(t.get("quota", 0.0)),
            calibrated=bool(t.get("calibrated", False)),
            reps=tuple(
                RepSnapshot(
                    str(r["name"]),
                    _date(r["hired"]),
                    float(r.get("quota", 0.0)),
                    float(r["level"]) if "level" in r else None,
                    float(r["level_sd"]) if "level_sd" in r else None,
                )
                for r in t.get("reps", [])
            ),
        ),
        capacity=CapacityModel(**{k: float(v) for k, v in d.get("capacity", {}).items()}),
        n_opportunities=int(d.get("n_opportunities", 0)),
        source=str(d.get("source", "")),
        notes=tuple(str(x) for x in d.get("notes", [])),
        calendar=_calendar(d["calendar"]) if "calendar" in d else None,
        diagnostics=tuple(str(x) for x in d.get("diagnostics", [])),
        slips=_slips(d["slips"]) if "slips" in d else None,
        calls=_calls(d["calls"]) if "calls" in d else None,
    )


def _slips(d: dict) -> SlipModel:
    return SlipModel(
        offset_days=float(d["offset_days"]),
        buckets=tuple(
            SlipBucket(
                pushes=int(b["pushes"]),
                won=BetaPosterior(**b["won"]),
                won_time=_fitted(b["won_time"]),
                n_deals=float(b.get("n_deals", 0.0)),
                n_won=float(b.get("n_won", 0.0)),
            )
            for b in d["buckets"]
        ),
        lost_time=_fitted(d["lost_time"]),
        stage_weight=float(d.get("stage_weight", 0.0)),
        stage_weight_sd=float(d.get("stage_weight_sd", 0.0)),
    )


def _date(v) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v))


def dumps(model: Model) -> str:
    return tomli_w.dumps(model_to_dict(model))


def loads(text: str, *, file: str = "<model>") -> Model:
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", file=file) from None
    check_model(d, text, file)
    try:  # checked: what fails here is a gap in model_checks
        return model_from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        key = exc.args[0] if isinstance(exc, KeyError) else None
        msg = f"missing key {key!r}" if key else str(exc)
        raise InputError(
            f"not a salesim model file: {msg}",
            file=file,
            expected="a file written by 'salesim calibrate'",
        ) from None


def save(model: Model, path: str | os.PathLike) -> Path:
    """Write the model atomically (temp file + rename)."""
    return write_atomic(path, dumps(model))


def load(path: str | os.PathLike) -> Model:
    p = Path(path)
    if not p.is_file():
        raise InputError("model file not found", file=str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the model file: {exc}",
            file=str(p),
            expected="a UTF-8 TOML file written by 'salesim calibrate'",
        ) from None
    return loads(text, file=str(p))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    The old file stays whole until the rename; on any exception, Ctrl-C or SIGTERM the temp
    file is removed (SIGTERM is turned into ``SystemExit`` while writing, so cleanup runs).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_exits():
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
        try:
            if isinstance(data, bytes):
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            else:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return p


@contextlib.contextmanager
def _sigterm_exits():
    """While the block runs, SIGTERM raises ``SystemExit(143)`` (the default would kill the
    process before ``except``/``finally`` could remove a temp file). Only the main thread may
    set signal handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
