"""Score every model of a bundle on a labelled dataset: ``metrics.json`` and plots.

Metrics (all on the records of the evaluated dataset; nothing is chosen on it):

* binary forecasts of a flare >= M (or >= C) peaking in ``(t_rec, t_rec + 24 h]``: TSS and
  HSS at the decision threshold chosen on the VALIDATION regions during training
  (``model.json``), BSS against the TRAINING climatology, ROC AUC;
* time-to-event scores of every model's risk score (its ``P(>=M in 24 h)``, or ``1 - S(24 h)``
  for the survival model) against ``time_to_event_h``/``event`` of
  `flare_core.labels.label_time_to_event`: AUC(t) at 12/24/48/72/144 h (cumulative/dynamic,
  IPCW) and Uno's C-index. The censoring distribution of the IPCW weights is the Kaplan-Meier
  estimate on the evaluated labels themselves (the training labels are not in MODEL_DIR);
* the warning SVM: TSS of ``warning_24h`` against ``m_within_24h`` and, when the model offers
  a decision score, TSS as a function of the warning threshold.

`repeated_cv` is the survival paper's repeated cross-validation (``flareflow evaluate
--repeats N``): N reshuffles of a region K-fold (`flare_core.splits.repeated_region_cv`), one
`flare_core.training.train_all` per fold on the other folds, every fold scored with
`score_predictions`; it reports each fold, each repeat and the mean and spread over all
``N * K`` models.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .errors import DataQualityWarning, ModelError
from .forecasting import ModelBundle, predict_records
from .models.registry import MODEL_SPECS

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["AUC_TIMES_H", "BINARY_FORECASTS", "CV_METRICS", "evaluate", "repeated_cv",
           "score_predictions"]

logger = logging.getLogger(__name__)

#: Horizons (hours after t_rec) of the time-dependent AUC.
AUC_TIMES_H: tuple[float, ...] = (12.0, 24.0, 48.0, 72.0, 144.0)

#: (report name, probability column, label column) of every binary forecast scored, from
#: the registry (`flare_core.models.registry.ModelSpec.score_name`), in its order.
BINARY_FORECASTS: tuple[tuple[str, str, str], ...] = tuple(
    (spec.score_name, spec.columns[0], spec.label)
    for spec in MODEL_SPECS.values() if spec.label is not None
)
_BUNDLE_NAME = {spec.score_name: spec.name for spec in MODEL_SPECS.values()}


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    return x


def _quiet(fn, *args, **kwargs) -> float:
    """Call a metric, returning NaN (logged) where it is undefined on this data."""
    from .errors import ConfigError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            logger.info("%s undefined: %s", getattr(fn, "__name__", fn), e)
            return float("nan")


def _binary_scores(y: np.ndarray, p: np.ndarray, threshold: float,
                   climatology: float | None) -> dict[str, Any]:
    from . import metrics

    pred = p >= threshold
    out: dict[str, Any] = {"threshold": threshold, "n": int(y.size), "n_pos": int(y.sum())}
    out.update({k: v for k, v in _quiet(metrics.skill_scores, y, pred).items()}
               if 0 < y.size else {})
    out["auc"] = _quiet(metrics.roc_auc, y, p)
    out["brier"] = _quiet(metrics.brier_score, y, np.clip(p, 0.0, 1.0))
    if climatology is not None:
        out["bss"] = _quiet(metrics.brier_skill_score, y, np.clip(p, 0.0, 1.0),
                            climatology=climatology)
    return out


def _survival_scores(target: pl.DataFrame, risk: np.ndarray,
                     times_h: Sequence[float]) -> dict[str, Any]:
    """AUC(t) and C-index of a risk score (higher = flare sooner)."""
    from . import metrics

    t = target["time_to_event_h"].to_numpy()
    e = target["event"].to_numpy().astype(bool)
    ok = np.isfinite(t) & np.isfinite(risk)
    y = metrics.survival_target(e[ok], t[ok])
    r = risk[ok]
    out: dict[str, Any] = {}
    hi = float(t[ok].max()) if ok.any() else 0.0
    # follow-up ends at tmax_h: the last horizon is scored just before it (AUC(t) needs t
    # inside the follow-up), e.g. 144 h -> 143.999 h
    at = {h: (h if h < hi else hi - 1e-3) for h in times_h if h < hi or h - hi < 1.0}
    aucs: dict[str, float] = {f"{h:g}": float("nan") for h in times_h}
    if at and e[ok].any():
        res = _quiet(metrics.cumulative_dynamic_auc_at, y, y, r, list(at.values()))
        if isinstance(res, tuple):
            for h, a in zip(at, res[0], strict=True):
                aucs[f"{h:g}"] = float(a)
            out["mean_auc_t"] = res[1]
    out["auc_t"] = aucs
    out["c_index"] = _quiet(metrics.concordance_index_ipcw, y, y, r) if e[ok].any() else None
    return out


def score_predictions(
    preds: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    thresholds: dict[str, float],
    climatology: dict[str, float],
    times_h: Sequence[float] = AUC_TIMES_H,
) -> dict[str, Any]:
    """Every metric of every forecast column present in ``preds``.

    Parameters
    ----------
    preds : pl.DataFrame
        Output of `flare_core.forecasting.predict_records`.
    labels : pl.DataFrame
        ``harpnum, t_rec`` and the label columns of `flare_core.labels.label_time_to_event`,
        row-aligned with ``preds``.
    thresholds : dict
        Decision threshold per bundle model name (chosen on validation regions).
    climatology : dict
        TRAINING event rate per label column (reference of the BSS).

    Returns
    -------
    dict
        ``{model: {tss, hss, pod, far, ..., bss, auc, auc_t: {h: auc}, mean_auc_t, c_index}}``
        (NaN where a score is undefined on this data).
    """
    out: dict[str, Any] = {}
    for name, column, label in BINARY_FORECASTS:
        if column not in preds.columns or preds[column].null_count() == preds.height:
            continue
        p = preds[column].cast(pl.Float64).to_numpy()
        y = labels[label].cast(pl.Int64).to_numpy()
        bundle_name = _BUNDLE_NAME.get(name, name)
        m = _binary_scores(y, p, thresholds.get(bundle_name, 0.5), climatology.get(label))
        m["label"] = label
        if {"time_to_event_h", "event"} <= set(labels.columns):
            m.update(_survival_scores(labels, p, times_h))
        out[name] = m
    if "warning_24h" in preds.columns and preds["warning_24h"].null_count() < preds.height:
        from . import metrics

        y = labels["m_within_24h"].cast(pl.Int64).to_numpy()
        w = preds["warning_24h"].fill_null(False).to_numpy()
        out["warning_svm"] = {"label": "m_within_24h",
                              **_quiet(metrics.skill_scores, y, w)}
    return out


def _sweep_tss(y: np.ndarray, score: np.ndarray, n: int = 41) -> dict[str, list[float]]:
    from . import metrics

    qs = np.unique(np.quantile(score[np.isfinite(score)], np.linspace(0.0, 1.0, n)))
    tss = [_quiet(metrics.true_skill_statistic, y, score >= q) for q in qs]
    return {"threshold": qs.tolist(), "tss": tss}


def evaluate(bundle: ModelBundle, dataset: pl.DataFrame, report_dir: str | Path) -> dict:
    """Score ``bundle`` on a labelled ``dataset``; write ``metrics.json`` and plots.

    Parameters
    ----------
    bundle : ModelBundle
    dataset : pl.DataFrame
        `flare_core.dataset.build_model_dataset` output WITH labels (records not used in
        training, e.g. a held-out fold of regions).
    report_dir : path-like
        Created; receives ``metrics.json`` and PNG plots.

    Returns
    -------
    dict
        The content of ``metrics.json``: ``model_dir``, ``model_version``, ``n_records``,
        ``n_regions``, ``range``, ``models`` (see `score_predictions`), ``plots``.
    """
    from .models.persistence import write_json

    for col in ("m_within_24h", "c_within_24h", "time_to_event_h", "event"):
        if col not in dataset.columns:
            raise ModelError(f"dataset lacks the label column {col!r}; build it with labels")
    report = Path(report_dir)
    report.mkdir(parents=True, exist_ok=True)
    preds = predict_records(bundle, dataset)
    thresholds = {n: bundle.threshold(n) for n in bundle.models}
    scores = score_predictions(preds, dataset, thresholds=thresholds,
                               climatology=bundle.meta.get("climatology", {}))
    forest = _forest_scores(bundle, dataset)
    if forest is not None:
        scores["flare_class_forest"] = forest
    sweep = _warning_sweep(bundle, preds, dataset)
    if sweep is not None:
        scores.setdefault("warning_svm", {"label": "m_within_24h"})["tss_sweep"] = sweep
    result: dict[str, Any] = {
        "model_dir": str(bundle.model_dir),
        "model_version": bundle.version,
        "n_records": dataset.height,
        "n_regions": dataset["harpnum"].n_unique(),
        "range": {"start": dataset["t_rec"].min(), "end": dataset["t_rec"].max()},
        "auc_times_h": list(AUC_TIMES_H),
        "models": scores,
    }
    result["plots"] = _plots(bundle, preds, dataset, scores, report)
    write_json(_nan_to_none(result), report / "metrics.json")
    logger.info("evaluation written to %s", report)
    return result


def _forest_scores(bundle: ModelBundle, dataset: pl.DataFrame) -> dict[str, Any] | None:
    """F1 of the flare-class forest's band of the next >=M flare (the paper reports 0.85)
    against the bands the labels give, with the per-band record counts."""
    chain = bundle.models.get("flare_class_forest")  # the survival chain with its forest
    if chain is None:
        return None
    from .models.flare_class import FLARE_CLASS_BANDS, flare_class_band, score_flare_class

    truth = flare_class_band(
        dataset["next_flare_flux_wm2"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        dataset["time_to_event_h"].to_numpy(), dataset["event"].to_numpy(),
        tmax_h=bundle.config.tmax_h)
    predicted = chain.forest_.predict(chain.matrix(dataset))
    counts = np.bincount(truth, minlength=len(FLARE_CLASS_BANDS))
    return {"label": "next_flare_band", **score_flare_class(truth, predicted),
            "n_per_band": dict(zip(FLARE_CLASS_BANDS, counts.tolist(), strict=True))}


def _warning_sweep(bundle: ModelBundle, preds: pl.DataFrame,
                   dataset: pl.DataFrame) -> dict[str, Any] | None:
    """The paper's lead-time sweep of the warning SVM (TSS vs lead time x, an SVM refitted on
    the model's stored validation-region windows for each x, scored on this data's windows),
    and the TSS of "warn if the mean lifetime is below x hours" against ``m_within_24h``."""
    out: dict[str, Any] = {}
    if "mean_lifetime_h" in preds.columns and preds["mean_lifetime_h"].null_count() == 0:
        y = dataset["m_within_24h"].cast(pl.Int64).to_numpy()
        life = preds["mean_lifetime_h"].to_numpy()
        xs = np.unique(np.quantile(life, np.linspace(0.0, 1.0, 41)))
        out["lifetime_threshold_h"] = xs.tolist()
        out["lifetime_threshold_tss"] = [
            _quiet(_tss, y, life < x) for x in xs
        ]
    chain = bundle.models.get("warning_svm")  # the survival chain with its warning SVM
    if chain is not None and "mean_lifetime_h" in preds.columns:
        from .models.warning import sweep_lead_time

        track = dataset.select("harpnum", "t_rec", "time_to_event_h", "event").with_columns(
            preds["mean_lifetime_h"])
        test_windows = chain.lifetime_windows(track)
        if test_windows.height and chain.train_windows_.height:
            leads = [x for x in range(8, 61, 4) if x < bundle.config.tmax_h]
            try:
                table = sweep_lead_time(chain.train_windows_, test_windows, leads_h=leads,
                                        config=chain.warning_svm_.config)
            except Exception as e:  # noqa: BLE001 - a failed sweep must not lose the report
                logger.error("warning lead-time sweep failed: %s", e)
            else:
                out["lead_h"] = table["lead_h"].to_list()
                for col in ("tss_within", "tss_after", "tss_none", "tss_micro"):
                    out[col] = table[col].to_list()
                out["chosen_lead_h"] = chain.warning_svm_.config.lead_h
    return out or None


def _tss(y: np.ndarray, pred: np.ndarray) -> float:
    from . import metrics

    return metrics.true_skill_statistic(y, pred)


def _plots(bundle: ModelBundle, preds: pl.DataFrame, dataset: pl.DataFrame,
           scores: dict[str, Any], report: Path) -> list[str]:
    """Draw the report figures with `flare_core.publish.plots`; returns the written files."""
    try:
        from .publish import plots
    except ImportError as e:
        logger.error("plots left out: flare_core.publish.plots is not available (%s)", e)
        return []
    return _draw(plots, bundle, preds, dataset, scores, report)


def _draw(plots: Any, bundle: ModelBundle, preds: pl.DataFrame, dataset: pl.DataFrame,
          scores: dict[str, Any], report: Path) -> list[str]:
    written: list[Path] = []
    y_m = dataset["m_within_24h"].cast(pl.Int64).to_numpy()
    m_models = {name: preds[col].cast(pl.Float64).to_numpy()
                for name, col, label in BINARY_FORECASTS
                if label == "m_within_24h" and name in scores}
    if m_models and 0 < y_m.sum() < y_m.size:
        written.append(plots.plot_roc_curves(y_m, m_models, report / "roc_m24.png",
                                             title=">=M flare within 24 h: ROC"))
        written.append(plots.plot_reliability_diagram(
            y_m, {k: np.clip(v, 0, 1) for k, v in m_models.items()},
            report / "reliability_m24.png", title=">=M flare within 24 h: reliability"))
    auc_t = {}
    for name, m in scores.items():
        values = m.get("auc_t") if isinstance(m, dict) else None
        if values and any(v is not None and np.isfinite(v) for v in values.values()):
            auc_t[name] = [np.nan if v is None else v for v in values.values()]
    if auc_t:
        written.append(plots.plot_auc_vs_time(
            list(AUC_TIMES_H), auc_t, report / "auc_t.png",
            mean_auc={k: scores[k].get("mean_auc_t") for k in auc_t}))
    sweep = scores.get("warning_svm", {}).get("tss_sweep") or {}
    if len(sweep.get("lead_h", [])) > 1:
        written.append(plots.plot_tss_vs_threshold(
            sweep["lead_h"], {"within x (SVM)": sweep["tss_within"],
                              "micro (3 classes)": sweep["tss_micro"]},
            report / "tss_vs_lead_time.png", chosen={"within x (SVM)": sweep["chosen_lead_h"]},
            xlabel="lead time x (h)", title="Warning SVM: TSS vs lead time"))
    if len(sweep.get("lifetime_threshold_h", [])) > 1:
        written.append(plots.plot_tss_vs_threshold(
            sweep["lifetime_threshold_h"], {"mean lifetime < x": sweep["lifetime_threshold_tss"]},
            report / "tss_vs_lifetime_threshold.png", xlabel="warning threshold x (h)",
            title=">=M within 24 h: warn if the mean lifetime is below x"))
    written.extend(_example_regions(plots, preds, dataset, report))
    return [str(p.name) for p in written]


def _example_regions(plots: Any, preds: pl.DataFrame, dataset: pl.DataFrame, report: Path,
                     n_regions: int = 3) -> list[Path]:
    """Survival curves coloured by lead time before a flare, and mean-lifetime tracks, for
    the regions with the most forecasts in the 72 h before one of their >=M flares."""
    if "survival_curve" not in preds.columns or preds["survival_curve"].null_count() == preds.height:
        return []
    frame = pl.concat([dataset.select("harpnum", "t_rec", "time_to_event_h", "event",
                                      "next_flare_class"),
                       preds.select("survival_grid_h", "survival_curve", "mean_lifetime_h")],
                      how="horizontal").with_columns(
        (pl.col("t_rec") + pl.duration(seconds=pl.col("time_to_event_h") * 3600.0))
        .dt.round("1m").alias("_flare"))
    before = frame.filter((pl.col("event") == 1) & (pl.col("time_to_event_h") <= 72.0))
    if before.height == 0:
        return []
    picks = (before.group_by("harpnum", "_flare").len().sort("len", "harpnum",
                                                              descending=[True, False])
             .unique("harpnum", keep="first", maintain_order=True).head(n_regions))
    out: list[Path] = []
    for harpnum, flare_time in picks.select("harpnum", "_flare").iter_rows():
        seg = before.filter((pl.col("harpnum") == harpnum) & (pl.col("_flare") == flare_time))
        seg = seg.sort("t_rec")
        grid = np.asarray(seg["survival_grid_h"][0], dtype=np.float64)
        curves = np.vstack([np.asarray(c, dtype=np.float64) for c in seg["survival_curve"]])
        out.append(plots.plot_survival_curves(
            grid, curves, seg["t_rec"], report / f"survival_curves_harp{harpnum}.png",
            flare_time=flare_time, title=f"HARP {harpnum}: S(t) before the "
            f"{seg['next_flare_class'][0]} flare"))
        track = frame.filter(pl.col("harpnum") == harpnum).sort("t_rec")
        flares = track.filter(pl.col("event") == 1).unique("_flare").sort("_flare")
        obs = track.select(pl.when(pl.col("event") == 1).then(pl.col("time_to_event_h"))
                           .otherwise(None).cast(pl.Float64)).to_series().fill_null(np.nan)
        out.append(plots.plot_mean_lifetime_track(
            track["t_rec"], track["mean_lifetime_h"].cast(pl.Float64).fill_null(np.nan),
            report / f"lifetime_track_harp{harpnum}.png",
            flare_times=flares["_flare"], flare_classes=flares["next_flare_class"].to_list(),
            observed_time_to_event_h=obs, title=f"HARP {harpnum}: mean lifetime"))
    return out


# ---------------------------------------------------------------- repeated region CV

#: Scalar scores `repeated_cv` summarises (keys of `score_predictions` entries).
CV_METRICS: tuple[str, ...] = ("tss", "hss", "bss", "auc", "mean_auc_t", "c_index")


def _cv_scores(scores: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The `CV_METRICS` of every model (NaN where undefined)."""
    out: dict[str, dict[str, float]] = {}
    for name, m in scores.items():
        row = {}
        for k in CV_METRICS:
            v = m.get(k)
            row[k] = float(v) if isinstance(v, int | float | np.floating) else float("nan")
        out[name] = row
    return out


def _spread(values: Sequence[float]) -> dict[str, Any]:
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "min": float(x.min()), "max": float(x.max()), "n": int(x.size)}


def _summarise(rows: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    names = sorted({n for r in rows for n in r})
    return {n: {k: _spread([r[n][k] for r in rows if n in r]) for k in CV_METRICS}
            for n in names}


def repeated_cv(
    dataset: pl.DataFrame,
    config: TrainConfig,
    *,
    n_repeats: int,
    n_splits: int = 5,
    seed: int | None = None,
    work_dir: str | Path | None = None,
    report_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Repeated region K-fold cross-validation of every model of ``config``.

    For each of ``n_repeats`` reshuffles and each of its ``n_splits`` folds
    (`flare_core.splits.repeated_region_cv`, stratified by ``m_within_24h``, whole regions),
    `flare_core.training.train_all` trains on the other folds (its own region-disjoint
    validation split inside them chooses thresholds, epochs and calibration) and the fold's
    records are scored with `score_predictions` (BSS against that training part's
    climatology). Nothing is chosen on a scored fold. The survival paper ran 90 such models.

    Parameters
    ----------
    dataset : pl.DataFrame
        `flare_core.dataset.build_model_dataset` output WITH labels.
    config : TrainConfig
        Training configuration of every fold model.
    n_repeats, n_splits : int
        Repeats (>= 1) and folds per repeat (>= 2, at most the number of regions).
    seed : int, optional
        Master seed of the fold shuffles (default ``config.seed``); equal seeds give equal
        folds and, with the deterministic models, equal scores.
    work_dir : path-like, optional
        Where the fold models are written while they are scored (a temporary directory
        each, removed afterwards); default the system's.
    report_dir : path-like, optional
        When given, created and the result written there as ``cv_metrics.json``.

    Returns
    -------
    dict
        ``n_repeats``, ``n_splits``, ``seed``, ``config``, ``n_records``, ``n_regions``;
        ``folds`` (per repeat and fold: record and region counts, the test regions,
        ``models`` with the `CV_METRICS`, ``train_seconds``); ``repeats`` (per repeat: the mean
        over its folds); ``summary`` (per model and metric: ``mean``, ``std`` (ddof 1),
        ``min``, ``max`` and ``n`` over all fold models where the score is defined).
    """
    from .splits import repeated_region_cv
    from .training import train_all

    for col in ("m_within_24h", "c_within_24h", "time_to_event_h", "event"):
        if col not in dataset.columns:
            raise ModelError(f"dataset lacks the label column {col!r}; build it with labels")
    master = config.seed if seed is None else seed
    folds: list[dict[str, Any]] = []
    for r, k, tr, te in repeated_region_cv(dataset, n_splits=n_splits, n_repeats=n_repeats,
                                           stratify="m_within_24h", seed=master):
        train, test = dataset[tr], dataset[te]
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"cv_r{r}_f{k}_", dir=work_dir) as tmp:
            bundle = ModelBundle.load(train_all(train, Path(tmp) / "model", config))
            preds = predict_records(bundle, test)
            scores = score_predictions(
                preds, test, thresholds={n: bundle.threshold(n) for n in bundle.models},
                climatology=bundle.meta.get("climatology", {}))
        folds.append({"repeat": r, "fold": k, "n_train": train.height, "n_test": test.height,
                      "n_test_events": int(test["m_within_24h"].cast(pl.Int64).sum()),
                      "test_regions": sorted(test["harpnum"].unique().to_list()),
                      "models": _cv_scores(scores),
                      "train_seconds": time.perf_counter() - t0})
        logger.info("cross-validation repeat %d fold %d: %d train / %d test records scored",
                    r, k, train.height, test.height)
    repeats = []
    for r in range(n_repeats):
        rows = [f["models"] for f in folds if f["repeat"] == r]
        names = sorted({n for row in rows for n in row})
        repeats.append({"repeat": r, "models": {
            n: {k: _spread([row[n][k] for row in rows if n in row])["mean"]
                for k in CV_METRICS} for n in names}})
    result = {
        "n_repeats": n_repeats, "n_splits": n_splits, "seed": master,
        "config": config.to_dict(), "n_records": dataset.height,
        "n_regions": dataset["harpnum"].n_unique(),
        "folds": folds, "repeats": repeats,
        "summary": _summarise([f["models"] for f in folds]),
    }
    if report_dir is not None:
        from .models.persistence import write_json

        report = Path(report_dir)
        report.mkdir(parents=True, exist_ok=True)
        write_json(_nan_to_none(result), report / "cv_metrics.json")
        logger.info("cross-validation written to %s", report / "cv_metrics.json")
    return result
