"""The four sun2022 folds with the NCEI flare list, as one model dataset with a ``fold`` column.

Shared by `evaluate_sun2022.py` and `select_deep_models.py` (run from the repository root;
they put it on ``sys.path``). The files' ``FLARE_INDEX``/``flares``/``label`` columns are
dropped by the reader; labels come from the flare list.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from flare_core.config import TrainConfig  # noqa: E402
from flare_core.dataset import build_model_dataset, read_inputs  # noqa: E402

FOLDS = [REPO / "data" / "sharp" / f"sun2022_sharp_m24h_fold{k}.csv.gz" for k in range(4)]
FLARES = REPO / "data" / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"


def load_fold_dataset(config: TrainConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(sharp, flares, dataset)``: the SHARP records, the flare list, and the model dataset
    (features and labels of every record, `build_model_dataset`) with the ``fold`` (0-3) of
    each record's region. Raises SystemExit if a region is in no fold file."""
    sharp, flares = read_inputs(FOLDS, [FLARES])
    fold_of = pl.concat([
        pl.read_csv(f, columns=["arpnum"]).unique().select(
            pl.col("arpnum").cast(pl.Int64).alias("harpnum"), pl.lit(k).alias("fold"))
        for k, f in enumerate(FOLDS)
    ])
    dataset = build_model_dataset(sharp, flares, config).join(fold_of, on="harpnum", how="left")
    if dataset["fold"].null_count():
        raise SystemExit("records of a region that is in no fold file")
    return sharp, flares, dataset
