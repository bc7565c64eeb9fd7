"""Read CRM history (CSV or Parquet) into a validated ``History`` (``salesim.history``).

docs/formats.md describes the files, the normalisation rules and the error messages. Every
check is a vectorised polars expression: the first offending row is reported (rows are
numbered as a spreadsheet shows them: header = row 1, first data row = row 2) together with
how many other rows share the problem.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from salesim.history import (  # noqa: F401 (cut: re-export)
    ACTIVITY_COLUMNS,
    CATEGORY_CHANGE_COLUMNS,
    CLOSE_DATE_CHANGE_COLUMNS,
    FORECAST_CATEGORIES,
    OPPORTUNITY_COLUMNS,
    OPTIONAL_FILES,
    OPTIONAL_OPPORTUNITY_COLUMNS,
    REP_COLUMNS,
    STAGE_HISTORY_COLUMNS,
    TEAM_COLUMNS,
    History,
    count_noun,
    cut,
)
from salesim.simulator.errors import InputError
from salesim.simulator.limits import MAX_ACTIVITIES, MAX_AMOUNT

from . import dates, formats, profiles
from .formats import ROW, TERMINAL_STAGES, squash

FORMATS = ("canonical", "maven")
EXTENSIONS = (".csv", ".parquet")
_THOUSANDS = r"^-?\d{1,3}(?:,\d{3})+(?:\.\d*)?$"


# --- which files ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryFiles:
    """The files a history is read from (None: not given and not found)."""

    opportunities: Path
    stage_history: Path | None = None
    activities: Path | None = None
    reps: Path | None = None
    close_date_history: Path | None = None
    teams: Path | None = None
    products: Path | None = None  # Maven only
    format: str = "canonical"

    def as_dict(self) -> dict[str, str | None]:
        keys = ("opportunities", *OPTIONAL_FILES) + (("products",) if self.products else ())
        return {k: (str(getattr(self, k)) if getattr(self, k) else None) for k in keys}


def _in_folder(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}{ext}" for ext in EXTENSIONS if (folder / f"{stem}{ext}").is_file()]
    if len(found) > 1:
        raise InputError(
            f"both {found[0].name} and {found[1].name} exist",
            file=str(folder),
            expected="one of them (or name the file explicitly)",
        )
    return found[0] if found else None


def _given(path: str | os.PathLike | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"{what} file not found", file=str(p), expected="an existing CSV or Parquet file"
        )
    return p


def find_files(
    path: str | os.PathLike,
    *,
    format: str = "canonical",
    stage_history: str | os.PathLike | None = None,
    activities: str | os.PathLike | None = None,
    reps: str | os.PathLike | None = None,
    close_date_history: str | os.PathLike | None = None,
    teams: str | os.PathLike | None = None,
) -> HistoryFiles:
    """Locate the files: ``path`` is a folder (``opportunities.csv|parquet`` and the optional
    ``OPTIONAL_FILES`` beside it) or one opportunities file (then only the keyword files are
    read). Keyword files override what the folder holds. The Maven folder's
    ``sales_teams.csv`` is its teams file."""
    fmt = str(format).lower()
    if fmt not in FORMATS:
        raise InputError(
            f"unknown format {format!r}", column="--format", expected=" or ".join(FORMATS)
        )
    p = Path(path)
    if not p.exists():
        raise InputError(
            "history not found",
            file=str(p),
            expected="a folder or an opportunities CSV/Parquet file",
        )
    folder = p if p.is_dir() else None
    found: dict[str, Path | None] = {}
    products = None
    opps: Path | None
    if fmt == "maven":
        base = p if p.is_dir() else p.parent
        opps = base / "sales_pipeline.csv" if p.is_dir() else p
        products = base / "products.csv"
        for f in (opps, products):
            if not f.is_file():
                raise InputError(
                    f"{f.name} not found",
                    file=str(base),
                    expected="the Maven CRM folder (sales_pipeline.csv, products.csv)",
                )
        folder = None  # the Maven folder holds no canonical optional files
        if teams is None and (base / "sales_teams.csv").is_file():
            teams = base / "sales_teams.csv"
    elif folder is not None:
        opps = _in_folder(folder, "opportunities")
        if opps is None:
            present = sorted(x.name for x in folder.iterdir())[:12]
            hint = (
                " or --format maven for the Maven sample" if "sales_pipeline.csv" in present else ""
            )
            raise InputError(
                "no opportunities.csv or opportunities.parquet in the folder; it "
                "has: " + (", ".join(present) or "nothing"),
                file=str(p),
                expected=f"a history folder (docs/formats.md){hint}",
            )
    else:
        opps = p
    for name, given in (
        ("stage_history", stage_history),
        ("activities", activities),
        ("reps", reps),
        ("close_date_history", close_date_history),
        ("teams", teams),
    ):
        found[name] = _given(given, name.replace("_", " ")) or (
            _in_folder(folder, name) if folder is not None else None
        )
    return HistoryFiles(opportunities=opps, products=products, format=fmt, **found)


# --- reading one table ----------------------------------------------------------------------------
def _csv_problem(path: Path) -> tuple[int | None, str]:
    """Where a CSV that polars refused goes wrong (only runs on that error path)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1, "the file is not UTF-8 text"
    row = 0
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header: list[str] = []
            for record in reader:
                row += 1
                if row == 1:
                    header = record
                elif len(record) > len(header):
                    return row, f"{len(record)} fields where the header has {len(header)}"
        except csv.Error as exc:
            return row + 1, f"malformed CSV ({exc})"
    return None, "malformed CSV"


def _header(name: str) -> str:
    return name.strip().replace('""', '"')


def _today() -> dt.date:
    return dt.date.today()


def _csv_source(path: Path):
    """What polars reads for a CSV: the path, or its bytes with old-Mac line endings (CR
    only, as Excel's "CSV (Macintosh)" writes) turned into LF. UTF-16/32 text (Excel's
    "Unicode Text") is refused by name rather than misread as one odd header."""
    with open(path, "rb") as fh:
        head = fh.read(65_536)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        raise InputError(
            "the file is UTF-16 or binary, not UTF-8 text",
            file=str(path),
            expected="a CSV saved as UTF-8 (Excel: Save As > CSV UTF-8)",
        )
    if b"\r" in head and b"\n" not in head:
        data = path.read_bytes()
        if b"\n" not in data:
            return io.BytesIO(data.replace(b"\r", b"\n"))
    return path


def read_table(path: Path, notes: list[str] | None = None) -> pl.DataFrame:
    """One CSV (all columns as text) or Parquet file, with ``__row`` = spreadsheet row.

    Blank lines are dropped, and so is a report footer (``formats.footer_start``), with a
    note appended to ``notes``. A file without data rows gives an empty frame (the caller
    decides whether that is an error); an unreadable file raises ``InputError``.
    """
    file = str(path)
    if path.suffix.lower() in (".xlsx", ".xls", ".numbers", ".ods"):
        raise InputError(
            "spreadsheet files are not read",
            file=file,
            expected="the sheet exported as CSV (UTF-8, comma-separated)",
        )
    try:
        if path.stat().st_size == 0:
            return pl.DataFrame({ROW: []}, schema={ROW: pl.Int64})
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", file=file) from None
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pl.read_parquet(path)
        except Exception as exc:  # polars raises several kinds; all mean "not readable"
            raise InputError(
                f"cannot read Parquet file: {str(exc).splitlines()[0]}",
                file=file,
                expected="a Parquet file",
            ) from None
        df = df.with_row_index(ROW, offset=2)
    else:
        source = _csv_source(path)
        try:
            df = pl.read_csv(
                source,
                infer_schema=False,
                row_index_name=ROW,
                row_index_offset=2,
                raise_if_empty=False,
            )
        except OSError as exc:
            raise InputError(f"cannot read the file ({exc.strerror})", file=file) from None
        except pl.exceptions.PolarsError as exc:
            row, what = _csv_problem(path)
            if row is None:
                what = f"cannot read CSV: {str(exc).splitlines()[0]}"
            raise InputError(
                what,
                file=file,
                row=row,
                expected="a comma-separated UTF-8 file with one header row",
            ) from None
        # polars keeps a quoted header's doubled quotes ('Date entered ""Closed Won""')
        df = df.rename({c: _header(c) for c in df.columns if c != _header(c)})
    df = df.with_columns(pl.col(ROW).cast(pl.Int64))
    footer = formats.footer_start(df)
    if footer is not None:
        if notes is not None and df.height - footer > 1:
            notes.append(
                f"{file}: read away a report footer from row {df[ROW][footer]} on "
                f"({df.height - footer - 1} lines after a blank line)"
            )
        df = df.head(footer)
    data_cols = [c for c in df.columns if c != ROW]
    if data_cols and df.height:
        df = df.filter(~pl.all_horizontal(pl.col(data_cols).is_null()))  # blank lines
    return df


# --- value parsing (vectorised) -------------------------------------------------------------------
def _text(df: pl.DataFrame, col: str) -> pl.Expr:
    """Trimmed text; empty -> null. Typed (Parquet) columns are cast to text."""
    if col not in df.columns:
        return pl.lit(None, pl.String)
    dtype = df.schema[col]
    if dtype == pl.String:
        e = pl.col(col).str.strip_chars()
        return pl.when(e.str.len_chars() > 0).then(e)
    return pl.col(col).cast(pl.String)


def _date(df: pl.DataFrame, col: str, date_format: str | None) -> pl.Series:
    """A date column: ISO text by default, ``date_format`` (strftime) if given; a time after
    the date is dropped. Unreadable values become null (the caller reports them)."""
    if col not in df.columns:
        return pl.Series(col, [None] * df.height, dtype=pl.Date)
    dtype = df.schema[col]
    if dtype == pl.Date:
        return df[col]
    if isinstance(dtype, pl.Datetime):
        return df[col].dt.date()
    if dtype != pl.String:
        return pl.Series(col, [None] * df.height, dtype=pl.Date)
    return dates.parse_dates(df.select(_text(df, col)).to_series(), date_format)


def _number(df: pl.DataFrame, col: str) -> pl.Series:
    """A number: plain, with a leading currency symbol, or with thousands commas."""
    if col not in df.columns:
        return pl.Series(col, [None] * df.height, dtype=pl.Float64)
    dtype = df.schema[col]
    if dtype.is_numeric():
        return df[col].cast(pl.Float64)
    text = df.select(_text(df, col)).to_series()
    t = pl.col("t").str.replace(r"^([-+]?)\s*[$€£]\s*", "${1}")
    t = pl.when(t.str.contains(_THOUSANDS)).then(t.str.replace_all(",", "")).otherwise(t)
    return dates.fast_or_full(
        text, pl.col("t").cast(pl.Float64, strict=False), t.cast(pl.Float64, strict=False)
    )


@dataclass(frozen=True)
class _Check:
    """Rows where ``bad`` holds are an error in ``column``."""

    bad: pl.Expr
    column: str
    message: Callable[[dict], str]
    expected: str


def _fail_first(df: pl.DataFrame | pl.LazyFrame, check: _Check, *, file: str) -> None:
    """Raise for the first row where the check fails, saying how many more rows share it."""
    hits = df.lazy().filter(check.bad.fill_null(False)).collect()
    if hits.height == 0:
        return
    first = hits.row(0, named=True)
    text = check.message(first)
    if hits.height > 1:
        text += f" ({hits.height - 1:,} more row{'s' if hits.height > 2 else ''} like it)"
    raise InputError(text, file=file, row=first[ROW], column=check.column, expected=check.expected)


def _run_checks(df: pl.DataFrame | pl.LazyFrame, checks: list[_Check], *, file: str) -> None:
    """All checks in one pass; the first failing one (in list order) is raised. A lazy
    frame's columns are computed for the checks only, never held all at once."""
    if not checks:
        return
    failed = (
        df.lazy()
        .select([c.bad.fill_null(False).any().alias(str(i)) for i, c in enumerate(checks)])
        .collect()
        .row(0)
    )
    for check, bad in zip(checks, failed):
        if bad:
            _fail_first(df, check, file=file)


def _spelling(names: Mapping[str, str]) -> Callable[[str], str]:
    """canonical column -> the column as the file spells it (the same name when not renamed)."""
    return lambda column: names.get(column, column)


def _date_checks(
    col: str, source: str, date_format: str | None, *, required: bool = True, what: str = ""
) -> list[_Check]:
    """Missing (if required), unreadable and implausible (``dates.YEARS``) dates; the frame
    holds ``{col}_raw`` and ``col``."""
    raw, parsed = pl.col(f"{col}_raw"), pl.col(col)
    expected = dates.expected(date_format)
    checks = [_Check(raw.is_null(), source, lambda r: f"missing {what or col} date", expected)]
    return (checks if required else []) + [
        _Check(
            raw.is_not_null() & parsed.is_null(),
            source,
            lambda r: f"cannot read date {r[f'{col}_raw']!r}",
            expected,
        ),
        _Check(
            dates.implausible(parsed),
            source,
            lambda r: dates.implausible_message(r[f"{col}_raw"], r[col], date_format),
            expected,
        ),
    ]


def _duplicates(w: pl.DataFrame, key: str, *, file: str, column: str, what: str) -> None:
    """Raise naming the first two rows that share a ``key`` value."""
    dup = w.filter(pl.col(key).is_duplicated())
    if dup.height == 0:
        return
    first = dup.row(0, named=True)
    rows = dup.filter(pl.col(key) == first[key])[ROW].to_list()
    others = dup[key].n_unique() - 1
    raise InputError(
        f"duplicate {what} {first[key]!r} at rows {rows[0]} and {rows[1]}"
        + (f" ({others:,} more duplicated value{'s' if others > 1 else ''})" if others else ""),
        file=file,
        row=rows[0],
        column=column,
        expected=f"each {what} once",
    )


# --- opportunities --------------------------------------------------------------------------------
def _opportunities(
    raw: pl.DataFrame,
    names: dict[str, str],
    *,
    file: str,
    date_format: str | None,
    status_from_stage: bool,
    outcomes: Mapping[str, str] = TERMINAL_STAGES,
    probability_scale: str | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Validate and normalise; returns the canonical frame (plus ``__row``) and notes."""
    notes: list[str] = []
    src = _spelling(names)
    w = raw.select(
        ROW,
        _text(raw, "opportunity_id").alias("opportunity_id"),
        _text(raw, "owner").alias("owner"),
        _text(raw, "created").alias("created_raw"),
        pl.lit(_date(raw, "created", date_format)).alias("created"),
        _text(raw, "stage").alias("stage"),
        _text(raw, "status").alias("status_raw"),
        _text(raw, "closed").alias("closed_raw"),
        pl.lit(_date(raw, "closed", date_format)).alias("closed"),
        _text(raw, "amount").alias("amount_raw"),
        pl.lit(_number(raw, "amount")).alias("amount"),
        _text(raw, "segment").alias("segment"),
        _text(raw, "source").str.to_lowercase().alias("source"),
    )
    key = squash(pl.col("status_raw"))
    status = key.replace_strict(
        {**formats.STATUS_VALUES, **outcomes}, default=None, return_dtype=pl.String
    )
    if status_from_stage:  # the stage column holds the outcome: anything else is still open
        status = key.replace_strict(dict(outcomes), default="open", return_dtype=pl.String)
    outcome_stages = formats.terminal_values(w["stage"], outcomes)
    w = w.with_columns(
        status.alias("status"), pl.col("stage").is_in(outcome_stages).alias("terminal")
    )

    _run_checks(
        w,
        [
            _Check(
                pl.col("opportunity_id").is_null(),
                src("opportunity_id"),
                lambda r: "missing opportunity id",
                "a non-empty id",
            )
        ],
        file=file,
    )
    _duplicates(w, "opportunity_id", file=file, column=src("opportunity_id"), what="opportunity_id")
    status_expected = (
        "open, won or lost (also 'Closed Won', 'Closed Lost'); to derive the "
        "status from a stage column, map status and stage to the same column"
    )
    is_closed = pl.col("status") != "open"
    _run_checks(
        w,
        [
            _Check(
                pl.col("owner").is_null(),
                src("owner"),
                lambda r: "missing owner",
                "the owning rep's name",
            ),
            *_date_checks("created", src("created"), date_format),
            _Check(
                pl.col("status_raw").is_null(),
                src("status"),
                lambda r: "missing status",
                status_expected,
            ),
            _Check(
                pl.col("status").is_null(),
                src("status"),
                lambda r: f"unknown status {r['status_raw']!r}",
                status_expected,
            ),
            _Check(
                pl.col("stage").is_null(),
                src("stage"),
                lambda r: "missing stage",
                "the deal's current (open) or last reached (closed) stage",
            ),
            _Check(
                pl.col("terminal") & ~is_closed,
                src("stage"),
                lambda r: f"stage {r['stage']!r} on an open deal",
                "a pipeline stage",
            ),
            *_date_checks("closed", src("closed"), date_format, required=False),
            _Check(
                is_closed & pl.col("closed").is_null(),
                src("closed"),
                lambda r: f"missing close date of a {r['status']} deal",
                "a close date for every won or lost deal",
            ),
            # A won or lost deal cannot close after today: such a date is an expected close
            # date or a typo, and it would move the history's end (backtests, the as-of date).
            _Check(
                is_closed & (pl.col("closed") > _today()),
                src("closed"),
                lambda r: f"a {r['status']} deal closed on {r['closed']}, after today",
                "the date it actually closed",
            ),
            _Check(
                is_closed & (pl.col("closed") < pl.col("created")),
                src("closed"),
                lambda r: f"closed {r['closed']} before created {r['created']}",
                "a close date on or after the created date",
            ),
            _Check(
                pl.col("amount_raw").is_null(),
                src("amount"),
                lambda r: "missing amount",
                "a number ≥ 0",
            ),
            _Check(
                pl.col("amount").is_null() | ~pl.col("amount").is_finite(),
                src("amount"),
                lambda r: f"cannot read amount {r['amount_raw']!r}",
                "a number ≥ 0 such as 12500 or 12,500.00",
            ),
            _Check(
                pl.col("amount") < 0,
                src("amount"),
                lambda r: f"negative amount {r['amount_raw']}",
                "a number ≥ 0",
            ),
            _Check(
                pl.col("amount") > MAX_AMOUNT,
                src("amount"),
                lambda r: f"implausible amount {r['amount_raw']}",
                f"at most {MAX_AMOUNT:,.0f}; a unit slip or a corrupted cell?",
            ),
        ],
        file=file,
    )

    n_expected_close, n_outcome_stage = w.select(
        (~is_closed & pl.col("closed").is_not_null()).sum().alias("a"),
        pl.col("terminal").sum().alias("b"),
    ).row(0)
    if n_expected_close:
        notes.append(
            f"{file}: ignored the close date of {count_noun(n_expected_close, 'open deals')} "
            "(read as expected close dates)"
        )
    if n_outcome_stage:
        notes.append(
            f"{file}: {count_noun(n_outcome_stage, 'closed deals')} with an outcome "
            "('Closed Won'/'Closed Lost') as stage: the last stage is taken from "
            "the stage history where there is one"
        )
    if "segment" not in names:
        notes.append(f"{file}: no segment column; every deal is in segment 'all'")
    out = w.select(
        ROW,
        "opportunity_id",
        "owner",
        "created",
        pl.when(pl.col("terminal")).then(None).otherwise(pl.col("stage")).alias("stage"),
        "status",
        pl.when(is_closed).then(pl.col("closed")).alias("closed"),
        "amount",
        pl.col("segment").fill_null("all"),
        "source",
    )
    extra, more = _optional_columns(
        raw,
        names,
        file=file,
        date_format=date_format,
        open_deal=w["status"] == "open",
        scale=probability_scale,
    )
    return out.with_columns(extra), notes + more


def _optional_columns(
    raw: pl.DataFrame,
    names: dict[str, str],
    *,
    file: str,
    date_format: str | None,
    open_deal: pl.Series,
    scale: str | None,
) -> tuple[list[pl.Series], list[str]]:
    """The deal fields the export has (``OPTIONAL_OPPORTUNITY_COLUMNS``): ``probability``
    (``_probability``), ``forecast_category`` (``_forecast_category``), the dates (strict, like
    every date; ``expected_close`` kept on open deals only) and the text fields."""
    out: list[pl.Series] = []
    notes: list[str] = []
    if "probability" in names:
        frac, used = _probability(raw, names["probability"], file=file, scale=scale)
        out.append(frac.alias("probability"))
        notes.append(f"{file}: CRM probability read as {used} ({names['probability']!r})")
    if "forecast_category" in names:
        out.append(_forecast_category(raw, names["forecast_category"], file=file))
    for col in ("expected_close", "next_step_date", "last_activity"):
        if col in names:
            day = _checked_date(raw, col, names[col], file=file, date_format=date_format)
            if col == "expected_close":
                day = pl.select(pl.when(pl.lit(open_deal)).then(pl.lit(day))).to_series()
            out.append(day.alias(col))
    for col in ("product", "region", "manager"):
        if col in names:
            out.append(raw.select(_text(raw, col)).to_series().alias(col))
    return out, notes


def _checked_date(
    raw: pl.DataFrame, col: str, source: str, *, file: str, date_format: str | None
) -> pl.Series:
    """An optional date column, checked like every date (``_date_checks``)."""
    check = pl.DataFrame(
        {
            ROW: raw[ROW],
            f"{col}_raw": raw.select(_text(raw, col)).to_series(),
            col: _date(raw, col, date_format),
        }
    )
    _run_checks(check, _date_checks(col, source, date_format, required=False), file=file)
    return check[col]


def _probability(
    raw: pl.DataFrame, source: str, *, file: str, scale: str | None
) -> tuple[pl.Series, str]:
    """The CRM's win probability as a fraction in [0, 1], and the scale it was read with:
    percent when ``scale`` says so or, without a scale, when any value exceeds 1 or ends in
    %; out of range is an error."""
    text = raw.select(_text(raw, "probability").str.replace(r"\s*%$", "").alias("p"))
    p = _number(text, "p")
    if scale is None:
        top = p.max()  # None when every value is missing
        percent = (isinstance(top, (int, float)) and top > 1) or bool(
            raw["probability"].cast(pl.String).str.ends_with("%").any()
        )
        scale = "percent" if percent else "fraction"
    frac = p / 100 if scale == "percent" else p
    expected = (
        "a probability, 0–100 percent" if scale == "percent" else "a probability between 0 and 1"
    )
    check = pl.DataFrame({ROW: raw[ROW], "raw": text["p"], "p": frac})
    _run_checks(
        check,
        [
            _Check(
                pl.col("raw").is_not_null() & (pl.col("p").is_null() | ~pl.col("p").is_finite()),
                source,
                lambda r: f"cannot read probability {r['raw']!r}",
                expected,
            ),
            _Check(
                (pl.col("p") < 0) | (pl.col("p") > 1),
                source,
                lambda r: f"probability {r['raw']} is out of range",
                expected,
            ),
        ],
        file=file,
    )
    return frac, scale


def _forecast_category(raw: pl.DataFrame, source: str, *, file: str) -> pl.Series:
    """Forecast categories, after the profile's value map, as ``FORECAST_CATEGORIES``
    (Salesforce's and HubSpot's spellings, ignoring case, spaces, '_' and '-'); any other
    value is an error."""
    w = raw.select(ROW, _text(raw, "forecast_category").alias("raw"))
    w = w.with_columns(
        squash(pl.col("raw"))
        .replace_strict(formats.FORECAST_CATEGORY_WORDS, default=None, return_dtype=pl.String)
        .alias("category")
    )
    _run_checks(
        w,
        [
            _Check(
                pl.col("raw").is_not_null() & pl.col("category").is_null(),
                source,
                lambda r: f"unknown forecast category {r['raw']!r}",
                "Commit, Best Case, Pipeline, Omitted or Closed (a profile's "
                "[values.forecast_category] maps other labels)",
            )
        ],
        file=file,
    )
    return w["category"].alias("forecast_category")


# --- stage history and stage order ----------------------------------------------------------------
def parse_stages(stages: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``"A,B,C"`` or a sequence -> ("A", "B", "C"); None/empty -> None."""
    if stages is None:
        return None
    items = stages.split(",") if isinstance(stages, str) else list(stages)
    order = tuple(str(s).strip() for s in items if str(s).strip())
    if not order:
        return None
    dup = [s for s in order if order.count(s) > 1]
    if dup:
        raise InputError(
            f"stage {dup[0]!r} appears twice in the stage order",
            column="--stages",
            expected="each stage once, first to last",
        )
    return order


def _sorted_entries(sh: pl.DataFrame) -> pl.DataFrame:
    """Stage rows (with an integer deal key ``__oid`` and ``__row``) sorted by deal, date and
    file row, exact duplicates dropped; ``__first`` marks each deal's first entry of a stage.
    Sorting integer keys (not hashing strings) keeps millions of rows fast."""
    sh = sh.with_columns(pl.col("stage").cast(pl.Categorical).to_physical().alias("__sc"))
    by_stage = sh.sort(["__oid", "__sc", "entered", ROW])
    same = (pl.col("__oid") == pl.col("__oid").shift(1)) & (
        pl.col("__sc") == pl.col("__sc").shift(1)
    )
    by_stage = by_stage.with_columns(
        (same & (pl.col("entered") == pl.col("entered").shift(1))).fill_null(False).alias("__dup"),
        (~same).fill_null(True).alias("__first"),
    )
    return by_stage.filter(~pl.col("__dup")).drop("__dup", "__sc").sort(["__oid", "entered", ROW])


def _order_from(entries: pl.DataFrame) -> tuple[str, ...]:
    """Stage order from ``_sorted_entries``: mean position of each stage's first entry."""
    first = entries.filter(pl.col("__first")).with_row_index("__i")
    start = (
        pl.when(pl.col("__oid") != pl.col("__oid").shift(1).fill_null(-1))
        .then(pl.col("__i"))
        .forward_fill()
    )
    first = first.with_columns((pl.col("__i") - start).alias("__pos"))
    order = (
        first.group_by("stage")
        .agg(pl.col("__pos").mean().alias("__mean"), pl.col(ROW).min().alias("__seen"))
        .sort(["__mean", "__seen"])
    )
    return tuple(order["stage"].to_list())


def _last_from(entries: pl.DataFrame) -> pl.DataFrame:
    """``__oid`` -> ``__last``, the stage entered last (latest date, then file order)."""
    last = pl.col("__oid") != pl.col("__oid").shift(-1).fill_null(-1)
    return entries.filter(last).select("__oid", pl.col("stage").alias("__last"))


def infer_stage_order(stage_history: pl.DataFrame) -> tuple[str, ...]:
    """Stage order from stage history: each deal's stages sorted by the date first entered
    (file order breaks ties) give positions 0, 1, 2, ...; stages are ordered by their mean
    position, then by first appearance. Stable under skipped stages and re-entries."""
    if stage_history.height == 0:
        return ()
    sh = stage_history if ROW in stage_history.columns else stage_history.with_row_index(ROW)
    sh = sh.with_columns(pl.col("opportunity_id").cast(pl.Categorical).to_physical().alias("__oid"))
    return _order_from(_sorted_entries(sh))


def _stage_history(
    raw: pl.DataFrame,
    names: dict[str, str],
    opps: pl.DataFrame,
    *,
    file: str,
    date_format: str | None,
    order: tuple[str, ...] | None,
    outcomes: Mapping[str, str] = TERMINAL_STAGES,
) -> tuple[pl.DataFrame, list[str]]:
    """Validate; returns sorted entries (``_sorted_entries``) and notes."""
    notes: list[str] = []
    src = _spelling(names)
    # A query until the checks have run (as in ``_activities``): the raw dates are never held.
    query = raw.lazy().select(
        ROW,
        _text(raw, "opportunity_id").alias("opportunity_id"),
        _text(raw, "stage").alias("stage"),
        _text(raw, "entered").alias("entered_raw"),
        pl.lit(_date(raw, "entered", date_format)).alias("entered"),
    )
    _run_checks(
        query,
        [
            _Check(
                pl.col("opportunity_id").is_null(),
                src("opportunity_id"),
                lambda r: "missing opportunity id",
                "an id from the opportunities",
            ),
            _Check(
                pl.col("stage").is_null(),
                src("stage"),
                lambda r: "missing stage",
                "the stage the deal entered",
            ),
            *_date_checks("entered", src("entered"), date_format),
        ],
        file=file,
    )
    keys = opps.select(
        "opportunity_id", pl.int_range(pl.len(), dtype=pl.Int64).alias("__oid"), "created", "closed"
    )
    w = (
        query.drop("entered_raw")  # only the checks above quote it
        .join(keys.lazy(), on="opportunity_id", how="left", maintain_order="left")
        .collect()
    )
    _run_checks(
        w,
        [
            _Check(
                pl.col("__oid").is_null(),
                src("opportunity_id"),
                lambda r: f"opportunity {r['opportunity_id']!r} is not in the opportunities file",
                "ids that appear in the opportunities file",
            )
        ],
        file=file,
    )

    # Entering "Closed Won" is the close itself: status and closed already say it.
    outcome = [s for s in formats.terminal_values(w["stage"], outcomes) if s not in (order or ())]
    if outcome:
        n = w.height
        w = w.filter(~pl.col("stage").is_in(outcome))
        notes.append(
            f"{file}: dropped {count_noun(n - w.height, 'rows')} entering an outcome stage "
            "(won/lost is read from the opportunities' status and close date)"
        )
    if order is not None:
        _run_checks(
            w,
            [
                _Check(
                    ~pl.col("stage").is_in(list(order)),
                    src("stage"),
                    lambda r: f"unknown stage {r['stage']!r}",
                    "one of " + ", ".join(order) + " (the given stage order)",
                )
            ],
            file=file,
        )
    n = w.height
    entries = _sorted_entries(w)
    if entries.height < n:
        notes.append(
            f"{file}: dropped {count_noun(n - entries.height, 'duplicate rows')} "
            "(same deal, stage and date)"
        )
    early, late = entries.select(
        (pl.col("entered") < pl.col("created")).sum().alias("a"),
        (pl.col("entered") > pl.col("closed")).sum().alias("b"),
    ).row(0)
    if early:
        notes.append(
            f"{file}: {count_noun(early, 'rows')} with a stage entered before the deal was created"
        )
    if late:
        notes.append(
            f"{file}: {count_noun(late, 'rows')} with a stage entered after the deal closed"
        )
    return entries, notes


# --- activities and reps --------------------------------------------------------------------------
def _activities(
    raw: pl.DataFrame, names: dict[str, str], *, file: str, date_format: str | None
) -> tuple[pl.DataFrame, list[str]]:
    notes: list[str] = []
    src = _spelling(names)
    # A query, not a frame: millions of rows of text columns are computed for the checks
    # and for the result in turn, never all held together (calibrating 1M deals: < 1 GB).
    w = raw.lazy().select(
        ROW,
        _text(raw, "owner").alias("owner"),
        _text(raw, "date").alias("date_raw"),
        pl.lit(_date(raw, "date", date_format)).alias("date"),
        _text(raw, "kind").fill_null("activity").alias("kind"),
        _text(raw, "count").alias("count_raw"),
        pl.lit(_number(raw, "count")).alias("count"),
    )
    checks = [
        _Check(
            pl.col("owner").is_null(), src("owner"), lambda r: "missing owner", "the rep's name"
        ),
        *_date_checks("date", src("date"), date_format),
    ]
    if "count" in names:
        whole, count = f"a whole number from 0 to {MAX_ACTIVITIES:,}", pl.col("count")
        checks += [
            _Check(pl.col("count_raw").is_null(), src("count"), lambda r: "missing count", whole),
            _Check(
                count.is_null() | ~count.is_finite(),
                src("count"),
                lambda r: f"cannot read count {r['count_raw']!r}",
                whole,
            ),
            _Check(count < 0, src("count"), lambda r: f"negative count {r['count_raw']}", whole),
            _Check(
                count > MAX_ACTIVITIES,
                src("count"),
                lambda r: f"count {r['count_raw']} is not plausible for one row",
                whole,
            ),
            _Check(
                count != count.round(0),
                src("count"),
                lambda r: f"count {r['count_raw']} is not a whole number",
                whole,
            ),
        ]
    else:
        notes.append(f"{file}: no count column; each row is one activity")
    _run_checks(w, checks, file=file)
    out = w.select(
        ROW, "owner", "date", "kind", pl.col("count").fill_null(1.0).cast(pl.Int64).alias("count")
    ).collect()
    return out, notes


def _reps(
    raw: pl.DataFrame, names: dict[str, str], *, file: str, date_format: str | None
) -> tuple[pl.DataFrame, list[str]]:
    src = _spelling(names)
    w = raw.select(
        ROW,
        _text(raw, "owner").alias("owner"),
        _text(raw, "hired").alias("hired_raw"),
        pl.lit(_date(raw, "hired", date_format)).alias("hired"),
        _text(raw, "left").alias("left_raw"),
        pl.lit(_date(raw, "left", date_format)).alias("left"),
        _text(raw, "quota").alias("quota_raw"),
        pl.lit(_number(raw, "quota")).alias("quota"),
    )
    _run_checks(
        w,
        [
            _Check(
                pl.col("owner").is_null(), src("owner"), lambda r: "missing owner", "the rep's name"
            )
        ],
        file=file,
    )
    _duplicates(w, "owner", file=file, column=src("owner"), what="owner")
    quota, per_quarter = pl.col("quota"), "a number ≥ 0 (per quarter)"
    _run_checks(
        w,
        [
            *_date_checks("hired", src("hired"), date_format, what="hire"),
            *_date_checks("left", src("left"), date_format, required=False),
            _Check(
                pl.col("left") < pl.col("hired"),
                src("left"),
                lambda r: f"left {r['left']} before hired {r['hired']}",
                "a leaving date on or after the hire date",
            ),
            _Check(
                pl.col("quota_raw").is_not_null() & (quota.is_null() | ~quota.is_finite()),
                src("quota"),
                lambda r: f"cannot read quota {r['quota_raw']!r}",
                per_quarter,
            ),
            _Check(
                quota < 0, src("quota"), lambda r: f"negative quota {r['quota_raw']}", per_quarter
            ),
        ],
        file=file,
    )
    return w.select(ROW, "owner", "hired", "left", "quota"), []


def _teams(raw: pl.DataFrame, names: dict[str, str], *, file: str) -> pl.DataFrame:
    """A rep's manager, region and segment (``TEAM_COLUMNS``), from a teams file or a reps
    file's columns: one row per owner."""
    src = _spelling(names)
    w = raw.select(ROW, *[_text(raw, c).alias(c) for c in TEAM_COLUMNS])
    _run_checks(
        w,
        [
            _Check(
                pl.col("owner").is_null(), src("owner"), lambda r: "missing owner", "a rep's name"
            )
        ],
        file=file,
    )
    _duplicates(w, "owner", file=file, column=src("owner"), what="owner")
    return w


def _close_date_history(
    raw: pl.DataFrame,
    names: dict[str, str],
    opps: pl.DataFrame,
    *,
    file: str,
    date_format: str | None,
    scale: str | None,
) -> tuple[pl.DataFrame, list[str]]:
    """Validate a close-date history (``CLOSE_DATE_CHANGE_COLUMNS``; rows of a field-history
    file about other fields are skipped). ``previous`` is the file's old value, else the
    deal's value on its row before. Rows that repeat the previous value are not changes, and
    a change on or after a closed deal's close date is the close itself: neither is kept."""
    src = _spelling(names)
    notes: list[str] = []
    if "field" in names:
        raw = raw.filter(squash(_text(raw, "field")).is_in(formats.CLOSE_DATE_FIELDS))
    w = raw.select(
        ROW,
        _text(raw, "opportunity_id").alias("opportunity_id"),
        *[
            e
            for col in ("changed", "expected_close", "previous")
            for e in (
                _text(raw, col).alias(f"{col}_raw"),
                pl.lit(_date(raw, col, date_format)).alias(col),
            )
        ],
        _text(raw, "stage").alias("stage"),
        _text(raw, "amount").alias("amount_raw"),
        pl.lit(_number(raw, "amount")).alias("amount"),
    )
    amount = pl.col("amount")
    _run_checks(
        w,
        [
            _Check(
                pl.col("opportunity_id").is_null(),
                src("opportunity_id"),
                lambda r: "missing opportunity id",
                "an id from the opportunities",
            ),
            *_date_checks("changed", src("changed"), date_format, what="change"),
            *_date_checks("expected_close", src("expected_close"), date_format, what="close"),
            *_date_checks("previous", src("previous"), date_format, required=False),
            _Check(
                pl.col("amount_raw").is_not_null()
                & (amount.is_null() | ~amount.is_finite() | (amount < 0) | (amount > MAX_AMOUNT)),
                src("amount"),
                lambda r: f"cannot read amount {r['amount_raw']!r}",
                f"a number from 0 to {MAX_AMOUNT:,.0f}",
            ),
        ],
        file=file,
    )
    if "probability" in names:
        frac, _ = _probability(raw, names["probability"], file=file, scale=scale)
        w = w.with_columns(pl.lit(frac).alias("probability"))
    else:
        w = w.with_columns(pl.lit(None, pl.Float64).alias("probability"))
    w = _known_deals(w, opps, src("opportunity_id"), file=file)
    w = w.sort(["__oid", "changed", ROW]).with_columns(
        pl.coalesce("previous", pl.col("expected_close").shift(1).over("__oid")).alias("previous")
    )
    w = w.filter(
        pl.col("expected_close").ne_missing(pl.col("previous"))
        & (pl.col("closed").is_null() | (pl.col("changed") < pl.col("closed")))
    )
    shift = pl.col("expected_close") - pl.col("previous")
    deals, pushed, pulled = w.select(
        pl.col("__oid").n_unique().alias("deals"),
        (shift > pl.duration(days=0)).sum().alias("pushed"),
        (shift < pl.duration(days=0)).sum().alias("pulled"),
    ).row(0)
    notes.append(
        f"{file}: close-date history of {count_noun(deals, 'deals')}: "
        f"{pushed:,} changes to a later date (pushes), {pulled:,} to an earlier one"
    )
    return w.select(ROW, *CLOSE_DATE_CHANGE_COLUMNS), notes


def _known_deals(w: pl.DataFrame, opps: pl.DataFrame, source: str, *, file: str) -> pl.DataFrame:
    """A change record's rows joined to their deal (``__oid``: its row in ``opps``, and its
    ``closed`` date); a missing id, or one not in the opportunities, is an error."""
    keys = opps.select(
        "opportunity_id", pl.int_range(pl.len(), dtype=pl.Int64).alias("__oid"), "closed"
    )
    w = w.join(keys, on="opportunity_id", how="left", maintain_order="left")
    _run_checks(
        w,
        [
            _Check(
                pl.col("opportunity_id").is_null(),
                source,
                lambda r: "missing opportunity id",
                "an id from the opportunities",
            ),
            _Check(
                pl.col("__oid").is_null(),
                source,
                lambda r: f"opportunity {r['opportunity_id']!r} is not in the opportunities file",
                "ids that appear in the opportunities file",
            ),
        ],
        file=file,
    )
    return w


def _category_history(
    raw: pl.DataFrame,
    names: dict[str, str],
    opps: pl.DataFrame,
    *,
    file: str,
    date_format: str | None,
    values: Mapping[str, str],
) -> pl.DataFrame | None:
    """The forecast-category record (``CATEGORY_CHANGE_COLUMNS``) a close-date history holds:
    a field-history file's category rows (their new and old values), else a
    ``forecast_category`` column on every row; None when it holds neither. Categories are
    checked like the opportunities' (``_forecast_category``, after the profile's
    ``[values.forecast_category]``); rows repeating the deal's category are not kept."""
    if "field" in names:
        rows = raw.filter(squash(_text(raw, "field")).is_in(formats.CATEGORY_FIELDS))
        if rows.height == 0:
            return None
        rows = rows.with_columns(
            _text(rows, "expected_close").alias("forecast_category"),
            _text(rows, "previous").alias("__previous"),
        )
        source, old = names["expected_close"], names.get("previous", "")
    elif "forecast_category" in names:
        rows = raw.with_columns(pl.lit(None, pl.String).alias("__previous"))
        source, old = names["forecast_category"], ""
    else:
        return None
    rows, _ = formats.map_values(rows, "forecast_category", values, keep=True)
    rows, _ = formats.map_values(rows, "__previous", values, keep=True)
    category = _forecast_category(rows, source, file=file)
    previous = _forecast_category(
        rows.select(ROW, pl.col("__previous").alias("forecast_category")), old, file=file
    )
    w = rows.select(
        ROW,
        _text(rows, "opportunity_id").alias("opportunity_id"),
        _text(rows, "changed").alias("changed_raw"),
        pl.lit(_date(rows, "changed", date_format)).alias("changed"),
    ).with_columns(category, previous.alias("previous"))
    _run_checks(w, _date_checks("changed", names["changed"], date_format, what="change"), file=file)
    w = _known_deals(w, opps, names["opportunity_id"], file=file)
    w = w.sort(["__oid", "changed", ROW]).with_columns(
        pl.coalesce("previous", pl.col("forecast_category").shift(1).over("__oid")).alias(
            "previous"
        )
    )
    w = w.filter(pl.col("forecast_category").ne_missing(pl.col("previous")))
    return w.select(*CATEGORY_CHANGE_COLUMNS)


# --- the whole history ----------------------------------------------------------------------------
def _load(
    path: Path,
    kind: str,
    mapping: Mapping[str, str | tuple[str, ...]],
    required: tuple[str, ...],
) -> tuple[pl.DataFrame | None, dict[str, str], list[str]]:
    """Read a file and pick its canonical columns; an empty optional file is skipped."""
    notes: list[str] = []
    df = read_table(path, notes)
    if df.height == 0:
        if kind == "opportunities":
            raise InputError(
                "the file has no data rows",
                file=str(path),
                expected="a header row and at least one opportunity",
            )
        return None, {}, notes + [f"{path}: the file has no data rows; read as if absent"]
    frame, names = formats.select_canonical(df, kind, mapping, file=str(path), required=required)
    return frame, names, notes


def read_reps(
    path: str | os.PathLike,
    *,
    mapping: Mapping[str, str] | None = None,
    date_format: str | None = None,
) -> pl.DataFrame:
    """A validated reps file on its own (``REP_COLUMNS``), e.g. a planned team."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path), expected="a reps.csv file")
    raw, names, _ = _load(path, "reps", dict(mapping or {}), ("owner", "hired"))
    if raw is None:
        raise InputError(
            "the file has no data rows",
            file=str(path),
            expected="one row per rep: owner, hired[, left, quota]",
        )
    frame, _ = _reps(raw, names, file=str(path), date_format=date_format)
    return _schema(frame, REP_COLUMNS)


def _schema(df: pl.DataFrame, columns: dict) -> pl.DataFrame:
    return df.select([pl.col(c).cast(t) for c, t in columns.items()])


# The Maven sample's sales_teams.csv: sales_agent, manager, regional_office.
_MAVEN_TEAMS = {"owner": ("sales_agent",), "region": ("regional_office",)}


@dataclass(frozen=True)
class _Reading:
    """What every file of one history is read with: the column mapping (``--map`` over the
    profile), the date format and the profile's outcome words, value maps and the rest."""

    mapping: Mapping[str, tuple[str, ...] | str]
    date_format: str | None
    profile: profiles.Profile
    outcomes: Mapping[str, str]


def _read_opportunities(
    files: HistoryFiles, how: _Reading
) -> tuple[
    pl.DataFrame,
    dict[str, str],
    list[str],
    _Reading,
    dict[str, tuple[pl.DataFrame, dict[str, str]]],
]:
    """The validated opportunities (with ``__row``), {canonical: source column}, notes, the
    reading (its date format resolved when ``auto``) and the histories found inside the
    opportunities file ({file kind: (text frame, names)}: the stage history of a one-file or
    wide export, the close-date history of a one-file export)."""
    file = str(files.opportunities)
    if files.format == "maven":
        if how.mapping:
            raise InputError(
                "--map does not apply to the Maven format",
                column="--map",
                expected="--format canonical with a column mapping",
            )
        assert files.products is not None  # locate() finds products.csv for Maven, or refuses
        pipeline, products = read_table(files.opportunities), read_table(files.products)
        if pipeline.height == 0:
            raise InputError(
                "the file has no data rows", file=file, expected="the Maven sales_pipeline.csv"
            )
        raw, names, notes = formats.maven_opportunities(
            pipeline, products, file=file, products_file=str(files.products)
        )
        if raw.height == 0:
            raise InputError(
                "no deals with an engage date", file=file, expected="Engaging, Won or Lost rows"
            )
        opps, more = _opportunities(
            raw, names, file=file, date_format=how.date_format, status_from_stage=False
        )
        return opps, names, notes + more, how, {}

    notes = []
    table = read_table(files.opportunities, notes)
    if table.height == 0:
        raise InputError(
            "the file has no data rows",
            file=file,
            expected="a header row and at least one opportunity",
        )
    raw, names = formats.select_canonical(
        table,
        "opportunities",
        how.mapping,
        file=file,
        required=("opportunity_id", "owner", "created", "stage", "status", "amount"),
    )
    raw, table, more = _profile_values(raw, table, names, how.profile, file=file)
    notes += more
    if how.date_format == dates.AUTO:
        cols = [c for c in ("created", "closed") if c in names]
        fmt, note = dates.resolve_auto(
            [(names[c], raw.select(_text(raw, c)).to_series()) for c in cols], file=file
        )
        how = dataclasses.replace(how, date_format=fmt)
        notes.append(f"{file}: {note}")
    inside: dict[str, tuple[pl.DataFrame, dict[str, str]]] = {}
    if files.stage_history is None:
        inside, raw, more = _stage_history_inside(table, raw, names, how, file=file)
        notes += more
    if "closed" not in names:  # only needed when there are won or lost deals
        if raw.select(squash(_text(raw, "status")).is_in(list(how.outcomes)).any()).item():
            wanted = formats.candidates(how.mapping, "opportunities", "closed")[0][0]
            present = ", ".join(repr(c) for c in table.columns if c != ROW)
            raise InputError(
                f"missing column {wanted!r} (won and lost deals need a close "
                f"date); the file has: {present}",
                file=file,
                row=1,
                column=wanted,
                expected="an opportunities file with a closed column",
            )
        raw = raw.with_columns(pl.lit(None, pl.String).alias("closed"))
    opps, more = _opportunities(
        raw,
        names,
        file=file,
        date_format=how.date_format,
        status_from_stage=names["status"] == names["stage"],
        outcomes=how.outcomes,
        probability_scale=how.profile.probability_scale,
    )
    return opps, names, notes + more, how, inside


def _profile_values(
    raw: pl.DataFrame,
    table: pl.DataFrame,
    names: dict[str, str],
    profile: profiles.Profile,
    *,
    file: str,
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """A profile's statuses to drop (Pipedrive's deleted deals) and value maps (lead source
    "Web" -> marketing; unlisted sources become unknown, other columns keep their value)."""
    notes: list[str] = []
    if profile.drop_status and "status" in raw.columns:
        drop = [profiles.value_key(v) for v in profile.drop_status]
        key = pl.col("status").str.strip_chars().str.to_lowercase()
        n = raw.height
        raw = raw.filter(~key.is_in(drop).fill_null(False))
        if raw.height < n:
            notes.append(
                f"{file}: dropped {count_noun(n - raw.height, 'rows')} with status "
                + " or ".join(profile.drop_status)
                + " (not part of the history)"
            )
            table = table.filter(pl.col(ROW).is_in(raw[ROW].implode()))
    for col, mapped in profile.values.items():
        raw, unlisted = formats.map_values(raw, col, mapped, keep=col != "source")
        if unlisted and col == "source":
            shown = ", ".join(repr(v) for v in unlisted[:6]) + (", …" if len(unlisted) > 6 else "")
            notes.append(
                f"{file}: {names.get(col, col)} values not in the profile's map read "
                f"as unknown: {shown}"
            )
    return raw, table, notes


def _stage_history_inside(
    table: pl.DataFrame, raw: pl.DataFrame, names: dict[str, str], how: _Reading, *, file: str
) -> tuple[dict[str, tuple[pl.DataFrame, dict[str, str]]], pl.DataFrame, list[str]]:
    """A stage history held in the opportunities file itself: a wide one (a profile's
    ``stage_entered`` columns, HubSpot) or a one-file history export (a stage-change date
    column named by the mapping, e.g. Salesforce "Opportunities with History": one row per
    stage change, which is split into one row per deal plus the stage history, and whose close
    dates from row to row are the close-date history)."""
    wide, found = formats.melt_stage_entered(
        table, _text(table, names["opportunity_id"]), how.profile.stage_entered
    )
    if wide is not None:
        for col in found.values():  # each date checked under its own column's name
            day = table.select(
                ROW,
                _text(table, col).alias("entered_raw"),
                pl.lit(_date(table, col, how.date_format)).alias("entered"),
            )
            _run_checks(
                day, _date_checks("entered", col, how.date_format, required=False), file=file
            )
        return (
            {
                "stage_history": (
                    wide,
                    {
                        "opportunity_id": names["opportunity_id"],
                        "stage": "stage",
                        "entered": next(iter(found.values())),
                    },
                )
            },
            raw,
            [f"{file}: stage history read from {len(found)} 'date entered' columns"],
        )
    tried, mapped = formats.candidates(how.mapping, "stage_history", "entered")
    columns = [c for c in table.columns if c != ROW]
    if not mapped or not any(formats.find_column(columns, n) for n in tried):
        return {}, raw, []
    sh, sh_names = formats.select_canonical(
        table, "stage_history", how.mapping, file=file, required=formats.CANONICAL["stage_history"]
    )
    held: dict[str, tuple[pl.DataFrame, dict[str, str]]] = {"stage_history": (sh, sh_names)}
    if "closed" in names:
        kept = [c for c in ("amount", "probability", "forecast_category") if c in raw.columns]
        changes = raw.select(
            ROW, "opportunity_id", pl.col("closed").alias("expected_close"), *kept
        ).join(
            sh.select(ROW, pl.col("entered").alias("changed"), "stage"),
            on=ROW,
            maintain_order="left",
        )
        held["close_date_history"] = (
            changes,
            {
                "opportunity_id": names["opportunity_id"],
                "changed": sh_names["entered"],
                "expected_close": names["closed"],
                "stage": sh_names["stage"],
                **{c: names[c] for c in kept},
            },
        )
    entered = _date(sh, "entered", how.date_format)
    n = raw.height
    raw = formats.split_one_file(raw, entered, file=file, names=names)
    return (
        held,
        raw,
        [
            f"{file}: one-file history export: {count_noun(n, 'rows')} split into "
            f"{count_noun(raw.height, 'opportunities')} and their stage history "
            f"({sh_names['entered']!r})"
        ],
    )


def read_history(
    path: str | os.PathLike,
    *,
    format: str = "canonical",
    profile: str | os.PathLike | profiles.Profile | None = None,
    mapping: Mapping[str, str] | str | Iterable[str] | None = None,
    date_format: str | None = None,
    stages: str | Iterable[str] | None = None,
    stage_history: str | os.PathLike | None = None,
    activities: str | os.PathLike | None = None,
    reps: str | os.PathLike | None = None,
    close_date_history: str | os.PathLike | None = None,
    teams: str | os.PathLike | None = None,
) -> History:
    """Read and validate a CRM history (docs/formats.md).

    ``path``: a folder (``opportunities.csv|parquet`` plus optional ``stage_history``,
    ``activities``, ``reps``, ``close_date_history``, ``teams``) or one opportunities file;
    the keyword files override/extend.
    ``format``: ``canonical`` or ``maven`` (the Maven CRM sample folder, as published).
    ``profile``: a mapping profile (``salesforce``, ``hubspot``, ``pipedrive`` or a TOML file,
    ``calibrate.profiles``); ``mapping``, ``date_format`` and ``stages`` override it.
    ``mapping``: {canonical: source column} or ``--map`` strings (``formats.parse_mapping``);
    mapping ``status`` and ``stage`` to the same column derives the status from the stage.
    ``date_format``: strftime pattern for text dates (default ISO), or ``auto``. ``stages``:
    the stage order (``"A,B,C"`` or a sequence); else the profile's (less stages no deal
    reached), else inferred from the stage history, else first-seen order.
    Raises ``InputError`` naming file, row and column on bad input.
    """
    files = find_files(
        path,
        format=format,
        stage_history=stage_history,
        activities=activities,
        reps=reps,
        close_date_history=close_date_history,
        teams=teams,
    )
    prof = profiles.load_profile(profile)
    if files.format == "maven" and prof != profiles.NO_PROFILE:
        raise InputError(
            "a profile does not apply to the Maven format",
            column="--profile",
            expected="--format canonical for a CRM export",
        )
    how = _Reading(
        mapping=profiles.merge_mapping(prof.columns, formats.parse_mapping(mapping)),
        date_format=date_format or prof.date_format or None,
        profile=prof,
        outcomes=formats.outcome_words(prof.won, prof.lost),
    )
    order = parse_stages(stages)
    reference = prof.stages if order is None else None  # the profile's order: a superset
    file = str(files.opportunities)
    opps, names, notes, how, inside = _read_opportunities(files, how)
    date_format = how.date_format

    sh = None
    sh_names: dict[str, str] = {}
    sh_raw, sh_file = None, file
    if "stage_history" in inside:
        sh_raw, sh_names = inside["stage_history"]
    elif files.stage_history is not None:
        sh_file = str(files.stage_history)
        sh_raw, sh_names, more = _load(
            files.stage_history, "stage_history", how.mapping, formats.CANONICAL["stage_history"]
        )
        notes += more
    if sh_raw is not None:
        if "stage" in prof.values:
            sh_raw, _ = formats.map_values(sh_raw, "stage", prof.values["stage"], keep=True)
        sh, more = _stage_history(
            sh_raw,
            sh_names,
            opps,
            file=sh_file,
            date_format=date_format,
            order=order or reference,
            outcomes=how.outcomes,
        )
        notes += more
        # The raw text is no longer needed: free it before the next file is read.
        inside.pop("stage_history", None)
        sh_raw = None

    if reference is not None:
        seen = set(opps["stage"].drop_nulls().unique().to_list())
        if sh is not None:
            seen |= set(sh["stage"].unique().to_list())
        trimmed = tuple(s for s in reference if s in seen)
        _run_checks(
            opps,
            [
                _Check(
                    pl.col("stage").is_not_null() & ~pl.col("stage").is_in(list(reference)),
                    names.get("stage", "stage"),
                    lambda r: f"unknown stage {r['stage']!r}",
                    "one of " + ", ".join(reference) + f" (the {prof.name} "
                    "profile's stage order; --stages gives another)",
                )
            ],
            file=file,
        )
        order = trimmed or None
        if order and len(order) < len(reference):
            notes.append(
                f"stage order from the {prof.name} profile, less stages no deal "
                "reached: " + " → ".join(order)
            )

    # Stage order: given, else from stage history, else first seen in the opportunities.
    if sh is not None and sh.height:
        inferred = _order_from(sh)
        if order is None:
            order = inferred
            notes.append("stage order inferred from the stage history: " + " → ".join(order))
        else:
            given = [s for s in order if s in inferred]
            if list(inferred) != given:
                notes.append(
                    "the stage history suggests the order "
                    + " → ".join(inferred)
                    + "; using the given order "
                    + " → ".join(order)
                )
        expected_stage = (
            "one of "
            + ", ".join(order)
            + (
                " (the given stage order)"
                if stages or reference
                else " (stages seen in the stage history)"
            )
        )
    elif order is not None:
        expected_stage = "one of " + ", ".join(order) + " (the given stage order)"
    else:
        order = tuple(opps["stage"].drop_nulls().unique(maintain_order=True).to_list())
        expected_stage = ""
        notes.append("no stage history: a single step (created → won/lost) will be fitted")
    _run_checks(
        opps,
        [
            _Check(
                pl.col("stage").is_not_null() & ~pl.col("stage").is_in(list(order)),
                names.get("stage", "stage"),
                lambda r: f"unknown stage {r['stage']!r}",
                expected_stage,
            )
        ],
        file=file,
    )

    if sh is not None and sh.height:
        opps = opps.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("__oid")).join(
            _last_from(sh), on="__oid", how="left", maintain_order="left"
        )
        is_open, last = pl.col("status") == "open", pl.col("__last")
        mismatch, without = opps.select(
            (is_open & last.is_not_null() & (last != pl.col("stage"))).sum().alias("a"),
            last.is_null().sum().alias("b"),
        ).row(0)
        if mismatch:
            notes.append(
                f"the stage of {count_noun(mismatch, 'open deals')} differs from the last "
                "stage in the stage history (the opportunities' stage is kept)"
            )
        if without:
            notes.append(f"no stage-history rows for {count_noun(without, 'opportunities')}")
        opps = opps.with_columns(pl.col("stage").fill_null(last)).drop("__last", "__oid")
    unknown_last = opps["stage"].null_count()
    if unknown_last:
        notes.append(
            f"no known last stage for {count_noun(unknown_last, 'closed deals')} (stage left empty)"
        )

    a_names: dict[str, str] = {}
    r_names: dict[str, str] = {}
    acts = None
    if files.activities is not None:
        a_raw, a_names, more = _load(files.activities, "activities", how.mapping, ("owner", "date"))
        notes += more
        if a_raw is not None:
            acts, more = _activities(
                a_raw, a_names, file=str(files.activities), date_format=date_format
            )
            notes += more
        a_raw = None  # as the stage history's
    team = None
    if files.reps is not None:
        r_raw, r_names, more = _load(files.reps, "reps", how.mapping, ("owner", "hired"))
        notes += more
        if r_raw is not None:
            team, more = _reps(r_raw, r_names, file=str(files.reps), date_format=date_format)
            notes += more
            missing = opps.filter(~pl.col("owner").is_in(team["owner"].implode()))
            if missing.height:
                n_owners = missing["owner"].n_unique()
                notes.append(
                    f"{files.reps}: no row for {count_noun(n_owners, 'owners')} of opportunities"
                )

    c_names: dict[str, str] = {}
    changes, categories, c_raw, c_file = None, None, None, file
    if files.close_date_history is not None:  # a file given wins over a one-file export's
        c_file = str(files.close_date_history)
        c_raw, c_names, more = _load(
            files.close_date_history,
            "close_date_history",
            how.mapping,
            formats.CANONICAL["close_date_history"],
        )
        notes += more
    elif "close_date_history" in inside:
        c_raw, c_names = inside["close_date_history"]
    if c_raw is not None:
        changes, more = _close_date_history(
            c_raw,
            c_names,
            opps,
            file=c_file,
            date_format=date_format,
            scale=prof.probability_scale,
        )
        notes += more
        categories = _category_history(
            c_raw,
            c_names,
            opps,
            file=c_file,
            date_format=date_format,
            values=prof.values.get("forecast_category", {}),
        )

    t_names: dict[str, str] = {}
    teams_frame = None
    if files.teams is not None:
        teams_map = _MAVEN_TEAMS if files.format == "maven" else how.mapping
        t_raw, t_names, more = _load(files.teams, "teams", teams_map, ("owner",))
        notes += more
        if t_raw is not None:
            teams_frame = _teams(t_raw, t_names, file=str(files.teams))
    elif (
        team is not None
        and r_raw is not None
        and any(c in r_names for c in TEAM_COLUMNS if c != "owner")
    ):
        teams_frame = _teams(r_raw, r_names, file=str(files.reps))
    if teams_frame is not None:
        missing = opps.filter(~pl.col("owner").is_in(teams_frame["owner"].implode()))
        if missing.height:
            n_owners = missing["owner"].n_unique()
            notes.append(
                f"{files.teams or files.reps}: no team row for "
                f"{count_noun(n_owners, 'owners')} of opportunities"
            )

    used = {
        "opportunities": names,
        "stage_history": sh_names,
        "activities": a_names if acts is not None else {},
        "reps": r_names if team is not None else {},
        "close_date_history": c_names if changes is not None else {},
        "teams": t_names if teams_frame is not None else {},
    }
    _flags_used(formats.parse_mapping(mapping), used)
    closed = opps.filter(pl.col("status") != "open").height
    if closed == 0:
        notes.append(
            "no won or lost deals: win rates and cycle times cannot be fitted from this history"
        )
    optional = {c: t for c, t in OPTIONAL_OPPORTUNITY_COLUMNS.items() if c in opps.columns}
    return History(
        opportunities=_schema(opps, {**OPPORTUNITY_COLUMNS, **optional}),
        stages=tuple(order),
        stage_history=_schema(sh, STAGE_HISTORY_COLUMNS) if sh is not None else None,
        activities=_schema(acts, ACTIVITY_COLUMNS) if acts is not None else None,
        reps=_schema(team, REP_COLUMNS) if team is not None else None,
        source=str(path),
        notes=tuple(notes),
        stage_order="given"
        if stages or reference
        else ("stage history" if sh is not None and sh.height else "first seen"),
        close_date_changes=_schema(changes, CLOSE_DATE_CHANGE_COLUMNS)
        if changes is not None
        else None,
        teams=_schema(teams_frame, TEAM_COLUMNS) if teams_frame is not None else None,
        category_changes=_schema(categories, CATEGORY_CHANGE_COLUMNS)
        if categories is not None
        else None,
    )


def _flags_used(flags: Mapping[str, str], used: Mapping[str, Mapping[str, str]]) -> None:
    """Every ``--map`` flag must name a column some file read has: a typo would otherwise
    fall back to the canonical column without a word (``used``: {file kind: {canonical:
    source column read}})."""
    for key, source in flags.items():
        kind, _, canon = key.rpartition(".")
        kinds = [kind] if kind else list(used)
        if not any(formats.same_name(used[k].get(canon, ""), source) for k in kinds if k in used):
            raise InputError(
                f"{key}={source}: no file read has a column {source!r} for {canon}",
                column="--map",
                expected="a column of the file, as its header spells it",
            )


# --- what was read --------------------------------------------------------------------------------
def _counts(df: pl.DataFrame, by: str) -> dict:
    """{value: {open, won, lost, total}} in first-seen order of ``by``."""
    g = df.group_by(by, maintain_order=True).agg(
        *[(pl.col("status") == s).sum().alias(s) for s in ("open", "won", "lost")],
        pl.len().alias("total"),
    )
    return {
        (r[by] if r[by] is not None else "(none)"): {
            k: int(r[k]) for k in ("open", "won", "lost", "total")
        }
        for r in g.iter_rows(named=True)
    }


def _deal_fields(history: History) -> dict:
    """What the deal fields hold: which optional columns were read, how many deals have each,
    the forecast categories, pushes, and the managers and regions (of deals or their owners)."""
    f = history.deal_fields
    read = [c for c in OPTIONAL_OPPORTUNITY_COLUMNS if c in history.opportunities.columns]
    open_deals = f.filter(history.opportunities["status"] == "open")
    categories = (
        {c: int((f["forecast_category"] == c).sum()) for c in FORECAST_CATEGORIES}
        if "forecast_category" in read
        else {}
    )
    pushed = "pushes" in f.columns
    return {
        "columns": read,
        "with_value": {c: f.height - f[c].null_count() for c in read},
        "open_with_expected_close": open_deals.height - open_deals["expected_close"].null_count()
        if "expected_close" in read
        else 0,
        "forecast_categories": {c: n for c, n in categories.items() if n},
        "close_date_changes": None
        if history.close_date_changes is None
        else history.close_date_changes.height,
        "category_changes": None
        if history.category_changes is None
        else history.category_changes.height,
        "pushed_deals": int((f["pushes"] > 0).sum()) if pushed else None,
        "pulled_in_deals": int((f["pull_ins"] > 0).sum()) if pushed else None,
        "managers": sorted(f["manager"].drop_nulls().unique().to_list()),
        "regions": sorted(f["region"].drop_nulls().unique().to_list()),
        "rep_segments": sorted(f["rep_segment"].drop_nulls().unique().to_list()),
    }


def summarize(history: History, files: HistoryFiles | None = None) -> dict:
    """What a history holds, for ``salesim inspect`` (JSON-ready)."""
    o = history.opportunities
    by_stage = _counts(o, "stage")
    ordered = {s: by_stage.pop(s) for s in history.stages if s in by_stage}
    ordered.update(by_stage)  # stages outside the order (e.g. "(none)") last
    owners = _counts(o, "owner")
    owners = dict(sorted(owners.items(), key=lambda kv: (-kv[1]["total"], kv[0])))
    amounts = o.group_by("status").agg(pl.col("amount").sum())
    amount = {s: 0.0 for s in ("open", "won", "lost")}
    amount.update({r["status"]: float(r["amount"]) for r in amounts.iter_rows(named=True)})

    def rows(df):
        return None if df is None else df.height

    dates = {
        "created_first": o["created"].min(),
        "created_last": o["created"].max(),
        "closed_first": o["closed"].min(),
        "closed_last": o["closed"].max(),
        "last_date": history.last_date,
    }
    status = {s: int(o.filter(pl.col("status") == s).height) for s in ("open", "won", "lost")}
    return {
        "source": history.source,
        "format": files.format if files else None,
        "files": files.as_dict() if files else None,
        "opportunities": o.height,
        "by_status": status,
        "stages": list(history.stages),
        "has_stage_history": history.has_stage_history,
        "by_stage": ordered,
        "dates": dates,
        "owners": owners,
        "n_owners": len(owners),
        "segments": _counts(o, "segment"),
        "sources": _counts(o, "source"),
        "amount": amount,
        "rows": {
            "stage_history": rows(history.stage_history),
            "activities": rows(history.activities),
            "reps": rows(history.reps),
            "close_date_history": rows(history.close_date_changes),
            "teams": rows(history.teams),
        },
        "deal_fields": _deal_fields(history),
        "notes": list(history.notes),
    }
