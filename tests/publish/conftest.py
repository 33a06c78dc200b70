"""Fixtures of the publish tests; the frame factory lives in forecast_factory.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from forecast_factory import T0


@pytest.fixture
def issue_times() -> list[datetime]:
    """Twelve hourly issue times from 2014-10-22 00:00 UTC (AR 12192's X-flare week)."""
    return [T0 + timedelta(hours=i) for i in range(12)]
