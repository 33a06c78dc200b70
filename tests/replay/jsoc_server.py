"""A local replay of JSOC's ``jsoc_info`` JSON CGI, serving real SWAN-SF SHARP records.

Started on 127.0.0.1 (random port) in a thread. It answers what drms 0.9 calls for
keyword queries:

* ``GET /cgi-bin/ajax/jsoc_info?op=series_struct&ds=<series>`` -- the series' keyword
  table, built from ``data/jsoc/hmi.sharp_cea_720s_keywords.csv`` (the real JSOC table);
* ``GET /cgi-bin/ajax/jsoc_info?op=rs_list&ds=<series>[harps][t0-t1]&key=K1,K2,...`` --
  records of the real SWAN-SF windows in ``data/swan_sf/mvts`` (every value a string,
  T_REC ``YYYY.MM.DD_HH:MM:SS_TAI``, QUALITY hex, missing values ``nan``), filtered by
  HARP list and TAI range, in the JSON shape JSOC uses.

Faults for reliability tests: append names to ``server.faults``; each request consumes
one: ``"500"`` (HTTP 500), ``"timeout"`` (sleep ``slow_s`` before answering),
``"truncated"`` (half of the JSON body), ``"status"`` (``status: 1`` with an error
message), ``"empty"`` (zero records). ``server.requests`` logs every query string.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
SERIES = ("hmi.sharp_cea_720s", "hmi.sharp_cea_720s_nrt")
_DS_RE = re.compile(r"^(?P<series>[\w.]+)\[(?P<harps>[\d,\s]*)\]\[(?P<t0>[^-\]]+)-(?P<t1>[^\]]+)\]$")
_TAI_FMT = "%Y.%m.%d_%H:%M:%S_TAI"


def load_keyword_table() -> list[dict]:
    """The real ``hmi.sharp_cea_720s`` keyword table as series_struct keyword dicts."""
    with open(DATA / "jsoc/hmi.sharp_cea_720s_keywords.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = ["name", "type", "recscope", "defval", "units", "note", "linkinfo"]
    return [{k: r.get(k, "") for k in keys} for r in rows]


def load_swan_records(mvts_dir: Path = DATA / "swan_sf/mvts") -> list[dict[str, str]]:
    """One dict of JSOC keyword -> string per record of the SWAN-SF sample windows.

    The SWAN-SF ``Timestamp`` is the (TAI) T_REC; overlapping windows repeat a record, so
    records are unique on (HARPNUM, T_REC). Missing values are served as ``nan``.
    """
    recs: dict[tuple[str, str], dict[str, str]] = {}
    for f in sorted(mvts_dir.glob("*.csv")):
        harp = re.search(r"_id\[(\d+)\]", f.name).group(1)
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                t = datetime.fromisoformat(row["Timestamp"]).strftime(_TAI_FMT)
                rec = {"HARPNUM": harp, "T_REC": t}
                for k, v in row.items():
                    if k in ("Timestamp", "NOAA_AR") or "FLARE" in k or k.startswith("XR_"):
                        continue
                    v = (v or "").strip()
                    rec[k] = v if v and v not in ("NA", "None") else "nan"
                q = rec.get("QUALITY", "nan")
                rec["QUALITY"] = f"0x{int(float(q)):08x}" if q != "nan" else "0x00000000"
                noaa = (row.get("NOAA_AR") or "").strip()
                rec["NOAA_ARS"] = ",".join(str(int(float(a))) for a in noaa.split(";") if a)
                recs.setdefault((harp, t), rec)
    return sorted(recs.values(), key=lambda r: (int(r["HARPNUM"]), r["T_REC"]))


def _in_range(t_rec: str, t0: datetime, t1: datetime) -> bool:
    """T_REC within [t0, t1]; a corrupt T_REC (fault tests) is always served."""
    try:
        return t0 <= datetime.strptime(t_rec, _TAI_FMT) <= t1
    except ValueError:
        return True


class _Handler(BaseHTTPRequestHandler):
    server: JsocReplayServer

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        srv = self.server
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with srv.lock:
            srv.requests.append(q)
            fault = srv.faults.pop(0) if srv.faults else None
        if not url.path.endswith("/jsoc_info"):
            self._send(404, b"not found", "text/plain")
            return
        if fault == "500":
            self._send(500, b"Internal Server Error", "text/plain")
            return
        if fault == "timeout":
            time.sleep(srv.slow_s)
        if fault == "status":
            self._json({"status": 1, "error": "replay: simulated DRMS failure"})
            return
        op = q.get("op")
        if op == "series_struct":
            self._json(srv.series_struct(q.get("ds", "")), truncated=fault == "truncated")
        elif op == "rs_list":
            self._json(srv.rs_list(q.get("ds", ""), q.get("key", ""), empty=fault == "empty"),
                       truncated=fault == "truncated")
        else:
            self._json({"status": 1, "error": f"unsupported op {op!r}"})

    def _json(self, obj: dict, *, truncated: bool = False) -> None:
        body = json.dumps(obj).encode()
        if truncated:
            body = body[: len(body) // 2]
        try:
            self._send(200, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out test)


class JsocReplayServer(ThreadingHTTPServer):
    """Replay server; use as a context manager. ``url`` is the ``cgi-bin/ajax/`` base."""

    daemon_threads = True

    def __init__(self, records: list[dict[str, str]] | None = None, *, slow_s: float = 2.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.records = records if records is not None else load_swan_records()
        self.keyword_table = load_keyword_table()
        self.known_keys = {k["name"] for k in self.keyword_table}
        self.faults: list[str] = []
        self.requests: list[dict[str, str]] = []
        self.slow_s = slow_s
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cgi-bin/ajax/"

    def __enter__(self) -> JsocReplayServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def series_struct(self, ds: str) -> dict:
        if ds.lower() not in SERIES:
            return {"status": 1, "error": f"Unknown series {ds!r}"}
        return {"status": 0, "keywords": self.keyword_table, "links": [], "segments": [],
                "primekeys": ["HARPNUM", "T_REC"], "dbindex": ["HARPNUM", "T_REC"],
                "note": "replay of SHARP keywords", "retention": 10000, "unitsize": 1,
                "archive": 1, "tapegroup": 0}

    def rs_list(self, ds: str, key: str, *, empty: bool = False) -> dict:
        m = _DS_RE.match(ds.replace(" ", ""))
        if m is None or m["series"].lower() not in SERIES:
            return {"status": 1, "error": f"Bad record-set query {ds!r}"}
        try:
            t0 = datetime.strptime(m["t0"], _TAI_FMT)
            t1 = datetime.strptime(m["t1"], _TAI_FMT)
        except ValueError:
            return {"status": 1, "error": f"Bad time range in {ds!r}"}
        harps = {h for h in m["harps"].split(",") if h}
        keys = [k for k in key.split(",") if k]
        unknown = [k for k in keys if k not in self.known_keys]
        if unknown:
            return {"status": 1, "error": f"Unknown keywords {unknown}"}
        sel = [] if empty else [
            r for r in self.records
            if (not harps or r["HARPNUM"] in harps) and _in_range(r["T_REC"], t0, t1)
        ]
        return {"keywords": [{"name": k, "values": [r.get(k, "nan") for r in sel]}
                             for k in keys],
                "count": len(sel), "runtime": 0.01, "status": 0}
