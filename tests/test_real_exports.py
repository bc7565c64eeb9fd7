"""Real CRM exports run end to end with one profile and no extra flags (issue 15).

Realistic exports as ``salesim demo-data --export`` writes them — a Salesforce report (US
dates, ``$12,500.00`` amounts, a report footer, a Forecast Category column) with and without
its Opportunity History report, the one-file "with history" report, HubSpot deals with and
without their "Date entered" columns, Pipedrive deals — each go through every command that
reads history: inspect → calibrate → forecast → compare → capacity → dashboard → backtest,
with ``--profile`` alone. (The small hand-made exports of tests/data are covered by
tests/test_profiles.py; they span too little time for a backtest, which says so.)
"""

import csv
import json
import shutil

import pytest
from click.testing import CliRunner

from salesim.cli import main

AS_OF = "2026-09-30"
FAST = ["--trials", "150", "--seed", "1", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def export(folder, crm):
    run(
        "demo-data",
        folder,
        "--export",
        crm,
        "--seed",
        "3",
        "--reps",
        "6",
        "--quarters",
        "6",
        "--as-of",
        AS_OF,
        "--quiet",
    )
    return folder


CASES = [
    ("salesforce", True),
    ("salesforce", False),
    ("salesforce-onefile", True),
    ("hubspot", True),
    ("hubspot", False),
    ("pipedrive", False),
]


def _drop_stage_history(folder, crm):
    """The same export without its stage history: Salesforce's Opportunity History report,
    HubSpot's "Date entered" columns (Pipedrive's deals export has none)."""
    if crm == "salesforce":
        (folder / "stage_history.csv").unlink()
    elif crm == "hubspot":
        path = folder / "opportunities.csv"
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        keep = [i for i, name in enumerate(rows[0]) if not name.startswith("Date entered")]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([[r[i] for i in keep] for r in rows])


@pytest.fixture(
    scope="module",
    params=CASES,
    ids=[f"{crm}-{'with' if staged else 'without'}-stage-history" for crm, staged in CASES],
)
def crm_export(request, tmp_path_factory):
    crm, staged = request.param
    folder = export(tmp_path_factory.mktemp("crm") / "export", crm)
    if not staged:
        _drop_stage_history(folder, crm)
    profile = crm.removesuffix("-onefile")
    model = folder.parent / "model.toml"
    run("calibrate", folder, "--profile", profile, "-o", model)
    return folder, model, profile


@pytest.fixture(scope="module")
def salesforce(tmp_path_factory):
    folder = export(tmp_path_factory.mktemp("sf") / "export", "salesforce")
    assert "Confidential Information" in (folder / "opportunities.csv").read_text()
    return folder


def test_inspect_reads_the_report_with_its_footer(salesforce):
    s = json.loads(run("inspect", salesforce, "--profile", "salesforce", "--json").stdout)
    assert s["by_status"]["open"] > 0 and s["by_status"]["won"] > 0
    assert any("footer" in n for n in s["notes"])


def test_inspect(crm_export):
    folder, _, profile = crm_export
    s = json.loads(run("inspect", folder, "--profile", profile, "--json").stdout)
    assert s["by_status"]["open"] > 0 and s["by_status"]["won"] > 0


def test_forecast(crm_export):
    folder, model, profile = crm_export
    fc = json.loads(
        run("forecast", model, "--history", folder, "--profile", profile, "--json", *FAST).stdout
    )
    assert fc["flows"]["open_start"]["mean"] > 0
    assert fc["by_origin"]["open_pipeline"]["mean"] > 0
    assert fc["revenue"]["p10"] <= fc["revenue"]["p50"] <= fc["revenue"]["p90"]


def test_compare_and_capacity(crm_export):
    folder, model, profile = crm_export
    history = ["--history", folder, "--profile", profile]
    out = json.loads(
        run("compare", model, *history, "--lever", "win-rate=+5pp", "--json", *FAST).stdout
    )
    assert out["strategies"][0]["uplift"]["mean"] > 0
    cap = json.loads(
        run(
            "capacity", model, *history, "--target", "1M", "--max-reps", "12", "--json", *FAST
        ).stdout
    )
    assert cap["curve"]


def test_dashboard_from_a_plan_naming_the_profile(crm_export, tmp_path):
    folder, model, profile = crm_export
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'model = "{model}"\nquota = "2M"\nas_of = 2026-06-30\n'
        f'quarter = "2026-Q3"\n[history]\npath = "{folder}"\n'
        f'profile = "{profile}"\n'
    )
    d = json.loads(
        run(
            "dashboard",
            folder,
            "--profile",
            profile,
            "--plan",
            plan,
            "--as-of",
            "2026-09-15",
            "--json",
            "--trials",
            "100",
            "--quiet",
        ).stdout
    )
    assert d["forecast"]["revenue"]["p50"] > d["forecast"]["won_to_date"] > 0
    assert d["team"]["status"] in ("green", "yellow", "red")


def test_backtest(crm_export):
    folder, _, profile = crm_export
    b = json.loads(
        run(
            "backtest",
            folder,
            "--profile",
            profile,
            "--quarters",
            "1",
            "--json",
            "--trials",
            "150",
            "--quiet",
        ).stdout
    )
    assert len(b["folds"]) == 1 and b["folds"][0]["actual"] > 0


def test_an_export_without_its_history_files_still_reads(tmp_path):
    folder = export(tmp_path / "export", "salesforce")
    for name in ("stage_history.csv", "activities.csv", "reps.csv"):
        (folder / name).unlink()
    lone = tmp_path / "report.csv"
    shutil.copy(folder / "opportunities.csv", lone)
    model = tmp_path / "model.toml"
    run("calibrate", lone, "--profile", "salesforce", "-o", model)
    run("forecast", model, "--history", lone, "--profile", "salesforce", *FAST)
