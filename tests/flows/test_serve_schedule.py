"""The scheduler of a served installation creates runs by itself and the runner completes
them (issue 9, point 3: with SQLAlchemy 2.1 the scheduler raised on every loop and no run
was ever created).

``flareflow serve --only hourly-forecast --interval 30s --no-fetch`` on the trained test
installation; nothing triggers a run. Within 3 minutes a run of the deployment must be
auto-scheduled and COMPLETED: a real forecast of the current hour (no records that recent,
so it publishes nothing and says why).
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.flows.test_deployments import start_serve, stop_serve, wait_deployments


@pytest.mark.slow
def test_scheduled_forecast_runs_by_itself(installation, tmp_path):
    s = start_serve(installation["root"], tmp_path, "--no-fetch", "--only", "hourly-forecast",
                    "--interval", "30s")
    try:
        (dep,) = wait_deployments(s, 1)
        assert dep["name"] == "hourly-forecast"
        assert [sch["schedule"]["interval"] for sch in dep["schedules"]] == [30.0]
        deadline = time.monotonic() + 180
        runs: list[dict] = []
        while time.monotonic() < deadline:
            r = httpx.post(f"{s.api}/flow_runs/filter", headers=s.headers(), timeout=10,
                           json={"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}})
            assert r.status_code == 200, r.text
            runs = r.json()
            if any(run["state_type"] == "COMPLETED" for run in runs):
                break
            time.sleep(2)
        done = [run for run in runs if run["state_type"] == "COMPLETED"]
        assert done, ([(run["name"], run["state_type"]) for run in runs], s.log())
        assert all(run["auto_scheduled"] for run in runs), runs
        assert "Can't evaluate bulk DML" not in (s.root / "logs/prefect-server.log").read_text()
    finally:
        stop_serve(s)
