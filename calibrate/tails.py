"""Old open deals: how deals that stay long in a stage really end (docs/model.md §6b).

A fitted duration family is shaped by the bulk of the deals; for a deal already older than
most closes, its outcome is an extrapolation of the family's tail. The history says more
directly what became of such deals: the Aalen–Johansen estimate (``durations.aalen_johansen``,
as lifelines' ``AalenJohansenFitter`` computes it) conditional on still being in the stage at
an age. ``fit_tail`` keeps that estimate for ages from the stage's ``TAIL_QUANTILE`` of
closing times on, when enough deals were still there and what became of them differs from
what the fitted curves say (the share that later advanced, by more than ``Z`` standard
errors); the engines draw old open deals' outcomes from it. Where the two agree the fitted
curves are kept: they are as right and less noisy.
"""

from __future__ import annotations

import numpy as np

from salesim.simulator.distributions import Empirical
from salesim.simulator.model import BetaPosterior, Fitted, StageModel, StageTail

from .durations import (
    ADVANCE,
    CENSORED,
    HALF,
    LOST,
    Durations,
    _dist_sf,
    _empirical,
    aalen_johansen,
)

TAIL_QUANTILE = 0.75  # the slowest quarter of closes is where a family extrapolates
MIN_AT_RISK = 30  # deals still in the stage at that age, for the tail to speak
MIN_EVENTS = 5  # closes after that age
Z = 2.0  # standard errors between observed and fitted before the tail is kept


def conditional_outcomes(obs: Durations, age: float):
    """Of the entries still in the stage after ``age`` days (``T > age``): the share that
    later advanced, that were later lost, and that were still there after the last close of
    the history (the plateau), from the Aalen–Johansen estimate; and how many were at risk.
    Also the event days after ``age`` with each outcome's cumulative-incidence increments."""
    days, cif_a, cif_l, at_risk = aalen_johansen(obs)
    before = days <= age  # events at or before ``age`` (days are whole)
    s_age = 1.0 - (cif_a[before][-1] + cif_l[before][-1] if before.any() else 0.0)
    inc_a = np.diff(np.concatenate([[0.0], cif_a]))
    inc_l = np.diff(np.concatenate([[0.0], cif_l]))
    after = ~before
    n = float(obs.count[obs.t > age].sum())  # in the stage after ``age`` (whole days)
    if s_age <= 0 or n == 0:
        return 0.0, 0.0, 1.0, 0.0, days[after], inc_a[after], inc_l[after]
    p_a = float(inc_a[after].sum() / s_age)
    p_l = float(inc_l[after].sum() / s_age)
    return p_a, p_l, max(1.0 - p_a - p_l, 0.0), n, days[after], inc_a[after], inc_l[after]


def shares_posterior(p_a: float, p_l: float, plateau: float, n: float, stall: bool):
    """The posterior of the (advanced, lost, never left) shares among ``n`` deals: Dirichlet
    with a flat prior (an approximation: censoring makes the effective number smaller, and
    is ignored), stored as its two marginals — advanced ~ Beta(a, l + s), never left ~
    Beta(s, a + l) — from which the posterior draw (``vector_params.draw_model``) draws the
    shares jointly. Without ``stall`` the plateau is lost and the shares are Beta(a, l)."""
    a, l, s = 1.0 + p_a * n, 1.0 + p_l * n, 1.0 + plateau * n
    if not stall:
        return BetaPosterior(a, l + plateau * n), None
    return BetaPosterior(a, l + s), BetaPosterior(s, a + l)


def _outcome(days, inc, n_total) -> Fitted:
    empirical = _empirical(days, np.cumsum(inc), n_total)
    if empirical is None:  # never happens after the age: any value, it has no weight
        empirical = Empirical((float(days[-1]) if days.size else 1.0,), (1.0,), HALF)
    return Fitted(empirical)


def fit_tail(obs: Durations) -> tuple[StageTail | None, str | None]:
    """The observed tail of one stage, or None (and why) when the history is too thin."""
    closed = (obs.kind == ADVANCE) | (obs.kind == LOST)
    if obs.count[closed].sum() < MIN_EVENTS:
        return None, None
    t, w = obs.t[closed], obs.count[closed]
    order = np.argsort(t)
    cum = np.cumsum(w[order]) / w.sum()
    age = float(t[order][np.searchsorted(cum, TAIL_QUANTILE)])
    p_a, p_l, plateau, n, days, inc_a, inc_l = conditional_outcomes(obs, age)
    later = float(obs.count[closed & (obs.t > age)].sum())
    if n < MIN_AT_RISK or later < MIN_EVENTS:
        return None, (
            f"{n:.0f} deals were still in the stage after {age:.0f} days and "
            f"{later:.0f} closed later: too few for an observed tail"
        )
    conversion, stall = shares_posterior(
        p_a, p_l, plateau, n, plateau > 1e-6 and obs.n(CENSORED) > 0
    )
    tail = StageTail(
        from_age=age + HALF,
        conversion=conversion,
        advance=_outcome(days, inc_a, obs.n_total),
        lost=_outcome(days, inc_l, obs.n_total),
        stall=stall,
        n_at_risk=int(n),
    )
    return tail, None


def fitted_share(stage: StageModel, age: float) -> float:
    """What the fitted curves say: P(advances later | still in the stage after ``age``)."""
    pi = stage.stall.mean if stage.stall is not None else 0.0
    p = min(stage.conversion.mean, 1 - pi)
    s_a = float(_dist_sf(stage.advance.dist, np.array([age]))[0])
    s_l = float(_dist_sf(stage.lost.dist, np.array([age]))[0])
    denom = p * s_a + (1 - p - pi) * s_l + pi
    return p * s_a / denom if denom > 0 else 0.0


def departs(stage: StageModel, tail: StageTail) -> tuple[bool, float]:
    """Whether the tail's share that later advanced differs from the fitted curves' by more
    than ``Z`` standard errors (binomial over the deals still there), and that share."""
    fitted = fitted_share(stage, tail.from_age)
    seen = tail.conversion.mean
    se = np.sqrt(max(seen * (1 - seen), 1 / tail.n_at_risk) / tail.n_at_risk)
    return abs(seen - fitted) > Z * se, fitted


def with_tail(stage: StageModel, obs: Durations) -> tuple[StageModel, list[str]]:
    """``stage`` with its observed tail (if the history supports one and it departs from
    the fitted curves) and a note."""
    tail, why = fit_tail(obs)
    if tail is None:
        return stage, ([f"stage {stage.name!r}: no observed tail ({why})"] if why else [])
    differs, _ = departs(stage, tail)
    if not differs:
        return stage, []
    return (
        StageModel(**{**stage.__dict__, "tail": tail}),
        [
            f"stage {stage.name!r}: deals older than {tail.from_age:.0f} days end as observed "
            f"({tail.n_at_risk} were: {tail.conversion.mean:.0%} advanced later"
            + (f", {tail.stall.mean:.0%} never left" if tail.stall else "")
            + ")"
        ],
    )
