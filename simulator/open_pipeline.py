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
    """Open deals after pruning: stage index, age in stage, amount, owner seat (-1: none)."""

    stage: np.ndarray
    age: np.ndarray
    amount: np.ndarray
    owner: np.ndarray
    row: np.ndarray  # its row among the spec's open deals before pruning: its stream

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
        return OpenPipeline(stage, age, amount, spec.initial_owners(df), row.astype(np.int64))
