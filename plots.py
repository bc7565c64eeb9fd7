"""Every chart salesim draws, and the only module that imports matplotlib.

matplotlib is imported inside each function, so importing salesim never pays matplotlib's
import time. Functions take plain numbers and return a ``matplotlib.figure.Figure`` built
directly, never through pyplot: no backend is chosen (a notebook keeps its own) and no global
figure state is touched. ``png(fig)`` encodes one for a file (``cli.write_output``) or an
HTML report.

Money on axes is written by ``money_ticks`` (as many digits as the tick spacing needs:
1.25M, not 1.2M) with the ``Currency`` the user named; every text is drawn literally (no
``$…$`` mathtext), so a rep, lever or currency containing ``$`` prints as written.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
from typing import TYPE_CHECKING, Mapping, Sequence

from salesim.simulator.errors import InputError
from salesim.simulator.units import as_date

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PALETTE = {
    "plan": "#4C78A8",
    "actual": "#222222",
    "forecast": "#F58518",
    "quota": "#B279A2",
    "good": "#54A24B",
    "bad": "#E45756",
    "muted": "#9D9D9D",
}


# --- money on charts ----------------------------------------------------------------------------
_UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "k"))
_ISO_CODE = re.compile(r"[A-Za-z]{3}")


def money_label(x: float, symbol: str = "", *, tol: float | None = None) -> str:
    """``1.25M``, ``500k``, ``2.5k``, ``0``: the fewest decimals (up to 3) that write ``x``
    to within ``tol`` (default: a thousandth of ``x``), with ``symbol`` in front."""
    a = abs(x)
    scale, unit = next(((s, u) for s, u in _UNITS if a >= s), (1.0, ""))
    tol = 1e-3 * a if tol is None else tol
    digits = next((d for d in range(3) if abs(round(a / scale, d) * scale - a) <= tol), 3)
    text = f"{a / scale:.{digits}f}"
    return ("-" if x < 0 and float(text) else "") + symbol + text + unit


def money_ticks(values: Sequence[float], symbol: str = "") -> list[str]:
    """Labels for axis ticks: exact to a thousandth of the spacing between ticks."""
    v = sorted(float(x) for x in values)
    gaps = [b - a for a, b in zip(v, v[1:]) if b > a]
    step = min(gaps) if gaps else max((abs(x) for x in v), default=0.0)
    return [money_label(float(x), symbol, tol=1e-3 * step) for x in values]


@dataclasses.dataclass(frozen=True)
class Currency:
    """How charts write money. A symbol (``$``, ``€``, ``R$``) goes before every amount; an
    ISO code (``USD``, ``EUR``) names the axes and follows amounts in titles; none (the
    default) leaves amounts bare, because a CRM export does not say what currency it is in
    and salesim never guesses."""

    text: str = ""

    def __post_init__(self):
        t = self.text.strip()
        if t and (len(t) > 4 or any(c.isdigit() or c.isspace() for c in t)):
            raise InputError(
                f"not a currency: {self.text!r}",
                column="--currency",
                expected="a symbol such as $ or € or an ISO code such as USD",
            )
        object.__setattr__(self, "text", t.upper() if _ISO_CODE.fullmatch(t) else t)

    @property
    def is_code(self) -> bool:
        return bool(_ISO_CODE.fullmatch(self.text))

    @property
    def symbol(self) -> str:
        return "" if self.is_code else self.text

    def axis(self, what: str) -> str:
        """An axis label: ``quarter revenue (USD)``."""
        return f"{what} ({self.text})" if self.text else what

    def amount(self, x: float) -> str:
        """An amount in a title: ``$12M``, ``12M EUR``."""
        return money_label(x, self.symbol) + (f" {self.text}" if self.is_code else "")


NO_CURRENCY = Currency()


def _literal_text(draw):
    """Draw with mathtext off: user strings (rep or lever names, ``$`` symbols) print as
    written instead of being parsed as ``$…$`` TeX."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure of its own (not pyplot's): ``Figure.savefig`` renders it with the Agg canvas
    whatever backend the caller's session uses."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def png(fig: Figure) -> bytes:
    """A chart's PNG bytes, as every salesim chart file is written."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _money_axis(ax, currency: Currency, axis: str = "y", label: str | None = None) -> None:
    """Money ticks (``money_ticks``) on one axis, and its label with the currency."""
    from matplotlib.ticker import Formatter

    class MoneyFormatter(Formatter):
        def format_ticks(self, values):
            return money_ticks(values, currency.symbol)

        def __call__(self, x, pos=None):
            locs = list(getattr(self, "locs", []) or [])
            return (
                money_ticks(locs + [x], currency.symbol)[-1]
                if locs
                else money_label(x, currency.symbol)
            )

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(MoneyFormatter())
    if label is not None:
        target.set_label_text(currency.axis(label))


@_literal_text
def trajectory(
    weeks: Sequence,
    plan: Mapping[str, Sequence[float]],
    actual: Sequence[float],
    *,
    actual_weeks: Sequence | None = None,
    quota: float | None = None,
    as_of=None,
    forecast_weeks: Sequence = (),
    forecast: Mapping[str, Sequence[float]] | None = None,
    currency: Currency = NO_CURRENCY,
    title: str = "Cumulative won revenue",
) -> Figure:
    """The plan's simulated paths (quantile bands by week) against the actual path so far.

    ``plan`` maps labels such as ``"P20"``, ``"P50"``, ``"P80"`` to one value per week end in
    ``weeks``; the outermost pair is shaded, ``P50`` drawn solid, the rest dashed.
    ``actual`` covers the elapsed weeks only, at ``actual_weeks`` (default: the first week
    ends; the last point may be a partial week ending on the as-of date). ``forecast`` (same
    labels) is the simulation restarted at ``as_of``, drawn over ``forecast_weeks``.
    """
    fig = _figure((8, 4.2))
    ax = fig.subplots()
    _bands(ax, weeks, plan, PALETTE["plan"], "plan")
    if forecast:
        _bands(ax, forecast_weeks, forecast, PALETTE["forecast"], "forecast from as-of")
    if len(actual):
        x = list(actual_weeks) if actual_weeks is not None else list(weeks)[: len(actual)]
        ax.plot(
            x,
            actual,
            color=PALETTE["actual"],
            marker="o",
            markersize=3.5,
            linewidth=2,
            label="actual",
        )
    if quota:
        ax.axhline(
            quota,
            color=PALETTE["quota"],
            linestyle=":",
            linewidth=1.5,
            label=f"quota {currency.amount(quota)}",
        )
    if as_of is not None:
        ax.axvline(as_of, color=PALETTE["muted"], linewidth=1)
        ax.annotate(
            "as of",
            (as_of, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color=PALETTE["muted"],
        )
    _money_axis(ax, currency, label="cumulative won revenue")
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4)
    fig.autofmt_xdate()
    return fig


def _bands(ax, x, paths: Mapping[str, Sequence[float]], color: str, name: str) -> None:
    labels = sorted(paths, key=lambda k: float(k.strip("Pp")))
    if len(labels) >= 2:
        lo, hi = labels[0], labels[-1]
        ax.fill_between(
            list(x),
            paths[lo],
            paths[hi],
            color=color,
            alpha=0.15,
            linewidth=0,
            label=f"{name} {lo}–{hi}",
        )
    for k in labels:
        if k.upper() == "P50":
            ax.plot(list(x), paths[k], color=color, linewidth=1.8, label=f"{name} P50")
        elif len(labels) > 2 and k not in (labels[0], labels[-1]):
            ax.plot(
                list(x), paths[k], color=color, linewidth=1, linestyle="--", label=f"{name} {k}"
            )


@_literal_text
def backtest_bands(
    labels: Sequence[str],
    p10: Sequence[float],
    p50: Sequence[float],
    p90: Sequence[float],
    actual: Sequence[float],
    *,
    baselines: Mapping[str, Sequence[float]] | None = None,
    pit_edges: Sequence[float] | None = None,
    pit_counts: Sequence[int] | None = None,
    currency: Currency = NO_CURRENCY,
    title: str = "Backtest: forecast P10–P90 vs actual",
) -> Figure:
    """One fold per x position: the P10–P90 band, the P50, the actual and point baselines;
    beside it, with ``pit_edges`` and ``pit_counts``, the folds' PIT histogram against the
    uniform count that calibrated bands would give."""
    x = list(range(len(labels)))
    width = max(6.0, 0.7 * len(x) + 3)
    if pit_counts is None or pit_edges is None:
        fig = _figure((width, 4.2))
        ax = fig.subplots()
    else:
        fig = _figure((width + 3.5, 4.2))
        (ax, hx) = fig.subplots(1, 2, gridspec_kw={"width_ratios": [width, 3.5]})
        _pit_histogram(hx, pit_edges, pit_counts)
    ax.bar(
        x,
        [hi - lo for lo, hi in zip(p10, p90)],
        bottom=p10,
        width=0.5,
        color=PALETTE["plan"],
        alpha=0.3,
        label="forecast P10–P90",
    )
    ax.plot(
        x, p50, "_", color=PALETTE["plan"], markersize=22, markeredgewidth=2, label="forecast P50"
    )
    inside = [lo <= a <= hi for lo, a, hi in zip(p10, actual, p90)]
    for ok, style in (
        (True, {"color": PALETTE["good"], "label": "actual (inside)"}),
        (False, {"color": PALETTE["bad"], "marker": "X", "s": 60, "label": "actual (outside)"}),
    ):
        pts = [(i, a) for i, a, k in zip(x, actual, inside) if k == ok]
        if pts:
            ax.scatter(*zip(*pts), zorder=3, **style)
    for (name, values), marker in zip((baselines or {}).items(), ("^", "s", "D", "v")):
        ax.scatter(
            x,
            values,
            marker=marker,
            facecolors="none",
            edgecolors=PALETTE["muted"],
            label=name.replace("_", " "),
            zorder=2,
        )
    tilt = len(x) > 6
    ax.set_xticks(x, labels, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_xlabel("cutoff (forecast from the day after to the end of its quarter)", fontsize=8)
    _money_axis(ax, currency, label="won revenue in the window")
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25, axis="y")
    ax.legend(
        fontsize=8,
        frameon=False,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22 if tilt else -0.1),
        ncol=3,
    )
    return fig


def _pit_histogram(ax, edges: Sequence[float], counts: Sequence[int]) -> None:
    from matplotlib.ticker import MaxNLocator

    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    ax.bar(
        list(edges[:-1]),
        list(counts),
        width=widths,
        align="edge",
        color=PALETTE["plan"],
        alpha=0.6,
        edgecolor="white",
    )
    ax.axhline(
        sum(counts) / len(counts),
        color=PALETTE["actual"],
        linestyle="--",
        linewidth=1,
        label="uniform (calibrated)",
    )
    ax.set_xlim(edges[0], edges[-1])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("PIT (above ½: forecast too low)", fontsize=8)
    ax.set_ylabel("folds", fontsize=8)
    ax.set_title("PIT histogram", fontsize=10, loc="left")
    ax.grid(alpha=0.25, axis="y")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16))


@_literal_text
def waterfall(
    steps: Sequence[tuple[str, float]],
    *,
    currency: Currency = NO_CURRENCY,
    title: str = "Pipeline waterfall",
) -> Figure:
    """Floating bars: the first and last steps are levels, the ones between are changes
    (positive adds, negative removes)."""
    fig = _figure((7, 3.8))
    ax = fig.subplots()
    level = 0.0
    for i, (name, value) in enumerate(steps):
        if i == 0 or i == len(steps) - 1:
            ax.bar(i, value, color=PALETTE["plan"])
            top, level = value, value
        else:
            bottom = level if value >= 0 else level + value
            ax.bar(
                i,
                abs(value),
                bottom=bottom,
                color=PALETTE["good"] if value >= 0 else PALETTE["bad"],
            )
            level += value
            top = max(level, level - value)
        ax.annotate(
            money_label(value, currency.symbol),
            (i, top),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(range(len(steps)), [s[0].replace(" ", "\n") for s in steps], fontsize=9)
    ax.margins(y=0.12)  # room for the labels above the tallest bar
    _money_axis(ax, currency, label="open pipeline")
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25, axis="y")
    return fig


@_literal_text
def win_rates(
    labels: Sequence[str],
    rates: Sequence[float],
    errors: Sequence[float],
    *,
    overall: float | None = None,
    title: str = "Win rate (±2 SE)",
) -> Figure:
    """Horizontal bars of win rates with ±2 standard-error whiskers."""
    fig = _figure((7, 0.32 * len(labels) + 1.2))
    ax = fig.subplots()
    y = list(range(len(labels)))[::-1]
    ax.barh(
        y,
        rates,
        xerr=[2 * e for e in errors],
        color=PALETTE["plan"],
        alpha=0.8,
        error_kw={"ecolor": PALETTE["actual"], "capsize": 2, "linewidth": 0.8},
    )
    if overall is not None:
        ax.axvline(overall, color=PALETTE["quota"], linestyle=":", label="overall")
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_yticks(y, labels, fontsize=8)
    top = max([r + 2 * e for r, e in zip(rates, errors)] + [overall or 0.0, 0.05])
    ax.set_xlim(0, min(1.0, 1.15 * top))
    ax.xaxis.set_major_formatter(lambda v, _p: f"{v:.0%}")
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25, axis="x")
    return fig


@_literal_text
def tornado(
    labels: Sequence[str],
    mean: Sequence[float],
    lo: Sequence[float],
    hi: Sequence[float],
    *,
    trials_p10: Sequence[float],
    trials_p90: Sequence[float],
    velocity: Sequence[float | None] | None = None,
    currency: Currency = NO_CURRENCY,
    title: str = "Uplift vs baseline (paired)",
) -> Figure:
    """One row per strategy, largest mean uplift on top. The bar spans P10–P90 of the
    per-trial uplift (``trials_p10``, ``trials_p90``: how far one quarter's gain can land);
    the dot is the mean uplift with its 90% Monte Carlo interval (``lo``, ``hi``: how well
    the trials pin the mean) as a whisker; ``velocity`` (optional) marks the sales-velocity
    equation's prediction."""
    order = sorted(range(len(labels)), key=lambda i: mean[i])
    y = list(range(len(order)))
    fig = _figure((7.5, 0.5 * len(order) + 1.6))
    ax = fig.subplots()
    m = [mean[i] for i in order]
    left = [trials_p10[i] for i in order]
    ax.barh(
        y,
        [trials_p90[i] - trials_p10[i] for i in order],
        left=left,
        height=0.6,
        color=[PALETTE["good"] if v >= 0 else PALETTE["bad"] for v in m],
        alpha=0.35,
        label="one quarter: P10–P90 of the per-trial uplift",
    )
    ax.errorbar(
        m,
        y,
        xerr=[
            [max(0.0, m[k] - lo[i]) for k, i in enumerate(order)],
            [max(0.0, hi[i] - m[k]) for k, i in enumerate(order)],
        ],
        fmt="o",
        color=PALETTE["actual"],
        markersize=4,
        capsize=3,
        linewidth=1,
        label="mean uplift, 90% Monte Carlo interval",
    )
    if velocity is not None:
        pts = [(v, k) for k, i in enumerate(order) if (v := velocity[i]) is not None]
        if pts:
            ax.scatter(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="D",
                s=28,
                zorder=3,
                facecolors="none",
                edgecolors=PALETTE["forecast"],
                label="velocity equation",
            )
    ax.axvline(0, color=PALETTE["muted"], linewidth=1)
    ax.set_yticks(y, [labels[i] for i in order], fontsize=8)
    _money_axis(ax, currency, "x", label="quarter revenue uplift vs baseline")
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25, axis="x")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    return fig


@_literal_text
def capacity_curve(
    x: Sequence[float],
    p_target: Sequence[float],
    *,
    confidence: float,
    lo: Sequence[float] | None = None,
    hi: Sequence[float] | None = None,
    answer: float | None = None,
    xlabel: str = "reps on the team",
    title: str = "P(revenue ≥ target)",
) -> Figure:
    """P(target) at each evaluated point (with its Monte Carlo interval), the confidence
    line and the answer."""
    fig = _figure((7, 4))
    ax = fig.subplots()
    if lo is not None and hi is not None:
        # max(0, ·): Wilson bounds can sit a rounding error inside p at 0 and 1
        ax.errorbar(
            x,
            p_target,
            yerr=[
                [max(0.0, p - a) for p, a in zip(p_target, lo)],
                [max(0.0, b - p) for p, b in zip(p_target, hi)],
            ],
            fmt="o-",
            color=PALETTE["plan"],
            capsize=3,
            linewidth=1.5,
            markersize=4,
            label="P(target), 90% MC interval",
        )
    else:
        ax.plot(x, p_target, "o-", color=PALETTE["plan"], label="P(target)")
    ax.axhline(
        confidence, color=PALETTE["quota"], linestyle=":", label=f"confidence {confidence:.0%}"
    )
    if answer is not None:
        ax.axvline(
            answer,
            color=PALETTE["good"],
            linestyle="--",
            linewidth=1.2,
            label=f"answer: {answer:g}",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(lambda v, _p: f"{v:.0%}")
    ax.set_ylabel("P(revenue ≥ target)")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig


# --- forecast: fan chart and revenue histogram ---------------------------------------------
def _draw_fan(
    ax,
    weeks: Sequence,
    bands: Mapping[str, Sequence[float]],
    *,
    quota: float | None,
    start_value: float,
    currency: Currency,
) -> None:
    x = [0] + list(weeks)

    def path(k):
        return [start_value] + list(bands[k])

    color = PALETTE["forecast"]
    ax.fill_between(
        x, path("p10"), path("p90"), color=color, alpha=0.18, linewidth=0, label="P10–P90"
    )
    ax.fill_between(
        x, path("p25"), path("p75"), color=color, alpha=0.35, linewidth=0, label="P25–P75"
    )
    ax.plot(x, path("p50"), color=color, linewidth=2, label="median")
    if quota:
        ax.axhline(
            quota,
            color=PALETTE["quota"],
            linestyle=":",
            linewidth=1.5,
            label=f"quota {currency.amount(quota)}",
        )
    ax.set_xlim(0, x[-1])
    ax.set_xlabel("week of the horizon")
    _money_axis(ax, currency, label="cumulative quarter revenue")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", frameon=False)


def _draw_histogram(
    ax,
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    quota: float | None,
    p_quota: float | None,
    currency: Currency,
) -> None:
    lefts, widths = list(edges[:-1]), [b - a for a, b in zip(edges[:-1], edges[1:])]
    colors = [
        PALETTE["good"] if quota is not None and a >= quota else PALETTE["plan"] for a in lefts
    ]
    ax.bar(lefts, counts, width=widths, align="edge", color=colors, alpha=0.8, linewidth=0)
    if quota is not None:
        label = f"quota {currency.amount(quota)}" + (
            f": P(revenue ≥ quota) = {p_quota:.0%}" if p_quota is not None else ""
        )
        ax.axvline(quota, color=PALETTE["quota"], linestyle=":", linewidth=1.5, label=label)
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    _money_axis(ax, currency, "x", label="quarter revenue")
    ax.set_ylabel("trials")
    ax.grid(alpha=0.25, axis="y")


@_literal_text
def fan_chart(
    weeks: Sequence,
    bands: Mapping[str, Sequence[float]],
    *,
    quota: float | None = None,
    start_value: float = 0.0,
    currency: Currency = NO_CURRENCY,
    title: str = "Cumulative won revenue",
) -> Figure:
    """Cumulative revenue by week: P10–P90 and P25–P75 bands, the median and the quota.

    ``bands`` maps ``p10``, ``p25``, ``p50``, ``p75``, ``p90`` to one value per week end in
    ``weeks``; the curve starts at ``start_value`` (revenue closed to date) at week 0.
    """
    fig = _figure((7, 4.2))
    ax = fig.subplots()
    _draw_fan(ax, weeks, bands, quota=quota, start_value=start_value, currency=currency)
    ax.set_title(title, fontsize=11, loc="left")
    return fig


@_literal_text
def revenue_histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    quota: float | None = None,
    p_quota: float | None = None,
    currency: Currency = NO_CURRENCY,
    title: str = "Quarter revenue across trials",
) -> Figure:
    """Histogram of quarter revenue (pre-binned: ``edges``, ``counts``) with the quota and
    P(revenue ≥ quota) marked; bins at or above the quota are shaded green."""
    fig = _figure((6, 4.2))
    ax = fig.subplots()
    _draw_histogram(ax, edges, counts, quota=quota, p_quota=p_quota, currency=currency)
    ax.set_title(title, fontsize=11, loc="left")
    return fig


@_literal_text
def forecast_chart(
    weeks: Sequence,
    bands: Mapping[str, Sequence[float]],
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    quota: float | None = None,
    p_quota: float | None = None,
    start_value: float = 0.0,
    currency: Currency = NO_CURRENCY,
    title: str | None = None,
) -> Figure:
    """``salesim forecast --plot``: the fan chart and the histogram side by side."""
    fig = _figure((13, 4.4))
    (left, right) = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    _draw_fan(left, weeks, bands, quota=quota, start_value=start_value, currency=currency)
    left.set_title("Cumulative won revenue by week", fontsize=11, loc="left")
    _draw_histogram(right, edges, counts, quota=quota, p_quota=p_quota, currency=currency)
    right.set_title("Quarter revenue across trials", fontsize=11, loc="left")
    if title:
        fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    return fig


# --- a result's chart (the results' plot(); the CLI's --plot) ---------------------------------
def chart_title(
    start,
    what: str,
    currency,
    *,
    quota: float | None = None,
    quota_name: str = "quota",
    p_quota: float | None = None,
    p_name: str | None = None,
) -> str:
    """``Q4 2026 forecast · quota $12M · P(revenue ≥ quota) 64%``: the quarter, the number
    and how likely it is, as a board slide names them."""
    from salesim.simulator.calendar import quarter_label

    title = f"{quarter_label(as_date(str(start), what='date', column='start'))} {what}"
    if quota:
        title += f" · {quota_name} {currency.amount(quota)}"
        if p_quota is not None:
            title += f" · {p_name or f'P(revenue ≥ {quota_name})'} {p_quota:.0%}"
    return title


def forecast_figure(fc: Mapping, currency: Currency | None = None) -> Figure:
    """Fan chart of cumulative revenue beside the histogram of quarter revenue."""
    currency = currency or NO_CURRENCY
    weekly = fc["weekly"]
    title = chart_title(fc["start"], "forecast", currency, quota=fc["quota"], p_quota=fc["p_quota"])
    return forecast_chart(
        [w["week"] for w in weekly],
        {k: [w[k] for w in weekly] for k in ("p10", "p25", "p50", "p75", "p90")},
        fc["histogram"]["edges"],
        fc["histogram"]["counts"],
        quota=fc["quota"],
        p_quota=fc["p_quota"],
        start_value=fc["closed_to_date"],
        currency=currency,
        title=f"{title} · bands P10–P90 and P25–P75 of {fc['trials']:,} trials, "
        f"{fc['start']} to {fc['end']}",
    )


def compare_figure(out: Mapping, currency: Currency | None = None) -> Figure:
    """Tornado chart: per-trial uplift P10–P90, the mean with its Monte Carlo interval and
    the velocity equation's guess."""
    currency = currency or NO_CURRENCY
    s = out["strategies"]
    title = chart_title(
        out["start"],
        "uplift vs baseline",
        currency,
        quota=out["quota"],
        p_quota=out["baseline"]["p_quota"],
        p_name="baseline P(revenue ≥ quota)",
    )
    return tornado(
        [x["name"] for x in s],
        [x["uplift"]["mean"] for x in s],
        [x["uplift"]["lo"] for x in s],
        [x["uplift"]["hi"] for x in s],
        trials_p10=[x["uplift_trials"]["p10"] for x in s],
        trials_p90=[x["uplift_trials"]["p90"] for x in s],
        velocity=[x["velocity"]["uplift"] for x in s],
        currency=currency,
        title=f"{title} · {out['trials']:,} paired trials",
    )


def capacity_figure(out: Mapping, start, currency: Currency | None = None) -> Figure:
    """The capacity solver's P(target) curve with its Monte Carlo band and the answer;
    ``start`` is the horizon's first day (the quarter in the title)."""
    currency = currency or NO_CURRENCY
    curve, confidence = out["curve"], out["confidence"]
    if out["solve"] == "headcount":
        x, answer, xlabel = ([p["headcount"] for p in curve], out["headcount"], "reps on the team")
        what = "team needed"
    else:
        x, answer, xlabel = (
            [p["coverage"] for p in curve],
            out["coverage"],
            "open pipeline at the start / target",
        )
        what = "pipeline coverage needed"
    return capacity_curve(
        x,
        [p["p_target"] for p in curve],
        lo=[p["lo"] for p in curve],
        hi=[p["hi"] for p in curve],
        confidence=confidence,
        answer=answer,
        xlabel=xlabel,
        title=chart_title(start, what, currency, quota=out["target"], quota_name="target")
        + f" at {confidence:.0%} confidence",
    )


@_literal_text
def deal_bars(
    labels: Sequence[str],
    amounts: Sequence[float],
    expected: Sequence[float],
    *,
    currency: Currency | None = None,
    title: str = "",
) -> Figure:
    """Per deal, its amount behind its expected value in the quarter (horizontal bars)."""
    currency = currency or NO_CURRENCY
    fig = _figure((7, 0.32 * len(labels) + 1.2))
    ax = fig.subplots()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, amounts, color=PALETTE["plan"], alpha=0.35, label="amount")
    ax.barh(y, expected, color=PALETTE["plan"], label="amount × P(win this quarter)")
    ax.set_yticks(y, labels, fontsize=8)
    _money_axis(ax, currency, axis="x", label="amount")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.25, axis="x")
    return fig


def deals_figure(view: Mapping, currency: Currency | None = None, top: int = 25) -> Figure:
    """The ``top`` open deals that move the quarter most (``salesim deals``)."""
    deals = list(view["deals"])[:top]
    return deal_bars(
        [f"{d['opportunity_id']} ({d['owner']})" for d in deals],
        [d["amount"] for d in deals],
        [d["expected_in_quarter"] for d in deals],
        currency=currency,
        title=f"Open deals by expected value in the quarter ending {view['quarter_end']}",
    )


def backtest_figure(r, currency: Currency | None = None) -> Figure:
    """Each fold's P10–P90 band and P50 against the actual and the two baselines, beside
    the PIT histogram (``r``: a ``scenarios.backtest.BacktestResult``)."""
    import math

    f, hist = r.folds, r.pit_histogram
    return backtest_bands(
        [str(x.cutoff) for x in f],
        [x.p10 for x in f],
        [x.p50 for x in f],
        [x.p90 for x in f],
        [x.actual for x in f],
        baselines={
            "stage-weighted pipeline": [x.stage_weighted for x in f],
            "last quarter": [math.nan if x.last_quarter is None else x.last_quarter for x in f],
        },
        pit_edges=hist["edges"],
        pit_counts=hist["counts"],
        currency=currency or NO_CURRENCY,
        title=f"Backtest {f[0].start} to {f[-1].end}: actual inside the forecast's "
        f"P10–P90 in {r.coverage_p10_p90:.0%} of {len(f)} folds (nominal 80%)",
    )


def movement_figure(doc: Mapping, currency: Currency | None = None) -> Figure:
    """The quarter's pipeline waterfall between two snapshots (``salesim movement``)."""
    labels = {"pulled_in": "pulled in", "pushed_out": "pushed out", "amount_changed": "amount"}
    steps = [
        (labels.get(row["step"], row["step"]), (row["sign"] or 1) * row["amount"])
        for row in doc["waterfall"]
    ]
    q = doc["quarter"]
    return waterfall(
        steps,
        currency=currency or NO_CURRENCY,
        title=f"Pipeline of the quarter to {q['end']}\nfrom {doc['from']} to {doc['to']}",
    )
