"""Choose hyper-parameters of the deep models on VALIDATION regions only (never the test folds).

For each sun2022 rotation k = 0..3 the training folds (every fold but k) are split, exactly as
`flare_core.training.train_all` splits them (`split_validation`, same fraction and seed),
into an inner training part and a *selection* part of whole regions. Each candidate
configuration is trained with `train_all` on the inner part only (which again holds out its
own validation regions for the epoch and the decision threshold) and scored on the selection
regions: TSS at the model's validation-chosen threshold and ROC AUC. The selection regions are
thus untouched by epoch and threshold choice, and fold k is never read. Logistic regression is
trained on the same parts as the reference.

The search is scikit-learn's: `TrainAllCandidate` is `train_all` of one model as an
estimator, the candidates (``--candidate`` objects, and the ``--grid`` expanded by
`~sklearn.model_selection.ParameterGrid`) times the model seeds form the grid of
`~sklearn.model_selection.GridSearchCV`, the rotations' (inner, selection) region splits are
its ``cv``, and the scorers are `~sklearn.metrics.make_scorer` of
`flare_core.metrics.true_skill_statistic` (on ``predict``: P >= the validation threshold)
and `flare_core.metrics.roc_auc` (on ``predict_proba``). The reference is
`~sklearn.model_selection.cross_validate` of logistic regression over the same splits.

Prints one line per candidate: mean ± std over the four rotations of the selection TSS / AUC.
With ``--seeds`` each candidate is trained once per model seed (weight initialisation and
batch order) and the figures are over rotations x seeds, so that a candidate is not chosen
for a lucky initialisation; the torch models' scores move by ~0.01 TSS between seeds.

Usage (from the repository root)::

    .venv/bin/python benchmarks/select_deep_models.py --model defn_m \\
        --candidate '{}' --candidate '{"weight_decay": 1e-4}'
    .venv/bin/python benchmarks/select_deep_models.py --model lstm \\
        --grid '{"hidden": [32, 64], "dropout": [0.0, 0.2]}'
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, ParameterGrid, cross_validate

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


class TrainAllCandidate(ClassifierMixin, BaseEstimator):
    """`train_all` of one model (and the models it needs) as a scikit-learn classifier.

    Parameters
    ----------
    model : str
        A key of `COLUMN`.
    params : dict, optional
        Hyper-parameters of the model (`TrainConfig.params`).
    seed : int, optional
        Model seed (weight initialisation, batch order); None: the model's own.
    work_dir : str, optional
        Where the model directories go (a temporary directory each fit).

    ``fit(X)`` trains on the records ``X`` (labels come from its columns; ``train_all``
    holds out its own validation regions for the epoch and the threshold).
    ``predict_proba`` is ``[1 - p, p]`` of the model's forecast column, ``predict`` the
    yes/no forecast ``p >= threshold`` (the validation-chosen threshold of the bundle).
    """

    def __init__(self, model: str = "defn_m", params: dict | None = None,
                 seed: int | None = None, work_dir: str | None = None) -> None:
        self.model = model
        self.params = params
        self.seed = seed
        self.work_dir = work_dir

    def fit(self, X: pl.DataFrame, y: np.ndarray | None = None) -> TrainAllCandidate:  # noqa: N803
        params = dict(self.params or {})
        if self.seed is not None:
            params["seed"] = self.seed
        cfg = TrainConfig(models=(*NEEDS.get(self.model, ()), self.model),
                          params={self.model: params})
        out = Path(tempfile.mkdtemp(prefix=f"{self.model}-", dir=self.work_dir))
        self.bundle_ = ModelBundle.load(train_all(X, out, cfg))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:  # noqa: N803
        p = predict_records(self.bundle_, X)[COLUMN[self.model]].to_numpy().astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pl.DataFrame) -> np.ndarray:  # noqa: N803
        return self.predict_proba(X)[:, 1] >= self.bundle_.threshold(self.model)


SCORING = {"tss": make_scorer(metrics.true_skill_statistic),
           "auc": make_scorer(metrics.roc_auc, response_method="predict_proba")}


def _rotation_splits(dataset: pl.DataFrame, folds: list[int], base: TrainConfig
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per rotation k, row numbers of (inner training part, selection part) of ``dataset``:
    the training folds (all but k) split by whole regions as `train_all` splits them."""
    rows = dataset.with_row_index("_row")
    splits = []
    for k in folds:
        train = rows.filter(pl.col("fold") != k).drop("fold")
        inner, sel = split_validation(train.sort("harpnum", "t_rec"),
                                      fraction=base.val_fraction, seed=base.seed)
        splits.append((inner["_row"].to_numpy(), sel["_row"].to_numpy()))
    return splits


def _summary(prefix: str, tss: list[float], auc: list[float]) -> dict[str, object]:
    line: dict[str, object] = {}
    for key, vals in (("tss", tss), ("auc", auc)):
        line[f"{prefix}_{key}"] = statistics.fmean(vals)
        line[f"{prefix}_{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        line[f"{prefix}_{key}_folds"] = vals
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(set(COLUMN) - {"logistic"}), required=True)
    parser.add_argument("--candidate", action="append", default=[],
                        help="JSON object of hyper-parameters (overrides DEFAULT_PARAMS)")
    parser.add_argument("--grid", help="JSON object of lists of hyper-parameters; every "
                        "combination is a candidate (sklearn ParameterGrid)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None],
                        help="model seeds to average over (default: the model's own)")
    parser.add_argument("--out", type=Path, help="append JSON lines of the results here")
    args = parser.parse_args(argv)
    candidates = [json.loads(c) for c in args.candidate]
    if args.grid:
        candidates += list(ParameterGrid(json.loads(args.grid)))
    if not candidates:
        parser.error("give at least one --candidate or a --grid")

    base = TrainConfig()
    _, _, dataset = load_fold_dataset(base)
    cv = _rotation_splits(dataset, args.folds, base)
    X = dataset.drop("fold")  # noqa: N806
    work = tempfile.mkdtemp(prefix="flareflow-select-")

    def label(name: str) -> np.ndarray:
        return X[LABEL.get(name, "m_within_24h")].cast(pl.Int8).to_numpy()

    # logistic regression (>=M) is the reference of every candidate: deterministic, one fit
    # per rotation
    ref = cross_validate(TrainAllCandidate("logistic", work_dir=work), X, label("logistic"),
                         cv=cv, scoring=SCORING, error_score="raise")
    reference = _summary("logistic", list(ref["test_tss"]), list(ref["test_auc"]))
    ref_secs = float(np.sum(ref["fit_time"]) + np.sum(ref["score_time"]))

    search = GridSearchCV(
        TrainAllCandidate(args.model, work_dir=work),
        [{"params": [c], "seed": args.seeds} for c in candidates],
        scoring=SCORING, cv=cv, refit=False, error_score="raise",
    ).fit(X, label(args.model))
    res = search.cv_results_
    n_splits = len(cv)
    for params in candidates:
        # grid rows of this candidate, one per seed, in --seeds order
        rows = [i for i, p in enumerate(res["params"]) if p["params"] == params]
        tss = [float(res[f"split{j}_test_tss"][i]) for i in rows for j in range(n_splits)]
        auc = [float(res[f"split{j}_test_auc"][i]) for i in rows for j in range(n_splits)]
        secs = ref_secs + float(sum((res["mean_fit_time"][i] + res["mean_score_time"][i])
                                    * n_splits for i in rows))
        line = {"model": args.model, "params": params, "seeds": args.seeds, "seconds": secs,
                **_summary(args.model, tss, auc), **reference}
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
