"""Invoke-and-wait against a loopback FC async-task API, through the real SDK client."""

from __future__ import annotations

import json

import pytest

from provision.cloudsync.invoke import (
    AsyncTasks,
    CredentialsMissing,
    FcEndpoint,
    RemoteSyncFailed,
    SyncOutcome,
    SyncTimeout,
    make_client,
    sync_lock,
    task_id_for,
)
from tests.infra.fc_server import FcState, fc_server
from tests.infra.mocks import import_alicloud

DIGEST = "ab" * 32
PAYLOAD = json.dumps({"version": 1, "models": []}).encode()
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cr3t-x"}


def _tasks(endpoint: str) -> AsyncTasks:
    client = make_client(FcEndpoint(region="cn-hangzhou", endpoint=endpoint, protocol="http"), ENV)
    return AsyncTasks(client, "sdprov-dev-sync", "LATEST")


def _sync(endpoint: str, timeout: float = 10.0) -> SyncOutcome:
    return sync_lock(
        _tasks(endpoint), lock_digest=DIGEST, payload=PAYLOAD, timeout=timeout, poll_interval=0.01
    )


def test_invokes_async_with_the_task_id_and_waits_for_success() -> None:
    with fc_server() as (endpoint, state):
        outcome = _sync(endpoint)
    task_id = task_id_for(DIGEST, 1)
    assert outcome == SyncOutcome(
        task_id=task_id, status="Succeeded", attempt=1, reused=False, result='{"ok": true}'
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


def test_failure_surfaces_the_syncs_own_message() -> None:
    message = "sdprov: error: Lora/x.safetensors: sha256 mismatch (expected aa.., got bb..)"
    state = FcState(script=["Running", "Failed"], error=message)
    with fc_server(state) as (endpoint, _), pytest.raises(RemoteSyncFailed) as info:
        _sync(endpoint)
    assert message in str(info.value)
    assert task_id_for(DIGEST, 1) in str(info.value)
    assert "UnhandledInvocationError" not in str(info.value)


def test_after_a_failed_task_the_next_up_runs_a_new_attempt() -> None:
    state = FcState()
    state.preload(task_id_for(DIGEST, 1), "Failed", "network unreachable")
    with fc_server(state) as (endpoint, _):
        outcome = _sync(endpoint)
    assert (outcome.task_id, outcome.attempt) == (task_id_for(DIGEST, 2), 2)
    assert [r["headers"]["x-fc-async-task-id"] for r in state.requests if r["method"] == "POST"] \
        == [task_id_for(DIGEST, 2)]  # fmt: skip


def test_a_running_task_is_joined_not_duplicated() -> None:
    state = FcState()
    state.tasks.clear()
    state.preload(task_id_for(DIGEST, 1), "Running")
    state.tasks[task_id_for(DIGEST, 1)].script = ["Running", "Running", "Succeeded"]
    with fc_server(state) as (endpoint, _):
        outcome = _sync(endpoint)
    assert outcome.reused is True and outcome.status == "Succeeded"
    assert not [r for r in state.requests if r["method"] == "POST"]


def test_timeout() -> None:
    state = FcState(script=["Enqueued", "Running"])  # never finishes
    with fc_server(state) as (endpoint, _), pytest.raises(SyncTimeout) as info:
        _sync(endpoint, timeout=0.3)
    assert "still Running" in str(info.value)


def test_no_credentials_is_a_clear_error() -> None:
    with pytest.raises(CredentialsMissing, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        make_client(FcEndpoint(region="cn-hangzhou"), {})


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
            "protocol": "http", "lock_digest": DIGEST, "model_count": 0,
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
