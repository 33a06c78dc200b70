"""Tests for flare_core.models.baselines."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from flare_core.errors import ConfigError, ModelError
from flare_core.models.baselines import (
    ClimatologyForecaster,
    ExtraTreesBaseline,
    KNNBaseline,
    LogisticRegressionBaseline,
    PersistenceForecaster,
    SVMBaseline,
)
from flare_core.models.persistence import load_model, save_model


def _tss(y, pred):
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    return (pred & y).sum() / y.sum() - (pred & ~y).sum() / (~y).sum()


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(2.5 * z[:, 0] + 1.5 * z[:, 1] - 2.5)))
    return z * np.array([1.0, 1e3, 1e22, 1e-3]), y


@pytest.fixture(scope="module")
def data():
    return _synthetic(600, 0), _synthetic(600, 1)


def test_climatology(tmp_path):
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    model = ClimatologyForecaster().fit(np.zeros((8, 2)), y)
    np.testing.assert_array_equal(model.predict_proba(np.zeros((3, 2))), np.full(3, y.mean()))
    save_model(model, tmp_path)
    assert load_model(ClimatologyForecaster, tmp_path).event_rate_ == pytest.approx(0.25)
    with pytest.raises(ModelError, match="not fitted"):
        ClimatologyForecaster().predict_proba(np.zeros((2, 1)))


def test_persistence_on_frame(tmp_path):
    frame = pl.DataFrame(
        {"m_flares_prev_24h": [0, 2, None, 1, 0, 0], "m_within_24h": [0, 1, 0, 0, 1, 0]}
    )
    y = frame["m_within_24h"].cast(pl.Boolean)
    plain = PersistenceForecaster("m_flares_prev_24h").fit(frame, y)
    np.testing.assert_array_equal(plain.predict_proba(frame), [0, 1, 0, 1, 0, 0])
    calibrated = PersistenceForecaster("m_flares_prev_24h", calibrated=True).fit(frame, y)
    # flared rows: labels (1, 0) -> 0.5; quiet rows (null counted as no flare): (0, 0, 1, 0)
    np.testing.assert_allclose(calibrated.predict_proba(frame), [0.25, 0.5, 0.25, 0.5, 0.25, 0.25])
    save_model(calibrated, tmp_path)
    again = load_model(PersistenceForecaster, tmp_path)
    np.testing.assert_array_equal(again.predict_proba(frame), calibrated.predict_proba(frame))
    with pytest.raises(ModelError, match="history column"):
        plain.predict_proba(frame.drop("m_flares_prev_24h"))


def test_persistence_on_array():
    x = np.array([[5.0, 0.0], [1.0, 3.0]])
    model = PersistenceForecaster(1).fit(x, [0, 1])
    np.testing.assert_array_equal(model.predict_proba(x), [0.0, 1.0])
    with pytest.raises(ModelError):
        PersistenceForecaster("name").fit(x, [0, 1])


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegressionBaseline(),
        SVMBaseline(),
        KNNBaseline(n_neighbors=15),
        ExtraTreesBaseline(n_estimators=30),
    ],
    ids=lambda m: type(m).__name__,
)
def test_learners_beat_climatology_and_round_trip(model, data, tmp_path):
    (x, y), (xt, yt) = data
    x = x.copy()
    x[::37, 2] = np.nan  # missing values are imputed, not fatal
    model.fit(x, y)
    p = model.predict_proba(xt)
    assert p.shape == (len(yt),) and np.all((p >= 0) & (p <= 1))
    # Best TSS over thresholds on held-out data: climatology (a constant) scores 0.
    best = max(_tss(yt, p >= t) for t in np.unique(p)[:-1])
    assert best > 0.5
    save_model(model, tmp_path / "m")
    loaded = load_model(type(model), tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(xt), p)
    assert loaded.get_params() == model.get_params()


def test_frame_features_skip_identifiers_and_labels(data):
    (x, y), _ = data
    frame = pl.DataFrame(x, schema=["a__mean", "b__mean", "c__std", "d__max"]).with_columns(
        pl.Series("m_within_24h", y),
        pl.Series("c_within_24h", y),
        pl.lit(7, dtype=pl.Int64).alias("harpnum"),
        pl.lit(1.0).alias("label_m24_source"),
    )
    model = LogisticRegressionBaseline().fit(frame, frame["m_within_24h"])
    assert model.feature_names_in_ == ["a__mean", "b__mean", "c__std", "d__max"]
    chosen = LogisticRegressionBaseline(features=["a__mean", "b__mean"]).fit(frame, y)
    assert chosen.predict_proba(frame).shape == (len(y),)
    with pytest.raises(ModelError, match="label"):
        LogisticRegressionBaseline(features=["a__mean", "c_within_24h"]).fit(frame, y)


def test_bad_inputs(data):
    (x, y), _ = data
    with pytest.raises(ModelError, match="both classes"):
        LogisticRegressionBaseline().fit(x, np.zeros(len(y), dtype=bool))
    with pytest.raises(ModelError, match="0/1"):
        LogisticRegressionBaseline().fit(x, np.where(y, 2, 0))
    with pytest.raises(ModelError, match="shape"):
        LogisticRegressionBaseline().fit(x, y[:-1])
    with pytest.raises(ModelError, match="nulls"):
        ClimatologyForecaster().fit(x[:2], pl.Series("m", [True, None]))
    with pytest.raises(ConfigError):
        KNNBaseline(n_neighbors=0)
    model = KNNBaseline().fit(x, y)
    with pytest.raises(ModelError, match="expected 4 features"):
        model.predict_proba(x[:, :3])
