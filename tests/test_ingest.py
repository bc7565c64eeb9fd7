"""CRM history ingestion: canonical CSV/Parquet, every bad-input case (library and CLI), the
Maven sample, the as-of cut (no leakage), stage-order inference, column mapping with
Salesforce/HubSpot-shaped exports, and the docs' example commands."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim.calibrate.formats import parse_mapping
from salesim.calibrate.history import (
    ACTIVITY_COLUMNS,
    OPPORTUNITY_COLUMNS,
    REP_COLUMNS,
    STAGE_HISTORY_COLUMNS,
)
from salesim.calibrate.ingest import cut, infer_stage_order, read_history, summarize
from salesim.cli import history_options, load_history, main
from salesim.simulator.errors import InputError

D = dt.date
ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"
MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"
STAGES = ("Qualify", "Discover", "Propose", "Negotiate")

# A small history: rows 2..8 of opportunities.csv. O1 is won on 2024-03-20 from Negotiate,
# O3 is lost in Discover, O5 is open in Propose, O6 is won late (2024-06-10).
OPPS = """\
opportunity_id,owner,created,stage,status,closed,amount,segment,source
O1,ann,2024-01-02,Negotiate,won,2024-03-20,1000,SMB,Outbound
O2,ann,2024-01-10,Qualify,lost,2024-01-25,500,SMB,outbound
O3,bob,2024-02-01,Discover,Closed Lost,2024-03-01,750.5,,Marketing
O4,bob,2024-02-15,Qualify,open,,300,Ent,
O5,cy,2024-03-01,Propose,open,,"2,500.00",Ent,marketing
O6,cy,2024-03-05,Negotiate,closedwon,2024-06-10,4000,Ent,outbound
O7,ann,2024-05-01,Qualify,open,,100,SMB,outbound
"""
STAGE_HISTORY = """\
opportunity_id,stage,entered
O1,Qualify,2024-01-02
O1,Discover,2024-01-20
O1,Propose,2024-02-10
O1,Negotiate,2024-03-01
O2,Qualify,2024-01-10
O3,Qualify,2024-02-01
O3,Discover,2024-02-10
O4,Qualify,2024-02-15
O5,Qualify,2024-03-01
O5,Discover,2024-03-10
O5,Propose,2024-04-20
O6,Qualify,2024-03-05
O6,Discover,2024-03-15
O6,Propose,2024-04-01
O6,Negotiate,2024-05-20
O7,Qualify,2024-05-01
"""
ACTIVITIES = """\
owner,date,kind,count
ann,2024-01-02,call,5
bob,2024-03-01,email,3
cy,2024-05-02,meeting,1
"""
REPS = """\
owner,hired,left,quota
ann,2023-01-01,,100000
bob,2023-06-01,2024-04-30,100000
cy,2024-02-01,,80000
dee,2024-05-15,,90000
"""


def write(folder: Path, **files: str) -> Path:
    """Write ``name=text`` as ``folder/name.csv`` (a name ending in ``_bytes`` takes bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / f"{name}.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return folder


@pytest.fixture
def hist_dir(tmp_path: Path) -> Path:
    return write(
        tmp_path / "hist",
        opportunities=OPPS,
        stage_history=STAGE_HISTORY,
        activities=ACTIVITIES,
        reps=REPS,
    )


def replace_line(text: str, row: int, new: str) -> str:
    """Replace spreadsheet row ``row`` (header = 1) of a CSV text."""
    lines = text.splitlines()
    lines[row - 1] = new
    return "\n".join(lines) + "\n"


# --- happy path ---------------------------------------------------------------------------------
def test_canonical_folder_reads_and_normalises(hist_dir):
    h = read_history(hist_dir)
    o = h.opportunities
    assert dict(o.schema) == OPPORTUNITY_COLUMNS
    assert dict(h.stage_history.schema) == STAGE_HISTORY_COLUMNS
    assert dict(h.activities.schema) == ACTIVITY_COLUMNS
    assert dict(h.reps.schema) == REP_COLUMNS
    assert o["opportunity_id"].to_list() == [f"O{i}" for i in range(1, 8)]  # file order kept
    assert o["status"].to_list() == ["won", "lost", "lost", "open", "open", "won", "open"]
    assert o["amount"].to_list() == [1000, 500, 750.5, 300, 2500, 4000, 100]
    assert o["segment"].to_list()[2] == "all"
    assert o["source"].to_list() == [
        "outbound",
        "outbound",
        "marketing",
        None,
        "marketing",
        "outbound",
        "outbound",
    ]
    assert o.filter(pl.col("status") == "open")["closed"].null_count() == 3
    assert o["closed"][0] == D(2024, 3, 20)
    assert h.stages == STAGES  # inferred from the stage history
    assert h.has_stage_history and h.stage_history.height == 16
    assert h.activities["count"].to_list() == [5, 3, 1]
    assert h.reps["left"].to_list()[1] == D(2024, 4, 30)
    assert h.last_date == D(2024, 6, 10)
    assert any("inferred" in n for n in h.notes)


def test_parquet_reads_like_csv(hist_dir, tmp_path):
    csv_hist = read_history(hist_dir)
    pq = tmp_path / "pq"
    pq.mkdir()
    # Typed columns (Date, Float64, Int64) as another tool would write them ...
    csv_hist.opportunities.write_parquet(pq / "opportunities.parquet")
    csv_hist.stage_history.write_parquet(pq / "stage_history.parquet")
    # ... and text columns, validated like CSV.
    pl.read_csv(hist_dir / "activities.csv", infer_schema=False).write_parquet(
        pq / "activities.parquet"
    )
    pl.read_csv(hist_dir / "reps.csv", infer_schema=False).write_parquet(pq / "reps.parquet")
    h = read_history(pq)
    for name in ("opportunities", "stage_history", "activities", "reps"):
        assert getattr(h, name).equals(getattr(csv_hist, name)), name
    assert h.stages == csv_hist.stages


def test_parquet_is_validated_with_spreadsheet_rows(hist_dir, tmp_path):
    opps = pl.read_csv(hist_dir / "opportunities.csv", infer_schema=False)
    opps = opps.with_columns(
        pl.when(pl.col("opportunity_id") == "O4")
        .then(pl.lit("-3"))
        .otherwise(pl.col("amount"))
        .alias("amount")
    )
    path = tmp_path / "opps.parquet"
    opps.write_parquet(path)
    with pytest.raises(InputError) as err:
        read_history(path)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), 5, "amount")


def test_explicit_file_reads_only_named_files(hist_dir):
    h = read_history(hist_dir / "opportunities.csv")
    assert h.stage_history is None and h.activities is None and h.reps is None
    assert h.stages == ("Negotiate", "Qualify", "Discover", "Propose")  # first seen
    h = read_history(hist_dir / "opportunities.csv", reps=hist_dir / "reps.csv")
    assert h.reps.height == 4 and h.stage_history is None


def test_optional_fallbacks_are_noted(tmp_path):
    opps = OPPS.replace(
        "O4,bob,2024-02-15,Qualify,open,,", "O4,bob,2024-02-15,Qualify,open,2024-09-30,"
    )
    folder = write(
        tmp_path / "h",
        opportunities=opps.replace("\nO5", "\n\nO5"),
        activities="owner,date,kind,count\n",
        reps=b"",
    )
    h = read_history(folder)
    assert h.opportunities.height == 7  # the blank line is skipped
    assert h.opportunities["closed"][3] is None  # an open deal's expected close date
    assert h.activities is None and h.reps is None
    text = " | ".join(h.notes)
    assert "ignored the close date of 1 open deal " in text
    assert "activities.csv: the file has no data rows" in text
    assert "reps.csv: the file has no data rows" in text
    # rows after a blank line keep their spreadsheet numbers
    bad = opps.replace("\nO5", "\n\nO5").replace("2,500.00", "-5")
    with pytest.raises(InputError) as err:
        read_history(write(tmp_path / "b", opportunities=bad))
    assert err.value.row == 7


def test_only_open_deals_is_noted(tmp_path):
    opps = "opportunity_id,owner,created,stage,status,amount\nA,ann,2024-01-01,Qualify,open,5\n"
    h = read_history(write(tmp_path / "h", opportunities=opps))
    assert h.opportunities["closed"].null_count() == 1
    assert any("no won or lost deals" in n for n in h.notes)


def test_dates_with_times_and_a_date_format(tmp_path):
    opps = (
        "opportunity_id,owner,created,stage,status,closed,amount\n"
        "A,ann,2024-01-05T10:00:00Z,Q,won,2024-02-01 17:30,5\n"
        "B,ann,2024-1-6,Q,open,,5\n"
    )
    h = read_history(write(tmp_path / "iso", opportunities=opps))
    assert h.opportunities["created"].to_list() == [D(2024, 1, 5), D(2024, 1, 6)]
    assert h.opportunities["closed"][0] == D(2024, 2, 1)
    us = (
        "opportunity_id,owner,created,stage,status,closed,amount\n"
        "A,ann,1/5/2024,Q,won,2/1/2024 5:30 PM,5\n"
    )
    h = read_history(write(tmp_path / "us", opportunities=us), date_format="%m/%d/%Y")
    assert h.opportunities["closed"][0] == D(2024, 2, 1)
    with pytest.raises(InputError) as err:  # ISO is not read when a format is given
        read_history(write(tmp_path / "iso2", opportunities=opps), date_format="%m/%d/%Y")
    assert (err.value.row, err.value.column) == (2, "created")
    assert "format %m/%d/%Y" in str(err.value)


# --- bad input ----------------------------------------------------------------------------------
def _edit(file: str, row: int, line: str):
    return file, lambda text: replace_line(text, row, line)


BASE = {
    "opportunities": OPPS,
    "stage_history": STAGE_HISTORY,
    "activities": ACTIVITIES,
    "reps": REPS,
}
# (id, file to change, how, extra read_history kwargs, expected file, row, column, words)
BAD = [
    (
        "extra field",
        *_edit("opportunities", 4, "O3,bob,2024-02-01,Discover,lost,,7,x,y,z"),
        {},
        "opportunities",
        4,
        None,
        "fields where the header has 9",
    ),
    (
        "unclosed quote",
        *_edit("opportunities", 6, 'O5,cy,2024-03-01,Propose,open,,"2500,Ent,x'),
        {},
        "opportunities",
        6,
        None,
        "malformed CSV",
    ),
    (
        "not utf-8",
        "opportunities",
        lambda t: t.replace("cy,2024-03-01", "c\xe9,2024-03-01").encode("latin-1"),
        {},
        "opportunities",
        6,
        None,
        "not UTF-8",
    ),
    ("empty file", "opportunities", lambda t: b"", {}, "opportunities", None, None, "no data rows"),
    (
        "header only",
        "opportunities",
        lambda t: t.splitlines()[0] + "\n",
        {},
        "opportunities",
        None,
        None,
        "no data rows",
    ),
    (
        "missing column",
        "opportunities",
        lambda t: t.replace("amount", "value"),
        {},
        "opportunities",
        1,
        "amount",
        "the file has: 'opportunity_id'",
    ),
    (
        "missing closed column",
        "opportunities",
        lambda t: re.sub(r"(?m)^((?:[^,]*,){5})[^,]*,", r"\1", t),
        {},
        "opportunities",
        1,
        "closed",
        "missing column 'closed'",
    ),
    (
        "duplicate id",
        *_edit("opportunities", 7, "O2,cy,2024-03-05,Negotiate,won,2024-06-10,4,E,x"),
        {},
        "opportunities",
        3,
        "opportunity_id",
        "at rows 3 and 7",
    ),
    (
        "missing owner",
        *_edit("opportunities", 5, "O4,,2024-02-15,Qualify,open,,300,Ent,"),
        {},
        "opportunities",
        5,
        "owner",
        "missing owner",
    ),
    (
        "bad date",
        *_edit("opportunities", 5, "O4,bob,2024-13-15,Qualify,open,,300,Ent,"),
        {},
        "opportunities",
        5,
        "created",
        "cannot read date '2024-13-15'",
    ),
    (
        "unknown status",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Qualify,pending,,300,E,"),
        {},
        "opportunities",
        5,
        "status",
        "unknown status 'pending'",
    ),
    (
        "won without closed",
        *_edit("opportunities", 2, "O1,ann,2024-01-02,Negotiate,won,,1000,S,x"),
        {},
        "opportunities",
        2,
        "closed",
        "missing close date of a won deal",
    ),
    (
        "closed before created",
        *_edit("opportunities", 3, "O2,ann,2024-01-10,Qualify,lost,2023-12-25,500,SMB,x"),
        {},
        "opportunities",
        3,
        "closed",
        "before created",
    ),
    (
        "non-numeric amount",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Qualify,open,,abc,E,"),
        {},
        "opportunities",
        5,
        "amount",
        "cannot read amount 'abc'",
    ),
    (
        "nan amount",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Qualify,open,,nan,E,"),
        {},
        "opportunities",
        5,
        "amount",
        "cannot read amount 'nan'",
    ),
    (
        "negative amount",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Qualify,open,,-300,E,"),
        {},
        "opportunities",
        5,
        "amount",
        "negative amount -300",
    ),
    (
        "outcome stage on an open deal",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Closed Won,open,,300,E,"),
        {},
        "opportunities",
        5,
        "stage",
        "on an open deal",
    ),
    (
        "unknown stage (given order)",
        "opportunities",
        lambda t: t,
        {"stages": "Qualify,Discover,Negotiate"},
        "stage_history",
        4,
        "stage",
        "unknown stage 'Propose'",
    ),
    (
        "unknown stage (inferred order)",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Demo,open,,3,E,"),
        {},
        "opportunities",
        5,
        "stage",
        "unknown stage 'Demo'",
    ),
    (
        "unknown stage (no history)",
        *_edit("opportunities", 5, "O4,bob,2024-02-15,Demo,open,,3,E,"),
        {"stages": STAGES, "stage_history": None},
        "opportunities",
        5,
        "stage",
        "unknown stage",
    ),
    (
        "history: unknown opportunity",
        *_edit("stage_history", 9, "O9,Qualify,2024-02-15"),
        {},
        "stage_history",
        9,
        "opportunity_id",
        "'O9' is not in the opportunities",
    ),
    (
        "history: bad date",
        *_edit("stage_history", 3, "O1,Discover,20-01-2024"),
        {},
        "stage_history",
        3,
        "entered",
        "cannot read date '20-01-2024'",
    ),
    (
        "activities: negative count",
        *_edit("activities", 3, "bob,2024-03-01,email,-3"),
        {},
        "activities",
        3,
        "count",
        "negative count",
    ),
    (
        "activities: fractional count",
        *_edit("activities", 4, "cy,2024-05-02,meeting,1.5"),
        {},
        "activities",
        4,
        "count",
        "not a whole number",
    ),
    (
        "reps: left before hired",
        *_edit("reps", 3, "bob,2023-06-01,2023-05-30,100000"),
        {},
        "reps",
        3,
        "left",
        "left 2023-05-30 before hired 2023-06-01",
    ),
    (
        "reps: duplicate owner",
        *_edit("reps", 4, "ann,2024-02-01,,80000"),
        {},
        "reps",
        2,
        "owner",
        "at rows 2 and 4",
    ),
]


def _bad_history(tmp_path, file, how, kwargs):
    texts = dict(BASE)
    texts[file] = how(texts[file])
    folder = write(tmp_path / "bad", **texts)
    kwargs = dict(kwargs)
    if "stage_history" in kwargs and kwargs["stage_history"] is None:
        (folder / "stage_history.csv").unlink()
        del kwargs["stage_history"]
    return folder, kwargs


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_names_file_row_and_column(tmp_path, case):
    _, file, how, kwargs, exp_file, exp_row, exp_col, words = case
    folder, kwargs = _bad_history(tmp_path, file, how, kwargs)
    with pytest.raises(InputError) as err:
        read_history(folder, **kwargs)
    e = err.value
    assert e.file == str(folder / f"{exp_file}.csv")
    assert e.row == exp_row
    assert e.column == exp_col
    assert words in str(e)


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    _, file, how, kwargs, exp_file, exp_row, _, words = case
    folder, kwargs = _bad_history(tmp_path, file, how, kwargs)
    args = ["inspect", str(folder)]
    if "stages" in kwargs:
        stages = kwargs["stages"]
        args += ["--stages", stages if isinstance(stages, str) else ",".join(stages)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.output and words in lines[0]
    if exp_row is not None:
        assert f"row {exp_row}" in lines[0]


def test_header_problems(tmp_path):
    dup = (
        "opportunity_id,owner,created,stage,status,closed,amount,amount\n"
        "A,a,2024-01-01,Q,open,,1,2\n"
    )
    with pytest.raises(InputError, match="'amount' appears more than once") as err:
        read_history(write(tmp_path / "dup", opportunities=dup))
    assert (err.value.row, err.value.column) == (1, "amount")
    semi = OPPS.replace(",", ";")
    with pytest.raises(InputError, match="single column") as err:
        read_history(write(tmp_path / "semi", opportunities=semi))
    assert err.value.row == 1


def test_first_bad_row_and_how_many_more(tmp_path):
    opps = OPPS.replace("2024-02-15", "2024-02-31").replace("2024-03-01,Propose", "x,Propose")
    with pytest.raises(InputError) as err:
        read_history(write(tmp_path / "h", opportunities=opps))
    assert err.value.row == 5 and err.value.column == "created"
    assert "(1 more row like it)" in str(err.value)


def test_missing_paths_and_ambiguous_folders(tmp_path, hist_dir):
    with pytest.raises(InputError, match="history not found"):
        read_history(tmp_path / "nope")
    with pytest.raises(InputError, match="no opportunities.csv"):
        read_history(write(tmp_path / "empty", other="a\n1\n"))
    with pytest.raises(InputError, match="reps file not found"):
        read_history(hist_dir, reps=tmp_path / "nope.csv")
    pl.read_csv(hist_dir / "opportunities.csv").write_parquet(hist_dir / "opportunities.parquet")
    with pytest.raises(InputError, match="both opportunities.csv and opportunities.parquet"):
        read_history(hist_dir)
    with pytest.raises(InputError, match="appears twice"):
        read_history(hist_dir / "opportunities.csv", stages="A,B,A")


def test_as_of_before_any_opportunity_is_an_error(hist_dir):
    with pytest.raises(InputError, match="no opportunity was created on or before 2023-12-31"):
        read_history(hist_dir).as_of(D(2023, 12, 31))


# --- as of a date -------------------------------------------------------------------------------
def test_cut_has_no_leakage(hist_dir):
    h = read_history(hist_dir)
    c = h.as_of(D(2024, 4, 30))
    o = {r["opportunity_id"]: r for r in c.opportunities.iter_rows(named=True)}
    assert "O7" not in o  # created 2024-05-01
    # O6 is won on 2024-06-10 after reaching Negotiate on 2024-05-20: on 2024-04-30 it was
    # an open deal in Propose.
    assert (o["O6"]["status"], o["O6"]["closed"], o["O6"]["stage"]) == ("open", None, "Propose")
    assert (o["O1"]["status"], o["O1"]["stage"]) == ("won", "Negotiate")  # closed before
    assert o["O5"]["stage"] == "Propose"  # entered Propose 2024-04-20, still there
    assert c.stage_history.filter(pl.col("entered") > D(2024, 4, 30)).height == 0
    assert c.stage_history.filter(pl.col("opportunity_id") == "O7").height == 0
    assert c.activities["date"].max() <= D(2024, 4, 30)
    assert c.reps["owner"].to_list() == ["ann", "bob", "cy"]  # dee hired later
    assert c.reps["left"].to_list() == [None, D(2024, 4, 30), None]  # left that very day
    assert c.last_date <= D(2024, 4, 30)
    text = " | ".join(c.notes)
    assert "removed 1 opportunity created later" in text
    assert "reopened 1 deal that closed later (1 won, 0 lost later)" in text
    # Earlier: O5 was in Discover (entered Propose 2024-04-20); bob had not left yet.
    c = h.as_of("2024-04-19")
    row = c.opportunities.filter(pl.col("opportunity_id") == "O5").row(0, named=True)
    assert row["stage"] == "Discover"
    assert c.as_of(D(2024, 3, 31)).reps["left"].to_list() == [None, None, None]


def test_cut_drops_rows_of_deals_not_yet_created(tmp_path):
    # O7 (created 2024-05-01) has a stray stage row dated before its creation.
    sh = STAGE_HISTORY + "O7,Discover,2024-04-01\n"
    h = read_history(write(tmp_path / "h", opportunities=OPPS, stage_history=sh))
    assert any("1 row with a stage entered before the deal was created" in n for n in h.notes)
    c = h.as_of(D(2024, 4, 30))
    assert "O7" not in c.stage_history["opportunity_id"].to_list()
    assert c.stage_history.height == 14  # O7's stray row is gone too


def test_cut_at_the_last_date_changes_nothing(hist_dir):
    h = read_history(hist_dir)
    c = h.as_of(h.last_date)
    for name in ("opportunities", "stage_history", "activities"):
        assert getattr(c, name).equals(getattr(h, name)), name
    assert c.reps.equals(h.reps)


def test_cut_without_stage_history_keeps_last_recorded_stage(hist_dir):
    h = read_history(hist_dir / "opportunities.csv")
    c = cut(h, D(2024, 4, 30))
    row = c.opportunities.filter(pl.col("opportunity_id") == "O6").row(0, named=True)
    assert (row["status"], row["stage"]) == ("open", "Negotiate")
    assert any("keep their last recorded stage" in n for n in c.notes)


@pytest.fixture(scope="module")
def module_history(tmp_path_factory):
    folder = write(
        tmp_path_factory.mktemp("prop") / "h",
        opportunities=OPPS,
        stage_history=STAGE_HISTORY,
        activities=ACTIVITIES,
        reps=REPS,
    )
    return read_history(folder)


@settings(max_examples=40, deadline=None)
@given(offset=st.integers(min_value=0, max_value=200), earlier=st.integers(0, 120))
def test_cut_property_no_date_after_as_of_and_cuts_compose(module_history, offset, earlier):
    h = module_history
    day = D(2024, 1, 2) + dt.timedelta(days=offset)
    c = cut(h, day)
    o = c.opportunities
    assert o["created"].max() <= day
    assert o["closed"].drop_nulls().max() is None or o["closed"].drop_nulls().max() <= day
    assert c.stage_history["entered"].max() <= day
    assert c.activities.height == 0 or c.activities["date"].max() <= day
    assert c.reps["hired"].max() <= day
    assert c.reps["left"].drop_nulls().len() == 0 or c.reps["left"].drop_nulls().max() <= day
    # conservation: every deal created by then is counted once, as open, won or lost
    full = h.opportunities
    assert o.height == full.filter(pl.col("created") <= day).height
    assert (
        o.filter(pl.col("status") == "won").height
        == full.filter((pl.col("status") == "won") & (pl.col("closed") <= day)).height
    )
    # open deals sit in the last stage entered by then
    last = c.stage_history.sort("entered").group_by("opportunity_id").agg(pl.col("stage").last())
    joined = o.filter(pl.col("status") == "open").join(last, on="opportunity_id", suffix="_h")
    assert (joined["stage"] == joined["stage_h"]).all()
    # cutting twice equals cutting once at the earlier date
    first = max(day - dt.timedelta(days=earlier), D(2024, 1, 2))
    twice, once = cut(c, first), cut(h, first)
    for name in ("opportunities", "stage_history", "activities", "reps"):
        assert getattr(twice, name).equals(getattr(once, name)), name


# --- stage order --------------------------------------------------------------------------------
def _sh(rows):
    return pl.DataFrame(
        rows,
        schema={"opportunity_id": pl.String, "stage": pl.String, "entered": pl.Date},
        orient="row",
    )


def test_stage_order_inference_handles_skips_reentries_and_file_order():
    rows = [
        ("a", "Propose", D(2024, 1, 20)),
        ("a", "Qualify", D(2024, 1, 1)),
        ("a", "Discover", D(2024, 1, 10)),
        ("a", "Negotiate", D(2024, 2, 1)),
        ("b", "Discover", D(2024, 1, 5)),
        ("b", "Negotiate", D(2024, 1, 30)),  # skips
        ("c", "Qualify", D(2024, 1, 1)),
        ("c", "Discover", D(2024, 1, 3)),
        ("c", "Qualify", D(2024, 1, 9)),
        ("c", "Discover", D(2024, 1, 12)),  # re-entry
        ("c", "Propose", D(2024, 1, 20)),
        ("d", "Qualify", D(2024, 1, 1)),
        ("d", "Discover", D(2024, 1, 1)),  # same day
    ]
    assert infer_stage_order(_sh(rows)) == STAGES
    assert infer_stage_order(_sh(rows[::-1])) == STAGES  # file order does not matter here


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_stage_order_is_recovered_from_any_file_order(data):
    """Deals that pass stages in order (each a prefix, on strictly later days) give the true
    order back, whatever the stage names and the row order in the file."""
    names = data.draw(
        st.lists(
            st.text("ABCDEFGHXYZ", min_size=1, max_size=3), min_size=1, max_size=6, unique=True
        )
    )
    reached = data.draw(st.lists(st.integers(1, len(names)), min_size=1, max_size=12))
    gaps = data.draw(st.lists(st.integers(1, 20), min_size=len(names), max_size=len(names)))
    rows = [
        (f"d{i}", names[k], D(2024, 1, 1) + dt.timedelta(days=sum(gaps[: k + 1])))
        for i, r in enumerate(reached)
        for k in range(r)
    ]
    rows = data.draw(st.permutations(rows))
    expected = tuple(names[: max(reached)])
    assert infer_stage_order(_sh(rows)) == expected


def test_given_order_wins_and_disagreement_is_noted(hist_dir):
    order = ("Qualify", "Propose", "Discover", "Negotiate")
    h = read_history(hist_dir, stages=",".join(order))
    assert h.stages == order
    assert any("suggests the order Qualify → Discover → Propose → Negotiate" in n for n in h.notes)
    h = read_history(hist_dir, stages=list(STAGES) + ["Contract"])
    assert h.stages == STAGES + ("Contract",)
    assert not any("suggests" in n for n in h.notes)


# --- Maven --------------------------------------------------------------------------------------
@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven CRM sample not available")
def test_maven_counts_match_source_md():
    h = read_history(MAVEN, format="maven")
    o = h.opportunities
    counts = dict(o.group_by("status").len().iter_rows())
    assert counts == {"won": 4238, "lost": 2473, "open": 1589}  # 8,800 - 500 Prospecting
    assert h.stages == ("Engaging",) and not h.has_stage_history
    assert any("dropped 500 Prospecting rows" in n for n in h.notes)
    assert o["created"].min() == D(2016, 10, 20) and o["created"].max() == D(2017, 12, 27)
    assert o["closed"].min() == D(2017, 3, 1) and o["closed"].max() == D(2017, 12, 31)
    # lost and open deals carry the list price; 'GTXPro' is 'GTX Pro'
    assert "GTXPro" not in o["segment"].to_list()
    gtx_pro = o.filter((pl.col("segment") == "GTX Pro") & (pl.col("status") != "won"))
    assert gtx_pro.height > 0 and gtx_pro["amount"].unique().to_list() == [4821.0]
    assert o.filter(pl.col("status") == "won")["amount"].min() > 0
    won_by_quarter = (
        o.filter(pl.col("status") == "won")
        .group_by(pl.col("closed").dt.quarter())
        .len()
        .sort("closed")
    )
    assert won_by_quarter["len"].to_list() == [531, 1254, 1257, 1196]
    assert (
        h.as_of(D(2017, 6, 30)).opportunities.filter(pl.col("status") == "won").height == 531 + 1254
    )


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven CRM sample not available")
def test_maven_rejects_a_mapping_and_hints_at_the_format():
    with pytest.raises(InputError, match="--map does not apply"):
        read_history(MAVEN, format="maven", mapping={"owner": "x"})
    with pytest.raises(InputError, match="--format maven"):
        read_history(MAVEN)


def test_maven_unknown_product_and_stage(tmp_path):
    pipeline = (
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,"
        "close_value\nA,ann,GTXPro,X,Won,2017-01-01,2017-02-01,4000\n"
        "B,ann,Widget,X,Lost,2017-01-02,2017-02-01,0\n"
        "C,bob,GTX Basic,,Prospecting,,,\n"
    )
    products = "product,series,sales_price\nGTX Pro,GTX,4821\nGTX Basic,GTX,550\n"
    folder = write(tmp_path / "m", sales_pipeline=pipeline, products=products)
    with pytest.raises(InputError) as err:
        read_history(folder, format="maven")
    assert (err.value.row, err.value.column) == (3, "product")
    write(
        folder, sales_pipeline=pipeline.replace("Widget", "GTX Basic").replace("Lost,", "Closing,")
    )
    with pytest.raises(InputError) as err:
        read_history(folder, format="maven")
    assert (err.value.row, err.value.column) == (3, "deal_stage")
    write(folder, sales_pipeline=pipeline.replace("Widget", "GTX Basic"))
    h = read_history(folder / "sales_pipeline.csv", format="maven")
    assert h.opportunities["amount"].to_list() == [4000.0, 550.0]
    assert h.opportunities["segment"].to_list() == ["GTX Pro", "GTX Basic"]


# --- column mapping -------------------------------------------------------------------------------
SF_MAP = [
    "opportunity_id=Opportunity ID,owner=Opportunity Owner,created=Created Date",
    "closed=Close Date,amount=Amount,source=Lead Source",
    "status=Stage",
    "stage=Stage",
    "stage_history.entered=Last Modified",
]
SF_STAGES = "Prospecting,Qualification,Needs Analysis,Proposal/Price Quote,Negotiation/Review"


def test_parse_mapping_forms():
    assert parse_mapping(["owner=Deal owner, created = Create Date", "amount='Amount, USD'"]) == {
        "owner": "Deal owner",
        "created": "Create Date",
        "amount": "Amount, USD",
    }
    assert parse_mapping({"stage_history.entered": "Changed"}) == {
        "stage_history.entered": "Changed"
    }
    assert parse_mapping(None) == {}
    for bad, words in (
        ("ownr=Owner", "unknown canonical column 'ownr'"),
        ("owner", "cannot read column mapping"),
        ("reps.entered=x", "unknown canonical column"),
        ("owner=", "no source column"),
        (["owner=A", "owner=B"], "mapped twice"),
    ):
        with pytest.raises(InputError, match=re.escape(words)):
            parse_mapping(bad)


def test_salesforce_report_with_status_from_stage():
    h = read_history(
        DATA / "salesforce_opportunities.csv",
        mapping=SF_MAP,
        date_format="%m/%d/%Y",
        stages=SF_STAGES,
        stage_history=DATA / "salesforce_stage_history.csv",
    )
    o = {r["opportunity_id"]: r for r in h.opportunities.iter_rows(named=True)}
    assert len(o) == 8
    assert [o[f"0065g00000AbC0{i}"]["status"] for i in range(1, 9)] == [
        "won",
        "lost",
        "open",
        "open",
        "open",
        "won",
        "lost",
        "open",
    ]
    first = o["0065g00000AbC01"]
    assert (first["created"], first["closed"], first["amount"]) == (
        D(2024, 1, 5),
        D(2024, 2, 14),
        12500.0,
    )
    assert first["stage"] == "Negotiation/Review"  # last stage from the history, not "Closed Won"
    assert o["0065g00000AbC02"]["stage"] == "Qualification"
    assert o["0065g00000AbC05"]["amount"] == 15000.0  # "$15,000.00"
    assert o["0065g00000AbC03"]["closed"] is None  # expected close date of an open deal
    assert o["0065g00000AbC03"]["source"] == "partner referral"
    assert h.stage_history.filter(pl.col("stage").str.starts_with("Closed")).height == 0
    assert h.stage_history.height == 21
    assert any("dropped 4 rows entering an outcome stage" in n for n in h.notes)
    # A status read from a stage column needs stage mapped to the same column (a plain
    # 'Stage' header matches 'stage' by itself); otherwise the message says so.
    with pytest.raises(InputError, match="map status and stage to the same column") as err:
        read_history(
            DATA / "hubspot_deals.csv",
            mapping=[
                "opportunity_id=Record ID,owner=Deal owner,created=Create Date,closed=Close Date",
                "status=Deal Stage,stage=Pipeline",
            ],
        )
    assert (err.value.row, err.value.column) == (4, "Deal Stage")


def test_hubspot_export_without_stage_history():
    h = read_history(
        DATA / "hubspot_deals.csv",
        mapping={
            "opportunity_id": "Record ID",
            "owner": "Deal owner",
            "created": "Create Date",
            "closed": "Close Date",
            "amount": "Amount",
            "status": "Deal Stage",
            "stage": "Deal Stage",
        },
    )
    o = h.opportunities
    assert o["status"].to_list() == ["won", "lost", "open", "open", "open"]
    assert o["opportunity_id"].to_list()[0] == "9001"
    assert o["stage"].to_list() == [
        None,
        None,
        "contractsent",
        "qualifiedtobuy",
        "presentationscheduled",
    ]
    assert h.stages == ("contractsent", "qualifiedtobuy", "presentationscheduled")
    assert any("no known last stage for 2 closed deals" in n for n in h.notes)
    # As of a date, a reopened deal without a stage starts in the first stage.
    c = h.as_of(D(2024, 2, 1))
    assert c.opportunities.row(0, named=True)["stage"] == "contractsent"


def test_missing_mapped_column_is_named(tmp_path):
    with pytest.raises(InputError) as err:
        read_history(DATA / "hubspot_deals.csv", mapping={"opportunity_id": "Deal ID"})
    assert err.value.column == "Deal ID" and "mapped to opportunity_id" in str(err.value)


# --- CLI ------------------------------------------------------------------------------------------
def test_inspect_json_and_text(hist_dir):
    import json

    result = CliRunner().invoke(main, ["inspect", str(hist_dir), "--json", "--as-of", "2024-04-30"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert s["as_of"] == "2024-04-30" and s["format"] == "canonical"
    assert s["opportunities"] == 6
    assert s["by_status"] == {"open": 3, "won": 1, "lost": 2}
    assert s["stages"] == list(STAGES)
    assert s["by_stage"]["Propose"] == {"open": 2, "won": 0, "lost": 0, "total": 2}
    assert s["dates"]["created_last"] == "2024-03-05"
    assert s["owners"]["ann"]["total"] == 2
    assert s["files"]["reps"].endswith("reps.csv") and s["rows"]["reps"] == 3
    assert any("reopened 1 deal" in n for n in s["notes"])
    text = CliRunner().invoke(main, ["inspect", str(hist_dir)])
    assert text.exit_code == 0
    assert "Opportunities  7 (open 3, won 2, lost 2)" in text.stdout
    assert "Qualify → Discover → Propose → Negotiate" in text.stdout
    bad = CliRunner().invoke(main, ["inspect", str(hist_dir), "--as-of", "30/04/2024"])
    assert bad.exit_code == 2 and "not a real as-of date" in bad.stderr


def test_summary_without_files(hist_dir):
    s = summarize(read_history(hist_dir))
    assert s["files"] is None and s["amount"]["won"] == 5000.0


def test_history_options_pass_through_to_load_history(tmp_path):
    seen = {}

    @click.command()
    @click.argument("history")
    @history_options
    def probe(history, **opts):
        seen["opts"] = opts
        seen["history"] = load_history(history, **opts)

    result = CliRunner().invoke(
        probe,
        [
            str(DATA / "salesforce_opportunities.csv"),
            "--date-format",
            "%m/%d/%Y",
            "--stages",
            SF_STAGES,
            "--stage-history",
            str(DATA / "salesforce_stage_history.csv"),
            *[x for m in SF_MAP for x in ("--map", m)],
        ],
    )
    assert result.exit_code == 0, result.output
    assert set(seen["opts"]) == {
        "format",
        "profile",
        "mapping",
        "date_format",
        "stages",
        "stage_history",
        "activities",
        "reps",
        "close_date_history",
        "teams",
    }
    h = seen["history"]
    assert h.opportunities.height == 8 and h.stages[0] == "Prospecting"


# --- files as spreadsheets save them; flags that name nothing -----------------------------------
def test_utf16_is_refused_by_name(hist_dir):
    path = hist_dir / "opportunities.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16 or binary") as err:
        read_history(hist_dir)
    assert err.value.file == str(path)


def test_old_mac_line_endings_read_like_lf(hist_dir, tmp_path):
    expected = read_history(hist_dir).opportunities
    path = hist_dir / "opportunities.csv"
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    assert read_history(hist_dir).opportunities.equals(expected)


def test_a_map_flag_naming_no_column_is_an_error(hist_dir):
    with pytest.raises(InputError, match="no file read has a column 'Nope'") as err:
        read_history(hist_dir, mapping=["owner=Nope"])
    assert err.value.column == "--map"
    read_history(hist_dir, mapping=["owner=OWNER"])  # headers match ignoring case


def test_a_deal_closed_after_today_is_an_error(hist_dir, monkeypatch):
    import salesim.calibrate.ingest as ingest

    monkeypatch.setattr(ingest, "_today", lambda: dt.date(2024, 2, 1))
    with pytest.raises(InputError, match="after today") as err:
        read_history(hist_dir)
    assert err.value.column == "closed"


def test_an_implausible_amount_is_an_error(hist_dir):
    path = hist_dir / "opportunities.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("amount")] = "1e300"
    path.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    with pytest.raises(InputError, match="implausible amount 1e300") as err:
        read_history(hist_dir)
    assert (err.value.row, err.value.column) == (2, "amount")
