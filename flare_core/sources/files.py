"""Readers for every bundled file format, each into a canonical frame.

SHARP keyword frames (`flare_core.schema.SHARP_SCHEMA`):

* `read_sun2022` -- Sun et al. (2022) ``sharp_{0..3}.csv`` folds. ``t_end`` is the record
  time, nominally TAI, converted to UTC. The label columns are dropped, never inputs:
  ``FLARE_INDEX``/``flares``/``label`` (dropped) describe the 24 h *after* ``t_end``. `read_sun2022_labels` returns the
  source label separately, for cross-checks only.
* `read_swan_sf_mvts` -- SWAN-SF "petdataset" windows (tab-separated, 60 rows at 12 min);
  the HARP number comes from the file name ``..._id[3686]_...``. Flare columns
  (``*FLARE*``, ``XR_MAX``) are labels and are dropped.

* `read_hollanda_sharp` -- Hollanda daily SHARP records (``;``-separated, keyed by
  NOAA AR: ``harpnum`` via the HARP map; ``FlareNumber`` is a label and is dropped,
  `read_hollanda_labels` returns it for cross-checks).
* `read_flareml_snapshots` -- FlareML flaring-AR snapshots (13 keywords, keyed by NOAA AR;
  ``Flare Class`` is a label and is dropped, `read_flareml_labels` returns it).

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

Several lists write every time of an event on its start date: a peak earlier than the
start (or an end earlier than the peak) crossed midnight and is moved one day later
(counted). Bad input: by default a malformed row (unparseable time, unknown GOES class, non-numeric
keyword or AR) is dropped, counted and logged at WARNING with its file and line; with
``strict=True`` the first one raises `ParseError` naming file, line and value. NaN keyword
values become nulls (counted). Duplicated (harpnum, t_rec) records and repeated flare
identities (peak_time, goes_class, noaa_ar) are dropped (counted). `load_file` returns the
counts with the frame.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import ParseError
from ..schema import SERIES_DEFINITIVE_CEA, SHARP_KEYWORDS, conform_flares, conform_sharp
from ..timeutil import tai_to_utc_expr, utc_expr
from . import _parse as P
from . import jsoc_keywords as J
from .harp_noaa import read_harp_noaa_map
from .plausibility import check_plausible

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

logger = logging.getLogger(__name__)

PathLike = str | Path
_ISO = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"]
#: Every research data set (sun2022, SWAN-SF, Hollanda, FlareML) is built from the
#: definitive CEA series, so its HARP numbers are those of ``hmi.sharp_cea_720s``.
_RESEARCH_SERIES = pl.lit(SERIES_DEFINITIVE_CEA).alias("series")


@dataclass
class ReadResult:
    """What `load_file` read: the format, the frame kind, the frame, the drop counts and,
    for SHARP records and region listings, the JSOC series."""

    path: Path
    fmt: str
    kind: str  # "sharp" | "flares" | "harp_map" | "window_stats"
    frame: pl.DataFrame
    drops: P.Drops = field(default_factory=P.Drops)
    series: str | None = None  # JSOC series of SHARP frames / region listings


# --------------------------------------------------------------------------- SHARP readers


def _read_sun2022(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = P.read_text_table(path, drops=drops, strict=strict)
    kw_cols = ["AREA", "USFLUX", "MEANGBZ", "R_VALUE"]
    P.require_columns(df, ["arpnum", "t_end", *kw_cols], path)
    df = df.with_columns(
        pl.col("arpnum").str.strip_chars().cast(pl.Int64, strict=False).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("t_end", _ISO)).alias("t_rec"),
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(c.lower())
          for c in kw_cols],
    )
    df = P.drop_bad(df, pl.col("harpnum").is_null() | (pl.col("harpnum") <= 0),
                    reason="malformed arpnum", raw_col="arpnum", path=path, drops=drops,
                    strict=strict)
    df = P.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed t_end", raw_col="t_end",
                    path=path, drops=drops, strict=strict)
    for c in kw_cols:
        raw = pl.col(c).str.strip_chars()
        df = P.drop_bad(df, pl.col(c.lower()).is_null() & raw.is_not_null() & (raw != ""),
                        reason=f"non-numeric {c}", raw_col=c, path=path, drops=drops,
                        strict=strict)
    df = df.with_columns(pl.lit("sun2022").alias("source"), _RESEARCH_SERIES)
    return conform_sharp(P.clean_sharp(df, path=path, drops=drops, strict=strict))


def read_sun2022(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read one Sun et al. (2022) SHARP fold file into the canonical SHARP frame.

    Parameters
    ----------
    path
        ``sun2022_sharp_m24h_fold{k}.csv[.gz]`` with columns ``prefix, arpnum, t_start,
        t_end, label, flares, FLARE_INDEX (dropped), AREA, USFLUX, MEANGBZ, R_VALUE``.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA`; ``harpnum`` = ``arpnum``, ``t_rec`` = ``t_end`` (TAI -> UTC),
        ``area``, ``usflux``, ``meangbz``, ``r_value`` filled, other keywords null,
        ``source`` = ``"sun2022"``. Sorted by (harpnum, t_rec). The label columns
        (``label``, ``flares``, ``FLARE_INDEX``: the 24 h after ``t_end``) are dropped.
    """
    return _run(_read_sun2022, path, strict)


def read_sun2022_labels(path: PathLike) -> pl.DataFrame:
    """The source study's own label of a sun2022 fold, for cross-checks only.

    Returns columns ``harpnum``, ``t_rec`` (UTC) and ``label_m24_source`` (Boolean: an
    M1.0+ flare in (t_rec, t_rec + 24 h] according to Sun et al.). Never a model input.
    """
    path = Path(path)
    df = P.read_text_table(path)
    P.require_columns(df, ["arpnum", "t_end", "label"], path)
    out = df.select(
        pl.col("arpnum").str.strip_chars().cast(pl.Int64, strict=False).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("t_end", _ISO)).alias("t_rec"),
        pl.col("label").str.strip_chars().str.to_lowercase()
        .replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
        .alias("label_m24_source"),
    )
    bad = out.filter(pl.any_horizontal(pl.all().is_null()))
    if bad.height:
        raise ParseError(f"{path}: {bad.height} rows with malformed arpnum/t_end/label")
    return out.unique(subset=["harpnum", "t_rec"], keep="first").sort(["harpnum", "t_rec"])


_SWAN_ID_RE = re.compile(r"_id\[(\d+)\]")
_SWAN_META = {"CRVAL1": "crval1", "CRLN_OBS": "crln_obs"}
_MISSING = ("", "nan", "na", "none", "null")  # SWAN-SF spellings of a missing value


def _swan_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, str | Path):
        p = Path(paths)
        return sorted(p.glob("*.csv")) if p.is_dir() else [p]
    return [Path(p) for p in paths]


def _read_swan_one(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    m = _SWAN_ID_RE.search(path.name)
    if m is None:
        raise ParseError(f"{path}: SWAN-SF file name lacks the HARP number '_id[<harpnum>]'")
    df = P.read_text_table(path, separator="\t", drops=drops, strict=strict)
    P.require_columns(df, ["Timestamp", "QUALITY", "NOAA_AR"], path)
    kw = {c: c.lower() for c in df.columns if c.lower() in SHARP_KEYWORDS}
    num_cols = {**kw, **{c: v for c, v in _SWAN_META.items() if c in df.columns}}
    df = df.with_columns(
        pl.lit(int(m.group(1)), dtype=pl.Int64).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("Timestamp", _ISO)).alias("t_rec"),
        P.normalise_noaa_list(pl.col("NOAA_AR")).alias("noaa_ars"),
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(v)
          for c, v in num_cols.items()],
        pl.col("QUALITY").str.strip_chars().cast(pl.Float64, strict=False).alias("_q"),
    )
    df = P.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed Timestamp",
                    raw_col="Timestamp", path=path, drops=drops, strict=strict)
    for c, v in num_cols.items():
        raw = pl.col(c).str.strip_chars()
        missing = raw.is_null() | raw.str.to_lowercase().is_in(list(_MISSING))
        df = P.drop_bad(df, pl.col(v).is_null() & ~missing,
                        reason=f"non-numeric {c}", raw_col=c, path=path, drops=drops,
                        strict=strict)
    df = df.with_columns(
        pl.col("_q").fill_nan(None).cast(pl.Int64).alias("quality"),
        pl.lit("swan_sf").alias("source"), _RESEARCH_SERIES,
    )
    return check_plausible(df, path=path, drops=drops, strict=strict)  # here: lines known


def read_swan_sf_mvts(paths: PathLike | Iterable[PathLike], *,
                      strict: bool = False) -> pl.DataFrame:
    """Read SWAN-SF multivariate time-series windows into one canonical SHARP frame.

    Parameters
    ----------
    paths
        One file, a directory of ``*.csv`` windows, or an iterable of files. Each file is
        tab-separated with a ``Timestamp`` (nominally TAI) column and upper-case keywords.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA` with the SWAN-SF keywords, ``quality``, ``crval1``, ``crln_obs`` and
        ``noaa_ars`` (``"11958;11959"`` -> ``"11958,11959"``). Overlapping windows repeat
        records: duplicates of (harpnum, t_rec) are dropped and counted. The label columns
        (``*FLARE*``, ``XR_MAX``, ``XR_QUAL``) are not kept.
    """
    files = _swan_paths(paths)
    if not files:
        raise ParseError(f"no SWAN-SF files in {paths}")
    return _run(_read_swan_many, files, strict, where=str(files[0].parent))


def _read_swan_many(files: list[Path], strict: bool, drops: P.Drops) -> pl.DataFrame:
    frames = [conform_sharp(_read_swan_one(f, strict, drops)) for f in files]
    return P.clean_sharp(pl.concat(frames), path=files[0].parent, drops=drops, strict=strict)


# --------------------------------------------------------------------------- NOAA-keyed SHARP

#: The 25 SHARP keywords of the Hollanda file (every canonical keyword except ``area``).
_HOLLANDA_KEYWORDS = [k.upper() for k in SHARP_KEYWORDS if k != "area"]
#: The 13 SHARP keywords of the FlareML snapshots.
_FLAREML_KEYWORDS = ["TOTUSJH", "TOTBSQ", "TOTPOT", "TOTUSJZ", "ABSNJZH", "SAVNCPP", "USFLUX",
                     "AREA_ACR", "TOTFZ", "MEANPOT", "R_VALUE", "EPSZ", "SHRGT45"]
_NOAA_KEY = ("_harpnum_or_noaa", "t_rec")  # record identity when harpnum may be null


def _parse_numeric(df: pl.DataFrame, cols: dict[str, str], *, path: Path, drops: P.Drops,
                   strict: bool) -> pl.DataFrame:
    """Raw string columns -> Float64 ``cols[raw]``; blank -> null (counted as a repair),
    non-numeric -> malformed row (dropped and counted, or `ParseError` when ``strict``)."""
    df = df.with_columns([pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(v)
                          for c, v in cols.items()])
    for c, v in cols.items():
        raw = pl.col(c).str.strip_chars()
        missing = raw.is_null() | raw.str.to_lowercase().is_in(list(_MISSING))
        df = P.drop_bad(df, pl.col(v).is_null() & ~missing, reason=f"non-numeric {c}",
                        raw_col=c, path=path, drops=drops, strict=strict)
    n_missing = df.select(pl.sum_horizontal([pl.col(v).is_null().sum() for v in cols.values()]))
    drops.note("missing value -> null", int(n_missing.item() or 0))
    return df


def _attach_harp_by_noaa(df: pl.DataFrame, harp_map: pl.DataFrame | None, *, path: Path,
                         drops: P.Drops) -> pl.DataFrame:
    """Fill ``harpnum`` from ``noaa_ar`` through the HARP <-> NOAA map.

    A NOAA region listed under several HARPs gets the HARP that lists the **fewest** NOAA
    regions (its own patch rather than a patch that is mainly another region's), then the
    smallest HARP number; those rows are counted. Without a map, or for a region absent
    from it, ``harpnum`` is null (logged and counted).
    """
    if harp_map is None:
        logger.warning("%s: no HARP<->NOAA map given: harpnum stays null for %d records "
                       "(pass harp_map=read_harp_noaa_map(...))", path, df.height)
        drops.note("no HARP map: harpnum null", df.height)
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("harpnum"))
    else:
        m = harp_map.select(pl.col("noaa_ar").cast(pl.Int64), pl.col("harpnum").cast(pl.Int64))
        m = m.with_columns(pl.len().over("harpnum").alias("_n_ars"))
        cand = (m.sort(["noaa_ar", "_n_ars", "harpnum"])
                .group_by("noaa_ar", maintain_order=True)
                .agg(pl.col("harpnum").first(), pl.col("harpnum").n_unique().alias("_n_harps")))
        df = df.join(cand, on="noaa_ar", how="left")
        amb = df.filter(pl.col("_n_harps") > 1)
        if amb.height:
            logger.info("%s: %d records (%d NOAA ARs) map to several HARPs; kept the HARP "
                        "with the fewest NOAA ARs", path, amb.height, amb["noaa_ar"].n_unique())
        drops.note("NOAA AR on several HARPs (HARP with fewest NOAA ARs kept)", amb.height)
        n_unmapped = df.select(pl.col("harpnum").is_null().sum()).item()
        if n_unmapped:
            logger.warning("%s: %d records have a NOAA AR absent from the HARP map: harpnum "
                           "null", path, n_unmapped)
        drops.note("NOAA AR not in HARP map: harpnum null", n_unmapped)
        df = df.drop("_n_harps")
    return df.with_columns(
        pl.when(pl.col("harpnum").is_not_null())
        .then(pl.lit("harp:") + pl.col("harpnum").cast(pl.Utf8))
        .otherwise(pl.lit("noaa:") + pl.col("noaa_ar").cast(pl.Utf8)).alias(_NOAA_KEY[0]),
        pl.col("noaa_ar").cast(pl.Utf8).alias("noaa_ars"),
    )


def _require_noaa(df: pl.DataFrame, raw_col: str, *, path: Path, drops: P.Drops,
                  strict: bool) -> pl.DataFrame:
    df = P.parse_noaa_ar(df, raw_col, path=path, drops=drops, strict=strict)
    return P.drop_bad(df, pl.col("noaa_ar").is_null(), reason=f"missing {raw_col}",
                      raw_col=raw_col, path=path, drops=drops, strict=strict)


def _finish_noaa_keyed(df: pl.DataFrame, keywords: Sequence[str], source: str, *,
                       harp_map: pl.DataFrame | None, path: Path, drops: P.Drops,
                       strict: bool) -> pl.DataFrame:
    """Last steps of a NOAA-keyed SHARP reader (Hollanda, FlareML).

    Parses ``keywords`` into their snake_case columns, adds ``harpnum`` from ``harp_map``,
    sets ``source`` and cleans the frame on the NOAA key (drops counted in ``drops``).
    """
    df = _parse_numeric(df, {c: c.lower() for c in keywords}, path=path, drops=drops,
                        strict=strict)
    df = _attach_harp_by_noaa(df, harp_map, path=path, drops=drops)
    return P.clean_sharp(df.with_columns(pl.lit(source).alias("source"), _RESEARCH_SERIES),
                         path=path, drops=drops, key=_NOAA_KEY, strict=strict)


def _hollanda_frame(path: Path, strict: bool, drops: P.Drops,
                    harp_map: pl.DataFrame | None) -> pl.DataFrame:
    """Parsed Hollanda records, still carrying the raw ``FlareNumber`` label column."""
    df = P.read_text_table(path, separator=";", drops=drops, strict=strict)
    P.require_columns(df, ["FlareNumber", "T_REC", "NOAA_AR", "QUALITY", *_HOLLANDA_KEYWORDS],
                      path)
    df = df.with_columns(tai_to_utc_expr(P.strptime_any("T_REC", _ISO)).alias("t_rec"))
    df = P.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed T_REC", raw_col="T_REC",
                    path=path, drops=drops, strict=strict)
    df = _require_noaa(df, "NOAA_AR", path=path, drops=drops, strict=strict)
    q = pl.col("QUALITY").str.strip_chars().cast(pl.Float64, strict=False)
    df = P.drop_bad(df, q.is_null() | (q != q.floor()) | (q < 0), reason="malformed QUALITY",
                    raw_col="QUALITY", path=path, drops=drops, strict=strict)
    df = df.with_columns(pl.col("QUALITY").str.strip_chars().cast(pl.Float64).cast(pl.Int64)
                         .alias("quality"))
    return _finish_noaa_keyed(df, _HOLLANDA_KEYWORDS, "hollanda", harp_map=harp_map, path=path,
                              drops=drops, strict=strict)


def read_hollanda_sharp(path: PathLike, *, harp_map: pl.DataFrame | None = None,
                        strict: bool = False) -> pl.DataFrame:
    """Read the Hollanda daily SHARP file (one record per NOAA AR and day).

    Parameters
    ----------
    path
        ``hollanda_sharp_daily_flare_*.csv[.gz]``: ``;``-separated, columns ``FlareNumber,
        T_REC, NOAA_AR, QUALITY, Longitude, Latitude`` and 25 SHARP keywords (all but
        ``AREA``). No license is stated: the file is not bundled.
    harp_map
        Output of `flare_core.sources.harp_noaa.read_harp_noaa_map`. The file has no HARP
        number; it comes from ``NOAA_AR`` through the map. A NOAA AR listed under several
        HARPs gets the HARP listing the fewest NOAA ARs, then the smallest number (counted,
        logged). Without a map ``harpnum`` is null (logged).
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA`; ``t_rec`` = ``T_REC`` read as TAI and converted to UTC (the file's
        naive times are nominally TAI like the other derived SHARP files), ``noaa_ars`` =
        ``NOAA_AR``, ``quality`` = ``QUALITY``, 25 keywords (``area`` null); missing values
        are nulls (counted). ``source`` = ``"hollanda"``.

    Notes
    -----
    ``Longitude`` and ``Latitude`` are **not** copied to ``lon_fwt``/``lat_fwt``: in this
    file they are unsigned whole degrees (all >= 0; e.g. NOAA 11158, a southern region at
    S20, has ``Latitude`` 19-21, and the longitudes of a region fall to 0 at central
    meridian and rise again), i.e. ``|lon|`` and ``|lat|``, so the hemisphere and the
    east/west side are lost and the signed canonical columns would be wrong for half the
    regions. They stay null.

    ``FlareNumber`` is the source study's label (a flare in the following 1-2 days, see
    ../shared/data/README.md): it is never kept; `read_hollanda_labels` returns it for
    cross-checks only. Records of one HARP at one time (two NOAA ARs on one HARP) are
    duplicates: the first is kept, the rest counted.
    """
    return _run(lambda p, s, d: conform_sharp(_hollanda_frame(p, s, d, harp_map)), path, strict)


def read_hollanda_labels(path: PathLike, *, harp_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """The Hollanda file's own label, for cross-checks only (never a model input).

    Returns columns ``harpnum``, ``noaa_ar``, ``t_rec`` (UTC, as in `read_hollanda_sharp`)
    and ``label_flare_source`` (Boolean: ``FlareNumber`` == 1, a flare in the following
    days according to the source study). Raises `ParseError` on a malformed label.
    """
    path = Path(path)
    drops = P.Drops()
    df = _hollanda_frame(path, True, drops, harp_map)
    lab = pl.col("FlareNumber").str.strip_chars()
    df = P.drop_bad(df, ~lab.is_in(["0", "1"]).fill_null(False), reason="malformed FlareNumber",
                    raw_col="FlareNumber", path=path, drops=drops, strict=True)
    return df.select("harpnum", "noaa_ar", "t_rec", (lab == "1").alias("label_flare_source"))


def _flareml_frame(path: Path, strict: bool, drops: P.Drops,
                   harp_map: pl.DataFrame | None) -> pl.DataFrame:
    """Parsed FlareML snapshots, still carrying the ``Flare Class`` label column."""
    df = P.read_text_table(path, drops=drops, strict=strict)
    P.require_columns(df, ["Flare Class", "Flare Date", "AR", *_FLAREML_KEYWORDS], path)
    df = df.with_columns(utc_expr(P.strptime_any("Flare Date", ["%m/%d/%Y %H:%M",
                                                             "%m/%d/%Y %H:%M:%S"])).alias("t_rec"))
    df = P.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed Flare Date",
                    raw_col="Flare Date", path=path, drops=drops, strict=strict)
    df = _require_noaa(df, "AR", path=path, drops=drops, strict=strict)
    return _finish_noaa_keyed(df, _FLAREML_KEYWORDS, "flareml", harp_map=harp_map, path=path,
                              drops=drops, strict=strict)


def read_flareml_snapshots(path: PathLike, *, harp_map: pl.DataFrame | None = None,
                           strict: bool = False) -> pl.DataFrame:
    """Read the FlareML flaring-AR snapshots into the canonical SHARP frame.

    Parameters
    ----------
    path
        ``flareml_flaring_ar_snapshots.csv``: ``Flare Class, Flare Date, AR`` and 13 SHARP
        keywords (``TOTUSJH ... SHRGT45``), ``Flare Date`` written ``M/D/YYYY H:MM``.
    harp_map
        HARP <-> NOAA map (`read_harp_noaa_map`); a NOAA AR on several HARPs is resolved as
        in `read_hollanda_sharp`, and without a map ``harpnum`` is null.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA` with the 13 keywords (others null), ``noaa_ars`` = ``AR``,
        ``source`` = ``"flareml"``.

    Notes
    -----
    What ``t_rec`` means: the file gives only ``Flare Date``, and for 829 of its 845 rows
    the time is 00:10 of the day (the rest are other times). It is **not** the flare's
    time: matching each row to the NCEI GOES list (same NOAA AR and class, within 72 h)
    finds 744 flares, 730 of which peaked *after* that time (median 11.6 h later, 728
    within 24 h). So the keywords are a snapshot taken on the flare day before the flare,
    and ``t_rec`` is that snapshot time, read as UTC (it is not on the 12-min TAI T_REC
    grid, so no TAI conversion). A few snapshots may postdate their flare: use the frame
    as keywords of flaring regions, not for timing-sensitive labels.

    ``Flare Class`` (``"X22"`` = X2.2) describes the flare that followed: a label, never
    kept here; `read_flareml_labels` returns it separately.
    """
    return _run(lambda p, s, d: conform_sharp(_flareml_frame(p, s, d, harp_map)), path, strict)


def read_flareml_labels(path: PathLike, *, harp_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """The FlareML snapshot labels, for cross-checks only (never a model input).

    Returns ``harpnum``, ``noaa_ar``, ``t_rec`` (as in `read_flareml_snapshots`),
    ``label_flare_class`` (``"X22"`` -> ``"X2.2"``) and ``label_peak_flux_wm2`` (W m^-2)
    of the flare that followed the snapshot. Raises `ParseError` on an unknown class.
    """
    path = Path(path)
    drops = P.Drops()
    df = _flareml_frame(path, True, drops, harp_map)
    raw = pl.col("Flare Class").str.strip_chars().str.to_uppercase()
    df = df.with_columns(
        pl.when(raw.str.contains(r"^[ABCMX]\d\d+$"))
        .then(raw.str.slice(0, 2) + pl.lit(".") + raw.str.slice(2)).otherwise(raw)
        .alias("_cls"))
    df = P.parse_classes(df, "_cls", path=path, drops=drops, strict=True)
    return df.select("harpnum", "noaa_ar", "t_rec", pl.col("goes_class").alias("label_flare_class"),
                     pl.col("peak_flux_wm2").alias("label_peak_flux_wm2"))


# --------------------------------------------------------------------------- window statistics

_WINDOW_STAT_NAMES = {"min": "min", "max": "max", "median": "median", "mean": "mean",
                      "stddev": "std", "var": "var"}
_WINDOW_STATS_SCHEMA_HEAD = {"harpnum": pl.Int64, "window_start": pl.Datetime("us", "UTC"),
                             "window_end": pl.Datetime("us", "UTC"), "label_flare_class": pl.Utf8}


def _read_window_stats(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = P.read_text_table(path, separator="\t")
    P.require_columns(df, ["id", "lab", "START_TIME", "END_TIME"], path)
    feats: dict[str, str] = {}
    for c in df.columns:
        kw, _, stat = c.rpartition("_")
        if kw.lower() in SHARP_KEYWORDS and stat in _WINDOW_STAT_NAMES:
            feats[c] = f"{kw.lower()}__{_WINDOW_STAT_NAMES[stat]}"
    if not feats:
        raise ParseError(f"{path}: no '<KEYWORD>_<stat>' columns; found {df.columns}")
    harp = pl.col("id").str.strip_chars().cast(pl.Int64, strict=False)
    df = P.drop_bad(df, harp.is_null() | (harp <= 0), reason="malformed id", raw_col="id",
                    path=path, drops=drops, strict=strict)
    df = df.with_columns(
        pl.col("id").str.strip_chars().cast(pl.Int64).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("START_TIME", _ISO)).alias("window_start"),
        tai_to_utc_expr(P.strptime_any("END_TIME", _ISO)).alias("window_end"),
        pl.col("lab").str.strip_chars().str.to_uppercase().alias("label_flare_class"),
    )
    for raw, c in [("START_TIME", "window_start"), ("END_TIME", "window_end")]:
        df = P.drop_bad(df, pl.col(c).is_null(), reason=f"malformed {raw}", raw_col=raw,
                        path=path, drops=drops, strict=strict)
    df = P.drop_bad(df, pl.col("window_end") < pl.col("window_start"),
                    reason="END_TIME before START_TIME", raw_col="END_TIME", path=path,
                    drops=drops, strict=strict)
    df = P.drop_bad(df, ~pl.col("label_flare_class").is_in(["N", "A", "B", "C", "M", "X"])
                    .fill_null(False), reason="unknown lab", raw_col="lab", path=path,
                    drops=drops, strict=strict)
    df = _parse_numeric(df, feats, path=path, drops=drops, strict=strict)
    n_nan = df.select(pl.sum_horizontal([pl.col(v).is_nan().sum() for v in feats.values()]))
    drops.note("NaN value -> null", int(n_nan.item() or 0))
    df = df.with_columns([pl.col(v).fill_nan(None) for v in feats.values()])
    n0 = df.height
    df = df.unique(subset=["harpnum", "window_start"], keep="first", maintain_order=True)
    drops.add("duplicate (harpnum, window_start)", n0 - df.height, str(path))
    out = df.select([pl.col(c).cast(t) for c, t in _WINDOW_STATS_SCHEMA_HEAD.items()]
                    + [pl.col(v) for v in feats.values()])
    return out.sort(["harpnum", "window_start"])


def read_swan_sf_window_stats(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read SWAN-SF ready-made per-window statistics (tab-separated, one row per window).

    Parameters
    ----------
    path
        ``swan_sf_window_stats_*.csv[.gz]`` with ``id`` (HARP), ``lab``, ``START_TIME``,
        ``END_TIME`` and ``<KEYWORD>_{min,max,median,mean,stddev,var}`` columns.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        Not a SHARP frame: ``harpnum`` (Int64), ``window_start``/``window_end``
        (``Datetime("us", "UTC")``, the SWAN-SF times read as TAI and converted like
        `read_swan_sf_mvts`), ``label_flare_class`` (``lab``: ``"N"`` = no flare, else the
        GOES class letter of the flare that *followed* the window -- a label, never a
        feature), then Float64 features named like `flare_core.features`:
        ``{keyword}__{stat}`` with stat ``min``, ``max``, ``median``, ``mean``, ``std``
        (the file's ``stddev``; its ddof is not stated by the source) and ``var`` (an extra
        stat `flare_core.features` does not compute). `flare_core.features.feature_columns`
        therefore selects exactly the features, never the label. Sorted by
        (harpnum, window_start); duplicates of (harpnum, window_start) dropped, counted.
    """
    return _run(_read_window_stats, path, strict)


# --------------------------------------------------------------------------- flare readers


def _finish_flares(df: pl.DataFrame, source: str, path: Path, drops: P.Drops) -> pl.DataFrame:
    df = _repair_midnight(df, path, drops)
    df = df.with_columns(
        utc_expr(pl.col("start_time")), utc_expr(pl.col("peak_time")), utc_expr(pl.col("end_time")),
        pl.lit(None, dtype=pl.Int64).alias("harpnum"),
        pl.lit(source).alias("source"),
    )
    return conform_flares(P.dedupe_flares(conform_flares(df), path=path, drops=drops))


#: Longest step a midnight repair may create (start -> peak, peak -> end), hours.
_MAX_CROSSING_STEP_H = 12.0


def _repair_midnight(df: pl.DataFrame, path: Path, drops: P.Drops) -> pl.DataFrame:
    """A peak before the start (or an end before the peak) crossed midnight only if the
    list wrote every time of the event on its start date: it moves one day later (counted
    as a repair) when that leaves a step of at most `_MAX_CROSSING_STEP_H` hours (start at
    23:56, peak "00:06" -> 00:06 next day). Otherwise the times contradict each other
    (end 10:27 before peak 10:36 of the same day: +1 day would invent a 24-h flare):
    a contradictory peak drops the row, a contradictory end becomes null (the peak, which
    labels and histories use, is still trusted); both counted.

    The real lists need the repair: of the NCEI GOES rows with a time before its
    predecessor, 82 of 88 start at 23 h (Hayes 128/140, NCEI solar events 453/519); the
    rest are mid-day contradictions.
    """
    day = pl.duration(days=1)
    max_step = pl.duration(seconds=int(_MAX_CROSSING_STEP_H * 3600))
    moved = 0
    for t, before in (("peak_time", "start_time"), ("end_time", "peak_time")):
        early = pl.col(t) < pl.col(before)
        fixable = early & (pl.col(t) + day - pl.col(before) <= max_step)
        reason = f"{t} before {before} (not a midnight crossing)"
        if t == "peak_time":
            df = P.drop_bad(df, early & ~fixable, reason=reason, raw_col=None, path=path,
                            drops=drops, strict=False)
        else:
            drops.note(f"{reason} -> null", df.select((early & ~fixable).sum()).item() or 0,
                       nulled=True)
        moved += df.select(fixable.sum()).item() or 0
        df = df.with_columns(pl.when(fixable).then(pl.col(t) + day)
                             .when(early).then(None).otherwise(pl.col(t)).alias(t))
    drops.note("peak/end past midnight moved +1 day", moved)
    return df


def _parse_times(df: pl.DataFrame, cols: dict[str, str], formats: list[str], *, path: Path,
                 drops: P.Drops, strict: bool, required: tuple[str, ...],
                 line_offset: int = 2) -> pl.DataFrame:
    """Parse raw columns ``cols`` (raw -> canonical name); a required null or a non-empty
    unparseable value makes the row malformed."""
    df = df.with_columns([P.strptime_any(raw, formats).alias(out) for raw, out in cols.items()])
    for raw, out in cols.items():
        s = pl.col(raw).str.strip_chars()
        bad = pl.col(out).is_null() & (s.is_not_null() & (s != "") | pl.lit(out in required))
        df = P.drop_bad(df, bad, reason=f"malformed {raw}", raw_col=raw, path=path, drops=drops,
                        strict=strict, line_offset=line_offset)
    return df


def _read_ncei_goes(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = P.read_text_table(path, drops=drops, strict=strict)
    P.require_columns(df, ["start_time", "peak_time", "end_time", "label", "noaa_ar"], path)
    fmts = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"]
    df = df.rename({"start_time": "start_raw", "peak_time": "peak_raw", "end_time": "end_raw"})
    df = _parse_times(df, {"start_raw": "start_time", "peak_raw": "peak_time",
                           "end_raw": "end_time"}, fmts, path=path, drops=drops, strict=strict,
                      required=("start_time", "peak_time"))
    df = P.parse_classes(df, "label", path=path, drops=drops, strict=strict)
    df = P.parse_noaa_ar(df, "noaa_ar", path=path, drops=drops, strict=strict)
    return _finish_flares(df, "ncei_goes", path, drops)


def read_ncei_goes_flares(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read the NOAA/NCEI GOES XRS event list (``ftp_YYYYMMDD_YYYYMMDD.csv``).

    Columns ``(index), start_time, peak_time, end_time, label, noaa_ar, obs, cls``; times
    UTC, ``YYYY-MM-DD HH:MM:SS`` or (start/end from 2023-12-29) ``YYYY/MM/DD HH:MM``.
    Returns the canonical flare frame (``noaa_ar`` 0 -> null, ``harpnum`` null: use
    `flare_core.sources.harp_noaa.attach_harpnum`), sorted by ``peak_time``,
    ``source`` = ``"ncei_goes"``.
    """
    return _run(_read_ncei_goes, path, strict)


def _read_leading_index_table(path: Path, separator: str = ",") -> pl.DataFrame:
    """Read a pandas-written CSV whose header lacks the name of the leading index column."""
    head = P.first_lines(path, 2)
    if len(head) < 2:
        raise ParseError(f"{path}: no data rows")
    names = head[0].split(separator)
    if len(head[1].split(separator)) == len(names) + 1:
        return P.read_text_table(path, has_header=False, skip_rows=1,
                                 new_columns=["_index", *names], separator=separator)
    return P.read_text_table(path, separator=separator)


def _read_swpc(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = _read_leading_index_table(path)
    cols = ["date", "start_time", "max_time", "end_time", "goes_class", "noaa_ar"]
    P.require_columns(df, cols, path)
    date = pl.col("date").str.strip_chars().str.strptime(pl.Date, "%Y%m%d", strict=False)

    def hhmm(c: str) -> pl.Expr:
        s = pl.col(c).str.strip_chars().str.zfill(4)
        ok = s.str.contains(r"^\d{4}$")
        h, m = s.str.slice(0, 2).cast(pl.Int64, strict=False), s.str.slice(2, 2).cast(
            pl.Int64, strict=False)
        valid = ok & (h < 24) & (m < 60)
        return pl.when(valid).then(pl.duration(hours=h, minutes=m)).otherwise(None)

    df = df.with_columns(date.alias("_date"), hhmm("start_time").alias("_s"),
                         hhmm("max_time").alias("_p"), hhmm("end_time").alias("_e"))
    for raw, c in [("date", "_date"), ("start_time", "_s"), ("max_time", "_p")]:
        df = P.drop_bad(df, pl.col(c).is_null(), reason=f"malformed {raw}", raw_col=raw,
                        path=path, drops=drops, strict=strict)
    s = pl.col("end_time").str.strip_chars()
    df = P.drop_bad(df, pl.col("_e").is_null() & s.is_not_null() & (s != ""),
                    reason="malformed end_time", raw_col="end_time", path=path, drops=drops,
                    strict=strict)
    day = pl.duration(days=1)
    start = pl.col("_date").cast(pl.Datetime("us")) + pl.col("_s")
    peak_tod = pl.col("_date").cast(pl.Datetime("us")) + pl.col("_p")
    df = df.with_columns(start.alias("start_time"))
    df = df.with_columns(
        pl.when(peak_tod < pl.col("start_time")).then(peak_tod + day).otherwise(peak_tod)
        .alias("peak_time"))
    end_tod = pl.col("peak_time").dt.truncate("1d") + pl.col("_e")
    df = df.with_columns(
        pl.when(end_tod < pl.col("peak_time")).then(end_tod + day).otherwise(end_tod)
        .alias("end_time"))
    df = P.parse_classes(df, "goes_class", path=path, drops=drops, strict=strict)
    df = P.parse_noaa_ar(df, "noaa_ar", path=path, drops=drops, strict=strict)
    return _finish_flares(df, "swpc", path, drops)


def read_swpc_flares(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read the SWPC flare list (``date`` YYYYMMDD, ``start_time/max_time/end_time`` HHMM).

    Peak and end times earlier in the day than the preceding time of the same event have
    crossed midnight and are moved to the next day. Blank ``noaa_ar`` -> null.
    Returns the canonical flare frame, ``source`` = ``"swpc"``.
    """
    return _run(_read_swpc, path, strict)


def _read_hayes(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = _read_leading_index_table(path)
    P.require_columns(df, ["event_starttime", "event_peaktime", "event_endtime", "goes_class",
                           "noaa_ar"], path)
    df = _parse_times(df, {"event_starttime": "start_time", "event_peaktime": "peak_time",
                           "event_endtime": "end_time"}, _ISO, path=path, drops=drops,
                      strict=strict, required=("start_time", "peak_time"))
    df = P.parse_classes(df, "goes_class", path=path, drops=drops, strict=strict)
    df = P.parse_noaa_ar(df, "noaa_ar", path=path, drops=drops, strict=strict)
    return _finish_flares(df, "hayes", path, drops)


def read_hayes_flares(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read the Hayes SC24 final flare list (ISO ``event_*time`` columns, UTC).

    Returns the canonical flare frame, ``source`` = ``"hayes"``; ``peak_flux_wm2`` is
    recomputed from ``goes_class``.
    """
    return _run(_read_hayes, path, strict)


def _read_ncei_events(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = P.read_text_table(path, drops=drops, strict=strict)
    P.require_columns(df, ["Flare Class", "Start Time", "Peak Time", "End Time",
                           "Active Region Number"], path)
    fmts = ["%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ", *_ISO]
    df = _parse_times(df, {"Start Time": "start_time", "Peak Time": "peak_time",
                           "End Time": "end_time"}, fmts, path=path, drops=drops,
                      strict=strict, required=("start_time", "peak_time"))
    df = P.parse_classes(df, "Flare Class", path=path, drops=drops, strict=strict)
    df = P.parse_noaa_ar(df, "Active Region Number", path=path, drops=drops, strict=strict)
    return _finish_flares(df, "ncei_solar_events", path, drops)


def read_ncei_solar_events(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read the NCEI solar-events list of SolarFlareNet (``1996-07-31T01:32Z`` times, UTC).

    Returns the canonical flare frame, ``source`` = ``"ncei_solar_events"``; AR 0 -> null.
    """
    return _run(_read_ncei_events, path, strict)


def _read_liu_one(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = P.read_text_table(path)
    P.require_columns(df, ["Flares", "Start Time", "End Time", "NOAA"], path)
    df = _parse_times(df, {"Start Time": "start_time", "End Time": "end_time"}, _ISO,
                      path=path, drops=drops, strict=strict, required=("start_time", "end_time"))
    df = df.with_columns(pl.col("end_time").alias("peak_time"))
    df = P.parse_classes(df, "Flares", path=path, drops=drops, strict=strict)
    df = P.parse_noaa_ar(df, "NOAA", path=path, drops=drops, strict=strict)
    return conform_flares(df.with_columns(pl.lit(None, dtype=pl.Int64).alias("harpnum"),
                                          pl.lit("liu2019").alias("source"),
                                          *[utc_expr(pl.col(c)) for c in
                                            ("start_time", "peak_time", "end_time")]))


def _read_liu_many(files: list[Path], strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = pl.concat([_read_liu_one(f, strict, drops) for f in files])
    return conform_flares(P.dedupe_flares(df, path=files[0].parent, drops=drops))


def read_liu2019_flares(paths: PathLike | Iterable[PathLike], *,
                        strict: bool = False) -> pl.DataFrame:
    """Read the Liu et al. (2019) ``{B,C,M,X}-class.csv`` lists (a directory or files).

    The lists carry no peak time: ``peak_time`` is set to ``end_time``, an upper bound,
    so a flare never enters a history window before its real peak (labels may shift by
    the rise-to-end time, typically < 1 h). ``source`` = ``"liu2019"``.
    """
    if isinstance(paths, str | Path) and Path(paths).is_dir():
        files = sorted(Path(paths).glob("*-class.csv"))
    elif isinstance(paths, str | Path):
        files = [Path(paths)]
    else:
        files = [Path(p) for p in paths]
    if not files:
        raise ParseError(f"no Liu 2019 class files in {paths}")
    return _run(_read_liu_many, files, strict, where=str(files[0].parent))


_HEK_COLS = ["event_date", "start", "peak", "end", "goes_class", "lonlat", "noaa_ar",
             "class_letter", "class_ordinal", "lon", "lat"]


def _read_hek_noheader(path: Path, strict: bool, drops: P.Drops) -> pl.DataFrame:
    df = P.read_text_table(path, separator=";", has_header=False, new_columns=_HEK_COLS)
    if df.width != len(_HEK_COLS) + 1:
        raise ParseError(f"{path}: expected {len(_HEK_COLS)} ';'-separated fields, "
                         f"got {df.width - 1}")
    df = _parse_times(df, {"start": "start_time", "peak": "peak_time", "end": "end_time"},
                      _ISO, path=path, drops=drops, strict=strict,
                      required=("start_time", "peak_time"), line_offset=1)
    df = P.parse_classes(df, "goes_class", path=path, drops=drops, strict=strict, line_offset=1)
    df = P.parse_noaa_ar(df, "noaa_ar", path=path, drops=drops, strict=strict, line_offset=1)
    return _finish_flares(df, "hek_noheader", path, drops)


def read_hek_noheader(path: PathLike, *, strict: bool = False) -> pl.DataFrame:
    """Read a headerless ``;``-separated HEK GOES list (``00_All_GOES_SUNPY.csv`` layout).

    Fields: event_date; start; peak; end; goes_class; "(lon, lat)"; noaa_ar (0 = none);
    class letter; class ordinal; lon; lat. Returns the canonical flare frame,
    ``source`` = ``"hek_noheader"``.
    """
    return _run(_read_hek_noheader, path, strict)


# --------------------------------------------------------------------------- dispatch


def _run(reader: Callable[..., pl.DataFrame], target, strict: bool, *,
         where: str | None = None) -> pl.DataFrame:
    drops = P.Drops()
    path = target if isinstance(target, list) else Path(target)
    df = reader(path, strict, drops)
    drops.log(where or str(path))
    return df


#: format name -> (frame kind, reader(path, strict, drops)); the NOAA-keyed formats in
#: `NOAA_KEYED_FORMATS` also take ``harp_map=``, the JSOC formats in `JSOC_FORMATS`
#: ``series=``.
FORMATS: dict[str, tuple[str, Callable[..., pl.DataFrame]]] = {
    "sun2022": ("sharp", _read_sun2022),
    "swan_sf_mvts": ("sharp", lambda p, s, d: _read_swan_many(_swan_paths(p), s, d)),
    "ncei_goes": ("flares", _read_ncei_goes),
    "swpc": ("flares", _read_swpc),
    "hayes": ("flares", _read_hayes),
    "ncei_solar_events": ("flares", _read_ncei_events),
    "liu2019": ("flares", lambda p, s, d: _read_liu_many(
        sorted(p.glob("*-class.csv")) if p.is_dir() else [p], s, d)),
    "hek_noheader": ("flares", _read_hek_noheader),
    "hollanda": ("sharp", lambda p, s, d, harp_map=None: conform_sharp(
        _hollanda_frame(p, s, d, harp_map))),
    "flareml": ("sharp", lambda p, s, d, harp_map=None: conform_sharp(
        _flareml_frame(p, s, d, harp_map))),
    "swan_sf_window_stats": ("window_stats", _read_window_stats),
    "harp_map": ("harp_map", lambda p, s, d: read_harp_noaa_map(p)),
    "jsoc_keywords_csv": ("sharp", lambda p, s, d, series=None: J.read_jsoc_keywords_csv(
        p, series=series, strict=s, drops=d)),
    "jsoc_rs_list_json": ("sharp", lambda p, s, d, series=None: J.read_rs_list_json(
        p, series=series, strict=s, drops=d)),
    "jsoc_region_listing_json": ("harp_map", lambda p, s, d, series=None:
                                 J.read_region_listing(p, series=series, strict=s, drops=d)),
    "jsoc_region_listing_csv": ("harp_map", lambda p, s, d, series=None:
                                J.read_region_listing(p, series=series, strict=s, drops=d)),
}


#: Formats without HARP numbers: `load_file` passes them its ``harp_map``.
NOAA_KEYED_FORMATS: frozenset[str] = frozenset({"hollanda", "flareml"})
#: Formats read as JSOC names keywords (`flare_core.sources.jsoc_keywords`): they take
#: ``series=`` (default: from the file name).
JSOC_FORMATS: frozenset[str] = frozenset({"jsoc_keywords_csv", "jsoc_rs_list_json",
                                          "jsoc_region_listing_json",
                                          "jsoc_region_listing_csv"})
#: SHARP formats of research data sets: always ``hmi.sharp_cea_720s``.
_RESEARCH_SHARP_FORMATS = frozenset({"sun2022", "swan_sf_mvts", "hollanda", "flareml"})


def detect_format(path: PathLike) -> str:
    """Name of the `FORMATS` entry that reads ``path``, from its header (or directory).

    Raises `ParseError` naming the file when no known layout matches.
    """
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*-class.csv")):
            return "liu2019"
        if any(_SWAN_ID_RE.search(p.name) for p in path.glob("*.csv")):
            return "swan_sf_mvts"
        raise ParseError(f"{path}: directory holds no known file layout")
    if not path.exists():
        raise ParseError(f"{path}: no such file")
    if path.suffix.lower() == ".json" or P.first_bytes(path, 1) == b"{":
        raw = J.read_rs_list_reply(path)  # ParseError for error replies, empty, truncated
        return "jsoc_region_listing_json" if J.is_region_listing(raw.columns) \
            else "jsoc_rs_list_json"
    lines = P.first_lines(path, 1)
    head = lines[0] if lines else ""
    cols = {c.strip() for c in re.split(r"[,\t;]", head)}
    if head.split()[:2] == ["HARPNUM", "NOAA_ARS"]:
        return "harp_map"
    if {"T_REC", "HARPNUM"} <= cols:
        return "jsoc_region_listing_csv" if J.is_region_listing(sorted(cols)) \
            else "jsoc_keywords_csv"
    rules = [
        ({"arpnum", "t_end"}, "sun2022"),
        ({"Timestamp", "QUALITY"}, "swan_sf_mvts"),
        ({"peak_time", "label", "noaa_ar"}, "ncei_goes"),
        ({"max_time", "goes_class"}, "swpc"),
        ({"event_peaktime", "goes_class"}, "hayes"),
        ({"Peak Time", "Active Region Number"}, "ncei_solar_events"),
        ({"Flares", "Start Time", "NOAA"}, "liu2019"),
        ({"FlareNumber", "T_REC", "NOAA_AR"}, "hollanda"),
        ({"Flare Class", "Flare Date", "AR"}, "flareml"),
        ({"id", "lab", "START_TIME", "END_TIME"}, "swan_sf_window_stats"),
    ]
    for needed, name in rules:
        if needed <= cols:
            return name
    if head.count(";") == len(_HEK_COLS) - 1 and re.match(r"^\d{4}-\d{2}-\d{2};", head):
        return "hek_noheader"
    raise ParseError(f"{path}: unknown file layout (header {head[:80]!r}); "
                     f"pass a format, one of {sorted(FORMATS)}")


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
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ParseError(f"unknown format {fmt!r}; known: {sorted(FORMATS)}")
    kind, reader = FORMATS[fmt]
    drops = P.Drops()
    out_series: str | None = None
    if fmt in JSOC_FORMATS:
        out_series = J.infer_series(path, series)
        frame = reader(path, strict, drops, series=out_series)
    else:
        if fmt in _RESEARCH_SHARP_FORMATS:
            out_series = SERIES_DEFINITIVE_CEA
        if series is not None and series != out_series:
            raise ParseError(f"{path}: series= applies to JSOC exports; {fmt} files are "
                             f"{out_series or 'not SHARP records'}, not {series!r}")
        if fmt in NOAA_KEYED_FORMATS:
            frame = reader(path, strict, drops, harp_map=harp_map)
        else:
            frame = reader(path, strict, drops)
    drops.log(path)
    return ReadResult(path=path, fmt=fmt, kind=kind, frame=frame, drops=drops,
                      series=out_series)


def read_file(path: PathLike, fmt: str | None = None, *, strict: bool = False,
              harp_map: pl.DataFrame | None = None,
              series: str | None = None) -> tuple[str, pl.DataFrame]:
    """Read any supported file: ``(kind, frame)``, arguments and kind as in `load_file`."""
    res = load_file(path, fmt, strict=strict, harp_map=harp_map, series=series)
    return res.kind, res.frame
