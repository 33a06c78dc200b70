"""Tests of flare_core.forecasting: loading, per-record predictions, forecast_at (no look-ahead)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flare_core.config import TrainConfig
from flare_core.dataset import build_model_dataset, read_inputs
from flare_core.errors import ConfigError, DataGapError, ModelError
from flare_core.feature_stream import region_chunks
from flare_core.forecasting import (
    PREDICTION_COLUMNS,
    ModelBundle,
    forecast_at,
    forecast_many,
    predict_records,
    survival_probabilities,
)
from flare_core.models.registry import ALL_MODELS
from flare_core.training import train_all

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


def test_lookback_covers_the_sequence_and_its_features(bundle: ModelBundle) -> None:
    """The data window holds the LSTM's oldest sequence step and that step's feature window,
    and the lifetime warning's line-fit window plus its smoothing reach."""
    cfg = bundle.config
    feature_h = max(cfg.window_h, cfg.long_window_h)
    lstm_cfg = bundle.models["lstm"].config
    span_h = (lstm_cfg.max_lookback_h if lstm_cfg.max_lookback_h is not None
              else (lstm_cfg.n_steps - 1) * cfg.freshness_h)
    warning = bundle.models["warning_svm"]
    assert bundle.lookback_h() >= feature_h + span_h
    assert bundle.lookback_h() >= feature_h + warning.window_h_ + 4 * warning.sigma_h_


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


# ------------------------------------------------------------ re-basing to the issue time


def _step_survival(curve: np.ndarray, t_h: float) -> float:
    """S(t) of a curve on the 1-hour grid 0, 1, ..., Tmax (constant between grid points)."""
    return float(curve[int(np.floor(t_h + 1e-9))])


@pytest.fixture(scope="module")
def record_preds(bundle: ModelBundle, inputs) -> pl.DataFrame:
    sharp, flares = inputs
    ds = build_model_dataset(sharp, flares, bundle.config, with_labels=False)
    return predict_records(bundle, ds)


def _issue_with_leads(sharp: pl.DataFrame, minutes: int) -> object:
    """``minutes`` after the record time shared by the most regions."""
    busiest = sharp.group_by("t_rec").len().sort("len", "t_rec", descending=True)["t_rec"][0]
    return busiest + timedelta(minutes=minutes)


@pytest.mark.parametrize("minutes", [0, 70, 250])
def test_survival_forecast_is_rebased_to_the_issue_time(bundle: ModelBundle, inputs,
                                                        record_preds: pl.DataFrame,
                                                        minutes: int) -> None:
    """p_m24 = 1 - S(L + 24) / S(L) and mean_lifetime_h = integral of S(L + u) / S(L) over
    [0, Tmax - L] for the record's own curve S and lead L = issue_time - t_rec."""
    sharp, flares = inputs
    issue = _issue_with_leads(sharp, minutes)
    rows = forecast_at(bundle, sharp, flares, issue).filter(pl.col("model") == "survival")
    ref = rows.join(record_preds, on=["harpnum", "t_rec"], how="left")
    assert rows.height == ref.height >= 2
    grid = np.asarray(record_preds["survival_grid_h"][0])
    assert np.array_equal(grid, np.arange(grid.size, dtype=float))  # the 1-hour grid
    tmax = grid[-1]
    leads = []
    for r in ref.iter_rows(named=True):
        lead = (issue - r["t_rec"]).total_seconds() / 3600.0
        leads.append(lead)
        s = np.asarray(r["survival_curve_right"])
        s_lead = _step_survival(s, lead)
        p = 1.0 - _step_survival(s, lead + 24.0) / s_lead
        np.testing.assert_allclose(r["p_m24"], p, rtol=1e-5, atol=1e-9)
        # integral_L^Tmax S(t) dt / S(L), S constant on [j, j + 1)
        first = int(np.ceil(lead - 1e-9))
        integral = (first - lead) * _step_survival(s, lead) + s[first:int(tmax)].sum()
        np.testing.assert_allclose(r["mean_lifetime_h"], integral / s_lead, rtol=1e-5)
        assert 0.0 <= r["mean_lifetime_h"] <= tmax - lead + 1e-9
        # the published curve: hours after issue_time, S_i(0) = 1, S_i(j - L) = S(j) / S(L)
        g_i, s_i = np.asarray(r["survival_grid_h"]), np.asarray(r["survival_curve"])
        assert g_i[0] == 0.0 and s_i[0] == 1.0
        np.testing.assert_allclose(g_i[1:], grid[grid > lead] - lead, atol=1e-9)
        np.testing.assert_allclose(s_i[1:], s[grid > lead] / s_lead, rtol=1e-5, atol=1e-9)
        # P(X) keeps the record's P(X | M)
        if r["p_m24_survival"] > 1e-9:
            np.testing.assert_allclose(r["p_x24"], r["p_m24"] * r["p_x24_survival"]
                                       / r["p_m24_survival"], rtol=1e-5, atol=1e-12)
        if lead == 0:  # nothing to re-base: the record's own values
            np.testing.assert_allclose(r["p_m24"], r["p_m24_survival"], rtol=1e-6)
            np.testing.assert_allclose(r["mean_lifetime_h"], r["mean_lifetime_h_right"],
                                       rtol=1e-6)
    assert max(leads) > 0 or minutes == 0
    assert rows["p_c24"].null_count() == rows.height  # >=M model: C is not forecast


def test_binary_models_keep_the_record_time_window(bundle: ModelBundle, inputs,
                                                   record_preds: pl.DataFrame) -> None:
    """Binary models publish the record's own p(flare in (t_rec, t_rec + 24 h]); the sequence
    model sees the region's earlier records too (not a one-record sequence)."""
    sharp, flares = inputs
    issue = _issue_with_leads(sharp, 100)
    rows = forecast_at(bundle, sharp, flares, issue)
    # forecast_at's data window (ModelBundle.lookback_h) covers the LSTM's sequence and the
    # features of its oldest steps, so the LSTM is as close to record_preds as the others
    for model, col, rtol in (("lstm", "p_m24_lstm", 1e-5), ("logistic", "p_m24_logistic", 1e-5),
                             ("persistence", "p_m24_persistence", 1e-5)):
        sub = rows.filter(pl.col("model") == model).join(record_preds, on=["harpnum", "t_rec"])
        assert sub.height >= 2
        np.testing.assert_allclose(sub["p_m24"].to_numpy(), sub[col].to_numpy(), rtol=rtol,
                                   err_msg=model)
    surv = rows.filter(pl.col("model") == "survival").join(record_preds, on=["harpnum", "t_rec"])
    # the lifetime warning reads the region's track, so it is defined at the issue time too
    assert surv["warning_class"].eq_missing("M").to_list() == \
        surv["warning_24h"].fill_null(False).to_list()


def test_scoreboard_treats_the_survival_p_c24_as_not_forecast(bundle: ModelBundle,
                                                              inputs) -> None:
    from flare_core.publish.scoreboard_json import (
        FLARE_CLASS_LABELS,
        build_scoreboard_document,
        validate_scoreboard_document,
    )

    sharp, flares = inputs
    rows = forecast_at(bundle, sharp, flares, _issue_with_leads(sharp, 70))
    doc = build_scoreboard_document(rows.filter(pl.col("model") == "survival"))
    validate_scoreboard_document(doc)
    sub = doc["forecast_submission"]
    classes = {p["class"] for r in sub["region_forecasts"] for p in r["flare_probabilities"]}
    assert FLARE_CLASS_LABELS["p_m24"] in classes
    assert FLARE_CLASS_LABELS["p_c24"] not in classes
    full = {p["class"] for p in sub["full_disk_forecasts"][0]["flare_probabilities"]}
    assert FLARE_CLASS_LABELS["p_c24"] not in full


def test_forecast_many_equals_forecast_at_per_issue_time(bundle: ModelBundle, inputs,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    sharp, flares = inputs
    start = _issue_with_leads(sharp, 0)
    issues = [start + timedelta(minutes=37 * k) for k in range(8)]
    before_all = sharp["t_rec"].min() - timedelta(days=30)  # no fresh record: skipped
    with caplog.at_level("WARNING", logger="flare_core.forecasting"):
        many = forecast_many(bundle, sharp, flares, [*reversed(issues), issues[2], before_all])
    assert "1 of 9 issue time(s)" in caplog.text
    one_by_one = pl.concat([forecast_at(bundle, sharp, flares, t) for t in issues])
    assert many.height == one_by_one.height > 0
    assert many.select(pl.exclude(FLOAT_COLUMNS)).equals(
        one_by_one.select(pl.exclude(FLOAT_COLUMNS)))
    # forecast_many computes features on the whole span, forecast_at on a window before each
    # issue time that covers every record its models read (ModelBundle.lookback_h, the LSTM's
    # sequences included): equal up to float rounding of running sums, every model
    for col in FLOAT_COLUMNS:
        a, b = many[col], one_by_one[col]
        assert a.is_null().equals(b.is_null()), col
        if a.dtype == pl.Float64:
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-7, atol=1e-9,
                                       err_msg=col)
        else:
            x, y = a.explode().to_numpy(), b.explode().to_numpy()
            np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9, err_msg=col)
    with pytest.raises(DataGapError):
        forecast_many(bundle, sharp, flares, [before_all])


FLOAT_COLUMNS = ["p_c24", "p_m24", "p_x24", "mean_lifetime_h", "survival_grid_h",
                 "survival_curve"]


def test_survival_probabilities_by_horizon(record_preds: pl.DataFrame) -> None:
    """p_m{h}_survival = 1 - S(h) on the record's step curve: equal to p_m24_survival at 24 h,
    non-decreasing in h, null beyond the follow-up; bad horizons are refused."""

    hs = [6, 12, 24, 48, 72, 1.5]
    probs = survival_probabilities(record_preds, hs)
    assert probs.columns == ["p_m6_survival", "p_m12_survival", "p_m24_survival",
                             "p_m48_survival", "p_m72_survival", "p_m1.5_survival"]
    np.testing.assert_allclose(probs["p_m24_survival"].to_numpy(),
                               record_preds["p_m24_survival"].to_numpy(), atol=1e-6)
    for r, row in zip(record_preds.head(50).iter_rows(named=True),
                      probs.head(50).iter_rows(named=True), strict=True):
        s = np.asarray(r["survival_curve"])
        for h in hs:
            assert row[f"p_m{h:g}_survival"] == pytest.approx(1 - _step_survival(s, h),
                                                               abs=1e-9)
    m = probs.select("p_m6_survival", "p_m12_survival", "p_m24_survival", "p_m48_survival",
                     "p_m72_survival").to_numpy()
    assert (np.diff(m, axis=1) >= -1e-12).all()
    tmax = record_preds["survival_grid_h"][0][-1]
    assert survival_probabilities(record_preds, [tmax + 1])[0, 0] is None
    with pytest.raises(ConfigError, match="positive"):
        survival_probabilities(record_preds, [0])
    with pytest.raises(ConfigError, match="cox_time"):
        survival_probabilities(record_preds.drop("survival_curve"), [6])


# ------------------------------------------- region isolation (issue 12 F1), coherence (issue 11)


def _absurd_copy(sharp: pl.DataFrame, harpnum: int, t_rec, value: float = 1e308) -> pl.DataFrame:
    """``sharp`` with one record's USFLUX overwritten by an absurd value, as if written to the
    store directly (the file readers' plausibility ranges would drop it)."""
    hit = (pl.col("harpnum") == harpnum) & (pl.col("t_rec") == t_rec)
    assert sharp.filter(hit).height == 1
    return sharp.with_columns(pl.when(hit).then(value).otherwise(pl.col("usflux"))
                              .alias("usflux"))


def _assert_rows_close(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal rows, floats up to batch rounding (the networks predict other batches)."""
    assert a.height == b.height
    assert a.select(pl.exclude(FLOAT_COLUMNS)).equals(b.select(pl.exclude(FLOAT_COLUMNS)))
    for col in FLOAT_COLUMNS:
        x, y = a[col], b[col]
        if x.dtype != pl.Float64:
            x, y = x.explode(), y.explode()
        assert x.is_null().equals(y.is_null()), col
        np.testing.assert_allclose(x.to_numpy(), y.to_numpy(), rtol=1e-6, atol=1e-9,
                                   err_msg=col)


def _day_with_regions_at(sharp: pl.DataFrame, hours: tuple[int, ...], *, freshness_h: float):
    """The first day (00:00 UTC) on which >= 2 regions have a record served (modelled NRT
    latency) within the freshness window before each of ``hours``."""
    from flare_core.schema import DEFAULT_NRT_LATENCY

    days = sharp["t_rec"].dt.truncate("1d").unique().sort()
    for day in days:
        ok = True
        for h in hours:
            issue = day + timedelta(hours=h)
            served = sharp.filter((pl.col("t_rec") + DEFAULT_NRT_LATENCY <= issue)
                                  & (pl.col("t_rec") > issue - timedelta(hours=freshness_h)))
            ok &= served["harpnum"].n_unique() >= 2
        if ok:
            return day
    raise AssertionError("no such day in the data")


@pytest.mark.parametrize("hour", [12, 14])
def test_one_absurd_region_is_left_out_and_the_others_publish(bundle: ModelBundle, inputs,
                                                              hour: int) -> None:
    """Issue 12 F1: an absurd record (USFLUX 1e308, beyond float32: a model raised and the
    whole hour published nothing) leaves out its region only, with the reason; every other
    region's rows are exactly those of the clean data."""
    from flare_core.publish.forecast_store import FAILED_SCHEMA

    sharp, flares = inputs
    issue = _day_with_regions_at(sharp, (12, 14), freshness_h=bundle.config.freshness_h
                                 ).replace(hour=hour)
    clean, none_failed = forecast_at(bundle, sharp, flares, issue, headline=True,
                                     return_failed=True)
    assert clean["harpnum"].n_unique() >= 2 and none_failed.height == 0
    victim = clean.row(0, named=True)
    bad = _absurd_copy(sharp, victim["harpnum"], victim["t_rec"])
    rows, failed = forecast_at(bundle, bad, flares, issue, headline=True, return_failed=True)
    assert dict(failed.schema) == FAILED_SCHEMA
    assert failed["harpnum"].to_list() == [victim["harpnum"]]
    assert "usflux = 1e+308" in failed["reason"][0] and "float32" in failed["reason"][0]
    assert failed["issue_time"].to_list() == [issue]
    assert failed["series"].to_list() == [sharp["series"][0]]
    others = clean.filter(pl.col("harpnum") != victim["harpnum"])
    _assert_rows_close(rows, others)
    # the default call keeps its old return type and leaves the region out too
    assert forecast_at(bundle, bad, flares, issue, headline=True).equals(rows)


def test_backfill_batch_leaves_out_only_the_absurd_region_hours(bundle: ModelBundle,
                                                                inputs) -> None:
    """forecast_many over 24 hourly issue times with one absurd record: every hour is
    forecast, the region is left out only while that record is its newest, and the rows and
    failures equal forecast_at's hour by hour."""
    sharp, flares = inputs
    start = _issue_with_leads(sharp, 0).replace(minute=0, second=0, microsecond=0)
    issues = [start + timedelta(hours=k) for k in range(24)]
    clean = forecast_many(bundle, sharp, flares, issues)
    victim = clean.filter(pl.col("issue_time") == issues[3]).row(0, named=True)
    bad = _absurd_copy(sharp, victim["harpnum"], victim["t_rec"])
    rows, failed = forecast_many(bundle, bad, flares, issues, return_failed=True)
    assert set(rows["issue_time"]) == set(clean["issue_time"])  # every hour completes
    assert set(failed["harpnum"]) == {victim["harpnum"]}
    hit = clean.filter((pl.col("harpnum") == victim["harpnum"])
                       & (pl.col("t_rec") == victim["t_rec"]))["issue_time"].unique().sort()
    assert failed["issue_time"].to_list() == hit.to_list()  # only while it is the newest
    kept = clean.join(failed.select("issue_time", "harpnum"), on=["issue_time", "harpnum"],
                      how="anti", maintain_order="left")
    assert rows.select("issue_time", "harpnum", "model", "t_rec").equals(
        kept.select("issue_time", "harpnum", "model", "t_rec"))
    one_by_one = [forecast_at(bundle, bad, flares, t, return_failed=True) for t in issues
                  if t in set(rows["issue_time"])]
    assert pl.concat([f for _, f in one_by_one]).equals(failed)
    assert sum(r.height for r, _ in one_by_one) == rows.height


def test_invalid_model_outputs_leave_out_their_region(bundle: ModelBundle, inputs) -> None:
    """NaN probability, a probability above 1, an increasing survival curve: each removes its
    (issue time, region), named with the model and the problem; other regions are kept."""
    from flare_core.forecasting import isolate_invalid_regions

    sharp, flares = inputs
    rows = forecast_at(bundle, sharp, flares, _issue_with_leads(sharp, 70))
    harps = rows["harpnum"].unique().sort().to_list()
    assert len(harps) >= 3
    a, b, c = harps[:3]
    broken = rows.with_columns(
        pl.when((pl.col("harpnum") == a) & (pl.col("model") == "lstm")).then(float("nan"))
        .when((pl.col("harpnum") == b) & (pl.col("model") == "defn")).then(1.5)
        .otherwise(pl.col("p_m24")).alias("p_m24"),
        pl.when((pl.col("harpnum") == c) & (pl.col("model") == "survival"))
        .then(pl.col("survival_curve").list.reverse())
        .otherwise(pl.col("survival_curve")).alias("survival_curve"))
    valid, failed = isolate_invalid_regions(broken)
    reasons = dict(failed.select("harpnum", "reason").iter_rows())
    assert set(reasons) == {a, b, c}
    assert reasons[a] == "lstm: p_m24 = NaN is not a probability in [0, 1]"
    assert reasons[b] == "defn: p_m24 = 1.5 is not a probability in [0, 1]"
    assert reasons[c] == "survival: survival_curve must lie in [0, 1] and not increase"
    assert valid.equals(rows.filter(~pl.col("harpnum").is_in([a, b, c])))
    assert isolate_invalid_regions(rows)[1].height == 0


def test_every_published_model_has_nested_classes_by_projection(bundle: ModelBundle,
                                                                inputs,
                                                                record_preds: pl.DataFrame
                                                                ) -> None:
    """P(C+) >= P(M+) >= P(X+) in every row of every model (and the headline), by the
    Euclidean projection (isotonic regression, checked against scikit-learn's); DeFN's two
    nets disagree on real data and are projected, values in order are untouched."""
    from sklearn.isotonic import IsotonicRegression

    from flare_core.forecasting import project_class_probabilities

    sharp, flares = inputs
    issues = [_issue_with_leads(sharp, 0) + timedelta(hours=k) for k in range(0, 48, 3)]
    rows = forecast_many(bundle, sharp, flares, issues, headline=True)
    assert set(rows["model"]) == {"survival", "defn", "lstm", "logistic", "persistence",
                                  "climatology", "headline"}
    p = rows.select("p_c24", "p_m24", "p_x24")
    assert (p["p_c24"].fill_null(1.0) >= p["p_m24"] - 1e-12).all()
    assert (p["p_m24"] >= p["p_x24"].fill_null(0.0) - 1e-12).all()
    assert rows["p_x24"].null_count() == 0  # X+ for every model (P(X|M) of the forest)
    # DeFN, raw per record: the two nets often disagree (C below M)
    raw = record_preds.select(pl.col("p_c24_defn").alias("c"), pl.col("p_m24_defn").alias("m"))
    n_bad = raw.filter(pl.col("c") < pl.col("m")).height
    assert n_bad > 0
    proj = project_class_probabilities(raw.select(
        pl.col("c").alias("p_c24"), pl.col("m").alias("p_m24"),
        pl.lit(None, pl.Float64).alias("p_x24")))
    moved = (proj["p_c24"] != raw["c"]) | (proj["p_m24"] != raw["m"])
    assert moved.sum() == n_bad  # only the violating rows move
    iso = IsotonicRegression(increasing=False)
    for (c, m), (pc, pm) in zip(raw.rows(), proj.select("p_c24", "p_m24").rows(), strict=True):
        np.testing.assert_allclose([pc, pm], iso.fit_transform([0, 1], [c, m]), atol=1e-12)
    triples = np.array([[0.1, 0.5, 0.3], [0.2, 0.1, 0.4], [0.9, 0.5, 0.1], [0.3, 0.3, 0.6]])
    got = project_class_probabilities(pl.DataFrame(triples, schema=["p_c24", "p_m24",
                                                                    "p_x24"], orient="row"))
    for row, want in zip(got.rows(), triples, strict=True):
        np.testing.assert_allclose(row, iso.fit_transform([0, 1, 2], want), atol=1e-12)


def test_headline_follows_its_recorded_rule(bundle: ModelBundle, inputs) -> None:
    """One headline row per region: P(M+) of the best-validation-TSS model, C+ from DeFN,
    X+ = P(X|M) x P(M+), the survival curve and restricted mean lifetime, and a warning
    class that is a threshold rule on its own probabilities (never M at a low P(M+) while
    empty at a high one)."""
    import json

    from flare_core.forecasting import headline_rule

    sharp, flares = inputs
    meta = json.loads((bundle.model_dir / "model.json").read_text())["models"]
    rule = headline_rule(bundle)
    sources = {"survival": "cox_time", "defn": "defn_m", "lstm": "lstm",
               "logistic": "logistic", "persistence": "persistence",
               "climatology": "climatology"}
    best = max(sources, key=lambda m: meta[sources[m]]["validation"]["tss"])
    assert rule.m_model == best and rule.m_tss == meta[sources[best]]["validation"]["tss"]
    assert rule.m_threshold == meta[sources[best]]["threshold"]
    assert rule.c_model == "defn" and rule.c_threshold == meta["defn_c"]["threshold"]
    issues = [_issue_with_leads(sharp, 0) + timedelta(hours=k) for k in range(0, 48, 2)]
    rows = forecast_many(bundle, sharp, flares, issues, headline=True)
    head = rows.filter(pl.col("model") == "headline")
    keys = ["issue_time", "harpnum"]
    assert head.height == rows.filter(pl.col("model") == "survival").height
    assert head.select(keys).is_duplicated().sum() == 0
    assert (head["method"] == rule.describe()).all()
    assert f"M+: {best}" in rule.describe() and "validation threshold" in rule.describe()
    surv = rows.filter(pl.col("model") == "survival").select(
        *keys, pl.col("mean_lifetime_h").alias("life"), pl.col("survival_curve").alias("s"))
    both = head.join(surv, on=keys)
    np.testing.assert_allclose(both["mean_lifetime_h"].to_numpy(), both["life"].to_numpy())
    assert both["survival_curve"].equals(both["s"].alias("survival_curve"))
    # the warning: strongest class whose probability reaches its validation threshold
    want = [("M" if m >= rule.m_threshold else "C" if c >= rule.c_threshold else None)
            for c, m in head.select("p_c24", "p_m24").rows()]
    assert head["warning_class"].to_list() == want
    warned = head.filter(pl.col("warning_class") == "M")["p_m24"]
    quiet = head.filter(pl.col("warning_class").is_null())["p_m24"]
    if warned.len() and quiet.len():
        assert warned.min() >= quiet.max()  # monotone: no "M" below an unwarned region
    # the headline's P(M+) is the chosen model's (both projected with DeFN's C+ here)
    chosen = rows.filter(pl.col("model") == best).select(*keys, pl.col("p_m24").alias("pm"))
    j = head.join(chosen, on=keys)
    if best == rule.c_model:
        np.testing.assert_allclose(j["p_m24"].to_numpy(), j["pm"].to_numpy(), atol=1e-12)
    assert forecast_many(bundle, sharp, flares, issues).filter(
        pl.col("model") == "headline").height == 0  # only when asked


def _rebased_one_row_at_a_time(preds: pl.DataFrame) -> pl.DataFrame:
    """The re-basing of `_rebased_survival`, written one row at a time (the reference)."""
    from flare_core.models.lifetime import restricted_mean_lifetime

    def step_at(g, s, t):
        j = int(np.searchsorted(g, t, side="right")) - 1
        return 1.0 if j < 0 else float(s[j])

    out: dict[str, list] = {c: [] for c in ("p_m24", "p_x24", "mean_lifetime_h",
                                            "survival_grid_h", "survival_curve")}
    for r in preds.iter_rows(named=True):
        vals = dict.fromkeys(out)
        if r["survival_grid_h"] is not None and r["survival_curve"] is not None:
            g = np.asarray(r["survival_grid_h"], dtype=np.float64)
            s = np.asarray(r["survival_curve"], dtype=np.float64)
            lead = max((r["issue_time"] - r["t_rec"]) / timedelta(microseconds=1) / 3.6e9, 0.0)
            s_lead = step_at(g, s, lead)
            if not (s_lead <= 0 or lead + 24.0 > g[-1]):
                keep = g > lead
                g_i = np.r_[0.0, g[keep] - lead]
                s_i = np.r_[1.0, np.clip(s[keep] / s_lead, 0.0, 1.0)]
                p = min(max(1.0 - step_at(g_i, s_i, 24.0), 0.0), 1.0)
                x = r["p_x_given_m_forest"]
                vals = {"p_m24": p, "p_x24": None if x is None else p * x,
                        "mean_lifetime_h": float(restricted_mean_lifetime(
                            g_i, s_i[None, :], g[-1] - lead)[0]),
                        "survival_grid_h": g_i.tolist(), "survival_curve": s_i.tolist()}
        for c in out:
            out[c].append(vals[c])
    return pl.DataFrame(out, schema={"p_m24": pl.Float64, "p_x24": pl.Float64,
                                     "mean_lifetime_h": pl.Float64,
                                     "survival_grid_h": pl.List(pl.Float64),
                                     "survival_curve": pl.List(pl.Float64)})


def test_rebased_survival_equals_the_row_by_row_reference() -> None:
    """Grouped by grid and lead, the re-basing gives every row's values bit for bit: several
    grids and leads, a curve at 0 by the lead, a NaN curve, no curve, no P(X | M)."""
    from datetime import UTC, datetime

    from flare_core.forecasting import _rebased_survival

    rng = np.random.default_rng(11)
    issue = datetime(2023, 3, 5, 12, tzinfo=UTC)
    grids = [np.arange(0.0, 145.0), np.r_[0.5, np.cumsum(rng.uniform(0.2, 2.0, 150))]]
    rows = []
    for k in range(400):
        g = grids[k % 2]
        s = np.minimum.accumulate(np.clip(1.0 - np.cumsum(rng.exponential(0.004, g.size)),
                                          0.0, 1.0))
        if k % 37 == 0:
            s[:] = 0.0  # S(L) = 0: nothing to re-base
        if k % 41 == 0:
            s[5:] = np.nan
        lead_min = int(rng.choice([0, 12, 36, 60, 300, 345]))
        rows.append({"issue_time": issue, "t_rec": issue - timedelta(minutes=lead_min),
                     "survival_grid_h": None if k % 29 == 0 else g.tolist(),
                     "survival_curve": None if k % 29 == 0 else s.tolist(),
                     "p_x_given_m_forest": None if k % 13 == 0 else float(rng.uniform())})
    preds = pl.DataFrame(rows, schema_overrides={"survival_grid_h": pl.List(pl.Float64),
                                                 "survival_curve": pl.List(pl.Float64)})
    got = _rebased_survival(preds)
    expected = _rebased_one_row_at_a_time(preds)
    assert got.equals(expected, null_equal=True)
    assert got["p_m24"].null_count() < got.height and got["p_m24"].is_nan().any()
    assert _rebased_survival(preds.clear()).equals(expected.clear())


def test_predict_records_of_some_rows_equals_the_whole_batch(bundle: ModelBundle, inputs,
                                                             record_preds: pl.DataFrame
                                                             ) -> None:
    """``rows``: the wanted records get every value of a whole-batch call (the others are
    read as context: sequences, lifetime track), the models that predict rows leave the
    others null."""
    sharp, flares = inputs
    ds = build_model_dataset(sharp, flares, bundle.config, with_labels=False)
    rng = np.random.default_rng(2)
    wanted = rng.uniform(size=ds.height) < 0.15
    some = predict_records(bundle, ds, rows=wanted)
    assert some.columns == record_preds.columns and some.height == ds.height
    assert some.filter(pl.Series(wanted)).equals(record_preds.filter(pl.Series(wanted)))
    others = some.filter(~pl.Series(wanted))
    for col in ("p_m24_defn", "p_c24_defn", "p_m24_lstm", "warning_24h"):
        assert others[col].null_count() == others.height, col
    # every record of the chain's track is still predicted (the warning reads them)
    assert others["mean_lifetime_h"].equals(record_preds.filter(~pl.Series(wanted))
                                            ["mean_lifetime_h"])
    assert predict_records(bundle, ds, rows=np.ones(ds.height, bool)).equals(record_preds)
    with pytest.raises(ModelError, match="one bool per record"):
        predict_records(bundle, ds, rows=wanted[:-1])


def test_served_by_until_keeps_the_served_rows_of_the_whole_frame() -> None:
    """``_with_served_at(..., until)`` drops only rows that cannot be served by ``until``;
    a later record stamped before its own t_rec is still served (and everything kept)."""
    from datetime import UTC, datetime

    from flare_core.forecasting import _with_served_at
    from flare_core.schema import DEFAULT_NRT_LATENCY

    t0 = datetime(2023, 3, 5, tzinfo=UTC)
    t_rec = [t0 + timedelta(minutes=12 * k) for k in range(40)] * 2
    frame = pl.DataFrame({
        "harpnum": [1] * 40 + [2] * 40, "t_rec": t_rec,
        "available_at": [None if k % 3 else t + timedelta(minutes=30 + 7 * (k % 5))
                         for k, t in enumerate(t_rec)]},
        schema_overrides={"available_at": pl.Datetime("us", "UTC")})
    until = t0 + timedelta(hours=4)

    def served(f: pl.DataFrame) -> pl.DataFrame:
        return f.filter(pl.col("served_at") <= until).sort("harpnum", "t_rec")

    whole = served(_with_served_at(frame, DEFAULT_NRT_LATENCY))
    cut = _with_served_at(frame, DEFAULT_NRT_LATENCY, until)
    assert cut.height < frame.height and served(cut).equals(whole)
    odd = frame.with_columns(pl.when(pl.int_range(pl.len()) == 70).then(pl.lit(t0))
                             .otherwise(pl.col("available_at")).alias("available_at"))
    assert _with_served_at(odd, DEFAULT_NRT_LATENCY, until).height == frame.height
    assert served(_with_served_at(odd, DEFAULT_NRT_LATENCY, until)).equals(
        served(_with_served_at(odd, DEFAULT_NRT_LATENCY)))


def test_predict_records_by_region_chunks_equals_the_whole_batch(
        bundle: ModelBundle, inputs, record_preds: pl.DataFrame) -> None:
    """`flareflow predict` predicts whole regions at a time: every model reads a record's
    own region only, so the rows are those of one call on every record (Cox-Time's curves
    to rounding: its piecewise hazard integration depends on the batch at ~1e-8)."""
    sharp, flares = inputs
    ds = build_model_dataset(sharp, flares, bundle.config, with_labels=False)
    assert ds["harpnum"].is_sorted()  # region_chunks yields regions by ascending harpnum
    chunks = list(region_chunks(ds, max_records=ds.height // 4))
    assert len(chunks) >= 3
    parts = pl.concat([predict_records(bundle, c) for c in chunks])
    assert parts.columns == record_preds.columns and parts.height == record_preds.height
    survival = {"p_m24_survival", "mean_lifetime_h", "survival_curve", "p_x24_survival",
                "p_m24_logistic"}
    for col in parts.columns:
        if col in survival:
            a, b = parts[col], record_preds[col]
            if isinstance(a.dtype, pl.List):
                a, b = a.explode(), b.explode()
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6, atol=1e-9,
                                       err_msg=col)
        else:
            assert parts[col].equals(record_preds[col]), col
