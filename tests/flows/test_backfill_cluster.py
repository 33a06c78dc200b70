"""The backfill flow on an existing Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (started here, as an operator or dask-jobqueue would), with a local
Prefect server; the published forecasts equal those of the default LocalCluster run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from flare_core.publish.forecast_store import FORECAST_KEY, ForecastStore
from flows.layout import Layout
from tests.flows.conftest import ISSUE

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")
#: Seven days of hourly issue times around the X1.6 flare of AR 12192 (2014-10-22).
START, END = ISSUE - timedelta(days=3, hours=6), ISSUE + timedelta(days=4, hours=-7)


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A daemon in its own process group (so the group, nanny children included, is killed)."""
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever is left in the group (a worker under its nanny)
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def _group_alive(pgid: int, wait_s: float = 10.0) -> bool:
    """Whether a process of group ``pgid`` still runs after ``wait_s`` (init reaps the
    killed grandchildren meanwhile)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(scheduler address, Prefect API URL) of a scheduler + 2 single-threaded workers and a
    local Prefect server; everything is stopped, and checked gone, afterwards."""
    from distributed import Client

    from deployments.server import local_server

    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    with local_server() as api:
        env = {**os.environ, "PREFECT_API_URL": api, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        procs = [_start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                         "--no-dashboard", "--scheduler-file", str(sched_file)], env,
                        tmp / "scheduler.log")]
        try:
            for i in range(2):
                procs.append(_start([str(DASK), "worker", "--scheduler-file", str(sched_file),
                                     "--nthreads", "1", "--no-dashboard",
                                     "--host", "127.0.0.1", "--name", f"w{i}"], env,
                                    tmp / f"worker{i}.log"))
            deadline = time.monotonic() + 60
            while not sched_file.is_file() and time.monotonic() < deadline:
                time.sleep(0.2)
            with Client(scheduler_file=str(sched_file), timeout="30s") as client:
                client.wait_for_workers(2, timeout=60)
                address = client.scheduler.address
            yield {"address": address, "api": api, "scheduler_file": sched_file,
                   "pgids": [p.pid for p in procs]}
        finally:
            _stop(procs)
    assert not any(_group_alive(p.pid) for p in procs), "a Dask process outlived the test"


def _copy_installation(src: Path, dst: Path) -> Path:
    """The data store and models of ``src`` without its outputs and cached results (so the
    backfill in ``dst`` computes everything again)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
        "work", ".prefect-results", "published"))
    return dst


def _published(root: Path) -> pl.DataFrame:
    got = ForecastStore(Layout.of(root).forecasts).read(start=START,
                                                        end=END + timedelta(seconds=1))
    return got.drop("written_at").sort(FORECAST_KEY)


def test_backfill_on_existing_cluster_equals_local_cluster(installation, cluster,
                                                           tmp_path):
    from distributed import Client

    from flows.backfill import backfill

    local_root = _copy_installation(installation["root"], tmp_path / "local")
    remote_root = _copy_installation(installation["root"], tmp_path / "remote")
    model = installation["model_dir"]
    kw = {"batch_size": 24, "page": False}
    local = backfill(START, END, str(local_root), model, dask_processes=False, **kw)
    remote = backfill(START, END, str(remote_root), model, dask_address=cluster["address"],
                      **kw)
    assert local["requested"] == remote["requested"] == 7 * 24
    assert remote["status"] == local["status"] == "complete"
    assert remote["rows"] == local["rows"] > 0
    assert remote["model_seconds"] > 0  # computed, not read from a cache
    expected, got = _published(local_root), _published(remote_root)
    assert got.height == remote["rows"]
    assert got.equals(expected)
    # the batches ran on the workers of the existing cluster, both of them
    with Client(cluster["address"], timeout="30s") as client:
        transitions = client.run(lambda dask_worker: dask_worker.state.transition_counter)
    assert len(transitions) == 2 and all(n > 0 for n in transitions.values()), transitions
