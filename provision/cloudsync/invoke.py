"""Invoke the sync function as an FC 3.0 async task and wait for it (alibabacloud-fc20230330).

The task id is derived from the lock digest, so the same lock never runs twice: before invoking,
we ask FC for the task. Succeeded → nothing to do; still Enqueued/Running → wait for it;
Failed/Stopped/Expired (a previous `pulumi up` failed) → the next attempt number, a new task.
A failed task raises `RemoteSyncFailed` carrying the sync's own error message.

REST calls (read from the SDK's client.py): `POST /2023-03-30/functions/{name}/invocations`
with `x-fc-invocation-type: Async` and `x-fc-async-task-id`, then
`GET /2023-03-30/functions/{name}/async-tasks/{id}`; `qualifier` is a query parameter.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_fc20230330.client import Client
from darabonba.runtime import RuntimeOptions

from provision.cloudsync.fc_api import FcFunctions
from provision.errors import SdprovError

log = logging.getLogger(__name__)

PENDING: Final = frozenset({"Enqueued", "Running", "Retrying", "Suspended", "Stopping"})
FAILED: Final = frozenset({"Failed", "Stopped", "Expired", "Invalid"})
SUCCEEDED: Final = "Succeeded"
MAX_ATTEMPTS: Final = 20
REPORT_KEY: Final = "sdprov_report"  # an event with this key asks the handler for a result


class RemoteSyncFailed(SdprovError):
    """The sync task failed in the cloud; the message is the sync's own."""

    def __init__(self, task_id: str, status: str, message: str) -> None:
        self.task_id = task_id
        self.task_status = status
        super().__init__(
            f"model sync task {task_id} {status.lower()}: {message}",
            hint="fix the cause and run `pulumi up` again; the next attempt gets a new task id",
        )


class SyncTimeout(SdprovError):
    def __init__(self, task_id: str, seconds: float, status: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"model sync task {task_id} still {status} after {seconds:.0f} s",
            hint="it keeps running in FC; run `pulumi up` again to wait for it, or raise "
            "sdprov:syncTimeoutSeconds",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncOutcome:
    task_id: str
    status: str
    attempt: int
    reused: bool  # True: the task for this lock had already succeeded, nothing was invoked
    result: str  # always "": FC's returnPayload is invite-only (see error_message)


def task_id_for(lock_digest: str, attempt: int) -> str:
    """`sdprov-<digest[:40]>-<n>`: starts with a letter, well under FC's 128-char limit."""
    return f"sdprov-{lock_digest[:40]}-{attempt}"


class AsyncTasks:
    """The two FC calls we need, with the SDK's errors turned into ours."""

    def __init__(self, client: Client, function_name: str, qualifier: str = "LATEST") -> None:
        self._client = client
        self.function_name = function_name
        self.qualifier = qualifier

    def status(self, task_id: str) -> tuple[str, Any] | None:
        """(status, task) or None when FC has no such task."""
        try:
            response = self._client.get_async_task_with_options(
                self.function_name,
                task_id,
                fc_models.GetAsyncTaskRequest(qualifier=self.qualifier),
                {},
                RuntimeOptions(),
            )
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return None
            raise
        task = response.body
        return str(task.status), task

    def invoke(self, task_id: str, payload: bytes) -> None:
        self._client.invoke_function_with_options(
            self.function_name,
            fc_models.InvokeFunctionRequest(body=io.BytesIO(payload), qualifier=self.qualifier),
            fc_models.InvokeFunctionHeaders(
                x_fc_invocation_type="Async", x_fc_async_task_id=task_id
            ),
            RuntimeOptions(),
        )


def report_event(payload: bytes) -> bytes:
    """The event that asks the sync function for the result it wrote for this payload."""
    return json.dumps({REPORT_KEY: {"payload_sha256": payload_sha256(payload)}}).encode()


def payload_sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def error_message(task: Any, report: dict[str, Any] | None) -> str:
    """The sync's own last error lines, read back from NAS; FC's task error only as a fallback.

    GetAsyncTask's `returnPayload` is an invite-only field on real accounts, and FC's own
    `taskErrorMessage` for a handler that raised is just "UnhandledInvocationError".
    """
    if report and report.get("status") == "failed" and report.get("error"):
        return str(report["error"])
    fc_says = str(getattr(task, "task_error_message", None) or "no error message")
    return (
        f"{fc_says} (the sync left no result on NAS: it may have been killed by its timeout "
        "or run out of memory; see the sync function's logs in SLS)"
    )


class ResultReader:
    """Reads the sync's result for a payload back through a synchronous invocation."""

    def __init__(self, functions: FcFunctions, function_name: str) -> None:
        self.functions = functions
        self.function_name = function_name

    def __call__(self, payload: bytes) -> dict[str, Any] | None:
        try:
            raw = self.functions.invoke_sync(self.function_name, report_event(payload))
            found = json.loads(raw)
        except Exception as exc:  # the task already failed; say so even if this fails too
            log.warning("could not read the sync result back: %s", type(exc).__name__)
            return None
        return found if isinstance(found, dict) else None


def sync_lock(
    tasks: AsyncTasks,
    *,
    lock_digest: str,
    payload: bytes,
    timeout: float,
    poll_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    read_result: Callable[[bytes], dict[str, Any] | None] | None = None,
    suffix: str = "",
) -> SyncOutcome:
    task_id, attempt, reused = start_task(tasks, lock_digest, payload, suffix)
    return wait_task(
        tasks, task_id, attempt, reused, payload, timeout, poll_interval, clock, sleep, read_result
    )


def start_task(
    tasks: AsyncTasks, lock_digest: str, payload: bytes, suffix: str = ""
) -> tuple[str, int, bool]:
    """(task id, attempt, reused): invoke unless this lock's task already ran or runs."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        task_id = task_id_for(lock_digest, attempt) + suffix
        found = tasks.status(task_id)
        if found is None:
            log.info("invoking %s as async task %s", tasks.function_name, task_id)
            tasks.invoke(task_id, payload)
            return task_id, attempt, False
        status, _ = found
        if status == SUCCEEDED or status in PENDING:
            return task_id, attempt, True
        log.info("task %s ended %s earlier; trying attempt %d", task_id, status, attempt + 1)
    raise SdprovError(
        f"the model sync for lock {lock_digest[:12]} failed {MAX_ATTEMPTS} times",
        hint="look at the sync function's logs in SLS, fix the cause, then change the lock",
    )


def wait_task(
    tasks: AsyncTasks,
    task_id: str,
    attempt: int,
    reused: bool,
    payload: bytes,
    timeout: float,
    poll_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    read_result: Callable[[bytes], dict[str, Any] | None] | None = None,
) -> SyncOutcome:
    def failed(task_id: str, status: str, task: Any) -> RemoteSyncFailed:
        report = read_result(payload) if read_result else None
        return RemoteSyncFailed(task_id, status, error_message(task, report))

    return _wait(tasks, task_id, attempt, timeout, poll_interval, clock, sleep, reused, failed)


def _wait(
    tasks: AsyncTasks,
    task_id: str,
    attempt: int,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    reused: bool,
    failed: Callable[[str, str, Any], RemoteSyncFailed],
) -> SyncOutcome:
    deadline = clock() + timeout
    status = "Enqueued"
    while True:
        found = tasks.status(task_id)
        task: Any = None
        if found is not None:  # FC may not list a task the instant it is accepted
            status, task = found
        if status == SUCCEEDED:
            return SyncOutcome(
                task_id=task_id,
                status=status,
                attempt=attempt,
                reused=reused,
                result="",  # returnPayload is invite-only: never rely on it
            )
        if status in FAILED:
            raise failed(task_id, status, task)
        if clock() >= deadline:
            raise SyncTimeout(task_id, timeout, status)
        sleep(min(poll_interval, max(0.0, deadline - clock())))
