"""Histories whose forecast calls convert at a known rate (tests/test_categories.py).

Every quarter from ``FIRST`` to the quarter before ``AS_OF``'s, each rep makes ``CALLS[c]``
calls in category ``c``: deals created before the quarter, expected to close in it, put in
``c`` when created. Each is won inside the quarter with probability ``truth(rep, c)``; else
it is lost, in the quarter or up to 60 days after. A share of pipeline calls is moved to
commit mid-quarter (a later category must not count for the call made at the start). Hal
over-calls commit; Tiny made only a few commits, all lost. The current quarter's calls are
still open at ``AS_OF``: the censoring that must not count as losses.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from salesim.history import (
    CATEGORY_CHANGE_COLUMNS,
    OPPORTUNITY_COLUMNS,
    OPTIONAL_OPPORTUNITY_COLUMNS,
    TEAM_COLUMNS,
    History,
)
from salesim.simulator.calendar import add_quarters, quarter_end

FIRST = dt.date(2024, 1, 1)
AS_OF = dt.date(2026, 2, 14)  # 45 days into Q1 2026
QUARTERS = 8  # 2024 Q1 … 2025 Q4, all ended by AS_OF
RATES = {"commit": 0.75, "best_case": 0.4, "pipeline": 0.15, "omitted": 0.03}
CALLS = {"commit": 6, "best_case": 8, "pipeline": 12, "omitted": 4}
HOT_REP, HOT_RATE = "Hal", 0.35  # Hal's commits: well below the team's
TEAMS = {
    "Ann": ("Hal", "Ada", "Abe", "Amy"),
    "Bob": ("Ben", "Bea", "Bo", "Bud"),
}
THIN_REP, THIN_CALLS = "Tiny", 3  # Ann's, one quarter of three commits, all lost
UPGRADED = 0.3  # pipeline calls moved to commit mid-quarter


def truth(rep: str, category: str) -> float:
    return HOT_RATE if rep == HOT_REP and category == "commit" else RATES[category]


def team_of(rep: str) -> str:
    return next(t for t, reps in TEAMS.items() if rep in reps or rep == THIN_REP and t == "Ann")


def history(seed: int = 0) -> History:
    """The full history (outcomes after ``AS_OF`` included: cut it with ``as_of``)."""
    rng = np.random.default_rng(seed)
    deals: list[dict] = []
    changes: list[dict] = []
    reps = [r for team in TEAMS.values() for r in team]
    for q in range(QUARTERS + 1):  # the last one: the current quarter, open at AS_OF
        start = add_quarters(FIRST, q)
        end = quarter_end(start)
        length = (end - start).days + 1
        for rep in reps + [THIN_REP]:
            for category, n in CALLS.items():
                if rep == THIN_REP:
                    if q != 2 or category != "commit":
                        continue
                    n = THIN_CALLS
                for _ in range(n):
                    i = len(deals)
                    created = start - dt.timedelta(days=int(rng.integers(5, 60)))
                    expected = start + dt.timedelta(days=int(rng.integers(0, length)))
                    won = rep != THIN_REP and rng.random() < truth(rep, category)
                    if won:
                        closed = start + dt.timedelta(days=int(rng.integers(0, length)))
                    else:
                        closed = start + dt.timedelta(days=int(rng.integers(0, length + 60)))
                    oid = f"D{i:05d}"
                    deals.append(
                        {
                            "opportunity_id": oid,
                            "owner": rep,
                            "created": created,
                            "stage": "Open",
                            "status": "won" if won else "lost",
                            "closed": closed,
                            "amount": float(rng.lognormal(np.log(20_000), 0.8)),
                            "segment": "all",
                            "source": None,
                            "forecast_category": "closed" if won else "omitted",
                            "expected_close": None,
                        }
                    )
                    changes.append(_change(oid, created, category, None, expected))
                    if category == "pipeline" and rng.random() < UPGRADED:
                        moved = start + dt.timedelta(days=20)
                        if moved < closed:
                            changes.append(_change(oid, moved, "commit", category, expected))
    o = pl.DataFrame(
        deals, schema={**OPPORTUNITY_COLUMNS, **OPTIONAL_OPPORTUNITY_COLUMNS}, strict=False
    ).select(*OPPORTUNITY_COLUMNS, "forecast_category", "expected_close")
    cats = pl.DataFrame(changes).select(*CATEGORY_CHANGE_COLUMNS)
    expected = pl.DataFrame(changes).select("opportunity_id", pl.col("expected").alias("__e"))
    o = (
        o.join(expected.unique("opportunity_id", keep="first"), on="opportunity_id", how="left")
        .with_columns(pl.col("__e").alias("expected_close"))
        .drop("__e")
    )
    teams = pl.DataFrame(
        [{"owner": r, "manager": team_of(r)} for r in reps + [THIN_REP]],
        schema={"owner": pl.String, "manager": pl.String},
    ).with_columns(
        pl.lit(None, pl.String).alias("region"), pl.lit(None, pl.String).alias("segment")
    )
    return History(
        opportunities=o,
        stages=("Open",),
        source="call_truth",
        category_changes=cats.cast(CATEGORY_CHANGE_COLUMNS),  # type: ignore[arg-type]
        teams=teams.select(*TEAM_COLUMNS),
    )


def _change(oid: str, day: dt.date, category: str, previous: str | None, expected) -> dict:
    return {
        "opportunity_id": oid,
        "changed": day,
        "forecast_category": category,
        "previous": previous,
        "expected": expected,
    }


def expected_rate(category: str, team: str | None = None) -> tuple[float, int]:
    """The true share won in quarter of the measured calls (their mix of reps), and their
    number: what the estimates should recover."""
    weights = []
    for t, reps in TEAMS.items():
        if team is not None and t != team:
            continue
        weights += [(truth(r, category), CALLS[category] * QUARTERS) for r in reps]
    if category == "commit" and team in (None, "Ann"):
        weights.append((0.0, THIN_CALLS))
    n = sum(w for _, w in weights)
    return sum(p * w for p, w in weights) / n, n
