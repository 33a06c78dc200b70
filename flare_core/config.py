"""Frozen settings objects, checked once in a side-effect-free ``__post_init__``.

Deployment values that come from the environment (store root, JSOC e-mail) live in
`Settings` (pydantic-settings); the training configuration is `TrainConfig` (feature windows,
labels, validation, which models and their hyper-parameters), read from TOML or a mapping
and written into every ``model.json``; everything else is a plain frozen dataclass passed down.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError
from .models.registry import ALL_MODELS

__all__ = ["Settings", "default_store_root", "check_positive", "settings_object",
           "seed_everything", "TrainConfig", "DEFAULT_PARAMS", "RESAMPLERS"]


def check_positive(name: str, value: float) -> None:
    """Raise `ConfigError` naming the setting if ``value`` is not > 0."""
    if not (isinstance(value, int | float) and value > 0):
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def settings_object(cls: type, params: Mapping[str, Any], **defaults: Any) -> Any:
    """``cls(**defaults, **params)`` for a settings dataclass (a model's config).

    ``defaults`` the dataclass does not have are ignored; a key of ``params`` it does not have
    raises `ConfigError` naming the known ones.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} parameters {unknown}; known: {sorted(known)}")
    values = {k: v for k, v in defaults.items() if k in known}
    values.update(params)
    return cls(**values)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's global and torch's random state (libraries that use them)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries that use the global state
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def default_store_root() -> Path:
    """Per-user default store root: ``$XDG_DATA_HOME/flareflow`` or ``~/.local/share/flareflow``."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flareflow"


class Settings(BaseSettings):
    """Deployment settings read from ``FLAREFLOW_*`` environment variables.

    ``FLAREFLOW_STORE`` sets the store root; ``FLAREFLOW_JSOC_EMAIL`` the registered JSOC
    e-mail (needed only for exports); ``FLAREFLOW_JSOC_URL`` points drms at another JSOC
    server (the replay server in tests); ``FLAREFLOW_HEK_URL`` does the same for HEK.
    """

    model_config = SettingsConfigDict(env_prefix="FLAREFLOW_", frozen=True)

    store: Path = default_store_root()
    jsoc_email: str | None = None
    jsoc_url: str | None = None
    hek_url: str | None = None


# ------------------------------------------------------------------------- training config


#: Hyper-parameters `train_all` uses unless ``TrainConfig.params`` overrides them (key by
#: key). Chosen so that all models train on three sun2022 folds (~39 k records) in well under
#: 150 s on 2 CPU cores; everything else is the model classes' (paper) defaults. Epochs are
#: maxima: DeFN and the LSTM keep the epoch of best validation TSS, Cox-Time stops early on
#: the validation loss (validation = region-disjoint part of the TRAINING data).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "flare_class_forest": {"n_estimators": 60, "min_samples_leaf": 5, "n_folds": 3,
                           "n_jobs": 2},
    # Every value below besides epochs/batch sizes was chosen by
    # benchmarks/select_deep_models.py on SELECTION regions carved out of the training folds
    # (never a test fold): mean selection TSS over 4 rotations x 2-3 model seeds, the
    # candidate kept only if it beat the previous default (EVALUATION.md lists every
    # candidate). Logistic regression scores 0.864 on the same regions.
    # Cox-Time: the paper's 6 hidden layers, 128 wide, input noise 0.5, weight decay 0.1:
    # 0.866 against 0.850 (a 3-layer net did 0.869, within the seed spread; the issue asks
    # for the paper's depth). Time enters at hidden layer 4: layers 1-4 run once per record
    # in prediction.
    "cox_time": {"hidden_nodes": 128, "input_noise": 0.5, "weight_decay": 0.1,
                 "time_layer": 4, "epochs": 128, "patience": 12},
    # DeFN: Gaussian input noise 2.0 (standardised units), epoch by best validation TSS over
    # thresholds, weight decay 1e-3: >=M 0.891 against 0.857; >=C 0.873 against 0.829.
    # Seed ensembles, dropout, weight averaging, smaller learning rates or class weights
    # did not do better.
    "defn_m": {"batch_size": 500, "max_epochs": 12, "weight_decay": 1e-3, "input_noise": 2.0,
               "epoch_score": "best_tss"},
    "defn_c": {"batch_size": 500, "max_epochs": 12, "weight_decay": 1e-3, "input_noise": 2.0,
               "epoch_score": "best_tss"},
    # LSTM: input noise 0.5: 0.867 against 0.864 (within the seed spread; no candidate did
    # clearly better)
    "lstm": {"max_epochs": 10, "input_noise": 0.5},
}


#: Resamplers of the fit part (`TrainConfig.resample`) and the keyword arguments each takes
#: (`flare_core.sampling.resample_fit_part`).
RESAMPLERS: dict[str | None, tuple[str, ...]] = {
    None: (),
    "kde": ("min_flux_wm2", "bandwidth", "undersample", "flux_col"),
}


def _default_params() -> dict[str, dict[str, Any]]:
    return {}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of `train_all`.

    Parameters
    ----------
    seed : int
        Seed of every random choice (validation split, numpy, torch).
    window_h, long_window_h : float
        Trailing windows (hours) of `flare_core.features.RunningStats`.
    tmax_h : float
        Follow-up (hours) of the time-to-event labels; later flares are censored.
    horizon_h : float
        Forecast horizon (hours) of the binary labels and of ``p_*24`` probabilities.
    val_fraction : float
        Fraction of the training REGIONS held out (region-disjoint) for early stopping,
        epoch and threshold selection and the validation metrics in ``model.json``.
    models : tuple of str
        Models to train, a subset of `ALL_MODELS`.
    params : mapping of str to mapping
        Hyper-parameters per model name, overriding `DEFAULT_PARAMS` key by key and passed
        to the model's config (e.g. ``{"defn_m": {"max_epochs": 20}}``); unknown model
        names or parameter names raise `ConfigError`.
    device : str
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``.
    freshness_h : float
        Largest age (hours) of a region's newest record that `forecast_at` still uses.
    log_scale_features : bool
        Compress heavy-tailed feature columns with ``sign(x) log1p(|x| / s)`` before every
        model (`flare_core.dataset.LogScaler`); chosen and scaled on the training data only.
    calibrate_probabilities : bool
        Platt-scale the probabilities of the class-weighted binary forecasters (DeFN, LSTM,
        logistic regression) on the validation regions (`ModelSpec.calibrate`); their
        ranking and yes/no forecasts are unchanged, their probabilities become usable.
    validation_start : str, optional
        ISO date (UTC). When set, validation is a *period*, not a set of regions: records
        with ``t_rec >= validation_start`` (up to ``validation_end``) validate, every region
        on the disk included, and records before ``validation_start - tmax_h`` fit (the gap
        keeps every training label, which looks ``tmax_h`` ahead, out of the validation
        period). This is how an operational model is selected: on a later year.
        ``val_fraction`` is then unused.
    validation_end : str, optional
        ISO date (UTC), exclusive end of the validation period (default: the data's end).
    train_step_h : float, optional
        Fit and validate on one record per region and ``train_step_h`` hours
        (`flare_core.sampling.thin_records`; features are computed on every record first).
        For 12-min streams (NRT) 1.0 gives the region-hours an hourly service is scored
        on, at a fifth of the cost. Default: every record.
    refit : bool
        Needs ``validation_start``. After training and selecting on (fit, validation
        period) as usual, train every model again on all records (fit, gap and validation
        period; with ``validation_end`` only records before ``validation_end - tmax_h``, so
        that no label reads a flare after the validation period), thinned by
        ``train_step_h``, with what the validation chose: DeFN and the LSTM exactly the
        selected number of epochs (``best_epoch_`` of the first ensemble member) and no
        epoch selection, Cox-Time the selected epochs without early stopping, the other
        models with the same settings. The refitted models are the ones written; their
        thresholds and calibration maps, and the validation scores in ``model.json``, are
        those of the validation run.
    resample : {None, "kde"}
        Class re-balancing of the FIT part (never the validation part, never the data of
        the saved climatology): ``"kde"`` is the survival paper's KDE-guided oversampling of
        the rarer flare classes and undersampling of the non-flaring records
        (`flare_core.sampling.kde_resample`, on the GOES class of each record's next >=M
        flare within ``tmax_h``, seeded by ``seed``), applied after ``train_step_h``. Every
        output record is a copy of a fit record. It changes the base rate the models fit
        on: the calibrated forecasters (``calibrate_probabilities``) are re-mapped on the
        validation part, the others over-forecast. Not with the LSTM (its sequences need
        unique ``(harpnum, t_rec)`` records) nor with ``refit``. Default None (off); its
        skill on the NRT validation year is in EVALUATION.md.
    resample_params : mapping
        Keyword arguments of the resampler, for ``"kde"`` those of `kde_resample`:
        ``min_flux_wm2``, ``bandwidth``, ``undersample``, ``flux_col`` (TOML table
        ``[resample_params]``).
    """

    seed: int = 0
    window_h: float = 4.0
    long_window_h: float = 24.0
    tmax_h: float = 144.0
    horizon_h: float = 24.0
    val_fraction: float = 0.2
    models: tuple[str, ...] = ALL_MODELS
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=_default_params)
    device: str = "auto"
    freshness_h: float = 6.0
    log_scale_features: bool = True
    calibrate_probabilities: bool = True
    validation_start: str | None = None
    validation_end: str | None = None
    train_step_h: float | None = None
    refit: bool = False
    resample: str | None = None
    resample_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("window_h", "long_window_h", "tmax_h", "horizon_h",
                     "freshness_h"):
            check_positive(name, getattr(self, name))
        if self.train_step_h is not None:
            check_positive("train_step_h", self.train_step_h)
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ConfigError(f"seed must be a non-negative int, got {self.seed!r}")
        if not (0.0 < self.val_fraction < 1.0):
            raise ConfigError(f"val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if self.horizon_h != 24.0:
            raise ConfigError(
                f"horizon_h must be 24.0 (the p_*24 forecasts and m/c_within_24h labels), "
                f"got {self.horizon_h!r}"
            )
        if self.tmax_h < self.horizon_h:
            raise ConfigError(
                f"tmax_h ({self.tmax_h}) must be >= horizon_h ({self.horizon_h})"
            )
        if isinstance(self.models, str):
            raise ConfigError(f"models must be a sequence of names, got {self.models!r}")
        object.__setattr__(self, "models", tuple(self.models))
        unknown = sorted(set(self.models) - set(ALL_MODELS))
        if unknown:
            raise ConfigError(f"unknown models {unknown}; known: {list(ALL_MODELS)}")
        if not self.models:
            raise ConfigError("models must not be empty")
        bad = sorted(set(self.params) - set(ALL_MODELS))
        if bad:
            raise ConfigError(f"params given for unknown models {bad}; known: {list(ALL_MODELS)}")
        if any(not isinstance(v, Mapping) for v in self.params.values()):
            raise ConfigError("params must map model names to tables of hyper-parameters")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        bounds = [self.validation_period_bound(n) for n in ("validation_start",
                                                            "validation_end")]
        if bounds[1] is not None and bounds[0] is None:
            raise ConfigError("validation_end needs validation_start")
        if None not in bounds and bounds[1] <= bounds[0]:
            raise ConfigError(f"validation_end {self.validation_end!r} must be after "
                              f"validation_start {self.validation_start!r}")
        if not isinstance(self.refit, bool):
            raise ConfigError(f"refit must be true or false, got {self.refit!r}")
        if self.refit and bounds[0] is None:
            raise ConfigError("refit needs validation_start (a validation period selects "
                              "what the refit on all records keeps)")
        self._check_resample()

    def _check_resample(self) -> None:
        if not isinstance(self.resample, str | None) or self.resample not in RESAMPLERS:
            raise ConfigError(f"resample must be one of {list(RESAMPLERS)}, got "
                              f"{self.resample!r}")
        if not isinstance(self.resample_params, Mapping):
            raise ConfigError("resample_params must be a table of keyword arguments")
        known = RESAMPLERS[self.resample]
        unknown = sorted(set(self.resample_params) - set(known))
        if unknown:
            raise ConfigError(f"unknown resample_params {unknown} for resample="
                              f"{self.resample!r}; known: {list(known)}")
        if self.resample is None:
            return
        if "lstm" in self.models:
            raise ConfigError(f"resample={self.resample!r} repeats records, and the LSTM's "
                              "sequences need unique (harpnum, t_rec) records: leave 'lstm' "
                              "out of models")
        if self.refit:
            raise ConfigError(f"resample={self.resample!r} with refit is not supported: the "
                              "refit would train on records that were not resampled")

    def validation_period_bound(self, name: str) -> datetime | None:
        """``validation_start`` / ``validation_end`` as a UTC datetime (None when unset)."""
        value = getattr(self, name)
        if value is None:
            return None
        from .timeutil import to_utc

        try:
            return to_utc(str(value))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{name} must be an ISO date or time, got {value!r}") from e

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a plain mapping (e.g. parsed TOML); unknown keys raise `ConfigError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig keys {unknown}; known: {sorted(known)}")
        kwargs = dict(values)
        if "models" in kwargs:
            kwargs["models"] = tuple(kwargs["models"])
        if "params" in kwargs:
            kwargs["params"] = {k: dict(v) for k, v in kwargs["params"].items()}
        if isinstance(kwargs.get("resample_params"), Mapping):
            kwargs["resample_params"] = dict(kwargs["resample_params"])
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read a TOML file: top-level keys are the fields, ``[params.<model>]`` tables the
        hyper-parameters of one model, e.g.::

            seed = 1
            models = ["defn_m", "logistic", "persistence"]
            [params.defn_m]
            max_epochs = 20
        """
        p = Path(path)
        try:
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read training config {p}: {e}") from e
        try:
            return cls.from_mapping(values)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from e

    @classmethod
    def quick(cls, **overrides: Any) -> TrainConfig:
        """A tiny configuration (few trees, few epochs) for tests and the offline demo."""
        values = dict(_QUICK)
        values["params"] = {k: dict(v) for k, v in _QUICK["params"].items()}
        values.update(overrides)
        return cls.from_mapping(values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; `from_mapping` reads it back."""
        d = dataclasses.asdict(self)
        d["models"] = list(self.models)
        d["params"] = {k: dict(v) for k, v in self.params.items()}
        d["resample_params"] = dict(self.resample_params)
        return d

    def params_for(self, model: str) -> dict[str, Any]:
        """Hyper-parameters of one model: `DEFAULT_PARAMS` updated by ``params`` (a copy)."""
        return {**DEFAULT_PARAMS.get(model, {}), **self.params.get(model, {})}

    def resolved_device(self) -> str:
        """``"cuda"`` when requested or (``auto``) available, else ``"cpu"``."""
        if self.device == "cpu":
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if self.device == "cuda":
            raise ConfigError("device='cuda' requested but torch sees no CUDA device")
        return "cpu"


_QUICK: dict[str, Any] = {
    "val_fraction": 0.25,
    "params": {
        "flare_class_forest": {"n_estimators": 20},
        "cox_time": {"epochs": 5, "patience": 3},
        "defn_m": {"max_epochs": 3},
        "defn_c": {"max_epochs": 3},
        "lstm": {"max_epochs": 2},
    },
}
