"""Pipeline health from CRM history: coverage, velocity, waterfall, stale deals, strike zone.

Plain statistics of the history as it stood on an explicit as-of date (nothing later is
used); no simulation. Quarters are calendar quarters. docs/dashboard.md defines every figure.

State at the end of day ``t``: a deal exists if ``created <= t``; it is open if it exists and
has not closed by ``t`` (``closed`` null or later than ``t``); it was won by ``t`` if its
status is won and ``closed <= t``. One amount per deal (won amount, else expected amount), so
the waterfall balances exactly.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from salesim.simulator.calendar import quarter_end, quarter_start

from .history import History

LOOKBACK_DAYS = 365  # closed deals this far back set win rates, sizes and cycle times
MIN_WON_FOR_P90 = 10  # fewer won deals in the lookback: use every won deal before as-of
MARKETING = "marketing"  # the ``source`` value of marketing-sourced deals (docs/formats.md)


# --- calendar ----------------------------------------------------------------------------------
def quarter_label(d: dt.date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def week_ends(start: dt.date, end: dt.date) -> list[dt.date]:
    """Last day of each week ``[start + 7w, start + 7w + 7)`` up to ``end`` (docs/model.md)."""
    days = (end - start).days + 1
    return [min(start + dt.timedelta(days=7 * w + 6), end) for w in range(math.ceil(days / 7))]


# --- state at a date ---------------------------------------------------------------------------
def _with_amount(opps: pl.DataFrame) -> pl.DataFrame:
    return opps.with_columns(pl.col("amount").fill_null(0.0))


def _open_at(opps: pl.DataFrame, t: dt.date) -> pl.DataFrame:
    return opps.filter(
        (pl.col("created") <= t) & (pl.col("closed").is_null() | (pl.col("closed") > t))
    )


def _closed_between(
    opps: pl.DataFrame, start: dt.date, end: dt.date, status: str | None = None
) -> pl.DataFrame:
    keep = pl.col("closed").is_between(start, end) & pl.col("status").is_in(["won", "lost"])
    if status is not None:
        keep = keep & (pl.col("status") == status)
    return opps.filter(keep)


def _cycle_days() -> pl.Expr:
    return (pl.col("closed") - pl.col("created")).dt.total_days().cast(pl.Float64)


def _float(x) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


# --- waterfall ---------------------------------------------------------------------------------
WATERFALL_TERMS = (
    "start",
    "created",
    "won",
    "lost",
    "end",
    "won_from_start",
    "won_from_created",
    "lost_from_start",
    "lost_from_created",
    "slipped",
    "open_from_created",
)


@dataclass(frozen=True)
class Waterfall:
    """Pipeline flow over ``[period_start, period_end]``: start + created − won − lost = end.

    ``won_from_created`` (created and won inside the period) and ``slipped`` (open at the start
    and still open at the end) are what the data offers for "pulled in" and "pushed out":
    without an expected close date nothing is "due" in a quarter, so every deal open at the
    start counts as start pipeline. ``amount`` and ``count`` map each of ``WATERFALL_TERMS``.
    """

    period_start: dt.date
    period_end: dt.date
    amount: dict
    count: dict

    @property
    def balance(self) -> float:
        """start + created − won − lost − end (0 up to rounding)."""
        a = self.amount
        return a["start"] + a["created"] - a["won"] - a["lost"] - a["end"]

    def to_dict(self) -> dict:
        return {
            "period_start": self.period_start,
            "period_end": self.period_end,
            "amount": dict(self.amount),
            "count": dict(self.count),
            "pulled_in": self.amount["won_from_created"],
            "pushed_out": self.amount["slipped"],
        }


def waterfall(opportunities: pl.DataFrame, start: dt.date, end: dt.date) -> Waterfall:
    """The waterfall of ``[start, end]`` from an opportunities frame known up to ``end``."""
    opps = _with_amount(opportunities)
    before = start - dt.timedelta(days=1)
    in_period = pl.col("closed").is_between(start, end)
    at_start = _open_at(opps, before)
    created = opps.filter(pl.col("created").is_between(start, end))
    parts = {
        "start": at_start,
        "created": created,
        "won": _closed_between(opps, start, end, "won"),
        "lost": _closed_between(opps, start, end, "lost"),
        "end": _open_at(opps, end),
        "won_from_start": at_start.filter(in_period & (pl.col("status") == "won")),
        "won_from_created": created.filter(in_period & (pl.col("status") == "won")),
        "lost_from_start": at_start.filter(in_period & (pl.col("status") == "lost")),
        "lost_from_created": created.filter(in_period & (pl.col("status") == "lost")),
        "slipped": _open_at(at_start, end),
        "open_from_created": _open_at(created, end),
    }
    return Waterfall(
        start,
        end,
        amount={k: float(v["amount"].sum()) for k, v in parts.items()},
        count={k: v.height for k, v in parts.items()},
    )


# --- the summary -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Velocity:
    """Sales velocity = open opportunities × win rate × mean won size ÷ mean won cycle (days)."""

    opportunities: int
    win_rate: float | None
    deal_size: float | None
    cycle_days: float | None

    @property
    def per_day(self) -> float | None:
        win_rate, deal_size, cycle_days = self.win_rate, self.deal_size, self.cycle_days
        if win_rate is None or deal_size is None or not cycle_days:
            return None
        return self.opportunities * win_rate * deal_size / cycle_days

    def to_dict(self) -> dict:
        return {
            "opportunities": self.opportunities,
            "win_rate": self.win_rate,
            "deal_size": self.deal_size,
            "cycle_days": self.cycle_days,
            "per_day": self.per_day,
            "per_week": None if self.per_day is None else 7 * self.per_day,
        }


@dataclass(frozen=True)
class PipelineHealth:
    """Everything the dashboard shows about the pipeline on ``as_of`` (docs/dashboard.md)."""

    as_of: dt.date
    quarter_start: dt.date
    quarter_end: dt.date
    lookback_start: dt.date
    open_pipeline: float
    open_deals: int
    won_qtd: float
    quota: float | None
    velocity: Velocity
    waterfall: Waterfall
    stale_days: float | None  # P90 of won cycle time (days)
    stale: pl.DataFrame  # open deals older than stale_days
    strike_zone: pl.DataFrame  # win rate, size, cycles by dimension and value
    cycles: dict  # won/lost cycle-time summaries (days)
    reps: pl.DataFrame  # per-rep quarter-to-date actuals and health
    weekly_won: list[float]  # cumulative won revenue at the end of each elapsed week
    notes: tuple[str, ...] = field(default=())

    @property
    def to_go(self) -> float | None:
        return None if self.quota is None else max(self.quota - self.won_qtd, 0.0)

    @property
    def coverage(self) -> float | None:
        """Open pipeline ÷ quota still to go (inf when the quota is already made)."""
        if self.to_go is None:
            return None
        return self.open_pipeline / self.to_go if self.to_go > 0 else math.inf

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "quarter": quarter_label(self.as_of),
            "quarter_start": self.quarter_start,
            "quarter_end": self.quarter_end,
            "lookback_start": self.lookback_start,
            "open_pipeline": self.open_pipeline,
            "open_deals": self.open_deals,
            "won_qtd": self.won_qtd,
            "quota": self.quota,
            "to_go": self.to_go,
            "coverage": self.coverage,
            "velocity": self.velocity.to_dict(),
            "waterfall": self.waterfall.to_dict(),
            "stale_days": self.stale_days,
            "stale": self.stale.to_dicts(),
            "strike_zone": self.strike_zone.to_dicts(),
            "cycles": self.cycles,
            "reps": self.reps.to_dicts(),
            "weekly_won": self.weekly_won,
            "notes": list(self.notes),
        }


def pipeline_health(
    history: History,
    as_of: dt.date,
    *,
    quota: float | None = None,
    rep_quotas: dict[str, float] | None = None,
    lookback_days: int = LOOKBACK_DAYS,
) -> PipelineHealth:
    """Pipeline health of the quarter containing ``as_of``, from the history cut at ``as_of``.

    ``quota`` is the team's quarterly quota (coverage needs it); ``rep_quotas`` the reps'.
    """
    known = history.as_of(as_of)
    opps = _with_amount(known.opportunities)
    qs, qe = quarter_start(as_of), quarter_end(as_of)
    lookback = as_of - dt.timedelta(days=lookback_days - 1)
    notes: list[str] = []

    closed = _closed_between(opps, lookback, as_of).with_columns(cycle=_cycle_days())
    won = closed.filter(pl.col("status") == "won")
    if closed.height == 0:
        notes.append(
            f"no deals closed between {lookback} and {as_of}: win rate, deal size "
            "and velocity are unknown"
        )

    open_now = _open_at(opps, as_of).with_columns(
        age_days=(pl.lit(as_of) - pl.col("created")).dt.total_days().cast(pl.Float64)
    )
    stale_days = _stale_threshold(opps, won, as_of, lookback_days, notes)
    stale = (
        open_now.filter(pl.col("age_days") > stale_days)
        if stale_days is not None
        else open_now.clear()
    )
    stale = stale.select(
        "opportunity_id", "owner", "stage", "created", "age_days", "amount", "segment"
    ).sort(["amount", "age_days"], descending=True)

    won_qtd = float(_closed_between(opps, qs, as_of, "won")["amount"].sum())
    return PipelineHealth(
        as_of=as_of,
        quarter_start=qs,
        quarter_end=qe,
        lookback_start=lookback,
        open_pipeline=float(open_now["amount"].sum()),
        open_deals=open_now.height,
        won_qtd=won_qtd,
        quota=quota,
        velocity=_velocity(open_now.height, closed),
        waterfall=waterfall(opps, qs, as_of),
        stale_days=stale_days,
        stale=stale,
        strike_zone=strike_zone(closed),
        cycles=_cycles(closed),
        reps=_rep_table(known, opps, open_now, stale, closed, qs, as_of, rep_quotas or {}, notes),
        weekly_won=_weekly_won(opps, qs, as_of),
        notes=tuple(notes) + tuple(known.notes),
    )


def _velocity(n_open: int, closed: pl.DataFrame) -> Velocity:
    won = closed.filter(pl.col("status") == "won")
    return Velocity(
        opportunities=n_open,
        win_rate=won.height / closed.height if closed.height else None,
        deal_size=_float(won["amount"].mean()) if won.height else None,
        cycle_days=_float(won["cycle"].mean()) if won.height else None,
    )


def _stale_threshold(opps, won_recent, as_of, lookback_days, notes) -> float | None:
    won = won_recent
    if won.height < MIN_WON_FOR_P90:
        won = _closed_between(opps, dt.date.min, as_of, "won").with_columns(cycle=_cycle_days())
        if won.height:
            notes.append(
                f"fewer than {MIN_WON_FOR_P90} deals won in the last {lookback_days} "
                "days: the stale threshold uses every won deal before the as-of date"
            )
    if won.height == 0:
        notes.append("no won deals before the as-of date: stale deals cannot be flagged")
        return None
    return float(np.quantile(won["cycle"].to_numpy(), 0.9))


def _cycles(closed: pl.DataFrame) -> dict:
    out = {}
    for status in ("won", "lost"):
        c = closed.filter(pl.col("status") == status)["cycle"].to_numpy()
        out[status] = {
            "n": int(c.size),
            "mean": float(c.mean()) if c.size else None,
            "median": float(np.median(c)) if c.size else None,
            "p90": float(np.quantile(c, 0.9)) if c.size else None,
        }
    return out


def _size_band(closed: pl.DataFrame) -> tuple[pl.Series, list[str]] | None:
    """Deal-size quartile labels (bounds from the closed deals themselves)."""
    amounts = closed["amount"].to_numpy()
    if amounts.size < 8:
        return None
    cuts = np.unique(np.quantile(amounts, [0.25, 0.5, 0.75]))
    if cuts.size == 0:
        return None
    labels = [f"≤{_short(cuts[0])}"]
    labels += [f"{_short(a)}–{_short(b)}" for a, b in zip(cuts[:-1], cuts[1:])]
    labels.append(f">{_short(cuts[-1])}")
    idx = np.searchsorted(cuts, amounts, side="left")
    return pl.Series("value", [labels[i] for i in idx]), labels


def _short(x: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


STRIKE_ZONE_COLUMNS = (
    "dimension",
    "value",
    "won",
    "lost",
    "win_rate",
    "win_rate_se",
    "deal_size",
    "won_cycle_median",
    "lost_cycle_median",
)


def strike_zone(closed: pl.DataFrame) -> pl.DataFrame:
    """Win rate (with its binomial standard error), mean won size and median won/lost cycle
    by segment, source and deal-size quartile, best win rate first within each dimension.

    ``closed`` holds closed deals with a ``cycle`` column (days created → closed). A
    dimension with a single value says nothing about where deals win, so it is left out.
    """
    frames = []
    dims: list[tuple[str, pl.Series, list[str] | None]] = []
    for dim in ("segment", "source"):
        if closed.height and closed[dim].drop_nulls().n_unique() > 1:
            dims.append((dim, closed[dim].fill_null("(unknown)").alias("value"), None))
    band = _size_band(closed)
    if band is not None:
        dims.append(("deal_size_band", band[0], band[1]))
    for dim, values, order in dims:
        g = (
            closed.with_columns(values)
            .group_by("value")
            .agg(
                won=(pl.col("status") == "won").sum().cast(pl.Int64),
                lost=(pl.col("status") == "lost").sum().cast(pl.Int64),
                deal_size=pl.col("amount").filter(pl.col("status") == "won").mean(),
                won_cycle_median=pl.col("cycle").filter(pl.col("status") == "won").median(),
                lost_cycle_median=pl.col("cycle").filter(pl.col("status") == "lost").median(),
            )
            .with_columns(n=pl.col("won") + pl.col("lost"))
            .with_columns(win_rate=pl.col("won") / pl.col("n"))
            .with_columns(
                win_rate_se=(pl.col("win_rate") * (1 - pl.col("win_rate")) / pl.col("n")).sqrt(),
                dimension=pl.lit(dim),
            )
        )
        if order is None:
            g = g.sort(["win_rate", "n"], descending=True)
        else:  # size bands read best in size order
            g = g.with_columns(
                rank=pl.col("value").replace_strict(
                    order, list(range(len(order))), return_dtype=pl.Int64
                )
            ).sort("rank")
        frames.append(g.select(STRIKE_ZONE_COLUMNS))
    if not frames:
        return pl.DataFrame(
            schema={
                "dimension": pl.String,
                "value": pl.String,
                "won": pl.Int64,
                "lost": pl.Int64,
                "win_rate": pl.Float64,
                "win_rate_se": pl.Float64,
                "deal_size": pl.Float64,
                "won_cycle_median": pl.Float64,
                "lost_cycle_median": pl.Float64,
            }
        )
    return pl.concat(frames, how="vertical_relaxed")


def _activities_qtd(known: History, opps: pl.DataFrame, qs, as_of, notes) -> pl.DataFrame:
    """Activities per owner in ``[qs, as_of]``; without activities.csv an activity is an
    outbound opportunity (the model's documented default, docs/model.md)."""
    if known.activities is not None and known.activities.height:
        return (
            known.activities.filter(pl.col("date").is_between(qs, as_of))
            .group_by("owner")
            .agg(activities_qtd=pl.col("count").sum().cast(pl.Int64))
        )
    notes.append(
        "no activity history: activities are counted as outbound (non-marketing) "
        "opportunities created, as the model does"
    )
    outbound = pl.col("source").is_null() | (pl.col("source").str.to_lowercase() != MARKETING)
    return (
        opps.filter(pl.col("created").is_between(qs, as_of) & outbound)
        .group_by("owner")
        .agg(activities_qtd=pl.len().cast(pl.Int64))
    )


REP_COLUMNS = (
    "owner",
    "quota",
    "activities_qtd",
    "created_qtd",
    "pipeline_created_qtd",
    "won_qtd",
    "lost_qtd",
    "revenue_qtd",
    "open_deals",
    "open_pipeline",
    "coverage",
    "win_rate",
    "velocity_per_day",
    "stale_deals",
)


def _rep_table(known, opps, open_now, stale, closed, qs, as_of, rep_quotas, notes) -> pl.DataFrame:
    """One row per rep seen in the quarter, holding open deals, or given a quota."""
    created = (
        opps.filter(pl.col("created").is_between(qs, as_of))
        .group_by("owner")
        .agg(created_qtd=pl.len().cast(pl.Int64), pipeline_created_qtd=pl.col("amount").sum())
    )
    won = (
        _closed_between(opps, qs, as_of, "won")
        .group_by("owner")
        .agg(won_qtd=pl.len().cast(pl.Int64), revenue_qtd=pl.col("amount").sum())
    )
    lost = (
        _closed_between(opps, qs, as_of, "lost")
        .group_by("owner")
        .agg(lost_qtd=pl.len().cast(pl.Int64))
    )
    open_ = open_now.group_by("owner").agg(
        open_deals=pl.len().cast(pl.Int64), open_pipeline=pl.col("amount").sum()
    )
    rates = closed.group_by("owner").agg(
        n_closed=pl.len(),
        n_won=(pl.col("status") == "won").sum(),
        size=pl.col("amount").filter(pl.col("status") == "won").mean(),
        cyc=pl.col("cycle").filter(pl.col("status") == "won").mean(),
    )
    acts = _activities_qtd(known, opps, qs, as_of, notes)
    owners = sorted(
        set(created["owner"])
        | set(won["owner"])
        | set(lost["owner"])
        | set(open_["owner"])
        | set(acts["owner"])
        | set(rep_quotas)
    )
    base = pl.DataFrame(
        {"owner": owners, "quota": [rep_quotas.get(o) for o in owners]},
        schema={"owner": pl.String, "quota": pl.Float64},
    )
    t = base
    for f in (acts, created, won, lost, open_, rates):
        t = t.join(f, on="owner", how="left")
    t = t.with_columns(
        pl.col("activities_qtd", "created_qtd", "won_qtd", "lost_qtd", "open_deals").fill_null(0),
        pl.col("pipeline_created_qtd", "revenue_qtd", "open_pipeline").fill_null(0.0),
    )
    to_go = (pl.col("quota") - pl.col("revenue_qtd")).clip(lower_bound=0.0)
    win_rate = pl.col("n_won") / pl.col("n_closed")
    t = t.with_columns(
        coverage=pl.when(to_go > 0)
        .then(pl.col("open_pipeline") / to_go)
        .when(pl.col("quota").is_not_null())
        .then(float("inf")),
        win_rate=win_rate,
        velocity_per_day=pl.col("open_deals") * win_rate * pl.col("size") / pl.col("cyc"),
    )
    stale_counts = stale.group_by("owner").agg(stale_deals=pl.len().cast(pl.Int64))
    t = t.join(stale_counts, on="owner", how="left").with_columns(
        pl.col("stale_deals").fill_null(0)
    )
    return t.select(REP_COLUMNS)


def _weekly_won(opps: pl.DataFrame, qs: dt.date, as_of: dt.date) -> list[float]:
    won = _closed_between(opps, qs, as_of, "won").with_columns(
        day=(pl.col("closed") - pl.lit(qs)).dt.total_days()
    )
    days, amounts = won["day"].to_numpy(), won["amount"].to_numpy()
    return [float(amounts[days <= (e - qs).days].sum()) for e in week_ends(qs, as_of)]
