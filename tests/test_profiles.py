"""Mapping profiles (calibrate/profiles.py): each built-in profile on its export end to end
through the CLI, report footers, one-file and wide stage history, value maps, user profiles,
flags over profiles, strict dates and the scenario file's [history] table."""

import datetime as dt
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from salesim.calibrate import profiles
from salesim.calibrate.ingest import read_history, read_table
from salesim.cli import main
from salesim.simulator.errors import InputError

DATA = Path(__file__).parent / "data"
SF_REPORT = DATA / "salesforce_report.csv"
SF_HISTORY = DATA / "salesforce_opportunity_history.csv"
SF_ONE_FILE = DATA / "salesforce_opportunities_with_history.csv"
HS_WIDE = DATA / "hubspot_deals_stages.csv"


def run(*args: str, ok: bool = True):
    res = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def inspect_json(*args) -> dict:
    return json.loads(run("inspect", *args, "--json").stdout)


# --- each built-in profile, end to end ------------------------------------------------------------
@pytest.mark.parametrize(
    "export, profile, n, status, staged",
    [
        (DATA / "salesforce_opportunities.csv", "salesforce", 8, (4, 2, 2), False),
        (SF_REPORT, "salesforce", 8, (4, 2, 2), False),
        (SF_ONE_FILE, "salesforce", 8, (4, 2, 2), True),
        (DATA / "hubspot_deals.csv", "hubspot", 5, (3, 1, 1), False),
        (HS_WIDE, "hubspot", 8, (4, 2, 2), True),
        (DATA / "pipedrive_deals.csv", "pipedrive", 6, (3, 2, 1), False),
    ],
)
def test_each_profile_inspects_and_calibrates_alone(tmp_path, export, profile, n, status, staged):
    s = inspect_json(export, "--profile", profile)
    assert s["opportunities"] == n
    assert tuple(s["by_status"][k] for k in ("open", "won", "lost")) == status
    assert s["has_stage_history"] is staged
    res = run(
        "calibrate", export, "--profile", profile, "-o", tmp_path / "m.toml", "--json", "--quiet"
    )
    assert json.loads(res.stdout)["output"] == str(tmp_path / "m.toml")


def test_salesforce_report_with_history_runs_every_model_command(tmp_path):
    """The realistic Salesforce report (US dates, $ amounts, footer, Forecast Category) with
    its Opportunity History report: inspect -> calibrate -> forecast -> compare -> capacity,
    one profile and no other mapping flags."""
    hist = ["--history", SF_REPORT, "--profile", "salesforce", "--stage-history", SF_HISTORY]
    s = inspect_json(SF_REPORT, "--profile", "salesforce", "--stage-history", SF_HISTORY)
    assert s["stages"] == [
        "Prospecting",
        "Qualification",
        "Proposal/Price Quote",
        "Negotiation/Review",
    ]
    assert s["amount"]["open"] == 30_000 + 5_000 + 15_000 + 4_200
    assert s["rows"]["stage_history"] == 21  # 25 rows less 4 entering Closed Won/Lost
    model = tmp_path / "sf.toml"
    run(
        "calibrate",
        SF_REPORT,
        "--profile",
        "salesforce",
        "--stage-history",
        SF_HISTORY,
        "-o",
        model,
        "--quiet",
    )
    fc = json.loads(
        run(
            "forecast",
            model,
            *hist,
            "--trials",
            "200",
            "--seed",
            "1",
            "--workers",
            "1",
            "--json",
            "--quiet",
        ).stdout
    )
    assert fc["flows"]["open_start"]["mean"] == 4  # the open deals at the start
    run(
        "compare",
        model,
        *hist,
        "--lever",
        "win-rate=+5pp",
        "--trials",
        "100",
        "--seed",
        "1",
        "--workers",
        "1",
        "--json",
        "--quiet",
    )
    run(
        "capacity",
        model,
        *hist,
        "--target",
        "60k",
        "--trials",
        "100",
        "--seed",
        "1",
        "--workers",
        "1",
        "--max-reps",
        "4",
        "--json",
        "--quiet",
    )


def test_hubspot_wide_stage_history_forecasts(tmp_path):
    model = tmp_path / "hs.toml"
    run("calibrate", HS_WIDE, "--profile", "hubspot", "-o", model, "--quiet")
    fc = json.loads(
        run(
            "forecast",
            model,
            "--history",
            HS_WIDE,
            "--profile",
            "hubspot",
            "--trials",
            "200",
            "--seed",
            "1",
            "--workers",
            "1",
            "--json",
            "--quiet",
        ).stdout
    )
    assert fc["flows"]["open_start"]["mean"] == 4  # the open deals at the start


# --- what a profile reads -------------------------------------------------------------------------
def test_salesforce_report_values():
    h = read_history(SF_REPORT, profile="salesforce")
    o = h.opportunities
    assert o["amount"].to_list()[:2] == [12_500.0, 8_000.0]
    # Web, Cold Call, Partner Referral, Web, Outbound, Trade Show, Purchased List, Other
    assert o["source"].to_list() == [
        "marketing",
        "outbound",
        "marketing",
        "marketing",
        "outbound",
        "marketing",
        "outbound",
        None,
    ]
    assert any("'Other'" in n and "unknown" in n for n in h.notes)
    assert o["probability"].to_list()[:4] == [1.0, 0.0, 0.9, 0.1]
    assert o["forecast_category"].to_list()[:4] == ["closed", "omitted", "commit", "pipeline"]
    assert o["created"][2] == dt.date(2024, 2, 2)  # "2/2/2024 1:05 PM"
    # the expected close date of open deals only
    assert o["expected_close"].to_list()[:4] == [
        None,
        None,
        dt.date(2024, 6, 30),
        dt.date(2024, 7, 15),
    ]


def test_report_footer_is_read_away_and_said():
    notes: list[str] = []
    t = read_table(SF_REPORT, notes)
    assert t.height == 8 and t["Opportunity ID"][-1] == "0065g00000AbC08"
    assert len(notes) == 1 and "footer" in notes[0] and "row 10" in notes[0]
    assert read_table(SF_HISTORY).height == 25


def test_single_field_rows_without_a_blank_line_are_data(tmp_path):
    f = tmp_path / "o.csv"
    f.write_text("a,b\n1,2\nx\n", encoding="utf-8")
    assert read_table(f).height == 2


def test_one_file_history_equals_the_two_reports():
    one = read_history(SF_ONE_FILE, profile="salesforce")
    two = read_history(SF_REPORT, profile="salesforce", stage_history=SF_HISTORY)
    assert one.stages == two.stages
    cols = ["opportunity_id", "owner", "created", "stage", "status", "closed", "amount"]
    assert one.opportunities.select(cols).equals(two.opportunities.select(cols))
    assert one.stage_history.equals(two.stage_history)
    assert any(
        "one-file history export: 25 rows split into 8 opportunities" in n for n in one.notes
    )


def test_one_file_rows_that_disagree_on_owner_name_both_rows(tmp_path):
    lines = SF_ONE_FILE.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace('"Jane Doe"', '"Ann Lee"', 1)
    bad = tmp_path / "with_history.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_history(bad, profile="salesforce")
    assert err.value.row == 3 and err.value.column == "Opportunity Owner"
    assert "row 2" in str(err.value) and "row 3" in str(err.value)
    res = run("inspect", bad, "--profile", "salesforce", ok=False)
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_hubspot_wide_stage_history():
    h = read_history(HS_WIDE, profile="hubspot")
    sh = h.stage_history
    assert sh.height == 27 - 4  # 27 dates; the Closed Won / Closed Lost dates are the close itself
    gamma = sh.filter(sh["opportunity_id"] == "9003")
    assert gamma["stage"].to_list() == [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
    ]
    o = h.opportunities
    # stage labels ("Contract Sent") read as the internal values the stage order uses
    assert o.filter(o["opportunity_id"] == "9003")["stage"][0] == "contractsent"
    assert o["probability"].to_list()[2] == 0.9  # HubSpot's is a fraction already
    assert o["source"].to_list()[:2] == ["marketing", "outbound"]


def test_pipedrive_status_times_and_deleted():
    h = read_history(DATA / "pipedrive_deals.csv", profile="pipedrive")
    o = h.opportunities
    assert "107" not in o["opportunity_id"].to_list()
    assert any("dropped 1 row with status deleted" in n for n in h.notes)
    won, lost = o.filter(o["opportunity_id"] == "101"), o.filter(o["opportunity_id"] == "102")
    assert won["closed"][0] == dt.date(2024, 2, 14) and lost["closed"][0] == dt.date(2024, 3, 1)
    assert o["probability"].to_list()[2:4] == [0.6, 0.2]
    assert o["source"].to_list() == [
        "marketing",
        "outbound",
        "marketing",
        "outbound",
        None,
        "marketing",
    ]


# --- user profiles and flags ----------------------------------------------------------------------
FORMATS_MD = Path(__file__).parents[1] / "docs" / "formats.md"


def doc_profile() -> str:
    """The profile file shown in docs/formats.md (its one TOML block)."""
    text = FORMATS_MD.read_text(encoding="utf-8")
    return re.search(r"```toml\n(.*?)```", text, re.S).group(1)


def doc_recipes() -> list[str]:
    """The indented ``salesim ...`` commands of docs/formats.md, continuation lines joined."""
    text = FORMATS_MD.read_text(encoding="utf-8")
    return [
        c.replace("\\\n", " ") for c in re.findall(r"^    (salesim (?:.*\\\n)*.*)$", text, re.M)
    ]


def test_formats_md_recipes_run_verbatim(tmp_path, monkeypatch):
    """Every command in docs/formats.md, in order, in a folder with a copy of tests/data."""
    shutil.copytree(DATA, tmp_path / "tests" / "data")
    (tmp_path / "our-crm.toml").write_text(doc_profile(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    recipes = doc_recipes()
    assert len(recipes) >= 12
    assert recipes[0].startswith("salesim inspect tests/data/salesforce_report.csv --profile")
    for line in recipes:
        res = CliRunner().invoke(
            main,
            shlex.split(line)[1:] + ["--quiet"] * (line.split()[1] in ("calibrate", "forecast")),
        )
        assert res.exit_code == 0, f"{line}\n{res.output}"
    for made in ("sf.toml", "sf-flat.toml", "hs.toml", "hs-flat.toml", "pd.toml"):
        assert (tmp_path / made).stat().st_size > 0, made


@pytest.fixture
def user_files(tmp_path):
    (tmp_path / "our-crm.toml").write_text(doc_profile(), encoding="utf-8")
    return DATA / "our_crm.csv", tmp_path / "our-crm.toml"


def test_user_profile_file(user_files):
    export, profile = user_files
    h = read_history(export, profile=profile)
    o = h.opportunities
    assert o["status"].to_list() == ["won", "lost", "open", "open"]
    assert o["created"][0] == dt.date(2024, 1, 5)
    assert o["source"].to_list() == ["marketing", "outbound", None, "marketing"]
    assert h.stages == ("Demo", "Offer")  # the profile's order, less stages no deal reached
    s = inspect_json(export, "--profile", profile)
    assert s["by_status"] == {"open": 2, "won": 1, "lost": 1}


def test_flags_override_the_profile(user_files, tmp_path):
    export, profile = user_files
    h = read_history(export, profile=profile, mapping=["segment=Region"], stages="Offer,Demo")
    assert h.stages == ("Offer", "Demo")
    assert h.opportunities["segment"].to_list() == ["EU", "EU", "US", "US"]
    iso = tmp_path / "iso.csv"
    iso.write_text(
        export.read_text(encoding="utf-8")
        .replace("05.01.2024", "2024-01-05")
        .replace("20.01.2024", "2024-01-20")
        .replace("02.02.2024", "2024-02-02")
        .replace("10.04.2024", "2024-04-10")
        .replace("14.02.2024", "2024-02-14")
        .replace("01.03.2024", "2024-03-01"),
        encoding="utf-8",
    )
    with pytest.raises(InputError):
        read_history(iso, profile=profile)
    s = inspect_json(iso, "--profile", profile, "--date-format", "%Y-%m-%d")
    assert s["dates"]["created_first"] == "2024-01-05"
    # a plain --map replaces the profile's mapping for that column in every file
    merged = profiles.merge_mapping(
        {"entered": ("A",), "stage_history.entered": ("B",)}, {"entered": "C"}
    )
    assert merged == {"entered": ("C",)}


def test_unknown_profile_key_names_file_and_key(tmp_path, user_files):
    export, _ = user_files
    bad = tmp_path / "bad.toml"
    bad.write_text('date_fromat = "%m/%d/%Y"\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        profiles.load_profile(bad)
    assert err.value.file == str(bad) and "date_fromat" in str(err.value)
    nested = tmp_path / "nested.toml"
    nested.write_text('[columns]\nowner_name = "Rep"\n', encoding="utf-8")
    with pytest.raises(InputError, match="columns.owner_name"):
        profiles.load_profile(nested)
    res = run("inspect", export, "--profile", bad, ok=False)
    assert res.exit_code == 2 and "date_fromat" in res.output and "Traceback" not in res.output
    res = run("inspect", export, "--profile", "zoho", ok=False)
    assert res.exit_code == 2 and "salesforce" in res.output


def test_built_in_profiles_ship_and_parse():
    assert profiles.BUILT_IN == ("hubspot", "pipedrive", "salesforce")
    for name in profiles.BUILT_IN:
        p = profiles.load_profile(name)
        assert p.name == name and p.columns["opportunity_id"]


# --- strict dates ---------------------------------------------------------------------------------
def _export(tmp_path, created: str) -> Path:
    f = tmp_path / "o.csv"
    f.write_text(
        "opportunity_id,owner,created,stage,status,closed,amount\n"
        "1,ann,1/5/2024,A,won,2/14/2024,100\n"
        f"2,bob,{created},A,open,,200\n",
        encoding="utf-8",
    )
    return f


def test_two_digit_year_with_four_digit_format_is_an_error(tmp_path):
    f = _export(tmp_path, "10/22/24")
    with pytest.raises(InputError) as err:
        read_history(f, date_format="%m/%d/%Y")
    assert (err.value.row, err.value.column) == (3, "created")
    assert "two-digit year" in str(err.value)
    res = run("calibrate", f, "--date-format", "%m/%d/%Y", "-o", tmp_path / "m.toml", ok=False)
    assert res.exit_code == 2 and "row 3" in res.output and not (tmp_path / "m.toml").exists()
    g = tmp_path / "yy.csv"
    g.write_text(f.read_text().replace("1/5/2024", "1/5/24").replace("2/14/2024", "2/14/24"))
    assert read_history(g, date_format="%m/%d/%y").opportunities["created"][1] == dt.date(
        2024, 10, 22
    )


@pytest.mark.parametrize("created", ["10/22/1900", "10/22/2204"])
def test_implausible_year_is_an_error(tmp_path, created):
    with pytest.raises(InputError) as err:
        read_history(_export(tmp_path, created), date_format="%m/%d/%Y")
    assert (err.value.row, err.value.column) == (3, "created")
    assert "1970–2100" in str(err.value)


def test_iso_year_out_of_range_is_an_error(tmp_path):
    f = tmp_path / "o.csv"
    f.write_text(
        "opportunity_id,owner,created,stage,status,closed,amount\n1,ann,0024-01-05,A,open,,100\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="year 24"):
        read_history(f)


def test_date_format_auto(tmp_path):
    h = read_history(_export(tmp_path, "10/22/2024"), date_format="auto")
    assert h.opportunities["created"][1] == dt.date(2024, 10, 22)
    assert any("date format auto: %m/%d/%Y" in n for n in h.notes)
    day_first = tmp_path / "d.csv"
    day_first.write_text(
        "opportunity_id,owner,created,stage,status,closed,amount\n1,ann,22/10/2024,A,open,,100\n",
        encoding="utf-8",
    )
    assert read_history(day_first, date_format="auto").opportunities["created"][0] == dt.date(
        2024, 10, 22
    )
    both = tmp_path / "b.csv"
    both.write_text(
        "opportunity_id,owner,created,stage,status,closed,amount\n1,ann,1/5/2024,A,open,,100\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="fit both %m/%d/%Y and %d/%m/%Y"):
        read_history(both, date_format="auto")


def test_probability_out_of_range_is_an_error(tmp_path):
    f = tmp_path / "o.csv"
    f.write_text(
        "opportunity_id,owner,created,stage,status,amount,p\n"
        "1,ann,2024-01-05,A,open,100,40\n2,ann,2024-01-05,A,open,100,140\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        read_history(f, mapping="probability=p")
    assert (err.value.row, err.value.column) == (3, "p")


# --- commands without a history, scenario files ---------------------------------------------------
def test_history_flags_need_history(tmp_path):
    model = tmp_path / "m.toml"
    run("calibrate", DATA / "pipedrive_deals.csv", "--profile", "pipedrive", "-o", model, "--quiet")
    res = run("forecast", model, "--profile", "pipedrive", ok=False)
    assert res.exit_code == 2 and "--history" in res.output


def test_scenario_history_table_with_profile(tmp_path):
    shutil.copy(SF_REPORT, tmp_path / "report.csv")
    shutil.copy(SF_HISTORY, tmp_path / "history.csv")
    model = tmp_path / "sf.toml"
    run(
        "calibrate",
        tmp_path / "report.csv",
        "--profile",
        "salesforce",
        "--stage-history",
        tmp_path / "history.csv",
        "-o",
        model,
        "--quiet",
    )
    scenario = tmp_path / "plan.toml"
    scenario.write_text(
        'model = "sf.toml"\ntrials = 100\nseed = 1\n'
        '[history]\npath = "report.csv"\nprofile = "salesforce"\n'
        'stage_history = "history.csv"\n'
        '[strategies.win]\n"win-rate" = "+5pp"\n',
        encoding="utf-8",
    )
    from salesim.scenarios.scenario import load_scenario, scenario_spec

    sc = load_scenario(scenario)
    assert sc.history_options["profile"] == "salesforce"
    assert len(scenario_spec(sc).open_deals) == 4
    res = run("compare", scenario, "--workers", "1", "--json", "--quiet")
    assert "warning: no --history" not in res.stderr
    res = run("compare", scenario, "--profile", "hubspot", ok=False)
    assert res.exit_code == 2 and "--profile only applies to a MODEL" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'model = "sf.toml"\n[history]\npath = "report.csv"\nprofle = "x"\n', encoding="utf-8"
    )
    res = run("compare", bad, ok=False)
    assert res.exit_code == 2 and "profle" in res.output


@pytest.mark.parametrize(
    "command", ["inspect", "calibrate", "forecast", "compare", "capacity", "dashboard", "backtest"]
)
def test_every_history_command_takes_the_one_set_of_options(command):
    text = run(command, "--help").output
    for flag in (
        "--profile",
        "--format",
        "--map",
        "--date-format",
        "--stages",
        "--stage-history",
        "--activities",
    ):
        assert flag in text, (command, flag)


def test_crm_probability_of_a_deal_closed_later_is_unknown_as_of_before():
    h = read_history(SF_REPORT, profile="salesforce").as_of(dt.date(2024, 2, 1))
    o = h.opportunities
    acme = o.filter(o["opportunity_id"] == "0065g00000AbC01")  # won on 2024-02-14
    assert acme["status"][0] == "open" and acme["probability"][0] is None
    assert acme["forecast_category"][0] is None


@pytest.mark.parametrize(
    "export, profile",
    [
        (DATA / "salesforce_opportunities.csv", "salesforce"),
        (DATA / "hubspot_deals.csv", "hubspot"),
        (DATA / "pipedrive_deals.csv", "pipedrive"),
    ],
)
def test_stage_less_exports_run_the_model_commands(tmp_path, export, profile):
    """No stage history: the open deals are placed (scenarios/placement.py) and every model
    command runs with the profile alone."""
    model = tmp_path / "m.toml"
    run("calibrate", export, "--profile", profile, "-o", model, "--quiet")
    hist = [
        "--history",
        export,
        "--profile",
        profile,
        "--trials",
        "100",
        "--seed",
        "1",
        "--workers",
        "1",
        "--json",
        "--quiet",
    ]
    n_open = inspect_json(export, "--profile", profile)["by_status"]["open"]
    fc = json.loads(run("forecast", model, *hist).stdout)
    assert fc["flows"]["open_start"]["mean"] == n_open
    run("compare", model, *hist, "--lever", "deal-size=+10%")
    run("capacity", model, *hist, "--target", "100k", "--max-reps", "4")


@pytest.mark.parametrize(
    "text, key",
    [
        ('columns = "Rep"\n', "columns"),
        ('stages = "A,B"\n', "stages"),
        ("won = 1\n", "won"),
        ('probability_scale = "per mille"\n', "probability_scale"),
        ('date_format = "dd/mm"\n', "date_format"),
        ('[values.owner]\nx = "y"\n', "values.owner"),
        ('[columns.deals]\nowner = "Rep"\n', "columns.deals"),
    ],
)
def test_bad_profile_values_name_the_key(tmp_path, text, key):
    f = tmp_path / "p.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        profiles.load_profile(f)
    assert f"(key {key!r})" in str(err.value) and err.value.file == str(f)


def test_an_output_never_overwrites_the_profile_file(user_files):
    export, profile = user_files
    before = profile.read_bytes()
    res = run("calibrate", export, "--profile", profile, "-o", profile, ok=False)
    assert res.exit_code == 2 and profile.read_bytes() == before
