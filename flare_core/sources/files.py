"""The public file-reading API: `load_file` / `read_file` read any supported file into its
canonical frame, detecting the format unless told, and each format's own ``read_*``.

The formats themselves live in `flare_core.sources.formats`, one module per format, each
declaring its name, kind, header signature and reader; this facade only talks to that
contract (`flare_core.sources.formats.base.Format`).

SHARP keyword frames (`flare_core.schema.SHARP_SCHEMA`):

* `read_sun2022` -- Sun et al. (2022) ``sharp_{0..3}.csv`` folds. ``t_end`` is the record
  time, nominally TAI, converted to UTC. The label columns are dropped, never inputs:
  ``FLARE_INDEX``/``flares``/``label`` (dropped) describe the 24 h *after* ``t_end``.
  `read_sun2022_labels` returns the source label separately, for cross-checks only.
* `read_swan_sf_mvts` -- SWAN-SF "petdataset" windows (tab-separated, 60 rows at 12 min);
  the HARP number comes from the file name ``..._id[3686]_...``. Flare columns
  (``*FLARE*``, ``XR_MAX``) are labels and are dropped.
* `read_hollanda_sharp` -- Hollanda daily SHARP records (``;``-separated, keyed by
  NOAA AR: ``harpnum`` via the HARP map; ``FlareNumber`` is a label and is dropped,
  `read_hollanda_labels` returns it for cross-checks).
* `read_flareml_snapshots` -- FlareML flaring-AR snapshots (13 keywords, keyed by NOAA AR;
  ``Flare Class`` is a label and is dropped, `read_flareml_labels` returns it).
* JSOC keyword exports, saved ``rs_list`` replies (`flare_core.sources.jsoc_keywords`).

Per-window feature table (not a SHARP frame):

* `read_swan_sf_window_stats` -- SWAN-SF ready-made window statistics, features named
  ``{keyword}__{stat}`` like `flare_core.features`, label in ``label_flare_class``.

Flare-event frames (`flare_core.schema.FLARE_SCHEMA`, all times UTC):

* `read_ncei_goes_flares` -- NOAA/NCEI GOES XRS event list (start/end switch to
  ``YYYY/MM/DD HH:MM`` from 2023-12-29; ``noaa_ar`` 0 = unassigned).
* `read_swpc_flares` -- SWPC list: ``HHMM`` times relative to ``date``; a time earlier than
  the previous one of the same event has crossed midnight and moves to the next day.
* `read_hayes_flares` -- Hayes SC24 list (ISO times, blank ``noaa_ar``).
* `read_ncei_solar_events` -- ``1996-07-31T01:32Z`` times; AR 0 = unassigned.
* `read_liu2019_flares` -- Liu et al. (2019) class files; they have **no peak time**, so
  ``peak_time`` is set to ``end_time`` (an upper bound: a flare never enters a history
  window before it really peaked).
* `read_hek_noheader` -- headerless ``;``-separated HEK GOES list.

HARP <-> NOAA maps: the JSOC map file and JSOC region listings (kind ``"harp_map"``).

Several lists write every time of an event on its start date: a peak earlier than the
start (or an end earlier than the peak) crossed midnight and is moved one day later
(counted). Bad input: by default a malformed row (unparseable time, unknown GOES class,
non-numeric keyword or AR) is dropped, counted and logged at WARNING with its file and
line; with ``strict=True`` the first one raises `ParseError` naming file, line and value.
NaN keyword values become nulls (counted). Duplicated (harpnum, t_rec) records and
repeated flare identities (peak_time, goes_class, noaa_ar) are dropped (counted).
`load_file` returns the counts with the frame.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .formats import FORMATS, JSOC_FORMATS, NOAA_KEYED_FORMATS, detect_format, get_format
from .formats.base import ReadResult
from .formats.flareml import read_flareml_labels, read_flareml_snapshots
from .formats.hayes import read_hayes_flares
from .formats.hek_noheader import read_hek_noheader
from .formats.hollanda import read_hollanda_labels, read_hollanda_sharp
from .formats.liu2019 import read_liu2019_flares
from .formats.ncei_goes import read_ncei_goes_flares
from .formats.ncei_solar_events import read_ncei_solar_events
from .formats.sun2022 import read_sun2022, read_sun2022_labels
from .formats.swan_sf_mvts import read_swan_sf_mvts
from .formats.swan_sf_window_stats import read_swan_sf_window_stats
from .formats.swpc import read_swpc_flares

__all__ = [
    "FORMATS",
    "JSOC_FORMATS",
    "ReadResult",
    "detect_format",
    "load_file",
    "read_file",
    "read_sun2022",
    "read_sun2022_labels",
    "read_swan_sf_mvts",
    "read_ncei_goes_flares",
    "read_swpc_flares",
    "read_hayes_flares",
    "read_ncei_solar_events",
    "read_liu2019_flares",
    "read_hek_noheader",
    "NOAA_KEYED_FORMATS",
    "read_hollanda_sharp",
    "read_hollanda_labels",
    "read_flareml_snapshots",
    "read_flareml_labels",
    "read_swan_sf_window_stats",
]

PathLike = str | Path


def load_file(path: PathLike, fmt: str | None = None, *, strict: bool = False,
              harp_map: pl.DataFrame | None = None, series: str | None = None) -> ReadResult:
    """Read any supported file (format auto-detected unless ``fmt``), with drop counts.

    Parameters
    ----------
    path
        A file, or a directory (SWAN-SF windows, Liu 2019 class files).
    fmt
        A `FORMATS` name; default `detect_format`.
    strict
        Raise `ParseError` (file, line, value) on the first bad row instead of dropping it.
    harp_map
        `read_harp_noaa_map` output: fills ``harpnum`` of the NOAA-keyed formats
        (`NOAA_KEYED_FORMATS`); ignored by the others.
    series
        JSOC series of a JSOC export (`JSOC_FORMATS`, one of
        `flare_core.schema.SHARP_SERIES`); default from the file name, and a `ParseError`
        asking for it when the name does not tell. Research SHARP formats are always
        ``hmi.sharp_cea_720s``: another ``series`` for them is a `ParseError`.

    Returns
    -------
    ReadResult
        ``kind`` is ``"sharp"``, ``"flares"``, ``"harp_map"`` or ``"window_stats"``
        (`read_swan_sf_window_stats`: per-window features + label, not a SHARP frame);
        ``series`` the JSOC series of SHARP frames and region listings (None otherwise);
        ``drops`` the counts (``drops.summary()`` for people).

    Raises
    ------
    FormatError
        ``fmt`` is unknown, or no single format claims the file (`detect_format`).
    ParseError
        The file is missing or malformed (see each format).
    """
    path = Path(path)
    format_ = get_format(fmt) if fmt else get_format(detect_format(path))
    return format_.load(path, strict=strict, harp_map=harp_map, series=series)


def read_file(path: PathLike, fmt: str | None = None, *, strict: bool = False,
              harp_map: pl.DataFrame | None = None,
              series: str | None = None) -> tuple[str, pl.DataFrame]:
    """Read any supported file: ``(kind, frame)``, arguments and kind as in `load_file`."""
    res = load_file(path, fmt, strict=strict, harp_map=harp_map, series=series)
    return res.kind, res.frame
