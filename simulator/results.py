"""What engines return, and the summaries every report is built from.

Both engines return a ``ChunkResult`` for a chunk of trials; the runner concatenates chunks
(in chunk order, so the number of workers never changes the numbers) into a ``SimResult``,
whose methods give the bands every report uses. Revenue in those bands is *quarter* revenue:
``closed_to_date`` (won earlier in the quarter) plus revenue won in the horizon.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

# One row per trial. Money in the model's currency; counts are deals.
TOTAL_COLUMNS = {
    "trial": pl.Int64,
    "revenue": pl.Float64,  # won revenue inside the horizon
    "revenue_open": pl.Float64,  # ... from deals open at the start
    "revenue_new": pl.Float64,  # ... from deals created in the horizon
    "wins": pl.Int64,
    "wins_open": pl.Int64,
    "wins_new": pl.Int64,
    "losses": pl.Int64,
    "open_start": pl.Int64,  # open deals at the start (after pruning)
    "created": pl.Int64,  # opportunities created in the horizon
    "pipeline_created": pl.Float64,  # their amount
    "activities": pl.Int64,
    "open_end": pl.Int64,  # open deals at the end
    "pipeline_end": pl.Float64,  # their amount
}


@dataclass(frozen=True)
class ChunkResult:
    """A chunk of trials from one engine.

    ``weekly[i, w]``: cumulative won revenue of trial i at the end of week w.
    ``rep_revenue[i, r]``: won revenue credited to seat r (spec.reps order; a backfill is
    credited to the seat it fills). ``events``: engine events processed (benchmarks).
    Counted over the chunk's trials, integers (so sums over chunks are exact):
    ``seat_wins[r]``, the wins credited to seat r; ``deal_wins[k, i]``, the trials in which
    open deal ``i`` (its row among the spec's open deals, before pruning) was won by the end
    of the quarter (``k = 0``, ``SimSpec.quarter_days``) and of the horizon (``k = 1``).
    """

    totals: pl.DataFrame
    weekly: np.ndarray
    rep_revenue: np.ndarray
    events: int = 0
    seat_wins: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    deal_wins: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), dtype=np.int64))

    @staticmethod
    def concat(chunks: list["ChunkResult"]) -> "ChunkResult":
        return ChunkResult(
            totals=pl.concat([c.totals for c in chunks]),
            weekly=np.concatenate([c.weekly for c in chunks]),
            rep_revenue=np.concatenate([c.rep_revenue for c in chunks]),
            events=sum(c.events for c in chunks),
            seat_wins=sum((c.seat_wins for c in chunks[1:]), chunks[0].seat_wins),
            deal_wins=sum((c.deal_wins for c in chunks[1:]), chunks[0].deal_wins),
        )


class SeatSums:
    """Per seat, summed over trials as chunks arrive: won revenue, wins and the trials whose
    attainment reached 100%. Kept whether or not the trials × seats array is (``keep_reps``),
    so a streamed run still reports each seat's mean and P(attainment ≥ 100%).

    Revenue is summed trial after trial in trial order (chunks arrive in order), so the sums
    are the same however the trials were cut into chunks, wherever they ran and however a
    chunk's array is laid out in memory.
    """

    def __init__(self, quotas: ArrayLike, closed_to_date: ArrayLike):
        self.quotas = np.asarray(quotas, dtype=float)
        self.closed = np.asarray(closed_to_date, dtype=float)
        self.revenue = np.zeros(self.quotas.size)
        self.attained = np.zeros(self.quotas.size, dtype=np.int64)
        self.wins = np.zeros(self.quotas.size, dtype=np.int64)

    def add(self, rep_revenue: np.ndarray, wins: np.ndarray | None = None) -> None:
        # The running sums as the first row of a C-ordered array: NumPy reduces axis 0 of it
        # row after row (a sum along a contiguous axis would be pairwise, cut by position).
        rows = np.empty((len(rep_revenue) + 1, self.revenue.size))
        rows[0], rows[1:] = self.revenue, rep_revenue
        self.revenue = rows.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):  # a seat without quota: unused
            self.attained += (attainment(rep_revenue + self.closed, self.quotas) >= 1.0).sum(axis=0)
        if wins is not None:
            self.wins += wins


def attainment(quarter_revenue: np.ndarray, quota: ArrayLike) -> np.ndarray:
    """Quarter revenue / quota: the one definition behind P(attainment) and its quantiles."""
    return quarter_revenue / quota


QUANTILES = (0.1, 0.5, 0.9)
FAN_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def qname(q: float) -> str:
    """0.1 -> ``p10``."""
    return f"p{round(q * 100)}"


def wilson(successes: int, n: int, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (sane at 0 and n successes)."""
    from scipy.special import ndtri

    if n == 0:
        return 0.0, 1.0
    z = float(ndtri(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def band(values, quantiles=(0.1, 0.5, 0.9)) -> dict:
    """``{mean, std, p10, p50, p90}`` of a sample."""
    v = np.asarray(values, dtype=float)
    out = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    for q, x in zip(quantiles, np.quantile(v, quantiles)):
        out[f"p{round(q * 100)}"] = float(x)
    return out


@dataclass(frozen=True)
class SimResult:
    """All trials of one run, with the seed and engine that made them."""

    engine: str
    seed: int  # SeedSequence entropy: rerun with it to reproduce
    trials: int
    quota: float | None  # team quota for the horizon (None: none given)
    rep_names: tuple[str, ...]
    rep_quotas: tuple[float, ...]
    chunks: ChunkResult
    extra: dict = field(default_factory=dict)
    closed_to_date: float = 0.0  # won earlier in the quarter: added to revenue and P(quota)
    rep_closed_to_date: tuple[float, ...] = ()
    start: dt.date | None = None  # first day of the horizon
    days: int | None = None
    seats: SeatSums | None = None  # None: summed from chunks.rep_revenue when asked
    quarter_days: int | None = None  # days of the horizon inside the start's quarter

    @property
    def totals(self) -> pl.DataFrame:
        return self.chunks.totals

    # --- per-trial series ---------------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        return self.totals[name].to_numpy().astype(float, copy=False)

    def quarter_revenue(self) -> np.ndarray:
        """Per trial: revenue counted toward quota = closed to date + won in the horizon."""
        return self.closed_to_date + self.column("revenue")

    def rep_quarter_revenue(self) -> np.ndarray:
        """trials × seats: each seat's closed to date + won in the horizon."""
        closed = np.asarray(self.rep_closed_to_date or [0.0] * len(self.rep_names))
        return self.chunks.rep_revenue + closed

    # --- summaries --------------------------------------------------------------------------
    def revenue_band(self) -> dict:
        """``{mean, std, p10, p50, p90}`` of quarter revenue."""
        return band(self.quarter_revenue())

    def p_quota(self, quota: float | None = None, level: float = 0.9):
        """``(p, lo, hi)``: P(quarter revenue ≥ quota) and its Monte Carlo ``level`` interval
        (Wilson); None without a quota."""
        quota = self.quota if quota is None else quota
        if quota is None:
            return None
        hits = int(np.sum(self.quarter_revenue() >= quota))
        lo, hi = wilson(hits, self.trials, level)
        return hits / self.trials, lo, hi

    def weekly_bands(self, qs=FAN_QUANTILES) -> pl.DataFrame:
        """Quantiles of cumulative quarter revenue at the end of each week (``week`` 1-based;
        ``end``: the week's last day inside the horizon). A week at a time: a copy of the
        whole trials × weeks array would be transient memory as large as the curve itself."""
        weeks = self.chunks.weekly.shape[1]
        means, bands = [], []
        for w in range(weeks):
            curve = self.closed_to_date + self.chunks.weekly[:, w]
            means.append(float(curve.mean()))
            bands.append(np.quantile(curve, qs).tolist())
        cols: dict[str, list] = {"week": list(range(1, weeks + 1))}
        if self.start is not None and self.days is not None:
            cols["end"] = [
                self.start + dt.timedelta(days=min(7 * w + 6, self.days - 1)) for w in range(weeks)
            ]
        cols["mean"] = means
        cols.update({qname(q): [b[i] for b in bands] for i, q in enumerate(qs)})
        return pl.DataFrame(cols)

    def origin_bands(self) -> dict:
        """Won revenue in the horizon from the open pipeline and from new pipeline."""
        return {
            "open_pipeline": _short(self.column("revenue_open")),
            "new_pipeline": _short(self.column("revenue_new")),
        }

    def wins_band(self) -> dict:
        return _short(self.column("wins"))

    def seat_sums(self) -> SeatSums:
        """Per-seat sums over trials (streamed by the runner, else summed here)."""
        if self.seats is not None:
            return self.seats
        sums = SeatSums(self.rep_quotas, self.rep_closed_to_date or [0.0] * len(self.rep_names))
        sums.add(self.chunks.rep_revenue, self.chunks.seat_wins)
        return sums

    @property
    def kept_seats(self) -> bool:
        """Whether revenue per seat and trial was kept (``keep_reps``): what roll-ups need."""
        return self.chunks.rep_revenue.shape[1] == len(self.rep_names)

    def deal_odds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per open deal (the spec's rows, before pruning): the share of trials in which it
        was won by the end of the quarter, and by the end of the horizon."""
        quarter, horizon = self.chunks.deal_wins
        return quarter / self.trials, horizon / self.trials

    def rep_attainment(self, qs=QUANTILES) -> pl.DataFrame:
        """Per seat: quota, closed to date, mean and quantiles of quarter revenue
        (``revenue_p10`` …), quantiles of revenue / quota (``p10`` …; null when the seat has
        no quota), and P(attainment ≥ 100%). Quantiles are null when the run kept no
        per-seat revenue (``keep_reps=False``).

        One seat at a time: a copy of the whole trials × seats array would double the
        memory of a large team's run."""
        sums = self.seat_sums()
        kept = self.chunks.rep_revenue.shape[1] == len(self.rep_names)
        rows = []
        for r, name in enumerate(self.rep_names):
            quota, closed = float(sums.quotas[r]), float(sums.closed[r])
            row = {
                "rep": name,
                "quota": quota,
                "closed_to_date": closed,
                "revenue_mean": closed + float(sums.revenue[r]) / self.trials,
            }
            rev = closed + self.chunks.rep_revenue[:, r] if kept else None
            row.update(
                {
                    f"revenue_{qname(q)}": float(np.quantile(rev, q)) if rev is not None else None
                    for q in qs
                }
            )
            att = attainment(rev, quota) if rev is not None and quota > 0 else None
            for q in qs:
                row[qname(q)] = float(np.quantile(att, q)) if att is not None else None
            row["p_attain"] = float(sums.attained[r]) / self.trials if quota > 0 else None
            rows.append(row)
        schema = {
            "rep": pl.String,
            "quota": pl.Float64,
            "closed_to_date": pl.Float64,
            "revenue_mean": pl.Float64,
            **{f"revenue_{qname(q)}": pl.Float64 for q in qs},
            **{qname(q): pl.Float64 for q in qs},
            "p_attain": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema)

    def histogram(self, bins: int = 40) -> dict:
        """Binned quarter revenue (``edges``, ``counts``): enough to draw the histogram."""
        counts, edges = np.histogram(self.quarter_revenue(), bins=bins)
        return {"edges": edges.tolist(), "counts": counts.tolist()}

    def summary(self, quota: float | None = None) -> dict:
        """The forecast's JSON contract (docs: ``salesim forecast --json``)."""
        quota = self.quota if quota is None else quota
        pq = self.p_quota(quota)
        weekly = self.weekly_bands()
        return {
            "trials": self.trials,
            "seed": self.seed,
            "engine": self.engine,
            "quota": quota,
            "revenue": self.revenue_band(),
            "p_quota": pq[0] if pq else None,
            "p_quota_interval": [pq[1], pq[2]] if pq else None,
            "weekly": weekly.to_dicts(),
            "by_origin": self.origin_bands(),
            "wins": self.wins_band(),
        }


def _short(values) -> dict:
    """``{mean, p10, p50, p90}``."""
    b = band(values)
    return {k: b[k] for k in ("mean", "p10", "p50", "p90")}
