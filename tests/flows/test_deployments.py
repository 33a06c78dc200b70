"""The deployments against a real local Prefect server, started by ``flareflow serve``.

The test starts ``python -m flareflow serve`` (which starts ``prefect server`` on
127.0.0.1 and serves the four deployments), checks that they are registered with their
schedules, triggers the backfill deployment with parameters as the UI would, waits for the
run, and checks its result and that flare_core INFO lines reached the run log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from deployments.server import free_port, wait_healthy
from flare_core.publish.forecast_store import ForecastStore
from flows.layout import Layout
from tests.flows.conftest import ISSUE

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"forecast/hourly-forecast": "5 * * * *", "ingest/daily-ingest": "30 0 * * *",
            "train/weekly-retrain": "0 3 * * 1", "backfill/backfill": None}


@pytest.fixture
def served(installation, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO),
               PREFECT_RUNNER_POLL_FREQUENCY="1", PREFECT_LOGGING_LEVEL="INFO",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flareflow", "serve", "--store", str(installation["root"]),
         "--port", str(port), "--no-ui", "--no-fetch"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(api, timeout_s=120, proc=proc)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _deployments(client, deadline_s: float = 90.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return {name: client.read_deployment_by_name(name) for name in EXPECTED}
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_served_deployments_run_with_parameters(served, installation):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: served}):
        with get_client(sync_client=True) as client:
            deps = _deployments(client)
            for name, cron in EXPECTED.items():
                crons = [s.schedule.cron for s in deps[name].schedules]
                assert crons == ([cron] if cron else []), name
            assert deps["backfill/backfill"].parameters["store"] == str(
                Layout.of(installation["root"]).root)
            start, end = ISSUE + timedelta(hours=18), ISSUE + timedelta(hours=21)
            run = run_deployment(
                "backfill/backfill", timeout=300,
                parameters={"start": start.isoformat(), "end": end.isoformat(),
                            "cadence_h": 1.0, "model_dir": installation["model_dir"],
                            "batch_size": 2, "dask_processes": True, "page": False})
            assert run.state.is_completed(), run.state
            time.sleep(2)  # the run's last log batch
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    fs = ForecastStore(Layout.of(installation["root"]).forecasts)
    got = fs.read(start=start, end=end + timedelta(seconds=1))
    assert got["issue_time"].n_unique() == 4
    assert any(rec.name.startswith("flare_core") and rec.level == 20 for rec in logs), \
        sorted({rec.name for rec in logs})
