"""The weekly execution dashboard: a stoplight on activities → pipeline → forecast, for the
team and each rep, with pipeline health and coaching pointers.

Colours come from the plan's own simulated trajectories, not from fixed percentages: the
plan (a scenario) is replayed from the first day of the quarter, and an actual figure on the
as-of date is **green** at or above the plan's P50 for that day, **yellow** from its P20 up
to the P50, **red** below the P20 (docs/dashboard.md). The forecast line restarts the
simulation at the as-of date from the pipeline as it stands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
import polars as pl

from salesim.calibrate.health import (
    PipelineHealth,
    pipeline_health,
    quarter_end,
    quarter_start,
    week_ends,
)
from salesim.calibrate.history import History
from salesim.results import Tabular
from salesim.simulator.calendar import quarter_label
from salesim.simulator.errors import InputError
from salesim.simulator.results import SimResult
from salesim.simulator.spec import SimSpec
from salesim.simulator.units import money

from .rollups import parse_levels, rollup

if TYPE_CHECKING:
    from salesim.tables import Table

YELLOW_AT, GREEN_AT = 0.2, 0.5  # plan quantiles: red below P20, yellow P20–P50, green ≥ P50
STATUS_ORDER = ("green", "yellow", "red")
TRAJECTORY_QUANTILES = (0.1, 0.2, 0.5, 0.8, 0.9)
DEFAULT_TRIALS = 1000


# --- one figure against the plan ---------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    """An actual figure against the plan's simulated distribution of that figure.

    ``percentile``: the share of plan trajectories below the actual (ties count half).
    """

    name: str
    unit: str  # count | money | ratio
    actual: float | None
    plan_p20: float | None
    plan_p50: float | None
    percentile: float | None
    status: str  # green | yellow | red | n/a

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def measure(name: str, unit: str, actual: float | None, plan_samples) -> Measure:
    """Classify ``actual`` against the plan's samples (docs/dashboard.md)."""
    x = np.asarray(plan_samples, dtype=float)
    x = x[~np.isnan(x)]
    if actual is None or x.size == 0 or (isinstance(actual, float) and math.isnan(actual)):
        return Measure(name, unit, actual, None, None, None, "n/a")
    p20, p50 = (float(v) for v in np.quantile(x, [YELLOW_AT, GREEN_AT], method="inverted_cdf"))
    pct = float((np.sum(x < actual) + 0.5 * np.sum(x == actual)) / x.size)
    status = "green" if actual >= p50 else "yellow" if actual >= p20 else "red"
    return Measure(name, unit, float(actual), p20, p50, pct, status)


def worst(statuses) -> str:
    known = [s for s in statuses if s in STATUS_ORDER]
    return max(known, key=STATUS_ORDER.index) if known else "n/a"


@dataclass(frozen=True)
class Line:
    """One link of the chain; its colour is the worst of its measures."""

    name: str  # activities | pipeline | forecast
    measures: tuple[Measure, ...]
    detail: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return worst(m.status for m in self.measures)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "measures": [m.to_dict() for m in self.measures],
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Stoplight:
    who: str  # "team" or the rep's name
    quota: float | None
    lines: tuple[Line, Line, Line]
    pointers: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        return worst(line.status for line in self.lines)

    def line(self, name: str) -> Line:
        return next(x for x in self.lines if x.name == name)

    def to_dict(self) -> dict:
        return {
            "who": self.who,
            "quota": self.quota,
            "status": self.status,
            "lines": {x.name: x.to_dict() for x in self.lines},
            "pointers": list(self.pointers),
        }


@dataclass(frozen=True)
class Dashboard(Tabular):
    as_of: dt.date
    quarter_start: dt.date
    quarter_end: dt.date
    quota: float | None
    team: Stoplight
    reps: tuple[Stoplight, ...]
    health: PipelineHealth
    trajectory: dict  # weeks, plan bands, actual, forecast bands (for plots)
    forecast: dict  # P(quota) and revenue bands, now and in the plan
    trials: int
    seed: int
    engine: str
    plan: str  # the scenario file (and strategy) the plan comes from
    notes: tuple[str, ...] = ()
    by: tuple[dict, ...] = ()  # roll-ups of the forecast (scenarios/rollups.py)

    @property
    def week(self) -> int:
        return (self.as_of - self.quarter_start).days // 7 + 1

    @property
    def weeks(self) -> int:
        return math.ceil(((self.quarter_end - self.quarter_start).days + 1) / 7)

    def output_tables(self) -> dict[str, Table]:
        """The tables ``--out`` writes (tables.py): each a polars frame with its money and
        fraction columns named."""
        from salesim import report, tables

        return tables.dashboard_tables(report.json_safe(self.to_dict()))

    def to_text(self) -> str:
        """The terminal rendering (report.py): of the document as it is, since the text
        says "made" for an infinite coverage that JSON writes as null."""
        from salesim import report

        return report.dashboard_text(self.to_dict())

    @property
    def quarter(self) -> str:
        """The quarter's label, e.g. 2026-Q4 (charts and the HTML report name it)."""
        return quarter_label(self.quarter_start)

    def plot(self, currency=None):
        """A matplotlib Figure: the plan's paths against the actual so far (the trajectory)."""
        return self.figures(only=("trajectory",), currency=currency)["trajectory"]

    def figures(self, only=None, currency=None) -> dict:
        """The report's charts as matplotlib Figures: trajectory, waterfall and win_rates
        (``only``: just these names), money in ``currency`` (a ``plots.Currency``; default
        none)."""
        from salesim import plots

        currency = currency or plots.NO_CURRENCY

        def trajectory():
            t = self.trajectory
            fc = {k.upper(): v for k, v in t["forecast"].items() if k in ("p10", "p50", "p90")}
            plan = {k.upper(): v for k, v in t["plan"].items()}
            band = sorted(plan, key=lambda k: float(k.strip("P")))
            title = f"{self.quarter}: cumulative won revenue, plan {band[0]}–{band[-1]} vs actual"
            if self.quota:
                title += f" · quota {currency.amount(self.quota)}"
                if self.forecast.get("p_quota") is not None:
                    title += f" · P(revenue ≥ quota) now {self.forecast['p_quota']:.0%}"
            return plots.trajectory(
                t["weeks"],
                plan,
                t["actual"],
                actual_weeks=t["actual_weeks"],
                quota=self.quota,
                as_of=self.as_of,
                forecast_weeks=t["forecast_weeks"],
                forecast=fc or None,
                currency=currency,
                title=title,
            )

        def waterfall():
            a = self.health.waterfall.amount
            return plots.waterfall(
                [
                    ("Start", a["start"]),
                    ("Created", a["created"]),
                    ("Won", -a["won"]),
                    ("Lost", -a["lost"]),
                    ("End", a["end"]),
                ],
                currency=currency,
                title=f"{self.quarter} pipeline waterfall {self.quarter_start} – {self.as_of}",
            )

        def win_rates():
            z = self.health.strike_zone
            if z.height == 0:
                return None
            labels = [f"{r['dimension'].replace('_', ' ')}: {r['value']}" for r in z.to_dicts()]
            return plots.win_rates(
                labels,
                z["win_rate"].to_list(),
                z["win_rate_se"].to_list(),
                overall=self.health.velocity.win_rate,
                title="Win rate by segment, source and size (±2 SE)",
            )

        builders = {"trajectory": trajectory, "waterfall": waterfall, "win_rates": win_rates}
        out = {name: build() for name, build in builders.items() if only is None or name in only}
        return {k: v for k, v in out.items() if v is not None}

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "quarter_start": self.quarter_start,
            "quarter_end": self.quarter_end,
            "week": self.week,
            "weeks": self.weeks,
            "quota": self.quota,
            "plan": self.plan,
            "thresholds": {
                "green": f"≥ plan P{round(GREEN_AT * 100)}",
                "yellow": f"plan P{round(YELLOW_AT * 100)} to P{round(GREEN_AT * 100)}",
                "red": f"< plan P{round(YELLOW_AT * 100)}",
            },
            "team": self.team.to_dict(),
            "reps": [r.to_dict() for r in self.reps],
            "forecast": self.forecast,
            "trajectory": self.trajectory,
            "health": self.health.to_dict(),
            "trials": self.trials,
            "seed": self.seed,
            "engine": self.engine,
            "by": [dict(r) for r in self.by],
            "notes": list(self.notes),
        }


# --- specs -------------------------------------------------------------------------------------
def _scenario_spec(scenario, as_of: dt.date, start: dt.date, days: int) -> SimSpec:
    """The scenario's team, hires and settings on a horizon of our choosing (no history:
    the open pipeline and revenue to date are added by the caller)."""
    from salesim.scenarios.scenario import apply_strategy, scenario_spec

    sc, strategy = scenario
    spec = scenario_spec(
        dataclasses.replace(sc, history_path=None, as_of=as_of, start=start, days=days)
    )
    spec = dataclasses.replace(
        spec, notes=tuple(n for n in spec.notes if not n.startswith("no history"))
    )
    return apply_strategy(spec, strategy) if strategy is not None else spec


def plan_spec(scenario, history: History, qs: dt.date, qe: dt.date) -> SimSpec:
    """The plan replayed over the whole quarter from the pipeline open on its first day."""
    from salesim.scenarios.baseline import open_deals_at

    before = qs - dt.timedelta(days=1)
    spec = _scenario_spec(scenario, before, qs, (qe - qs).days + 1)
    deals, _ = open_deals_at(history, before, spec.model.stage_names, start=qs, model=spec.model)
    return dataclasses.replace(spec, open_deals=deals)


def forecast_spec(
    scenario, history: History, as_of: dt.date, qe: dt.date
) -> tuple[SimSpec, list[str]]:
    """The rest of the quarter from the as-of date: pipeline as it stands, revenue to date."""
    from salesim.scenarios.baseline import closed_to_date, open_deals_at

    start = as_of + dt.timedelta(days=1)
    spec = _scenario_spec(scenario, as_of, start, (qe - as_of).days)
    notes = []
    left = _left_by(history, as_of)
    gone = [r.name for r in spec.reps if r.name in left]
    if gone and len(gone) < len(spec.reps):
        notes.append(
            f"forecast: {', '.join(gone)} left before the as-of date; their open deals "
            "are reassigned"
        )
        spec = dataclasses.replace(spec, reps=tuple(r for r in spec.reps if r.name not in left))
    closed, by_owner = closed_to_date(history.as_of(as_of), as_of, start)
    reps = tuple(
        dataclasses.replace(r, closed_to_date=by_owner.get(r.name, 0.0)) for r in spec.reps
    )
    deals, more = open_deals_at(
        history, as_of, spec.model.stage_names, start=start, model=spec.model
    )
    return (
        dataclasses.replace(spec, reps=reps, open_deals=deals, closed_to_date=closed),
        notes + [f"forecast: {n}" for n in more],
    )


def _left_by(history: History, as_of: dt.date) -> set[str]:
    reps = history.reps
    if reps is None or reps.height == 0:
        return set()
    return set(reps.filter(pl.col("left").is_not_null() & (pl.col("left") <= as_of))["owner"])


def seat_spec(plan: SimSpec, seat: int, days: int) -> SimSpec:
    """One seat of the plan alone over ``days``: its own open deals, and its share of the
    team's marketing arrivals (uniform over the seats active on day 0). The rep has CRM
    activity this quarter, so the run conditions on them staying: no attrition."""
    rep = plan.reps[seat]
    active = max(1, sum(1 for r in plan.reps if r.start_day <= 0))
    levers = dataclasses.replace(
        plan.levers, marketing_pipeline=plan.levers.marketing_pipeline / active
    )
    deals = plan.open_deals.filter(pl.col("owner") == rep.name)
    return dataclasses.replace(
        plan,
        reps=(dataclasses.replace(rep, closed_to_date=0.0),),
        open_deals=deals,
        days=days,
        levers=levers,
        quota=rep.quota or None,
        closed_to_date=0.0,
        attrition=False,
        backfill=False,
    )


# --- the dashboard -----------------------------------------------------------------------------
def load_plan(path, strategy: str | None = None):
    """``(scenario, strategy or None)`` from a scenario file (scenarios.scenario)."""
    from salesim.scenarios.scenario import is_scenario_file, load_scenario

    if not is_scenario_file(path):
        raise InputError(
            "not a scenario file",
            file=str(path),
            column="--plan",
            expected="a scenario TOML that names its model (docs/scenarios.md)",
        )
    sc = load_scenario(path)
    if strategy is None:
        return sc, None
    for s in sc.strategies:
        if s.name == strategy:
            return sc, s
    raise InputError(
        f"no strategy {strategy!r} in the scenario",
        file=str(path),
        column="--strategy",
        expected="one of "
        + (", ".join(s.name for s in sc.strategies) or "(the scenario has none)"),
    )


@dataclass(frozen=True)
class DashboardInputs:
    """Everything a dashboard simulates, built before any run (``prepare``)."""

    as_of: dt.date
    quarter_start: dt.date
    quarter_end: dt.date
    plan: SimSpec  # the plan over the whole quarter
    forecast: SimSpec | None  # from the as-of date (None on the quarter's last day)
    health: PipelineHealth
    seats: tuple[int, ...]  # plan seats that have a CRM owner this quarter
    label: str
    notes: tuple[str, ...] = ()
    teams: pl.DataFrame | None = None  # History.teams: the roll-ups' groups

    @property
    def runs(self) -> int:
        """Simulation runs: plan, plan to date, forecast and one per seat (progress bars)."""
        return 2 + (self.forecast is not None) + len(self.seats)


def prepare(history: History, plan, as_of: dt.date) -> DashboardInputs:
    """The plan's specs and the pipeline health on ``as_of``; ``plan`` is ``load_plan(...)``."""
    sc, strategy = plan
    qs, qe = quarter_start(as_of), quarter_end(as_of)
    if quarter_start(sc.start) != qs:
        raise InputError(
            f"the plan is for the quarter starting {quarter_start(sc.start)}, but "
            f"{as_of} is in the quarter starting {qs}",
            file=sc.file,
            column="quarter",
            expected="a plan for the as-of date's quarter",
        )
    plan_full = plan_spec(plan, history, qs, qe)
    quota = plan_full.team_quota or None
    rep_quotas = {r.name: r.quota for r in plan_full.reps if r.quota}
    health = pipeline_health(history, as_of, quota=quota, rep_quotas=rep_quotas)
    notes = list(plan_full.notes)
    fspec = None
    if as_of < qe:
        fspec, more = forecast_spec(plan, history, as_of, qe)
        notes += more
    owners = set(health.reps["owner"].to_list())
    seats = tuple(i for i, r in enumerate(plan_full.reps) if r.name in owners)
    missing = [r.name for r in plan_full.reps if r.name not in owners]
    if missing:
        notes.append(
            f"no stoplight for {len(missing)} plan seat(s) with no CRM activity this "
            f"quarter ({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}): "
            "name reps in the scenario as the CRM names its owners"
        )
    label = sc.file + (f" (strategy {strategy.name})" if strategy else "")
    return DashboardInputs(
        as_of, qs, qe, plan_full, fspec, health, seats, label, tuple(notes), history.teams
    )


def build_dashboard(history: History, plan, as_of: dt.date, **kw) -> Dashboard:
    """``run_dashboard(prepare(history, plan, as_of), **kw)``."""
    return run_dashboard(prepare(history, plan, as_of), **kw)


def run_dashboard(
    inputs: DashboardInputs,
    *,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    engine: str | None = None,
    workers: int | None = 1,
    progress: Callable[[int], None] | None = None,
    by: Iterable[str] | str | None = None,
) -> Dashboard:
    """Stoplights, pipeline health and pointers.

    Runs, all with ``seed``: the plan over the quarter (trajectories, quarter-end outcome),
    the plan up to the as-of date (team figures to date), each seat of the plan alone up to
    the as-of date (rep figures), and the forecast from the as-of date. ``progress(n)`` gets
    finished trials (``trials × inputs.runs`` in all). ``by``: roll-up levels of the
    forecast, as ``salesim forecast --by`` makes them.
    """
    from salesim.simulator.runner import default_engine

    if trials < 2:
        raise InputError(f"need at least 2 trials, got {trials}", column="--trials")
    levels = parse_levels(by)
    engine = engine or default_engine()
    run = _runner(trials, seed, engine, workers, progress)
    i = inputs
    health, plan_full, as_of = i.health, i.plan, i.as_of
    quota = plan_full.team_quota or None
    elapsed = (as_of - i.quarter_start).days + 1

    full = run(plan_full)
    to_date = run(dataclasses.replace(plan_full, days=elapsed))
    now = run(i.forecast) if i.forecast is not None else None
    team = _team_stoplight(health, quota, full, to_date, now)
    rep_rows = {r["owner"]: r for r in health.reps.to_dicts()}
    reps = []
    for seat in i.seats:
        rep = plan_full.reps[seat]
        alone = run(seat_spec(plan_full, seat, elapsed))
        reps.append(_rep_stoplight(rep, seat, rep_rows[rep.name], full, alone, now, i.forecast))
    ctx = _Context(health, plan_full)
    team = dataclasses.replace(team, pointers=tuple(pointers(team, ctx, health_row=None)))
    reps = [dataclasses.replace(r, pointers=tuple(pointers(r, ctx, rep_rows[r.who]))) for r in reps]
    notes = list(dict.fromkeys(list(i.notes) + list(health.notes)))
    if levels and now is None:
        notes.append("no roll-up: the quarter ends on the as-of date, nothing is left to forecast")
    return Dashboard(
        as_of=as_of,
        quarter_start=i.quarter_start,
        quarter_end=i.quarter_end,
        quota=quota,
        team=team,
        reps=tuple(reps),
        health=health,
        trajectory=_trajectory(health, full, now, as_of),
        forecast=_forecast(quota, full, now, health),
        trials=trials,
        seed=seed,
        engine=engine,
        plan=i.label,
        notes=tuple(notes),
        by=tuple(rollup(now, levels, i.teams)) if now is not None else (),
    )


def _runner(trials, seed, engine, workers, progress):
    from salesim.simulator.runner import run

    def go(spec: SimSpec) -> SimResult:
        return run(spec, trials, seed, engine=engine, workers=workers, progress=progress)

    return go


# --- lines -------------------------------------------------------------------------------------
def to_go_coverage(pipeline, quota, won):
    """Open pipeline ÷ quota still to go; a made quota counts as infinite coverage."""
    to_go = np.maximum(np.asarray(quota, dtype=float) - np.asarray(won, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(to_go > 0, np.asarray(pipeline, dtype=float) / to_go, np.inf)


def _coverage_measure(won: float, pipeline: float, quota: float, t) -> tuple[Measure, dict]:
    """Coverage is coloured on (won + open pipeline) ÷ quota, which only grows with more won
    or more pipeline. To-go coverage (open ÷ quota still to go) is shown beside it but not
    ranked: it explodes as the quota is approached, so a plan path that has nearly made
    quota would make a healthy rep look red (docs/dashboard.md)."""
    plan_won, plan_open = t["revenue"].to_numpy(), t["pipeline_end"].to_numpy()
    m = measure("coverage", "ratio", (won + pipeline) / quota, (plan_won + plan_open) / quota)
    plan_to_go = to_go_coverage(plan_open, quota, plan_won)
    detail = {
        "to_go_coverage": float(to_go_coverage(pipeline, quota, won)),
        "plan_to_go_coverage_p50": float(np.quantile(plan_to_go, 0.5, method="inverted_cdf")),
    }
    return m, detail


def _team_stoplight(
    health: PipelineHealth, quota, full: SimResult, to_date: SimResult, now: SimResult | None
) -> Stoplight:
    t = to_date.totals
    acts = measure(
        "activities",
        "count",
        float(health.reps["activities_qtd"].sum()),
        t["activities"].to_numpy(),
    )
    created = measure(
        "pipeline_created",
        "money",
        health.waterfall.amount["created"],
        t["pipeline_created"].to_numpy(),
    )
    pipeline = [created]
    detail = {
        "created_deals": health.waterfall.count["created"],
        "plan_created_deals_p50": float(np.median(t["created"].to_numpy())),
        "open_pipeline": health.open_pipeline,
        "to_go": health.to_go,
    }
    if quota:
        m, more = _coverage_measure(health.won_qtd, health.open_pipeline, quota, t)
        pipeline.append(m)
        detail.update(more)
    return Stoplight(
        "team",
        quota,
        (
            Line("activities", (acts,)),
            Line("pipeline", tuple(pipeline), detail),
            _forecast_line(
                full.quarter_revenue(),
                now.quarter_revenue() if now else None,
                health.won_qtd,
                quota,
            ),
        ),
    )


def _forecast_line(plan_revenue, now_revenue, won_to_date, quota) -> Line:
    """The forecast's median quarter revenue against the plan's quarter-end outcomes."""
    if now_revenue is None:  # the quarter is over: the forecast is what was won
        now_revenue = np.array([won_to_date])
    m = measure("forecast_p50", "money", float(np.median(now_revenue)), plan_revenue)
    detail = {
        "p10": float(np.quantile(now_revenue, 0.1)),
        "p90": float(np.quantile(now_revenue, 0.9)),
        "p_quota": float(np.mean(now_revenue >= quota)) if quota else None,
        "plan_p_quota": float(np.mean(plan_revenue >= quota)) if quota else None,
    }
    return Line("forecast", (m,), detail)


def _rep_stoplight(
    rep,
    seat: int,
    row: dict,
    full: SimResult,
    seat_run: SimResult,
    now: SimResult | None,
    fspec: SimSpec | None,
) -> Stoplight:
    t = seat_run.totals
    acts = measure("activities", "count", float(row["activities_qtd"]), t["activities"].to_numpy())
    pipeline = [
        measure(
            "pipeline_created",
            "money",
            float(row["pipeline_created_qtd"]),
            t["pipeline_created"].to_numpy(),
        )
    ]
    detail = {
        "created_deals": int(row["created_qtd"]),
        "plan_created_deals_p50": float(np.median(t["created"].to_numpy())),
        "open_pipeline": row["open_pipeline"],
    }
    if rep.quota:
        m, more = _coverage_measure(
            float(row["revenue_qtd"]), float(row["open_pipeline"]), rep.quota, t
        )
        pipeline.append(m)
        detail.update(more)
    plan_rev = full.rep_quarter_revenue()[:, seat]
    now_rev = None
    if now is not None and fspec is not None and rep.name in now.rep_names:
        now_rev = now.rep_quarter_revenue()[:, now.rep_names.index(rep.name)]
    forecast = _forecast_line(plan_rev, now_rev, float(row["revenue_qtd"]), rep.quota or None)
    return Stoplight(
        rep.name,
        rep.quota or None,
        (Line("activities", (acts,)), Line("pipeline", tuple(pipeline), detail), forecast),
    )


def _trajectory(
    health: PipelineHealth, full: SimResult, now: SimResult | None, as_of: dt.date
) -> dict:
    plan = full.weekly_bands(TRAJECTORY_QUANTILES)
    out = {
        "weeks": plan["end"].to_list(),
        "plan": {
            f"p{round(q * 100)}": plan[f"p{round(q * 100)}"].to_list() for q in TRAJECTORY_QUANTILES
        },
        "actual": health.weekly_won,
        "actual_weeks": week_ends(health.quarter_start, as_of),
        "forecast_weeks": [],
        "forecast": {},
    }
    if now is not None:
        fc = now.weekly_bands(TRAJECTORY_QUANTILES)
        # start the forecast fan at the actual on the as-of date
        out["forecast_weeks"] = [as_of] + fc["end"].to_list()
        out["forecast"] = {
            f"p{round(q * 100)}": [health.won_qtd] + fc[f"p{round(q * 100)}"].to_list()
            for q in TRAJECTORY_QUANTILES
        }
    return out


def _forecast(quota, full: SimResult, now: SimResult | None, health: PipelineHealth) -> dict:
    plan_rev = full.quarter_revenue()
    now_rev = now.quarter_revenue() if now is not None else np.array([health.won_qtd])
    out = {
        "won_to_date": health.won_qtd,
        "quota": quota,
        "revenue": {f"p{q}": float(np.quantile(now_rev, q / 100)) for q in (10, 50, 90)},
        "plan_revenue": {f"p{q}": float(np.quantile(plan_rev, q / 100)) for q in (10, 20, 50, 90)},
        "p_quota": None,
        "p_quota_interval": None,
        "plan_p_quota": None,
    }
    if quota:
        out["plan_p_quota"] = float(np.mean(plan_rev >= quota))
        if now is not None:
            p, lo, hi = now.p_quota(quota)
            out["p_quota"], out["p_quota_interval"] = p, [lo, hi]
        else:
            out["p_quota"] = float(health.won_qtd >= quota)
    return out


# --- coaching pointers -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    health: PipelineHealth
    plan: SimSpec


def pointers(light: Stoplight, ctx: _Context, health_row: dict | None) -> list[str]:
    """For each red line, the part of the chain to work on, stated from the numbers."""
    out = []
    h = ctx.health
    acts, pipe, fc = (light.line(n) for n in ("activities", "pipeline", "forecast"))
    open_deals = h.open_deals if health_row is None else health_row["open_deals"]
    free = ctx.plan.model.capacity.free_deals
    n_seats = 1 if health_row is not None else max(1, len(ctx.plan.reps))
    if acts.status == "red":
        m = acts.measures[0]
        text = (
            f"Activities: {m.actual:,.0f} to date vs {m.plan_p50:,.0f} on the plan's median "
            f"path (P20 {m.plan_p20:,.0f}) ⇒ prospecting volume"
        )
        if open_deals > free * n_seats:
            text += (
                f"; {open_deals:,} open deals exceed the {free * n_seats:,.0f} carried "
                "before prospecting time suffers: close out or drop stale deals to free "
                "time"
            )
        else:
            text += "; open-deal load is not the constraint: protect prospecting time"
        out.append(text + ".")
    if pipe.status == "red":
        out += _pipeline_pointers(pipe, acts, h, health_row)
    if fc.status == "red":
        out.append(_forecast_pointer(fc, pipe, h, health_row))
    return out


def _pipeline_pointers(pipe: Line, acts: Line, h: PipelineHealth, row) -> list[str]:
    out = []
    by = {m.name: m for m in pipe.measures}
    created = by["pipeline_created"]
    if created.status == "red":
        n, n_plan = pipe.detail["created_deals"], pipe.detail["plan_created_deals_p50"]
        size = created.actual / n if n else 0.0
        plan_size = created.plan_p50 / n_plan if n_plan else 0.0
        if n < n_plan and acts.status == "red":
            why = "few opportunities because activities are low ⇒ prospecting/territory"
        elif n < n_plan:
            why = (
                "activities are on plan but yield fewer opportunities ⇒ targeting and "
                "territory (who is prospected)"
            )
        else:
            why = "enough opportunities but smaller ones ⇒ deal size (aim at bigger segments)"
        text = (
            f"Pipeline created: {_m(created.actual)} from {n:,} deals vs plan median "
            f"{_m(created.plan_p50)} from {n_plan:,.0f} (avg {_m(size)} vs {_m(plan_size)}): "
            f"{why}"
        )
        best = _best_segment(h)
        if best and "size" in why:
            text += f"; best segment by won size: {best}"
        out.append(text + ".")
    cov = by.get("coverage")
    if cov is not None and cov.status == "red":
        quota = h.quota if row is None else row["quota"]
        # coloured, so measured: a quota to divide by and both ratios
        assert quota is not None and cov.actual is not None and cov.plan_p50 is not None
        to_go = pipe.detail["to_go_coverage"]
        text = (
            f"Coverage: won + open pipeline is {cov.actual:.2f}× quota vs "
            f"{cov.plan_p50:.2f}× on the plan's median path (to-go coverage "
            f"{_ratio(to_go)}) ⇒ thin pipeline: prospecting/territory; "
            f"{_m((cov.plan_p50 - cov.actual) * quota)} more pipeline reaches the plan's "
            "median"
        )
        out.append(text + ".")
    return out


def _forecast_pointer(fc: Line, pipe: Line, h: PipelineHealth, row) -> str:
    m = fc.measures[0]
    if row is None:
        w = h.waterfall.count
        won, lost, stale = w["won"], w["lost"], h.stale.height
        stale_amt = float(h.stale["amount"].sum())
        hist_rate = h.velocity.win_rate
    else:
        won = int(row["won_qtd"])
        lost = int(row.get("lost_qtd") or 0)
        mine = h.stale.filter(pl.col("owner") == row["owner"])
        stale, stale_amt = mine.height, float(mine["amount"].sum())
        hist_rate = row["win_rate"]
    rate = won / (won + lost) if won + lost else None
    text = f"Forecast: median {_m(m.actual)} vs plan median {_m(m.plan_p50)} (P20 {_m(m.plan_p20)})"
    if fc.detail.get("p_quota") is not None:
        text += f", P(quota) {fc.detail['p_quota']:.0%} vs {fc.detail['plan_p_quota']:.0%} planned"
    if pipe.status == "red":
        text += " ⇒ follows the thin pipeline: fix pipeline first"
    else:
        text += " with pipeline on plan ⇒ deal execution"
    facts = []
    if rate is not None and hist_rate is not None:
        facts.append(
            f"win rate this quarter {rate:.0%} ({won}/{won + lost}) vs {hist_rate:.0%} "
            "over the last year"
        )
    if stale:
        facts.append(
            f"{stale} stale deal(s) worth {_m(stale_amt)} open longer than "
            f"{h.stale_days:.0f} days (P90 of won cycle)"
        )
    if h.cycles["won"]["median"] is not None:
        facts.append(
            f"team median won cycle {h.cycles['won']['median']:.0f} days vs lost "
            f"{h.cycles['lost']['median'] or 0:.0f}"
        )
    return text + (": " + "; ".join(facts) if facts else "") + "."


def _best_segment(h: PipelineHealth) -> str | None:
    z = h.strike_zone.filter((pl.col("dimension") == "segment") & (pl.col("won") >= 5))
    if z.height == 0:
        return None
    r = z.sort("deal_size", descending=True, nulls_last=True).row(0, named=True)
    return f"{r['value']} (avg won {_m(r['deal_size'])}, win rate {r['win_rate']:.0%})"


def _ratio(x: float) -> str:
    return "∞ (quota made)" if math.isinf(x) else f"{x:.1f}×"


_m = money
