"""The model registry: one `ModelSpec` per model, the one place a model's identity lives.

A spec carries the model's name (its `TrainConfig.models` entry and MODEL_DIR sub-directory),
its kind, its output columns, the label it forecasts and the prediction window, the name it is
published and scored under, and how an estimator for it is built, fitted and asked for its
columns. `flare_core.training.train_all`, `flare_core.forecasting` (loading, predicting,
publishing, the headline), and `flare_core.evaluation` iterate over `MODEL_SPECS`.

The survival paper's chain (flare-class forest -> Cox-Time -> mean lifetime -> warning SVM)
is one estimator, `flare_core.models.survival_chain.SurvivalChain`; its three stages keep
their own specs (``chain=True``), so that each can be selected, thresholded, published and
scored by name, and are fitted, saved and loaded together.

Adding a model: its estimator in its own module (``fit(X, y, **fit_params)``,
``predict_proba(X)`` for a binary forecaster, a ``state_layout`` for
`flare_core.models.persistence`), one `ModelSpec` below
(with a ``build`` function when the constructor needs more than the defaults), and its tests.

Examples
--------
>>> MODEL_SPECS["defn_m"].columns, MODEL_SPECS["defn_m"].published
(('p_m24_defn',), 'defn')
>>> [s.name for s in MODEL_SPECS.values() if s.chain]
['flare_class_forest', 'cox_time', 'warning_svm']
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from ..errors import ModelError

if TYPE_CHECKING:
    from ..config import TrainConfig

__all__ = ["ALL_MODELS", "LABEL_M", "LABEL_C", "ModelSpec", "MODEL_SPECS", "BuildContext",
           "CHAIN", "estimator_groups", "build_estimator", "fit_estimator", "predict_columns",
           "load_estimators", "save_estimator", "published_specs", "published_spec"]

#: Binary label columns (`flare_core.labels.label_columns`).
LABEL_M = "m_within_24h"
LABEL_C = "c_within_24h"

#: Registry key of the survival chain (one estimator for its three stages).
CHAIN = "survival_chain"

Kind = Literal["survival", "binary", "class", "warning"]


@dataclass(frozen=True)
class BuildContext:
    """What a spec's ``build`` reads: the configuration, the feature columns, the device."""

    config: TrainConfig
    features: list[str]
    device: str = "cpu"
    #: per model: the validation run's epochs added to a refit (`flare_core.training`)
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def params(self, name: str) -> dict[str, Any]:
        """Hyper-parameters of one model: `TrainConfig.params_for` plus refit overrides."""
        return {**self.config.params_for(name), **self.overrides.get(name, {})}


@dataclass(frozen=True)
class ModelSpec:
    """Everything flareflow knows about one model.

    Parameters
    ----------
    name : str
        Model name: a `TrainConfig.models` entry, its MODEL_DIR sub-directory and its key
        in ``model.json``'s ``models``.
    kind : {"survival", "binary", "class", "warning"}
        What it forecasts: a survival curve (with the probability of the event within
        ``window_h``), a yes/no probability, a flare-class band, a warning decision.
    estimator : str
        ``"module:Class"`` under ``flare_core.models`` of the fitted object (of the stage,
        for chain members); imported lazily, so a model whose module is unavailable is left
        out and the others still train.
    columns : tuple of str
        Columns of its prediction; for ``binary`` and ``survival`` the first is the
        probability of the event within ``window_h``.
    label : str, optional
        The label column that probability forecasts (threshold, calibration, scores).
    window_h : float, optional
        Prediction window (hours) of that probability.
    published : str, optional
        Forecast-store model name (`flare_core.publish.forecast_store`), when published.
    publish_columns : mapping, optional
        Forecast-store column -> prediction column of the published rows.
    scored_as : str, optional
        Its name in evaluation reports (default ``name``).
    calibrate : bool
        Trained with class weights: `train_all` fits Platt scaling of ``columns[0]`` on the
        validation part (when ``TrainConfig.calibrate_probabilities``).
    chain : bool
        A stage of the survival chain (`CHAIN`).
    build : callable, optional
        ``build(cls, ctx: BuildContext) -> estimator`` (default ``cls()``).
    sorted_input : bool
        ``predict_proba`` needs records sorted by (harpnum, t_rec) (sequences); answers
        are returned in input order.
    predicts_rows : bool
        When only some records' forecasts are wanted (`predict_columns` ``rows``), only
        those are predicted (a costly model: the networks); otherwise every record is, so
        that each value keeps the bits of a whole-batch call (a BLAS matrix-vector product
        may sum a row in another order at another place in the batch).
    """

    name: str
    kind: Kind
    estimator: str
    columns: tuple[str, ...]
    label: str | None = None
    window_h: float | None = 24.0
    published: str | None = None
    publish_columns: Mapping[str, str] = field(default_factory=dict)
    scored_as: str | None = None
    calibrate: bool = False
    chain: bool = False
    build: Callable[[type, BuildContext], Any] | None = None
    sorted_input: bool = False
    predicts_rows: bool = False

    @property
    def group(self) -> str:
        """The estimator this model's outputs come from: `CHAIN` or the model's name."""
        return CHAIN if self.chain else self.name

    @property
    def score_name(self) -> str:
        """Name in evaluation reports."""
        return self.scored_as or self.name

    @property
    def class_name(self) -> str:
        return self.estimator.partition(":")[2]

    def load_class(self) -> type:
        """Import the estimator class; raises `ModelError` if its module is not available."""
        module_name, _, cls_name = self.estimator.partition(":")
        try:
            module = importlib.import_module(f"flare_core.models.{module_name}")
        except ImportError as e:
            raise ModelError(f"model {self.name!r}: cannot import flare_core.models."
                             f"{module_name}: {e}") from e
        try:
            return getattr(module, cls_name)
        except AttributeError as e:
            raise ModelError(f"model {self.name!r}: flare_core.models.{module_name} has no "
                             f"{cls_name}") from e


# ---------------------------------------------------------------------------- constructors


def _config_object(module: str, name: str, params: Mapping[str, Any], **defaults: Any) -> Any:
    """The settings dataclass ``name`` of ``flare_core.models.<module>`` (`settings_object`)."""
    from ..config import settings_object

    cfg_cls = getattr(importlib.import_module(f"flare_core.models.{module}"), name)
    return settings_object(cfg_cls, params, **defaults)


def _sklearn_style(cls: type, ctx: BuildContext, name: str) -> Any:
    """``cls(**params)`` plus those of ``features``/``random_state`` its constructor takes."""
    params = ctx.params(name)
    accepted = inspect.signature(cls).parameters
    defaults = {"features": ctx.features, "random_state": ctx.config.seed}
    kwargs = {k: v for k, v in defaults.items() if k in accepted and k not in params}
    return cls(**kwargs, **params)


def _persistence_column(columns: Sequence[str]) -> str:
    """The >=M flare count of the previous 24 h (`flare_core.history`, peaks before t_rec)."""
    if "history__m_count_24h" in columns:
        return "history__m_count_24h"
    cands = sorted(c for c in columns if c.startswith("history__m_count"))
    if not cands:
        raise ModelError("no >=M flare-history column (history__m_count_*) in the dataset")
    return cands[0]


def _defn(target: str, name: str) -> Callable[[type, BuildContext], Any]:
    def build(cls: type, ctx: BuildContext) -> Any:
        cfg = _config_object("defn", "DeFNConfig", ctx.params(name), seed=ctx.config.seed,
                             device=ctx.device)
        return cls(target, config=cfg, features=ctx.features)

    return build


#: Default ``max_lookback_h`` of the LSTM sequences: records older than this before a sample
#: are never part of its sequence, so `forecast_at` needs only this much SHARP history.
_LSTM_LOOKBACK_H = 24.0


def _lstm(cls: type, ctx: BuildContext) -> Any:
    cfg = _config_object("lstm", "LSTMConfig", ctx.params("lstm"), seed=ctx.config.seed,
                         device=ctx.device, max_lookback_h=_LSTM_LOOKBACK_H)
    return cls("M", config=cfg, features=ctx.features)


def _chain(members: Sequence[str], ctx: BuildContext) -> Any:
    from .survival_chain import SurvivalChain

    cfg = ctx.config
    return SurvivalChain(ctx.features, forest="flare_class_forest" in members,
                         warning="warning_svm" in members,
                         forest_params=ctx.params("flare_class_forest"),
                         cox_params=ctx.params("cox_time"),
                         warning_params=ctx.params("warning_svm"), tmax_h=cfg.tmax_h,
                         horizon_h=cfg.horizon_h, seed=cfg.seed, device=ctx.device)


# -------------------------------------------------------------------------------- registry

MODEL_SPECS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> None:
    MODEL_SPECS[spec.name] = spec


_register(ModelSpec("flare_class_forest", "class", "flare_class:FlareClassForest",
                    ("flare_band_code", "p_x_given_m_forest"), window_h=None, chain=True))
_register(ModelSpec(
    "cox_time", "survival", "cox_time:CoxTimeModel",
    ("p_m24_survival", "mean_lifetime_h", "survival_grid_h", "survival_curve",
     "p_x24_survival"), label=LABEL_M, published="survival",
    publish_columns={"p_m24": "p_m24_survival", "p_c24": "p_c24_survival",
                     "p_x24": "p_x24_survival", "mean_lifetime_h": "mean_lifetime_h"},
    scored_as="survival", chain=True))
_register(ModelSpec("warning_svm", "warning", "warning:WarningSVM",
                    ("warning_24h", "warning_class_code"), chain=True))
_register(ModelSpec("defn_m", "binary", "defn:DeepFlareNet", ("p_m24_defn",), label=LABEL_M,
                    published="defn", publish_columns={"p_m24": "p_m24_defn",
                                                       "p_c24": "p_c24_defn"},
                    calibrate=True, build=_defn("M", "defn_m"), predicts_rows=True))
_register(ModelSpec("defn_c", "binary", "defn:DeepFlareNet", ("p_c24_defn",), label=LABEL_C,
                    calibrate=True, build=_defn("C", "defn_c"), predicts_rows=True))
_register(ModelSpec("lstm", "binary", "lstm:LSTMForecaster", ("p_m24_lstm",), label=LABEL_M,
                    published="lstm", publish_columns={"p_m24": "p_m24_lstm"},
                    calibrate=True, build=_lstm, sorted_input=True, predicts_rows=True))
_register(ModelSpec("logistic", "binary", "baselines:LogisticRegressionBaseline",
                    ("p_m24_logistic",), label=LABEL_M, published="logistic",
                    publish_columns={"p_m24": "p_m24_logistic"}, calibrate=True,
                    build=lambda cls, ctx: _sklearn_style(cls, ctx, "logistic")))
_register(ModelSpec("persistence", "binary", "baselines:PersistenceForecaster",
                    ("p_m24_persistence",), label=LABEL_M, published="persistence",
                    publish_columns={"p_m24": "p_m24_persistence"},
                    build=lambda cls, ctx: cls(_persistence_column(ctx.features),
                                               calibrated=True)))
_register(ModelSpec("climatology", "binary", "baselines:ClimatologyForecaster",
                    ("p_m24_climatology",), label=LABEL_M, published="climatology",
                    publish_columns={"p_m24": "p_m24_climatology"}))

#: Every model `train_all` knows, in training order (the survival chain first: its warning
#: SVM reads the Cox-Time and forest outputs).
ALL_MODELS: tuple[str, ...] = tuple(MODEL_SPECS)

#: Publishing order (forecast store, page, headline ties).
_PUBLISH_ORDER = ("survival", "defn", "lstm", "logistic", "persistence", "climatology")


def published_specs() -> list[ModelSpec]:
    """Specs of the published models, in publishing order."""
    by_name = {s.published: s for s in MODEL_SPECS.values() if s.published}
    return [by_name[p] for p in _PUBLISH_ORDER if p in by_name] + [
        s for p, s in by_name.items() if p not in _PUBLISH_ORDER]


def published_spec(published: str) -> ModelSpec:
    """The spec published under ``published`` (e.g. ``"survival"`` -> ``cox_time``)."""
    for spec in MODEL_SPECS.values():
        if spec.published == published:
            return spec
    raise KeyError(published)


# ------------------------------------------------------------------------------ operations


def estimator_groups(models: Sequence[str]) -> list[tuple[str, list[ModelSpec]]]:
    """``models`` grouped by the estimator that fits them, in `ALL_MODELS` order."""
    groups: dict[str, list[ModelSpec]] = {}
    for name in ALL_MODELS:
        if name in models:
            spec = MODEL_SPECS[name]
            groups.setdefault(spec.group, []).append(spec)
    return list(groups.items())


def build_estimator(group: str, specs: Sequence[ModelSpec], ctx: BuildContext) -> Any:
    """An unfitted estimator for the models ``specs`` of one group."""
    for spec in specs:
        spec.load_class()  # the model family must be importable
    if group == CHAIN:
        return _chain([s.name for s in specs], ctx)
    spec = specs[0]
    cls = spec.load_class()
    return spec.build(cls, ctx) if spec.build is not None else cls()


def fit_estimator(group: str, specs: Sequence[ModelSpec], estimator: Any,
                  train: pl.DataFrame, val: pl.DataFrame | None) -> Any:
    """Fit ``estimator`` on ``train`` (``val``: validation records, None in a refit)."""
    if group == CHAIN:
        return estimator.fit(train, X_val=val)
    label = specs[0].label
    if label not in train.columns:
        raise ModelError(f"label column {label!r} not in the dataset")
    accepted = inspect.signature(estimator.fit).parameters
    kwargs: dict[str, Any] = {}
    if "X_val" in accepted and val is not None:
        kwargs = {"X_val": val, "y_val": val[label]}
    return estimator.fit(train, train[label], **kwargs)


#: Fewest rows a model with ``predicts_rows`` is given when only some are wanted. Its
#: networks' float32 matrix products give a row the same bits in any batch of at least 8
#: rows (measured: DeFN and LSTM, MKL on AVX-512, batches of 8 to 20,000 rows, as in a
#: whole-batch call), not always in smaller ones.
MIN_PREDICTED_ROWS = 256


def predict_columns(group: str, specs: Sequence[ModelSpec], estimator: Any,
                    data: pl.DataFrame, *, rows: np.ndarray | None = None) -> dict[str, Any]:
    """``{column: values}`` (one value per row of ``data``, input order) of the group.

    ``rows``: optional boolean mask (one per row of ``data``) of the rows whose values are
    wanted; the others may be left NaN: a model with ``predicts_rows`` predicts only the
    wanted rows (the sequence model with every row as context), the chain classifies the
    warning of the wanted rows only.
    """
    if group == CHAIN:
        frame = estimator.predict(data) if rows is None else estimator.predict(data, rows=rows)
        return {c: frame[c] for c in frame.columns}
    spec = specs[0]
    if not spec.predicts_rows:
        rows = None
    elif rows is not None and rows.sum() < MIN_PREDICTED_ROWS:
        # a batch of a few rows: the float32 products of the networks may round otherwise
        # (another MKL code path); a few more rows of the frame are predicted as well
        rows = rows.copy()
        rows[np.flatnonzero(~rows)[:MIN_PREDICTED_ROWS - int(rows.sum())]] = True
    if spec.sorted_input:
        idx = "_row"
        ordered = data.with_row_index(idx).sort("harpnum", "t_rec")
        order = ordered[idx].to_numpy()
        p_sorted = np.asarray(estimator.predict_proba(ordered) if rows is None else
                              estimator.predict_proba(ordered, rows=rows[order]),
                              dtype=np.float64)
        p = np.empty_like(p_sorted)
        p[order] = p_sorted
    elif rows is None:
        p = np.asarray(estimator.predict_proba(data), dtype=np.float64)
    else:
        p = np.full(data.height, np.nan)
        if rows.any():
            p[rows] = np.asarray(estimator.predict_proba(data.filter(pl.Series(rows))),
                                 dtype=np.float64)
    return {spec.columns[0]: p}


def save_estimator(group: str, specs: Sequence[ModelSpec], estimator: Any, out: Path) -> None:
    """Write the fitted estimator into ``out/<model name>/`` of each of its models
    (`flare_core.models.persistence`)."""
    from .persistence import save_model, save_stages

    if group == CHAIN:
        save_stages(estimator, {s.name: out / s.name for s in specs})
    else:
        save_model(estimator, out / specs[0].name)


def load_estimators(directories: Mapping[str, Path]) -> dict[str, Any]:
    """``{model name: fitted estimator}`` from ``{model name: its directory}`` (chain
    members all map to the one `SurvivalChain`)."""
    from .persistence import load_model, load_stages

    out: dict[str, Any] = {}
    for group, specs in estimator_groups(list(directories)):
        for spec in specs:
            spec.load_class()
        if group == CHAIN:
            from .survival_chain import SurvivalChain

            chain = load_stages(SurvivalChain, {s.name: directories[s.name] for s in specs})
            out.update({s.name: chain for s in specs})
        else:
            out[specs[0].name] = load_model(specs[0].load_class(), directories[specs[0].name])
    return out
