"""Levers: a strategy's changes to the baseline, and the one rule that applies them.

docs/scenarios.md says what each lever means. ``Levers.apply`` is written once, over the
per-trial parameter arrays (``simulator.vector_params``); one trial is its one-row case.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import overload

import numpy as np

from .errors import InputError
from .model import TrialParams
from .vector_params import ParamArrays, TailArrays


@dataclass(frozen=True)
class Levers:
    """Changes to the baseline; every default is neutral (docs/scenarios.md).

    - ``prospecting``: × activity volume.      - ``opportunity_yield``: × activity→opportunity.
    - ``win_rate``: × overall win rate, spread evenly over stages (p_s × m^(1/S), capped at
      1 − π_s: a stalled share stays stalled; an old deal's tail share alike).
    - ``deal_size``: × new deals' size.         - ``cycle_time``: × every stage duration.
    - ``marketing_pipeline``: × marketing-sourced arrivals.
    - ``deal_hours``: hours per open deal per week (None: the model's).
    - ``prune_stale_days``: drop open deals older than this in their stage at the start.
    """

    prospecting: float = 1.0
    opportunity_yield: float = 1.0
    win_rate: float = 1.0
    deal_size: float = 1.0
    cycle_time: float = 1.0
    marketing_pipeline: float = 1.0
    deal_hours: float | None = None
    prune_stale_days: float | None = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v)) or v < 0:
                raise InputError(
                    f"lever {f.name} must be a finite number ≥ 0, got {v!r}", column=f.name
                )
        if self.cycle_time == 0:
            raise InputError("lever cycle_time must be > 0", column="cycle_time")

    @property
    def neutral(self) -> bool:
        return self == Levers()

    @overload
    def apply(self, p: ParamArrays) -> ParamArrays: ...
    @overload
    def apply(self, p: TrialParams) -> TrialParams: ...
    def apply(self, p: ParamArrays | TrialParams) -> ParamArrays | TrialParams:
        """The parameters with the levers applied (identity when neutral): written once, over
        the arrays of many trials; one trial's ``TrialParams`` goes through as a one-row
        ``ParamArrays``, so the SimPy and vectorised engines cannot apply them differently."""
        if self.neutral:
            return p
        if isinstance(p, TrialParams):
            return self.apply(ParamArrays.repeat(p, 1)).trial(0)
        m = self.win_rate ** (1.0 / max(p.conversion.shape[1], 1))
        scale = self.cycle_time
        assert p.stall is not None  # ParamArrays.__post_init__ fills it
        return dataclasses.replace(
            p,
            conversion=np.minimum(1.0 - p.stall, p.conversion * m),
            advance=tuple(d.scaled(scale) for d in p.advance) if scale != 1 else p.advance,
            lost=tuple(d.scaled(scale) for d in p.lost) if scale != 1 else p.lost,
            sizes=tuple(d.scaled(self.deal_size) for d in p.sizes)
            if self.deal_size != 1
            else p.sizes,
            per_rep_day=p.per_rep_day * self.prospecting,
            opportunity_yield=np.minimum(1.0, p.opportunity_yield * self.opportunity_yield),
            marketing_weekly=p.marketing_weekly * self.marketing_pipeline,
            tails=tuple(lever_tail(t, m, scale) for t in p.tails),
        )


def lever_tail(
    tail: TailArrays | None, win_rate_factor: float, cycle_time: float
) -> TailArrays | None:
    """An old-deal tail with the win-rate lever's per-stage factor (capped at ``1 − π``, as a
    stage's) and the cycle-time lever applied; None stays None."""
    if tail is None:
        return None
    scaled = cycle_time != 1
    return dataclasses.replace(
        tail,
        conversion=np.minimum(1.0 - tail.stall, tail.conversion * win_rate_factor),
        advance=tail.advance.scaled(cycle_time) if scaled else tail.advance,
        lost=tail.lost.scaled(cycle_time) if scaled else tail.lost,
    )
