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


# ------------------------------------------------ repeated region cross-validation

CV_MODELS = ("logistic", "climatology", "persistence")


def test_repeated_cv_repeats_differ_and_reproduce(split, tmp_path: Path) -> None:
    from flare_core.evaluation import CV_METRICS, repeated_cv

    data = pl.concat(split, how="diagonal_relaxed")
    cfg = TrainConfig.quick(models=CV_MODELS, seed=4)
    res = repeated_cv(data, cfg, n_repeats=2, n_splits=3, report_dir=tmp_path / "r")
    assert [(f["repeat"], f["fold"]) for f in res["folds"]] == [(r, k) for r in range(2)
                                                                for k in range(3)]
    regions = set(data["harpnum"].unique().to_list())
    for r in range(2):  # every repeat scores every region exactly once
        tests = [set(f["test_regions"]) for f in res["folds"] if f["repeat"] == r]
        assert set().union(*tests) == regions and sum(map(len, tests)) == len(regions)
    # the repeats are different reshuffles, so their scores differ
    assert res["folds"][0]["test_regions"] != res["folds"][3]["test_regions"]
    auc = [rep["models"]["logistic"]["auc"] for rep in res["repeats"]]
    assert auc[0] != auc[1]
    # the summary is the mean and spread over the 6 fold models
    fold_auc = [f["models"]["logistic"]["auc"] for f in res["folds"]]
    s = res["summary"]["logistic"]["auc"]
    assert s["n"] == 6 and s["mean"] == pytest.approx(np.mean(fold_auc))
    assert s["std"] == pytest.approx(np.std(fold_auc, ddof=1)) and s["std"] > 0
    assert set(res["summary"]["logistic"]) == set(CV_METRICS)
    assert res["summary"]["climatology"]["auc"]["mean"] == pytest.approx(0.5)
    on_disk = json.loads((tmp_path / "r" / "cv_metrics.json").read_text())
    assert on_disk["summary"]["logistic"]["auc"]["mean"] == pytest.approx(s["mean"])
    # reproducible from the seed
    again = repeated_cv(data, cfg, n_repeats=2, n_splits=3)
    assert again["summary"] == res["summary"]
    assert [f["test_regions"] for f in again["folds"]] == [f["test_regions"]
                                                           for f in res["folds"]]


def test_cli_evaluate_repeats(data_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flareflow.cli import app

    toml = tmp_path / "cv.toml"
    toml.write_text('models = ["logistic", "climatology"]\nval_fraction = 0.25\n')
    common = ["--data", str(data_dir / "sharp" / "sun2022_sharp_m24h_fold3.csv.gz"),
              "--flares", str(data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"),
              "--report", str(tmp_path / "rep")]
    res = CliRunner().invoke(app, ["evaluate", "--repeats", "2", "--folds", "2",
                                   "--config", str(toml), *common])
    assert res.exit_code == 0, res.output
    assert "2 x 2-fold region cross-validation (4 models)" in res.output
    assert "logistic" in res.output and "auc=" in res.output
    cv = json.loads((tmp_path / "rep" / "cv_metrics.json").read_text())
    assert cv["n_repeats"] == 2 and cv["n_splits"] == 2 and len(cv["folds"]) == 4
    assert cv["summary"]["logistic"]["tss"]["n"] == 4
    bad = CliRunner().invoke(app, ["evaluate", *common])
    assert bad.exit_code == 2 and "--model" in bad.output
