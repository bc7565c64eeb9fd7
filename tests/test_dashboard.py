"""Dashboard: the colour rule, colours that move with the plan, no leakage past the as-of
date, coaching pointers that follow the red lines, the HTML report and the CLI contract."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim import cli
from salesim.calibrate.fit import calibrate
from salesim.scenarios import dashboard as dash
from salesim.scenarios.dashboard import Line, Measure, Stoplight, measure, worst
from salesim.scenarios.html_report import render
from salesim.simulator.demo_history import generate
from salesim.simulator.model import save

D = dt.date
AS_OF = D(2026, 5, 13)  # day 43, week 7 of 2026-Q2
TRIALS = 200


# --- the colour rule ---------------------------------------------------------------------------
def test_measure_thresholds():
    plan = np.arange(1, 101, dtype=float)  # P20 = 20, P50 = 50 (inverted CDF)
    assert measure("x", "count", 50.0, plan).status == "green"
    assert measure("x", "count", 49.9, plan).status == "yellow"
    assert measure("x", "count", 20.0, plan).status == "yellow"
    assert measure("x", "count", 19.9, plan).status == "red"
    m = measure("x", "count", 50.0, plan)
    assert (m.plan_p20, m.plan_p50) == (20.0, 50.0)
    assert m.percentile == pytest.approx(0.495)  # 49 below, one tie counted half
    assert measure("x", "count", None, plan).status == "n/a"
    assert worst(["green", "n/a", "yellow"]) == "yellow"
    assert worst(["green", "red", "yellow"]) == "red"


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(st.floats(0, 1e6), min_size=1, max_size=50),
    a=st.floats(0, 1e6),
    b=st.floats(0, 1e6),
)
def test_measure_is_monotone(plan, a, b):
    """More of a good thing never makes the colour worse."""
    lo, hi = sorted((a, b))
    rank = {"green": 0, "yellow": 1, "red": 2}
    assert (
        rank[measure("x", "money", hi, plan).status] <= rank[measure("x", "money", lo, plan).status]
    )


# --- end to end on demo history ----------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Demo history to the end of June; the plan is calibrated on the day before the quarter."""
    root = tmp_path_factory.mktemp("dash")
    demo = generate(np.random.default_rng(21), reps=4, quarters=5, as_of=D(2026, 6, 30))
    hist_dir = root / "hist"
    hist_dir.mkdir()
    for name, text in demo.csv_texts().items():
        (hist_dir / name).write_text(text)
    history = demo.to_history()
    model = calibrate(history, D(2026, 3, 31))
    save(model, root / "model.toml")
    (root / "plan.toml").write_text(
        'model = "model.toml"\nquarter = "2026-Q2"\nquota = "1.4M"\n'
        '[strategies.double]\nprospecting = "x2"\n'
        '[strategies.half]\nprospecting = "x0.5"\n'
    )
    plan = dash.load_plan(root / "plan.toml")
    d = dash.build_dashboard(history, plan, AS_OF, trials=TRIALS, seed=3)
    return {"root": root, "history": history, "hist_dir": hist_dir, "plan": plan, "d": d}


def test_structure_and_numbers_behind_colours(setup):
    d = setup["d"]
    assert (d.quarter_start, d.quarter_end, d.week, d.weeks) == (
        D(2026, 4, 1),
        D(2026, 6, 30),
        7,
        13,
    )
    assert d.quota == 1.4e6
    assert len(d.reps) >= 3 and {r.who for r in d.reps} <= set(d.health.reps["owner"])
    for light in (d.team, *d.reps):
        assert [x.name for x in light.lines] == ["activities", "pipeline", "forecast"]
        for line in light.lines:
            for m in line.measures:
                assert m.status in ("green", "yellow", "red")
                # the colour is exactly the rule applied to the numbers shown
                want = (
                    "green"
                    if m.actual >= m.plan_p50
                    else "yellow"
                    if m.actual >= m.plan_p20
                    else "red"
                )
                assert m.status == want
                assert m.plan_p20 <= m.plan_p50
    team = d.team
    assert team.line("activities").measures[0].actual == d.health.reps["activities_qtd"].sum()
    assert team.line("pipeline").measures[0].actual == d.health.waterfall.amount["created"]
    cov = team.line("pipeline").measures[1]
    assert cov.name == "coverage"
    assert cov.actual == pytest.approx((d.health.won_qtd + d.health.open_pipeline) / d.quota)
    assert team.line("pipeline").detail["to_go_coverage"] == pytest.approx(d.health.coverage)
    f = d.forecast
    assert 0 <= f["p_quota"] <= 1 and 0 <= f["plan_p_quota"] <= 1
    assert f["revenue"]["p10"] <= f["revenue"]["p50"] <= f["revenue"]["p90"]
    # the forecast counts what is already won: never below it
    assert f["revenue"]["p10"] >= f["won_to_date"]
    t = d.trajectory
    assert len(t["weeks"]) == 13 and len(t["actual"]) == 7 == len(t["actual_weeks"])
    assert t["actual"][-1] == d.health.won_qtd
    assert t["forecast_weeks"][0] == AS_OF and t["forecast"]["p50"][0] == d.health.won_qtd
    for k in ("p10", "p20", "p50", "p80", "p90"):
        assert len(t["plan"][k]) == 13
    assert np.all(np.diff(t["plan"]["p50"]) >= 0)
    json.dumps(cli._clean(d.to_dict()))


def test_pointers_follow_red_lines(setup):
    d = setup["d"]
    for light in (d.team, *d.reps):
        red = [x.name for x in light.lines if x.status == "red"]
        if not red:
            assert light.pointers == ()
        for name, word in (("activities", "Activities"), ("forecast", "Forecast")):
            assert (name in red) == any(p.startswith(word) for p in light.pointers)


def test_colours_move_with_the_plan(setup):
    """The same actuals are red against a plan that doubles prospecting and green against
    one that halves it: thresholds come from the plan's own trajectories."""
    sc = setup["plan"][0]
    by_name = {s.name: s for s in sc.strategies}
    out = {}
    for name in ("double", "half"):
        d = dash.build_dashboard(
            setup["history"], (sc, by_name[name]), AS_OF, trials=TRIALS, seed=3
        )
        out[name] = d
    base = setup["d"].team.line("activities").measures[0]
    dbl = out["double"].team.line("activities").measures[0]
    half = out["half"].team.line("activities").measures[0]
    assert dbl.actual == half.actual == base.actual
    assert dbl.plan_p50 > base.plan_p50 > half.plan_p50
    assert dbl.status == "red" and half.status == "green"
    assert "double" in out["double"].plan
    # a red activities line gets a prospecting pointer
    assert any(
        p.startswith("Activities") and "prospecting" in p for p in out["double"].team.pointers
    )


def test_nothing_after_as_of_leaks(setup):
    """A history that goes on past the as-of date gives the same dashboard as the history
    cut at it."""
    h = setup["history"]
    cut = h.as_of(AS_OF)
    a = setup["d"].to_dict()
    b = dash.build_dashboard(cut, setup["plan"], AS_OF, trials=TRIALS, seed=3).to_dict()
    for key in ("team", "reps", "forecast", "trajectory"):
        assert a[key] == b[key]
    for key in ("waterfall", "velocity", "stale", "strike_zone", "reps", "weekly_won"):
        assert a["health"][key] == b["health"][key]


def test_seat_spec_takes_its_share():
    import polars as pl

    from salesim.simulator.spec import Rep, SimSpec
    from tests.factories import simple_model

    deals = pl.DataFrame(
        {
            "opportunity_id": ["1", "2", "3"],
            "owner": ["a", "b", "a"],
            "stage": ["Qualify"] * 3,
            "age_days": [1.0, 2.0, 3.0],
            "amount": [1.0, 2.0, 3.0],
            "segment": ["all"] * 3,
        }
    )
    d_plan = SimSpec(
        simple_model(),
        (Rep("a", quota=10.0), Rep("b", quota=20.0), Rep("c", start_day=30.0)),
        D(2026, 4, 1),
        91,
        deals,
        quota=30.0,
    )
    s = dash.seat_spec(d_plan, 0, 40)
    assert [r.name for r in s.reps] == ["a"] and s.days == 40 and s.quota == 10.0
    assert s.open_deals["opportunity_id"].to_list() == ["1", "3"]
    assert s.levers.marketing_pipeline == pytest.approx(0.5)  # two seats active on day 0
    assert not s.attrition


def test_pointer_rules(setup):
    """Hand-set colours: each red line gets the pointer for its part of the chain."""
    d = setup["d"]
    ctx = dash._Context(
        d.health,
        dataclasses.replace(
            dash.plan_spec(setup["plan"], setup["history"], d.quarter_start, d.quarter_end)
        ),
    )

    def m(name, unit, actual, p20, p50, status):
        return Measure(name, unit, actual, p20, p50, 0.1, status)

    ok_acts = Line("activities", (m("activities", "count", 100, 80, 100, "green"),))
    red_acts = Line("activities", (m("activities", "count", 10, 80, 100, "red"),))
    thin = Line(
        "pipeline",
        (m("pipeline_created", "money", 1e5, 4e5, 5e5, "red"),),
        {"created_deals": 3, "plan_created_deals_p50": 10.0},
    )
    ok_pipe = Line(
        "pipeline",
        (m("pipeline_created", "money", 5e5, 4e5, 5e5, "green"),),
        {"created_deals": 10, "plan_created_deals_p50": 10.0},
    )
    bad_fc = Line(
        "forecast",
        (m("forecast_p50", "money", 1e5, 5e5, 6e5, "red"),),
        {"p_quota": 0.1, "plan_p_quota": 0.5},
    )
    ok_fc = Line("forecast", (m("forecast_p50", "money", 7e5, 5e5, 6e5, "green"),), {})

    p = dash.pointers(Stoplight("team", 1e6, (red_acts, thin, ok_fc)), ctx, None)
    assert len(p) == 2 and "prospecting volume" in p[0]
    assert "activities are low ⇒ prospecting/territory" in p[1]
    p = dash.pointers(Stoplight("team", 1e6, (ok_acts, thin, ok_fc)), ctx, None)
    assert len(p) == 1 and "targeting and territory" in p[0]
    p = dash.pointers(Stoplight("team", 1e6, (ok_acts, ok_pipe, bad_fc)), ctx, None)
    assert len(p) == 1 and "deal execution" in p[0] and "win rate" in p[0]
    p = dash.pointers(Stoplight("team", 1e6, (ok_acts, thin, bad_fc)), ctx, None)
    assert "fix pipeline first" in p[-1]


def test_html_is_self_contained(setup):
    text = render(setup["d"])
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("data:image/png;base64,") == 3
    # nothing fetched from anywhere: no external src/href, no scripts
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text)
    assert "<script" not in text and "@import" not in text
    assert "Stoplight" in text and "Coaching pointers" in text and "Strike zone" in text


# --- CLI ---------------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_cli_json_html_plot(setup, tmp_path):
    root = setup["root"]
    html, png = tmp_path / "r.html", tmp_path / "t.png"
    r = invoke(
        "dashboard",
        setup["hist_dir"],
        "--plan",
        root / "plan.toml",
        "--as-of",
        AS_OF,
        "--trials",
        TRIALS,
        "--seed",
        3,
        "--json",
        "--html",
        html,
        "--plot",
        png,
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) >= {
        "as_of",
        "team",
        "reps",
        "forecast",
        "health",
        "trajectory",
        "thresholds",
        "html",
        "plot",
    }
    assert set(out["team"]["lines"]) == {"activities", "pipeline", "forecast"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in html.read_text()
    # same seed, same numbers as the library call
    assert out["team"] == json.loads(json.dumps(cli._clean(setup["d"].team.to_dict())))

    r = invoke(
        "dashboard",
        setup["hist_dir"],
        "--plan",
        root / "plan.toml",
        "--as-of",
        AS_OF,
        "--trials",
        TRIALS,
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    assert "Stoplight" in r.output and "Pipeline health" in r.output


@pytest.mark.parametrize(
    "args, words",
    [
        (("--as-of", "2026-13-01"), "--as-of"),
        (("--as-of", "2026-08-01"), "quarter"),  # the plan is for Q2
        (("--as-of", AS_OF, "--strategy", "nope"), "strategy"),
        (("--as-of", AS_OF, "--html", "PLAN"), "overwrite"),
    ],
)
def test_cli_bad_input_exits_2(setup, args, words):
    root = setup["root"]
    args = [root / "plan.toml" if a == "PLAN" else a for a in args]
    r = invoke(
        "dashboard",
        setup["hist_dir"],
        "--plan",
        root / "plan.toml",
        "--trials",
        20,
        "--quiet",
        *args,
    )
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output
    assert (root / "plan.toml").read_text().startswith("model = ")
