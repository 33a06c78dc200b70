"""Prefect task that trains every model (`flare_core.training.train_all`) into a MODEL_DIR.

Cached on the dataset's content hash, the training configuration and the code version
(`flare_core.versioning.code_version`) plus the task's source: retraining on unchanged data
with an unchanged configuration and code is skipped and returns the existing MODEL_DIR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from flare_core.io import hash_json

from .common import FileRef, file_sha256, run_logger

__all__ = ["train_models", "validation_table", "publish_validation_artifact"]


def _config_hash(config: dict[str, Any]) -> str:
    return hash_json(config, default=str)


@task(cache_policy=INPUTS + TASK_SOURCE)
def train_models(dataset: FileRef, config: dict[str, Any], model_root: str,
                 code_version: str) -> FileRef:
    """Train forest -> Cox-Time -> warning SVM, DeFN, baselines on the dataset file.

    Parameters
    ----------
    dataset
        Labelled dataset Parquet (`tasks.features.build_dataset_file`).
    config
        `flare_core.config.TrainConfig.to_dict` output.
    model_root
        Parent directory; the model goes to ``<model_root>/<data hash>-<config hash>``.
    code_version
        `flare_core.versioning.code_version()` (part of the cache key only).

    Returns
    -------
    FileRef
        The MODEL_DIR and the SHA-256 of its ``model.json``.
    """
    import polars as pl

    from flare_core.config import TrainConfig
    from flare_core.training import train_all

    log = run_logger()
    cfg = TrainConfig.from_mapping(config)
    out = Path(model_root) / f"{dataset.sha256[:12]}-{_config_hash(config)[:8]}"
    frame = pl.read_parquet(dataset.path)
    log.info("training %s on %d records (%s) -> %s", ", ".join(cfg.models), frame.height,
             dataset.short, out)
    train_all(frame, out, cfg, data_hash=dataset.sha256)
    return FileRef(path=str(out), sha256=file_sha256(out / "model.json"))


def validation_table(model_dir: str | Path) -> list[dict[str, Any]]:
    """One row per trained binary model: its validation skill from ``model.json``."""
    from flare_core.models.persistence import read_json

    meta = read_json(Path(model_dir) / "model.json")
    rows = []
    for name, entry in meta.get("models", {}).items():
        val = entry.get("validation") or {}
        row: dict[str, Any] = {"model": name, "fit_s": round(float(entry.get("fit_seconds",
                                                                              0.0)), 2)}
        for k in ("threshold", "tss", "hss", "bss", "auc", "n", "n_pos"):
            v = val.get(k, entry.get(k) if k == "threshold" else None)
            row[k] = round(float(v), 4) if isinstance(v, int | float) else v
        rows.append(row)
    for name, why in meta.get("skipped", {}).items():
        rows.append({"model": name, "skipped": str(why)[:120]})
    return rows


@task
def publish_validation_artifact(model: FileRef) -> str:
    """A Prefect table artifact (key ``validation-skill``) of the validation scores."""
    from prefect.artifacts import create_table_artifact

    rows = validation_table(model.path)
    create_table_artifact(key="validation-skill", table=rows,
                          description=f"Validation skill of {model.path} (model.json "
                                      f"{model.short}); thresholds chosen on validation regions")
    return model.path
