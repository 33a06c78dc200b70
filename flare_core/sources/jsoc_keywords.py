"""JSOC keyword values -> the canonical SHARP frame, in one place.

Everything that reads SHARP keywords *as JSOC names them* (``T_REC``, ``HARPNUM``,
``USFLUX``, ``NOAA_ARS``, ``QUALITY`` ...) goes through `parse_rs_list`: the live client
(`flare_core.sources.jsoc`) and the file formats below. It converts ``T_REC`` (TAI,
``2021.05.03_01:24:00_TAI``) to UTC with the ERFA leap-second table
(`flare_core.timeutil.tai_to_utc_expr`), sets ``series`` and ``source``, drops
malformed, non-finite and implausible records (counted, `ParseError` when ``strict``; see
`flare_core.sources.plausibility`) and counts every repair.

File formats (names as in `flare_core.sources.formats.FORMATS`, declared in
`flare_core.sources.formats.jsoc_exports`):

* ``jsoc_keywords_csv`` -- the plain keyword export: a CSV whose header holds ``T_REC``,
  ``HARPNUM`` and any JSOC keywords (SHARP keywords, ``NOAA_ARS``, ``QUALITY``,
  ``LAT_FWT`` ...), optionally ``first_seen_utc`` (ISO UTC, ``2021-06-14T14:32:40Z``:
  when the record was first served -> ``available_at``). Read by `read_jsoc_keywords_csv`
  with polars' native reader: keywords straight to Float64, ``T_REC`` with one fixed
  format, no Python row loop (1.08 M NRT records in ~1 s). A value that does not parse
  as a number sends the file to a string read so that the bad line can be named.
  The first-seen sample (``HARPNUM,T_REC,first_seen_utc,latency_min``) is such a file
  with no keyword columns: its records carry ``available_at`` and null keywords.
* ``jsoc_rs_list_json`` -- one raw ``jsoc_info?op=rs_list`` reply saved to a file:
  ``{"keywords":[{"name":"T_REC","values":[...]},...],"count":N,"status":0}``.
* ``jsoc_region_listing_json`` / ``jsoc_region_listing_csv`` -- a *region listing*
  (``hmi.mharp_720s_nrt[][$]``: ``T_REC, HARPNUM, NOAA_ARS``, the CSV also
  ``first_seen_utc``). A listing holds no SHARP keyword, so it is not read as SHARP
  records: it is read as a fragment of the HARP <-> NOAA map of its series (kind
  ``"harp_map"``: ``harpnum``, ``noaa_ar`` and a ``series`` column). Its
  ``first_seen_utc`` is when the *listing* showed a T_REC, ~35 min before the SHARP
  record itself appeared (``../shared/data/README.md`` section 6), so it is never used as a
  record's ``available_at``.

A reply whose ``status`` is not 0 (``{"status": 6, "error": ""}``, the rate-limit
``STOP`` message), an empty body or a truncated one raises `ParseError` naming the file
and JSOC's message.

``NOAA_ARS`` ``MISSING`` means "no NOAA region": null, counted as a note, not a drop.

Series: a JSOC file does not say which series it came from. `infer_series` takes the
``series`` argument, else the file name (``sharp_720s_nrt``, ``sharp_cea_720s_nrt``,
``sharp_cea_720s``, ``sharp_720s``, ``mharp_720s[_nrt]``; the ``jsoc_nrt_*`` products of
``../shared/data/sharp_nrt/`` are ``hmi.sharp_720s_nrt``), else raises `ParseError`
asking for one. HARP numbers are per series (`flare_core.schema.SHARP_SERIES`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from ..errors import ParseError
from ..schema import (
    SERIES_DEFINITIVE,
    SERIES_NRT,
    SHARP_KEYWORDS,
    SHARP_SERIES,
    UTC_DATETIME,
    conform_sharp,
    is_nrt_series,
)
from ..timeutil import tai_to_utc_expr
from . import _parse as P

__all__ = [
    "JSOC_META_KEYS",
    "T_REC_FORMAT",
    "infer_series",
    "parse_rs_list",
    "parse_t_rec_expr",
    "read_jsoc_keywords_csv",
    "read_rs_list_reply",
    "read_rs_list_json",
    "read_region_listing",
    "source_of_series",
]

logger = logging.getLogger(__name__)

#: JSOC keyword -> canonical column, for the non-keyword metadata.
JSOC_META_KEYS: dict[str, str] = {
    "HARPNUM": "harpnum", "T_REC": "t_rec", "NOAA_ARS": "noaa_ars", "QUALITY": "quality",
    "LAT_FWT": "lat_fwt", "LON_FWT": "lon_fwt", "CRVAL1": "crval1", "CRLN_OBS": "crln_obs",
}
_META_FLOATS = ("LAT_FWT", "LON_FWT", "CRVAL1", "CRLN_OBS")
#: How JSOC writes T_REC (TAI).
T_REC_FORMAT = "%Y.%m.%d_%H:%M:%S_TAI"
#: Column of the DayeLim-derived NRT products: when a record (or listing row) was first seen.
FIRST_SEEN = "first_seen_utc"
_FIRST_SEEN_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_MISSING_NOAA = "MISSING"
_BAD_UTF8 = "\ufffd"  # what a non-UTF-8 byte becomes under polars' utf8-lossy decoding

# file-name fragment -> series, longest first so "sharp_cea_720s_nrt" wins over "sharp_720s"
_SERIES_BY_NAME: tuple[tuple[str, str], ...] = (
    ("sharp_cea_720s_nrt", "hmi.sharp_cea_720s_nrt"),
    ("sharp_720s_nrt", SERIES_NRT),
    ("mharp_720s_nrt", SERIES_NRT),  # the NRT patches; same HARP numbers as the NRT SHARPs
    ("sharp_cea_720s", "hmi.sharp_cea_720s"),
    ("sharp_720s", SERIES_DEFINITIVE),
    ("mharp_720s", SERIES_DEFINITIVE),
    ("jsoc_nrt_", SERIES_NRT),  # ../shared/data/sharp_nrt: saved hmi.sharp_720s_nrt replies
)


def infer_series(path: str | Path, series: str | None = None) -> str:
    """The JSOC series of a keyword file: ``series`` if given, else from the file name.

    Raises `ParseError` for a series not in `flare_core.schema.SHARP_SERIES`, or when the
    name does not say and no ``series`` is given.
    """
    if series is not None:
        if series not in SHARP_SERIES:
            raise ParseError(f"{path}: unknown series {series!r}; one of {list(SHARP_SERIES)}")
        return series
    name = Path(path).name.lower()
    for fragment, s in _SERIES_BY_NAME:
        if fragment in name:
            return s
    raise ParseError(f"{path}: cannot tell the JSOC series from the file name; pass "
                     f"series= (CLI: --series), one of {list(SHARP_SERIES)}")


def source_of_series(series: str) -> str:
    """Value of the ``source`` column for JSOC records: ``jsoc_nrt`` or ``jsoc``."""
    return "jsoc_nrt" if is_nrt_series(series) else "jsoc"


def parse_t_rec_expr(expr: pl.Expr) -> pl.Expr:
    """JSOC ``T_REC`` strings (``2021.05.03_01:24:00_TAI``) -> ``Datetime("us", "UTC")``.

    Vectorised; malformed strings give null. TAI has no leap seconds, so a TAI second 60
    (``..._23:59:60_TAI``) is malformed (polars alone would roll it to the next minute).
    """
    s = expr.str.strip_chars()
    naive = s.str.strptime(pl.Datetime("us"), T_REC_FORMAT, strict=False, exact=True)
    return (pl.when(s.str.contains(r":60(?:\.\d*)?_TAI$")).then(None)
            .otherwise(tai_to_utc_expr(naive)))


def _quality_expr(q: pl.Expr) -> pl.Expr:
    """JSOC QUALITY (hex ``0x00000000`` or decimal) -> Int64."""
    q = q.str.strip_chars()
    return (pl.when(q.str.starts_with("0x") | q.str.starts_with("0X"))
            .then(q.str.slice(2).str.to_integer(base=16, strict=False))
            .otherwise(q.cast(pl.Int64, strict=False)))


def _to_float(df: pl.DataFrame, col: str, out: str) -> pl.Expr:
    if df.schema[col] == pl.Utf8:
        return pl.col(col).str.strip_chars().cast(pl.Float64, strict=False).alias(out)
    return pl.col(col).cast(pl.Float64).alias(out)


def parse_rs_list(raw: pl.DataFrame, *, series: str, source: str | None = None,
                  drops: P.Drops, drop_bad_quality: bool = False, where: str | Path = "JSOC",
                  strict: bool = False, line_offset: int = 1) -> pl.DataFrame:
    """JSOC keyword values (columns named as JSOC names them) -> canonical SHARP frame.

    Parameters
    ----------
    raw
        One row per record. ``T_REC`` and ``HARPNUM`` are required; any of the SHARP
        keywords (``USFLUX`` ...), ``NOAA_ARS``, ``QUALITY``, ``LAT_FWT``, ``LON_FWT``,
        ``CRVAL1``, ``CRLN_OBS`` and ``first_seen_utc`` may follow; other columns are
        ignored. Values are strings as JSOC sends them, or already numeric (a typed CSV
        read). ``T_REC`` is TAI.
    series
        JSOC series of the records (`flare_core.schema.SHARP_SERIES`): the ``series``
        column. HARP numbers are only unique within a series.
    source
        ``source`` column; default ``jsoc_nrt`` for NRT series, else ``jsoc``.
    drops
        Receives the counts: unparseable T_REC/HARPNUM, non-numeric, non-finite and
        implausible keywords, non-UTF-8 values (records dropped); NaN keyword values and
        ``NOAA_ARS`` ``MISSING`` (-> null, kept); QUALITY != 0 (kept unless
        ``drop_bad_quality``); duplicates.
    drop_bad_quality
        Drop records with QUALITY != 0 instead of keeping them.
    where
        The file or query named in counts and errors.
    strict
        Raise `ParseError` (naming ``where``, the line and the value) on the first bad
        record instead of dropping it.
    line_offset
        Added to the 0-based record index to give the line of an error (1 for a JSON
        reply: record number; 2 for a CSV with one header line).

    Returns
    -------
    polars.DataFrame
        `flare_core.schema.SHARP_SCHEMA`, sorted by (harpnum, t_rec); ``available_at``
        from ``first_seen_utc`` when present, else null (unknown).
    """
    if series not in SHARP_SERIES:
        raise ParseError(f"{where}: unknown series {series!r}; one of {list(SHARP_SERIES)}")
    P.require_columns(raw, ["T_REC", "HARPNUM"], where)
    present = {k: v for k, v in JSOC_META_KEYS.items() if k in raw.columns}
    kw = {c: c.lower() for c in raw.columns if c.lower() in SHARP_KEYWORDS}
    floats = {**{k: v for k, v in present.items() if k in _META_FLOATS}, **kw}
    df = raw if P.ROW in raw.columns else raw.with_row_index(P.ROW)
    strings = [c for c in raw.columns if raw.schema[c] == pl.Utf8]
    opts = dict(path=where, drops=drops, strict=strict, line_offset=line_offset)
    for c in strings:
        df = P.drop_bad(df, pl.col(c).str.contains(_BAD_UTF8, literal=True).fill_null(False),
                        reason=f"non-UTF-8 bytes in {c}", raw_col=c, **opts)
    harp = (pl.col("HARPNUM").str.strip_chars().cast(pl.Int64, strict=False)
            if raw.schema["HARPNUM"] == pl.Utf8 else pl.col("HARPNUM").cast(pl.Int64))
    noaa = pl.col("NOAA_ARS").str.strip_chars() if "NOAA_ARS" in raw.columns else None
    df = df.with_columns(
        harp.alias("harpnum"),
        parse_t_rec_expr(pl.col("T_REC")).alias("t_rec"),
        (_quality_expr(pl.col("QUALITY").cast(pl.Utf8)) if "QUALITY" in raw.columns
         else pl.lit(None, dtype=pl.Int64)).alias("quality"),
        *[_to_float(raw, c, v) for c, v in floats.items()],
        (pl.when(noaa == _MISSING_NOAA).then(None).otherwise(P.normalise_noaa_list(noaa))
         if noaa is not None else pl.lit(None, dtype=pl.Utf8)).alias("noaa_ars"),
        (pl.col(FIRST_SEEN).str.strip_chars().str.strptime(
            pl.Datetime("us"), _FIRST_SEEN_FORMAT, strict=False).dt.replace_time_zone("UTC")
         if FIRST_SEEN in raw.columns else pl.lit(None, dtype=UTC_DATETIME))
        .alias("available_at"),
        pl.lit(series).alias("series"),
        pl.lit(source or source_of_series(series)).alias("source"),
    )
    df = P.drop_bad(df, pl.col("harpnum").is_null() | (pl.col("harpnum") <= 0),
                    reason="unparseable HARPNUM", raw_col="HARPNUM", **opts)
    df = P.drop_bad(df, pl.col("t_rec").is_null(), reason="unparseable T_REC",
                    raw_col="T_REC", **opts)
    if FIRST_SEEN in raw.columns:
        df = P.drop_bad(df, pl.col("available_at").is_null(), reason=f"malformed {FIRST_SEEN}",
                        raw_col=FIRST_SEEN, **opts)
    for c, v in floats.items():
        if raw.schema[c] != pl.Utf8:
            continue
        s = pl.col(c).str.strip_chars()
        bad = pl.col(v).is_null() & ~(s.is_null() | s.str.to_lowercase().is_in(
            ["", "nan", "missing"]))
        df = P.drop_bad(df, bad, reason=f"non-numeric {c}", raw_col=c, **opts)
    if noaa is not None:
        drops.note("NOAA_ARS MISSING (no NOAA region) -> null",
                   df.select((pl.col("NOAA_ARS").str.strip_chars() == _MISSING_NOAA).sum()).item())
    n_badq = df.select((pl.col("quality").fill_null(0) != 0).sum()).item()
    if drop_bad_quality:
        df = P.drop_bad(df, pl.col("quality").fill_null(0) != 0, reason="QUALITY != 0",
                        raw_col="QUALITY", **opts)
    else:
        drops.note("QUALITY != 0 (kept)", n_badq)
    return conform_sharp(P.clean_sharp(df, path=where, drops=drops, strict=strict,
                                       line_offset=line_offset))


# --------------------------------------------------------------------------- files


def _csv_header(path: Path) -> list[str]:
    head = P.first_lines(path, 1)
    return [c.strip() for c in head[0].split(",")] if head else []


def _typed_schema(cols: list[str]) -> dict[str, pl.DataType]:
    """Column dtypes of the fast read: keywords and float metadata Float64, HARPNUM Int64,
    everything else (T_REC, NOAA_ARS, QUALITY, first_seen_utc) a string."""
    out: dict[str, pl.DataType] = {}
    for c in cols:
        if c.lower() in SHARP_KEYWORDS or c in _META_FLOATS:
            out[c] = pl.Float64
        elif c == "HARPNUM":
            out[c] = pl.Int64
        else:
            out[c] = pl.Utf8
    return out


def read_jsoc_keywords_csv(path: str | Path, *, series: str | None = None,
                           strict: bool = False, drops: P.Drops | None = None
                           ) -> pl.DataFrame:
    """Read a JSOC keyword export CSV (format ``jsoc_keywords_csv``) into the SHARP frame.

    Parameters
    ----------
    path
        CSV (plain or gzip) with a header of JSOC names: ``T_REC`` (TAI), ``HARPNUM`` and
        any keywords, e.g. ``T_REC,HARPNUM,USFLUX,TOTUSJH,TOTUSJZ,TOTPOT,ABSNJZH,SAVNCPP``;
        an optional ``first_seen_utc`` column becomes ``available_at``.
    series
        The JSOC series; default from the file name (`infer_series`).
    strict
        Raise `ParseError` on the first bad record (file, line, keyword, value).
    drops
        Counts to add to (a fresh `Drops` when None; it is logged by the caller).

    Returns
    -------
    polars.DataFrame
        `flare_core.schema.SHARP_SCHEMA`, as `parse_rs_list`.
    """
    path = Path(path)
    series = infer_series(path, series)
    drops = drops if drops is not None else P.Drops()
    cols = _csv_header(path)
    try:
        raw = pl.read_csv(path.read_bytes(), schema_overrides=_typed_schema(cols),
                          infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as e:
        # a non-numeric value somewhere: read as strings so the bad line can be named
        logger.info("%s: typed read failed (%s); reading as strings", path,
                    str(e).splitlines()[0])
        raw = P.read_text_table(path, drops=drops, strict=strict)
    except pl.exceptions.NoDataError as e:
        raise ParseError(f"{path}: no data: {e}") from e
    return parse_rs_list(raw, series=series, drops=drops, where=path, strict=strict,
                         line_offset=2)


def read_rs_list_reply(path: str | Path) -> pl.DataFrame:
    """The records of a saved ``jsoc_info?op=rs_list`` reply, as strings, one column per
    keyword (JSOC names). Raises `ParseError` naming the file for an empty or truncated
    body, invalid JSON, ``status`` != 0 (with JSOC's ``error`` text) or keywords whose
    value lists disagree with each other or with ``count``."""
    path = Path(path)
    try:
        body = path.read_bytes()
    except OSError as e:
        raise ParseError(f"{path}: cannot read: {e}") from e
    if not body.strip():
        raise ParseError(f"{path}: empty JSOC reply (0 bytes of JSON)")
    try:
        reply = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParseError(f"{path}: truncated or invalid JSOC reply ({len(body)} bytes, "
                         f"starts {body[:40]!r}): {e}") from e
    if not isinstance(reply, dict):
        raise ParseError(f"{path}: JSOC reply is not a JSON object")
    status = reply.get("status")
    if status != 0:
        raise ParseError(f"{path}: JSOC answered status {status!r}: "
                         f"{reply.get('error', '')!r}")
    keywords = reply.get("keywords")
    if not isinstance(keywords, list) or not all(
            isinstance(k, dict) and "name" in k and isinstance(k.get("values"), list)
            for k in keywords):
        raise ParseError(f"{path}: JSOC reply has no 'keywords' list of {{name, values}}")
    lengths = {k["name"]: len(k["values"]) for k in keywords}
    count = reply.get("count")
    if len(set(lengths.values())) > 1 or (count is not None and lengths
                                          and count not in set(lengths.values())):
        raise ParseError(f"{path}: truncated JSOC reply: count {count}, values per keyword "
                         f"{lengths}")
    return pl.DataFrame({k["name"]: [None if v is None else str(v) for v in k["values"]]
                         for k in keywords},
                        schema={k["name"]: pl.Utf8 for k in keywords})


def is_region_listing(columns: list[str]) -> bool:
    """A listing (T_REC, HARPNUM, NOAA_ARS, no SHARP keyword), not keyword records."""
    return ({"T_REC", "HARPNUM", "NOAA_ARS"} <= set(columns)
            and not any(c.lower() in SHARP_KEYWORDS for c in columns))


def read_rs_list_json(path: str | Path, *, series: str | None = None, strict: bool = False,
                      drops: P.Drops | None = None) -> pl.DataFrame:
    """Read a saved ``rs_list`` reply of SHARP records (format ``jsoc_rs_list_json``).

    ``series`` defaults to the file name (`infer_series`); errors as `read_rs_list_reply`;
    a region listing is refused with a pointer to `read_region_listing`. Returns the SHARP
    frame of `parse_rs_list` (error lines are record numbers, 1-based).
    """
    path = Path(path)
    raw = read_rs_list_reply(path)
    if is_region_listing(raw.columns):
        raise ParseError(f"{path}: a region listing (T_REC, HARPNUM, NOAA_ARS) holds no SHARP "
                         "keywords; read it as format 'jsoc_region_listing_json' (HARP map)")
    drops = drops if drops is not None else P.Drops()
    return parse_rs_list(raw, series=infer_series(path, series), drops=drops, where=path,
                         strict=strict, line_offset=1)


def read_region_listing(path: str | Path, *, series: str | None = None, strict: bool = False,
                        drops: P.Drops | None = None) -> pl.DataFrame:
    """Read a region listing (JSON reply or the CSV with ``first_seen_utc``) as a fragment of
    the HARP <-> NOAA map of its series.

    Returns
    -------
    polars.DataFrame
        ``harpnum`` (Int64), ``noaa_ar`` (Int64), ``series`` (Utf8): one row per distinct
        (HARP, NOAA region) pair, sorted. Rows whose ``NOAA_ARS`` is ``MISSING`` (no NOAA
        region) add no pair (counted as a note); a malformed HARPNUM or NOAA number is
        dropped (counted, or `ParseError` when ``strict``).
    """
    path = Path(path)
    series = infer_series(path, series)
    drops = drops if drops is not None else P.Drops()
    is_json = path.suffix.lower() == ".json" or P.first_bytes(path, 1) == b"{"
    raw = read_rs_list_reply(path) if is_json else P.read_text_table(path, drops=drops,
                                                                     strict=strict)
    offset = 1 if is_json else 2
    P.require_columns(raw, ["HARPNUM", "NOAA_ARS"], path)
    df = raw if P.ROW in raw.columns else raw.with_row_index(P.ROW)
    s = pl.col("NOAA_ARS").str.strip_chars()
    missing = s.is_null() | (s == "") | (s == _MISSING_NOAA)
    drops.note("NOAA_ARS MISSING (no NOAA region)", df.select(missing.sum()).item())
    df = df.filter(~missing).with_columns(
        pl.col("HARPNUM").str.strip_chars().cast(pl.Int64, strict=False).alias("harpnum"),
        s.str.split(",").alias("_ars"))
    opts = dict(path=path, drops=drops, strict=strict, line_offset=offset)
    df = P.drop_bad(df, pl.col("harpnum").is_null() | (pl.col("harpnum") <= 0),
                    reason="unparseable HARPNUM", raw_col="HARPNUM", **opts)
    ars = pl.col("_ars").list.eval(pl.element().str.strip_chars().cast(pl.Int64, strict=False))
    df = df.with_columns(ars.alias("_ars"))
    bad = pl.col("_ars").list.eval(pl.element().is_null() | (pl.element() <= 0)).list.any()
    df = P.drop_bad(df, bad, reason="malformed NOAA_ARS", raw_col="NOAA_ARS", **opts)
    out = (df.select("harpnum", pl.col("_ars").alias("noaa_ar")).explode("noaa_ar")
           .unique().sort(["harpnum", "noaa_ar"]))
    return out.with_columns(pl.lit(series).alias("series"))
