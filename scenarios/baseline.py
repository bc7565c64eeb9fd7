"""The baseline scenario: a calibrated model plus history and a team, as a ``SimSpec``.

What the forecast runs when nothing changes: the team on the start date (from the model, a
reps file, or N generic reps), the deals open at the as-of date (with their age in stage),
and the horizon (by default the rest of the as-of date's calendar quarter).

Decisions (docs/model.md §6–§7):
- Horizon: from the day after the as-of date to the end of that calendar quarter; with
  ``start`` from that day to the end of *its* quarter; with ``weeks``, ``7 × weeks`` days.
- Revenue won earlier in the quarter of the start, before the start and known at the as-of
  date, is ``closed_to_date`` (team and per rep): reports add it to revenue and P(quota).
- Open deals whose owner is not on the team are reassigned by the engine's rule (the
  active rep with the fewest open deals); ``notes`` say how many.
- Open deals without an amount get their segment's mean deal size from the model.
- A team quota without rep quotas is split evenly over the reps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import polars as pl

from salesim.simulator.calendar import quarter_end, quarter_start
from salesim.simulator.errors import InputError
from salesim.simulator.limits import MAX_REPS, check_weeks, whole_in_range
from salesim.simulator.model import Model
from salesim.simulator.spec import DAYS_PER_MONTH, OPEN_DEAL_COLUMNS, SLIP_COLUMNS, Rep, SimSpec

from .placement import place, with_entries

GENERIC_TENURE_MONTHS = 24.0  # ``--reps N``: experienced, fully ramped reps


# --- dates ----------------------------------------------------------------------------------------
def horizon(
    as_of: dt.date, start: dt.date | None = None, weeks: int | None = None
) -> tuple[dt.date, int]:
    """``(start, days)``: by default the day after ``as_of`` to the end of that quarter."""
    if start is None:
        start = as_of + dt.timedelta(days=1)
    elif start <= as_of:
        raise InputError(
            f"the start {start} is not after the as-of date {as_of}",
            column="--start",
            expected="a date after the as-of date",
        )
    if weeks is None:
        return start, (quarter_end(start) - start).days + 1
    return start, 7 * check_weeks(weeks)


# --- open pipeline --------------------------------------------------------------------------------
def _segment_means(model: Model) -> dict[str, float]:
    return {s.name: float(s.size.dist.mean) for s in model.deal_size}


def open_deals_at(
    history, as_of: dt.date, stages, *, start: dt.date | None = None, model: Model | None = None
) -> tuple[pl.DataFrame, list[str]]:
    """Deals open at the end of ``as_of`` (``OPEN_DEAL_COLUMNS``), with their age in stage at
    ``start`` (default the next day): from the stage history's last entry on or before
    ``as_of``, else from the created date; minus half a day, as dates carry no time.

    ``history`` is cut at ``as_of`` first (``History.as_of``), so nothing later leaks in.
    With ``model``, deals whose stage it lacks are placed as ``scenarios.placement`` says
    (without, they are an error), and missing amounts take the segment's mean size.
    Returns the deals and notes on how they were placed.
    """
    start = start or as_of + dt.timedelta(days=1)
    h = history.as_of(as_of)
    file = h.source or "opportunities"
    o = h.opportunities.with_row_index("__i").filter(pl.col("status") == "open")
    notes: list[str] = []
    latest = None
    if h.has_stage_history:
        latest = (
            h.stage_history.filter(pl.col("entered") <= as_of)
            .group_by("opportunity_id", "stage")
            .agg(pl.col("entered").max())
        )
    order = h.stages if h.has_stage_history or h.stage_order == "given" else None
    if model is None:  # no stage is placed by anything but its label
        bad = o.filter(~pl.col("stage").is_in(list(stages)) | pl.col("stage").is_null())
        if bad.height:
            r = bad.row(0, named=True)
            raise InputError(
                f"open deal {r['opportunity_id']} is in stage {r['stage']!r}, "
                "which the model does not have",
                file=file,
                row=r["__i"] + 1,
                column="stage",
                expected="one of " + ", ".join(stages),
            )
        o = with_entries(o, latest).with_columns(pl.coalesce("entered", "created"))
    else:
        o, more = place(o, model, order=order, entered=latest, as_of=as_of)
        notes.extend(more)
    o = _with_slips(h, o, start)
    entered = pl.col("entered")
    age = ((pl.lit(start) - entered).dt.total_days() - 0.5).clip(lower_bound=0.0)
    segment = pl.col("segment").fill_null("all")
    amount = pl.col("amount")
    if model is not None:
        means = _segment_means(model)
        overall = sum(s.count * means[s.name] for s in model.deal_size) / max(
            sum(s.count for s in model.deal_size), 1e-12
        )
        amount = amount.fill_null(
            segment.replace_strict(means, default=overall, return_dtype=pl.Float64)
        )
    out = o.select(
        pl.col("opportunity_id"),
        pl.col("owner"),
        pl.col("stage"),
        age.cast(pl.Float64).alias("age_days"),
        amount.cast(pl.Float64).alias("amount"),
        segment.alias("segment"),
        *[c for c in SLIP_COLUMNS if c in o.columns],
    )
    missing = out.filter(pl.col("amount").is_null())
    if missing.height:
        r = missing.row(0)
        raise InputError(
            f"open deal {r[0]} has no amount",
            file=file,
            column="amount",
            expected="an amount, or a model to take the segment's mean size from",
        )
    columns = OPEN_DEAL_COLUMNS | {c: t for c, t in SLIP_COLUMNS.items() if c in out.columns}
    return out.select([pl.col(c).cast(t) for c, t in columns.items()]), notes


def _with_slips(h, o: pl.DataFrame, start: dt.date) -> pl.DataFrame:
    """``o`` with each open deal's days from ``start`` to its expected close date and its
    pushes so far (``SLIP_COLUMNS``), when the history has expected close dates."""
    if "expected_close" not in o.columns:
        return o
    days = (pl.col("expected_close") - pl.lit(start)).dt.total_days().cast(pl.Float64)
    o = o.with_columns(days.alias("days_to_close"))
    if h.close_date_changes is None:
        return o.with_columns(pl.lit(0, pl.Int64).alias("pushes"))
    pushes = h.pushes.select("opportunity_id", "pushes")
    return o.join(pushes, on="opportunity_id", how="left", maintain_order="left")


def closed_to_date(history, as_of: dt.date, start: dt.date) -> tuple[float, dict[str, float]]:
    """Revenue won in the calendar quarter of ``start`` before ``start``, known at ``as_of``:
    the team total and per owner."""
    first = quarter_start(start)
    last = min(as_of, start - dt.timedelta(days=1))
    won = history.opportunities.filter(
        (pl.col("status") == "won") & (pl.col("closed") >= first) & (pl.col("closed") <= last)
    )
    # math.fsum is exactly rounded: the sums do not depend on how polars cut the rows into
    # chunks or threads (which can differ between machines and reads of the same file).
    amounts = won["amount"].fill_null(0.0).to_list()
    by_owner: dict[str, list[float]] = {}
    for owner, amount in zip(won["owner"].to_list(), amounts):
        by_owner.setdefault(owner, []).append(amount)
    return math.fsum(amounts), {o: math.fsum(v) for o, v in by_owner.items()}


# --- team -----------------------------------------------------------------------------------------
def _rep_on(
    name: str,
    hired: dt.date,
    on: dt.date,
    quota: float,
    level: float | None = None,
    level_sd: float = 0.0,
) -> Rep:
    """A rep hired on ``hired`` as seen on day 0 = ``on``: tenure then, or a later start."""
    if hired <= on:
        return Rep(
            name,
            tenure_days=float((on - hired).days),
            start_day=0.0,
            quota=quota,
            level=level,
            level_sd=level_sd,
        )
    return Rep(
        name,
        tenure_days=0.0,
        start_day=float((hired - on).days),
        quota=quota,
        level=level,
        level_sd=level_sd,
    )


def team_from_model(model: Model, as_of: dt.date) -> tuple[Rep, ...]:
    """The reps the model lists, with tenure on ``as_of`` (the horizon's day 0) and their
    measured activity levels; a rep's quota defaults to the model's quota per rep."""
    if not model.team.reps:
        raise InputError(
            "the model lists no reps",
            file=model.source or None,
            column="team",
            expected="--reps N or --team reps.csv",
        )
    return tuple(
        _rep_on(r.name, r.hired, as_of, r.quota or model.team.quota, r.level, r.level_sd or 0.0)
        for r in model.team.reps
    )


def team_from_csv(path, as_of: dt.date, default_quota: float = 0.0) -> tuple[Rep, ...]:
    """Reps from a reps file (docs/formats.md ``reps.csv``: owner, hired, left, quota).

    Tenure is measured on ``as_of`` (the horizon's day 0); reps hired later are planned hires
    starting that day; reps who left on or before ``as_of`` are skipped.
    """
    from salesim.calibrate import ingest  # the reps-file rules live with the other CRM files

    frame = ingest.read_reps(path)
    reps = []
    for r in frame.iter_rows(named=True):
        if r["left"] is not None and r["left"] <= as_of:
            continue
        quota = r["quota"] if r["quota"] is not None else default_quota
        reps.append(_rep_on(r["owner"], r["hired"], as_of, float(quota)))
    if not reps:
        raise InputError(
            f"no rep is on the team on {as_of}",
            file=str(path),
            column="left",
            expected="at least one rep who has not left",
        )
    return tuple(reps)


def generic_team(n: int, quota: float = 0.0) -> tuple[Rep, ...]:
    """``n`` experienced reps named rep1…repN."""
    n = whole_in_range(n, 1, MAX_REPS, what="reps", column="--reps")
    tenure = GENERIC_TENURE_MONTHS * DAYS_PER_MONTH
    return tuple(Rep(f"rep{i + 1}", tenure_days=tenure, quota=quota) for i in range(n))


# --- the spec -------------------------------------------------------------------------------------
def baseline_spec(
    model: Model,
    *,
    history=None,
    as_of: dt.date | None = None,
    start: dt.date | None = None,
    weeks: int | None = None,
    n_reps: int | None = None,
    team=None,
    quota: float | None = None,
    fixed_parameters: bool = False,
) -> SimSpec:
    """The baseline ``SimSpec``: see the module docstring for every default.

    ``as_of`` defaults to the model's as-of date. ``team`` is a reps file path or a tuple of
    ``Rep``; ``n_reps`` asks for N generic reps; neither: the model's reps. ``quota`` is the
    team quota for the quarter (None: the sum of rep quotas).
    """
    as_of = as_of or model.as_of
    start, days = horizon(as_of, start, weeks)
    notes: list[str] = []
    if start + dt.timedelta(days=days - 1) != quarter_end(start):
        notes.append(
            f"the horizon ({days} days) does not end with the calendar quarter; "
            "quotas are per quarter and are not prorated"
        )
    if n_reps is not None and team is not None:
        raise InputError(
            "give either a number of reps or a team file, not both",
            column="--reps",
            expected="--reps N or --team reps.csv",
        )
    if quota is not None and (not math.isfinite(quota) or quota < 0):
        raise InputError(f"quota must be a number ≥ 0, got {quota!r}", column="--quota")
    if n_reps is not None:
        reps = generic_team(n_reps, model.team.quota)
    elif isinstance(team, (str, Path)):
        # A rep of the file whom the model measured keeps its measured level.
        known = {r.name: r for r in model.team.reps if r.level is not None}
        reps = tuple(
            dataclasses.replace(
                r, level=known[r.name].level, level_sd=known[r.name].level_sd or 0.0
            )
            if r.name in known and r.start_day <= 0
            else r
            for r in team_from_csv(team, start, model.team.quota)
        )
    elif team is not None:
        reps = tuple(team)
    else:
        reps = team_from_model(model, start)
    later = [r.name for r in reps if r.start_day >= days]
    if later:
        notes.append(f"{len(later)} planned hire(s) start after the horizon and are left out")
        reps = tuple(r for r in reps if r.start_day < days)
    if quota and not any(r.quota for r in reps):
        reps = tuple(dataclasses.replace(r, quota=quota / len(reps)) for r in reps)
        notes.append("rep quotas: the team quota split evenly")

    open_deals = pl.DataFrame(schema=OPEN_DEAL_COLUMNS)
    closed = 0.0
    by_owner: dict[str, float] = {}
    if history is None:
        notes.append("no history: no open pipeline and no revenue closed to date")
    else:
        open_deals, more = open_deals_at(
            history, as_of, model.stage_names, start=start, model=model
        )
        notes += more
        if model.slips is not None and "days_to_close" in open_deals.columns:
            dated = open_deals["days_to_close"].is_not_null().sum()
            notes.append(
                f"{dated} of {open_deals.height} open deal(s) timed by their expected close "
                "date and pushes (the slip model)"
            )
        closed, by_owner = closed_to_date(history.as_of(as_of), as_of, start)
        names = {r.name for r in reps if r.start_day <= 0}
        moved = open_deals.filter(~pl.col("owner").is_in(list(names))).height
        if moved:
            notes.append(
                f"{moved} open deal(s) owned by reps not on the team are reassigned "
                "to the least-loaded rep"
            )
        if start > as_of + dt.timedelta(days=1):
            notes.append(
                f"the start is {(start - as_of).days - 1} day(s) after the day after "
                "the as-of date: deals open at the as-of date are taken as still open "
                "at the start"
            )
    reps = tuple(dataclasses.replace(r, closed_to_date=by_owner.get(r.name, 0.0)) for r in reps)
    return SimSpec(
        model=model,
        reps=reps,
        start=start,
        days=days,
        open_deals=open_deals,
        fixed_parameters=fixed_parameters,
        quota=quota,
        closed_to_date=closed,
        notes=tuple(notes),
    )
