"""The four flareflow deployments and the command that serves them.

=================  ==============  ==========================================================
deployment         schedule        what
=================  ==============  ==========================================================
hourly-forecast    ``5 * * * *``   `flows.forecast.forecast` of the current hour, fetching the
                                   regions' NRT SHARP records and recent flares first
daily-ingest       ``30 0 * * *``  `flows.ingest.ingest` of the last 48 h (definitive SHARP +
                                   HEK flares)
weekly-retrain     ``0 3 * * 1``   `flows.train.train` on everything in the store
backfill           none            `flows.backfill.backfill`; ``start``, ``end``,
                                   ``cadence_h`` are set in the UI (a local Dask cluster)
=================  ==============  ==========================================================

``flareflow serve`` (`serve_all`) starts a local Prefect server on 127.0.0.1 (UI included)
unless ``PREFECT_API_URL`` is set, and serves all four with a Prefect `Runner`. Every run logs
`flare_core` INFO lines into the run log (``PREFECT_LOGGING_EXTRA_LOGGERS=flare_core``).

Control of the served API needs credentials (HTTP basic auth, `deployments.server.
load_api_auth`: ``FLAREFLOW_API_AUTH`` or ``<store root>/api_auth``), and a run's parameters
cannot point the flows elsewhere: ``store`` is frozen to the served installation, a
``model_dir`` must be a directory under ``<store root>/models``, and ``dask_address``,
``jsoc_url`` and ``hek_url`` are not parameters of the served deployments (they come from the
serving process's configuration); the server rejects any other parameter (HTTP 409) before a
run is created. The server's own log is ``<store root>/logs/prefect-server.log``.

SIGINT and SIGTERM stop the same way: the runner stops polling, pauses the schedules and
ends its runs, then the server is stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = ["EXTRA_LOGGERS_ENV", "DEPLOYMENT_NAMES", "configure_logging_env",
           "build_deployments", "serve_all"]

logger = logging.getLogger(__name__)

#: Environment that makes flare_core's stdlib log lines part of every run log.
EXTRA_LOGGERS_ENV = {"PREFECT_LOGGING_EXTRA_LOGGERS": "flare_core"}
#: The served deployments, in serving order.
DEPLOYMENT_NAMES = ("hourly-forecast", "daily-ingest", "weekly-retrain", "backfill")
#: Flow parameters that only the serving process's configuration sets.
_SERVER_ONLY_PARAMETERS = ("dask_address", "jsoc_url", "hek_url")


def configure_logging_env() -> None:
    """Set `EXTRA_LOGGERS_ENV` (before Prefect configures logging) and let flare_core
    INFO records through."""
    for k, v in EXTRA_LOGGERS_ENV.items():
        os.environ.setdefault(k, v)
    logging.getLogger("flare_core").setLevel(logging.INFO)


def build_deployments(store: str | Path | None = None, *, fetch: bool = True,
                      quick_train: bool = False, only: list[str] | None = None,
                      interval_s: float | None = None) -> list[Any]:
    """The `RunnerDeployment` objects (not yet registered) for the installation ``store``.

    Parameters
    ----------
    store
        Installation root; frozen into every deployment.
    fetch
        Hourly forecasts fetch JSOC/HEK data first.
    quick_train
        The weekly retrain uses the quick configuration.
    only
        Names (`DEPLOYMENT_NAMES`) to build; default all.
    interval_s
        Replace the cron schedule of every scheduled deployment by this interval (seconds;
        for tests and trials, ``flareflow serve --interval``).
    """
    from prefect.utilities.annotations import freeze

    from flows.backfill import backfill
    from flows.forecast import forecast
    from flows.ingest import ingest
    from flows.layout import Layout
    from flows.train import train

    layout = Layout.of(store)
    root = str(layout.root)
    wanted = list(only) if only else list(DEPLOYMENT_NAMES)
    unknown = sorted(set(wanted) - set(DEPLOYMENT_NAMES))
    if unknown:
        from flare_core.errors import ConfigError

        raise ConfigError(f"unknown deployment(s) {unknown}; known: {list(DEPLOYMENT_NAMES)}")
    if interval_s is not None:
        from flare_core.config import check_positive

        check_positive("interval_s", interval_s)
    # served deployments run in the serving process's environment (`serve_all` sets
    # EXTRA_LOGGERS_ENV there); prefect.yaml sets it as a work-pool job variable
    specs: dict[str, tuple[Any, str | None, dict[str, Any], str]] = {
        "hourly-forecast": (forecast, "5 * * * *", {"fetch": fetch},
                            "Forecast of the current hour for every region on the disk."),
        "daily-ingest": (ingest, "30 0 * * *", {},
                         "Definitive SHARP keywords and GOES flares of the last 48 h."),
        "weekly-retrain": (train, "0 3 * * 1", {"quick": quick_train},
                           "Retrain every model on the store (cached on data, config and "
                           "code)."),
        "backfill": (backfill, None, {"cadence_h": 1.0},
                     "Forecasts for a range of past issue times (set start, end, cadence_h "
                     "in the UI)."),
    }
    out = []
    for name in wanted:
        flow_, cron, params, description = specs[name]
        schedule: dict[str, Any] = {}
        if cron and interval_s is not None:
            schedule["interval"] = timedelta(seconds=interval_s)
        elif cron:
            schedule["cron"] = cron
        dep = flow_.to_deployment(name=name, parameters={"store": freeze(root), **params},
                                  description=description, tags=["flareflow"], **schedule)
        _close_parameters(dep, layout.models)
        out.append(dep)
    return out


def _close_parameters(dep: Any, models_dir: Path) -> None:
    """Make the server reject, before a run is created, parameters that would point a run
    elsewhere: no `_SERVER_ONLY_PARAMETERS`, no unknown names, ``model_dir`` only a
    directory directly under ``models_dir`` (``store`` is frozen by the caller)."""
    from prefect.utilities.callables import ParameterSchema
    from pydantic import ConfigDict

    class _ClosedSchema(ParameterSchema):
        model_config = ConfigDict(extra="allow")  # keeps additionalProperties in the dump

    schema = dep._parameter_openapi_schema
    props = {k: v for k, v in schema.properties.items() if k not in _SERVER_ONLY_PARAMETERS}
    if "model_dir" in props:
        props["model_dir"] = {**props["model_dir"], "pattern":
                              rf"^{re.escape(str(models_dir))}/(?!\.\.?/?$)[^/]+/?$"}
    dep._parameter_openapi_schema = _ClosedSchema(
        properties=props, required=[k for k in schema.required if k in props],
        definitions=schema.definitions, additionalProperties=False)
    dep.enforce_parameter_schema = True


def serve_all(store: str | Path | None = None, *, port: int = 4200, ui: bool = True,
              fetch: bool = True, limit: int | None = None, only: list[str] | None = None,
              interval_s: float | None = None) -> None:
    """Start (or reuse) a local Prefect server and serve the deployments; blocks.

    ``only`` and ``interval_s`` as in `build_deployments`. Returns after SIGINT or SIGTERM,
    with the schedules paused, the runs ended and the server stopped.
    """
    configure_logging_env()
    _stop_on_sigint_and_sigterm()
    from flows.layout import Layout

    from .server import API_AUTH_ENV, load_api_auth, local_server

    layout = Layout.of(store)
    auth = load_api_auth(layout.root)
    log_path = layout.root / "logs" / "prefect-server.log"
    deployments = build_deployments(layout.root, fetch=fetch, only=only,
                                    interval_s=interval_s)
    try:
        with local_server(port, ui=ui, auth=auth, log_path=log_path) as api_url:
            logger.info("serving %d deployments against %s", len(deployments), api_url)
            where = API_AUTH_ENV if os.environ.get(API_AUTH_ENV) else layout.root / "api_auth"
            print(f"Prefect API: {api_url}  (UI: {api_url.removesuffix('/api')})\n"
                  f"  credentials (user:password): {where}\n"
                  f"  server log: {log_path}", flush=True)
            _run_runner(deployments, limit)
    finally:
        _end_children()


def _sigterm_as_sigint(*_: Any) -> None:
    signal.raise_signal(signal.SIGINT)


def _stop_on_sigint_and_sigterm() -> None:
    """SIGTERM takes the Ctrl-C path, and Ctrl-C is Python's default even where a shell's
    ``cmd &`` started us with SIGINT ignored (asyncio.run takes SIGINT over only from the
    default handler, and then cancels the runner gracefully)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm_as_sigint)


def _run_runner(deployments: list[Any], limit: int | None) -> None:
    from prefect.runner import Runner

    class _Runner(Runner):
        def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
            # Prefect's handler calls the loop-thread `stop` from inside that thread and
            # hangs; take the Ctrl-C path instead (asyncio cancels the main task, the
            # runner's exit pauses the schedules while the server still answers)
            _sigterm_as_sigint()

        async def __aenter__(self) -> Any:
            entered = await super().__aenter__()
            # from here on a stop pauses the schedules (the tests wait for this line)
            print(f"runner started: {', '.join(d.name for d in deployments)}", flush=True)
            return entered

    runner = _Runner(pause_on_shutdown=True, limit=limit)
    for dep in deployments:
        runner.add_deployment(dep)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        logger.info("stopped")


def _end_children(grace_s: float = 5.0) -> None:
    """Terminate (then kill) flow-run processes that outlived the runner."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for c in children:
        try:
            c.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for c in alive:
        try:
            c.kill()
        except psutil.NoSuchProcess:
            pass
