"""The ``build_features`` flow: running statistics, flare history and labels for a range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow

from flows.layout import Layout
from tasks.common import FileRef, bind_storage, parse_utc, store_fingerprint
from tasks.features import build_dataset_file, lookback_start, snapshot_store

__all__ = ["build_features", "train_config"]


def train_config(config: dict[str, Any] | None = None, quick: bool = False) -> dict[str, Any]:
    """A full `flare_core.config.TrainConfig` as a dict (defaults, or quick, + overrides)."""
    from flare_core.config import TrainConfig

    base = TrainConfig.quick() if quick else TrainConfig()
    if config:
        base = TrainConfig.from_mapping({**base.to_dict(), **config})
    return base.to_dict()


@flow(name="build-features")
def build_features(start: datetime, end: datetime, store: str | None = None, *,
                   config: dict[str, Any] | None = None, quick: bool = False,
                   with_labels: bool = True) -> FileRef:
    """Features (and labels) of every SHARP record with ``start <= t_rec <= end`` (UTC).

    Records before ``start`` feed the running windows only. With labels, the flares up to
    ``end + tmax_h`` are read (labels look ahead by definition; features never do: a record's
    flare history uses flares that peaked strictly before its ``t_rec``).

    Returns
    -------
    FileRef
        Parquet file under ``<store>/work/datasets`` and its SHA-256.
    """
    layout = Layout.of(store)
    cfg = train_config(config, quick)
    start, end = parse_utc(start), parse_utc(end)
    root = str(layout.store)
    snap = bind_storage(snapshot_store, root)
    build = bind_storage(build_dataset_file, root)
    flares_until = end + timedelta(hours=float(cfg["tmax_h"])) if with_labels else None
    sharp, flares = snap(root, store_fingerprint(root), lookback_start(start, cfg), end,
                         flares_until=flares_until)
    return build(sharp, flares, cfg, str(layout.work / "datasets"), with_labels=with_labels,
                 start=start, end=end)
