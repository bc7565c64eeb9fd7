"""CRM history in the canonical shape (docs/formats.md): the column schemas, the ``History``
record, and its cut at an as-of date.

It comes first in the data flow, so it imports nothing of calibrate, scenarios or the
simulator's engines: readers (``calibrate.ingest``) and the demo generator
(``simulator.demo_history``) write this shape and every calibrator reads it, each importing
it from here. ``History.as_of`` (``cut``) cuts a history back to what was known on a date,
so nothing after that date can leak into a fit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl
from polars.datatypes import DataTypeClass

from salesim.simulator.errors import InputError
from salesim.simulator.units import as_date

# Canonical column types after ingestion (optional columns are always present, maybe null).
OPPORTUNITY_COLUMNS: dict[str, DataTypeClass] = {
    "opportunity_id": pl.String,
    "owner": pl.String,
    "created": pl.Date,
    "stage": pl.String,  # current stage if open, else last stage reached
    "status": pl.String,  # open | won | lost
    "closed": pl.Date,  # null iff open
    "amount": pl.Float64,  # ≥ 0; expected amount for open and lost deals
    "segment": pl.String,  # "all" when the export has none
    "source": pl.String,  # e.g. marketing | outbound; null when unknown
}
# Read only when the export has them (docs/formats.md, "Deal fields"): the CRM's win
# probability as a fraction in [0, 1], its forecast category (``FORECAST_CATEGORIES``), an open
# deal's expected close date, the dates of its next step and last activity, its product, and a
# region and manager of the deal itself (else the owner's, from ``TEAM_COLUMNS``).
OPTIONAL_OPPORTUNITY_COLUMNS: dict[str, DataTypeClass] = {
    "probability": pl.Float64,
    "forecast_category": pl.String,
    "expected_close": pl.Date,
    "next_step_date": pl.Date,
    "last_activity": pl.Date,
    "product": pl.String,
    "region": pl.String,
    "manager": pl.String,
}
FORECAST_CATEGORIES = ("commit", "best_case", "pipeline", "omitted", "closed")
STAGE_HISTORY_COLUMNS: dict[str, DataTypeClass] = {
    "opportunity_id": pl.String,
    "stage": pl.String,
    "entered": pl.Date,
}
ACTIVITY_COLUMNS: dict[str, DataTypeClass] = {
    "owner": pl.String,
    "date": pl.Date,
    "kind": pl.String,
    "count": pl.Int64,
}
REP_COLUMNS: dict[str, DataTypeClass] = {
    "owner": pl.String,
    "hired": pl.Date,
    "left": pl.Date,
    "quota": pl.Float64,
}
# Who a rep reports to, their regional office and segment (a teams file, or a reps file's
# columns); any may be null.
TEAM_COLUMNS: dict[str, DataTypeClass] = {
    "owner": pl.String,
    "manager": pl.String,
    "region": pl.String,
    "segment": pl.String,
}
# The expected-close-date record: from ``changed`` on, the deal's expected close date was
# ``expected_close``; ``previous`` is the value before (null: the first value known). Rows
# that repeat the previous value and changes made on or after a closed deal's close date (the
# close itself) are not kept. ``stage``, ``amount`` and ``probability`` (a fraction) are the
# deal's at that change, when the file has them.
CLOSE_DATE_CHANGE_COLUMNS: dict[str, DataTypeClass] = {
    "opportunity_id": pl.String,
    "changed": pl.Date,
    "expected_close": pl.Date,
    "previous": pl.Date,
    "stage": pl.String,
    "amount": pl.Float64,
    "probability": pl.Float64,
}
# The forecast-category record: from ``changed`` on, the deal's category was
# ``forecast_category`` (``FORECAST_CATEGORIES``); ``previous`` is the one before (null: the
# first known). From a close-date or field-history file that says it (docs/formats.md); rows
# that repeat the previous category are not kept.
CATEGORY_CHANGE_COLUMNS: dict[str, DataTypeClass] = {
    "opportunity_id": pl.String,
    "changed": pl.Date,
    "forecast_category": pl.String,
    "previous": pl.String,
}
# Per deal, from the close-date changes: how often and by how many days in all its expected
# close date moved later (pushes) and earlier (pull-ins); 0 for a deal never changed.
PUSH_COLUMNS: dict[str, DataTypeClass] = {
    "opportunity_id": pl.String,
    "pushes": pl.Int64,
    "days_pushed": pl.Int64,
    "pull_ins": pl.Int64,
    "days_pulled": pl.Int64,
}

STATUSES = ("open", "won", "lost")
# The files a history may hold beside its opportunities (each a --flag and a [history] key).
OPTIONAL_FILES = ("stage_history", "activities", "reps", "close_date_history", "teams")


def earliest(column: pl.Series) -> dt.date | None:
    """The earliest day in a date column; None when it holds none."""
    return _day(column.min())


def latest(column: pl.Series) -> dt.date | None:
    """The latest day in a date column; None when it holds none."""
    return _day(column.max())


def _day(value: object) -> dt.date | None:
    # polars types Series.min()/max() as any Python literal; on a Date column it is a date.
    if value is None or isinstance(value, dt.date):
        return value
    raise TypeError(f"not a date column: its extreme is {value!r}")


@dataclass(frozen=True)
class History:
    """Validated CRM history. Frames follow the ``*_COLUMNS`` schemas above."""

    opportunities: pl.DataFrame
    stages: tuple[str, ...]  # stage order, first to last
    stage_history: pl.DataFrame | None = None
    activities: pl.DataFrame | None = None
    reps: pl.DataFrame | None = None
    source: str = ""  # where it was read from
    notes: tuple[str, ...] = field(default=())  # warnings raised while reading
    # Where ``stages``' order comes from: "given" (a profile or --stages), "stage history"
    # (inferred from it), or "first seen" (no order: labels in the order they appear).
    stage_order: str = "first seen"
    close_date_changes: pl.DataFrame | None = None  # CLOSE_DATE_CHANGE_COLUMNS
    teams: pl.DataFrame | None = None  # TEAM_COLUMNS, one row per rep
    category_changes: pl.DataFrame | None = None  # CATEGORY_CHANGE_COLUMNS

    @property
    def has_stage_history(self) -> bool:
        return self.stage_history is not None and self.stage_history.height > 0

    @property
    def pushes(self) -> pl.DataFrame | None:
        """``PUSH_COLUMNS`` for every opportunity; None without close-date changes."""
        if self.close_date_changes is None:
            return None
        return pushes(self.opportunities, self.close_date_changes)

    @property
    def deal_fields(self) -> pl.DataFrame:
        """One row per opportunity: ``opportunity_id``, ``owner``, the optional columns the
        export has, ``manager``, ``region`` and ``rep_segment`` (the deal's own manager and
        region, else its owner's from ``teams``; null when unknown) and, with close-date
        changes, the ``PUSH_COLUMNS``. What per-deal views and roll-ups read."""
        o = self.opportunities
        optional = [c for c in OPTIONAL_OPPORTUNITY_COLUMNS if c in o.columns]
        fields = o.select("opportunity_id", "owner", *optional)
        team = self.teams if self.teams is not None else pl.DataFrame(schema=TEAM_COLUMNS)
        team = team.rename({c: f"__{c}" for c in ("manager", "region", "segment")})
        fields = fields.join(team, on="owner", how="left", maintain_order="left")
        own = {
            c: pl.col(c) if c in optional else pl.lit(None, pl.String)
            for c in ("manager", "region")
        }
        fields = fields.with_columns(
            pl.coalesce(own["manager"], pl.col("__manager")).alias("manager"),
            pl.coalesce(own["region"], pl.col("__region")).alias("region"),
            pl.col("__segment").alias("rep_segment"),
        ).drop("__manager", "__region", "__segment")
        moved = self.pushes
        if moved is not None:
            fields = fields.join(moved, on="opportunity_id", how="left", maintain_order="left")
        return fields

    @property
    def last_date(self) -> dt.date:
        """The latest date anywhere in the history (default as-of date)."""
        dates = [latest(self.opportunities["created"]), latest(self.opportunities["closed"])]
        if self.stage_history is not None:
            dates.append(latest(self.stage_history["entered"]))
        if self.activities is not None:
            dates.append(latest(self.activities["date"]))
        for changes in (self.close_date_changes, self.category_changes):
            if changes is not None:
                dates.append(latest(changes["changed"]))
        return max(d for d in dates if d is not None)

    def as_of(self, date: dt.date) -> History:
        """The history as it stood at the end of ``date`` (``cut``)."""
        return cut(self, date)


def count_noun(count: int, plural: str) -> str:
    """``count_noun(1, "open deals")`` -> "1 open deal"; ``count_noun(3, "opportunities")``
    -> "3 opportunities"."""
    if count == 1:
        plural = plural[:-3] + "y" if plural.endswith("ies") else plural.removesuffix("s")
    return f"{count:,} {plural}"


def pushes(opportunities: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """``PUSH_COLUMNS`` per opportunity (in their order) from ``CLOSE_DATE_CHANGE_COLUMNS``
    rows: a change to a later date is a push, to an earlier one a pull-in."""
    shift = (pl.col("expected_close") - pl.col("previous")).dt.total_days()
    per_deal = changes.group_by("opportunity_id").agg(
        (shift > 0).sum().cast(pl.Int64).alias("pushes"),
        shift.filter(shift > 0).sum().cast(pl.Int64).alias("days_pushed"),
        (shift < 0).sum().cast(pl.Int64).alias("pull_ins"),
        (-shift.filter(shift < 0)).sum().cast(pl.Int64).alias("days_pulled"),
    )
    out = opportunities.select("opportunity_id").join(
        per_deal, on="opportunity_id", how="left", maintain_order="left"
    )
    return out.with_columns(pl.exclude("opportunity_id").fill_null(0)).select(
        [pl.col(c).cast(t) for c, t in PUSH_COLUMNS.items()]
    )


# --- as of a date ---------------------------------------------------------------------------------


def cut(history: History, as_of: dt.date | str) -> History:
    """The history as it stood at the end of ``as_of``, with nothing later leaking in.

    Opportunities created later are removed; deals closed later are open again; with stage
    history, stage rows entered later are dropped and those deals' stage becomes the last
    stage entered on or before ``as_of`` (the first stage if none); activities later are
    dropped; reps hired later are dropped and a later ``left`` is cleared. ``notes`` say what
    was cut. Amounts are as last recorded (a won deal keeps its final amount).
    """
    day = as_date(as_of, what="as-of date", column="--as-of")
    tag = f"as of {day}"
    notes = list(history.notes)
    o = history.opportunities
    first = earliest(o["created"])
    if first is not None and first > day:
        raise InputError(
            f"no opportunity was created on or before {day}",
            file=history.source or None,
            column="--as-of",
            expected=f"an as-of date on or after {first}",
        )
    later = o.filter(pl.col("created") > day).height
    o = o.filter(pl.col("created") <= day)
    reopen = pl.col("closed").is_not_null() & (pl.col("closed") > day)
    o = o.with_columns(reopen.alias("__reopened"))
    n_won = o.filter(pl.col("__reopened") & (pl.col("status") == "won")).height
    n_lost = o.filter(pl.col("__reopened") & (pl.col("status") == "lost")).height
    o = o.with_columns(
        pl.when(pl.col("__reopened"))
        .then(pl.lit("open"))
        .otherwise(pl.col("status"))
        .alias("status"),
        pl.when(pl.col("__reopened")).then(None).otherwise(pl.col("closed")).alias("closed"),
        # The CRM's deal fields are as exported: on a deal that closed later they tell its
        # outcome (100%, "Closed") or its last days, so they are unknown on that day.
        *[
            pl.when(pl.col("__reopened")).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("probability", "forecast_category", "next_step_date", "last_activity")
            if c in o.columns
        ],
    )
    if "last_activity" in o.columns:
        late = pl.col("last_activity") > day
        o = o.with_columns(
            pl.when(late).then(None).otherwise(pl.col("last_activity")).alias("last_activity")
        )
    if later:
        notes.append(f"{tag}: removed {count_noun(later, 'opportunities')} created later")
    if n_won or n_lost:
        notes.append(
            f"{tag}: reopened {count_noun(n_won + n_lost, 'deals')} that closed later "
            f"({n_won:,} won, {n_lost:,} lost later)"
        )

    first_stage = history.stages[0] if history.stages else None
    sh = history.stage_history
    if sh is not None:
        n_rows = sh.height
        moved = sh.filter(pl.col("entered") > day)["opportunity_id"].unique()
        sh = sh.filter(pl.col("entered") <= day)
        # One hash pass tags the kept rows: deals not created yet (their rows go) and deals
        # whose stage must be recomputed (reopened, or rows dropped).
        affected = pl.concat([moved, o.filter(pl.col("__reopened"))["opportunity_id"]]).unique()
        removed = history.opportunities.filter(pl.col("created") > day)["opportunity_id"]
        tags = pl.concat(
            [
                pl.DataFrame(
                    {"opportunity_id": ids, "__tag": [t] * ids.len()},
                    schema={"opportunity_id": pl.String, "__tag": pl.String},
                )
                for ids, t in ((removed, "removed"), (affected, "affected"))
            ]
        ).unique("opportunity_id", keep="first", maintain_order=True)  # removed wins
        sh = sh.join(tags, on="opportunity_id", how="left", maintain_order="left")
        last_stage = _last_stage(sh.filter(pl.col("__tag") == "affected"))
        sh = sh.filter(pl.col("__tag").ne_missing("removed")).drop("__tag")
        o = o.join(last_stage, on="opportunity_id", how="left", maintain_order="left")
        is_affected = pl.col("opportunity_id").is_in(affected.implode())
        o = o.with_columns(
            pl.when(is_affected & pl.col("__last").is_not_null())
            .then(pl.col("__last"))
            .when(pl.col("opportunity_id").is_in(moved.implode()))  # every row was later
            .then(pl.lit(first_stage))
            .otherwise(pl.col("stage"))
            .alias("__new")
        )
        n_restaged = o.select(pl.col("__new").ne_missing(pl.col("stage")).sum()).item()
        o = o.with_columns(pl.col("__new").alias("stage")).drop("__last", "__new")
        if n_rows > sh.height:
            dropped = count_noun(n_rows - sh.height, "stage-history rows")
            notes.append(
                f"{tag}: dropped {dropped} entered later; "
                f"{count_noun(n_restaged, 'deals')} back in the stage of that day"
            )
    elif n_won or n_lost:
        notes.append(f"{tag}: without stage history, reopened deals keep their last recorded stage")
    n_blank = o.filter((pl.col("status") == "open") & pl.col("stage").is_null()).height
    if n_blank and first_stage is not None:
        o = o.with_columns(
            pl.when((pl.col("status") == "open") & pl.col("stage").is_null())
            .then(pl.lit(first_stage))
            .otherwise(pl.col("stage"))
            .alias("stage")
        )
        notes.append(
            f"{tag}: {count_noun(n_blank, 'reopened deals')} with no known stage put "
            f"in the first stage ({first_stage})"
        )
    changes = history.close_date_changes
    if changes is not None:
        changes, o = _close_dates_as_of(changes, o, day)
    categories = history.category_changes
    if categories is not None:
        categories, o = _categories_as_of(categories, o, day)
    o = o.drop("__reopened")

    acts = history.activities
    if acts is not None:
        n = acts.height
        acts = acts.filter(pl.col("date") <= day)
        if acts.height < n:
            dropped = count_noun(n - acts.height, "activity rows")
            notes.append(f"{tag}: dropped {dropped} dated later")
    team = history.reps
    if team is not None:
        n = team.height
        left_later = team.filter(pl.col("left") > day).height
        team = team.filter(pl.col("hired") <= day).with_columns(
            pl.when(pl.col("left") > day).then(None).otherwise(pl.col("left")).alias("left")
        )
        if team.height < n:
            notes.append(f"{tag}: dropped {count_noun(n - team.height, 'reps')} hired later")
        if left_later:
            notes.append(f"{tag}: {count_noun(left_later, 'reps')} who left later kept on the team")
    if o.filter(pl.col("status") != "open").height == 0:
        notes.append(f"{tag}: no won or lost deals yet: win rates and cycle times cannot be fitted")
    last = history.last_date
    if day > last:
        notes.append(f"{tag}: the as-of date is after the last date in the history ({last})")
    return History(
        opportunities=o,
        stages=history.stages,
        stage_history=sh,
        activities=acts,
        reps=team,
        source=history.source,
        notes=tuple(notes),
        stage_order=history.stage_order,
        close_date_changes=changes,
        teams=history.teams,
        category_changes=categories,
    )


def _close_dates_as_of(
    changes: pl.DataFrame, o: pl.DataFrame, day: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The close-date changes made on or before ``day`` and each open deal's expected close
    date as it stood (``_record_as_of``); a closed deal has none."""
    kept, o = _record_as_of(changes, o, day, "expected_close", pl.Date)
    open_deal = pl.col("status") == "open"
    return kept, o.with_columns(pl.when(open_deal).then(pl.col("expected_close")))


def _categories_as_of(
    changes: pl.DataFrame, o: pl.DataFrame, day: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The forecast-category changes made on or before ``day`` and each open deal's category
    as it stood (``_record_as_of``); a closed deal keeps its exported one."""
    return _record_as_of(changes, o, day, "forecast_category", pl.String)


def _record_as_of(
    changes: pl.DataFrame, o: pl.DataFrame, day: dt.date, column: str, dtype: DataTypeClass
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A change record's rows made on or before ``day`` (of deals created by then), and each
    open deal's ``column`` as it stood: the last value set by then, else the value before its
    first change (null when the record does not say); a deal without changes keeps its
    exported one."""
    kept = changes.filter(
        (pl.col("changed") <= day) & pl.col("opportunity_id").is_in(o["opportunity_id"].implode())
    )
    ordered = changes.with_row_index("__i").sort(["opportunity_id", "changed", "__i"])
    then = ordered.group_by("opportunity_id").agg(
        pl.coalesce(
            pl.col(column).filter(pl.col("changed") <= day).last(),
            pl.col("previous").first(),
        ).alias("__then"),
    )
    o = o.join(then, on="opportunity_id", how="left", maintain_order="left")
    known = pl.col("opportunity_id").is_in(then["opportunity_id"].implode())
    exported = pl.col(column) if column in o.columns else pl.lit(None, dtype)
    o = o.with_columns(
        pl.when((pl.col("status") == "open") & known)
        .then(pl.col("__then"))
        .otherwise(exported)
        .alias(column)
    ).drop("__then")
    return kept, o


def _last_stage(sh: pl.DataFrame) -> pl.DataFrame:
    """opportunity_id -> ``__last``, the stage entered last (latest date; row order breaks
    ties) for a canonical stage-history frame."""
    idx = sh.with_row_index("__i")
    return idx.group_by("opportunity_id").agg(
        pl.col("stage").sort_by(["entered", "__i"]).last().alias("__last")
    )
