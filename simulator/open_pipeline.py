"""The open pipeline at the start, as both engines read it: one preparation for both.

``SimSpec`` checked the open deals when it was built (stages the model has, ages and amounts
finite and ≥ 0); this turns the pruned deals into arrays (docs/model.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .model import StageModel
from .spec import SimSpec

_ODDS_FLOOR = 1e-4  # win chances are kept inside [1e-4, 1 − 1e-4] before the log odds


@dataclass(frozen=True)
class OpenPipeline:
    """Open deals after pruning: stage index, age in stage, amount, owner seat (-1: none);
    with a slip model, the bucket of pushes of each deal its expected close date times
    (-1: none; docs/model.md §6c) and the scale of its times (days to the date, at least 0,
    plus the model's offset). Such a deal is in the last stage at age 0: its next advance is
    its win."""

    stage: np.ndarray
    age: np.ndarray
    amount: np.ndarray
    owner: np.ndarray
    row: np.ndarray  # its row among the spec's open deals before pruning: its stream
    slip: np.ndarray
    scale: np.ndarray
    odds: np.ndarray  # ``win_odds`` at its stage and age before it was moved (0: untimed)

    @property
    def n(self) -> int:
        return len(self.stage)

    @staticmethod
    def from_spec(spec: SimSpec) -> OpenPipeline:
        """The spec's open deals after ``prune_stale_days``, as arrays."""
        df = spec.open_pipeline()
        stages = {name: i for i, name in enumerate(spec.model.stage_names)}
        stage = np.array([stages[name] for name in df["stage"].to_list()], dtype=np.int64)
        age = df["age_days"].cast(pl.Float64).to_numpy().astype(float)
        amount = df["amount"].cast(pl.Float64).to_numpy().astype(float)
        # Deals of owners not on the team at day 0 are reassigned there (spec.initial_owners);
        # -1: nobody was on the team, the deal belongs to no seat.
        row = np.arange(spec.open_deals.height)
        if spec.levers.prune_stale_days is not None:
            kept = spec.open_deals["age_days"].cast(pl.Float64).to_numpy()
            row = row[kept <= spec.levers.prune_stale_days]
        slip, scale = _slips(spec, df)
        timed = slip >= 0
        odds = np.where(timed, win_odds(spec.model.stages, stage, age), 0.0)
        stage[timed] = len(stages) - 1
        age[timed] = 0.0
        owner = spec.initial_owners(df)
        return OpenPipeline(stage, age, amount, owner, row.astype(np.int64), slip, scale, odds)


def slip_chance(q, weight, odds):
    """P(won) of a deal the slip model times (§6c): its bucket's ``q`` with ``weight`` × the
    stage model's log odds ``odds`` added to its log odds. Plain arithmetic on floats or
    arrays, so the compiled loop computes it the same way."""
    q = np.minimum(np.maximum(q, 1e-12), 1 - 1e-12)
    return 1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + weight * odds)))


def win_odds(stages: tuple[StageModel, ...], stage: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Log odds that deals in ``stage`` (indices) at ``age`` days there end won, by the stage
    model's point estimates (§6 without tails or quarter effects, then every later stage's
    conversion): what a deal's stage and age say, beside its expected close date (§6c)."""
    p = np.array([s.conversion.mean for s in stages])
    pi = np.array([s.stall.mean if s.stall is not None else 0.0 for s in stages])
    p = np.minimum(p, 1.0 - pi)
    later = np.append(np.cumprod(p[::-1])[::-1][1:], 1.0)  # Π of the conversions after s
    chance = np.zeros(stage.size)
    for s in np.unique(stage):
        i = np.flatnonzero(stage == s)
        adv = p[s] * stages[s].advance.dist.sf(age[i])
        gone = (1 - p[s] - pi[s]) * stages[s].lost.dist.sf(age[i])
        total = adv + gone + pi[s]
        chance[i] = np.where(total > 0, adv / np.where(total > 0, total, 1.0), 0.0) * later[s]
    chance = np.clip(chance, _ODDS_FLOOR, 1 - _ODDS_FLOOR)
    return np.log(chance / (1 - chance))


def _slips(spec: SimSpec, df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's bucket of pushes (-1: not timed by its date) and time scale (§6c)."""
    slips = spec.model.slips
    none = (np.full(df.height, -1, dtype=np.int64), np.ones(df.height))
    if slips is None or "days_to_close" not in df.columns:
        return none
    days = df["days_to_close"].cast(pl.Float64).to_numpy().astype(float)
    pushes = (
        df["pushes"].fill_null(0).cast(pl.Int64).to_numpy()
        if "pushes" in df.columns
        else np.zeros(df.height, dtype=np.int64)
    )
    dated = np.isfinite(days)
    bucket = np.where(dated, np.minimum(pushes, len(slips.buckets) - 1), -1).astype(np.int64)
    scale = np.where(dated, np.maximum(np.nan_to_num(days), 0.0) + slips.offset_days, 1.0)
    return bucket, scale
