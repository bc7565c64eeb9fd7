"""House habits that CI enforces: ruff's lint rules and format (pyproject.toml [tool.ruff]) and
mypy on the library (pyproject.toml [tool.mypy])."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    pytest.importorskip("ruff")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy(tmp_path):
    """The library type-checks. The repository root is the package ``salesim`` (pyproject's
    package-dir), which mypy cannot see through an editable install, so it checks the package
    through a link named ``salesim`` to the checkout; the cache stays in the checkout
    (.gitignore), so a second run takes a second."""
    pytest.importorskip("mypy")
    (tmp_path / "salesim").symlink_to(ROOT, target_is_directory=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "-p",
            "salesim",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
