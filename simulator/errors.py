"""The one exception type that bad input raises.

The CLI turns an ``InputError`` into exit status 2 and its message; library callers can
catch it and read ``file``, ``row``, ``column`` (a table's), ``line``, ``key`` (a TOML
file's: the line and the dotted key) and the bare ``message``.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # less tab and newline
MAX_MESSAGE = 300  # characters of a message shown; a 100 KB cell is not echoed whole
MAX_NAME = 120  # characters of a file or column name


def _escaped(pattern: re.Pattern, text: object) -> str:
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def terminal_text(text: str) -> str:
    """Many lines of ``text`` safe for a terminal: as ``printable``, but lines and tabs kept."""
    return _escaped(_CONTROL_IN_LINES, text)


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe for a terminal: control characters (an ESC sequence in a rep's name
    would drive the terminal) shown escaped, and at most ``limit`` characters kept."""
    text = _escaped(_CONTROL, text)
    if limit is not None and len(text) > limit:
        head, tail = limit - 40, 30
        text = f"{text[:head]}…[{len(text) - head - tail:,} characters]…{text[-tail:]}"
    return text


class InputError(ValueError):
    """Bad input: names where it is (file, row and column, or line and key) and what was
    expected."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        expected: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ):
        self.file, self.row, self.column, self.expected = file, row, column, expected
        self.line, self.key = line, key
        self.message = message  # without the where, for callers that say where themselves
        where = []
        if file is not None:
            where.append(printable(file, MAX_NAME))
        if row is not None:
            where.append(f"row {row}")
        if line is not None:
            where.append(f"line {line}")
        if column is not None:  # a command-line option is named as one, not as a column
            column = printable(column, MAX_NAME)
            where.append(f"option {column}" if column.startswith("--") else f"column '{column}'")
        if key is not None:
            where.append(f"key '{printable(key, MAX_NAME)}'")
        text = (", ".join(where) + ": " if where else "") + printable(message, MAX_MESSAGE)
        if expected:
            text += f" (expected {printable(expected, MAX_MESSAGE)})"
        super().__init__(text)
