"""Week-over-week movement behind ``salesim movement``: what changed in a quarter's pipeline
between two snapshots of the history, and, given a model, how the forecast moved and why.

Each deal is followed from the snapshot at the end of ``start`` to the one at the end of
``end`` (``History.as_of``). The quarter's pipeline at a snapshot is its open deals expected
to close by the quarter's end (overdue ones included: the rep has not moved them yet); with
no expected close dates in the export, every open deal. The waterfall's amounts add up:

    end = start + new + pulled_in − pushed_out − won − lost + amount_changed

A deal in the pipeline at ``start`` is still in it (its amount change counted), pushed out
(expected after the quarter, or no longer dated: its amount at ``start`` leaves), or closed
won or lost (its closing amount leaves; the change to it counted). A deal not in it at
``start`` enters as new (created after ``start``) or pulled in (open then, expected later)
when it is in the pipeline at ``end`` or was won in between; one that was lost in between
was never in this quarter's pipeline as far as the snapshots tell, and is left out. Stage
moves (advanced, went back) of deals in the pipeline at both dates change no amount.

An open deal's amount at a date comes from the close-date history's ``amount`` column where
the export has one (the last amount recorded by then; before the first record, the first); a
closed deal's is its final amount; otherwise
every deal keeps its last recorded amount and no amount change can be seen (a note says so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl

from salesim.history import History
from salesim.results import Document
from salesim.simulator.calendar import quarter_end, quarter_start
from salesim.simulator.errors import InputError

TOP_VALUE_CHANGES = 20  # deals listed as explaining the forecast's change
STEPS = ("start", "new", "pulled_in", "pushed_out", "won", "lost", "amount_changed", "end")
# How much each step adds to the pipeline (+1), takes from it (-1), or is a total (0).
SIGN = {
    "start": 0,
    "new": 1,
    "pulled_in": 1,
    "pushed_out": -1,
    "won": -1,
    "lost": -1,
    "amount_changed": 1,
    "end": 0,
}


@dataclasses.dataclass(frozen=True)
class Movement(Document):
    """The waterfall between two snapshots (``salesim movement``): ``waterfall`` (one row
    per step in ``STEPS``: deals, amount and its ``sign``), ``stage_moves``, ``deals`` (one
    row per deal that moved) and, with a model, ``forecast`` (the bands at both dates and the
    change split by where it came from)."""

    @property
    def trials(self) -> int:  # type: ignore[override]
        return (self.document.get("forecast") or {}).get("trials", 0)

    @property
    def waterfall(self) -> list[dict]:
        return [dict(row) for row in self.document["waterfall"]]

    def output_tables(self) -> dict:
        from salesim.tables import Table

        steps = pl.DataFrame(self.document["waterfall"])
        deals = pl.DataFrame(self.document["deals"], schema=DEAL_SCHEMA)
        return {
            "waterfall": Table(steps, money=("amount",)),
            "deals": Table(deals, money=("amount_from", "amount_to", "change")),
        }

    def to_text(self) -> str:
        from salesim import report

        return report.movement_text(self.to_dict())

    def plot(self, currency: Any = None):
        from salesim import plots

        return plots.movement_figure(self.to_dict(), currency)


DEAL_SCHEMA = {
    "opportunity_id": pl.String,
    "owner": pl.String,
    "step": pl.String,
    "amount_from": pl.Float64,
    "amount_to": pl.Float64,
    "change": pl.Float64,
    "stage_from": pl.String,
    "stage_to": pl.String,
    "close_from": pl.Date,
    "close_to": pl.Date,
}


def movement(
    history: History,
    start: dt.date,
    end: dt.date,
    *,
    quarter: dt.date | None = None,
) -> Movement:
    """The waterfall of the pipeline of ``quarter``'s quarter (default: ``end``'s) from the
    end of ``start`` to the end of ``end`` (see the module docstring)."""
    if not start < end:
        raise InputError(
            f"--from {start} is not before --to {end}",
            column="--from",
            expected="a date before --to",
        )
    q_start, q_end = quarter_start(quarter or end), quarter_end(quarter or end)
    a, b = history.as_of(start), history.as_of(end)
    dated = "expected_close" in b.opportunities.columns and (
        b.opportunities["expected_close"].is_not_null().any()
    )
    notes = [f"quarter {q_start} to {q_end}"]
    if not dated:
        notes.append(
            "no expected close dates in the export: the pipeline is every open deal, and no "
            "deal can be pulled in or pushed out"
        )
    amounts = history.close_date_changes is not None and (
        "amount" in history.close_date_changes.columns
        and history.close_date_changes["amount"].is_not_null().any()
    )
    if not amounts:
        notes.append(
            "no amount history in the export: each deal keeps its last recorded amount, so "
            "amount changes cannot be seen"
        )
    deals = _follow(history, a, b, start, end, q_end, dated=dated, amounts=amounts)
    rows = _classify(deals, history.stages, q_start)
    doc: dict[str, Any] = {
        "from": start,
        "to": end,
        "quarter": {"start": q_start, "end": q_end},
        "scope": "expected close by the quarter's end" if dated else "every open deal",
        "waterfall": _waterfall(rows),
        "stage_moves": _stage_moves(rows),
        "deals": _named(rows),
        "notes": notes,
    }
    return Movement(doc)


def forecast_movement(
    model,
    history: History,
    start: dt.date,
    end: dt.date,
    *,
    trials: int,
    seed: int | None,
    engine: str | None = None,
    workers: int | None = 1,
    progress=None,
) -> dict:
    """The forecast at the end of ``start`` and of ``end`` (same seed: common random numbers,
    so the change is the snapshots', not the dice's), the change in mean revenue split
    exactly into closed to date, the open pipeline's wins and new pipeline's wins, and the
    deals whose expected value changed most (amount × P(win) from the run's own per-deal
    counts; a deal won in between counts its amount, now closed to date)."""
    from salesim.scenarios.forecast import summarise
    from salesim.scenarios.plan import model_plan
    from salesim.simulator.runner import run

    runs, values = {}, {}
    for key, day in (("from", start), ("to", end)):
        spec = model_plan(model, history=history, as_of=day).spec
        result = run(spec, trials, seed, engine=engine, workers=workers, progress=progress)
        fc = summarise(spec, result)
        _, p_win = result.deal_odds()  # by the horizon's end, as the open pipeline's band
        values[key] = spec.open_deals.select(
            "opportunity_id", (pl.col("amount") * pl.Series(p_win)).alias(key)
        )
        runs[key] = {
            "as_of": day,
            "quarter_end": fc["end"],
            "revenue": {k: fc["revenue"][k] for k in ("mean", "p10", "p50", "p90")},
            "p_quota": fc["p_quota"],
            "closed_to_date": fc["closed_to_date"],
            "open_pipeline": fc["by_origin"]["open_pipeline"]["mean"],
            "new_pipeline": fc["by_origin"]["new_pipeline"]["mean"],
        }
        seed = fc["seed"]  # a fresh seed drawn for the first run is reused for the second
    a, b = runs["from"], runs["to"]
    out: dict[str, Any] = {
        "trials": trials,
        "seed": seed,
        **runs,
        "change": {k: b["revenue"][k] - a["revenue"][k] for k in ("mean", "p10", "p50", "p90")},
        "explained": {k: b[k] - a[k] for k in ("closed_to_date", "open_pipeline", "new_pipeline")},
        "deals": _value_changes(history, values, start, end, quarter_start(end)),
    }
    if a["quarter_end"] != b["quarter_end"]:
        out["note"] = (
            f"the two forecasts are of different quarters (to {a['quarter_end']} and "
            f"{b['quarter_end']}): their change is mostly the quarter's"
        )
    return out


def _value_changes(
    history: History, values: dict, start: dt.date, end: dt.date, q_start: dt.date
) -> list[dict]:
    """Per deal, its expected value in the forecast at both dates and the change, the
    largest change first (``TOP_VALUE_CHANGES``). Their sum with the new pipeline's change is
    the change in mean revenue."""
    o = history.as_of(end).opportunities
    won = o.filter(
        (pl.col("status") == "won") & (pl.col("closed") > start) & (pl.col("closed") >= q_start)
    ).select("opportunity_id", pl.col("amount").alias("__won"))
    merged = (
        values["from"]
        .join(values["to"], on="opportunity_id", how="full", coalesce=True)
        .join(won, on="opportunity_id", how="full", coalesce=True)
        .join(o.select("opportunity_id", "owner", "status"), on="opportunity_id", how="left")
        .with_columns(
            pl.col("from").fill_null(0.0),
            pl.coalesce("to", "__won").fill_null(0.0).alias("to"),
        )
        .with_columns((pl.col("to") - pl.col("from")).alias("change"))
        .filter(pl.col("change") != 0)
        .sort(
            pl.col("change").abs(), "opportunity_id", descending=[True, False], maintain_order=True
        )
    )
    return (
        merged.select(
            "opportunity_id",
            "owner",
            "status",
            pl.col("from").alias("value_from"),
            pl.col("to").alias("value_to"),
            "change",
        )
        .head(TOP_VALUE_CHANGES)
        .to_dicts()
    )


# --- following each deal ----------------------------------------------------------------------
def _snapshot(h: History, day: dt.date, q_end: dt.date, *, dated: bool, amounts_at) -> pl.DataFrame:
    o = h.opportunities
    close = pl.col("expected_close") if "expected_close" in o.columns else pl.lit(None, pl.Date)
    in_pipeline = (pl.col("status") == "open") & (
        (close <= q_end).fill_null(False) if dated else pl.lit(True)
    )
    snap = o.select(
        "opportunity_id",
        "owner",
        "status",
        "stage",
        "closed",
        close.alias("close"),
        in_pipeline.alias("in"),
        pl.col("amount"),
    )
    if amounts_at is not None:  # an open deal's amount then; a closed one's is final
        recorded = pl.coalesce("__amount", "amount")
        snap = snap.join(amounts_at(day), on="opportunity_id", how="left").with_columns(
            pl.when(pl.col("status") == "open").then(recorded).otherwise("amount").alias("amount")
        )
        snap = snap.drop("__amount")
    return snap


def _amount_history(history: History):
    """``day -> (opportunity_id, __amount)``: each deal's amount at the end of ``day`` from
    the close-date history's amounts (the last recorded by then; before the first, the
    first)."""
    changes = history.close_date_changes
    assert changes is not None
    rec = (
        changes.filter(pl.col("amount").is_not_null())
        .with_row_index("__i")
        .sort(["opportunity_id", "changed", "__i"])
    )

    def at(day: dt.date) -> pl.DataFrame:
        return rec.group_by("opportunity_id").agg(
            pl.coalesce(
                pl.col("amount").filter(pl.col("changed") <= day).last(),
                pl.col("amount").first(),
            ).alias("__amount")
        )

    return at


def _follow(
    history: History,
    a: History,
    b: History,
    start: dt.date,
    end: dt.date,
    q_end: dt.date,
    *,
    dated: bool,
    amounts: bool,
) -> pl.DataFrame:
    """One row per deal known at ``end``: how it stood at both snapshots (``*_a``/``*_b``;
    the ``_a`` columns null for a deal created after ``start``)."""
    at = _amount_history(history) if amounts else None
    sa = _snapshot(a, start, q_end, dated=dated, amounts_at=at)
    sb = _snapshot(b, end, q_end, dated=dated, amounts_at=at)
    return sb.join(
        sa.drop("owner"), on="opportunity_id", how="left", suffix="_a", maintain_order="left"
    ).rename({c: f"{c}_b" for c in ("status", "stage", "closed", "close", "in", "amount")})


def _classify(d: pl.DataFrame, stages: tuple[str, ...], q_start: dt.date) -> pl.DataFrame:
    """How each deal entered the quarter's pipeline (``enter``: new, pulled_in), left it
    (``leave``: pushed_out, won, lost) or neither, what its amount changed by while in it,
    and its stage move (+1 advanced, -1 went back, 0 none)."""
    existed, was_open = pl.col("status_a").is_not_null(), pl.col("status_a") == "open"
    in_a, in_b = pl.col("in_a").fill_null(False), pl.col("in_b")
    # cut() reopens a deal closed later, so closed in between = closed at b, open (or not
    # yet created) at a
    between = existed.not_() | was_open
    won = between & (pl.col("status_b") == "won")
    lost = between & (pl.col("status_b") == "lost")
    won_here = won & (pl.col("closed_b") >= q_start)  # revenue of this quarter
    enter = (
        pl.when(in_a.not_() & (in_b | won_here) & existed.not_())
        .then(pl.lit("new"))
        .when(in_a.not_() & (in_b | won_here) & was_open)
        .then(pl.lit("pulled_in"))
        .otherwise(None)
    )
    order = {s: i for i, s in enumerate(stages)}
    rank = lambda c: pl.col(c).replace_strict(order, default=None, return_dtype=pl.Int64)  # noqa: E731
    d = d.with_columns(enter.alias("enter"))
    inside = in_a | pl.col("enter").is_not_null()
    leave = (
        pl.when(inside & won)
        .then(pl.lit("won"))
        .when(in_a & lost)
        .then(pl.lit("lost"))
        .when(in_a & in_b.not_())
        .then(pl.lit("pushed_out"))
        .otherwise(None)
    )
    stayed = in_a & in_b
    return d.with_columns(
        leave.alias("leave"),
        pl.when(in_a & (in_b | won | lost))
        .then(pl.col("amount_b") - pl.col("amount_a"))
        .otherwise(0.0)
        .alias("change"),
        pl.when(stayed)
        .then((rank("stage_b") - rank("stage_a")).sign())
        .otherwise(0)
        .fill_null(0)
        .alias("moved"),
    )


def _waterfall(rows: pl.DataFrame) -> list[dict]:
    def total(mask: pl.Expr, value: str) -> dict:
        part = rows.filter(mask.fill_null(False))
        return {"deals": part.height, "amount": float(part[value].sum() or 0.0)}

    enter, leave = pl.col("enter"), pl.col("leave")
    parts = {
        "start": total(pl.col("in_a"), "amount_a"),
        "new": total(enter == "new", "amount_b"),
        "pulled_in": total(enter == "pulled_in", "amount_b"),
        "pushed_out": total(leave == "pushed_out", "amount_a"),
        "won": total(leave == "won", "amount_b"),
        "lost": total(leave == "lost", "amount_b"),
        "amount_changed": total(pl.col("change") != 0, "change"),
        "end": total(pl.col("in_b"), "amount_b"),
    }
    return [{"step": s, **parts[s], "sign": SIGN[s]} for s in STEPS]


def _stage_moves(rows: pl.DataFrame) -> dict:
    out = {}
    for name, sign in (("advanced", 1), ("went_back", -1)):
        part = rows.filter(pl.col("moved") == sign)
        out[name] = {"deals": part.height, "amount": float(part["amount_b"].sum() or 0.0)}
    return out


def _named(rows: pl.DataFrame) -> list[dict]:
    """Every deal that moved the pipeline (entered, left, changed amount or stage), the
    largest amount moved first."""
    what = pl.concat_str(
        [
            pl.col("enter"),
            pl.col("leave"),
            pl.when(pl.col("change") != 0).then(pl.lit("amount_changed")),
            pl.when(pl.col("moved") == 1).then(pl.lit("advanced")),
            pl.when(pl.col("moved") == -1).then(pl.lit("went_back")),
        ],
        separator=", ",
        ignore_nulls=True,
    )
    size = (
        pl.when(pl.col("enter").is_not_null() | pl.col("leave").is_in(["won", "lost"]))
        .then(pl.col("amount_b"))
        .when(pl.col("leave") == "pushed_out")
        .then(pl.col("amount_a"))
        .otherwise(pl.col("change").abs())
    )
    return (
        rows.with_columns(what.alias("step"), size.alias("__size"))
        .filter(pl.col("step") != "")
        .sort(["__size", "opportunity_id"], descending=[True, False])
        .select(
            "opportunity_id",
            "owner",
            "step",
            pl.col("amount_a").alias("amount_from"),
            pl.col("amount_b").alias("amount_to"),
            "change",
            pl.col("stage_a").alias("stage_from"),
            pl.col("stage_b").alias("stage_to"),
            pl.col("close_a").alias("close_from"),
            pl.col("close_b").alias("close_to"),
        )
        .to_dicts()
    )
