"""Prefect tasks that turn the store into model inputs: content-addressed snapshots and the
feature/label dataset.

`snapshot_store` freezes the SHARP records and flares a step needs into Parquet files named
by their content hash, so every later task is cached on data, not on a store path whose
content changes. `build_dataset_file` computes running statistics, flare history and labels
(`flare_core.dataset.build_model_dataset`) and is cached on the snapshot hashes, the
configuration and the task's source.

No look-ahead: a snapshot cut at ``end`` holds only SHARP records with ``t_rec <= end`` and,
with ``flares_before_end=True``, only flares that peaked strictly before ``end``. The snapshot
keeps ``series`` and ``available_at``: the forecast functions select the records served by
each issue time themselves (`flare_core.schema.served_at_expr`); ``as_of`` also freezes the
values as they were served then (revisions after it left out).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from .common import FileRef, run_logger, write_frame_addressed

__all__ = ["snapshot_store", "build_dataset_file", "WORK_DIR"]

#: Sub-directory of the store root for snapshots and datasets (content-addressed files).
WORK_DIR = "work"


@task(cache_policy=INPUTS + TASK_SOURCE)
def snapshot_store(store_root: str, store_hash: str, start: datetime | None, end: datetime,
                   *, flares_until: datetime | None = None,
                   flares_before_end: bool = True, series: str | None = None,
                   as_of: datetime | None = None) -> tuple[FileRef, FileRef]:
    """SHARP records with ``start <= t_rec <= end`` and the flares known at ``end``.

    Parameters
    ----------
    store_root, store_hash
        The store and its `tasks.common.store_fingerprint` (the cache key sees the hash).
    start, end
        UTC bounds of ``t_rec`` (``start`` None = from the beginning).
    flares_until
        Keep flares peaking up to this time instead (label building needs the flares after
        each record; forecasting never passes it).
    flares_before_end
        Keep only flares with ``peak_time < end`` (strict) when ``flares_until`` is None.
    series
        SHARP series to read (`flare_core.store.Store.read_sharp`; default: the store's one
        series); the flares get the HARP numbers of that series.
    as_of
        Read the store as served at this time (`Store.read_sharp` ``as_of``): only records
        served by then, with the values current then. Default: every record with
        ``t_rec <= end`` and its newest values (rows not yet served at an issue time are
        left to the forecast functions, which drop them).

    Returns
    -------
    (sharp, flares) : tuple of FileRef
        Parquet files under ``<store_root>/work/snapshots``.
    """
    from flare_core.store import Store

    store = Store(store_root)
    sharp = store.read_sharp(start=start, end=end, series=series, as_of=as_of)
    flares = store.read_flares(end=flares_until or end, series=series)
    if flares_until is None and flares_before_end:
        flares = flares.filter(pl.col("peak_time") < end)
    out = Path(store_root) / WORK_DIR / "snapshots"
    sharp_ref = write_frame_addressed(sharp, out, "sharp")
    flare_ref = write_frame_addressed(flares, out, "flares")
    run_logger().info("snapshot %s .. %s: %d SHARP records of %d regions, %d flares",
                          start.isoformat() if start else "-", end.isoformat(), sharp.height,
                          sharp["harpnum"].n_unique(), flares.height)
    return sharp_ref, flare_ref


@task(cache_policy=INPUTS + TASK_SOURCE)
def build_dataset_file(sharp: FileRef, flares: FileRef, config: dict[str, Any], out_dir: str,
                       *, with_labels: bool = True, start: datetime | None = None,
                       end: datetime | None = None) -> FileRef:
    """Features (and labels) of every SHARP record of a snapshot, as one Parquet file.

    ``config`` is `flare_core.config.TrainConfig.to_dict` output (its windows, ``tmax_h``
    and ``horizon_h`` are used). Records outside [start, end] (UTC) are dropped after the
    features are computed, so the first records still see their full look-back window.
    """
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset

    cfg = TrainConfig.from_mapping(config)
    sharp_df = pl.read_parquet(sharp.path)
    flare_df = pl.read_parquet(flares.path)
    ds = build_model_dataset(sharp_df, flare_df, cfg, with_labels=with_labels)
    if start is not None:
        ds = ds.filter(pl.col("t_rec") >= start)
    if end is not None:
        ds = ds.filter(pl.col("t_rec") <= end)
    ref = write_frame_addressed(ds, out_dir, "dataset")
    run_logger().info("dataset: %d records of %d regions, %d columns -> %s", ds.height,
                          ds["harpnum"].n_unique(), ds.width, Path(ref.path).name)
    return ref


def lookback_start(start: datetime, config: dict[str, Any], extra_h: float = 0.0) -> datetime:
    """``start`` minus the longest feature window of ``config`` (and ``extra_h`` hours)."""
    hours = max(float(config.get("window_h", 4.0)), float(config.get("long_window_h", 24.0)))
    return start - timedelta(hours=hours + extra_h)
