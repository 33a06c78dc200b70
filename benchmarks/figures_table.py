"""Regenerate the README's targets table from the benchmarks' ``RESULT`` lines.

Every benchmark ends with one ``RESULT key=value ...`` line. Record a run with::

    .venv/bin/python benchmarks/bench_features.py --records 10000000 \\
        | tee -a benchmarks/results/results.log

(or append the line by hand as ``<script name> RESULT ...``). This script reads
``benchmarks/results/results.log``, keeps the newest ``RESULT`` line of each benchmark
(a line is attributed to the last ``<script>.py`` name seen before it, or written
``bench_x.py RESULT ...``), checks each figure against the issue targets in `TARGETS`, and
writes the table between the ``<!-- figures-table -->`` markers of README.md: benchmark,
figure, target, measured, met or missed. Nothing is hard-coded but the targets; a benchmark
with no recorded line shows "not measured".

Usage::

    .venv/bin/python benchmarks/figures_table.py [--log FILE] [--readme FILE] [--check]

``--check`` prints the table and exits 1 when README.md is not up to date (writes nothing).
Ends with one ``RESULT`` line: how many targets are met, missed and not measured.
"""

from __future__ import annotations

import argparse
import operator
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- figures-table -->"

#: (benchmark script, RESULT key, comparison, target value, what it measures)
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("bench_nrt_ingest.py", "ingest_s", "<", 10.0, "ingest the 1.08 M-record NRT export (s)"),
    ("bench_nrt_train_predict.py", "train_s", "<", 600.0, "train every model, 1.08 M NRT (s)"),
    ("bench_nrt_train_predict.py", "predict_s", "<", 120.0,
     "flareflow predict, every model, 1.08 M records (s)"),
    ("bench_nrt_train_predict.py", "predict_peak_gib", "<=", 4.0, "  its peak memory (GiB)"),
    ("bench_features.py", "seconds", "<", 60.0, "running statistics, 10 M x 24 keywords (s)"),
    ("bench_features.py", "peak_rss_gib", "<=", 6.0, "  peak memory (GiB)"),
    ("bench_features.py", "speedup_vs_pandas", ">=", 30.0, "  speed-up against pandas (x)"),
    ("bench_survival.py", "baseline_speedup", ">=", 50.0,
     "Cox-Time Breslow baseline vs pycox, paper layout (x)"),
    ("bench_survival.py", "predict_speedup", ">=", 50.0, "  survival prediction vs pycox (x)"),
    ("bench_survival.py", "max_diff", "<=", 1e-6, "  largest difference to pycox"),
    ("bench_forecast.py", "forecast_s", "<", 3.0,
     "one hourly forecast flow, running server, page included (s)"),
    ("bench_forecast.py", "forecast_nopage_s", "<", 3.0,
     "  the same flow without drawing the page (s)"),
    ("bench_nrt_backfill.py", "forecast_s", "<", 3.0,
     "one hourly forecast flow on the NRT store (busiest hour, page included) (s)"),
    ("bench_nrt_backfill.py", "backfill_s", "<", 300.0,
     "a year of hourly NRT forecasts, 2 cores (s)"),
    ("bench_nrt_backfill.py", "cached_s", "<", 60.0, "  cached re-run (s)"),
)

_OPS = {"<": operator.lt, "<=": operator.le, ">=": operator.ge, ">": operator.gt}
_SCRIPT = re.compile(r"\b([a-z_0-9]+\.py)\b")


def latest_results(log: Path) -> dict[str, dict[str, str]]:
    """``{script: {key: value}}`` of the newest RESULT line of each benchmark in ``log``."""
    out: dict[str, dict[str, str]] = {}
    current: str | None = None
    if not log.is_file():
        return out
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        head, sep, tail = line.partition("RESULT ")
        named = _SCRIPT.findall(head)
        if named:
            current = named[-1]
        if sep and current is not None:
            out[current] = dict(kv.split("=", 1) for kv in tail.split() if "=" in kv)
    return out


def table(results: dict[str, dict[str, str]]) -> tuple[str, dict[str, int]]:
    """The Markdown table and the count of met / missed / not measured targets."""
    rows = ["| benchmark | figure | target | measured | |", "|---|---|---|---|---|"]
    counts = {"met": 0, "missed": 0, "not_measured": 0}
    for script, key, op, target, what in TARGETS:
        value = results.get(script, {}).get(key)
        if value is None:
            verdict, shown = "not measured", "-"
            counts["not_measured"] += 1
        else:
            ok = _OPS[op](float(value), target)
            verdict, shown = ("met" if ok else "**missed**"), value
            counts["met" if ok else "missed"] += 1
        rows.append(f"| `{script}` | {what} | {op} {target:g} | {shown} | {verdict} |")
    return "\n".join(rows), counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, default=ROOT / "benchmarks" / "results" / "results.log")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text, counts = table(latest_results(args.log))
    print(text)
    readme = args.readme.read_text(encoding="utf-8")
    parts = readme.split(MARK)
    if len(parts) != 3:
        print(f"{args.readme}: needs exactly two {MARK} markers", file=sys.stderr)
        return 2
    updated = f"{parts[0]}{MARK}\n{text}\n{MARK}{parts[2]}"
    if args.check:
        stale = updated != readme
        print("README.md is", "stale" if stale else "up to date")
    elif updated != readme:
        args.readme.write_text(updated, encoding="utf-8")
    print(f"RESULT met={counts['met']} missed={counts['missed']} "
          f"not_measured={counts['not_measured']}")
    return 1 if args.check and updated != readme else 0


if __name__ == "__main__":
    raise SystemExit(main())
