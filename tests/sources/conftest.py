"""Fixtures of the source tests: a local JSOC replay server built from real SWAN-SF data."""

from __future__ import annotations

import pytest

from tests.replay.jsoc_server import JsocReplayServer, load_swan_records


@pytest.fixture(scope="session")
def swan_records() -> list[dict[str, str]]:
    return load_swan_records()


@pytest.fixture
def jsoc_replay(swan_records):
    """A running replay server (fresh fault queue and request log per test)."""
    with JsocReplayServer([dict(r) for r in swan_records], slow_s=1.0) as srv:
        yield srv
