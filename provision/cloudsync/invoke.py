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

import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi import utils_models as openapi_models
from darabonba.runtime import RuntimeOptions

from provision.errors import SdprovError

log = logging.getLogger(__name__)

PENDING: Final = frozenset({"Enqueued", "Running", "Retrying", "Suspended", "Stopping"})
FAILED: Final = frozenset({"Failed", "Stopped", "Expired", "Invalid"})
SUCCEEDED: Final = "Succeeded"
MAX_ATTEMPTS: Final = 20

# Access key environment variables, Alibaba's names first, then the alicloud provider's.
_KEY_ENV: Final = (
    (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    ),
    ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN"),
)


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


class CredentialsMissing(SdprovError):
    def __init__(self) -> None:
        super().__init__(
            "no Alibaba Cloud credentials for the model sync step",
            hint="export ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
            "(or ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY) before `pulumi up`",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FcEndpoint:
    """Where the FC API is. `endpoint` None → the SDK's regional `fcv3.<region>.aliyuncs.com`."""

    region: str
    endpoint: str | None = None
    protocol: str = "https"


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncOutcome:
    task_id: str
    status: str
    attempt: int
    reused: bool  # True: the task for this lock had already succeeded, nothing was invoked
    result: str  # the handler's return payload (JSON text) or ""


def task_id_for(lock_digest: str, attempt: int) -> str:
    """`sdprov-<digest[:40]>-<n>`: starts with a letter, well under FC's 128-char limit."""
    return f"sdprov-{lock_digest[:40]}-{attempt}"


def make_client(where: FcEndpoint, environ: dict[str, str] | None = None) -> Client:
    env = os.environ if environ is None else environ
    for key_id, secret, token in _KEY_ENV:
        if env.get(key_id) and env.get(secret):
            config = openapi_models.Config(
                access_key_id=env[key_id],
                access_key_secret=env[secret],
                security_token=env.get(token) or None,
                region_id=where.region,
                endpoint=where.endpoint,
                protocol=where.protocol,
            )
            return Client(config)
    raise CredentialsMissing()


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


def error_message(task: Any) -> str:
    """The sync's own message: the handler's error payload, else FC's task error."""
    payload = getattr(task, "return_payload", None) or ""
    try:
        parsed = json.loads(payload)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])
    return str(getattr(task, "task_error_message", None) or payload or "no error message")


def sync_lock(
    tasks: AsyncTasks,
    *,
    lock_digest: str,
    payload: bytes,
    timeout: float,
    poll_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncOutcome:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        task_id = task_id_for(lock_digest, attempt)
        found = tasks.status(task_id)
        if found is None:
            log.info("invoking %s as async task %s", tasks.function_name, task_id)
            tasks.invoke(task_id, payload)
            return _wait(tasks, task_id, attempt, timeout, poll_interval, clock, sleep, False)
        status, _ = found
        if status == SUCCEEDED:
            return _wait(tasks, task_id, attempt, timeout, poll_interval, clock, sleep, True)
        if status in PENDING:
            return _wait(tasks, task_id, attempt, timeout, poll_interval, clock, sleep, True)
        log.info("task %s ended %s earlier; trying attempt %d", task_id, status, attempt + 1)
    raise SdprovError(
        f"the model sync for lock {lock_digest[:12]} failed {MAX_ATTEMPTS} times",
        hint="look at the sync function's logs in SLS, fix the cause, then change the lock",
    )


def _wait(
    tasks: AsyncTasks,
    task_id: str,
    attempt: int,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    reused: bool,
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
                result=str(getattr(task, "return_payload", None) or ""),
            )
        if status in FAILED:
            raise RemoteSyncFailed(task_id, status, error_message(task))
        if clock() >= deadline:
            raise SyncTimeout(task_id, timeout, status)
        sleep(min(poll_interval, max(0.0, deadline - clock())))
