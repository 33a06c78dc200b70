"""Tests for flare_core.imputation: causal forward fill with limits, model-based imputation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_core.errors import ConfigError, DataQualityWarning, ModelError
from flare_core.imputation import ModelImputer, impute_forward
from flare_core.sources.files import read_sun2022, read_swan_sf_mvts

T0 = datetime(2014, 1, 1, tzinfo=UTC)
KEYS = ["area", "usflux", "meangbz", "r_value"]


def _toy() -> pl.DataFrame:
    # region 1 at 1-h cadence except a 5-h jump; region 2 starts with a gap
    hours = [0, 1, 2, 3, 8, 9]
    return pl.DataFrame(
        {
            "harpnum": [1] * 6 + [2] * 3,
            "t_rec": [T0 + timedelta(hours=h) for h in hours] + [T0 + timedelta(hours=h)
                                                                 for h in (0, 1, 2)],
            "usflux": [1.0, None, None, float("nan"), None, 6.0, None, 2.0, None],
        }
    )


def test_forward_fill_limit_records():
    out, rep = impute_forward(_toy(), ["usflux"], limit_records=2)
    assert out["usflux"].to_list() == [1.0, 1.0, 1.0, None, None, 6.0, None, 2.0, 2.0]
    assert rep.imputed == {"usflux": 3} and rep.still_missing == {"usflux": 3}
    assert rep.total_imputed == 3


def test_forward_fill_limit_hours_and_both():
    out, rep = impute_forward(_toy(), ["usflux"], limit_h=3.0)
    # hour 8 is 8 h after the last observation -> stays missing; NaN at hour 3 is filled
    assert out["usflux"].to_list() == [1.0, 1.0, 1.0, 1.0, None, 6.0, None, 2.0, 2.0]
    assert rep.imputed["usflux"] == 4
    out, rep = impute_forward(_toy(), ["usflux"], limit_h=3.0, limit_records=1)
    assert out["usflux"].to_list() == [1.0, 1.0, None, None, None, 6.0, None, 2.0, 2.0]


def test_forward_fill_keeps_row_order_and_never_crosses_regions():
    shuffled = _toy().sample(fraction=1.0, shuffle=True, seed=4)
    out, _ = impute_forward(shuffled, ["usflux"], limit_records=5)
    assert out["harpnum"].to_list() == shuffled["harpnum"].to_list()
    assert out["t_rec"].to_list() == shuffled["t_rec"].to_list()
    first2 = out.filter((pl.col("harpnum") == 2) & (pl.col("t_rec") == T0))
    assert first2["usflux"].to_list() == [None]  # region 2's leading gap: nothing earlier


def test_forward_fill_errors():
    with pytest.raises(ConfigError, match="unbounded"):
        impute_forward(_toy(), ["usflux"])
    with pytest.raises(ConfigError, match="limit_h"):
        impute_forward(_toy(), ["usflux"], limit_h=-1)
    with pytest.raises(ConfigError, match="not in the frame"):
        impute_forward(_toy(), ["totpot"], limit_records=1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3)), min_size=1, max_size=40),
    st.integers(1, 5),
)
def test_forward_fill_is_causal(values, limit):
    # invariant: each output is the input itself, or the last observed earlier value within
    # `limit` records, or missing; so truncating the future never changes the past.
    n = len(values)
    frame = pl.DataFrame(
        {
            "harpnum": [7] * n,
            "t_rec": [T0 + timedelta(minutes=12 * i) for i in range(n)],
            "usflux": pl.Series(values, dtype=pl.Float64),
        }
    )
    out, rep = impute_forward(frame, ["usflux"], limit_records=limit)
    got = out["usflux"].to_list()
    for k in range(1, n + 1):
        head, _ = impute_forward(frame.head(k), ["usflux"], limit_records=limit)
        assert head["usflux"].to_list() == got[:k]
    last, last_i = None, None
    for i, v in enumerate(values):
        if v is not None:
            assert got[i] == v
            last, last_i = v, i
        elif last is not None and i - last_i <= limit:
            assert got[i] == last
        else:
            assert got[i] is None
    assert rep.imputed["usflux"] == sum(v is None for v in values) - rep.still_missing["usflux"]


@pytest.fixture(scope="module")
def folds(data_dir):
    read = lambda k: read_sun2022(data_dir / f"sharp/sun2022_sharp_m24h_fold{k}.csv.gz")  # noqa: E731
    return read(0).select("harpnum", "t_rec", *KEYS), read(1).select("harpnum", "t_rec", *KEYS)


def _mask(frame: pl.DataFrame, frac: float, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.random((frame.height, len(KEYS))) < frac
    masked = frame.with_columns(
        [pl.when(pl.Series(m[:, j])).then(None).otherwise(pl.col(c)).alias(c)
         for j, c in enumerate(KEYS)]
    )
    return masked, m


def _rel_err(filled: pl.DataFrame, truth: pl.DataFrame, m: np.ndarray) -> float:
    f, t = filled.select(KEYS).to_numpy(), truth.select(KEYS).to_numpy()
    scale = np.nanstd(t, axis=0)
    return float(np.mean(np.abs(f - t)[m] / np.broadcast_to(scale, t.shape)[m]))


def test_forward_fill_on_real_fold(folds):
    _, test = folds
    masked, m = _mask(test, 0.05, seed=0)
    out, rep = impute_forward(masked, limit_records=1)
    assert rep.imputed.keys() == set(KEYS)
    assert rep.total_imputed + rep.total_missing == int(m.sum())
    filled = out.select(KEYS).to_numpy()
    ok = m & ~np.isnan(filled.astype(float))
    assert ok.sum() == rep.total_imputed > 0.8 * m.sum()
    # one 96-min step back is much closer to the truth than the column mean
    mean_fill = masked.with_columns([pl.col(c).fill_null(pl.col(c).mean()) for c in KEYS])
    assert _rel_err(out.with_columns(pl.col(KEYS).fill_null(0.0)), test, ok) < 0.5 * _rel_err(
        mean_fill, test, ok
    )


# IterativeImputer may stop at max_iter (a ConvergenceWarning, result usable); it is asserted on
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("method", ["knn", "iterative"])
def test_model_imputer_fit_on_train_transform_test(folds, method):
    train, test = folds
    train_masked, _ = _mask(train.head(3000), 0.05, seed=1)
    test_masked, m = _mask(test.head(2000), 0.1, seed=2)
    imp = ModelImputer(method, KEYS).fit(train_masked)
    out, rep = imp.transform_with_report(test_masked)
    assert rep.total_imputed == int(m.sum()) and rep.total_missing == 0
    # observed cells are returned unchanged
    obs = ~m
    np.testing.assert_array_equal(
        out.select(KEYS).to_numpy()[obs], test_masked.select(KEYS).to_numpy()[obs]
    )
    # the model uses the other keywords of the record: better than the training mean
    mean_fill = test_masked.with_columns(
        [pl.col(c).fill_null(float(train_masked[c].mean())) for c in KEYS]
    )
    assert _rel_err(out, test.head(2000), m) < 0.8 * _rel_err(mean_fill, test.head(2000), m)


def test_model_imputer_real_swan_gaps_and_errors(data_dir):
    swan = read_swan_sf_mvts(data_dir / "swan_sf/mvts")
    n_before = int(swan.select("totusjh", "totpot").null_count().sum_horizontal()[0])
    assert n_before > 0  # the real files do have gaps
    with pytest.warns(DataQualityWarning, match="no observed value"):
        imp = ModelImputer("knn").fit(swan)  # area, area_acr are all null in SWAN-SF
    assert {"area", "area_acr"} <= set(imp.skipped_columns_)
    out, rep = imp.transform_with_report(swan)
    assert rep.imputed["area"] == 0 and rep.still_missing["area"] == swan.height
    assert out.select(imp.columns_).null_count().sum_horizontal()[0] == 0
    assert rep.imputed["totusjh"] == swan["totusjh"].null_count()
    with pytest.raises(ModelError, match="not fitted"):
        ModelImputer().transform(swan)
    with pytest.raises(ConfigError, match="method"):
        ModelImputer("mice").fit(swan)
    with pytest.raises(ConfigError, match="fitted columns"):
        imp.transform(swan.drop("usflux"))
