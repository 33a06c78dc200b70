"""A damaged store gives clear errors (issue 12): a Parquet file that MANIFEST.json lists,
deleted or truncated, makes ``flareflow store info`` and ``flareflow forecast`` exit
non-zero with one line naming the file (no DuckDB or polars traceback).

The store holds the bundled sun2022 fold 2, the NCEI flare list and the HARP map (ingested
by the CLI); the model is a tiny real one trained on fold 1. Each test damages a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flare_core.errors import StoreError
from flare_core.store import Store
from flareflow.cli import app
from tests.support import HARP_NOAA_MAP, NCEI_FLARES, train_tiny_model

runner = CliRunner()
AT = "2014-10-22T06:00"
#: the partition that forecast AT reads (records of the 24 h before it)
DAY = "day=2014-10-21"


@pytest.fixture(scope="module")
def store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    res = runner.invoke(app, ["ingest", "file", str(data_dir / "sharp/sun2022_sharp_m24h_fold2.csv.gz"),
                              str(data_dir / NCEI_FLARES), str(data_dir / HARP_NOAA_MAP),
                              "--store", str(root)])
    assert res.exit_code == 0, res.output
    return root


@pytest.fixture(scope="module")
def model_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_model(data_dir, tmp_path_factory.mktemp("model"))


def _damaged(store: Path, tmp_path: Path, pattern: str, how: str) -> tuple[Path, Path]:
    root = tmp_path / "inst"
    shutil.copytree(store, root)
    (victim,) = sorted(root.glob(pattern))
    if how == "deleted":
        victim.unlink()
    else:  # truncated: the first 200 bytes of the file stay, the footer is gone
        victim.write_bytes(victim.read_bytes()[:200])
    return root, victim


def _one_clear_line(res, victim: Path) -> str:
    assert res.exit_code != 0, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and str(victim) in err
    for raw in ("Traceback", "duckdb", "DuckDB", "IOException", "InvalidInputException",
                "CREATE VIEW", "ComputeError"):
        assert raw not in err, err
    return err


CASES = [(f"sharp/{DAY}/*.parquet", "deleted", "manifest lists missing file"),
         (f"sharp/{DAY}/*.parquet", "truncated", "damaged store file"),
         ("sharp/day=2011-10-05/*.parquet", "truncated", "damaged store file"),
         ("flares/*.parquet", "deleted", "manifest lists missing file"),
         ("harp_map/*.parquet", "truncated", "damaged store file")]


@pytest.mark.parametrize(("pattern", "how", "says"), CASES,
                         ids=[f"{p.split('/')[0]}-{h}-{i}" for i, (p, h, _) in enumerate(CASES)])
def test_store_info_names_the_damaged_file(store, tmp_path, pattern, how, says):
    root, victim = _damaged(store, tmp_path, pattern, how)
    res = runner.invoke(app, ["store", "info", "--store", str(root)])
    assert says in _one_clear_line(res, victim)
    with pytest.raises(StoreError, match=says):
        Store(root).info()
    with pytest.raises(StoreError, match=says):
        Store(root).duckdb()


def test_store_info_of_an_intact_store(store):
    info = Store(store).info()
    assert info["tables"]["sharp"]["rows"] == 12330


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_forecast_names_the_damaged_file(store, model_dir, tmp_path, how):
    root, victim = _damaged(store, tmp_path, f"sharp/{DAY}/*.parquet", how)
    res = runner.invoke(app, ["forecast", "--at", AT, "--no-page", "--store", str(root),
                              "--model", str(model_dir)])
    err = _one_clear_line(res, victim)
    assert ("missing file" if how == "deleted" else "damaged store file") in err
