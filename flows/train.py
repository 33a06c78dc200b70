"""The ``train`` flow: dataset -> forest -> survival -> warning SVM, DeFN, baselines.

Training is one cached task (`tasks.training.train_models`) keyed on the dataset's content
hash, the configuration and the code version, so re-running on unchanged data and config
returns the existing MODEL_DIR at once. The validation skill is published as a table artifact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from flows.features import build_features, train_config
from flows.layout import Layout
from tasks.common import bind_storage, parse_utc
from tasks.training import publish_validation_artifact, train_models

__all__ = ["train"]


@flow(name="train")
def train(start: datetime | None = None, end: datetime | None = None,
          store: str | None = None, *,
          config: dict[str, Any] | None = None, quick: bool = False) -> str:
    """Train every model on the records with ``start <= t_rec <= end`` (UTC).

    Parameters
    ----------
    start, end
        Training period (UTC). Keep it before any period you later evaluate. Default: the
        first record in the store, and ``tmax_h`` hours before the last flare in the store
        (so every label is complete).
    store
        Installation root (`flows.layout.Layout`).
    config
        Overrides of `flare_core.config.TrainConfig` fields.
    quick
        Start from `TrainConfig.quick()` (few trees and epochs: tests, the offline demo).

    Returns
    -------
    str
        The MODEL_DIR, also recorded as the installation's latest model.
    """
    from flare_core.versioning import code_version

    layout = Layout.of(store)
    cfg = train_config(config, quick)
    if start is None or end is None:
        from flare_core.store import Store

        info = Store(layout.store).info()["tables"]
        if "sharp" not in info or "flares" not in info:
            raise ValueError(f"store {layout.store} holds no SHARP records or flares to train on")
        start = start or parse_utc(info["sharp"]["t_rec_min"])
        end = end or parse_utc(info["flares"]["peak_max"]) - timedelta(hours=cfg["tmax_h"])
    dataset = build_features(parse_utc(start), parse_utc(end), str(layout.root), config=cfg)
    model = bind_storage(train_models, layout.store)(dataset, cfg, str(layout.models),
                                                     code_version())
    publish_validation_artifact(model)
    layout.set_latest_model(model.path)
    get_run_logger().info("model %s (model.json %s)", model.path, model.short)
    return model.path
