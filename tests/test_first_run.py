"""What a user waits on before the first answer (issue 19): one compiled version of each
engine function, a cache in the user's cache directory, and a light ``salesim --help``.
Nothing here times anything; benchmarks/README.md has the figures."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "numba", "matplotlib", "polars")


def _python(code: str, **env) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_one_compiled_version_per_function_across_commands():
    """forecast, compare (levers that hand over columns of the parameter arrays) and
    capacity share one compilation of the trial loop and of every helper it calls."""
    out = _python(
        """
        import datetime as dt
        import salesim
        from salesim.simulator import compiled_dists, compiled_random, demo_history, trial_loop

        as_of = dt.date(2026, 9, 30)
        hist = demo_history.generate(7, reps=3, quarters=2, as_of=as_of)
        plan = salesim.baseline(hist.truth, hist.to_history(), as_of=as_of)
        salesim.forecast(plan, trials=50, seed=1)
        levers = ["win-rate=+5pp", "prospecting=+20%", "headcount=+1@2026-11-01"]
        salesim.compare(plan, levers, trials=50, seed=1)
        salesim.capacity(plan, target=1e6, trials=50, seed=1, max_reps=5)
        for module in (trial_loop, compiled_random, compiled_dists):
            for name, f in vars(module).items():
                if hasattr(f, "signatures"):
                    print(module.__name__, name, len(f.signatures))
        """
    )
    counts = {" ".join(line.split()[:2]): int(line.split()[2]) for line in out.splitlines()}
    assert counts["salesim.simulator.trial_loop simulate_trials"] == 1
    assert max(counts.values()) == 1, {k: v for k, v in counts.items() if v > 1}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["forecast", "--help"]])
def test_help_and_version_import_nothing_heavy(args):
    """``python -m salesim --help`` (and ``--version``, a command's help) imports none of
    scipy, numba, matplotlib or polars: they load in the commands that need them."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['salesim', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('salesim', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    lines = _python(code).splitlines()
    assert len(lines) > 1  # the help or the version
    assert lines[-1] == "HEAVY []"


def test_cache_place(tmp_path, monkeypatch):
    """$SALESIM_CACHE_DIR, else XDG_CACHE_HOME (Linux); one folder per build."""
    from salesim.simulator import jit

    monkeypatch.setenv(jit.ENV, str(tmp_path / "mine"))
    assert jit.cache_root() == tmp_path / "mine"
    monkeypatch.delenv(jit.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert jit.cache_root() == tmp_path / "xdg" / "salesim"
    assert jit.cache_dir().parent.name == "numba"


def test_unwritable_cache_still_compiles(tmp_path):
    """No writable cache folder: a compiled function still runs (uncached or in numba's
    own places), rather than failing at import."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (tmp_path / "mod_jit.py").write_text(
        "from salesim.simulator.jit import njit\n\n\n@njit\ndef f(x):\n    return x + 1\n"
    )
    out = _python(
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import mod_jit; print(mod_jit.f(1))",
        SALESIM_CACHE_DIR=str(blocker / "cache"),
    )
    assert out.strip() == "2"


@pytest.mark.slow
def test_read_only_install_runs(tmp_path):
    """A copy of the package made read-only runs the vector engine: its machine code goes to
    the cache folder, nothing is written next to the modules. (As root the permission bits
    do not bind; the test then still checks where the files went.)"""
    site = tmp_path / "site"
    shutil.copytree(
        ROOT,
        site / "salesim",
        ignore=shutil.ignore_patterns(
            ".git", "tests", "docs", "benchmarks", "__pycache__", "*.egg-info", ".*"
        ),
    )
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    cache = tmp_path / "cache"
    try:
        out = _python(
            """
            import numpy as np
            import salesim.simulator.engine_vector as ev
            from salesim.simulator import jit
            from tests.factories import simple_model
            from tests.engine_helpers import spec_for

            print(ev.__file__)
            print(jit.cold())
            r = ev.simulate_chunk(spec_for(simple_model()), 20, np.random.SeedSequence(1))
            print(r.totals.height, jit.cold(), jit.cache_dir())
            """,
            PYTHONPATH=f"{site}{os.pathsep}{ROOT}",
            SALESIM_CACHE_DIR=str(cache),
        )
    finally:
        for path in site.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    where, first, last = out.splitlines()[-3:]
    assert Path(where).is_relative_to(site)
    assert first == "True"
    height, cold, folder = last.split(maxsplit=2)
    assert (height, cold) == ("20", "False")
    assert Path(folder).is_relative_to(cache)
    assert list(Path(folder).rglob("*.nbi"))
    assert not list(site.rglob("*.nb[ic]"))


def test_compile_notice_before_the_bar(monkeypatch, capsys):
    """A cold cache: one line before the bar; warm, --quiet or not a terminal: nothing."""
    from salesim import terminal
    from salesim.simulator import jit

    monkeypatch.setattr(terminal, "show_progress", lambda quiet: not quiet)
    for cold, quiet, shown in ((True, False, True), (False, False, False), (True, True, False)):
        monkeypatch.setattr(jit, "cold", lambda: cold)
        with terminal.progress_bar(quiet, "Simulating"):
            pass
        err = capsys.readouterr().err
        assert ("compiling the simulation engine once, about" in err) == shown, (cold, quiet)
