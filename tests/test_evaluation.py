"""Tests of flare_core.evaluation: metrics.json against independent computations, plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flare_core.config import TrainConfig
from flare_core.dataset import build_model_dataset, read_inputs
from flare_core.evaluation import AUC_TIMES_H, evaluate, score_predictions
from flare_core.forecasting import ModelBundle, predict_records
from flare_core.training import train_all


@pytest.fixture(scope="module")
def split(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Training regions from sun2022 fold 2, held-out regions from fold 3 (region-disjoint)."""
    flares = [data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"]
    out = []
    for fold, n_pos, n_neg in ((2, 14, 26), (3, 10, 20)):
        sharp, fl = read_inputs([data_dir / "sharp" / f"sun2022_sharp_m24h_fold{fold}.csv.gz"],
                                flares)
        ds = build_model_dataset(sharp, fl, TrainConfig.quick())
        pos = ds.group_by("harpnum").agg(pl.col("m_within_24h").any()).sort("harpnum")
        keep = (pos.filter(pl.col("m_within_24h"))["harpnum"].head(n_pos).to_list()
                + pos.filter(~pl.col("m_within_24h"))["harpnum"].head(n_neg).to_list())
        out.append(ds.filter(pl.col("harpnum").is_in(keep)))
    return out[0], out[1]


@pytest.fixture(scope="module")
def bundle(split, tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    cfg = TrainConfig.quick()  # every model, tiny settings
    return ModelBundle.load(train_all(split[0], tmp_path_factory.mktemp("m"), cfg))


def test_evaluate_writes_metrics_matching_independent_scores(
    bundle: ModelBundle, split, tmp_path: Path
) -> None:
    from sklearn.metrics import confusion_matrix, roc_auc_score

    test = split[1]
    result = evaluate(bundle, test, tmp_path / "report")
    on_disk = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert on_disk["n_records"] == test.height
    assert set(on_disk["models"]) >= {"defn_m", "logistic", "persistence", "climatology"}
    preds = predict_records(bundle, test)
    y = test["m_within_24h"].cast(pl.Int64).to_numpy()
    for name, col in (("logistic", "p_m24_logistic"), ("defn_m", "p_m24_defn")):
        p = preds[col].to_numpy()
        m = on_disk["models"][name]
        thr = bundle.threshold(name)
        assert m["threshold"] == pytest.approx(thr)
        tn, fp, fn, tp = confusion_matrix(y, p >= thr, labels=[0, 1]).ravel()
        assert m["tss"] == pytest.approx(tp / (tp + fn) - fp / (fp + tn))
        assert m["auc"] == pytest.approx(roc_auc_score(y, p))
        clim = bundle.meta["climatology"]["m_within_24h"]
        bss = 1 - np.mean((p - y) ** 2) / np.mean((clim - y) ** 2)
        assert m["bss"] == pytest.approx(bss)
        assert set(m["auc_t"]) == {f"{h:g}" for h in AUC_TIMES_H}
        assert 0.0 <= m["c_index"] <= 1.0
    # climatology has no resolution: AUC 0.5, BSS <= 0 against its own training rate
    assert on_disk["models"]["climatology"]["auc"] == pytest.approx(0.5)
    assert result["models"]["logistic"]["tss"] == on_disk["models"]["logistic"]["tss"]
    for png in ("roc_m24.png", "reliability_m24.png", "auc_t.png", "tss_vs_lead_time.png",
                "tss_vs_lifetime_threshold.png"):
        assert png in on_disk["plots"]
        assert (tmp_path / "report" / png).stat().st_size > 1000
    assert any(p.startswith("survival_curves_harp") for p in on_disk["plots"])
    assert any(p.startswith("lifetime_track_harp") for p in on_disk["plots"])
    # the survival model and the warning are scored too
    surv = on_disk["models"]["survival"]
    assert 0.0 <= surv["auc"] <= 1.0 and 0.0 <= surv["c_index"] <= 1.0
    assert surv["auc_t"]["144"] is not None  # scored just inside the 144 h follow-up
    warn = on_disk["models"]["warning_svm"]
    w = preds["warning_24h"].fill_null(False).to_numpy()
    tn, fp, fn, tp = confusion_matrix(y, w, labels=[0, 1]).ravel()
    assert warn["tss"] == pytest.approx(tp / (tp + fn) - fp / (fp + tn))
    sweep = warn["tss_sweep"]
    assert len(sweep["lead_h"]) == len(sweep["tss_within"]) > 5


def test_score_predictions_skips_absent_models(split) -> None:
    test = split[1]
    preds = test.select("harpnum", "t_rec").with_columns(
        pl.lit(None, dtype=pl.Float64).alias("p_m24_survival"),
        pl.Series("p_m24_logistic", np.linspace(0, 1, test.height)),
    )
    scores = score_predictions(preds, test, thresholds={"logistic": 0.5},
                               climatology={"m_within_24h": 0.05})
    assert set(scores) == {"logistic"}


def test_evaluate_scores_the_flare_class_forest(bundle: ModelBundle, split, tmp_path: Path) -> None:
    from sklearn.metrics import f1_score

    from flare_core.models.flare_class import flare_class_band

    test = split[1]
    forest = evaluate(bundle, test, tmp_path / "r")["models"]["flare_class_forest"]
    truth = flare_class_band(test["next_flare_flux_wm2"].fill_null(np.nan).to_numpy(),
                             test["time_to_event_h"].to_numpy(), test["event"].to_numpy(),
                             tmax_h=bundle.config.tmax_h)
    chain = bundle.models["flare_class_forest"]  # the survival chain with its forest
    pred = chain.forest_.predict(chain.matrix(test))
    assert forest["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro",
                                                        zero_division=0))
    assert sum(forest["n_per_band"].values()) == test.height
    assert forest["n_per_band"]["none"] == int((truth == 0).sum())
