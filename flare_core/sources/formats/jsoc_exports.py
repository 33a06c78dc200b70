"""The JSOC keyword files: keyword exports, saved ``rs_list`` replies and region listings.

Four formats in one module: they are declarations only (signature, kind, ``series=``);
the reading lives in `flare_core.sources.jsoc_keywords`, shared with the live client.
Every one takes ``series=`` (`flare_core.sources.jsoc_keywords.infer_series`: the
argument, else the file name), since a JSOC file does not say which series it came from.

* ``jsoc_keywords_csv`` -- header ``T_REC,HARPNUM,<keywords>`` (no region listing);
* ``jsoc_region_listing_csv`` -- header ``T_REC,HARPNUM,NOAA_ARS[,first_seen_utc]``, no
  SHARP keyword: a fragment of the HARP <-> NOAA map (kind ``"harp_map"``);
* ``jsoc_rs_list_json`` / ``jsoc_region_listing_json`` -- a saved JSON reply of keyword
  records / of a region listing. An error reply (``status`` != 0), an empty or a
  truncated body raises `ParseError` naming the file already at detection.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .. import jsoc_keywords as J
from .base import Format, Header, ParseContext

__all__ = ["FORMATS"]


def _reply_columns(header: Header) -> list[str]:
    """The keyword names of a saved reply, parsed once per header (`ParseError` for an
    error reply, an empty or a truncated body)."""
    return header.memo("jsoc_reply_columns", lambda: J.read_rs_list_reply(header.path).columns)


def _is_keywords_csv(header: Header) -> bool:
    return header.has_columns({"T_REC", "HARPNUM"}) and not J.is_region_listing(
        sorted(header.columns))


def _is_listing_csv(header: Header) -> bool:
    return header.has_columns({"T_REC", "HARPNUM"}) and J.is_region_listing(
        sorted(header.columns))


def _is_records_json(header: Header) -> bool:
    return header.is_json and not J.is_region_listing(_reply_columns(header))


def _is_listing_json(header: Header) -> bool:
    return header.is_json and J.is_region_listing(_reply_columns(header))


def _read_keywords_csv(path: Path, ctx: ParseContext, *, series: str) -> pl.DataFrame:
    return J.read_jsoc_keywords_csv(path, series=series, strict=ctx.strict, drops=ctx.drops)


def _read_rs_list_json(path: Path, ctx: ParseContext, *, series: str) -> pl.DataFrame:
    return J.read_rs_list_json(path, series=series, strict=ctx.strict, drops=ctx.drops)


def _read_listing(path: Path, ctx: ParseContext, *, series: str) -> pl.DataFrame:
    return J.read_region_listing(path, series=series, strict=ctx.strict, drops=ctx.drops)


FORMATS = (
    Format(name="jsoc_keywords_csv", kind="sharp", signature=_is_keywords_csv,
           read=_read_keywords_csv, infer_series=J.infer_series),
    Format(name="jsoc_rs_list_json", kind="sharp", signature=_is_records_json,
           read=_read_rs_list_json, infer_series=J.infer_series),
    Format(name="jsoc_region_listing_json", kind="harp_map", signature=_is_listing_json,
           read=_read_listing, infer_series=J.infer_series),
    Format(name="jsoc_region_listing_csv", kind="harp_map", signature=_is_listing_csv,
           read=_read_listing, infer_series=J.infer_series),
)
