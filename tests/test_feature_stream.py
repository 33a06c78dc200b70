"""Streamed running statistics equal the in-memory ones, chunk by chunk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_core.errors import ConfigError, StoreError
from flare_core.feature_stream import featurize_store, region_chunks, write_running_stats
from flare_core.features import RunningStats, build_running_stats
from flare_core.schema import SERIES_DEFINITIVE_CEA, SERIES_NRT_CEA, UTC_DATETIME, conform_sharp
from flare_core.store import Store

T0 = datetime(2014, 1, 1, tzinfo=UTC)
KW = ("usflux", "meangbz")


def _synthetic(n_regions: int, per_region: int, seed: int = 0) -> pl.DataFrame:
    """SYNTHETIC regions at 12-min cadence with gaps, overlapping in time, 2 % missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_regions):
        minute = int(rng.integers(0, 5 * 24 * 60 // 12)) * 12
        for _ in range(per_region):
            minute += 12 * int(rng.choice([1, 1, 1, 2, 5, 30, 150]))
            a = None if rng.random() < 0.02 else float(rng.normal(1e21, 1e19))
            rows.append({"harpnum": 10 + h, "t_rec": T0 + timedelta(minutes=minute),
                         "usflux": a, "meangbz": float(rng.normal(50, 5))})
    return pl.DataFrame(rows, schema={"harpnum": pl.Int64, "t_rec": UTC_DATETIME,
                                      "usflux": pl.Float64, "meangbz": pl.Float64})


def _read(out_dir) -> pl.DataFrame:
    return pl.read_parquet(out_dir / "part-*.parquet").sort(["harpnum", "t_rec"])


def _assert_close(got: pl.DataFrame, want: pl.DataFrame, rtol: float = 1e-12) -> None:
    """Same keys, same nulls, values within ``rtol`` (``atol`` = rtol x column scale)."""
    assert got.columns == want.columns
    assert got.select("harpnum", "t_rec").equals(want.select("harpnum", "t_rec"))
    for c in want.columns[2:]:
        g, w = got[c].to_numpy().astype(float), want[c].to_numpy().astype(float)
        assert np.array_equal(np.isnan(g), np.isnan(w)), c
        ok = ~np.isnan(w)
        scale = np.max(np.abs(w[ok]), initial=1.0)
        np.testing.assert_allclose(g[ok], w[ok], rtol=rtol, atol=rtol * scale, err_msg=c)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(max_records=st.integers(1, 200), seed=st.integers(0, 10))
def test_region_chunks_stream_equals_in_memory(tmp_path, max_records, seed):
    frame = _synthetic(6, 40, seed)
    cfg = RunningStats(keywords=KW)
    out = tmp_path / f"s{max_records}_{seed}"
    chunks = list(region_chunks(frame, max_records=max_records))
    assert sum(c.height for c in chunks) == frame.height
    report = write_running_stats(chunks, out, cfg)
    assert report.rows == frame.height and len(report.files) == len(chunks)
    assert _read(out).equals(build_running_stats(frame, cfg))


def test_store_time_chunks_with_lookback_equal_in_memory(tmp_path):
    frame = _synthetic(12, 150, seed=3)
    store = Store(tmp_path / "store")
    store.write_sharp(conform_sharp(frame.with_columns(pl.lit("synthetic").alias("source"))))
    cfg = RunningStats(keywords=KW)
    want = build_running_stats(store.read_sharp(), cfg)
    # ~ 2 days per chunk: regions and 24-h windows cross every chunk boundary
    report = featurize_store(store, tmp_path / "f64", cfg, max_records=300)
    assert len(report.files) > 3
    assert report.records_read > report.rows == want.height
    # the sliding state restarts at each chunk: the same values up to rounding
    _assert_close(_read(tmp_path / "f64"), want)
    # float32: one rounding of the float64 values, nulls where they were
    featurize_store(store, tmp_path / "f32", cfg, max_records=300, float32=True)
    got = _read(tmp_path / "f32")
    assert all(got[c].dtype == pl.Float32 for c in want.columns[2:])
    _assert_close(got, want, rtol=2.0**-24)


def test_store_default_keywords_are_the_non_null_ones(tmp_path):
    frame = _synthetic(2, 30).with_columns(pl.lit(None, pl.Float64).alias("meangbz"))
    store = Store(tmp_path / "store")
    store.write_sharp(conform_sharp(frame.with_columns(pl.lit("synthetic").alias("source"))))
    report = featurize_store(store, tmp_path / "out", max_records=20)
    assert report.keywords == ("usflux",)
    _assert_close(_read(tmp_path / "out"),
                  build_running_stats(store.read_sharp(), RunningStats(keywords=("usflux",))))


def test_stream_refuses_split_regions_and_stale_output(tmp_path):
    frame = _synthetic(2, 20)
    cfg = RunningStats(keywords=KW)
    halves = [frame.slice(0, 10), frame.slice(10)]
    with pytest.raises(ConfigError, match="more than one chunk"):
        write_running_stats(halves, tmp_path / "a", cfg)
    write_running_stats(region_chunks(frame, max_records=20), tmp_path / "b", cfg)
    with pytest.raises(ConfigError, match="overwrite=True"):
        write_running_stats(region_chunks(frame), tmp_path / "b", cfg)
    report = write_running_stats(region_chunks(frame), tmp_path / "b", cfg, overwrite=True)
    assert len(report.files) == 1 and _read(tmp_path / "b").height == frame.height


def _legacy_store(root, frame: pl.DataFrame) -> Store:
    """A format-1 store written by hand: no ``series`` column (series by ``source``), one day
    without ``meangbz`` and one with ``usflux`` stored as Float32 (the general read path)."""
    import json

    old = conform_sharp(frame.with_columns(pl.lit("synthetic").alias("source"))).drop(
        "series", "available_at")
    old = old.with_columns(pl.when(pl.col("harpnum") % 3 == 0).then(pl.lit("jsoc_nrt"))
                           .otherwise(pl.col("source")).alias("source"))
    parts = {}
    split = old.with_columns(old["t_rec"].dt.strftime("%Y-%m-%d").alias("_day")).partition_by(
        "_day", as_dict=True, include_key=False)
    for i, ((d,), part) in enumerate(sorted(split.items())):
        if i == 1:
            part = part.drop("meangbz")
        if i == 2:
            part = part.with_columns(pl.col("usflux").cast(pl.Float32))
        rel = f"sharp/day={d}/part-g000001-legacy.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(root / rel)
        parts[d] = [rel]
    (root / "MANIFEST.json").write_text(json.dumps({"format": 1, "generation": 1, "tables": {
        "sharp": {"partitions": parts, "rows": old.height}}}))
    return Store(root)


@pytest.mark.parametrize("series", [SERIES_DEFINITIVE_CEA, SERIES_NRT_CEA])
def test_iter_sharp_equals_read_sharp_projected(tmp_path, series):
    store = _legacy_store(tmp_path / "store", _synthetic(9, 60, seed=4))
    want = store.read_sharp(series=series).select("harpnum", "t_rec", *KW)
    batches = list(store.iter_sharp(list(KW), series=series, days_per_batch=2))
    assert len(batches) > 2
    ends = [b["t_rec"].dt.date() for b in batches if b.height]
    assert all(a.max() < b.min() for a, b in zip(ends, ends[1:], strict=False))  # day order
    got = pl.concat(batches).sort("harpnum", "t_rec")
    assert got.equals(want)
    with pytest.raises(StoreError, match="several series"):
        next(store.iter_sharp(list(KW)))


def test_featurize_store_one_series_of_a_legacy_store(tmp_path):
    store = _legacy_store(tmp_path / "store", _synthetic(9, 60, seed=4))
    cfg = RunningStats(keywords=KW)
    want = build_running_stats(store.read_sharp(series=SERIES_NRT_CEA), cfg)
    report = featurize_store(store, tmp_path / "out", cfg, series=SERIES_NRT_CEA,
                             max_records=40)
    assert len(report.files) > 3 and report.rows == want.height
    _assert_close(_read(tmp_path / "out"), want)


def test_keywords_alone_or_together_give_the_same_bits():
    """One keyword runs on blocks of regions in parallel, many run one keyword per thread:
    each keyword's columns are bit-identical either way."""
    frame = _synthetic(8, 120, seed=2).with_columns(
        (pl.col("meangbz") * 3.0).alias("meangam"), (pl.col("usflux") * -2.0).alias("totpot"))
    both = build_running_stats(frame, RunningStats(keywords=("usflux", "meangbz", "meangam",
                                                             "totpot")))
    for kw in ("usflux", "totpot"):
        alone = build_running_stats(frame, RunningStats(keywords=(kw,)))
        assert alone.equals(both.select(alone.columns))


def test_output_buffers_cycle_through_generations():
    from flare_core.features import OutputBuffers

    pool = OutputBuffers(generations=2)
    a = pool.take(3, 100, np.float32)
    b = pool.take(3, 90, np.float32)
    assert all(x.shape == (15, 100) and x.flags.c_contiguous for x in a)
    assert not any(np.shares_memory(x, y) for x in a for y in b)  # the previous chunk's
    c = pool.take(3, 110, np.float32)  # reuses the first set (grown within its slack)
    assert all(np.shares_memory(x, y) for x, y in zip(a, c, strict=True))
    assert all(x.shape == (15, 110) for x in c)
    d = pool.take(3, 90, np.float64)  # another dtype: new arrays
    assert all(x.dtype == np.float64 and not np.shares_memory(x, y)
               for x, y in zip(d, b, strict=True))


def test_featurize_command_streams_the_store_and_refuses_bad_runs(tmp_path):
    """``flareflow featurize``: the store's running statistics in part files, the same as in
    memory; an existing output or an empty store is exit 2 with one line, nothing written."""
    import json

    from typer.testing import CliRunner

    from flareflow.cli import app

    frame = _synthetic(8, 120, seed=5)
    store = Store(tmp_path / "store")
    store.write_sharp(conform_sharp(frame.with_columns(pl.lit("synthetic").alias("source"))))
    out = tmp_path / "features"
    args = ["featurize", str(out), "--store", str(store.root), "--max-records", "200"]
    runner = CliRunner()
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    files = sorted(out.glob("part-*.parquet"))
    assert summary["rows"] == frame.height and summary["files"] == len(files) > 3
    assert summary["keywords"] == len(KW) and summary["features"] == 15 * len(KW)
    want = build_running_stats(store.read_sharp(), RunningStats(keywords=KW))
    _assert_close(_read(out), want)

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert sorted(out.glob("part-*.parquet")) == files
    assert runner.invoke(app, [*args, "--overwrite", "--float32"]).exit_code == 0
    assert all(_read(out)[c].dtype == pl.Float32 for c in want.columns[2:])

    empty = runner.invoke(app, ["featurize", str(tmp_path / "none"), "--store",
                                str(tmp_path / "no-store")])
    assert empty.exit_code == 2 and "nothing to featurise" in empty.stderr
    assert not (tmp_path / "none").exists()
