"""Faults: one region's JSOC failure, a publish killed half-way, an hourly run racing a backfill.

The live forecast runs against the JSOC and HEK replay servers of `tests.replay`, serving
real sun2022 SHARP records and the real NCEI flare list; the replay answers JSOC's real
``status 6`` reply to every query naming one chosen region.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from flare_core.publish.forecast_store import FORECAST_KEY, ForecastStore
from flows.layout import Layout
from tests.flows.conftest import ISSUE
from tests.replay.jsoc_server import JsocReplayServer

REPO = Path(__file__).resolve().parents[2]


def _jsoc_records(store_root: Path, start, end) -> list[dict[str, str]]:
    """SHARP records of the store as JSOC ``rs_list`` strings (T_REC in TAI)."""
    from flare_core.store import Store
    from flare_core.timeutil import format_t_rec

    df = Store(store_root).read_sharp(start=start, end=end)
    out = []
    for r in df.iter_rows(named=True):
        rec = {"HARPNUM": str(r["harpnum"]), "T_REC": format_t_rec(r["t_rec"]),
               "QUALITY": "0x00000000", "NOAA_ARS": r["noaa_ars"] or ""}
        for k in ("area", "usflux", "meangbz", "r_value"):
            rec[k.upper()] = "nan" if r[k] is None else repr(float(r[k]))
        out.append(rec)
    return out


def test_jsoc_failure_of_one_region_fails_only_that_region(installation, tmp_path):
    from prefect.artifacts import Artifact

    from flows.forecast import forecast
    from tests.replay.hek_server import HekReplayServer

    records = _jsoc_records(installation["root"], ISSUE - timedelta(hours=40), ISSUE)
    fresh = sorted({int(r["HARPNUM"]) for r in records
                    if r["T_REC"] > (ISSUE - timedelta(hours=5)).strftime("%Y.%m.%d_%H")})
    assert len(fresh) >= 2
    bad = fresh[0]
    live = tmp_path / "live"
    with JsocReplayServer(records) as jsoc, HekReplayServer() as hek:
        jsoc.fail_harp(bad, "status_6")
        res = forecast(ISSUE, str(live), installation["model_dir"], fetch=True,
                       jsoc_url=jsoc.url, hek_url=hek.url, retry_delays_s=[0.1, 0.1])
        n_failed_requests = sum(q["fault"] == "status_6" for q in jsoc.requests)
    assert list(res["failed_regions"]) == [bad]
    assert "SourceUnavailable" in res["failed_regions"][bad]
    assert n_failed_requests == 3  # first attempt + 2 Prefect retries, then given up
    rows = ForecastStore(Layout.of(live).forecasts).read(issue_time=ISSUE)
    assert bad not in set(rows["harpnum"])
    assert set(rows["harpnum"]) == set(fresh) - {bad}
    assert f"HARP {bad}" in Artifact.get("forecast-summary").data


@pytest.fixture(scope="module")
def many_issue_times(installation, tmp_path_factory) -> tuple[Path, int, int]:
    """Real forecast rows of one issue time, repeated for 120 hourly issue times (Parquet)."""
    from tasks.common import FileRef, file_sha256, store_fingerprint
    from tasks.features import snapshot_store
    from tasks.forecasting import forecast_batch_plain

    root = str(installation["root"])
    sharp, flares = snapshot_store.fn(root, store_fingerprint(root), ISSUE - timedelta(hours=40),
                                      ISSUE)
    model = FileRef(installation["model_dir"],
                    file_sha256(Path(installation["model_dir"]) / "model.json"))
    one, _ = forecast_batch_plain([ISSUE], model, sharp, flares)
    assert one.height > 0
    n = 120
    rows = pl.concat([one.with_columns(pl.lit(ISSUE + timedelta(days=30, hours=h))
                                       .alias("issue_time")) for h in range(n)])
    path = tmp_path_factory.mktemp("many") / "rows.parquet"
    rows.write_parquet(path)
    return path, n, one.height


def _publisher(rows: Path, store: Path) -> subprocess.Popen:
    code = ("import sys; from tasks.common import FileRef, file_sha256; "
            "from tasks.forecasting import publish_forecasts; "
            "p = sys.argv[1]; publish_forecasts.fn(FileRef(p, file_sha256(p)), sys.argv[2], None)")
    return subprocess.Popen([sys.executable, "-c", code, str(rows), str(store)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _check_consistent(store: Path, per_issue: int) -> pl.DataFrame:
    got = ForecastStore(store).read()
    assert got.select(FORECAST_KEY).is_duplicated().sum() == 0
    counts = got.group_by("issue_time").len()
    assert (counts["len"] == per_issue).all()  # every issue time wholly there or absent
    return got


def test_publish_killed_midway_leaves_store_consistent(many_issue_times, tmp_path):
    rows, n, per_issue = many_issue_times
    store = tmp_path / "forecasts.duckdb"
    proc = _publisher(rows, store)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        fs = ForecastStore(store)
        if store.exists() and len(fs.issue_times()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _check_consistent(store, per_issue)
    assert 0 < partial["issue_time"].n_unique() <= n
    # the re-run completes the publication, still without duplicates
    rerun = _publisher(rows, store)
    assert rerun.wait(timeout=120) == 0
    full = _check_consistent(store, per_issue)
    assert full["issue_time"].n_unique() == n and full.height == n * per_issue


def test_hourly_run_concurrent_with_backfill_loses_and_duplicates_nothing(many_issue_times,
                                                                          tmp_path):
    rows, n, per_issue = many_issue_times
    hourly = tmp_path / "hourly.parquet"
    df = pl.read_parquet(rows)
    df.filter(pl.col("issue_time") == df["issue_time"].unique().sort()[n // 2]).write_parquet(
        hourly)
    store = tmp_path / "forecasts.duckdb"
    back = _publisher(rows, store)
    time.sleep(0.5)
    hours = [_publisher(hourly, store) for _ in range(3)]
    assert back.wait(timeout=180) == 0
    assert all(h.wait(timeout=180) == 0 for h in hours)
    full = _check_consistent(store, per_issue)
    assert full["issue_time"].n_unique() == n and full.height == n * per_issue
