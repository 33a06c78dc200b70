"""Tests for flare_core.splits on a real sun2022 fold: no region is ever in two parts."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_core.errors import ConfigError
from flare_core.sources.files import read_sun2022, read_sun2022_labels
from flare_core.splits import chronological_split, region_kfold, repeated_region_cv


@pytest.fixture(scope="module")
def fold(data_dir) -> pl.DataFrame:
    path = data_dir / "sharp/sun2022_sharp_m24h_fold1.csv.gz"
    sharp = read_sun2022(path).select("harpnum", "t_rec", "r_value")
    labels = read_sun2022_labels(path)
    return sharp.join(labels, on=["harpnum", "t_rec"], how="inner", validate="1:1")


def _harps(frame: pl.DataFrame, idx: np.ndarray) -> set[int]:
    return set(frame["harpnum"].to_numpy()[idx].tolist())


def _assert_partition(n: int, *parts: np.ndarray) -> None:
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n


def test_chronological_split_keeps_regions_whole(fold):
    split = chronological_split(fold, train_end="2013-01-01", validation_end="2015-01-01")
    _assert_partition(fold.height, *split)
    tr, va, te = (_harps(fold, p) for p in split)
    assert tr and va and te
    assert not (tr & va) and not (tr & te) and not (va & te)
    first = fold.group_by("harpnum").agg(pl.col("t_rec").min().alias("first"))
    b0, b1 = datetime(2013, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC)
    for h, t in first.iter_rows():
        expected = tr if t < b0 else va if t < b1 else te
        assert h in expected
    # a region that starts before the boundary but runs past it stays in train
    last = fold.group_by("harpnum").agg(pl.col("t_rec").max().alias("last"))
    straddle = first.join(last, on="harpnum").filter(
        (pl.col("first") < b0) & (pl.col("last") >= b0)
    )
    if straddle.height:
        assert set(straddle["harpnum"].to_list()) <= tr


def test_chronological_split_naive_times_and_errors(fold):
    naive = fold.with_columns(pl.col("t_rec").dt.replace_time_zone(None))
    a = chronological_split(naive, train_end="2013-01-01", validation_end="2015-01-01")
    b = chronological_split(
        fold,
        train_end=datetime(2013, 1, 1, tzinfo=UTC),
        validation_end=datetime(2015, 1, 1, tzinfo=UTC),
    )
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ConfigError, match="before train_end"):
        chronological_split(fold, train_end="2015-01-01", validation_end="2013-01-01")
    with pytest.raises(ConfigError, match="lacks columns"):
        chronological_split(fold.drop("harpnum"), train_end="2013", validation_end="2014")


def test_region_kfold_real_fold(fold):
    splits = region_kfold(fold, n_splits=4, stratify="label_m24_source", seed=1)
    assert len(splits) == 4
    tests = [te for _, te in splits]
    _assert_partition(fold.height, *tests)
    rate = fold["label_m24_source"].mean()
    for tr, te in splits:
        assert not (_harps(fold, tr) & _harps(fold, te))
        _assert_partition(fold.height, tr, te)
        # stratification keeps every test fold's flare rate near the overall rate
        assert fold["label_m24_source"].to_numpy()[te].mean() == pytest.approx(rate, abs=0.05)
    again = region_kfold(fold, n_splits=4, stratify="label_m24_source", seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))
    other = region_kfold(fold, n_splits=4, stratify="label_m24_source", seed=2)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other, strict=True))


def test_repeated_region_cv(fold):
    seen = []
    for r, k, tr, te in repeated_region_cv(fold, n_splits=3, n_repeats=4, seed=7):
        assert not (_harps(fold, tr) & _harps(fold, te))
        _assert_partition(fold.height, tr, te)
        seen.append((r, k, _harps(fold, te)))
    assert [(r, k) for r, k, _ in seen] == [(r, k) for r in range(4) for k in range(3)]
    # repeats are reshuffles, not copies
    firsts = [frozenset(h) for r, k, h in seen if k == 0]
    assert len(set(firsts)) > 1
    rerun = [set(_harps(fold, te)) for *_, te in repeated_region_cv(fold, n_splits=3,
                                                                     n_repeats=4, seed=7)]
    assert rerun == [h for *_, h in seen]


def test_kfold_on_a_bare_region_array():
    # moved from tests/models/test_cox_time.py (its region_validation_split is gone)
    harp = np.repeat(np.arange(20), 5)
    tr, va = region_kfold(pl.DataFrame({"harpnum": harp}), n_splits=4, seed=3)[0]
    assert set(harp[tr]).isdisjoint(harp[va]) and tr.size + va.size == harp.size


def test_splitter_errors():
    frame = pl.DataFrame({"harpnum": [1, 1, 2, None]})
    with pytest.raises(ConfigError, match="null"):
        region_kfold(frame, n_splits=2)
    with pytest.raises(ConfigError, match="null"):
        repeated_region_cv(frame, n_splits=2, n_repeats=1)  # raised eagerly
    with pytest.raises(ConfigError, match="exceeds"):
        region_kfold(pl.DataFrame({"harpnum": [1, 1, 2]}), n_splits=3)
    with pytest.raises(ConfigError, match="n_splits"):
        region_kfold(pl.DataFrame({"harpnum": [1, 2]}), n_splits=1)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=6, max_size=80).filter(lambda g: len(set(g)) >= 3),
    st.integers(2, 3),
    st.integers(0, 2**31 - 1),
)
def test_kfold_never_shares_a_region(groups, n_splits, seed):
    frame = pl.DataFrame({"harpnum": groups})
    for tr, te in region_kfold(frame, n_splits=n_splits, seed=seed):
        assert not (_harps(frame, tr) & _harps(frame, te))
        _assert_partition(frame.height, tr, te)


def test_split_validation_reshuffles_whole_regions_per_seed(fold):
    from flare_core.splits import split_validation

    label = "label_m24_source"
    ever = fold.group_by("harpnum").agg(pl.col(label).any())
    n_pos, n_all = int(ever[label].sum()), ever.height
    vals = []
    for seed in range(5):
        fit, val = split_validation(fold, fraction=0.2, seed=seed, label=label)
        assert fit.height + val.height == fold.height
        v = set(val["harpnum"].to_list())
        assert not v & set(fit["harpnum"].to_list())
        # a fifth of the regions, and a fifth of the flaring ones (stratified by region)
        assert len(v) == pytest.approx(n_all / 5, abs=1)
        pos = set(ever.filter(pl.col(label))["harpnum"].to_list())
        assert len(v & pos) == pytest.approx(n_pos / 5, abs=1)
        vals.append(frozenset(v))
    assert len(set(vals)) == 5  # every seed a different draw
