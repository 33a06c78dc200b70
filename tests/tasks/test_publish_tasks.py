"""tasks/publish.py: the wrappers call flare_core and retry only on a busy store."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish"))

from forecast_factory import make_forecasts  # noqa: E402  (tests/publish helper)
from prefect.states import Failed  # noqa: E402

from flare_core.errors import ParseError, StoreError  # noqa: E402
from flare_core.publish.forecast_store import ForecastStore  # noqa: E402
from tasks import publish  # noqa: E402

T0 = datetime(2014, 10, 22, tzinfo=UTC)


def test_tasks_store_write_json_and_page(tmp_path):
    fc = make_forecasts([T0 + timedelta(hours=h) for h in range(3)])
    store_path = tmp_path / "f.duckdb"
    assert publish.store_forecasts.fn(fc, store_path) == fc.height
    assert ForecastStore(store_path).read().height == fc.height
    paths = publish.write_scoreboard_documents.fn(fc, tmp_path / "json", mode="historical")
    assert len(paths) == 3 and all(p.is_file() for p in paths)
    page = publish.render_latest_page.fn(store_path, tmp_path / "site")
    assert page.name == "index.html" and "4698" in page.read_text()


def test_retry_condition_only_for_store_errors():
    assert publish._store_busy(None, None, Failed(data=StoreError("locked")))
    assert not publish._store_busy(None, None, Failed(data=ParseError("bad row")))
