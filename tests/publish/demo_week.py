"""A real installation of the demo week (2014-10-20 .. 26, AR 12192), built without Prefect.

The bundled sun2022 folds 2 and 3 (the regions on the disk that week), the NCEI GOES flare
list and the HARP map are ingested into a `flare_core.store.Store`; the survival chain
(flare-class forest, Cox-Time, warning SVM) and three baselines are trained with the quick
settings on records up to 2014-09-30; `flare_core.forecasting.forecast_many` issues the
week hourly (13 issue times on Oct 24 have no fresh record: the real 11-hour SHARP gap) and
the rows go into ``<root>/published/forecasts.duckdb``, the installation layout of
`flows.layout.Layout`. This is what `flows.demo` does, minus Prefect and Dask.

Not collected (no ``test_`` prefix); built once per test session (under pytest's base
temporary directory) whichever module asks first.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

DATA = Path(__file__).resolve().parents[2] / "data"
FILES = ("harp_noaa/all_harps_with_noaa_ars.txt",
         "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz",
         "sharp/sun2022_sharp_m24h_fold2.csv.gz", "sharp/sun2022_sharp_m24h_fold3.csv.gz")
MODELS = ["flare_class_forest", "cox_time", "warning_svm", "logistic", "persistence",
          "climatology"]
TRAIN_END = datetime(2014, 9, 30, tzinfo=UTC)
START = datetime(2014, 10, 20, tzinfo=UTC)
END = datetime(2014, 10, 26, 23, tzinfo=UTC)

_lock = threading.Lock()


def demo_week_root(base: Path) -> Path:
    """The installation root under ``base`` (built on first use, reused afterwards)."""
    root = base / "demo-week"
    with _lock:
        if not (root / "DONE").is_file():
            _build(root)
            (root / "DONE").write_text("ok\n")
    return root


def _build(root: Path) -> None:
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset
    from flare_core.forecasting import ModelBundle, forecast_many
    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.sources import load_file
    from flare_core.store import Store
    from flare_core.training import train_all

    root.mkdir(parents=True, exist_ok=True)
    store = Store(root)
    for name in FILES:
        res = load_file(DATA / name)
        {"sharp": store.write_sharp, "flares": store.write_flares,
         "harp_map": store.write_harp_map}[res.kind](res.frame)
    flares = store.read_flares()
    cfg = TrainConfig.quick(models=MODELS)
    # labels of the training records look at most tmax_h (6 d) past TRAIN_END
    ds = build_model_dataset(store.read_sharp(end=TRAIN_END),
                             flares.filter(pl.col("peak_time") <= TRAIN_END + timedelta(days=7)),
                             cfg)
    bundle = ModelBundle.load(train_all(ds, root / "models" / "demo", cfg))
    times = [START + timedelta(hours=h)
             for h in range(int((END - START) / timedelta(hours=1)) + 1)]
    rows = forecast_many(bundle, store.read_sharp(start=START - timedelta(days=3), end=END),
                         flares.filter(pl.col("peak_time") < END), times)
    ForecastStore(root / "published" / "forecasts.duckdb").upsert(rows)
