"""Scenario files: parsing, validation (key and line), lever syntax, strategy → SimSpec."""

import dataclasses
import datetime as dt
import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim.scenarios.capacity import minimal_count, ramped_quota
from salesim.scenarios.scenario import (
    Hire,
    KeyLines,
    LeverError,
    Strategy,
    apply_strategy,
    load_scenario,
    overall_win_rate,
    parse_headcount,
    parse_lever_args,
    parse_multiplier,
)
from salesim.scenarios.velocity import baseline_velocity, velocity_factor
from salesim.simulator import model as model_io
from salesim.simulator.distributions import Exponential
from salesim.simulator.errors import InputError
from salesim.simulator.spec import DAYS_PER_MONTH, Levers, Rep, SimSpec
from tests.factories import simple_model, stage

START = dt.date(2026, 7, 1)


def two_stage_model(**kw):
    return simple_model(
        stages=(
            stage("Qualify", 0.5, Exponential(10.0), Exponential(5.0)),
            stage("Close", 0.4, Exponential(20.0), Exponential(8.0)),
        ),
        **kw,
    )


def write(tmp_path, body: str, model=None):
    model_io.save(model or two_stage_model(quota=100_000.0), tmp_path / "model.toml")
    path = tmp_path / "plan.toml"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def error_of(tmp_path, body: str) -> InputError:
    with pytest.raises(InputError) as info:
        load_scenario(write(tmp_path, body))
    return info.value


FULL = """
    model = "model.toml"
    quarter = "2026-Q3"
    quota = "1.2M"
    trials = 500
    seed = 11

    [team]
    reps = 4
    quota_per_rep = "300k"
    tenure_months = 18

    [hiring]
    lag_days = 45
    ramp_months = 4
    [[hiring.hire]]
    date = 2026-08-01
    count = 2

    [attrition]
    monthly = 0.03
    backfill = true

    [marketing]
    weekly = 2.5

    [time]
    week_hours = 45
    deal_hours = 0.5

    [strategies.push]
    prospecting = "+20%"
    cost = "50k"

    [strategies.close_better]
    win_rate = "+5pp"
    deal_size = 1.1

    [strategies.hire]
    headcount = "+3@2026-09-01"
    cycle_time = "-15%"
    deal_hours = "0.25h"
    prune_stale = "120d"
"""


# --- parsing ------------------------------------------------------------------------------------
def test_full_scenario_parses(tmp_path):
    sc = load_scenario(write(tmp_path, FULL))
    assert sc.start == dt.date(2026, 7, 1) and sc.days == 92
    assert sc.quota == 1.2e6 and sc.trials == 500 and sc.seed == 11
    assert [r.name for r in sc.reps] == ["rep1", "rep2", "rep3", "rep4"]
    assert sc.reps[0].quota == 300_000
    assert sc.reps[0].tenure_days == pytest.approx(18 * DAYS_PER_MONTH)
    assert sc.hires == (Hire(2, dt.date(2026, 8, 1)),)
    assert sc.hiring_lag_days == 45 and sc.backfill is True
    # plan overrides live in the scenario's copy of the model, taken as given
    assert sc.model.team.ramp_months == 4 and sc.model.team.ramp_months_sd == 0
    assert sc.model.team.attrition.mean == pytest.approx(0.03)
    assert sc.model.marketing.weekly.mean == pytest.approx(2.5)
    assert (sc.model.capacity.week_hours, sc.model.capacity.deal_hours) == (45, 0.5)
    push, close, hire = sc.strategies
    assert push.levers == Levers(prospecting=1.2) and push.cost == 50_000
    w = overall_win_rate(sc.model)
    assert close.levers.win_rate == pytest.approx((w + 0.05) / w)
    assert close.levers.deal_size == 1.1
    assert hire.hires == (Hire(3, dt.date(2026, 9, 1)),)
    assert hire.levers == Levers(cycle_time=0.85, deal_hours=0.25, prune_stale_days=120)


def test_model_path_is_relative_to_the_scenario(tmp_path):
    sub = tmp_path / "plans"
    sub.mkdir()
    model_io.save(two_stage_model(), tmp_path / "m.toml")
    (sub / "p.toml").write_text('model = "../m.toml"\nstart = 2026-07-01\n')
    assert load_scenario(sub / "p.toml").model_path == sub / "../m.toml"


@pytest.mark.parametrize(
    "body, key, line, words",
    [
        (
            'model = "model.toml"\n[strategies.a]\nprospecting = "lots"\n',
            "strategies.a.prospecting",
            3,
            "+20%",
        ),
        (
            'model = "model.toml"\n\n[strategies.a]\ncost = 1\n\n'
            "[strategies.b]\nprospectin = 1.2\n",
            "strategies.b.prospectin",
            7,
            "unknown lever",
        ),
        ('model = "model.toml"\n[team]\nreps = 0\n', "team.reps", 3, "between 1 and"),
        ('model = "model.toml"\n[team]\nreps = 2\nsize = 3\n', "team.size", 4, "unknown key"),
        (
            'model = "model.toml"\nquarter = "2026-Q3"\n[[hiring.hire]]\ndate = 2026-08-01\n'
            "[[hiring.hire]]\ndate = 2026-12-01\n",
            "hiring.hire[1].date",
            6,
            "after the horizon",
        ),
        (
            'model = "model.toml"\n[strategies.a]\nheadcount = {count = 2, date = "soon"}\n',
            "strategies.a.headcount",
            3,
            "YYYY-MM-DD",
        ),
        (
            'model = "model.toml"\n[strategies.a]\ncycle_time = "x0"\n',
            "strategies.a.cycle_time",
            3,
            "> 0",
        ),
        (
            'model = "model.toml"\n[strategies.a]\nwin_rate = "+90pp"\n',
            "strategies.a.win_rate",
            3,
            "outside",
        ),
        (
            'model = "model.toml"\n[strategies.a]\nyield = "+5pp"\n',
            "strategies.a.yield",
            3,
            "only apply to win-rate",
        ),
        ('model = "model.toml"\n[attrition]\nmonthly = 2\n', "attrition.monthly", 3, "between"),
        (
            'model = "model.toml"\nstrategies.x.deal_size = "big"\n',
            "strategies.x.deal_size",
            2,
            "cannot read",
        ),
        (
            'model = "model.toml"\n[time]\ndeal_hours = 5\n',
            "time.deal_hours",
            3,
            "no prospecting time",
        ),
        ('model = "model.toml"\nquota = -3\n', "quota", 2, "amount"),
        (
            'model = "model.toml"\n[strategies.baseline]\nprospecting = 1.1\n',
            "strategies.baseline",
            2,
            "reserved",
        ),
        ('model = "nowhere.toml"\n', "model", 1, "not found"),
    ],
)
def test_validation_names_key_and_line(tmp_path, body, key, line, words):
    model = two_stage_model(
        quota=100_000.0, capacity=dataclasses.replace(two_stage_model().capacity, free_deals=10)
    )
    with pytest.raises(InputError) as info:
        load_scenario(write(tmp_path, body, model))
    exc = info.value
    assert exc.key == key and exc.line == line
    assert exc.file.endswith("plan.toml")
    assert words in str(exc) and f"line {line}, key '{key}'" in str(exc)


def test_invalid_toml_and_missing_model(tmp_path):
    assert "not valid TOML" in str(error_of(tmp_path, "model = \n"))
    assert "name its model" in str(error_of(tmp_path, "quarter = '2026-Q3'\n"))


def test_key_lines_tables_arrays_and_dotted_keys():
    text = textwrap.dedent("""
        a = 1  # comment
        [t]
        "quoted key" = 2
        sub.x = 3
        [[arr.item]]
        v = 1
        [[arr.item]]
        v = 2
        w = {p = 1, q = 2}
        [arr.item.deep]
        z = 0
    """)
    k = KeyLines(text)
    assert k.line(("a",)) == 2
    assert k.line(("t", "quoted key")) == 4
    assert k.line(("t", "sub", "x")) == 5
    assert k.line(("arr", "item", 0, "v")) == 7
    assert k.line(("arr", "item", 1, "v")) == 9
    assert k.line(("arr", "item", 1, "w", "q")) == 10  # inside an inline table
    assert k.line(("arr", "item", 1, "deep", "z")) == 12
    assert k.line(("t", "missing")) == 3  # nearest enclosing table
    assert k.line(("nowhere",)) is None


# --- lever syntax -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, value",
    [
        ("+20%", 1.2),
        ("-15%", 0.85),
        ("20%", 1.2),
        ("x1.2", 1.2),
        ("×0.5", 0.5),
        ("*2", 2.0),
        (1.3, 1.3),
        (2, 2.0),
        ("+0%", 1.0),
        ("-100%", 0.0),
    ],
)
def test_multiplier_syntax(text, value):
    assert parse_multiplier(text, lever="prospecting") == pytest.approx(value)


@pytest.mark.parametrize("text", ["1.2", "lots", "+20", "x", "-120%", True, [1], "+5pp"])
def test_multiplier_syntax_rejects(text):
    with pytest.raises(LeverError):
        parse_multiplier(text, lever="prospecting")


def test_percentage_points_are_relative_to_the_overall_win_rate():
    assert parse_multiplier("+5pp", lever="win_rate", win_rate=0.2) == pytest.approx(1.25)
    assert parse_multiplier("-5pp", lever="win_rate", win_rate=0.2) == pytest.approx(0.75)
    with pytest.raises(LeverError):
        parse_multiplier("+5pp", lever="win_rate", win_rate=0.0)


def test_headcount_syntax():
    assert parse_headcount("+3@2026-11-01") == Hire(3, dt.date(2026, 11, 1))
    assert parse_headcount("2") == Hire(2, None)
    assert parse_headcount(4) == Hire(4, None)
    assert parse_headcount({"count": 1, "date": dt.date(2026, 8, 3), "quota": "250k"}) == Hire(
        1, dt.date(2026, 8, 3), 250_000.0
    )
    for bad in ("-2", "three", "+2@tomorrow", {"date": dt.date(2026, 8, 3)}, {"count": 1, "x": 1}):
        with pytest.raises(LeverError):
            parse_headcount(bad)


def test_cli_levers():
    model = two_stage_model()
    a, b = parse_lever_args(
        ["prospecting=+20%", "win-rate=+5pp,deal-size=+10%,prune-stale=90d"], model=model
    )
    assert a.name == "prospecting=+20%" and a.levers == Levers(prospecting=1.2)
    w = overall_win_rate(model)
    assert b.levers.win_rate == pytest.approx((w + 0.05) / w)
    assert dataclasses.replace(b.levers, win_rate=1.0) == Levers(
        deal_size=1.1, prune_stale_days=90.0
    )
    (c,) = parse_lever_args(
        [
            "headcount=+3@2026-11-01",
        ],
        model=model,
    )
    assert c.hires == (Hire(3, dt.date(2026, 11, 1)),)
    for bad in ["prospecting", "speed=+20%", "cycle-time=-100%", "deal-hours=-1"]:
        with pytest.raises(InputError) as info:
            parse_lever_args([bad], model=model)
        assert info.value.column == "--lever"


# --- strategy → SimSpec ---------------------------------------------------------------------------
def spec(model=None, n=3, **kw):
    model = model or two_stage_model(quota=100_000.0)
    reps = tuple(Rep(f"r{i}", quota=100_000.0) for i in range(n))
    return SimSpec(model=model, reps=reps, start=START, days=91, **kw)


def test_neutral_strategy_leaves_the_spec_unchanged():
    s = spec()
    neutral = Strategy("n", Levers(prospecting=1.0, win_rate=1.0), (Hire(0, START),))
    assert apply_strategy(s, neutral) is s


def test_strategy_adds_reps_and_keeps_the_team_quota():
    s = spec(levers=Levers(prospecting=2.0))
    st_ = Strategy("grow", Levers(prospecting=1.5, deal_hours=0.5), (Hire(2, dt.date(2026, 8, 1)),))
    out = apply_strategy(s, st_)
    assert out.levers == Levers(prospecting=3.0, deal_hours=0.5)
    added = out.reps[3:]
    assert [r.start_day for r in added] == [31, 31] and all(r.tenure_days == 0 for r in added)
    assert all(r.quota == 100_000 for r in added)
    assert len({r.name for r in out.reps}) == 5
    assert out.team_quota == s.team_quota == 300_000
    with pytest.raises(InputError):
        apply_strategy(s, Strategy("late", hires=(Hire(1, dt.date(2026, 12, 1)),)))


def test_ramped_quota_counts_time_in_seat_and_ramp():
    m = two_stage_model(ramp_months=3.0)
    s = SimSpec(
        model=m,
        reps=(
            Rep("a", tenure_days=400, quota=90.0),
            Rep("b", tenure_days=0, start_day=0, quota=90.0),
        ),
        start=START,
        days=91,
        attrition=False,
    )
    days = [d / DAYS_PER_MONTH / 3 for d in range(91)]
    expected = 90 * 91 / 92 + 90 * sum(min(1, x) for x in days) / 92  # Q3 has 92 days
    assert ramped_quota(s) == pytest.approx(expected)
    full = dataclasses.replace(s, days=92, reps=s.reps[:1])
    assert ramped_quota(full) == pytest.approx(90)  # a full ramped quarter
    half = dataclasses.replace(s, days=184, reps=s.reps[:1])  # Q3 + Q4
    assert ramped_quota(half) == pytest.approx(180)
    leaving = dataclasses.replace(full, attrition=True, model=two_stage_model(attrition=0.1))
    assert ramped_quota(leaving) == pytest.approx(
        90 * sum(math.exp(-0.1 * d / DAYS_PER_MONTH) for d in range(92)) / 92
    )


# --- velocity equation ----------------------------------------------------------------------------
def test_velocity_terms_and_factors():
    m = two_stage_model(per_rep_day=4.0, opportunity_yield=0.25, marketing_weekly=7.0)
    s = spec(m, n=2)
    v = baseline_velocity(s)
    outbound = 2 * 4.0 * 0.25 * 5 / 7
    assert v.win_rate == pytest.approx(0.2)
    assert v.cycle_days == pytest.approx(30.0)
    assert v.deal_size == pytest.approx(10_000)
    assert v.per_day == pytest.approx((outbound + 1.0) * 0.2 * 10_000)
    share = outbound / (outbound + 1.0)
    assert velocity_factor(s, Levers(prospecting=1.2)) == pytest.approx(1 + 0.2 * share)
    assert velocity_factor(s, Levers(marketing_pipeline=2)) == pytest.approx(2 - share)
    assert velocity_factor(s, Levers(), added_reps=2) == pytest.approx(1 + share)
    assert velocity_factor(s, Levers(win_rate=1.1, deal_size=1.2, cycle_time=0.8)) == pytest.approx(
        1.1 * 1.2 / 0.8
    )
    assert velocity_factor(s, Levers(prune_stale_days=30)) is None
    assert velocity_factor(s, Levers()) == 1.0


# --- search -------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(answer=st.integers(0, 5000), hi=st.integers(0, 5000), start=st.integers(0, 5000))
def test_minimal_count_finds_the_threshold_in_log_steps(answer, hi, start):
    calls = []

    def meets(n):
        calls.append(n)
        return n >= answer

    got = minimal_count(meets, lo=0, hi=hi, start=start or None)
    if answer > hi:
        assert got is None
    else:
        assert got == answer
        if answer > 0:
            assert answer - 1 in calls  # minimality was checked
    assert len(calls) <= 2 * math.log2(hi + 2) + 3


# --- scenario → SimSpec ---------------------------------------------------------------------------
def test_scenario_spec_builds_team_hires_and_plan(tmp_path):
    from salesim.scenarios.scenario import scenario_spec

    s = scenario_spec(load_scenario(write(tmp_path, FULL)))
    assert (s.start, s.days) == (dt.date(2026, 7, 1), 92)
    assert [r.name for r in s.reps] == ["rep1", "rep2", "rep3", "rep4", "plan-hire1", "plan-hire2"]
    hires = s.reps[4:]
    assert all(r.start_day == 31 and r.tenure_days == 0 and r.quota == 300_000 for r in hires)
    assert s.quota == 1.2e6 and s.team_quota == 1.2e6
    assert s.attrition and s.backfill and s.hiring_lag_days == 45
    assert s.open_deals.height == 0 and s.levers.neutral
    assert s.model.team.quota == 300_000  # quota_per_rep is every seat's default


def test_scenario_mid_quarter_runs_the_rest_and_seats_earlier_hires(tmp_path):
    from salesim.scenarios.scenario import scenario_spec

    body = (
        'model = "model.toml"\nas_of = 2026-08-15\nquarter = "2026-Q3"\n[team]\nreps = 2\n'
        "[[hiring.hire]]\ndate = 2026-08-01\n[[hiring.hire]]\ndate = 2026-09-01\n"
        "[attrition]\nmonthly = 0\n"
    )
    s = scenario_spec(load_scenario(write(tmp_path, body)))
    assert (s.start, s.days) == (dt.date(2026, 8, 16), 46)
    early, late = s.reps[2:]
    assert (early.start_day, early.tenure_days) == (0, 15)
    assert (late.start_day, late.tenure_days) == (16, 0)
    assert not s.attrition
    assert s.quota == 200_000  # current reps only, not the hires


def test_scenario_needs_a_team_when_the_model_has_none(tmp_path):
    m = dataclasses.replace(
        two_stage_model(), team=dataclasses.replace(two_stage_model().team, reps=())
    )
    with pytest.raises(InputError, match=r"\[team\] reps = N"):
        load_scenario(write(tmp_path, 'model = "model.toml"\n', m))


@settings(max_examples=100, deadline=None)
@given(x=st.floats(0.0, 50.0).map(lambda v: round(v, 4)))
def test_multiplier_forms_agree(x):
    assert parse_multiplier(f"x{x}", lever="deal_size") == pytest.approx(x)
    assert parse_multiplier(f"+{x}%", lever="deal_size") == pytest.approx(1 + x / 100)
    if x <= 100:
        assert parse_multiplier(f"-{x}%", lever="deal_size") == pytest.approx(1 - x / 100)
