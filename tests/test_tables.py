"""Results where finance works: every table-shaped result in CSV, Parquet and Excel
(``--out``), rounded money; and charts a board deck can take (exact ticks, currency, titles
naming the quarter and the number, literal ``$`` in names)."""

import datetime as dt
import json
import math
import sys

import polars as pl
import pytest
from click.testing import CliRunner

from salesim import cli, plots, tables
from salesim.simulator import model as model_io
from tests.test_backtest import demo, demo_dir  # noqa: F401 (fixtures)
from tests.test_capacity import team_spec
from tests.test_compare import _cli_files
from tests.test_dashboard import AS_OF, setup  # noqa: F401 (fixture)
from tests.test_forecast import two_stage_model, write_history

FORMATS = ("csv", "parquet", "xlsx")


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def read_back(paths: list[str], names: list[str]) -> dict[str, pl.DataFrame]:
    """The tables as a reader sees them: a workbook's sheets, or one file per table."""
    if paths[0].endswith(".xlsx"):
        assert len(paths) == 1
        return pl.read_excel(paths[0], sheet_id=0)
    read = pl.read_csv if paths[0].endswith(".csv") else pl.read_parquet
    assert len(paths) == len(names)
    return {
        name: read(p, **({"try_parse_dates": True} if read is pl.read_csv else {}))
        for name, p in zip(names, paths)
    }


def same(a, b, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (dt.date, str)) or isinstance(b, (dt.date, str)):
        return str(a)[:10] == str(b)[:10]
    return math.isclose(float(a), float(b), abs_tol=tol)


def assert_round_trip(named: dict, tmp_path, stem: str):
    """Each format writes every table and reads back its columns and (rounded) values."""
    for fmt in FORMATS:
        paths = []
        for path, data in tables.encode(named, tmp_path / f"{stem}.{fmt}"):
            (path.write_text if isinstance(data, str) else path.write_bytes)(data)
            paths.append(str(path))
        back = read_back(paths, list(named))
        assert list(back) == list(named)
        for name, t in named.items():
            want, got = t.tidy(), back[name]
            assert got.columns == want.columns, (fmt, name)
            assert got.height == want.height
            for col in want.columns:
                for a, b in zip(want[col].to_list(), got[col].to_list()):
                    assert same(a, b, 1e-9 if fmt != "xlsx" else 1e-6), (fmt, name, col, a, b)


def assert_rounded(df: pl.DataFrame, money=(), fractions=()):
    """Money in cents and fractions to 4 decimals, as the files hold them."""
    for cols, digits in ((money, 2), (fractions, 4)):
        for c in cols:
            for v in df[c].drop_nulls().to_list():
                assert round(v, digits) == pytest.approx(v, abs=1e-12), (c, v)


# --- forecast -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    model = model_io.save(two_stage_model(quota=40_000.0), root / "model.toml")
    hist = write_history(root / "hist")
    r = invoke(
        "forecast",
        model,
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
        "12k",
        "--json",
        "--out",
        root / "fc.csv",
        "--csv",
        root / "bands.csv",
    )
    assert r.exit_code == 0, r.output
    return root, json.loads(r.stdout)


def test_forecast_tables_round_trip_and_match_the_json(forecast_run, tmp_path):
    root, fc = forecast_run
    assert fc["out"] == [str(root / f"fc{s}.csv") for s in ("", ".reps", ".summary")]
    weekly = pl.read_csv(root / "fc.csv", try_parse_dates=True)
    assert weekly.columns == ["week", "end", "mean", "p10", "p25", "p50", "p75", "p90"]
    for row, w in zip(weekly.to_dicts(), fc["weekly"]):
        assert str(row["end"]) == w["end"]
        assert all(abs(row[k] - w[k]) <= 0.005 for k in ("mean", "p10", "p50", "p90"))
    reps = pl.read_csv(root / "fc.reps.csv")
    (rep,) = fc["reps"]
    assert reps["rep"].to_list() == [rep["rep"]]
    assert abs(reps["revenue_p50"][0] - rep["revenue_p50"]) <= 0.005
    assert abs(reps["attainment_p50"][0] - rep["p50"]) <= 5e-5
    assert rep["revenue_p10"] <= rep["revenue_p50"] <= rep["revenue_p90"]
    summary = pl.read_csv(root / "fc.summary.csv").row(0, named=True)
    assert abs(summary["p_quota"] - fc["p_quota"]) <= 5e-5
    assert summary["quota"] == 12_000 and summary["start"] == "2026-08-16"
    assert_round_trip(tables.forecast_tables(fc), tmp_path, "fc")


def test_forecast_text_says_which_files_it_wrote_and_never_over_an_input(forecast_run):
    root, _ = forecast_run
    args = [
        "forecast",
        root / "model.toml",
        "--history",
        root / "hist",
        "--as-of",
        "2026-08-15",
        "--trials",
        20,
        "--seed",
        3,
        "--workers",
        1,
    ]
    r = invoke(*args, "--out", root / "again.parquet")
    assert r.exit_code == 0, r.output
    assert (
        f"Wrote tables to {root / 'again.parquet'}, {root / 'again.reps.parquet'}, "
        f"{root / 'again.summary.parquet'}"
    ) in r.output
    team = root / "team.csv"  # an input file given by name (folders: the output-path work)
    team.write_text("owner,hired,quota\nrep1,2025-01-01,40000\n")
    r = invoke(*args, "--team", team, "--out", team)
    assert r.exit_code == 2 and "refusing to overwrite" in r.output, r.output
    assert team.read_text() == "owner,hired,quota\nrep1,2025-01-01,40000\n"
    # a table written beside FILE is checked too, before any file is written
    beside = root / "t.reps.csv"
    beside.write_text(team.read_text())
    r = invoke(*args, "--team", beside, "--out", root / "t.csv")
    assert r.exit_code == 2 and "refusing to overwrite an input" in r.output, r.output
    assert beside.read_text() == team.read_text() and not (root / "t.csv").exists()


def test_forecast_csv_keeps_its_columns_with_money_in_cents(forecast_run):
    root, fc = forecast_run
    bands = pl.read_csv(root / "bands.csv")
    assert bands.columns == list(fc["weekly"][0])
    assert_rounded(bands, money=["mean", "p10", "p25", "p50", "p75", "p90"])
    assert bands.equals(pl.read_csv(root / "fc.csv"))


# --- compare ------------------------------------------------------------------------------------
def test_compare_tables(tmp_path):
    plan = _cli_files(
        tmp_path,
        '[strategies.push]\nprospecting = "+20%"\ncost = "10k"\n'
        '[strategies.same]\nprospecting = "x1"\n',
    )
    r = invoke(
        "compare",
        plan,
        "--json",
        "--workers",
        1,
        "--trials",
        100,
        "--out",
        tmp_path / "levers.parquet",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["out"] == [
        str(tmp_path / "levers.parquet"),
        str(tmp_path / "levers.baseline.parquet"),
    ]
    got = pl.read_parquet(tmp_path / "levers.parquet")
    assert got["strategy"].to_list() == [s["name"] for s in out["strategies"]]
    for row, s in zip(got.to_dicts(), out["strategies"]):
        assert abs(row["uplift_mean"] - s["uplift"]["mean"]) <= 0.005
        assert abs(row["uplift_mean_lo"] - s["uplift"]["lo"]) <= 0.005
        assert abs(row["uplift_p90"] - s["uplift_trials"]["p90"]) <= 0.005
        assert abs(row["p_uplift_positive"] - s["uplift_trials"]["p_positive"]) <= 5e-5
        assert row["p_quota"] == pytest.approx(s["p_quota"], abs=5e-5)
    assert_rounded(got, money=tables.COMPARE_MONEY, fractions=["p_quota", "p_uplift_positive"])
    assert_round_trip(tables.compare_tables(out), tmp_path, "cmp")


# --- capacity -----------------------------------------------------------------------------------
@pytest.mark.parametrize("solve", ["headcount", "coverage"])
def test_capacity_tables(tmp_path, solve):
    common = [
        "--trials",
        100,
        "--seed",
        2,
        "--workers",
        1,
        "--json",
        "--out",
        tmp_path / "cap.xlsx",
    ]
    if solve == "headcount":
        model_io.save(team_spec().model, tmp_path / "model.toml")
        args = ["--reps", 3, "--target", "250k"]
    else:  # coverage scales an open pipeline: the forecast tests' history has one
        model_io.save(two_stage_model(quota=40_000.0), tmp_path / "model.toml")
        args = [
            "--history",
            write_history(tmp_path / "hist"),
            "--as-of",
            "2026-08-15",
            "--target",
            "20k",
            "--solve",
            "coverage",
        ]
    r = invoke("capacity", tmp_path / "model.toml", *args, *common)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["out"] == [str(tmp_path / "cap.xlsx")]
    sheets = pl.read_excel(tmp_path / "cap.xlsx", sheet_id=0)
    assert list(sheets) == ["curve", "answer"]
    curve, answer = sheets["curve"], sheets["answer"].row(0, named=True)
    assert curve.height == len(out["curve"])
    for row, p in zip(curve.to_dicts(), out["curve"]):
        assert abs(row["p_target"] - p["p_target"]) <= 5e-5
        assert abs(row["revenue_p50"] - p["revenue_p50"]) <= 0.005
        assert p["revenue_p10"] <= p["revenue_p50"] <= p["revenue_p90"]
    assert answer["target"] == out["target"] and answer["solve"] == solve
    if solve == "headcount":
        assert curve.filter(pl.col("answer"))["headcount"].to_list() == [out["headcount"]]
    assert_round_trip(tables.capacity_tables(out), tmp_path, "cap")


# --- dashboard and backtest ---------------------------------------------------------------------
def test_dashboard_tables(setup, tmp_path):  # noqa: F811
    root = setup["root"]
    r = invoke(
        "dashboard",
        setup["hist_dir"],
        "--plan",
        root / "plan.toml",
        "--as-of",
        AS_OF,
        "--trials",
        30,
        "--seed",
        3,
        "--json",
        "--out",
        tmp_path / "light.csv",
        "--currency",
        "EUR",
        "--plot",
        tmp_path / "t.png",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["out"] == [str(tmp_path / "light.csv"), str(tmp_path / "light.pointers.csv")]
    light = pl.read_csv(tmp_path / "light.csv")
    assert light["who"].to_list() == ["team"] + [x["who"] for x in out["reps"]]
    assert light["status"].to_list() == [out["team"]["status"]] + [x["status"] for x in out["reps"]]
    fc = out["team"]["lines"]["forecast"]["measures"][0]
    assert abs(light["forecast_p50_actual"][0] - fc["actual"]) <= 0.005
    assert abs(light["forecast_p50_percentile"][0] - fc["percentile"]) <= 5e-5
    assert_round_trip(tables.dashboard_tables(out), tmp_path, "dash")


def test_backtest_tables(demo_dir, tmp_path):  # noqa: F811
    r = invoke(
        "backtest",
        demo_dir,
        "--quarters",
        1,
        "--trials",
        40,
        "--json",
        "--out",
        tmp_path / "folds.parquet",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    folds = pl.read_parquet(tmp_path / "folds.parquet")
    assert folds["cutoff"].to_list() == [dt.date.fromisoformat(f["cutoff"]) for f in out["folds"]]
    for row, f in zip(folds.to_dicts(), out["folds"]):
        assert abs(row["p50"] - f["p50"]) <= 0.005 and abs(row["pit"] - f["pit"]) <= 5e-5
        assert abs(row["open_actual"] - f["open"]["actual"]) <= 0.005
    summary = pl.read_parquet(tmp_path / "folds.summary.parquet").row(0, named=True)
    assert abs(summary["coverage_p10_p90"] - out["coverage_p10_p90"]) <= 5e-5
    assert_round_trip(tables.backtest_tables(out), tmp_path, "bt")


# --- bad --out ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["forecast", "m.toml"],
        ["compare", "s.toml"],
        ["capacity", "s.toml"],
        ["dashboard", "hist", "--plan", "p.toml", "--as-of", "2026-05-13"],
        ["backtest", "hist"],
    ],
)
@pytest.mark.parametrize("name", ["out.txt", "out"])
def test_a_bad_suffix_exits_2_naming_out_before_running(command, name):
    r = invoke(*command, "--out", name)
    assert r.exit_code == 2, r.output
    assert "--out" in r.output and ".csv, .parquet or .xlsx" in r.output
    assert "Traceback" not in r.output


def test_excel_without_its_writer_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "xlsxwriter", None)
    with pytest.raises(Exception, match=r'pip install "salesim\[excel\]"'):
        tables.out_format("x.xlsx")
    r = invoke("forecast", "m.toml", "--out", "x.xlsx")
    assert r.exit_code == 2 and 'pip install "salesim[excel]"' in r.output


def test_non_finite_numbers_are_empty_cells():
    t = tables.Table(pl.DataFrame({"x": [math.inf, 1.234567, math.nan]}), fractions=("x",))
    assert t.tidy()["x"].to_list() == [None, 1.2346, None]


# --- charts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, labels",
    [
        ([1.0e6, 1.25e6, 1.5e6, 1.75e6, 2.0e6], ["1M", "1.25M", "1.5M", "1.75M", "2M"]),
        ([0, 250e3, 500e3, 750e3], ["0", "250k", "500k", "750k"]),
        ([0, 2500, 5000, 7500], ["0", "2.5k", "5k", "7.5k"]),
        ([-500e3, 0, 500e3, 1e6], ["-500k", "0", "500k", "1M"]),
        ([0, 0.2e9, 1.4e9], ["0", "200M", "1.4B"]),
    ],
)
def test_money_ticks_show_enough_digits_for_the_spacing(values, labels):
    assert plots.money_ticks(values) == labels
    assert plots.money_ticks(values, "$") == [
        lab.replace("-", "-$") if lab.startswith("-") else "$" + lab for lab in labels
    ]


def test_currency_symbol_code_and_nonsense():
    assert plots.Currency("$").amount(12e6) == "$12M"
    assert plots.Currency("eur").amount(1.25e6) == "1.25M EUR"
    assert plots.Currency("EUR").axis("quarter revenue") == "quarter revenue (EUR)"
    assert plots.Currency("").axis("quarter revenue") == "quarter revenue"
    for bad in ("12", "US dollars"):
        with pytest.raises(Exception, match="currency"):
            plots.Currency(bad)
    r = invoke("forecast", "m.toml", "--currency", "US dollars")
    assert r.exit_code == 2 and "--currency" in r.output


def test_charts_draw_dollar_names_literally():
    png = plots.png(
        plots.tornado(
            ["$5k bonus for $1M deals", "plain"],
            [1000.0, -200.0],
            [800.0, -300.0],
            [1200.0, -100.0],
            trials_p10=[-2000.0, -900.0],
            trials_p90=[4000.0, 500.0],
            currency=plots.Currency("$"),
            title="Q3 2026 uplift · quota $200k · $ and $",
        )
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_titles_name_quarter_quota_and_band(forecast_run, monkeypatch):
    _, fc = forecast_run
    seen = {}
    monkeypatch.setattr(plots, "forecast_chart", lambda *a, **kw: seen.update(kw) or b"")
    plots.forecast_figure(fc, plots.Currency("$"))
    assert seen["title"].startswith("Q3 2026 forecast · quota $12k · P(revenue ≥ quota)")
    assert "P10–P90" in seen["title"] and seen["currency"].symbol == "$"


def test_backtest_summary_is_one_value_a_cell():
    b = {
        "folds": [],
        "coverage_p10_p90": 0.5,
        "coverage_se": 0.2,
        "coverage_interval": [0.1, 0.9],
        "mean_pit": 0.5,
        "crps": 10.0,
        "mape_p50": 0.1,
        "parts": {
            p: {
                "coverage_p10_p90": 0.5,
                "coverage_interval": [0.2, 0.8],
                "mean_pit": 0.4,
                "crps": 3.0,
            }
            for p in ("open", "new")
        },
        "baselines": {
            n: {"mape": 0.2, "crps": 20.0, "values": [1.0, 2.0, 3.0]}
            for n in ("stage_weighted", "last_quarter")
        },
        "pit_histogram": {"chi2": 1.0, "p_value": 0.5},
        "trials": 10,
        "seed": 1,
    }
    row = tables.backtest_tables(b)["summary"].frame.row(0, named=True)
    assert row["open_coverage_lo"] == 0.2 and row["new_coverage_hi"] == 0.8
    assert row["stage_weighted_crps"] == 20.0 and not any("values" in k for k in row)
