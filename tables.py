"""Every table salesim writes to a file, and the one writer: CSV, Parquet or Excel by suffix.

Each ``*_tables`` function turns a command's JSON document (the dict its library call
returns) into named ``Table``s, the main one first. A ``Table`` says which of its columns
are money and which are fractions, so every file rounds the same way: money to cents,
probabilities and ratios to 4 decimals, dates as dates (ISO in CSV), and non-finite numbers
as empty cells; seeds as text (fresh entropy is a 128-bit integer, more than a spreadsheet
or Parquet integer holds). ``encode`` lays the tables out as files: the main table at the path
given, the others beside it (``stem.<table>.csv``), or one Excel workbook with a sheet each.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Iterable, Mapping

import polars as pl

from salesim.simulator.errors import InputError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".xlsx": "excel"}
EXCEL_FORMATS = {"money": "#,##0.00", "fraction": "0.0000"}
QS = ("p10", "p50", "p90")


@dataclasses.dataclass(frozen=True)
class Table:
    frame: pl.DataFrame
    money: tuple[str, ...] = ()
    fractions: tuple[str, ...] = ()

    def __post_init__(self):
        # only the frame's own columns, each once: builders may name a column twice or
        # share one list between tables
        for kind in ("money", "fractions"):
            names = tuple(dict.fromkeys(c for c in getattr(self, kind) if c in self.frame.columns))
            object.__setattr__(self, kind, names)

    def tidy(self) -> pl.DataFrame:
        """Money to cents, fractions to 4 decimals, NaN and ±inf to null."""
        df = self.frame
        floats = [c for c, t in df.schema.items() if t.is_float()]
        df = df.with_columns(
            pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats
        )
        return df.with_columns(
            [pl.col(c).round(2) for c in self.money] + [pl.col(c).round(4) for c in self.fractions]
        )

    def excel_formats(self) -> dict[str, str]:
        return {c: EXCEL_FORMATS["money"] for c in self.money} | {
            c: EXCEL_FORMATS["fraction"] for c in self.fractions
        }


# --- where tables go -------------------------------------------------------------------------
def out_format(path: str | Path, option: str = "--out") -> str:
    """``csv``, ``parquet`` or ``excel`` from the suffix; checked before any simulation runs,
    so a typo or a missing Excel writer costs nothing."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"cannot tell the table format of {path} from {suffix!r}"
            if suffix
            else f"{path} has no suffix",
            column=option,
            expected="a file name ending in .csv, .parquet or .xlsx",
        )
    fmt = SUFFIXES[suffix]
    if fmt == "excel":
        try:
            import xlsxwriter  # noqa: F401
        except ImportError:
            raise InputError(
                f"writing Excel ({path}) needs xlsxwriter",
                column=option,
                expected='pip install "salesim[excel]", or a .csv or .parquet file',
            ) from None
    return fmt


def encode(
    tables: Mapping[str, Table], path: str | Path, fmt: str | None = None
) -> list[tuple[Path, bytes | str]]:
    """The files to write for ``tables`` at ``path``: ``(file, contents)`` in order, the
    main (first) table at ``path``; ``fmt`` (default: from the suffix) as ``SUFFIXES``."""
    path = Path(path)
    fmt = fmt or out_format(path)
    if fmt == "excel":
        return [(path, _workbook(tables))]
    out: list[tuple[Path, bytes | str]] = []
    for i, (name, t) in enumerate(tables.items()):
        where = path if i == 0 else path.with_name(f"{path.stem}.{name}{path.suffix}")
        df = t.tidy()
        if fmt == "csv":
            out.append((where, df.write_csv()))
        else:
            buf = io.BytesIO()
            df.write_parquet(buf)
            out.append((where, buf.getvalue()))
    return out


def _workbook(tables: Mapping[str, Table]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf, {"in_memory": True}) as wb:
        for name, t in tables.items():
            # polars types column_formats with a union key type, and Mapping is invariant in
            # its key, so a dict[str, str] is wrongly rejected: the ignore is for that stub.
            t.tidy().write_excel(
                wb,
                worksheet=name,
                column_formats=t.excel_formats(),  # type: ignore[arg-type]
                autofit=True,
            )
    return buf.getvalue()


# --- forecast ---------------------------------------------------------------------------------
def weekly_frame(fc: Mapping) -> pl.DataFrame:
    """The weekly bands of cumulative quarter revenue, one row per week (``--csv``)."""
    return pl.DataFrame(fc["weekly"])


def frames(named: Mapping[str, Table]) -> dict[str, pl.DataFrame]:
    """Each table's tidy frame (``Table.tidy``): what a result's ``tables()`` gives."""
    return {name: table.tidy() for name, table in named.items()}


def forecast_tables(fc: dict) -> dict[str, Table]:
    """``weekly`` (cumulative quarter revenue by week: mean and P10…P90), ``reps`` (each
    seat's quarter revenue and attainment bands) and ``summary`` (one row)."""
    weekly = weekly_frame(fc)
    reps = pl.DataFrame(
        [
            {
                "rep": r["rep"],
                "quota": r["quota"],
                "closed_to_date": r["closed_to_date"],
                "revenue_mean": r["revenue_mean"],
                **{f"revenue_{q}": r[f"revenue_{q}"] for q in QS},
                **{f"attainment_{q}": r[q] for q in QS},
                "p_attain": r["p_attain"],
            }
            for r in fc["reps"]
        ],
        schema={
            "rep": pl.String,
            "quota": pl.Float64,
            "closed_to_date": pl.Float64,
            "revenue_mean": pl.Float64,
            **{f"revenue_{q}": pl.Float64 for q in QS},
            **{f"attainment_{q}": pl.Float64 for q in QS},
            "p_attain": pl.Float64,
        },
    )
    by = rollup_frame(fc.get("by") or [])
    lo, hi = fc["p_quota_interval"] or (None, None)
    rev, origin = fc["revenue"], fc["by_origin"]
    summary = _one_row(
        {
            "start": _date(fc["start"]),
            "end": _date(fc["end"]),
            "trials": fc["trials"],
            "seed": str(fc["seed"]),
            "engine": fc["engine"],
            "quota": fc["quota"],
            "closed_to_date": fc["closed_to_date"],
            "revenue_mean": rev["mean"],
            **{f"revenue_{q}": rev[q] for q in QS},
            "p_quota": fc["p_quota"],
            "p_quota_lo": lo,
            "p_quota_hi": hi,
            "open_pipeline_mean": origin["open_pipeline"]["mean"],
            "new_pipeline_mean": origin["new_pipeline"]["mean"],
            "wins_mean": fc["wins"]["mean"],
        }
    )
    return {
        "weekly": Table(weekly, money=_others(weekly, ("week", "end"))),
        "reps": Table(
            reps,
            money=("quota", "closed_to_date", "revenue_mean", *(f"revenue_{q}" for q in QS)),
            fractions=(*(f"attainment_{q}" for q in QS), "p_attain"),
        ),
        "summary": Table(
            summary,
            money=(
                "quota",
                "closed_to_date",
                "revenue_mean",
                *(f"revenue_{q}" for q in QS),
                "open_pipeline_mean",
                "new_pipeline_mean",
            ),
            fractions=("p_quota", "p_quota_lo", "p_quota_hi", "wins_mean"),
        ),
        **({"by": _rollup_table(by)} if by.height else {}),
    }


def rollup_frame(rows: list[dict]) -> pl.DataFrame:
    """One row per roll-up group (``--by``): level, name, seats, quota, revenue mean and
    P10/P50/P90, P(quota), mean wins."""
    return pl.DataFrame(
        [
            {
                "level": r["level"],
                "name": r["name"],
                "seats": r["seats"],
                "quota": r["quota"],
                "revenue_mean": r["revenue"]["mean"],
                **{f"revenue_{q}": r["revenue"][q] for q in QS},
                "p_quota": r["p_quota"],
                "wins_mean": r["wins"],
            }
            for r in rows
        ],
        schema={
            "level": pl.String,
            "name": pl.String,
            "seats": pl.Int64,
            "quota": pl.Float64,
            "revenue_mean": pl.Float64,
            **{f"revenue_{q}": pl.Float64 for q in QS},
            "p_quota": pl.Float64,
            "wins_mean": pl.Float64,
        },
    )


def _rollup_table(frame: pl.DataFrame) -> Table:
    return Table(
        frame,
        money=("quota", "revenue_mean", *(f"revenue_{q}" for q in QS)),
        fractions=("p_quota", "wins_mean"),
    )


# --- deals ------------------------------------------------------------------------------------
def deals_tables(view: dict) -> dict[str, Table]:
    """``deals``: one row per open deal, as ``salesim deals --json`` lists them (flags as
    one comma-separated text)."""
    frame = pl.DataFrame(
        [
            {
                **d,
                "expected_close": _date(d["expected_close"]),
                "last_activity": _date(d["last_activity"]),
                "flags": ",".join(d["flags"]),
            }
            for d in view["deals"]
        ],
        schema={
            "opportunity_id": pl.String,
            "owner": pl.String,
            "stage": pl.String,
            "amount": pl.Float64,
            "p_win": pl.Float64,
            "p_win_quarter": pl.Float64,
            "expected_in_quarter": pl.Float64,
            "age_days": pl.Int64,
            "expected_close": pl.Date,
            "forecast_category": pl.String,
            "pushes": pl.Int64,
            "last_activity": pl.Date,
            "flags": pl.String,
        },
    )
    return {
        "deals": Table(
            frame,
            money=("amount", "expected_in_quarter"),
            fractions=("p_win", "p_win_quarter"),
        )
    }


# --- compare ----------------------------------------------------------------------------------
COMPARE_MONEY = (
    "cost",
    "revenue_mean",
    *(f"revenue_{q}" for q in QS),
    "uplift_mean",
    "uplift_mean_lo",
    "uplift_mean_hi",
    *(f"uplift_{q}" for q in QS),
    "uplift_open",
    "uplift_new",
    "velocity_uplift",
)


def compare_tables(out: dict) -> dict[str, Table]:
    """``strategies`` (one row per strategy, best first: revenue bands, P(quota), the mean
    uplift with its 90% Monte Carlo interval, the per-trial uplift's P10/P50/P90 and
    P(uplift > 0)) and ``baseline`` (one row)."""
    rows = []
    for s in out["strategies"]:
        up, spread = s["uplift"], s["uplift_trials"]
        rows.append(
            {
                "rank": s["rank"],
                "strategy": s["name"],
                "levers": s["given"],
                "cost": s["cost"],
                "revenue_mean": s["revenue"]["mean"],
                **{f"revenue_{q}": s["revenue"][q] for q in QS},
                "p_quota": s["p_quota"],
                "uplift_mean": up["mean"],
                "uplift_mean_lo": up["lo"],
                "uplift_mean_hi": up["hi"],
                **{f"uplift_{q}": spread[q] for q in QS},
                "p_uplift_positive": spread["p_positive"],
                "uplift_open": s["uplift_open"],
                "uplift_new": s["uplift_new"],
                "uplift_per_cost": s["uplift_per_cost"],
                "velocity_uplift": s["velocity"]["uplift"],
            }
        )
    strategies = pl.DataFrame(
        rows,
        schema={
            "rank": pl.Int64,
            "strategy": pl.String,
            "levers": pl.String,
            **dict.fromkeys(list(rows[0])[3:], pl.Float64),
        },
    )
    b = out["baseline"]
    baseline = _one_row(
        {
            "start": _date(out["start"]),
            "days": out["days"],
            "trials": out["trials"],
            "seed": str(out["seed"]),
            "quota": out["quota"],
            "revenue_mean": b["revenue"]["mean"],
            **{f"revenue_{q}": b["revenue"][q] for q in QS},
            "p_quota": b["p_quota"],
            "revenue_open": b["revenue_open"],
            "revenue_new": b["revenue_new"],
            "pipeline_created": b["pipeline_created"],
        }
    )
    return {
        "strategies": Table(
            strategies,
            money=COMPARE_MONEY,
            fractions=("p_quota", "p_uplift_positive", "uplift_per_cost"),
        ),
        "baseline": Table(
            baseline,
            money=(
                "quota",
                "revenue_mean",
                *(f"revenue_{q}" for q in QS),
                "revenue_open",
                "revenue_new",
                "pipeline_created",
            ),
            fractions=("p_quota",),
        ),
    }


# --- capacity ---------------------------------------------------------------------------------
ANSWER_KEYS = {
    "headcount": (
        "solve",
        "target",
        "confidence",
        "reachable",
        "headcount",
        "additional_reps",
        "hire_date",
        "p_target",
        "p_target_one_fewer",
        "quota_per_rep",
        "quota_capacity",
        "quota_to_capacity",
        "revenue_mean",
        "team_now",
        "max_reps",
        "trials",
        "seed",
        "runs",
    ),
    "coverage": (
        "solve",
        "target",
        "confidence",
        "reachable",
        "coverage",
        "pipeline",
        "scale",
        "p_target",
        "coverage_now",
        "open_deals_now",
        "p_target_now",
        "headcount",
        "quota_capacity",
        "max_coverage",
        "trials",
        "seed",
        "runs",
    ),
}


def capacity_tables(out: dict) -> dict[str, Table]:
    """``curve`` (each candidate the solver ran, or the coverage grid: P(target) with its
    90% Monte Carlo interval and quarter revenue P10/P50/P90; ``answer`` marks the headcount
    chosen) and ``answer`` (one row)."""
    curve = pl.DataFrame(out["curve"]).rename({"lo": "p_target_lo", "hi": "p_target_hi"})
    if out["solve"] == "headcount":
        curve = curve.with_columns(answer=pl.col("headcount") == out["headcount"])
    else:
        curve = curve.with_columns(pipeline=pl.col("coverage") * out["target"])
    lo, hi = out["p_target_interval"]
    answer = {k: out[k] for k in ANSWER_KEYS[out["solve"]]}
    answer.update(p_target_lo=lo, p_target_hi=hi, seed=str(out["seed"]))
    if "hire_date" in answer:
        answer["hire_date"] = _date(answer["hire_date"])
    money = (
        "target",
        "pipeline",
        "quota_per_rep",
        "quota_capacity",
        "revenue_mean",
        *(f"revenue_{q}" for q in QS),
    )
    fractions = (
        "confidence",
        "p_target",
        "p_target_lo",
        "p_target_hi",
        "p_target_one_fewer",
        "p_target_now",
        "coverage",
        "coverage_now",
        "scale",
        "quota_to_capacity",
        "max_coverage",
    )
    return {
        "curve": Table(curve, money=money, fractions=fractions),
        "answer": Table(_one_row(answer), money=money, fractions=fractions),
    }


# --- backtest ---------------------------------------------------------------------------------
FOLD_MONEY = (
    "actual",
    "p10",
    "p50",
    "p90",
    "mean",
    "crps",
    "stage_weighted",
    "last_quarter",
    "open_pipeline",
)
PART_MONEY = ("actual", "p10", "p50", "p90", "mean", "crps")


def backtest_tables(b: dict) -> dict[str, Table]:
    """``folds`` (one row per cutoff: the window, actual, P10/P50/P90, PIT, CRPS, the point
    baselines and the open/new pipeline split) and ``summary`` (one row)."""
    rows = []
    for f in b["folds"]:
        row = {
            k: f[k]
            for k in (
                "cutoff",
                "start",
                "end",
                *FOLD_MONEY,
                "pit",
                "covered",
                "ape_p50",
                "open_deals",
            )
        }
        row.update({k: _date(row[k]) for k in ("cutoff", "start", "end")})
        for part in ("open", "new"):
            row.update({f"{part}_{k}": v for k, v in f[part].items()})
        rows.append(row)
    folds = pl.DataFrame(rows, infer_schema_length=None)
    bl, parts = b["baselines"], b["parts"]
    lo, hi = b["coverage_interval"]
    summary = _one_row(
        {
            "folds": len(b["folds"]),
            "coverage_p10_p90": b["coverage_p10_p90"],
            "coverage_se": b["coverage_se"],
            "coverage_lo": lo,
            "coverage_hi": hi,
            "mean_pit": b["mean_pit"],
            "crps": b["crps"],
            "mape_p50": b["mape_p50"],
            **{k: v for p in ("open", "new") for k, v in _flat(p, parts[p]).items()},
            **{
                k: v for n in ("stage_weighted", "last_quarter") for k, v in _flat(n, bl[n]).items()
            },
            "pit_chi2": b["pit_histogram"]["chi2"],
            "pit_p_value": b["pit_histogram"]["p_value"],
            "trials": b["trials"],
            "seed": str(b["seed"]),
        }
    )
    part_money = tuple(f"{p}_{k}" for p in ("open", "new") for k in PART_MONEY)
    fractions = (
        "pit",
        "ape_p50",
        "open_pit",
        "new_pit",
        "coverage_p10_p90",
        "coverage_se",
        "coverage_lo",
        "coverage_hi",
        "mean_pit",
        "mape_p50",
        "open_mean_pit",
        "new_mean_pit",
        "open_coverage_p10_p90",
        "new_coverage_p10_p90",
        "open_coverage_lo",
        "open_coverage_hi",
        "new_coverage_lo",
        "new_coverage_hi",
        "stage_weighted_mape",
        "last_quarter_mape",
        "pit_chi2",
        "pit_p_value",
    )
    money = (
        *FOLD_MONEY,
        *part_money,
        "open_crps",
        "new_crps",
        "stage_weighted_crps",
        "last_quarter_crps",
    )
    return {
        "folds": Table(folds, money=money, fractions=fractions),
        "summary": Table(summary, money=money, fractions=fractions),
    }


# --- dashboard --------------------------------------------------------------------------------
MEASURE_FIELDS = ("actual", "plan_p20", "plan_p50", "percentile", "status")


def dashboard_tables(d: dict) -> dict[str, Table]:
    """``stoplight`` (one row per who, the team first: its colour, and per measure the
    actual, the plan's P20 and P50 on this date, where the actual sits among the plan's
    paths and its colour) and ``pointers`` (one row per coaching pointer)."""
    rows, fractions = [], ["p_quota", "to_go_coverage"]
    money: list[str] = []
    for s in [d["team"]] + d["reps"]:
        lines = s["lines"]
        row = {"who": s["who"], "status": s["status"], "quota": s["quota"]}
        for line in ("activities", "pipeline", "forecast"):
            row[f"{line}_status"] = lines[line]["status"]
            for m in lines[line]["measures"]:
                row.update({f"{m['name']}_{k}": m[k] for k in MEASURE_FIELDS})
                values = [f"{m['name']}_{k}" for k in ("actual", "plan_p20", "plan_p50")]
                (money if m["unit"] == "money" else fractions).extend(values)
                fractions.append(f"{m['name']}_percentile")
        row["to_go_coverage"] = lines["pipeline"]["detail"].get("to_go_coverage")
        row["p_quota"] = lines["forecast"]["detail"].get("p_quota")
        rows.append(row)
    stoplight = pl.DataFrame(rows, infer_schema_length=None)
    stoplight = stoplight.with_columns(
        pl.col(c).cast(pl.Float64) for c in {*money, *fractions} if c in stoplight.columns
    )
    pointers = pl.DataFrame(
        [{"who": s["who"], "pointer": p} for s in [d["team"]] + d["reps"] for p in s["pointers"]],
        schema={"who": pl.String, "pointer": pl.String},
    )
    by = rollup_frame(d.get("by") or [])
    return {
        "stoplight": Table(stoplight, money=("quota", *money), fractions=tuple(fractions)),
        "pointers": Table(pointers),
        **({"by": _rollup_table(by)} if by.height else {}),
    }


# --- helpers ----------------------------------------------------------------------------------
def _one_row(row: dict) -> pl.DataFrame:
    return pl.DataFrame([row], infer_schema_length=None)


def _flat(prefix: str, d: dict) -> dict:
    """``{"crps": 1, "coverage_interval": [lo, hi], "values": [...]}`` -> ``prefix_crps``,
    ``prefix_coverage_lo``, ``prefix_coverage_hi``: one cell a value (per-fold lists are
    in the folds table already)."""
    out = {}
    for k, v in d.items():
        if k.endswith("_interval"):
            out.update(
                {f"{prefix}_{k.removesuffix('_interval')}_{e}": x for e, x in zip(("lo", "hi"), v)}
            )
        elif not isinstance(v, (list, tuple, dict)):
            out[f"{prefix}_{k}"] = v
    return out


def _date(x: str | dt.date | None) -> dt.date | None:
    return None if x is None else x if isinstance(x, dt.date) else dt.date.fromisoformat(x)


def _others(df: pl.DataFrame, skip: Iterable[str]) -> tuple[str, ...]:
    return tuple(c for c in df.columns if c not in set(skip))
