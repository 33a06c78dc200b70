"""The store knows each record's series and when each value was served (real NRT data).

Data: ``data/sharp_nrt/`` (the NRT SHARP stream JSOC served in 2023, its HARP map and the
measured first-seen times of 30 regions; see data/README.md) and the sun2022 fold 0 slice.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from flare_core.errors import ConfigError, StoreError
from flare_core.schema import (
    DEFAULT_NRT_LATENCY,
    SERIES_DEFINITIVE_CEA,
    SERIES_NRT_CEA,
    conform_sharp,
    with_served_at,
)
from flare_core.sources import read_harp_noaa_map, read_ncei_goes_flares, read_sun2022
from flare_core.sources.harp_noaa import attach_harpnum
from flare_core.store import Store

NRT = "sharp_nrt/hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
FIRST_SEEN = "sharp_nrt/jsoc_nrt_sharp_first_seen_sample_2021-2023.csv.gz"
NRT_MAP = "sharp_nrt/harp_noaa_nrt.txt"
DEF_MAP = "harp_noaa/all_harps_with_noaa_ars.txt"
NCEI = "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
TAI_UTC_S = 37  # TAI - UTC since 2017


def _tai(col: str) -> pl.Expr:
    return (pl.col(col).str.strptime(pl.Datetime("us"), "%Y.%m.%d_%H:%M:%S_TAI")
            .dt.replace_time_zone("UTC") - pl.duration(seconds=TAI_UTC_S))


def first_seen(data_dir: Path) -> pl.DataFrame:
    """(harpnum, t_rec, available_at): when each sampled NRT record first appeared."""
    return pl.read_csv(data_dir / FIRST_SEEN).select(
        pl.col("HARPNUM").cast(pl.Int64).alias("harpnum"), _tai("T_REC").alias("t_rec"),
        pl.col("first_seen_utc").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ")
        .alias("available_at"))


def nrt_sharp(data_dir: Path, harpnums: list[int] | None = None) -> pl.DataFrame:
    """Canonical NRT SHARP rows (series `SERIES_NRT_CEA`), ``available_at`` from the first-seen
    sample where it has the record (null otherwise)."""
    lf = pl.scan_csv(data_dir / NRT)
    if harpnums is not None:
        lf = lf.filter(pl.col("HARPNUM").is_in(harpnums))
    raw = lf.collect()
    df = raw.select(pl.col("HARPNUM").cast(pl.Int64).alias("harpnum"), _tai("T_REC").alias("t_rec"),
                    *[pl.col(c).cast(pl.Float64).alias(c.lower()) for c in raw.columns[2:]])
    df = df.join(first_seen(data_dir), on=["harpnum", "t_rec"], how="left")
    return conform_sharp(df.with_columns(pl.lit(SERIES_NRT_CEA).alias("series"),
                                         pl.lit("jsoc_nrt").alias("source")))


@pytest.fixture(scope="module")
def nrt(data_dir) -> pl.DataFrame:
    """Two sampled regions with measured serving times for every record."""
    df = nrt_sharp(data_dir, [8886, 9222])  # 9222: NOAA 13486
    assert df["available_at"].null_count() < 0.05 * df.height
    return df.drop_nulls("available_at")


@pytest.fixture(scope="module")
def fold0(data_dir) -> pl.DataFrame:
    df = read_sun2022(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz")
    return df.with_columns(pl.col("series").fill_null(SERIES_DEFINITIVE_CEA)).filter(
        pl.col("t_rec") < datetime(2011, 6, 1, tzinfo=UTC))


def test_default_latency_is_the_measured_median(data_dir):
    fs = first_seen(data_dir)
    median_s = (fs["available_at"] - fs["t_rec"]).dt.total_seconds().median()
    assert abs(median_s - DEFAULT_NRT_LATENCY.total_seconds()) < 1.0
    assert 95 * 60 < median_s < 105 * 60


def test_series_are_separate_namespaces(store_root, fold0, nrt):
    st = Store(store_root)
    # the same HARP numbers in both series: different regions, both kept
    clash = nrt.with_columns(pl.lit(int(fold0["harpnum"][0])).alias("harpnum")).head(50)
    st.write_sharp(fold0)
    rep = st.write_sharp(clash)
    assert rep.rows_added == 50 and rep.rows_updated == 0
    assert st.series() == [SERIES_DEFINITIVE_CEA, SERIES_NRT_CEA]
    with pytest.raises(StoreError, match=r"several series.*hmi.sharp_cea_720s_nrt.*series="):
        st.read_sharp()
    assert st.read_sharp(series=SERIES_DEFINITIVE_CEA).equals(
        fold0.sort("harpnum", "t_rec"))
    assert st.read_sharp(series=SERIES_NRT_CEA).drop("noaa_ars").equals(
        clash.sort("harpnum", "t_rec").drop("noaa_ars"))
    info = st.info()["tables"]["sharp"]
    assert info["series"] == {SERIES_DEFINITIVE_CEA: fold0.height, SERIES_NRT_CEA: 50}
    assert info["rows"] == fold0.height + 50


def test_write_sharp_series_argument(store_root, fold0):
    st = Store(store_root)
    blank = fold0.head(20).with_columns(pl.lit(None, dtype=pl.Utf8).alias("series"))
    st.write_sharp(blank, series=SERIES_NRT_CEA)
    assert st.series() == [SERIES_NRT_CEA]
    with pytest.raises(StoreError, match="another series"):
        st.write_sharp(fold0.head(3), series=SERIES_NRT_CEA)


def test_format1_store_still_reads(store_root, fold0):
    """A store written before series/available_at existed: rows default by source."""
    old = conform_sharp(fold0).drop("series", "available_at")
    old = old.with_columns(pl.when(pl.int_range(pl.len()) < 10).then(pl.lit("jsoc_nrt"))
                           .otherwise(pl.col("source")).alias("source"))
    day = old["t_rec"].dt.strftime("%Y-%m-%d")
    parts = {}
    for (d,), part in old.with_columns(day.alias("_day")).partition_by(
            "_day", as_dict=True, include_key=False).items():
        rel = f"sharp/day={d}/part-g000001-legacy.parquet"
        (store_root / rel).parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(store_root / rel)
        parts[d] = [rel]
    hm = read_harp_noaa_map(Path(__file__).parents[1] / "data" / DEF_MAP).drop("series")
    hm.write_parquet(store_root / "hm.parquet")
    (store_root / "harp_map").mkdir()
    (store_root / "hm.parquet").rename(store_root / "harp_map" / "part-legacy.parquet")
    (store_root / "MANIFEST.json").write_text(json.dumps({"format": 1, "generation": 1, "tables": {
        "sharp": {"partitions": parts, "rows": old.height},
        "harp_map": {"files": ["harp_map/part-legacy.parquet"], "rows": hm.height}}}))
    st = Store(store_root)
    assert st.series() == [SERIES_DEFINITIVE_CEA, SERIES_NRT_CEA]
    definitive = st.read_sharp(series=SERIES_DEFINITIVE_CEA)
    assert definitive.height == old.height - 10
    assert definitive["noaa_ars"].null_count() < definitive.height  # legacy map = definitive
    assert st.read_sharp(series=SERIES_NRT_CEA).height == 10
    assert st.read_sharp(series=SERIES_NRT_CEA)["noaa_ars"].null_count() == 10  # no NRT map
    rep = st.write_sharp(fold0.tail(5).with_columns(pl.col("usflux") * 1.01))
    assert rep.rows_updated == 5
    assert json.loads((store_root / "MANIFEST.json").read_text())["format"] == 2
    assert st.info()["tables"]["sharp"]["series"][SERIES_DEFINITIVE_CEA] == old.height - 10


def test_nrt_map_inferred_from_file_name(data_dir, tmp_path):
    nrt_map = read_harp_noaa_map(data_dir / NRT_MAP)
    assert nrt_map["series"].unique().to_list() == [SERIES_NRT_CEA]
    assert nrt_map["harpnum"].n_unique() == 1320
    override = read_harp_noaa_map(data_dir / NRT_MAP, series=SERIES_DEFINITIVE_CEA)
    assert override["series"].unique().to_list() == [SERIES_DEFINITIVE_CEA]
    assert read_harp_noaa_map(data_dir / DEF_MAP)["series"].unique().to_list() == [
        SERIES_DEFINITIVE_CEA]


def test_harp_maps_per_series(store_root, data_dir, fold0, nrt):
    st = Store(store_root)
    nrt_map, def_map = read_harp_noaa_map(data_dir / NRT_MAP), read_harp_noaa_map(data_dir / DEF_MAP)
    st.write_sharp(fold0)
    st.write_sharp(nrt)
    st.write_harp_map(def_map)
    st.write_harp_map(nrt_map)
    with pytest.raises(StoreError, match="several series"):
        st.read_harp_map()
    assert st.read_harp_map(series=SERIES_NRT_CEA).drop("series").equals(nrt_map.drop("series"))
    # writing one series' map again leaves the other's alone
    assert st.write_harp_map(def_map).partitions_written == 0
    assert st.read_harp_map(series=SERIES_DEFINITIVE_CEA).height == def_map.height
    # NOAA numbers of each record come from the map of its own series
    got = st.read_sharp(series=SERIES_NRT_CEA)
    assert set(got.filter(pl.col("harpnum") == 9222)["noaa_ars"]) == {"13486"}
    assert got.filter(pl.col("harpnum") == 8886)["noaa_ars"].null_count() == (
        got.filter(pl.col("harpnum") == 8886).height)  # not in the NRT map
    assert 13486 not in def_map.filter(pl.col("harpnum") == 9222)["noaa_ar"].to_list()
    info = st.info()["tables"]["harp_map"]["series"]
    assert info == {SERIES_DEFINITIVE_CEA: def_map.height, SERIES_NRT_CEA: nrt_map.height}
    with pytest.raises(StoreError, match="no series"):
        st.write_harp_map(nrt_map.drop("series"))


def test_cross_series_lookup_refused(data_dir, nrt):
    flares = read_ncei_goes_flares(data_dir / NCEI).filter(
        pl.col("peak_time").is_between(datetime(2023, 9, 5, tzinfo=UTC),
                                       datetime(2023, 9, 11, tzinfo=UTC)))
    def_map = read_harp_noaa_map(data_dir / DEF_MAP)
    with pytest.raises(ConfigError, match="HARP numbers are per series"):
        attach_harpnum(flares, def_map, records=nrt.select("series", "harpnum", "t_rec"))
    with pytest.raises(ConfigError, match="per series"):
        attach_harpnum(flares, def_map, series=SERIES_NRT_CEA)
    both = pl.concat([def_map, read_harp_noaa_map(data_dir / NRT_MAP)])
    with pytest.raises(ConfigError, match="mixes"):
        attach_harpnum(flares, both)
    out = attach_harpnum(flares, read_harp_noaa_map(data_dir / NRT_MAP),
                         records=nrt.select("series", "harpnum", "t_rec"))
    assert out.height == flares.height


def test_noaa_region_on_two_nrt_harps(data_dir):
    """NOAA 13514 is on NRT HARPs 9334 and 9338: its flares go to one HARP, the smallest
    number whose record span contains the peak (attach_harpnum docstring)."""
    nrt_map = read_harp_noaa_map(data_dir / NRT_MAP)
    assert set(nrt_map.filter(pl.col("noaa_ar") == 13514)["harpnum"]) == {9334, 9338}
    records = nrt_sharp(data_dir, [9334, 9338]).select("series", "harpnum", "t_rec")
    spans = records.group_by("harpnum").agg(pl.col("t_rec").min().alias("t0"),
                                            pl.col("t_rec").max().alias("t1"))
    flares = read_ncei_goes_flares(data_dir / NCEI).filter(pl.col("noaa_ar") == 13514)
    assert flares.height > 0
    out = attach_harpnum(flares, nrt_map, records=records, series=SERIES_NRT_CEA)
    for peak, harp in out.select("peak_time", "harpnum").iter_rows():
        inside = spans.filter((pl.col("t0") <= peak) & (pl.col("t1") >= peak))["harpnum"]
        if inside.len():
            assert harp == inside.min()
        assert harp in (9334, 9338)
    assert out.height == flares.height


def test_revisions_and_as_of(store_root, nrt):
    st = Store(store_root)
    first = st.write_sharp(nrt)
    assert first.rows_revised == 0
    # a real delivery, then 30 records re-delivered two hours later with other values
    revised = nrt.sample(30, seed=3).with_columns(
        pl.col("usflux") * 1.02, (pl.col("available_at") + timedelta(hours=2)))
    rep = st.write_sharp(revised)
    assert rep.rows_updated == 30 and rep.rows_revised == 30 and rep.rows_added == 0
    gen = rep.generation
    # identical re-delivery (of either version, any later time): nothing moves
    for again in (revised, nrt, revised.with_columns(pl.col("available_at") + timedelta(days=1))):
        rep = st.write_sharp(again)
        assert (rep.rows_updated, rep.rows_revised, rep.rows_added, rep.generation) == (
            0, 0, 0, gen)
    assert st.info()["tables"]["sharp_revisions"]["rows"] == 30
    latest = st.read_sharp()
    key = ["harpnum", "t_rec"]
    assert latest.join(revised.select(*key, pl.col("usflux").alias("want")), on=key).select(
        (pl.col("usflux") == pl.col("want")).all()).item()
    # as of any time, each record has the value that was current then
    for t in revised["available_at"].sort().gather([0, 15, 29]).to_list():
        got = st.read_sharp(as_of=t)
        served = with_served_at(nrt).filter(pl.col("served_at") <= t)
        assert got.select(key).equals(served.sort(key).select(key))
        current = revised.filter(pl.col("available_at") <= t).select(*key)
        want = (pl.concat([nrt.join(current, on=key, how="anti"),
                           revised.join(current, on=key, how="semi")]).sort(key))
        want = want.filter(pl.struct(key).is_in(got.select(pl.struct(key)).to_series().implode()))
        assert got.drop("noaa_ars").equals(want.drop("noaa_ars"))


def test_as_of_uses_default_latency_for_unknown_times(store_root, fold0):
    st = Store(store_root, default_latency=timedelta(hours=3))
    st.write_sharp(fold0)
    t = fold0["t_rec"].sort()[fold0.height // 2]
    got = st.read_sharp(as_of=t)
    assert got["t_rec"].max() <= t - timedelta(hours=3)
    assert got.height == fold0.filter(pl.col("t_rec") <= t - timedelta(hours=3)).height
    assert st.read_sharp(as_of=t, default_latency=timedelta(0)).height == fold0.filter(
        pl.col("t_rec") <= t).height


def test_missing_listed_file_is_a_clear_error(store_root, fold0):
    st = Store(store_root)
    st.write_sharp(fold0)
    victim = st._files("sharp")[3]
    victim.unlink()
    with pytest.raises(StoreError, match=victim.name):
        st.read_sharp()


@pytest.mark.parametrize(("grace_s", "n_reads"), [(300.0, 1000), (0.0, 300)])
def test_readers_never_fail_while_a_writer_commits(store_root, fold0, grace_s, n_reads):
    """20 commits rewriting the same day partitions while 1,000 reads run: no read fails
    (superseded files stay for the grace period; without one, a read that finds a file
    gone retries once with the fresh manifest)."""
    st = Store(store_root, gc_grace_s=grace_s)
    base = fold0.filter(pl.col("t_rec") < datetime(2010, 11, 20, tzinfo=UTC))
    st.write_sharp(base)
    failures: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for k in range(20):
                st.write_sharp(base.with_columns(pl.col("usflux") * (1.0 + 0.01 * (k + 1))))
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    t0 = time.perf_counter()
    thread.start()
    n = 0
    while n < n_reads:
        try:
            assert Store(store_root).read_sharp().height == base.height
        except (StoreError, OSError, pl.exceptions.PolarsError) as e:
            failures.append(e)
        n += 1
    thread.join()
    assert done.is_set() and st.manifest()["generation"] == 21
    assert failures == []
    assert time.perf_counter() - t0 < 30
    # on disk: what the manifest lists, and what the last commit retired (kept for readers
    # of the previous manifest until a commit after the grace period)
    m = st.manifest()
    kept = {p.relative_to(store_root).as_posix() for p in (store_root / "sharp").rglob("*.parquet")}
    assert kept == {p.relative_to(store_root).as_posix() for p in st._files("sharp")} | {
        f for f in m["retired"] if f.startswith("sharp/")}
