"""Roll-ups (issue 18 item 5): bands per rep, manager, region and segment from the same joint
trials as the team's; the CLI's --by, its JSON, text and --out table; the dashboard's --by;
the Maven sample by manager and regional office."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import salesim
from salesim.calibrate.fit import calibrate
from salesim.cli import main
from salesim.history import TEAM_COLUMNS
from salesim.scenarios.rollups import UNASSIGNED, parse_levels, seat_groups
from salesim.simulator.demo_history import generate
from salesim.simulator.errors import InputError
from salesim.simulator.model import save

D = dt.date
MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"
KEYS = {"level", "name", "revenue", "p_quota", "wins"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A six-rep demo history with a teams file: two managers, one rep with none."""
    root = tmp_path_factory.mktemp("rollups")
    demo = generate(np.random.default_rng(5), reps=6, quarters=4, as_of=D(2026, 6, 30))
    history = demo.to_history()
    model = calibrate(history, D(2026, 6, 30))
    owners = [r.name for r in model.team.reps]
    assert len(owners) == 6
    teams = pl.DataFrame(
        {
            "owner": owners,
            "manager": ["Ada", "Ada", "Ada", "Bo", "Bo", None],
            "region": ["East", "East", "West", "West", "West", "West"],
            "segment": ["smb"] * 6,
        },
        schema=TEAM_COLUMNS,
    )
    history = dataclasses.replace(history, teams=teams)
    hist_dir = root / "hist"
    hist_dir.mkdir()
    for name, text in demo.csv_texts().items():
        (hist_dir / name).write_text(text)
    teams.write_csv(root / "teams.csv")
    save(model, root / "model.toml")
    return {"root": root, "history": history, "model": model, "owners": owners, "teams": teams}


def forecast(demo, by, trials=2000, **kw):
    plan = salesim.baseline(demo["model"], demo["history"], as_of=D(2026, 6, 30), **kw)
    return salesim.forecast(plan, trials=trials, seed=11, by=by)


def test_groups_come_from_the_same_trials(demo):
    fc = forecast(demo, ("rep", "manager", "region"))
    by = fc["by"]
    assert all(
        KEYS <= set(row) and set(row["revenue"]) == {"mean", "p10", "p50", "p90"} for row in by
    )
    reps = [r for r in by if r["level"] == "rep"]
    assert [r["name"] for r in reps] == demo["owners"]
    team = fc["revenue"]
    for level in ("rep", "manager", "region"):
        rows = [r for r in by if r["level"] == level]
        # every seat's revenue is in exactly one group: the groups add up to the team
        assert sum(r["revenue"]["mean"] for r in rows) == pytest.approx(team["mean"], rel=1e-12)
        assert sum(r["wins"] for r in rows) == pytest.approx(fc["wins"]["mean"], rel=1e-12)
    # a team's P10 is not the sum of its reps' P10s: bad quarters rarely coincide
    assert team["p10"] > sum(r["revenue"]["p10"] for r in reps)
    assert team["p90"] < sum(r["revenue"]["p90"] for r in reps)
    managers = {r["name"]: r for r in by if r["level"] == "manager"}
    assert list(managers) == ["Ada", "Bo", UNASSIGNED]
    assert [managers[m]["seats"] for m in managers] == [3, 2, 1]
    ada = managers["Ada"]
    assert ada["revenue"]["p10"] > sum(r["revenue"]["p10"] for r in reps[:3])
    # quota per group: the sum of its reps' quotas (300k each in the demo)
    assert ada["quota"] == 900_000.0
    assert 0.0 < ada["p_quota"] < 1.0


def test_group_band_is_the_band_of_the_summed_trials(demo):
    """Recompute one manager's band from the run's per-seat revenue."""
    from salesim.scenarios.rollups import rollup
    from salesim.simulator.runner import run

    plan = salesim.baseline(demo["model"], demo["history"], as_of=D(2026, 6, 30))
    result = run(plan.spec, 1000, 4)
    rows = rollup(result, ["manager"], demo["teams"])
    seats = result.rep_quarter_revenue()
    ada = seats[:, :3].sum(axis=1)
    row = next(r for r in rows if r["name"] == "Ada")
    assert row["revenue"]["p10"] == float(np.quantile(ada, 0.1))
    assert row["revenue"]["mean"] == float(ada.mean())
    assert row["wins"] == int(result.seat_sums().wins[:3].sum()) / 1000
    assert row["quota"] == 900_000.0
    assert row["p_quota"] == float(np.mean(ada >= 900_000.0))


def test_levels_and_groups():
    assert parse_levels(None) == ()
    assert parse_levels(["manager,region", "rep", "manager"]) == ("manager", "region", "rep")
    assert parse_levels("Segment") == ("segment",)
    for bad in (["product"], ["manager,"], ["team"]):
        with pytest.raises(InputError, match="--by"):
            parse_levels(bad)
    teams = pl.DataFrame(
        {"owner": ["a", "b"], "manager": ["M", None], "region": [None, "R"], "segment": None},
        schema=TEAM_COLUMNS,
    )
    assert seat_groups(["a", "b", "hire1"], teams, "manager") == ["M", UNASSIGNED, UNASSIGNED]
    assert seat_groups(["a", "b"], teams, "region") == [UNASSIGNED, "R"]
    assert seat_groups(["a", "b"], None, "segment") == [UNASSIGNED, UNASSIGNED]
    assert seat_groups(["a", "b"], None, "rep") == ["a", "b"]


def test_too_many_trials_for_the_seats_is_said_plainly(demo, monkeypatch):
    from salesim.scenarios import forecast as fc

    monkeypatch.setattr(fc, "SEAT_ARRAY_BYTES", 1000)
    with pytest.raises(InputError, match="--by needs each seat's revenue"):
        forecast(demo, ["manager"], trials=100)
    # a run that streamed its seats is refused too, not approximated
    from salesim.scenarios.rollups import rollup
    from salesim.simulator.runner import run

    plan = salesim.baseline(demo["model"], demo["history"], as_of=D(2026, 6, 30))
    streamed = run(plan.spec, 100, 1, keep_reps=False)
    with pytest.raises(InputError, match="--by needs each seat's revenue"):
        rollup(streamed, ["region"], demo["teams"])
    assert rollup(streamed, [], demo["teams"]) == []


def test_cli_by(demo):
    root = demo["root"]
    base = [
        "forecast",
        str(root / "model.toml"),
        "--history",
        str(root / "hist"),
        "--teams",
        str(root / "teams.csv"),
        "--as-of",
        "2026-06-30",
        "--trials",
        "500",
        "--seed",
        "3",
        "--quiet",
    ]
    r = CliRunner().invoke(main, base + ["--by", "manager,region", "--by", "rep", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert {row["level"] for row in doc["by"]} == {"manager", "region", "rep"}
    assert all(KEYS <= set(row) for row in doc["by"])
    text = CliRunner().invoke(main, base + ["--by", "manager"])
    assert text.exit_code == 0 and "Forecast by manager" in text.output and "Ada" in text.output
    out = root / "fc.csv"
    r = CliRunner().invoke(main, base + ["--by", "region", "--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pl.read_csv(root / "fc.by.csv")
    assert table["name"].to_list() == ["East", "West"]
    assert table["level"].to_list() == ["region", "region"]
    bad = CliRunner().invoke(main, base + ["--by", "product"])
    assert bad.exit_code == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "--by" in bad.stderr


@pytest.mark.skipif(not MAVEN.is_dir(), reason="Maven sample not present")
def test_maven_by_manager_and_region(tmp_path):
    history = salesim.read_history(MAVEN, format="maven")
    model = calibrate(history, D(2017, 9, 30))
    plan = salesim.baseline(model, history, as_of=D(2017, 9, 30))
    fc = salesim.forecast(plan, trials=1000, seed=2, by="manager,region")
    managers = [r for r in fc["by"] if r["level"] == "manager"]
    regions = [r for r in fc["by"] if r["level"] == "region"]
    # sales_teams.csv: six managers in three regional offices, every agent assigned
    assert len(managers) == 6 and UNASSIGNED not in {r["name"] for r in managers}
    assert {r["name"] for r in regions} == {"Central", "East", "West"}
    for rows in (managers, regions):
        assert sum(r["revenue"]["mean"] for r in rows) == pytest.approx(
            fc["revenue"]["mean"], rel=1e-9
        )
        assert sum(r["revenue"]["p10"] for r in rows) < fc["revenue"]["p10"]


def test_dashboard_by_manager(demo):
    from salesim.scenarios import dashboard as dash

    root = demo["root"]
    save(calibrate(demo["history"], D(2026, 3, 31)), root / "model-q1.toml")
    (root / "plan.toml").write_text('model = "model-q1.toml"\nquarter = "2026-Q2"\n')
    plan = dash.load_plan(root / "plan.toml")
    d = dash.build_dashboard(
        demo["history"], plan, D(2026, 6, 10), trials=300, seed=3, by="manager"
    )
    rows = d.to_dict()["by"]
    assert [r["name"] for r in rows] == ["Ada", "Bo", UNASSIGNED]
    assert all(KEYS <= set(r) for r in rows)
    # the forecast's own trials: the groups' P10s add up to less than its P10
    assert sum(r["revenue"]["p10"] for r in rows) < d.forecast["revenue"]["p10"]
    assert "Forecast by manager" in d.to_text()
    assert d.tables()["by"]["name"].to_list() == ["Ada", "Bo", UNASSIGNED]
    assert dash.build_dashboard(demo["history"], plan, D(2026, 6, 10), trials=300, seed=3).by == ()


def test_a_scenario_files_history_groups_and_lists_deals(demo):
    """A scenario's [history] (with its teams file) is the plan's history, as a model's is."""
    root = demo["root"]
    (root / "scenario.toml").write_text(
        'model = "model.toml"\nquarter = "2026-Q3"\n[history]\npath = "hist"\nteams = "teams.csv"\n'
    )
    plan = salesim.load_plan(root / "scenario.toml")
    assert plan.history is not None and plan.as_of == D(2026, 6, 30)
    fc = salesim.forecast(plan, trials=300, seed=1, by="manager")
    assert [r["name"] for r in fc["by"]] == ["Ada", "Bo", UNASSIGNED]
    view = salesim.deals(plan, trials=300, seed=1)
    assert len(view.deals) == plan.spec.open_deals.height > 0


def test_the_same_roll_ups_on_any_worker_count(demo):
    plan = salesim.baseline(demo["model"], demo["history"], as_of=D(2026, 6, 30))
    one = salesim.forecast(plan, trials=2500, seed=8, by="rep,region", workers=1)
    two = salesim.forecast(plan, trials=2500, seed=8, by="rep,region", workers=2)
    assert json.dumps(one.to_dict()["by"]) == json.dumps(two.to_dict()["by"])
