"""Invoke-and-wait against a loopback FC async-task API, through the real SDK client."""

from __future__ import annotations

import json

import pytest

from provision.cloudsync.fc_api import CredentialsMissing, FcEndpoint, FcFunctions, make_client
from provision.cloudsync.invoke import (
    AsyncTasks,
    RemoteSyncFailed,
    ResultReader,
    SyncOutcome,
    SyncTimeout,
    sync_lock,
    task_id_for,
)
from tests.infra.fc_server import FcState, Function, fc_server
from tests.infra.mocks import import_alicloud

DIGEST = "ab" * 32
PAYLOAD = json.dumps({"version": 1, "models": []}).encode()
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cr3t-x"}


def _tasks(endpoint: str) -> AsyncTasks:
    client = make_client(FcEndpoint(region="cn-hangzhou", endpoint=endpoint, protocol="http"), ENV)
    return AsyncTasks(client, "sdprov-dev-sync", "LATEST")


def _sync(endpoint: str, timeout: float = 10.0) -> SyncOutcome:
    tasks = _tasks(endpoint)
    return sync_lock(
        tasks, lock_digest=DIGEST, payload=PAYLOAD, timeout=timeout, poll_interval=0.01,
        read_result=ResultReader(FcFunctions(tasks._client), tasks.function_name),
    )  # fmt: skip


def test_invokes_async_with_the_task_id_and_waits_for_success() -> None:
    with fc_server() as (endpoint, state):
        outcome = _sync(endpoint)
    task_id = task_id_for(DIGEST, 1)
    assert outcome == SyncOutcome(
        task_id=task_id, status="Succeeded", attempt=1, reused=False, result=""
    )
    posts = [r for r in state.requests if r["method"] == "POST"]
    assert len(posts) == 1
    post = posts[0]
    assert post["path"] == "/2023-03-30/functions/sdprov-dev-sync/invocations"
    assert post["query"] == {"qualifier": ["LATEST"]}
    assert post["headers"]["x-fc-invocation-type"] == "Async"
    assert post["headers"]["x-fc-async-task-id"] == task_id
    assert post["body"] == PAYLOAD
    assert post["headers"]["authorization"].startswith("ACS3-HMAC-SHA256 Credential=AKID-test")
    gets = [r for r in state.requests if r["method"] == "GET"]
    assert gets[0]["path"] == f"/2023-03-30/functions/sdprov-dev-sync/async-tasks/{task_id}"
    assert len(gets) == 1 + 3  # the existence check, then Enqueued, Running, Succeeded
    assert all("s3cr3t-x" not in json.dumps(r["headers"]) for r in state.requests)


def test_same_lock_again_invokes_nothing() -> None:
    with fc_server() as (endpoint, state):
        _sync(endpoint)
        state.requests.clear()
        outcome = _sync(endpoint)
    assert outcome.reused is True
    assert [r["method"] for r in state.requests] == ["GET", "GET"]


def test_failure_without_a_result_says_where_to_look() -> None:
    def killed(event: bytes) -> bytes:
        if b"sdprov_report" in event:
            return json.dumps({"status": "unknown", "error": "no sync result"}).encode()
        raise MemoryError  # the function died before writing anything

    state = FcState(functions={"sdprov-dev-sync": Function(run=killed)})
    with fc_server(state) as (endpoint, _), pytest.raises(RemoteSyncFailed) as info:
        _sync(endpoint)
    assert "UnhandledInvocationError" in str(info.value)
    assert "SLS" in str(info.value)


def test_after_a_failed_task_the_next_up_runs_a_new_attempt() -> None:
    state = FcState()
    state.preload(task_id_for(DIGEST, 1), "Failed")
    with fc_server(state) as (endpoint, _):
        outcome = _sync(endpoint)
    assert (outcome.task_id, outcome.attempt) == (task_id_for(DIGEST, 2), 2)
    assert [r["headers"]["x-fc-async-task-id"] for r in state.requests if r["method"] == "POST"] \
        == [task_id_for(DIGEST, 2)]  # fmt: skip


def test_a_running_task_is_joined_not_duplicated() -> None:
    state = FcState()
    state.preload(task_id_for(DIGEST, 1), "Running")
    state.tasks[task_id_for(DIGEST, 1)].fixed = False  # it moves on, like a live task
    state.tasks[task_id_for(DIGEST, 1)].payload = PAYLOAD
    with fc_server(state) as (endpoint, _):
        outcome = _sync(endpoint)
    assert outcome.reused is True and outcome.status == "Succeeded"
    assert not [r for r in state.requests if r["method"] == "POST"]


def test_timeout() -> None:
    state = FcState(functions={"sdprov-dev-sync": Function(states=["Pending"])})  # never runs
    with fc_server(state) as (endpoint, _), pytest.raises(SyncTimeout) as info:
        _sync(endpoint, timeout=0.3)
    assert "still Running" in str(info.value) or "still Enqueued" in str(info.value)


def test_no_credentials_is_a_clear_error() -> None:
    with pytest.raises(CredentialsMissing, match="alicloud:profile"):
        make_client(FcEndpoint(region="cn-hangzhou", profile="no-such-profile"), {})


def test_task_ids_are_valid_fc_ids() -> None:
    task_id = task_id_for("f" * 64, 3)
    assert task_id[0].isalpha() and len(task_id) <= 128
    assert task_id == "sdprov-" + "f" * 40 + "-3"


def test_the_pulumi_dynamic_provider_drives_the_same_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import_alicloud()  # model_sync imports pulumi_alicloud
    from provision.infra.model_sync import SyncRunProvider

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    provider = SyncRunProvider()
    with fc_server() as (endpoint, state):
        props = {
            "function_name": "sdprov-dev-sync", "region": "cn-hangzhou", "endpoint": endpoint,
            "protocol": "http", "lock_digest": DIGEST, "model_count": 0, "ready_timeout": 10,
            "payload": PAYLOAD.decode(), "timeout_seconds": 10, "poll_interval": 0.01,
        }  # fmt: skip
        created = provider.create(props)
    assert created.id == task_id_for(DIGEST, 1)
    assert created.outs is not None and created.outs["status"] == "Succeeded"
    assert "s3cr3t-x" not in json.dumps(created.outs)  # credentials never reach state
    assert [r["body"] for r in state.requests if r["method"] == "POST"] == [PAYLOAD]
    same = provider.diff(created.id, created.outs, dict(props))
    assert same.changes is False  # same lock: no update, no invocation
    moved = provider.diff(created.id, created.outs, {**props, "lock_digest": "cd" * 32})
    assert moved.changes is True and not moved.replaces
