"""Does `TrainConfig.resample = "kde"` (the survival paper's re-balancing) help on the NRT year?

Protocol (the NRT training configuration of `benchmarks/evaluate_nrt.py`, cut down to what
fits on two shared cores):

* data: the JSOC near-real-time SHARP export 2021-05 .. 2023-12 (``../shared/data``), the NRT
  HARP -> NOAA map and the NOAA/NCEI GOES flare list;
* `flareflow/configs/nrt.toml` (one record per region-hour, ``train_step_h = 1``) with the
  validation year 2023 (``validation_start = 2023-01-01``): fit on 2021-05 .. 2022-12 (records
  end ``tmax_h`` before 2023), thresholds, epochs and Platt calibration chosen on 2023;
* models: logistic regression and Deep Flare Net (>=M) only (``--models``); the other models
  take ~40 min more here, and the LSTM cannot take repeated records;
* trained twice with the same seed: ``resample = None`` and ``resample = "kde"``
  (`flare_core.sampling.kde_resample` on the FIT part: X-class records oversampled to the
  M-class count, guided by a KDE of log peak flux, non-flaring records undersampled to it;
  classes by the next >=M flare within ``tmax_h``);
* scored on the validation records themselves (2023, one per region-hour, every region on
  the disk): TSS at the validation-chosen threshold, BSS against the TRAINING climatology
  (fit records' event rate), ROC AUC, each with a 95 % region bootstrap interval of the
  difference kde - none (paired: the same drawn regions for both). These are validation
  scores: TSS is optimistic for both arms alike; AUC and BSS use no threshold.

Writes a table into ``EVALUATION.md`` between the ``<!-- resampling-table -->`` markers and
``benchmarks/results/resampling_nrt.json``; ends with one ``RESULT`` line.

Usage, from the repository root::

    .venv/bin/python benchmarks/evaluate_resampling.py
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.evaluation_md import save_results, write_block  # noqa: E402
from flare_core import metrics  # noqa: E402
from flare_core.config import TrainConfig  # noqa: E402
from flare_core.dataset import build_model_dataset, read_inputs  # noqa: E402
from flare_core.forecasting import ModelBundle, predict_records  # noqa: E402
from flare_core.sampling import thin_records  # noqa: E402
from flare_core.splits import split_validation_period  # noqa: E402
from flare_core.training import train_all  # noqa: E402

BEGIN, END = "<!-- resampling-table:begin -->", "<!-- resampling-table:end -->"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sharp_nrt" / \
    "hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz"
DEFAULT_FLARES = REPO / "data" / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
DEFAULT_MAP = REPO / "data" / "sharp_nrt" / "harp_noaa_nrt.txt"
NRT_CONFIG = REPO / "flareflow" / "configs" / "nrt.toml"
#: bundle model -> (prediction column, label column, shown name)
COLUMNS = {"logistic": ("p_m24_logistic", "m_within_24h", "logistic regression"),
           "defn_m": ("p_m24_defn", "m_within_24h", "Deep Flare Net (>=M)")}


def config(validation_start: str, models: list[str], resample: str | None) -> TrainConfig:
    base = TrainConfig.from_toml(NRT_CONFIG).to_dict()
    return TrainConfig.from_mapping({**base, "validation_start": validation_start,
                                     "models": models, "resample": resample})


def _score(k: str, y: np.ndarray, p: np.ndarray, threshold: float, clim: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if k == "tss":
            return metrics.true_skill_statistic(y, p >= threshold)
        if k == "bss":
            return metrics.brier_skill_score(y, np.clip(p, 0, 1), climatology=clim)
        return metrics.roc_auc(y, p)


def _scores(y: np.ndarray, p: np.ndarray, threshold: float, clim: float) -> dict[str, float]:
    return {k: _score(k, y, p, threshold, clim) for k in ("tss", "bss", "auc")}


def fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:+.{nd}f}" if nd < 0 else f"{x:.{nd}f}"


def markdown(res: dict[str, Any]) -> str:
    v = res["validation"]
    lines = [
        f"Validation year {res['validation_start'][:4]}: {v['records']:,} region-hours of "
        f"{v['regions']} NRT regions, {v['events']:,} followed by a >=M flare within 24 h. "
        f"Fit part: {res['arms']['none']['fit_records']:,} region-hours without resampling, "
        f"{res['arms']['kde']['fit_records']:,} after `kde_resample` (rows per class "
        f"{res['arms']['kde']['counts_before']} -> {res['arms']['kde']['counts_after']}; "
        "class = next >=M flare within 144 h). Same seed, same split, same models "
        f"({', '.join(res['models'])}); training {res['arms']['none']['train_s']:.0f} s / "
        f"{res['arms']['kde']['train_s']:.0f} s on the shared 2 cores. Intervals: 95 % "
        f"region bootstrap ({res['n_boot']} resamples) of the paired difference.",
        "",
        "| model (>=M in 24 h) | TSS none / kde (kde - none, 95 % CI) | BSS none / kde "
        "(difference) | ROC AUC none / kde (difference) |",
        "|---|---|---|---|",
    ]
    for name, m in res["scores"].items():
        cells = []
        for k in ("tss", "bss", "auc"):
            d = m["diff"][k]
            cells.append(f"{fmt(m['none'][k])} / {fmt(m['kde'][k])} ({d['value']:+.3f}, "
                         f"{d['low']:+.3f} .. {d['high']:+.3f})")
        lines.append(f"| {COLUMNS[name][2]} | " + " | ".join(cells) + " |")
    lines += ["", res["verdict"]]
    return "\n".join(lines)


def write_evaluation(text: str) -> None:
    heading = ("\n\n## KDE re-balancing of the fit part (`TrainConfig.resample`), NRT "
               "validation year\n\nProduced by `.venv/bin/python "
               "benchmarks/evaluate_resampling.py` (protocol in its docstring): logistic "
               "regression and Deep Flare Net trained on the NRT stream 2021-05 .. 2022-12 "
               "with and without the survival paper's re-balancing, scored on the 2023 "
               "region-hours. These are validation scores: thresholds, epochs and Platt "
               "calibration were chosen on the same 2023 records, for both arms alike. Only "
               "these two models were run (the Cox-Time chain, which the survival paper "
               "re-balanced for, takes ~40 min more on this machine and was not). Off by "
               "default (`resample = None`).\n\n")
    write_block(REPO / "EVALUATION.md", BEGIN, END, text, heading=heading,
                before="\n# The sun2022 folds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_DATA])
    ap.add_argument("--flares", type=Path, default=DEFAULT_FLARES)
    ap.add_argument("--harp-map", type=Path, default=DEFAULT_MAP)
    ap.add_argument("--validation-start", default="2023-01-01")
    ap.add_argument("--models", nargs="+", default=["logistic", "defn_m"],
                    choices=sorted(COLUMNS))
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "resampling")
    ap.add_argument("--no-write", action="store_true", help="do not touch EVALUATION.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    missing = [str(p) for p in args.data if not p.exists()]
    if missing:
        raise SystemExit(f"missing NRT export {missing} (see ../shared/data/README.md)")

    sharp, flares = read_inputs(args.data, [args.flares], harp_map=args.harp_map)
    cfgs = {arm: config(args.validation_start, args.models, None if arm == "none" else "kde")
            for arm in ("none", "kde")}
    dataset = build_model_dataset(sharp, flares, cfgs["none"], with_labels=True)
    fit, val = split_validation_period(dataset.sort("harpnum", "t_rec"), cfgs["none"])
    step = cfgs["none"].train_step_h
    fit, val = thin_records(fit, step), thin_records(val, step)
    clim = float(fit["m_within_24h"].cast(pl.Float64).mean())
    y = val["m_within_24h"].cast(pl.Int64).to_numpy()
    groups = val["harpnum"].to_numpy()
    res: dict[str, Any] = {
        "validation_start": args.validation_start, "models": args.models,
        "n_boot": args.n_boot, "training_climatology": clim,
        "validation": {"records": val.height, "regions": int(val["harpnum"].n_unique()),
                       "events": int(y.sum())},
        "arms": {}, "scores": {},
    }
    preds: dict[str, pl.DataFrame] = {}
    for arm, cfg in cfgs.items():
        t0 = time.perf_counter()
        model_dir = train_all(dataset, args.out / arm, cfg)
        train_s = time.perf_counter() - t0
        bundle = ModelBundle.load(model_dir)
        preds[arm] = predict_records(bundle, val)
        entry: dict[str, Any] = {"train_s": train_s, "fit_records": fit.height,
                                 "thresholds": {m: bundle.threshold(m) for m in args.models}}
        if arm == "kde":
            from flare_core.sampling import kde_resample

            resampled, report = kde_resample(fit, seed=cfg.seed)
            entry.update(fit_records=resampled.height, counts_before=report.counts_before,
                         counts_after=report.counts_after)
        res["arms"][arm] = entry
    for name in args.models:
        col = COLUMNS[name][0]
        p = {arm: preds[arm][col].cast(pl.Float64).to_numpy() for arm in cfgs}
        thr = {arm: res["arms"][arm]["thresholds"][name] for arm in cfgs}
        m: dict[str, Any] = {arm: _scores(y, p[arm], thr[arm], clim) for arm in cfgs}
        m["diff"] = {}
        for k in ("tss", "bss", "auc"):
            def diff(yy, a, b, k=k, thr=thr):
                return _score(k, yy, b, thr["kde"], clim) - _score(k, yy, a, thr["none"], clim)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ci = metrics.bootstrap_by_region(diff, groups, y, p["none"], p["kde"],
                                                 n_boot=args.n_boot, seed=0)
            m["diff"][k] = {"value": m["kde"][k] - m["none"][k], "low": ci.low,
                            "high": ci.high}
        res["scores"][name] = m
    worse = [f"{COLUMNS[n][2]} {k.upper()}" for n, m in res["scores"].items()
             for k in ("tss", "bss", "auc") if m["diff"][k]["high"] < 0]
    better = [f"{COLUMNS[n][2]} {k.upper()}" for n, m in res["scores"].items()
              for k in ("tss", "bss", "auc") if m["diff"][k]["low"] > 0]
    if worse and better:
        verdict = f"mixed: better on {', '.join(better)}, worse on {', '.join(worse)}"
    elif worse:
        verdict = f"re-balancing loses on {', '.join(worse)} (no score better)"
    elif better:
        verdict = f"re-balancing wins on {', '.join(better)} (no score worse)"
    else:
        verdict = "no difference outside the bootstrap intervals"
    res["verdict"] = f"Verdict (differences whose 95 % interval excludes 0): {verdict}."
    save_results(res, REPO / "benchmarks" / "results" / "resampling_nrt.json", markdown(res),
                 write=not args.no_write, write_evaluation=write_evaluation)
    parts = []
    for name, m in res["scores"].items():
        for k in ("tss", "auc", "bss"):
            a, b = m["none"][k], m["kde"][k]
            ratio = b / a if a else float("nan")
            parts.append(f"{name}_{k}={b:.3f}_vs_{a:.3f}({ratio:.2f}x)")
    print(f"RESULT kde_resample_vs_none validation_region_hours={val.height} "
          + " ".join(parts))


if __name__ == "__main__":
    main()
