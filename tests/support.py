"""Test support shared by several test modules (not collected: no ``test_`` prefix).

Imported as ``tests.support`` (pytest runs with ``pythonpath = ["."]``).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

__all__ = ["NCEI_FLARES", "HARP_NOAA_MAP", "bundled_flares", "raw_lines", "write_lines"]

#: The bundled NCEI GOES flare list and HARP<->NOAA map, relative to ``data/``.
NCEI_FLARES = "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
HARP_NOAA_MAP = "harp_noaa/all_harps_with_noaa_ars.txt"


def bundled_flares(data_dir: Path) -> pl.DataFrame:
    """The bundled NCEI GOES flare list with ``harpnum`` attached from the bundled HARP map."""
    from flare_core.sources.files import read_ncei_goes_flares
    from flare_core.sources.harp_noaa import attach_harpnum, read_harp_noaa_map

    return attach_harpnum(read_ncei_goes_flares(data_dir / NCEI_FLARES),
                          read_harp_noaa_map(data_dir / HARP_NOAA_MAP))


def raw_lines(path: Path) -> list[str]:
    """The text lines of a (possibly gzipped) file, without line ends."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return fh.read().splitlines()


def set_field(lines: list[str], row: int, column: int, value: str, sep: str = ",") -> None:
    """Replace field ``column`` of ``lines[row]`` (split on ``sep``) with ``value``, in place."""
    fields = lines[row].split(sep)
    fields[column] = value
    lines[row] = sep.join(fields)


def write_lines(tmp_path: Path, name: str, lines: list[str]) -> Path:
    """Write ``lines`` (newline-terminated) to ``tmp_path / name`` and return the path."""
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def train_tiny_model(data_dir: Path, out: Path) -> Path:
    """A small real MODEL_DIR: logistic, persistence and climatology (`TrainConfig.quick`) on
    15 regions of sun2022 fold 1 (5 with an M flare), for tests that need any model."""
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset, read_inputs
    from flare_core.training import train_all

    sharp, flares = read_inputs([data_dir / "sharp" / "sun2022_sharp_m24h_fold1.csv.gz"],
                                [data_dir / NCEI_FLARES])
    flaring = flares.filter(pl.col("goes_class").str.starts_with("M"))["harpnum"].unique()
    regions = sharp["harpnum"].unique().sort()
    keep = (regions.filter(regions.is_in(flaring.implode())).head(5).to_list()
            + regions.filter(~regions.is_in(flaring.implode())).head(10).to_list())
    cfg = TrainConfig.quick(models=("logistic", "persistence", "climatology"))
    ds = build_model_dataset(sharp.filter(pl.col("harpnum").is_in(keep)), flares, cfg)
    return train_all(ds, out, cfg)


def sun2022_regions(data_dir: Path, *, flaring: int, quiet: int) -> pl.DataFrame:
    """Features and labels (quick windows) of the first ``flaring`` regions with a >=M flare
    and the first ``quiet`` without one (by HARP number) of sun2022 fold 0."""
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset, read_inputs

    sharp, flares = read_inputs(
        [data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz"],
        [data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"],
    )
    ds = build_model_dataset(sharp, flares, TrainConfig.quick())
    pos = ds.group_by("harpnum").agg(pl.col("m_within_24h").any()).sort("harpnum")
    keep = (pos.filter(pl.col("m_within_24h"))["harpnum"].head(flaring).to_list()
            + pos.filter(~pl.col("m_within_24h"))["harpnum"].head(quiet).to_list())
    return ds.filter(pl.col("harpnum").is_in(keep))
