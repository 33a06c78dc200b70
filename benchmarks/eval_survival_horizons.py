"""Survival curves by horizon on held-out regions: AUC and Brier skill of 1 - S(h) vs Kaplan-Meier.

For each test fold k of the four sun2022 folds (disjoint regions) Cox-Time alone is trained on
the other three (`train_all`, ``models=("cox_time",)``; validation regions for early stopping
come from the training folds) and its survival curves of the fold-k records, at their own
``t_rec``, are scored by `flare_core.survival_eval.verify_survival`: for h in 6, 12, 24, 48,
72 h the cumulative/dynamic AUC of ``1 - S(h)`` and its Brier skill against climatology (the
Kaplan-Meier curve of the training records), calibration in the large, and the integrated
Brier score (1 .. 120 h) against Kaplan-Meier. The pooled test folds are scored once (every
record forecast by the rotation that did not train on its region).

Another data set (e.g. the NRT validation year): ``evaluate_bundle(bundle, train_labels,
test_dataset)`` scores a trained model directory on any model dataset with labels
(`flare_core.training.build_model_dataset`).

Usage (from the repository root)::

    .venv/bin/python benchmarks/eval_survival_horizons.py --quick --folds 0
    .venv/bin/python benchmarks/eval_survival_horizons.py            # default TrainConfig

The last line is ``RESULT auc_6h=... bss_6h=... ... ibs=... ibs_km=... ibss=...``; the
baseline of every skill figure is Kaplan-Meier climatology (BSS, IBSS > 0: better than it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from sun2022_folds import load_fold_dataset  # noqa: E402

from flare_core.forecasting import ModelBundle, predict_records  # noqa: E402
from flare_core.survival_eval import SurvivalVerification, verify_survival  # noqa: E402
from flare_core.training import TrainConfig, train_all  # noqa: E402


def survival_curves(bundle: ModelBundle, dataset: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(grid_h, S)`` of the bundle's Cox-Time model for every record of ``dataset``."""
    preds = predict_records(bundle, dataset)
    return (np.asarray(preds["survival_grid_h"][0], dtype=np.float64),
            np.asarray(preds["survival_curve"].to_list(), dtype=np.float64))


def evaluate_bundle(bundle: ModelBundle, train_labels: pl.DataFrame,
                    test_dataset: pl.DataFrame) -> tuple[SurvivalVerification, np.ndarray]:
    """Score a model directory's survival curves on ``test_dataset`` (labels included).

    ``train_labels`` (``event``, ``time_to_event_h``) of the training records give the
    Kaplan-Meier climatology. Returns the verification and the curves (n, g)."""
    grid, surv = survival_curves(bundle, test_dataset)
    return verify_survival(train_labels, test_dataset, grid, surv), surv


def collapse_stats(surv: np.ndarray, grid_h: np.ndarray) -> dict[str, float]:
    """Shape figures of the curves: the median largest 1-h drop of S and median 1 - S(6/24 h)."""
    step = float(grid_h[1] - grid_h[0])
    per_h = max(1, int(round(1.0 / step)))
    drop = (surv[:, :-per_h] - surv[:, per_h:]).max(axis=1)
    j6, j24 = (int(np.searchsorted(grid_h, h)) for h in (6.0, 24.0))
    return {"median_max_1h_drop": float(np.median(drop)),
            "median_p6": float(np.median(1 - surv[:, j6])),
            "median_p24": float(np.median(1 - surv[:, j24]))}


def _print(title: str, v: SurvivalVerification) -> None:
    print(title)
    print(v.table.select("horizon_h", "n_cases", "auc", "bs", "bs_km", "bss", "mean_forecast",
                         "observed").with_columns(pl.col(pl.Float64).round(4)))
    print(f"  IBS {v.ibs:.4f} vs Kaplan-Meier {v.ibs_km:.4f}: IBSS {v.ibss:.3f}, "
          f"{v.ibs / v.ibs_km:.3f}x KM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="TrainConfig.quick()")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--params", default="{}",
                        help='JSON overrides of the cox_time hyper-parameters, e.g. \'{"epochs": 8}\'')
    parser.add_argument("--out", type=Path, default=None, help="keep the models here")
    args = parser.parse_args()
    params = {"cox_time": json.loads(args.params)}
    cfg = (TrainConfig.quick(models=("cox_time",)) if args.quick
           else TrainConfig(models=("cox_time",)))
    cfg = TrainConfig.from_mapping({**cfg.to_dict(), "params": {
        "cox_time": {**cfg.params.get("cox_time", {}), **params["cox_time"]}}})
    _, _, dataset = load_fold_dataset(cfg)
    out = args.out or Path(tempfile.mkdtemp(prefix="eval_survival_"))
    curves, tests, trains = [], [], []
    t0 = time.perf_counter()
    for k in args.folds:
        train = dataset.filter(pl.col("fold") != k).drop("fold")
        test = dataset.filter(pl.col("fold") == k).drop("fold")
        bundle = ModelBundle.load(train_all(train, out / f"fold{k}", cfg))
        v, surv = evaluate_bundle(bundle, train, test)
        grid = np.asarray(bundle.models["cox_time"].model.grid_h)
        _print(f"fold {k}: {test.height} test records, {train.height} training records; "
               f"curve shape {collapse_stats(surv, grid)}", v)
        curves.append(surv)
        tests.append(test.select("event", "time_to_event_h"))
        trains.append(train.select("event", "time_to_event_h"))
    pooled = verify_survival(pl.concat(trains), pl.concat(tests), grid, np.concatenate(curves))
    _print(f"pooled test folds {args.folds} ({time.perf_counter() - t0:.0f} s):", pooled)
    print("reliability (pooled, 24 h):")
    print(pooled.reliability.filter(pl.col("horizon_h") == 24.0).with_columns(
        pl.col(pl.Float64).round(3)))
    shape = collapse_stats(np.concatenate(curves), grid)
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in {**pooled.summary(), **shape}.items()))


if __name__ == "__main__":
    main()
