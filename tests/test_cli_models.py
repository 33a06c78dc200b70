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
    # region chunks predicted on 2 threads: the same file as one thread
    import flareflow.cli.model_commands as commands

    saved = commands._PREDICT_RECORDS
    commands._PREDICT_RECORDS = max(1, n_records // 5)
    try:
        for jobs in ("1", "2"):
            res = runner.invoke(app, ["predict", "--model", str(model), "--data",
                                      str(files["fold1"]), "--flares", str(files["flares"]),
                                      "--out", str(tmp / f"jobs{jobs}.csv"), "--jobs", jobs])
            assert res.exit_code == 0, res.output
    finally:
        commands._PREDICT_RECORDS = saved
    assert (tmp / "jobs1.csv").read_bytes() == (tmp / "jobs2.csv").read_bytes()
    assert pl.read_csv(tmp / "jobs2.csv").height == n_records
    # --horizons reads the survival curves: this MODEL_DIR has none, and says so
    res = runner.invoke(app, ["predict", "--model", str(model), "--data", str(files["fold1"]),
                              "--flares", str(files["flares"]), "--out", str(tmp / "h.csv"),
                              "--horizons", "6,24"])
    assert res.exit_code == 2 and "cox_time" in res.output  # ConfigError: bad input
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


def _nrt_subset(data_dir: Path, dst_dir: Path, n: int = 3000) -> Path:
    """The header and the first ``n`` records of the bundled NRT export (name kept, so the
    series is still inferred from it)."""
    src = data_dir / "sharp_nrt" / "hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
    dst = dst_dir / src.name
    with gzip.open(src, "rt") as fin, gzip.open(dst, "wt") as fout:
        for i, line in enumerate(fin):
            if i > n:
                break
            fout.write(line)
    return dst


@pytest.mark.parametrize("content", ["", "harpnum,t_rec,USFLUX\n"], ids=["empty", "header"])
def test_empty_or_header_only_input_is_one_line(files: dict[str, Path], content: str) -> None:
    tmp = files["tmp"]
    bad = tmp / "nothing.csv"
    bad.write_text(content)
    common = ["--flares", str(files["flares"])]
    for args in (["train", "--data", str(bad), *common, "--out", str(tmp / "m_empty")],
                 ["predict", "--model", str(tmp), "--data", str(bad), *common,
                  "--out", str(tmp / "e.csv")],
                 ["evaluate", "--model", str(tmp), "--data", str(bad), *common,
                  "--report", str(tmp / "rep_empty")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args[0], res.output)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"error: {bad}: ")
        assert "Traceback" not in res.output and "RandomForest" not in res.output
    res = runner.invoke(app, ["train", "--data", str(files["fold0"]), "--flares", str(bad),
                              "--out", str(tmp / "m_empty")])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {bad}: ")


def test_unknown_layout_names_no_format_option(files: dict[str, Path]) -> None:
    tmp = files["tmp"]
    bad = tmp / "odd.csv"
    bad.write_text("what,is,this\n1,2,3\n")
    res = runner.invoke(app, ["train", "--data", str(bad), "--flares", str(files["flares"]),
                              "--out", str(tmp / "m_odd")])
    assert res.exit_code == 2 and "unknown file layout" in res.stderr
    assert "pass a format" not in res.stderr


def test_train_config_help_shows_params_tables() -> None:
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "[params.<model>]" in res.stdout
    assert "harp_noaa_nrt.txt" in res.stdout


def test_nrt_data_take_the_nrt_map_and_refuse_the_definitive_one(
        data_dir: Path, files: dict[str, Path]) -> None:
    from flare_core.dataset import DEFAULT_HARP_MAP, NRT_HARP_MAP, read_inputs
    from flare_core.errors import ConfigError

    nrt = _nrt_subset(data_dir, files["tmp"])
    sharp, flares = read_inputs([nrt], [files["flares"]])  # default: the NRT map
    assert sharp["series"].unique().to_list() == ["hmi.sharp_720s_nrt"]
    assert flares["harpnum"].is_not_null().sum() > 0
    same = read_inputs([nrt], [files["flares"]], harp_map=NRT_HARP_MAP)[1]
    assert same.equals(flares)
    with pytest.raises(ConfigError, match="HARP numbers differ"):
        read_inputs([nrt], [files["flares"]], harp_map=DEFAULT_HARP_MAP)
    res = runner.invoke(app, ["train", "--data", str(nrt), "--flares", str(files["flares"]),
                              "--out", str(files["tmp"] / "m_nrt"), "--harp-map",
                              str(DEFAULT_HARP_MAP)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "HARP numbers differ" in res.stderr
    with pytest.raises(ConfigError, match="mix near-real-time"):
        read_inputs([nrt, files["fold0"]], [files["flares"]])
