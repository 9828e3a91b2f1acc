"""A loopback server speaking the part of the FC 3.0 API the deploy uses, as a real account does.

Paths and headers are the ones alibabacloud_fc20230330 4.8.3 sends (its client.py):
- `GET /2023-03-30/functions/{name}` → `state` walks the function's `states` script (one step per
  GET, the last sticks): Pending while the image is pulled, then Active (or Failed).
- `POST /2023-03-30/functions/{name}/invocations` with `x-fc-invocation-type: Async` and
  `x-fc-async-task-id`: the task is queued and runs the function's `run` callable (the real handler
  in the tests) once the function is Active; `Sync` runs it now and returns its result as the body
  (a raised error: FC's `x-fc-error-type: UnhandledInvocationError` and an error body).
- `GET /2023-03-30/functions/{name}/async-tasks/{id}` → Enqueued, Running, then Succeeded or
  Failed. Like a real account without the invite, there is never a `returnPayload`, and a failed
  task says only `UnhandledInvocationError`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/2023-03-30/functions/"
Run = Callable[[bytes], bytes]


def _ok(event: bytes) -> bytes:
    return b'{"ok": true}'


@dataclass
class Function:
    states: list[str] = field(default_factory=lambda: ["Active"])
    reason: str = ""
    run: Run = _ok
    polls: int = 0
    last: str = "not yet read"  # the state the last GET returned

    def state(self) -> str:
        self.last = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        return self.last


@dataclass
class Task:
    task_id: str
    function: str
    payload: bytes
    status: str = "Enqueued"
    error: str = ""
    polls: int = 0
    invoked_while: str = ""  # the function's state (as last read) when the task was sent
    fixed: bool = False  # a preloaded task from an earlier `pulumi up`: its status never moves


@dataclass
class FcState:
    functions: dict[str, Function] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def function(self, name: str) -> Function:
        return self.functions.setdefault(name, Function())

    def preload(self, task_id: str, status: str, function: str = "sdprov-test-sync") -> None:
        self.tasks[task_id] = Task(
            task_id=task_id, function=function, payload=b"", status=status, fixed=True
        )

    def advance(self, task: Task) -> str:
        """Enqueued → Running → (run the function once it is Active) → Succeeded | Failed."""
        task.polls += 1
        fn = self.function(task.function)
        if task.status == "Enqueued" and task.polls >= 2:
            task.status = "Running"
        elif task.status == "Running" and fn.states[-1] == "Active" and task.polls >= 3:
            try:
                fn.run(task.payload)
                task.status = "Succeeded"
            except Exception:  # what FC records for any error a handler raised
                task.status, task.error = "Failed", "UnhandledInvocationError"
        return task.status


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes | dict[str, Any] | None, **headers: str) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-fc-request-id", "req-1")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: bytes) -> list[str]:
        url = urlsplit(self.path)
        self.server.state.requests.append(
            {"method": self.command, "path": url.path, "query": parse_qs(url.query),
             "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )  # fmt: skip
        return [unquote(p) for p in url.path[len(PREFIX) :].split("/")]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self._record(body)
        state = self.server.state
        if len(parts) != 2 or parts[1] != "invocations":
            self._send(404, {"Code": "NotFound", "Message": "no such route"})
            return
        kind = self.headers.get("x-fc-invocation-type") or "Sync"
        fn = state.function(parts[0])
        if kind == "Sync":
            try:
                self._send(200, fn.run(body))
            except Exception as exc:
                error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
                self._send(200, error, x_fc_error_type="UnhandledInvocationError")
            return
        task_id = self.headers.get("x-fc-async-task-id") or ""
        with state.lock:
            if task_id in state.tasks:
                self._send(409, {"Code": "AsyncTaskAlreadyExists", "Message": task_id})
                return
            state.tasks[task_id] = Task(task_id=task_id, function=parts[0], payload=body,
                                        invoked_while=fn.last)  # fmt: skip
        self._send(202, None)

    def do_GET(self) -> None:
        parts = self._record(b"")
        state = self.server.state
        if len(parts) == 1:
            with state.lock:
                fn = state.function(parts[0])
                status = fn.state()
            self._send(200, {"functionName": parts[0], "state": status,
                             "stateReason": fn.reason if status != "Active" else "",
                             "lastUpdateStatus": "Successful" if status == "Active" else
                             "InProgress"})  # fmt: skip
            return
        if len(parts) != 3 or parts[1] != "async-tasks":
            self._send(404, {"Code": "NotFound", "Message": "no such route"})
            return
        with state.lock:
            task = state.tasks.get(parts[2])
            if task is None:
                self._send(404, {"Code": "AsyncTaskNotFound", "Message": "task not found"})
                return
            status = task.status if task.fixed else state.advance(task)
        body: dict[str, Any] = {
            "taskId": task.task_id,
            "status": status,
            "functionArn": f"acs:fc:cn-hangzhou:1:functions/{parts[0]}",
        }
        if status == "Failed":
            body["taskErrorMessage"] = task.error or "UnhandledInvocationError"
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
