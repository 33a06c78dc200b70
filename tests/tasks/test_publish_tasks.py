"""The publishing tasks of tasks/forecasting.py (called via ``.fn``): store, JSON, page,
artifacts; retries only on a busy store."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish"))

from forecast_factory import make_forecasts  # noqa: E402  (tests/publish helper)
from prefect.states import Failed  # noqa: E402

from flare_core.errors import ParseError, StoreError  # noqa: E402
from flare_core.publish.forecast_store import ForecastStore  # noqa: E402
from tasks.common import retry_on_store_busy, write_frame_addressed  # noqa: E402
from tasks.forecasting import publish_forecasts, publish_page  # noqa: E402

T0 = datetime(2014, 10, 22, tzinfo=UTC)


def test_tasks_store_write_json_and_page(tmp_path, monkeypatch):
    import prefect.artifacts

    made: dict[str, dict] = {}
    monkeypatch.setattr(prefect.artifacts, "create_table_artifact",
                        lambda **kw: made.setdefault(kw["key"], kw))
    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact",
                        lambda **kw: made.setdefault(kw["key"], kw))
    fc = make_forecasts([T0 + timedelta(hours=h) for h in range(3)])
    ref = write_frame_addressed(fc, tmp_path / "work", "forecasts")
    store_path = str(tmp_path / "f.duckdb")
    res = publish_forecasts.fn(ref, store_path, str(tmp_path / "json"), mode="historical")
    assert res["rows"] == fc.height and res["issue_times"] == 3
    assert ForecastStore(store_path).read().height == fc.height
    assert len(res["json"]) == 3 and all(Path(p).is_file() for p in res["json"])
    # publishing again replaces, never duplicates
    publish_forecasts.fn(ref, store_path, None)
    assert ForecastStore(store_path).read().height == fc.height

    out = publish_page.fn(store_path, str(tmp_path / "site"), top_n=2)
    page = Path(out["page"])
    assert page.name == "index.html" and "4698" in page.read_text()
    assert out["page_issue_time"] == T0 + timedelta(hours=2) == out["issue_time"]
    table = made["flare-risk-regions"]["table"]
    assert {r["harpnum"] for r in table} == {4698, 4676, 4685}
    assert [r["rank"] for r in table] == sorted(r["rank"] for r in table)
    summary = made["forecast-summary"]["markdown"]
    region_lines = [ln for ln in summary.splitlines() if re.match(r"\| \d+ \| \d+ \|", ln)]
    assert "index.html" in summary and len(region_lines) == 2  # top_n regions only

    embedded = publish_page.fn(store_path, str(tmp_path / "single"), embed_images=True)
    html = Path(embedded["page"]).read_text()
    assert "data:image/png;base64," in html and 'src="4698_' not in html


def test_publish_tasks_retry_only_on_store_errors():
    for t in (publish_forecasts, publish_page):
        assert t.retries >= 2 and t.retry_condition_fn is retry_on_store_busy
    assert retry_on_store_busy(None, None, Failed(data=StoreError("locked")))
    assert not retry_on_store_busy(None, None, Failed(data=ParseError("bad row")))
