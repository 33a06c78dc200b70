"""SHARP keywords from JSOC with `drms`: definitive and near-real-time (NRT) series.

`fetch_sharp` asks JSOC's ``jsoc_info`` CGI (``op=series_struct`` once per series, then
``op=rs_list`` per chunk) for the keywords of the SHARP records with ``start <= T_REC <=
end`` and returns the canonical SHARP frame; `fetch_region_listing` asks for the regions of
the newest NRT record (``hmi.mharp_720s_nrt[][$]``).

* **Series.** ``hmi.sharp_cea_720s`` by default; ``nrt=True`` gives ``hmi.sharp_720s_nrt``
  (the series the operational stream was recorded from, `flare_core.schema.SERIES_NRT`);
  ``cea=True``/``False`` picks the CEA or the CCD twin of either. Every row carries its
  ``series`` (HARP numbers are per series) and ``available_at``: the time of the reply that
  brought it, on the client's clock (``clock``; the replay clock in tests).
* **Chunking.** A query covers at most ``chunk_h`` hours of T_REC and ``harps_per_chunk``
  HARP numbers, which keeps each answer well under JSOC's record limits (a day of all
  HARPs at 12 min is ~10^4 records).
* **Failures.** `JsocClient` makes one attempt per query and classifies what went wrong:
  connection errors, time-outs, HTTP 5xx, an empty or truncated body and JSOC ``status 6``
  (busy/unavailable) or ``status 5`` (its data base unreachable) are `SourceUnavailable`;
  the ``STOP - Use of JSOC from your IP address is overworking our system`` reply is
  `SourceRateLimited`; any other JSOC error status (``status 4`` command failure: bad
  query, unknown series) is `SourceError`. Retrying is one layer above:
  `flare_core.sources.retry.retry_call` with ``JsocConfig.retry_policy`` (the CLI path;
  ``retries=0`` turns it off), or Prefect's task retries (`tasks.ingest`).
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
``cgi-bin/ajax/`` base: tests and the offline demo point it at
`flare_core.sources.jsoc_replay.JsocReplay`.

Example
-------
>>> df = fetch_sharp(datetime(2014, 2, 4, tzinfo=UTC), datetime(2014, 2, 5, tzinfo=UTC),
...                  harpnums=[3686])                                  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import urllib.error
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from ..config import check_positive
from ..errors import ConfigError, SourceError, SourceRateLimited, SourceUnavailable
from ..schema import (
    SERIES_DEFINITIVE,
    SERIES_DEFINITIVE_CEA,
    SERIES_NRT,
    SERIES_NRT_CEA,
    SHARP_KEYWORDS,
    conform_sharp,
    empty_sharp_frame,
)
from ..timeutil import format_t_rec, tai_to_utc_expr, to_utc
from . import _parse as P
from .jsoc_keywords import parse_rs_list
from .retry import NETWORK_RETRY, RetryPolicy, doubling_delays_s, retry_call

__all__ = ["JsocConfig", "JsocClient", "fetch_sharp", "fetch_region_listing", "SHARP_SERIES",
           "SHARP_NRT_SERIES", "LISTING_SERIES", "META_KEYS"]

logger = logging.getLogger(__name__)

#: default series of `JsocConfig` (definitive) and of ``nrt=True``
SHARP_SERIES = SERIES_DEFINITIVE_CEA
SHARP_NRT_SERIES = SERIES_NRT
#: the region listing (HARP patches) of each SHARP series
LISTING_SERIES = {False: "hmi.mharp_720s", True: "hmi.mharp_720s_nrt"}
#: JSOC keyword -> canonical column, for the non-keyword metadata
META_KEYS: dict[str, str] = {
    "HARPNUM": "harpnum", "T_REC": "t_rec", "NOAA_ARS": "noaa_ars", "QUALITY": "quality",
    "LAT_FWT": "lat_fwt", "LON_FWT": "lon_fwt", "CRVAL1": "crval1", "CRLN_OBS": "crln_obs",
}
_TIMEOUT_LOCK = threading.Lock()
_STATUS_RE = re.compile(r"\[status=(\d+)\]\s*$")
#: JSOC status codes of a server that is down or overloaded (retry may help)
_TRANSIENT_STATUS = {5, 6}
_RATE_LIMIT_TEXT = "STOP - Use of JSOC"


@dataclass(frozen=True)
class JsocConfig:
    """How to query JSOC. Times in hours/seconds as named.

    Parameters
    ----------
    nrt
        Use the near-real-time series (``hmi.sharp_720s_nrt``: served ~1.5 h after T_REC,
        values revised later) instead of the definitive one.
    cea
        CEA (``hmi.sharp_cea_720s[_nrt]``) or CCD (``hmi.sharp_720s[_nrt]``) series; None =
        CEA for definitive, CCD for NRT.
    url
        Base URL of the ``cgi-bin/ajax/`` CGIs; None = the public JSOC server.
    email
        Registered JSOC e-mail (only needed for exports, unused by keyword queries).
    chunk_h
        Largest T_REC span of one query, hours.
    harps_per_chunk
        Largest number of HARP numbers in one query.
    retries, backoff_s
        Transient-error retries per query and their delays: `NETWORK_RETRY`'s 10 s, 1 min,
        5 min (``backoff_s=None``) or ``backoff_s`` doubled each time. 0 = one attempt
        (the Prefect tasks, which retry on the decorator).
    rate_limit_delay_s
        Wait after JSOC's rate-limit (STOP) reply instead, seconds.
    timeout_s
        Socket time-out of one HTTP request, seconds.
    drop_bad_quality
        Drop records with QUALITY != 0 (default: keep them, with ``quality`` set).
    """

    nrt: bool = False
    cea: bool | None = None
    url: str | None = None
    email: str | None = None
    chunk_h: float = 24.0
    harps_per_chunk: int = 50
    retries: int = 3
    backoff_s: float | None = None
    rate_limit_delay_s: float = NETWORK_RETRY.rate_limit_delay_s
    timeout_s: float = 60.0
    drop_bad_quality: bool = False

    def __post_init__(self) -> None:
        check_positive("chunk_h", self.chunk_h)
        check_positive("harps_per_chunk", self.harps_per_chunk)
        check_positive("timeout_s", self.timeout_s)
        if not (isinstance(self.retries, int) and self.retries >= 0):
            raise ConfigError(f"retries must be an integer >= 0, got {self.retries!r}")
        if self.backoff_s is not None and not (
                isinstance(self.backoff_s, int | float) and self.backoff_s >= 0):
            raise ConfigError(f"backoff_s must be >= 0, got {self.backoff_s!r}")
        if self.url is not None and not str(self.url).startswith(("http://", "https://")):
            raise ConfigError(f"url must be an http(s) URL, got {self.url!r}")
        self.retry_policy  # noqa: B018 - validates rate_limit_delay_s

    @property
    def series(self) -> str:
        """The SHARP series queried, e.g. ``hmi.sharp_720s_nrt``."""
        cea = (not self.nrt) if self.cea is None else self.cea
        if self.nrt:
            return SERIES_NRT_CEA if cea else SERIES_NRT
        return SERIES_DEFINITIVE_CEA if cea else SERIES_DEFINITIVE

    @property
    def listing_series(self) -> str:
        """The region listing of the series (``hmi.mharp_720s[_nrt]``)."""
        return LISTING_SERIES[self.nrt]

    @property
    def source(self) -> str:
        """Value of the ``source`` column: ``jsoc`` or ``jsoc_nrt``."""
        return "jsoc_nrt" if self.nrt else "jsoc"

    @property
    def retry_policy(self) -> RetryPolicy:
        """The `RetryPolicy` of ``retries``/``backoff_s``/``rate_limit_delay_s``."""
        if self.backoff_s is None:
            base = NETWORK_RETRY.delays_s
            delays = tuple(base[min(i, len(base) - 1)] for i in range(self.retries))
        else:
            delays = doubling_delays_s(self.retries, float(self.backoff_s))
        return RetryPolicy(delays_s=delays, rate_limit_delay_s=self.rate_limit_delay_s)


def _status_error(what: str, e: Exception) -> SourceError | SourceUnavailable:
    """A drms status error as the flareflow exception that says whether to retry."""
    msg = str(e)
    m = _STATUS_RE.search(msg)
    status = int(m.group(1)) if m else None
    if _RATE_LIMIT_TEXT in msg:
        return SourceRateLimited(f"JSOC rate limit on {what}: {msg}")
    if status in _TRANSIENT_STATUS:
        return SourceUnavailable(f"JSOC busy or unavailable on {what} (status {status}): {msg}")
    return SourceError(f"JSOC refused {what}: {msg}")


class JsocClient:
    """A thin layer over `drms.Client` that adds chunking, error classification and parsing.

    Parameters
    ----------
    config
        `JsocConfig`; its ``url`` selects the server, its ``retry_policy`` the retries.
    clock
        Returns the current tz-aware UTC time; stamps ``available_at`` (default: the
        system clock; tests pass the replay server's clock).
    """

    def __init__(self, config: JsocConfig | None = None, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        import drms

        self.config = config or JsocConfig()
        self.clock = clock or (lambda: datetime.now(UTC))
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

    def _attempt(self, what: str, fn, *args, **kwargs):
        """One drms call with the socket time-out; failures become flareflow errors."""
        import drms

        try:
            with _TIMEOUT_LOCK:  # drms reads socket.getdefaulttimeout() per request
                old = socket.getdefaulttimeout()
                socket.setdefaulttimeout(self.config.timeout_s)
                try:
                    return fn(*args, **kwargs)
                finally:
                    socket.setdefaulttimeout(old)
        except drms.DrmsQueryError as e:
            raise _status_error(what, e) from e
        except urllib.error.HTTPError as e:
            if e.code < 500:
                raise SourceError(f"JSOC {what}: HTTP {e.code} {e.reason}") from e
            raise SourceUnavailable(f"JSOC {what}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, TimeoutError, ConnectionError,
                http.client.HTTPException, json.JSONDecodeError, UnicodeDecodeError) as e:
            kind = ("empty or truncated reply" if isinstance(e, json.JSONDecodeError)
                    else type(e).__name__)
            raise SourceUnavailable(f"JSOC {what}: {kind}: {e}") from e

    def _call(self, what: str, fn, *args, **kwargs):
        """`_attempt` under ``config.retry_policy`` (`retry_call`)."""
        return retry_call(lambda: self._attempt(what, fn, *args, **kwargs),
                          policy=self.config.retry_policy, what=f"JSOC {what}")

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

    def fetch_raw(self, ds: str, keys: Sequence[str] | None = None) -> pl.DataFrame:
        """One ``rs_list`` query: a frame of strings, one column per keyword."""
        keys = list(keys) if keys is not None else self.query_keys()
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

    def _stamp(self, df: pl.DataFrame, available_at: datetime) -> pl.DataFrame:
        return conform_sharp(df.with_columns(
            pl.lit(self.config.series).alias("series"),
            pl.lit(to_utc(available_at)).cast(pl.Datetime("us", "UTC")).alias("available_at")))

    def fetch(self, start: datetime, end: datetime,
              harpnums: Sequence[int] | None = None) -> pl.DataFrame:
        """SHARP records with ``start <= t_rec <= end`` (UTC), canonical frame.

        ``series`` is the queried series; ``available_at`` the client's clock when the
        reply of the record's chunk arrived.
        """
        start, end = to_utc(start), to_utc(end)
        if end < start:
            raise ConfigError(f"end {end.isoformat()} is before start {start.isoformat()}")
        frames = []
        for ds in self.chunks(start, end, harpnums):
            raw = self.fetch_raw(ds)
            frames.append(raw.with_columns(pl.lit(self.clock().isoformat()).alias("_reply_at")))
        raw = pl.concat(frames) if frames else pl.DataFrame()
        if raw.height == 0:
            logger.warning("JSOC %s: no records for %s .. %s UTC%s", self.config.series,
                           start.isoformat(), end.isoformat(),
                           f" HARPs {list(harpnums)}" if harpnums else "")
            return empty_sharp_frame()
        drops = P.Drops()
        parts = []
        for (reply_at,), part in raw.group_by("_reply_at", maintain_order=True):
            df = parse_rs_list(part.drop("_reply_at"), series=self.config.series,
                               source=self.config.source, drops=drops,
                               drop_bad_quality=self.config.drop_bad_quality,
                               where=f"JSOC {self.config.series}")
            parts.append(self._stamp(df, datetime.fromisoformat(reply_at)))
        drops.log(f"JSOC {self.config.series}")
        return pl.concat(parts).sort("harpnum", "t_rec")

    def list_regions(self) -> pl.DataFrame:
        """The regions of the newest record of the listing series (``[][$]``).

        Returns
        -------
        polars.DataFrame
            ``series`` (the SHARP series), ``harpnum`` Int64, ``t_rec`` UTC, ``noaa_ars``
            (null when JSOC writes ``MISSING``), ``available_at`` (the reply's time).
        """
        ds = f"{self.config.listing_series}[][$]"
        raw = self.fetch_raw(ds, keys=["T_REC", "HARPNUM", "NOAA_ARS"])
        at = to_utc(self.clock())
        s = {c: pl.col(c).str.strip_chars() for c in raw.columns}
        df = raw.select(
            pl.lit(self.config.series).alias("series"),
            s["HARPNUM"].cast(pl.Int64, strict=False).alias("harpnum"),
            tai_to_utc_expr(s["T_REC"].str.strptime(pl.Datetime("us"),
                                                      "%Y.%m.%d_%H:%M:%S_TAI", strict=False)
                              ).alias("t_rec"),
            P.normalise_noaa_list(s["NOAA_ARS"]).alias("noaa_ars"),
            pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("available_at"),
        )
        bad = df.filter(pl.col("harpnum").is_null() | pl.col("t_rec").is_null()).height
        if bad:
            raise SourceError(f"JSOC {ds}: {bad} rows with unparseable HARPNUM or T_REC")
        return df.sort("harpnum")


def fetch_sharp(start: datetime | str, end: datetime | str, *,
                harpnums: Sequence[int] | None = None,
                config: JsocConfig | None = None,
                clock: Callable[[], datetime] | None = None) -> pl.DataFrame:
    """Fetch SHARP keywords for ``start <= T_REC <= end`` (UTC) from JSOC.

    Parameters
    ----------
    start, end
        UTC bounds, both inclusive (datetimes or ISO strings; naive = UTC).
    harpnums
        Restrict to these HARP numbers (default: every HARP).
    config
        `JsocConfig` (series, server, chunking, retries, QUALITY policy).
    clock
        Stamps ``available_at`` (UTC now by default).

    Returns
    -------
    polars.DataFrame
        Canonical SHARP frame, sorted by (harpnum, t_rec), ``source`` = ``"jsoc"`` or
        ``"jsoc_nrt"``, ``series`` the queried series, ``available_at`` the time of the
        reply; zero rows (and a WARNING) when JSOC has no records.

    Raises
    ------
    SourceUnavailable
        JSOC unreachable or failing transiently after all retries (a caller may retry);
        `SourceRateLimited` when the last failure was JSOC's rate limit.
    SourceError
        JSOC answered with an error status or an unusable payload.
    """
    return JsocClient(config, clock=clock).fetch(to_utc(start), to_utc(end), harpnums)


def fetch_region_listing(*, config: JsocConfig | None = None,
                         clock: Callable[[], datetime] | None = None) -> pl.DataFrame:
    """The regions JSOC lists for its newest record (``hmi.mharp_720s_nrt[][$]`` for NRT).

    See `JsocClient.list_regions` for the columns; raises as `fetch_sharp`.
    """
    return JsocClient(config or JsocConfig(nrt=True), clock=clock).list_regions()
