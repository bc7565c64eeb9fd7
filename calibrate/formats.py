"""Other CRM export shapes -> canonical columns: the ``--map`` column mapping, the status
vocabulary of common CRMs, and the Maven CRM sample (docs/formats.md).

Pure frame transforms on frames of text columns that carry ``__row`` (the spreadsheet row
number); ``calibrate.ingest`` reads the files and validates the values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import polars as pl

from salesim.simulator.errors import InputError

ROW = "__row"

# Canonical columns of each file, in order (types: salesim/history.py).
CANONICAL = {
    "opportunities": (
        "opportunity_id",
        "owner",
        "created",
        "stage",
        "status",
        "closed",
        "amount",
        "segment",
        "source",
    ),
    "stage_history": ("opportunity_id", "stage", "entered"),
    "activities": ("owner", "date", "kind", "count"),
    "reps": ("owner", "hired", "left", "quota"),
    "close_date_history": ("opportunity_id", "changed", "expected_close"),
    "teams": ("owner", "manager", "region", "segment"),
}
# Optional columns read only when mapped (a profile or --map) or present by name: the deal
# fields of an opportunity (salesim/history.py), a rep's team in a reps file, and what a
# close-date history may say besides the new date (``field``: a field-history file's field
# name; only its close-date and forecast-category rows are read; ``forecast_category``: the
# deal's category on each row, as Salesforce's Opportunity History has it).
OPTIONAL = {
    "opportunities": (
        "probability",
        "forecast_category",
        "expected_close",
        "next_step_date",
        "last_activity",
        "product",
        "region",
        "manager",
    ),
    "reps": ("manager", "region", "segment"),
    "close_date_history": (
        "previous",
        "field",
        "stage",
        "amount",
        "probability",
        "forecast_category",
    ),
}
OPTIONAL_OPPORTUNITY = OPTIONAL["opportunities"]
ALL_CANONICAL = tuple(
    dict.fromkeys(c for kind in CANONICAL for c in CANONICAL[kind] + OPTIONAL.get(kind, ()))
)

# Forecast categories as CRMs spell them, squashed (``_squash``) -> canonical
# (``history.FORECAST_CATEGORIES``); a profile's ``[values.forecast_category]`` maps others.
FORECAST_CATEGORY_WORDS = {
    "commit": "commit",
    "bestcase": "best_case",
    "pipeline": "pipeline",
    "omitted": "omitted",
    "omit": "omitted",
    "closed": "closed",
}
# A field-history row about the close date ("Close Date", "CloseDate"), squashed.
CLOSE_DATE_FIELDS = ("closedate",)
# A field-history row about the forecast category ("Forecast Category", Salesforce's API name
# "ForecastCategoryName"), squashed: its new and old values are categories, not dates.
CATEGORY_FIELDS = ("forecastcategory", "forecastcategoryname")

# Status values after squashing case, spaces, '_' and '-' ("Closed Won" -> "closedwon").
STATUS_VALUES = {
    "open": "open",
    "won": "won",
    "lost": "lost",
    "closedwon": "won",
    "closedlost": "lost",
}
# Stage values that are really outcomes (Salesforce "Closed Won", HubSpot "closedlost").
TERMINAL_STAGES = {"won": "won", "lost": "lost", "closedwon": "won", "closedlost": "lost"}


def squash(expr: pl.Expr) -> pl.Expr:
    """Lower-case and drop spaces, '_' and '-': the key that status words are matched on."""
    return expr.str.to_lowercase().str.replace_all(r"[\s_\-]+", "")


def outcome_words(won: Iterable[str] = (), lost: Iterable[str] = ()) -> dict[str, str]:
    """``TERMINAL_STAGES`` plus a profile's own won and lost labels, squashed."""
    words = dict(TERMINAL_STAGES)
    words.update({_squash(w): "won" for w in won})
    words.update({_squash(w): "lost" for w in lost})
    return words


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text.lower())


def terminal_values(stages: pl.Series, outcomes: Mapping[str, str] = TERMINAL_STAGES) -> list[str]:
    """The distinct values of a stage column that are outcomes ('Closed Won', 'closedlost').
    Looks at distinct values only, so millions of rows cost one hash pass."""
    return [s for s in stages.drop_nulls().unique().to_list() if _squash(s) in outcomes]


# --- column mapping (--map canonical=source) ------------------------------------------------------
_PAIR_SPLIT = re.compile(r",(?=\s*[\w.]+\s*=)")  # a comma that starts another "name=" pair


def parse_mapping(spec: Mapping[str, str] | str | Iterable[str] | None) -> dict[str, str]:
    """``--map`` values -> {canonical: source}.

    Accepts a dict, one string, or several strings; each string holds one ``canonical=source``
    pair or comma-separated pairs (``"owner=Deal owner,created=Create Date"``). A canonical
    name may be qualified by its file (``stage_history.entered=Changed On``) to map only there.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        items = [spec] if isinstance(spec, str) else list(spec)
        pairs = []
        for item in items:
            for part in _PAIR_SPLIT.split(str(item)):
                if not part.strip():
                    continue
                if "=" not in part:
                    raise InputError(
                        f"cannot read column mapping {part.strip()!r}",
                        column="--map",
                        expected="CANONICAL=SOURCE, e.g. owner='Opportunity Owner'",
                    )
                key, value = part.split("=", 1)
                pairs.append((key, value))
    mapping: dict[str, str] = {}
    for key, value in pairs:
        key, value = key.strip(), value.strip().strip('"').strip("'").strip()
        file, _, col = key.rpartition(".")
        known = (CANONICAL[file] if file in CANONICAL else ()) if file else ALL_CANONICAL
        if col not in known + (OPTIONAL_OPPORTUNITY if file in ("", "opportunities") else ()):
            raise InputError(
                f"unknown canonical column {key!r} in the column mapping",
                column="--map",
                expected="one of "
                + ", ".join(ALL_CANONICAL + OPTIONAL_OPPORTUNITY)
                + " (optionally prefixed by a file: stage_history.entered)",
            )
        if not value:
            raise InputError(
                f"no source column given for {key!r}", column="--map", expected="CANONICAL=SOURCE"
            )
        if key in mapping and mapping[key] != value:
            raise InputError(
                f"{key!r} is mapped twice ({mapping[key]!r} and {value!r})",
                column="--map",
                expected="one source column per canonical column",
            )
        mapping[key] = value
    return mapping


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def same_name(a: str, b: str) -> bool:
    """Header names match ignoring case and spacing."""
    return _norm(a) == _norm(b)


def find_column(columns: list[str], name: str) -> str | None:
    """The column called ``name``: exact match first, then ignoring case and spacing."""
    if name in columns:
        return name
    hits = [c for c in columns if _norm(c) == _norm(name)]
    return hits[0] if len(hits) == 1 else None


def candidates(
    mapping: Mapping[str, str | tuple[str, ...]], kind: str, canon: str
) -> tuple[tuple[str, ...], bool]:
    """The source names to try for ``canon`` in a ``kind`` file and whether they were mapped.
    A file-qualified mapping (``stage_history.stage``) wins over a plain one (``stage``)."""
    for key in (f"{kind}.{canon}", canon):
        given = mapping.get(key)
        if given is not None:
            return ((given,) if isinstance(given, str) else tuple(given)), True
    return (canon,), False


def _non_empty(df: pl.DataFrame, col: str) -> pl.Expr:
    if df.schema[col] == pl.String:
        return pl.when(pl.col(col).str.strip_chars() != "").then(pl.col(col))
    return pl.col(col).cast(pl.String)


def select_canonical(
    df: pl.DataFrame,
    kind: str,
    mapping: Mapping[str, str | tuple[str, ...]],
    *,
    file: str,
    required: Iterable[str],
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Pick and rename the canonical columns of a ``kind`` file.

    Returns the frame (``__row`` plus the canonical columns found) and {canonical: source
    column}, so that messages name the column as the file spells it. A mapping value is one
    source name or a list of candidates: the first the file has is used, and when it has
    several, each row takes the first non-empty one (Pipedrive's won time / lost time). A
    mapped column the file lacks falls back to the canonical name itself.
    """
    columns = [c for c in df.columns if c != ROW]
    if len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t", "|")):
        raise InputError(
            f"the header has a single column {columns[0][:60]!r}",
            file=file,
            row=1,
            expected="comma-separated columns (re-export the file as CSV with commas)",
        )
    names: dict[str, str] = {}
    exprs: list[pl.Expr] = []
    for canon in CANONICAL[kind] + OPTIONAL.get(kind, ()):
        tried, mapped = candidates(mapping, kind, canon)
        found = list(dict.fromkeys(c for c in (find_column(columns, n) for n in tried) if c))
        if not found and mapped and canon not in tried:
            found = [c for c in (find_column(columns, canon),) if c]
        if not found:
            if canon in required:
                wanted = tried[0]
                how = f"column {wanted!r}" + (f" (mapped to {canon})" if wanted != canon else "")
                present = ", ".join(repr(c) for c in columns)
                raise InputError(
                    f"missing {how}; the file has: {present}",
                    file=file,
                    row=1,
                    column=wanted,
                    expected=f"the {kind} columns "
                    + ", ".join(c for c in CANONICAL[kind] if c in required)
                    + " (docs/formats.md)",
                )
            continue
        for col in found:
            if f"{col}_duplicated_0" in columns:
                raise InputError(
                    f"column {col!r} appears more than once in the header",
                    file=file,
                    row=1,
                    column=col,
                    expected="unique column names",
                )
            if df.schema[col].is_nested() or df.schema[col] in (pl.Binary, pl.Object):
                raise InputError(
                    f"column holds {df.schema[col]} values",
                    file=file,
                    column=col,
                    expected="plain text, number or date values",
                )
        names[canon] = found[0]
        if len(found) == 1:
            exprs.append(pl.col(found[0]).alias(canon))
        else:
            exprs.append(pl.coalesce([_non_empty(df, c) for c in found]).alias(canon))
    return df.select(ROW, *exprs), names


# --- report layouts: footers, value maps, one-file and wide stage history -----------------------
def _blank(values: pl.Series) -> pl.Series:
    return (values.is_null() | (values.str.strip_chars() == "")).fill_null(True)


def footer_start(df: pl.DataFrame) -> int | None:
    """Where a report footer starts (a row index), or None.

    Salesforce reports end with a blank line and single-field lines ("Confidential
    Information - Do Not Distribute", "Generated By: ..."). A footer is the first blank row
    after which every row has at most its first field filled. A frame of text columns
    (blank lines still in it) with ``__row``. Works on Series, not ``pl.col(name)``: a header
    may be named anything, "*" included.
    """
    cols = [c for c in df.columns if c != ROW]
    if len(cols) < 2 or df.height == 0 or any(df.schema[c] != pl.String for c in cols):
        return None
    single = _blank(df.get_column(cols[1]))
    for c in cols[2:]:
        single &= _blank(df.get_column(c))
    blank = single & _blank(df.get_column(cols[0]))
    multi = (~single).arg_true()
    start = int(multi[-1]) + 1 if multi.len() else 0
    blanks = blank.slice(start).arg_true()
    return start + int(blanks[0]) if blanks.len() else None


def map_values(
    frame: pl.DataFrame, col: str, table: Mapping[str, str], *, keep: bool
) -> tuple[pl.DataFrame, list[str]]:
    """Replace a column's values by a profile's value map (keys: ``profiles.value_key``).
    Unlisted values are kept (``keep``) or become missing; returns the unlisted values."""
    if col not in frame.columns or not table:
        return frame, []
    text = pl.col(col).str.strip_chars()
    key = text.str.to_lowercase().str.replace_all(r"\s+", " ")
    mapped = key.replace_strict(dict(table), default=None, return_dtype=pl.String)
    unlisted = (
        frame.filter(mapped.is_null() & (text.str.len_chars() > 0))[col]
        .str.strip_chars()
        .unique(maintain_order=True)
        .to_list()
    )
    return frame.with_columns(
        pl.coalesce(mapped, text if keep else pl.lit(None, pl.String)).alias(col)
    ), unlisted


def split_one_file(
    opps: pl.DataFrame, entered: pl.Series, *, file: str, names: Mapping[str, str]
) -> pl.DataFrame:
    """A one-file history export (one row per stage change, the deal's columns repeated) ->
    one row per deal: its latest row (by stage-change date, then file order), in the order
    deals first appear. Rows of one deal that disagree on owner or created are an error."""
    for col in ("owner", "created"):
        if col not in opps.columns:
            continue
        text = pl.col(col).str.strip_chars()
        first = opps.with_columns(
            text.first().over("opportunity_id").alias("__first"),
            pl.col(ROW).first().over("opportunity_id").alias("__row0"),
        )
        bad = first.filter(text.ne_missing(pl.col("__first")))
        if bad.height:
            r = bad.row(0, named=True)
            raise InputError(
                f"deal {r['opportunity_id']!r} has {col} {r['__first']!r} at row "
                f"{r['__row0']} and {r[col]!r} at row {r[ROW]}",
                file=file,
                row=r[ROW],
                column=names.get(col, col),
                expected="the same value on every row of a deal",
            )
    order = opps.select("opportunity_id", pl.col(ROW).alias("__order"))
    latest = (
        opps.with_columns(entered.alias("__entered"))
        .sort(["opportunity_id", "__entered", ROW], nulls_last=False)
        .group_by("opportunity_id", maintain_order=True)
        .last()
    )
    first_row = order.group_by("opportunity_id").agg(pl.col("__order").min())
    return latest.join(first_row, on="opportunity_id").sort("__order").drop("__entered", "__order")


def melt_stage_entered(
    table: pl.DataFrame, ids: pl.Expr, stage_entered: Mapping[str, str]
) -> tuple[pl.DataFrame | None, dict[str, str]]:
    """A wide stage history (one "date entered" column per stage, HubSpot) -> rows of
    (``__row``, opportunity_id, stage, entered) for the dates that are filled; None when the
    file has none of the columns. Also returns {stage: source column}."""
    columns = [c for c in table.columns if c != ROW]
    found = {
        stage: c
        for stage, name in stage_entered.items()
        if (c := find_column(columns, name)) is not None
    }
    if not found:
        return None, {}
    parts = [
        table.select(
            ROW,
            ids.alias("opportunity_id"),
            pl.lit(stage).alias("stage"),
            _non_empty(table, col).alias("entered"),
        )
        for stage, col in found.items()
    ]
    long = pl.concat(parts).filter(pl.col("entered").is_not_null()).sort(ROW, maintain_order=True)
    return long, found


# --- Maven CRM sample -----------------------------------------------------------------------------
MAVEN_STAGE = "Engaging"
_MAVEN_STATUS = {"Won": "won", "Lost": "lost", "Engaging": "open", "Prospecting": None}
_MAVEN_COLUMNS = (
    "opportunity_id",
    "sales_agent",
    "product",
    "deal_stage",
    "engage_date",
    "close_date",
    "close_value",
)


def _product_key(expr: pl.Expr) -> pl.Expr:
    # 'GTXPro' in the pipeline is 'GTX Pro' in products.csv: match ignoring case and spaces.
    return expr.str.to_lowercase().str.replace_all(r"\s+", "")


def maven_opportunities(
    pipeline: pl.DataFrame, products: pl.DataFrame, *, file: str, products_file: str
) -> tuple[pl.DataFrame, dict[str, str], list[str]]:
    """Maven ``sales_pipeline.csv`` (+ ``products.csv``) -> canonical opportunity columns.

    Won -> won, Lost -> lost, Engaging -> open, one stage "Engaging"; amount is close_value for
    won deals and the product's list price for lost and open ones; segment is the product.
    Prospecting rows are dropped (they have no engage date; see the returned note).
    Returns (frame of text columns with ``__row``, {canonical: source column}, notes).
    """
    for col in _MAVEN_COLUMNS:
        if col not in pipeline.columns:
            raise InputError(
                f"missing column {col!r}; the file has: "
                + ", ".join(repr(c) for c in pipeline.columns if c != ROW),
                file=file,
                row=1,
                column=col,
                expected="the Maven sales_pipeline.csv",
            )
    for col in ("product", "sales_price"):
        if col not in products.columns:
            raise InputError(
                f"missing column {col!r}",
                file=products_file,
                row=1,
                column=col,
                expected="the Maven products.csv (product, series, sales_price)",
            )
    stage = pl.col("deal_stage").str.strip_chars()
    bad = pipeline.filter(stage.is_null() | ~stage.is_in(list(_MAVEN_STATUS)))
    if bad.height:
        first = bad.row(0, named=True)
        raise InputError(
            f"unknown deal_stage {first['deal_stage']!r}"
            + (f" ({bad.height - 1:,} more rows like it)" if bad.height > 1 else ""),
            file=file,
            row=first[ROW],
            column="deal_stage",
            expected=", ".join(_MAVEN_STATUS),
        )
    prospecting = pipeline.filter(stage == "Prospecting").height
    deals = pipeline.filter(stage != "Prospecting")

    # A price is checked here, where its file and row are known: once it stands in for an
    # amount, a bad one would be blamed on sales_pipeline.csv's close_value.
    price = (
        pl.col("sales_price")
        .cast(pl.String)
        .str.strip_chars()
        .str.replace_all(",", "")
        .cast(pl.Float64, strict=False)
    )
    bad = products.filter(price.is_null() | ~price.is_finite() | (price < 0))
    if bad.height:
        first = bad.row(0, named=True)
        raise InputError(
            f"cannot read the price {first['sales_price']!r} of product {first['product']!r}",
            file=products_file,
            row=first[ROW],
            column="sales_price",
            expected="a number ≥ 0",
        )
    prices = products.select(
        _product_key(pl.col("product").str.strip_chars()).alias("__key"),
        pl.col("product").str.strip_chars().alias("__product"),
        pl.col("sales_price").alias("__price"),
    ).unique("__key", keep="first", maintain_order=True)
    deals = deals.with_columns(_product_key(pl.col("product").str.strip_chars()).alias("__key"))
    deals = deals.join(prices, on="__key", how="left", maintain_order="left")
    unknown = deals.filter(pl.col("__product").is_null())
    if unknown.height:
        first = unknown.row(0, named=True)
        raise InputError(
            f"product {first['product']!r} is not in {products_file}",
            file=file,
            row=first[ROW],
            column="product",
            expected="one of " + ", ".join(prices["__product"].to_list()),
        )

    won = pl.col("deal_stage").str.strip_chars() == "Won"
    frame = deals.select(
        ROW,
        pl.col("opportunity_id"),
        pl.col("sales_agent").alias("owner"),
        pl.col("engage_date").alias("created"),
        pl.lit(MAVEN_STAGE).alias("stage"),
        pl.col("deal_stage")
        .str.strip_chars()
        .replace_strict(_MAVEN_STATUS, return_dtype=pl.String)
        .alias("status"),
        pl.col("close_date").alias("closed"),
        pl.when(won)
        .then(pl.col("close_value").cast(pl.String))
        .otherwise(pl.col("__price").cast(pl.String))
        .alias("amount"),
        pl.col("__product").alias("segment"),
        pl.lit(None, pl.String).alias("source"),
        pl.col("__product").alias("product"),
    )
    names = {
        "opportunity_id": "opportunity_id",
        "owner": "sales_agent",
        "created": "engage_date",
        "stage": "deal_stage",
        "status": "deal_stage",
        "closed": "close_date",
        "amount": "close_value",
        "segment": "product",
        "source": "source",
        "product": "product",
    }
    n_priced = frame.filter(pl.col("status") != "won").height
    notes = [
        f"maven: amount of {n_priced:,} lost and open deals is the product's list price "
        f"({products_file}); won deals use close_value"
    ]
    if prospecting:
        notes.append(
            f"maven: dropped {prospecting:,} Prospecting rows: they have no engage date, so "
            "their age is unknown (no duration information) and whether they existed on any "
            "as-of date is unknown; they are not in the pipeline model"
        )
    return frame, names, notes
