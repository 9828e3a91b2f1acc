"""Two bare loopback origins for testing where credentials go.

Each origin answers from a table `path → Answer` and records every request with its headers.
`Location` values may name the other origin as `{home}` / `{other}`, so one table can express
every redirect kind: relative, absolute same-origin, absolute other-origin, and a chain that
leaves and comes back.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def redirect(cls, location: str, status: int = 302, **headers: str) -> Answer:
        return cls(status, b"", {"Location": location, **headers})

    @classmethod
    def json(cls, payload: object) -> Answer:
        return cls(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    @classmethod
    def file(cls, data: bytes) -> Answer:
        return cls(200, data, {"Content-Type": "application/octet-stream"})


@dataclass(frozen=True)
class Seen:
    origin: str  # "home" | "other"
    method: str
    path: str  # with its query
    headers: dict[str, str]  # lower-cased names


class Origins:
    """`home` and `other`: two origins (same host, different ports) sharing one request log."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Answer] = {}
        self.seen: list[Seen] = []
        self._servers = {name: self._server(name) for name in ("home", "other")}

    def url(self, name: str) -> str:
        host, port = self._servers[name].server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def home(self) -> str:
        return self.url("home")

    @property
    def other(self) -> str:
        return self.url("other")

    def route(self, origin: str, path: str, answer: Answer) -> None:
        self.routes[(origin, path)] = answer

    def authorization(self, origin: str) -> list[str | None]:
        return [s.headers.get("authorization") for s in self.seen if s.origin == origin]

    def _server(self, name: str) -> http.server.ThreadingHTTPServer:
        origins = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                origins.seen.append(Seen(name, self.command, self.path, headers))
                answer = origins.routes.get((name, self.path.split("?")[0]), Answer(404))
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value.format(home=origins.home, other=origins.other))
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_HEAD = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @contextmanager
    def running(self) -> Iterator[Origins]:
        threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
            for s in self._servers.values()
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            for server in self._servers.values():
                server.shutdown()
                server.server_close()
