"""Test-wide set-up: isolate Prefect before anything imports it; paths to bundled data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Prefect reads its settings at import: point it at a throw-away home first.
_PREFECT_HOME = tempfile.mkdtemp(prefix="flareflow-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The bundled real data (see data/README.md)."""
    return DATA


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """An empty store root for one test."""
    root = tmp_path / "store"
    root.mkdir()
    return root
