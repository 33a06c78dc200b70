"""No look-ahead: changing anything after time t leaves every input of records at <= t alone.

"After t" means SHARP records with ``t_rec > t`` and flares with ``peak_time >= t`` (a flare
peaking exactly at t is not yet known at t). The labels of those records DO change, which
shows that the perturbation reaches the pipeline and the test is sensitive.

Running statistics are compared to 1e-12 relative rather than bit for bit: the kernel pads
each chunk of rows to the widest window in the chunk, and that width (hence the summation
order) depends on unrelated rows. A look-ahead leak would show up as an O(1) change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_core.dataset import DatasetColumns, build_dataset
from flare_core.features import RunningStats
from flare_core.schema import UTC_DATETIME
from tests.support import bundled_flares
from tests.test_history import CLASSES, T0, flare_frame

CFG = RunningStats(window_h=4.0, long_window_h=24.0, keywords=("usflux", "r_value"))


def _inputs_equal(a: pl.DataFrame, b: pl.DataFrame, cols: list[str]) -> None:
    assert a.select("harpnum", "t_rec").equals(b.select("harpnum", "t_rec"))
    for c in cols:
        x, y = a[c].to_numpy().astype(float), b[c].to_numpy().astype(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), c
        ok = ~np.isnan(x)
        np.testing.assert_allclose(x[ok], y[ok], rtol=1e-12, atol=0, err_msg=c)


def _check_no_lookahead(sharp, flares, sharp2, flares2, cut: datetime) -> pl.DataFrame:
    """Build both tables, assert the inputs at t_rec <= cut agree; return both label sets."""
    before = pl.col("t_rec") <= cut
    a = build_dataset(sharp, flares, features=CFG).filter(before)
    b = build_dataset(sharp2, flares2, features=CFG).filter(before)
    cols = DatasetColumns.of(a)
    _inputs_equal(a, b, cols.inputs)
    return a.select("harpnum", "t_rec", *cols.labels), b.select(*cols.labels)


def _sharp_rows(draw, start_min: int, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        minute = start_min + 12 * draw(st.integers(0, 24 * 5 * 4))
        rows.append({"harpnum": draw(st.integers(1, 3)),
                     "t_rec": T0 + timedelta(minutes=minute),
                     "usflux": draw(st.one_of(st.none(), st.floats(1e20, 1e22))),
                     "r_value": draw(st.floats(0, 5))})
    return rows


@st.composite
def worlds(draw):
    cut = T0 + timedelta(minutes=12 * draw(st.integers(1, 24 * 5 * 2)))
    past = [r for r in _sharp_rows(draw, 0, draw(st.integers(1, 40))) if r["t_rec"] <= cut]
    future_a = _sharp_rows(draw, 0, draw(st.integers(0, 30)))
    future_b = _sharp_rows(draw, 0, draw(st.integers(0, 30)))
    minutes = st.integers(0, 24 * 5 * 8).map(lambda i: T0 + timedelta(minutes=12 * i))
    flares = draw(st.lists(st.tuples(st.integers(1, 3), minutes, st.sampled_from(CLASSES)),
                           max_size=25))
    flares_b = draw(st.lists(st.tuples(st.integers(1, 3), minutes, st.sampled_from(CLASSES)),
                             max_size=25))

    def sharp(rows):
        return pl.DataFrame(rows, schema={"harpnum": pl.Int64, "t_rec": UTC_DATETIME,
                                          "usflux": pl.Float64, "r_value": pl.Float64})

    def after(rows):
        return [r for r in rows if r["t_rec"] > cut]

    return (cut,
            sharp(past + after(future_a)), flare_frame(flares),
            sharp(past + after(future_b)),
            flare_frame([f for f in flares if f[1] < cut] + [f for f in flares_b if f[1] >= cut]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_future_changes_never_reach_inputs(world):
    cut, sharp, flares, sharp2, flares2 = world
    _check_no_lookahead(sharp, flares, sharp2, flares2, cut)


def test_labels_do_change_and_flare_at_t_is_future():
    t = [T0 + timedelta(minutes=96 * i) for i in range(10)]
    sharp = pl.DataFrame({"harpnum": [5] * 10, "t_rec": t, "usflux": [1e21] * 10,
                          "r_value": [3.0] * 10}, schema_overrides={"t_rec": UTC_DATETIME})
    cut = t[5]
    flares = flare_frame([(5, t[2], "C5.0")])
    # the future: an X flare exactly at the cut and later records with other values
    flares2 = flare_frame([(5, t[2], "C5.0"), (5, cut, "X1.0")])
    sharp2 = sharp.with_columns(
        pl.when(pl.col("t_rec") > cut).then(9e22).otherwise(pl.col("usflux")).alias("usflux"))
    la, lb = _check_no_lookahead(sharp, flares, sharp2, flares2, cut)
    changed = la.drop("harpnum", "t_rec").with_row_index().join(
        lb.with_row_index(), on="index").filter(pl.col("event") != pl.col("event_right"))
    # every record strictly before the cut now sees the X flare as its next event
    assert changed.height == 5
    assert lb["next_flare_class"].to_list()[:5] == ["X1.0"] * 5
    assert lb["next_flare_class"].to_list()[5] is None  # the record AT the cut: peak not > t


def test_real_fold_future_perturbation(data_dir):
    files = pytest.importorskip("flare_core.sources.files")
    flares = bundled_flares(data_dir)
    sharp = files.read_sun2022(data_dir / "sharp" / "sun2022_sharp_m24h_fold2.csv.gz")
    sharp = sharp.filter(pl.col("t_rec") < datetime(2015, 1, 1, tzinfo=T0.tzinfo))
    cut = sharp["t_rec"].sort()[sharp.height // 2]
    keywords = [c for c in ("usflux", "meangbz", "r_value", "area") if c in sharp.columns]
    late = pl.col("t_rec") > cut
    # future records: values scrambled, every other one dropped; future flares: all removed,
    # one M5.0 added per region one hour after the cut
    sharp2 = sharp.with_columns(
        [pl.when(late).then(pl.col(k) * 3 + 1).otherwise(pl.col(k)).alias(k) for k in keywords]
    ).filter(~late | (pl.int_range(pl.len()) % 2 == 0))
    harps = sharp["harpnum"].unique()
    extra = flare_frame([(h, cut + timedelta(hours=1), "M5.0") for h in harps.to_list()])
    flares2 = pl.concat([flares.filter(pl.col("peak_time") < cut), extra.select(flares.columns)])
    la, lb = _check_no_lookahead(sharp, flares, sharp2, flares2, cut)
    assert la.height > 1000
    assert (la["time_to_event_h"] != lb["time_to_event_h"]).sum() > 0
    assert (la["m_within_24h"] != lb["m_within_24h"]).sum() > 0


# ------------------------------------------------------------------ as served (NRT stream)


@pytest.fixture(scope="module")
def nrt_world(data_dir, tmp_path_factory):
    """A model trained on real NRT regions of 2023-06..08 and the NRT stream of 2023-11 with
    its measured serving times, NCEI flares with NRT HARP numbers (the NRT map)."""
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset
    from flare_core.forecasting import ModelBundle
    from flare_core.schema import SERIES_NRT_CEA
    from flare_core.sources import read_harp_noaa_map, read_ncei_goes_flares
    from flare_core.sources.harp_noaa import attach_harpnum
    from flare_core.training import train_all
    from tests.test_store_series import nrt_sharp

    sharp = nrt_sharp(data_dir)
    nrt_map = read_harp_noaa_map(data_dir / "sharp_nrt" / "harp_noaa_nrt.txt")
    flares = attach_harpnum(read_ncei_goes_flares(
        data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz").filter(
        pl.col("peak_time") >= datetime(2023, 5, 1, tzinfo=T0.tzinfo)), nrt_map,
        records=sharp.select("series", "harpnum", "t_rec"), series=SERIES_NRT_CEA)
    spans = sharp.group_by("harpnum").agg(pl.col("t_rec").min().alias("t0"),
                                          pl.col("t_rec").max().alias("t1"))
    early = spans.filter(pl.col("t1") < datetime(2023, 9, 1, tzinfo=T0.tzinfo))["harpnum"]
    flaring = flares.filter(pl.col("goes_class").str.starts_with("M"))["harpnum"].drop_nulls()
    train = (early.filter(early.is_in(flaring.implode())).sort().head(15).to_list()
             + early.filter(~early.is_in(flaring.implode())).sort().head(25).to_list())
    cfg = TrainConfig.quick(models=("climatology", "persistence", "logistic"))
    ds = build_model_dataset(sharp.filter(pl.col("harpnum").is_in(train)), flares, cfg)
    bundle = ModelBundle.load(train_all(ds, tmp_path_factory.mktemp("nrt_model"), cfg))
    issue = datetime(2023, 11, 13, 12, 5, tzinfo=T0.tzinfo)
    live = sharp.filter(pl.col("t_rec").is_between(issue - timedelta(days=3),
                                                   issue + timedelta(days=1)))
    return bundle, live, flares, issue


def test_forecast_from_the_as_served_store_equals_the_full_store(nrt_world, tmp_path):
    """forecast(t) from a store filled only with what JSOC had served by t equals forecast(t)
    from a store holding everything, later records and revisions included."""
    import warnings

    from flare_core.errors import DataQualityWarning
    from flare_core.forecasting import forecast_at
    from flare_core.schema import with_served_at
    from flare_core.store import Store

    bundle, live, flares, t = nrt_world
    assert live.filter(pl.col("harpnum") == 9222)["available_at"].null_count() == 0  # measured
    # revisions of region 9222: 3 % larger values re-delivered 1 h after first delivery,
    # for 10 records 4-6 h before t (revised by t) and 10 from 2 h before t (revised later)
    region = live.filter(pl.col("harpnum") == 9222).sort("t_rec")
    before = region.filter(pl.col("t_rec") <= t - timedelta(hours=4)).tail(10)
    after = region.filter(pl.col("t_rec") > t - timedelta(hours=2)).head(10)
    revised = pl.concat([before, after]).with_columns(
        pl.col(k) * 1.03 for k in ("usflux", "totusjh", "totusjz", "totpot", "absnjzh",
                                   "savncpp")).with_columns(
        pl.col("available_at") + timedelta(hours=1))
    full = Store(tmp_path / "full")
    full.write_sharp(live)
    assert full.write_sharp(revised).rows_revised == 20
    served = with_served_at(live).filter(pl.col("served_at") <= t).drop("served_at")
    partial = Store(tmp_path / "partial")
    partial.write_sharp(served)
    in_time = revised.filter(pl.col("available_at") <= t)
    assert in_time.height == 10
    partial.write_sharp(in_time)
    assert partial.read_sharp()["t_rec"].max() < t
    known = flares.filter(pl.col("peak_time") < t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        a = forecast_at(bundle, full.read_sharp(as_of=t), flares, t)
        b = forecast_at(bundle, partial.read_sharp(), known, t)
        first_delivery = forecast_at(bundle, served, known, t)
    assert a.height > 0 and a.equals(b)
    # sensitivity: the revisions served by t reach the forecast of their region
    assert not a.filter(pl.col("harpnum") == 9222).equals(
        first_delivery.filter(pl.col("harpnum") == 9222))
    assert a.filter(pl.col("harpnum") != 9222).equals(
        first_delivery.filter(pl.col("harpnum") != 9222))
