"""The README's tour runs as written, in order, in an empty folder."""

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from salesim.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## A 5-minute tour.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("salesim ")]


def test_readme_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = tour_commands()
    assert len(commands) >= 8
    runner = CliRunner()
    for line in commands:
        result = runner.invoke(main, shlex.split(line)[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
    for made in (
        "hist/opportunities.csv",
        "hist/truth.toml",
        "model.toml",
        "fan.png",
        "bands.csv",
        "tornado.png",
        "deals.csv",
    ):
        assert (tmp_path / made).stat().st_size > 0, made


def test_readme_names_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "python -m pip install -e . && salesim demo --out demo-out" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = 'python -m pip install -e ".[test]" && python -m pytest'
    assert test_cmd in text and test_cmd in ci
