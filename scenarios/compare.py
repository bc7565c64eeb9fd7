"""Compare strategies against the baseline with common random numbers.

Every strategy runs with the baseline's seed, so trial i of a strategy and trial i of the
baseline share the draws of every purpose the strategy does not change (docs/model.md §0):
their difference is mostly the strategy's effect, not luck. The uplift is therefore a
*paired* difference, reported two ways that answer different questions:

- ``uplift``: its mean (the expected uplift, parameter uncertainty included) with a 90%
  Monte Carlo interval for that mean (how well the trials pin the mean down; it shrinks as
  trials grow);
- ``uplift_trials``: the spread of the per-trial differences, P10/P50/P90, and the share of
  trials the strategy wins, P(uplift > 0) (how sure one quarter's gain is; it does not
  shrink with more trials).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Mapping

import numpy as np

from salesim.results import Comparison
from salesim.simulator.errors import InputError
from salesim.simulator.results import band
from salesim.simulator.spec import Levers, SimSpec
from salesim.simulator.units import short_money

from .scenario import Strategy, apply_strategy, strategy_from_items
from .velocity import baseline_velocity, velocity_factor

# Levers that only change deals created inside the horizon (deal_size scales new deals only).
NEW_PIPELINE_LEVERS = (
    "prospecting",
    "opportunity_yield",
    "marketing_pipeline",
    "deal_size",
    "deal_hours",
)
Z90 = 1.6448536269514722  # two-sided 90% normal quantile


def run_spec(
    spec: SimSpec, trials: int, seed: int, *, engine=None, workers=1, progress=None, executor=None
):
    """One run through the shared runner."""
    from salesim.simulator.runner import default_engine, run

    return run(
        spec,
        trials,
        seed,
        engine=engine or default_engine(),
        workers=workers,
        progress=progress,
        executor=executor,
    )


@contextlib.contextmanager
def shared_executor(workers: int | None, executor=None):
    """One pool of worker processes for all the runs of a comparison or search (spawning
    workers per run would cost more than small runs do); serial for one worker. The
    executor of an enclosing ``runner.using_executor`` block (the CLI's ``--executor``) is
    the one way a caller chooses where runs go without passing it to every call."""
    from salesim.simulator.runner import scoped_executor

    executor = executor if executor is not None else scoped_executor()
    if executor is not None or workers == 1:
        yield executor
        return
    from salesim.simulator.runner import ProcessExecutor

    pool = ProcessExecutor(workers)
    try:
        yield pool
    finally:
        pool.close()


def fresh_seed() -> int:
    """Fresh entropy, reported so the comparison can be rerun (every run shares it)."""
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)  # drawn fresh: an int (a given one may be a sequence)
    return entropy


def per_trial(result) -> dict[str, np.ndarray]:
    """Per-trial totals in trial order (the pairing key). ``revenue`` is the quarter's
    revenue (closed to date + won in the horizon), as forecasts and P(quota) count it."""
    order = np.argsort(result.totals["trial"].to_numpy(), kind="stable")
    out = {c: result.column(c)[order] for c in result.totals.columns if c != "trial"}
    out["revenue"] = result.quarter_revenue()[order]
    return out


def _revenue(v: np.ndarray) -> dict:
    b = band(v)
    return {k: b[k] for k in ("mean", "p10", "p50", "p90")}


def _p_quota(v: np.ndarray, quota: float | None) -> float | None:
    return float(np.mean(v >= quota)) if quota else None


def paired_uplift(strategy: np.ndarray, baseline: np.ndarray) -> dict:
    """Mean of the per-trial differences with its 90% interval (mean ± 1.645 SE of the
    paired difference); ``p5``/``p95`` give the spread of single trials."""
    d = np.asarray(strategy, float) - np.asarray(baseline, float)
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
    mean = float(d.mean())
    p5, p95 = np.quantile(d, [0.05, 0.95])
    return {
        "mean": mean,
        "lo": mean - Z90 * se,
        "hi": mean + Z90 * se,
        "se": se,
        "p5": float(p5),
        "p95": float(p95),
        "p_positive": _share_positive(d),
    }


def uplift_spread(strategy: np.ndarray, baseline: np.ndarray) -> dict:
    """P10/P50/P90 of the per-trial differences and P(difference > 0): what one quarter's
    gain can be, as opposed to the mean's Monte Carlo interval in ``paired_uplift``."""
    d = np.asarray(strategy, float) - np.asarray(baseline, float)
    p10, p50, p90 = (float(q) for q in np.quantile(d, [0.1, 0.5, 0.9]))
    return {"p10": p10, "p50": p50, "p90": p90, "p_positive": _share_positive(d)}


def _share_positive(d: np.ndarray) -> float:
    """P(uplift > 0): a tie (the strategy changed nothing in that trial) is not a gain."""
    return float(np.mean(d > 0))


def as_strategy(name: str, value, cost: float | None = None, *, model=None) -> Strategy:
    """A ``Strategy`` from a ``Strategy``, ``Levers`` or a dict of levers in scenario form
    (``{"prospecting": 1.2}`` or ``{"win_rate": "+5pp", "headcount": "+2@2026-11-02"}``)."""
    if isinstance(value, Strategy):
        st = value if value.name == name else dataclasses.replace(value, name=name)
    elif isinstance(value, Levers):
        st = Strategy(name, value)
    elif isinstance(value, Mapping):

        def fail(key, exc):
            raise InputError(
                f"strategy {name!r}: {exc}", column=str(key), expected=exc.expected
            ) from None

        st = strategy_from_items(name, value, model=model, on_error=fail)
    else:
        raise InputError(
            f"strategy {name!r}: expected Levers, a dict of levers or a Strategy, "
            f"got {type(value).__name__}",
            column=name,
        )
    if cost is not None:
        st = dataclasses.replace(st, cost=float(cost))
    if not st.given:
        st = dataclasses.replace(
            st,
            given=tuple(
                (k, f"{v:g}" if isinstance(v, float) else str(v))
                for k, v in st.lever_dict().items()
            ),
        )
    return st


def compare_levers(
    spec: SimSpec,
    levers_by_name: Mapping[str, object],
    trials: int,
    seed: int,
    *,
    costs: Mapping[str, float] | None = None,
    quota: float | None = None,
    engine=None,
    workers: int | None = 1,
    progress=None,
    executor=None,
) -> Comparison:
    """Run the baseline and each strategy with the same seed and compare them.

    ``levers_by_name`` maps a name to ``Levers``, a dict of levers as a scenario's strategy
    table writes them, or a ``Strategy`` (which may add reps). ``costs`` maps names to money.
    Returns the ``Comparison`` behind ``salesim compare --json`` (docs/scenarios.md).
    """
    costs = costs or {}
    strategies = [
        as_strategy(n, v, costs.get(n), model=spec.model) for n, v in levers_by_name.items()
    ]
    return compare(
        spec,
        strategies,
        trials=trials,
        seed=seed,
        quota=quota,
        engine=engine,
        workers=workers,
        progress=progress,
        executor=executor,
    )


def compare(
    spec: SimSpec,
    strategies,
    *,
    trials: int,
    seed: int,
    quota: float | None = None,
    engine=None,
    workers: int | None = 1,
    progress=None,
    executor=None,
    source: str = "",
) -> Comparison:
    """Baseline and ``strategies`` (``Strategy`` objects), all with ``seed``; see
    ``compare_levers``. ``quota`` defaults to the spec's team quota; ``source`` names the
    scenario file the plan came from (empty for a model)."""
    if not strategies:
        raise InputError(
            "nothing to compare: give at least one strategy",
            column="strategies",
            expected="[strategies.NAME] tables or --lever NAME=VALUE",
        )
    names = [s.name for s in strategies]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"strategy {dupes[0]!r} is named twice", column="strategies")
    if trials < 2:
        raise InputError(f"need at least 2 trials, got {trials}", column="trials")
    quota = float(quota) if quota is not None else (spec.team_quota or None)
    base_spec = dataclasses.replace(spec, quota=quota) if quota else spec
    specs = [apply_strategy(base_spec, s) for s in strategies]  # validate all before running

    from salesim.simulator.runner import default_engine

    engine = engine or default_engine()
    with shared_executor(workers, executor) as pool:

        def go(sp):
            return per_trial(
                run_spec(
                    sp,
                    trials,
                    seed,
                    engine=engine,
                    workers=workers,
                    progress=progress,
                    executor=pool,
                )
            )

        base = go(base_spec)
        runs = [go(sp) for sp in specs]
    out = summarise(base_spec, strategies, base, runs, trials=trials, seed=seed, quota=quota)
    out["engine"] = engine
    out["source"] = source
    out["notes"] = list(spec.notes) + out["notes"]  # the plan's first, then the comparison's
    return Comparison(out)


def summarise(
    spec: SimSpec,
    strategies,
    base: dict,
    runs: list[dict],
    *,
    trials: int,
    seed: int,
    quota: float | None,
) -> dict:
    """The comparison document from per-trial totals (see ``per_trial``)."""
    vel = baseline_velocity(spec)
    # the equation scales what the horizon wins (closed-to-date revenue is already banked)
    base_mean = float((base["revenue_open"] + base["revenue_new"]).mean())
    rows = []
    for st, r in zip(strategies, runs):
        up = paired_uplift(r["revenue"], base["revenue"])
        factor = velocity_factor(spec, st.levers, sum(h.count for h in st.hires))
        rows.append(
            {
                "name": st.name,
                "levers": st.lever_dict(),
                "given": st.label(),
                "cost": st.cost,
                "revenue": _revenue(r["revenue"]),
                "p_quota": _p_quota(r["revenue"], quota),
                "uplift": up,
                "uplift_trials": uplift_spread(r["revenue"], base["revenue"]),
                "uplift_open": float((r["revenue_open"] - base["revenue_open"]).mean()),
                "uplift_new": float((r["revenue_new"] - base["revenue_new"]).mean()),
                "uplift_per_cost": up["mean"] / st.cost if st.cost else None,
                "velocity": {
                    "factor": factor,
                    "uplift": base_mean * (factor - 1) if factor is not None else None,
                },
            }
        )
    order = sorted(range(len(rows)), key=lambda i: -rows[i]["uplift"]["mean"])
    for rank, i in enumerate(order, start=1):
        rows[i]["rank"] = rank
    ranked = [rows[i] for i in order]
    notes = _timing_notes(spec, strategies, rows, base, vel)
    notes += _separation_notes([strategies[i] for i in order], [runs[i] for i in order])
    best, best_by = _best(ranked)
    return {
        "trials": trials,
        "seed": seed,
        "start": spec.start.isoformat(),
        "days": spec.days,
        "quota": quota,
        "baseline": {
            "revenue": _revenue(base["revenue"]),
            "p_quota": _p_quota(base["revenue"], quota),
            "revenue_open": float(base["revenue_open"].mean()),
            "revenue_new": float(base["revenue_new"].mean()),
            "pipeline_created": float(base["pipeline_created"].mean()),
        },
        "strategies": ranked,
        "best": best,
        "best_by": best_by,
        "velocity": {
            **dataclasses.asdict(vel),
            "per_day": vel.per_day,
            "revenue": vel.revenue(spec.days),
        },
        "notes": notes,
    }


def _best(ranked: list[dict]) -> tuple[str, str]:
    """Largest mean uplift; when costs are given, largest positive uplift per unit cost
    among the strategies that have a cost."""
    costed = [r for r in ranked if r["uplift_per_cost"] is not None and r["uplift"]["mean"] > 0]
    if costed:
        return max(costed, key=lambda r: r["uplift_per_cost"])["name"], "uplift_per_cost"
    return ranked[0]["name"], "uplift"


def _timing_notes(spec, strategies, rows, base, vel) -> list[str]:
    """Say where the quarter boundary makes the simulation and the equation disagree."""
    notes = []
    created = float(base["pipeline_created"].mean())
    realised = (
        float(base["revenue_new"].mean()) / (created * vel.win_rate)
        if created > 0 and vel.win_rate > 0
        else None
    )
    for st, row in zip(strategies, rows):
        sim, eq = row["uplift"]["mean"], row["velocity"]["uplift"]
        se = row["uplift"]["se"]
        if eq is None or abs(sim - eq) <= max(2 * se, 0.25 * abs(eq)):
            continue
        changed = {
            f.name
            for f in dataclasses.fields(Levers)
            if getattr(st.levers, f.name) != getattr(Levers(), f.name)
        }
        new_only = bool(changed or st.hires) and changed <= set(NEW_PIPELINE_LEVERS)
        if new_only and eq > 0 and sim < 0.5 * eq:
            why = (
                f"only {realised:.0%} of new pipeline's expected value closes inside the "
                f"{spec.days}-day horizon"
                if realised is not None
                else "little new pipeline closes inside the horizon"
            )
            ramp = spec.model.team.ramp_months
            if st.hires and ramp > 0:
                why += f", and new reps ramp up over {ramp:g} months"
            notes.append(
                f"{st.name}: acts only on pipeline created this quarter; with a "
                f"typical won cycle of {vel.cycle_days:.0f} days {why}. Simulated "
                f"uplift {_m(sim)} vs the velocity equation's {_m(eq)}."
            )
        elif st.levers.cycle_time < 1 and sim > eq:
            share = row["uplift_open"] / sim if sim > 0 else 0.0
            notes.append(
                f"{st.name}: a shorter cycle pulls deals already open into the "
                f"quarter ({share:.0%} of the uplift comes from the open pipeline); "
                f"the velocity equation only sees a steady-state rate "
                f"({_m(sim)} simulated vs {_m(eq)})."
            )
        else:
            notes.append(
                f"{st.name}: the simulation gives {_m(sim)}, the velocity equation "
                f"{_m(eq)} (timing inside the quarter, ramp, capacity and caps differ "
                f"from its steady state)."
            )
    return notes


def _separation_notes(ranked_strategies, ranked_runs) -> list[str]:
    """Flag neighbours in the ranking whose paired difference is within 2 SE."""
    notes = []
    for (a, ra), (b, rb) in zip(
        zip(ranked_strategies, ranked_runs), zip(ranked_strategies[1:], ranked_runs[1:])
    ):
        d = paired_uplift(ra["revenue"], rb["revenue"])
        if abs(d["mean"]) < 2 * d["se"]:
            notes.append(
                f"{a.name} vs {b.name}: difference {_m(d['mean'])} ± {_m(2 * d['se'])} "
                f"(2 SE) — not separated at this trial count; run more trials."
            )
    return notes


def _m(x: float) -> str:
    return short_money(x, signed=True)
