"""Small hand-built models for engine, scenario and round-trip tests."""

from __future__ import annotations

import datetime as dt

from salesim.simulator.distributions import Distribution, Exponential, Fixed
from salesim.simulator.model import (
    ActivityModel,
    BetaPosterior,
    CapacityModel,
    Fitted,
    GammaPosterior,
    MarketingModel,
    Model,
    RepSnapshot,
    SegmentSize,
    StageModel,
    TeamModel,
)


def stage(
    name: str,
    p: float,
    advance: Distribution,
    lost: Distribution,
    n: float = 1e6,
    stall: float | None = None,
) -> StageModel:
    """A stage whose Beta posteriors hold ``n`` pseudo-observations (large n: near-fixed);
    ``stall``: the share that never leaves (None: no stall)."""
    return StageModel(
        name,
        BetaPosterior(p * n, (1 - p) * n),
        Fitted(advance),
        Fitted(lost),
        stall=None if stall is None else BetaPosterior(stall * n, (1 - stall) * n),
    )


def simple_model(
    *,
    stages=None,
    per_rep_day=5.0,
    dispersion=float("inf"),
    rep_sigma=0.0,
    opportunity_yield=0.02,
    lag=Fixed(0.0),
    deal_size=Fixed(10_000.0),
    marketing_weekly=0.0,
    ramp_months=0.0,
    attrition=0.0,
    capacity=CapacityModel(week_hours=40, deal_hours=0.0, free_deals=0, floor=1.0),
    quota=0.0,
    as_of=dt.date(2026, 6, 30),
) -> Model:
    stages = stages or (stage("Qualify", 0.5, Exponential(10.0), Exponential(5.0)),)
    win = 1.0
    for s in stages:
        win *= s.conversion.mean
    cycle = StageModel(
        "created→closed",
        BetaPosterior(win * 1e6, (1 - win) * 1e6 + 1e-9),
        stages[0].advance,
        stages[0].lost,
    )
    big = 1e9
    return Model(
        as_of=as_of,
        stages=tuple(stages),
        cycle=cycle,
        deal_size=(SegmentSize("all", 100.0, Fitted(deal_size)),),
        activities=ActivityModel(
            per_rep_day=per_rep_day,
            dispersion=dispersion,
            rep_sigma=rep_sigma,
            log_cov=(),
            opportunity_yield=BetaPosterior(
                opportunity_yield * big, (1 - opportunity_yield) * big + 1e-9
            ),
            lag=Fitted(lag),
        ),
        marketing=MarketingModel(GammaPosterior(max(marketing_weekly, 1e-12) * big, big)),
        team=TeamModel(
            ramp_months=ramp_months,
            ramp_months_sd=0.0,
            attrition=GammaPosterior(max(attrition, 1e-12) * big, big),
            quota=quota,
            reps=(RepSnapshot("rep1", dt.date(2020, 1, 1), quota),),
        ),
        capacity=capacity,
        n_opportunities=0,
        source="tests.factories",
    )
