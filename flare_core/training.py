"""Train every flareflow model on one labelled dataset and write a versioned model directory.

`train_all` is the single entry point: it splits the training records into a fitting part
and a region-disjoint validation part (whole HARPs, so no region is on both sides), fits
each model family in turn, picks each binary forecaster's decision threshold and, where a
model supports it, its early-stopping epoch on the validation part only. By default nothing
is refitted (the saved models are the ones scored on the validation part); with
``TrainConfig.refit`` (validation period only) every model is trained again on all records
with the epochs the validation run selected, and those models are saved with the
validation run's thresholds and calibration maps.

MODEL_DIR layout
----------------
::

    MODEL_DIR/
        model.json          # format version, code version, config, features, training range,
                            # data hash, validation metrics, thresholds, sub-directories
        <model name>/       # one directory per model (the survival chain writes three:
                            # flare_class_forest/, cox_time/, warning_svm/)

Loading never unpickles arbitrary objects: every model directory holds torch state_dicts
(``weights_only=True``), skops files behind an allow-list, and JSON
(`flare_core.models.persistence`). The mapping from a model name to the class that loads it
is the fixed registry `flare_core.models.registry.MODEL_SPECS`, never a class path read from
a file.

Time conventions: every datetime is tz-aware UTC; durations are hours. Labels are those of
`flare_core.labels.label_time_to_event`: a flare counts for a record at ``t`` if its peak is in
``(t, t + horizon_h]``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .config import TrainConfig, seed_everything
from .dataset import LogScaler, time_range
from .errors import ModelError
from .metrics import best_tss_threshold, validation_scores
from .models.calibration import calibrate_on_validation
from .models.registry import (
    CHAIN,
    LABEL_C,
    LABEL_M,
    BuildContext,
    build_estimator,
    estimator_groups,
    fit_estimator,
    predict_columns,
    save_estimator,
)
from .splits import refit_records, split_validation, split_validation_period
from .versioning import code_version, hash_frame

__all__ = ["MODEL_FORMAT_VERSION", "train_all"]

logger = logging.getLogger(__name__)

#: Version of the MODEL_DIR layout; `flare_core.forecasting.ModelBundle.load` refuses others.
MODEL_FORMAT_VERSION = 1


def _labels(frame: pl.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise ModelError(f"label column {column!r} not in the dataset")
    return frame[column].cast(pl.Int64).to_numpy()


def _fit_or_skip(group: str, specs: list, ctx: BuildContext, train: pl.DataFrame,
                 val: pl.DataFrame | None, skipped: dict[str, str], *, why: str = "") -> Any:
    """The fitted estimator of one registry group, or None with each of its models in
    ``skipped`` (``why`` + the error) and an ERROR log line, when its module is missing or
    its fit fails."""
    try:
        return fit_estimator(group, specs, build_estimator(group, specs, ctx), train, val)
    except (ModelError, ImportError) as e:
        for spec in specs:
            skipped[spec.name] = f"{why}{e}"
            logger.error("model %s left out: %s", spec.name, skipped[spec.name])
        return None


def _refit_overrides(name: str, model: Any) -> dict[str, Any]:
    """Hyper-parameters a refit adds to a model's own: the validation run's epochs.

    DeFN / LSTM (`TorchBinaryClassifier`, 1-based ``best_epoch_`` of the first member):
    exactly that many epochs, the last kept. Cox-Time (0-based ``history_["best_epoch"]`` of
    the survival chain's ``cox_``): that many epochs; the refit passes no validation data, so
    there is no early stopping. Other models: nothing (no epochs).
    """
    if name == "cox_time":
        return {"epochs": int(model.cox_.history_["best_epoch"]) + 1}
    if hasattr(model, "best_epoch_"):
        return {"max_epochs": int(model.best_epoch_), "epoch_score": "last", "patience": None}
    return {}


def _refit_models(records: pl.DataFrame, out: Path, ctx: BuildContext,
                  selected: dict[str, Any], trained: dict[str, dict[str, Any]],
                  skipped: dict[str, str]) -> None:
    """Train every model of ``trained`` again on ``records`` and write it to ``out``.

    ``selected`` holds the validation run's fitted estimators by model name (they give the
    epochs, `_refit_overrides`). ``trained`` entries keep the validation run's threshold,
    calibration and validation scores and get a ``"refit"`` entry; a model whose refit
    fails moves to ``skipped``.
    """
    seed_everything(ctx.config.seed)
    overrides = {name: _refit_overrides(name, selected[name]) for name in trained}
    ctx = dataclasses.replace(ctx, overrides=overrides)
    for group, specs in estimator_groups(list(trained)):
        t0 = time.perf_counter()
        estimator = _fit_or_skip(group, specs, ctx, records, None, skipped,
                                 why="refit on all records failed: ")
        if estimator is None:
            for spec in specs:
                del trained[spec.name]
            continue
        save_estimator(group, specs, estimator, out)
        fit_s = time.perf_counter() - t0
        for spec in specs:
            trained[spec.name]["refit"] = {"params": overrides[spec.name], "fit_seconds": fit_s}
        logger.info("refitted %s on %d records in %.1f s (%s)", group, records.height, fit_s,
                    {s.name: overrides[s.name] for s in specs})


def _refit_meta(fit_part: pl.DataFrame, val_part: pl.DataFrame,
                refit_part: pl.DataFrame) -> dict[str, Any]:
    """``model.json`` fields of a refit: where the selection was made, what was refitted."""
    return {
        "refit": True,
        # thresholds, calibration maps, epochs and the "validation" scores come from here
        "selected_on": time_range(val_part),
        "selection_fit_range": time_range(fit_part),
        "n_selection_fit_records": fit_part.height,
        "n_selection_validation_records": val_part.height,
        # the saved models were trained on these records
        "refit_range": time_range(refit_part),
        "n_refit_records": refit_part.height,
        "n_refit_regions": refit_part["harpnum"].n_unique(),
    }


def train_all(
    dataset: pl.DataFrame,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),  # noqa: B008 - frozen, immutable default
    *,
    data_hash: str | None = None,
) -> Path:
    """Train every model of ``config.models`` on ``dataset`` and write MODEL_DIR.

    Parameters
    ----------
    dataset : pl.DataFrame
        Output of `build_model_dataset` (or `flare_core.dataset.build_dataset`) WITH labels:
        ``harpnum``, ``t_rec`` (UTC), feature columns ``a__b`` and the label columns.
    out_dir : path-like
        The model directory to write (created; existing model files are replaced).
    config : TrainConfig
    data_hash : str, optional
        Hash of the input files (`flare_core.io.hash_files`); default: hash of ``dataset`` (`hash_frame`).

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Notes
    -----
    A model whose module is missing or whose fit fails is left out with an ERROR log line
    and recorded under ``"skipped"`` in ``model.json``; `ModelError` is raised only when no
    model at all could be trained.

    With ``config.refit`` the models written are those trained again on all records
    (`TrainConfig.refit`); ``model.json`` then also holds ``"refit": true``,
    ``"selected_on"`` (time range of the validation period that chose the thresholds,
    calibration maps and epochs; the ``"validation"`` scores of every model are that run's),
    ``"selection_fit_range"``, ``"n_selection_fit_records"``,
    ``"n_selection_validation_records"``, ``"refit_range"``, ``"n_refit_records"``,
    ``"n_refit_regions"``, and per model ``"refit": {"params": ..., "fit_seconds": ...}``
    (the epochs the refit used).
    """
    from .features import feature_columns
    from .models.persistence import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features = feature_columns(dataset)
    if not features:
        raise ModelError("dataset has no feature column (named '<keyword>__<stat>')")
    for label in (LABEL_M, LABEL_C):
        if label not in dataset.columns:
            raise ModelError(f"dataset lacks the label column {label!r}; build it with labels")
    seed_everything(config.seed)
    dataset = dataset.sort("harpnum", "t_rec")
    log_scales = LogScaler(features).fit(dataset).scales_ if config.log_scale_features else {}
    if log_scales:
        logger.info("log-scaling %d heavy-tailed feature columns", len(log_scales))
        dataset = LogScaler.from_scales(log_scales).transform(dataset)
    if config.validation_start is not None:
        fit_part, val_part = split_validation_period(dataset, config)
    else:
        fit_part, val_part = split_validation(dataset, fraction=config.val_fraction,
                                              seed=config.seed)
    if config.train_step_h is not None:
        from .sampling import thin_records

        n_fit, n_val = fit_part.height, val_part.height
        fit_part = thin_records(fit_part, config.train_step_h)
        val_part = thin_records(val_part, config.train_step_h)
        logger.info("one record per region and %g h: %d of %d fit, %d of %d validation "
                    "records", config.train_step_h, fit_part.height, n_fit, val_part.height,
                    n_val)
    if config.resample is not None:  # the fit part only: no copy reaches validation
        from .sampling import resample_fit_part

        fit_part = resample_fit_part(fit_part, config)
    ctx = BuildContext(config=config, features=features, device=config.resolved_device())
    trained: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    fitted: dict[str, Any] = {}
    t_all = time.perf_counter()
    for group, specs in estimator_groups(config.models):
        if group == CHAIN and "cox_time" not in {s.name for s in specs}:
            for spec in specs:
                skipped[spec.name] = "needs models ['cox_time'], which were not trained"
                logger.error("model %s left out: %s", spec.name, skipped[spec.name])
            continue
        t0 = time.perf_counter()
        estimator = _fit_or_skip(group, specs, ctx, fit_part, val_part, skipped)
        if estimator is None:
            continue
        fit_s = time.perf_counter() - t0
        if not config.refit:  # with refit, the models trained on all records are written
            save_estimator(group, specs, estimator, out)
        values = predict_columns(group, specs, estimator, val_part)
        for spec in specs:
            fitted[spec.name] = estimator
            entry: dict[str, Any] = {"dir": spec.name, "class": spec.class_name,
                                     "fit_seconds": fit_s}
            if spec.label is not None:
                column = spec.columns[0]
                y_val = _labels(val_part, spec.label)
                p_val = np.asarray(values[column], dtype=np.float64)
                if spec.calibrate and config.calibrate_probabilities:
                    p_val = calibrate_on_validation(spec.name, p_val, y_val, entry)
                threshold, _ = best_tss_threshold(y_val, p_val)
                entry["threshold"] = threshold
                entry["validation"] = validation_scores(y_val, p_val, threshold)
            trained[spec.name] = entry
        logger.info("trained %s in %.1f s", group, fit_s)
    if not trained:
        raise ModelError(f"no model could be trained: {skipped}")
    refit_part = None
    if config.refit:
        refit_part = refit_records(dataset, config)
        _refit_models(refit_part, out, ctx, fitted, trained, skipped)
        if not trained:
            raise ModelError(f"no model could be refitted on all records: {skipped}")
    meta = {
        "format_version": MODEL_FORMAT_VERSION,
        "code_version": code_version(),
        "created_at": datetime.now(UTC).isoformat(),
        "config": config.to_dict(),
        "model_params": {name: config.params_for(name) for name in trained},
        "features": features,
        "log_scaled_features": log_scales,
        "n_records": dataset.height,
        "n_regions": dataset["harpnum"].n_unique(),
        "training_range": time_range(dataset),
        "climatology": {
            label: float(dataset[label].cast(pl.Float64).mean()) for label in (LABEL_M, LABEL_C)
        },
        "validation_regions": sorted(val_part["harpnum"].unique().to_list()),
        "validation_period": (time_range(val_part) if config.validation_start is not None
                              else None),
        "data_hash": data_hash or hash_frame(dataset.select("harpnum", "t_rec", *features)),
        **(_refit_meta(fit_part, val_part, refit_part) if refit_part is not None else {}),
        "models": trained,
        "skipped": skipped,
        "train_seconds": time.perf_counter() - t_all,
    }
    write_json(meta, out / "model.json")
    logger.info("wrote %s: %d models (%s), %d skipped", out, len(trained),
                ", ".join(trained), len(skipped))
    return out
