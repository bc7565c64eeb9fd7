"""``salesim calibrate`` through click's CliRunner: the happy path and every bad input."""

import json
import shutil

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from salesim.cli import main
from salesim.simulator.model import load

KEYS = {"as_of", "n_opportunities", "win_rate", "stages", "cycle_days", "deal_size", "activities"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calib") / "hist"
    result = CliRunner().invoke(main, ["demo-data", str(folder), "--seed", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    return folder


def run(*args):
    return CliRunner().invoke(main, ["calibrate", *map(str, args)])


def test_demo_data_calibrate_round_trip(demo, tmp_path):
    out = tmp_path / "model.toml"
    result = run(demo, "--as-of", "2026-06-30", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert KEYS <= set(s)
    assert s["as_of"] == "2026-06-30" and s["n_opportunities"] > 1000
    assert 0 < s["win_rate"] < 1
    assert [st["name"] for st in s["stages"]] == ["Qualify", "Discover", "Propose", "Negotiate"]
    for st in s["stages"]:
        lo, hi = st["conversion_interval"]
        assert lo < st["conversion"] < hi
        assert st["duration"]["family"] and st["duration"]["median_days"] > 0
    assert s["cycle_days"]["won_median"] > s["cycle_days"]["lost_median"] > 0
    assert {"family", "mean", "median"} <= set(s["deal_size"])
    # The demo generator has no deals that never close: no stall share anywhere.
    assert s["stall"] == 0.0 and s["stall_interval"] is None
    assert all(st["stall"] == 0.0 and st["stall_interval"] is None for st in s["stages"])
    assert set(s["activities"]) >= {"per_rep_day", "opportunity_yield"}
    # The file is the model, and reads back to what calibrate reported.
    model = load(out)
    assert model.win_rate == pytest.approx(s["win_rate"])
    assert model.as_of.isoformat() == "2026-06-30"
    text = out.read_text()
    assert text.startswith("salesim_model = 1") and "[[stages]]" in text
    # Rows after the as-of date were cut, and said so on stderr.
    assert "created later" in result.stderr


def test_table_output(demo, tmp_path):
    result = run(demo, "-o", tmp_path / "m.toml")
    assert result.exit_code == 0, result.output
    for word in ("Win rate", "Qualify", "Negotiate", "Deal size", "Activities", "Team", "Wrote"):
        assert word in result.stdout
    assert "never closes" not in result.stdout


def test_deals_that_never_close_get_a_stall_share(demo, tmp_path):
    """A third of the lost deals rewritten as still open (they never close): calibrate keeps
    a stall share for the cycle, reports it in the JSON and the table, and the model file
    holds it."""
    hist = tmp_path / "hist"
    shutil.copytree(demo, hist)
    o = pl.read_csv(hist / "opportunities.csv")
    third = pl.Series(np.random.default_rng(0).random(o.height) < 1 / 3)
    stuck = (o["status"] == "lost") & third
    o.with_columns(
        status=pl.when(stuck).then(pl.lit("open")).otherwise(pl.col("status")),
        closed=pl.when(stuck).then(None).otherwise(pl.col("closed")),
    ).write_csv(hist / "opportunities.csv")
    result = run(hist, "--as-of", "2026-09-30", "-o", tmp_path / "m.toml", "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    lo, hi = s["stall_interval"]
    # The share of stuck deals, within 4 standard errors (the 90% interval is ±1.645 sd).
    assert lo < s["stall"] < hi
    assert abs(s["stall"] - stuck.mean()) < 4 * (hi - lo) / 3.29
    assert any(st["stall"] > 0 for st in s["stages"])
    assert load(tmp_path / "m.toml").cycle.stall.mean == pytest.approx(s["stall"])
    table = run(hist, "--as-of", "2026-09-30", "-o", tmp_path / "m2.toml")
    assert "never closes" in table.stdout


def test_without_activities_the_summary_says_null(demo, tmp_path):
    folder = tmp_path / "hist"
    shutil.copytree(demo, folder)
    (folder / "activities.csv").unlink()
    (folder / "reps.csv").unlink()
    result = run(folder, "-o", tmp_path / "m.toml", "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert s["activities"] is None and s["outbound_per_rep_day"] > 0
    assert s["team"]["calibrated"] is False
    assert "no activities file" in result.stderr and "no reps file" in result.stderr


def test_stages_option_orders_the_model(demo, tmp_path):
    result = run(
        demo, "--stages", "Qualify,Discover,Propose,Negotiate", "-o", tmp_path / "m.toml", "--json"
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["stages"]) == 4


def _error(result, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in result.stderr, result.stderr


@pytest.mark.parametrize(
    "as_of, words",
    [
        ("2026-13-45", ("--as-of", "not a real date")),
        ("yesterday", ("--as-of",)),
        ("2000-01-01", ("--as-of", "2000-01-01")),  # before every opportunity
    ],
)
def test_bad_as_of(demo, tmp_path, as_of, words):
    _error(run(demo, "--as-of", as_of, "-o", tmp_path / "m.toml"), *words)
    assert not (tmp_path / "m.toml").exists()


def test_a_stage_no_deal_used_is_left_out_with_a_note(demo, tmp_path):
    # Stage orders (a CRM's standard list, a profile's) often name stages a history never
    # used; they carry no data and change nothing, so they are dropped and named.
    result = run(
        demo,
        "--stages",
        "Qualify,Bogus,Discover,Propose,Negotiate",
        "-o",
        tmp_path / "m.toml",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert [s["name"] for s in json.loads(result.stdout)["stages"]] == [
        "Qualify",
        "Discover",
        "Propose",
        "Negotiate",
    ]
    assert "left out of the model: Bogus" in result.stderr


def test_empty_file(tmp_path):
    (tmp_path / "opportunities.csv").write_text("")
    _error(run(tmp_path / "opportunities.csv", "-o", tmp_path / "m.toml"), "no data rows")


def test_only_open_deals(tmp_path):
    rows = ["opportunity_id,owner,created,stage,status,amount"]
    rows += [f"o{i},ann,2025-01-{i + 1:02d},Qualify,open,1000" for i in range(9)]
    (tmp_path / "hist").mkdir()
    (tmp_path / "hist" / "opportunities.csv").write_text("\n".join(rows) + "\n")
    _error(run(tmp_path / "hist", "-o", tmp_path / "m.toml"), "still open")


def test_no_won_deals(tmp_path):
    rows = ["opportunity_id,owner,created,stage,status,closed,amount"]
    rows += [f"o{i},ann,2025-01-{i + 1:02d},Qualify,lost,2025-02-01,1000" for i in range(9)]
    (tmp_path / "hist").mkdir()
    (tmp_path / "hist" / "opportunities.csv").write_text("\n".join(rows) + "\n")
    _error(run(tmp_path / "hist", "-o", tmp_path / "m.toml"), "no won deals")


def test_refuses_to_overwrite_an_input(demo, tmp_path):
    folder = tmp_path / "hist"
    shutil.copytree(demo, folder)
    target = folder / "reps.csv"
    before = target.read_text()
    _error(run(folder, "-o", target), "refusing to overwrite")
    assert target.read_text() == before


def test_missing_history(tmp_path):
    _error(run(tmp_path / "nope", "-o", tmp_path / "m.toml"), "not found")


def test_output_is_required(demo):
    result = CliRunner().invoke(main, ["calibrate", str(demo)])
    assert result.exit_code == 2 and "-o" in result.output
