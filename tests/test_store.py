"""The Parquet store: round trip, idempotence, incremental partitions, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from flare_core.errors import StoreError
from flare_core.schema import SERIES_DEFINITIVE_CEA, SERIES_NRT_CEA
from flare_core.sources import read_harp_noaa_map, read_ncei_goes_flares, read_sun2022
from flare_core.store import Store

REPO = Path(__file__).resolve().parents[1]
FOLD0 = "sharp/sun2022_sharp_m24h_fold0.csv.gz"
NCEI = "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"


@pytest.fixture(scope="module")
def fold0(data_dir) -> pl.DataFrame:
    df = read_sun2022(data_dir / FOLD0).with_columns(  # sun2022 is definitive CEA
        pl.col("series").fill_null(SERIES_DEFINITIVE_CEA))
    return df.filter(pl.col("t_rec") < datetime(2012, 1, 1, tzinfo=UTC))  # a real slice


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.parquet")}


def test_round_trip_and_filters(store_root, fold0):
    st = Store(store_root)
    rep = st.write_sharp(fold0)
    assert rep.rows_added == fold0.height and rep.generation == 1
    back = st.read_sharp()
    assert back.equals(fold0.sort(["harpnum", "t_rec"]))
    t0, t1 = datetime(2011, 3, 1, tzinfo=UTC), datetime(2011, 3, 10, 12, tzinfo=UTC)
    h = fold0["harpnum"][0]
    sub = st.read_sharp(start=t0, end=t1, harpnums=[h])
    ref = fold0.filter(pl.col("t_rec").is_between(t0, t1) & (pl.col("harpnum") == h))
    assert sub.equals(ref.sort(["harpnum", "t_rec"]))
    days = fold0["t_rec"].dt.strftime("%Y-%m-%d").n_unique()
    assert len(list((store_root / "sharp").glob("day=*"))) == days
    info = st.info()
    assert info["tables"]["sharp"]["rows"] == fold0.height
    assert info["tables"]["sharp"]["harps"] == fold0["harpnum"].n_unique()
    with st.duckdb() as con:
        assert con.execute("SELECT count(*) FROM sharp").fetchone()[0] == fold0.height


def test_empty_store_reads(store_root):
    st = Store(store_root)
    assert st.read_sharp().height == 0 and st.read_flares().height == 0
    assert st.info()["generation"] == 0


def test_idempotent_write(store_root, fold0):
    st = Store(store_root)
    st.write_sharp(fold0)
    before = _files(store_root)
    rep = st.write_sharp(fold0.sample(fraction=1.0, shuffle=True, seed=1))
    assert rep.rows_added == 0 and rep.rows_updated == 0 and rep.partitions_written == 0
    assert rep.generation == 1
    assert _files(store_root) == before
    # duplicates inside one input are dropped and counted
    rep = st.write_sharp(pl.concat([fold0.head(5), fold0.head(5)]))
    assert rep.duplicates_in == 5 and rep.rows_added == 0


def test_append_touches_only_new_partitions(store_root, fold0):
    st = Store(store_root)
    cut = datetime(2011, 6, 1, tzinfo=UTC)
    old, new = fold0.filter(pl.col("t_rec") < cut), fold0.filter(pl.col("t_rec") >= cut)
    st.write_sharp(old)
    before = _files(store_root)
    rep = st.write_sharp(new)
    after = _files(store_root)
    assert rep.rows_added == new.height
    assert all(after.get(k) == v for k, v in before.items())  # old files untouched
    new_days = new["t_rec"].dt.strftime("%Y-%m-%d").unique()
    old_days = set(old["t_rec"].dt.strftime("%Y-%m-%d"))
    assert rep.partitions_written == len(set(new_days))
    assert len(after) - len(before) == len(set(new_days) - old_days)
    assert st.read_sharp().height == fold0.height


def test_update_and_nrt_priority(store_root, fold0):
    st = Store(store_root)
    st.write_sharp(fold0)
    row = fold0.head(1).with_columns(pl.col("usflux") * 2)
    rep = st.write_sharp(row)
    assert rep.rows_updated == 1 and rep.partitions_written == 1
    key = (pl.col("harpnum") == row["harpnum"][0]) & (pl.col("t_rec") == row["t_rec"][0])
    assert st.read_sharp().filter(key)["usflux"][0] == row["usflux"][0]
    # an NRT row with the same HARP number is another region (another series): it is
    # added beside the definitive row and never replaces it
    nrt = row.with_columns(pl.col("usflux") * 3, pl.lit("jsoc_nrt").alias("source"),
                           pl.lit(None, dtype=pl.Utf8).alias("series"))
    rep = st.write_sharp(nrt)
    assert rep.rows_updated == 0 and rep.rows_added == 1
    assert st.read_sharp(series=SERIES_DEFINITIVE_CEA).filter(key)["usflux"][0] == \
        row["usflux"][0]
    assert st.read_sharp(series=SERIES_NRT_CEA)["usflux"].to_list() == [nrt["usflux"][0]]


def test_bad_frames_rejected(store_root, fold0):
    st = Store(store_root)
    with pytest.raises(StoreError, match="null harpnum or t_rec"):
        st.write_sharp(fold0.head(3).with_columns(pl.lit(None, dtype=pl.Int64).alias("harpnum")))
    with pytest.raises(StoreError, match="canonical schema"):
        st.write_sharp(fold0.head(3).with_columns(pl.lit("x").alias("usflux")))
    assert st.info()["generation"] == 0


def test_failed_write_leaves_previous_store(store_root, fold0):
    """A write that fails after writing part of its partitions commits nothing."""
    st = Store(store_root)
    cut = datetime(2011, 6, 1, tzinfo=UTC)
    old, new = fold0.filter(pl.col("t_rec") < cut), fold0.filter(pl.col("t_rec") >= cut)
    st.write_sharp(old)
    manifest = (store_root / "MANIFEST.json").read_text()
    # a real fault: a plain file where one of the new day folders must go
    days = sorted(set(new["t_rec"].dt.strftime("%Y-%m-%d")) - set(
        old["t_rec"].dt.strftime("%Y-%m-%d")))
    blocker = store_root / "sharp" / f"day={days[len(days) // 2]}"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="previous generation"):
        st.write_sharp(new)
    assert (store_root / "MANIFEST.json").read_text() == manifest
    assert st.read_sharp().equals(old.sort(["harpnum", "t_rec"]))
    assert any("g000002" in p.name for p in (store_root / "sharp").rglob("*.parquet"))
    blocker.unlink()
    rep = st.write_sharp(new)
    assert rep.generation == 2
    assert st.read_sharp().height == fold0.height
    listed = {p.resolve() for p in st._files("sharp")}
    assert {p.resolve() for p in (store_root / "sharp").rglob("*.parquet")} == listed


def test_killed_writer_leaves_previous_store(store_root):
    """SIGKILL a writer process in the middle of a large write: the store stays readable."""
    script = textwrap.dedent(f"""
        import sys, numpy as np, polars as pl
        from datetime import datetime, timedelta, UTC
        from flare_core.store import Store
        from flare_core.schema import conform_sharp
        def frame(n_days, start):
            t = [start + timedelta(hours=6 * i) for i in range(4 * n_days)]
            return conform_sharp(pl.DataFrame({{"harpnum": [7] * len(t), "t_rec": t,
                "usflux": np.arange(len(t), dtype=float), "source": ["synthetic"] * len(t)}}))
        st = Store({str(store_root)!r})
        st.write_sharp(frame(10, datetime(2011, 1, 1, tzinfo=UTC)))
        print("READY", flush=True)
        for k in range(50):
            st.write_sharp(frame(4000, datetime(2012, 1, 1, tzinfo=UTC) + timedelta(days=1)))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        deadline = time.time() + 60
        while time.time() < deadline:
            if any((store_root / "sharp").rglob("part-g000002-*.parquet")):
                break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    gen = json.loads((store_root / "MANIFEST.json").read_text())["generation"]
    if gen != 1:
        pytest.skip("the writer finished before it could be killed")
    st = Store(store_root)
    back = st.read_sharp()
    assert back.height == 40 and back["usflux"].to_list() == [float(i) for i in range(40)]


def test_flares_and_harp_map(store_root, data_dir, fold0):
    st = Store(store_root)
    flares = read_ncei_goes_flares(data_dir / NCEI).filter(
        pl.col("peak_time") < datetime(2012, 1, 1, tzinfo=UTC))
    rep = st.write_flares(flares)
    assert rep.rows_added == flares.height
    assert st.read_flares()["harpnum"].null_count() == flares.height  # no map yet
    st.write_sharp(fold0)
    hm = read_harp_noaa_map(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt")
    st.write_harp_map(hm)
    got = st.read_flares()
    assert got.height == flares.height
    assert got["harpnum"].null_count() < flares["noaa_ar"].null_count() + 0.2 * flares.height
    assert got.drop_nulls("harpnum").join(hm, on=["harpnum", "noaa_ar"], how="anti").height == 0
    # idempotent, and a new write gets harpnum at write time
    rep = st.write_flares(flares)
    assert rep.rows_added == 0 and rep.partitions_written == 0
    t0, t1 = datetime(2011, 2, 14, tzinfo=UTC), datetime(2011, 2, 16, tzinfo=UTC)
    window = st.read_flares(start=t0, end=t1)
    assert window["peak_time"].is_between(t0, t1).all() and window.height > 0
    assert "X2.2" in window["goes_class"].to_list()


def test_noaa_ars_filled_from_harp_map_on_read(store_root, data_dir, fold0):
    """sun2022 records carry no NOAA numbers: reads fill them from the stored map, in
    whichever order the map and the records arrived; a record's own value is kept."""
    st = Store(store_root)
    assert fold0["noaa_ars"].null_count() == fold0.height
    own = fold0.head(1).with_columns(pl.lit("99999").alias("noaa_ars"))
    st.write_sharp(pl.concat([own, fold0.slice(1)]))
    assert st.read_sharp()["noaa_ars"].null_count() == fold0.height - 1  # no map yet
    hm = read_harp_noaa_map(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt")
    st.write_harp_map(hm)
    got = st.read_sharp()
    assert got.select("harpnum", "t_rec").equals(fold0.sort("harpnum", "t_rec")
                                                 .select("harpnum", "t_rec"))
    expected = (hm.sort("harpnum", "noaa_ar").group_by("harpnum", maintain_order=True)
                .agg(pl.col("noaa_ar").cast(pl.Utf8).str.join(",").alias("want")))
    check = (got.join(own.select("harpnum", "t_rec"), on=["harpnum", "t_rec"], how="anti")
             .join(expected, on="harpnum", how="left"))
    mapped = check.filter(pl.col("want").is_not_null())
    assert mapped.height > 0.5 * check.height
    assert (mapped["noaa_ars"] == mapped["want"]).all()
    assert check.filter(pl.col("want").is_null())["noaa_ars"].null_count() == (
        check["want"].null_count())  # HARPs the map does not list stay null
    first = got.filter((pl.col("harpnum") == own["harpnum"][0])
                       & (pl.col("t_rec") == own["t_rec"][0]))
    assert first["noaa_ars"].to_list() == ["99999"]
    # the files keep what the source delivered
    with st.duckdb() as con:
        assert con.execute("SELECT count(noaa_ars) FROM sharp").fetchone()[0] == 1
    assert st.read_sharp(harpnums=[int(mapped["harpnum"][0])])["noaa_ars"].null_count() == 0
