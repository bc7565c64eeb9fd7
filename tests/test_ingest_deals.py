"""Deal fields (issue 18, item 1): expected close dates and their history (pushes), forecast
categories, CRM probability, next-step and last-activity dates, product, and each rep's
manager, region and segment; read through the profiles, cut at an as-of date, summarised by
``inspect``, and every bad value an error naming file, row and column."""

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from salesim.calibrate.ingest import read_history
from salesim.cli import main
from salesim.history import (
    CLOSE_DATE_CHANGE_COLUMNS,
    FORECAST_CATEGORIES,
    PUSH_COLUMNS,
    TEAM_COLUMNS,
)

DATA = Path(__file__).parent / "data"
SF_DEALS = DATA / "salesforce_deals.csv"
SF_CLOSE = DATA / "salesforce_close_date_history.csv"
SF_USERS = DATA / "salesforce_users.csv"
HS_FIELDS = DATA / "hubspot_deals_fields.csv"
MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"
D = dt.date


def sf(**extra):
    return read_history(
        SF_DEALS, profile="salesforce", close_date_history=SF_CLOSE, teams=SF_USERS, **extra
    )


def by_id(frame, column):
    return dict(zip(frame["opportunity_id"], frame[column]))


# --- reading --------------------------------------------------------------------------------------
def test_salesforce_deal_fields():
    o = sf().opportunities
    assert o["forecast_category"].to_list() == [
        "closed",
        "omitted",
        "commit",
        "best_case",
        "pipeline",
    ]
    assert o["probability"].to_list() == [1.0, 0.0, 0.9, 0.5, 0.2]
    # the close date of open deals is their expected close date
    assert o["expected_close"].to_list() == [
        None,
        None,
        D(2024, 6, 28),
        D(2024, 7, 31),
        D(2024, 9, 30),
    ]
    assert o["last_activity"].to_list()[:2] == [D(2024, 3, 14), D(2024, 3, 30)]
    assert o["last_activity"][4] is None
    assert o["product"].to_list() == ["Widget", "Gadget", "Widget", "Gadget", "Widget"]


def test_salesforce_api_names():
    h = read_history(
        DATA / "salesforce_api_opportunities.csv", profile="salesforce", date_format="auto"
    )
    o = h.opportunities
    assert o["status"].to_list() == ["won", "lost", "open", "open"]
    assert o["forecast_category"].to_list() == ["closed", "omitted", "commit", "pipeline"]
    assert o["probability"].to_list() == [1.0, 0.0, 0.9, 0.1]
    assert o["expected_close"].to_list() == [None, None, D(2024, 6, 30), D(2024, 7, 15)]
    assert o["last_activity"].to_list() == [D(2024, 2, 13), D(2024, 2, 27), D(2024, 4, 30), None]


def test_field_history_pushes_are_counted_by_hand():
    h = sf()
    assert h.close_date_changes.schema == CLOSE_DATE_CHANGE_COLUMNS
    # Stage, Amount and "Created." rows are not about the close date; 006D1's change on its
    # close day (3/15) is the close itself.
    assert h.close_date_changes["opportunity_id"].to_list() == [
        "006D1",
        "006D3",
        "006D3",
        "006D3",
        "006D4",
    ]
    p = h.pushes
    assert p.schema == PUSH_COLUMNS
    # 006D1: 2/29 → 3/31 (+31). 006D3: 5/31 → 6/14 (+14), → 7/15 (+31), → 6/28 (−17).
    # 006D4: 6/30 → 7/31 (+31). 006D2, 006D5: never moved.
    assert p.rows() == [
        ("006D1", 1, 31, 0, 0),
        ("006D2", 0, 0, 0, 0),
        ("006D3", 2, 45, 1, 17),
        ("006D4", 1, 31, 0, 0),
        ("006D5", 0, 0, 0, 0),
    ]
    assert any("4 changes to a later date" in n for n in h.notes)


def test_one_file_export_close_date_changes(tmp_path):
    """Salesforce "Opportunities with History": the Close Date as it stood on each row."""
    f = tmp_path / "with_history.csv"
    f.write_text(
        '"Opportunity ID","Opportunity Owner","Stage","Amount","Close Date","Created Date",'
        '"To Stage","Last Modified"\n'
        "A,Jane,Negotiation/Review,100,3/31/2024,1/5/2024,Prospecting,1/5/2024\n"
        "A,Jane,Negotiation/Review,100,4/30/2024,1/5/2024,Qualification,2/1/2024\n"
        "A,Jane,Negotiation/Review,100,4/15/2024,1/5/2024,Negotiation/Review,3/1/2024\n"
        "B,John,Closed Won,200,2/20/2024,1/10/2024,Prospecting,1/10/2024\n"
        "B,John,Closed Won,200,2/20/2024,1/10/2024,Qualification,1/20/2024\n"
        "B,John,Closed Won,200,2/10/2024,1/10/2024,Closed Won,2/10/2024\n",
        encoding="utf-8",
    )
    h = read_history(f, profile="salesforce")
    assert h.opportunities.height == 2 and h.has_stage_history
    # A: first known 3/31, pushed +30 on 2/1, pulled in −15 on 3/1. B: 2/20 unchanged until
    # it closed on 2/10 (that row is the close itself).
    assert h.pushes.rows() == [("A", 1, 30, 1, 15), ("B", 0, 0, 0, 0)]
    c = h.close_date_changes
    assert c["previous"].to_list() == [None, D(2024, 3, 31), D(2024, 4, 30), None]
    assert c["stage"].to_list() == [
        "Prospecting",
        "Qualification",
        "Negotiation/Review",
        "Prospecting",
    ]
    assert by_id(h.opportunities, "expected_close") == {"A": D(2024, 4, 15), "B": None}
    # a close-date history file given wins over the rows' close dates
    other = tmp_path / "changes.csv"
    other.write_text(
        "Opportunity ID,Edit Date,New Value\nA,1/20/2024,5/31/2024\n", encoding="utf-8"
    )
    h = read_history(f, profile="salesforce", close_date_history=other)
    assert h.close_date_changes["expected_close"].to_list() == [D(2024, 5, 31)]


def test_hubspot_internal_names_and_categories():
    h = read_history(HS_FIELDS, profile="hubspot")
    o = h.opportunities
    assert o["status"].to_list() == ["won", "lost", "open", "open", "open"]
    assert o["forecast_category"].to_list() == [
        "closed",
        "omitted",
        "commit",
        "best_case",
        "omitted",
    ]
    assert o["probability"].to_list() == [1.0, 0.0, 0.9, 0.2, 0.1]
    assert o["expected_close"].to_list()[2:] == [D(2024, 6, 30), D(2024, 7, 15), D(2024, 8, 30)]
    assert o["next_step_date"].to_list()[2:] == [D(2024, 5, 6), D(2024, 5, 2), None]
    assert o["last_activity"][3] == D(2024, 4, 25)


def test_pipedrive_deal_fields():
    o = read_history(DATA / "pipedrive_deals_fields.csv", profile="pipedrive").opportunities
    assert o["expected_close"].to_list() == [None, D(2024, 6, 30), D(2024, 7, 15)]
    assert o["next_step_date"].to_list() == [None, D(2024, 5, 6), D(2024, 5, 2)]
    assert o["last_activity"].to_list() == [D(2024, 2, 14), D(2024, 4, 20), None]
    assert o["product"].to_list() == ["Suite", "Suite", "Add-on"]
    assert o["probability"].to_list() == [None, 0.6, 0.2]


def test_teams_file_gives_each_deal_its_manager_and_region():
    h = sf()
    assert h.teams.schema == TEAM_COLUMNS
    f = h.deal_fields
    assert by_id(f, "manager") == {
        "006D1": "Maria Boss",
        "006D2": "Maria Boss",
        "006D3": "Maria Boss",
        "006D4": "Maria Boss",
        "006D5": "Sam Chief",
    }
    assert by_id(f, "region")["006D5"] == "AMER"
    assert by_id(f, "rep_segment")["006D2"] == "Mid-Market"
    assert f["pushes"].to_list() == [1, 0, 2, 1, 0]


def test_reps_file_columns_and_a_deals_own_region(tmp_path):
    """A reps file may carry the team; a deal's own region wins over its owner's."""
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(
        "opportunity_id,owner,created,stage,status,closed,amount,region\n"
        "1,ann,2024-01-05,A,won,2024-02-01,100,\n"
        "2,bob,2024-01-06,A,open,,200,APAC\n",
        encoding="utf-8",
    )
    (folder / "reps.csv").write_text(
        "owner,hired,manager,region,segment\nann,2023-01-01,max,EMEA,SMB\nbob,2023-01-01,max,AMER,\n",
        encoding="utf-8",
    )
    h = read_history(folder)
    assert h.teams["owner"].to_list() == ["ann", "bob"]
    assert h.reps.columns == ["owner", "hired", "left", "quota"]
    f = h.deal_fields
    assert f["region"].to_list() == ["EMEA", "APAC"]
    assert f["manager"].to_list() == ["max", "max"]
    assert f["rep_segment"].to_list() == ["SMB", None]


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven sample not present")
def test_maven_loads_managers_and_regions():
    h = read_history(MAVEN, format="maven")
    assert h.teams.height == 35
    f = h.deal_fields
    assert f["manager"].null_count() == 0 and f["region"].null_count() == 0
    assert sorted(f["region"].unique().to_list()) == ["Central", "East", "West"]
    assert f["manager"].n_unique() == 6
    assert f["product"].to_list() == h.opportunities["segment"].to_list()
    out = CliRunner().invoke(main, ["inspect", str(MAVEN), "--format", "maven", "--json"])
    fields = json.loads(out.stdout)["deal_fields"]
    assert len(fields["managers"]) == 6 and fields["regions"] == ["Central", "East", "West"]


# --- as of a date ---------------------------------------------------------------------------------
def test_as_of_keeps_the_expected_close_date_of_that_day():
    h = sf().as_of(D(2024, 3, 15))
    o = h.opportunities
    # 006D1 (won 3/15) is still won; 006D2 (lost 4/2) is open again with no category;
    # 006D3 had been pushed once (to 6/14); 006D4's only change (4/1) is later: its
    # expected close date is the one before it, 6/30; 006D5 did not exist yet.
    assert by_id(o, "expected_close") == {
        "006D1": None,
        "006D2": None,
        "006D3": D(2024, 6, 14),
        "006D4": D(2024, 6, 30),
    }
    assert by_id(o, "forecast_category")["006D2"] is None
    assert by_id(o, "last_activity")["006D2"] is None  # 3/30: later than the day
    assert h.close_date_changes["changed"].max() <= D(2024, 3, 15)
    assert by_id(h.pushes, "pushes") == {"006D1": 1, "006D2": 0, "006D3": 1, "006D4": 0}
    assert h.teams.height == 3


def test_a_deal_reopened_gets_its_expected_close_date_back():
    o = sf().as_of(D(2024, 3, 1)).opportunities
    assert by_id(o, "status")["006D1"] == "open"
    assert by_id(o, "expected_close")["006D1"] == D(2024, 3, 31)  # pushed on 2/20


# --- inspect --------------------------------------------------------------------------------------
def test_inspect_reports_the_deal_fields():
    args = [
        "inspect",
        str(SF_DEALS),
        "--profile",
        "salesforce",
        "--close-date-history",
        str(SF_CLOSE),
        "--teams",
        str(SF_USERS),
    ]
    out = CliRunner().invoke(main, [*args, "--json"])
    assert out.exit_code == 0, out.output
    f = json.loads(out.stdout)["deal_fields"]
    assert f["open_with_expected_close"] == 3
    assert f["forecast_categories"] == {
        "commit": 1,
        "best_case": 1,
        "pipeline": 1,
        "omitted": 1,
        "closed": 1,
    }
    assert list(f["forecast_categories"]) == list(FORECAST_CATEGORIES)
    assert (f["close_date_changes"], f["pushed_deals"], f["pulled_in_deals"]) == (5, 3, 1)
    assert f["managers"] == ["Maria Boss", "Sam Chief"] and f["regions"] == ["AMER", "EMEA"]
    text = CliRunner().invoke(main, args).output
    assert "3 deals pushed, 1 pulled in" in text and "2 managers" in text


def test_a_profile_value_map_names_other_categories(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text(
        'date_format = "%m/%d/%Y"\n'
        '[columns]\nopportunity_id = "Opportunity ID"\nowner = "Opportunity Owner"\n'
        'created = "Created Date"\nstage = "Stage"\nstatus = "Stage"\nclosed = "Close Date"\n'
        'amount = "Amount"\nforecast_category = "Forecast Category"\n'
        '[values.forecast_category]\ncommit = "Sure thing"\nomitted = "Dead"\n',
        encoding="utf-8",
    )
    f = tmp_path / "o.csv"
    text = SF_DEALS.read_text(encoding="utf-8")
    f.write_text(text.replace('"Commit"', '"Sure thing"').replace('"Omitted"', '"dead"'))
    o = read_history(f, profile=profile).opportunities
    assert o["forecast_category"].to_list()[1:3] == ["omitted", "commit"]


# --- bad values: exit 2, one line naming file, row and column -------------------------------------
BAD = [
    # (file, old text, new text, row, column, words in the message)
    ("deals", '"Commit"', '"Maybe"', 4, "Forecast Category", "unknown forecast category 'Maybe'"),
    ("deals", '"90"', '"150"', 4, "Probability (%)", "out of range"),
    ("deals", '"20"', '"-5"', 6, "Probability (%)", "out of range"),
    ("deals", '"5/20/2024"', '"5/40/2024"', 4, "Last Activity", "cannot read date"),
    ("deals", '"5/20/2024"', '"5/20/24"', 4, "Last Activity", "year"),
    ("deals", '"6/28/2024"', '"6/28/2204"', 4, "Close Date", "2204"),
    ("close", '"7/15/2024","6/28/2024"', '"7/15/2024","soon"', 9, "New Value", "'soon'"),
    ("close", '"6/30/2024","7/31/2024"', '"6/30/2024",""', 10, "New Value", "missing close date"),
    ("close", '"5/31/2024"', '"31/5/2024"', 7, "Old Value", "cannot read date"),
    ("close", '"4/10/2024"', '""', 8, "Edit Date", "missing change date"),
    (
        "close",
        '"006D4","Delta","4/1/2024"',
        '"006X9","Delta","4/1/2024"',
        10,
        "Opportunity ID",
        "006X9",
    ),
    ("users", '"Ann Lee"', '"Jane Doe"', 2, "Full Name", "duplicate owner"),
]


@pytest.mark.parametrize("where, old, new, row, column, words", BAD)
def test_bad_value_exits_2_naming_file_row_and_column(
    tmp_path, where, old, new, row, column, words
):
    files = {"deals": SF_DEALS, "close": SF_CLOSE, "users": SF_USERS}
    copies = {}
    for name, path in files.items():
        copies[name] = tmp_path / path.name
        shutil.copy(path, copies[name])
    text = copies[where].read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    copies[where].write_text(text.replace(old, new), encoding="utf-8")
    out = CliRunner().invoke(
        main,
        [
            "inspect",
            str(copies["deals"]),
            "--profile",
            "salesforce",
            "--close-date-history",
            str(copies["close"]),
            "--teams",
            str(copies["users"]),
        ],
    )
    assert out.exit_code == 2, out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert f"{copies[where]}, row {row}, column '{column}'" in lines[0], lines[0]
    assert words in lines[0], lines[0]


def test_a_folder_holds_the_close_date_history_and_teams(tmp_path):
    """Canonical names, found beside opportunities.csv; the teams file wins over a reps file's
    team columns."""
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(
        "opportunity_id,owner,created,stage,status,closed,amount,expected_close\n"
        "1,ann,2024-01-05,A,open,,100,2024-05-01\n",
        encoding="utf-8",
    )
    (folder / "close_date_history.csv").write_text(
        "opportunity_id,changed,expected_close\n"
        "1,2024-01-05,2024-03-01\n"
        "1,2024-02-20,2024-03-01\n"  # repeats the value: not a change
        "1,2024-02-25,2024-05-01\n",
        encoding="utf-8",
    )
    (folder / "reps.csv").write_text("owner,hired,manager\nann,2023-01-01,old\n", encoding="utf-8")
    (folder / "teams.csv").write_text("owner,manager,region\nann,new,EMEA\n", encoding="utf-8")
    h = read_history(folder)
    assert h.close_date_changes["changed"].to_list() == [D(2024, 1, 5), D(2024, 2, 25)]
    assert h.pushes.rows() == [("1", 1, 61, 0, 0)]
    assert h.deal_fields["manager"].to_list() == ["new"]
    assert by_id(h.as_of(D(2024, 2, 1)).opportunities, "expected_close") == {"1": D(2024, 3, 1)}
