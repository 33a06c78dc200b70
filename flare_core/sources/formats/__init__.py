"""The file formats flareflow reads: one module per format, registered here.

Each module declares one `Format` (``jsoc_exports`` declares the four JSOC ones): its name,
kind, header signature and ``read(path, ctx)``, plus what it needs beyond the file
(``noaa_keyed``: a HARP map; ``infer_series``: the JSOC series). `detect_format` asks every
format whether its signature matches the file's `Header`, as sunpy's Fido asks each client
``_can_handle_query``; exactly one must. Adding a format is a module here and a line in
`_ALL`; `flare_core.sources.files.load_file` never changes.

=========================  ============  ===================================================
format                     kind          signature (first line / directory / JSON reply)
=========================  ============  ===================================================
``sun2022``                sharp         columns ``arpnum``, ``t_end``
``swan_sf_mvts``           sharp         columns ``Timestamp``, ``QUALITY``; a directory of
                                         ``*_id[<harp>]_*.csv``
``ncei_goes``              flares        columns ``peak_time``, ``label``, ``noaa_ar``
``swpc``                   flares        columns ``max_time``, ``goes_class``
``hayes``                  flares        columns ``event_peaktime``, ``goes_class``
``ncei_solar_events``      flares        columns ``Peak Time``, ``Active Region Number``
``liu2019``                flares        columns ``Flares``, ``Start Time``, ``NOAA``; a
                                         directory of ``*-class.csv``
``hek_noheader``           flares        no header: ``YYYY-MM-DD;`` then 10 more fields
``hollanda``               sharp         columns ``FlareNumber``, ``T_REC``, ``NOAA_AR``
                                         (NOAA-keyed)
``flareml``                sharp         columns ``Flare Class``, ``Flare Date``, ``AR``
                                         (NOAA-keyed)
``swan_sf_window_stats``   window_stats  columns ``id``, ``lab``, ``START_TIME``, ``END_TIME``
``harp_map``               harp_map      first line ``HARPNUM NOAA_ARS``
``jsoc_keywords_csv``      sharp         columns ``T_REC``, ``HARPNUM`` + keywords (series)
``jsoc_rs_list_json``      sharp         JSON reply of keyword records (series)
``jsoc_region_listing_*``  harp_map      ``T_REC``, ``HARPNUM``, ``NOAA_ARS``, no keyword
                                         (``_json`` reply or ``_csv``; series)
=========================  ============  ===================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from ...errors import FormatError
from . import (
    flareml,
    harp_map,
    hayes,
    hek_noheader,
    hollanda,
    jsoc_exports,
    liu2019,
    ncei_goes,
    ncei_solar_events,
    sun2022,
    swan_sf_mvts,
    swan_sf_window_stats,
    swpc,
)
from .base import Format, Header, ParseContext, ReadResult

__all__ = ["FORMATS", "JSOC_FORMATS", "NOAA_KEYED_FORMATS", "Format", "Header",
           "ParseContext", "ReadResult", "detect_format", "get_format"]

_ALL: tuple[Format, ...] = (
    sun2022.FORMAT,
    swan_sf_mvts.FORMAT,
    ncei_goes.FORMAT,
    swpc.FORMAT,
    hayes.FORMAT,
    ncei_solar_events.FORMAT,
    liu2019.FORMAT,
    hek_noheader.FORMAT,
    hollanda.FORMAT,
    flareml.FORMAT,
    swan_sf_window_stats.FORMAT,
    harp_map.FORMAT,
    *jsoc_exports.FORMATS,
)

#: format name -> `Format`, read-only.
FORMATS: Mapping[str, Format] = MappingProxyType({f.name: f for f in _ALL})
assert len(FORMATS) == len(_ALL), "format names must be unique"
#: Formats without HARP numbers (declared ``noaa_keyed``): `load_file` passes ``harp_map``.
NOAA_KEYED_FORMATS: frozenset[str] = frozenset(n for n, f in FORMATS.items() if f.noaa_keyed)
#: Formats read as JSOC names keywords (declared ``infer_series``): they take ``series=``
#: (default: from the file name).
JSOC_FORMATS: frozenset[str] = frozenset(n for n, f in FORMATS.items()
                                         if f.infer_series is not None)


def get_format(name: str) -> Format:
    """The registered format ``name``; `FormatError` listing the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; known: {sorted(FORMATS)}") from None


def detect_format(path: str | Path) -> str:
    """Name of the one format whose signature matches ``path`` (a file or a directory).

    Reads the file's `Header` once and asks every format in `FORMATS`. Raises
    `FormatError` (a `ParseError`) naming the file, what its header holds and the formats
    tried when none matches, or the matching ones when several do; `ParseError` naming the
    file when it is missing, unreadable, or a JSOC error reply.
    """
    header = Header.read(path)
    hits = [f.name for f in FORMATS.values() if f.signature(header)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise FormatError(f"{header.path}: ambiguous file layout ({header.describe()}): "
                          f"the signatures of {hits} all match; pass one as the format")
    raise FormatError(f"{header.path}: unknown file layout ({header.describe()}): no "
                      f"signature matches among the formats tried, {sorted(FORMATS)}; "
                      "pass one as the format")
