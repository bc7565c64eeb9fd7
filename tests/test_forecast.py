"""The baseline spec (horizon, open pipeline, team, closed to date) and ``salesim forecast``."""

import datetime as dt
import json
import math

import polars as pl
import pytest
from click.testing import CliRunner

from salesim.calibrate.history import OPPORTUNITY_COLUMNS, STAGE_HISTORY_COLUMNS, History
from salesim.cli import main
from salesim.scenarios.baseline import (
    baseline_spec,
    closed_to_date,
    horizon,
    open_deals_at,
    team_from_csv,
    team_from_model,
)
from salesim.scenarios.forecast import forecast, weekly_frame
from salesim.simulator import model as model_io
from salesim.simulator.distributions import Exponential, LogNormal
from salesim.simulator.errors import InputError
from salesim.simulator.spec import Rep
from tests.factories import simple_model, stage

D = dt.date
AS_OF = D(2026, 8, 15)


def two_stage_model(**kw):
    kw.setdefault("deal_size", LogNormal(8_000.0, 0.5))
    return simple_model(
        stages=(
            stage("Qualify", 0.5, Exponential(8.0), Exponential(6.0)),
            stage("Propose", 0.6, Exponential(12.0), Exponential(9.0)),
        ),
        per_rep_day=4.0,
        opportunity_yield=0.03,
        **kw,
    )


OPPS = [  # id, owner, created, stage, status, closed, amount
    ("o1", "rep1", D(2026, 7, 1), "Propose", "open", None, 10_000.0),
    ("o2", "ghost", D(2026, 8, 1), "Qualify", "open", None, None),
    ("o3", "rep1", D(2026, 6, 1), "Propose", "won", D(2026, 7, 20), 5_000.0),  # this quarter
    ("o4", "rep1", D(2026, 4, 1), "Propose", "won", D(2026, 6, 20), 7_000.0),  # last quarter
    ("o5", "rep1", D(2026, 7, 10), "Propose", "won", D(2026, 8, 20), 9_000.0),  # after as-of
    ("o6", "rep1", D(2026, 8, 20), "Qualify", "open", None, 1_000.0),  # created later
    ("o7", "rep1", D(2026, 7, 5), "Qualify", "lost", D(2026, 7, 30), 2_000.0),
]
STAGES = [
    ("o1", "Qualify", D(2026, 7, 1)),
    ("o1", "Propose", D(2026, 8, 5)),
    ("o3", "Qualify", D(2026, 6, 1)),
    ("o3", "Propose", D(2026, 6, 20)),
    ("o4", "Qualify", D(2026, 4, 1)),
    ("o4", "Propose", D(2026, 5, 1)),
    ("o5", "Qualify", D(2026, 7, 10)),
    ("o5", "Propose", D(2026, 8, 18)),
    ("o6", "Qualify", D(2026, 8, 20)),
    ("o7", "Qualify", D(2026, 7, 5)),
]


def history(with_stages=True) -> History:
    cols = ["opportunity_id", "owner", "created", "stage", "status", "closed", "amount"]
    o = pl.DataFrame(
        [dict(zip(cols, r)) | {"segment": "all", "source": None} for r in OPPS],
        schema=OPPORTUNITY_COLUMNS,
    )
    sh = pl.DataFrame(
        [dict(zip(["opportunity_id", "stage", "entered"], r)) for r in STAGES],
        schema=STAGE_HISTORY_COLUMNS,
    )
    return History(o, ("Qualify", "Propose"), sh if with_stages else None, source="hist")


def write_history(folder):
    folder.mkdir()
    o = history().opportunities.with_columns(pl.col("amount").fill_null(4_000.0))  # required
    o.write_csv(folder / "opportunities.csv")
    history().stage_history.write_csv(folder / "stage_history.csv")
    return folder


# --- baseline ---------------------------------------------------------------------------------
def test_horizon_runs_to_the_end_of_the_quarter():
    assert horizon(D(2026, 6, 30)) == (D(2026, 7, 1), 92)
    assert horizon(AS_OF) == (D(2026, 8, 16), 46)
    assert horizon(D(2026, 12, 31)) == (D(2027, 1, 1), 90)
    assert horizon(AS_OF, start=D(2026, 9, 1)) == (D(2026, 9, 1), 30)
    assert horizon(AS_OF, weeks=4) == (D(2026, 8, 16), 28)
    with pytest.raises(InputError, match="not after the as-of"):
        horizon(AS_OF, start=AS_OF)
    with pytest.raises(InputError, match="weeks"):
        horizon(AS_OF, weeks=0)


def test_open_deals_at_the_as_of_date():
    model = two_stage_model()
    deals, _ = open_deals_at(history(), AS_OF, model.stage_names, model=model)
    rows = {r["opportunity_id"]: r for r in deals.iter_rows(named=True)}
    assert set(rows) == {"o1", "o2", "o5"}  # o5 won later: open at the as-of date
    start = D(2026, 8, 16)
    assert rows["o1"]["stage"] == "Propose"
    assert rows["o1"]["age_days"] == (start - D(2026, 8, 5)).days - 0.5
    assert rows["o2"]["age_days"] == (start - D(2026, 8, 1)).days - 0.5  # no stage rows
    assert rows["o5"]["stage"] == "Qualify"  # entered Propose after the as-of date
    assert rows["o2"]["amount"] == pytest.approx(model.deal_size[0].size.dist.mean)
    assert rows["o5"]["amount"] == 9_000.0


def test_open_deals_without_stage_history_entered_after_the_stages_before():
    model = two_stage_model()
    deals, notes = open_deals_at(
        history(with_stages=False), D(2026, 8, 31), model.stage_names, model=model
    )
    rows = {r["opportunity_id"]: r for r in deals.iter_rows(named=True)}
    # o1 is in Propose: it entered after Qualify's median time to advance (8 ln 2 ≈ 5.5 d).
    lead = round(model.stages[0].advance.dist.quantile(0.5))
    assert rows["o1"]["age_days"] == (D(2026, 9, 1) - D(2026, 7, 1)).days - lead - 0.5
    assert rows["o2"]["age_days"] == (D(2026, 9, 1) - D(2026, 8, 1)).days - 0.5  # first stage
    assert any("without a stage-history entry" in n for n in notes)


def test_open_deal_in_an_unknown_stage_names_file_row_and_column():
    with pytest.raises(InputError) as err:
        open_deals_at(history(), AS_OF, ("Qualify",))
    assert err.value.file == "hist" and err.value.column == "stage" and err.value.row == 1


def test_closed_to_date_counts_this_quarter_up_to_the_as_of_date():
    total, by_owner = closed_to_date(history().as_of(AS_OF), AS_OF, D(2026, 8, 16))
    assert total == 5_000.0 and by_owner == {"rep1": 5_000.0}
    assert closed_to_date(history().as_of(D(2026, 9, 30)), D(2026, 9, 30), D(2026, 10, 1))[0] == 0.0


def test_team_from_model_and_csv(tmp_path):
    model = two_stage_model(quota=90_000.0)
    (rep,) = team_from_model(model, D(2026, 8, 16))
    assert rep.tenure_days == (D(2026, 8, 16) - D(2020, 1, 1)).days and rep.quota == 90_000.0
    f = tmp_path / "reps.csv"
    f.write_text(
        "owner,hired,left,quota\nann,2025-01-01,,100000\nbob,2024-01-01,2026-08-01,\n"
        "cy,2026-09-01,,\n"
    )
    team = team_from_csv(f, D(2026, 8, 16), default_quota=50_000.0)
    assert [r.name for r in team] == ["ann", "cy"]  # bob has left
    assert team[0].quota == 100_000.0 and team[1].quota == 50_000.0
    assert team[1].start_day == 16 and team[1].tenure_days == 0


@pytest.mark.parametrize(
    "text, row, column",
    [
        ("owner,hired\nann,2025-01-01\nbob,2025-13-01\n", 3, "hired"),
        ("owner,hired,quota\nann,2025-01-01,-5\n", 2, "quota"),
        ("owner,quota\nann,5\n", 1, "hired"),  # the header row
    ],
)
def test_bad_team_files_name_row_and_column(tmp_path, text, row, column):
    f = tmp_path / "team.csv"
    f.write_text(text)
    with pytest.raises(InputError) as err:
        team_from_csv(f, AS_OF)
    assert (err.value.row, err.value.column, err.value.file) == (row, column, str(f))


def test_baseline_spec_decisions(tmp_path):
    model = two_stage_model()
    spec = baseline_spec(model, history=history(), as_of=AS_OF, n_reps=2, quota=100_000.0)
    assert (spec.start, spec.days, spec.closed_to_date) == (D(2026, 8, 16), 46, 5_000.0)
    assert [r.quota for r in spec.reps] == [50_000.0, 50_000.0]  # split evenly
    assert spec.reps[0].closed_to_date == 5_000.0  # generic rep1 matches the owner name
    assert spec.open_deals.height == 3
    assert any("reassigned" in n for n in spec.notes)
    assert spec.initial_owners().tolist() == [0, 1, 0]
    with pytest.raises(InputError):
        baseline_spec(model, n_reps=2, team=tmp_path / "x.csv")
    bare = baseline_spec(model, weeks=2)
    assert bare.start == model.as_of + dt.timedelta(days=1) and bare.days == 14
    assert bare.open_deals.height == 0 and any("no history" in n for n in bare.notes)
    assert any("not prorated" in n for n in bare.notes)
    assert not any("prorated" in n for n in baseline_spec(model).notes)
    hires = (Rep("now"), Rep("later", tenure_days=0, start_day=60))
    assert [r.name for r in baseline_spec(model, team=hires, weeks=4).reps] == ["now"]


# --- forecast ---------------------------------------------------------------------------------
def test_forecast_dict_holds_the_contract_and_adds_up():
    spec = baseline_spec(
        two_stage_model(), history=history(), as_of=AS_OF, n_reps=3, quota=60_000.0
    )
    fc = forecast(spec, trials=120, seed=4, engine="simpy")
    for key in (
        "trials",
        "seed",
        "engine",
        "quota",
        "revenue",
        "p_quota",
        "p_quota_interval",
        "weekly",
        "by_origin",
        "wins",
    ):
        assert key in fc
    assert (fc["trials"], fc["seed"], fc["engine"], fc["quota"]) == (120, 4, "simpy", 60_000.0)
    assert fc["revenue"]["mean"] == pytest.approx(5_000.0 + fc["revenue_in_horizon"]["mean"])
    origin = fc["by_origin"]
    assert fc["revenue"]["mean"] == pytest.approx(
        5_000.0 + origin["open_pipeline"]["mean"] + origin["new_pipeline"]["mean"]
    )
    lo, hi = fc["p_quota_interval"]
    assert lo <= fc["p_quota"] <= hi
    assert len(fc["weekly"]) == spec.weeks == 7
    assert fc["weekly"][-1]["p50"] == pytest.approx(fc["revenue"]["p50"])
    assert weekly_frame(fc).columns[:2] == ["week", "end"]
    assert fc["flows"]["open_start"]["mean"] == 3
    no_quota = forecast(
        baseline_spec(two_stage_model(), n_reps=1, weeks=2), trials=20, seed=1, engine="simpy"
    )
    assert no_quota["quota"] is None and no_quota["p_quota"] is None
    assert no_quota["p_quota_interval"] is None


# --- CLI --------------------------------------------------------------------------------------
@pytest.fixture
def model_file(tmp_path):
    return model_io.save(two_stage_model(quota=40_000.0), tmp_path / "model.toml")


def invoke(*args):
    return CliRunner().invoke(main, ["forecast", *map(str, args)])


def test_cli_json_csv_and_plot(tmp_path, model_file):
    hist = write_history(tmp_path / "hist")
    args = [
        model_file,
        "--history",
        hist,
        "--as-of",
        "2026-08-15",
        "--trials",
        60,
        "--seed",
        3,
        "--workers",
        1,
        "--quota",
        "1,200",
    ]
    res = invoke(*args, "--json", "--csv", tmp_path / "bands.csv", "--plot", tmp_path / "f.png")
    assert res.exit_code == 0, res.output
    fc = json.loads(res.output)
    assert fc["quota"] == 1200.0 and fc["closed_to_date"] == 5_000.0
    assert fc["p_quota"] == 1.0  # 5,000 already won beats a 1,200 quota
    assert fc["start"] == "2026-08-16" and len(fc["weekly"]) == 7
    bands = pl.read_csv(tmp_path / "bands.csv")
    assert bands.height == 7 and {"week", "p10", "p50", "p90"} <= set(bands.columns)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = json.loads(invoke(*args, "--json").output)
    assert again["revenue"] == fc["revenue"] and again["weekly"] == fc["weekly"]


def test_cli_table(model_file):
    res = invoke(
        model_file,
        "--reps",
        2,
        "--trials",
        40,
        "--seed",
        1,
        "--workers",
        1,
        "--quota",
        "12M",
        "--weeks",
        3,
    )
    assert res.exit_code == 0, res.output
    assert "P(revenue ≥ quota 12.00M)" in res.output and "Quarter revenue" in res.output
    assert "Rep attainment" in res.output and "rep2" in res.output


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--reps", "2", "--team", "t.csv"], "either"),
        (["--as-of", "2026-02-30"], "not a real date"),
        (["--csv", "MODEL"], "refusing to overwrite"),
        (["--quota", "12X"], "12X"),
        (["--engine", "warp"], "unknown engine"),
        (["--trials", "0"], "trials"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(model_file, extra, needle):
    extra = [str(model_file) if x == "MODEL" else x for x in extra]
    res = invoke(model_file, "--trials", 10, "--workers", 1, *extra)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_cli_missing_model_exits_2(tmp_path):
    res = invoke(tmp_path / "nope.toml")
    assert res.exit_code == 2 and "model file not found" in res.output


def test_a_forecast_too_large_for_per_seat_arrays_streams_them(monkeypatch):
    """Above SEAT_ARRAY_BYTES the per-rep quantiles are left out (with a note); the means,
    P(attainment) and everything else are the same numbers."""
    from salesim.scenarios import forecast as fc_module

    spec = baseline_spec(two_stage_model(quota=9_000.0), as_of=AS_OF, n_reps=3)
    full = forecast(spec, 60, seed=2, engine="simpy", workers=1)
    monkeypatch.setattr(fc_module, "SEAT_ARRAY_BYTES", 8 * 60 * 3 - 1)
    streamed = forecast(spec, 60, seed=2, engine="simpy", workers=1)
    assert "per-rep attainment and revenue quantiles left out" in streamed["notes"][-1]
    assert [r["p50"] for r in streamed["reps"]] == [None] * 3
    assert [r["revenue_p50"] for r in streamed["reps"]] == [None] * 3
    for r in full["reps"] + streamed["reps"]:
        for q in ("p10", "p50", "p90"):
            r.pop(q), r.pop(f"revenue_{q}")
    assert streamed["reps"] == full["reps"]
    assert {k: v for k, v in streamed.items() if k not in ("reps", "notes")} == {
        k: v for k, v in full.items() if k not in ("reps", "notes")
    }


def test_closed_to_date_does_not_depend_on_how_rows_are_chunked():
    """Float amounts in many chunks or one: the same bits (exactly rounded sums)."""
    h = history()
    amounts = [1_234.567, 0.1, 2e7 / 3, 9_999.99, 0.2, 5_555.55]
    rows = pl.concat(
        [
            h.opportunities.filter(pl.col("opportunity_id") == "o3").with_columns(
                pl.lit(a).alias("amount"), pl.lit(f"w{i}").alias("opportunity_id")
            )
            for i, a in enumerate(amounts)
        ],
        rechunk=False,
    )
    one = History(rows.rechunk(), h.stages, None, source="hist")
    many = History(rows, h.stages, None, source="hist")
    a = closed_to_date(one, AS_OF, D(2026, 8, 16))
    b = closed_to_date(many, AS_OF, D(2026, 8, 16))
    assert a == b and a[0] == math.fsum(amounts) and a[1] == {"rep1": math.fsum(amounts)}
