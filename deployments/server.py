"""A local Prefect server on 127.0.0.1 for the duration of a command.

`local_server` is used by ``flareflow serve`` (with the UI), by the offline demo and the
backfill command (so that Dask worker processes report to the same API instead of each
starting a temporary server of their own), and by the deployment tests. If
``PREFECT_API_URL`` is already set, it is used as is and nothing is started.

The server runs in its own session (a Ctrl-C in the terminal reaches only the command, which
then stops the server after its own shutdown still needed it) and is told by the kernel to
exit when the command dies (``PR_SET_PDEATHSIG``, Linux), so a killed command leaves no
uvicorn behind. With ``auth`` it requires HTTP basic auth on every API call except
``/health`` and allows cross-origin calls only from its own origin. Start-up waits
``FLAREFLOW_SERVER_START_TIMEOUT`` seconds (default 120).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["local_server", "free_port", "wait_healthy", "flush_logs", "drain_prefect_services", "load_api_auth",
           "start_timeout_s", "START_TIMEOUT_ENV", "API_AUTH_ENV"]

logger = logging.getLogger(__name__)

#: Seconds to wait for the server's ``/health`` (default `_DEFAULT_START_TIMEOUT_S`).
START_TIMEOUT_ENV = "FLAREFLOW_SERVER_START_TIMEOUT"
#: ``user:password`` of the served API; default generated into ``<store root>/api_auth``.
API_AUTH_ENV = "FLAREFLOW_API_AUTH"
_DEFAULT_START_TIMEOUT_S = 120.0
_PR_SET_PDEATHSIG = 1


def start_timeout_s() -> float:
    """``FLAREFLOW_SERVER_START_TIMEOUT`` (seconds, > 0) or 120."""
    raw = os.environ.get(START_TIMEOUT_ENV)
    if not raw:
        return _DEFAULT_START_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        from flare_core.errors import ConfigError

        raise ConfigError(f"{START_TIMEOUT_ENV} must be a positive number of seconds, "
                          f"got {raw!r}")
    return value


def load_api_auth(root: str | Path) -> str:
    """The ``user:password`` of the served API.

    ``FLAREFLOW_API_AUTH`` if set; otherwise the content of ``<root>/api_auth``, generated
    once (user ``flareflow``, 32 random URL-safe characters, mode 0600) and reused.
    """
    from flare_core.errors import ConfigError

    given = os.environ.get(API_AUTH_ENV)
    if given:
        if ":" not in given:
            raise ConfigError(f"{API_AUTH_ENV} must be user:password")
        return given
    path = Path(root) / "api_auth"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            logger.warning("%s is readable by other users; chmod 600 it", path)
        value = path.read_text().strip()
        if ":" not in value:
            raise ConfigError(f"{path} must hold user:password") from None
        return value
    value = f"flareflow:{secrets.token_urlsafe(24)}"
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    logger.info("generated API credentials in %s", path)
    return value


def _die_with_parent() -> None:
    """``preexec_fn``: own session, and SIGTERM when the parent dies (Linux only)."""
    os.setsid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the command's own cleanup must do
        pass


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


def drain_prefect_services(timeout_s: float = 10.0) -> None:
    """Stop Prefect's background services (concurrency-slot leases, log and event workers).

    They are process-wide singletons that keep the API client of the server they first
    talked to. Drained while this server still answers, the next flow of the process (on
    another server) starts fresh ones; left running, its tasks would try the stopped server
    ("Unable to acquire concurrency slots", "All connection attempts failed").
    """
    try:
        from prefect._internal.concurrency.services import _QueueServiceBase

        _QueueServiceBase.drain_all(timeout=timeout_s, at_exit=False)
    except Exception as e:  # noqa: BLE001 - best effort at shutdown
        logger.debug("draining Prefect services failed: %s", e)


def flush_logs() -> None:
    """Send buffered run logs to the API (before the server goes away)."""
    try:
        from prefect.logging.handlers import APILogHandler

        APILogHandler.flush()
    except Exception as e:  # noqa: BLE001 - best effort at shutdown
        logger.debug("log flush failed: %s", e)


@contextlib.contextmanager
def local_server(port: int | None = None, *, ui: bool = False,
                 timeout_s: float | None = None, auth: str | None = None,
                 log_path: str | Path | None = None) -> Iterator[str]:
    """Run ``prefect server start --host 127.0.0.1`` (UI) or the API alone, yield its API URL.

    While inside, ``PREFECT_API_URL`` (and with ``auth`` ``PREFECT_API_AUTH_STRING``) is
    set in the environment (inherited by Dask workers and flow-run subprocesses) and in
    Prefect's settings. The server is stopped on exit.

    Parameters
    ----------
    port
        Port on 127.0.0.1; default a free one.
    ui
        Serve the Prefect UI too.
    timeout_s
        Seconds to wait for ``/health``; default `start_timeout_s`.
    auth
        ``user:password`` the server requires (HTTP basic) on every API call but
        ``/health``; None: no authentication (a short-lived server of one command).
    log_path
        File that gets the server's stdout and stderr (appended); None: the terminal with
        ``ui``, else discarded.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    if os.environ.get("PREFECT_HOME"):  # the server's database lives there
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           # the UI is served from the same origin; no other site may call the API
           "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}"}
    if auth:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
    if ui:
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(port)]
    else:
        env.update(PREFECT_UI_ENABLED="0")
        cmd = [sys.executable, "-m", "uvicorn", "--factory",
               "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
               str(port), "--log-level", "error", "--lifespan", "on"]
    settings = {PREFECT_API_URL: api_url}
    if auth:
        settings[PREFECT_API_AUTH_STRING] = auth
    logger.info("starting a Prefect server at %s", api_url)
    with contextlib.ExitStack() as files:
        out: int | IO[bytes] | None = None if ui else subprocess.DEVNULL
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            out = files.enter_context(Path(log_path).open("ab"))
        proc = subprocess.Popen(cmd, env=env, stdout=out,
                                stderr=None if out is None else subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
        try:
            wait_healthy(api_url, timeout_s or start_timeout_s(), proc)
            os.environ["PREFECT_API_URL"] = api_url
            if auth:
                os.environ["PREFECT_API_AUTH_STRING"] = auth
            with temporary_settings(settings):
                yield api_url
                flush_logs()
        finally:
            drain_prefect_services()
            os.environ.pop("PREFECT_API_URL", None)
            if auth:
                os.environ.pop("PREFECT_API_AUTH_STRING", None)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
