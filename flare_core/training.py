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
        <model name>/       # one directory per model, written by the model's own ``save``

Loading never unpickles arbitrary objects: every model directory holds torch state_dicts
(``weights_only=True``), skops files behind an allow-list, and JSON
(`flare_core.models.persistence`). The mapping from a model name to the class that loads it
is the fixed registry `MODEL_SPECS` in this module, never a class path read from a file.

Time conventions: every datetime is tz-aware UTC; durations are hours. Labels are those of
`flare_core.labels.label_time_to_event`: a flare counts for a record at ``t`` if its peak is in
``(t, t + horizon_h]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .config import TrainConfig
from .dataset import LogScaler, time_range
from .errors import ConfigError, ModelError
from .metrics import best_tss_threshold
from .models.registry import ALL_MODELS, LABEL_C, LABEL_M
from .splits import split_validation, split_validation_period
from .versioning import code_version, hash_frame

__all__ = [
    "MODEL_FORMAT_VERSION",
    "ModelSpec",
    "CoxTimeSurvival",
    "FlareClassBands",
    "LifetimeWarning",
    "MODEL_SPECS",
    "train_all",
]

logger = logging.getLogger(__name__)

#: Version of the MODEL_DIR layout; `flare_core.forecasting.ModelBundle.load` refuses others.
MODEL_FORMAT_VERSION = 1

# ------------------------------------------------------------------------------ model specs


@dataclass(frozen=True)
class ModelSpec:
    """How `train_all` fits one model and how the forecasts read it back.

    Parameters
    ----------
    name : str
        Model name, also its sub-directory in MODEL_DIR.
    module, cls : str
        Where its class lives (``flare_core.models.<module>``); imported lazily, so a model
        that is not available leaves the others working.
    fit : callable
        ``fit(cls, train, val, context) -> model``; ``context`` carries the config, the
        feature names and the already fitted models of this run.
    predict : callable
        ``predict(model, data, context) -> dict[column, ndarray]``, one value per row.
    binary : tuple (probability column, label column) or None
        For binary forecasters: the column `predict` returns and the label it forecasts;
        `train_all` selects its decision threshold on the validation part.
    needs : tuple of str
        Models whose fitted objects ``fit``/``predict`` read from the context.
    loader : callable, optional
        ``loader(directory) -> model`` when the saved object is an integration wrapper
        rather than the class itself; default ``cls.load``.
    calibrate : bool
        Binary forecasters trained with class weights: `train_all` fits a
        `flare_core.models.calibration.PlattCalibration` of the ``binary`` column on the
        validation part (when ``TrainConfig.calibrate_probabilities``), picks the threshold
        on the calibrated values, and `flare_core.forecasting.predict_records` applies it.
    """

    name: str
    module: str
    cls: str
    fit: Callable[..., Any]
    predict: Callable[..., dict[str, np.ndarray]]
    binary: tuple[str, str] | None = None
    needs: tuple[str, ...] = ()
    loader: Callable[[Path], Any] | None = None
    calibrate: bool = False

    def load_model(self, directory: Path) -> Any:
        """Read a fitted model written by its ``save`` (never unpickles)."""
        if self.loader is not None:
            self.load_class()  # the model family must be importable
            return self.loader(directory)
        return self.load_class().load(directory)

    def load_class(self) -> type:
        """Import the model class; raises `ModelError` if its module is not available."""
        try:
            module = importlib.import_module(f"flare_core.models.{self.module}")
        except ImportError as e:
            raise ModelError(f"model {self.name!r}: cannot import flare_core.models."
                             f"{self.module}: {e}") from e
        try:
            return getattr(module, self.cls)
        except AttributeError as e:
            raise ModelError(f"model {self.name!r}: flare_core.models.{self.module} has no "
                             f"{self.cls}") from e


@dataclass
class _Context:
    """What the fit/predict adapters may read."""

    config: TrainConfig
    features: list[str]
    models: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)  # of the model being fitted
    thresholds: dict[str, float] = field(default_factory=dict)  # validation-chosen, by model
    outputs: dict[str, Any] = field(default_factory=dict)  # columns predicted so far


def _kwargs_for(cls: type, params: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
    """``params`` plus those ``defaults`` the constructor of ``cls`` accepts."""
    import inspect

    accepted = inspect.signature(cls).parameters
    out = {k: v for k, v in defaults.items() if k in accepted and k not in params}
    out.update(params)
    return out


def _unread_validation(train: pl.DataFrame, label: str) -> tuple[pl.DataFrame, pl.Series]:
    """Placeholder ``X_val, y_val`` of a torch classifier's refit (``epoch_score="last"``).

    `DeepFlareNet.fit` and `LSTMForecaster.fit` require validation data and standardise it
    before training (sklearn needs at least one row); with ``epoch_score="last"``
    `flare_core.models._torch_classifier.train_keep_best_tss` never reads it, so one
    training record stands in. Nothing is selected on it.
    """
    return train.head(1), train[label].head(1)


def _labels(frame: pl.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise ModelError(f"label column {column!r} not in the dataset")
    return frame[column].cast(pl.Int64).to_numpy()


# -- baselines --------------------------------------------------------------------------


def _fit_climatology(cls, train, val, ctx):
    return cls().fit(train.select(ctx.features), train[LABEL_M])


def _persistence_column(columns: Sequence[str]) -> str:
    """The >=M flare count of the previous 24 h (`flare_core.history`, peaks before t_rec)."""
    if "history__m_count_24h" in columns:
        return "history__m_count_24h"
    cands = sorted(c for c in columns if c.startswith("history__m_count"))
    if not cands:
        raise ModelError("no >=M flare-history column (history__m_count_*) in the dataset")
    return cands[0]


def _fit_persistence(cls, train, val, ctx):
    column = _persistence_column(ctx.features)
    return cls(column, calibrated=True).fit(train, train[LABEL_M])


def _fit_sklearn_binary(label: str):
    def fit(cls, train, val, ctx):
        params = _kwargs_for(cls, ctx.params, features=ctx.features,
                             random_state=ctx.config.seed)
        return cls(**params).fit(train, train[label])

    return fit


def _predict_proba(column: str):
    def predict(model, data, ctx):
        return {column: np.asarray(model.predict_proba(data), dtype=np.float64)}

    return predict


def _config_object(module: str, name: str, params: Mapping[str, Any], **defaults: Any) -> Any:
    """Instantiate the config dataclass ``name`` of ``flare_core.models.<module>``."""
    cfg_cls = getattr(importlib.import_module(f"flare_core.models.{module}"), name)
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown {name} parameters {unknown}; known: {sorted(known)}")
    values = {k: v for k, v in defaults.items() if k in known}
    values.update(params)
    return cfg_cls(**values)


# -- Deep Flare Net -----------------------------------------------------------------------


def _fit_defn(target: str, label: str):
    def fit(cls, train, val, ctx):
        cfg = _config_object("defn", "DeFNConfig", ctx.params, seed=ctx.config.seed,
                             device=ctx.device)
        model = cls(target, config=cfg, features=ctx.features)
        x_val, y_val = (val, val[label]) if val is not None else _unread_validation(train, label)
        return model.fit(train, train[label], X_val=x_val, y_val=y_val)

    return fit


# -- LSTM ---------------------------------------------------------------------------------

#: Default ``max_lookback_h`` of the LSTM sequences: records older than this before a sample
#: are never part of its sequence, so `forecast_at` needs only this much SHARP history.
_LSTM_LOOKBACK_H = 24.0


def _fit_lstm(cls, train, val, ctx):
    cfg = _config_object("lstm", "LSTMConfig", ctx.params, seed=ctx.config.seed,
                         device=ctx.device, max_lookback_h=_LSTM_LOOKBACK_H)
    model = cls("M", config=cfg, features=ctx.features)
    x_val, y_val = (val, val[LABEL_M]) if val is not None else _unread_validation(train,
                                                                                  LABEL_M)
    return model.fit(train, train[LABEL_M], X_val=x_val, y_val=y_val)


def _predict_lstm(model, data, ctx):
    """Sequences need the records sorted by (harpnum, t_rec); answers follow input order."""
    idx = "_row"
    ordered = data.with_row_index(idx).sort("harpnum", "t_rec")
    p_sorted = np.asarray(model.predict_proba(ordered), dtype=np.float64)
    p = np.empty_like(p_sorted)
    p[ordered[idx].to_numpy()] = p_sorted
    return {"p_m24_lstm": p}


# -- Cox-Time survival ----------------------------------------------------------------------

#: Flare-history counts given to Cox-Time as categorical inputs, binned 0, 1, 2, >=3 (as the
#: survival paper's binned B/C counts).
_COX_CATEGORICAL = ("history__b_count", "history__c_count")
_COX_COUNT_BINS = 3
#: Cox-Time durations are rounded UP to this step (hours) before fitting: the survival grid
#: has this resolution anyway, the Breslow baseline then has at most tmax_h / step jump times
#: (instead of one per event), which makes survival curves ~10x cheaper, and rounding up keeps
#: "flare within horizon_h" exactly as in the labels.
_COX_TIME_STEP_H = 1.0


class CoxTimeSurvival:
    """Cox-Time (`flare_core.models.cox_time.CoxTimeModel`) with its input preparation.

    Cox-Time needs finite inputs: a missing feature value is replaced by its training mean,
    except ``history__hours_since_*`` (null = no such flare yet), which becomes the largest
    training value (a long time ago). The binned B/C flare counts are categorical inputs, and
    so is the flare-class forest's expected class when that model is part of the bundle.

    Attributes
    ----------
    model : CoxTimeModel
    features : list of str
        Continuous input columns.
    fill_values : list of float
        Imputation value per feature.
    """

    def __init__(self, model: Any, features: Sequence[str], fill_values: Sequence[float],
                 *, uses_forest: bool = False) -> None:
        self.model = model
        self.features = list(features)
        self.fill_values = [float(v) for v in fill_values]
        self.uses_forest = uses_forest

    def arrays(self, frame: pl.DataFrame, forest_class: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Continuous matrix (n, p) and categorical codes (n, k) of ``frame``'s records."""
        x = _filled_matrix(frame, self.features, self.fill_values)
        cats = [
            np.minimum(frame[c].cast(pl.Float64).fill_null(0.0).to_numpy(), _COX_COUNT_BINS)
            .astype(np.int64) if c in frame.columns else np.zeros(frame.height, np.int64)
            for c in _COX_CATEGORICAL
        ]
        if self.uses_forest:
            if forest_class is None:
                raise ModelError("this Cox-Time model needs the flare-class forest's output")
            cats.append(np.asarray(forest_class, dtype=np.int64))
        return x, np.column_stack(cats)

    def save(self, directory: str | Path) -> Path:
        """Write ``cox_time/`` (the model's own files) and ``inputs.json``."""
        from .models.persistence import write_json

        d = Path(directory)
        self.model.save(d / "cox_time")
        write_json({"features": self.features, "fill_values": self.fill_values,
                    "uses_forest": self.uses_forest, "categorical": list(_COX_CATEGORICAL),
                    "count_bins": _COX_COUNT_BINS}, d / "inputs.json")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> CoxTimeSurvival:
        """Read a wrapper written by `save`."""
        from .models.cox_time import CoxTimeModel
        from .models.persistence import read_json

        d = Path(directory)
        meta = read_json(d / "inputs.json")
        return cls(CoxTimeModel.load(d / "cox_time"), meta["features"], meta["fill_values"],
                   uses_forest=bool(meta["uses_forest"]))


# -- flare-class forest -------------------------------------------------------------------


def _fill_values(train: pl.DataFrame, features: Sequence[str]) -> list[float]:
    """Training imputation values: the mean, except ``history__hours_since_*`` (null = no
    such flare yet), which gets the largest training value (a long time ago)."""
    out = []
    for c in features:
        col = train[c].cast(pl.Float64).fill_nan(None)
        v = col.max() if c.startswith("history__hours_since") else col.mean()
        out.append(0.0 if v is None or not math.isfinite(v) else float(v))
    return out


def _filled_matrix(frame: pl.DataFrame, features: Sequence[str],
                   fill_values: Sequence[float]) -> np.ndarray:
    return frame.select(
        pl.col(c).cast(pl.Float64).fill_nan(None).fill_null(v)
        for c, v in zip(features, fill_values, strict=True)
    ).to_numpy()


class FlareClassBands:
    """The flare-class forest (`flare_core.models.flare_class.FlareClassForest`) with its
    imputation (`_fill_values`); predicts the band of the next >=M flare.

    Attributes
    ----------
    forest : FlareClassForest
    features, fill_values : list
    """

    def __init__(self, forest: Any, features: Sequence[str], fill_values: Sequence[float]):
        self.forest = forest
        self.features = list(features)
        self.fill_values = [float(v) for v in fill_values]

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """Imputed feature matrix (n, p) of ``frame``."""
        return _filled_matrix(frame, self.features, self.fill_values)

    def save(self, directory: str | Path) -> Path:
        """Write ``forest/`` and ``inputs.json``."""
        from .models.persistence import write_json

        d = Path(directory)
        self.forest.save(d / "forest")
        write_json({"features": self.features, "fill_values": self.fill_values},
                   d / "inputs.json")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> FlareClassBands:
        """Read a wrapper written by `save`."""
        from .models.flare_class import FlareClassForest
        from .models.persistence import read_json

        d = Path(directory)
        meta = read_json(d / "inputs.json")
        return cls(FlareClassForest.load(d / "forest"), meta["features"], meta["fill_values"])




def _bands(frame: pl.DataFrame, tmax_h: float) -> np.ndarray:
    from .models.flare_class import flare_class_band

    return flare_class_band(
        frame["next_flare_flux_wm2"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        frame["time_to_event_h"].to_numpy(), frame["event"].to_numpy(), tmax_h=tmax_h)


def _fit_forest(cls, train, val, ctx):
    from .models.flare_class import FlareClassForestConfig, out_of_fold_bands

    cfg = _config_object("flare_class", "FlareClassForestConfig",
                         ctx.params, seed=ctx.config.seed)
    assert isinstance(cfg, FlareClassForestConfig)
    wrapper = FlareClassBands(None, ctx.features, _fill_values(train, ctx.features))
    x = wrapper.matrix(train)
    bands = _bands(train, ctx.config.tmax_h)
    wrapper.forest = cls(cfg).fit(x, bands)
    # the survival model trains on OUT-OF-FOLD bands (other regions' forests), never on the
    # forest's in-sample answers
    ctx.outputs["forest_oof_codes"] = (
        train.select("harpnum", "t_rec"),
        out_of_fold_bands(x, bands, train["harpnum"].to_numpy(), cfg),
    )
    return wrapper


def _predict_forest(wrapper, data, ctx):
    proba = wrapper.forest.predict_proba(wrapper.matrix(data))
    return {"flare_band_code": proba.argmax(axis=1).astype(np.int64),
            "p_x_given_m_forest": proba[:, 3] / np.maximum(proba[:, 1:].sum(axis=1), 1e-12)}


def _forest_codes(ctx: _Context, frame: pl.DataFrame) -> np.ndarray | None:
    wrapper = ctx.models.get("flare_class_forest")
    if wrapper is None:
        return None
    oof = ctx.outputs.get("forest_oof_codes")
    if oof is not None and oof[0].height == frame.height and oof[0].equals(
        frame.select("harpnum", "t_rec")
    ):
        return oof[1]
    done = ctx.outputs.get("flare_band_code")  # already predicted for these rows
    if done is not None and len(done) == frame.height and ctx.outputs.get("_rows") is frame:
        return done
    return _predict_forest(wrapper, frame, ctx)["flare_band_code"]


def _fit_cox_time(cls, train, val, ctx):
    from .models.cox_time import SurvivalArrays

    cfg = _config_object("cox_time", "CoxTimeConfig", ctx.params,
                         seed=ctx.config.seed, device=ctx.device, tmax_h=ctx.config.tmax_h,
                         grid_step_h=_COX_TIME_STEP_H)
    fills = _fill_values(train, ctx.features)
    wrapper = CoxTimeSurvival(cls(cfg), ctx.features, fills,
                              uses_forest="flare_class_forest" in ctx.models)

    def arrays(frame: pl.DataFrame) -> SurvivalArrays:
        x, x_cat = wrapper.arrays(frame, _forest_codes(ctx, frame))
        step = _COX_TIME_STEP_H
        durations = np.ceil(frame["time_to_event_h"].to_numpy() / step - 1e-9) * step
        return SurvivalArrays(x=x, durations_h=np.maximum(durations, 0.0),
                              events=frame["event"].to_numpy(), x_cat=x_cat)

    # no validation in the refit: cfg.epochs epochs (the selected number), no early stopping
    wrapper.model.fit(arrays(train), validation=arrays(val) if val is not None else None)
    return wrapper


def _predict_cox_time(wrapper, data, ctx):
    x, x_cat = wrapper.arrays(data, _forest_codes(ctx, data))
    grid, surv = wrapper.model.predict_survival(x, x_cat)
    horizon = ctx.config.horizon_h
    j = int(np.searchsorted(grid, horizon))
    if j < grid.size and np.isclose(grid[j], horizon):
        p24 = 1.0 - surv[:, j]
    else:
        p24 = wrapper.model.predict_event_probability(x, x_cat, horizon_h=horizon)
    # durations were fitted on whole multiples of the grid step, so the curve only jumps at
    # grid points and its step integral over the grid is the exact restricted mean lifetime
    from .models.lifetime import restricted_mean_lifetime

    life = restricted_mean_lifetime(grid, surv, float(grid[-1]))
    # from the 2-D array directly (700x faster than via Python lists at 10^5-10^6 records)
    curves = pl.Series("survival_curve", np.ascontiguousarray(surv, dtype=np.float64)).cast(
        pl.List(pl.Float64))
    grids = pl.Series("survival_grid_h", [grid.tolist()], dtype=pl.List(pl.Float64)
                      ).new_from_index(0, data.height)
    out = {"p_m24_survival": np.clip(p24, 0.0, 1.0), "mean_lifetime_h": life,
           "survival_grid_h": grids, "survival_curve": curves}
    if "flare_class_forest" in ctx.models:
        p_x_given_m = ctx.outputs.get("p_x_given_m_forest")
        if p_x_given_m is None or len(p_x_given_m) != data.height:
            p_x_given_m = _predict_forest(ctx.models["flare_class_forest"], data,
                                          ctx)["p_x_given_m_forest"]
        out["p_x24_survival"] = out["p_m24_survival"] * p_x_given_m
    return out


# -- warning SVM on the mean-lifetime track ------------------------------------------------

#: Track settings of the warning (survival paper Sect. 5.3): causal Gaussian smoothing of the
#: mean-lifetime track (sigma, hours) and the window of the (slope, mean) fit (hours).
_WARNING_TRACK_DEFAULTS: dict[str, float] = {"sigma_h": 6.0, "window_h": 4.0, "overlap_h": 1.0}


class LifetimeWarning:
    """Warning SVM (`flare_core.models.warning.WarningSVM`) on Cox-Time mean-lifetime tracks.

    For each record at ``t`` the region's mean-lifetime track is smoothed causally
    (`flare_core.models.lifetime.smooth_lifetime_track`), a line is fitted to the smoothed
    values in ``[t - window_h, t]`` and the SVM classifies ``(slope, mean)``; the warning is
    raised when the class is ``within`` (a >=M flare within ``lead_h`` = 24 h).

    The SVM is fitted on windows of the VALIDATION regions, whose lifetimes come from a
    Cox-Time model that never saw them (in-sample lifetimes would be over-confident). Those
    windows are kept (``train_windows``) so evaluation can redo the paper's lead-time sweep.
    """

    def __init__(self, svm: Any, *, sigma_h: float, window_h: float, overlap_h: float,
                 train_windows: pl.DataFrame) -> None:
        self.svm = svm
        self.sigma_h = float(sigma_h)
        self.window_h = float(window_h)
        self.overlap_h = float(overlap_h)
        self.train_windows = train_windows

    def smooth(self, track: pl.DataFrame) -> pl.DataFrame:
        """``track`` (harpnum, t_rec, mean_lifetime_h, ...) sorted, with the causal
        ``mean_lifetime_smooth_h``."""
        from .models.lifetime import smooth_lifetime_track

        return smooth_lifetime_track(track, sigma_h=self.sigma_h, causal=True)

    def windows(self, track: pl.DataFrame) -> pl.DataFrame:
        """The SVM's own windows (`flare_core.models.warning.lifetime_windows`) of a track."""
        from .models.warning import lifetime_windows

        return lifetime_windows(self.smooth(track), window_h=self.window_h,
                                overlap_h=self.overlap_h)

    def record_windows(self, track: pl.DataFrame) -> pl.DataFrame:
        """``slope_h_per_h`` and ``mean_h`` of the window ``[t_rec - window_h, t_rec]`` of
        every record (input order); null where the window holds fewer than 2 records."""
        idx = "_row"
        sm = self.smooth(track.with_row_index(idx))
        harp = sm["harpnum"].to_numpy()
        t_h = sm["t_rec"].dt.epoch("us").to_numpy() / 3.6e9
        v = sm["mean_lifetime_smooth_h"].fill_null(np.nan).to_numpy()
        slope = np.full(v.size, np.nan)
        mean = np.full(v.size, np.nan)
        bounds = np.flatnonzero(np.diff(harp)) + 1
        for rows in np.split(np.arange(v.size), bounds):
            if rows.size == 0:
                continue
            t = t_h[rows] - t_h[rows[0]]
            y = v[rows]
            ok = np.isfinite(y)
            y = np.where(ok, y, 0.0)
            n_c, t_c, y_c, tt_c, ty_c = (
                np.concatenate([[0.0], np.cumsum(np.where(ok, a, 0.0))])
                for a in (np.ones_like(t), t, y, t * t, t * y)
            )
            lo = np.searchsorted(t, t - self.window_h - 1e-9, side="left")
            hi = np.arange(1, t.size + 1)
            n = n_c[hi] - n_c[lo]
            st, sy = t_c[hi] - t_c[lo], y_c[hi] - y_c[lo]
            stt, sty = tt_c[hi] - tt_c[lo], ty_c[hi] - ty_c[lo]
            with np.errstate(invalid="ignore", divide="ignore"):
                denom = n * stt - st * st
                sl = np.where((n >= 2) & (denom > 1e-12), (n * sty - st * sy) / denom, np.nan)
                mn = np.where(n >= 2, sy / n, np.nan)
            slope[rows], mean[rows] = sl, mn
        out = pl.DataFrame({idx: sm[idx], "slope_h_per_h": slope, "mean_h": mean})
        return out.sort(idx).drop(idx).with_columns(pl.all().fill_nan(None))

    def warn(self, track: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(warning_24h as float 1/0/NaN, SVM class code or -1) for every record."""
        from .models.warning import WARNING_CLASSES

        w = self.record_windows(track)
        ok = (w["slope_h_per_h"].is_not_null() & w["mean_h"].is_not_null()).to_numpy()
        codes = np.full(w.height, -1, dtype=np.int64)
        if ok.any():
            codes[ok] = self.svm.predict(w.filter(pl.Series(ok)))
        warning = np.where(ok, (codes == WARNING_CLASSES.index("within")).astype(float), np.nan)
        return warning, codes

    def save(self, directory: str | Path) -> Path:
        """Write ``svm/``, ``track.json`` and ``train_windows.parquet``."""
        from .models.persistence import write_json

        d = Path(directory)
        self.svm.save(d / "svm")
        write_json({"sigma_h": self.sigma_h, "window_h": self.window_h,
                    "overlap_h": self.overlap_h}, d / "track.json")
        self.train_windows.write_parquet(d / "train_windows.parquet")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> LifetimeWarning:
        """Read a wrapper written by `save`."""
        from .models.persistence import read_json
        from .models.warning import WarningSVM

        d = Path(directory)
        meta = read_json(d / "track.json")
        return cls(WarningSVM.load(d / "svm"), sigma_h=meta["sigma_h"],
                   window_h=meta["window_h"], overlap_h=meta["overlap_h"],
                   train_windows=pl.read_parquet(d / "train_windows.parquet"))


def _lifetime_track(frame: pl.DataFrame, ctx: _Context) -> pl.DataFrame:
    life = ctx.outputs.get("mean_lifetime_h")
    if life is None or len(life) != frame.height or ctx.outputs.get("_rows") is not frame:
        life = _predict_cox_time(ctx.models["cox_time"], frame, ctx)["mean_lifetime_h"]
    keep = [c for c in ("harpnum", "t_rec", "time_to_event_h", "event") if c in frame.columns]
    return frame.select(keep).with_columns(pl.Series("mean_lifetime_h", life))


def _fit_warning(cls, train, val, ctx):
    from .models.warning import WarningSVMConfig

    track_params = {k: float(ctx.params.get(k, v)) for k, v in _WARNING_TRACK_DEFAULTS.items()}
    svm_params = {k: v for k, v in ctx.params.items() if k not in _WARNING_TRACK_DEFAULTS}
    cfg = _config_object("warning", "WarningSVMConfig", svm_params, seed=ctx.config.seed,
                         lead_h=ctx.config.horizon_h, tmax_h=ctx.config.tmax_h)
    assert isinstance(cfg, WarningSVMConfig)
    wrapper = LifetimeWarning(None, train_windows=pl.DataFrame(), **track_params)
    # the refit (val None) has no held-out records: the SVM reads the refitted Cox-Time's
    # lifetimes of its own training records
    windows = wrapper.windows(_lifetime_track(val if val is not None else train, ctx))
    wrapper.svm = cls(cfg).fit(windows)
    wrapper.train_windows = windows
    return wrapper


def _predict_warning(wrapper, data, ctx):
    warning, codes = wrapper.warn(_lifetime_track(data, ctx))
    return {"warning_24h": pl.Series("warning_24h", warning).fill_nan(None).cast(pl.Boolean),
            "warning_class_code": codes}


MODEL_SPECS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> None:
    MODEL_SPECS[spec.name] = spec


_register(ModelSpec("flare_class_forest", "flare_class", "FlareClassForest", _fit_forest,
                    _predict_forest, loader=FlareClassBands.load))
_register(ModelSpec("cox_time", "cox_time", "CoxTimeModel", _fit_cox_time, _predict_cox_time,
                    binary=("p_m24_survival", LABEL_M), loader=CoxTimeSurvival.load))
_register(ModelSpec("warning_svm", "warning", "WarningSVM", _fit_warning, _predict_warning,
                    needs=("cox_time",), loader=LifetimeWarning.load))
_register(ModelSpec("defn_m", "defn", "DeepFlareNet", _fit_defn("M", LABEL_M),
                    _predict_proba("p_m24_defn"), binary=("p_m24_defn", LABEL_M),
                    calibrate=True))
_register(ModelSpec("defn_c", "defn", "DeepFlareNet", _fit_defn("C", LABEL_C),
                    _predict_proba("p_c24_defn"), binary=("p_c24_defn", LABEL_C),
                    calibrate=True))
_register(ModelSpec("lstm", "lstm", "LSTMForecaster", _fit_lstm, _predict_lstm,
                    binary=("p_m24_lstm", LABEL_M), calibrate=True))
_register(ModelSpec("climatology", "baselines", "ClimatologyForecaster", _fit_climatology,
                    _predict_proba("p_m24_climatology"), binary=("p_m24_climatology", LABEL_M)))
_register(ModelSpec("persistence", "baselines", "PersistenceForecaster", _fit_persistence,
                    _predict_proba("p_m24_persistence"), binary=("p_m24_persistence", LABEL_M)))
_register(ModelSpec("logistic", "baselines", "LogisticRegressionBaseline",
                    _fit_sklearn_binary(LABEL_M), _predict_proba("p_m24_logistic"),
                    binary=("p_m24_logistic", LABEL_M), calibrate=True))


# ------------------------------------------------------------------------------- train_all


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries that use the global state
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _calibrate_on_validation(name: str, values: dict[str, Any], column: str,
                             y_val: np.ndarray, entry: dict[str, Any]) -> dict[str, Any]:
    """Fit Platt scaling of ``values[column]`` on the validation labels; record it in ``entry``.

    Returns ``values`` with the column calibrated; on a failed fit (one class, backwards
    ranking) the values are returned unchanged and the reason is logged and recorded.
    """
    from .models.calibration import PlattCalibration

    raw = np.asarray(values[column], dtype=np.float64)
    try:
        calibration = PlattCalibration.fit(raw, y_val)
    except ModelError as e:
        logger.warning("%s: probabilities left uncalibrated: %s", name, e)
        entry["calibration"] = None
        entry["calibration_error"] = str(e)
        return values
    entry["calibration"] = calibration.to_dict()
    logger.info("%s: Platt calibration on %d validation records: slope %.3f, intercept %.3f",
                name, raw.size, calibration.slope, calibration.intercept)
    return {**values, column: calibration.apply(raw)}


def _validation_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from . import metrics

    out: dict[str, float] = {"threshold": threshold, "n": int(y.size), "n_pos": int(y.sum())}
    if 0 < y.sum() < y.size:
        pred = p >= threshold
        out["tss"] = metrics.true_skill_statistic(y, pred)
        out["hss"] = metrics.heidke_skill_score(y, pred)
        out["auc"] = metrics.roc_auc(y, p)
    return out


def _refit_records(dataset: pl.DataFrame, config: TrainConfig) -> pl.DataFrame:
    """The records of the refit (`TrainConfig.refit`): all of ``dataset`` or, with
    ``validation_end``, those before ``validation_end - tmax_h`` (no label reads a flare
    after the validation period); thinned by ``train_step_h``."""
    end = config.validation_period_bound("validation_end")
    records = (dataset if end is None
               else dataset.filter(pl.col("t_rec") < end - timedelta(hours=config.tmax_h)))
    if config.train_step_h is not None:
        from .sampling import thin_records

        n = records.height
        records = thin_records(records, config.train_step_h)
        logger.info("refit: one record per region and %g h: %d of %d records",
                    config.train_step_h, records.height, n)
    return records


def _refit_overrides(model: Any) -> dict[str, Any]:
    """Hyper-parameters a refit adds to a model's own: the validation run's epochs.

    DeFN / LSTM (`TorchBinaryClassifier`, 1-based ``best_epoch_`` of the first member):
    exactly that many epochs, the last kept. Cox-Time (0-based ``history_["best_epoch"]``):
    that many epochs; the refit passes no validation data, so there is no early stopping.
    Other models: nothing (no epochs).
    """
    if isinstance(model, CoxTimeSurvival):
        return {"epochs": int(model.model.history_["best_epoch"]) + 1}
    if hasattr(model, "best_epoch_"):
        return {"max_epochs": int(model.best_epoch_), "epoch_score": "last", "patience": None}
    return {}


def _refit_models(records: pl.DataFrame, out: Path, selected: _Context,
                  trained: dict[str, dict[str, Any]], skipped: dict[str, str]) -> None:
    """Train every model of ``trained`` again on ``records`` and write it to ``out``.

    ``selected`` is the validation run's context (its fitted models give the epochs,
    `_refit_overrides`). ``trained`` entries keep the validation run's threshold,
    calibration and validation scores and get a ``"refit"`` entry; a model whose refit
    fails (or whose chain input failed) moves to ``skipped``.
    """
    config = selected.config
    _seed_everything(config.seed)
    ctx = _Context(config=config, features=selected.features, device=selected.device)
    for name in list(trained):
        spec = MODEL_SPECS[name]
        missing = [n for n in spec.needs if n not in ctx.models]
        if missing:
            skipped[name] = f"refit: needs models {missing}, whose refit failed"
            logger.error("model %s left out: %s", name, skipped[name])
            del trained[name]
            continue
        overrides = _refit_overrides(selected.models[name])
        t0 = time.perf_counter()
        try:
            ctx.params = {**config.params_for(name), **overrides}
            model = spec.fit(spec.load_class(), records, None, ctx)
        except (ModelError, ImportError) as e:
            skipped[name] = f"refit on all records failed: {e}"
            logger.error("model %s left out: %s", name, skipped[name])
            del trained[name]
            continue
        ctx.models[name] = model
        model.save(out / name)
        fit_s = time.perf_counter() - t0
        trained[name]["refit"] = {"params": overrides, "fit_seconds": fit_s}
        logger.info("refitted %s on %d records in %.1f s (%s)", name, records.height, fit_s,
                    overrides or "same settings")


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
        Hash of the input files (`hash_files`); default: hash of ``dataset`` (`hash_frame`).

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
    _seed_everything(config.seed)
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
    ctx = _Context(config=config, features=features, device=config.resolved_device())
    trained: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    t_all = time.perf_counter()
    for name in [m for m in ALL_MODELS if m in config.models]:
        spec = MODEL_SPECS.get(name)
        if spec is None:
            skipped[name] = "no training adapter for this model in this version"
            logger.error("model %s left out: %s", name, skipped[name])
            continue
        missing = [n for n in spec.needs if n not in ctx.models]
        if missing:
            skipped[name] = f"needs models {missing}, which were not trained"
            logger.error("model %s left out: %s", name, skipped[name])
            continue
        t0 = time.perf_counter()
        try:
            cls = spec.load_class()
            ctx.params = config.params_for(name)
            model = spec.fit(cls, fit_part, val_part, ctx)
        except (ModelError, ImportError) as e:
            skipped[name] = str(e)
            logger.error("model %s left out: %s", name, e)
            continue
        fit_s = time.perf_counter() - t0
        ctx.models[name] = model
        if not config.refit:  # with refit, the models trained on all records are written
            model.save(out / name)
        entry: dict[str, Any] = {"dir": name, "class": spec.cls, "fit_seconds": fit_s}
        if spec.binary is not None:
            column, label = spec.binary
            values = spec.predict(model, val_part, ctx)
            y_val = _labels(val_part, label)
            if spec.calibrate and config.calibrate_probabilities:
                values = _calibrate_on_validation(name, values, column, y_val, entry)
            if ctx.outputs.get("_rows") is not val_part:
                ctx.outputs = {k: v for k, v in ctx.outputs.items() if k == "forest_oof_codes"}
                ctx.outputs["_rows"] = val_part
            ctx.outputs.update(values)  # later models of the chain reuse these
            p_val = values[column]
            threshold, _ = best_tss_threshold(y_val, p_val)
            entry["threshold"] = threshold
            entry["validation"] = _validation_scores(y_val, p_val, threshold)
        trained[name] = entry
        logger.info("trained %s in %.1f s", name, fit_s)
    if not trained:
        raise ModelError(f"no model could be trained: {skipped}")
    refit_part = None
    if config.refit:
        refit_part = _refit_records(dataset, config)
        _refit_models(refit_part, out, ctx, trained, skipped)
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
