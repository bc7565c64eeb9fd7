"""The open pipeline at the start, as both engines read it: one preparation for both.

``SimSpec`` checked the open deals when it was built (stages the model has, ages and amounts
finite and ≥ 0); this turns the pruned deals into arrays (docs/model.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .spec import SimSpec


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
        stage[timed] = len(stages) - 1
        age[timed] = 0.0
        owner = spec.initial_owners(df)
        return OpenPipeline(stage, age, amount, owner, row.astype(np.int64), slip, scale)


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
