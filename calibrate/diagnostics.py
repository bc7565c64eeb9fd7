"""What the history contradicts: plain sentences, with numbers, for ``salesim calibrate``.

A pooled model assumes that nothing changes. Each finding here is a place where the history
says otherwise by more than its noise (two standard errors), and what the model does about it:
the recent quarters against the whole history per channel, a trend or a season the rolling
forecasts preferred, quarter-to-quarter variation beyond chance, wins and losses bunching
within the quarter, old open deals ending otherwise than the fitted curves say.
"""

from __future__ import annotations

import math

import numpy as np

from salesim.simulator.calendar import ClosingClock, shifted_conversion
from salesim.simulator.model import StageModel

from .quarters import SHOCK_PRIOR_SD, Forecast
from .tails import departs

RECENT = 2  # "the last two quarters"
Z = 2.0  # standard errors before a difference is said


def _recent(fc: Forecast) -> tuple[float, float] | None:
    """Precision-weighted mean effect of the last ``RECENT`` measured quarters, and its SE."""
    s = fc.series
    m = np.flatnonzero(s.measured)[-RECENT:]
    if m.size == 0:
        return None
    w = 1 / s.v[m]
    rho = np.where(np.isfinite(s.ref), s.ref, 0.0)
    ref = (
        0.0
        if s.absolute
        else float(np.dot(rho[s.measured], s.y[s.measured]) / max(rho[s.measured].sum(), 1e-12))
    )
    return float(np.dot(w, s.y[m]) / w.sum()) - ref, math.sqrt(1 / w.sum())


def _pct(x: float) -> str:
    return f"{x:+.0%}"


def win_rate(stages: tuple[StageModel, ...], shift: float = 0.0) -> float:
    """The stages' win rate with every stage's log odds of advancing shifted."""
    out = 1.0
    for s in stages:
        pi = s.stall.mean if s.stall is not None else 0.0
        out *= float(shifted_conversion(min(s.conversion.mean, 1 - pi), pi, shift))
    return out


def channel_findings(
    forecasts: dict[str, Forecast], stages, rate: float | None, weekly: float | None
) -> list[str]:
    out = []
    for name, fc in forecasts.items():
        got = _recent(fc)
        if got is not None and abs(got[0]) > Z * got[1]:
            d, se = got
            if name == "outbound" and rate is not None:
                out.append(
                    f"outbound opportunities per rep-day: the last {RECENT} quarters "
                    f"{rate * math.exp(d):.3g} against {rate:.3g} over the history "
                    f"({_pct(math.exp(d) - 1)} ± {se:.0%})"
                )
            elif name == "marketing" and weekly is not None:
                out.append(
                    f"marketing opportunities per week: the last {RECENT} quarters "
                    f"{weekly * math.exp(d):.3g} against {weekly:.3g} "
                    f"({_pct(math.exp(d) - 1)} ± {se:.0%})"
                )
            elif name == "conversion":
                out.append(
                    f"win rate of deals entering stages in the last {RECENT} quarters "
                    f"{win_rate(stages, d):.1%} against {win_rate(stages):.1%} over the "
                    f"history (log odds per stage {d:+.2f} ± {se:.2f})"
                )
            elif name == "pace":
                out.append(
                    f"wins in the last {RECENT} quarters came at {math.exp(d):.2f}× the "
                    f"pace their pipeline implied (log {d:+.2f} ± {se:.2f})"
                )
            elif name == "speed":
                out.append(
                    f"time in each stage for deals entering in the last {RECENT} "
                    f"quarters {math.exp(d):.2f}× the history's (log {d:+.2f} ± "
                    f"{se:.2f})"
                )
        e, c = fc.effects, fc.candidate
        if e is None or c is None:
            continue
        if c.trend:
            per = (
                "log odds per stage" if name == "conversion" else f"({_pct(math.exp(e.trend) - 1)})"
            )
            out.append(
                f"{name}: the rolling forecasts prefer a trend: {e.trend:+.3f} a quarter {per}"
            )
        if c.season_sd and e.season:
            q = int(np.argmax(np.abs(e.season)))
            out.append(
                f"{name}: a quarter-of-year pattern (Q{q + 1} {e.season[q]:+.2f} on the "
                f"log scale; Q1–Q4 {', '.join(f'{x:+.2f}' for x in e.season)})"
            )
        if c.forgetting < 1:
            out.append(
                f"{name}: recent quarters forecast better: each quarter weighs "
                f"{c.forgetting:g}× the next in the fit"
            )
        if fc.tau2 > 0 and math.sqrt(fc.tau2) > 1.5 * SHOCK_PRIOR_SD and e.observed > 5:
            scale = "log odds" if name == "conversion" else "log"
            out.append(
                f"{name}: quarters vary beyond chance: a quarter's own shock has sd "
                f"{math.sqrt(fc.tau2):.2f} on the {scale} scale"
            )
    return out


def clock_findings(clock: ClosingClock | None) -> list[str]:
    if clock is None:
        return []
    out = []
    for which, what in (("won", "wins"), ("lost", "losses")):
        r = np.asarray(getattr(clock, which))
        if np.ptp(r) < 0.2:
            continue
        end, start = r[-3:].mean(), r[:3].mean()
        out.append(
            f"{what} do not come evenly through the quarter: its last three weeks close "
            f"at {end:.2f}× and its first three at {start:.2f}× the average pace"
        )
    return out


def tail_findings(stages) -> list[str]:
    """Old open deals whose observed tail was kept: it departs from the fitted curves."""
    out = []
    for stage in stages:
        if stage.tail is None:
            continue
        _, fitted = departs(stage, stage.tail)
        t = stage.tail
        out.append(
            f"stage {stage.name!r}: of the {t.n_at_risk} deals still there after "
            f"{t.from_age:.0f} days, {t.conversion.mean:.0%} later advanced; the fitted "
            f"curves say {fitted:.0%}: open deals that old end as observed"
        )
    return out
