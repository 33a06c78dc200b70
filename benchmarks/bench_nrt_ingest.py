"""NRT ingest: the real 1.08 M-record JSOC NRT keyword export, read and written to a store.

Times `flare_core.sources.load_file` (format ``jsoc_keywords_csv``: polars' native CSV
reader, keywords straight to Float64, T_REC with one fixed format, TAI -> UTC by a sorted
search in the ERFA leap-second table, plausibility checks) and `Store.write_sharp` into a
fresh store. Baseline: a bare ``polars.read_csv`` of the same file with every column as a
string (what any reader must at least do), so the ratio says what the parsing and checks
cost on top. Real data: ``../shared/data/sharp_nrt/hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz``
(see ../shared/data/README.md section 6). Figures only -- no asserts.

Run: ``.venv/bin/python benchmarks/bench_nrt_ingest.py [path]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from flare_core.sources import load_file
from flare_core.store import Store

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared/data/sharp_nrt/hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    args = ap.parse_args()
    t = time.perf_counter()
    base = pl.read_csv(args.path.read_bytes(), infer_schema=False)
    base_s = time.perf_counter() - t
    t = time.perf_counter()
    res = load_file(args.path)
    read_s = time.perf_counter() - t
    rows = res.frame.height
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        rep = Store(Path(tmp) / "store").write_sharp(res.frame)
        write_s = time.perf_counter() - t
    ingest_s = read_s + write_s
    print(f"file      {args.path.name} ({args.path.stat().st_size / 2**20:.1f} MiB gzip)")
    print(f"format    {res.fmt}, series {res.series}, {rows:,d} rows, dropped: "
          f"{res.drops.summary()}")
    print(f"baseline  bare string read_csv        {base_s:6.2f} s ({base.height:,d} rows)")
    print(f"read      load_file                   {read_s:6.2f} s  "
          f"{read_s / base_s:.2f}x baseline")
    print(f"write     Store.write_sharp           {write_s:6.2f} s  ({rep.rows_added:,d} added)")
    print(f"ingest    read + write                {ingest_s:6.2f} s  "
          f"{ingest_s / base_s:.2f}x baseline, {rows / ingest_s:,.0f} rows/s")
    print(f"RESULT rows={rows} read_s={read_s:.2f} ingest_s={ingest_s:.2f} "
          f"rows_per_s={rows / ingest_s:.0f}")


if __name__ == "__main__":
    main()
