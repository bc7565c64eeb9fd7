"""Chunks on a dask.distributed cluster give exactly the numbers of a local run.

Needs the optional extra (``pip install "salesim[dask]"``); skipped without it.
"""

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

pytest.importorskip(
    "distributed",
    reason='dask.distributed is not installed: pip install "salesim[dask]" to run these tests',
)

from distributed import LocalCluster  # noqa: E402

from salesim.scenarios.forecast import summarise  # noqa: E402
from salesim.simulator import runner  # noqa: E402
from salesim.simulator.dask_executor import SCHEDULER_ENV, DaskExecutor  # noqa: E402
from salesim.simulator.distributions import LogNormal  # noqa: E402
from salesim.simulator.errors import InputError  # noqa: E402
from salesim.simulator.model import GammaPosterior  # noqa: E402
from salesim.simulator.spec import Rep, SimSpec  # noqa: E402
from tests.factories import simple_model  # noqa: E402


def spec() -> SimSpec:
    # Non-integer deal sizes: integer sums are exact in any order and would hide an
    # order dependence.
    m = simple_model(
        per_rep_day=6.0,
        opportunity_yield=0.05,
        dispersion=3.0,
        rep_sigma=0.3,
        marketing_weekly=2.0,
        attrition=0.1,
        deal_size=LogNormal(median=9_876.54, sigma=0.7),
    )
    m = dataclasses.replace(
        m, marketing=dataclasses.replace(m.marketing, weekly=GammaPosterior(8.0, 4.0))
    )
    return SimSpec(
        m,
        tuple(Rep(f"r{i}") for i in range(3)),
        dt.date(2026, 7, 1),
        92,
        attrition=True,
        backfill=True,
    )


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    ) as c:
        yield c


def same(a, b):
    """Every array equal, and so the whole forecast JSON."""
    assert a.totals.equals(b.totals)
    assert np.array_equal(a.chunks.weekly, b.chunks.weekly)
    assert np.array_equal(a.chunks.rep_revenue, b.chunks.rep_revenue)
    s = spec()
    assert json.dumps(summarise(s, a), default=str, sort_keys=True) == json.dumps(
        summarise(s, b), default=str, sort_keys=True
    )


@pytest.mark.parametrize(
    "engine,trials",
    [
        ("vector", 2 * runner.CHUNK_SIZES["vector"] + 31),
        ("simpy", 2 * runner.CHUNK_SIZES["simpy"] + 7),
    ],
)
def test_cluster_run_equals_local_run(cluster, engine, trials):
    local = runner.run(spec(), trials, seed=123, engine=engine, workers=1)
    with DaskExecutor(cluster.scheduler_address, in_flight=1) as ex:
        assert ex.workers == 2
        remote = runner.run(spec(), trials, seed=123, engine=engine, executor=ex)
    same(local, remote)
    assert remote.extra["workers"] == 2


def test_scheduler_from_the_environment_and_scoped_executor(cluster, monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
    local = runner.run(spec(), 2500, seed=7, engine="vector", workers=1)
    remote = runner.run(spec(), 2500, seed=7, engine="vector", executor="dask")  # env address
    same(local, remote)
    with DaskExecutor() as ex, runner.using_executor(ex):
        assert ex.address == cluster.scheduler_address
        scoped = runner.run(spec(), 2500, seed=7, engine="vector")  # no executor given
    same(local, scoped)


def test_unreachable_scheduler_is_an_input_error(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with pytest.raises(InputError, match="scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=2)


def test_without_an_address_a_local_cluster_is_started(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    local = runner.run(spec(), 300, seed=3, engine="vector", workers=1)
    remote = runner.run(spec(), 300, seed=3, engine="vector", workers=1, executor="dask")
    same(local, remote)


def test_the_local_clusters_dashboard_listens_on_localhost_only(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with DaskExecutor(None, 1) as ex:
        sockets = ex._cluster.scheduler.http_server._sockets.values()
        hosts = {s.getsockname()[0] for s in sockets}
    assert hosts == {"127.0.0.1"}


def test_cli_executor_flags_give_the_same_forecast(tmp_path, cluster, monkeypatch):
    from click.testing import CliRunner

    from salesim import cli
    from salesim.simulator.demo_history import default_truth
    from salesim.simulator.model import save

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    model = save(default_truth(dt.date(2026, 6, 30), reps=3), tmp_path / "m.toml")
    args = [
        "forecast",
        str(model),
        "--reps",
        "3",
        "--trials",
        "300",
        "--seed",
        "5",
        "--json",
        "--quiet",
    ]

    def forecast(*extra):
        res = CliRunner().invoke(cli.main, args + list(extra))
        assert res.exit_code == 0, res.output
        return res.stdout  # the whole JSON

    local = forecast("--workers", "1")
    assert json.loads(local)["engine"] == "vector"  # the default engine
    assert forecast("--scheduler", cluster.scheduler_address) == local
    monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
    assert forecast() == local  # SALESIM_SCHEDULER
    bad = CliRunner().invoke(
        cli.main, args + ["--executor", "processes", "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert bad.exit_code == 2 and "--scheduler" in bad.output
