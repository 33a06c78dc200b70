"""The drms-based JSOC client against `JsocReplay` serving real SWAN-SF records (definitive
series, no replay clock); the NRT stream as served is in ``test_jsoc_nrt.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from typer.testing import CliRunner

from flare_core.errors import ConfigError, SourceError, SourceUnavailable
from flare_core.sources import read_swan_sf_mvts
from flare_core.sources.jsoc import JsocClient, JsocConfig, fetch_sharp
from flare_core.store import Store
from flareflow.cli import app
from tests.replay.jsoc_server import JsocReplayServer

T0, T1 = datetime(2014, 2, 3, tzinfo=UTC), datetime(2014, 2, 5, tzinfo=UTC)


def _cfg(srv, **kw) -> JsocConfig:
    return JsocConfig(url=srv.url, backoff_s=0.01, timeout_s=0.5, **kw)


def _clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def _rs_lists(srv) -> list[dict]:
    return [q for q in srv.requests if q.get("op") == "rs_list"]


def test_fetch_matches_the_files(jsoc_replay, data_dir):
    df = fetch_sharp(T0, T1, harpnums=[3686, 3688], config=_cfg(jsoc_replay))
    ref = read_swan_sf_mvts(data_dir / "swan_sf/mvts").filter(
        pl.col("harpnum").is_in([3686, 3688]) & pl.col("t_rec").is_between(T0, T1))
    assert df.height == ref.height > 0
    assert df["t_rec"].to_list() == ref["t_rec"].to_list()
    for c in ("usflux", "totusjh", "r_value", "meanshr", "crval1"):
        assert df[c].to_list() == pytest.approx(ref[c].to_list(), nan_ok=True)
    assert (df["quality"] == ref["quality"]).all()
    assert (df["source"] == "jsoc").all()
    assert (df["series"] == "hmi.sharp_cea_720s").all()
    assert df["noaa_ars"].to_list() == ref["noaa_ars"].to_list()
    assert df["totbsq"].null_count() == df.height  # not a JSOC keyword


def test_chunking_by_time_and_harps(jsoc_replay):
    cfg = _cfg(jsoc_replay, chunk_h=6.0, harps_per_chunk=1)
    df = fetch_sharp(T0, T1, harpnums=[3686, 3688], config=cfg, clock=_clock)
    queries = _rs_lists(jsoc_replay)
    assert len(queries) == 8 * 2  # 48 h / 6 h x two single-HARP groups
    ref = fetch_sharp(T0, T1, harpnums=[3686, 3688], config=_cfg(jsoc_replay), clock=_clock)
    assert df.equals(ref)  # no record lost or doubled at chunk edges
    assert all("[3686]" in q["ds"] or "[3688]" in q["ds"] for q in queries)


def test_all_harps_and_nrt(jsoc_replay):
    df = fetch_sharp(datetime(2013, 10, 11, tzinfo=UTC), datetime(2013, 10, 12, 6, tzinfo=UTC),
                     config=_cfg(jsoc_replay, nrt=True, cea=True))
    assert df["harpnum"].unique().to_list() == [3272]
    assert (df["source"] == "jsoc_nrt").all()
    assert all(q["ds"].startswith("hmi.sharp_cea_720s_nrt[]") for q in _rs_lists(jsoc_replay))


@pytest.mark.parametrize("faults", [["500"], ["truncated"], ["timeout"], ["500", "truncated"]])
def test_transient_faults_are_retried(jsoc_replay, faults):
    client = JsocClient(_cfg(jsoc_replay, retries=3), clock=_clock)
    client.series_keywords()  # the faults hit the rs_list call
    jsoc_replay.faults.extend(faults)
    df = client.fetch(T0, T1, harpnums=[3686])
    ref = JsocClient(_cfg(jsoc_replay), clock=_clock).fetch(T0, T1, harpnums=[3686])
    assert df.equals(ref) and df.height > 0
    assert len(jsoc_replay.requests) >= len(faults) + 2


def test_persistent_fault_raises_unavailable(jsoc_replay):
    jsoc_replay.faults.extend(["500"] * 3)
    with pytest.raises(SourceUnavailable, match="after 3 attempts"):
        fetch_sharp(T0, T1, harpnums=[3686], config=_cfg(jsoc_replay, retries=2))


def test_error_status_is_not_retried(jsoc_replay):
    client = JsocClient(_cfg(jsoc_replay))
    client.series_keywords()
    n = len(jsoc_replay.requests)
    jsoc_replay.faults.append("status")
    with pytest.raises(SourceError, match="drms_parserecset"):
        client.fetch(T0, T1, harpnums=[3686])
    assert len(jsoc_replay.requests) == n + 1


def test_empty_answer(jsoc_replay, caplog):
    df = fetch_sharp(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 1, 2, tzinfo=UTC),
                     config=_cfg(jsoc_replay))
    assert df.height == 0 and "harpnum" in df.columns
    assert "no records" in caplog.text
    client = JsocClient(_cfg(jsoc_replay))
    client.series_keywords()
    jsoc_replay.faults.extend(["empty"])
    assert client.fetch(T0, datetime(2014, 2, 3, 23, tzinfo=UTC), harpnums=[3686]).height == 0


def test_quality_policy(jsoc_replay):
    t0, t1 = datetime(2013, 10, 1, tzinfo=UTC), datetime(2014, 4, 1, tzinfo=UTC)
    keep = fetch_sharp(t0, t1, config=_cfg(jsoc_replay, chunk_h=24 * 200))
    n_bad = int((keep["quality"] != 0).sum())
    assert n_bad > 0  # the real sample has flagged records
    drop = fetch_sharp(t0, t1, config=_cfg(jsoc_replay, chunk_h=24 * 200,
                                           drop_bad_quality=True))
    assert drop.height == keep.height - n_bad and (drop["quality"] == 0).all()


def test_malformed_records_are_counted(swan_records, caplog):
    recs = [dict(r) for r in swan_records if r["HARPNUM"] == "3686"][:30]
    recs[3]["T_REC"] = "2014.02.31_99:00:00_TAI"
    recs[5]["USFLUX"] = "lots"
    recs[7]["USFLUX"] = "NaN"
    recs.append(dict(recs[10]))  # duplicated T_REC
    recs[12], recs[13] = recs[13], recs[12]  # unordered
    with JsocReplayServer(recs) as srv:
        df = fetch_sharp(T0, T1, harpnums=[3686], config=_cfg(srv))
    assert df.height == 30 - 2
    assert df["usflux"].null_count() == 1
    assert df["t_rec"].is_sorted()
    for msg in ("unparseable T_REC", "non-numeric USFLUX", "duplicate (harpnum, t_rec)"):
        assert msg in caplog.text


def test_unknown_series_and_bad_config(jsoc_replay):
    with pytest.raises(ConfigError):
        JsocConfig(chunk_h=0)
    with pytest.raises(ConfigError):
        JsocConfig(url="ftp://x")
    client = JsocClient(_cfg(jsoc_replay))
    with pytest.raises(SourceError, match="Unknown series"):
        client._call("series_struct", client._drms.info, "hmi.nonexistent")
    with pytest.raises(ConfigError, match="before start"):
        client.fetch(T1, T0)


def test_cli_ingest_sharp(jsoc_replay, store_root, monkeypatch):
    monkeypatch.setenv("FLAREFLOW_JSOC_URL", jsoc_replay.url)
    res = CliRunner().invoke(app, ["ingest", "sharp", "--start", "2014-02-03T00:00",
                                   "--end", "2014-02-05T00:00", "--harp", "3686",
                                   "--store", str(store_root)])
    assert res.exit_code == 0, res.output
    st = Store(store_root)
    assert st.read_sharp().height > 0 and set(st.read_sharp()["harpnum"]) == {3686}
    jsoc_replay.faults.extend(["500"] * 2)
    res = CliRunner().invoke(app, ["ingest", "sharp", "--start", "2014-02-03", "--end",
                                   "2014-02-04", "--retries", "1", "--store", str(store_root)])
    assert res.exit_code == 2 and "JSOC" in res.output and "after 2 attempts" in res.output
    res = CliRunner().invoke(app, ["ingest", "sharp", "--start", "yesterday", "--end",
                                   "2014-02-04", "--store", str(store_root)])
    assert res.exit_code == 2 and "--start" in res.output
