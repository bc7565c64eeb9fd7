"""Where each open deal stands in the model: its stage and the day it entered it.

An export often says less than the model knows: one row per deal with its current stage and
no stage history, stage labels the calibrated model never saw, or none at all. Every open deal
is still forecast, from what the export does say (docs/model.md §7), in this order:

1. **A one-step model** (calibrated without a stage history) has a single state, open: every
   open deal is in it, whatever its label, entered when it was created. Its age then
   conditions how it ends, exactly as calibration measured created → won/lost.
2. **A label the model has**: that stage.
3. **A label the model lacks, in a known stage order** (given, from a profile or ``--stages``,
   or inferred from a stage history): the last model stage at or before it in that order (a
   deal in a stage between A and B has entered A and not yet B), else the first stage.
4. **Otherwise, with a CRM probability**: the model stage whose chance to end won is nearest.
5. **Otherwise**: the first stage.

When the history does not say when the deal entered its stage, the entry is estimated as its
created date plus the median times of the stages before it (at most the as-of date): the age
in stage that survival conditions on is then neither zero nor the deal's whole age.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from salesim.simulator.model import Model

RULES = ("one step", "label", "stage order", "probability", "first stage")


def _win_chances(model: Model) -> np.ndarray:
    """P(end won | in stage k) for each model stage: its own and every later conversion."""
    conv = np.array([s.conversion.mean for s in model.stages])
    return np.cumprod(conv[::-1])[::-1]


def _lead_times(model: Model) -> np.ndarray:
    """Days from creation to entering stage k, by the median times to advance before it."""
    medians = [float(s.advance.dist.quantile(0.5)) for s in model.stages]
    return np.concatenate([[0.0], np.cumsum(medians[:-1])])


def _by_order(label: str | None, order: tuple[str, ...], names: tuple[str, ...]) -> int | None:
    if label is None or label not in order:
        return None
    before = [i for i, s in enumerate(names) if s in order and order.index(s) <= order.index(label)]
    return before[-1] if before else 0


def placements(
    opps: pl.DataFrame, model: Model, order: tuple[str, ...] | None
) -> tuple[list[int], list[str]]:
    """For each open deal of ``opps`` (columns ``stage`` and optionally ``probability``), the
    index of its model stage and the rule that placed it (one of ``RULES``). ``order``: the
    history's stage order when it is known (None: labels carry no order)."""
    names = model.stage_names
    if len(names) == 1:
        return [0] * opps.height, [
            "label" if s == names[0] else "one step" for s in opps["stage"].to_list()
        ]
    chances = _win_chances(model)
    probs = opps["probability"].to_list() if "probability" in opps.columns else [None] * opps.height
    index, rule = [], []
    for label, p in zip(opps["stage"].to_list(), probs):
        if label in names:
            index.append(names.index(label))
            rule.append("label")
        elif order and (k := _by_order(label, order, names)) is not None:
            index.append(k)
            rule.append("stage order")
        elif p is not None and np.isfinite(p):
            index.append(int(np.argmin(np.abs(chances - p))))
            rule.append("probability")
        else:
            index.append(0)
            rule.append("first stage")
    return index, rule


def with_entries(o: pl.DataFrame, entered: pl.DataFrame | None) -> pl.DataFrame:
    """``o`` with ``entered``: the stage history's latest entry into the deal's stage
    (``entered`` per opportunity_id and stage; None: no stage history), else null."""
    if entered is None:
        return o.with_columns(pl.lit(None, dtype=pl.Date).alias("entered"))
    return o.join(entered, on=["opportunity_id", "stage"], how="left", maintain_order="left")


def place(
    o: pl.DataFrame,
    model: Model,
    *,
    order: tuple[str, ...] | None,
    entered: pl.DataFrame | None,
    as_of: dt.date,
) -> tuple[pl.DataFrame, list[str]]:
    """``o`` (open deals) with ``stage`` set to a model stage and ``entered`` to the day it was
    entered, and notes on every deal not placed by its own label.

    ``entered``: the stage history's latest entry per (opportunity_id, stage) up to ``as_of``
    (None: no stage history)."""
    index, rule = placements(o, model, order)
    names = model.stage_names
    lead = _lead_times(model)
    o = with_entries(
        o.with_columns(
            pl.Series("stage", [names[i] for i in index], dtype=pl.String),
            pl.Series("__lead", [float(lead[i]) for i in index]),
        ),
        entered,
    )
    estimate = (
        pl.col("created") + pl.duration(days=pl.col("__lead").round(0).cast(pl.Int64))
    ).clip(upper_bound=as_of)
    estimated = o.filter(pl.col("entered").is_null() & (pl.col("__lead") > 0)).height
    o = o.with_columns(pl.coalesce(pl.col("entered"), estimate).alias("entered"))
    notes = []
    counts = {r: rule.count(r) for r in RULES if rule.count(r)}
    if counts.get("one step"):
        notes.append(
            f"{counts['one step']} open deal(s) in the model's one step ({names[0]}), "
            "each by its age since created"
        )
    for r, why in (
        ("stage order", "by the stage order (the last model stage before theirs)"),
        ("probability", "by their CRM probability (the stage with the nearest chance to end won)"),
        ("first stage", "in the first stage (their stage says nothing the model can place)"),
    ):
        if counts.get(r):
            notes.append(
                f"{counts[r]} open deal(s) in stages the model does not have placed " + why
            )
    if estimated:
        notes.append(
            f"{estimated} open deal(s) without a stage-history entry for their stage: "
            "entered on their created date plus the median times of the stages "
            "before it"
        )
    return o.drop("__lead"), notes
