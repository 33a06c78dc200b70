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

import polars as pl

__all__ = [
    "SHARP_KEYWORDS",
    "SHARP_SERIES",
    "SERIES_DEFINITIVE",
    "SERIES_DEFINITIVE_CEA",
    "SERIES_NRT",
    "SERIES_NRT_CEA",
    "is_nrt_series",
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
