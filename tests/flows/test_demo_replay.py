"""The offline main job's hourly replay of JSOC: real NRT records enter the store as served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from flare_core.store import Store
from flows.demo import DATA, ingest_records_before, nrt_records_file, replay_hourly_ingest

LISTING = DATA / "sharp_nrt" / "jsoc_nrt_region_listing_2023-06_2023-12-17.csv.gz"
FIRST_SEEN = DATA / "sharp_nrt" / "jsoc_nrt_sharp_first_seen_sample_2021-2023.csv.gz"


def test_replayed_records_carry_the_hour_they_were_fetched(tmp_path: Path) -> None:
    """Each hour the drms client fetches what the replay had served by then: every stored
    record's available_at is a whole fetch hour, after its T_REC by at least the shortest
    measured latency, and nothing is stored that was not served by the last hour."""
    root = tmp_path / "root"
    start = datetime(2023, 12, 10, tzinfo=UTC)
    end = start + timedelta(hours=6)
    # the replay's first fetch reaches 6 h back: the file gives only what is older
    before = ingest_records_before.fn(str(nrt_records_file()), str(root),
                                      start - timedelta(hours=6))
    assert before["rows"] > 0 and before["series"] == "hmi.sharp_720s_nrt"
    res = replay_hourly_ingest.fn(str(nrt_records_file()), str(root), start, end,
                                  listing=str(LISTING), first_seen=str(FIRST_SEEN))
    assert res["hours"] == 7 and res["added"] > 0 and res["empty_hours"] == 0
    sharp = Store(root).read_sharp()
    replayed = sharp.filter(pl.col("available_at").is_not_null())
    assert replayed.height == res["added"]
    assert replayed["t_rec"].min() >= start - timedelta(hours=6)
    lat_min = (replayed["available_at"] - replayed["t_rec"]).dt.total_minutes()
    assert lat_min.min() >= 60  # no record is served within an hour of its T_REC
    assert (replayed["available_at"].dt.minute() == 0).all()
    assert replayed["available_at"].max() <= end
    # the records of the last hours were not yet served at the end of the replay
    raw = pl.read_csv(nrt_records_file(), columns=["T_REC"]).select(
        pl.col("T_REC").str.strptime(pl.Datetime("us"), "%Y.%m.%d_%H:%M:%S_TAI")
        .dt.replace_time_zone("UTC"))
    in_file = raw.filter((pl.col("T_REC") > end - timedelta(minutes=50))
                         & (pl.col("T_REC") <= end)).height
    stored = sharp.filter(pl.col("t_rec") > end - timedelta(minutes=50)).height
    assert in_file > 0 and stored == 0
    # forecasts read the store as served: the store at a replay hour equals as_of that hour
    mid = start + timedelta(hours=3)
    as_of = Store(root).read_sharp(as_of=mid)
    assert as_of.filter(pl.col("available_at") > mid).height == 0
    assert as_of.height < sharp.height
