"""The deployments against a real local Prefect server, started by ``flareflow serve``.

The first test starts ``python -m flareflow serve`` (which starts ``prefect server`` on
127.0.0.1 and serves the four deployments), checks that they are registered with their
schedules, triggers the backfill deployment with parameters as the UI would, waits for the
run, and checks its result and that flare_core INFO lines reached the run log.

The stop tests send SIGINT, SIGTERM or SIGKILL to a serving ``flareflow serve`` and check
that it and every process it started are gone within 15 s and the port is free again.
`start_serve` is shared with ``test_serve_schedule.py`` and ``test_serve_security.py``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from deployments.server import free_port, wait_healthy
from flare_core.publish.forecast_store import ForecastStore
from flows.layout import Layout
from tests.flows.conftest import ISSUE

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"forecast/hourly-forecast": "5 * * * *", "ingest/daily-ingest": "30 0 * * *",
            "train/weekly-retrain": "0 3 * * 1", "backfill/backfill": None}


#: Credentials the tests give ``flareflow serve`` (FLAREFLOW_API_AUTH).
AUTH = "tester:not-a-real-secret"


@dataclass
class Served:
    """A running ``flareflow serve`` subprocess (in its own session)."""

    proc: subprocess.Popen
    port: int
    root: Path
    log_path: Path
    auth: str | None
    seen: list[psutil.Process] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def headers(self, auth: str | None = None) -> dict[str, str]:
        token = base64.b64encode((auth or self.auth or "").encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def tree(self) -> list[psutil.Process]:
        """The CLI process and all its descendants now (remembered for the clean-up)."""
        root = psutil.Process(self.proc.pid)
        procs = [root, *root.children(recursive=True)]
        self.seen.extend(p for p in procs if p not in self.seen)
        return procs

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_serve(root: Path, tmp: Path, *args: str, auth: str | None = AUTH,
                env: dict[str, str] | None = None) -> Served:
    """``python -m flareflow serve --store root --no-ui ARGS`` on a free port, healthy."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("PREFECT_API") and k != "FLAREFLOW_API_AUTH"}
    environ.update(PREFECT_HOME=str(tmp / f"prefect-home-{port}"), PYTHONPATH=str(REPO),
                   PREFECT_RUNNER_POLL_FREQUENCY="1", PREFECT_LOGGING_LEVEL="INFO",
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", **(env or {}))
    if auth:
        environ["FLAREFLOW_API_AUTH"] = auth
    log_path = tmp / f"serve-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flareflow", "serve", "--store", str(root), "--port",
             str(port), "--no-ui", *args],
            cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    served = Served(proc, port, root, log_path, auth)
    try:
        wait_healthy(served.api, timeout_s=120, proc=proc)
    except BaseException:
        stop_serve(served)
        raise
    return served


def wait_deployments(served: Served, n: int, timeout_s: float = 90.0) -> list[dict]:
    """The served deployments once ``n`` are registered and the runner has started."""
    if served.auth is None:
        served.auth = (served.root / "api_auth").read_text().strip()
    deadline = time.monotonic() + timeout_s
    while True:
        r = httpx.post(f"{served.api}/deployments/filter", json={},
                       headers=served.headers(), timeout=10)
        if r.status_code == 200 and len(r.json()) >= n and "runner started" in served.log():
            served.tree()
            return r.json()
        assert time.monotonic() < deadline, (r.status_code, r.text, served.log())
        time.sleep(0.5)


def stop_serve(served: Served) -> None:
    """SIGTERM, then SIGKILL, to the CLI and every process it was seen to start."""
    with contextlib.suppress(psutil.Error):
        served.tree()
    for p in served.seen:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(served.seen, timeout=20)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        served.proc.wait(timeout=5)


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (closed connections in TIME_WAIT do not count)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def served(installation, tmp_path):
    s = start_serve(installation["root"], tmp_path, "--no-fetch")
    try:
        yield s.api
    finally:
        stop_serve(s)


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
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: served, PREFECT_API_AUTH_STRING: AUTH}):
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_serve_stops_with_its_children(sig, tmp_path):
    """Each signal ends the CLI, the server (SIGKILL: by parent-death signal), the runner
    and uvicorn within 15 s; nothing keeps listening on the port."""
    s = start_serve(tmp_path / "store", tmp_path, "--only", "backfill")
    try:
        wait_deployments(s, 1)
        procs = s.tree()
        assert len(procs) >= 2, "no server child"  # the CLI and its Prefect server
        began = time.monotonic()
        s.proc.send_signal(sig)
        gone, alive = psutil.wait_procs(procs, timeout=15)
        took = time.monotonic() - began
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, (sig, [p.cmdline() for p in alive], s.log())
        assert port_free(s.port), (sig, took, s.log())
        if sig != signal.SIGKILL:
            assert s.proc.wait(timeout=5) == 0, s.log()
            assert "All deployments have been paused" in s.log()
    finally:
        stop_serve(s)
