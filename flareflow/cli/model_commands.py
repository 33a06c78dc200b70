"""``flareflow train | predict | evaluate``: the model commands (a stable interface).

Scripts outside the repository call these, so options only ever get added. ``--data`` takes
one or more SHARP files of any supported format (``--data a.csv b.csv`` or
``--data a.csv --data b.csv``); ``--flares`` one or more flare lists. Heavy modules (torch,
the models) are imported inside the command functions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .app import app, ingest_app, store_app  # noqa: F401
from .data_commands import check_not_empty
from .errors import handled
from .logs import setup_logging

if TYPE_CHECKING:  # heavy imports stay inside the commands at run time
    import polars as pl

    from flare_core.forecasting import ModelBundle

__all__ = ["train", "predict", "evaluate"]

logger = logging.getLogger(__name__)

_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}

_DATA_HELP = (
    "SHARP keyword file(s): sun2022 CSV, SWAN-SF, store export parquet, ... "
    "(repeat --data or list several files after it)"
)
_FLARES_HELP = "GOES flare list(s) in any supported format"
_HARP_HELP = (
    "HARP<->NOAA map of the data's series (default: the bundled map of that series: "
    "data/sharp_nrt/harp_noaa_nrt.txt for NRT data, data/harp_noaa/all_harps_with_noaa_ars.txt "
    "for definitive data; a map of the other series is refused)"
)


def _data_files(ctx: typer.Context, data: list[Path]) -> list[Path]:
    """``--data`` values plus any further file names given after it."""
    extra = [Path(a) for a in ctx.args]
    bad = [str(p) for p in extra if str(p).startswith("-")]
    if bad:
        raise typer.BadParameter(f"unknown options {bad}")
    files = [*data, *extra]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file(s): {missing}", param_hint="--data")
    return files


def _read_inputs(files: list[Path], flares: list[Path], harp_map: Path | None):
    """`flare_core.dataset.read_inputs`; an undetected layout says these commands take no
    --format (the formats they read are detected)."""
    from flare_core.dataset import read_inputs
    from flare_core.errors import ParseError

    try:
        return read_inputs(files, flares, harp_map=harp_map)
    except ParseError as e:
        if "pass a format" not in str(e):
            raise
        raise ParseError(str(e).replace("pass a format, one of",
                                        "this command detects the format; it is none of")
                         ) from e


def _check_inputs(files: list[Path], flares: list[Path]) -> None:
    """Exit 2 naming the first empty or header-only input file."""
    for p in [*files, *flares]:
        check_not_empty(p)


def _load_bundle_and_dataset(
    model: Path,
    files: list[Path],
    flares: list[Path],
    harp_map: Path | None,
    *,
    with_labels: bool,
) -> tuple[ModelBundle, pl.DataFrame]:
    """Load MODEL_DIR and build its model dataset from the input files.

    Returns ``(bundle, dataset)``; the dataset uses the bundle's own training config.
    Raises the library's ``FlareflowError`` subclasses (`errors.handled` turns them into
    exit 2 for bad input, else 1).
    """
    from flare_core.dataset import build_model_dataset
    from flare_core.forecasting import ModelBundle

    bundle = ModelBundle.load(model)
    sharp, flare_frame = _read_inputs(files, flares, harp_map)
    dataset = build_model_dataset(sharp, flare_frame, bundle.config, with_labels=with_labels)
    return bundle, dataset


#: Records per `predict_records` call of ``flareflow predict`` (whole regions,
#: `flare_core.feature_stream.region_chunks`; ``--jobs`` calls at once).
_PREDICT_RECORDS = 32_768


def _horizons(text: str | None) -> list[float]:
    """``--horizons 6,12,24`` -> [6.0, 12.0, 24.0] (empty when not given)."""
    if not text:
        return []
    try:
        hours = [float(h) for h in text.split(",") if h.strip()]
    except ValueError as e:
        raise typer.BadParameter(f"expected comma-separated hours, got {text!r}",
                                 param_hint="--horizons") from e
    if not hours or any(h <= 0 for h in hours):
        raise typer.BadParameter(f"horizons must be positive hours, got {text!r}",
                                 param_hint="--horizons")
    return hours


@app.command(context_settings=_EXTRA_ARGS)
@handled
def train(
    ctx: typer.Context,
    data: list[Path] = typer.Option(..., "--data", help=_DATA_HELP),
    flares: list[Path] = typer.Option(..., "--flares", exists=True, help=_FLARES_HELP),
    out: Path = typer.Option(..., "--out", help="model directory to write (MODEL_DIR)"),
    harp_map: Path | None = typer.Option(None, "--harp-map", exists=True, help=_HARP_HELP),
    config: Path | None = typer.Option(
        None, "--config", exists=True, help="TrainConfig TOML (fields and \\[params.<model>] tables; see TrainConfig.from_toml)"
    ),
    quick: bool = typer.Option(False, "--quick", help="tiny config (TrainConfig.quick())"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train every model on the given data and write a versioned MODEL_DIR."""
    setup_logging(verbose or None, level=logging.INFO)
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset
    from flare_core.io import hash_files
    from flare_core.training import train_all

    files = _data_files(ctx, data)
    _check_inputs(files, flares)
    if config is not None and quick:
        raise typer.BadParameter("give --config or --quick, not both")
    cfg = (TrainConfig.from_toml(config) if config is not None
           else TrainConfig.quick() if quick else TrainConfig())
    sharp, flare_frame = _read_inputs(files, flares, harp_map)
    dataset = build_model_dataset(sharp, flare_frame, cfg, with_labels=True)
    digest = hash_files([*files, *flares, *([harp_map] if harp_map else [])])
    model_dir = train_all(dataset, out, cfg, data_hash=digest)
    typer.echo(f"model directory: {model_dir}")


@app.command(context_settings=_EXTRA_ARGS)
@handled
def predict(
    ctx: typer.Context,
    model: Path = typer.Option(..., "--model", exists=True, file_okay=False,
                               help="MODEL_DIR written by `flareflow train`"),
    data: list[Path] = typer.Option(..., "--data", help=_DATA_HELP),
    flares: list[Path] = typer.Option(..., "--flares", exists=True, help=_FLARES_HELP),
    out: Path = typer.Option(..., "--out", help="CSV file to write (one row per record)"),
    harp_map: Path | None = typer.Option(None, "--harp-map", exists=True, help=_HARP_HELP),
    horizons: str | None = typer.Option(
        None, "--horizons",
        help="comma-separated hours, e.g. 6,12,24,48,72: adds p_m{h}_survival = 1 - S(h), "
             "the survival model's probability of a >=M flare peaking within h hours"),
    curves: bool = typer.Option(
        False, "--curves",
        help="also write each record's survival curve (survival_grid_h, survival_curve: "
             "';'-joined hours and S values; ~1.5 kB a row)"),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1,
        help="region chunks predicted at once, one thread each (the models release the "
             "GIL): 2 on a 2-core machine; the same rows for any value"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Forecast every input record (inputs after a record's time are never used).

    One row per input record: ``harpnum``, ``t_rec`` (UTC ISO) and ``p_m24_<model>`` for
    every model that forecasts >=M within 24 h (``p_m24_survival`` included), ``p_c24_defn``,
    ``mean_lifetime_h`` (restricted mean time to the next >=M flare, capped at 144 h) and
    ``warning_24h``; ``--horizons`` adds ``p_m{h}_survival``, ``--curves`` the curves.
    """
    setup_logging(verbose or None, level=logging.INFO)
    from concurrent.futures import ThreadPoolExecutor

    import polars as pl

    from flare_core.feature_stream import region_chunks
    from flare_core.forecasting import predict_records, survival_probabilities

    files = _data_files(ctx, data)
    _check_inputs(files, flares)
    hours = _horizons(horizons)
    bundle, dataset = _load_bundle_and_dataset(
        model, files, flares, harp_map, with_labels=False
    )

    def predict_chunk(rows: pl.DataFrame) -> pl.DataFrame:
        preds = predict_records(bundle, rows)
        if hours:
            extra = survival_probabilities(preds, hours)
            preds = preds.with_columns(extra.get_columns())
        lists = [c for c, t in preds.schema.items() if isinstance(t, pl.List)]
        if curves:
            return preds.with_columns(
                pl.col(c).cast(pl.List(pl.Utf8)).list.join(";") for c in lists)
        return preds.drop(lists)

    # whole regions at a time: the survival curves (a float64 list per record) and the
    # models' working arrays of 10^6 records at once peaked over 8 GiB; every model reads a
    # record's own region only, so a chunk's rows are those of one call on every record
    chunks = region_chunks(dataset, max_records=_PREDICT_RECORDS)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="predict") as pool:
        parts = list(pool.map(predict_chunk, chunks))
    flat = pl.concat(parts, rechunk=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    flat.write_csv(out)
    typer.echo(f"wrote {flat.height} forecasts to {out}")


@app.command(context_settings=_EXTRA_ARGS)
@handled
def evaluate(
    ctx: typer.Context,
    model: Path | None = typer.Option(
        None, "--model", exists=True, file_okay=False,
        help="MODEL_DIR written by `flareflow train` (required without --repeats; with "
             "--repeats only its training config is used)"),
    data: list[Path] = typer.Option(..., "--data", help=_DATA_HELP),
    flares: list[Path] = typer.Option(..., "--flares", exists=True, help=_FLARES_HELP),
    report: Path = typer.Option(..., "--report", help="directory for metrics.json and plots"),
    harp_map: Path | None = typer.Option(None, "--harp-map", exists=True, help=_HARP_HELP),
    repeats: int | None = typer.Option(
        None, "--repeats", min=1,
        help="instead of scoring --model: N repeats of region K-fold cross-validation, one "
             "model trained per fold (the survival paper's 90 models: --repeats 18 --folds 5); "
             "writes cv_metrics.json, prints the mean and spread"),
    folds: int = typer.Option(5, "--folds", min=2, help="folds per repeat (with --repeats)"),
    config: Path | None = typer.Option(
        None, "--config", exists=True,
        help="TrainConfig TOML of the fold models (with --repeats; default: --model's config, "
             "else TrainConfig())"),
    quick: bool = typer.Option(False, "--quick",
                               help="tiny config of the fold models (with --repeats)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Score every model on labelled data: metrics.json and plots in --report.

    With ``--repeats N``: repeated region cross-validation of the training configuration on
    the given data instead (cv_metrics.json in --report: every fold, every repeat, and the
    mean, standard deviation, minimum and maximum over the N x K fold models).
    """
    setup_logging(verbose or None, level=logging.INFO)
    files = _data_files(ctx, data)
    _check_inputs(files, flares)
    if repeats is not None:
        _evaluate_repeats(files, flares, harp_map, report, model=model, config=config,
                          quick=quick, n_repeats=repeats, n_splits=folds)
        return
    if model is None:
        raise typer.BadParameter("give --model (or --repeats N for cross-validation)",
                                 param_hint="--model")
    if config is not None or quick:
        raise typer.BadParameter("--config and --quick set the fold models of --repeats",
                                 param_hint="--config/--quick")
    from flare_core.evaluation import evaluate as evaluate_bundle

    bundle, dataset = _load_bundle_and_dataset(
        model, files, flares, harp_map, with_labels=True
    )
    metrics = evaluate_bundle(bundle, dataset, report)
    for name, m in metrics.get("models", {}).items():
        scores = ", ".join(f"{k}={m[k]:.3f}" for k in ("tss", "hss", "bss", "auc")
                           if isinstance(m.get(k), float))
        typer.echo(f"{name:20s} {scores}")
    typer.echo(f"report: {report}")


def _evaluate_repeats(files: list[Path], flares: list[Path], harp_map: Path | None,
                      report: Path, *, model: Path | None, config: Path | None, quick: bool,
                      n_repeats: int, n_splits: int) -> None:
    """``evaluate --repeats``: `flare_core.evaluation.repeated_cv` of one training config."""
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset
    from flare_core.evaluation import repeated_cv

    given = [name for name, v in (("--model", model), ("--config", config),
                                  ("--quick", quick or None)) if v is not None]
    if len(given) > 1:
        raise typer.BadParameter(f"give one of --model, --config, --quick, not {given}")
    if config is not None:
        cfg = TrainConfig.from_toml(config)
    elif quick:
        cfg = TrainConfig.quick()
    elif model is not None:
        from flare_core.forecasting import ModelBundle

        cfg = ModelBundle.load(model).config
    else:
        cfg = TrainConfig()
    sharp, flare_frame = _read_inputs(files, flares, harp_map)
    dataset = build_model_dataset(sharp, flare_frame, cfg, with_labels=True)
    result = repeated_cv(dataset, cfg, n_repeats=n_repeats, n_splits=n_splits,
                         report_dir=report)
    typer.echo(f"{n_repeats} x {n_splits}-fold region cross-validation "
               f"({n_repeats * n_splits} models), mean +- std over the fold models:")
    for name, m in result["summary"].items():
        scores = ", ".join(f"{k}={m[k]['mean']:.3f}+-{m[k]['std']:.3f}"
                           for k in ("tss", "bss", "auc") if m[k]["n"])
        typer.echo(f"{name:20s} {scores}")
    typer.echo(f"report: {report / 'cv_metrics.json'}")
