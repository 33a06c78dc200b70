"""GOES flare events from the Heliophysics Events Knowledgebase (HEK) via sunpy.

`fetch_flares` asks HEK (``sunpy.net.hek.HEKClient``; paging stays inside sunpy) for
``FL`` events observed by GOES with ``start <= event_starttime`` and
``event_endtime <= end``-ish (HEK's own overlap rule) and returns the canonical flare
frame (UTC times, class -> W m^-2, ``noaa_ar`` 0 -> null, ``source`` = ``"hek"``).
Events whose class is empty or unknown, or whose times do not parse, are dropped and
counted (WARNING).

Failures: one search is one attempt (`_search_once`, which sunpy pages through). Connection
errors, time-outs, HTTP 5xx, 408 and 429 and undecodable answers are `SourceUnavailable`;
another HTTP 4xx (a request HEK refuses, which would fail the same way again) is
`SourceError`. Retrying is one layer above, as for JSOC: `flare_core.sources.retry.retry_call`
with ``HekConfig.retry_policy`` (the CLI path; ``retries=0`` is one attempt), or Prefect's
task retries (`tasks.ingest`, which pass ``retries=0``).

``HekConfig.url`` (``FLAREFLOW_HEK_URL``) points the client at another server (tests use a
local replay server serving the real NCEI GOES list in HEK's JSON shape).
"""

from __future__ import annotations

import logging
import urllib.error
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from ..config import check_positive
from ..errors import ConfigError, SourceError, SourceUnavailable
from ..schema import conform_flares, empty_flare_frame
from ..timeutil import to_utc
from . import _parse as P
from .retry import NETWORK_RETRY, RetryPolicy, doubling_delays_s, retry_call

__all__ = ["HekConfig", "fetch_flares", "HEK_URL"]

logger = logging.getLogger(__name__)

HEK_URL = "https://www.lmsal.com/hek/her?"


@dataclass(frozen=True)
class HekConfig:
    """HEK server (``url``: None = LMSAL), retries and the first back-off in seconds.

    ``backoff_s=None`` takes `NETWORK_RETRY`'s delays (10 s, 1 min, 5 min); a number is
    doubled at each retry.
    """

    url: str | None = None
    retries: int = 3
    backoff_s: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.retries, int) and self.retries >= 0):
            raise ConfigError(f"retries must be an integer >= 0, got {self.retries!r}")
        if self.backoff_s:
            check_positive("backoff_s", self.backoff_s)

    @property
    def retry_policy(self) -> RetryPolicy:
        """`RetryPolicy` of ``retries`` and ``backoff_s``."""
        if self.backoff_s is None:
            base = NETWORK_RETRY.delays_s
            return RetryPolicy(delays_s=tuple(base[min(i, len(base) - 1)]
                                              for i in range(self.retries)))
        return RetryPolicy(delays_s=doubling_delays_s(self.retries, float(self.backoff_s)))


#: HTTP statuses below 500 that are worth another attempt (time-out, too many requests)
_TRANSIENT_HTTP = frozenset({408, 429})


def _search_once(client, start: datetime, end: datetime):
    """One HEK search (every page of it); failures become flareflow errors."""
    from sunpy.net import attrs as a

    try:
        return client.search(
            a.Time(start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")),
            a.hek.EventType("FL"),
            a.hek.OBS.Observatory == "GOES",
        )
    except urllib.error.HTTPError as e:
        if e.code < 500 and e.code not in _TRANSIENT_HTTP:
            raise SourceError(f"HEK search: HTTP {e.code} {e.reason}") from e
        raise SourceUnavailable(f"HEK search: HTTP {e.code} {e.reason}") from e
    except (OSError, ValueError) as e:  # URLError and time-outs are OSErrors; bad JSON
        raise SourceUnavailable(f"HEK search: {type(e).__name__}: {e}") from e


def _col(table, name: str) -> list:
    if name not in table.colnames:
        return [None] * len(table)
    col = table[name]
    if hasattr(col, "isot"):  # astropy Time (sunpy parses HEK time columns)
        return [str(t) for t in col.isot]
    return [None if v is None or str(v) in ("", "--") else str(v) for v in col.tolist()]


def fetch_flares(start: datetime | str, end: datetime | str, *,
                 config: HekConfig | None = None) -> pl.DataFrame:
    """GOES flares from HEK between ``start`` and ``end`` (UTC).

    Returns
    -------
    polars.DataFrame
        Canonical flare frame sorted by ``peak_time``; zero rows (WARNING) when HEK has none.

    Raises
    ------
    SourceUnavailable
        HEK unreachable or failing transiently in every attempt (``config.retry_policy``).
    SourceError
        HEK refused the request (HTTP 4xx other than 408/429); not retried.
    """
    from sunpy.net.hek import HEKClient

    cfg = config or HekConfig()
    start, end = to_utc(start), to_utc(end)
    client = HEKClient(url=cfg.url) if cfg.url else HEKClient()

    table = retry_call(lambda: _search_once(client, start, end), policy=cfg.retry_policy,
                       what="HEK search")
    if len(table) == 0:
        logger.warning("HEK: no GOES flares for %s .. %s UTC", start.isoformat(),
                       end.isoformat())
        return empty_flare_frame()
    raw = pl.DataFrame({
        "start": _col(table, "event_starttime"), "peak": _col(table, "event_peaktime"),
        "end": _col(table, "event_endtime"), "fl_goescls": _col(table, "fl_goescls"),
        "ar_noaanum": _col(table, "ar_noaanum"),
    }, schema={c: pl.Utf8 for c in ("start", "peak", "end", "fl_goescls", "ar_noaanum")})
    raw = raw.with_row_index(P.ROW)
    drops = P.Drops()
    where = cfg.url or HEK_URL
    fmts = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
    df = raw.with_columns(P.strptime_any("start", fmts).alias("start_time"),
                          P.strptime_any("peak", fmts).alias("peak_time"),
                          P.strptime_any("end", fmts).alias("end_time"))
    for c in ("start_time", "peak_time"):
        df = P.drop_bad(df, pl.col(c).is_null(), reason=f"unparseable {c}", raw_col=None,
                        path=where, drops=drops, strict=False, line_offset=1)
    df = P.parse_classes(df, "fl_goescls", path=where, drops=drops, strict=False,
                         line_offset=1)
    df = P.parse_noaa_ar(df, "ar_noaanum", path=where, drops=drops, strict=False,
                         line_offset=1)
    df = df.with_columns(*[P.utc(pl.col(c)) for c in ("start_time", "peak_time", "end_time")],
                         pl.lit(None, dtype=pl.Int64).alias("harpnum"),
                         pl.lit("hek").alias("source"))
    out = conform_flares(P.dedupe_flares(conform_flares(df), path=where, drops=drops))
    drops.log(f"HEK {where}")
    return out
