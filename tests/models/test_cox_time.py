"""Cox-Time: hours API, reproducibility, persistence, and an end-to-end run on real sun2022 rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from flare_core.errors import ConfigError, ModelError
from flare_core.models.cox_time import (
    CoxTimeConfig,
    CoxTimeModel,
    SurvivalArrays,
)
from flare_core.models.persistence import load_model, save_model
from flare_core.splits import region_kfold

TINY = dict(epochs=3, n_hidden=2, hidden_nodes=8, batch_size=64, mu0_sample=100, device="cpu",
            grid_step_h=6.0)


def _synthetic(n=400, seed=0):
    """SYNTHETIC records (not real data): hazard rises with x0 and with the category."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x_cat = rng.integers(0, 3, size=(n, 1))
    d = rng.exponential(60.0 / np.exp(1.0 * x[:, 0] + 0.3 * x_cat[:, 0]))
    ev = (d <= 144).astype(int)
    return x, x_cat, np.minimum(d, 144.0), ev, rng.integers(0, 40, size=n)


def _region_split(harpnum: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) record indices: one of 5 region folds (`flare_core.splits`)."""
    return region_kfold(pl.DataFrame({"harpnum": harpnum}), n_splits=5, seed=seed)[0]


@pytest.fixture(scope="module")
def fitted():
    x, xc, d, ev, harp = _synthetic()
    tr, va = _region_split(harp, seed=0)
    model = CoxTimeModel(CoxTimeConfig(**TINY)).fit(
        SurvivalArrays(x[tr], d[tr], ev[tr], xc[tr]),
        validation=SurvivalArrays(x[va], d[va], ev[va], xc[va]))
    return model, (x, xc, d, ev, harp)


def test_predictions_in_hours(fitted):
    model, (x, xc, *_rest) = fitted
    grid, surv = model.predict_survival(x[:20], xc[:20])
    assert grid[0] == 0 and grid[-1] == 144.0 and surv.shape == (20, grid.size)
    assert np.all(surv[:, 0] == 1.0) and np.all(np.diff(surv, axis=1) <= 1e-12)
    p24 = model.predict_event_probability(x[:20], xc[:20], horizon_h=24.0)
    np.testing.assert_allclose(p24, 1 - surv[:, grid == 24.0][:, 0])
    mu = model.predict_mean_lifetime(x[:20], xc[:20])
    assert np.all((mu >= 0) & (mu <= 144.0))
    # grid values bracket the exact step integral (S is non-increasing)
    step = 6.0
    assert np.all(mu <= surv[:, :-1].sum(axis=1) * step + 1e-9)
    assert np.all(mu >= surv[:, 1:].sum(axis=1) * step - 1e-9)
    np.testing.assert_allclose(model.predict_mean_lifetime(x[:20], xc[:20], corrected=True),
                               mu - model.mu0_h_)
    assert len(model.history_["val_loss"]) == len(model.history_["train_loss"]) == 3


def test_same_seed_same_predictions_and_save_load(fitted, tmp_path):
    model, (x, xc, d, ev, harp) = fitted
    tr, va = _region_split(harp, seed=0)
    again = CoxTimeModel(CoxTimeConfig(**TINY)).fit(
        SurvivalArrays(x[tr], d[tr], ev[tr], xc[tr]),
        validation=SurvivalArrays(x[va], d[va], ev[va], xc[va]))
    np.testing.assert_array_equal(again.predict_survival(x, xc)[1], model.predict_survival(x, xc)[1])
    save_model(model, tmp_path / "ct")
    loaded = load_model(CoxTimeModel, tmp_path / "ct")
    np.testing.assert_allclose(loaded.predict_survival(x, xc)[1], model.predict_survival(x, xc)[1],
                               atol=1e-12)
    assert loaded.mu0_h_ == model.mu0_h_


def test_learns_the_risk_ordering():
    x, xc, d, ev, harp = _synthetic(n=800, seed=1)
    cfg = CoxTimeConfig(**{**TINY, "epochs": 15, "time_layer": 1})
    model = CoxTimeModel(cfg).fit(SurvivalArrays(x[:600], d[:600], ev[:600], xc[:600]))
    mu = model.predict_mean_lifetime(x[600:], xc[600:])
    # the true hazard rises with x0: held-out mean lifetimes must fall with it
    assert np.corrcoef(mu, x[600:, 0])[0, 1] < -0.5


def test_input_noise_only_in_training_and_seeded():
    x, xc, d, ev, harp = _synthetic(n=800, seed=1)
    cfg = CoxTimeConfig(**{**TINY, "epochs": 15, "time_layer": 1, "input_noise": 0.5})
    fit = SurvivalArrays(x[:600], d[:600], ev[:600], xc[:600])
    model = CoxTimeModel(cfg).fit(fit)
    quiet = CoxTimeModel(CoxTimeConfig(**{**TINY, "epochs": 15, "time_layer": 1})).fit(fit)
    mu = model.predict_mean_lifetime(x[600:], xc[600:])
    # eval mode: no noise, so predictions repeat; the seeded fit repeats too
    np.testing.assert_array_equal(mu, model.predict_mean_lifetime(x[600:], xc[600:]))
    np.testing.assert_array_equal(mu, CoxTimeModel(cfg).fit(fit).predict_mean_lifetime(
        x[600:], xc[600:]))
    assert not np.allclose(mu, quiet.predict_mean_lifetime(x[600:], xc[600:]))
    assert np.corrcoef(mu, x[600:, 0])[0, 1] < -0.5
    with pytest.raises(ConfigError, match="input_noise"):
        CoxTimeConfig(input_noise=-1.0)


def test_errors(fitted):
    model, (x, xc, *_r) = fitted
    with pytest.raises(ModelError):
        CoxTimeModel().predict_survival(x, xc)
    with pytest.raises(ConfigError):
        model.predict_survival(np.full((1, 3), np.nan), xc[:1])
    with pytest.raises(ConfigError):
        model.predict_event_probability(x, xc, horizon_h=200.0)
    with pytest.raises(ConfigError):
        CoxTimeConfig(time_layer=6)
    with pytest.raises(ConfigError):
        CoxTimeModel(CoxTimeConfig(**TINY)).fit(
            SurvivalArrays(x[:5], np.ones(5), np.zeros(5), xc[:5]))


def test_end_to_end_real_sun2022_slice(data_dir):
    """Real data: one sun2022 fold slice -> build_dataset -> forest (OOF) -> Cox-Time."""
    from flare_core.dataset import DatasetColumns, build_dataset
    from flare_core.models.flare_class import flare_class_band, out_of_fold_bands
    from flare_core.sources.files import read_ncei_goes_flares, read_sun2022
    from flare_core.sources.harp_noaa import attach_harpnum, read_harp_noaa_map

    sharp = read_sun2022(data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz")
    harps = sharp["harpnum"].unique().sort()[:60]
    sharp = sharp.filter(pl.col("harpnum").is_in(harps.implode()))
    flares = attach_harpnum(
        read_ncei_goes_flares(data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"),
        read_harp_noaa_map(data_dir / "harp_noaa" / "all_harps_with_noaa_ars.txt"))
    ds = build_dataset(sharp, flares)
    feats = [c for c in DatasetColumns.of(ds).features
             if ds[c].null_count() < 0.1 * ds.height and ds[c].dtype.is_numeric()]
    ds = ds.drop_nulls(feats).filter(pl.all_horizontal(pl.col(feats).is_finite()))
    assert len(feats) >= 4 and ds.height > 500 and ds["event"].sum() > 0
    x = ds.select(feats).to_numpy()
    band = flare_class_band(ds["next_flare_flux_wm2"].to_numpy(), ds["time_to_event_h"].to_numpy(),
                            ds["event"].to_numpy())
    from flare_core.models.flare_class import FlareClassForestConfig
    oof = out_of_fold_bands(x, band, ds["harpnum"].to_numpy(),
                            FlareClassForestConfig(n_estimators=20, n_folds=3))
    tr, va = _region_split(ds["harpnum"].to_numpy(), seed=0)
    d, ev = ds["time_to_event_h"].to_numpy(), ds["event"].to_numpy()
    model = CoxTimeModel(CoxTimeConfig(**TINY)).fit(
        SurvivalArrays(x[tr], d[tr], ev[tr], oof[tr]),
        validation=SurvivalArrays(x[va], d[va], ev[va], oof[va]) if ev[va].sum() else None)
    p = model.predict_event_probability(x[va], oof[va], horizon_h=24.0)
    assert p.shape == (va.size,) and np.all((p >= 0) & (p <= 1))


def test_inputs_far_outside_training_are_clipped(fitted):
    """A record 1000 standard deviations out predicts as one at input_clip (no extrapolation)."""
    model, (x, xc, *_r) = fitted
    clip = model.config.input_clip
    assert clip == 5.0
    far = x[:3].copy()
    far[:, 0] = model.x_mean_[0] + 1000.0 * model.x_scale_[0]
    edge = far.copy()
    edge[:, 0] = model.x_mean_[0] + clip * model.x_scale_[0]
    np.testing.assert_allclose(model.predict_survival(far, xc[:3])[1],
                               model.predict_survival(edge, xc[:3])[1], rtol=1e-6)
    with pytest.raises(ConfigError, match="input_clip"):
        CoxTimeConfig(input_clip=0.0)
