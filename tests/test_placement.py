"""Open deals the model's stages do not name are still forecast (scenarios/placement.py)."""

import datetime as dt
import json

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from salesim.calibrate.history import OPPORTUNITY_COLUMNS, History
from salesim.cli import main
from salesim.scenarios.baseline import baseline_spec, open_deals_at
from salesim.scenarios.placement import placements
from salesim.simulator.distributions import Exponential
from tests.factories import simple_model, stage

D = dt.date
AS_OF = D(2026, 8, 31)
DATA = "tests/data"


def model(*names_and_conversions):
    return simple_model(
        stages=tuple(
            stage(n, p, Exponential(10.0), Exponential(10.0)) for n, p in names_and_conversions
        ),
        per_rep_day=1.0,
        opportunity_yield=0.05,
    )


def history(rows, order, stage_order="given", probability=None) -> History:
    """Open deals ``(id, stage, created)``; no stage history."""
    o = pl.DataFrame(
        [
            {
                "opportunity_id": i,
                "owner": "rep1",
                "created": c,
                "stage": s,
                "status": "open",
                "closed": None,
                "amount": 1_000.0,
                "segment": "all",
                "source": None,
            }
            for i, s, c in rows
        ],
        schema=OPPORTUNITY_COLUMNS,
    )
    if probability is not None:
        o = o.with_columns(pl.Series("probability", probability, dtype=pl.Float64))
    return History(o, tuple(order), source="export", stage_order=stage_order)


def test_a_one_step_model_takes_every_open_deal_by_its_age_since_created():
    m = model(("Open", 0.3))
    h = history(
        [
            ("a", "qualifiedtobuy", D(2026, 8, 1)),
            ("b", "contractsent", D(2026, 6, 1)),
            ("c", None, D(2026, 8, 30)),
        ],
        ("qualifiedtobuy", "contractsent"),
        "first seen",
    )
    deals, notes = open_deals_at(h, AS_OF, m.stage_names, model=m)
    assert deals["stage"].to_list() == ["Open"] * 3
    assert deals["age_days"].to_list() == [30.5, 91.5, 1.5]
    assert any("3 open deal(s) in the model's one step" in n for n in notes)


def test_a_label_the_model_lacks_takes_the_last_model_stage_before_it_in_the_order():
    m = model(("Qualify", 0.5), ("Propose", 0.6))
    order = ("Lead", "Qualify", "Discover", "Propose", "Negotiate")
    h = history(
        [
            ("a", "Discover", D(2026, 8, 1)),
            ("b", "Negotiate", D(2026, 8, 1)),
            ("c", "Lead", D(2026, 8, 1)),
            ("d", "Propose", D(2026, 8, 1)),
        ],
        order,
    )
    index, rule = placements(h.opportunities, m, order)
    assert index == [0, 1, 0, 1]
    assert rule == ["stage order", "stage order", "stage order", "label"]


def test_without_an_order_a_crm_probability_picks_the_stage_with_the_nearest_chance():
    m = model(("Qualify", 0.5), ("Propose", 0.6))  # chances to end won: 0.30, 0.60
    h = history(
        [("a", "X", D(2026, 8, 1)), ("b", "Y", D(2026, 8, 1)), ("c", "Z", D(2026, 8, 1))],
        ("X", "Y", "Z"),
        "first seen",
        probability=[0.2, 0.55, None],
    )
    index, rule = placements(h.opportunities, m, None)
    assert index == [0, 1, 0]
    assert rule == ["probability", "probability", "first stage"]


def test_placed_deals_enter_after_the_median_times_of_the_stages_before():
    m = model(("Qualify", 0.5), ("Propose", 0.6), ("Negotiate", 0.7))
    h = history(
        [("a", "Negotiate", D(2026, 7, 1)), ("b", "Negotiate", D(2026, 8, 25))],
        ("Qualify", "Propose", "Negotiate"),
    )
    deals, notes = open_deals_at(h, AS_OF, m.stage_names, model=m)
    lead = round(2 * m.stages[0].advance.dist.quantile(0.5))  # two stages of median 6.9 d
    start = AS_OF + dt.timedelta(days=1)
    assert deals["age_days"].to_list() == [
        (start - D(2026, 7, 1)).days - lead - 0.5,
        0.5,
    ]  # entered no later than the as-of date
    assert any("2 open deal(s) without a stage-history entry" in n for n in notes)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C", "Q", None]),
            st.integers(0, 200),
            st.one_of(st.none(), st.floats(0, 1)),
        ),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_every_open_deal_and_its_amount_reach_the_forecast(deals, ordered):
    m = model(("A", 0.5), ("C", 0.6))
    rows = [(f"d{i}", s, AS_OF - dt.timedelta(days=age)) for i, (s, age, _) in enumerate(deals)]
    h = history(
        rows,
        ("A", "B", "C", "Q"),
        "given" if ordered else "first seen",
        probability=[p for _, _, p in deals],
    )
    out, _ = open_deals_at(h, AS_OF, m.stage_names, model=m)
    assert out["opportunity_id"].to_list() == [r[0] for r in rows]
    assert set(out["stage"]) <= set(m.stage_names)
    assert out["amount"].sum() == pytest.approx(1_000.0 * len(rows))
    assert (out["age_days"] >= 0).all()
    spec = baseline_spec(m, history=h, as_of=AS_OF)
    assert spec.open_deals.height == len(rows)


# --- stage-less exports end to end ---------------------------------------------------------------
HUBSPOT = [
    "--map",
    "opportunity_id=Record ID,owner=Deal owner,created=Create Date",
    "--map",
    "closed=Close Date,amount=Amount,status=Deal Stage,stage=Deal Stage",
]
SALESFORCE = [
    "--date-format",
    "%m/%d/%Y",
    "--map",
    "opportunity_id=Opportunity ID,owner=Opportunity Owner,created=Created Date",
    "--map",
    "closed=Close Date,amount=Amount,source=Lead Source",
    "--map",
    "status=Stage",
    "--map",
    "stage=Stage",
    "--stages",
    "Prospecting,Qualification,Needs Analysis,Proposal/Price Quote,Negotiation/Review",
]
SF_HISTORY = [
    "--stage-history",
    f"{DATA}/salesforce_stage_history.csv",
    "--map",
    "stage_history.entered=Last Modified",
]


def run(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


def test_a_hubspot_export_without_stage_history_is_calibrated_and_forecast(tmp_path):
    model_path = str(tmp_path / "hs.toml")
    run(["calibrate", f"{DATA}/hubspot_deals.csv", *HUBSPOT, "-o", model_path, "--quiet"])
    out = json.loads(
        run(
            [
                "forecast",
                model_path,
                "--history",
                f"{DATA}/hubspot_deals.csv",
                *HUBSPOT,
                "--trials",
                "200",
                "--seed",
                "1",
                "--json",
                "--quiet",
            ]
        ).stdout
    )
    assert out["flows"]["open_start"]["mean"] == 3
    assert out["by_origin"]["open_pipeline"]["mean"] > 0
    assert any("3 open deal(s) in the model's one step (Open)" in n for n in out["notes"])


def test_a_salesforce_export_forecasts_with_and_without_its_stage_history(tmp_path):
    model_path = str(tmp_path / "sf.toml")
    run(
        [
            "calibrate",
            f"{DATA}/salesforce_opportunities.csv",
            *SALESFORCE,
            *SF_HISTORY,
            "-o",
            model_path,
            "--quiet",
        ]
    )
    base = [
        "forecast",
        model_path,
        "--history",
        f"{DATA}/salesforce_opportunities.csv",
        *SALESFORCE,
        "--trials",
        "200",
        "--seed",
        "1",
        "--json",
        "--quiet",
    ]
    with_history = json.loads(run(base + SF_HISTORY).stdout)
    without = json.loads(run(base).stdout)
    assert with_history["flows"]["open_start"]["mean"] == without["flows"]["open_start"]["mean"] > 0
    assert any("without a stage-history entry" in n for n in without["notes"])
