"""Fixtures of the flow tests: one Prefect test harness and one small trained installation
per session (real bundled data: sun2022 folds 2 and 3, the NCEI flare list, the HARP map)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

#: Models trained for the flow tests: fast ones, enough to exercise every publishing path.
TEST_MODELS = ["climatology", "persistence", "logistic"]
TRAIN_START = datetime(2013, 6, 1, tzinfo=UTC)
TRAIN_END = datetime(2014, 9, 30, tzinfo=UTC)
#: Four regions (HARP 4678, 4698, 4711, 4718) have records on these days in folds 2-3.
ISSUE = datetime(2014, 10, 22, 6, tzinfo=UTC)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """Every flow test runs against one temporary Prefect server (started once)."""
    from prefect.testing.utilities import prefect_test_harness

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with prefect_test_harness(server_startup_timeout=120):
        yield


def bundled_test_files(data_dir: Path) -> list[str]:
    return [str(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt"),
            str(data_dir / "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"),
            str(data_dir / "sharp/sun2022_sharp_m24h_fold2.csv.gz"),
            str(data_dir / "sharp/sun2022_sharp_m24h_fold3.csv.gz")]


@pytest.fixture(scope="session")
def installation(tmp_path_factory, data_dir, prefect_harness) -> dict:
    """An installation root with the data ingested and a small model trained (by the flows)."""
    from flows.ingest import ingest_files
    from flows.train import train

    root = tmp_path_factory.mktemp("installation")
    ingest_report = ingest_files(bundled_test_files(data_dir), str(root))
    model_dir = train(TRAIN_START, TRAIN_END, str(root), quick=True,
                      config={"models": TEST_MODELS})
    return {"root": root, "model_dir": model_dir, "ingest": ingest_report}
