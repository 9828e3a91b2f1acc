"""A loopback server speaking the part of the FC 3.0 API the sync uses (async tasks).

Paths and headers are the ones alibabacloud_fc20230330 4.8.3 sends (its client.py):
`POST /2023-03-30/functions/{name}/invocations` with `x-fc-invocation-type: Async` and
`x-fc-async-task-id`, and `GET /2023-03-30/functions/{name}/async-tasks/{id}?qualifier=...`.
Each invoked task walks through `script` (one status per GET, the last one sticks).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/2023-03-30/functions/"


@dataclass
class Task:
    task_id: str
    payload: bytes
    script: list[str]
    error: str = ""
    result: str = '{"ok": true}'
    polls: int = 0

    def status(self) -> str:
        status = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        return status


@dataclass
class FcState:
    script: list[str] = field(default_factory=lambda: ["Enqueued", "Running", "Succeeded"])
    error: str = ""
    tasks: dict[str, Task] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def preload(self, task_id: str, status: str, error: str = "") -> None:
        self.tasks[task_id] = Task(task_id=task_id, payload=b"", script=[status], error=error)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-fc-request-id", "req-1")
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: bytes) -> tuple[list[str], dict[str, list[str]]]:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path[len(PREFIX) :].split("/")]
        query = parse_qs(url.query)
        self.server.state.requests.append(
            {"method": self.command, "path": url.path, "query": query,
             "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )  # fmt: skip
        return parts, query

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts, _ = self._record(body)
        state = self.server.state
        if len(parts) != 2 or parts[1] != "invocations":
            self._send(404, {"Code": "NotFound", "Message": "no such route"})
            return
        if self.headers.get("x-fc-invocation-type") != "Async":
            self._send(400, {"Code": "InvalidArgument", "Message": "expected Async"})
            return
        task_id = self.headers.get("x-fc-async-task-id") or ""
        with state.lock:
            if task_id in state.tasks:
                self._send(409, {"Code": "AsyncTaskAlreadyExists", "Message": task_id})
                return
            state.tasks[task_id] = Task(
                task_id=task_id, payload=body, script=list(state.script), error=state.error
            )
        self._send(202, None)

    def do_GET(self) -> None:
        parts, _ = self._record(b"")
        state = self.server.state
        if len(parts) != 3 or parts[1] != "async-tasks":
            self._send(404, {"Code": "NotFound", "Message": "no such route"})
            return
        with state.lock:
            task = state.tasks.get(parts[2])
            if task is None:
                self._send(404, {"Code": "AsyncTaskNotFound", "Message": "task not found"})
                return
            status = task.status()
        arn = f"acs:fc:cn-hangzhou:1:functions/{parts[0]}"
        body: dict[str, Any] = {"taskId": task.task_id, "status": status, "functionArn": arn}
        if status == "Failed":
            body["returnPayload"] = json.dumps(
                {"errorMessage": task.error, "errorType": "SyncError"}
            )
            body["taskErrorMessage"] = "UnhandledInvocationError"
        elif status == "Succeeded":
            body["returnPayload"] = task.result
        self._send(200, body)


class _Server(ThreadingHTTPServer):
    state: FcState


@contextmanager
def fc_server(state: FcState | None = None) -> Iterator[tuple[str, FcState]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state or FcState()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"{host!s}:{port}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
