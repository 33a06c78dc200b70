"""Skill of every flareflow model on the real NRT stream, hour by hour, as JSOC served it.

The operational protocol (issue "Operational NRT service"):

* data: the JSOC near-real-time SHARP stream ``hmi.sharp_720s_nrt`` 2021-05 .. 2023-12 (every
  region on the disk, 12-min cadence, 6 keywords), the NRT HARP -> NOAA map and the NOAA/NCEI
  GOES flare list;
* training: every model on 2021-05 .. 2022-12 (fit records end ``tmax_h`` before 2023, so no
  training label reads a 2023 flare), one record per region-hour (``train_step_h = 1``);
* validation year 2023: epochs, thresholds and calibration come from it alone
  (`TrainConfig.validation_start`); nothing else is tuned. The held-back NRT records of 2024
  on are the test set of others; the scores below are therefore *validation* scores (the
  decision thresholds were chosen on the same year, so TSS/HSS are optimistic; AUC, BSS and
  reliability do not depend on a threshold; BSS uses the training climatology);
* scoring unit: the region-hour. At every hourly issue time of 2023 every region on the disk
  with a record served by then (``available_at`` rule, `flare_core.forecasting.forecast_many`,
  at most ``freshness_h`` old) is forecast; the outcome is a >=M flare of that region peaking
  in ``(issue_time, issue_time + 24 h]``. Regions without a NOAA number are forecast but can
  never be labelled positive from a NOAA-keyed flare list (counted);
* the full disk: ``1 - prod(1 - p_region)`` per issue time against any >=M flare on the disk
  (whatever its region) in the next 24 h;
* intervals: 95 % percentile bootstrap over whole regions (`flare_core.metrics.bootstrap_by_region`);
* look-ahead check: the same models forecast with today's optimistic rule ``T_REC <= t``
  (``available_at = t_rec``) against the as-served rule; the difference is the skill the
  optimistic rule inflates.

Writes the table into ``EVALUATION.md`` between the ``<!-- nrt-table -->`` markers and the raw
scores to ``benchmarks/results/nrt_evaluation.json``; ends with one ``RESULT`` line.

Usage (one command, from the repository root)::

    .venv/bin/python benchmarks/evaluate_nrt.py
    .venv/bin/python benchmarks/evaluate_nrt.py --data LATER_NRT.csv.gz --validation-start 2024-01-01
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.evaluation_md import save_results, write_block  # noqa: E402
from flare_core import metrics  # noqa: E402
from flare_core.config import TrainConfig  # noqa: E402
from flare_core.dataset import build_model_dataset, read_inputs  # noqa: E402
from flare_core.forecasting import ModelBundle, forecast_many, predict_records  # noqa: E402
from flare_core.labels import label_time_to_event  # noqa: E402
from flare_core.training import train_all  # noqa: E402

BEGIN, END = "<!-- nrt-table:begin -->", "<!-- nrt-table:end -->"
SHARED = REPO.parent / "shared" / "data" / "sharp_nrt"
DEFAULT_DATA = SHARED / "hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz"
DEFAULT_FLARES = REPO / "data" / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
DEFAULT_MAP = REPO / "data" / "sharp_nrt" / "harp_noaa_nrt.txt"
HORIZONS_H = (6.0, 12.0, 24.0, 48.0, 72.0)
#: Published model -> (shown name, anchor?)
MODELS = (
    ("survival", "Cox-Time survival chain, 1 - S(24 h)", False),
    ("defn", "Deep Flare Net", False),
    ("lstm", "LSTM", False),
    ("logistic", "logistic regression (anchor)", True),
    ("persistence", "persistence (anchor)", True),
    ("climatology", "climatology (anchor)", True),
)
_BUNDLE = {"survival": "cox_time", "defn": "defn_m"}
#: Published peers (quoted, not re-run; their setups differ from this one).
PEERS = (
    "CLEAR (Hu & Chen 2025), NRT SHARP, logistic regression: TSS 0.49-0.54; LSTM: TSS "
    "0.34-0.37 (>=M in 24 h, their operational split)",
    "the survival paper (A&A 703, A99, 2025), definitive SHARP: AUC(t) 0.72-0.90 over "
    "6-72 h",
)
NRT_CONFIG = REPO / "flareflow" / "configs" / "nrt.toml"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def nrt_config(validation_start: str) -> TrainConfig:
    """The NRT training configuration (`flareflow/configs/nrt.toml`) with the validation year."""
    cfg = TrainConfig.from_toml(NRT_CONFIG)
    return TrainConfig.from_mapping({**cfg.to_dict(), "validation_start": validation_start})


def hourly(start: datetime, end: datetime) -> list[datetime]:
    n = int((end - start) / timedelta(hours=1))
    return [start + timedelta(hours=i) for i in range(n)]


def region_hours(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per (issue_time, harpnum) with ``p_m24_<model>`` (and ``p_c24_defn``)."""
    wide = rows.pivot(on="model", index=["issue_time", "harpnum"], values="p_m24",
                      aggregate_function="first")
    wide = wide.rename({m: f"p_m24_{m}" for m in wide.columns
                        if m not in ("issue_time", "harpnum")})
    c = rows.filter(pl.col("model") == "defn").select("issue_time", "harpnum",
                                                      pl.col("p_c24").alias("p_c24_defn"))
    return wide.join(c, on=["issue_time", "harpnum"], how="left").sort("issue_time", "harpnum")


def label_issue_times(keys: pl.DataFrame, flares: pl.DataFrame, tmax_h: float) -> pl.DataFrame:
    """Outcomes of (issue_time, harpnum) keys: the issue time plays the record time."""
    recs = keys.select("harpnum", pl.col("issue_time").alias("t_rec"))
    lab = label_time_to_event(recs, flares, tmax_h=tmax_h)
    return lab.rename({"t_rec": "issue_time"})


def _quiet(fn, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs))
        except Exception:  # noqa: BLE001 - undefined on this data
            return float("nan")


def binary_scores(y: np.ndarray, p: np.ndarray, threshold: float, clim: float,
                  groups: np.ndarray, n_boot: int) -> dict[str, Any]:
    pred = p >= threshold
    sk = metrics.skill_scores(y, pred)
    out: dict[str, Any] = {
        "n": int(y.size), "events": int(y.sum()), "threshold": threshold,
        "tss": sk["tss"], "hss": sk["hss"], "pod": sk["pod"], "far": sk["far"],
        "auc": _quiet(metrics.roc_auc, y, p),
        "brier": _quiet(metrics.brier_score, y, np.clip(p, 0, 1)),
        "bss": _quiet(metrics.brier_skill_score, y, np.clip(p, 0, 1), climatology=clim),
    }
    if n_boot:
        for key, fn in (("tss", lambda a, b: metrics.true_skill_statistic(a, b >= threshold)),
                        ("auc", metrics.roc_auc),
                        ("bss", lambda a, b: metrics.brier_skill_score(
                            a, np.clip(b, 0, 1), climatology=clim))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ci = metrics.bootstrap_by_region(fn, groups, y, p, n_boot=n_boot, seed=0)
                    out[f"{key}_ci"] = [ci.low, ci.high]
                except Exception as e:  # noqa: BLE001
                    out[f"{key}_ci"] = [float("nan"), float("nan")]
                    logging.warning("bootstrap of %s failed: %s", key, e)
    rel = metrics.reliability_bins(y, np.clip(p, 0, 1), n_bins=10)
    out["reliability"] = rel.to_dicts()
    return out


def time_scores(lab: pl.DataFrame, risk: np.ndarray | dict[float, np.ndarray]
                ) -> dict[str, Any]:
    """AUC(t) at `HORIZONS_H` (risk per horizon when a dict) and Uno's C-index."""
    t = lab["time_to_event_h"].to_numpy().astype(float)
    e = lab["event"].to_numpy().astype(bool)
    y = metrics.survival_target(e, t)
    out: dict[str, Any] = {"auc_t": {}}
    for h in HORIZONS_H:
        r = risk[h] if isinstance(risk, dict) else risk
        ok = np.isfinite(r)
        res = _quiet_tuple(metrics.cumulative_dynamic_auc_at, y, y[ok], r[ok], [h])
        out["auc_t"][f"{h:g}"] = float(res[0][0]) if res else float("nan")
    r24 = risk[24.0] if isinstance(risk, dict) else risk
    ok = np.isfinite(r24)
    out["c_index"] = _quiet(metrics.concordance_index_ipcw, y, y[ok], r24[ok])
    return out


def _quiet_tuple(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001
            logging.warning("%s failed: %s", getattr(fn, "__name__", fn), e)
            return None


def survival_horizon_risk(rows: pl.DataFrame, keys: pl.DataFrame) -> dict[float, np.ndarray]:
    """1 - S_i(h) of the survival rows (re-based to the issue time), aligned with ``keys``."""
    from flare_core.forecasting import survival_probabilities

    surv = rows.filter(pl.col("model") == "survival").select(
        "issue_time", "harpnum", "survival_grid_h", "survival_curve")
    probs = surv.select("issue_time", "harpnum").with_columns(
        survival_probabilities(surv, HORIZONS_H).get_columns())
    aligned = keys.select("issue_time", "harpnum").join(probs, on=["issue_time", "harpnum"],
                                                        how="left")
    return {h: aligned[f"p_m{h:g}_survival"].cast(pl.Float64).fill_null(np.nan).to_numpy()
            for h in HORIZONS_H}


def score_rows(rows: pl.DataFrame, flares: pl.DataFrame, bundle: ModelBundle, *,
               n_boot: int, with_time: bool = True) -> dict[str, Any]:
    """Every model's region-hour scores and the full-disk scores of one set of forecasts."""
    cfg = bundle.config
    wide = region_hours(rows)
    lab = label_issue_times(wide, flares, cfg.tmax_h)
    data = wide.join(lab, on=["issue_time", "harpnum"], how="left")
    clim = bundle.meta["climatology"]
    groups = data["harpnum"].to_numpy()
    y = data["m_within_24h"].cast(pl.Int64).to_numpy()
    out: dict[str, Any] = {"region_hours": int(data.height),
                           "issue_times": int(data["issue_time"].n_unique()),
                           "regions": int(data["harpnum"].n_unique()),
                           "events": int(y.sum()), "models": {}}
    surv_risk = survival_horizon_risk(rows, data) if with_time else None
    for model, _, _ in MODELS:
        col = f"p_m24_{model}"
        if col not in data.columns:
            continue
        p = data[col].cast(pl.Float64).to_numpy()
        ok = np.isfinite(p)
        thr = bundle.threshold(_BUNDLE.get(model, model))
        m = binary_scores(y[ok], p[ok], thr, clim["m_within_24h"], groups[ok], n_boot)
        if with_time:
            risk = surv_risk if model == "survival" else p
            m.update(time_scores(data, risk))
        out["models"][model] = m
    if "p_c24_defn" in data.columns:
        yc = data["c_within_24h"].cast(pl.Int64).to_numpy()
        p = data["p_c24_defn"].cast(pl.Float64).to_numpy()
        ok = np.isfinite(p)
        out["models"]["defn_c"] = binary_scores(yc[ok], p[ok], bundle.threshold("defn_c"),
                                                clim["c_within_24h"], groups[ok], n_boot)
    out["full_disk"] = full_disk_scores(data, flares, clim["m_within_24h"], bundle)
    return out


def full_disk_scores(data: pl.DataFrame, flares: pl.DataFrame, clim_region: float,
                     bundle: ModelBundle) -> dict[str, Any]:
    """``1 - prod(1 - p)`` over the regions of each issue time vs any >=M flare on the disk."""
    big = flares.filter(pl.col("peak_flux_wm2") >= 1e-5).sort("peak_time")
    times = data.select("issue_time").unique().sort("issue_time")
    nxt = times.join_asof(big.select(pl.col("peak_time")), left_on="issue_time",
                          right_on="peak_time", strategy="forward", allow_exact_matches=False)
    y = ((nxt["peak_time"] - nxt["issue_time"]) <= timedelta(hours=24)).fill_null(False)
    out: dict[str, Any] = {"issue_times": int(times.height), "events": int(y.sum())}
    # training climatology of the full disk: the event rate over the training period's hours
    tr = bundle.meta.get("training_range", {})
    t0 = datetime.fromisoformat(tr["start"]) if tr.get("start") else None
    vp = bundle.meta.get("validation_period") or {}
    t1 = datetime.fromisoformat(vp["start"]) if vp.get("start") else None
    clim = None
    if t0 and t1:
        hrs = pl.DataFrame({"issue_time": hourly(t0.replace(minute=0, second=0, microsecond=0),
                                                 t1)}).with_columns(
            pl.col("issue_time").cast(pl.Datetime("us", "UTC")))
        n2 = hrs.join_asof(big.select("peak_time"), left_on="issue_time", right_on="peak_time",
                           strategy="forward", allow_exact_matches=False)
        clim = float(((n2["peak_time"] - n2["issue_time"]) <= timedelta(hours=24))
                     .fill_null(False).mean())
    out["climatology_train"] = clim
    for model, _, _ in MODELS:
        col = f"p_m24_{model}"
        if col not in data.columns:
            continue
        fd = (data.group_by("issue_time")
              .agg((1 - (1 - pl.col(col).clip(0, 1)).product()).alias("p")).sort("issue_time"))
        p = times.join(fd, on="issue_time", how="left")["p"].fill_null(0.0).to_numpy()
        yy = y.to_numpy().astype(int)
        out[model] = {"auc": _quiet(metrics.roc_auc, yy, p),
                      "brier": _quiet(metrics.brier_score, yy, p),
                      "bss": (_quiet(metrics.brier_skill_score, yy, p, climatology=clim)
                              if clim is not None else None)}
    return out


def survival_by_horizon(rows: pl.DataFrame, flares: pl.DataFrame, bundle: ModelBundle,
                        train_labels: pl.DataFrame, figure: Path | None = None
                        ) -> dict[str, Any]:
    """`flare_core.survival_eval.verify_survival` of the survival model's curves re-based to
    each issue time, on the region-hours, against the TRAINING Kaplan-Meier curve."""
    from flare_core.forecasting import survival_probabilities
    from flare_core.survival_eval import verify_survival

    surv = rows.filter(pl.col("model") == "survival").drop_nulls("survival_curve")
    # labels joined on the keys: label_time_to_event need not keep the input order
    lab = surv.select("issue_time", "harpnum").join(
        label_issue_times(surv, flares, bundle.config.tmax_h),
        on=["issue_time", "harpnum"], how="left")
    grid = np.unique(np.r_[np.arange(1.0, 121.0, 2.0), HORIZONS_H])
    p = survival_probabilities(surv, grid)
    s = 1.0 - p.to_numpy().astype(np.float64)
    ok = np.isfinite(s).all(axis=1)
    v = verify_survival(train_labels, lab.filter(pl.Series(ok)), np.r_[0.0, grid],
                        np.c_[np.ones(ok.sum()), s[ok]], horizons_h=HORIZONS_H,
                        ibs_times_h=grid[grid <= 120.0])
    if figure is not None:
        _reliability_figure(v.reliability, figure)
    return {"table": v.table.to_dicts(), "ibs": v.ibs, "ibs_km": v.ibs_km, "ibss": v.ibss,
            "n": int(ok.sum()), "reliability": v.reliability.to_dicts(),
            "figure": str(figure) if figure else None}


def _reliability_figure(rel: pl.DataFrame, path: Path) -> None:
    """Reliability diagrams by horizon: mean forecast vs observed rate, bin counts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hs = rel["horizon_h"].unique().sort().to_list()
    fig = Figure(figsize=(3.2 * len(hs), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(hs), sharey=True)
    for ax, h in zip(np.atleast_1d(axes), hs, strict=True):
        r = rel.filter((pl.col("horizon_h") == h) & (pl.col("n") > 0))
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        ax.plot(r["mean_prob"], r["event_rate"], "o-", color="C3")
        for x, y, n in zip(r["mean_prob"], r["event_rate"], r["n"], strict=True):
            ax.annotate(f"{n:,}", (x, y), textcoords="offset points", xytext=(3, -10),
                        fontsize=6, color="0.3")
        ax.set_title(f"P(>=M within {h:g} h)")
        ax.set_xlabel("forecast 1 - S(h)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    np.atleast_1d(axes)[0].set_ylabel("observed frequency (region-hours)")
    fig.suptitle("Cox-Time survival chain, NRT validation year, re-based to the issue time "
                 "(numbers: region-hours per bin)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{nd}f}"


def ci(m: dict, key: str) -> str:
    lo, hi = m.get(f"{key}_ci", [None, None])
    return f"{fmt(m.get(key))} ({fmt(lo, 2)}-{fmt(hi, 2)})" if lo is not None else fmt(m.get(key))


def markdown(res: dict[str, Any]) -> str:
    s = res["served"]
    lines = [
        f"Validation year {res['validation_start'][:4]}: {s['issue_times']:,} hourly issue "
        f"times, {s['region_hours']:,} region-hours of {s['regions']} NRT regions, "
        f"{s['events']:,} region-hours followed by a >=M flare within 24 h "
        f"({res['no_noaa_region_hours']:,} region-hours of regions without a NOAA number, "
        f"which a NOAA-keyed flare list can never label positive; "
        f"{res['unattributed_m_flares']} of {res['m_flares']} >=M flares of the year have no "
        "NRT region). Forecasts as served (records with `available_at <= t`). Trained on "
        f"{res['training']['fit_records']:,} records (fit on one per region-hour) of "
        f"{res['training']['range']} in {res['training']['seconds']:.0f} s (training "
        "time measured while 6-8 other jobs shared the 2 cores).",
        "",
        "| model (>=M in 24 h) | TSS (95 % CI) | HSS | BSS (95 % CI) | ROC AUC (95 % CI) | "
        "AUC(t) 6 / 12 / 24 / 48 / 72 h | C-index | full-disk AUC / BSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fd = s["full_disk"]
    for model, name, _ in MODELS:
        m = s["models"].get(model)
        if m is None:
            continue
        at = m.get("auc_t", {})
        auct = " / ".join(fmt(at.get(f"{h:g}"), 2) for h in HORIZONS_H)
        f = fd.get(model, {})
        lines.append(f"| {name} | {ci(m, 'tss')} | {fmt(m['hss'])} | {ci(m, 'bss')} | "
                     f"{ci(m, 'auc')} | {auct} | {fmt(m.get('c_index'))} | "
                     f"{fmt(f.get('auc'))} / {fmt(f.get('bss'))} |")
    c = s["models"].get("defn_c")
    if c:
        lines.append(f"| Deep Flare Net, >=C in 24 h | {ci(c, 'tss')} | {fmt(c['hss'])} | "
                     f"{ci(c, 'bss')} | {ci(c, 'auc')} | - | - | - |")
    lines += ["", "Look-ahead: the same models with today's rule `T_REC <= t` "
              "(`available_at = t_rec`) instead of as served:", "",
              "| model | TSS as served | TSS with T_REC <= t | ROC AUC as served | "
              "ROC AUC with T_REC <= t |", "|---|---|---|---|---|"]
    o = res["optimistic"]
    for model, name, _ in MODELS:
        a, b = s["models"].get(model), o["models"].get(model)
        if a and b:
            lines.append(f"| {name} | {fmt(a['tss'])} | {fmt(b['tss'])} | {fmt(a['auc'])} | "
                         f"{fmt(b['auc'])} |")
    lines += ["", "Reliability (>=M in 24 h, as served; forecast-probability bins of 0.1: "
              "mean forecast -> observed rate (region-hours)):", ""]
    for model, name, _ in MODELS:
        m = s["models"].get(model)
        if not m:
            continue
        bins = [f"{fmt(b['mean_prob'], 2)}->{fmt(b['event_rate'], 2)} ({b['n']:,})"
                for b in m["reliability"] if b["n"]]
        lines.append(f"* {name}: " + "; ".join(bins))
    sh = res.get("survival_horizons")
    if sh:
        lines += ["", f"Survival curves by horizon ({sh['n']:,} region-hours, curves re-based to "
                  "the issue time; BSS against the training Kaplan-Meier curve; "
                  f"[reliability diagrams]({Path(sh['figure']).relative_to(REPO)})):", "",
                  "| horizon | cases | ROC AUC of 1 - S(h) | BSS vs Kaplan-Meier | mean forecast "
                  "| observed |", "|---|---|---|---|---|---|"]
        for r in sh["table"]:
            lines.append(f"| {r['horizon_h']:g} h | {r['n_cases']:,} | {fmt(r['auc'])} | "
                         f"{fmt(r['bss'])} | {fmt(r['mean_forecast'])} | "
                         f"{fmt(r['observed'])} |")
        lines += ["", f"Integrated Brier score 1-120 h: {fmt(sh['ibs'], 4)} against "
                  f"{fmt(sh['ibs_km'], 4)} for Kaplan-Meier (skill {fmt(sh['ibss'])})."]
    lines += ["", "Published peers (quoted with their setup, not re-run):", ""]
    lines += [f"* {p}" for p in PEERS]
    return "\n".join(lines)


def write_evaluation(text: str) -> None:
    write_block(REPO / "EVALUATION.md", BEGIN, END, text,
                heading="\n\n## The NRT stream, hour by hour (validation year)\n\n"
                        "Produced by `.venv/bin/python benchmarks/evaluate_nrt.py` (protocol in "
                        "its docstring).\n\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_DATA])
    ap.add_argument("--flares", type=Path, default=DEFAULT_FLARES)
    ap.add_argument("--harp-map", type=Path, default=DEFAULT_MAP)
    ap.add_argument("--validation-start", default="2023-01-01")
    ap.add_argument("--validation-end", default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "nrt")
    ap.add_argument("--n-boot", type=int, default=300)
    ap.add_argument("--model", type=Path, default=None,
                    help="score this MODEL_DIR (trained with the same protocol) instead of "
                         "training one")
    ap.add_argument("--no-write", action="store_true", help="do not touch EVALUATION.md")
    ap.add_argument("--no-predict-all", action="store_true",
                    help="skip the timing of predicting every record (the RESULT's predict_s)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    timings: dict[str, float] = {}

    t = time.perf_counter()
    sharp, flares = read_inputs(args.data, [args.flares], harp_map=args.harp_map)
    timings["read_s"] = time.perf_counter() - t
    cfg = nrt_config(args.validation_start)
    if args.validation_end:
        cfg = TrainConfig.from_mapping({**cfg.to_dict(), "validation_end": args.validation_end})
    t = time.perf_counter()
    dataset = build_model_dataset(sharp, flares, cfg, with_labels=True)
    timings["features_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model_dir = args.model or train_all(dataset, args.out / "model_validation", cfg)
    timings["train_s"] = time.perf_counter() - t
    bundle = ModelBundle.load(model_dir)
    if args.model is not None:
        timings["train_s"] = float(bundle.meta.get("train_seconds", float("nan")))

    # predicting every record: the speed/memory figure of `flareflow predict`
    n_pred, timings["predict_all_s"] = 0, float("nan")
    if not args.no_predict_all:
        t = time.perf_counter()
        preds = predict_records(bundle, dataset.drop([c for c in dataset.columns
                                                      if c.startswith(("m_within", "c_within"))]))
        timings["predict_all_s"] = time.perf_counter() - t
        n_pred = preds.height
        del preds

    vstart = cfg.validation_period_bound("validation_start")
    vend = (cfg.validation_period_bound("validation_end")
            or (sharp["t_rec"].max() + timedelta(hours=1)).replace(minute=0, second=0,
                                                                    microsecond=0))
    issues = hourly(vstart, vend)
    t = time.perf_counter()
    served = forecast_many(bundle, sharp, flares, issues)
    timings["forecast_year_s"] = time.perf_counter() - t
    optimistic = forecast_many(bundle, sharp.with_columns(pl.col("t_rec").alias("available_at")),
                               flares, issues)

    year_flares = flares.filter((pl.col("peak_time") >= vstart) & (pl.col("peak_time") < vend)
                                & (pl.col("peak_flux_wm2") >= 1e-5))
    served_keys = served.filter(pl.col("model") == "climatology")
    # regions without a NOAA number: those the NRT HARP map gives none (the keyword export
    # carries no NOAA_ARS column)
    from flare_core.sources import read_harp_noaa_map

    numbered = read_harp_noaa_map(args.harp_map)["harpnum"].unique().implode()
    no_noaa = served_keys.filter(~pl.col("harpnum").is_in(numbered))
    res: dict[str, Any] = {
        "validation_start": vstart.isoformat(), "validation_end": vend.isoformat(),
        "m_flares": int(year_flares.height),
        "unattributed_m_flares": int(year_flares["harpnum"].null_count()),
        "no_noaa_region_hours": int(no_noaa.height),
        "training": {"fit_records": int(bundle.meta["models"].get("climatology", {}).get(
            "fit_records", 0)) or None, "range": "", "seconds": timings["train_s"]},
    }
    tr = bundle.meta["training_range"]
    res["training"]["range"] = f"{tr['start'][:10]} .. {args.validation_start} (fit) / " \
                               f"{args.validation_start} .. {vend.date()} (validation)"
    res["training"]["fit_records"] = int(bundle.meta.get("fit_records") or 0) or \
        int(dataset.filter(pl.col("t_rec") < vstart).height)
    t = time.perf_counter()
    res["served"] = score_rows(served, flares, bundle, n_boot=args.n_boot)
    res["optimistic"] = score_rows(optimistic, flares, bundle, n_boot=0, with_time=False)
    train_labels = dataset.filter(pl.col("t_rec") < vstart - timedelta(hours=cfg.tmax_h)
                                  ).select("event", "time_to_event_h")
    res["survival_horizons"] = survival_by_horizon(
        served, flares, bundle, train_labels,
        figure=REPO / "docs" / "figures" / "survival_reliability_nrt_validation.png")
    timings["score_s"] = time.perf_counter() - t
    res["timings"] = timings
    res["records"] = int(sharp.height)
    res["predicted_records"] = n_pred
    res["peak_rss_gib"] = peak_rss_gib()
    save_results(res, REPO / "benchmarks" / "results" / "nrt_evaluation.json", markdown(res),
                 write=not args.no_write, write_evaluation=write_evaluation)
    s = res["served"]["models"]
    print(f"\nread {timings['read_s']:.1f} s, features {timings['features_s']:.1f} s, training "
          f"{timings['train_s']:.1f} s, predicting {n_pred:,} records "
          f"{timings['predict_all_s']:.1f} s, {len(issues):,} hourly forecasts "
          f"{timings['forecast_year_s']:.1f} s; peak RSS {res['peak_rss_gib']:.2f} GiB")
    print(f"RESULT records={sharp.height} train_s={timings['train_s']:.1f} "
          f"predict_records={n_pred} predict_s={timings['predict_all_s']:.1f} "
          f"issue_times={len(issues)} forecast_s={timings['forecast_year_s']:.1f} "
          f"tss_survival={fmt(s.get('survival', {}).get('tss'))} "
          f"tss_logistic={fmt(s.get('logistic', {}).get('tss'))} "
          f"auc_survival={fmt(s.get('survival', {}).get('auc'))} "
          f"peak_rss_gib={res['peak_rss_gib']:.2f}")


if __name__ == "__main__":
    t_start = datetime.now(UTC)
    main()
