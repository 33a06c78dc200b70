"""Platt calibration: monotone, better Brier score on inflated forecasts, strict errors."""

from __future__ import annotations

import numpy as np
import pytest

from flare_core import metrics
from flare_core.errors import ConfigError, ModelError
from flare_core.models.calibration import PlattCalibration


def _inflated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC: outcomes drawn from sigmoid(z); forecasts sigmoid(z + 3) (too high)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-3.0, 2.0, size=n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(int)
    return 1.0 / (1.0 + np.exp(-(z + 3.0))), y


def test_recovers_the_shift_and_improves_brier_on_new_data():
    p, y = _inflated(20_000, 0)
    cal = PlattCalibration.fit(p, y)
    assert cal.slope == pytest.approx(1.0, abs=0.1)
    assert cal.intercept == pytest.approx(-3.0, abs=0.25)
    p_new, y_new = _inflated(20_000, 1)
    assert metrics.brier_score(y_new, cal.apply(p_new)) < 0.5 * metrics.brier_score(y_new, p_new)


def test_monotone_so_ranking_and_thresholded_forecasts_are_kept():
    p, y = _inflated(5_000, 2)
    cal = PlattCalibration.fit(p, y)
    q = cal.apply(p)
    assert metrics.roc_auc(y, q) == pytest.approx(metrics.roc_auc(y, p))
    thr = 0.7
    np.testing.assert_array_equal(q >= cal.apply(np.array([thr]))[0], p >= thr)


def test_round_trip_and_nan_passthrough():
    cal = PlattCalibration(0.8, -1.5)
    assert PlattCalibration.from_dict(cal.to_dict()) == cal
    out = cal.apply(np.array([np.nan, 0.0, 1.0, 0.5]))
    assert np.isnan(out[0]) and np.all((out[1:] > 0) & (out[1:] < 1))


def test_errors():
    p = np.array([0.1, 0.2, 0.8, 0.9])
    with pytest.raises(ModelError, match="both classes"):
        PlattCalibration.fit(p, [0, 0, 0, 0])
    with pytest.raises(ModelError, match="backwards"):
        PlattCalibration.fit(p, [1, 1, 0, 0])
    with pytest.raises(ModelError, match="outcomes"):
        PlattCalibration.fit(p, [0, 1])
    with pytest.raises(ConfigError):
        PlattCalibration(0.0, 1.0)
    with pytest.raises(ConfigError):
        PlattCalibration.from_dict({"method": "isotonic"})
