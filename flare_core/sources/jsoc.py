"""SHARP keywords from JSOC with `drms`: ``hmi.sharp_cea_720s`` and its NRT twin.

`fetch_sharp` asks JSOC's ``jsoc_info`` CGI (``op=series_struct`` once per series, then
``op=rs_list`` per chunk) for the keywords of the SHARP records with ``start <= T_REC <=
end`` and returns the canonical SHARP frame.

* **Chunking.** A query covers at most ``chunk_h`` hours of T_REC and ``harps_per_chunk``
  HARP numbers, which keeps each answer well under JSOC's record limits (a day of all
  HARPs at 12 min is ~10^4 records).
* **Retries.** HTTP 5xx, connection errors, time-outs and truncated/undecodable JSON are
  transient: retried ``retries`` times with back-off ``backoff_s`` (seconds, doubled each
  time), then `SourceUnavailable`. A JSOC error status (bad query, unknown series) is
  `SourceError` and is not retried.
* **Empty answers.** A chunk with no records is normal (no region on disk, or a gap); it
  is logged at INFO. An answer without the requested keywords is a `SourceError`.
* **QUALITY.** JSOC writes QUALITY as a hex string (``0x00000000``); it becomes the Int64
  ``quality`` column. Records whose QUALITY is non-zero are kept by default (the bits flag
  degraded, not unusable, data; e.g. eclipse or calibration modes) and counted in the log;
  ``JsocConfig(drop_bad_quality=True)`` drops them instead (counted). Keyword values of
  ``nan``/``NaN``/empty become nulls (counted); records with an unparseable T_REC or
  HARPNUM are dropped (counted) -- a malformed record never passes silently.
* **Time.** T_REC strings ``YYYY.MM.DD_hh:mm:ss_TAI`` become UTC (`flare_core.timeutil`);
  the ``start``/``end`` arguments are UTC and are converted to TAI for the query.

The server is JSOC unless ``JsocConfig.url`` (``FLAREFLOW_JSOC_URL``) names another
``cgi-bin/ajax/`` base: tests point it at a local replay server.

Example
-------
>>> df = fetch_sharp(datetime(2014, 2, 4, tzinfo=UTC), datetime(2014, 2, 5, tzinfo=UTC),
...                  harpnums=[3686])                                  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from ..config import check_positive
from ..errors import ConfigError, SourceError, SourceUnavailable
from ..schema import SHARP_KEYWORDS, conform_sharp, empty_sharp_frame
from ..timeutil import format_t_rec, to_utc
from . import _parse as P

__all__ = ["JsocConfig", "JsocClient", "fetch_sharp", "SHARP_SERIES", "SHARP_NRT_SERIES",
           "META_KEYS"]

logger = logging.getLogger(__name__)

SHARP_SERIES = "hmi.sharp_cea_720s"
SHARP_NRT_SERIES = "hmi.sharp_cea_720s_nrt"
#: JSOC keyword -> canonical column, for the non-keyword metadata
META_KEYS: dict[str, str] = {
    "HARPNUM": "harpnum", "T_REC": "t_rec", "NOAA_ARS": "noaa_ars", "QUALITY": "quality",
    "LAT_FWT": "lat_fwt", "LON_FWT": "lon_fwt", "CRVAL1": "crval1", "CRLN_OBS": "crln_obs",
}
_TIMEOUT_LOCK = threading.Lock()


@dataclass(frozen=True)
class JsocConfig:
    """How to query JSOC. Times in hours/seconds as named.

    Parameters
    ----------
    nrt
        Use ``hmi.sharp_cea_720s_nrt`` (near-real-time, available within ~hours, values
        revised later) instead of the definitive series.
    url
        Base URL of the ``cgi-bin/ajax/`` CGIs; None = the public JSOC server.
    email
        Registered JSOC e-mail (only needed for exports, unused by keyword queries).
    chunk_h
        Largest T_REC span of one query, hours.
    harps_per_chunk
        Largest number of HARP numbers in one query.
    retries, backoff_s
        Transient-error retries per query and the first back-off (doubled each time).
    timeout_s
        Socket time-out of one HTTP request, seconds.
    drop_bad_quality
        Drop records with QUALITY != 0 (default: keep them, with ``quality`` set).
    """

    nrt: bool = False
    url: str | None = None
    email: str | None = None
    chunk_h: float = 24.0
    harps_per_chunk: int = 50
    retries: int = 3
    backoff_s: float = 2.0
    timeout_s: float = 60.0
    drop_bad_quality: bool = False

    def __post_init__(self) -> None:
        check_positive("chunk_h", self.chunk_h)
        check_positive("harps_per_chunk", self.harps_per_chunk)
        check_positive("timeout_s", self.timeout_s)
        if not (isinstance(self.retries, int) and self.retries >= 0):
            raise ConfigError(f"retries must be an integer >= 0, got {self.retries!r}")
        if not (isinstance(self.backoff_s, int | float) and self.backoff_s >= 0):
            raise ConfigError(f"backoff_s must be >= 0, got {self.backoff_s!r}")
        if self.url is not None and not str(self.url).startswith(("http://", "https://")):
            raise ConfigError(f"url must be an http(s) URL, got {self.url!r}")

    @property
    def series(self) -> str:
        return SHARP_NRT_SERIES if self.nrt else SHARP_SERIES

    @property
    def source(self) -> str:
        """Value of the ``source`` column: ``jsoc`` or ``jsoc_nrt``."""
        return "jsoc_nrt" if self.nrt else "jsoc"


class JsocClient:
    """A thin layer over `drms.Client` that adds chunking, retries and parsing.

    Parameters
    ----------
    config
        `JsocConfig`; its ``url`` selects the server.
    """

    def __init__(self, config: JsocConfig | None = None) -> None:
        import drms

        self.config = config or JsocConfig()
        if self.config.url:
            base = self.config.url.rstrip("/") + "/"
            server = drms.ServerConfig(
                name="flareflow-jsoc", cgi_baseurl=base, cgi_jsoc_info="jsoc_info",
                cgi_jsoc_fetch="jsoc_fetch", cgi_show_series="show_series",
                encoding="utf-8")
            self._drms = drms.Client(server=server, email=self.config.email)
        else:
            self._drms = drms.Client(email=self.config.email)
        self._keys: list[str] | None = None

    # ------------------------------------------------------------------ transport

    def _call(self, what: str, fn, *args, **kwargs):
        """Run one drms call with the socket time-out and transient-error retries."""
        import drms

        cfg = self.config
        delay = cfg.backoff_s
        for attempt in range(cfg.retries + 1):
            try:
                with _TIMEOUT_LOCK:  # drms reads socket.getdefaulttimeout() per request
                    old = socket.getdefaulttimeout()
                    socket.setdefaulttimeout(cfg.timeout_s)
                    try:
                        return fn(*args, **kwargs)
                    finally:
                        socket.setdefaulttimeout(old)
            except drms.DrmsQueryError as e:
                raise SourceError(f"JSOC refused {what}: {e}") from e
            except urllib.error.HTTPError as e:
                if e.code < 500:
                    raise SourceError(f"JSOC {what}: HTTP {e.code} {e.reason}") from e
                err: Exception = e
            except (urllib.error.URLError, TimeoutError, ConnectionError,
                    http.client.HTTPException, json.JSONDecodeError, UnicodeDecodeError) as e:
                err = e
            if attempt < cfg.retries:
                logger.warning("JSOC %s failed (%s: %s); retry %d/%d in %.1f s", what,
                               type(err).__name__, err, attempt + 1, cfg.retries, delay)
                time.sleep(delay)
                delay *= 2
        raise SourceUnavailable(
            f"JSOC {what} failed after {cfg.retries + 1} attempts: {type(err).__name__}: {err}"
        ) from err

    def series_keywords(self) -> list[str]:
        """Names of the series' keywords (``op=series_struct``, cached)."""
        if self._keys is None:
            info = self._call(f"series_struct {self.config.series}", self._drms.info,
                              self.config.series)
            self._keys = list(info.keywords.index)
        return self._keys

    def query_keys(self) -> list[str]:
        """JSOC keywords requested: metadata plus every SHARP keyword the series has."""
        have = set(self.series_keywords())
        missing = [k for k in ("HARPNUM", "T_REC") if k not in have]
        if missing:
            raise SourceError(f"series {self.config.series} lacks prime keys {missing}")
        wanted = [*META_KEYS, *(k.upper() for k in SHARP_KEYWORDS)]
        return [k for k in wanted if k in have]

    # ------------------------------------------------------------------ queries

    def record_set(self, start: datetime, end: datetime,
                   harpnums: Sequence[int] | None = None) -> str:
        """The DRMS record-set string, e.g. ``hmi.sharp_cea_720s[377,378][t0-t1]`` (TAI)."""
        harps = ",".join(str(int(h)) for h in harpnums) if harpnums else ""
        return f"{self.config.series}[{harps}][{format_t_rec(start)}-{format_t_rec(end)}]"

    def chunks(self, start: datetime, end: datetime,
               harpnums: Sequence[int] | None = None) -> Iterator[str]:
        """Record-set strings covering [start, end] in ``chunk_h`` x ``harps_per_chunk``."""
        step = timedelta(hours=self.config.chunk_h)
        groups: list[list[int] | None] = [None]
        if harpnums:
            hs = sorted({int(h) for h in harpnums})
            n = self.config.harps_per_chunk
            groups = [hs[i:i + n] for i in range(0, len(hs), n)]
        t = start
        while t <= end:
            t_next = min(t + step, end)
            # consecutive chunks must not overlap: stop 1 s before the next chunk starts
            t_stop = t_next if t_next == end else t_next - timedelta(seconds=1)
            for g in groups:
                yield self.record_set(t, t_stop, g)
            if t_next == end:
                break
            t = t_next

    def fetch_raw(self, ds: str) -> pl.DataFrame:
        """One ``rs_list`` query: a frame of strings, one column per keyword."""
        keys = self.query_keys()
        pdf = self._call(f"rs_list {ds}", self._drms.query, ds, key=keys,
                         convert_numeric=False)
        if len(pdf) == 0:
            logger.info("JSOC %s: no records", ds)
            return pl.DataFrame(schema={k: pl.Utf8 for k in keys})
        missing = [k for k in keys if k not in pdf.columns]
        if missing:
            raise SourceError(f"JSOC answer for {ds} lacks keywords {missing}")
        return pl.DataFrame({k: [None if v is None else str(v) for v in pdf[k].tolist()]
                             for k in keys}, schema={k: pl.Utf8 for k in keys})

    def fetch(self, start: datetime, end: datetime,
              harpnums: Sequence[int] | None = None) -> pl.DataFrame:
        """SHARP records with ``start <= t_rec <= end`` (UTC), canonical frame."""
        start, end = to_utc(start), to_utc(end)
        if end < start:
            raise ConfigError(f"end {end.isoformat()} is before start {start.isoformat()}")
        frames = [self.fetch_raw(ds) for ds in self.chunks(start, end, harpnums)]
        raw = pl.concat(frames) if frames else pl.DataFrame()
        if raw.height == 0:
            logger.warning("JSOC %s: no records for %s .. %s UTC%s", self.config.series,
                           start.isoformat(), end.isoformat(),
                           f" HARPs {list(harpnums)}" if harpnums else "")
            return empty_sharp_frame()
        drops = P.Drops()
        df = parse_rs_list(raw, source=self.config.source, drops=drops,
                           drop_bad_quality=self.config.drop_bad_quality,
                           where=f"JSOC {self.config.series}")
        drops.log(f"JSOC {self.config.series}")
        return df


def parse_rs_list(raw: pl.DataFrame, *, source: str, drops: P.Drops,
                  drop_bad_quality: bool = False, where: str = "JSOC") -> pl.DataFrame:
    """Strings from ``rs_list`` (JSOC keyword names) -> canonical SHARP frame."""
    present = {k: v for k, v in META_KEYS.items() if k in raw.columns}
    kw = {c: c.lower() for c in raw.columns if c.lower() in SHARP_KEYWORDS}
    floats = {**{k: v for k, v in present.items()
                 if k in ("LAT_FWT", "LON_FWT", "CRVAL1", "CRLN_OBS")}, **kw}
    s = {c: pl.col(c).str.strip_chars() for c in raw.columns}
    q = s["QUALITY"] if "QUALITY" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    quality = (pl.when(q.str.starts_with("0x") | q.str.starts_with("0X"))
               .then(q.str.slice(2).str.to_integer(base=16, strict=False))
               .otherwise(q.cast(pl.Int64, strict=False)))
    df = raw.with_row_index(P.ROW).with_columns(
        s["HARPNUM"].cast(pl.Int64, strict=False).alias("harpnum"),
        P.tai_to_utc_expr(s["T_REC"].str.strptime(pl.Datetime("us"), "%Y.%m.%d_%H:%M:%S_TAI",
                                                  strict=False)).alias("t_rec"),
        quality.alias("quality"),
        *[s[c].cast(pl.Float64, strict=False).alias(v) for c, v in floats.items()],
        (P.normalise_noaa_list(s["NOAA_ARS"]) if "NOAA_ARS" in raw.columns
         else pl.lit(None, dtype=pl.Utf8)).alias("noaa_ars"),
        pl.lit(source).alias("source"),
    )
    path = where  # used in messages only
    df = P.drop_bad(df, pl.col("harpnum").is_null(), reason="unparseable HARPNUM",
                    raw_col="HARPNUM", path=path, drops=drops, strict=False, line_offset=1)
    df = P.drop_bad(df, pl.col("t_rec").is_null(), reason="unparseable T_REC",
                    raw_col="T_REC", path=path, drops=drops, strict=False, line_offset=1)
    for c, v in floats.items():
        bad = pl.col(v).is_null() & ~(s[c].is_null() | s[c].str.to_lowercase().is_in(
            ["", "nan", "missing"]))
        df = P.drop_bad(df, bad, reason=f"non-numeric {c}", raw_col=c, path=path,
                        drops=drops, strict=False, line_offset=1)
    n_badq = df.select((pl.col("quality").fill_null(0) != 0).sum()).item()
    if drop_bad_quality:
        df = P.drop_bad(df, pl.col("quality").fill_null(0) != 0, reason="QUALITY != 0",
                        raw_col="QUALITY", path=path, drops=drops, strict=False,
                        line_offset=1)
    else:
        drops.note("QUALITY != 0 (kept)", n_badq)
    return conform_sharp(P.clean_sharp(df, path=path, drops=drops))


def fetch_sharp(start: datetime | str, end: datetime | str, *,
                harpnums: Sequence[int] | None = None,
                config: JsocConfig | None = None) -> pl.DataFrame:
    """Fetch SHARP keywords for ``start <= T_REC <= end`` (UTC) from JSOC.

    Parameters
    ----------
    start, end
        UTC bounds, both inclusive (datetimes or ISO strings; naive = UTC).
    harpnums
        Restrict to these HARP numbers (default: every HARP).
    config
        `JsocConfig` (series, server, chunking, retries, QUALITY policy).

    Returns
    -------
    polars.DataFrame
        Canonical SHARP frame, sorted by (harpnum, t_rec), ``source`` = ``"jsoc"`` or
        ``"jsoc_nrt"``; zero rows (and a WARNING) when JSOC has no records.

    Raises
    ------
    SourceUnavailable
        JSOC unreachable or failing transiently after all retries (a caller may retry).
    SourceError
        JSOC answered with an error status or an unusable payload.
    """
    return JsocClient(config).fetch(to_utc(start), to_utc(end), harpnums)
