"""The ``ingest`` flows: put SHARP records and GOES flares into the local store.

`ingest` fetches a UTC time range from the archives (JSOC definitive or near-real-time SHARP
keywords, HEK GOES flares); `ingest_files` reads local files (the bundled real data of the
offline demo). Both write through `flare_core.store.Store` (atomic, idempotent).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.layout import Layout
from tasks.common import bind_storage, parse_utc
from tasks.ingest import (
    ensure_harp_map,
    fetch_flares_range,
    fetch_sharp_range,
    file_ref_of,
    ingest_file,
    ingest_order,
)

__all__ = ["ingest", "ingest_files"]


@flow(name="ingest", log_prints=False)
def ingest(start: datetime | None = None, end: datetime | None = None,
           store: str | None = None, *, nrt: bool = False,
           flares: bool = True, harp_map: bool = True, harpnums: list[int] | None = None,
           jsoc_url: str | None = None, hek_url: str | None = None,
           retry_delays_s: list[float] | None = None) -> dict[str, Any]:
    """Fetch SHARP keywords (``start <= t_rec <= end``, UTC) and GOES flares into the store.

    Parameters
    ----------
    start, end
        UTC range (inclusive); default the 48 hours before now (the daily deployment).
    store
        Root of the installation (`flows.layout.Layout`); default ``FLAREFLOW_STORE``.
    nrt
        Near-real-time SHARP series instead of the definitive one.
    flares
        Also fetch the GOES flares of the range from HEK.
    harp_map
        Refresh the HARP<->NOAA map from JSOC first (flares get their HARP from it).
    harpnums
        Restrict SHARP to these regions.
    jsoc_url, hek_url
        Other servers than JSOC/HEK (default: ``FLAREFLOW_JSOC_URL``/``FLAREFLOW_HEK_URL``).
    retry_delays_s
        Back-off of the network tasks, seconds per retry (default
        `tasks.common.NETWORK_RETRY_DELAYS_S`).
    """
    from flare_core.config import Settings

    settings = Settings()
    root = str(Layout.of(store).store)
    end = parse_utc(end)
    start = parse_utc(start) if start is not None else end - timedelta(hours=48)
    net = {} if retry_delays_s is None else {"retries": len(retry_delays_s),
                                              "retry_delay_seconds": list(retry_delays_s)}
    if harp_map:
        out_map = ensure_harp_map.with_options(**net)(root, download=True, return_state=True)
        if not out_map.is_completed():
            get_run_logger().warning("HARP map not refreshed: %s",
                                     out_map.result(raise_on_failure=False))
    out: dict[str, Any] = {"sharp": fetch_sharp_range.with_options(**net)(
        start, end, root, nrt=nrt, harpnums=harpnums, jsoc_url=jsoc_url or settings.jsoc_url)}
    if flares:  # after SHARP: flares are mapped to HARPs with the stored record spans
        out["flares"] = fetch_flares_range.with_options(**net)(
            start, end, root, hek_url=hek_url or settings.hek_url)
    get_run_logger().info("ingest %s .. %s into %s: %s", start.isoformat(), end.isoformat(),
                          root, out)
    return out


@flow(name="ingest-files")
def ingest_files(paths: list[str], store: str | None = None) -> list[dict[str, Any]]:
    """Read local SHARP files, flare lists and HARP maps into the store.

    The HARP map goes first, then SHARP files, then flare lists (flares get their HARP from
    the map). Each file is a cached task: an unchanged file is not read again.
    """
    root = Layout.of(store).store
    root.mkdir(parents=True, exist_ok=True)
    task_ = bind_storage(ingest_file, root)
    results = []
    for p in ingest_order([Path(p) for p in paths]):  # in order: later kinds need earlier ones
        path, sha = file_ref_of(p)
        results.append(task_(path, sha, str(root)))
    return results
