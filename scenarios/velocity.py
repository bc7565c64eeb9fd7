"""The sales-velocity equation, the rule of thumb reported beside every simulated uplift.

    velocity (revenue per day) = opportunities in pipeline × win rate × deal size / cycle length

It is a steady-state identity: no quarter boundary, no open pipeline that is already old, no
ramp, no lag between an activity and the deal it creates. So it credits a lever with its full
long-run effect at once. The simulation sees what happens inside the quarter; the gap between
the two is the point of showing both (docs/scenarios.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from salesim.simulator.spec import Levers, SimSpec

WORKING_SHARE = 5 / 7  # activities happen Monday–Friday


@dataclass(frozen=True)
class Velocity:
    """The equation's four terms for a baseline (point estimates of the model)."""

    opportunities: float  # in the pipeline at steady state (= created per day × cycle)
    win_rate: float  # P(a new deal is won): the product of stage conversions
    deal_size: float  # mean amount of a new deal
    cycle_days: float  # mean days from creation to a win (sum of stage advance means)
    outbound_share: float  # share of new opportunities that come from reps' prospecting

    @property
    def per_day(self) -> float:
        return self.opportunities * self.win_rate * self.deal_size / self.cycle_days

    def revenue(self, days: float) -> float:
        """What the equation expects to close in ``days``."""
        return self.per_day * days


def baseline_velocity(spec: SimSpec) -> Velocity:
    p = spec.model.point()
    sizes = sum(w * d.mean for w, d in zip(p.segment_probs, p.sizes))
    cycle = sum(d.mean for d in p.advance) or 1.0
    outbound, marketing = _flows(spec)
    flow = outbound + marketing
    return Velocity(
        opportunities=flow * cycle,
        win_rate=math.prod(p.conversion),
        deal_size=sizes,
        cycle_days=cycle,
        outbound_share=outbound / flow if flow > 0 else 1.0,
    )


def _flows(spec: SimSpec) -> tuple[float, float]:
    """Opportunities per calendar day: (outbound from all seats, marketing)."""
    p = spec.model.point()
    load = spec.open_deals.height / len(spec.reps)
    share = float(spec.capacity.share(load))
    outbound = len(spec.reps) * p.per_rep_day * p.opportunity_yield * WORKING_SHARE * share
    return outbound, p.marketing_weekly / 7


def velocity_factor(spec: SimSpec, levers: Levers, added_reps: int = 0) -> float | None:
    """Revenue ratio (strategy / baseline) that the equation predicts.

    Terms: prospecting, yield and extra reps scale outbound opportunities (reps pro rata,
    whatever their start date or ramp); marketing scales marketing opportunities; win rate
    and deal size multiply; cycle time divides. ``deal_hours`` changes the prospecting share
    at the baseline's average open-deal load. Pruning stale deals has no term in the
    equation: None.
    """
    if levers.prune_stale_days is not None:
        return None
    base_yield = spec.model.point().opportunity_yield
    yield_mult = min(levers.opportunity_yield, 1 / base_yield) if base_yield > 0 else 1.0
    outbound_mult = levers.prospecting * yield_mult * (len(spec.reps) + added_reps) / len(spec.reps)
    if levers.deal_hours is not None:
        load = spec.open_deals.height / len(spec.reps)
        old = float(spec.capacity.share(load))
        new_cap = dataclasses.replace(spec.capacity, deal_hours=levers.deal_hours)
        outbound_mult *= float(new_cap.share(load)) / old if old > 0 else 1.0
    outbound, marketing = _flows(spec)
    flow = outbound + marketing
    if flow <= 0:
        opp = 1.0
    else:
        opp = (outbound * outbound_mult + marketing * levers.marketing_pipeline) / flow
    return opp * levers.win_rate * levers.deal_size / levers.cycle_time
