"""Shared by the engine test files: hand-built open pipelines, specs, k·SE checks, closed forms."""

import datetime as dt
import math

import numpy as np
import polars as pl

from salesim.simulator.spec import OPEN_DEAL_COLUMNS, Rep, SimSpec

K = 4.0
START = dt.date(2026, 7, 1)  # a Wednesday; Q3 has 92 days


def open_deals(rows) -> pl.DataFrame:
    """rows: (owner, stage, age_days, amount)."""
    return pl.DataFrame(
        [
            {
                "opportunity_id": f"o{i}",
                "owner": o,
                "stage": s,
                "age_days": a,
                "amount": x,
                "segment": "all",
            }
            for i, (o, s, a, x) in enumerate(rows)
        ],
        schema=OPEN_DEAL_COLUMNS,
    )


def spec_for(model, reps=1, *, days=92, deals=None, **kw) -> SimSpec:
    """A quarter from START with ``reps`` experienced reps (or a tuple of Rep), no attrition
    and point parameters unless asked."""
    team = reps if isinstance(reps, tuple) else tuple(Rep(f"rep{i + 1}") for i in range(reps))
    kw.setdefault("attrition", False)
    kw.setdefault("fixed_parameters", True)
    return SimSpec(
        model, team, START, days, open_deals=deals if deals is not None else open_deals([]), **kw
    )


def col(chunk, name):
    return chunk.totals[name].to_numpy().astype(float)


def assert_mean(x, expected, k=K):
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert abs(x.mean() - expected) <= k * se + 1e-9, (x.mean(), expected, se)


def hypoexp_cdf(x, a, b):
    """P(A + B ≤ x) for independent exponentials with means a ≠ b."""
    x = np.maximum(x, 0.0)
    return 1 - (a * np.exp(-x / a) - b * np.exp(-x / b)) / (a - b)
