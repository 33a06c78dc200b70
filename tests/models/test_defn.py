"""Tests for flare_core.models.defn (Deep Flare Net) on synthetic and real data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from flare_core.errors import ConfigError, ModelError
from flare_core.models.defn import DeepFlareNet, DeFNConfig, DeFNNetwork, default_class_weight
from flare_core.models.persistence import load_model, save_model

# The paper uses hidden=200; the tests stay small and fast.
FAST = DeFNConfig(hidden=64, max_epochs=8, seed=3)


def _synthetic(n: int, seed: int, n_features: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Rare events (~8 %) driven by two of the features, on very different scales."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_features))
    logit = 2.0 * z[:, 0] + 1.5 * z[:, 1] - 4.0
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    x = z * np.logspace(0, 20, n_features)  # SHARP-like scales (1 .. 1e20)
    return x, y


def _tss(y, pred):
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    return (pred & y).sum() / y.sum() - (pred & ~y).sum() / (~y).sum()


@pytest.fixture(scope="module")
def data():
    return _synthetic(1500, 0), _synthetic(600, 1), _synthetic(1500, 2)


@pytest.fixture(scope="module")
def fitted(data):
    (x, y), (xv, yv), _ = data
    return DeepFlareNet("M", config=FAST).fit(x, y, X_val=xv, y_val=yv)


def test_network_layout():
    net = DeFNNetwork(7, 200)
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [200, 200, 7, 200, 200, 7, 200, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules()) == 7
    net.eval()
    assert net(torch.zeros(3, 7)).shape == (3, 2)


def test_default_weights_and_label_column():
    assert default_class_weight("M") == (1.0, 50.0)
    assert default_class_weight("C") == (1.0, 4.0)
    assert DeepFlareNet("C").class_weight == (1.0, 4.0)
    assert DeepFlareNet("M", config=DeFNConfig(class_weight=(1, 9))).class_weight == (1.0, 9.0)
    assert DeepFlareNet("C").label_column == "c_within_24h"
    with pytest.raises(ConfigError):
        DeepFlareNet("X").label_column  # noqa: B018


@pytest.mark.parametrize(
    "kwargs",
    [{"hidden": 0}, {"batch_size": 1}, {"learning_rate": -1.0}, {"class_weight": (1.0,)},
     {"threshold": 1.0}, {"max_epochs": 2.5}, {"epoch_score": "auc"},
     {"weight_average_decay": 1.0}, {"weight_average_decay": 0.0}, {"dropout": 1.0},
     {"input_noise": -0.1}, {"input_noise": float("nan")}],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        DeFNConfig(**kwargs)


def test_learns_and_beats_constant(fitted, data):
    _, _, (xt, yt) = data
    p = fitted.predict_proba(xt)
    assert p.shape == (len(yt),) and np.all((p >= 0) & (p <= 1))
    # A constant forecast has TSS 0; the Bayes-optimal rule on this data is far above it.
    assert _tss(yt, p >= 0.5) > 0.5


def test_epoch_kept_is_best_validation_tss(fitted):
    tss = [h["val_tss"] for h in fitted.history_]
    assert len(tss) == FAST.max_epochs
    assert fitted.best_epoch_ == int(np.argmax(tss)) + 1
    assert fitted.best_val_tss_ == pytest.approx(max(tss))


def test_kept_weights_reproduce_validation_tss(fitted, data):
    _, (xv, yv), _ = data
    assert _tss(yv, fitted.predict(xv)) == pytest.approx(fitted.best_val_tss_)


def test_reproducible(data):
    (x, y), (xv, yv), (xt, _) = data
    cfg = DeFNConfig(hidden=32, max_epochs=2, seed=5)
    p1, p2 = (DeepFlareNet("M", config=cfg).fit(x, y, X_val=xv, y_val=yv).predict_proba(xt)
              for _ in range(2))
    np.testing.assert_array_equal(p1, p2)
    other = DeepFlareNet("M", config=DeFNConfig(hidden=32, max_epochs=2, seed=6))
    assert not np.array_equal(other.fit(x, y, X_val=xv, y_val=yv).predict_proba(xt), p1)


def test_best_tss_epoch_score_is_threshold_free_validation_tss(data):
    from flare_core.metrics import best_tss_threshold

    (x, y), (xv, yv), _ = data
    cfg = DeFNConfig(hidden=32, max_epochs=3, seed=0, epoch_score="best_tss")
    model = DeepFlareNet("M", config=cfg).fit(x, y, X_val=xv, y_val=yv)
    tss = [h["val_tss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(tss)) + 1
    # the kept weights give that TSS at their own best threshold, which is >= the TSS at 0.5
    _, best = best_tss_threshold(yv, model.predict_proba(xv))
    assert best == pytest.approx(model.best_val_tss_)
    assert best >= _tss(yv, model.predict(xv))


def test_weight_average_keeps_averaged_weights_that_round_trip(data, tmp_path):
    (x, y), (xv, yv), (xt, _) = data
    cfg = DeFNConfig(hidden=32, max_epochs=3, seed=0, weight_average_decay=0.9, dropout=0.1)
    model = DeepFlareNet("M", config=cfg).fit(x, y, X_val=xv, y_val=yv)
    raw = DeepFlareNet("M", config=DeFNConfig(hidden=32, max_epochs=3, seed=0, dropout=0.1))
    raw.fit(x, y, X_val=xv, y_val=yv)
    # same seed and batches: only the averaging differs, so the kept networks differ
    assert not np.allclose(model.predict_proba(xt), raw.predict_proba(xt))
    assert _tss(yv, model.predict(xv)) == pytest.approx(model.best_val_tss_)
    loaded = load_model(DeepFlareNet, save_model(model, tmp_path / "ema"))
    np.testing.assert_array_equal(loaded.predict_proba(xt), model.predict_proba(xt))


def test_input_noise_is_seeded_and_changes_training(data):
    (x, y), (xv, yv), (xt, _) = data

    def fit(noise: float) -> np.ndarray:
        cfg = DeFNConfig(hidden=32, max_epochs=5, seed=3, input_noise=noise)
        return DeepFlareNet("M", config=cfg).fit(x, y, X_val=xv, y_val=yv).predict_proba(xt)

    quiet, noisy = fit(0.0), fit(1.0)
    np.testing.assert_array_equal(noisy, fit(1.0))  # the noise comes from the seeded generator
    assert not np.allclose(noisy, quiet)
    from flare_core.metrics import roc_auc

    assert roc_auc(data[2][1], noisy) > 0.75  # still learns the rule (0.82; 0.84 without noise)


def test_scaler_fitted_on_training_only(fitted, data):
    (x, _), _, _ = data
    scaler = fitted.scaler_[-1]
    np.testing.assert_allclose(scaler.mean_, x.mean(axis=0))


def test_patience_stops_early(data):
    (x, y), (xv, yv), _ = data
    cfg = DeFNConfig(hidden=32, max_epochs=30, patience=2, seed=0)
    model = DeepFlareNet("M", config=cfg).fit(x, y, X_val=xv, y_val=yv)
    assert len(model.history_) <= model.best_epoch_ + 2


def test_save_load_round_trip(fitted, data, tmp_path):
    _, _, (xt, _) = data
    save_model(fitted, tmp_path / "defn")
    assert {p.name for p in (tmp_path / "defn").iterdir()} == {
        "network.pt", "scaler.skops", "meta.json"
    }
    loaded = load_model(DeepFlareNet, tmp_path / "defn")
    np.testing.assert_array_equal(loaded.predict_proba(xt), fitted.predict_proba(xt))
    assert loaded.config == fitted.config and loaded.best_epoch_ == fitted.best_epoch_


def test_load_refuses_other_class(tmp_path):
    from flare_core.models.baselines import ClimatologyForecaster

    save_model(ClimatologyForecaster().fit(np.zeros((4, 1)), [0, 1, 0, 0]), tmp_path)
    with pytest.raises(ModelError, match="ClimatologyForecaster"):
        load_model(DeepFlareNet, tmp_path)


def test_frame_input_excludes_labels_and_imputes(data):
    (x, y), (xv, yv), _ = data
    cols = [f"kw{i}__mean" for i in range(x.shape[1])]

    def frame(a, lab):
        df = pl.DataFrame(a, schema=cols).with_columns(
            pl.Series("m_within_24h", lab), pl.lit(1).alias("harpnum")
        )
        return df

    train = frame(x, y).with_columns(
        pl.when(pl.int_range(pl.len()) % 50 == 0).then(None).otherwise(pl.col("kw0__mean"))
        .alias("kw0__mean")
    )
    model = DeepFlareNet("M", config=DeFNConfig(hidden=32, max_epochs=2)).fit(
        train, train["m_within_24h"], X_val=frame(xv, yv), y_val=frame(xv, yv)["m_within_24h"]
    )
    assert model.feature_names_in_ == cols
    p = model.predict_proba(frame(xv, yv).select(reversed(cols)))  # column order irrelevant
    assert np.isfinite(p).all()
    with pytest.raises(ModelError, match="missing"):
        model.predict_proba(frame(xv, yv).drop("kw3__mean"))


def test_errors(data):
    (x, y), (xv, yv), _ = data
    with pytest.raises(ModelError, match="not fitted"):
        DeepFlareNet().predict_proba(x)
    with pytest.raises(ModelError, match="both classes"):
        DeepFlareNet(config=FAST).fit(x, y, X_val=xv, y_val=np.zeros_like(yv))
    with pytest.raises(ModelError, match="features"):
        DeepFlareNet(config=FAST).fit(x, y, X_val=xv[:, :3], y_val=yv)


# ------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def real_split(data_dir):
    """sun2022 fold 0 + NCEI GOES flares -> dataset; region-disjoint fit/validation/test."""
    from flare_core.dataset import DatasetColumns, build_dataset
    from flare_core.sources.files import read_ncei_goes_flares, read_sun2022
    from flare_core.sources.harp_noaa import attach_harpnum, read_harp_noaa_map
    from flare_core.splits import region_kfold

    sharp = read_sun2022(data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz")
    flares = attach_harpnum(
        read_ncei_goes_flares(
            data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
        ),
        read_harp_noaa_map(data_dir / "harp_noaa" / "all_harps_with_noaa_ars.txt"),
    )
    ds = build_dataset(sharp, flares)
    rest_idx, test_idx = region_kfold(ds, n_splits=3, stratify="m_within_24h", seed=0)[0]
    rest, test = ds[rest_idx], ds[test_idx]
    fit_idx, val_idx = region_kfold(rest, n_splits=4, stratify="m_within_24h", seed=0)[0]
    fit, val = rest[fit_idx], rest[val_idx]
    # a thinned training set keeps the test fast: every 2nd record of each region
    fit = fit.filter(pl.int_range(pl.len()).over("harpnum") % 2 == 0)
    return fit, val, test, DatasetColumns.of(ds).inputs


def test_real_data_beats_constant_on_held_out_regions(real_split):
    from flare_core.metrics import roc_auc, true_skill_statistic

    fit, val, test, inputs = real_split
    assert not set(fit["harpnum"]) & set(test["harpnum"])
    assert not set(val["harpnum"]) & set(test["harpnum"])
    cfg = DeFNConfig(hidden=32, max_epochs=4, seed=0)
    model = DeepFlareNet("M", config=cfg, features=inputs).fit(
        fit, fit["m_within_24h"], X_val=val, y_val=val["m_within_24h"]
    )
    y = test["m_within_24h"].to_numpy()
    p = model.predict_proba(test)
    # Any constant forecast has TSS 0 and ROC AUC 0.5 on these held-out regions.
    assert true_skill_statistic(y, p >= 0.5) > 0.4
    assert roc_auc(y, p) > 0.8


def test_member_ensemble_averages_seeded_members_and_round_trips(data, tmp_path):
    (x, y), (xv, yv), (xt, _) = data
    cfg = DeFNConfig(hidden=32, max_epochs=3, seed=5, n_members=2)
    model = DeepFlareNet("M", config=cfg).fit(x, y, X_val=xv, y_val=yv)
    singles = [
        DeepFlareNet("M", config=DeFNConfig(hidden=32, max_epochs=3, seed=s)).fit(
            x, y, X_val=xv, y_val=yv)
        for s in (5, 6)
    ]
    mean_p = np.mean([m.predict_proba(xt) for m in singles], axis=0)
    np.testing.assert_allclose(model.predict_proba(xt), mean_p, rtol=1e-5, atol=1e-6)
    save_model(model, tmp_path / "ens")
    loaded = load_model(DeepFlareNet, tmp_path / "ens")
    np.testing.assert_array_equal(loaded.predict_proba(xt), model.predict_proba(xt))
    with pytest.raises(ConfigError, match="n_members"):
        DeFNConfig(n_members=0)


def test_prediction_in_chunks_equals_one_pass(fitted, data, monkeypatch):
    from flare_core.models import defn

    _, _, (x, _) = data
    whole = fitted.predict_proba(x)
    monkeypatch.setattr(defn, "_PREDICT_CHUNK", 400)  # 1500 rows: 4 parts of 375
    np.testing.assert_allclose(fitted.predict_proba(x), whole, rtol=1e-6, atol=1e-7)
