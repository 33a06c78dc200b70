"""The JSOC HARP <-> NOAA map, ``all_harps_with_noaa_ars.txt`` (and its NRT counterpart
``harp_noaa_nrt.txt``): header ``HARPNUM NOAA_ARS``, then ``<harpnum> <noaa>[,<noaa>...]``
per line. Reading and the series rule live in `flare_core.sources.harp_noaa`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..harp_noaa import read_harp_noaa_map
from .base import Format, Header, ParseContext

__all__ = ["FORMAT"]


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """`read_harp_noaa_map` (malformed lines raise; there is nothing to count)."""
    return read_harp_noaa_map(path)


def _signature(header: Header) -> bool:
    return header.line.split()[:2] == ["HARPNUM", "NOAA_ARS"]


FORMAT = Format(name="harp_map", kind="harp_map", signature=_signature, read=read)
