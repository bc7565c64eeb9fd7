"""Outputs never touch inputs (outputs.py): every output option of every command refuses an
input path (directly, through ``..``, through a symlink, into the history folder) and every
unusable path, before any work, with exit 2, one line naming the option, and no file touched.

A new output option is one more row in ``OUTPUTS`` (and, if it reads a history, in
``READS_HISTORY``).
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from salesim import cli, outputs
from salesim.simulator import demo_history
from salesim.simulator.model import save, write_atomic

# command line (before the output option; ROOT-relative names are made absolute), option.
OUTPUTS = {
    "calibrate -o": (["calibrate", "hist"], "-o"),
    "forecast --csv": (["forecast", "model.toml", "--history", "hist", "--trials", "50"], "--csv"),
    "forecast --plot": (
        ["forecast", "model.toml", "--history", "hist", "--trials", "50"],
        "--plot",
    ),
    "compare --plot": (
        ["compare", "scenario.toml", "--lever", "win-rate=+5pp", "--trials", "50"],
        "--plot",
    ),
    "capacity --plot": (
        ["capacity", "model.toml", "--history", "hist", "--target", "1M", "--trials", "50"],
        "--plot",
    ),
    "dashboard --html": (
        ["dashboard", "hist", "--plan", "scenario.toml", "--as-of", "2026-08-15", "--trials", "50"],
        "--html",
    ),
    "dashboard --plot": (
        ["dashboard", "hist", "--plan", "scenario.toml", "--as-of", "2026-08-15", "--trials", "50"],
        "--plot",
    ),
    "backtest --plot": (["backtest", "hist", "--quarters", "1", "--trials", "50"], "--plot"),
    "forecast --out": (["forecast", "model.toml", "--history", "hist", "--trials", "50"], "--out"),
    "deals --out": (["deals", "model.toml", "--history", "hist", "--trials", "50"], "--out"),
    "deals --plot": (["deals", "model.toml", "--history", "hist", "--trials", "50"], "--plot"),
    "movement --out": (
        ["movement", "hist", "--from", "2026-08-01", "--to", "2026-08-15"],
        "--out",
    ),
    "movement --plot": (
        ["movement", "hist", "--from", "2026-08-01", "--to", "2026-08-15"],
        "--plot",
    ),
    "compare --out": (
        ["compare", "scenario.toml", "--lever", "win-rate=+5pp", "--trials", "50"],
        "--out",
    ),
    "capacity --out": (
        ["capacity", "model.toml", "--history", "hist", "--target", "1M", "--trials", "50"],
        "--out",
    ),
    "dashboard --out": (
        ["dashboard", "hist", "--plan", "scenario.toml", "--as-of", "2026-08-15", "--trials", "50"],
        "--out",
    ),
    "backtest --out": (["backtest", "hist", "--quarters", "1", "--trials", "50"], "--out"),
    "bench --out": (["bench", "--reps", "2", "--trials", "50", "--no-sweep"], "--out"),
    "demo --out": (["demo", "--reps", "3", "--quarters", "4", "--trials", "50"], "--out"),
    "demo-data DIR": (["demo-data", "--reps", "3", "--quarters", "4"], None),
}
READS_HISTORY = [k for k, (args, _) in OUTPUTS.items() if "hist" in args or "scenario.toml" in args]
FOLDERS = ["demo --out", "demo-data DIR"]  # OUTPUT_DIR options: refuse a folder of CRM files

# How each output is pointed at an input: ROOT-relative paths.
AT_INPUT = {
    "directly": "hist/opportunities.csv",
    "dotdot": "hist/../hist/stage_history.csv",
    "symlink": "link.csv",  # -> hist/opportunities.csv
    "into history": "hist/new-output.png",  # a new file inside the history folder
    "symlinked folder": "linkdir/new-output.png",  # linkdir -> hist
}
AT_MODEL = {
    "model": "model.toml",
    "model via dotdot": "hist/../model.toml",
    "scenario": "scenario.toml",
}
# How a folder output is pointed at a folder of CRM files.
AT_CRM_FOLDER = {"directly": "hist", "dotdot": "hist/../hist", "symlink": "linkdir"}
UNUSABLE = {
    "empty": ("", "is empty"),
    "existing folder": ("hist", "folder"),
    "under a file": ("model.toml/x.out", "which is a file"),
    "in /proc": ("/proc/salesim-test.out", "/proc"),
    "a device": ("/dev/null", "/dev"),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """hist/ (demo CRM files), model.toml, scenario.toml (names both), link.csv, linkdir."""
    root = tmp_path_factory.mktemp("outputs")
    demo = demo_history.generate(7, reps=3, quarters=4)
    (root / "hist").mkdir()
    for name, text in demo.csv_texts().items():
        (root / "hist" / name).write_text(text)
    save(demo.truth, root / "hist" / "truth.toml")
    save(demo.truth, root / "model.toml")
    (root / "scenario.toml").write_text('model = "model.toml"\nhistory = "hist"\nquota = "1M"\n')
    (root / "extra").mkdir()  # input files given by option, outside the history folder
    for name in ("stage_history.csv", "activities.csv", "reps.csv"):
        (root / "extra" / name).write_bytes((root / "hist" / name).read_bytes())
    (root / "link.csv").symlink_to(root / "hist" / "opportunities.csv")
    (root / "linkdir").symlink_to(root / "hist", target_is_directory=True)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link under ``root`` with a hash of its bytes (or its link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(root: Path, case: str, target: str, *extra: str):
    args, option = OUTPUTS[case]
    absolute = [str(root / a) if a in ("hist", "model.toml", "scenario.toml") else a for a in args]
    target = target if target == "" or target.startswith("/") else str(root / target)
    if option is None:  # an argument: demo-data DIR
        argv = [absolute[0], target, *absolute[1:]]
    else:
        argv = [*absolute, option, target]
    return CliRunner().invoke(cli.main, [*argv, "--quiet", *extra])


def assert_refused(root: Path, res, before: dict, *words: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert snapshot(root) == before, "a file was touched"


def label(case: str) -> str:
    option = OUTPUTS[case][1]
    return "DIR" if option is None else option


@pytest.mark.parametrize("how", AT_INPUT)
@pytest.mark.parametrize("case", READS_HISTORY)
def test_refuses_history_inputs(root, case, how):
    before = snapshot(root)
    res = run(root, case, AT_INPUT[how])
    assert_refused(root, res, before, label(case), "refusing to overwrite an input")


@pytest.mark.parametrize("how", AT_MODEL)
@pytest.mark.parametrize(
    "case",
    [
        "forecast --csv",
        "forecast --plot",
        "compare --plot",
        "capacity --plot",
        "dashboard --html",
        "dashboard --plot",
    ],
)
def test_refuses_model_and_scenario_files(root, case, how):
    """The model file, the scenario (or plan), and the model a scenario names."""
    if how == "scenario" and "scenario.toml" not in OUTPUTS[case][0]:
        pytest.skip("the command reads no scenario here")
    before = snapshot(root)
    res = run(root, case, AT_MODEL[how])
    assert_refused(root, res, before, label(case), "refusing to overwrite an input")


@pytest.mark.parametrize("how", AT_CRM_FOLDER)
@pytest.mark.parametrize("case", FOLDERS)
def test_folder_outputs_refuse_crm_folders_without_force(root, case, how):
    before = snapshot(root)
    res = run(root, case, AT_CRM_FOLDER[how])
    assert_refused(
        root, res, before, label(case), "already holds CRM files", "--force", str(root / "hist")
    )


@pytest.mark.parametrize("what", UNUSABLE)
@pytest.mark.parametrize("case", OUTPUTS)
def test_refuses_unusable_paths(root, case, what):
    target, words = UNUSABLE[what]
    if case in FOLDERS and what == "existing folder":
        pytest.skip("an existing folder is what a folder output wants")
    before = snapshot(root)
    res = run(root, case, target)
    assert_refused(root, res, before, label(case), words)


@pytest.mark.parametrize(
    "command, option, output",
    [
        (
            ["calibrate", "hist/opportunities.csv", "--stage-history", "extra/stage_history.csv"],
            "-o",
            "extra/stage_history.csv",
        ),
        (
            ["calibrate", "hist/opportunities.csv", "--activities", "extra/activities.csv"],
            "-o",
            "extra/../extra/activities.csv",
        ),
        (
            ["backtest", "hist/opportunities.csv", "--reps", "extra/reps.csv"],
            "--plot",
            "extra/reps.csv",
        ),
        (["forecast", "model.toml", "--team", "extra/reps.csv"], "--csv", "extra/reps.csv"),
        (
            ["capacity", "model.toml", "--team", "extra/reps.csv", "--target", "1M"],
            "--plot",
            "extra/reps.csv",
        ),
    ],
)
def test_input_files_given_by_option_are_inputs(root, command, option, output):
    before = snapshot(root)
    args = [str(root / a) if "/" in a or a.endswith(".toml") else a for a in command]
    res = CliRunner().invoke(cli.main, [*args, option, str(root / output), "--quiet"])
    assert_refused(root, res, before, option, "it is the input file")


def test_two_outputs_of_one_command_differ(root, tmp_path):
    before = snapshot(root)
    res = run(
        root,
        "forecast --csv",
        str(tmp_path / "a.out"),
        "--plot",
        str(tmp_path / "sub" / ".." / "a.out"),
    )
    assert_refused(root, res, before, "--plot", "the same file as --csv")
    assert list(tmp_path.iterdir()) == []


def test_the_check_comes_before_anything_else(root):
    """An output problem is reported before an option the command itself would reject."""
    res = run(root, "forecast --csv", "model.toml", "--as-of", "not-a-date")
    assert res.exit_code == 2 and "--csv" in res.output and "--as-of" not in res.output


def test_scenario_history_folder_is_an_input(root):
    """compare reads the history a scenario names: its folder is protected without --history."""
    res = run(root, "compare --plot", "hist/tornado.png")
    assert res.exit_code == 2 and str(root / "hist") in res.output


def test_demo_data_force_replaces_and_default_writes_new(tmp_path):
    target = tmp_path / "crm"
    res = CliRunner().invoke(
        cli.main, ["demo-data", str(target), "--reps", "2", "--quarters", "1", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    first = snapshot(target)
    res = CliRunner().invoke(
        cli.main,
        ["demo-data", str(target), "--reps", "2", "--quarters", "1", "--seed", "8", "--quiet"],
    )
    assert res.exit_code == 2 and snapshot(target) == first
    res = CliRunner().invoke(
        cli.main,
        [
            "demo-data",
            str(target),
            "--reps",
            "2",
            "--quarters",
            "1",
            "--seed",
            "8",
            "--force",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert snapshot(target) != first and set(snapshot(target)) == set(first)


def test_missing_parent_folders_are_created(root, tmp_path):
    out = tmp_path / "new" / "deeper" / "fan.csv"
    res = run(root, "forecast --csv", str(out), "--weeks", "2", "--reps", "2", "--seed", "1")
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("week")


def test_a_symlinked_output_writes_its_target(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    (tmp_path / "link.txt").symlink_to(real)
    outputs.check([("--out", tmp_path / "link.txt", False)], [])
    outputs.write(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() == "new"


def test_hard_link_to_an_input_is_refused(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a\n")
    os.link(src, tmp_path / "alias.csv")
    with pytest.raises(Exception, match="refusing to overwrite"):
        outputs.check([("--out", tmp_path / "alias.csv", False)], outputs.input_paths([src]))


# --- atomic writes -----------------------------------------------------------------------------
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("previous")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_sigterm_mid_write_removes_the_temp_file(tmp_path, monkeypatch):
    """SIGTERM while writing becomes SystemExit (exit 143), so the temp file is removed."""
    target = tmp_path / "out.csv"
    target.write_text("previous")
    real_replace = os.replace

    def killed(src, dst):
        os.kill(os.getpid(), signal.SIGTERM)
        real_replace(src, dst)  # not reached: the handler raises first

    monkeypatch.setattr(os, "replace", killed)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc:
        write_atomic(target, "new")
    assert exc.value.code == 128 + signal.SIGTERM
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back


def test_a_killed_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    """A real SIGTERM to a process stuck mid-write (before its rename): it exits with 143,
    the previous output is whole and the temp file is gone."""
    import subprocess
    import sys
    import time

    target = tmp_path / "bands.csv"
    target.write_text("previous")
    child = (
        "import os, sys, time\nfrom salesim import outputs\n"
        "os.replace = lambda src, dst: time.sleep(60)   # stuck before the rename\n"
        "outputs.write(sys.argv[1], 'new' * 1000)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, str(target)], cwd=Path(__file__).parents[1]
    )
    deadline = time.monotonic() + 60
    while not [p for p in tmp_path.iterdir() if p.name.startswith(".bands.csv.")]:
        assert proc.poll() is None and time.monotonic() < deadline, "no temp file appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["bands.csv"]
