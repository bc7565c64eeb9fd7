"""The one exception type that bad input raises.

The CLI turns an ``InputError`` into exit status 2 and its message; library callers can
catch it and read ``file``, ``row``, ``column`` (a table's), ``line``, ``key`` (a TOML
file's: the line and the dotted key) and the bare ``message``.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names where it is (file, row and column, or line and key) and what was
    expected."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None, expected: str | None = None,
                 line: int | None = None, key: str | None = None):
        self.file, self.row, self.column, self.expected = file, row, column, expected
        self.line, self.key = line, key
        self.message = message  # without the where, for callers that say where themselves
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if line is not None:
            where.append(f"line {line}")
        if column is not None:  # a command-line option is named as one, not as a column
            where.append(f"option {column}" if str(column).startswith("--")
                         else f"column '{column}'")
        if key is not None:
            where.append(f"key '{key}'")
        text = (", ".join(where) + ": " if where else "") + message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)
