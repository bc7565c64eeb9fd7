"""Every result as text for the terminal: the tables ``salesim forecast``, ``compare``,
``capacity``, ``dashboard`` and ``backtest`` print, and the ``to_text()`` of their result
objects. Each renderer takes the result's JSON document (``to_dict()``), so what is printed
and what ``--json`` says cannot drift apart.
"""

from __future__ import annotations

import math

from salesim.simulator.units import money


def json_safe(obj):
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def table(rows: list[list], headers: list[str]) -> str:
    """A plain aligned text table (first column left, others right)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
        )

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def pct(p: float | None) -> str:
    return "-" if p is None else f"{100 * p:.1f}%"


def forecast_text(fc: dict) -> str:
    """The forecast as a readable table (``salesim forecast`` without --json)."""
    rev, origin = fc["revenue"], fc["by_origin"]
    out = [
        f"Forecast {fc['start']} to {fc['end']} ({fc['days']} days) · {fc['trials']:,} trials "
        f"· engine {fc['engine']} · seed {fc['seed']}"
        + (" · fixed parameters" if fc["fixed_parameters"] else ""),
        "",
    ]

    def row(name, b, fmt=money):
        return [name] + [fmt(b[k]) for k in ("mean", "p10", "p50", "p90")]

    rows = [row("Quarter revenue", rev)]
    if fc["closed_to_date"]:
        c = fc["closed_to_date"]
        rows.append(["  closed to date", money(c), money(c), money(c), money(c)])
    rows += [
        row("  from open pipeline", origin["open_pipeline"]),
        row("  from new pipeline", origin["new_pipeline"]),
        row("Wins", fc["wins"], lambda x: f"{x:,.1f}"),
    ]
    out.append(table(rows, ["", "mean", "P10", "P50", "P90"]))
    out.append("")
    if fc["quota"] is None:
        out.append("P(revenue ≥ quota): no quota (give --quota AMOUNT)")
    else:
        lo, hi = fc["p_quota_interval"]
        out.append(
            f"P(revenue ≥ quota {money(fc['quota'])}) = {pct(fc['p_quota'])}  "
            f"(90% Monte Carlo interval {pct(lo)} to {pct(hi)})"
        )
    if fc.get("by"):
        out += ["", rollup_text(fc["by"])]
    reps = [r for r in fc["reps"] if r["quota"]]
    if reps:
        out += ["", "Rep attainment (quarter revenue / quota)"]
        out.append(
            table(
                [
                    [
                        r["rep"],
                        money(r["quota"]),
                        pct(r["p10"]),
                        pct(r["p50"]),
                        pct(r["p90"]),
                        pct(r["p_attain"]),
                    ]
                    for r in reps[:20]
                ],
                ["rep", "quota", "P10", "P50", "P90", "P(≥ 100%)"],
            )
        )
        if len(reps) > 20:
            out.append(f"… and {len(reps) - 20} more reps (--json lists them all)")
    if fc.get("calls"):
        out += [""] + calls_now_lines(fc["calls"], fc)
    if fc["notes"]:
        out += ["", "Notes"] + [f"  - {n}" for n in fc["notes"]]
    return "\n".join(out)


def rollup_text(rows: list[dict]) -> str:
    """The roll-ups (``--by``): one table per level, bands from the same trials as the team's."""
    out: list[str] = []
    for level in dict.fromkeys(r["level"] for r in rows):
        group = [r for r in rows if r["level"] == level]
        if out:
            out.append("")
        out.append(f"Forecast by {level} (quarter revenue; bands from the team's trials)")
        out.append(
            table(
                [
                    [r["name"]]
                    + [money(r["revenue"][k]) for k in ("mean", "p10", "p50", "p90")]
                    + [
                        money(r["quota"]) if r["quota"] is not None else "-",
                        pct(r["p_quota"]) if r["p_quota"] is not None else "-",
                        f"{r['wins']:,.1f}",
                    ]
                    for r in group
                ],
                [level, "mean", "P10", "P50", "P90", "quota", "P(≥ quota)", "wins"],
            )
        )
    return "\n".join(out)


def deals_text(view: dict, top: int = 30) -> str:
    """The per-deal view (``salesim deals`` without --json): the deals that move the quarter
    most first."""
    deals = view["deals"]
    out = [
        f"Open deals at {view['as_of']} · P(win) by {view['end']}, this quarter to "
        f"{view['quarter_end']} · {view['trials']:,} trials · engine {view['engine']} · "
        f"seed {view['seed']}",
        f"Expected in the quarter from these deals: {money(view['expected_in_quarter'])}",
        "",
    ]
    if not deals:
        out.append("No open deals.")
    else:
        out.append(
            table(
                [
                    [
                        d["opportunity_id"],
                        d["owner"],
                        d["stage"],
                        money(d["amount"]),
                        pct(d["p_win"]),
                        pct(d["p_win_quarter"]),
                        money(d["expected_in_quarter"]),
                        str(d["age_days"]),
                        str(d["expected_close"] or "-"),
                        d["forecast_category"] or "-",
                        "-" if d["pushes"] is None else str(d["pushes"]),
                        ", ".join(d["flags"]),
                    ]
                    for d in deals[:top]
                ],
                [
                    "deal",
                    "owner",
                    "stage",
                    "amount",
                    "P(win)",
                    "P(qtr)",
                    "expected",
                    "age",
                    "close",
                    "category",
                    "pushes",
                    "flags",
                ],
            )
        )
        if len(deals) > top:
            out.append(f"… and {len(deals) - top} more (--json or --out lists them all)")
    out += [
        "",
        f"Flags: old = older than the won-cycle P90 ({view['won_cycle_p90_days']:.0f} days); "
        f"pushed = close date pushed ≥ {view['pushed_at']} times; inactive = no activity in "
        f"{view['inactive_days']} days; overdue = past its expected close date.",
    ]
    if view["notes"]:
        out += ["", "Notes"] + [f"  - {n}" for n in view["notes"]]
    return "\n".join(out)


def compare_text(out: dict) -> str:
    base = out["baseline"]
    quota = out["quota"]
    lines = [
        f"Compare {out['start']} + {out['days']} days · {out['trials']:,} trials · engine "
        f"{out['engine']} · seed {out['seed']} (common random numbers: every run shares "
        "it)",
        "",
    ]
    rb = base["revenue"]
    lines.append(
        f"Baseline revenue: mean {money(rb['mean'])} (P10 {money(rb['p10'])}, P50 "
        f"{money(rb['p50'])}, P90 {money(rb['p90'])})"
        + (f" · P(≥ quota {money(quota)}) = {pct(base['p_quota'])}" if quota else "")
    )
    lines.append("")
    rows = []
    costs = any(s["cost"] for s in out["strategies"])
    for s in out["strategies"]:
        up, one, r, vel = s["uplift"], s["uplift_trials"], s["revenue"], s["velocity"]["uplift"]
        row = [
            s["rank"],
            s["name"],
            s["given"],
            money(r["p10"]),
            money(r["p50"]),
            money(r["p90"]),
            pct(s["p_quota"]),
            signed(up["mean"]),
            f"{signed(up['lo'])} … {signed(up['hi'])}",
            f"{signed(one['p10'])} … {signed(one['p90'])}",
            pct(one["p_positive"]),
            signed(vel) if vel is not None else "n/a",
        ]
        if costs:
            row.append(f"{s['uplift_per_cost']:.2f}" if s["uplift_per_cost"] is not None else "-")
        rows.append(row)
    headers = [
        "#",
        "strategy",
        "levers",
        "P10",
        "P50",
        "P90",
        "P(quota)",
        "mean uplift",
        "mean: 90% MC",
        "one quarter P10 … P90",
        "P(uplift > 0)",
        "velocity eq.",
    ] + (["uplift/cost"] if costs else [])
    lines.append(table(rows, headers))
    by = "uplift per unit cost" if out["best_by"] == "uplift_per_cost" else "mean uplift"
    lines += [
        "",
        f"Best: {out['best']} (by {by})",
        "Mean uplift: the average paired difference from the baseline (same seed); "
        "mean: 90% MC is how precisely the trials pin that average down (it narrows "
        "with more trials), not how sure a gain is.",
        "One quarter P10 … P90: the spread of the uplift trial by trial (80% of "
        "quarters land inside); P(uplift > 0): the share of trials the strategy beats "
        "the baseline. These say how sure a gain is.",
        "Velocity eq.: the sales-velocity equation's prediction (steady state, no "
        "quarter boundary).",
    ]
    if out["notes"]:
        lines += ["", "Notes"] + [f"  - {n}" for n in out["notes"]]
    return "\n".join(lines)


def movement_text(doc: dict) -> str:
    """The waterfall, stage moves, the deals that moved most and the forecast's change."""
    q = doc["quarter"]
    lines = [
        f"Pipeline of the quarter {q['start']} to {q['end']} ({doc['scope']}): "
        f"{doc['from']} → {doc['to']}",
        "",
    ]
    rows = []
    for row in doc["waterfall"]:
        sign = row["sign"]  # +1 adds to the pipeline, -1 takes from it, 0 a level
        amount = money(row["amount"]) if sign == 0 else signed(sign * row["amount"])
        rows.append([row["step"].replace("_", " "), f"{row['deals']:,}", amount])
    lines += [table(rows, ["step", "deals", "amount"]), ""]
    moves = doc["stage_moves"]
    lines.append(
        f"Stage moves: {moves['advanced']['deals']:,} advanced "
        f"({money(moves['advanced']['amount'])}), {moves['went_back']['deals']:,} went back "
        f"({money(moves['went_back']['amount'])})"
    )
    if doc["deals"]:
        lines += ["", f"Deals that moved most (of {len(doc['deals']):,}):"]
        top = doc["deals"][:10]
        lines.append(
            table(
                [
                    [
                        d["opportunity_id"],
                        d["owner"],
                        d["step"].replace("_", " "),
                        money(d["amount_from"]) if d["amount_from"] is not None else "—",
                        money(d["amount_to"]) if d["amount_to"] is not None else "—",
                        f"{d['stage_from'] or '—'} → {d['stage_to'] or '—'}",
                        f"{d['close_from'] or '—'} → {d['close_to'] or '—'}",
                    ]
                    for d in top
                ],
                ["deal", "owner", "what", "amount then", "amount now", "stage", "expected close"],
            )
        )
    fc = doc.get("forecast")
    if fc:
        a, b, ch, why = fc["from"], fc["to"], fc["change"], fc["explained"]
        lines += [
            "",
            f"Forecast ({fc['trials']:,} trials, seed {fc['seed']}, the same at both dates):",
            f"  {a['as_of']}: P10 {money(a['revenue']['p10'])}  P50 {money(a['revenue']['p50'])}"
            f"  P90 {money(a['revenue']['p90'])}  mean {money(a['revenue']['mean'])}",
            f"  {b['as_of']}: P10 {money(b['revenue']['p10'])}  P50 {money(b['revenue']['p50'])}"
            f"  P90 {money(b['revenue']['p90'])}  mean {money(b['revenue']['mean'])}",
            f"  change: P50 {signed(ch['p50'])}, mean {signed(ch['mean'])} = closed to date "
            f"{signed(why['closed_to_date'])} + open pipeline's wins "
            f"{signed(why['open_pipeline'])} + new pipeline's wins {signed(why['new_pipeline'])}",
        ]
        if fc.get("note"):
            lines.append(f"  note: {fc['note']}")
        if fc["deals"]:
            lines.append("  deals whose expected value moved most (amount × P(win); won: amount):")
            lines += [
                f"    {d['opportunity_id']} ({d['owner']}, {d['status']}): "
                f"{money(d['value_from'])} → {money(d['value_to'])} ({signed(d['change'])})"
                for d in fc["deals"][:5]
            ]
    if doc["notes"]:
        lines += ["", "Notes"] + [f"  - {n}" for n in doc["notes"]]
    return "\n".join(lines)


def signed(x: float) -> str:
    return ("+" if x >= 0 else "-") + money(abs(x))


def capacity_text(out: dict) -> str:
    conf = out["confidence"]
    lines = [
        f"{'Pipeline coverage' if out['solve'] == 'coverage' else 'Capacity'} for "
        f"{money(out['target'])} at {conf:.0%} confidence · {out['trials']:,} trials per run "
        f"· {out['runs']} runs · engine {out['engine']} · seed {out['seed']}",
        "",
    ]
    lo, hi = out["p_target_interval"]
    if out["solve"] == "headcount":
        if out["reachable"]:
            lines.append(
                f"Answer: {out['headcount']} reps ({out['additional_reps']:+d} starting "
                f"{out['hire_date']}): P(revenue ≥ target) = {pct(out['p_target'])} "
                f"(90% MC {pct(lo)}–{pct(hi)})"
            )
            if out["p_target_one_fewer"] is not None:
                lines.append(f"  with one rep fewer: {pct(out['p_target_one_fewer'])}")
        else:
            lines.append(
                f"Not reachable with up to {out['max_reps']} reps: P(revenue ≥ target) "
                f"= {pct(out['p_target'])} there (raise --max-reps or the hire date)"
            )
        cov = out["pipeline_coverage"]
        ratio = out["quota_to_capacity"]
        lines.append(
            f"Quota capacity (ramped quota of that team): {money(out['quota_capacity'])}"
            + (f" · target / capacity = {ratio:.2f}" if ratio is not None else "")
        )
        lines.append(
            f"Pipeline coverage of the target: {cov['start']:.2f}x open at the start "
            f"+ {cov['created']:.2f}x created in the horizon = {cov['total']:.2f}x"
        )
        rows = [
            [
                p["headcount"],
                f"{p['additional_reps']:+d}",
                pct(p["p_target"]),
                f"{pct(p['lo'])}–{pct(p['hi'])}",
                money(p["quota_capacity"]),
            ]
            for p in out["curve"]
        ]
        lines += ["", table(rows, ["reps", "added", "P(target)", "90% MC", "quota capacity"])]
    else:
        if out["reachable"]:
            lines.append(
                f"Answer: open pipeline at the start of {out['coverage']:.2f}x the "
                f"target ({money(out['pipeline'])}): P(revenue ≥ target) = "
                f"{pct(out['p_target'])} (90% MC {pct(lo)}–{pct(hi)})"
            )
        else:
            lines.append(f"Not reachable with up to {out['max_coverage']:g}x coverage")
        lines.append(
            f"Now: {out['coverage_now']:.2f}x ({out['open_deals_now']:,} open deals), "
            f"P(revenue ≥ target) = {pct(out['p_target_now'])}"
        )
        rows = [
            [f"{p['coverage']:.2f}x", pct(p["p_target"]), f"{pct(p['lo'])}–{pct(p['hi'])}"]
            for p in out["curve"][::3]
        ]
        lines += [
            "",
            table(rows, ["coverage", "P(target)", "90% MC"]),
            "",
            "Coverage scales the value of today's open deals (same stages, ages and "
            "owners); with common random numbers one run gives P(target) at every "
            "coverage, and a second run at the answer checks it.",
        ]
    if out["solve"] == "headcount":
        lines += [
            "",
            "Every run shares the seed (common random numbers); the answer is the "
            "smallest headcount that meets the confidence, one fewer misses it.",
        ]
    if out.get("notes"):
        lines += ["", "Notes"] + [f"  - {n}" for n in out["notes"]]
    return "\n".join(lines)


_MARK = {"green": "[G]", "yellow": "[Y]", "red": "[R]", "n/a": "[-]"}


def _cell(m: dict) -> str:
    if m["actual"] is None:
        return "-"

    def fmt(x):
        if x is None:
            return "-"
        if m["unit"] == "money":
            return money(x)
        if m["unit"] == "ratio":
            return "made" if math.isinf(x) else f"{x:.2f}x"
        return f"{x:,.0f}"

    return (
        f"{_MARK[m['status']]} {fmt(m['actual'])} / {fmt(m['plan_p50'])} "
        f"(P{round(100 * m['percentile'])})"
    )


def dashboard_text(d: dict) -> str:
    f = d["forecast"]
    lines = [
        f"Execution dashboard {d['quarter_start']} – {d['quarter_end']}, week {d['week']} "
        f"of {d['weeks']} (as of {d['as_of']}) · plan {d['plan']}",
        f"{d['trials']:,} trials per run · seed {d['seed']} · engine {d['engine']}",
        "",
    ]
    head = f"Won to date {money(f['won_to_date'])}"
    if d["quota"]:
        head += f" of quota {money(d['quota'])}"
    head += (
        f" · forecast P50 {money(f['revenue']['p50'])} (P10 {money(f['revenue']['p10'])}, "
        f"P90 {money(f['revenue']['p90'])})"
    )
    if f["p_quota"] is not None:
        head += f" · P(quota) {pct(f['p_quota'])} (plan {pct(f['plan_p_quota'])})"
    lines += [
        head,
        "",
        "Stoplight: actual / plan P50 on this date (where the actual sits among the "
        "plan's paths). [G] ≥ plan P50, [Y] P20–P50, [R] < P20.",
    ]
    rows = []
    for s in [d["team"]] + d["reps"]:
        ln = s["lines"]
        by = {m["name"]: m for m in ln["pipeline"]["measures"]}
        fc = ln["forecast"]
        to_go = ln["pipeline"]["detail"].get("to_go_coverage")
        rows.append(
            [
                s["who"],
                _MARK[s["status"]],
                _cell(ln["activities"]["measures"][0]),
                _cell(by["pipeline_created"]),
                _cell(by["coverage"]) if "coverage" in by else "-",
                "-" if to_go is None else "made" if math.isinf(to_go) else f"{to_go:.2f}x",
                _cell(fc["measures"][0]),
                pct(fc["detail"]["p_quota"]) if fc["detail"]["p_quota"] is not None else "-",
            ]
        )
    lines.append(
        table(
            rows,
            [
                "who",
                "",
                "1 activities",
                "2 pipeline created",
                "2 (won+open)/quota",
                "to-go cov.",
                "3 forecast P50",
                "P(quota)",
            ],
        )
    )
    pointers = [("team", p) for p in d["team"]["pointers"]]
    pointers += [(r["who"], p) for r in d["reps"] for p in r["pointers"]]
    lines += ["", "Coaching pointers (red lines):"]
    lines += [f"  - {who}: {p}" for who, p in pointers] or ["  none: no red line"]
    if d.get("by"):
        lines += ["", rollup_text(d["by"])]

    h = d["health"]
    v, w = h["velocity"], h["waterfall"]
    lines += ["", "Pipeline health"]
    if h["coverage"] is not None:
        cov = "made" if math.isinf(h["coverage"]) else f"{h['coverage']:.2f}x"
        lines.append(
            f"  coverage      {cov}: open {money(h['open_pipeline'])} for "
            f"{money(h['to_go'])} still to go"
        )
    if v["per_day"] is not None:
        lines.append(
            f"  velocity      {money(v['per_week'])}/week = {v['opportunities']:,} open "
            f"× {pct(v['win_rate'])} win × {money(v['deal_size'])} ÷ "
            f"{v['cycle_days']:.0f} days"
        )
    a, c = w["amount"], w["count"]
    lines.append(
        f"  waterfall     start {money(a['start'])} + created {money(a['created'])} − "
        f"won {money(a['won'])} − lost {money(a['lost'])} = end {money(a['end'])}"
    )
    lines.append(
        f"                pulled in (created & won) {money(a['won_from_created'])} "
        f"({c['won_from_created']}), pushed out (open at start, still open) "
        f"{money(a['slipped'])} ({c['slipped']})"
    )
    if h["stale_days"] is not None:
        total = sum(x["amount"] for x in h["stale"])
        lines.append(
            f"  stale deals   {len(h['stale']):,} worth {money(total)} open longer than "
            f"{h['stale_days']:.0f} days (P90 of won cycle)"
        )
        for x in h["stale"][:5]:
            lines.append(
                f"                {x['opportunity_id']}  {x['owner']}  {x['stage']}  "
                f"{x['age_days']:.0f} d  {money(x['amount'])}"
            )
    cyc = h["cycles"]
    if cyc["won"]["median"] is not None and cyc["lost"]["median"] is not None:
        lines.append(
            f"  cycle         won median {cyc['won']['median']:.0f} d (P90 "
            f"{cyc['won']['p90']:.0f}), lost median {cyc['lost']['median']:.0f} d"
        )
    if h["strike_zone"]:
        lines += ["", "Strike zone (closed in the last year):"]
        lines.append(
            table(
                [
                    [
                        f"{z['dimension']}: {z['value']}",
                        z["won"],
                        z["lost"],
                        f"{pct(z['win_rate'])} ± {pct(2 * z['win_rate_se'])}",
                        money(z["deal_size"]),
                        "-" if z["won_cycle_median"] is None else f"{z['won_cycle_median']:.0f}",
                    ]
                    for z in h["strike_zone"]
                ],
                ["where", "won", "lost", "win rate ± 2SE", "won size", "won cycle d"],
            )
        )
    if d["notes"]:
        lines += ["", "Notes:"] + [f"  - {n}" for n in d["notes"]]
    return "\n".join(lines)


def backtest_text(b: dict) -> str:
    lines = [
        f"Backtest: {len(b['folds'])} fold(s) · {b['trials']:,} trials each · engine "
        f"{b['engine']} · seed {b['seed']}",
        "",
    ]
    rows = [
        [
            f["cutoff"],
            f"{f['start']} – {f['end']}",
            money(f["actual"]),
            money(f["p10"]),
            money(f["p50"]),
            money(f["p90"]),
            f"{f['pit']:.2f}",
            "yes" if f["covered"] else "NO",
            f"{money(f['open']['actual'])} / {f['open']['pit']:.2f}",
            f"{money(f['new']['actual'])} / {f['new']['pit']:.2f}",
            money(f["stage_weighted"]),
            money(f["last_quarter"]),
        ]
        for f in b["folds"]
    ]
    lines.append(
        table(
            rows,
            [
                "cutoff",
                "forecast window",
                "actual",
                "P10",
                "P50",
                "P90",
                "PIT",
                "in P10–P90",
                "open: actual / PIT",
                "new: actual / PIT",
                "stage-weighted",
                "last quarter",
            ],
        )
    )
    bl, lo_hi, h = b["baselines"], b["coverage_interval"], b["pit_histogram"]
    lines += [
        "",
        f"P10–P90 coverage {pct(b['coverage_p10_p90'])} (nominal 80%; ± "
        f"{pct(b['coverage_se'])} standard error over {len(b['folds'])} folds; exact 90% "
        f"interval {pct(lo_hi[0])} – {pct(lo_hi[1])})",
        f"CRPS {money(b['crps'])} (stage-weighted {money(bl['stage_weighted']['crps'])}, "
        f"last quarter {money(bl['last_quarter']['crps'])}: a point forecast's CRPS is "
        "its absolute error)",
        f"MAPE of P50 {pct(b['mape_p50'])} · stage-weighted pipeline "
        f"{pct(bl['stage_weighted']['mape'])} · last quarter "
        f"{pct(bl['last_quarter']['mape'])}",
        f"mean PIT {b['mean_pit']:.2f} (0.5 if unbiased; above: forecasts too low)",
        f"PIT histogram (10 bins, 0 → 1): {' '.join(str(c) for c in h['counts'])} · "
        f"chi-square {h['chi2']:.1f}, p = {h['p_value']:.2g} (uniform if calibrated; "
        "little power on few folds)",
    ]
    for name, what in (("open", "open pipeline"), ("new", "new pipeline")):
        p = b["parts"][name]
        lines.append(
            f"{what}: P10–P90 coverage {pct(p['coverage_p10_p90'])}, mean PIT "
            f"{p['mean_pit']:.2f}, CRPS {money(p['crps'])}"
        )
    if b.get("diagnostics"):
        lines += ["", "What the backtest and the history say:"]
        lines += [f"  - {d}" for d in b["diagnostics"]]
    if b["notes"]:
        lines += ["", "Notes:"] + [f"  - {n}" for n in b["notes"]]
    return "\n".join(lines)


def fmt_days(x: float) -> str:
    return f"{x:,.1f} d" if x < 100 else f"{x:,.0f} d"


def calibration_text(s: dict, output: str) -> str:
    """The calibrate summary as a readable table (docs/calibration.md, "Reading the table")."""
    lo, hi = s["win_rate_interval"]
    cyc = s["cycle_days"]
    lines = [
        f"Calibrated on {s['n_opportunities']:,} opportunities up to {s['as_of']}",
        f"Win rate (created → won)  {pct(s['win_rate'])}  (90%: {pct(lo)} – {pct(hi)});"
        f"  median days to win {fmt_days(cyc['won_median'])}, to lose "
        f"{fmt_days(cyc['lost_median'])}",
        "",
    ]
    if s.get("stall_interval"):  # a "never closes" share was kept (docs/calibration.md)
        lines[-2] += (
            f"; never closes {pct(s['stall'])} (90%: {pct(s['stall_interval'][0])}"
            f" – {pct(s['stall_interval'][1])})"
        )
    stalls = any(st.get("stall_interval") for st in s["stages"])
    rows = [
        [
            st["name"],
            pct(st["conversion"]),
            f"{pct(st['conversion_interval'][0])} – {pct(st['conversion_interval'][1])}",
            f"{st['duration']['family']} {fmt_days(st['duration']['median_days'])}",
            f"{st['lost_duration']['family']} {fmt_days(st['lost_duration']['median_days'])}",
            f"{st['entered']:,}",
            f"{st['open']:,}",
        ]
        + ([pct(st["stall"]) if st.get("stall_interval") else "–"] if stalls else [])
        for st in s["stages"]
    ]
    lines.append(
        table(
            rows,
            [
                "stage",
                "advance",
                "90% interval",
                "time to advance (median)",
                "time to lose (median)",
                "entered",
                "open",
            ]
            + (["never closes"] if stalls else []),
        )
    )
    ds = s["deal_size"]
    lines += [
        "",
        f"Deal size  {ds['family']}: mean {money(ds['mean'])} (90%: "
        f"{money(ds['mean_interval'][0])} – {money(ds['mean_interval'][1])}), "
        f"median {money(ds['median'])}",
    ]
    if len(ds["segments"]) > 1:
        lines.append(
            table(
                [
                    [g["name"], pct(g["share"]), g["family"], money(g["mean"]), money(g["median"])]
                    for g in ds["segments"]
                ],
                ["  segment", "share", "family", "mean", "median"],
            )
        )
    a = s["activities"]
    if a is None:
        lines.append(
            f"Activities  none recorded: {s['outbound_per_rep_day']:.2f} outbound "
            "opportunities per rep per working day"
        )
    else:
        lines.append(
            f"Activities  {a['per_rep_day']:.1f} per rep per working day; yield "
            f"{pct(a['opportunity_yield'])} opportunities per activity; lag "
            f"{a['lag']['family']} mean {fmt_days(a['lag']['mean_days'])}"
        )
    mk, tm, cap = s["marketing"], s["team"], s["capacity"]
    lines.append(
        f"Marketing   {mk['per_week']:.1f} opportunities per week ({pct(mk['share'])} of all)"
    )
    lines.append(
        f"Team        {tm['reps']} reps; ramp {tm['ramp_months']:.1f} ± "
        f"{tm['ramp_months_sd']:.1f} months; attrition {pct(tm['attrition_monthly'])} "
        "a month" + ("" if tm["calibrated"] else " (defaults: no reps file)")
    )
    lines.append(
        f"Capacity    {cap['free_deals']:g} open deals before prospecting suffers; "
        f"{cap['deal_hours']:.2g} h per open deal per week"
    )
    lines += calendar_lines(s.get("calendar"))
    tails = [st for st in s["stages"] if st.get("tail")]
    for st in tails:
        t = st["tail"]
        lines.append(
            f"Old deals   {st['name']}: after {t['from_age_days']:.0f} days ({t['at_risk']:,} "
            f"seen): {pct(t['advanced'])} advanced later, {pct(t['never_left'])} "
            "never left"
        )
    if s.get("calls"):
        lines += [""] + reliability_lines(s["calls"])
    if s.get("diagnostics"):
        lines += ["", "What the history contradicts (the model follows it):"]
        lines += [f"  - {d}" for d in s["diagnostics"]]
    lines.append(f"Wrote {output}")
    return "\n".join(lines)


_CHANNEL_WORDS = {
    "outbound": "outbound creation",
    "marketing": "marketing creation",
    "conversion": "conversion (log odds per stage)",
    "speed": "time in stage",
    "pace": "pace of wins",
}


def calendar_lines(cal: dict | None) -> list[str]:
    """The calendar's lines of the calibrate table: each channel next quarter, the clock."""
    if not cal:
        return ["Calendar    steady: no quarter effects or closing clock"]
    lines: list[str] = []
    for name, words in _CHANNEL_WORDS.items():
        c = cal.get(name)
        if not c:
            continue
        n = c["forecast_quarter"]
        effect = (
            f"{n['effect']:+.2f} ± {n['sd']:.2f}"
            if name == "conversion"
            else f"×{math.exp(n['effect']):.2f} (±{n['sd']:.0%})"
        )
        parts = [f"{words} in {n['quarter']}: {effect}", f"quarter shock sd {c['shock_sd']:.2f}"]
        if c["trend"]:
            parts.append(f"trend {c['trend']:+.3f}/quarter")
        if c["season"]:
            parts.append("season " + "/".join(f"{x:+.2f}" for x in c["season"]))
        if c["forgetting"] < 1:
            parts.append(f"forgetting {c['forgetting']:g}")
        lines.append(("Calendar    " if not lines else "            ") + "; ".join(parts))
    if cal.get("closing"):
        won, lost = cal["closing"]["won"], cal["closing"]["lost"]
        lines.append(
            ("Calendar    " if not lines else "            ")
            + f"closing clock: wins {sum(won[-3:]) / 3:.2f}× in the quarter's last three "
            f"weeks, losses {sum(lost[:3]) / 3:.2f}× in its first three"
        )
    return lines


def bench_text(out: dict) -> str:
    sc = out["scenario"]
    m = out["machine"]
    lines = [
        f"Benchmark: {sc['model']}, {sc['reps']} ramped reps, {sc['days']} days from "
        f"{sc['start']}, {sc['open_deals']} open deals · {m['cpu_count']} CPUs, Python "
        f"{m['python']}, NumPy {m['numpy']}",
        "",
    ]
    rows = [
        [
            r["purpose"],
            r["engine"],
            r["reps"],
            r["days"],
            r["workers"],
            f"{r['trials']:,}",
            f"{r['seconds']:.2f}",
            f"{r['trials_per_s']:,.0f}",
            f"{1e3 * r['seconds'] / r['trials']:.3f}",
            f"{r['peak_mb']:,.0f}",
        ]
        for r in out["results"]
    ]
    lines.append(
        table(
            rows,
            [
                "run",
                "engine",
                "reps",
                "days",
                "workers",
                "trials",
                "seconds",
                "trials/s",
                "ms/trial",
                "peak MB",
            ],
        )
    )
    lines.append("")
    if out["vector_vs_simpy"] is not None:
        lines.append(f"vector vs simpy: {out['vector_vs_simpy']:,.0f}× the trials per second")
    if out.get("rng_floor"):
        f = out["rng_floor"]
        lines.append(
            f"RNG floor: {f['draws_per_trial']:,.0f} random numbers per trial take "
            f"{1e6 * f['rng_floor_s']:,.0f} µs to draw; the vector engine takes "
            f"{1e6 * f['vector_s']:,.0f} µs per trial = {f['ratio']:.1f}× the floor "
            "(fastest of {} turns each; single turns: {:.1f}–{:.1f}×)".format(
                f["repeats"], *f["pair_ratio_range"]
            )
        )
    g = out.get("growth", {})
    if "reps_exponent" in g:
        per = ", ".join(f"{x['reps']} reps {x['ms_per_trial']:.2f}" for x in g["reps"])
        lines.append(f"cost vs reps (ms/trial): {per} → grows as reps^{g['reps_exponent']:.2f}")
    if "horizon_exponent" in g:
        per = ", ".join(f"{x['days']} days {x['ms_per_trial']:.2f}" for x in g["horizon"])
        lines.append(
            f"cost vs horizon (ms/trial): {per} → grows as days^{g['horizon_exponent']:.2f}"
        )
    if out.get("targets"):
        lines += ["", "Targets"]
        for t in out["targets"].values():
            lines.append(
                f"  {'met    ' if t['met'] else 'NOT met'}  {t['target']}: {t['value']:,.2f}"
            )
    return "\n".join(lines)


def inspect_text(s: dict, layout: str, profile: str | None, as_of) -> str:
    """What ``salesim inspect`` read (``calibrate.ingest.summarize``'s document)."""
    out: list[str] = []
    st = s["by_status"]
    profile = f", profile {profile}" if profile else ""
    out.append(f"History {s['source']} ({layout}{profile})" + (f" as of {as_of}" if as_of else ""))
    for name, path in s["files"].items():
        n = s["rows"].get(name)
        out.append(f"  {name:<18} {path or 'not found'}" + (f" ({n:,} rows)" if n else ""))
    out.append(
        f"Opportunities  {s['opportunities']:,} (open {st['open']:,}, won {st['won']:,}, "
        f"lost {st['lost']:,}); amounts open {money(s['amount']['open'])}, "
        f"won {money(s['amount']['won'])}, lost {money(s['amount']['lost'])}"
    )
    d = s["dates"]
    closed = (
        f"closed {d['closed_first']} … {d['closed_last']}" if d["closed_first"] else "none closed"
    )
    out.append(
        f"Dates          created {d['created_first']} … {d['created_last']}; {closed}; "
        f"last date {d['last_date']}"
    )
    out.append(
        f"Stages         {' → '.join(s['stages']) or '-'}"
        + ("" if s["has_stage_history"] else "  (no stage history)")
    )
    fields = _deal_fields_text(s["deal_fields"])
    if fields:
        out.append(f"Deal fields    {fields}")
    keys = ("open", "won", "lost", "total")
    out.append(
        "\n"
        + table(
            [[k] + [f"{v[c]:,}" for c in keys] for k, v in s["by_stage"].items()], ["stage", *keys]
        )
    )
    top = list(s["owners"].items())
    out.append(
        "\n"
        + table(
            [[k] + [f"{v[c]:,}" for c in keys] for k, v in top[:20]],
            [f"owner ({s['n_owners']:,})", *keys],
        )
    )
    if len(top) > 20:
        out.append(f"… and {len(top) - 20:,} more owners (--json lists them all)")
    if len(s["segments"]) > 1 or "all" not in s["segments"]:
        out.append(
            "\n"
            + table(
                [[k] + [f"{v[c]:,}" for c in keys] for k, v in s["segments"].items()],
                ["segment", *keys],
            )
        )
    if s["notes"]:
        out.append("\nNotes")
        for note in s["notes"]:
            out.append(f"  - {note}")
    return "\n".join(out)


def _deal_fields_text(f: dict) -> str:
    """One line of what the deal fields hold (``calibrate.ingest.summarize``'s ``deal_fields``)."""
    parts = []
    if f["columns"]:
        parts.append(", ".join(f["columns"]))
    if "expected_close" in f["columns"]:
        parts.append(f"{f['open_with_expected_close']:,} open deals with an expected close date")
    if f["forecast_categories"]:
        parts.append(
            "categories " + ", ".join(f"{c} {n:,}" for c, n in f["forecast_categories"].items())
        )
    if f["close_date_changes"] is not None:
        parts.append(
            f"{f['close_date_changes']:,} close-date changes: {f['pushed_deals']:,} deals "
            f"pushed, {f['pulled_in_deals']:,} pulled in"
        )
    if f.get("category_changes") is not None:
        parts.append(f"{f['category_changes']:,} forecast-category changes")
    if f["managers"]:
        n = len(f["managers"])
        parts.append(f"{n:,} manager{'s' if n != 1 else ''}")
    if f["regions"]:
        parts.append("regions " + ", ".join(f["regions"]))
    return "; ".join(parts)


def demo_data_text(s: dict) -> str:
    """What ``salesim demo-data`` wrote (``scenarios.demo.write_demo_data``'s document)."""
    directory, export, seed, files = s["dir"], s["export"], s["seed"], s["files"]
    out: list[str] = []
    layout = "" if export == "canonical" else f" as a {export} export"
    out.append(
        f"Wrote demo history to {directory}{layout} (seed {seed}): {s['start']} to {s['as_of']}"
    )
    out.append(
        f"  opportunities  {s['opportunities']:,} (won {s['won']:,}, lost {s['lost']:,}, "
        f"open {s['open']:,})"
    )
    out.append(
        f"  reps           {s['reps']:,} ({s['reps_hired']:,} hired, {s['reps_left']:,} "
        f"left, {s['reps_active']:,} on the team at as-of)"
    )
    out.append(
        f"  rows           stage history {s['stage_history_rows']:,}, "
        f"activities {s['activity_rows']:,}"
    )
    if s["ingredients"]:
        out.append(
            "  changing       " + ", ".join(f"{k} {v:g}" for k, v in s["ingredients"].items())
        )
    out.append(f"  truth          {files['truth']}")
    return "\n".join(out)


def demo_text(out: dict) -> str:
    """``salesim demo``: the history, the calibration against its truth, the forecast, the
    levers and the files written (``scenarios.demo.run_demo``'s document)."""
    h = out["history"]
    rows = [
        [
            r["stage"],
            f"{r['truth']:.3f}",
            f"{r['fitted']:.3f}",
            f"[{r['lo']:.3f}, {r['hi']:.3f}]",
            "yes" if r["covered"] else "NO",
        ]
        for r in out["truth_vs_fit"]
    ]
    return "\n".join(
        [
            f"Demo history: {h['opportunities']:,} opportunities ({h['won']:,} won, "
            f"{h['lost']:,} lost, {h['open']:,} open) from {h['start']} to {h['as_of']}\n",
            calibration_text(out["calibration"], out["files"]["model.toml"]),
            "\nCalibration against the truth that generated the history:",
            table(rows, ["stage", "true p", "fitted p", "90% interval", "covers truth"]),
            "\n" + forecast_text(out["forecast"]),
            "\n" + compare_text(out["compare"]),
            "\nFiles:",
            *(f"  {name:<18} {path}" for name, path in out["files"].items()),
        ]
    )


# --- rep judgement: forecast categories (calibrate/categories.py) -------------------------------
_CATEGORY_WORDS = {
    "commit": "Commit",
    "best_case": "Best case",
    "pipeline": "Pipeline",
    "omitted": "Omitted",
}


def reliability_lines(c: dict) -> list[str]:
    """The calibrate table's block on forecast categories: share won in quarter per
    category and team, and the reps whose calls run hot or cold, with the evidence."""
    level = f"{100 * c['level']:.0f}%"

    def row(r: dict, name: str) -> list[str]:
        lo, hi = r["rate_interval"]
        return [
            name,
            f"{r['won']:,} / {r['calls']:,}",
            pct(r["rate"]),
            f"{pct(lo)} – {pct(hi)}",
            pct(r["amount_rate"]),
        ]

    rows = [row(r, _CATEGORY_WORDS[r["category"]]) for r in c["categories"]]
    rows += [row(r, f"  {_CATEGORY_WORDS[r['category']]}, {r['team']}") for r in c["teams"]]
    lines = [
        f"Forecast categories: share of calls won inside their quarter ({c['quarters']} quarters)",
        table(rows, ["category", "won / calls", "share", f"{level} interval", "by amount"]),
    ]
    if not c["named"]:
        lines.append(f"  no rep's calls run hot or cold ({c['reps_judged']} reps judged)")
    for r in c["named"]:
        lo, hi = r["rate_interval"]
        how = "hot (over-calls)" if r["call"] == "hot" else "cold (sandbags)"
        lines.append(
            f"  {r['rep']}: {_CATEGORY_WORDS[r['category']].lower()} calls run {how}: "
            f"{r['won']} of {r['calls']} won in quarter, {pct(r['rate'])} shrunk "
            f"({100 * c['naming_level']:.0f}%: {pct(lo)} – {pct(hi)}) against "
            f"{pct(r['peers_rate'])} for their peers"
        )
    return lines


def calls_now_lines(c: dict, fc: dict) -> list[str]:
    """The reps' call beside the simulation: each category's open amount this quarter and
    what the history says it converts to ("Commit 2.1M; history says commit converts 74% →
    1.55M")."""
    lines = [
        f"The reps' call for {c['quarter'][0]} to {c['quarter'][1]}, on the record of "
        f"{c['quarters_measured']} quarters (calls open on the same day of the quarter)"
    ]
    for r in c["categories"]:
        name = _CATEGORY_WORDS[r["category"]]
        if r["rate"] is None:
            lines.append(
                f"  {name} {money(r['amount'])} ({r['deals']} deals); no past calls to judge by"
            )
            continue
        lo, hi = r["value_interval"]
        lines.append(
            f"  {name} {money(r['amount'])} ({r['deals']} deals); history says "
            f"{name.lower()} converts {pct(r['rate'])} → {money(r['value'])} "
            f"({money(lo)} – {money(hi)})"
        )
    if all(r["rate"] is None for r in c["categories"]):
        return lines
    closed = fc.get("closed_to_date") or 0.0
    lines.append(
        f"  Closed to date {money(closed)} + calls {money(c['value'])} = "
        f"{money(closed + c['value'])}; simulation P50 {money(fc['revenue']['p50'])}"
    )
    return lines
