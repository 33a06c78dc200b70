"""Forecast, backfill and evaluate flows on the small trained installation (real data)."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest

from flare_core.publish.forecast_store import FORECAST_KEY, ForecastStore
from flows.layout import Layout
from tests.flows.conftest import ISSUE


@pytest.fixture(scope="module")
def fresh_regions(installation) -> set[int]:
    """Regions with a SHARP record in the freshness window (ISSUE - 6 h, ISSUE], read
    directly from the store."""
    from flare_core.store import Store

    recs = Store(installation["root"]).read_sharp(start=ISSUE - timedelta(hours=6), end=ISSUE)
    return set(recs.filter(pl.col("t_rec") > ISSUE - timedelta(hours=6))["harpnum"])


@pytest.fixture(scope="module")
def forecast_result(installation):
    from flows.forecast import forecast

    state = forecast(ISSUE + timedelta(minutes=37), str(installation["root"]),
                     installation["model_dir"], return_state=True)
    return {**state.result(), "flow_run_id": state.state_details.flow_run_id}


def _artifact(key: str, flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert len(found) == 1, found
    return found[0]


def test_forecast_publishes_store_json_page(installation, forecast_result, fresh_regions):
    layout = Layout.of(installation["root"])
    assert forecast_result["issue_time"] == ISSUE.isoformat()  # rounded down to the hour
    rows = ForecastStore(layout.forecasts).read(issue_time=ISSUE)
    assert rows.height == forecast_result["rows"] > 0
    assert len(fresh_regions) >= 2 and set(rows["harpnum"]) == fresh_regions
    assert (rows["t_rec"] <= ISSUE).all()  # only records up to the issue time
    docs = sorted(layout.scoreboard.glob(f"*{ISSUE:%Y%m%dT%H%M}*.json"))
    assert len(docs) == rows["model"].n_unique()
    doc = json.loads(docs[0].read_text())["forecast_submission"]
    assert doc["issue_time"].startswith(f"{ISSUE:%Y-%m-%dT%H:%M}")
    page = layout.page / "index.html"
    assert page.is_file() and "4698" in page.read_text()
    # sun2022 records carry no NOAA numbers: the store fills them from the HARP map
    assert rows.filter(pl.col("harpnum") == 4698)["noaa_ars"].unique().to_list() == ["12192"]
    assert ">12192<" in page.read_text()


def test_forecast_artifacts(forecast_result, fresh_regions):
    table = _artifact("flare-risk-regions", forecast_result["flow_run_id"])
    rows = json.loads(table.data)
    assert {r["harpnum"] for r in rows} == fresh_regions
    summary = _artifact("forecast-summary", forecast_result["flow_run_id"])
    assert summary.type == "markdown" and "index.html" in summary.data


def test_snapshot_has_no_look_ahead(installation):
    from tasks.common import store_fingerprint
    from tasks.features import snapshot_store

    root = str(installation["root"])
    sharp, flares = snapshot_store.fn(root, store_fingerprint(root), ISSUE - timedelta(hours=30),
                                      ISSUE)
    s, f = pl.read_parquet(sharp.path), pl.read_parquet(flares.path)
    assert s.height > 0 and s["t_rec"].max() <= ISSUE
    assert f.height > 0 and f["peak_time"].max() < ISSUE


def test_backfill_on_dask_matches_single_forecasts(installation, forecast_result):
    from flows.backfill import backfill

    layout = Layout.of(installation["root"])
    start, end = ISSUE - timedelta(hours=5), ISSUE + timedelta(hours=6)
    res = backfill(start, end, str(installation["root"]), installation["model_dir"],
                   batch_size=4, dask_processes=False, page=False)
    assert res["requested"] == 12 and res["issue_times"] + len(res["gaps"]) == 12
    fs = ForecastStore(layout.forecasts)
    got = fs.read(start=start, end=end + timedelta(seconds=1))
    assert got.height == res["rows"]
    assert got.select(FORECAST_KEY).is_duplicated().sum() == 0
    # the hour issued alone and the same hour inside the backfill agree
    single = fs.read(issue_time=ISSUE).sort("model", "harpnum")
    assert single.height == forecast_result["rows"]
    assert res["issue_times"] >= 11

    # a re-run neither duplicates nor loses rows
    again = backfill(start, end, str(installation["root"]), installation["model_dir"],
                     batch_size=4, dask_processes=False, page=False)
    assert again["rows"] == res["rows"]
    assert fs.read(start=start, end=end + timedelta(seconds=1)).height == res["rows"]


def test_evaluate_scores_published_period(installation, forecast_result):
    from flows.evaluate import evaluate

    res = evaluate(ISSUE - timedelta(hours=5), ISSUE + timedelta(hours=6),
                   str(installation["root"]), installation["model_dir"])
    assert res["rows"] > 0 and res["not_yet_verifiable"] == 0
    assert set(res["models"]) >= {"logistic", "climatology"}
    m = res["models"]["logistic"]["p_m24"]
    assert m["n"] > 0 and 0.0 <= m["brier"] <= 1.0
    report = Layout.of(installation["root"]).evaluation
    assert list(report.glob("*/published_scores.json"))
