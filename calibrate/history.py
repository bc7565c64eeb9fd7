"""CRM history in the canonical shape that every calibrator reads (docs/formats.md).

Readers (``calibrate.ingest``) turn CSV/Parquet exports into a ``History``; ``History.as_of``
cuts it back to what was known on a date, so nothing after that date can leak into a fit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

# Canonical column types after ingestion (optional columns are always present, maybe null).
OPPORTUNITY_COLUMNS = {
    "opportunity_id": pl.String,
    "owner": pl.String,
    "created": pl.Date,
    "stage": pl.String,      # current stage if open, else last stage reached
    "status": pl.String,     # open | won | lost
    "closed": pl.Date,       # null iff open
    "amount": pl.Float64,    # ≥ 0; expected amount for open and lost deals
    "segment": pl.String,    # "all" when the export has none
    "source": pl.String,     # e.g. marketing | outbound; null when unknown
}
# Read only when the export has them (docs/formats.md): the CRM's win probability as a
# fraction in [0, 1], its forecast category, and an open deal's expected close date.
OPTIONAL_OPPORTUNITY_COLUMNS = {"probability": pl.Float64, "forecast_category": pl.String,
                                "expected_close": pl.Date}
STAGE_HISTORY_COLUMNS = {"opportunity_id": pl.String, "stage": pl.String, "entered": pl.Date}
ACTIVITY_COLUMNS = {"owner": pl.String, "date": pl.Date, "kind": pl.String, "count": pl.Int64}
REP_COLUMNS = {"owner": pl.String, "hired": pl.Date, "left": pl.Date, "quota": pl.Float64}

STATUSES = ("open", "won", "lost")


@dataclass(frozen=True)
class History:
    """Validated CRM history. Frames follow the ``*_COLUMNS`` schemas above."""

    opportunities: pl.DataFrame
    stages: tuple[str, ...]                     # stage order, first to last
    stage_history: pl.DataFrame | None = None
    activities: pl.DataFrame | None = None
    reps: pl.DataFrame | None = None
    source: str = ""                            # where it was read from
    notes: tuple[str, ...] = field(default=())  # warnings raised while reading
    # Where ``stages``' order comes from: "given" (a profile or --stages), "stage history"
    # (inferred from it), or "first seen" (no order: labels in the order they appear).
    stage_order: str = "first seen"

    @property
    def has_stage_history(self) -> bool:
        return self.stage_history is not None and self.stage_history.height > 0

    @property
    def last_date(self) -> dt.date:
        """The latest date anywhere in the history (default as-of date)."""
        dates = [self.opportunities["created"].max(), self.opportunities["closed"].max()]
        if self.stage_history is not None:
            dates.append(self.stage_history["entered"].max())
        if self.activities is not None:
            dates.append(self.activities["date"].max())
        return max(d for d in dates if d is not None)

    def as_of(self, date: dt.date) -> "History":
        """The history as it stood at the end of ``date`` (see ``calibrate.ingest.cut``)."""
        from .ingest import cut

        return cut(self, date)
