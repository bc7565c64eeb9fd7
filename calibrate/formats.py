"""Other CRM export shapes -> canonical columns: the ``--map`` column mapping, the status
vocabulary of common CRMs, and the Maven CRM sample (docs/formats.md).

Pure frame transforms on frames of text columns that carry ``__row`` (the spreadsheet row
number); ``calibrate.ingest`` reads the files and validates the values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import polars as pl

from simulator.errors import InputError

ROW = "__row"

# Canonical columns of each file, in order (types: calibrate/history.py).
CANONICAL = {
    "opportunities": ("opportunity_id", "owner", "created", "stage", "status", "closed",
                      "amount", "segment", "source"),
    "stage_history": ("opportunity_id", "stage", "entered"),
    "activities": ("owner", "date", "kind", "count"),
    "reps": ("owner", "hired", "left", "quota"),
}
ALL_CANONICAL = tuple(dict.fromkeys(c for cols in CANONICAL.values() for c in cols))

# Status values after squashing case, spaces, '_' and '-' ("Closed Won" -> "closedwon").
STATUS_VALUES = {"open": "open", "won": "won", "lost": "lost",
                 "closedwon": "won", "closedlost": "lost"}
# Stage values that are really outcomes (Salesforce "Closed Won", HubSpot "closedlost").
TERMINAL_STAGES = {"won": "won", "lost": "lost", "closedwon": "won", "closedlost": "lost"}


def squash(expr: pl.Expr) -> pl.Expr:
    """Lower-case and drop spaces, '_' and '-': the key that status words are matched on."""
    return expr.str.to_lowercase().str.replace_all(r"[\s_\-]+", "")


def terminal_values(stages: pl.Series) -> list[str]:
    """The distinct values of a stage column that are outcomes ('Closed Won', 'closedlost').
    Looks at distinct values only, so millions of rows cost one hash pass."""
    return [s for s in stages.drop_nulls().unique().to_list()
            if re.sub(r"[\s_\-]+", "", s.lower()) in TERMINAL_STAGES]


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
                    raise InputError(f"cannot read column mapping {part.strip()!r}",
                                     column="--map", expected="CANONICAL=SOURCE, e.g. "
                                     "owner='Opportunity Owner'")
                key, value = part.split("=", 1)
                pairs.append((key, value))
    mapping: dict[str, str] = {}
    for key, value in pairs:
        key, value = key.strip(), value.strip().strip('"').strip("'").strip()
        file, _, col = key.rpartition(".")
        if (file and file not in CANONICAL) or col not in (CANONICAL[file] if file
                                                             else ALL_CANONICAL):
            raise InputError(f"unknown canonical column {key!r} in the column mapping",
                             column="--map", expected="one of " + ", ".join(ALL_CANONICAL)
                             + " (optionally prefixed by a file: stage_history.entered)")
        if not value:
            raise InputError(f"no source column given for {key!r}", column="--map",
                             expected="CANONICAL=SOURCE")
        if key in mapping and mapping[key] != value:
            raise InputError(f"{key!r} is mapped twice ({mapping[key]!r} and {value!r})",
                             column="--map", expected="one source column per canonical column")
        mapping[key] = value
    return mapping


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def _find(columns: list[str], name: str) -> str | None:
    """The column called ``name``: exact match first, then ignoring case and spacing."""
    if name in columns:
        return name
    hits = [c for c in columns if _norm(c) == _norm(name)]
    return hits[0] if len(hits) == 1 else None


def select_canonical(df: pl.DataFrame, kind: str, mapping: Mapping[str, str], *, file: str,
                     required: Iterable[str]) -> tuple[pl.DataFrame, dict[str, str]]:
    """Pick and rename the canonical columns of a ``kind`` file.

    Returns the frame (``__row`` plus the canonical columns found) and {canonical: source
    column}, so that messages name the column as the file spells it. A file-qualified mapping
    (``stage_history.stage``) wins over a plain one (``stage``); a plain one applies where its
    source column exists, else the canonical name itself is used.
    """
    columns = [c for c in df.columns if c != ROW]
    if len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t", "|")):
        raise InputError(f"the header has a single column {columns[0][:60]!r}", file=file,
                         row=1, expected="comma-separated columns (re-export the file as CSV "
                         "with commas)")
    names: dict[str, str] = {}
    for canon in CANONICAL[kind]:
        qualified, plain = mapping.get(f"{kind}.{canon}"), mapping.get(canon)
        if qualified is not None:
            candidates = [qualified]
        elif plain is not None:
            candidates = [plain, canon]
        else:
            candidates = [canon]
        found = next((c for c in (_find(columns, n) for n in candidates) if c), None)
        if found is None:
            if canon in required:
                wanted = candidates[0]
                how = f"column {wanted!r}" + (f" (mapped to {canon})" if wanted != canon else "")
                present = ", ".join(repr(c) for c in columns)
                raise InputError(f"missing {how}; the file has: {present}", file=file, row=1,
                                 column=wanted,
                                 expected=f"the {kind} columns "
                                 + ", ".join(c for c in CANONICAL[kind] if c in required)
                                 + " (docs/formats.md)")
            continue
        if f"{found}_duplicated_0" in columns:
            raise InputError(f"column {found!r} appears more than once in the header",
                             file=file, row=1, column=found, expected="unique column names")
        if df.schema[found].is_nested() or df.schema[found] in (pl.Binary, pl.Object):
            raise InputError(f"column holds {df.schema[found]} values", file=file, column=found,
                             expected="plain text, number or date values")
        names[canon] = found
    frame = df.select(ROW, *[pl.col(src).alias(canon) for canon, src in names.items()])
    return frame, names


# --- Maven CRM sample -----------------------------------------------------------------------------
MAVEN_STAGE = "Engaging"
_MAVEN_STATUS = {"Won": "won", "Lost": "lost", "Engaging": "open", "Prospecting": None}
_MAVEN_COLUMNS = ("opportunity_id", "sales_agent", "product", "deal_stage", "engage_date",
                  "close_date", "close_value")


def _product_key(expr: pl.Expr) -> pl.Expr:
    # 'GTXPro' in the pipeline is 'GTX Pro' in products.csv: match ignoring case and spaces.
    return expr.str.to_lowercase().str.replace_all(r"\s+", "")


def maven_opportunities(pipeline: pl.DataFrame, products: pl.DataFrame, *, file: str,
                        products_file: str) -> tuple[pl.DataFrame, dict[str, str], list[str]]:
    """Maven ``sales_pipeline.csv`` (+ ``products.csv``) -> canonical opportunity columns.

    Won -> won, Lost -> lost, Engaging -> open, one stage "Engaging"; amount is close_value for
    won deals and the product's list price for lost and open ones; segment is the product.
    Prospecting rows are dropped (they have no engage date; see the returned note).
    Returns (frame of text columns with ``__row``, {canonical: source column}, notes).
    """
    for col in _MAVEN_COLUMNS:
        if col not in pipeline.columns:
            raise InputError(f"missing column {col!r}; the file has: "
                             + ", ".join(repr(c) for c in pipeline.columns if c != ROW),
                             file=file, row=1, column=col, expected="the Maven sales_pipeline.csv")
    for col in ("product", "sales_price"):
        if col not in products.columns:
            raise InputError(f"missing column {col!r}", file=products_file, row=1, column=col,
                             expected="the Maven products.csv (product, series, sales_price)")
    stage = pl.col("deal_stage").str.strip_chars()
    bad = pipeline.filter(stage.is_null() | ~stage.is_in(list(_MAVEN_STATUS)))
    if bad.height:
        first = bad.row(0, named=True)
        raise InputError(f"unknown deal_stage {first['deal_stage']!r}"
                         + (f" ({bad.height - 1:,} more rows like it)" if bad.height > 1 else ""),
                         file=file, row=first[ROW], column="deal_stage",
                         expected=", ".join(_MAVEN_STATUS))
    prospecting = pipeline.filter(stage == "Prospecting").height
    deals = pipeline.filter(stage != "Prospecting")

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
        raise InputError(f"product {first['product']!r} is not in {products_file}", file=file,
                         row=first[ROW], column="product",
                         expected="one of " + ", ".join(prices["__product"].to_list()))

    won = pl.col("deal_stage").str.strip_chars() == "Won"
    frame = deals.select(
        ROW,
        pl.col("opportunity_id"),
        pl.col("sales_agent").alias("owner"),
        pl.col("engage_date").alias("created"),
        pl.lit(MAVEN_STAGE).alias("stage"),
        pl.col("deal_stage").str.strip_chars().replace_strict(_MAVEN_STATUS,
                                                              return_dtype=pl.String)
        .alias("status"),
        pl.col("close_date").alias("closed"),
        pl.when(won).then(pl.col("close_value").cast(pl.String))
        .otherwise(pl.col("__price").cast(pl.String)).alias("amount"),
        pl.col("__product").alias("segment"),
        pl.lit(None, pl.String).alias("source"),
    )
    names = {"opportunity_id": "opportunity_id", "owner": "sales_agent",
             "created": "engage_date", "stage": "deal_stage", "status": "deal_stage",
             "closed": "close_date", "amount": "close_value", "segment": "product",
             "source": "source"}
    n_priced = frame.filter(pl.col("status") != "won").height
    notes = [f"maven: amount of {n_priced:,} lost and open deals is the product's list price "
             f"({products_file}); won deals use close_value"]
    if prospecting:
        notes.append(
            f"maven: dropped {prospecting:,} Prospecting rows: they have no engage date, so "
            "their age is unknown (no duration information) and whether they existed on any "
            "as-of date is unknown; they are not in the pipeline model")
    return frame, names, notes
