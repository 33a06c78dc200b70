"""The network ``ingest`` flow against the JSOC and HEK replay servers (real SWAN-SF SHARP
records and the real NCEI flare list): transient faults are retried, JSOC errors are not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flare_core.errors import SourceError
from flare_core.store import Store
from tests.replay.hek_server import HekReplayServer
from tests.replay.jsoc_server import JsocReplayServer

START = datetime(2014, 1, 21, 20, tzinfo=UTC)
END = datetime(2014, 1, 22, 11, tzinfo=UTC)


def test_ingest_retries_transient_faults(tmp_path):
    from flows.ingest import ingest

    with JsocReplayServer(slow_s=0.1) as jsoc, HekReplayServer() as hek:
        jsoc.faults.append("500")
        hek.faults.append("500")
        out = ingest(START, END, str(tmp_path), harp_map=False, jsoc_url=jsoc.url,
                     hek_url=hek.url, retry_delays_s=[0.1, 0.1])
        jsoc_requests = len(jsoc.requests)
    info = Store(tmp_path).info()["tables"]
    assert out["sharp"]["records"] == info["sharp"]["rows"] > 0
    assert info["sharp"]["t_rec_min"] >= START.isoformat()
    assert out["flares"]["flares"] == info["flares"]["rows"] > 0
    assert jsoc_requests >= 3  # the failed attempt, then series_struct + rs_list


def test_ingest_does_not_retry_a_jsoc_error(tmp_path):
    from flows.ingest import ingest

    with JsocReplayServer() as jsoc:
        jsoc.faults.append("status")
        with pytest.raises(SourceError):
            ingest(START, END, str(tmp_path), harp_map=False, flares=False,
                   jsoc_url=jsoc.url, retry_delays_s=[0.1, 0.1])
        assert len(jsoc.requests) == 1
    assert "sharp" not in Store(tmp_path).info()["tables"]


def test_ingest_backs_off_longer_after_the_jsoc_rate_limit(tmp_path, monkeypatch, caplog):
    import logging
    import time

    import tasks.ingest
    from flare_core.sources.retry import RetryPolicy
    from flows.ingest import ingest

    monkeypatch.setattr(tasks.ingest, "RETRY_POLICY", RetryPolicy((0.1, 0.1), 1.0))
    with JsocReplayServer() as jsoc:
        jsoc.inject("rate_limit")
        t = time.monotonic()
        with caplog.at_level(logging.WARNING):
            out = ingest(START, END, str(tmp_path), harp_map=False, flares=False,
                         jsoc_url=jsoc.url, retry_delays_s=[0.1, 0.1])
        took = time.monotonic() - t
    assert out["sharp"]["records"] > 0 and took >= 1.0
    assert "backing off 1.0 s, longer than the usual 0.1 s" in caplog.text
