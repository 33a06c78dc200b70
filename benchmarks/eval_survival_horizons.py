"""Survival curves by horizon on held-out regions: AUC and Brier skill of 1 - S(h) vs Kaplan-Meier.

For each test fold k of the four sun2022 folds (disjoint regions) Cox-Time alone is trained on
the other three (`train_all`, ``models=("cox_time",)``; validation regions for early stopping
come from the training folds) and its survival curves of the fold-k records, at their own
``t_rec``, are scored by `flare_core.survival_eval.verify_survival`: for h in 6, 12, 24, 48,
72 h the cumulative/dynamic AUC of ``1 - S(h)`` and its Brier skill against climatology (the
Kaplan-Meier curve of the training records), calibration in the large, and the integrated
Brier score (1 .. 120 h) against Kaplan-Meier. The pooled test folds are scored once (every
record forecast by the rotation that did not train on its region).

The pooled climatology is the Kaplan-Meier curve of the concatenated training sets, i.e. of
all four folds (each record in three of them); every per-fold score uses its own rotation's
training curve, and the fold range is printed and written next to the pooled figure.

Another data set, e.g. a model directory trained on NRT records and its 2023 validation year
(any model directory with a ``cox_time`` model; any frame of
`flare_core.dataset.build_model_dataset` with labels)::

    import sys; sys.path.insert(0, "benchmarks")
    from eval_survival_horizons import draw_reliability, evaluate_bundle
    from flare_core.forecasting import ModelBundle
    from flare_core.dataset import build_model_dataset

    bundle = ModelBundle.load(model_dir)                 # trained by `train_all`
    dataset = build_model_dataset(sharp, flares, bundle.config, with_labels=True)
    train = dataset.filter(pl.col("t_rec") < fit_end)    # the records it was fitted on
    test = dataset.filter(pl.col("t_rec") >= validation_start)
    v, surv = evaluate_bundle(bundle, train, test)       # v.table, v.reliability, v.ibs, ...
    draw_reliability(v, Path("docs/figures/survival_reliability_nrt.png"), "NRT 2023")

``train`` only gives the climatology (Kaplan-Meier) and the censoring weights: its
``event``/``time_to_event_h`` columns are read, nothing is trained.

Usage (from the repository root)::

    .venv/bin/python benchmarks/eval_survival_horizons.py --quick --folds 0
    .venv/bin/python benchmarks/eval_survival_horizons.py --write-docs   # default TrainConfig
    .venv/bin/python benchmarks/eval_survival_horizons.py --models DIR --write-docs

``--out DIR`` keeps the four model directories, ``--models DIR`` scores those again without
training, and ``--write-docs`` rewrites the ``survival-horizons-sun2022`` block of
``EVALUATION.md`` and the reliability figure ``docs/figures/survival_reliability_sun2022.png``.
The last line is ``RESULT auc_6h=... bss_6h=... ... ibs=... ibs_km=... ibss=...``; the
baseline of every skill figure is Kaplan-Meier climatology (BSS, IBSS > 0: better than it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
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

from flare_core.config import TrainConfig  # noqa: E402
from flare_core.forecasting import ModelBundle, predict_records  # noqa: E402
from flare_core.survival_eval import SurvivalVerification, verify_survival  # noqa: E402
from flare_core.training import train_all  # noqa: E402

EVALUATION = REPO / "EVALUATION.md"
FIGURE = REPO / "docs" / "figures" / "survival_reliability_sun2022.png"
HEADING = "### Survival curves by horizon (sun2022 rotations)"
BEGIN = "<!-- survival-horizons-sun2022:begin -->"
END = "<!-- survival-horizons-sun2022:end -->"


def survival_curves(bundle: ModelBundle, dataset: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(grid_h, S)`` of the bundle's Cox-Time model for every record of ``dataset``."""
    preds = predict_records(bundle, dataset)
    return (np.asarray(preds["survival_grid_h"][0], dtype=np.float64),
            np.asarray(preds["survival_curve"].to_list(), dtype=np.float64))


def evaluate_bundle(bundle: ModelBundle, train_labels: pl.DataFrame,
                    test_dataset: pl.DataFrame) -> tuple[SurvivalVerification, np.ndarray]:
    """Score a model directory's survival curves on ``test_dataset`` (labels included).

    ``train_labels`` (``event``, ``time_to_event_h``) of the training records give the
    Kaplan-Meier climatology. Returns the verification and the curves (n, g)."""
    grid, surv = survival_curves(bundle, test_dataset)
    return verify_survival(train_labels, test_dataset, grid, surv), surv


def collapse_stats(surv: np.ndarray, grid_h: np.ndarray) -> dict[str, float]:
    """Shape figures of the curves: the median largest 1-h drop of S and median 1 - S(6/24 h)."""
    step = float(grid_h[1] - grid_h[0])
    per_h = max(1, int(round(1.0 / step)))
    drop = (surv[:, :-per_h] - surv[:, per_h:]).max(axis=1)
    j6, j24 = (int(np.searchsorted(grid_h, h)) for h in (6.0, 24.0))
    return {"median_max_1h_drop": float(np.median(drop)),
            "median_p6": float(np.median(1 - surv[:, j6])),
            "median_p24": float(np.median(1 - surv[:, j24]))}


def _wilson(k: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson interval ``(low, high)`` of k successes in n trials (n > 0)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def draw_reliability(v: SurvivalVerification, path: Path, title: str) -> Path:
    """Reliability diagrams of ``1 - S(h)``, one panel per horizon of ``v``, as a PNG.

    Top: observed frequency of a >=M flare in ``(t_rec, t_rec + h]`` against the mean
    forecast per forecast bin (95 % Wilson intervals; each point labelled with its record
    count), the diagonal and the climatology ``1 - S_KM(h)``. Bottom: records per bin (log).
    Records censored before ``h`` without a flare are not in the panel of ``h``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    horizons = v.table["horizon_h"].to_list()
    fig = Figure(figsize=(3.6 * len(horizons), 5.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(horizons), height_ratios=(3.2, 1.0))
    for j, row in enumerate(v.table.iter_rows(named=True)):
        h = row["horizon_h"]
        rel = v.reliability.filter((pl.col("horizon_h") == h) & (pl.col("n") > 0))
        n = rel["n"].to_numpy().astype(float)
        p, o = rel["mean_prob"].to_numpy(), rel["event_rate"].to_numpy()
        lo, hi = _wilson(np.round(o * n), n)
        ax = fig.add_subplot(grid[0, j])
        ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="perfect")
        ax.axhline(row["climatology"], ls=":", color="tab:green", lw=1.2,
                   label=f"climatology {row['climatology']:.3f}")
        ax.errorbar(p, o, yerr=[o - lo, hi - o], fmt="o-", color="tab:blue", ms=5, lw=1.2,
                    capsize=2, label="Cox-Time")
        for i, (pi, oi, ni) in enumerate(zip(p, o, n, strict=True)):
            # below-right and above-left in turn (neighbours do not collide); above the
            # point near the floor
            below = i % 2 == 0 or pi > 0.9
            ax.annotate(f"{ni:,.0f}", (pi, oi), textcoords="offset points",
                        xytext=(5, 5 if oi < 0.1 else -11) if below else (-5, 6),
                        ha="left" if below else "right", fontsize=8, color="0.25")
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal",
               title=f"h = {h:g} h\nAUC {row['auc']:.3f}, BSS {row['bss']:.2f}")
        ax.set_xlabel("mean forecast 1 - S(h)")
        if j == 0:
            ax.set_ylabel("observed frequency")
            ax.legend(loc="upper left", fontsize=7.5, frameon=False)
        ax.grid(alpha=0.3)
        bars = fig.add_subplot(grid[1, j])
        bars.bar(rel["bin_lower"].to_numpy() + 0.05, n, width=0.09, color="tab:blue", alpha=0.7)
        bars.set(xlim=(0, 1), yscale="log", xlabel="forecast bin")
        if j == 0:
            bars.set_ylabel("records")
        bars.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _command(args: argparse.Namespace) -> str:
    """This run's arguments; a re-score names the run that trained its models."""
    argv = " ".join("DIR" if a == str(args.models) else a for a in sys.argv[1:])
    return argv if args.models is None else f"--out DIR` then `{argv}"


def _range(values: list[float], fmt: str) -> str:
    return f"{min(values):{fmt}} to {max(values):{fmt}}"


def markdown_block(pooled: SurvivalVerification, folds: dict[int, SurvivalVerification], *,
                   command: str, config: str, timing: str, figure: Path) -> str:
    """The EVALUATION.md block: protocol, command, table by horizon, IBS, figure link."""
    per = [f.table for f in folds.values()]
    lines = [
        "Protocol: for each of the four sun2022 rotations Cox-Time alone is trained on three "
        "folds and its survival curve of every record of the held-out fold (regions never "
        "seen in training) is read at h = 6, 12, 24, 48 and 72 h, so that `1 - S(h)` is the "
        "forecast of a >=M flare peaking in `(t_rec, t_rec + h]`. Each horizon is scored "
        "with the cumulative/dynamic ROC AUC and the IPCW Brier skill against the training "
        "Kaplan-Meier curve (climatology), and the whole curve with the integrated Brier "
        "score (1-120 h) against Kaplan-Meier (`flare_core.survival_eval.verify_survival`).",
        "",
        f"Command: `python benchmarks/eval_survival_horizons.py {command}` ({config}; "
        f"folds {sorted(folds)}), run at commit {_commit()}; {timing}. Pooled: the held-out folds together (each record forecast by the rotation "
        "that did not train on its region; climatology: the Kaplan-Meier curve of all the "
        "folds); range: each held-out fold scored on its own (its rotation's training "
        "Kaplan-Meier).",
        "",
        "| horizon | cases (pooled) | ROC AUC pooled | AUC fold range | BSS vs KM pooled "
        "| BSS fold range | mean forecast | observed (KM) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for j, row in enumerate(pooled.table.iter_rows(named=True)):
        aucs = [t["auc"][j] for t in per]
        bsss = [t["bss"][j] for t in per]
        lines.append(
            f"| {row['horizon_h']:g} h | {row['n_cases']} | {row['auc']:.3f} | "
            f"{_range(aucs, '.3f')} | {row['bss']:.3f} | {_range(bsss, '.3f')} | "
            f"{row['mean_forecast']:.4f} | {row['observed']:.4f} |")
    ratio = [(r["mean_forecast"] / r["observed"], r["horizon_h"])
             for r in pooled.table.iter_rows(named=True) if r["observed"] > 0]
    ibss = [f.ibss for f in folds.values()]
    rel_path = figure.relative_to(REPO) if figure.is_relative_to(REPO) else figure
    lines += [
        "",
        f"Integrated Brier score (1-120 h): {pooled.ibs:.4f} against {pooled.ibs_km:.4f} for "
        f"Kaplan-Meier, {pooled.ibs / pooled.ibs_km:.2f}x KM (IBSS {pooled.ibss:.3f}; folds "
        f"{_range(ibss, '.3f')}). Calibration in the large, mean forecast / observed: "
        + ", ".join(f"{q:.2f} ({h:g} h)" for q, h in ratio) + ".",
        "",
        f"Reliability by horizon (pooled held-out folds; counts per bin): "
        f"[{rel_path.name}]({rel_path.as_posix()})",
        "",
        f"![Reliability of 1 - S(h) by horizon]({rel_path.as_posix()})",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, block: str) -> None:
    """Replace the block between `BEGIN` and `END`; add the section before "## Findings"
    (else at the end) the first time. Nothing else of the file is touched."""
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        section = f"{HEADING}\n\n{BEGIN}\n{END}\n\n"
        text = (text.replace("## Findings", section + "## Findings", 1)
                if "\n## Findings" in text else f"{text.rstrip()}\n\n{section}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}", encoding="utf-8")


def _print(title: str, v: SurvivalVerification) -> None:
    print(title)
    print(v.table.select("horizon_h", "n_cases", "auc", "bs", "bs_km", "bss", "mean_forecast",
                         "observed").with_columns(pl.col(pl.Float64).round(4)))
    print(f"  IBS {v.ibs:.4f} vs Kaplan-Meier {v.ibs_km:.4f}: IBSS {v.ibss:.3f}, "
          f"{v.ibs / v.ibs_km:.3f}x KM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="TrainConfig.quick()")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--params", default="{}",
                        help='JSON overrides of the cox_time hyper-parameters, e.g. \'{"epochs": 8}\'')
    parser.add_argument("--out", type=Path, default=None, help="keep the models here")
    parser.add_argument("--models", type=Path, default=None,
                        help="score the models of an earlier --out DIR (DIR/fold<k>) again "
                             "instead of training")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"rewrite the {BEGIN} block of EVALUATION.md and {FIGURE.name}")
    args = parser.parse_args()
    params = {"cox_time": json.loads(args.params)}
    cfg = (TrainConfig.quick(models=("cox_time",)) if args.quick
           else TrainConfig(models=("cox_time",)))
    cfg = TrainConfig.from_mapping({**cfg.to_dict(), "params": {
        "cox_time": {**cfg.params.get("cox_time", {}), **params["cox_time"]}}})
    _, _, dataset = load_fold_dataset(cfg)
    out = args.out or Path(tempfile.mkdtemp(prefix="eval_survival_"))
    curves, tests, trains, per_fold = [], [], [], {}
    train_s: dict[str, float] = {}
    t0 = time.perf_counter()
    for k in args.folds:
        train = dataset.filter(pl.col("fold") != k).drop("fold")
        test = dataset.filter(pl.col("fold") == k).drop("fold")
        t_fold = time.perf_counter()
        model_dir = (args.models / f"fold{k}" if args.models is not None
                     else train_all(train, out / f"fold{k}", cfg))
        train_s[str(k)] = time.perf_counter() - t_fold
        bundle = ModelBundle.load(model_dir)
        v, surv = evaluate_bundle(bundle, train, test)
        per_fold[k] = v
        grid = np.asarray(bundle.models["cox_time"].cox_.grid_h)
        _print(f"fold {k}: {test.height} test records, {train.height} training records; "
               f"curve shape {collapse_stats(surv, grid)}", v)
        curves.append(surv)
        tests.append(test.select("event", "time_to_event_h"))
        trains.append(train.select("event", "time_to_event_h"))
    pooled = verify_survival(pl.concat(trains), pl.concat(tests), grid, np.concatenate(curves))
    _print(f"pooled test folds {args.folds} ({time.perf_counter() - t0:.0f} s):", pooled)
    print("reliability (pooled, 24 h):")
    print(pooled.reliability.filter(pl.col("horizon_h") == 24.0).with_columns(
        pl.col(pl.Float64).round(3)))
    shape = collapse_stats(np.concatenate(curves), grid)
    seconds = time.perf_counter() - t0
    timing = out / "timing.json"
    if args.models is None:
        timing.write_text(json.dumps({"train_s": train_s, "total_s": seconds}))
        timing_text = (f"{seconds:.0f} s in all, training {sum(train_s.values()):.0f} s, on "
                       "the 2-core machine")
    else:
        timing = args.models / "timing.json"
        earlier = json.loads(timing.read_text()) if timing.exists() else {}
        timing_text = (f"models of an earlier run ({earlier.get('total_s', float('nan')):.0f} s "
                       f"in all on the 2-core machine) re-scored in {seconds:.0f} s")
    if args.write_docs:
        config = ("`TrainConfig.quick()`, the tiny test configuration" if args.quick
                  else "default `TrainConfig`")
        if args.params != "{}":
            config += f", cox_time overrides `{args.params}`"
        draw_reliability(pooled, FIGURE, "Cox-Time 1 - S(h) on the held-out sun2022 folds "
                         f"(pooled, {sum(t.height for t in tests):,} records)")
        write_markdown(EVALUATION, markdown_block(pooled, per_fold, command=_command(args),
                                                  config=config, timing=timing_text,
                                                  figure=FIGURE))
        print(f"wrote {FIGURE.relative_to(REPO)} and the {BEGIN} block of EVALUATION.md")
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in {**pooled.summary(), **shape}.items()))


if __name__ == "__main__":
    main()
