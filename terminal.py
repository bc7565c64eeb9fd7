"""How a command ends on the terminal: everything printed (``echo``: control characters
escaped), bad input as one line and exit status 2 (``handle_errors``, ``SalesimGroup``),
warnings up front, progress bars, and ``Output.deliver``: the result's tables (``--out``),
chart (``--plot``) and HTML report (``--html``), then its JSON (``--json``) or its text
(report.py).

cli.py parses each command into an ``Output`` (options.py) and hands the result here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click

from salesim import outputs
from salesim.report import json_safe
from salesim.simulator.errors import InputError, printable, terminal_text


def echo(message: object = "", **kwargs: Any) -> None:
    """``click.echo`` for everything salesim prints: names come from users' data, and an
    escape sequence in a rep's name must not drive the terminal (shown escaped instead)."""
    click.echo(terminal_text(str(message)), **kwargs)


def warn(warnings: Iterable[str]) -> None:
    """Say up front, on stderr, what a plan or a model warns of (a MODEL without --history
    starts with an empty pipeline: the numbers are then much lower)."""
    for warning in warnings:
        echo(f"warning: {warning}", err=True)


def emit_json(data: dict) -> None:
    echo(json.dumps(json_safe(data), indent=2))


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write an ``OUTPUT`` option's file atomically (checked before the command ran)."""
    return outputs.write(path, data)


def write_tables(named: dict, path: str | Path, *, fmt: str | None = None) -> list[str]:
    """Write a result's tables (``tables.encode``); the paths. The tables beside FILE are
    no option of their own, so they are checked here, by the same rules as every output,
    before any file is written."""
    from salesim import tables

    files = tables.encode(named, path, fmt)
    outputs.check_beside(click.get_current_context(), [p for p, _ in files[1:]])
    return [str(write_output(p, data)) for p, data in files]


def echo_written(doc: dict, what: dict[str, str]) -> None:
    """``Wrote … to …`` for each output a command wrote (``what``: key -> description)."""
    for key, desc in what.items():
        if key in doc:
            paths = doc[key] if isinstance(doc[key], list) else [doc[key]]
            echo(f"Wrote {desc} to {', '.join(paths)}")


# --- errors: one line, never a traceback -----------------------------------------------------
def handle_errors(fn: Callable) -> Callable:
    """Bad input -> exit 2 and one line on stderr; never a traceback. The run size
    (``--trials``, ``--weeks``) and the command's output paths are checked first, before any
    work (outputs.check_command)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _check_run_size(kwargs)
            outputs.check_command(click.get_current_context())
            return fn(*args, **kwargs)
        except InputError as exc:
            echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _check_run_size(options: dict) -> None:
    """``--trials`` and ``--weeks`` within their documented maxima, before any work."""
    from salesim.simulator import limits

    if options.get("trials") is not None:
        limits.check_trials(options["trials"])
    if options.get("weeks") is not None:
        limits.check_weeks(options["weeks"])


class SalesimGroup(click.Group):
    """click's group, but a usage error (a bad option value, an unknown command) is one line
    like every other error, not the usage text followed by the message."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare ``salesim``: the help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "salesim"
            echo(f"Error: {printable(exc.format_message())} (see '{command} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, EOFError, KeyboardInterrupt):
            echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(0)


# --- progress -------------------------------------------------------------------------------------
def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and not with --quiet."""
    return not quiet and sys.stderr.isatty()


class Bar:
    """A click progress bar as a ``runner.Progress``: the library sizes it (``expect``)
    before the first unit of work, since only the library knows how many runs a job has."""

    def __init__(self, bar: Any):
        self.bar = bar

    def expect(self, total: int) -> None:
        self.bar.length = max(int(total), 1)

    def __call__(self, n: int) -> None:
        self.bar.update(n)


@contextlib.contextmanager
def progress_bar(quiet: bool, label: str) -> Iterator[Bar | None]:
    """A bar on a terminal, else None (no progress reported)."""
    if not show_progress(quiet):
        yield None
        return
    _compile_notice(label)
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
        yield Bar(bar)


def _compile_notice(label: str) -> None:
    """Before a bar that waits on the vector engine's first compilation (issue 19), say so:
    otherwise the bar sits at 0% with a wild ETA for the compile's ~20 s."""
    ctx = click.get_current_context(silent=True)
    engine = ctx.params.get("engine") if ctx else None
    if label in ("Generating history", "Calibrating") or engine == "simpy":
        return
    from salesim.simulator import jit

    if jit.cold():
        echo(f"compiling the simulation engine once, about {jit.COMPILE_SECONDS} s", err=True)


# --- the end of every command ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Output:
    """Where a command's result goes, as its options say: ``--json``, ``--quiet``,
    ``--out``, ``--plot``, ``--html`` and ``--currency`` (those the command has)."""

    as_json: bool = False
    quiet: bool = False
    out_path: str | None = None
    plot_path: str | None = None
    html_path: str | None = None
    currency: Any = None

    def progress(self, label: str) -> contextlib.AbstractContextManager[Bar | None]:
        return progress_bar(self.quiet, label)

    def deliver(
        self,
        result: Any,
        doc: dict | None = None,
        *,
        written: dict[str, str],
    ) -> None:
        """A result object's tables to ``--out``, HTML report to ``--html`` and chart to
        ``--plot``, then ``doc`` (default ``result.to_dict()``; the files written are added)
        as JSON, or ``result.to_text()`` and what was written."""
        from salesim import plots

        doc = result.to_dict() if doc is None else doc
        if self.out_path:
            doc["out"] = write_tables(result.output_tables(), self.out_path)
        if self.html_path:
            doc["html"] = str(write_output(self.html_path, _html(result, self.currency)))
        if self.plot_path:
            png = plots.png(result.plot(self.currency))
            doc["plot"] = str(write_output(self.plot_path, png))
        if self.as_json:
            emit_json(doc)
            return
        echo(result.to_text())
        echo_written(doc, written)

    def show(self, doc: dict, text: str) -> None:
        """A document without a result object: as JSON, or ``text``."""
        if self.as_json:
            emit_json(doc)
        else:
            echo(text)


def _html(result: Any, currency: Any) -> str:
    """The dashboard's self-contained HTML report (the only result that has one)."""
    from salesim.scenarios import html_report

    return html_report.render(result, html_report.charts(result, currency=currency))
