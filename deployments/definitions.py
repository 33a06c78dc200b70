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
                                   ``cadence_h`` (and ``dask_address``) are set in the UI
=================  ==============  ==========================================================

``flareflow serve`` (`serve_all`) starts a local Prefect server on 127.0.0.1 (UI included)
unless ``PREFECT_API_URL`` is set, and serves all four with `prefect.serve`. Every run logs
`flare_core` INFO lines into the run log (``PREFECT_LOGGING_EXTRA_LOGGERS=flare_core``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["EXTRA_LOGGERS_ENV", "configure_logging_env", "build_deployments", "serve_all"]

logger = logging.getLogger(__name__)

#: Environment that makes flare_core's stdlib log lines part of every run log.
EXTRA_LOGGERS_ENV = {"PREFECT_LOGGING_EXTRA_LOGGERS": "flare_core"}


def configure_logging_env() -> None:
    """Set `EXTRA_LOGGERS_ENV` (before Prefect configures logging) and let flare_core
    INFO records through."""
    for k, v in EXTRA_LOGGERS_ENV.items():
        os.environ.setdefault(k, v)
    logging.getLogger("flare_core").setLevel(logging.INFO)


def build_deployments(store: str | Path | None = None, *, fetch: bool = True,
                      quick_train: bool = False) -> list[Any]:
    """The `RunnerDeployment` objects (not yet registered) for the installation ``store``."""
    from flows.backfill import backfill
    from flows.forecast import forecast
    from flows.ingest import ingest
    from flows.layout import Layout

    root = str(Layout.of(store).root)
    # served deployments run in the serving process's environment (`serve_all` sets
    # EXTRA_LOGGERS_ENV there); prefect.yaml sets it as a work-pool job variable
    common: dict[str, Any] = {"tags": ["flareflow"]}
    return [
        forecast.to_deployment(
            name="hourly-forecast", cron="5 * * * *",
            parameters={"store": root, "fetch": fetch},
            description="Forecast of the current hour for every region on the disk.", **common),
        ingest.to_deployment(
            name="daily-ingest", cron="30 0 * * *", parameters={"store": root},
            description="Definitive SHARP keywords and GOES flares of the last 48 h.", **common),
        _train_deployment(root, quick_train, common),
        backfill.to_deployment(
            name="backfill", parameters={"store": root, "cadence_h": 1.0},
            description="Forecasts for a range of past issue times (set start, end, "
                        "cadence_h in the UI).", **common),
    ]


def _train_deployment(root: str, quick: bool, common: dict[str, Any]) -> Any:
    from flows.train import train

    return train.to_deployment(
        name="weekly-retrain", cron="0 3 * * 1", parameters={"store": root, "quick": quick},
        description="Retrain every model on the store (cached on data, config and code).",
        **common)


def serve_all(store: str | Path | None = None, *, port: int = 4200, ui: bool = True,
              fetch: bool = True, limit: int | None = None) -> None:
    """Start (or reuse) a local Prefect server and serve every deployment; blocks."""
    configure_logging_env()
    from prefect import serve

    from .server import local_server

    with local_server(port, ui=ui) as api_url:
        deployments = build_deployments(store, fetch=fetch)
        logger.info("serving %d deployments against %s", len(deployments), api_url)
        print(f"Prefect API: {api_url}  (UI: {api_url.removesuffix('/api')})", flush=True)
        serve(*deployments, limit=limit)
