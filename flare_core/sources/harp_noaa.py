"""The JSOC HARP <-> NOAA active-region map, and attaching HARP numbers to flares.

JSOC publishes ``all_harps_with_noaa_ars.txt`` at `HARP_NOAA_MAP_URL`: a header line
``HARPNUM NOAA_ARS``, then one line per HARP that overlaps at least one NOAA region,
``"<harpnum> <noaa>[,<noaa>...]"``. HARPs without a NOAA region are absent. A NOAA region
can appear under several HARPs (a region split, or a patch re-identified), so the map is
many-to-many; `attach_harpnum` resolves that with the SHARP records when given.

**A map belongs to one HARP numbering.** The near-real-time series number their regions
independently of the definitive ones and the ranges overlap (`flare_core.schema.SHARP_SERIES`),
so every map frame carries a ``series`` column and a HARP of one numbering is never looked
up in the other's map (`attach_harpnum` refuses). The file format is the same for both;
`read_harp_noaa_map` takes the series from its ``series`` argument, else from the file name
(a name containing ``nrt``, like ``harp_noaa_nrt.txt``, is the NRT map, any other the
definitive one).

Example
-------
>>> harp_map = read_harp_noaa_map("data/harp_noaa/all_harps_with_noaa_ars.txt")  # doctest: +SKIP
>>> flares = attach_harpnum(read_ncei_goes_flares(path), harp_map)                # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import polars as pl

from ..errors import ConfigError, ParseError, SourceUnavailable
from ..io import atomic_write
from ..schema import SERIES_DEFINITIVE_CEA, SERIES_NRT_CEA, harp_numbering

__all__ = [
    "HARP_NOAA_MAP_URL",
    "HARP_MAP_SCHEMA",
    "harp_map_series",
    "read_harp_noaa_map",
    "parse_harp_noaa_map",
    "attach_harpnum",
    "download_harp_noaa_map",
]

logger = logging.getLogger(__name__)

HARP_NOAA_MAP_URL = "http://jsoc.stanford.edu/doc/data/hmi/harpnum_to_noaa/all_harps_with_noaa_ars.txt"
HARP_MAP_SCHEMA: dict[str, pl.DataType] = {"harpnum": pl.Int64, "noaa_ar": pl.Int64,
                                           "series": pl.Utf8}


def harp_map_series(path: str | Path, series: str | None = None) -> str:
    """The SHARP series of a map file: ``series`` when given, else `SERIES_NRT_CEA` when the
    file name contains ``nrt`` (case-insensitive) and `SERIES_DEFINITIVE_CEA` otherwise."""
    if series is not None:
        return series
    return SERIES_NRT_CEA if "nrt" in Path(path).name.lower() else SERIES_DEFINITIVE_CEA


def parse_harp_noaa_map(text: str, *, where: str = "HARP map",
                        series: str = SERIES_DEFINITIVE_CEA) -> pl.DataFrame:
    """Parse the text of ``all_harps_with_noaa_ars.txt`` (see `read_harp_noaa_map`); every
    row gets ``series``.

    Raises `ParseError` naming ``where`` and the line for a malformed line.
    """
    lines = text.splitlines()
    if not lines or lines[0].split()[:2] != ["HARPNUM", "NOAA_ARS"]:
        head = lines[0][:60] if lines else ""
        raise ParseError(f"{where}: expected header 'HARPNUM NOAA_ARS', got {head!r}")
    harps: list[int] = []
    noaas: list[int] = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ParseError(f"{where}, line {i}: expected '<harpnum> <noaa,...>', got {line!r}")
        try:
            harp = int(parts[0])
            ars = [int(a) for a in parts[1].split(",") if a]
        except ValueError as e:
            raise ParseError(f"{where}, line {i}: non-integer value in {line!r}") from e
        if harp <= 0 or not ars or any(a <= 0 for a in ars):
            raise ParseError(f"{where}, line {i}: non-positive or missing number in {line!r}")
        harps.extend([harp] * len(ars))
        noaas.extend(ars)
    return (
        pl.DataFrame({"harpnum": harps, "noaa_ar": noaas, "series": [series] * len(harps)},
                     schema=HARP_MAP_SCHEMA)
        .unique(maintain_order=True)
        .sort(["harpnum", "noaa_ar"])
    )


def read_harp_noaa_map(path: str | Path, series: str | None = None) -> pl.DataFrame:
    """Read a JSOC HARP <-> NOAA map file (plain or ``.gz``).

    Parameters
    ----------
    path
        ``all_harps_with_noaa_ars.txt`` as published by JSOC, or its NRT counterpart
        ``harp_noaa_nrt.txt`` (same format; CRLF or LF line endings; the last line may lack
        a newline).
    series
        The SHARP series whose HARP numbers the file lists. Default: inferred from the file
        name (`harp_map_series`: ``nrt`` in the name -> `SERIES_NRT_CEA`, else
        `SERIES_DEFINITIVE_CEA`); pass it to override.

    Returns
    -------
    polars.DataFrame
        Columns ``harpnum`` (Int64), ``noaa_ar`` (Int64), ``series`` (Utf8); one row per
        (HARP, NOAA) pair, sorted. Raises `ParseError` naming the file and line for a
        malformed line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ParseError(f"{path}: cannot read HARP map: {e}") from e
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return parse_harp_noaa_map(raw.decode("utf-8", errors="strict"), where=str(path),
                               series=harp_map_series(path, series))


def download_harp_noaa_map(cache_dir: str | Path, *, url: str = HARP_NOAA_MAP_URL,
                           timeout_s: float = 60.0, refresh: bool = False) -> Path:
    """Download the map once into ``cache_dir`` and return the cached path.

    The file is written atomically (`flare_core.io.atomic_write`) and validated with
    `parse_harp_noaa_map` first, so a failed or truncated download never replaces a good
    cached copy. ``refresh=True`` downloads again even if cached. Raises
    `SourceUnavailable` when the server cannot be reached or answers an HTTP error.
    """
    import requests

    cache_dir = Path(cache_dir)
    target = cache_dir / "all_harps_with_noaa_ars.txt"
    if target.exists() and not refresh:
        return target
    logger.debug("GET %s", url)
    try:
        resp = requests.get(url, timeout=timeout_s)
        resp.raise_for_status()
    except requests.RequestException as e:
        raise SourceUnavailable(f"HARP map download from {url} failed: {e}") from e
    text = resp.content.decode("utf-8").replace("\r\n", "\n")
    parse_harp_noaa_map(text, where=url)
    return atomic_write(target, text)


def attach_harpnum(flares: pl.DataFrame, harp_map: pl.DataFrame, *,
                   records: pl.DataFrame | None = None,
                   series: str | None = None) -> pl.DataFrame:
    """Fill ``harpnum`` of a flare frame from its ``noaa_ar`` via the HARP map.

    Flares carry NOAA numbers; the HARP numbers they get are those of the map's series,
    so pass the map of the series being forecast.

    **One NOAA region on several HARPs.** Each flare is attributed to exactly one HARP
    (the flare frame keeps its rows): among the HARPs the map lists for its NOAA region,
    the one whose record span [first t_rec, last t_rec] in ``records`` contains the peak,
    else the one whose span is nearest to it; when several spans contain the peak, or
    without ``records``, the smallest HARP number (the patch that carried the region
    first). Real case: NOAA 13514 is on NRT HARPs 9334 and 9338, whose spans both contain
    its December 2023 flares; they go to 9334, and 9338 sees none of them.

    Parameters
    ----------
    flares
        Canonical flare frame (`flare_core.schema.FLARE_SCHEMA`). Rows whose ``harpnum`` is
        already set keep it.
    harp_map
        Output of `read_harp_noaa_map` (``harpnum``, ``noaa_ar`` and, optionally,
        ``series``), all of one HARP numbering.
    records
        Optional SHARP frame (``harpnum``, ``t_rec``, optional ``series``) of the map's
        HARP numbering, used to resolve a NOAA region on several HARPs (above).
    series
        The series being forecast, optional: checked against the map's series.

    Returns
    -------
    polars.DataFrame
        The flare frame, same rows and order, with ``harpnum`` filled where the NOAA region
        is in the map (null otherwise, and always null when ``noaa_ar`` is null).

    Raises
    ------
    ConfigError
        If the map mixes HARP numberings (definitive and NRT), or its series, the records'
        series or ``series`` belong to different numberings: a HARP of one series is never
        looked up in another series' map.
    """
    _check_same_numbering(harp_map, records, series)
    if flares.height == 0:
        return flares
    idx = "_flare_idx"
    f = flares.with_row_index(idx)
    cand = f.select(idx, "noaa_ar", "peak_time").join(
        harp_map.select(pl.col("harpnum").cast(pl.Int64), pl.col("noaa_ar").cast(pl.Int64)),
        on="noaa_ar", how="inner",
    )
    if records is not None and records.height:
        spans = records.group_by("harpnum").agg(
            pl.col("t_rec").min().alias("_t0"), pl.col("t_rec").max().alias("_t1")
        )
        cand = cand.join(spans, on="harpnum", how="left").with_columns(
            pl.when(pl.col("_t0").is_null()).then(None)
            .when(pl.col("peak_time") < pl.col("_t0")).then(pl.col("_t0") - pl.col("peak_time"))
            .when(pl.col("peak_time") > pl.col("_t1")).then(pl.col("peak_time") - pl.col("_t1"))
            .otherwise(pl.duration(seconds=0))
            .alias("_dist")
        )
    else:
        cand = cand.with_columns(pl.lit(None, dtype=pl.Duration("us")).alias("_dist"))
    n_ambiguous = cand.group_by(idx).len().filter(pl.col("len") > 1).height
    if n_ambiguous:
        logger.info("attach_harpnum: %d flares have a NOAA region mapped to several HARPs "
                    "(resolved %s)", n_ambiguous,
                    "by SHARP record span" if records is not None else "to the smallest HARP")
    best = (
        cand.sort([idx, "_dist", "harpnum"], nulls_last=True)
        .group_by(idx, maintain_order=True)
        .first()
        .select(idx, pl.col("harpnum").alias("_harp"))
    )
    out = f.join(best, on=idx, how="left").sort(idx)
    return out.with_columns(
        pl.coalesce("harpnum", "_harp").cast(pl.Int64).alias("harpnum")
    ).drop(idx, "_harp")


def _numberings(frame: pl.DataFrame | None) -> set[str]:
    if frame is None or "series" not in frame.columns:
        return set()
    return {harp_numbering(s) for s in frame.get_column("series").drop_nulls().unique()}


def _check_same_numbering(harp_map: pl.DataFrame, records: pl.DataFrame | None,
                          series: str | None) -> None:
    """Raise `ConfigError` unless the map, the records and ``series`` share one numbering."""
    in_map = _numberings(harp_map)
    if len(in_map) > 1:
        raise ConfigError("the HARP map mixes definitive and NRT HARP numbers "
                          f"({sorted(harp_map['series'].drop_nulls().unique())}); "
                          "pass the map of one series")
    others = _numberings(records) | ({harp_numbering(series)} if series is not None else set())
    if in_map and others - in_map:
        map_series = sorted(harp_map["series"].drop_nulls().unique())
        raise ConfigError(f"HARPs of the {sorted(others - in_map)} numbering cannot be looked "
                          f"up in the HARP map of series {map_series}: HARP numbers are "
                          "per series; pass the map of the series being forecast")
