"""Strategy comparison with common random numbers: exact neutrality, monotone levers, and
timing effects that the velocity equation misses."""

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesim.scenarios.compare import compare, compare_levers, paired_uplift, per_trial, run_spec
from salesim.scenarios.scenario import Hire, Strategy, parse_lever_args
from salesim.scenarios.velocity import velocity_factor
from salesim.simulator.distributions import Exponential, LogNormal
from salesim.simulator.errors import InputError
from salesim.simulator.runner import ENGINES
from salesim.simulator.spec import OPEN_DEAL_COLUMNS, Levers, Rep, SimSpec
from tests.factories import simple_model, stage

ENGINE = "vector" if "vector" in ENGINES else "simpy"
START = dt.date(2026, 7, 1)
K = 3.0  # tolerance in standard errors of the paired difference


def team(n, quota=50_000.0):
    return tuple(Rep(f"r{i}", tenure_days=400.0, quota=quota) for i in range(n))


def open_deals(n, *, stage_name, ages, amount=10_000.0, owners=("r0",)):
    return pl.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "owner": [owners[i % len(owners)] for i in range(n)],
            "stage": [stage_name] * n,
            "age_days": [float(ages[i % len(ages)]) for i in range(n)],
            "amount": [amount] * n,
            "segment": ["all"] * n,
        },
        schema=OPEN_DEAL_COLUMNS,
    )


def run_compare(spec, strategies, trials=300, seed=5):
    return compare(spec, strategies, trials=trials, seed=seed, engine=ENGINE, workers=1)


# --- exact neutrality ---------------------------------------------------------------------------
def test_neutral_strategy_reproduces_the_baseline_exactly():
    m = simple_model(
        stages=(
            stage("Q", 0.5, Exponential(10.0), Exponential(5.0)),
            stage("C", 0.5, Exponential(15.0), Exponential(5.0)),
        ),
        per_rep_day=4.0,
        opportunity_yield=0.1,
        marketing_weekly=1.0,
        rep_sigma=0.3,
        ramp_months=3.0,
        attrition=0.05,
    )
    spec = SimSpec(
        model=m,
        reps=team(3) + (Rep("new", 0.0, 20.0, 50_000.0),),
        start=START,
        days=91,
        open_deals=open_deals(12, stage_name="C", ages=[3, 9, 30], owners=("r0", "r1")),
    )
    (neutral,) = parse_lever_args(
        [
            "prospecting=+0%,yield=x1,win-rate=+0pp,deal-size=-0%,"
            "cycle-time=x1,marketing=+0%,headcount=+0"
        ],
        model=m,
    )
    out = run_compare(spec, [neutral], trials=200)
    base, s = out["baseline"], out["strategies"][0]
    assert s["revenue"] == base["revenue"] and s["p_quota"] == base["p_quota"]
    assert s["uplift"]["mean"] == s["uplift"]["lo"] == s["uplift"]["hi"] == 0.0
    assert s["velocity"]["factor"] == 1.0
    # and the baseline itself is reproducible run to run
    again = per_trial(run_spec(spec, 200, 5, engine=ENGINE, workers=1))
    assert again["revenue"].mean() == base["revenue"]["mean"]


def test_deal_size_scales_new_revenue_trial_by_trial():
    m = simple_model(per_rep_day=4.0, opportunity_yield=0.1)
    spec = SimSpec(
        model=m,
        reps=team(2),
        start=START,
        days=91,
        open_deals=open_deals(5, stage_name="Qualify", ages=[2]),
    )
    base = per_trial(run_spec(spec, 200, 3, engine=ENGINE, workers=1))
    big = per_trial(
        run_spec(
            dataclasses.replace(spec, levers=Levers(deal_size=1.1)),
            200,
            3,
            engine=ENGINE,
            workers=1,
        )
    )
    # common random numbers: the same deals win; only new deals' amounts change
    np.testing.assert_allclose(big["revenue_new"], 1.1 * base["revenue_new"], rtol=1e-12)
    np.testing.assert_array_equal(big["revenue_open"], base["revenue_open"])


# --- monotone under common random numbers -------------------------------------------------------
LEVERS = {
    "more reps": Strategy("more reps", hires=(Hire(2, START + dt.timedelta(days=20)),)),
    "higher yield": Strategy("higher yield", Levers(opportunity_yield=1.3)),
    "higher win rate": Strategy("higher win rate", Levers(win_rate=1.25)),
    "larger deals": Strategy("larger deals", Levers(deal_size=1.2)),
}


@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    p1=st.floats(0.2, 0.9),
    p2=st.floats(0.2, 0.9),
    adv=st.floats(3.0, 60.0),
    lost=st.floats(3.0, 60.0),
    rate=st.floats(1.0, 6.0),
    yld=st.floats(0.02, 0.3),
    reps=st.integers(1, 3),
    n_open=st.integers(0, 15),
    ramp=st.sampled_from([0.0, 2.0]),
    attrition=st.sampled_from([0.0, 0.05]),
    seed=st.integers(0, 2**16),
)
def test_levers_never_lower_expected_revenue(
    p1, p2, adv, lost, rate, yld, reps, n_open, ramp, attrition, seed
):
    m = simple_model(
        stages=(
            stage("Q", p1, Exponential(adv), Exponential(lost)),
            stage("C", p2, LogNormal(adv, 0.5), Exponential(lost)),
        ),
        per_rep_day=rate,
        opportunity_yield=yld,
        ramp_months=ramp,
        attrition=attrition,
        rep_sigma=0.3,
    )
    spec = SimSpec(
        model=m,
        reps=team(reps),
        start=START,
        days=91,
        attrition=attrition > 0,
        open_deals=open_deals(n_open, stage_name="C", ages=[1, 10, 40]),
    )
    out = compare(spec, list(LEVERS.values()), trials=200, seed=seed, engine=ENGINE, workers=1)
    for s in out["strategies"]:
        up = s["uplift"]
        assert up["mean"] >= -K * up["se"], (s["name"], up)


# --- timing: what the velocity equation misses --------------------------------------------------
def cycle_scenario(median_days: float) -> SimSpec:
    """One stage, win rate 40%, all outbound; an open pipeline of mixed ages."""
    m = simple_model(
        stages=(
            stage("Deal", 0.4, LogNormal(median_days, 0.35), LogNormal(median_days * 0.6, 0.35)),
        ),
        per_rep_day=3.0,
        opportunity_yield=0.1,
    )
    ages = np.linspace(0, 1.2 * median_days, 12)
    return SimSpec(
        model=m,
        reps=team(3),
        start=START,
        days=91,
        open_deals=open_deals(36, stage_name="Deal", ages=ages, owners=("r0", "r1", "r2")),
    )


SAME_VALUE = [
    Strategy("prospecting +20%", Levers(prospecting=1.2)),
    Strategy("cycle time /1.2", Levers(cycle_time=1 / 1.2)),
]


def _difference(out):
    by = {s["name"]: s for s in out["strategies"]}
    return by["cycle time /1.2"], by["prospecting +20%"]


def test_levers_have_the_same_velocity_value():
    spec = cycle_scenario(150.0)
    a, b = (velocity_factor(spec, s.levers) for s in SAME_VALUE)
    assert a == pytest.approx(b) == pytest.approx(1.2)


@pytest.mark.parametrize("median_days, cycle_wins", [(150.0, True), (6.0, False)])
def test_cycle_cut_vs_prospecting_depends_on_cycle_length(median_days, cycle_wins):
    """Long cycles: a cycle cut pulls open deals into the quarter while new deals from more
    prospecting cannot close in time. Short cycles: the quarter is near steady state and the
    cut only gains the last few days' deals, so more prospecting wins."""
    spec = cycle_scenario(median_days)
    seed, trials = 21, 400
    base = per_trial(run_spec(spec, trials, seed, engine=ENGINE, workers=1))
    runs = {
        s.name: per_trial(
            run_spec(
                dataclasses.replace(spec, levers=s.levers), trials, seed, engine=ENGINE, workers=1
            )
        )
        for s in SAME_VALUE
    }
    d = paired_uplift(runs["cycle time /1.2"]["revenue"], runs["prospecting +20%"]["revenue"])
    if cycle_wins:
        assert d["mean"] > K * d["se"], d
    else:
        assert d["mean"] < -K * d["se"], d
    # the summary agrees and, for long cycles, explains the gap
    from salesim.scenarios.compare import summarise

    out = summarise(
        spec,
        SAME_VALUE,
        base,
        [runs[s.name] for s in SAME_VALUE],
        trials=trials,
        seed=seed,
        quota=None,
    )
    assert out["strategies"][0]["name"] == ("cycle time /1.2" if cycle_wins else "prospecting +20%")
    if cycle_wins:
        assert any(
            n.startswith("prospecting +20%: acts only on pipeline created") for n in out["notes"]
        )
        cycle, prosp = _difference(out)
        assert cycle["uplift_open"] > 0.5 * cycle["uplift"]["mean"]
        assert prosp["uplift"]["mean"] < 0.5 * prosp["velocity"]["uplift"]


# --- the document -------------------------------------------------------------------------------
def test_compare_levers_document_costs_and_best():
    m = simple_model(per_rep_day=4.0, opportunity_yield=0.1)
    spec = SimSpec(
        model=m,
        reps=team(2),
        start=START,
        days=91,
        open_deals=open_deals(10, stage_name="Qualify", ages=[1, 5]),
    )
    out = compare_levers(
        spec,
        {
            "bigger": Levers(deal_size=1.5),
            "busier": {"prospecting": "+10%"},
            "hire": Strategy("x", hires=(Hire(1, None),)),
        },
        trials=200,
        seed=9,
        costs={"bigger": 1e6, "busier": 1e3},
        engine=ENGINE,
        workers=1,
    )
    assert set(out) >= {"baseline", "strategies", "best"}
    assert set(out["baseline"]) >= {"revenue", "p_quota"}
    assert set(out["baseline"]["revenue"]) == {"mean", "p10", "p50", "p90"}
    names = [s["name"] for s in out["strategies"]]
    assert sorted(names) == ["bigger", "busier", "hire"]
    for s in out["strategies"]:
        assert set(s) >= {"name", "levers", "revenue", "p_quota", "uplift", "uplift_per_cost"}
        assert set(s["uplift"]) >= {"mean", "lo", "hi"}
        assert s["uplift"]["lo"] <= s["uplift"]["mean"] <= s["uplift"]["hi"]
    means = [s["uplift"]["mean"] for s in out["strategies"]]
    assert means == sorted(means, reverse=True)  # ranked
    by = {s["name"]: s for s in out["strategies"]}
    assert by["hire"]["uplift_per_cost"] is None
    assert by["bigger"]["uplift_per_cost"] == pytest.approx(by["bigger"]["uplift"]["mean"] / 1e6)
    assert out["best_by"] == "uplift_per_cost"
    costed = [by["bigger"], by["busier"]]
    assert out["best"] == max(costed, key=lambda s: s["uplift_per_cost"])["name"]
    assert by["bigger"]["levers"] == {"deal_size": 1.5}
    assert by["busier"]["levers"] == {"prospecting": pytest.approx(1.1)}
    with pytest.raises(InputError, match="unknown lever"):
        compare_levers(spec, {"x": {"speed": 2}}, trials=10, seed=1)
    assert by["hire"]["levers"] == {"headcount": [{"count": 1, "date": None}]}
    assert out["baseline"]["p_quota"] == pytest.approx(
        np.mean(per_trial(run_spec(spec, 200, 9, engine=ENGINE, workers=1))["revenue"] >= 100_000)
    )


# --- the command line ---------------------------------------------------------------------------
def _cli_files(tmp_path, strategies: str):
    from salesim.simulator import model as model_io

    m = simple_model(
        per_rep_day=4.0, opportunity_yield=0.1, quota=60_000.0, as_of=dt.date(2026, 6, 30)
    )
    model_io.save(m, tmp_path / "model.toml")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'model = "model.toml"\nquarter = "2026-Q3"\nquota = "200k"\ntrials = 200\n'
        "seed = 3\n[team]\nreps = 3\n" + strategies,
        encoding="utf-8",
    )
    return plan


def test_cli_compare_scenario_json_and_plot(tmp_path):
    import json

    from click.testing import CliRunner

    from salesim.cli import main

    plan = _cli_files(
        tmp_path,
        '[strategies.push]\nprospecting = "+20%"\ncost = "10k"\n'
        '[strategies.close]\nwin_rate = "+5pp"\ncost = "20k"\n',
    )
    res = CliRunner().invoke(
        main, ["compare", str(plan), "--json", "--workers", "1", "--plot", str(tmp_path / "t.png")]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["trials"] == 200 and out["seed"] == 3 and out["quota"] == 200_000
    assert {s["name"] for s in out["strategies"]} == {"push", "close"}
    assert out["best"] in {"push", "close"}
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    # text output: table, best and the velocity column
    res = CliRunner().invoke(main, ["compare", str(plan), "--workers", "1", "--trials", "100"])
    assert res.exit_code == 0, res.output
    assert "Best:" in res.output and "velocity eq." in res.output


def test_cli_compare_model_with_levers(tmp_path):
    import json

    from click.testing import CliRunner

    from salesim.cli import main

    _cli_files(tmp_path, "")
    res = CliRunner().invoke(
        main,
        [
            "compare",
            str(tmp_path / "model.toml"),
            "--reps",
            "2",
            "--lever",
            "deal-size=+10%",
            "--lever",
            "cycle-time=-15%,headcount=+1@2026-08-03",
            "--quota",
            "150k",
            "--trials",
            "100",
            "--seed",
            "4",
            "--workers",
            "1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "warning: no --history" in res.stderr  # said up front, not in the JSON
    out = json.loads(res.stdout)
    names = {s["name"] for s in out["strategies"]}
    assert names == {"deal-size=+10%", "cycle-time=-15%,headcount=+1@2026-08-03"}
    assert out["quota"] == 150_000 and out["baseline"]["p_quota"] is not None


@pytest.mark.parametrize(
    "args, words",
    [
        (["--lever", "speed=+20%"], "unknown lever"),
        (["--lever", "prospecting=lots"], "cannot read"),
        ([], "nothing to compare"),
        (["--lever", "headcount=+1@2027-01-05"], "outside the horizon"),
    ],
)
def test_cli_compare_bad_input_exits_2(tmp_path, args, words):
    from click.testing import CliRunner

    from salesim.cli import main

    _cli_files(tmp_path, "")
    res = CliRunner().invoke(
        main,
        ["compare", str(tmp_path / "model.toml"), "--reps", "2", "--trials", "50", "--workers", "1"]
        + args,
    )
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output


def test_cli_compare_scenario_error_names_line(tmp_path):
    from click.testing import CliRunner

    from salesim.cli import main

    plan = _cli_files(tmp_path, '[strategies.x]\n\nwin_rate = "+5 pp!"\n')
    res = CliRunner().invoke(main, ["compare", str(plan)])
    assert res.exit_code == 2
    assert "line 10" in res.output and "strategies.x.win_rate" in res.output
    res = CliRunner().invoke(main, ["compare", str(plan), "--history", "h/"])
    assert res.exit_code == 2 and "--history only applies to a MODEL" in res.output


# --- how sure a gain is ---------------------------------------------------------------------------
def _sure_spec():
    m = simple_model(
        stages=(stage("Q", 0.5, Exponential(6.0), Exponential(4.0)),),
        per_rep_day=4.0,
        opportunity_yield=0.1,
        quota=50_000.0,
    )
    return SimSpec(model=m, reps=team(3), start=START, days=91)


def test_a_lever_that_changes_nothing_has_no_spread_and_never_gains():
    (same,) = parse_lever_args(["prospecting=x1"], model=_sure_spec().model)
    s = run_compare(_sure_spec(), [same], trials=200)["strategies"][0]
    assert s["uplift_trials"] == {"p10": 0.0, "p50": 0.0, "p90": 0.0, "p_positive": 0.0}


def test_more_prospecting_gains_in_most_quarters_and_old_keys_stay():
    more = parse_lever_args(["prospecting=+50%"], model=_sure_spec().model)
    out = run_compare(_sure_spec(), more, trials=300)
    s = out["strategies"][0]
    one, up = s["uplift_trials"], s["uplift"]
    assert set(one) == {"p10", "p50", "p90", "p_positive"}
    assert one["p10"] <= one["p50"] <= one["p90"] and one["p_positive"] > 0.8
    # the mean's Monte Carlo interval is far narrower than one quarter's spread
    assert up["hi"] - up["lo"] < 0.5 * (one["p90"] - one["p10"])
    assert set(up) == {"mean", "lo", "hi", "se", "p5", "p95", "p_positive"}
    assert set(s) >= {
        "name",
        "levers",
        "given",
        "cost",
        "revenue",
        "p_quota",
        "uplift",
        "uplift_open",
        "uplift_new",
        "uplift_per_cost",
        "velocity",
        "rank",
    }
