"""Where salesim writes: every output path is checked before any work, then written atomically.

An output option is declared with the type ``OUTPUT`` (one file) or ``OUTPUT_DIR`` (a folder
the command fills), and that is all a new output option needs::

    @click.option("--out", "out_path", type=OUTPUT, default=None, help="...")
    ...
    out["out"] = str(write(out_path, data))

``cli.handle_errors`` calls ``check_command`` before a command's body runs. It takes every
``OUTPUT``/``OUTPUT_DIR`` value as an output and every other ``click.Path`` value as an input
(a scenario or plan file adds the model and history it names), and refuses, with an
``InputError`` naming the option and the path (exit 2, nothing written), an output that

- is empty, under /proc, /sys or /dev, or not a regular file (a device, a pipe);
- is an existing folder (``OUTPUT``) or an existing file (``OUTPUT_DIR``);
- lies under a file, or under a folder that cannot be written to;
- resolves, through ``..`` and symlinks, to an input file or into an input folder (an
  ``OUTPUT_DIR`` also may not hold an input);
- is the same file as another output of the command;
- (``OUTPUT_DIR``) already holds CRM files, unless the command was given ``--force``.

Missing parent folders are created when writing. ``write`` goes through
``simulator.model.write_atomic``: a temp file beside the target and a rename, the temp file
removed on any error, Ctrl-C or SIGTERM, so the previous file stays whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from salesim.simulator.errors import InputError

# What a CRM history folder (or demo-data's output) holds; a folder output with any of these
# is someone's data, replaced only with --force.
CRM_FILES = tuple(
    f"{stem}.{ext}"
    for stem in (
        "opportunities",
        "stage_history",
        "activities",
        "reps",
        "close_date_history",
        "teams",
    )
    for ext in ("csv", "parquet")
) + ("truth.toml",)
SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


class OutputPath(click.ParamType):
    """An output file or (``folder=True``) folder. The value is passed on as given: it is
    checked in ``check_command``, where the inputs are known and a problem is an ``InputError``
    (one line, exit 2) rather than click's usage error."""

    def __init__(self, folder: bool = False, check: Callable[[str], object] | None = None):
        self.folder = folder
        self.check = check  # what else the option asks of a path (e.g. a table suffix)
        self.name = "DIR" if folder else "FILE"

    def convert(self, value, param, ctx):
        return value


OUTPUT = OutputPath()
OUTPUT_DIR = OutputPath(folder=True)


def check_command(ctx: click.Context) -> None:
    """Refuse the outputs of the command about to run (the rules of the module docstring)."""
    outputs, given_inputs = _command_paths(ctx)
    if outputs:
        check(outputs, input_paths(given_inputs), force=bool(ctx.params.get("force")))
    for param in ctx.command.params:  # a path fit to write may still not suit the option
        value = ctx.params.get(param.name or "")
        if value is not None and isinstance(param.type, OutputPath) and param.type.check:
            param.type.check(value)


def check_beside(ctx: click.Context, paths: Iterable[Path], label: str = "--out") -> None:
    """Outputs a command derives from an option's file rather than takes as options (the
    tables ``--out`` writes beside FILE): the same rules, against the same inputs and
    outputs, before any of them is written."""
    paths = list(paths)
    if paths:
        outputs, given_inputs = _command_paths(ctx)
        check(outputs + [(label, p, False) for p in paths], input_paths(given_inputs))


def _command_paths(ctx: click.Context) -> tuple[list[tuple[str, object, bool]], list[object]]:
    """The command's ``OUTPUT``/``OUTPUT_DIR`` values (label, path, is a folder) and the
    other ``click.Path`` values, its inputs."""
    outputs: list[tuple[str, object, bool]] = []
    given_inputs: list[object] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if v is None:
                continue
            if isinstance(param.type, OutputPath):
                outputs.append((_label(param), v, param.type.folder))
            elif isinstance(param.type, click.Path) or param.name == "profile":
                given_inputs.append(v)  # a profile is a name or a file; a file is an input
    return outputs, given_inputs


def check(
    outputs: Iterable[tuple[str, object, bool]], inputs: Iterable[Path], *, force: bool = False
) -> None:
    """``outputs``: (option label, path as given, is a folder); ``inputs``: resolved paths."""
    inputs = list(inputs)
    seen: dict[Path, str] = {}
    for label, given, folder in outputs:
        target = _target(label, given, folder)
        for inp in inputs:
            _not_an_input(label, given, target, inp, folder)
        if folder and not force:
            _no_crm_files(label, given, target)
        if target in seen:
            raise _refuse(
                label,
                given,
                f"is the same file as {seen[target]}",
                "a different path for each output",
            )
        seen[target] = label


def input_paths(given: Iterable[object]) -> list[Path]:
    """The resolved paths a command reads: each given path that exists, and what a scenario
    file names (its model and history). Missing inputs are the command's to report."""
    out: list[Path] = []
    for g in given:
        p = Path(str(g)).expanduser()
        if not p.exists():
            continue
        out.append(p.resolve())
        if p.is_file() and p.suffix.lower() == ".toml":
            out += _scenario_inputs(p)
    return out


def write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write an output checked by ``check_command``: atomically, to the path it resolves to
    (the file that was checked; a symlink's target, not the link)."""
    from salesim.simulator.model import write_atomic  # with scipy: not on `salesim --help`

    return write_atomic(Path(path).expanduser().resolve(), data)


# --- the rules ----------------------------------------------------------------------------------
def _label(param: click.Parameter) -> str:
    """``-o/--output`` for an option, ``DIR`` for an argument."""
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return param.human_readable_name


def _refuse(label: str, given: object, problem: str, expected: str) -> InputError:
    where = f"option {label}" if label.startswith("-") else label
    return InputError(f"{where} {str(given)!r}: {problem}", expected=expected)


def _target(label: str, given: object, folder: bool) -> Path:
    """The resolved output path, after the rules that need no inputs."""
    kind = "a folder path" if folder else "a file path"
    if not str(given).strip():
        raise _refuse(label, given, "is empty", kind)
    try:
        target = Path(str(given)).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise _refuse(label, given, f"cannot be resolved ({exc})", kind) from None
    for root in SYSTEM_ROOTS:
        if target.is_relative_to(root):
            raise _refuse(
                label, given, f"is under {root}, a system folder", f"{kind} in an ordinary folder"
            )
    if folder and target.exists() and not target.is_dir():
        raise _refuse(label, given, "exists and is not a directory", kind)
    if not folder and target.is_dir():
        raise _refuse(label, given, "is an existing folder", f"{kind}, e.g. a name inside it")
    if not folder and target.exists() and not target.is_file():
        raise _refuse(label, given, "is not a regular file (a device, pipe or socket)", kind)
    existing = target if folder and target.is_dir() else target.parent
    while not existing.exists():  # the folders up to here are created when writing
        existing = existing.parent
    if not existing.is_dir():
        raise _refuse(
            label,
            given,
            f"is under {existing}, which is a file",
            f"{kind} whose parent is a folder or can be created",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _refuse(
            label,
            given,
            f"folder {existing} is not writable",
            f"{kind} in a folder you can write to",
        )
    return target


def _not_an_input(label: str, given: object, target: Path, inp: Path, folder: bool) -> None:
    if inp.is_dir():
        problem = (
            f"it is inside the input folder {inp}"
            if target == inp or target.is_relative_to(inp)
            else None
        )
    elif target == inp or (target.is_file() and os.path.samefile(target, inp)):
        problem = f"it is the input file {inp}"
    else:
        problem = None
    if problem is None and folder and inp.is_relative_to(target):
        problem = f"it holds the input {inp}"
    if problem is not None:
        raise _refuse(
            label,
            given,
            f"refusing to overwrite an input: {problem}",
            "an output path outside the inputs",
        )


def _no_crm_files(label: str, given: object, target: Path) -> None:
    if not target.is_dir():
        return
    found = [name for name in CRM_FILES if (target / name).exists()]
    if found:
        raise _refuse(
            label,
            given,
            f"folder {target} already holds CRM files ({', '.join(found)})",
            "a new or empty folder, or --force to replace them",
        )


def _scenario_inputs(path: Path) -> list[Path]:
    """A scenario's model file, history folder and the files its [history] table names
    (resolved as the scenario resolves them)."""
    from salesim.history import OPTIONAL_FILES
    from salesim.scenarios.scenario import is_scenario_file, load_scenario

    if not is_scenario_file(path):
        return []
    sc = load_scenario(path)
    keys = (*OPTIONAL_FILES, "profile")
    named = [sc.history_options.get(k) for k in keys]
    return [
        Path(p).resolve()
        for p in (sc.model_path, sc.history_path, *named)
        if p is not None and Path(p).exists()
    ]
