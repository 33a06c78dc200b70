"""The two canonical frames every source produces, with units documented once.

SHARP keyword frame (one row per region and record), polars columns:

=============  ========================  ==============================================
column         dtype                     meaning (unit)
=============  ========================  ==============================================
series         Utf8                      JSOC series (`SHARP_SERIES`); HARP numbers are per series
harpnum        Int64                     HMI Active Region Patch number (within ``series``)
t_rec          Datetime(us, UTC)         record time (JSOC T_REC, converted from TAI)
noaa_ars       Utf8 (nullable)           NOAA AR numbers, comma separated ("11967,11968")
quality        Int64 (nullable)          JSOC QUALITY bit mask; 0 = good
lat_fwt        Float64 (nullable)        flux-weighted centre latitude (deg)
lon_fwt        Float64 (nullable)        flux-weighted centre Stonyhurst longitude (deg)
crval1         Float64 (nullable)        Carrington longitude of the patch centre (deg)
crln_obs       Float64 (nullable)        Carrington longitude of the observer (deg)
available_at   Datetime(us, UTC) (null)  when JSOC first served this value (null = unknown)
<keyword>      Float64 (nullable)        the SHARP space-weather keywords below
source         Utf8                      which reader/client produced the row
=============  ========================  ==============================================

A keyword a source does not provide is an explicit null column, never zeros.

Flare-event frame (one row per GOES X-ray event):

==============  ====================  ==============================================
start_time      Datetime(us, UTC)     event start
peak_time       Datetime(us, UTC)     1-8 Angstrom peak (the time used for labels/history)
end_time        Datetime(us, UTC)     event end (nullable)
goes_class      Utf8                  class string, e.g. "M1.5"
peak_flux_wm2   Float64               peak 1-8 Angstrom flux (W m^-2), from goes_class
noaa_ar         Int64 (nullable)      NOAA AR number; null when unassigned (0 in files)
harpnum         Int64 (nullable)      HARP via the HARP<->NOAA map; null when unmapped
source          Utf8                  which reader/client produced the row
==============  ====================  ==============================================
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

__all__ = [
    "SHARP_KEYWORDS",
    "SHARP_SERIES",
    "SERIES_DEFINITIVE",
    "SERIES_DEFINITIVE_CEA",
    "SERIES_NRT",
    "SERIES_NRT_CEA",
    "is_nrt_series",
    "harp_numbering",
    "DEFAULT_NRT_LATENCY",
    "served_at_expr",
    "with_served_at",
    "KEYWORD_UNITS",
    "SHARP_META_COLUMNS",
    "SHARP_SCHEMA",
    "FLARE_SCHEMA",
    "UTC_DATETIME",
    "empty_sharp_frame",
    "empty_flare_frame",
    "conform_sharp",
    "conform_flares",
]

UTC_DATETIME = pl.Datetime("us", "UTC")

#: SHARP space-weather keywords (snake_case) -> unit, as in the JSOC series
#: ``hmi.sharp_cea_720s`` keyword table (tests/data/jsoc/hmi.sharp_cea_720s_keywords.csv).
KEYWORD_UNITS: dict[str, str] = {
    "usflux": "Mx",
    "meangam": "degree",
    "meangbt": "G/Mm",
    "meangbz": "G/Mm",
    "meangbh": "G/Mm",
    "meanjzd": "mA/m^2",
    "totusjz": "A",
    "meanalp": "1/Mm",
    "meanjzh": "G^2/m",
    "totusjh": "G^2/m",
    "absnjzh": "G^2/m",
    "savncpp": "A",
    "meanpot": "erg/cm^3",
    "totpot": "erg/cm",
    "meanshr": "degree",
    "shrgt45": "percent",
    "r_value": "log10(Mx)",
    "area_acr": "micro-hemisphere",  # line-of-sight area of active pixels
    "area": "micro-hemisphere",  # de-projected area of the patch (sun2022 files carry it)
    "totbsq": "G^2",
    "totfx": "dyne",
    "totfy": "dyne",
    "totfz": "dyne",
    "epsx": "dimensionless",
    "epsy": "dimensionless",
    "epsz": "dimensionless",
}
SHARP_KEYWORDS: tuple[str, ...] = tuple(KEYWORD_UNITS)

#: JSOC SHARP series. HARP numbers are per series: the near-real-time (NRT) series number
#: their regions independently of the definitive ones and the ranges overlap, so a HARP
#: number only identifies a region together with its series.
SERIES_DEFINITIVE = "hmi.sharp_720s"
SERIES_DEFINITIVE_CEA = "hmi.sharp_cea_720s"
SERIES_NRT = "hmi.sharp_720s_nrt"
SERIES_NRT_CEA = "hmi.sharp_cea_720s_nrt"
SHARP_SERIES: tuple[str, ...] = (SERIES_DEFINITIVE, SERIES_DEFINITIVE_CEA, SERIES_NRT,
                                 SERIES_NRT_CEA)


def is_nrt_series(series: str) -> bool:
    """True for the near-real-time SHARP series (``..._nrt``)."""
    return series.endswith("_nrt")


def harp_numbering(series: str) -> str:
    """The HARP numbering a series uses: ``"nrt"`` or ``"definitive"``.

    The CCD and CEA variants of a series share their HARP numbers (``hmi.sharp_720s`` and
    ``hmi.sharp_cea_720s`` describe the same patches, likewise the two NRT series), so a
    HARP <-> NOAA map applies to every series of its numbering and to no other.
    """
    return "nrt" if is_nrt_series(series) else "definitive"


#: Default delay between a SHARP record's T_REC and the time JSOC first served it, used
#: wherever ``available_at`` is unknown (null): 100 min 19 s, the median over the 17,254
#: records of `/work/shared/data/sharp_nrt/jsoc_nrt_sharp_first_seen_sample_2021-2023.csv.gz`
#: (30 sampled NRT regions, 2021-2023) of ``first_seen_utc - T_REC``, T_REC converted from
#: TAI to UTC (TAI - 37 s). The quartiles are 86.5 and 126.5 min and the tail is long
#: (p95 852 min: outages). first_seen is an upper bound by one polling gap (~18 min) on
#: the true serving time, so this default errs late, never early (no look-ahead). It is
#: applied to definitive series too, where it only matters for backfills.
DEFAULT_NRT_LATENCY = timedelta(minutes=100, seconds=19)


def served_at_expr(default_latency: timedelta = DEFAULT_NRT_LATENCY, *,
                   has_available_at: bool = True, has_series: bool = True) -> pl.Expr:
    """Expression for ``served_at``: when a SHARP record counts as served (UTC).

    ``served_at = cumulative max over t_rec of available_at within (series, harpnum)``, an
    unknown (null or absent) ``available_at`` taken as ``t_rec + default_latency``. JSOC
    serves a region's records in T_REC order, so this equals ``available_at`` in practice;
    the cumulative max guarantees that the records served by any time ``t`` are a prefix
    (in ``t_rec``) of each region's series, so the features of a served record only read
    served records. The maximum runs over the rows of the frame it is evaluated on (their
    order does not matter). ``has_available_at``/``has_series`` say whether the frame has
    those columns (`with_served_at` sets them).
    """
    fallback = pl.col("t_rec") + pl.lit(default_latency)
    avail = pl.coalesce(pl.col("available_at"), fallback) if has_available_at else fallback
    groups = ["series", "harpnum"] if has_series else ["harpnum"]
    return avail.cum_max().over(groups, order_by="t_rec").alias("served_at")


def with_served_at(frame: pl.DataFrame, default_latency: timedelta = DEFAULT_NRT_LATENCY,
                   ) -> pl.DataFrame:
    """``frame`` (``harpnum``, ``t_rec``, optional ``series``/``available_at``) with the
    ``served_at`` column of `served_at_expr` added (rows in their order)."""
    return frame.with_columns(served_at_expr(
        default_latency, has_available_at="available_at" in frame.columns,
        has_series="series" in frame.columns))


SHARP_META_COLUMNS: dict[str, pl.DataType] = {
    "series": pl.Utf8,
    "harpnum": pl.Int64,
    "t_rec": UTC_DATETIME,
    "noaa_ars": pl.Utf8,
    "quality": pl.Int64,
    "lat_fwt": pl.Float64,
    "lon_fwt": pl.Float64,
    "crval1": pl.Float64,
    "crln_obs": pl.Float64,
    "available_at": UTC_DATETIME,
}
SHARP_SCHEMA: dict[str, pl.DataType] = {
    **SHARP_META_COLUMNS,
    **{k: pl.Float64 for k in SHARP_KEYWORDS},
    "source": pl.Utf8,
}

FLARE_SCHEMA: dict[str, pl.DataType] = {
    "start_time": UTC_DATETIME,
    "peak_time": UTC_DATETIME,
    "end_time": UTC_DATETIME,
    "goes_class": pl.Utf8,
    "peak_flux_wm2": pl.Float64,
    "noaa_ar": pl.Int64,
    "harpnum": pl.Int64,
    "source": pl.Utf8,
}


def empty_sharp_frame() -> pl.DataFrame:
    """A zero-row SHARP keyword frame with the canonical schema."""
    return pl.DataFrame(schema=SHARP_SCHEMA)


def empty_flare_frame() -> pl.DataFrame:
    """A zero-row flare-event frame with the canonical schema."""
    return pl.DataFrame(schema=FLARE_SCHEMA)


def _conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    missing = [pl.lit(None, dtype=dt).alias(c) for c, dt in schema.items() if c not in df.columns]
    if missing:
        df = df.with_columns(missing)
    return df.select([pl.col(c).cast(dt, strict=True) for c, dt in schema.items()])


def conform_sharp(df: pl.DataFrame) -> pl.DataFrame:
    """Cast to `SHARP_SCHEMA`, adding absent keywords as null columns, in canonical order.

    Extra columns are dropped. Casting is strict: a value that does not fit raises.
    """
    return _conform(df, SHARP_SCHEMA)


def conform_flares(df: pl.DataFrame) -> pl.DataFrame:
    """Cast to `FLARE_SCHEMA`, adding absent columns as nulls, in canonical order."""
    return _conform(df, FLARE_SCHEMA)
