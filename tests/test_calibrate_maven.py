"""The public Maven CRM sample loads and calibrates; counts and cycle medians match the file."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from salesim.calibrate.fit import calibrate, summary
from salesim.calibrate.ingest import read_history

MAVEN = Path(__file__).parents[2] / "shared" / "data" / "maven-crm"
pytestmark = pytest.mark.skipif(
    not (MAVEN / "sales_pipeline.csv").is_file(), reason="Maven CRM sample not present"
)


@pytest.fixture(scope="module")
def maven():
    raw = pl.read_csv(MAVEN / "sales_pipeline.csv", try_parse_dates=True)
    history = read_history(MAVEN, format="maven")
    return raw, calibrate(history, history.last_date)


def test_counts_match_the_file(maven):
    raw, model = maven
    count = lambda stage: raw.filter(pl.col("deal_stage") == stage).height  # noqa: E731
    assert model.cycle.n_advanced == count("Won")
    assert model.cycle.n_lost == count("Lost")
    assert model.cycle.n_open == count("Engaging")
    assert model.n_opportunities == raw.height - count("Prospecting")
    assert model.as_of == raw["close_date"].max()
    assert model.stage_names == ("Engaging",)


def test_cycle_medians_match_the_file(maven):
    """The fitted medians are censoring-aware, so young open deals shift them a little from
    the closed deals' medians: within 3 days or 5%."""
    raw, model = maven
    closed = raw.filter(pl.col("close_date").is_not_null()).with_columns(
        days=(pl.col("close_date") - pl.col("engage_date")).dt.total_days()
    )
    s = summary(model)
    for stage, key in (("Won", "won_median"), ("Lost", "lost_median")):
        file_median = closed.filter(pl.col("deal_stage") == stage)["days"].median()
        assert abs(s["cycle_days"][key] - file_median) <= max(3.0, 0.05 * file_median), stage


def test_win_rate_and_sizes_are_sensible(maven):
    raw, model = maven
    won, lost = (raw.filter(pl.col("deal_stage") == s).height for s in ("Won", "Lost"))
    # Most open deals are older than any closed one: they never close (a stall share,
    # docs/calibration.md). That share lies between the share of such old open deals and
    # the share of all open deals, and among deals that do close the win share is the
    # closed deals' share.
    cycle_days = (pl.col("close_date") - pl.col("engage_date")).dt.total_days()
    longest = raw.filter(pl.col("close_date").is_not_null()).select(cycle_days.max()).item()
    open_ = raw.filter(pl.col("deal_stage") == "Engaging").with_columns(
        age=(pl.lit(model.as_of) - pl.col("engage_date")).dt.total_days()
    )
    n = model.n_opportunities
    stall = model.cycle.stall
    assert stall is not None
    assert open_.filter(pl.col("age") > longest).height / n < stall.mean < open_.height / n
    share = won / (won + lost)
    se = (share * (1 - share) / (won + lost)) ** 0.5
    assert abs(model.cycle.conversion.mean / (1 - stall.mean) - share) < 3 * se
    sizes = {s.name: s for s in model.deal_size}
    assert len(sizes) == raw["product"].n_unique()
    big = sizes["GTK 500"].size.dist
    assert 20_000 < big.quantile(0.5) < 30_000
    assert not model.activities.observed and not model.team.calibrated
    assert any("no reps file" in n for n in model.notes)


def test_earlier_as_of_uses_only_what_was_known(maven):
    raw, _ = maven
    as_of = dt.date(2017, 6, 30)
    model = calibrate(read_history(MAVEN, format="maven"), as_of)
    known = raw.filter(pl.col("engage_date") <= as_of)
    won_by = known.filter((pl.col("deal_stage") == "Won") & (pl.col("close_date") <= as_of))
    assert model.n_opportunities == known.height
    assert model.cycle.n_advanced == won_by.height


def test_a_bad_product_price_is_blamed_on_products_csv(tmp_path):
    import shutil

    from salesim.calibrate.ingest import read_history
    from salesim.simulator.errors import InputError

    folder = tmp_path / "maven"
    shutil.copytree(MAVEN, folder)
    path = folder / "products.csv"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"GTX Basic,GTX,550", b"GTX Basic,GTX,abc"))
    with pytest.raises(InputError, match="price 'abc'") as err:
        read_history(folder, format="maven")
    assert (err.value.file, err.value.row, err.value.column) == (str(path), 2, "sales_price")
