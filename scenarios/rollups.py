"""Roll-ups: revenue bands, P(quota) and wins per rep, manager, region or segment.

Each group's band is taken from the same joint trials as the team's: per trial, the group's
quarter revenue is the sum of its seats' (closed to date + won in the horizon), and its
P10/P50/P90 are quantiles of that sum. So a team's P10 is not the sum of its reps' P10s (a
bad quarter for one rep is rarely a bad quarter for all), and the groups of a level add up to
the team's mean.

Who is in which group comes from the history's teams (``History.teams``: owner, manager,
region, segment; a teams file or a reps file's columns). A seat without a value at a level,
a generic seat (``--reps N``) and a planned hire the teams file does not name go to
``UNASSIGNED``; so does revenue credited to no seat (deals of nobody on the team; revenue
closed to date by owners no longer on it), so the groups still add up to the team.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import polars as pl

from salesim.simulator.errors import InputError
from salesim.simulator.results import SimResult

LEVELS = ("rep", "manager", "region", "segment")
UNASSIGNED = "(unassigned)"


def parse_levels(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """The levels asked for, in order, each once: ``--by`` repeated or as a comma list."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for name in (v.strip().lower() for v in value.split(",")):
            if name not in LEVELS:
                raise InputError(
                    f"cannot roll up by {name!r}",
                    column="--by",
                    expected="one or more of " + ", ".join(LEVELS),
                )
            if name not in out:
                out.append(name)
    return tuple(out)


def seat_groups(rep_names: Iterable[str], teams: pl.DataFrame | None, level: str) -> list[str]:
    """Each seat's group at ``level`` (``UNASSIGNED`` when the teams do not say)."""
    names = list(rep_names)
    if level == "rep":
        return names
    known: dict[str, str | None] = {}
    if teams is not None and level in teams.columns:
        known = dict(zip(teams["owner"].to_list(), teams[level].to_list()))
    return [known.get(name) or UNASSIGNED for name in names]


def rollup(result: SimResult, levels: Iterable[str], teams: pl.DataFrame | None) -> list[dict]:
    """``{level, name, revenue: {mean, p10, p50, p90}, p_quota, wins, quota, seats}`` per
    group of each level; groups in name order, ``UNASSIGNED`` last. ``quota`` is the sum of
    the group's seats' quotas when every seat has one (else None, and so is ``p_quota``);
    ``wins`` the mean won deals per trial."""
    levels = tuple(levels)
    if not levels:
        return []
    if not result.kept_seats:
        raise seats_not_kept(result.trials, len(result.rep_names))
    seats = result.rep_quarter_revenue()
    sums = result.seat_sums()
    wins_total = int(result.totals["wins"].sum())
    rest_wins = wins_total - int(sums.wins.sum())
    closed_rest = result.closed_to_date - math.fsum(result.rep_closed_to_date)
    # Revenue no seat was credited with: a float remainder only when there is some.
    rest = None
    if rest_wins or abs(closed_rest) > 1e-9 * max(1.0, abs(result.closed_to_date)):
        rest = result.quarter_revenue() - seats.sum(axis=1)
    out = []
    for level in levels:
        groups = seat_groups(result.rep_names, teams, level)
        names = sorted(set(groups) - {UNASSIGNED}) + (
            [UNASSIGNED] if UNASSIGNED in groups or rest is not None else []
        )
        for name in names:
            members = [r for r, g in enumerate(groups) if g == name]
            revenue = seats[:, members].sum(axis=1)
            wins = int(sums.wins[members].sum())
            if name == UNASSIGNED and rest is not None:
                revenue, wins = revenue + rest, wins + rest_wins
            quotas = [result.rep_quotas[r] for r in members]
            quota = math.fsum(quotas) if quotas and all(q > 0 for q in quotas) else None
            out.append(
                {
                    "level": level,
                    "name": name,
                    "revenue": _band(revenue),
                    "p_quota": float(np.mean(revenue >= quota)) if quota else None,
                    "wins": wins / result.trials,
                    "quota": quota,
                    "seats": len(members),
                }
            )
    return out


def seats_not_kept(trials: int, seats: int) -> InputError:
    """What ``--by`` says when a run keeps no per-seat revenue (too many trials × seats):
    a group's band cannot be made from its seats' sums, and is not approximated."""
    return InputError(
        f"--by needs each seat's revenue in every trial, and {trials:,} trials × {seats} "
        "reps are more than a run keeps",
        column="--by",
        expected="fewer --trials (docs/scaling.md: the per-seat memory limit)",
    )


def _band(values: np.ndarray) -> dict:
    mean = float(values.mean())
    p10, p50, p90 = (float(x) for x in np.quantile(values, (0.1, 0.5, 0.9)))
    return {"mean": mean, "p10": p10, "p50": p50, "p90": p90}
