"""A local replay of the HEK ``her`` JSON API serving the real NCEI GOES flare list.

``GET /hek/her?cmd=search&event_type=fl&event_starttime=...&event_endtime=...&page=N``
returns ``{"result": [...], "overmax": bool}`` with HEK's column names
(``event_starttime``, ``event_peaktime``, ``event_endtime``, ``fl_goescls``,
``ar_noaanum``, ``obs_observatory``, ``frm_name``), ``page_size`` events per page so that
sunpy's paging is exercised. Faults as in `tests.replay.jsoc_server`: ``"500"``,
``"truncated"``.
"""

from __future__ import annotations

import csv
import gzip
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from tests.replay.jsoc_server import DATA

NCEI = DATA / "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"


def load_ncei_events() -> list[dict]:
    """The real NCEI list as HEK event dicts (ISO times ``YYYY-MM-DDTHH:MM:SS``)."""
    out = []
    with gzip.open(NCEI, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            def iso(s: str) -> str:
                s = s.strip().replace("/", "-")
                return datetime.fromisoformat(s).strftime("%Y-%m-%dT%H:%M:%S")
            out.append({"event_type": "FL", "event_starttime": iso(row["start_time"]),
                        "event_peaktime": iso(row["peak_time"]),
                        "event_endtime": iso(row["end_time"]), "fl_goescls": row["label"],
                        "ar_noaanum": int(row["noaa_ar"]), "obs_observatory": "GOES",
                        "obs_instrument": "GOES", "frm_name": "SWPC",
                        # the list has no positions; HEK writes (0, 0) HGS for those
                        "event_coordsys": "UTC-HGS-TOPO", "event_coordunit": "degrees",
                        "event_coord1": 0.0, "event_coord2": 0.0, "event_coord3": None})
    return out


class _Handler(BaseHTTPRequestHandler):
    server: HekReplayServer

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):  # noqa: N802
        srv = self.server
        q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        with srv.lock:
            srv.requests.append(q)
            fault = srv.faults.pop(0) if srv.faults else None
        if fault == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        t0, t1 = q.get("event_starttime", ""), q.get("event_endtime", "9999")
        sel = [e for e in srv.events if e["event_endtime"] >= t0 and e["event_starttime"] <= t1]
        page = int(q.get("page", "1"))
        n = srv.page_size
        chunk = sel[(page - 1) * n: page * n]
        body = json.dumps({"result": chunk, "overmax": len(sel) > page * n}).encode()
        if fault == "truncated":
            body = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HekReplayServer(ThreadingHTTPServer):
    """Context manager; ``url`` is the base URL to give `HekConfig` / HEKClient."""

    daemon_threads = True

    def __init__(self, events: list[dict] | None = None, *, page_size: int = 100):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events = events if events is not None else load_ncei_events()
        self.page_size = page_size
        self.faults: list[str] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hek/her?"

    def __enter__(self) -> HekReplayServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
