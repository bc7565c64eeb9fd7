"""docs/api.md runs as written: its Python blocks in order, in one namespace, in a folder
holding the demo history its text names. Also: ``import salesim`` stays light, and the
public names load."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import salesim
from salesim.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_api_walkthrough_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup = re.search(r"`(salesim demo-data [^`]*)`", DOC.read_text(encoding="utf-8")).group(1)
    made = CliRunner().invoke(main, shlex.split(setup)[1:] + ["--quiet"])
    assert made.exit_code == 0, made.output
    blocks = doc_blocks()
    assert len(blocks) >= 6
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 (the doc's own code)
    for chart in ("fan.png", "comparison.png", "capacityanswer.png", "backtestresult.png"):
        assert (tmp_path / chart).read_bytes()[:4] == b"\x89PNG", chart


def test_the_api_gives_the_clis_json(tmp_path, monkeypatch):
    """Same inputs and seed: ``ss.forecast(...).to_dict()`` is ``salesim forecast --json``."""
    import json

    from salesim.report import json_safe

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert (
        runner.invoke(
            main, ["demo-data", "h", "--reps", "3", "--quarters", "4", "--quiet"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            main, ["calibrate", "h", "--as-of", "2026-09-30", "-o", "m.toml", "--quiet"]
        ).exit_code
        == 0
    )
    cli = runner.invoke(
        main,
        [
            "forecast",
            "m.toml",
            "--history",
            "h",
            "--trials",
            "200",
            "--seed",
            "3",
            "--workers",
            "1",
            "--json",
        ],
    )
    assert cli.exit_code == 0, cli.output
    plan = salesim.baseline(salesim.load_model("m.toml"), "h")
    doc = salesim.forecast(plan, trials=200, seed=3).to_dict()
    doc["model"] = "m.toml"
    assert json.loads(cli.stdout) == json.loads(json.dumps(json_safe(doc)))


def test_public_names_load_and_import_is_light():
    """``import salesim`` and the CLI module (what ``salesim --help`` loads) import none of
    matplotlib, numba or scipy.stats."""
    assert callable(salesim.calibrate_model) and salesim.calibrate_model.__module__ == "salesim"
    code = (
        "import sys, salesim, salesim.cli; "
        "print(sorted(m for m in ('matplotlib', 'numba', 'scipy.stats') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name in salesim.__all__:
        assert getattr(salesim, name) is not None, name


def test_figures_leave_pyplot_alone():
    """A chart is a Figure of its own: no pyplot figure is opened, no backend chosen."""
    from salesim import plots

    fig = plots.capacity_curve([1, 2, 3], [0.2, 0.6, 0.9], confidence=0.8, answer=3, xlabel="reps")
    assert type(fig).__name__ == "Figure"
    assert (
        "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()
    )
    assert plots.png(fig)[:4] == b"\x89PNG"


def test_plan_defaults_are_the_library_s():
    """Trials and seed: the caller's, else the scenario file's, else the command's default;
    the headcount search's bound and its run count come from capacity.py."""
    from types import SimpleNamespace

    from salesim.scenarios.capacity import default_max_reps, most_runs
    from salesim.scenarios.plan import COMPARE_TRIALS, Plan

    scenario = Plan(spec=None, scenario=SimpleNamespace(trials=123, seed=9))
    assert (scenario.trials(None, COMPARE_TRIALS), scenario.trials(5, COMPARE_TRIALS)) == (123, 5)
    assert (scenario.seed(None), scenario.seed(0)) == (9, 0)
    model = Plan(spec=None)
    assert model.trials(None, COMPARE_TRIALS) == COMPARE_TRIALS
    assert isinstance(model.seed(None), int)
    assert default_max_reps(5) == 45
    assert most_runs(5) == 2 * 6 + 1 == most_runs(5, 45)  # 40 extra: 6 doublings, 6 halvings


def test_the_calibration_package_keeps_its_name():
    """``salesim.calibrate`` is the package: ``import salesim.calibrate.x as x`` and dotted
    access both work after the public API is imported."""
    import importlib
    import subprocess
    import sys

    code = (
        "import salesim; salesim.calibrate_model\n"
        "import salesim.calibrate.ingest as ingest\n"
        "import salesim.calibrate.fit\n"
        "assert salesim.calibrate.fit.calibrate is not None and ingest.read_history\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert importlib.import_module("salesim").calibrate_model
