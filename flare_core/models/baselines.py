"""Reference forecasters every flare model must beat, with one fit/predict_proba interface.

* `ClimatologyForecaster` — the training-set event rate, for every sample.
* `PersistenceForecaster` — "a flare of the class happened in the previous 24 h" (from a
  flare-history column of `flare_core.history`), optionally calibrated on training data.
* `LogisticRegressionBaseline`, `SVMBaseline`, `KNNBaseline`, `ExtraTreesBaseline` — the
  classical learners of Nishizuka et al. (2018, ApJ 858, 113, Table 3) as scikit-learn pipelines
  (mean imputation, `StandardScaler`, classifier).

Every model takes features as a numpy array ``(n_samples, n_features)`` or a polars frame
(e.g. from ``flare_core.dataset.build_dataset``) and binary labels (``m_within_24h`` or
``c_within_24h``: a flare of the class peaks in ``(t_rec, t_rec + 24 h]``, UTC).
``predict_proba`` returns the probability of the event as a 1-D array ``(n_samples,)``.
Every model is a scikit-learn estimator (``get_params``/``clone``, parameters checked in
``fit``). Models are saved with ``save_model(model, dir)`` and read back with
``load_model(Class, dir)`` (`flare_core.models.persistence`; nothing is unpickled).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from ..errors import ConfigError, ModelError
from ._inputs import (
    META_FILE,
    as_binary_labels,
    as_feature_matrix,
    check_fitted,
    log_missing_values,
    make_standardiser,
    select_feature_names,
    validate_params,
)
from .persistence import ModelState, StateLayout

__all__ = [
    "ClimatologyForecaster",
    "PersistenceForecaster",
    "LogisticRegressionBaseline",
    "SVMBaseline",
    "KNNBaseline",
    "ExtraTreesBaseline",
]

logger = logging.getLogger(__name__)

_PIPELINE_FILE = "pipeline.skops"

# ---------------------------------------------------------------------------------- baselines


class ClimatologyForecaster(BaseEstimator):
    """Constant forecast: the event rate of the training labels.

    Attributes
    ----------
    event_rate_ : float
        Fraction of positive training samples, the probability given to every sample.
    """

    _parameter_constraints: ClassVar[dict] = {}

    def fit(self, X: Any, y: Any) -> Self:
        """Learn the event rate; ``X`` only fixes the number of samples."""
        validate_params(self)
        n = X.height if isinstance(X, pl.DataFrame) else len(X)
        labels = as_binary_labels(y, n)
        if n == 0:
            raise ModelError("cannot fit climatology on zero samples")
        self.event_rate_ = float(labels.mean())
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of the event, ``event_rate_`` for each of the ``len(X)`` samples."""
        check_fitted(self, "event_rate_")
        n = X.height if isinstance(X, pl.DataFrame) else len(X)
        return np.full(n, self.event_rate_, dtype=np.float64)

    state_layout = StateLayout(meta_file=META_FILE, header={"class": "ClimatologyForecaster"},
                               what="ClimatologyForecaster model directory")

    def _get_state(self) -> ModelState:
        check_fitted(self, "event_rate_")
        return ModelState(meta={"event_rate": self.event_rate_})

    @classmethod
    def _from_state(cls, state: ModelState) -> Self:
        model = cls()
        model.event_rate_ = float(state.meta["event_rate"])
        return model



class PersistenceForecaster(BaseEstimator):
    """"A flare happened in the previous window, so one will follow": the persistence forecast.

    Parameters
    ----------
    history_column : str or int
        The flare-history column counting flares of the target class (or larger) that peaked
        in the window before ``t_rec`` (e.g. the >=M count over the previous 24 h from
        ``flare_core.history.build_flare_history``); a column index when ``X`` is an array.
    calibrated : bool, default False
        False: probability 1 when the count is > 0, else 0. True: the training event rate of
        each of those two groups (a calibrated persistence forecast).

    Attributes
    ----------
    rate_if_flared_, rate_if_quiet_ : float
        The two probabilities (1.0 and 0.0 unless ``calibrated``).
    """

    _parameter_constraints: ClassVar[dict] = {
        "history_column": [str, Integral], "calibrated": ["boolean"]}

    def __init__(self, history_column: str | int, *, calibrated: bool = False) -> None:
        self.history_column = history_column
        self.calibrated = calibrated

    def _flared(self, X: Any) -> np.ndarray:
        col = self.history_column
        if isinstance(X, pl.DataFrame):
            if not isinstance(col, str) or col not in X.columns:
                raise ModelError(f"history column {col!r} not in the frame")
            counts = X.get_column(col).cast(pl.Float64).to_numpy()
        else:
            if not isinstance(col, int):
                raise ModelError(f"history_column must be a column index for arrays, got {col!r}")
            counts = np.asarray(X, dtype=np.float64)[:, col]
        n_missing = int(np.isnan(counts).sum())
        if n_missing:
            logger.warning("persistence: %d samples lack %r, counted as no flare", n_missing, col)
        return np.nan_to_num(counts, nan=0.0) > 0

    def fit(self, X: Any, y: Any) -> Self:
        """Set the two probabilities (training event rates when ``calibrated``)."""
        validate_params(self)
        flared = self._flared(X)
        labels = as_binary_labels(y, flared.shape[0])
        if not self.calibrated:
            self.rate_if_flared_, self.rate_if_quiet_ = 1.0, 0.0
            return self
        rates = []
        for mask in (flared, ~flared):
            if not mask.any():
                raise ModelError("calibrated persistence needs samples with and without flares")
            rates.append(float(labels[mask].mean()))
        self.rate_if_flared_, self.rate_if_quiet_ = rates
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of the event per sample, from the history column only."""
        check_fitted(self, "rate_if_flared_")
        return np.where(self._flared(X), self.rate_if_flared_, self.rate_if_quiet_)

    state_layout = StateLayout(meta_file=META_FILE, header={"class": "PersistenceForecaster"},
                               what="PersistenceForecaster model directory")

    def _get_state(self) -> ModelState:
        check_fitted(self, "rate_if_flared_")
        return ModelState(meta={
            "history_column": self.history_column,
            "calibrated": self.calibrated,
            "rate_if_flared": self.rate_if_flared_,
            "rate_if_quiet": self.rate_if_quiet_,
        })

    @classmethod
    def _from_state(cls, state: ModelState) -> Self:
        meta = state.meta
        model = cls(meta["history_column"], calibrated=meta["calibrated"])
        model.rate_if_flared_ = float(meta["rate_if_flared"])
        model.rate_if_quiet_ = float(meta["rate_if_quiet"])
        return model



class _PipelineBaseline(BaseEstimator):
    """Mean imputation -> StandardScaler -> classifier, fitted on training data only.

    Subclasses take their hyper-parameters (and ``features``) in ``__init__``, declare their
    limits in ``_parameter_constraints`` (checked by `fit`) and build the classifier in
    ``_make_classifier``. ``get_params`` is scikit-learn's.
    """

    _parameter_constraints: ClassVar[dict] = {}
    features: Sequence[str] | None

    def _make_classifier(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> Self:
        """Fit imputer, scaler and classifier on the training samples.

        Parameters
        ----------
        X : ndarray (n_samples, n_features) or polars.DataFrame
            Features; missing values (NaN/null) are replaced by the training mean (counted
            and logged).
        y : array-like (n_samples,) of bool or 0/1
            Event labels.
        """
        validate_params(self)
        names = select_feature_names(X, self.features)
        x = as_feature_matrix(X, names)
        labels = as_binary_labels(y, x.shape[0])
        if np.unique(labels).size < 2:
            raise ModelError(f"{type(self).__name__} needs both classes in the training labels")
        log_missing_values(x, type(self).__name__)
        self.pipeline_ = make_standardiser(self._make_classifier()).fit(x, labels)
        self.feature_names_in_ = names
        self.n_features_in_ = x.shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of the event, shape ``(n_samples,)``."""
        check_fitted(self, "pipeline_")
        x = as_feature_matrix(X, self.feature_names_in_, self.n_features_in_)
        return self.pipeline_.predict_proba(x)[:, 1]

    state_layout: ClassVar[StateLayout]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.state_layout = StateLayout(
            meta_file=META_FILE, header={"class": cls.__name__},
            what=f"{cls.__name__} model directory", sklearn=(_PIPELINE_FILE,))

    def _get_state(self) -> ModelState:
        """``pipeline.skops`` and ``meta.json``."""
        check_fitted(self, "pipeline_")
        meta = {
            "params": self.get_params(),
            "feature_names_in": self.feature_names_in_,
            "n_features_in": self.n_features_in_,
        }
        return ModelState(meta=meta, sklearn={_PIPELINE_FILE: self.pipeline_})

    @classmethod
    def _from_state(cls, state: ModelState) -> Self:
        meta = state.meta
        model = cls(**meta["params"])
        model.pipeline_ = state.sklearn[_PIPELINE_FILE]
        model.feature_names_in_ = meta["feature_names_in"]
        model.n_features_in_ = int(meta["n_features_in"])
        return model



class LogisticRegressionBaseline(_PipelineBaseline):
    """L2-regularised logistic regression.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength.
    class_weight : "balanced" or None, default "balanced"
        "balanced" re-weights the rare flaring class (probabilities are then not calibrated).
    features : sequence of str, optional
        Frame columns to use; default every numeric non-label column.
    """

    _parameter_constraints: ClassVar[dict] = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "class_weight": [StrOptions({"balanced"}), None],
        "features": ["array-like", None],
    }

    def __init__(
        self,
        C: float = 1.0,  # noqa: N803 - scikit-learn's name
        *,
        class_weight: str | None = "balanced",
        features: Sequence[str] | None = None,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.features = features

    def _make_classifier(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=1000)


class SVMBaseline(_PipelineBaseline):
    """RBF support-vector machine with sigmoid-calibrated probabilities.

    ``CalibratedClassifierCV(SVC(), ensemble=False)`` (scikit-learn's replacement for the
    deprecated ``SVC(probability=True)``). Fitting is quadratic in the number of samples.

    Parameters
    ----------
    C : float, default 1.0
    gamma : "scale" or float, default "scale"
    class_weight : "balanced" or None, default "balanced"
    cv : int, default 3
        Folds of the probability calibration.
    random_state : int, default 0
    features : sequence of str, optional
    """

    _parameter_constraints: ClassVar[dict] = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "gamma": [StrOptions({"scale", "auto"}), Interval(Real, 0, None, closed="neither")],
        "class_weight": [StrOptions({"balanced"}), None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "features": ["array-like", None],
    }

    def __init__(
        self,
        C: float = 1.0,  # noqa: N803 - scikit-learn's name
        *,
        gamma: str | float = "scale",
        class_weight: str | None = "balanced",
        cv: int = 3,
        random_state: int = 0,
        features: Sequence[str] | None = None,
    ) -> None:
        self.C = C
        self.gamma = gamma
        self.class_weight = class_weight
        self.cv = cv
        self.random_state = random_state
        self.features = features

    def _make_classifier(self) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        svc = SVC(
            C=self.C, gamma=self.gamma, class_weight=self.class_weight,
            random_state=self.random_state,
        )
        return CalibratedClassifierCV(svc, method="sigmoid", cv=self.cv, ensemble=False)


class KNNBaseline(_PipelineBaseline):
    """k-nearest neighbours on standardised features.

    Parameters
    ----------
    n_neighbors : int, default 15
    weights : "uniform" or "distance", default "uniform"
    features : sequence of str, optional
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "weights": [StrOptions({"uniform", "distance"})],
        "features": ["array-like", None],
    }

    def __init__(
        self,
        n_neighbors: int = 15,
        *,
        weights: str = "uniform",
        features: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(n_neighbors, int) or n_neighbors < 1:
            raise ConfigError(f"n_neighbors must be a positive int, got {n_neighbors!r}")
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.features = features

    def _make_classifier(self) -> Any:
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=self.n_neighbors, weights=self.weights)


class ExtraTreesBaseline(_PipelineBaseline):
    """Extremely randomised trees (Geurts et al. 2006).

    Parameters
    ----------
    n_estimators : int, default 200
    min_samples_leaf : int, default 5
    class_weight : "balanced", "balanced_subsample" or None, default "balanced"
    random_state : int, default 0
    n_jobs : int or None, default None
    features : sequence of str, optional
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [StrOptions({"balanced", "balanced_subsample"}), None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "features": ["array-like", None],
    }

    def __init__(
        self,
        n_estimators: int = 200,
        *,
        min_samples_leaf: int = 5,
        class_weight: str | None = "balanced",
        random_state: int = 0,
        n_jobs: int | None = None,
        features: Sequence[str] | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.features = features

    def _make_classifier(self) -> Any:
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            class_weight=self.class_weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
