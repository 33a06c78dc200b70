"""A local replay of JSOC's ``jsoc_info`` CGI: real NRT SHARP replies, as JSOC served them.

`JsocReplay` is a threaded HTTP server on 127.0.0.1 (a free port) that answers what drms
0.9 sends for keyword queries, from files it is given (the shared NRT data or the slice the
project bundles under ``data/sharp_nrt/``):

* ``jsoc_info?op=rs_list&ds=hmi.sharp_720s_nrt[HARPS][TIMES]&key=K1,K2`` -- SHARP records.
  ``HARPS`` is empty (all) or ``h1,h2``; ``TIMES`` is ``t0-t1`` (TAI, both inclusive), one
  T_REC, ``$`` (each region's newest), empty or absent (all).
* ``jsoc_info?op=rs_list&ds=hmi.mharp_720s_nrt[][$]&key=T_REC,HARPNUM,NOAA_ARS`` -- the
  region listing: the regions of the newest NRT record.
* ``jsoc_info?op=series_struct&ds=<series>`` -- the keyword table (rows of the real
  ``hmi.sharp_cea_720s`` table for the keywords the replayed data hold).

**What is served when.** The server runs on a *replay clock*: ``clock`` is None (serve
everything, an archive view), a fixed UTC datetime, or a callable returning one
(`running_clock` starts one that advances with wall time); set ``replay.clock = ...`` at any
time; one request can override it with the HTTP header ``X-Replay-Time: <ISO UTC>``. At
clock time t:

* the listing holds the rows of ``listing_csv`` with ``first_seen_utc <= t`` whose T_REC is
  the newest such T_REC (JSOC's ``[$]``);
* a SHARP record is served once t reaches its *available time*: the measured
  ``first_seen_utc`` where ``first_seen_csv`` has the record, otherwise T_REC (UTC) plus a
  latency drawn, deterministically per (HARPNUM, T_REC, ``seed``), from the measured
  latencies ``first_seen - T_REC`` of ``first_seen_csv`` up to `NORMAL_LATENCY_MAX_MIN`
  (17,254 records of 30 regions, 2021-2023: 90 % of them, median 98 min, p5 74 min, p95
  186 min; the listing's own median is 64 min). Longer latencies in the sample are outages
  and gaps of the polling job, not per-record noise; they are replayed by the outage
  schedule instead: a drawn time inside an outage moves to the outage's end.
  Without ``first_seen_csv`` every record takes `DEFAULT_LATENCY_MIN`.

**Formats**, as the real replies in ``jsoc_fixtures/`` have them: every value a string,
T_REC ``YYYY.MM.DD_HH:MM:SS_TAI``, TOTUSJH/ABSNJZH ``%.3f``, the other SHARP keywords
``%.6e``, missing numbers ``nan``, missing NOAA_ARS ``MISSING``; compact JSON with
``keywords, segments, links, count, runtime, status``.

**Bad days.** The real error replies (`ERROR_REPLIES`, byte for byte as saved from JSOC)
are served on a schedule and on request:

* ``outages``: ``(start, end, fault)`` UTC clock intervals during which every request gets
  ``fault``; default `REAL_OUTAGES` (2022-09-07 20:06 .. 2022-09-12 17:54 UTC, JSOC answered
  ``status 6``);
* ``replay.inject(fault, n=1)`` queues the next n replies (also ``replay.faults``, a list);
* ``replay.fail_harp(harpnum, fault)`` answers every rs_list naming that HARP with ``fault``.

Fault names: ``empty_body``, ``truncated_body`` (the real 1-byte body), ``status_4``
(drms_parser command failure), ``status_5`` (show_series data-base failure), ``status_6``
(busy/unavailable), ``rate_limit`` (the STOP reply), and three not recorded byte for byte:
``http_500``, ``timeout`` (answers after ``slow_s``), ``no_records`` (a valid empty reply).
``replay.requests`` logs every query: its parameters plus ``clock`` (the replay time it was
answered at, ISO; empty without a clock) and ``fault`` (the fault served, or empty).

Example
-------
>>> with JsocReplay("data/sharp_nrt/records.csv.gz", clock=datetime(2023, 12, 10, 12,
...                 tzinfo=UTC)) as url:                                  # doctest: +SKIP
...     df = fetch_sharp(t0, t1, config=JsocConfig(nrt=True, url=url))

Run ``python -m flare_core.sources.jsoc_replay RECORDS --listing ... --at ISO`` to serve
files for the offline demo (``FLAREFLOW_JSOC_URL`` = the printed URL).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Union
from urllib.parse import parse_qs, urlparse

import numpy as np
import polars as pl

from ..errors import ConfigError
from ..schema import SERIES_NRT
from ..timeutil import tai_to_utc_expr, to_utc

__all__ = ["JsocReplay", "ERROR_REPLIES", "REAL_OUTAGES", "FAULTS", "running_clock",
           "DEFAULT_LATENCY_MIN", "NORMAL_LATENCY_MAX_MIN", "LISTING_SERIES_NRT"]

LISTING_SERIES_NRT = "hmi.mharp_720s_nrt"
#: Latency of every record when no first-seen sample is given (the sample's median), min.
DEFAULT_LATENCY_MIN = 98.0
#: Sampled latencies above this are outages / polling gaps, not per-record delay, min.
NORMAL_LATENCY_MAX_MIN = 360.0

#: JSOC's replies on bad days, byte for byte (``jsoc_fixtures/error_replies/``, file named).
ERROR_REPLIES: dict[str, bytes] = {
    # mharp_2021-05-06T14-22-15_e69de29bb2.json
    "empty_body": b"",
    # mharp_2021-05-06T15-28-08_23fa7d31a7.json
    "truncated_body": b"k",
    # mharp_2022-07-19T09-34-57_46a0b3f7af.json
    "status_4": (b'{"status": 4, "error": "Command \'/home/jsoc/cvs/Development/JSOC/bin/'
                 b'linux_x86_64/drms_parserecset spec=hmi.mharp_720s_nrt[][$]\' returned '
                 b'non-zero status code 1"}\n'),
    # mharp_2022-09-25T18-57-14_e8b7132464.json
    "status_5": (b'{"error": "Command \'/home/jsoc/cvs/Development/JSOC/bin/linux_x86_64/'
                 b'show_series -qz JSOC_DBHOST=hmidb2:5432 JSOC_DBNAME=jsoc JSOC_DBUSER=apache'
                 b'\' returned non-zero status code 1", "status": 5}\n'),
    # mharp_2022-09-07T20-06-14_5f16635f22.json
    "status_6": b'{"status": 6, "error": ""}\n',
    # mharp_2022-08-03T05-30-24_993171f18a.json
    "rate_limit": (b'{"status":4,"error":"STOP - Use of JSOC from your IP address is '
                   b'overworking our system. Please consider reducing your rate of use. '
                   b'Please see http://jsoc.stanford.edu/Contacts.html for contact '
                   b'information."}\n'),
}
#: Fault names `JsocReplay.inject` accepts: the real replies plus three transport faults.
FAULTS: tuple[str, ...] = (*ERROR_REPLIES, "http_500", "timeout", "no_records")
#: JSOC's real outage in the NRT period: ``status 6`` from the first such saved reply to the
#: first good one after it (``jsoc_nrt_region_listing``: no row first seen in between).
REAL_OUTAGES: tuple[tuple[datetime, datetime, str], ...] = (
    (datetime(2022, 9, 7, 20, 6, 14, tzinfo=UTC), datetime(2022, 9, 12, 17, 54, 45, tzinfo=UTC),
     "status_6"),
)

#: printf formats of the real ``hmi.sharp_720s_nrt`` reply (sharp_720s_nrt_13900_rs_list)
_FORMATS = {"TOTUSJH": "%.3f", "ABSNJZH": "%.3f", "USFLUX": "%.6e", "TOTUSJZ": "%.6e",
            "TOTPOT": "%.6e", "SAVNCPP": "%.6e"}
_PRIME = ("T_REC", "HARPNUM")
_TAI_FMT = "%Y.%m.%d_%H:%M:%S_TAI"
_DS_RE = re.compile(r"^(?P<series>[\w.]+)\[(?P<harps>[\d,]*)\](?:\[(?P<times>[^\]]*)\])?$")
_ALIASES = {"500": "http_500", "status": "status_4", "empty": "no_records",
            "truncated": "truncated_body"}

Clock = Union[None, datetime, Callable[[], datetime]]  # noqa: UP007 - runtime alias
Table = Union[str, Path, pl.DataFrame]  # noqa: UP007


def running_clock(start: datetime, *, speed: float = 1.0) -> Callable[[], datetime]:
    """A replay clock that reads ``start`` now and advances ``speed`` x wall time (UTC)."""
    t0 = time.monotonic()
    start = to_utc(start)
    return lambda: start + timedelta(seconds=(time.monotonic() - t0) * speed)


def _read(src: Table) -> pl.DataFrame:
    if isinstance(src, pl.DataFrame):
        return src.select(pl.all().cast(pl.Utf8))
    return pl.read_csv(src, infer_schema=False)


def _tai(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.strptime(pl.Datetime("us"), _TAI_FMT,
                                                      strict=False)


def _first_seen(col: str = "first_seen_utc") -> pl.Expr:
    return pl.col(col).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC", strict=False)


def _unit_draws(harpnum: np.ndarray, t_min: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) per (harpnum, minute, seed): splitmix64, stable across runs."""
    with np.errstate(over="ignore"):
        z = (harpnum.astype(np.uint64) << np.uint64(32)) ^ t_min.astype(np.uint64)
        z = z ^ np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _fmt(key: str, v: str | None) -> str:
    if v is None or v.strip() == "" or v.strip().lower() in ("nan", "na", "none"):
        return "MISSING" if key == "NOAA_ARS" else "nan"
    f = _FORMATS.get(key)
    if f is None:
        return v
    try:
        return f % float(v)
    except ValueError:
        return v  # served as recorded (a malformed value is the client's to reject)


def _reply(keys: Sequence[str], rows: pl.DataFrame, runtime_s: float) -> bytes:
    cols = [{"name": k, "values": [_fmt(k, v) for v in rows[k].to_list()]} for k in keys]
    body = json.dumps(cols, separators=(",", ":"))
    return (f'{{"keywords":{body},"segments":[],"links":[],"count":{rows.height},'
            f'"runtime":{runtime_s:.3f},"status":0}}').encode()


def _error(status: int, msg: str) -> bytes:
    return json.dumps({"status": status, "error": msg}).encode()


class JsocReplay:
    """Serve real JSOC replies from files on 127.0.0.1; a context manager giving the URL.

    Parameters
    ----------
    records
        SHARP records: CSV path (``.csv``/``.csv.gz``) or frame with JSOC keyword columns,
        at least ``T_REC`` (TAI string) and ``HARPNUM``; values kept as strings.
    listing_csv
        Region-listing rows ``T_REC, HARPNUM, NOAA_ARS, first_seen_utc`` (None: no listing
        series; records get NOAA_ARS from it when they lack the column).
    first_seen_csv
        Measured first-seen times ``HARPNUM, T_REC, first_seen_utc, latency_min``.
    clock
        Replay clock: None (serve everything), a UTC datetime, or a callable returning one.
    series
        Series names the records answer to (default ``hmi.sharp_720s_nrt``).
    listing_series
        Series name of the listing (``hmi.mharp_720s_nrt``).
    keyword_table
        The real keyword table CSV (``hmi.sharp_cea_720s_keywords.csv``) for
        ``series_struct``: record columns it lacks are not served (not JSOC keywords).
        None: every column, typed ``string`` (T_REC, NOAA_ARS, QUALITY) or ``double``.
    outages
        ``(start, end, fault)`` clock intervals [start, end) answered with ``fault``.
    error_dir
        A folder of saved error replies named as in `ERROR_REPLIES`' comments; None: the
        copies in this module.
    seed
        Seed of the drawn latencies.
    slow_s
        How long the ``timeout`` fault waits before answering, seconds.
    """

    def __init__(self, records: Table, *, listing_csv: Table | None = None,
                 first_seen_csv: Table | None = None, clock: Clock = None,
                 series: Sequence[str] = (SERIES_NRT,),
                 listing_series: str = LISTING_SERIES_NRT,
                 keyword_table: str | Path | None = None,
                 outages: Sequence[tuple[datetime, datetime, str]] = REAL_OUTAGES,
                 error_dir: str | Path | None = None, seed: int = 0,
                 slow_s: float = 2.0) -> None:
        self.series = tuple(s.lower() for s in series)
        self.listing_series = listing_series.lower()
        self.outages = tuple((to_utc(a), to_utc(b), self._check_fault(f)) for a, b, f in outages)
        self.replies = dict(ERROR_REPLIES) if error_dir is None else _load_replies(error_dir)
        self.seed = int(seed)
        self.slow_s = float(slow_s)
        self.clock = clock
        self.faults: list[str] = []
        self.harp_faults: dict[int, str] = {}
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.listing = None if listing_csv is None else self._load_listing(listing_csv)
        sample = None if first_seen_csv is None else _read(first_seen_csv)
        self.latencies_min = self._latencies(sample)
        self.records = self._load_records(_read(records), sample)
        self.keywords = self._keyword_rows(keyword_table)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ data

    def _load_listing(self, src: Table) -> pl.DataFrame:
        df = _read(src)
        return (df.with_columns(_tai("T_REC").alias("_t"), _first_seen().alias("_avail"),
                                pl.col("HARPNUM").cast(pl.Int64).alias("_h"))
                .sort("_t", "_h"))

    @staticmethod
    def _latencies(sample: pl.DataFrame | None) -> np.ndarray:
        if sample is None:
            return np.array([DEFAULT_LATENCY_MIN])
        lat = sample["latency_min"].cast(pl.Float64, strict=False).drop_nulls()
        lat = lat.filter(lat <= NORMAL_LATENCY_MAX_MIN).sort().to_numpy()
        if lat.size == 0:
            raise ConfigError("first_seen_csv has no latency_min <= "
                              f"{NORMAL_LATENCY_MAX_MIN} min to draw from")
        return lat

    def _load_records(self, df: pl.DataFrame, sample: pl.DataFrame | None) -> pl.DataFrame:
        missing = [c for c in _PRIME if c not in df.columns]
        if missing:
            raise ConfigError(f"records lack the prime keys {missing}")
        df = df.with_columns(_tai("T_REC").alias("_t"),
                             pl.col("HARPNUM").str.strip_chars().cast(pl.Int64, strict=False)
                             .alias("_h"))
        if self.listing is not None and "NOAA_ARS" not in df.columns:
            noaa = self.listing.select("_h", "_t", "NOAA_ARS").unique(["_h", "_t"]).sort("_t")
            df = (df.sort("_t").join_asof(noaa, on="_t", by="_h", strategy="backward",
                                      check_sortedness=False)
                  .with_columns(pl.col("NOAA_ARS").fill_null("MISSING")))
        t_utc = tai_to_utc_expr(pl.col("_t"))
        # deterministic latency draw per (HARPNUM, T_REC)
        h = df["_h"].fill_null(0).to_numpy()
        t_min = (df["_t"].dt.epoch("s").fill_null(0).to_numpy() // 60)
        u = _unit_draws(h, t_min, self.seed)
        lat = np.quantile(self.latencies_min, u) if self.latencies_min.size > 1 else \
            np.full(len(u), self.latencies_min[0])
        df = df.with_columns(
            (t_utc + pl.duration(microseconds=pl.Series(np.round(lat * 6e7).astype(np.int64))))
            .alias("_avail"))
        for a, b, _ in self.outages:
            df = df.with_columns(pl.when(pl.col("_avail").is_between(a, b, closed="left"))
                                 .then(pl.lit(b)).otherwise(pl.col("_avail")).alias("_avail"))
        if sample is not None:
            seen = sample.select(pl.col("HARPNUM").cast(pl.Int64).alias("_h"),
                                 _tai("T_REC").alias("_t"),
                                 _first_seen().alias("_seen")).unique(["_h", "_t"])
            df = (df.join(seen, on=["_h", "_t"], how="left")
                  .with_columns(pl.coalesce("_seen", "_avail").alias("_avail"))
                  .drop("_seen"))
        return df.sort("_h", "_t", nulls_last=True)

    def _keyword_rows(self, path: str | Path | None) -> dict[str, list[dict]]:
        table: dict[str, dict] = {}
        if path is not None:
            with open(path, newline="") as fh:
                for r in csv.DictReader(fh):
                    table[r["name"].upper()] = {k: r.get(k, "") for k in
                                                ("name", "type", "recscope", "defval",
                                                 "units", "note", "linkinfo")}

        def rows(names: Sequence[str]) -> list[dict]:
            return [table.get(n.upper(), {"name": n, "type": "string" if n in
                                          ("T_REC", "NOAA_ARS", "QUALITY") else "double",
                                          "recscope": "variable", "defval": "", "units": "",
                                          "note": "", "linkinfo": ""}) for n in names]

        rec_keys = [c for c in self.records.columns if not c.startswith("_")
                    and (not table or c.upper() in table or c in _PRIME)]
        out = {s: rows(rec_keys) for s in self.series}
        if self.listing is not None:
            out[self.listing_series] = rows(["T_REC", "HARPNUM", "NOAA_ARS"])
        return out

    # ------------------------------------------------------------------ control

    @staticmethod
    def _check_fault(name: str) -> str:
        name = _ALIASES.get(name, name)
        if name not in FAULTS:
            raise ConfigError(f"unknown fault {name!r}; one of {FAULTS}")
        return name

    def inject(self, fault: str, n: int = 1) -> None:
        """Answer the next ``n`` requests with ``fault`` (after those already queued)."""
        name = self._check_fault(fault)
        with self.lock:
            self.faults.extend([name] * n)

    def fail_harp(self, harpnum: int, fault: str = "status_6") -> None:
        """Answer every rs_list naming HARP ``harpnum`` with ``fault`` from now on."""
        self.harp_faults[int(harpnum)] = self._check_fault(fault)

    def now(self) -> datetime | None:
        """The replay clock's time (UTC), or None when it serves everything."""
        c = self.clock
        if c is None:
            return None
        return to_utc(c() if callable(c) else c)

    def available_at(self, harpnum: int, t_rec: str) -> datetime | None:
        """When the record (HARPNUM, T_REC string) is first served (None: not replayed)."""
        t = datetime.strptime(t_rec, _TAI_FMT)
        got = self.records.filter((pl.col("_h") == harpnum) & (pl.col("_t") == t))["_avail"]
        return got[0] if got.len() else None

    @property
    def url(self) -> str:
        """Base of the ``cgi-bin/ajax/`` CGIs (what ``JsocConfig.url`` takes)."""
        if self._httpd is None:
            raise RuntimeError("JsocReplay is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/cgi-bin/ajax/"

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> JsocReplay:
        """Start serving in a daemon thread (`url` is valid afterwards)."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.replay = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # ------------------------------------------------------------------ answers

    def answer(self, query: Mapping[str, str], t: datetime | None) -> tuple[str | None, bytes]:
        """(fault or None, body) for one ``jsoc_info`` query at clock time ``t``."""
        op = query.get("op")
        ds = query.get("ds", "").replace(" ", "")
        fault = None
        with self.lock:
            if self.faults:
                fault = self._check_fault(self.faults.pop(0))
        if fault is None and t is not None:
            fault = next((f for a, b, f in self.outages if a <= t < b), None)
        if fault is None and op == "rs_list" and self.harp_faults:
            m = _DS_RE.match(ds)
            harps = {int(h) for h in m["harps"].split(",") if h} if m else set()
            fault = next((self.harp_faults[h] for h in harps if h in self.harp_faults), None)
        if fault is not None and fault in self.replies:
            return fault, self.replies[fault]
        if fault == "no_records":
            keys = [k for k in query.get("key", "").split(",") if k]
            return fault, _reply(keys, pl.DataFrame({k: [] for k in keys},
                                                    schema={k: pl.Utf8 for k in keys}), 0.01)
        if op == "series_struct":
            return fault, self._series_struct(ds)
        if op == "rs_list":
            return fault, self._rs_list(ds, query.get("key", ""), t)
        return fault, _error(1, f"jsoc_info: unsupported op {op!r}")

    def _series_struct(self, ds: str) -> bytes:
        name = ds.split("[", 1)[0].lower()
        if name not in self.keywords:
            return _error(1, f"Unknown series {ds!r}")
        return json.dumps({"keywords": self.keywords[name], "links": [], "segments": [],
                           "primekeys": list(_PRIME), "dbindex": list(_PRIME),
                           "note": "flareflow replay of JSOC", "retention": 10000,
                           "unitsize": 1, "archive": 1, "tapegroup": 0,
                           "status": 0}).encode()

    def _rs_list(self, ds: str, key: str, t: datetime | None) -> bytes:
        started = time.perf_counter()
        m = _DS_RE.match(ds)
        if m is None or m["series"].lower() not in self.keywords:
            return _error(4, f"Bad record-set query {ds!r}")
        name = m["series"].lower()
        keys = [k for k in key.split(",") if k]
        have = {k["name"].upper() for k in self.keywords[name]}
        unknown = [k for k in keys if k.upper() not in have]
        if unknown:
            return _error(1, f"Unknown keywords {unknown} in series {name}")
        src = self.listing if name == self.listing_series else self.records
        assert src is not None
        df = src if t is None else src.filter(pl.col("_avail") <= t)
        harps = [int(h) for h in m["harps"].split(",") if h]
        if harps:
            df = df.filter(pl.col("_h").is_in(harps))
        times = (m["times"] or "").strip()
        if times == "$":
            newest = pl.col("_t") == pl.col("_t").max()
            df = df.filter(newest if name == self.listing_series else newest.over("_h"))
        elif times:
            t0s, _, t1s = times.partition("-")
            try:
                t0 = datetime.strptime(t0s, _TAI_FMT)
                t1 = datetime.strptime(t1s, _TAI_FMT) if t1s else t0
            except ValueError:
                return _error(4, f"Bad time range in {ds!r}")
            # a record whose T_REC does not parse is served (the client must reject it)
            df = df.filter(pl.col("_t").is_between(t0, t1) | pl.col("_t").is_null())
        return _reply(keys, df.sort("_h", "_t", nulls_last=True),
                      time.perf_counter() - started)


def _load_replies(folder: str | Path) -> dict[str, bytes]:
    """Saved error replies by fault name (files as named in `ERROR_REPLIES`' comments)."""
    names = {"empty_body": "mharp_2021-05-06T14-22-15_e69de29bb2.json",
             "truncated_body": "mharp_2021-05-06T15-28-08_23fa7d31a7.json",
             "status_4": "mharp_2022-07-19T09-34-57_46a0b3f7af.json",
             "status_5": "mharp_2022-09-25T18-57-14_e8b7132464.json",
             "status_6": "mharp_2022-09-07T20-06-14_5f16635f22.json",
             "rate_limit": "mharp_2022-08-03T05-30-24_993171f18a.json"}
    return {k: (Path(folder) / f).read_bytes() for k, f in names.items()}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out)

    def do_GET(self):  # noqa: N802
        replay: JsocReplay = self.server.replay  # type: ignore[attr-defined]
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        hdr = self.headers.get("X-Replay-Time")
        t = to_utc(hdr) if hdr else replay.now()
        entry = {**q, "clock": "" if t is None else t.isoformat(), "fault": ""}
        with replay.lock:
            replay.requests.append(entry)
        if not url.path.endswith("/jsoc_info"):
            self._send(404, b"not found", "text/plain")
            return
        fault, body = replay.answer(q, t)
        entry["fault"] = fault or ""
        if fault == "http_500":
            self._send(500, b"Internal Server Error", "text/plain")
            return
        if fault == "timeout":
            time.sleep(replay.slow_s)
        self._send(200, body)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve files until interrupted; prints the URL for ``FLAREFLOW_JSOC_URL``."""
    ap = argparse.ArgumentParser(prog="python -m flare_core.sources.jsoc_replay",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("records")
    ap.add_argument("--listing")
    ap.add_argument("--first-seen")
    ap.add_argument("--keywords")
    ap.add_argument("--at", help="replay clock start, ISO UTC (default: serve everything)")
    ap.add_argument("--speed", type=float, default=1.0, help="clock speed x wall time")
    a = ap.parse_args(argv)
    clock = running_clock(to_utc(a.at), speed=a.speed) if a.at else None
    replay = JsocReplay(a.records, listing_csv=a.listing, first_seen_csv=a.first_seen,
                        keyword_table=a.keywords, clock=clock)
    with replay as url:
        print(url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
