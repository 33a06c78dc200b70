"""Platt scaling: a monotone map from a forecaster's probabilities to calibrated ones.

Class-weighted training (DeFN's 1:50, logistic regression's "balanced" weights) ranks
records well but inflates the event probabilities: a forecast of 0.9 may verify one time in
five. `PlattCalibration` fits ``P_cal = sigmoid(slope * logit(p) + intercept)`` by maximum
likelihood on held-out (validation) forecasts (Platt 1999; Niculescu-Mizil & Caruana 2005).
With ``slope > 0`` the map is strictly increasing, so ranking scores (ROC AUC) are unchanged
and a decision threshold moved through the map gives the same yes/no forecasts; only the
probability values (Brier score, reliability) change.

Fit it on data the forecaster was not trained on, and never on the test set.

Examples
--------
>>> import numpy as np
>>> p = np.array([0.1, 0.2, 0.6, 0.9, 0.95, 0.99])
>>> y = np.array([0, 0, 0, 0, 1, 1])
>>> cal = PlattCalibration.fit(p, y)
>>> bool(np.all(np.diff(cal.apply(p)) > 0))  # same order
True
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np

from ..errors import ConfigError, ModelError

__all__ = ["PlattCalibration", "calibrate_on_validation"]

logger = logging.getLogger(__name__)

_EPS = 1e-7


def _logit(p: Any) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


@dataclass(frozen=True)
class PlattCalibration:
    """``P_cal = sigmoid(slope * logit(p) + intercept)``; ``slope`` must be positive.

    Parameters
    ----------
    slope, intercept : float
        Coefficients on the logit scale (``slope = 1, intercept = 0`` is the identity).
    """

    slope: float
    intercept: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.slope) and np.isfinite(self.intercept)):
            raise ConfigError(f"calibration coefficients must be finite, got {self!r}")
        if self.slope <= 0:
            raise ConfigError(f"calibration slope must be > 0 (monotone map), got {self.slope!r}")

    @classmethod
    def fit(cls, p: Any, y: Any) -> Self:
        """Maximum-likelihood coefficients for forecasts ``p`` and 0/1 outcomes ``y``.

        Raises
        ------
        ModelError
            If ``y`` holds one class only, the inputs are not finite, or the fitted slope is
            not positive (the forecasts rank the held-out outcomes backwards: calibrating
            would invert them).
        """
        from sklearn.linear_model import LogisticRegression

        z = _logit(p).reshape(-1, 1)
        y_arr = np.asarray(y).astype(np.int8).ravel()
        if z.shape[0] != y_arr.size:
            raise ModelError(f"calibration: {z.shape[0]} forecasts but {y_arr.size} outcomes")
        if not np.isfinite(z).all():
            raise ModelError("calibration: forecasts must be finite probabilities")
        if np.unique(y_arr).size < 2:
            raise ModelError("calibration needs outcomes of both classes")
        # nearly unpenalised (two coefficients on thousands of records need no shrinkage); the
        # tiny penalty keeps the slope finite when held-out forecasts separate the classes
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(z, y_arr)
        slope, intercept = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if slope <= 0:
            raise ModelError(
                f"calibration slope {slope:.3g} <= 0: the forecasts rank the held-out "
                "outcomes backwards")
        return cls(slope, intercept)

    def apply(self, p: Any) -> np.ndarray:
        """Calibrated probabilities, same shape as ``p`` (float64); NaN stays NaN."""
        p_arr = np.asarray(p, dtype=np.float64)
        out = 1.0 / (1.0 + np.exp(-(self.slope * _logit(p_arr) + self.intercept)))
        return np.where(np.isnan(p_arr), np.nan, out)

    def to_dict(self) -> dict[str, float]:
        """JSON-ready ``{"method": "platt", "slope": ..., "intercept": ...}``."""
        return {"method": "platt", **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Read `to_dict` output; other methods raise `ConfigError`."""
        if values.get("method") != "platt":
            raise ConfigError(f"unknown calibration method {values.get('method')!r}")
        return cls(float(values["slope"]), float(values["intercept"]))


def calibrate_on_validation(name: str, raw: np.ndarray, y_val: np.ndarray,
                             entry: dict[str, Any]) -> np.ndarray:
    """Fit Platt scaling of ``raw`` on the validation labels; record it in ``entry``.

    Returns the calibrated values; on a failed fit (one class, backwards ranking) ``raw``
    unchanged, with the reason logged and recorded.
    """
    try:
        calibration = PlattCalibration.fit(raw, y_val)
    except ModelError as e:
        logger.warning("%s: probabilities left uncalibrated: %s", name, e)
        entry["calibration"] = None
        entry["calibration_error"] = str(e)
        return raw
    entry["calibration"] = calibration.to_dict()
    logger.info("%s: Platt calibration on %d validation records: slope %.3f, intercept %.3f",
                name, raw.size, calibration.slope, calibration.intercept)
    return calibration.apply(raw)
