"""The offline main job as one flow: the real NRT stream, replayed as JSOC served it.

Everything runs on the data shipped in ``data/`` (see data/README.md): the JSOC
near-real-time SHARP stream ``hmi.sharp_720s_nrt`` of 2023-06-01 .. 2023-12-17 (every region
on the disk, 12-min cadence), its HARP -> NOAA map, the measured first-seen times of JSOC's
replies and the NOAA/NCEI GOES flare list. The flow

1. ingests the map, the flare list and the NRT records before ``replay_start`` from the
   bundled files (records long served by then: their ``available_at`` is unknown and taken
   as ``T_REC`` + the measured median latency);
2. trains every model on the records up to ``train_end`` (labels reach ``tmax_h`` = 6 days
   further, still before the forecast window), with the operational NRT configuration
   (`flareflow/configs/nrt.toml`: one record per region-hour) and a validation *period*
   inside the training data (epochs, thresholds, calibration);
3. **replays JSOC hour by hour** from ``replay_start`` to ``end``: a local replay server
   (`flare_core.sources.jsoc_replay.JsocReplay`) serves the real records only once JSOC had
   served them (measured first-seen times, else a latency drawn from the measured
   distribution), and the project's drms client fetches each hour what is new; every record
   enters the store with ``available_at`` = the hour it was fetched;
4. issues the hourly forecasts of ``start .. end`` (default 2023-12-08 .. 12-17: NOAA 13514's
   X2.8 on Dec 14 and its M flares) from the store, each using only the records served by its
   issue time (`flare_core.forecasting.forecast_many`), publishes them and scores them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.backfill import backfill
from flows.evaluate import evaluate
from flows.ingest import ingest_files
from flows.layout import Layout
from flows.train import train
from tasks.common import parse_utc, run_logger

__all__ = ["demo", "bundled_files", "nrt_records_file", "DEMO_START", "DEMO_END",
           "DEMO_TRAIN_END", "DEMO_REPLAY_START", "DEMO_VALIDATION_START", "REPO"]

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
DEMO_START = datetime(2023, 12, 8, tzinfo=UTC)
DEMO_END = datetime(2023, 12, 17, 23, tzinfo=UTC)
#: records from here on come from the replayed JSOC, hour by hour (two days of history before
#: the first forecast)
DEMO_REPLAY_START = datetime(2023, 12, 6, tzinfo=UTC)
#: training ends tmax_h (6 days) before the first forecast: no training label reads a flare
#: of the forecast window
DEMO_TRAIN_END = datetime(2023, 12, 2, tzinfo=UTC)
#: epochs, thresholds and calibration are chosen on this later part of the training period
DEMO_VALIDATION_START = datetime(2023, 10, 15, tzinfo=UTC)
NRT_CONFIG = REPO / "flareflow" / "configs" / "nrt.toml"


def nrt_records_file(data_dir: Path = DATA) -> Path:
    """The bundled NRT SHARP records (JSOC keyword export, T_REC in TAI)."""
    return data_dir / "sharp_nrt" / "hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"


def bundled_files(data_dir: Path = DATA) -> list[str]:
    """The bundled files the demo ingests whole (the NRT HARP map, the GOES flare list)."""
    files = [data_dir / "sharp_nrt" / "harp_noaa_nrt.txt",
             data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"]
    missing = [str(f) for f in [*files, nrt_records_file(data_dir)] if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"bundled data missing: {missing}")
    return [str(f) for f in files]


@task(cache_policy=NO_CACHE, tags=["store-write"])
def ingest_records_before(path: str, store_root: str, before: datetime) -> dict[str, Any]:
    """The records of a SHARP file with ``t_rec < before`` into the store (counted drops)."""
    import polars as pl

    from flare_core.sources import load_file
    from flare_core.store import Store

    res = load_file(path)
    frame = res.frame.filter(pl.col("t_rec") < before)
    rep = Store(Layout.of(store_root).store).write_sharp(frame)
    return {"path": path, "series": res.series, "rows": frame.height,
            "rows_added": rep.rows_added, "dropped": dict(res.drops.counts)}


@task(cache_policy=NO_CACHE, tags=["store-write"])
def replay_hourly_ingest(records: str, store_root: str, start: datetime, end: datetime,
                         *, listing: str | None = None, first_seen: str | None = None,
                         fetch_back_h: float = 6.0) -> dict[str, Any]:
    """Serve ``records`` as JSOC served them and fetch them each hour from ``start`` to ``end``.

    At every hour t the replay clock is t and the drms client fetches ``(t - fetch_back_h,
    t]`` (a record served late is still caught: the replay's drawn latencies stay below
    6 h); new records get ``available_at = t`` (the fetch time), re-delivered identical ones
    change nothing, revised ones are counted. Returns the counts per hour in total.
    """
    import polars as pl

    from flare_core.sources.jsoc import JsocClient, JsocConfig
    from flare_core.sources.jsoc_replay import JsocReplay
    from flare_core.store import Store

    log = run_logger()
    raw = pl.read_csv(records, infer_schema_length=0)
    t_rec = pl.col("T_REC").str.strptime(pl.Datetime("us"), "%Y.%m.%d_%H:%M:%S_TAI",
                                         strict=False)
    window = raw.filter((t_rec >= (start - timedelta(hours=fetch_back_h)).replace(tzinfo=None))
                        & (t_rec <= end.replace(tzinfo=None)))
    store = Store(Layout.of(store_root).store)
    hours = int((end - start) / timedelta(hours=1)) + 1
    totals = {"hours": hours, "fetched": 0, "added": 0, "revised": 0, "empty_hours": 0}
    replay = JsocReplay(window, listing_csv=listing, first_seen_csv=first_seen, clock=start)
    with replay as url:
        for i in range(hours):
            now = start + timedelta(hours=i)
            replay.clock = now
            client = JsocClient(JsocConfig(nrt=True, url=url, retries=0),
                                clock=lambda now=now: now)
            frame = client.fetch(now - timedelta(hours=fetch_back_h), now, None)
            if frame.height == 0:
                totals["empty_hours"] += 1
                continue
            rep = store.write_sharp(frame)
            totals["fetched"] += frame.height
            totals["added"] += rep.rows_added
            totals["revised"] += getattr(rep, "rows_revised", 0)
    log.info("replayed JSOC %s .. %s hourly: %s", start.isoformat(), end.isoformat(), totals)
    return totals


@flow(name="demo")
def demo(out: str, start: datetime = DEMO_START, end: datetime = DEMO_END,
         train_end: datetime = DEMO_TRAIN_END, *, quick: bool = False,
         dask_address: str | None = None, n_workers: int = 2) -> dict[str, Any]:
    """Ingest, train, replay JSOC hourly, forecast ``start .. end`` hourly, publish, score.

    Returns the paths of everything produced (store, model, forecast store, scoreboard JSON,
    page) and the replay, backfill and evaluation summaries.
    """
    import tomllib

    log = get_run_logger()
    layout = Layout.of(Path(out) / "store")
    start, end, train_end = parse_utc(start), parse_utc(end), parse_utc(train_end)
    replay_start = min(DEMO_REPLAY_START, start - timedelta(hours=48))
    if train_end >= start:
        raise ValueError(f"train_end {train_end.isoformat()} must precede the forecast start "
                         f"{start.isoformat()}")
    ingest_files(bundled_files(), str(layout.root))
    ingest_records_before(str(nrt_records_file()), str(layout.root), replay_start)
    config = tomllib.loads(NRT_CONFIG.read_text(encoding="utf-8"))
    config["validation_start"] = DEMO_VALIDATION_START.isoformat()
    model_dir = train(None, train_end, str(layout.root), config=config, quick=quick)
    replayed = replay_hourly_ingest(
        str(nrt_records_file()), str(layout.root), replay_start, end,
        listing=str(DATA / "sharp_nrt" / "jsoc_nrt_region_listing_2023-06_2023-12-17.csv.gz"),
        first_seen=str(DATA / "sharp_nrt" / "jsoc_nrt_sharp_first_seen_sample_2021-2023.csv.gz"))
    summary = backfill(start, end, str(layout.root), model_dir, dask_address=dask_address,
                       n_workers=n_workers)
    scores = evaluate(start, end, str(layout.root), model_dir)
    result = {"store": str(layout.store), "model_dir": model_dir,
              "forecast_store": str(layout.forecasts), "scoreboard": str(layout.scoreboard),
              "page": summary.get("page"), "evaluation": str(layout.evaluation),
              "replay": replayed, "backfill": summary, "scores": scores}
    log.info("demo done: %s", {k: v for k, v in result.items() if isinstance(v, str)})
    return result
