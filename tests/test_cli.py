"""The command line as a whole: help with examples, amounts, the demo job."""

import json

import pytest
from click.testing import CliRunner

from salesim.cli import main, parse_amount
from salesim.simulator.errors import InputError
from salesim.simulator.model import load

COMMANDS = [
    "demo",
    "demo-data",
    "inspect",
    "calibrate",
    "forecast",
    "deals",
    "movement",
    "compare",
    "capacity",
    "dashboard",
    "backtest",
    "bench",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and f"salesim {command}" in result.output


def test_group_help_lists_every_command():
    out = CliRunner().invoke(main, ["--help"]).output
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize(
    "text, value",
    [
        ("12M", 12e6),
        ("750k", 750e3),
        ("1,200,000", 1.2e6),
        ("$2.5m", 2.5e6),
        ("0", 0.0),
        ("1.5B", 1.5e9),
    ],
)
def test_amounts(text, value):
    assert parse_amount(text) == value


@pytest.mark.parametrize("text", ["", "twelve", "-5", "12MM", "1e6x"])
def test_bad_amounts(text):
    with pytest.raises(InputError):
        parse_amount(text)


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main,
        ["demo", "--out", str(out), "--reps", "6", "--quarters", "4", "--trials", "200", "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) >= {"history", "calibration", "truth_vs_fit", "forecast", "compare", "files"}
    assert doc["forecast"]["trials"] == 200
    assert {s["name"] for s in doc["compare"]["strategies"]} == {
        "prospecting +20%",
        "win rate +5pp",
        "deal size +10%",
        "cycle time -15%",
    }
    for name in ("opportunities.csv", "truth.toml", "model.toml", "forecast.png", "tornado.png"):
        assert (out / ("history/" if name.endswith((".csv", "truth.toml")) else "") / name).exists()
    model = load(out / "model.toml")
    assert model.stage_names == ("Qualify", "Discover", "Propose", "Negotiate")


def test_demo_rejects_bad_options(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--trials", "1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["forecast", "m.toml", "--trials", "abc"], ["'--trials'", "salesim forecast --help"]),
        (["calibrate"], ["Missing argument", "salesim calibrate --help"]),
        (["nonsense"], ["No such command 'nonsense'"]),
    ],
)
def test_usage_errors_are_one_line(args, words):
    result = CliRunner().invoke(main, args, prog_name="salesim")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for w in words:
        assert w in lines[0]
