"""Real CRM exports run end to end with one profile and no extra flags (issue 15).

A realistic Salesforce report export (US dates, ``$12,500.00`` amounts, a report footer, a
Forecast Category column), as ``salesim demo-data --export salesforce`` writes it, with and
without its Opportunity History report, goes through every command that reads history:
inspect → calibrate → forecast → compare → capacity → dashboard → backtest. HubSpot and
Pipedrive exports of the same history are calibrated and forecast the same way. (The small
hand-made exports of tests/data are covered by tests/test_profiles.py.)
"""

import json
import shutil

import pytest
from click.testing import CliRunner

from cli import main

AS_OF = "2026-09-30"
FAST = ["--trials", "150", "--seed", "1", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def export(folder, crm):
    run("demo-data", folder, "--export", crm, "--seed", "3", "--reps", "6", "--quarters", "6",
        "--as-of", AS_OF, "--quiet")
    return folder


@pytest.fixture(scope="module", params=["with stage history", "without stage history"])
def salesforce(request, tmp_path_factory):
    folder = export(tmp_path_factory.mktemp("sf") / "export", "salesforce")
    assert "Confidential Information" in (folder / "opportunities.csv").read_text()
    if request.param == "without stage history":
        (folder / "stage_history.csv").unlink()
    model = folder.parent / "model.toml"
    run("calibrate", folder, "--profile", "salesforce", "-o", model)
    return folder, model


def test_inspect_reads_the_report_with_its_footer(salesforce):
    folder, _ = salesforce
    s = json.loads(run("inspect", folder, "--profile", "salesforce", "--json").stdout)
    assert s["by_status"]["open"] > 0 and s["by_status"]["won"] > 0
    assert any("footer" in n for n in s["notes"])


def test_forecast(salesforce):
    folder, model = salesforce
    fc = json.loads(run("forecast", model, "--history", folder, "--profile", "salesforce",
                        "--json", *FAST).stdout)
    assert fc["flows"]["open_start"]["mean"] > 0
    assert fc["by_origin"]["open_pipeline"]["mean"] > 0
    assert fc["revenue"]["p10"] <= fc["revenue"]["p50"] <= fc["revenue"]["p90"]


def test_compare_and_capacity(salesforce):
    folder, model = salesforce
    history = ["--history", folder, "--profile", "salesforce"]
    out = json.loads(run("compare", model, *history, "--lever", "win-rate=+5pp", "--json",
                         *FAST).stdout)
    assert out["strategies"][0]["uplift"]["mean"] > 0
    cap = json.loads(run("capacity", model, *history, "--target", "1M", "--max-reps", "12",
                         "--json", *FAST).stdout)
    assert cap["curve"]


def test_dashboard_from_a_plan_naming_the_profile(salesforce, tmp_path):
    folder, model = salesforce
    plan = tmp_path / "plan.toml"
    plan.write_text(f'model = "{model}"\nquota = "2M"\nas_of = 2026-06-30\n'
                    f'quarter = "2026-Q3"\n[history]\npath = "{folder}"\n'
                    'profile = "salesforce"\n')
    d = json.loads(run("dashboard", folder, "--profile", "salesforce", "--plan", plan,
                       "--as-of", "2026-09-15", "--json", "--trials", "100",
                       "--quiet").stdout)
    assert d["forecast"]["revenue"]["p50"] > d["forecast"]["won_to_date"] > 0
    assert d["team"]["status"] in ("green", "yellow", "red")


def test_backtest(salesforce):
    folder, _ = salesforce
    b = json.loads(run("backtest", folder, "--profile", "salesforce", "--quarters", "1",
                       "--json", "--trials", "150", "--quiet").stdout)
    assert len(b["folds"]) == 1 and b["folds"][0]["actual"] > 0


@pytest.mark.parametrize("crm", ["hubspot", "pipedrive", "salesforce-onefile"])
def test_other_exports_calibrate_and_forecast(crm, tmp_path):
    folder = export(tmp_path / "export", crm)
    profile = crm.removesuffix("-onefile")
    model = tmp_path / "model.toml"
    run("calibrate", folder, "--profile", profile, "-o", model)
    fc = json.loads(run("forecast", model, "--history", folder, "--profile", profile, "--json",
                        *FAST).stdout)
    assert fc["flows"]["open_start"]["mean"] > 0


def test_an_export_without_its_history_files_still_reads(tmp_path):
    folder = export(tmp_path / "export", "salesforce")
    for name in ("stage_history.csv", "activities.csv", "reps.csv"):
        (folder / name).unlink()
    lone = tmp_path / "report.csv"
    shutil.copy(folder / "opportunities.csv", lone)
    model = tmp_path / "model.toml"
    run("calibrate", lone, "--profile", "salesforce", "-o", model)
    run("forecast", model, "--history", lone, "--profile", "salesforce", *FAST)
