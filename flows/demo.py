"""The offline main job as one flow: bundled real data -> store -> model -> backfill -> page.

Everything runs on the data shipped in ``data/`` (see data/README.md): the four sun2022
SHARP folds (885 HARPs, 2010-11 .. 2020-11, one record per 96 min), the NOAA/NCEI GOES
flare list and the JSOC HARP<->NOAA map. The models are trained on records up to
``train_end`` (labels then reach at most ``tmax_h`` = 6 days further, still before the
backfill window), and the backfill issues hourly forecasts for a week that the data covers
and in which M flares happened (default 2014-10-20 .. 2014-10-26, AR 12192 with an X1.6
on the 22nd), then scores them against the flares that happened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.backfill import backfill
from flows.evaluate import evaluate
from flows.ingest import ingest_files
from flows.layout import Layout
from flows.train import train
from tasks.common import parse_utc

__all__ = ["demo", "bundled_files", "DEMO_START", "DEMO_END", "DEMO_TRAIN_END", "REPO"]

REPO = Path(__file__).resolve().parents[1]
DEMO_START = datetime(2014, 10, 20, tzinfo=UTC)
DEMO_END = datetime(2014, 10, 26, 23, tzinfo=UTC)
DEMO_TRAIN_END = datetime(2014, 9, 30, tzinfo=UTC)


def bundled_files(data_dir: Path = REPO / "data") -> list[str]:
    """The bundled files the demo ingests (HARP map, GOES flare list, sun2022 folds)."""
    files = [data_dir / "harp_noaa" / "all_harps_with_noaa_ars.txt",
             data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz",
             *sorted((data_dir / "sharp").glob("sun2022_sharp_m24h_fold*.csv.gz"))]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"bundled data missing: {missing}")
    return [str(f) for f in files]


@flow(name="demo")
def demo(out: str, start: datetime = DEMO_START, end: datetime = DEMO_END,
         train_end: datetime = DEMO_TRAIN_END, *, quick: bool = True,
         dask_address: str | None = None, n_workers: int = 2) -> dict[str, Any]:
    """Ingest, train (quick config), backfill ``start .. end`` hourly, publish and score.

    Returns the paths of everything produced (store, model, forecast store, scoreboard JSON,
    page) and the backfill and evaluation summaries.
    """
    log = get_run_logger()
    layout = Layout.of(Path(out) / "store")
    start, end, train_end = parse_utc(start), parse_utc(end), parse_utc(train_end)
    if train_end >= start:
        raise ValueError(f"train_end {train_end.isoformat()} must precede the backfill start "
                         f"{start.isoformat()}")
    ingest_files(bundled_files(), str(layout.root))
    model_dir = train(None, train_end, str(layout.root), quick=quick)
    summary = backfill(start, end, str(layout.root), model_dir, dask_address=dask_address,
                       n_workers=n_workers)
    scores = evaluate(start, end, str(layout.root), model_dir)
    result = {"store": str(layout.store), "model_dir": model_dir,
              "forecast_store": str(layout.forecasts), "scoreboard": str(layout.scoreboard),
              "page": summary.get("page"), "evaluation": str(layout.evaluation),
              "backfill": summary, "scores": scores}
    log.info("demo done: %s", {k: v for k, v in result.items() if isinstance(v, str)})
    return result
