"""Data sources: bundled/archived files, JSOC (SHARP), HEK and NOAA flare lists.

One module per source; this facade re-exports the public readers and `read_file`, which
auto-detects a file's layout and returns ``(kind, frame)`` with kind ``"sharp"``,
``"flares"``, ``"harp_map"`` or ``"window_stats"``. Each file format is a module of
`flare_core.sources.formats` declaring its signature and reader. Network clients (`jsoc`,
`hek`) are imported lazily so that reading files never imports drms or sunpy.
"""

from __future__ import annotations

from .files import (
    FORMATS,
    NOAA_KEYED_FORMATS,
    ReadResult,
    detect_format,
    load_file,
    read_file,
    read_flareml_labels,
    read_flareml_snapshots,
    read_hayes_flares,
    read_hek_noheader,
    read_hollanda_labels,
    read_hollanda_sharp,
    read_liu2019_flares,
    read_ncei_goes_flares,
    read_ncei_solar_events,
    read_sun2022,
    read_sun2022_labels,
    read_swan_sf_mvts,
    read_swan_sf_window_stats,
    read_swpc_flares,
)
from .harp_noaa import attach_harpnum, download_harp_noaa_map, read_harp_noaa_map

__all__ = [
    "FORMATS",
    "NOAA_KEYED_FORMATS",
    "ReadResult",
    "attach_harpnum",
    "detect_format",
    "download_harp_noaa_map",
    "load_file",
    "read_file",
    "read_harp_noaa_map",
    "read_hayes_flares",
    "read_flareml_labels",
    "read_flareml_snapshots",
    "read_hek_noheader",
    "read_hollanda_labels",
    "read_hollanda_sharp",
    "read_liu2019_flares",
    "read_ncei_goes_flares",
    "read_ncei_solar_events",
    "read_sun2022",
    "read_sun2022_labels",
    "read_swan_sf_mvts",
    "read_swan_sf_window_stats",
    "read_swpc_flares",
]
