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
    # ... and publishes nothing the store already holds as computed
    assert res["already_published"] == 0 and again["already_published"] == again["batches"] == 3


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


@pytest.fixture(scope="module")
def absurd_installation(installation, tmp_path_factory) -> dict:
    """A copy of the installation whose store holds one absurd SHARP record (USFLUX 1e308,
    written to the store directly: the file readers' plausibility ranges would drop it), the
    newest record served by ISSUE of one region (issue 12 F1)."""
    import shutil

    from flare_core.schema import DEFAULT_NRT_LATENCY
    from flare_core.store import Store

    root = tmp_path_factory.mktemp("absurd") / "inst"
    shutil.copytree(installation["root"], root)
    store = Store(root)
    recs = store.read_sharp(start=ISSUE - timedelta(hours=6), end=ISSUE).filter(
        pl.col("t_rec") + DEFAULT_NRT_LATENCY <= ISSUE)
    victim = recs.sort("harpnum", "t_rec").group_by("harpnum", maintain_order=True).last().row(
        0, named=True)
    bad = recs.filter((pl.col("harpnum") == victim["harpnum"])
                      & (pl.col("t_rec") == victim["t_rec"])).with_columns(usflux=pl.lit(1e308))
    store.write_sharp(bad)
    return {"root": root, "harpnum": victim["harpnum"], "t_rec": victim["t_rec"]}


def test_forecast_with_one_absurd_region_is_partial(absurd_installation, installation,
                                                    fresh_regions):
    """The hour is published for every other region; the absurd one is named with its reason
    in the flow result, the forecast store and the scoreboard JSON (status "partial")."""
    from flows.forecast import forecast

    root = absurd_installation["root"]
    harp = absurd_installation["harpnum"]
    res = forecast(ISSUE, str(root), installation["model_dir"], page=False)
    assert res["status"] == "partial"
    assert list(res["failed_regions"]) == [harp]
    assert "usflux = 1e+308" in res["failed_regions"][harp]
    fs = ForecastStore(Layout.of(root).forecasts)
    rows = fs.read(issue_time=ISSUE)
    assert set(rows["harpnum"]) == fresh_regions - {harp}
    assert set(rows["model"]) >= {"headline", "logistic", "climatology", "persistence"}
    assert rows["series"].unique().to_list() == ["hmi.sharp_cea_720s"]
    failed = fs.read_failed(issue_time=ISSUE)
    assert failed["harpnum"].to_list() == [harp]
    docs = sorted(Layout.of(root).scoreboard.glob(f"*.{ISSUE:%Y%m%dT%H%M}.json"))
    assert len(docs) == rows["model"].n_unique()
    for path in docs:
        sub = json.loads(path.read_text())["forecast_submission"]
        assert [f["harpnum"] for f in sub["failed_regions"]] == [harp]
        assert sub["series"] == "hmi.sharp_cea_720s"
        assert sub["prediction_window_rule"].startswith("(issue_time, issue_time + 24 h]")


def test_backfill_with_one_absurd_region_completes_every_hour(absurd_installation,
                                                              installation):
    """Issue 12 F1 in a backfill (it aborted at 49/288): every hour completes; only the
    absurd region is left out, and only at the hours its absurd record is its newest."""
    from flows.backfill import backfill

    root = absurd_installation["root"]
    harp = absurd_installation["harpnum"]
    start, end = ISSUE - timedelta(hours=2), ISSUE + timedelta(hours=3)
    clean = backfill(start, end, str(installation["root"]), installation["model_dir"],
                     batch_size=3, dask_processes=False, page=False, scoreboard=False)
    res = backfill(start, end, str(root), installation["model_dir"], batch_size=3,
                   dask_processes=False, page=False)
    assert clean["status"] == "complete" and res["status"] == "partial"
    assert res["issue_times"] == clean["issue_times"] and res["gaps"] == clean["gaps"]
    assert {f["harpnum"] for f in res["failed_regions"]} == {harp}
    fs = ForecastStore(Layout.of(root).forecasts)
    failed = fs.read_failed(start=start, end=end + timedelta(seconds=1))
    assert failed.height == len(res["failed_regions"]) >= 1
    got = fs.read(start=start, end=end + timedelta(seconds=1))
    ref = ForecastStore(Layout.of(installation["root"]).forecasts).read(
        start=start, end=end + timedelta(seconds=1))
    assert got.height == res["rows"]
    keys = ["issue_time", "harpnum"]
    # the region is missing exactly where it failed, every other row is there
    assert ref.select(keys).unique().join(failed.select(keys), on=keys, how="anti").sort(
        keys).equals(got.select(keys).unique().sort(keys))
    assert (ref.filter(pl.col("harpnum") == harp)
            .filter(pl.col("t_rec") == absurd_installation["t_rec"])["issue_time"]
            .unique().sort().to_list() == failed["issue_time"].to_list())
