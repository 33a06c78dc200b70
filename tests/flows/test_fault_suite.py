"""Issue 12, part 5: JSOC's real error replies through the hourly flow, and whole flows racing.

Faults: the live forecast (`flows.forecast.forecast` with ``fetch=True``) runs against one
`tests.replay.jsoc_server.JsocReplayServer` (real sun2022 records of the session
installation, served as JSOC ``rs_list`` replies) and one HEK replay for the whole module;
`flare_core.sources.jsoc_replay.JsocReplay` answers with JSOC's real error replies, byte for
byte (``empty_body``, ``truncated_body``, ``status_6``, ``status_4``, ``rate_limit``). The
retry delays are made tiny (``retry_delays_s`` of the flow, a small
`flare_core.sources.retry.RetryPolicy` as `tasks.ingest.RETRY_POLICY`), the rate-limit wait
a little longer, so the test can tell them apart.

Concurrency: an hourly forecast, a 30-day backfill and an ingest of a bundled file run at
once (three threads calling the flows) on one copy of the installation; the forecast store
must then hold exactly the rows of the same three flows run one after the other on another
copy.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from flare_core.publish.forecast_store import FORECAST_KEY, ForecastStore
from flare_core.schema import SERIES_DEFINITIVE_CEA
from flare_core.sources.retry import RetryPolicy
from flows.layout import Layout
from tests.flows.conftest import ISSUE
from tests.flows.test_faults import _jsoc_records
from tests.replay.jsoc_server import JsocReplayServer

#: Back-off of the network tasks in these tests, and the (longer) wait after a rate limit, s.
RETRY_DELAYS_S = [0.05, 0.05]
RATE_LIMIT_DELAY_S = 2.0


class _StampedRequests(list):
    """`JsocReplay.requests` that also notes when each request came (``t``, monotonic s)."""

    def append(self, entry: dict) -> None:
        entry["t"] = time.monotonic()
        super().append(entry)


@pytest.fixture(scope="module")
def servers(installation):
    """One JSOC replay (the installation's records of the issue time's look-back) and one
    HEK replay for every fault; the HARPs with a fresh record at ISSUE."""
    from tests.replay.hek_server import HekReplayServer

    records = _jsoc_records(installation["root"], ISSUE - timedelta(hours=40), ISSUE)
    fresh = sorted({int(r["HARPNUM"]) for r in records
                    if r["T_REC"] > (ISSUE - timedelta(hours=5)).strftime("%Y.%m.%d_%H")})
    assert len(fresh) >= 2
    with JsocReplayServer(records) as jsoc, HekReplayServer() as hek:
        yield jsoc, hek, fresh


@pytest.fixture
def jsoc(servers, monkeypatch):
    """The module's JSOC replay with no fault queued and an empty request log; the small
    retry policy in place."""
    import tasks.ingest

    server = servers[0]
    monkeypatch.setattr(tasks.ingest, "RETRY_POLICY",
                        RetryPolicy(delays_s=tuple(RETRY_DELAYS_S),
                                    rate_limit_delay_s=RATE_LIMIT_DELAY_S))
    server.faults.clear()
    server.harp_faults.clear()
    server.requests = _StampedRequests()
    yield server
    server.faults.clear()
    server.harp_faults.clear()


def _live_forecast(jsoc, hek, installation, live: Path) -> dict:
    from flows.forecast import forecast

    return forecast(ISSUE, str(live), installation["model_dir"], fetch=True,
                    jsoc_url=jsoc.url, hek_url=hek.url, retry_delays_s=RETRY_DELAYS_S,
                    page=False)


def _gap_after_fault_s(requests: list[dict], fault: str) -> float:
    """Seconds from the (only) request answered with ``fault`` to the next request of the
    same query: the retry."""
    i = next(i for i, q in enumerate(requests) if q["fault"] == fault)
    bad = requests[i]
    again = next(q for q in requests[i + 1:]
                 if (q.get("op"), q.get("ds")) == (bad.get("op"), bad.get("ds")))
    assert again["fault"] == ""
    return again["t"] - bad["t"]


@pytest.mark.parametrize("fault", ["empty_body", "truncated_body", "status_6"])
def test_transient_jsoc_reply_is_retried_and_the_hour_publishes(fault, servers, jsoc,
                                                                installation, tmp_path):
    _, hek, fresh = servers
    jsoc.inject(fault, 1)  # the hour's first JSOC request: the region listing's
    res = _live_forecast(jsoc, hek, installation, tmp_path / "live")
    assert [q["fault"] for q in jsoc.requests].count(fault) == 1
    assert _gap_after_fault_s(jsoc.requests, fault) < RATE_LIMIT_DELAY_S
    assert res["status"] == "complete", res["failed_regions"]
    assert res["failed_regions"] == {}
    rows = ForecastStore(Layout.of(tmp_path / "live").forecasts).read(issue_time=ISSUE)
    assert set(rows["harpnum"]) == set(fresh)


def test_status_4_fails_the_region_with_the_jsoc_message_and_no_retry(servers, jsoc,
                                                                      installation, tmp_path):
    _, hek, fresh = servers
    bad = fresh[0]
    jsoc.fail_harp(bad, "status_4")
    res = _live_forecast(jsoc, hek, installation, tmp_path / "live")
    asked = [q for q in jsoc.requests if q.get("op") == "rs_list"
             and f"[{bad}]" in q.get("ds", "")]
    assert len(asked) == 1 and asked[0]["fault"] == "status_4"  # not retried
    assert res["status"] == "partial"
    assert list(res["failed_regions"]) == [bad]
    reason = res["failed_regions"][bad]
    assert reason.startswith("SourceError: JSOC refused")
    assert "drms_parserecset" in reason and "returned non-zero status code 1" in reason
    live = ForecastStore(Layout.of(tmp_path / "live").forecasts)
    assert set(live.read(issue_time=ISSUE)["harpnum"]) == set(fresh) - {bad}
    failed = live.read_failed(issue_time=ISSUE)
    assert failed["harpnum"].to_list() == [bad]
    assert "drms_parserecset" in failed["reason"][0]


def test_rate_limit_backs_off_longer_and_says_so(servers, jsoc, installation, tmp_path,
                                                 caplog):
    _, hek, fresh = servers
    jsoc.inject("rate_limit", 1)
    with caplog.at_level(logging.WARNING, logger="flare_core.sources.retry"):
        res = _live_forecast(jsoc, hek, installation, tmp_path / "live")
    assert res["status"] == "complete", res["failed_regions"]
    rows = ForecastStore(Layout.of(tmp_path / "live").forecasts).read(issue_time=ISSUE)
    assert set(rows["harpnum"]) == set(fresh)
    said = [r.getMessage() for r in caplog.records if "JSOC rate limit" in r.getMessage()]
    assert said == [f"task list_regions_on_disk: JSOC rate limit (STOP reply); backing off "
                    f"{RATE_LIMIT_DELAY_S:.1f} s, longer than the usual "
                    f"{RETRY_DELAYS_S[0]:.1f} s"], said
    gap = _gap_after_fault_s(jsoc.requests, "rate_limit")
    assert gap >= RATE_LIMIT_DELAY_S  # the longer wait, not the usual 0.05 s


# ---------------------------------------------------------------- whole flows at once

#: The backfill: 30 days of hourly issue times ending the day before the hourly forecast
#: (so the two never write the same key and the reference does not depend on their order).
BACKFILL_START = ISSUE - timedelta(days=31)
BACKFILL_END = ISSUE - timedelta(days=1)


def _three_flows(root: Path, model_dir: str, data_dir: Path) -> dict:
    from flows.backfill import backfill
    from flows.forecast import forecast
    from flows.ingest import ingest_files

    # the bundled NRT half-year of 2023: a large real store commit (another series) that
    # leaves the inputs of the forecasts, which read the definitive series, as they were;
    # so the reference rows are the same whatever the order
    nrt = str(data_dir / "sharp_nrt/hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz")
    return {
        "forecast": lambda: forecast(ISSUE, str(root), model_dir, page=False,
                                     series=SERIES_DEFINITIVE_CEA),
        "backfill": lambda: backfill(BACKFILL_START, BACKFILL_END, str(root), model_dir,
                                     n_workers=1, dask_processes=False, page=False,
                                     series=SERIES_DEFINITIVE_CEA),
        "ingest": lambda: ingest_files([nrt], str(root)),
    }


def _forecast_rows(root: Path) -> pl.DataFrame:
    return (ForecastStore(Layout.of(root).forecasts).read().drop("written_at")
            .sort(FORECAST_KEY))


def test_forecast_backfill_and_ingest_at_once_lose_and_duplicate_nothing(
        installation, data_dir, tmp_path):
    seq, conc = tmp_path / "sequential", tmp_path / "concurrent"
    for root in (seq, conc):
        shutil.copytree(installation["root"], root)
    model = installation["model_dir"]
    before = _forecast_rows(seq)

    reference = {name: run() for name, run in _three_flows(seq, model, data_dir).items()}
    assert reference["backfill"]["issue_times"] > 0 and reference["forecast"]["rows"] > 0

    assert reference["ingest"][0]["rows_added"] > 0  # a real commit
    results: dict[str, object] = {}
    errors: dict[str, BaseException] = {}
    spans: dict[str, tuple[float, float]] = {}
    start = threading.Barrier(3)

    def call(name: str, run) -> None:
        start.wait()
        t0 = time.monotonic()
        try:
            results[name] = run()
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors[name] = e
        spans[name] = (t0, time.monotonic())

    threads = [threading.Thread(target=call, args=item, name=item[0])
               for item in _three_flows(conc, model, data_dir).items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads)
    assert errors == {}
    # all three were running at one moment (the shortest did not end before the last began)
    assert max(a for a, _ in spans.values()) < min(b for _, b in spans.values()), spans
    assert results["backfill"]["rows"] == reference["backfill"]["rows"]
    assert results["forecast"]["rows"] == reference["forecast"]["rows"]

    want, got = _forecast_rows(seq), _forecast_rows(conc)
    assert got.select(FORECAST_KEY).is_duplicated().sum() == 0
    assert want.height > before.height
    assert got.height == want.height  # 0 lost
    assert got.equals(want)
    failed_want = ForecastStore(Layout.of(seq).forecasts).read_failed().drop("written_at")
    failed_got = ForecastStore(Layout.of(conc).forecasts).read_failed().drop("written_at")
    assert failed_got.sort(failed_got.columns).equals(failed_want.sort(failed_want.columns))
