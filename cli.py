"""The ``salesim`` command line: parse, call one library function per command, render.

Every command turns bad input (``InputError``) into exit status 2 with one message naming
the file, row and column. Rendering helpers live here; logic lives in the packages.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from pathlib import Path

import click

from simulator.errors import InputError
from simulator.model import write_atomic


# --- shared plumbing --------------------------------------------------------------------------
def parse_amount(text: str, *, what: str = "amount") -> float:
    """``12M``, ``750k``, ``1,200,000``, ``$2.5m`` -> float (≥ 0)."""
    s = str(text).strip().replace(",", "").replace("_", "").lstrip("$€£")
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([kKmMbB]?)", s)
    if not m:
        raise InputError(f"cannot read {what} {text!r}", column=what,
                         expected="a number such as 12M, 750k or 1,200,000")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[m.group(2).lower()]
    return value


class AmountType(click.ParamType):
    name = "AMOUNT"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_amount(value, what=param.name if param else "amount")
        except InputError as exc:
            self.fail(str(exc), param, ctx)


AMOUNT = AmountType()


def handle_errors(fn):
    """Bad input -> exit 2 and one line on stderr; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _clean(obj):
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def emit_json(data: dict) -> None:
    click.echo(json.dumps(_clean(data), indent=2))


def write_output(path: str | Path, data: str | bytes, *, inputs: tuple = ()) -> Path:
    """Write an output atomically, refusing to overwrite any input file."""
    p = Path(path).resolve()
    for i in inputs:
        if i is not None and Path(i).exists() and Path(i).resolve() == p:
            raise InputError("refusing to overwrite an input file", file=str(path),
                             expected="a different output path")
    return write_atomic(p, data)


def table(rows: list[list], headers: list[str]) -> str:
    """A plain aligned text table (first column left, others right)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def money(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:,.2f}M"
    if a >= 1e4:
        return f"{x / 1e3:,.1f}k"
    return f"{x:,.0f}"


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and not with --quiet."""
    return not quiet and sys.stderr.isatty()


# --- the group ----------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="salesim")
def main():
    """salesim: Monte Carlo forecasting and planning for sales teams.

    \b
    Typical flow:
      salesim demo                                   # everything, on generated demo data
      salesim demo-data hist/ --seed 7               # write demo CRM history
      salesim calibrate hist/ --as-of 2026-06-30 -o model.toml
      salesim forecast model.toml --history hist/ --quota 12M

    Every command takes --help; bad input exits with status 2 and a message naming the
    file, row and column.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
