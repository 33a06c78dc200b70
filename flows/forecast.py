"""The ``forecast`` flow: one issue time, every region on the disk, every model, published.

Steps (each a task): [optional, live] make sure the store has a HARP<->NOAA map, ask JSOC
which regions have a record in the freshness window and fetch each region's SHARP records
(one task per region, retried on `SourceUnavailable`; a region whose fetch still fails is
left out with its reason logged and shown in the summary, the others are published), then
the GOES flares of the last 48 h; freeze the store
up to the issue time; `flare_core.forecasting.forecast_at`; upsert into the `ForecastStore`;
scoreboard JSON; plots and page; Prefect artifacts (regions by risk, markdown summary).

No look-ahead: the snapshot holds SHARP records with ``t_rec <= issue_time`` and flares that
peaked strictly before it, and `forecast_at` applies the same rule again (records served by
the issue time; the run's own reply stamps, which come after it, give way to the modelled
NRT latency: `flare_core.forecasting.forget_own_reply_times`).

Series: the forecast reads one SHARP series (HARP numbers are per series): the one fetched
(`flare_core.sources.jsoc.JsocConfig.series`) in a live run, else ``series`` or the store's
only series (`StoreError` when it holds several and none is named). Every row and document
names it.

Regions left out: a failed fetch, or invalid inputs or model outputs
(`flare_core.forecasting.isolate_invalid_regions`), leave out that region only; the others
publish, the reasons go to the store and the scoreboard JSON, and the result's ``status`` is
``"partial"`` (``"complete"`` when nothing was left out, ``"empty"`` when there was nothing
to forecast, ``"failed"`` when every region was left out).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flare_core.issuing import (
    failed_frame,
    failed_reasons,
    failed_records,
    fetch_failures,
    forecast_result,
    run_status,
)
from flows.layout import Layout
from tasks.common import FileRef, bind_storage, file_sha256, floor_hour, store_fingerprint
from tasks.features import snapshot_store
from tasks.forecasting import compute_forecasts, load_bundle, publish_forecasts, publish_page
from tasks.ingest import (
    ensure_harp_map,
    fetch_flares_range,
    fetch_region_sharp,
    list_regions_on_disk,
)

__all__ = ["forecast", "model_ref", "history_h", "run_status", "resolve_series"]


def resolve_series(series: str | None, *, fetch: bool, nrt: bool) -> str | None:
    """The SHARP series a forecast reads: the fetched one in a live run (a different
    ``series`` is refused), else ``series`` (None: the store's only series)."""
    if not fetch:
        return series
    from flare_core.errors import ConfigError
    from flare_core.sources.jsoc import JsocConfig

    fetched = JsocConfig(nrt=nrt).series
    if series is not None and series != fetched:
        raise ConfigError(f"series={series!r}, but the live run fetches {fetched!r}")
    return fetched


def model_ref(layout: Layout, model_dir: str | None) -> FileRef:
    """The MODEL_DIR to use (given, or the installation's latest) as a `FileRef`."""
    from flare_core.errors import ModelError

    path = Path(model_dir) if model_dir else layout.latest_model()
    if path is None or not (path / "model.json").is_file():
        raise ModelError(f"no trained model: pass model_dir or run the train flow for "
                         f"{layout.root} first (looked for {path or layout.latest_model_file})")
    return FileRef(path=str(path.resolve()), sha256=file_sha256(path / "model.json"))


def history_h(model: FileRef) -> float:
    """Hours of SHARP records before an issue time that a forecast reads (windows +
    freshness)."""
    bundle = load_bundle(model.path, model.sha256)
    return bundle.lookback_h() + float(bundle.config.freshness_h)


@flow(name="forecast")
def forecast(issue_time: datetime | None = None, store: str | None = None,
             model_dir: str | None = None, *, fetch: bool = False, nrt: bool = True,
             jsoc_url: str | None = None, hek_url: str | None = None,
             retry_delays_s: list[float] | None = None, page: bool = True,
             series: str | None = None) -> dict[str, Any]:
    """Issue and publish the forecast of one issue time.

    Parameters
    ----------
    issue_time
        UTC issue time, rounded down to the hour; default: now.
    store
        Installation root (`flows.layout.Layout`).
    model_dir
        MODEL_DIR; default the latest trained.
    fetch
        Fetch the regions' SHARP records (JSOC, ``nrt`` series) and recent flares (HEK) first;
        without it the forecast uses what the store holds (offline, backfills, tests).
    jsoc_url, hek_url
        Other servers (default ``FLAREFLOW_JSOC_URL``/``FLAREFLOW_HEK_URL``).
    retry_delays_s
        Back-off of the network tasks, seconds per retry (default
        `tasks.common.NETWORK_RETRY_DELAYS_S`).
    page
        Draw plots and the HTML page and create the artifacts.
    series
        SHARP series to read (module docstring); default the fetched one (live) or the
        store's only one.

    Returns
    -------
    dict
        ``issue_time``, ``status`` (`run_status`), ``series``, ``rows``, ``regions``,
        ``failed_regions`` (HARP -> reason: fetch failures and regions left out by the
        forecast), ``forecast_store``, ``page``.
    """
    from flare_core.config import Settings

    log = get_run_logger()
    layout = Layout.of(store)
    root = str(layout.store)
    issue = floor_hour(issue_time) if issue_time is not None else floor_hour(None)
    model = model_ref(layout, model_dir)
    need_h = history_h(model)
    series = resolve_series(series, fetch=fetch, nrt=nrt)
    failed: dict[int, str] = {}
    harpnums: list[int] | None = None
    fetched_since: datetime | None = None
    if fetch:
        fetched_since = datetime.now(UTC)
        net = {} if retry_delays_s is None else {"retries": len(retry_delays_s),
                                                  "retry_delay_seconds": list(retry_delays_s)}
        list_regions = list_regions_on_disk.with_options(**net)
        fetch_flares = fetch_flares_range.with_options(**net)
        fetch_region = fetch_region_sharp.with_options(**net)
        settings = Settings()
        jsoc_url = jsoc_url or settings.jsoc_url
        fresh_h = float(load_bundle(model.path, model.sha256).config.freshness_h)
        ensure_harp_map(root)
        regions = list_regions(issue, root, freshness_h=fresh_h, nrt=nrt, jsoc_url=jsoc_url)
        futures = {h: fetch_region.submit(h, issue - timedelta(hours=need_h), issue, root,
                                          nrt=nrt, jsoc_url=jsoc_url) for h in regions}
        harpnums = []
        for h, fut in futures.items():
            fut.wait()
            if fut.state.is_completed():
                harpnums.append(h)
            else:
                exc = fut.result(raise_on_failure=False)
                failed[h] = f"{type(exc).__name__}: {exc}"
                log.error("HARP %d not forecast at %s: SHARP fetch failed: %s", h,
                          issue.isoformat(), failed[h])
        # after the SHARP records: the store maps flares to HARPs with the stored spans
        flares_f = fetch_flares.submit(issue - timedelta(hours=48), issue, root,
                                       hek_url=hek_url or settings.hek_url)
        flares_f.wait()
        if not flares_f.state.is_completed():
            log.warning("HEK flares not refreshed (%s); using the flares in the store",
                        flares_f.result(raise_on_failure=False))
    sharp, flares = bind_storage(snapshot_store, root)(
        root, store_fingerprint(root), issue - timedelta(hours=need_h), issue, series=series)
    res = bind_storage(compute_forecasts, root)([issue], model, sharp, flares,
                                                str(layout.work / "forecasts"),
                                                harpnums=harpnums, fetched_since=fetched_since)
    version = load_bundle(model.path, model.sha256).version
    model_failed = failed_frame(res["failed"])
    to_publish = [*failed_records(fetch_failures(failed, issue, model_version=version,
                                                 series=series)), *res["failed"]]
    out = forecast_result(issue, rows=res["rows"], regions=res["regions"], gaps=res["gaps"],
                          failed={**failed, **failed_reasons(model_failed)}, series=series,
                          forecast_store=layout.forecasts, model_dir=model.path,
                          model_seconds=res["seconds"])
    failed = out["failed_regions"]
    if res["forecasts"] is None:
        log.warning("nothing to publish at %s: %s", issue.isoformat(), res["gaps"])
        if to_publish:
            publish_forecasts(None, str(layout.forecasts), None, failed=to_publish)
        return out
    publish_forecasts(res["forecasts"], str(layout.forecasts), str(layout.scoreboard),
                      failed=to_publish)
    if page:
        out["page"] = publish_page(str(layout.forecasts), str(layout.page), issue,
                                   failed_regions=failed)["page"]
    log.info("forecast %s (%s): %d regions, %d rows, %d regions failed", issue.isoformat(),
             out["status"], res["regions"], res["rows"], len(failed))
    return out
