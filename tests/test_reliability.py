"""Reliability: any single bad cell in a CRM history gives a clean answer or a clean error.

A property fuzz over single-cell mutations of a demo history (every file, the header row
too): ``inspect`` and ``calibrate`` exit 0, or exit 2 with one line naming where the problem
is — never a traceback — and no input file is touched.
"""

import csv
import hashlib
import io
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesim import InputError, read_history
from salesim.cli import main

FILES = (
    "opportunities.csv",
    "stage_history.csv",
    "activities.csv",
    "reps.csv",
    "close_date_history.csv",
    "teams.csv",
)
NASTY = [
    "",
    " ",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e300",
    "-0",
    "9999-12-31",
    "0001-01-01",
    "2024-02-30",
    "2024-13-01",
    "1/2/24",
    "2024-01-01T25:00",
    "abc",
    "Closed Won",
    "won",
    "lost",
    "open",
    "reopened",
    "\x1b[31mred\x1b[0m",
    "x" * 5_000,
    '"',
    "1,000",
    "€5",
    "٣",
    "12.5.2024",
    "NULL",
    "None",
    "true",
    "2024-01-01 10:32",
    "  2024-01-01  ",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "hist"
    result = CliRunner().invoke(
        main, ["demo-data", str(folder), "--seed", "2", "--reps", "3", "--quarters", "4", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    _add_deal_fields(folder)
    return folder


def _add_deal_fields(folder: Path) -> None:
    """The demo history with deal fields: a forecast category, a probability and a last
    activity per deal, a close-date history of pushes and a teams file."""
    opps = pl.read_csv(folder / "opportunities.csv", infer_schema=False)
    created = pl.col("created").str.to_date()
    categories = pl.Series(["Commit", "Best Case", "Pipeline", "Omitted"])
    opps = opps.with_columns(
        pl.Series(
            "forecast_category", categories.gather(pl.int_range(0, opps.height, eager=True) % 4)
        ),
        pl.lit("50").alias("probability"),
        pl.col("created").alias("last_activity"),
    )
    opps.write_csv(folder / "opportunities.csv")
    first = opps.head(40).select(
        "opportunity_id",
        pl.col("created").alias("changed"),
        (created + pl.duration(days=30)).cast(pl.String).alias("expected_close"),
        (created + pl.duration(days=10)).cast(pl.String).alias("previous"),
    )
    first.write_csv(folder / "close_date_history.csv")
    reps = pl.read_csv(folder / "reps.csv", infer_schema=False)
    reps.select("owner", pl.lit("Max").alias("manager"), pl.lit("East").alias("region")).write_csv(
        folder / "teams.csv"
    )


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _mutated(base: Path, where: str, row: int, col: int, value: str) -> tempfile.TemporaryDirectory:
    tmp = tempfile.TemporaryDirectory()
    hist = Path(tmp.name) / "hist"
    shutil.copytree(base, hist)
    rows = _rows(base / where)
    r = rows[row % len(rows)]
    r[col % len(r)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (hist / where).write_text(buf.getvalue(), encoding="utf-8")
    return tmp


def _clean(result, label):
    assert result.exit_code in (0, 2), f"{label}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert len(lines[0]) < 1_000


@pytest.mark.parametrize("where", FILES)
def test_every_nasty_value_in_every_column(base, where):
    """Each listed value in each column of a data row reads cleanly or fails naming a file
    (an id's change can surface in the file that refers to it) and, where a cell is at fault,
    its column."""
    header = _rows(base / where)[0]
    for col, name in enumerate(header):
        for value in NASTY:
            with _mutated(base, where, 1, col, value) as tmp:
                try:
                    read_history(Path(tmp) / "hist")
                except InputError as err:
                    message = str(err)
                    assert ".csv" in message and "Traceback" not in message, (where, name, value)
                    assert ", row " not in message or "column '" in message, message


MUTATION = st.tuples(
    st.sampled_from(FILES),
    st.integers(0, 400),
    st.integers(0, 12),
    st.one_of(st.sampled_from(NASTY), st.text(max_size=20)),
)


# derandomize: the same examples on every run (a failure found once is fixed, not a flaky CI);
# test_every_nasty_value_in_every_column sweeps the listed values exhaustively.
@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(MUTATION)
def test_inspect_any_single_bad_cell(base, mutation):
    where, row, col, value = mutation
    with _mutated(base, where, row, col, value) as tmp:
        hist = Path(tmp) / "hist"
        before = _digest(hist)
        _clean(CliRunner().invoke(main, ["inspect", str(hist), "--json"]), mutation)
        assert _digest(hist) == before


@pytest.mark.slow
@settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(MUTATION)
def test_calibrate_any_single_bad_cell(base, mutation):
    where, row, col, value = mutation
    with _mutated(base, where, row, col, value) as tmp:
        hist = Path(tmp) / "hist"
        before = _digest(hist)
        out = Path(tmp) / "out.toml"
        _clean(
            CliRunner().invoke(main, ["calibrate", str(hist), "-o", str(out), "--quiet"]), mutation
        )
        assert _digest(hist) == before
