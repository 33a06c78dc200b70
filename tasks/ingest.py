"""Prefect tasks that put data into the local store: bundled files, JSOC SHARP, HEK flares.

Thin wrappers: the reading, parsing and merging live in `flare_core.sources` and
`flare_core.store`. Network tasks make one attempt per call inside (``retries=0`` on the
clients) and retry on the decorator with the numbers of
`flare_core.sources.retry.NETWORK_RETRY` (10 s, 1 min, 5 min), only on `SourceUnavailable`
(`retry_transient`); after JSOC's rate-limit reply the retry waits
``RETRY_POLICY.rate_limit_delay_s`` (10 min) instead, with a WARNING saying so. Every task
returns a small JSON-able summary. All times are tz-aware UTC.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from flare_core.errors import SourceRateLimited, SourceUnavailable
from flare_core.sources.retry import NETWORK_RETRY, RetryPolicy, log_rate_limit_backoff

from .common import file_sha256, run_logger

__all__ = [
    "ingest_file",
    "fetch_sharp_range",
    "fetch_flares_range",
    "list_regions_on_disk",
    "fetch_region_sharp",
    "file_ref_of",
    "ensure_harp_map",
    "retry_transient",
    "RETRY_POLICY",
]

#: The retry numbers of the network tasks (read when a task fails, so a test can swap it).
RETRY_POLICY: RetryPolicy = NETWORK_RETRY
_RETRIES = len(NETWORK_RETRY.delays_s)
_DELAYS_S = list(NETWORK_RETRY.delays_s)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only a `SourceUnavailable` failure.

    A `flare_core.errors.SourceError` (the archive refused) or a parsing error would fail
    the same way again. After a `SourceRateLimited` failure the retry is held back until
    ``RETRY_POLICY.rate_limit_delay_s`` has passed in all (the decorator's scheduled delay
    is waited by Prefect afterwards and counted), with a WARNING.
    """
    try:
        state.result()
    except SourceRateLimited:
        delays = task.retry_delay_seconds or [0]
        delays = delays if isinstance(delays, list) else [delays]
        i = max(0, min(int(getattr(task_run, "run_count", 1)) - 1, len(delays) - 1))
        scheduled = float(delays[i])
        wait = max(scheduled, RETRY_POLICY.rate_limit_delay_s)
        log_rate_limit_backoff(f"task {task.name}", wait, scheduled)
        time.sleep(wait - scheduled)
        return True
    except SourceUnavailable:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False

_KIND_ORDER = {"harp_map": 0, "sharp": 1, "flares": 2}


def _report(rep: Any) -> dict[str, Any]:
    return {"table": rep.table, "rows_in": rep.rows_in, "rows_added": rep.rows_added,
            "rows_updated": rep.rows_updated, "generation": rep.generation}


def file_ref_of(path: str | Path) -> tuple[str, str]:
    """``(path, sha256)`` of a local file, the arguments `ingest_file` caches on."""
    return str(Path(path).resolve()), file_sha256(path)


def ingest_order(paths: list[str | Path]) -> list[str]:
    """Files sorted so that the HARP map comes first, then SHARP files, then flare lists.

    Flares get their HARP numbers from the map and the stored SHARP spans when written.
    """
    from flare_core.sources import detect_format
    from flare_core.sources.files import FORMATS

    def kind(p: str | Path) -> int:
        return _KIND_ORDER.get(FORMATS[detect_format(Path(p))].kind, 3)

    return [str(p) for p in sorted(paths, key=lambda p: (kind(p), str(p)))]


@task(cache_policy=INPUTS + TASK_SOURCE, tags=["store-write"])
def ingest_file(path: str, sha256: str, store_root: str) -> dict[str, Any]:
    """Read one SHARP file, flare list or HARP map and merge it into the store.

    Cached on (path, sha256 of the file, store root): ingesting an unchanged file into the
    same store is skipped. Returns the store's write report plus the rows the reader dropped.
    """
    from flare_core.sources import load_file
    from flare_core.store import Store

    log = run_logger()
    res = load_file(path)
    store = Store(store_root)
    writer = {"sharp": store.write_sharp, "flares": store.write_flares,
              "harp_map": store.write_harp_map}[res.kind]
    rep = writer(res.frame)
    out = {"path": path, "format": res.fmt, "kind": res.kind, **_report(rep),
           "dropped": res.drops.total, "drop_reasons": dict(res.drops.counts)}
    log.info("ingested %s (%s): %d rows in, %d added", Path(path).name, res.fmt,
             rep.rows_in, rep.rows_added)
    return out


@task(retries=_RETRIES, retry_delay_seconds=_DELAYS_S, retry_condition_fn=retry_transient,
      cache_policy=NO_CACHE,
      tags=["jsoc", "store-write"])
def fetch_sharp_range(start: datetime, end: datetime, store_root: str, *, nrt: bool = False,
                      harpnums: list[int] | None = None, jsoc_url: str | None = None
                      ) -> dict[str, Any]:
    """SHARP keywords with ``start <= t_rec <= end`` (UTC) from JSOC into the store.

    Definitive series by default, ``nrt=True`` for ``hmi.sharp_720s_nrt``.
    """
    from flare_core.sources.jsoc import JsocConfig, fetch_sharp
    from flare_core.store import Store

    log = run_logger()
    cfg = JsocConfig(nrt=nrt, url=jsoc_url, retries=0)
    df = fetch_sharp(start, end, harpnums=harpnums, config=cfg)
    rep = Store(store_root).write_sharp(df) if df.height else None
    log.info("JSOC %s %s .. %s: %d records", cfg.series, start.isoformat(), end.isoformat(),
             df.height)
    return {"series": cfg.series, "records": df.height,
            **(_report(rep) if rep is not None else {})}


@task(retries=_RETRIES, retry_delay_seconds=_DELAYS_S, retry_condition_fn=retry_transient,
      cache_policy=NO_CACHE,
      tags=["hek", "store-write"])
def fetch_flares_range(start: datetime, end: datetime, store_root: str, *,
                       hek_url: str | None = None) -> dict[str, Any]:
    """GOES flare events peaking in [start, end] (UTC) from HEK into the store."""
    from flare_core.sources.hek import HekConfig, fetch_flares
    from flare_core.store import Store

    log = run_logger()
    df = fetch_flares(start, end, config=HekConfig(url=hek_url, retries=0))
    rep = Store(store_root).write_flares(df) if df.height else None
    log.info("HEK %s .. %s: %d flares", start.isoformat(), end.isoformat(), df.height)
    return {"source": "hek", "flares": df.height, **(_report(rep) if rep is not None else {})}


@task(retries=_RETRIES, retry_delay_seconds=_DELAYS_S, retry_condition_fn=retry_transient,
      cache_policy=NO_CACHE, tags=["jsoc"])
def list_regions_on_disk(issue_time: datetime, store_root: str, *, freshness_h: float = 6.0,
                         nrt: bool = True, jsoc_url: str | None = None) -> list[int]:
    """HARP numbers with a SHARP record in ``(issue_time - freshness_h, issue_time]``.

    One JSOC query over every HARP; the records it returns are kept in the store.
    """
    from flare_core.sources.jsoc import JsocConfig, fetch_sharp
    from flare_core.store import Store

    cfg = JsocConfig(nrt=nrt, url=jsoc_url, retries=0)
    df = fetch_sharp(issue_time - timedelta(hours=freshness_h), issue_time, config=cfg)
    if df.height:
        Store(store_root).write_sharp(df)
    harps = sorted(int(h) for h in df["harpnum"].unique())
    run_logger().info("%d regions on the disk at %s: %s", len(harps),
                          issue_time.isoformat(), harps)
    return harps


@task(retries=_RETRIES, retry_delay_seconds=_DELAYS_S, retry_condition_fn=retry_transient,
      cache_policy=NO_CACHE,
      tags=["jsoc", "store-write"])
def fetch_region_sharp(harpnum: int, start: datetime, end: datetime, store_root: str, *,
                       nrt: bool = True, jsoc_url: str | None = None) -> int:
    """One region's SHARP records with ``start <= t_rec <= end`` into the store; the count."""
    from flare_core.sources.jsoc import JsocConfig, fetch_sharp
    from flare_core.store import Store

    cfg = JsocConfig(nrt=nrt, url=jsoc_url, retries=0)
    df = fetch_sharp(start, end, harpnums=[harpnum], config=cfg)
    if df.height:
        Store(store_root).write_sharp(df)
    run_logger().info("HARP %d: %d records %s .. %s", harpnum, df.height,
                          start.isoformat(), end.isoformat())
    return df.height


@task(retries=_RETRIES, retry_delay_seconds=_DELAYS_S, retry_condition_fn=retry_transient,
      cache_policy=NO_CACHE,
      tags=["jsoc", "store-write"])
def ensure_harp_map(store_root: str, *, download: bool = False) -> dict[str, Any]:
    """Make sure the store holds a HARP <-> NOAA map (flares get their HARP from it).

    ``download=True`` fetches JSOC's current map (the daily ingest); otherwise the bundled
    copy (``data/harp_noaa``) is stored only when the store has none.
    """
    from flare_core.dataset import DEFAULT_HARP_MAP
    from flare_core.sources import download_harp_noaa_map, read_harp_noaa_map
    from flare_core.store import Store

    store = Store(store_root)
    if not download and "harp_map" in store.manifest().get("tables", {}):
        return {"table": "harp_map", "rows_added": 0, "source": "store"}
    path = (download_harp_noaa_map(Path(store_root) / "work" / "harp_map", refresh=True)
            if download else DEFAULT_HARP_MAP)
    rep = store.write_harp_map(read_harp_noaa_map(path))
    run_logger().info("HARP map from %s: %d pairs", path, rep.rows_added)
    return {**_report(rep), "source": str(path)}
