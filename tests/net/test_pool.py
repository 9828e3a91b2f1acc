"""provision.net.pool: kept-alive connections, the per-host cap, one back-off for every thread.

A small loopback server of our own counts what only the server side can see: how many
requests were in flight at once, and on how many connections they came.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from provision.net.config import Timeouts
from provision.net.pool import HostPool


class _Counting(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.peers: set[int] = set()
        self.arrivals: list[tuple[str, float]] = []
        self.refuse_next = 0  # answer the next N with 429 + Retry-After: 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Counting
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        s = self.server
        with s.lock:
            s.in_flight += 1
            s.most = max(s.most, s.in_flight)
            s.peers.add(self.client_address[1])
            s.arrivals.append((self.path, time.monotonic()))
            refuse = s.refuse_next > 0
            s.refuse_next -= refuse
        time.sleep(0.02)  # keep requests overlapping
        body = b"slow down" if refuse else self.path.encode()
        self.send_response(429 if refuse else 200)
        if refuse:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with s.lock:
            s.in_flight -= 1
        self.wfile.write(body)
        if self.path == "/then-close":
            self.close_connection = True  # an idle keep-alive connection the server drops


@pytest.fixture
def server() -> Iterator[_Counting]:
    srv = _Counting()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def _get(pool: HostPool, url: str) -> tuple[int, bytes]:
    with pool.open(url) as response:
        return response.status_code, response.read()


def test_requests_share_kept_alive_connections_and_never_exceed_the_host_cap(
    server: _Counting,
) -> None:
    with HostPool(per_host=3, timeouts=Timeouts(connect=5, read=5)) as pool:
        urls = [f"{server.url}/m/{i}" for i in range(24)]
        with ThreadPoolExecutor(max_workers=12) as workers:
            answers = list(workers.map(lambda u: _get(pool, u), urls))
    assert answers == [(200, f"/m/{i}".encode()) for i in range(24)]
    assert server.most <= 3
    assert len(server.peers) <= 3  # 24 requests on at most 3 connections


def test_a_dropped_idle_connection_is_replaced_without_an_error(server: _Counting) -> None:
    with HostPool(per_host=1, timeouts=Timeouts(connect=5, read=5)) as pool:
        assert _get(pool, f"{server.url}/then-close") == (200, b"/then-close")
        time.sleep(0.05)  # the server's FIN reaches the idle connection
        assert _get(pool, f"{server.url}/next") == (200, b"/next")
    assert len(server.peers) == 2


def test_a_429_halves_the_cap_and_its_retry_after_holds_back_every_request(
    server: _Counting,
) -> None:
    server.refuse_next = 1
    with HostPool(per_host=4, timeouts=Timeouts(connect=5, read=5)) as pool:
        status, _ = _get(pool, f"{server.url}/first")
        refused_at = time.monotonic()
        assert status == 429
        assert pool.cap_of(server.url) == 2
        # Another worker's request, to another path of the same host, waits out the pause.
        with ThreadPoolExecutor(max_workers=2) as workers:
            answers = list(workers.map(lambda p: _get(pool, f"{server.url}{p}"), ["/a", "/b"]))
    assert answers == [(200, b"/a"), (200, b"/b")]
    later = [at for path, at in server.arrivals if path in ("/a", "/b")]
    assert min(later) >= refused_at + 0.9
