"""Per-trial parameters as arrays, for the vectorised engine.

The one home of the posterior draw (``draw_model``): ``n`` trials at once, one array per
field, because drawing ten thousand parameter sets in a Python loop would cost more than
simulating the trials. One trial (the SimPy engine's) is the one-row case:
``ParamArrays.trial(0)`` of ``draw_model(model, 1, rng)`` turns the row back into a
``TrialParams``, consuming the stream exactly as the row does. The levers act on these
arrays too (``simulator.levers``).

A ``DistArray`` is one distribution family with per-trial parameters; the vectorised engine
packs them into arrays for its compiled loop (``compiled_dists.pack``). Its sampling and
conditioning methods go through the ``simulator.distributions`` classes themselves, built
with array fields (scipy broadcasts them), so they are the NumPy reference the compiled
maths is tested against (tests/test_compiled_dists.py). Only ``Empirical`` with per-trial
weights (a Dirichlet draw) needs its own vectorised quantile and residual.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .calendar import CHANNELS
from .distributions import Distribution, Empirical
from .model import Fitted, Model, SlipModel, StageTail, TailParams, TrialParams, joint_shares


@dataclass(frozen=True)
class DistArray:
    """One family; ``params[i]`` (parametric) or ``weights[i]`` (empirical) for trial i.

    ``None`` means every trial uses ``template`` as it is (no parameter uncertainty).
    """

    template: Distribution
    params: np.ndarray | None = None  # (n, len(param_names)) parametric families
    weights: np.ndarray | None = None  # (n, len(values)) Empirical probabilities

    @property
    def is_empirical(self) -> bool:
        return isinstance(self.template, Empirical)

    @property
    def empirical(self) -> Empirical:
        """The template as the ``Empirical`` it is whenever ``weights`` are set."""
        if not isinstance(self.template, Empirical):
            raise TypeError(f"per-trial weights need an Empirical template, not {self.template}")
        return self.template

    @property
    def shared(self) -> bool:
        """The same distribution in every trial (no per-trial parameters)."""
        return self.params is None and self.weights is None

    # --- per-trial values ----------------------------------------------------------------
    def trial(self, i: int) -> Distribution:
        """Trial ``i``'s distribution as a plain scalar value."""
        if self.params is not None:
            return self.template.with_params(self.params[i])
        if self.weights is not None:
            return self.empirical.with_weights(self.weights[i])
        return self.template

    def at(self, ti: np.ndarray) -> Distribution:
        """A distribution whose parameters are arrays aligned with the trial indices ``ti``."""
        if self.params is None:
            return self.template
        p = self.params[ti]
        return dataclasses.replace(
            self.template, **{name: p[:, j] for j, name in enumerate(self.template.param_names)}
        )

    def scaled(self, factor: float) -> "DistArray":
        """Every trial's distribution of ``factor × T`` (``Distribution.scaled``)."""
        template = self.template.scaled(factor)
        if self.params is None:
            return DistArray(template, None, self.weights)
        # scaled() is linear in each parameter: read the per-parameter factors off a probe.
        probe = self.template.with_params(np.ones(len(self.template.param_names)))
        return DistArray(template, self.params * probe.scaled(factor).params(), None)

    # --- sampling -----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, ti: np.ndarray) -> np.ndarray:
        """One draw per entry of ``ti`` from that trial's distribution."""
        n = len(ti)
        if n == 0:
            return np.zeros(0)
        if self.weights is None:
            x = np.asarray(self.at(ti).sample(rng, n), dtype=float)
            return x if x.shape == (n,) else np.broadcast_to(x, (n,)).copy()
        d = self.empirical
        x = np.asarray(d.values, dtype=float)[_row_quantile(self.weights, ti, rng.random(n))]
        if d.jitter:
            x = np.maximum(x + rng.uniform(-d.jitter, d.jitter, n), 0.0)
        return x

    def from_uniform(self, u: np.ndarray, ti: np.ndarray) -> np.ndarray:
        """Inverse-CDF draws (``Distribution.from_uniform``), uniform ``u[j]`` under trial
        ``ti[j]``'s distribution: a scaled distribution keeps every draw's rank."""
        n = len(ti)
        if n == 0:
            return np.zeros(0)
        if self.weights is None:
            x = np.asarray(self.at(ti).from_uniform(u), dtype=float)
            return x if x.shape == (n,) else np.broadcast_to(x, (n,)).copy()
        d = self.empirical
        w = self.weights[ti]
        idx = _row_quantile(self.weights, ti, u)
        x = np.asarray(d.values, dtype=float)[idx]
        if d.jitter:
            # As Empirical.from_uniform: u's position inside its step spreads the jitter.
            cum = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)
            rows = np.arange(n)
            hi = cum[rows, idx]
            step = w[rows, idx] / w.sum(axis=1)
            within = np.clip((u - (hi - step)) / np.where(step > 0, step, 1.0), 0.0, 1.0)
            x = np.maximum(x + d.jitter * (2 * within - 1), 0.0)
        return x

    def sf(self, x: np.ndarray, ti: np.ndarray) -> np.ndarray:
        if self.weights is None:
            return np.broadcast_to(np.asarray(self.at(ti).sf(x), dtype=float), np.shape(x))
        v = np.asarray(self.empirical.values, dtype=float)
        return (self.weights[ti] * (v > np.asarray(x)[:, None])).sum(axis=1)

    def residual(self, u: np.ndarray, age: np.ndarray, ti: np.ndarray) -> np.ndarray:
        """Remaining time ``T - age`` given ``T > age`` (``Distribution.residual``)."""
        if len(ti) == 0:
            return np.zeros(0)
        if not self.is_empirical:
            return np.broadcast_to(self.at(ti).residual(u, age), np.shape(u)).astype(float)
        d = self.empirical
        v = np.asarray(d.values, dtype=float)
        w = (
            self.weights[ti]
            if self.weights is not None
            else np.broadcast_to(d._probs(), (len(ti), v.size))
        )
        keep = w * (v > age[:, None])
        cum = np.cumsum(keep, axis=1)
        total = cum[:, -1]
        # First value whose cumulative mass reaches u × total (searchsorted, side="left").
        idx = np.minimum((cum < (u * total)[:, None]).sum(axis=1), v.size - 1)
        return np.where(total > 0, np.maximum(v[idx] - age, 0.0), 0.0)


def _row_quantile(probs: np.ndarray, ti: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the first value whose cumulative probability (row ``ti``) reaches ``u``."""
    n_rows, k = probs.shape
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    # Offsetting row r by r makes the flattened table increasing: one searchsorted for all.
    flat = (cum + np.arange(n_rows)[:, None]).ravel()
    pos = np.searchsorted(flat, u + ti, side="left") - ti * k
    return np.clip(pos, 0, k - 1)


def draw_dist(fitted: Fitted, n: int, rng: np.random.Generator) -> DistArray:
    """``n`` independent ``Fitted.draw`` results as one ``DistArray``."""
    d, x = fitted.dist, fitted.draw_params(rng, n)
    if x is None:
        return DistArray(d)
    return DistArray(d, None, x) if isinstance(d, Empirical) else DistArray(d, x)


@dataclass(frozen=True)
class TailArrays:
    """``TailParams`` for ``n`` trials."""

    from_age: float
    conversion: np.ndarray
    stall: np.ndarray
    advance: DistArray
    lost: DistArray

    def trial(self, i: int) -> TailParams:
        return TailParams(
            self.from_age,
            float(self.conversion[i]),
            float(self.stall[i]),
            self.advance.trial(i),
            self.lost.trial(i),
        )

    @staticmethod
    def repeat(t: TailParams, n: int) -> "TailArrays":
        return TailArrays(
            t.from_age,
            np.full(n, t.conversion),
            np.full(n, t.stall),
            DistArray(t.advance),
            DistArray(t.lost),
        )


def draw_tail(tail: StageTail, n: int, rng: np.random.Generator) -> TailArrays:
    """``n`` draws of a tail: its shares (conversion, then stall if any), then its two
    durations."""
    if tail.stall is None:
        c, pi = tail.conversion.draw(rng, n), np.zeros(n)
    else:
        c, pi = joint_shares(tail.conversion, tail.stall, rng, n)
    return TailArrays(
        tail.from_age,
        np.minimum(c, 1.0 - pi),
        pi,
        draw_dist(tail.advance, n, rng),
        draw_dist(tail.lost, n, rng),
    )


@dataclass(frozen=True)
class ParamArrays:
    """``TrialParams`` for ``n`` trials: scalars become arrays of length ``n``."""

    n: int
    conversion: np.ndarray  # (n, S)
    advance: tuple[DistArray, ...]
    lost: tuple[DistArray, ...]
    segments: tuple[str, ...]
    segment_probs: np.ndarray  # (n, G)
    sizes: tuple[DistArray, ...]
    per_rep_day: np.ndarray
    dispersion: np.ndarray
    rep_sigma: float
    opportunity_yield: np.ndarray
    lag: DistArray
    marketing_weekly: np.ndarray
    ramp_months: np.ndarray
    attrition_monthly: np.ndarray
    stall: np.ndarray | None = None  # (n, S) P(stall) per stage; None: zeros
    tails: tuple[TailArrays | None, ...] = ()  # per stage; (): none
    effects: tuple[np.ndarray | None, ...] = ()  # per channel: (n, quarters); (): none
    slips: tuple[TailArrays, ...] = ()  # per bucket of pushes (docs/model.md §6c); (): none
    slip_stage_weight: np.ndarray | None = None  # (n,); None: zeros

    def __post_init__(self):
        if self.stall is None:
            object.__setattr__(self, "stall", np.zeros_like(self.conversion))
        if not self.tails:
            object.__setattr__(self, "tails", (None,) * self.conversion.shape[1])
        if not self.effects:
            object.__setattr__(self, "effects", (None,) * len(CHANNELS))

    def effect(self, channel: str) -> np.ndarray | None:
        return self.effects[CHANNELS.index(channel)]

    @staticmethod
    def repeat(p: TrialParams, n: int) -> "ParamArrays":
        """The same parameter set for all ``n`` trials (fixed parameters)."""

        def full(x):
            return np.full(n, float(x))

        return ParamArrays(
            n=n,
            conversion=np.tile(np.asarray(p.conversion, dtype=float), (n, 1)),
            advance=tuple(DistArray(d) for d in p.advance),
            lost=tuple(DistArray(d) for d in p.lost),
            segments=p.segments,
            segment_probs=np.tile(np.asarray(p.segment_probs, dtype=float), (n, 1)),
            sizes=tuple(DistArray(d) for d in p.sizes),
            per_rep_day=full(p.per_rep_day),
            dispersion=full(p.dispersion),
            rep_sigma=float(p.rep_sigma),
            opportunity_yield=full(p.opportunity_yield),
            lag=DistArray(p.lag),
            marketing_weekly=full(p.marketing_weekly),
            ramp_months=full(p.ramp_months),
            attrition_monthly=full(p.attrition_monthly),
            stall=np.tile(np.asarray(p.stall, dtype=float).reshape(1, -1), (n, 1)),
            tails=tuple(None if t is None else TailArrays.repeat(t, n) for t in p.tails),
            effects=tuple(
                np.tile(np.asarray(e, dtype=float), (n, 1)) if e else None for e in p.effects
            ),
            slips=tuple(TailArrays.repeat(t, n) for t in p.slips),
            slip_stage_weight=full(p.slip_stage_weight),
        )

    def head(self, n: int) -> "ParamArrays":
        """The first ``n`` trials."""

        def cut(x):
            if isinstance(x, DistArray):
                return DistArray(
                    x.template,
                    None if x.params is None else x.params[:n],
                    None if x.weights is None else x.weights[:n],
                )
            if isinstance(x, TailArrays):
                return TailArrays(
                    x.from_age, x.conversion[:n], x.stall[:n], cut(x.advance), cut(x.lost)
                )
            if isinstance(x, tuple):
                return tuple(cut(v) for v in x)
            return x[:n] if isinstance(x, np.ndarray) else x

        return dataclasses.replace(
            self,
            n=n,
            **{
                f.name: cut(getattr(self, f.name))
                for f in dataclasses.fields(self)
                if f.name != "n"
            },
        )

    def trial(self, i: int) -> TrialParams:
        """Row ``i`` as a ``TrialParams`` (tests compare it with the scalar code)."""
        assert self.stall is not None  # __post_init__ fills it
        return TrialParams(
            conversion=tuple(float(x) for x in self.conversion[i]),
            advance=tuple(d.trial(i) for d in self.advance),
            lost=tuple(d.trial(i) for d in self.lost),
            segments=self.segments,
            segment_probs=tuple(float(x) for x in self.segment_probs[i]),
            sizes=tuple(d.trial(i) for d in self.sizes),
            per_rep_day=float(self.per_rep_day[i]),
            dispersion=float(self.dispersion[i]),
            rep_sigma=self.rep_sigma,
            opportunity_yield=float(self.opportunity_yield[i]),
            lag=self.lag.trial(i),
            marketing_weekly=float(self.marketing_weekly[i]),
            ramp_months=float(self.ramp_months[i]),
            attrition_monthly=float(self.attrition_monthly[i]),
            stall=tuple(float(x) for x in self.stall[i]),
            tails=tuple(None if t is None else t.trial(i) for t in self.tails),
            effects=tuple(() if e is None else tuple(float(x) for x in e[i]) for e in self.effects),
            slips=tuple(t.trial(i) for t in self.slips),
            slip_stage_weight=float(self.slip_stage_weight[i])
            if self.slip_stage_weight is not None
            else 0.0,
        )


def draw_model(model: Model, n: int, rng: np.random.Generator) -> ParamArrays:
    """``n`` draws from the calibration posterior, in a fixed order of draws (docs/model.md §1).

    Stall shares are drawn after every other parameter, and only for stages that have one,
    so a model without stalls consumes exactly the draws it always did; then tails and
    quarter effects, likewise, then the slip model (per bucket of pushes P(won) and the time
    to win, then the time to lose). A draw of ``p_s`` above ``1 − π_s`` is capped there.
    """
    a = model.activities
    rate, disp = a.draw(rng, n)
    shares = rng.dirichlet([max(s.count, 1e-9) for s in model.deal_size], n)
    conversion = (
        np.column_stack([s.conversion.draw(rng, n) for s in model.stages])
        if model.stages
        else np.zeros((n, 0))
    )
    t = model.team
    p = ParamArrays(
        n=n,
        conversion=conversion,
        advance=tuple(draw_dist(s.advance, n, rng) for s in model.stages),
        lost=tuple(draw_dist(s.lost, n, rng) for s in model.stages),
        segments=tuple(s.name for s in model.deal_size),
        segment_probs=shares,
        sizes=tuple(draw_dist(s.size, n, rng) for s in model.deal_size),
        per_rep_day=rate,
        dispersion=disp,
        rep_sigma=a.rep_sigma,
        opportunity_yield=a.opportunity_yield.draw(rng, n),
        lag=draw_dist(a.lag, n, rng),
        marketing_weekly=model.marketing.weekly.draw(rng, n),
        ramp_months=np.maximum(0.0, rng.normal(t.ramp_months, t.ramp_months_sd, n)),
        attrition_monthly=t.attrition.draw(rng, n),
    )
    # Stall shares, then tails and quarter effects, only where the model has them.
    if any(s.stall is not None for s in model.stages):
        stall = np.column_stack(
            [s.stall.draw(rng, n) if s.stall is not None else np.zeros(n) for s in model.stages]
        )
        p = dataclasses.replace(p, stall=stall, conversion=np.minimum(conversion, 1.0 - stall))
    if any(s.tail is not None for s in model.stages):
        p = dataclasses.replace(
            p,
            tails=tuple(
                None if s.tail is None else draw_tail(s.tail, n, rng) for s in model.stages
            ),
        )
    cal = model.calendar
    if cal is not None:
        p = dataclasses.replace(
            p,
            effects=tuple(
                None if (effects := cal.channel(c)) is None else effects.draw(rng, n)
                for c in CHANNELS
            ),
        )
    if model.slips is not None:
        buckets, weight = draw_slips(model.slips, n, rng)
        p = dataclasses.replace(p, slips=buckets, slip_stage_weight=weight)
    return p


def draw_slips(
    slips: SlipModel, n: int, rng: np.random.Generator
) -> tuple[tuple[TailArrays, ...], np.ndarray]:
    """``n`` draws of the slip model, each bucket as a tail from age 0 with no stall: per
    bucket P(won) then its time to win; then the one time to lose, shared by the buckets;
    then the stage weight (normal)."""
    won = [(b.won.draw(rng, n), draw_dist(b.won_time, n, rng)) for b in slips.buckets]
    lost = draw_dist(slips.lost_time, n, rng)
    weight = rng.normal(slips.stage_weight, slips.stage_weight_sd, n)
    return tuple(TailArrays(0.0, q, np.zeros(n), time, lost) for q, time in won), weight
