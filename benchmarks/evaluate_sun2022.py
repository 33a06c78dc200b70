"""Skill and training time of every flareflow model on the four sun2022 folds (4-fold rotation).

The four files ``data/sharp/sun2022_sharp_m24h_fold{0..3}.csv.gz`` hold disjoint sets of
regions (HARPs). For k = 0..3 every model is trained on the other three folds (`train_all`
picks its validation regions INSIDE those folds, region-disjoint, for early stopping, epoch
and threshold selection) and scored on fold k (`flare_core.evaluation.evaluate`). Inputs are
the SHARP keywords and the flare history built from the NCEI GOES list (flares that peaked
before each record); the files' ``FLARE_INDEX``/``flares``/``label`` columns are never read
as inputs (`flare_core.sources.read_sun2022` drops them). Labels come from the same flare list.

Prints the training time of each fold and in total (against the 10-minute budget), the
skill ratios of the deep models against logistic regression and persistence, and a paired
comparison on the pooled test folds (every record forecast by the rotation that did not
train on its region; TSS and ROC AUC differences deep - baseline with 95 % intervals from a
bootstrap over regions), and writes both tables into ``EVALUATION.md`` between the
``<!-- sun2022-table -->`` markers.

Usage (one command, from the repository root)::

    .venv/bin/python benchmarks/evaluate_sun2022.py            # default TrainConfig
    .venv/bin/python benchmarks/evaluate_sun2022.py --quick    # TrainConfig.quick(), smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from sun2022_folds import load_fold_dataset  # noqa: E402

from flare_core import metrics as skill  # noqa: E402
from flare_core.config import TrainConfig  # noqa: E402
from flare_core.evaluation import AUC_TIMES_H, evaluate  # noqa: E402
from flare_core.forecasting import ModelBundle, predict_records  # noqa: E402
from flare_core.training import train_all  # noqa: E402

BEGIN, END = "<!-- sun2022-table:begin -->", "<!-- sun2022-table:end -->"
BUDGET_S = 600.0

#: Table rows: (metrics.json model key, shown name, label forecast).
ROWS = (
    ("survival", "Cox-Time survival, 1 - S(24 h)", ">=M"),
    ("defn_m", "Deep Flare Net", ">=M"),
    ("lstm", "LSTM", ">=M"),
    ("logistic", "logistic regression (baseline)", ">=M"),
    ("persistence", "persistence, calibrated (baseline)", ">=M"),
    ("climatology", "climatology (baseline)", ">=M"),
    ("defn_c", "Deep Flare Net", ">=C"),
)
DEEP = ("survival", "defn_m", "lstm")
#: >=M/24 h probability column and bundle model name of each model in the paired comparison.
PAIRED = {"survival": ("p_m24_survival", "cox_time"), "defn_m": ("p_m24_defn", "defn_m"),
          "lstm": ("p_m24_lstm", "lstm"), "logistic": ("p_m24_logistic", "logistic"),
          "persistence": ("p_m24_persistence", "persistence")}
N_BOOT = 1000


def _fmt(values: list[float]) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.fmean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(vals) if vals else math.nan


def _collect(per_fold: list[dict], model: str, key: str, sub: str | None = None) -> list[float]:
    out = []
    for m in per_fold:
        entry = m["models"].get(model)
        if entry is None:
            continue
        v = entry.get(key)
        if sub is not None:
            v = (v or {}).get(sub)
        out.append(v if isinstance(v, int | float) else math.nan)
    return out


def _table(per_fold: list[dict]) -> str:
    head = ("| model | target | TSS | HSS | BSS | ROC AUC | C-index | "
            + " | ".join(f"AUC({h:g} h)" for h in AUC_TIMES_H) + " |")
    sep = "|" + "---|" * (7 + len(AUC_TIMES_H))
    lines = [head, sep]
    for key, name, target in ROWS:
        if not any(key in m["models"] for m in per_fold):
            continue
        cells = [_fmt(_collect(per_fold, key, k)) for k in ("tss", "hss", "bss", "auc",
                                                            "c_index")]
        cells += [_fmt(_collect(per_fold, key, "auc_t", f"{h:g}")) for h in AUC_TIMES_H]
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")
    if any("warning_svm" in m["models"] for m in per_fold):
        cells = [_fmt(_collect(per_fold, "warning_svm", k)) for k in ("tss", "hss")]
        lines.append("| warning SVM (mean-lifetime track) | >=M | " + " | ".join(cells)
                     + " |" + " n/a |" * (3 + len(AUC_TIMES_H)))
    if any("flare_class_forest" in m["models"] for m in per_fold):
        f1 = {k: _fmt(_collect(per_fold, "flare_class_forest", k))
              for k in ("macro_f1", "weighted_f1", "accuracy")}
        lines += ["", "Flare-class forest (band of the next >=M flare within 144 h: none, "
                      "M1-M4.9, M5-M9.9, X) on the test folds: "
                      f"macro F1 {f1['macro_f1']}, weighted F1 {f1['weighted_f1']}, "
                      f"accuracy {f1['accuracy']} (the survival paper reports F1 = 0.85 on "
                      "its own data)."]
    return "\n".join(lines)


def _pooled_forecasts(bundle: ModelBundle, test: pl.DataFrame) -> pl.DataFrame:
    """Per test record: harpnum, the >=M/24 h label, and per model P and yes/no forecast.

    The yes/no forecast uses the model's validation-chosen threshold (as in `evaluate`).
    """
    preds = predict_records(bundle, test)
    cols = [test["harpnum"].alias("harpnum"),
            test["m_within_24h"].cast(pl.Int8).alias("y")]
    for key, (column, model) in PAIRED.items():
        if column not in preds.columns or model not in bundle.meta["models"]:
            continue
        p = preds[column].cast(pl.Float64)
        cols += [p.alias(f"p_{key}"), (p >= bundle.threshold(model)).alias(f"yes_{key}")]
    return pl.DataFrame(cols)


def _tss_difference(y, a, b) -> float:
    return skill.true_skill_statistic(y, a) - skill.true_skill_statistic(y, b)


def _auc_difference(y, a, b) -> float:
    return skill.roc_auc(y, a) - skill.roc_auc(y, b)


def _paired_table(pooled: pl.DataFrame) -> str:
    """Deep model - baseline differences in TSS and ROC AUC with region-bootstrap intervals."""
    import warnings

    from flare_core.errors import DataQualityWarning

    lines = [f"Paired comparison on the pooled test folds ({pooled.height} records, "
             f"{pooled['harpnum'].n_unique()} regions, each forecast by the rotation that did "
             f"not train on it); 95 % intervals from {N_BOOT} bootstrap resamples of whole "
             "regions:", "",
             "| deep model | baseline | TSS deep | TSS baseline | TSS difference (95 % CI) "
             "| ROC AUC difference (95 % CI) |", "|---|---|---|---|---|---|"]
    y, groups = pooled["y"].to_numpy(), pooled["harpnum"].to_numpy()
    names = dict((k, n) for k, n, _ in ROWS)
    for deep in DEEP:
        for base in ("logistic", "persistence"):
            if f"p_{deep}" not in pooled.columns or f"p_{base}" not in pooled.columns:
                continue
            yes_d, yes_b = pooled[f"yes_{deep}"].to_numpy(), pooled[f"yes_{base}"].to_numpy()
            p_d, p_b = pooled[f"p_{deep}"].to_numpy(), pooled[f"p_{base}"].to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataQualityWarning)
                tss = skill.bootstrap_by_region(_tss_difference, groups, y, yes_d, yes_b,
                                                n_boot=N_BOOT)
                auc = skill.bootstrap_by_region(_auc_difference, groups, y, p_d, p_b,
                                                n_boot=N_BOOT)
            lines.append(
                f"| {names[deep]} | {names[base].removesuffix(' (baseline)')} | "
                f"{skill.true_skill_statistic(y, yes_d):.3f} | "
                f"{skill.true_skill_statistic(y, yes_b):.3f} | "
                f"{tss.estimate:+.3f} ({tss.low:+.3f} to {tss.high:+.3f}) | "
                f"{auc.estimate:+.4f} ({auc.low:+.4f} to {auc.high:+.4f}) |")
    return "\n".join(lines)


def _write_markdown(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="TrainConfig TOML (default TrainConfig())")
    parser.add_argument("--quick", action="store_true", help="use TrainConfig.quick()")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="test folds to run (default all four)")
    parser.add_argument("--out", type=Path, help="keep models and reports here")
    parser.add_argument("--markdown", type=Path, default=REPO / "EVALUATION.md",
                        help="file whose sun2022 table is replaced ('-' to skip)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = (TrainConfig.from_toml(args.config) if args.config
           else TrainConfig.quick() if args.quick else TrainConfig())
    out = args.out or Path(tempfile.mkdtemp(prefix="flareflow-sun2022-"))

    t0 = time.perf_counter()
    sharp, flares, dataset = load_fold_dataset(cfg)
    prep_s = time.perf_counter() - t0
    print(f"data: {dataset.height} records, {dataset['harpnum'].n_unique()} regions, "
          f"{len(dataset.columns)} columns; read + features + labels in {prep_s:.1f} s")

    per_fold: list[dict] = []
    pooled: list[pl.DataFrame] = []
    train_s: list[float] = []
    per_model_s: dict[str, float] = {}
    for k in args.folds:
        train = dataset.filter(pl.col("fold") != k).drop("fold")
        test = dataset.filter(pl.col("fold") == k).drop("fold")
        t = time.perf_counter()
        model_dir = train_all(train, out / f"fold{k}" / "model", cfg)
        train_s.append(time.perf_counter() - t)
        bundle = ModelBundle.load(model_dir)
        for name, entry in bundle.meta["models"].items():
            per_model_s[name] = per_model_s.get(name, 0.0) + entry["fit_seconds"]
        if bundle.meta["skipped"]:
            print(f"fold {k}: models left out: {bundle.meta['skipped']}")
        metrics = evaluate(bundle, test, out / f"fold{k}" / "report")
        per_fold.append(metrics)
        pooled.append(_pooled_forecasts(bundle, test))
        summary = ", ".join(
            f"{n} TSS={m.get('tss', math.nan):.3f}" for n, m in metrics["models"].items()
            if isinstance(m.get("tss"), float)
        )
        print(f"fold {k}: trained in {train_s[-1]:.1f} s on {train.height} records; "
              f"test {test.height} records: {summary}")

    _time_forecast_at(ModelBundle.load(out / f"fold{args.folds[-1]}" / "model"), sharp, flares)
    total = sum(train_s)
    print(f"training time: {total:.1f} s for {len(args.folds)} fold(s) "
          f"({total / BUDGET_S:.2f}x the {BUDGET_S:.0f} s budget); per model: "
          + ", ".join(f"{n} {s:.1f} s" for n, s in per_model_s.items()))
    for deep in DEEP:
        tss = _mean(_collect(per_fold, deep, "tss"))
        if not math.isfinite(tss):
            continue
        for base in ("logistic", "persistence"):
            ref = _mean(_collect(per_fold, base, "tss"))
            if math.isfinite(ref) and ref != 0:
                print(f"TSS {deep} vs {base}: {tss / ref:.2f}x ({tss:.3f} vs {ref:.3f})")
    table = _table(per_fold)
    print(table)
    paired = _paired_table(pl.concat(pooled))
    print(paired)
    (out / "sun2022_metrics.json").write_text(json.dumps(
        {"folds": args.folds, "train_seconds": train_s, "per_model_seconds": per_model_s,
         "config": cfg.to_dict(), "metrics": per_fold}, indent=2, default=str))
    if str(args.markdown) != "-":
        cmd = "python benchmarks/evaluate_sun2022.py" + (" --quick" if args.quick else "") + (
            f" --config {args.config}" if args.config else "")
        block = (f"Command: `{cmd}` (folds {args.folds}; mean ± std over the test folds)."
                 f"  \nTraining time: {total:.0f} s in total for {len(args.folds)} fold(s) "
                 f"on {_cpu_info()}.\n\n{table}\n\n{paired}")
        _write_markdown(args.markdown, block)
        print(f"table written to {args.markdown}")
    print(f"models and reports: {out}")
    return 0


def _time_forecast_at(bundle: ModelBundle, sharp: pl.DataFrame, flares: pl.DataFrame) -> None:
    """Time one `forecast_at` call at the record time with the most regions on the disk."""
    from datetime import timedelta

    from flare_core.forecasting import forecast_at

    busiest = (sharp.group_by(pl.col("t_rec").dt.truncate("1h")).agg(pl.col("harpnum")
               .n_unique()).sort("harpnum", descending=True).row(0))
    issue = busiest[0] + timedelta(hours=1)
    forecast_at(bundle, sharp, flares, issue)  # warm-up (imports, first torch call)
    t = time.perf_counter()
    rows = forecast_at(bundle, sharp, flares, issue)
    s = time.perf_counter() - t
    print(f"forecast_at {issue:%Y-%m-%d %H:%M} UTC: {rows['harpnum'].n_unique()} regions, "
          f"{rows.height} rows in {s:.2f} s (models loaded; {sharp.height} SHARP rows scanned)")


def _cpu_info() -> str:
    import os

    import torch

    dev = "CUDA" if torch.cuda.is_available() else "CPU"
    return f"{os.cpu_count()} cores ({dev})"


if __name__ == "__main__":
    raise SystemExit(main())
