"""Mapping profiles: one TOML file that says how a CRM's export maps to the canonical history
(docs/formats.md, "Mapping profiles").

A profile names, once, what the ``--map``, ``--date-format`` and ``--stages`` flags would say
on every command, plus what flags cannot: candidate column names, won/lost labels, value maps
(lead source "Web" -> marketing), statuses to drop and a wide stage history (one "date entered"
column per stage). Built-in profiles ship in ``calibrate/profiles/*.toml``; a user profile is
any file with the same keys. Explicit flags override the profile (``merge_mapping``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from salesim.simulator.errors import InputError

from .formats import ALL_CANONICAL, CANONICAL, OPTIONAL

BUILT_IN_DIR = Path(__file__).with_name("profiles")
BUILT_IN = tuple(sorted(p.stem for p in BUILT_IN_DIR.glob("*.toml")))

TOP_KEYS = (
    "name",
    "description",
    "date_format",
    "stages",
    "won",
    "lost",
    "drop_status",
    "probability_scale",
    "columns",
    "values",
    "stage_entered",
)
# Canonical columns whose values a profile may map ("Web" -> marketing).
VALUE_COLUMNS = ("source", "stage", "segment", "forecast_category")
PROBABILITY_SCALES = ("percent", "fraction")


@dataclass(frozen=True)
class Profile:
    """A parsed profile. ``columns`` maps ``canonical`` or ``file.canonical`` to candidate
    source names (first present wins; several present: each row takes the first non-empty)."""

    name: str = ""
    file: str = ""
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_format: str | None = None
    stages: tuple[str, ...] | None = None
    won: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    drop_status: tuple[str, ...] = ()
    probability_scale: str | None = None  # None: percent when any value exceeds 1
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # col -> {raw: value}
    stage_entered: Mapping[str, str] = field(default_factory=dict)  # stage -> column


NO_PROFILE = Profile()


def load_profile(spec: str | os.PathLike | Profile | None) -> Profile:
    """A built-in name (``salesforce``, ``hubspot``, ``pipedrive``), a TOML file, or None."""
    if spec is None or spec == "":
        return NO_PROFILE
    if isinstance(spec, Profile):
        return spec
    text = str(spec)
    if text.lower() in BUILT_IN:
        path = BUILT_IN_DIR / f"{text.lower()}.toml"
    else:
        path = Path(text)
        if not path.is_file():
            raise InputError(
                f"profile {text!r} not found",
                file=text,
                column="--profile",
                expected="one of " + ", ".join(BUILT_IN) + " or a profile TOML file",
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the profile: {exc}",
            file=str(path),
            expected="a TOML profile (docs/formats.md)",
        ) from None
    return parse_profile(data, file=str(path))


def parse_profile(data: Mapping, *, file: str) -> Profile:
    """Validate a profile's keys and values; unknown keys are errors naming the key."""

    def fail(key: str, message: str, expected: str) -> None:
        raise InputError(f"{message} (key {key!r})", file=file, expected=expected)

    def strings(key: str, value, *, allow_one: bool = True) -> tuple[str, ...]:
        items = [value] if allow_one and isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(s, str) and s.strip() for s in items)
        ):
            fail(key, "not a name or a list of names", "a string or a list of strings")
        return tuple(s.strip() for s in items)

    for key in data:
        if key not in TOP_KEYS:
            fail(key, "unknown key", "one of " + ", ".join(TOP_KEYS))
    for key in ("columns", "values", "stage_entered"):
        if not isinstance(data.get(key, {}), dict):
            fail(key, "not a table", f"[{key}] with name = value pairs")

    columns: dict[str, tuple[str, ...]] = {}
    for key, value in data.get("columns", {}).items():
        if isinstance(value, dict):  # [columns.stage_history]: this file only
            if key not in CANONICAL:
                fail(f"columns.{key}", "unknown file", "one of " + ", ".join(CANONICAL))
            allowed = CANONICAL[key] + OPTIONAL.get(key, ())
            for canon, names in value.items():
                if canon not in allowed:
                    fail(
                        f"columns.{key}.{canon}",
                        "unknown canonical column",
                        "one of " + ", ".join(allowed),
                    )
                columns[f"{key}.{canon}"] = strings(f"columns.{key}.{canon}", names)
        elif key in ALL_CANONICAL:
            columns[key] = strings(f"columns.{key}", value)
        else:
            fail(
                f"columns.{key}",
                "unknown canonical column",
                "one of " + ", ".join(ALL_CANONICAL),
            )

    values: dict[str, dict[str, str]] = {}
    for col, table in data.get("values", {}).items():
        if col not in VALUE_COLUMNS or not isinstance(table, dict):
            fail(
                f"values.{col}",
                "unknown value map",
                "a table for one of " + ", ".join(VALUE_COLUMNS),
            )
        mapped: dict[str, str] = {}
        for target, raws in table.items():
            for raw in strings(f"values.{col}.{target}", raws):
                mapped[value_key(raw)] = target
        values[col] = mapped

    entered = data.get("stage_entered", {})
    if not isinstance(entered, dict) or not all(isinstance(v, str) for v in entered.values()):
        fail("stage_entered", "not a table of stage = column", 'stage = "Date entered ..." pairs')
    scale = data.get("probability_scale")
    if scale is not None and scale not in PROBABILITY_SCALES:
        fail("probability_scale", f"unknown scale {scale!r}", " or ".join(PROBABILITY_SCALES))
    date_format = data.get("date_format")
    if date_format is not None and (
        not isinstance(date_format, str) or (date_format != "auto" and "%" not in date_format)
    ):
        fail(
            "date_format",
            f"not a date format: {date_format!r}",
            'a strftime pattern such as "%m/%d/%Y", or "auto"',
        )
    return Profile(
        name=str(data.get("name", Path(file).stem)),
        file=file,
        columns=columns,
        date_format=date_format,
        stages=strings("stages", data["stages"], allow_one=False) if "stages" in data else None,
        won=strings("won", data["won"]) if "won" in data else (),
        lost=strings("lost", data["lost"]) if "lost" in data else (),
        drop_status=strings("drop_status", data["drop_status"]) if "drop_status" in data else (),
        probability_scale=scale,
        values=values,
        stage_entered=dict(entered),
    )


def value_key(value: str) -> str:
    """Value maps match ignoring case and surrounding or repeated spaces."""
    return " ".join(str(value).lower().split())


def merge_mapping(
    profile: Mapping[str, tuple[str, ...]], flags: Mapping[str, str]
) -> dict[str, tuple[str, ...]]:
    """The profile's column mapping with the ``--map`` flags on top: a plain flag
    (``entered=X``) replaces the profile's plain and file-qualified entries for that column;
    a qualified flag (``stage_history.entered=X``) replaces only that entry."""
    merged = dict(profile)
    for key, source in flags.items():
        if "." not in key:
            for k in [k for k in merged if k.rpartition(".")[2] == key]:
                del merged[k]
        merged[key] = (source,)
    return merged
