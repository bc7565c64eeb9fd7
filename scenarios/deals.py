"""The per-deal view behind ``salesim deals``: every open deal's odds from the forecast's run.

One run of the baseline, as ``salesim forecast`` makes it, counts per open deal the trials
in which it is won by the end of the quarter and by the end of the horizon (both engines,
``ChunkResult.deal_wins``), so a deal's P(win) is consistent with the bands: the open
pipeline's expected revenue is the sum of the deals' amount × P(win). Beside the odds, what
the CRM says of each deal (owner, expected close, forecast category, pushes) and risk flags:

- ``old``: older (days since created) than the model's won-cycle P90 (created → won);
- ``pushed``: its expected close date moved later at least ``PUSHED_AT`` times;
- ``inactive``: its last activity more than ``inactive_days`` before the as-of date;
- ``overdue``: its expected close date is on or before the as-of date and it is still open.

A flag the export has no data for is never raised. Deals come sorted by what moves the
quarter most: expected value in the quarter, highest first.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from salesim.history import History
from salesim.results import DealsView
from salesim.simulator.errors import InputError
from salesim.simulator.runner import Progress, default_engine, run
from salesim.simulator.spec import SimSpec

PUSHED_AT = 2  # pushes that make a deal "pushed"
INACTIVE_DAYS = 30  # the default of --inactive-days
FLAGS = ("old", "pushed", "inactive", "overdue")


def deals_view(
    spec: SimSpec,
    history: History,
    as_of: dt.date,
    *,
    trials: int = 10_000,
    seed: int | None = None,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Progress | None = None,
    inactive_days: int = INACTIVE_DAYS,
) -> DealsView:
    """Run ``spec`` (the baseline from ``history`` at ``as_of``) and list its open deals."""
    if isinstance(inactive_days, bool) or not isinstance(inactive_days, int) or inactive_days < 0:
        raise InputError(
            f"--inactive-days must be a whole number of days ≥ 0, got {inactive_days!r}",
            column="--inactive-days",
        )
    engine = engine or default_engine()
    result = run(spec, trials, seed, engine=engine, workers=workers, progress=progress)
    p_quarter, p_horizon = result.deal_odds()
    open_deals = spec.open_deals.with_columns(
        pl.Series("p_win", p_horizon, dtype=pl.Float64),
        pl.Series("p_win_quarter", p_quarter, dtype=pl.Float64),
    )
    cycle_p90 = float(spec.model.cycle.advance.dist.quantile(0.9))
    rows = _rows(open_deals, history.as_of(as_of), as_of, cycle_p90, inactive_days)
    end = spec.start + dt.timedelta(days=spec.days - 1)
    quarter_end = spec.start + dt.timedelta(days=spec.quarter_days - 1)
    notes = list(spec.notes)
    if spec.quarter_days < spec.days:
        notes.append(f"P(win) runs to the horizon's end ({end}), past the quarter's")
    return DealsView(
        {
            "trials": result.trials,
            "seed": result.seed,
            "engine": result.engine,
            "as_of": as_of,
            "start": spec.start,
            "quarter_end": quarter_end,
            "end": end,
            "won_cycle_p90_days": cycle_p90,
            "inactive_days": inactive_days,
            "pushed_at": PUSHED_AT,
            "expected_in_quarter": math.fsum(r["expected_in_quarter"] for r in rows),
            "deals": rows,
            "notes": notes,
        }
    )


def _rows(
    open_deals: pl.DataFrame, h: History, as_of: dt.date, cycle_p90: float, inactive_days: int
) -> list[dict]:
    """One dict per open deal, sorted by expected value in the quarter (highest first)."""
    fields = h.deal_fields.drop("owner")
    crm = h.opportunities.select("opportunity_id", "created", pl.col("stage").alias("crm_stage"))
    df = open_deals.join(crm, on="opportunity_id", how="left", maintain_order="left").join(
        fields, on="opportunity_id", how="left", maintain_order="left"
    )
    for name, dtype in (
        ("expected_close", pl.Date),
        ("forecast_category", pl.String),
        ("last_activity", pl.Date),
        ("pushes", pl.Int64),
    ):
        if name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype).alias(name))
    df = df.with_columns(
        (pl.lit(as_of) - pl.col("created")).dt.total_days().alias("age_days"),
        (pl.col("amount") * pl.col("p_win_quarter")).alias("expected_in_quarter"),
    ).sort(
        ["expected_in_quarter", "amount", "opportunity_id"],
        descending=[True, True, False],
        maintain_order=True,
    )
    flags = {
        "old": pl.col("age_days") > cycle_p90,
        "pushed": pl.col("pushes") >= PUSHED_AT,
        "inactive": (pl.lit(as_of) - pl.col("last_activity")).dt.total_days() > inactive_days,
        "overdue": pl.col("expected_close") <= as_of,
    }
    df = df.with_columns(e.fill_null(False).alias(f"__{k}") for k, e in flags.items())
    return [
        {
            "opportunity_id": r["opportunity_id"],
            "owner": r["owner"],
            "stage": r["crm_stage"],
            "amount": r["amount"],
            "p_win": r["p_win"],
            "p_win_quarter": r["p_win_quarter"],
            "expected_in_quarter": r["expected_in_quarter"],
            "age_days": r["age_days"],
            "expected_close": r["expected_close"],
            "forecast_category": r["forecast_category"],
            "pushes": r["pushes"],
            "last_activity": r["last_activity"],
            "flags": [k for k in FLAGS if r[f"__{k}"]],
        }
        for r in df.iter_rows(named=True)
    ]
