"""Where a key is in a TOML text: tomllib gives values, not line numbers.

``KeyLines(text).line(("stages", 2, "conversion", "alpha"))`` is the line of that key (or of
its nearest enclosing table), found by scanning the text table by table; ``key_name`` writes
such a path as people read it, ``stages[2].conversion.alpha``. The model file and the
scenario file both name the line and key of a bad value with these.
"""

from __future__ import annotations

import re

from .errors import InputError

_PART = r'(?:[A-Za-z0-9_-]+|"[^"\n]*"|\'[^\'\n]*\')'
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_PART}(?:\s*\.\s*{_PART})*)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in re.findall(_PART, dotted))


def key_name(path: tuple) -> str:
    """``("hiring", "hire", 1, "date")`` -> ``hiring.hire[1].date``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class KeyLines:
    """Line numbers (1-based) of the keys and tables of a TOML text.

    Handles ``[table]``, ``[[array.of.tables]]`` (indexed in order), dotted keys and, via the
    nearest enclosing key, values inside inline tables. Good enough to point a person at the
    right line; it does not validate TOML (tomllib does).
    """

    def __init__(self, text: str):
        self._lines: dict[tuple, int] = {}
        counts: dict[tuple, int] = {}
        table: tuple = ()
        for n, line in enumerate(text.splitlines(), start=1):
            h = _HEADER.match(line)
            if h:
                array = h.group(1) == "[["
                table = self._resolve(_split_key(h.group(2)), counts, array)
                if array:
                    counts[table] = counts.get(table, -1) + 1
                    table = table + (counts[table],)
                self._lines.setdefault(table, n)
                continue
            k = _KEY.match(line)
            if k:
                self._lines.setdefault(table + _split_key(k.group(1)), n)

    @staticmethod
    def _resolve(parts: tuple[str, ...], counts: dict, array: bool) -> tuple:
        # [hiring.hire.extra] after [[hiring.hire]] belongs to the latest hire
        out: tuple = ()
        for i, p in enumerate(parts):
            out = out + (p,)
            if out in counts and not (array and i == len(parts) - 1):
                out = out + (counts[out],)
        return out

    def line(self, path: tuple) -> int | None:
        """The line of ``path``, else of its nearest enclosing key or table."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None


def key_error(
    file: str, lines: KeyLines, path: tuple, message: str, expected: str | None = None
) -> InputError:
    """The ``InputError`` of a bad value at ``path``: its file, line and dotted key."""
    return InputError(
        message, file=file, line=lines.line(path), key=key_name(path) or None, expected=expected
    )
