"""The shipped example scenarios parse and run on the demo history they document."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from salesim.cli import main
from salesim.scenarios.scenario import load_scenario, scenario_spec
from salesim.simulator import demo_history
from salesim.simulator.model import save

EXAMPLES = Path(__file__).parents[1] / "scenarios" / "examples"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """The examples next to ``demo-history/`` as ``salesim demo-data`` (defaults) writes it."""
    root = tmp_path_factory.mktemp("examples")
    hist = demo_history.generate(7)  # the demo-data defaults: seed 7, 2026-09-30
    folder = root / "demo-history"
    folder.mkdir()
    for name, text in hist.csv_texts().items():
        (folder / name).write_text(text, encoding="utf-8")
    save(hist.truth, folder / "truth.toml")
    for f in EXAMPLES.glob("*.toml"):
        shutil.copy(f, root / f.name)
    return root


def test_every_example_parses_and_builds(examples):
    names = sorted(p.name for p in examples.glob("*.toml"))
    assert names == ["quarter.toml", "team-plan.toml"]
    for name in names:
        sc = load_scenario(examples / name)
        spec = scenario_spec(sc)
        assert spec.open_deals.height > 0 and sc.strategies
        assert str(spec.start) == "2026-10-01"
        assert spec.days == {"quarter.toml": 92, "team-plan.toml": 182}[name]


def test_quarter_example_compares(examples):
    res = CliRunner().invoke(
        main,
        ["compare", str(examples / "quarter.toml"), "--trials", "200", "--workers", "1", "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["strategies"]) == 6 and out["best"]
    by = {s["name"]: s for s in out["strategies"]}
    # deal size only scales new deals: its uplift is exactly 10% of new revenue, never less
    assert by["deal_size"]["uplift"]["p5"] >= 0
    assert by["deal_size"]["uplift_new"] == pytest.approx(0.1 * out["baseline"]["revenue_new"])


def test_team_plan_example_capacity(examples):
    res = CliRunner().invoke(
        main,
        [
            "capacity",
            str(examples / "team-plan.toml"),
            "--target",
            "13M",
            "--trials",
            "200",
            "--workers",
            "1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["reachable"] and out["additional_reps"] > 0
    assert out["p_target"] >= 0.8 > out["p_target_one_fewer"]
    res = CliRunner().invoke(
        main,
        [
            "capacity",
            str(examples / "team-plan.toml"),
            "--solve",
            "coverage",
            "--trials",
            "200",
            "--workers",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Answer: open pipeline at the start" in res.output
