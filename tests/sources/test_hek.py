"""The sunpy-HEK flare client against a local HEK replay of the real NCEI GOES list."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from typer.testing import CliRunner

from flare_core.errors import SourceError, SourceUnavailable
from flare_core.sources import read_ncei_goes_flares
from flare_core.sources.hek import HekConfig, fetch_flares
from flare_core.store import Store
from flareflow.cli import app
from tests.replay.hek_server import HekReplayServer

T0, T1 = datetime(2011, 2, 14, tzinfo=UTC), datetime(2011, 2, 17, tzinfo=UTC)


@pytest.fixture(scope="module")
def hek_events():
    from tests.replay.hek_server import load_ncei_events

    return load_ncei_events()


def test_fetch_flares_matches_file(hek_events, data_dir):
    with HekReplayServer(hek_events, page_size=10) as srv:
        df = fetch_flares(T0, T1, config=HekConfig(url=srv.url, backoff_s=0.01))
        assert len(srv.requests) > 1  # sunpy paged through the answer
    ref = read_ncei_goes_flares(data_dir / "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz")
    ref = ref.filter(pl.col("end_time") >= T0, pl.col("start_time") <= T1)
    assert df.height == ref.height > 0
    assert df["peak_time"].to_list() == ref["peak_time"].to_list()
    assert df["goes_class"].to_list() == ref["goes_class"].to_list()
    assert (df["source"] == "hek").all() and "X2.2" in df["goes_class"].to_list()


def test_hek_faults(hek_events):
    with HekReplayServer(hek_events) as srv:
        srv.faults.extend(["500", "truncated"])
        df = fetch_flares(T0, T1, config=HekConfig(url=srv.url, backoff_s=0.01))
        assert df.height > 0
        srv.faults.extend(["500"] * 3)
        with pytest.raises(SourceUnavailable, match="after 2 attempts"):
            fetch_flares(T0, T1, config=HekConfig(url=srv.url, retries=1, backoff_s=0.01))
        empty = fetch_flares("2030-01-01", "2030-01-02", config=HekConfig(url=srv.url))
        assert empty.height == 0


def test_hek_bad_class_is_counted(hek_events, caplog):
    events = [dict(e) for e in hek_events if "2011-02-14" <= e["event_peaktime"] < "2011-02-16"]
    events[0]["fl_goescls"] = ""
    with HekReplayServer(events) as srv:
        df = fetch_flares(T0, T1, config=HekConfig(url=srv.url))
    assert df.height == len(events) - 1
    assert "unknown GOES class" in caplog.text


def test_cli_ingest_flares(hek_events, store_root, monkeypatch):
    with HekReplayServer(hek_events) as srv:
        monkeypatch.setenv("FLAREFLOW_HEK_URL", srv.url)
        res = CliRunner().invoke(app, ["ingest", "flares", "--start", "2011-02-14", "--end",
                                       "2011-02-17", "--store", str(store_root)])
    assert res.exit_code == 0, res.output
    assert Store(store_root).read_flares().height > 0


def test_hek_refusal_is_not_retried():
    """An HTTP 4xx is a `SourceError` after one request (it would fail the same way again);
    a 429 (too many requests) is transient and retried."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer = {"status": 400, "requests": 0}

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            answer["requests"] += 1
            self.send_response(answer["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/her?"
    try:
        with pytest.raises(SourceError, match="HTTP 400"):
            fetch_flares(T0, T1, config=HekConfig(url=url, retries=3, backoff_s=0.01))
        assert answer["requests"] == 1
        answer.update(status=429, requests=0)
        with pytest.raises(SourceUnavailable, match="after 2 attempts.*HTTP 429"):
            fetch_flares(T0, T1, config=HekConfig(url=url, retries=1, backoff_s=0.01))
        assert answer["requests"] == 2
    finally:
        srv.shutdown()
        srv.server_close()
