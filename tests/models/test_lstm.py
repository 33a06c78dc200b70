"""Tests for flare_core.models.lstm: sequence building (no look-ahead) and the LSTM model."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from flare_core.errors import ConfigError, ModelError
from flare_core.models.lstm import LSTMConfig, LSTMForecaster, build_sequences
from flare_core.models.persistence import load_model, save_model

T0 = dt.datetime(2014, 1, 1, tzinfo=dt.UTC)


def _records(harps: list[int], hours: list[float], **cols) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "harpnum": harps,
            "t_rec": [T0 + dt.timedelta(hours=h) for h in hours],
            **cols,
        },
        schema_overrides={"harpnum": pl.Int64, "t_rec": pl.Datetime("us", "UTC")},
    )


def test_build_sequences_exact():
    frame = _records([1, 1, 1, 1, 2, 2], [0, 1, 2, 3, 0, 1], a=[10.0, 11, 12, 13, 20, 21])
    seq, lengths = build_sequences(frame, features=["a"], n_steps=3)
    np.testing.assert_array_equal(lengths, [1, 2, 3, 3, 1, 2])
    np.testing.assert_array_equal(
        seq[:, :, 0],
        [[10, 0, 0], [10, 11, 0], [10, 11, 12], [11, 12, 13], [20, 0, 0], [20, 21, 0]],
    )
    # region 2 never sees region 1; a record never sees a later one
    mask = np.arange(3) < lengths[:, None]
    assert not np.any(seq[4:, :, 0][mask[4:]] < 20)


def test_build_sequences_in_hours_are_cadence_independent():
    """step_h: step k is the newest record at or before t - k step_h, so 12-min records and
    their hourly subset give the same sequences; a gap repeats the last record before it."""
    minutes = np.arange(0, 6 * 60, 12)  # 6 h at 12-min cadence
    a = (minutes / 60.0).tolist()  # value = hours since start
    fine = _records([7] * minutes.size, (minutes / 60.0).tolist(), a=a)
    seq, lengths = build_sequences(fine, features=["a"], n_steps=4, step_h=1.0)
    last = fine.height - 1  # t = 5.8 h: steps at 2.8, 3.8, 4.8, 5.8 h (oldest first)
    assert lengths[last] == 4
    np.testing.assert_allclose(seq[last, :, 0], [2.8, 3.8, 4.8, 5.8])
    hourly = fine.filter(pl.int_range(pl.len()) % 5 == 4)  # records at x.8 h
    seq_h, _ = build_sequences(hourly, features=["a"], n_steps=4, step_h=1.0)
    np.testing.assert_allclose(seq_h[-1, :, 0], seq[last, :, 0])
    np.testing.assert_array_equal(lengths[:5], [1, 1, 1, 1, 1])  # nothing an hour before
    gap = _records([7, 7, 7], [0.0, 1.0, 4.0], a=[0.0, 1.0, 4.0])
    seq_g, len_g = build_sequences(gap, features=["a"], n_steps=4, step_h=1.0)
    np.testing.assert_allclose(seq_g[2, :, 0], [1.0, 1.0, 1.0, 4.0])  # 3 h and 2 h: the 1 h
    assert len_g[2] == 4
    two = _records([1, 2], [0.0, 5.0], a=[1.0, 2.0])
    seq_2, len_2 = build_sequences(two, features=["a"], n_steps=3, step_h=1.0)
    np.testing.assert_array_equal(len_2, [1, 1])  # region 2 never reaches into region 1


def test_build_sequences_lookback_and_nulls():
    frame = _records([5, 5, 5, 5], [0, 1, 30, 31], a=[1.0, None, 3.0, 4.0])
    seq, lengths = build_sequences(frame, features=["a"], n_steps=4, max_lookback_h=24.0)
    np.testing.assert_array_equal(lengths, [1, 2, 1, 2])  # the 30 h gap cuts the history
    assert np.isnan(seq[1, 1, 0]) and seq[3, 0, 0] == 3.0 and seq[3, 1, 0] == 4.0


def test_build_sequences_no_look_ahead():
    rng = np.random.default_rng(0)
    hours = list(range(20))
    frame = _records([3] * 20, hours, a=rng.normal(size=20).tolist())
    seq, _ = build_sequences(frame, features=["a"], n_steps=6)
    changed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) > 9).then(99.0).otherwise(pl.col("a")).alias("a")
    )
    seq2, _ = build_sequences(changed, features=["a"], n_steps=6)
    np.testing.assert_array_equal(seq[:10], seq2[:10])  # records 0..9 unaffected by 10..19


@pytest.mark.parametrize(
    ("harps", "hours"),
    [([1, 2, 1], [0, 1, 2]), ([2, 1], [0, 0]), ([1, 1], [3, 1]), ([1, 1], [2, 2])],
)
def test_build_sequences_requires_sorted_unique(harps, hours):
    frame = _records(harps, hours, a=[0.0] * len(harps))
    with pytest.raises(ModelError, match="sorted"):
        build_sequences(frame, features=["a"])


def _synthetic_regions(n_regions: int, n_records: int, seed: int) -> pl.DataFrame:
    """A flare follows a sustained rise of `flux` over the last 3 records (a sequence cue)."""
    rng = np.random.default_rng(seed)
    parts = []
    for r in range(n_regions):
        steps = rng.normal(scale=1.0, size=n_records)
        level = rng.normal(size=n_records)  # the current value alone carries no signal
        rise = np.convolve(steps, np.ones(3), mode="full")[:n_records]
        label = rise + 0.3 * rng.normal(size=n_records) > 2.5
        parts.append(
            _records(
                [seed * 1000 + r] * n_records,
                list(range(n_records)),
                flux=level.tolist(),
                step=steps.tolist(),
                noise=rng.normal(size=n_records).tolist(),
                m_within_24h=label.tolist(),
            )
        )
    return pl.concat(parts)


CFG = LSTMConfig(n_steps=4, hidden=16, max_epochs=6, batch_size=64, class_weight=(1.0, 5.0))


@pytest.fixture(scope="module")
def fitted_and_data():
    train, val, test = (_synthetic_regions(40, 30, s) for s in (1, 2, 3))
    model = LSTMForecaster("M", config=CFG).fit(
        train, train["m_within_24h"], X_val=val, y_val=val["m_within_24h"]
    )
    return model, test


def _tss(y, pred):
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    return (pred & y).sum() / y.sum() - (pred & ~y).sum() / (~y).sum()


def test_learns_sequence_signal(fitted_and_data):
    model, test = fitted_and_data
    assert model.feature_names_in_ == ["flux", "step", "noise"]
    p = model.predict_proba(test)
    assert p.shape == (test.height,) and np.all((p >= 0) & (p <= 1))
    assert _tss(test["m_within_24h"], p >= 0.5) > 0.4  # a constant forecast scores 0
    tss = [h["val_tss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(tss)) + 1


def test_prediction_has_no_look_ahead(fitted_and_data):
    model, test = fitted_and_data
    one = test.filter(pl.col("harpnum") == test["harpnum"][0])
    p_full = model.predict_proba(one)
    p_prefix = model.predict_proba(one.head(12))
    np.testing.assert_allclose(p_prefix, p_full[:12], rtol=1e-6, atol=1e-7)


def test_predicting_some_rows_reads_the_others_as_context(fitted_and_data):
    model, test = fitted_and_data
    wanted = np.zeros(test.height, dtype=bool)
    wanted[5::7] = True
    p_full = model.predict_proba(test)
    p_some = model.predict_proba(test, rows=wanted)
    assert np.isnan(p_some[~wanted]).all()
    # the same sequences (earlier records of every row); a batch of another size may round
    # the float32 network differently
    np.testing.assert_allclose(p_some[wanted], p_full[wanted], rtol=1e-6, atol=1e-7)
    assert np.isnan(model.predict_proba(test, rows=np.zeros(test.height, bool))).all()
    with pytest.raises(ModelError, match="boolean mask"):
        model.predict_proba(test, rows=wanted[:-1])


def test_save_load_round_trip(fitted_and_data, tmp_path):
    model, test = fitted_and_data
    save_model(model, tmp_path / "lstm")
    loaded = load_model(LSTMForecaster, tmp_path / "lstm")
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    assert loaded.config == model.config


def test_errors():
    frame = _synthetic_regions(3, 10, 4)
    with pytest.raises(ModelError, match="not fitted"):
        LSTMForecaster().predict_proba(frame)
    with pytest.raises(ModelError, match="both classes"):
        LSTMForecaster(config=CFG).fit(
            frame, frame["m_within_24h"], X_val=frame, y_val=np.zeros(frame.height, dtype=bool)
        )
    with pytest.raises(ModelError, match="polars"):
        LSTMForecaster(config=CFG).fit(
            frame.drop("harpnum", "t_rec", "m_within_24h").to_numpy(), frame["m_within_24h"],
            X_val=frame, y_val=frame["m_within_24h"],
        )
    for bad in ({"n_steps": 0}, {"dropout": 1.0}, {"class_weight": (1.0, -1.0)}):
        with pytest.raises(ConfigError):
            LSTMConfig(**bad)


def test_gather_sequences_takes_rows_and_zero_pads():
    from flare_core.models.lstm import gather_sequences

    values = np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0
    index = np.array([[-1, -1, 0], [0, 1, 2], [-1, 2, 3]])
    out = gather_sequences(values, index)
    expected = np.zeros((3, 3, 3), dtype=np.float32)
    for i, row in enumerate(index):
        for k, j in enumerate(row):
            if j >= 0:
                expected[i, k] = values[j]
    assert out.dtype == values.dtype and out.tobytes() == expected.tobytes()
    assert gather_sequences(np.zeros((0, 3)), np.full((2, 4), -1)).shape == (2, 4, 3)


def test_prediction_in_chunks_equals_one_pass(fitted_and_data, monkeypatch):
    from flare_core.models import lstm

    model, test = fitted_and_data
    whole = model.predict_proba(test)
    monkeypatch.setattr(lstm, "_PREDICT_CHUNK", test.height // 3 + 1)
    np.testing.assert_allclose(model.predict_proba(test), whole, rtol=1e-6, atol=1e-7)
