"""Tests of flare_core.forecasting: loading, per-record predictions, forecast_at (no look-ahead)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flare_core.errors import DataGapError, ModelError
from flare_core.forecasting import PREDICTION_COLUMNS, ModelBundle, forecast_at, predict_records
from flare_core.training import ALL_MODELS, TrainConfig, build_model_dataset, read_inputs, train_all

MODELS = ALL_MODELS  # every model, with the tiny TrainConfig.quick() settings


@pytest.fixture(scope="module")
def inputs(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SHARP records of 30 regions of sun2022 fold 1 and the NCEI flare list (HARPs attached)."""
    sharp, flares = read_inputs(
        [data_dir / "sharp" / "sun2022_sharp_m24h_fold1.csv.gz"],
        [data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"],
    )
    flaring = flares.filter(pl.col("goes_class").str.starts_with("M"))["harpnum"].unique()
    regions = sharp["harpnum"].unique().sort()
    keep = (regions.filter(regions.is_in(flaring.implode())).head(10).to_list()
            + regions.filter(~regions.is_in(flaring.implode())).head(20).to_list())
    return sharp.filter(pl.col("harpnum").is_in(keep)), flares


@pytest.fixture(scope="module")
def model_dir(inputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sharp, flares = inputs
    cfg = TrainConfig.quick(models=MODELS)
    ds = build_model_dataset(sharp, flares, cfg)
    return train_all(ds, tmp_path_factory.mktemp("model"), cfg)


@pytest.fixture(scope="module")
def bundle(model_dir: Path) -> ModelBundle:
    return ModelBundle.load(model_dir)


def test_load_refuses_other_format(model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["format_version"] = 999
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format"):
        ModelBundle.load(copy)
    with pytest.raises(ModelError):
        ModelBundle.load(tmp_path / "absent")


def test_predict_records_one_row_per_record_without_labels(bundle: ModelBundle, inputs) -> None:
    sharp, flares = inputs
    ds = build_model_dataset(sharp, flares, bundle.config, with_labels=False)
    assert "m_within_24h" not in ds.columns
    preds = predict_records(bundle, ds)
    assert preds.height == ds.height
    assert preds.select("harpnum", "t_rec").equals(ds.select("harpnum", "t_rec"))
    assert preds.columns[:2 + len(PREDICTION_COLUMNS)] == ["harpnum", "t_rec",
                                                           *PREDICTION_COLUMNS]
    for col in ("p_m24_survival", "p_m24_defn", "p_c24_defn", "p_m24_logistic",
                "p_m24_persistence", "p_m24_lstm", "p_x24_survival"):
        p = preds[col].to_numpy()
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all(), col
        if col == "p_x24_survival":  # zero when the training slice has no X flare
            continue
        # a real forecast, not a constant (persistence has exactly two values)
        assert preds[col].n_unique() >= (2 if col == "p_m24_persistence" else 10), col
    assert (preds["p_x24_survival"] <= preds["p_m24_survival"] + 1e-12).all()
    life = preds["mean_lifetime_h"].to_numpy()
    assert ((life >= 0) & (life <= bundle.config.tmax_h)).all()
    # survival curves: S(0) = 1, non-increasing, and p_m24 = 1 - S(24 h)
    grid = np.asarray(preds["survival_grid_h"][0])
    curves = np.vstack(preds["survival_curve"].to_list())
    assert grid[0] == 0 and (curves[:, 0] == 1).all()
    assert (np.diff(curves, axis=1) <= 1e-12).all()
    np.testing.assert_allclose(1 - curves[:, list(grid).index(24.0)],
                               preds["p_m24_survival"].to_numpy())
    # the warning is defined wherever the lifetime window holds >= 2 records
    assert preds["warning_24h"].null_count() < preds.height // 5
    # input order is kept, also for the sequence model
    shuffled = ds.sample(fraction=1.0, shuffle=True, seed=3)
    again = predict_records(bundle, shuffled)
    back = again.join(preds.select("harpnum", "t_rec", pl.col("p_m24_lstm").alias("ref"),
                                   pl.col("p_m24_survival").alias("ref_s")),
                      on=["harpnum", "t_rec"])
    np.testing.assert_allclose(back["p_m24_lstm"].to_numpy(), back["ref"].to_numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(back["p_m24_survival"].to_numpy(), back["ref_s"].to_numpy(),
                               rtol=1e-6)


def test_loaded_bundle_predicts_like_a_fresh_fit(bundle: ModelBundle, inputs,
                                                 tmp_path: Path) -> None:
    """Same seed, same data -> same models (reproducible), and save/load is lossless."""
    sharp, flares = inputs
    cfg = bundle.config
    ds = build_model_dataset(sharp, flares, cfg)
    again = ModelBundle.load(train_all(ds, tmp_path / "again", cfg))
    a, b = predict_records(bundle, ds), predict_records(again, ds)
    for col in ("p_m24_defn", "p_c24_defn", "p_m24_logistic", "p_m24_survival",
                "p_m24_lstm", "mean_lifetime_h"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-5, err_msg=col)


def test_forecast_at_uses_no_later_data(bundle: ModelBundle, inputs) -> None:
    sharp, flares = inputs
    # an issue time inside a flaring region's track, with records after it
    issue = sharp.filter(pl.col("harpnum") == sharp["harpnum"].min())["t_rec"].sort()[40]
    issue = issue + timedelta(minutes=30)
    truncated = forecast_at(bundle, sharp.filter(pl.col("t_rec") <= issue),
                            flares.filter(pl.col("peak_time") < issue), issue)
    full = forecast_at(bundle, sharp, flares, issue)
    assert truncated.height > 0
    assert full.equals(truncated)
    # the result changes when the (past) inputs change, so the check above is not vacuous
    later = forecast_at(bundle, sharp, flares, issue + timedelta(hours=3))
    assert not later.select("p_m24").equals(full.select("p_m24"))


def test_forecast_at_rows_follow_forecast_store_schema(bundle: ModelBundle, inputs,
                                                       tmp_path: Path) -> None:
    from flare_core.publish.forecast_store import FORECAST_SCHEMA, ForecastStore

    sharp, flares = inputs
    issue = sharp["t_rec"].sort()[sharp.height // 2] + timedelta(minutes=5)
    rows = forecast_at(bundle, sharp, flares, issue)
    assert dict(rows.schema) == FORECAST_SCHEMA
    assert (rows["issue_time"] == issue).all()
    assert ((issue - rows["t_rec"]) <= timedelta(hours=bundle.config.freshness_h)).all()
    assert set(rows["model"]) == {"survival", "defn", "lstm", "logistic", "persistence",
                                  "climatology"}
    defn = rows.filter(pl.col("model") == "defn")
    assert (defn["p_c24"] >= defn["p_m24"]).all()
    surv = rows.filter(pl.col("model") == "survival")
    assert surv["survival_curve"].null_count() == 0 and surv["mean_lifetime_h"].is_not_null().all()
    assert surv["warning_class"].is_in(["M"]).sum() + surv["warning_class"].null_count() == \
        surv.height
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(rows)
    assert store.read().height == rows.height


def test_forecast_at_without_fresh_data_raises(bundle: ModelBundle, inputs) -> None:
    sharp, flares = inputs
    before_all = sharp["t_rec"].min() - timedelta(days=30)
    with pytest.raises(DataGapError):
        forecast_at(bundle, sharp, flares, before_all)


def test_predict_records_ignores_later_inputs(bundle: ModelBundle, inputs) -> None:
    """A record's forecast is the same whether or not the data after it are present."""
    sharp, flares = inputs
    cut = sharp["t_rec"].sort()[sharp.height // 2]
    full = build_model_dataset(sharp, flares, bundle.config, with_labels=False)
    part = build_model_dataset(sharp.filter(pl.col("t_rec") <= cut),
                               flares.filter(pl.col("peak_time") <= cut), bundle.config,
                               with_labels=False)
    a = predict_records(bundle, full).filter(pl.col("t_rec") <= cut)
    b = predict_records(bundle, part)
    assert a.height == b.height > 100
    a, b = a.sort("harpnum", "t_rec"), b.sort("harpnum", "t_rec")
    for col in ("p_m24_survival", "p_m24_defn", "p_c24_defn", "p_m24_lstm", "p_m24_logistic",
                "p_m24_persistence", "mean_lifetime_h"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-6,
                                   err_msg=col)
    assert a["warning_24h"].equals(b["warning_24h"])


def test_predictions_run_with_limited_torch_threads_and_restore_them(
    model_dir: Path, inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from flare_core.errors import ConfigError
    from flare_core.models.defn import DeepFlareNet

    sharp, flares = inputs
    ds = build_model_dataset(sharp.head(300), flares, TrainConfig(), with_labels=False)
    seen: list[int] = []
    original = DeepFlareNet.predict_proba

    def spy(self, X):  # noqa: N803
        seen.append(torch.get_num_threads())
        return original(self, X)

    monkeypatch.setattr(DeepFlareNet, "predict_proba", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predict_records(ModelBundle.load(model_dir), ds)
        assert seen and set(seen) == {1}  # default: one intra-op thread while predicting
        assert torch.get_num_threads() == 2  # the process-wide setting is restored
        seen.clear()
        predict_records(ModelBundle.load(model_dir, torch_threads=None), ds)
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="torch_threads"):
        ModelBundle.load(model_dir, torch_threads=0)
