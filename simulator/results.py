"""What engines return, and the summaries every report is built from.

Both engines return a ``ChunkResult`` for a chunk of trials; the runner concatenates chunks
(in chunk order, so the number of workers never changes the numbers) into a ``SimResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

# One row per trial. Money in the model's currency; counts are deals.
TOTAL_COLUMNS = {
    "trial": pl.Int64,
    "revenue": pl.Float64,           # won revenue inside the horizon
    "revenue_open": pl.Float64,      # ... from deals open at the start
    "revenue_new": pl.Float64,       # ... from deals created in the horizon
    "wins": pl.Int64,
    "wins_open": pl.Int64,
    "wins_new": pl.Int64,
    "losses": pl.Int64,
    "open_start": pl.Int64,          # open deals at the start (after pruning)
    "created": pl.Int64,             # opportunities created in the horizon
    "pipeline_created": pl.Float64,  # their amount
    "activities": pl.Int64,
    "open_end": pl.Int64,            # open deals at the end
    "pipeline_end": pl.Float64,      # their amount
}


@dataclass(frozen=True)
class ChunkResult:
    """A chunk of trials from one engine.

    ``weekly[i, w]``: cumulative won revenue of trial i at the end of week w.
    ``rep_revenue[i, r]``: won revenue credited to seat r (spec.reps order; a backfill is
    credited to the seat it fills). ``events``: engine events processed (benchmarks).
    """

    totals: pl.DataFrame
    weekly: np.ndarray
    rep_revenue: np.ndarray
    events: int = 0

    @staticmethod
    def concat(chunks: list["ChunkResult"]) -> "ChunkResult":
        return ChunkResult(
            totals=pl.concat([c.totals for c in chunks]),
            weekly=np.concatenate([c.weekly for c in chunks]),
            rep_revenue=np.concatenate([c.rep_revenue for c in chunks]),
            events=sum(c.events for c in chunks),
        )


def band(values, quantiles=(0.1, 0.5, 0.9)) -> dict:
    """``{mean, std, p10, p50, p90}`` of a sample."""
    v = np.asarray(values, dtype=float)
    out = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    for q, x in zip(quantiles, np.quantile(v, quantiles)):
        out[f"p{round(q * 100)}"] = float(x)
    return out


@dataclass(frozen=True)
class SimResult:
    """All trials of one run, with the seed and engine that made them."""

    engine: str
    seed: int                       # SeedSequence entropy: rerun with it to reproduce
    trials: int
    quota: float | None             # team quota for the horizon (None: none given)
    rep_names: tuple[str, ...]
    rep_quotas: tuple[float, ...]
    chunks: ChunkResult
    extra: dict = field(default_factory=dict)

    @property
    def totals(self) -> pl.DataFrame:
        return self.chunks.totals
