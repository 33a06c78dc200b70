"""Downloading and caching the JSOC HARP<->NOAA map, from a local server on 127.0.0.1.

The server replays the real map with the CRLF line endings of the JSOC original.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flare_core.errors import ParseError, SourceUnavailable
from flare_core.sources import download_harp_noaa_map, read_harp_noaa_map

MAP = "harp_noaa/all_harps_with_noaa_ars.txt"


@pytest.fixture
def map_server(data_dir):
    """Serves ``/map.txt``; ``server.answers`` is a queue of (status, body) to send first."""
    crlf = (data_dir / MAP).read_bytes().replace(b"\n", b"\r\n")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status, body = server.answers.pop(0) if server.answers else (200, crlf)
            server.hits += 1
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.answers, server.hits = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/map.txt"
    yield server
    server.shutdown()
    server.server_close()


def test_download_is_cached_and_equals_the_bundled_map(map_server, data_dir, tmp_path):
    path = download_harp_noaa_map(tmp_path, url=map_server.url)
    assert b"\r" not in path.read_bytes()
    assert read_harp_noaa_map(path).equals(read_harp_noaa_map(data_dir / MAP))
    assert download_harp_noaa_map(tmp_path, url=map_server.url) == path
    assert map_server.hits == 1  # the second call used the cache


def test_failed_refresh_keeps_the_good_cached_copy(map_server, tmp_path):
    good = download_harp_noaa_map(tmp_path, url=map_server.url).read_bytes()
    map_server.answers.append((500, b"internal error"))
    with pytest.raises(SourceUnavailable, match="HARP map download"):
        download_harp_noaa_map(tmp_path, url=map_server.url, refresh=True)
    map_server.answers.append((200, b"HARPN"))  # truncated: not even the header
    with pytest.raises(ParseError, match="HARPNUM NOAA_ARS"):
        download_harp_noaa_map(tmp_path, url=map_server.url, refresh=True)
    map_server.answers.append((200, b"HARPNUM NOAA_ARS\r\n1 11067\r\n2 oops\r\n"))
    with pytest.raises(ParseError, match="line 3"):
        download_harp_noaa_map(tmp_path, url=map_server.url, refresh=True)
    assert (tmp_path / "all_harps_with_noaa_ars.txt").read_bytes() == good
    assert not list(tmp_path.glob(".harpmap-*"))  # no temporary file left behind


def test_unreachable_server_is_source_unavailable(tmp_path):
    with pytest.raises(SourceUnavailable):
        download_harp_noaa_map(tmp_path, url="http://127.0.0.1:9/map.txt", timeout_s=2)
