"""Random forest for the class band of a region's next >=M flare (survival paper, Sect. 4).

The forest predicts one of `FLARE_CLASS_BANDS` from the running SHARP statistics (and any other
inputs the caller passes); its prediction becomes a categorical input (an embedding) of the
Cox-Time model (`flare_core.models.cox_time`). Rows used to train the survival model must
receive *out-of-fold* predictions (`out_of_fold_bands`, region-grouped folds) so the survival
model never sees a forecast made from its own labels.

Band of a record (from `flare_core.labels.label_time_to_event` columns):

* ``none`` (0): no >=M flare peaks within ``(t_rec, t_rec + tmax_h]`` (``event = 0`` or the
  time to event exceeds ``tmax_h``);
* ``M1-M4.9`` (1): next flare peak flux in [1e-5, 5e-5) W m^-2;
* ``M5-M9.9`` (2): [5e-5, 1e-4) W m^-2;
* ``X`` (3): >= 1e-4 W m^-2.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..config import check_positive
from ..errors import ConfigError
from ._inputs import check_fitted, validate_params
from .persistence import ModelState, StateLayout

__all__ = [
    "FLARE_CLASS_BANDS",
    "FlareClassForestConfig",
    "FlareClassForest",
    "flare_class_band",
    "out_of_fold_bands",
    "score_flare_class",
]

logger = logging.getLogger(__name__)

#: Band names; the code of a band is its index.
FLARE_CLASS_BANDS: tuple[str, ...] = ("none", "M1-M4.9", "M5-M9.9", "X")
_EDGES_WM2 = (1e-5 * (1 - 1e-9), 5e-5 * (1 - 1e-9), 1e-4 * (1 - 1e-9))
_FORMAT_VERSION = 1


def flare_class_band(next_flare_flux_wm2: np.ndarray, time_to_event_h: np.ndarray,
                     event: np.ndarray, *, tmax_h: float = 144.0) -> np.ndarray:
    """Band code (0..3, see `FLARE_CLASS_BANDS`) of the next >=M flare within ``tmax_h``.

    Parameters
    ----------
    next_flare_flux_wm2 : ndarray of shape (n,)
        Peak flux (W m^-2) of the next >=M flare; NaN/None where there is none.
    time_to_event_h : ndarray of shape (n,)
        Hours from ``t_rec`` to that flare's peak (or to censoring).
    event : ndarray of shape (n,)
        1 when the flare peaks within the label horizon, else 0.
    tmax_h : float
        Horizon in hours.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    check_positive("tmax_h", tmax_h)
    flux = np.asarray(next_flare_flux_wm2, dtype=np.float64)
    tte = np.asarray(time_to_event_h, dtype=np.float64)
    ev = np.asarray(event).astype(bool)
    if not flux.shape == tte.shape == ev.shape:
        raise ConfigError(f"shapes differ: flux {flux.shape}, time {tte.shape}, event {ev.shape}")
    flaring = ev & (tte <= tmax_h)
    if (flaring & ~np.isfinite(flux)).any():
        raise ConfigError(f"{int((flaring & ~np.isfinite(flux)).sum())} event record(s) lack a "
                          "next_flare_flux_wm2")
    band = np.searchsorted(np.asarray(_EDGES_WM2), np.where(flaring, flux, 0.0), side="right")
    if (flaring & (band == 0)).any():
        raise ConfigError("an event record has a next-flare flux below M1 (1e-5 W m^-2)")
    return np.where(flaring, band, 0).astype(np.int64)


@dataclass(frozen=True)
class FlareClassForestConfig:
    """Hyper-parameters of `FlareClassForest`.

    ``class_weight``: None, ``"balanced"`` or ``"balanced_subsample"`` (sklearn). ``n_folds``:
    region-grouped folds of `out_of_fold_bands`. ``n_jobs``: sklearn parallel jobs.
    """

    n_estimators: int = 100
    class_weight: str | None = "balanced"
    max_depth: int | None = None
    min_samples_leaf: int = 1
    n_folds: int = 5
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        check_positive("n_estimators", self.n_estimators)
        check_positive("min_samples_leaf", self.min_samples_leaf)
        if self.max_depth is not None:
            check_positive("max_depth", self.max_depth)
        if not (isinstance(self.n_folds, int) and self.n_folds >= 2):
            raise ConfigError(f"n_folds must be an int >= 2, got {self.n_folds!r}")
        if self.class_weight not in (None, "balanced", "balanced_subsample"):
            raise ConfigError(f"class_weight must be None, 'balanced' or 'balanced_subsample', "
                              f"got {self.class_weight!r}")


def _check_x(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ConfigError(f"x must be 2-D (records, features), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError(f"x has NaN/inf in {int((~np.isfinite(x).all(axis=1)).sum())} record(s);"
                          " fill them first (train_all uses the training means)")
    return x


class FlareClassForest(ClassifierMixin, BaseEstimator):
    """100-tree random forest predicting the next-flare band code (0..3); a sklearn classifier.

    Parameters
    ----------
    config : FlareClassForestConfig
        Stored only; the work happens in `fit`.

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestClassifier
    classes_ : ndarray of int64
        The band codes ``0 .. 3`` (the columns of `predict_proba`).
    n_features_, n_features_in_ : int
    """

    _parameter_constraints: ClassVar[dict] = {"config": [FlareClassForestConfig, None]}

    def __init__(self, config: FlareClassForestConfig | None = None) -> None:
        self.config = config if config is not None else FlareClassForestConfig()

    def _make(self):
        from sklearn.ensemble import RandomForestClassifier

        c = self.config
        return RandomForestClassifier(
            n_estimators=c.n_estimators, class_weight=c.class_weight, max_depth=c.max_depth,
            min_samples_leaf=c.min_samples_leaf, random_state=c.seed, n_jobs=c.n_jobs)

    def fit(self, X: np.ndarray, y: np.ndarray) -> FlareClassForest:  # noqa: N803
        """Fit on inputs ``X`` (n, p) and band codes ``y`` (n,) from `flare_class_band`."""
        validate_params(self)
        x = _check_x(X)
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (x.shape[0],) or ((y < 0) | (y >= len(FLARE_CLASS_BANDS))).any():
            raise ConfigError(f"bands must be ({x.shape[0]},) codes in 0..3")
        self.forest_ = self._make().fit(x, y)
        self.classes_ = np.arange(len(FLARE_CLASS_BANDS), dtype=np.int64)
        self.n_features_ = self.n_features_in_ = x.shape[1]
        return self

    def _check_fitted(self) -> None:
        check_fitted(self, "forest_")

    def _sequential_forest(self) -> Any:
        """The fitted forest predicting in one thread (a shallow copy; the trees are shared).

        With several jobs scikit-learn adds the trees' probabilities in the order the
        threads finish, so the last bits of the mean change from call to call; one job adds
        them in tree order, the same result every time (and what a Dask worker runs)."""
        if getattr(self.forest_, "n_jobs", None) in (None, 1):
            return self.forest_
        forest = copy.copy(self.forest_)
        forest.n_jobs = 1
        return forest

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Band codes (n,), int64."""
        self._check_fitted()
        return self._sequential_forest().predict(_check_x(X)).astype(np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Probabilities (n, 4), columns in `FLARE_CLASS_BANDS` order (0 for unseen bands);
        the same bits on every call (trees added in order, `_sequential_forest`)."""
        self._check_fitted()
        p = self._sequential_forest().predict_proba(_check_x(X))
        out = np.zeros((p.shape[0], len(FLARE_CLASS_BANDS)))
        out[:, self.forest_.classes_.astype(int)] = p
        return out

    state_layout = StateLayout(
        meta_file="model.json", what="flare-class forest directory",
        header={"kind": "flare_class_forest", "format_version": _FORMAT_VERSION},
        sklearn=("forest.skops",))

    def _get_state(self) -> ModelState:
        self._check_fitted()
        meta = {"config": asdict(self.config), "n_features": self.n_features_,
                "bands": list(FLARE_CLASS_BANDS)}
        return ModelState(meta=meta, sklearn={"forest.skops": self.forest_})

    @classmethod
    def _from_state(cls, state: ModelState) -> FlareClassForest:
        self = cls(FlareClassForestConfig(**state.meta["config"]))
        self.forest_ = state.sklearn["forest.skops"]
        self.classes_ = np.arange(len(FLARE_CLASS_BANDS), dtype=np.int64)
        self.n_features_ = self.n_features_in_ = int(state.meta["n_features"])
        return self



def out_of_fold_bands(x: np.ndarray, bands: np.ndarray, groups: np.ndarray,
                      config: FlareClassForestConfig | None = None) -> np.ndarray:
    """Out-of-fold band predictions with region-grouped folds (`sklearn.model_selection.GroupKFold`).

    Each record is predicted by a forest trained on the other folds, i.e. on *other regions*,
    so a survival model trained on these predictions never sees a forecast made from its own
    labels.

    Parameters
    ----------
    x : ndarray of shape (n, p)
    bands : ndarray of shape (n,)
        Band codes of `flare_class_band`.
    groups : ndarray of shape (n,)
        Region (harpnum) of each record.
    config : FlareClassForestConfig, optional

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    from sklearn.model_selection import GroupKFold, cross_val_predict

    config = config if config is not None else FlareClassForestConfig()
    x = _check_x(x)
    y = np.asarray(bands, dtype=np.int64)
    groups = np.asarray(groups)
    n_groups = np.unique(groups).size
    if n_groups < config.n_folds:
        raise ConfigError(f"out_of_fold_bands needs >= n_folds={config.n_folds} regions, "
                          f"got {n_groups}")
    oof = cross_val_predict(FlareClassForest(config), x, y, groups=groups,
                            cv=GroupKFold(n_splits=config.n_folds))
    return np.asarray(oof, dtype=np.int64)


def score_flare_class(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Macro and weighted F1 of band predictions (the paper reports F1 = 0.85).

    Returns ``{"macro_f1", "weighted_f1", "accuracy"}``; use on records of regions the forest
    was not trained on.
    """
    from sklearn.metrics import accuracy_score, f1_score

    kw = {"zero_division": 0}  # averages over the bands present in y_true or y_pred
    return {"macro_f1": float(f1_score(y_true, y_pred, average="macro", **kw)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", **kw)),
            "accuracy": float(accuracy_score(y_true, y_pred))}
