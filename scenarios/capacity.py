"""What it takes to hit a number: the fewest extra reps, or the starting pipeline coverage,
that make P(revenue ≥ target) reach a confidence.

Every candidate runs with the same seed (common random numbers), so P(target) moves only
because of the candidate, and is monotone in practice. The headcount search brackets the
answer by doubling and then bisects, so it costs O(log n) runs, never one run per candidate;
because bisection ends with neighbours ``n - 1`` (misses) and ``n`` (meets), the answer is
minimal for the seed used. Coverage needs a single run (see ``solve_coverage``). P(target)
carries a Wilson interval for its Monte Carlo error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Callable

import numpy as np
import polars as pl

from salesim.results import CapacityAnswer
from salesim.simulator.errors import InputError
from salesim.simulator.limits import MAX_REPS
from salesim.simulator.results import QUANTILES, qname, wilson
from salesim.simulator.spec import DAYS_PER_MONTH, SimSpec

from .baseline import quarter_end, quarter_start
from .compare import per_trial, run_spec, shared_executor
from .scenario import Hire, default_rep_quota, hire_reps


# --- the search ---------------------------------------------------------------------------------
def default_max_reps(team: int) -> int:
    """The largest team the headcount search tries unless told: room for five times the
    team, and twenty seats for a team that is tiny or empty."""
    return 5 * team + 20


def most_runs(team: int, max_reps: int | None = None) -> int:
    """An upper bound on the headcount search's runs (``minimal_count`` doubles, then
    bisects, then the answer's neighbour): what a progress bar is sized by."""
    extra = (max_reps if max_reps is not None else default_max_reps(team)) - team
    return 2 * math.ceil(math.log2(max(extra, 1) + 1)) + 1


def minimal_count(
    meets: Callable[[int], bool], *, lo: int, hi: int, start: int | None = None
) -> int | None:
    """The smallest integer ``n`` in ``[lo, hi]`` with ``meets(n)``, for ``meets`` monotone.

    Tries ``lo``, then ``start`` (default ``lo + 1``) and doubles the distance from ``lo``
    until one meets (or ``hi`` fails: None), then bisects. When ``n > lo``, ``meets(n - 1)``
    has been evaluated and was False.
    """
    if hi < lo:
        raise ValueError("empty search range")
    if meets(lo):
        return lo
    bad = lo
    k = min(max(start if start is not None else lo + 1, lo + 1), hi)
    while not meets(k):
        bad = k
        if k >= hi:
            return None
        k = min(lo + 2 * (k - lo), hi)
    good = k
    while good - bad > 1:
        mid = (good + bad) // 2
        if meets(mid):
            good = mid
        else:
            bad = mid
    return good


class _Probe:
    """Runs one candidate per call (same seed each time) and remembers what it saw."""

    def __init__(
        self, make_spec: Callable[[int], SimSpec], target: float, confidence: float, run_kw: dict
    ):
        self.make_spec, self.target, self.confidence = make_spec, target, confidence
        self.run_kw = run_kw
        self.seen: dict[int, dict] = {}

    def __call__(self, n: int) -> bool:
        return self.point(n)["p_target"] >= self.confidence

    def point(self, n: int) -> dict:
        if n not in self.seen:
            spec = self.make_spec(n)
            t = per_trial(run_spec(spec, **self.run_kw))
            hits = int(np.sum(t["revenue"] >= self.target))
            trials = t["revenue"].size
            self.seen[n] = {
                "spec": spec,
                "p_target": hits / trials,
                "interval": wilson(hits, trials),
                "revenue_mean": float(t["revenue"].mean()),
                "revenue": _quantiles(t["revenue"]),
                "pipeline_created": float(t["pipeline_created"].mean()),
            }
        return self.seen[n]


def _quantiles(revenue: np.ndarray) -> dict:
    """``revenue_p10``/``p50``/``p90`` of a candidate's quarter revenue (the curve's table)."""
    return {
        f"revenue_{qname(q)}": float(v) for q, v in zip(QUANTILES, np.quantile(revenue, QUANTILES))
    }


def _check(target: float, confidence: float, trials: int):
    if not (target > 0 and math.isfinite(target)):
        raise InputError(f"target must be a positive amount, got {target}", column="target")
    if not 0 < confidence < 1:
        raise InputError(
            f"confidence must be between 0 and 1, got {confidence}",
            column="confidence",
            expected="e.g. 0.8",
        )
    if trials < 10:
        raise InputError(f"need at least 10 trials, got {trials}", column="trials")


# --- quota capacity ---------------------------------------------------------------------------
def ramped_quota(spec: SimSpec) -> float:
    """Quota capacity: each seat's quarterly quota, earned day by day (1/days-in-quarter a
    day) while it sells, scaled by its ramp and expected survival.

    A seat counts from its start day, ramps linearly (the model's ramp, point estimate) and,
    with attrition on, is weighted by its probability of still being there. Backfills are not
    counted, so with backfill on this slightly understates capacity. A full quarter of a
    ramped seat is exactly its quota; a longer horizon earns more quarters' worth.
    """
    days = np.arange(spec.days, dtype=float)
    dates = [spec.start + dt.timedelta(days=int(d)) for d in days]
    per_day = np.array([1.0 / ((quarter_end(x) - quarter_start(x)).days + 1) for x in dates])
    ramp_months = spec.model.team.ramp_months
    hazard = spec.model.team.attrition.mean / DAYS_PER_MONTH if spec.attrition else 0.0
    total = 0.0
    for r in spec.reps:
        since = days - r.start_day
        tenure = (r.tenure_days + np.maximum(since, 0)) / DAYS_PER_MONTH
        ramp = np.clip(tenure / ramp_months, 0, 1) if ramp_months > 0 else np.ones_like(days)
        alive = np.exp(-hazard * np.maximum(since, 0))
        total += r.quota * float(np.sum(np.where(since >= 0, per_day * ramp * alive, 0.0)))
    return total


def open_pipeline_amount(spec: SimSpec) -> float:
    deals = spec.open_pipeline()
    return float(deals["amount"].sum()) if deals.height else 0.0


# --- headcount --------------------------------------------------------------------------------
def solve_headcount(
    spec: SimSpec,
    target: float,
    *,
    confidence: float = 0.8,
    hire_date: dt.date | None = None,
    max_reps: int | None = None,
    quota_per_rep: float | None = None,
    trials: int = 2000,
    seed: int = 0,
    engine=None,
    workers: int | None = 1,
    progress=None,
    executor=None,
    source: str = "",
) -> CapacityAnswer:
    """The fewest extra reps, all starting on ``hire_date`` (default: the first day), such
    that P(revenue ≥ target) ≥ confidence: the answer behind ``salesim capacity --json``;
    ``headcount`` is None when even ``max_reps`` (total seats) does not reach it. ``source``
    names the scenario file the plan came from (empty for a model).
    """
    _check(target, confidence, trials)
    team = len(spec.reps)
    max_reps = max_reps if max_reps is not None else default_max_reps(team)
    if not team <= max_reps <= MAX_REPS:
        raise InputError(
            f"--max-reps {max_reps} is not allowed",
            column="max_reps",
            expected=f"from the current {team} seats to {MAX_REPS:,}",
        )
    quota = default_rep_quota(spec) if quota_per_rep is None else quota_per_rep
    base = dataclasses.replace(spec, quota=target)
    hire_reps(base, [Hire(1, hire_date, quota)], column="hire_date")  # check before any run

    def make(n: int) -> SimSpec:
        added = hire_reps(base, [Hire(n, hire_date, quota)], prefix="capacity-hire")
        return dataclasses.replace(base, reps=base.reps + added)

    from salesim.simulator.runner import default_engine

    engine = engine or default_engine()
    with shared_executor(workers, executor) as pool:
        probe = _Probe(
            make,
            target,
            confidence,
            {
                "trials": trials,
                "seed": seed,
                "engine": engine,
                "workers": workers,
                "progress": progress,
                "executor": pool,
            },
        )
        n = minimal_count(probe, lo=0, hi=max_reps - team)
        at = probe.point(n if n is not None else max_reps - team)
    cap = ramped_quota(at["spec"])
    open_amount = open_pipeline_amount(spec)
    curve = [
        {
            "headcount": team + k,
            "additional_reps": k,
            "p_target": v["p_target"],
            "lo": v["interval"][0],
            "hi": v["interval"][1],
            "quota_capacity": ramped_quota(v["spec"]),
            **v["revenue"],
        }
        for k, v in sorted(probe.seen.items())
    ]
    below = probe.seen.get(n - 1) if n else None
    out = {
        "solve": "headcount",
        "target": target,
        "confidence": confidence,
        "headcount": team + n if n is not None else None,
        "additional_reps": n,
        "reachable": n is not None,
        "p_target": at["p_target"],
        "p_target_interval": list(at["interval"]),
        "p_target_one_fewer": below["p_target"] if below else None,
        "curve": curve,
        "team_now": team,
        "max_reps": max_reps,
        "hire_date": (hire_date or spec.start).isoformat(),
        "quota_per_rep": quota,
        "quota_capacity": cap,
        "quota_to_capacity": target / cap if cap > 0 else None,
        "pipeline_coverage": {
            "start": open_amount / target,
            "created": at["pipeline_created"] / target,
            "total": (open_amount + at["pipeline_created"]) / target,
        },
        "revenue_mean": at["revenue_mean"],
        "trials": trials,
        "seed": seed,
        "engine": engine,
        "runs": len(probe.seen),
    }
    return _answer(spec, out, source)


# --- starting pipeline coverage ---------------------------------------------------------------
def coverage_thresholds(revenue_open, revenue_rest, target: float) -> np.ndarray:
    """Per trial, the smallest scale ``s`` of the open pipeline's value with
    ``s·revenue_open + revenue_rest ≥ target`` (0 if met without it, inf if never)."""
    o = np.asarray(revenue_open, float)
    need = target - np.asarray(revenue_rest, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(need <= 0, 0.0, np.where(o > 0, need / o, np.inf))
    return t


def solve_coverage(
    spec: SimSpec,
    *,
    confidence: float = 0.8,
    quota: float | None = None,
    max_coverage: float = 10.0,
    trials: int = 2000,
    seed: int = 0,
    engine=None,
    workers: int | None = 1,
    progress=None,
    executor=None,
    source: str = "",
) -> CapacityAnswer:
    """The smallest open pipeline at the start, as a multiple of quota (coverage), such that
    P(revenue ≥ quota) ≥ confidence.

    Coverage is changed by scaling the value of every open deal (same deals, stages, ages and
    owners, so rep load is unchanged). Deal amounts drive no random draw, so with common
    random numbers each trial's revenue is exactly ``closed + new + s × open``: one run gives
    P(target) at every scale, the answer is exact for the seed, and a second run at the answer
    checks it.
    """
    quota = float(quota) if quota is not None else spec.team_quota
    _check(quota, confidence, trials)
    deals = spec.open_pipeline()
    amount_now = float(deals["amount"].sum()) if deals.height else 0.0
    if amount_now <= 0:
        raise InputError(
            "--solve coverage needs an open pipeline at the start",
            column="history",
            expected="a scenario or --history with open deals",
        )
    now = amount_now / quota
    base = dataclasses.replace(spec, quota=quota)
    from salesim.simulator.runner import default_engine

    engine = engine or default_engine()
    run_kw = {"engine": engine, "workers": workers, "progress": progress}
    with shared_executor(workers, executor) as pool:
        t = per_trial(run_spec(base, trials, seed, executor=pool, **run_kw))
        thresholds = np.sort(
            coverage_thresholds(t["revenue_open"], t["revenue"] - t["revenue_open"], quota)
        )
        k = math.ceil(confidence * trials - 1e-9)
        scale = float(thresholds[k - 1]) * (1 + 1e-9)  # k trials meet it, k - 1 just below
        reachable = math.isfinite(scale) and scale * now <= max_coverage
        check = None
        if reachable:
            scaled = dataclasses.replace(
                base, open_deals=deals.with_columns(pl.col("amount") * scale)
            )
            check = per_trial(run_spec(scaled, trials, seed, executor=pool, **run_kw))
    hits = (
        int(np.sum(check["revenue"] >= quota))
        if check
        else int(np.sum(thresholds <= max_coverage / now))
    )
    grid = np.linspace(0.0, max(2.0 * (scale if reachable else 1.0), 1.5), 31) * now
    curve = []
    for c in grid:
        h = int(np.sum(thresholds <= c / now))
        lo, hi = wilson(h, trials)
        curve.append(
            {
                "coverage": float(c),
                "p_target": h / trials,
                "lo": lo,
                "hi": hi,
                **_quantiles(t["revenue"] + (c / now - 1) * t["revenue_open"]),
            }
        )
    lo, hi = wilson(hits, trials)
    out = {
        "solve": "coverage",
        "target": quota,
        "confidence": confidence,
        "coverage": scale * now if reachable else None,
        "pipeline": scale * amount_now if reachable else None,
        "scale": scale if reachable else None,
        "reachable": reachable,
        "coverage_now": now,
        "open_deals_now": deals.height,
        "p_target": hits / trials,
        "p_target_interval": [lo, hi],
        "p_target_now": float(np.mean(thresholds <= 1.0)),
        "curve": curve,
        "headcount": len(spec.reps),
        "quota_capacity": ramped_quota(spec),
        "max_coverage": max_coverage,
        "trials": trials,
        "seed": seed,
        "engine": engine,
        "runs": 2 if reachable else 1,
    }
    return _answer(spec, out, source)


def _answer(spec: SimSpec, out: dict, source: str) -> CapacityAnswer:
    """The answer with where its plan came from and the plan's notes."""
    return CapacityAnswer({**out, "source": source, "notes": list(spec.notes)}, start=spec.start)
