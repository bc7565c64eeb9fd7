"""salesim movement: the quarter's pipeline waterfall between two snapshots, by hand on a
small history, its identity on a demo history, and the forecast's change split exactly."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import salesim as ss
from salesim.cli import main
from salesim.scenarios.movement import SIGN, STEPS

OPPORTUNITIES = """opportunity_id,owner,created,stage,status,closed,amount,expected_close
A,ann,2026-10-05,Propose,open,,100,2026-12-15
B,ann,2026-10-10,Qualify,open,,50,2027-01-15
C,bob,2026-10-12,Propose,won,2026-11-06,70,
D,bob,2026-10-15,Qualify,lost,2026-11-04,30,
E,ann,2026-11-03,Qualify,open,,40,2026-12-30
F,bob,2026-10-01,Qualify,open,,60,2026-12-05
G,bob,2026-10-01,Qualify,lost,2026-11-05,45,
H,ann,2026-11-02,Propose,won,2026-11-07,25,
I,ann,2026-09-01,Propose,won,2026-10-20,99,
"""
CLOSE_DATES = """opportunity_id,changed,expected_close,previous,amount
A,2026-10-05,2026-12-01,,80
A,2026-11-05,2026-12-15,2026-12-01,100
B,2026-10-10,2026-12-20,,50
B,2026-11-03,2027-01-15,2026-12-20,50
C,2026-10-12,2026-12-01,,70
D,2026-10-15,2026-12-10,,30
F,2026-10-01,2027-02-01,,60
F,2026-11-07,2026-12-05,2027-02-01,60
G,2026-10-01,2027-03-01,,45
"""
STAGES = """opportunity_id,stage,entered
A,Qualify,2026-10-05
A,Propose,2026-11-04
B,Qualify,2026-10-10
C,Qualify,2026-10-12
C,Propose,2026-10-20
D,Qualify,2026-10-15
E,Qualify,2026-11-03
F,Qualify,2026-10-01
G,Qualify,2026-10-01
H,Qualify,2026-11-02
H,Propose,2026-11-05
I,Qualify,2026-09-01
I,Propose,2026-09-10
"""


@pytest.fixture()
def small(tmp_path) -> Path:
    folder = tmp_path / "hist"
    folder.mkdir()
    for name, text in (
        ("opportunities.csv", OPPORTUNITIES),
        ("close_date_history.csv", CLOSE_DATES),
        ("stage_history.csv", STAGES),
    ):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _identity(waterfall: list[dict]) -> float:
    """end − (start + Σ signed changes): 0 when the waterfall adds up."""
    by = {row["step"]: row["amount"] for row in waterfall}
    moved = sum(SIGN[s] * by[s] for s in STEPS if SIGN[s])
    return by["end"] - (by["start"] + moved)


def test_the_waterfall_by_hand(small):
    """Worked out on paper: A stays (80 → 100, advances), B is pushed to January, C won,
    D lost, E and H new (H then won), F pulled in from February; G (lost, expected in
    March) and I (won before --from) take no part."""
    m = ss.movement(small, "2026-11-01", "2026-11-08", stages="Qualify,Propose")
    got = {row["step"]: (row["deals"], row["amount"]) for row in m.waterfall}
    assert got == {
        "start": (4, 230.0),
        "new": (2, 65.0),
        "pulled_in": (1, 60.0),
        "pushed_out": (1, 50.0),
        "won": (2, 95.0),
        "lost": (1, 30.0),
        "amount_changed": (1, 20.0),
        "end": (3, 200.0),
    }
    assert _identity(m.waterfall) == 0
    assert m["stage_moves"]["advanced"] == {"deals": 1, "amount": 100.0}
    steps = {d["opportunity_id"]: d["step"] for d in m["deals"]}
    assert steps == {
        "A": "amount_changed, advanced",
        "B": "pushed_out",
        "C": "won",
        "D": "lost",
        "E": "new",
        "F": "pulled_in",
        "H": "new, won",
    }
    assert [d["opportunity_id"] for d in m["deals"]][:3] == ["C", "F", "B"]  # largest first


def test_a_deal_won_counts_its_closing_amount_not_its_last_recorded_one(tmp_path):
    """J was recorded at 40 while open and won at 55: 40 in, 55 won, +15 amount change."""
    folder = tmp_path / "hist"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(
        "opportunity_id,owner,created,stage,status,closed,amount,expected_close\n"
        "J,ann,2026-10-01,Propose,won,2026-11-06,55,\n"
        "K,ann,2026-10-01,Propose,open,,10,2026-12-01\n",
        encoding="utf-8",
    )
    (folder / "close_date_history.csv").write_text(
        "opportunity_id,changed,expected_close,previous,amount\n"
        "J,2026-10-01,2026-12-20,,40\n"
        "K,2026-10-01,2026-12-01,,10\n",
        encoding="utf-8",
    )
    m = ss.movement(folder, "2026-11-01", "2026-11-08")
    by = {row["step"]: row["amount"] for row in m.waterfall}
    assert (by["start"], by["won"], by["amount_changed"], by["end"]) == (50.0, 55.0, 15.0, 10.0)
    assert _identity(m.waterfall) == 0


def test_cli_json_out_and_plot(small, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(
        main,
        [
            "movement",
            str(small),
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-08",
            "--stages",
            "Qualify,Propose",
            "--json",
            "--out",
            str(out / "m.csv"),
            "--plot",
            str(out / "m.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"from", "to", "quarter", "scope", "waterfall", "stage_moves", "deals", "notes"} <= set(
        doc
    )
    assert [row["step"] for row in doc["waterfall"]] == list(STEPS)
    assert (out / "m.csv").read_text().startswith("step,deals,amount")
    assert "opportunity_id" in (out / "m.deals.csv").read_text()
    assert (out / "m.png").read_bytes()[:4] == b"\x89PNG"
    text = CliRunner().invoke(
        main, ["movement", str(small), "--from", "2026-11-01", "--to", "2026-11-08"]
    )
    assert text.exit_code == 0 and "pulled in" in text.output and "pushed out" in text.output


@pytest.mark.parametrize(
    "args, where",
    [
        (["--from", "2026-11-08", "--to", "2026-11-01"], "--from"),
        (["--from", "2026-13-01", "--to", "2026-11-08"], "--from"),
        (["--from", "2026-11-01", "--to", "soon"], "--to"),
        (["--from", "2026-11-01", "--to", "2026-11-08", "--quarter", "x"], "--quarter"),
    ],
)
def test_bad_dates_exit_2_in_one_line(small, args, where):
    result = CliRunner().invoke(main, ["movement", str(small), *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and where in lines[0], result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("movement")
    made = CliRunner().invoke(
        main,
        ["demo-data", str(folder / "hist"), "--seed", "5", "--reps", "3", "--quarters", "4"]
        + ["--as-of", "2026-09-30", "--quiet"],
    )
    assert made.exit_code == 0, made.output
    return folder


@pytest.mark.parametrize(
    "start, end",
    [("2026-07-15", "2026-07-22"), ("2026-08-01", "2026-09-30"), ("2026-06-20", "2026-07-10")],
)
def test_the_waterfall_adds_up_on_a_demo_history(demo, start, end):
    """No expected close dates: the pipeline is every open deal, nothing is pulled in or
    pushed out, and start + new − won − lost = end, deal by deal."""
    m = ss.movement(demo / "hist", start, end)
    by = {row["step"]: row for row in m.waterfall}
    assert by["pulled_in"]["deals"] == by["pushed_out"]["deals"] == 0
    assert abs(_identity(m.waterfall)) < 1e-6 * max(1.0, by["start"]["amount"])
    counts = by["start"]["deals"] + by["new"]["deals"] - by["won"]["deals"] - by["lost"]["deals"]
    assert counts == by["end"]["deals"]
    h = ss.read_history(demo / "hist")
    assert by["end"]["deals"] == h.as_of(ss_date(end)).opportunities.filter(status="open").height


def ss_date(text: str):
    import datetime as dt

    return dt.date.fromisoformat(text)


def test_the_forecast_change_is_split_exactly(demo, monkeypatch):
    from salesim.scenarios import movement

    monkeypatch.setattr(movement, "TOP_VALUE_CHANGES", 10_000)  # every deal, to add them up
    model = demo / "model.toml"
    fit = CliRunner().invoke(
        main,
        ["calibrate", str(demo / "hist"), "--as-of", "2026-09-09", "-o", str(model), "--quiet"],
    )
    assert fit.exit_code == 0, fit.output
    m = ss.movement(demo / "hist", "2026-09-09", "2026-09-16", model=model, trials=200, seed=3)
    fc = m["forecast"]
    assert fc["seed"] == 3 and fc["trials"] == 200
    total = sum(fc["explained"].values())
    assert total == pytest.approx(fc["change"]["mean"], rel=1e-9, abs=1e-6)
    assert fc["from"]["as_of"].isoformat() == "2026-09-09"
    # the closed-to-date part is exactly the revenue won in between
    won = ss.movement(demo / "hist", "2026-09-09", "2026-09-16")
    h = ss.read_history(demo / "hist").opportunities
    between = h.filter(
        (h["status"] == "won")
        & (h["closed"] > ss_date("2026-09-09"))
        & (h["closed"] <= ss_date("2026-09-16"))
    )["amount"].sum()
    assert fc["explained"]["closed_to_date"] == pytest.approx(between)
    assert won.waterfall[4]["amount"] <= between + 1e-6  # won from the pipeline ⊆ won
    # deal by deal: the expected values' changes and the new pipeline's make the whole change
    by_deal = sum(d["change"] for d in fc["deals"]) + fc["explained"]["new_pipeline"]
    assert by_deal == pytest.approx(fc["change"]["mean"], rel=1e-6, abs=1e-3)
    assert [abs(d["change"]) for d in fc["deals"]] == sorted(
        (abs(d["change"]) for d in fc["deals"]), reverse=True
    )
