"""The dashboard as one self-contained HTML file: inline CSS, charts as base64 PNGs.

Nothing is fetched when the file is opened (no scripts, fonts or stylesheets from the
network), so it can be mailed or archived as it is. Charts come from ``plots`` as PNG bytes;
this module never imports matplotlib.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math

from salesim.scenarios.dashboard import Dashboard, Line, Measure
from salesim.simulator.calendar import quarter_label
from salesim.simulator.units import money

COLOURS = {"green": "#2e9e44", "yellow": "#e0a800", "red": "#d64541", "n/a": "#9d9d9d"}
STALE_ROWS = 25

CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;background:#f5f6f8;color:#1f2328;font-size:14px;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid
 #d8dbe0;padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}
.sub{color:#59636e;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:10px 14px;min-width:150px;
 flex:1}
.card .k{color:#59636e;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600}.card .s{color:#59636e;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e1e4e8;
 border-radius:8px;overflow:hidden;font-size:13px}
th,td{padding:6px 9px;border-bottom:1px solid #eef0f2;text-align:right;vertical-align:top}
th{background:#f0f2f5;font-weight:600;color:#3b434b}
th:first-child,td:first-child{text-align:left}
td.l,th.l{text-align:left}
tr:last-child td{border-bottom:none}
.dot{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:6px;
 vertical-align:-1px}
.cell .main{font-weight:600}.cell .plan{color:#59636e;font-size:12px}
ul.pointers{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:10px 14px 10px 30px}
ul.pointers li{margin:4px 0}
img{max-width:100%;background:#fff;border:1px solid #e1e4e8;border-radius:8px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:14px}
@media (max-width:800px){.grid{grid-template-columns:1fr}}
.note{color:#59636e;font-size:12px}
.legend span{margin-right:14px}
"""


def charts(d: Dashboard, only=None, currency=None) -> dict[str, bytes]:
    """PNG bytes of ``figures``."""
    from salesim import plots

    return {name: plots.png(fig) for name, fig in figures(d, only, currency).items()}


def figures(d: Dashboard, only=None, currency=None) -> dict:
    """The report's charts as matplotlib Figures: trajectory, waterfall and win_rates
    (``only``: just these names), money in ``currency`` (a ``plots.Currency``; default
    none)."""
    from salesim import plots

    currency = currency or plots.NO_CURRENCY

    def trajectory():
        t = d.trajectory
        fc = {k.upper(): v for k, v in t["forecast"].items() if k in ("p10", "p50", "p90")}
        plan = {k.upper(): v for k, v in t["plan"].items()}
        band = sorted(plan, key=lambda k: float(k.strip("P")))
        title = f"{_quarter(d)}: cumulative won revenue, plan {band[0]}–{band[-1]} vs actual"
        if d.quota:
            title += f" · quota {currency.amount(d.quota)}"
            if d.forecast.get("p_quota") is not None:
                title += f" · P(revenue ≥ quota) now {d.forecast['p_quota']:.0%}"
        return plots.trajectory(
            t["weeks"],
            plan,
            t["actual"],
            actual_weeks=t["actual_weeks"],
            quota=d.quota,
            as_of=d.as_of,
            forecast_weeks=t["forecast_weeks"],
            forecast=fc or None,
            currency=currency,
            title=title,
        )

    def waterfall():
        a = d.health.waterfall.amount
        return plots.waterfall(
            [
                ("Start", a["start"]),
                ("Created", a["created"]),
                ("Won", -a["won"]),
                ("Lost", -a["lost"]),
                ("End", a["end"]),
            ],
            currency=currency,
            title=f"{_quarter(d)} pipeline waterfall {d.quarter_start} – {d.as_of}",
        )

    def win_rates():
        z = d.health.strike_zone
        if z.height == 0:
            return None
        labels = [f"{r['dimension'].replace('_', ' ')}: {r['value']}" for r in z.to_dicts()]
        return plots.win_rates(
            labels,
            z["win_rate"].to_list(),
            z["win_rate_se"].to_list(),
            overall=d.health.velocity.win_rate,
            title="Win rate by segment, source and size (±2 SE)",
        )

    builders = {"trajectory": trajectory, "waterfall": waterfall, "win_rates": win_rates}
    out = {name: build() for name, build in builders.items() if only is None or name in only}
    return {k: v for k, v in out.items() if v is not None}


def render(d: Dashboard, images: dict[str, bytes] | None = None) -> str:
    """The report as one HTML string; ``images`` defaults to ``charts(d)``."""
    images = charts(d) if images is None else images
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>salesim dashboard {_e(_quarter(d))} as of {d.as_of}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Execution dashboard · {_e(_quarter(d))} · week {d.week} of {d.weeks}</h1>",
        f"<p class='sub'>As of {d.as_of} · plan {_e(d.plan)} · {d.trials:,} trials per run, "
        f"seed {d.seed}, engine {_e(d.engine)}</p>",
        _cards(d),
        "<h2>Stoplight</h2>",
        "<p class='note legend'>"
        + " ".join(
            f"<span>{_dot(s)}{t}</span>"
            for s, t in (
                ("green", "at or above the plan's P50 for this date"),
                ("yellow", "between the plan's P20 and P50"),
                ("red", "below the plan's P20"),
            )
        )
        + " — percentages say where the actual sits among the plan's simulated paths.</p>",
        _stoplight_table(d),
        "<h2>Coaching pointers</h2>",
        _pointers(d),
        "<h2>Trajectory</h2>",
        _img(images.get("trajectory"), "trajectory"),
        "<h2>Pipeline health</h2>",
        _health(d, images),
        "<h2>Notes</h2>",
        "<ul class='note'>" + "".join(f"<li>{_e(n)}</li>" for n in d.notes) + "</ul>",
        "<p class='note'>Generated by salesim. Thresholds: docs/dashboard.md. Figures "
        f"to date cover {d.quarter_start} – {d.as_of}; nothing after the as-of date is used.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


# --- pieces ------------------------------------------------------------------------------------
def _cards(d: Dashboard) -> str:
    f, h = d.forecast, d.health
    cards = [
        ("Won to date", _m(f["won_to_date"]), f"of quota {_m(d.quota)}" if d.quota else "no quota"),
        (
            "Forecast P50",
            _m(f["revenue"]["p50"]),
            f"P10 {_m(f['revenue']['p10'])} – P90 {_m(f['revenue']['p90'])}",
        ),
    ]
    if f["p_quota"] is not None:
        cards.append(
            ("P(quota)", _pct(f["p_quota"]), f"plan at quarter start {_pct(f['plan_p_quota'])}")
        )
    cov = h.coverage
    cards.append(
        (
            "To-go coverage",
            _ratio(cov) if cov is not None else "-",
            f"open {_m(h.open_pipeline)} / to go {_m(h.to_go)}"
            if cov is not None
            else "needs a quota",
        )
    )
    v = h.velocity.per_day
    cards.append(
        (
            "Sales velocity",
            f"{_m(v * 7)}/wk" if v is not None else "-",
            "open × win rate × size ÷ cycle",
        )
    )
    return (
        "<div class='cards'>"
        + "".join(
            f"<div class='card'><div class='k'>{_e(k)}</div><div class='v'>{_e(v)}</div>"
            f"<div class='s'>{_e(s)}</div></div>"
            for k, v, s in cards
        )
        + "</div>"
    )


def _stoplight_table(d: Dashboard) -> str:
    rows = [d.team] + list(d.reps)
    head = (
        "<tr><th>Who</th><th class='l'>1 · Activities</th><th class='l'>2 · Pipeline</th>"
        "<th class='l'>3 · Forecast</th></tr>"
    )
    body = []
    for s in rows:
        who = "Team" if s.who == "team" else s.who
        quota = f"<div class='plan'>quota {_m(s.quota)}</div>" if s.quota else ""
        body.append(
            f"<tr><td>{_dot(s.status)}<b>{_e(who)}</b>{quota}</td>"
            + "".join(f"<td class='l cell'>{_line_cell(x)}</td>" for x in s.lines)
            + "</tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _line_cell(line: Line) -> str:
    out = []
    for i, m in enumerate(line.measures):
        dot = _dot(m.status)
        label = {
            "activities": "",
            "pipeline_created": "created ",
            "coverage": "won + open = ",
            "forecast_p50": "P50 ",
        }[m.name]
        if m.name == "coverage":
            m = dataclasses.replace(m, unit="quota")
        out.append(
            f"<div class='main'>{dot}{label}{_e(_fmt(m, m.actual))}</div>"
            f"<div class='plan'>plan P50 {_e(_fmt(m, m.plan_p50))} · P20 "
            f"{_e(_fmt(m, m.plan_p20))} · at plan P{_pctile(m.percentile)}</div>"
        )
    if "to_go_coverage" in line.detail:
        out.append(
            f"<div class='plan'>to-go coverage {_ratio(line.detail['to_go_coverage'])}"
            f" · plan P50 {_ratio(line.detail['plan_to_go_coverage_p50'])}</div>"
        )
    if line.name == "forecast" and line.detail.get("p_quota") is not None:
        out.append(
            f"<div class='plan'>P(quota) {_pct(line.detail['p_quota'])} vs "
            f"{_pct(line.detail['plan_p_quota'])} planned</div>"
        )
    return "".join(out)


def _pointers(d: Dashboard) -> str:
    items = [("Team", p) for p in d.team.pointers]
    items += [(r.who, p) for r in d.reps for p in r.pointers]
    if not items:
        return "<p>No red lines: nothing to flag this week.</p>"
    return (
        "<ul class='pointers'>"
        + "".join(f"<li><b>{_e(who)}</b> — {_e(p)}</li>" for who, p in items)
        + "</ul>"
    )


def _health(d: Dashboard, images: dict) -> str:
    h = d.health
    v = h.velocity
    a, c = h.waterfall.amount, h.waterfall.count
    wf_rows = [
        ("Open at the start", "start"),
        ("+ created", "created"),
        ("− won", "won"),
        ("− lost", "lost"),
        ("= open now", "end"),
        ("won from start pipeline", "won_from_start"),
        ("created and won this quarter (pulled in)", "won_from_created"),
        ("open at start, still open (pushed out)", "slipped"),
    ]
    wf = (
        "<table><tr><th>Waterfall</th><th>deals</th><th>amount</th></tr>"
        + "".join(
            f"<tr><td>{_e(label)}</td><td>{c[k]:,}</td><td>{_m(a[k])}</td></tr>"
            for label, k in wf_rows
        )
        + "</table>"
    )
    vel = (
        "<table><tr><th>Velocity term</th><th>value</th></tr>"
        f"<tr><td>open opportunities</td><td>{v.opportunities:,}</td></tr>"
        f"<tr><td>win rate (closed in last year)</td><td>{_pct(v.win_rate)}</td></tr>"
        f"<tr><td>mean won deal size</td><td>{_m(v.deal_size)}</td></tr>"
        f"<tr><td>mean won cycle (days)</td><td>{_num(v.cycle_days)}</td></tr>"
        f"<tr><td><b>velocity per week</b></td><td><b>"
        f"{_m(v.per_day * 7) if v.per_day is not None else '-'}</b></td></tr></table>"
    )
    cyc = h.cycles
    cycles = (
        "<table><tr><th>Cycle (days)</th><th>n</th><th>median</th><th>P90</th></tr>"
        + "".join(
            f"<tr><td>{k}</td><td>{cyc[k]['n']:,}</td><td>{_num(cyc[k]['median'])}"
            f"</td><td>{_num(cyc[k]['p90'])}</td></tr>"
            for k in ("won", "lost")
        )
        + "</table>"
    )
    out = [
        f"<div class='grid'><div>{_img(images.get('waterfall'), 'waterfall')}</div>"
        f"<div>{wf}<p class='note'>Without an expected close date nothing is 'due' in a "
        "quarter: every deal open on the first day counts as start pipeline, so pulled in "
        "and pushed out are shown as the closest facts the data has.</p></div></div>",
        f"<div class='grid'><div><h3>Sales velocity</h3>{vel}</div>"
        f"<div><h3>Won vs lost cycle</h3>{cycles}</div></div>",
        _stale(h),
        "<h3>Strike zone: where deals win</h3>",
        _img(images.get("win_rates"), "win rates"),
        _strike_table(h),
    ]
    return "\n".join(out)


def _stale(h) -> str:
    if h.stale_days is None:
        return "<h3>Stale deals</h3><p>No won deals yet: no threshold.</p>"
    s = h.stale
    head = (
        f"<h3>Stale deals: open longer than {h.stale_days:.0f} days (P90 of won cycle)"
        f" — {s.height:,} worth {_m(float(s['amount'].sum()))}</h3>"
    )
    if s.height == 0:
        return head + "<p>None.</p>"
    rows = "".join(
        f"<tr><td>{_e(r['opportunity_id'])}</td><td class='l'>{_e(r['owner'])}</td>"
        f"<td class='l'>{_e(r['stage'])}</td><td>{r['created']}</td>"
        f"<td>{r['age_days']:.0f}</td><td>{_m(r['amount'])}</td></tr>"
        for r in s.head(STALE_ROWS).to_dicts()
    )
    more = (
        f"<p class='note'>Largest {STALE_ROWS} shown; --json lists all.</p>"
        if s.height > STALE_ROWS
        else ""
    )
    return (
        head + "<table><tr><th>Deal</th><th class='l'>Owner</th><th class='l'>Stage</th>"
        "<th>Created</th><th>Age (days)</th><th>Amount</th></tr>" + rows + "</table>" + more
    )


def _strike_table(h) -> str:
    z = h.strike_zone
    if z.height == 0:
        return "<p>Not enough closed deals.</p>"
    rows = "".join(
        f"<tr><td>{_e(r['dimension'].replace('_', ' '))}</td><td class='l'>{_e(r['value'])}</td>"
        f"<td>{r['won']:,}</td><td>{r['lost']:,}</td><td>{_pct(r['win_rate'])} ± "
        f"{_pct(2 * r['win_rate_se'])}</td><td>{_m(r['deal_size'])}</td>"
        f"<td>{_num(r['won_cycle_median'])}</td><td>{_num(r['lost_cycle_median'])}</td></tr>"
        for r in z.to_dicts()
    )
    return (
        "<table><tr><th>Dimension</th><th class='l'>Value</th><th>Won</th><th>Lost</th>"
        "<th>Win rate ± 2 SE</th><th>Mean won size</th><th>Won cycle (median d)</th>"
        "<th>Lost cycle (median d)</th></tr>" + rows + "</table>"
        f"<p class='note'>Closed deals from {h.lookback_start} to {h.as_of}.</p>"
    )


# --- formatting --------------------------------------------------------------------------------
def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return (
        f"<img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
    )


def _dot(status: str) -> str:
    return (
        f"<span class='dot' title='{_e(status)}' "
        f"style='background:{COLOURS.get(status, COLOURS['n/a'])}'></span>"
    )


def _fmt(m: Measure, x) -> str:
    if x is None:
        return "-"
    if m.unit == "money":
        return _m(x)
    if m.unit == "ratio":
        return _ratio(x)
    if m.unit == "quota":
        return f"{x:.2f}× quota"
    return f"{x:,.0f}"


def _quarter(d: Dashboard) -> str:
    return quarter_label(d.quarter_start)


def _e(x) -> str:
    return html.escape(str(x), quote=True)


_m = money


def _pct(p) -> str:
    return "-" if p is None else f"{p:.0%}"


def _pctile(p) -> str:
    return "-" if p is None else f"{round(100 * p)}"


def _ratio(x) -> str:
    if x is None:
        return "-"
    return "quota made" if math.isinf(x) else f"{x:.2f}×"


def _num(x) -> str:
    return "-" if x is None else f"{x:,.0f}"
