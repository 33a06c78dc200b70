"""Choose hyper-parameters of the deep models on VALIDATION regions only (never the test folds).

For each sun2022 rotation k = 0..3 the training folds (every fold but k) are split, exactly as
`flare_core.training.train_all` splits them (`split_validation`, same fraction and seed),
into an inner training part and a *selection* part of whole regions. Each candidate
configuration is trained with `train_all` on the inner part only (which again holds out its
own validation regions for the epoch and the decision threshold) and scored on the selection
regions: TSS at the model's validation-chosen threshold and ROC AUC. The selection regions are
thus untouched by epoch and threshold choice, and fold k is never read. Logistic regression is
trained alongside as the reference.

Prints one line per candidate: mean ± std over the four rotations of the selection TSS / AUC.
With ``--seeds`` each candidate is trained once per model seed (weight initialisation and
batch order) and the figures are over rotations x seeds, so that a candidate is not chosen
for a lucky initialisation; the torch models' scores move by ~0.01 TSS between seeds.

Usage (from the repository root)::

    .venv/bin/python benchmarks/select_deep_models.py --model defn_m \\
        --candidate '{}' --candidate '{"weight_decay": 1e-4}'
"""

from __future__ import annotations

import argparse
import json
import statistics
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

from flare_core import metrics  # noqa: E402
from flare_core.config import TrainConfig  # noqa: E402
from flare_core.forecasting import ModelBundle, predict_records  # noqa: E402
from flare_core.splits import split_validation  # noqa: E402
from flare_core.training import train_all  # noqa: E402

#: prediction column of each selectable model and the label it forecasts (24 h ahead).
COLUMN = {"defn_m": "p_m24_defn", "defn_c": "p_c24_defn", "lstm": "p_m24_lstm",
          "cox_time": "p_m24_survival", "logistic": "p_m24_logistic"}
LABEL = {"defn_c": "c_within_24h"}  # every other model: m_within_24h
#: models a candidate needs in the bundle besides itself.
NEEDS = {"cox_time": ("flare_class_forest",)}


def _score(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    return {"tss": metrics.true_skill_statistic(y, p >= threshold),
            "auc": metrics.roc_auc(y, p)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(set(COLUMN) - {"logistic"}), required=True)
    parser.add_argument("--candidate", action="append", required=True,
                        help="JSON object of hyper-parameters (overrides DEFAULT_PARAMS)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None],
                        help="model seeds to average over (default: the model's own)")
    parser.add_argument("--out", type=Path, help="append JSON lines of the results here")
    args = parser.parse_args(argv)
    candidates = [json.loads(c) for c in args.candidate]

    base = TrainConfig()
    _, _, dataset = load_fold_dataset(base)
    splits = []
    for k in args.folds:
        train = dataset.filter(pl.col("fold") != k).drop("fold")
        inner, sel = split_validation(train.sort("harpnum", "t_rec"),
                                      fraction=base.val_fraction, seed=base.seed)
        splits.append((inner, sel))
    work = Path(tempfile.mkdtemp(prefix="flareflow-select-"))
    for ci, params in enumerate(candidates):
        # logistic regression (>=M) is the reference of the >=M models
        models = (*NEEDS.get(args.model, ()), args.model, "logistic")
        scores: dict[str, list[dict[str, float]]] = {args.model: [], "logistic": []}
        t0 = time.perf_counter()
        for seed in args.seeds:
            seeded = params if seed is None else {**params, "seed": seed}
            cfg = TrainConfig(models=models, params={args.model: seeded})
            for (inner, sel), k in zip(splits, args.folds, strict=True):
                model_dir = train_all(inner, work / f"c{ci}_s{seed}_f{k}", cfg)
                bundle = ModelBundle.load(model_dir)
                preds = predict_records(bundle, sel)
                for name in scores:
                    if name == "logistic" and seed != args.seeds[0]:
                        continue  # deterministic: one fit per rotation
                    y = sel[LABEL.get(name, "m_within_24h")].cast(pl.Int8).to_numpy()
                    p = preds[COLUMN[name]].to_numpy().astype(np.float64)
                    scores[name].append(_score(y, p, bundle.threshold(name)))
        secs = time.perf_counter() - t0
        line = {"model": args.model, "params": params, "seeds": args.seeds, "seconds": secs}
        for name, rows in scores.items():
            for key in ("tss", "auc"):
                vals = [r[key] for r in rows]
                line[f"{name}_{key}"] = statistics.fmean(vals)
                line[f"{name}_{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
                line[f"{name}_{key}_folds"] = vals
        print(f"{args.model} {json.dumps(params)}: selection TSS "
              f"{line[f'{args.model}_tss']:.3f} ± {line[f'{args.model}_tss_std']:.3f}, AUC "
              f"{line[f'{args.model}_auc']:.4f} | logistic TSS {line['logistic_tss']:.3f}, "
              f"AUC {line['logistic_auc']:.4f} | {secs:.0f} s", flush=True)
        if args.out:
            with args.out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
