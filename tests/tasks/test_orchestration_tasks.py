"""Task-level tests (via ``.fn`` and plain helpers): hashing, retry policy, batching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from prefect.states import Completed, Failed

from flare_core.errors import SourceError, SourceUnavailable, StoreError
from tasks.common import (
    FileRef,
    file_sha256,
    floor_hour,
    parse_utc,
    retry_on_source_unavailable,
    retry_on_store_busy,
    store_fingerprint,
    write_frame_addressed,
)


def test_retry_only_on_source_unavailable():
    assert retry_on_source_unavailable(None, None, Failed(data=SourceUnavailable("JSOC 503")))
    assert not retry_on_source_unavailable(None, None, Failed(data=SourceError("bad query")))
    assert not retry_on_source_unavailable(None, None, Failed(data=ValueError("parse")))
    assert not retry_on_source_unavailable(None, None, Completed(data=1))


def test_retry_only_on_busy_store():
    assert retry_on_store_busy(None, None, Failed(data=StoreError("locked")))
    assert not retry_on_store_busy(None, None, Failed(data=SourceUnavailable("x")))


def test_content_addressed_frames(tmp_path):
    df = pl.DataFrame({"harpnum": [1, 2], "x": [0.5, 1.5]})
    a = write_frame_addressed(df, tmp_path, "t")
    b = write_frame_addressed(df, tmp_path, "t")
    assert a == b and a.sha256 == file_sha256(a.path)
    assert len(list(tmp_path.glob("t-*.parquet"))) == 1  # same content, one file
    c = write_frame_addressed(df.with_columns(pl.col("x") * 2), tmp_path, "t")
    assert c.sha256 != a.sha256
    assert pl.read_parquet(a.path).equals(df)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left


def test_file_sha256_of_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("one")
    h1 = file_sha256(tmp_path / "d")
    (tmp_path / "d" / "a.txt").write_text("two")
    assert file_sha256(tmp_path / "d") != h1


def test_store_fingerprint_follows_writes(tmp_path, data_dir):
    from flare_core.sources import read_file
    from flare_core.store import Store

    empty = store_fingerprint(tmp_path)
    _, frame = read_file(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz")
    part = frame.head(200)
    Store(tmp_path).write_sharp(part)
    one = store_fingerprint(tmp_path)
    Store(tmp_path).write_sharp(part)  # idempotent: no new commit, same fingerprint
    assert one != empty and store_fingerprint(tmp_path) == one


def test_times_are_utc_and_floored():
    t = parse_utc("2014-10-22T13:47:12")
    assert t.tzinfo is UTC
    assert floor_hour(t) == datetime(2014, 10, 22, 13, tzinfo=UTC)
    assert parse_utc("2014-10-22T13:00Z") == datetime(2014, 10, 22, 13, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_utc("yesterday-ish")


def test_issue_times_and_batches():
    from flows.backfill import batches, issue_times

    t0 = datetime(2014, 10, 1, tzinfo=UTC)
    times = issue_times(t0, t0 + timedelta(days=30), 1.0)
    assert len(times) == 721 and times[-1] == t0 + timedelta(days=30)
    chunks = batches(times, 24)
    assert len(chunks) == 31 and sum(map(len, chunks)) == 721
    assert [t for c in chunks for t in c] == times
    assert len(issue_times(t0, t0 + timedelta(hours=5), 2.5)) == 3


def test_ingest_order_puts_map_first_and_flares_last(data_dir):
    from tasks.ingest import ingest_order

    files = [data_dir / "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz",
             data_dir / "sharp/sun2022_sharp_m24h_fold1.csv.gz",
             data_dir / "harp_noaa/all_harps_with_noaa_ars.txt"]
    order = ingest_order(files)
    assert order[0].endswith("all_harps_with_noaa_ars.txt")
    assert order[-1].endswith("ncei_goes_flares_2010-01-01_2025-11-15.csv.gz")


def test_fileref_short():
    assert FileRef("x", "ab" * 32).short == "ab" * 6


def test_label_and_score_published():
    """Period scoring (the evaluate flow's task and ``flareflow score``) is
    `flare_core.publish.verification`: labels of every row, scores per model."""
    from flare_core.publish.verification import (
        label_forecasts,
        score_forecasts,
        scores_by_model,
    )

    t = datetime(2014, 10, 22, tzinfo=UTC)
    fc = pl.DataFrame({
        "issue_time": [t, t, t, t], "harpnum": [1, 2, 1, 2],
        "model": ["a", "a", "b", "b"], "p_m24": [0.9, 0.1, 0.2, 0.6],
        "p_c24": [0.95, 0.3, 0.5, 0.7], "warning_class": [None] * 4,
    }, schema_overrides={"warning_class": pl.Utf8})
    flares = pl.DataFrame({
        "peak_time": [t + timedelta(hours=3), t - timedelta(hours=1)],
        "goes_class": ["M2.0", "X1.0"], "peak_flux_wm2": [2e-5, 1e-4], "harpnum": [1, 2],
    })
    lab = label_forecasts(fc, flares)
    # HARP 1 flares (M2) after the issue time; HARP 2's X1 peaked before it: not an outcome
    assert lab.sort("model", "harpnum")["m_within_24h"].to_list() == [True, False, True, False]
    scores = scores_by_model(score_forecasts(lab, columns=("p_m24", "p_c24"), by=("model",)))
    assert scores["a"]["p_m24"]["auc"] == 1.0 and scores["b"]["p_m24"]["auc"] == 0.0
    assert scores["a"]["p_m24"]["events"] == 1
    assert scores["a"]["p_m24"]["brier"] == pytest.approx((0.1 ** 2 + 0.1 ** 2) / 2)
