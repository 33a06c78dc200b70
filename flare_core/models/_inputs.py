"""Input checks shared by the forecast models of this package.

Tabular inputs (a numpy array ``(n_samples, n_features)`` or a polars frame) become float64
matrices, labels become 0/1 ``int64`` vectors, identifier and label columns are kept out of
the features. Every model is a scikit-learn estimator: `check_fitted` is sklearn's
`~sklearn.utils.validation.check_is_fitted` raising `NotFittedModelError` (both the project's
`ModelError` and sklearn's `~sklearn.exceptions.NotFittedError`), and `validate_params`
checks an estimator's ``_parameter_constraints`` raising `ConfigError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from sklearn.exceptions import NotFittedError

from ..errors import ConfigError, ModelError

__all__ = [
    "META_FILE",
    "NON_FEATURE_COLUMNS",
    "NotFittedModelError",
    "as_binary_labels",
    "as_feature_matrix",
    "check_fitted",
    "log_missing_values",
    "make_standardiser",
    "select_feature_names",
    "validate_params",
]

logger = logging.getLogger(__name__)

#: Columns of a dataset frame that are never model inputs (identifiers and labels).
NON_FEATURE_COLUMNS = frozenset(
    {
        "harpnum",
        "t_rec",
        "noaa_ars",
        "source",
        "m_within_24h",
        "c_within_24h",
        "time_to_event_h",
        "event",
        "next_flare_class",
        "next_flare_flux_wm2",
    }
)
_LABEL_PATTERN = re.compile(r"^(label_.*|[a-z]+_within_[0-9.]+h)$")
#: Name of the JSON metadata file in a saved model directory.
META_FILE = "meta.json"


def _is_feature_candidate(name: str) -> bool:
    """False for identifier and label columns (``m_within_24h``, ``label_*``, ...)."""
    return name not in NON_FEATURE_COLUMNS and not _LABEL_PATTERN.match(name)


def select_feature_names(X: Any, features: Sequence[str] | None) -> list[str] | None:
    """Feature column names for a polars frame; None for arrays.

    With ``features=None`` a frame contributes every numeric column that is neither an
    identifier nor a label (`NON_FEATURE_COLUMNS`, ``*_within_<h>h``, ``label_*``).
    """
    if not isinstance(X, pl.DataFrame):
        return None if features is None else list(features)
    if features is not None:
        names = list(features)
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ModelError(f"feature columns missing from the frame: {missing}")
        leaked = [c for c in names if not _is_feature_candidate(c)]
        if leaked:
            raise ModelError(f"identifier/label columns cannot be features: {leaked}")
        return names
    names = [
        c
        for c, dtype in X.schema.items()
        if dtype.is_numeric() and _is_feature_candidate(c)
    ]
    if not names:
        raise ModelError("no numeric feature column in the frame")
    logger.info("using %d numeric feature columns of the frame", len(names))
    return names


def as_feature_matrix(
    X: Any, feature_names: Sequence[str] | None, n_features: int | None = None
) -> np.ndarray:
    """(n_samples, n_features) float64 array; frames are reduced to ``feature_names``."""
    if isinstance(X, pl.DataFrame):
        if feature_names is None:
            raise ModelError("model was fitted on an array; pass an array, not a frame")
        missing = [c for c in feature_names if c not in X.columns]
        if missing:
            raise ModelError(f"feature columns missing from the frame: {missing}")
        arr = X.select(pl.col(list(feature_names)).cast(pl.Float64)).to_numpy()
    else:
        arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ModelError(f"features must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ModelError(f"expected {n_features} features, got {arr.shape[1]}")
    return arr


def as_binary_labels(y: Any, n_samples: int) -> np.ndarray:
    """1-D int64 array of 0/1 labels; nulls and other values are refused."""
    if isinstance(y, pl.Series):
        if y.null_count():
            raise ModelError(f"labels {y.name!r} contain {y.null_count()} nulls")
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ModelError(f"labels must have shape ({n_samples},), got {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        raise ModelError(f"labels must be 0/1 or boolean, found values {sorted(values)[:5]}")
    return arr.astype(np.int64)


def log_missing_values(x: np.ndarray, model_name: str) -> int:
    """Count the NaN entries of training features (to be mean-imputed), log and return it."""
    n_missing = int(np.isnan(x).sum())
    if n_missing:
        logger.info("%s: imputing %d missing training feature values", model_name, n_missing)
    return n_missing


def make_standardiser(*steps: Any) -> Any:
    """Unfitted pipeline: training-mean imputation, `StandardScaler`, then ``steps``."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler(), *steps
    )


class NotFittedModelError(ModelError, NotFittedError):
    """A model is used before `fit`: a `ModelError` and sklearn's `NotFittedError`."""


def check_fitted(model: Any, attribute: str | Sequence[str]) -> None:
    """`~sklearn.utils.validation.check_is_fitted` on the fitted ``attribute``(s).

    Raises
    ------
    NotFittedModelError
        ``"<Class> is not fitted; call fit() first"``.
    """
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model, attribute)
    except NotFittedError as e:
        raise NotFittedModelError(
            f"{type(model).__name__} is not fitted; call fit() first") from e


def validate_params(estimator: Any) -> None:
    """Check ``estimator.get_params()`` against its ``_parameter_constraints`` (sklearn).

    Raises
    ------
    ConfigError
        Naming the parameter and the bad value (sklearn's `InvalidParameterError` message).
    """
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        estimator._validate_params()
    except InvalidParameterError as e:
        raise ConfigError(str(e)) from e
