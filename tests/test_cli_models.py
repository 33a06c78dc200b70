"""`flareflow train | predict | evaluate` end to end on small real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flareflow.cli import app

runner = CliRunner()


def _subset(src: Path, dst: Path, harps: set[str]) -> Path:
    """Copy the header and the rows of ``harps`` of a sun2022 file, unchanged."""
    with gzip.open(src, "rt") as fin, gzip.open(dst, "wt") as fout:
        header = next(fin)
        fout.write(header)
        col = header.strip().split(",").index("arpnum")
        for line in fin:
            if line.split(",")[col] in harps:
                fout.write(line)
    return dst


@pytest.fixture(scope="module")
def files(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("cli")
    out = {}
    for fold in (0, 1):
        src = data_dir / "sharp" / f"sun2022_sharp_m24h_fold{fold}.csv.gz"
        raw = pl.read_csv(src, columns=["arpnum", "label"])
        per = raw.group_by("arpnum").agg(pl.col("label").any()).sort("arpnum")
        harps = (per.filter(pl.col("label"))["arpnum"].head(8).to_list()
                 + per.filter(~pl.col("label"))["arpnum"].head(16).to_list())
        out[f"fold{fold}"] = _subset(src, tmp / f"fold{fold}.csv.gz", {str(h) for h in harps})
    out["flares"] = data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
    cfg = tmp / "tiny.toml"
    cfg.write_text('models = ["defn_m", "defn_c", "persistence", "logistic"]\n'
                   "val_fraction = 0.25\n"
                   "[params.defn_m]\nmax_epochs = 2\n[params.defn_c]\nmax_epochs = 2\n")
    out["config"] = cfg
    out["tmp"] = tmp
    return out


def test_train_predict_evaluate(files: dict[str, Path]) -> None:
    tmp = files["tmp"]
    model = tmp / "model"
    res = runner.invoke(app, ["train", "--data", str(files["fold0"]), "--flares",
                              str(files["flares"]), "--out", str(model),
                              "--config", str(files["config"])])
    assert res.exit_code == 0, res.output
    meta = json.loads((model / "model.json").read_text())
    assert set(meta["models"]) == {"defn_m", "defn_c", "persistence", "logistic"}

    pred = tmp / "pred.csv"
    res = runner.invoke(app, ["predict", "--model", str(model), "--data", str(files["fold1"]),
                              "--flares", str(files["flares"]), "--out", str(pred)])
    assert res.exit_code == 0, res.output
    frame = pl.read_csv(pred)
    n_records = pl.read_csv(files["fold1"]).height
    assert frame.height == n_records
    for col in ("harpnum", "t_rec", "p_m24_survival", "p_m24_defn", "p_c24_defn",
                "mean_lifetime_h", "warning_24h"):
        assert col in frame.columns
    assert frame["p_m24_defn"].is_between(0, 1).all()
    # --horizons reads the survival curves: this MODEL_DIR has none, and says so
    res = runner.invoke(app, ["predict", "--model", str(model), "--data", str(files["fold1"]),
                              "--flares", str(files["flares"]), "--out", str(tmp / "h.csv"),
                              "--horizons", "6,24"])
    assert res.exit_code == 1 and "cox_time" in res.output
    res = runner.invoke(app, ["predict", "--model", str(model), "--data", str(files["fold1"]),
                              "--flares", str(files["flares"]), "--out", str(tmp / "h.csv"),
                              "--horizons", "6,x"])
    assert res.exit_code == 2 and "--horizons" in res.output

    report = tmp / "report"
    res = runner.invoke(app, ["evaluate", "--model", str(model), "--data", str(files["fold1"]),
                              "--flares", str(files["flares"]), "--report", str(report)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((report / "metrics.json").read_text())
    assert {"defn_m", "defn_c", "logistic", "persistence"} <= set(metrics["models"])
    assert "tss" in metrics["models"]["defn_m"]


def test_data_accepts_several_files_after_one_option(files: dict[str, Path]) -> None:
    tmp = files["tmp"]
    res = runner.invoke(app, ["train", "--data", str(files["fold0"]), str(files["fold1"]),
                              "--flares", str(files["flares"]), "--out", str(tmp / "m2"),
                              "--config", str(files["config"])])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp / "m2" / "model.json").read_text())
    assert meta["n_regions"] == 48


def test_bad_inputs_fail_with_a_message(files: dict[str, Path]) -> None:
    tmp = files["tmp"]
    res = runner.invoke(app, ["train", "--data", str(files["flares"]), "--flares",
                              str(files["flares"]), "--out", str(tmp / "bad")])
    assert res.exit_code != 0
    assert "expected SHARP" in res.output
    res = runner.invoke(app, ["predict", "--model", str(tmp), "--data", str(files["fold1"]),
                              "--flares", str(files["flares"]), "--out", str(tmp / "x.csv")])
    assert res.exit_code != 0
