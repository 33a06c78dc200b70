"""A local Prefect server on 127.0.0.1 for the duration of a command.

`local_server` is used by ``flareflow serve`` (with the UI), by the offline demo and the
backfill command (so that Dask worker processes report to the same API instead of each
starting a temporary server of their own), and by the deployment tests. If
``PREFECT_API_URL`` is already set, it is used as is and nothing is started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["local_server", "free_port", "wait_healthy", "flush_logs"]

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(api_url: str, timeout_s: float = 120.0,
                 proc: subprocess.Popen | None = None) -> None:
    """Poll ``<api_url>/health`` until it answers 200; RuntimeError after ``timeout_s``."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"Prefect server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"Prefect server at {api_url} not healthy after {timeout_s:.0f} s")


def flush_logs() -> None:
    """Send buffered run logs to the API (before the server goes away)."""
    try:
        from prefect.logging.handlers import APILogHandler

        APILogHandler.flush()
    except Exception as e:  # noqa: BLE001 - best effort at shutdown
        logger.debug("log flush failed: %s", e)


@contextlib.contextmanager
def local_server(port: int | None = None, *, ui: bool = False,
                 timeout_s: float = 120.0) -> Iterator[str]:
    """Run ``prefect server start --host 127.0.0.1`` (UI) or the API alone, yield its API URL.

    While inside, ``PREFECT_API_URL`` is set in the environment (inherited by Dask workers
    and flow-run subprocesses) and in Prefect's settings. The server is stopped on exit.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if os.environ.get("PREFECT_HOME"):  # the server's database lives there
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if ui:
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(port)]
    else:
        env.update(PREFECT_UI_ENABLED="0")
        cmd = [sys.executable, "-m", "uvicorn", "--factory",
               "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
               str(port), "--log-level", "error", "--lifespan", "on"]
    logger.info("starting a Prefect server at %s", api_url)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL if not ui else None,
                            stderr=subprocess.DEVNULL if not ui else None)
    try:
        wait_healthy(api_url, timeout_s, proc)
        os.environ["PREFECT_API_URL"] = api_url
        with temporary_settings({PREFECT_API_URL: api_url}):
            yield api_url
            flush_logs()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
