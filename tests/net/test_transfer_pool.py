"""The byte path keeps connections alive per origin, and only when a body was read to its end."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from provision.net.transfer import open_stream

BODY = b"x" * 100_000  # over the 64 KiB a close reads to keep a connection


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.peers: list[int] = []  # the client port of every request: one per connection
        self.drop_after_answer = False  # close the socket after answering (an idle timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.peers.append(self.client_address[1])
        if self.path == "/redirect":
            body = b"moved"  # a short redirect body: read to reuse the connection
            self.send_response(307)
            self.send_header("Location", "/file")
        else:
            body = BODY
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.drop_after_answer:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _fetch(url: str, *, read: bool = True) -> bytes:
    buffer = memoryview(bytearray(1 << 17))
    with open_stream(url) as response:
        if not read:
            return b""
        n = response.readinto(buffer)
        assert response.readinto(buffer) == 0
        return bytes(buffer[:n])


def test_redirect_and_body_share_one_kept_alive_connection(server: _Server) -> None:
    for _ in range(3):
        assert _fetch(f"{server.url}/redirect") == BODY
    assert len(server.peers) == 6
    assert len(set(server.peers)) == 1


def test_a_body_left_unread_closes_its_connection(server: _Server) -> None:
    _fetch(f"{server.url}/file", read=False)
    assert _fetch(f"{server.url}/file") == BODY
    assert len(set(server.peers)) == 2


def test_a_kept_connection_the_server_closed_is_replaced(server: _Server) -> None:
    server.drop_after_answer = True
    for _ in range(3):
        assert _fetch(f"{server.url}/file") == BODY
    assert len(set(server.peers)) == 3
