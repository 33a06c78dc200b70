"""`flareflow train` and `flareflow predict` on the real NRT stream, timed as an operator runs them.

Runs the stable interface as subprocesses on the shared 1.08 M-record NRT export (2021-05 ..
2023-12, every region on the disk):

    flareflow train   --data NRT.csv.gz --flares NCEI.csv.gz --harp-map harp_noaa_nrt.txt \
                      --config <nrt.toml + validation_start> --out MODEL_DIR
    flareflow predict --model MODEL_DIR --data NRT.csv.gz --flares NCEI.csv.gz \
                      --harp-map harp_noaa_nrt.txt --out PRED.csv --horizons 6,12,24,48,72 \
                      --jobs 2

and reports wall time and the peak RSS of each command (targets: training every model < 10
min on 2 cores; predicting 1 M records < 2 min and < 4 GiB). The baseline, run in the same
process, is a bare polars read of the same file (what any tool pays to look at the data).
Ends with one ``RESULT`` line. The MODEL_DIR is kept for `benchmarks/evaluate_nrt.py --model`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "sharp_nrt"


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one command (its own process tree)."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:2])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    # RUSAGE_CHILDREN holds the largest resident set of any waited-for child so far: each
    # command is run after the previous one, and predict is run last, so its figure is
    # max(train, predict) unless measured first; train and predict run in separate calls
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return wall, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path,
                    default=SHARED / "hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz")
    ap.add_argument("--flares", type=Path,
                    default=REPO / "data/flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz")
    ap.add_argument("--harp-map", type=Path, default=REPO / "data/sharp_nrt/harp_noaa_nrt.txt")
    ap.add_argument("--validation-start", default="2023-01-01")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_nrt")
    ap.add_argument("--skip-train", action="store_true", help="reuse --out/model")
    ap.add_argument("--step", choices=["train", "predict", "both"], default="both",
                    help="run one step per process to get each step's own peak RSS")
    ap.add_argument("--jobs", type=int, default=2, help="flareflow predict --jobs (2 cores)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    flareflow = str(Path(sys.executable).with_name("flareflow"))
    model = args.out / "model"
    config = args.out / "nrt_validation.toml"
    config.write_text((REPO / "flareflow/configs/nrt.toml").read_text()
                      .replace("train_step_h = 1.0",
                               f'train_step_h = 1.0\nvalidation_start = "{args.validation_start}"'))
    t = time.perf_counter()
    n = pl.read_csv(args.data).height
    read_s = time.perf_counter() - t
    common = ["--data", str(args.data), "--flares", str(args.flares), "--harp-map",
              str(args.harp_map)]
    train_s = train_gib = predict_s = predict_gib = float("nan")
    if args.step in ("train", "both") and not args.skip_train:
        train_s, train_gib = run([flareflow, "train", *common, "--config", str(config),
                                  "--out", str(model)])
        print(f"flareflow train: {n:,} records in {train_s:.1f} s ({train_s / read_s:.0f}x a "
              f"bare read of {read_s:.1f} s), peak RSS {train_gib:.2f} GiB; target < 600 s")
    if args.step in ("predict", "both"):
        pred = args.out / "pred.csv"
        predict_s, predict_gib = run([flareflow, "predict", "--model", str(model), *common,
                                      "--out", str(pred), "--horizons", "6,12,24,48,72",
                                      "--jobs", str(args.jobs)])
        rows = pl.scan_csv(pred).select(pl.len()).collect().item()
        print(f"flareflow predict: {rows:,} rows in {predict_s:.1f} s ({predict_s / read_s:.0f}x "
              f"a bare read), peak RSS {predict_gib:.2f} GiB (max of the commands run so far "
              f"in this process); targets < 120 s, < 4 GiB")
    print(f"RESULT records={n} read_s={read_s:.2f} train_s={train_s:.1f} "
          f"train_peak_gib={train_gib:.2f} predict_s={predict_s:.1f} "
          f"predict_peak_gib={predict_gib:.2f}")


if __name__ == "__main__":
    main()
