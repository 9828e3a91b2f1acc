"""`sdprov:syncShards`: N shard tasks, then the coordinating one, against the loopback FC API.

The fake FC runs the real handler, which runs the real CLI against loopback Civitai and HF on a
temporary folder standing in for the NAS.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from provision.cloudsync.fc_api import FcEndpoint, FcFunctions, make_client
from provision.cloudsync.handler import handler
from provision.cloudsync.invoke import AsyncTasks, ResultReader, task_id_for
from provision.cloudsync.shards import ShardsFailed, sync_sharded
from provision.lock.lockfile import Lockfile
from provision.sync.shard import assign
from tests.fakes import CivitaiServer, HfServer
from tests.infra.fc_server import FcState, Function, fc_server
from tests.infra.test_handler import HF_TOKEN, TOKEN, env, lock_bytes, servers  # noqa: F401

NAME = "sdprov-dev-sync"
KEYS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "AKID-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cr3t-x"}


def _run(event: bytes) -> bytes:
    return handler(event, None).encode()


def _sync(endpoint: str, lock: bytes, shards: int) -> object:
    client = make_client(FcEndpoint(region="cn-hangzhou", endpoint=endpoint, protocol="http"), KEYS)
    tasks = AsyncTasks(client, NAME, "LATEST")
    return sync_sharded(
        tasks, lock_digest=Lockfile.parse(lock.decode(), "t").digest, payload=lock,
        shards=shards, timeout=120, poll_interval=0.01,
        read_result=ResultReader(FcFunctions(client), NAME),
    )  # fmt: skip


def _async_posts(state: FcState) -> list[str]:
    return [
        r["headers"]["x-fc-async-task-id"]
        for r in state.requests
        if r["method"] == "POST" and r["headers"].get("x-fc-invocation-type") == "Async"
    ]


def test_shards_run_then_the_coordinating_sync_places_nothing_twice(
    lock_bytes: bytes,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    servers: tuple[CivitaiServer, HfServer],  # noqa: F811
) -> None:
    civitai, hf = servers
    civitai.clear_requests()
    hf.clear_requests()
    digest = Lockfile.parse(lock_bytes.decode(), "t").digest
    state = FcState(functions={NAME: Function(run=_run)})
    with fc_server(state) as (endpoint, state):
        outcome = _sync(endpoint, lock_bytes, 3)
        first = task_id_for(digest, 1)
        shard_ids = [f"{first}-{i}of3" for i in range(3)]
        assert _async_posts(state) == [*shard_ids, first]  # distinct ids, coordinator last
        assert outcome.task_id == first and not outcome.reused  # type: ignore[attr-defined]
        assert {state.tasks[t].status for t in [*shard_ids, first]} == {"Succeeded"}
        # Every shard finished before the coordinating task was sent.
        posted_at = next(
            i for i, r in enumerate(state.requests)
            if r["method"] == "POST" and r["headers"].get("x-fc-async-task-id") == first
        )  # fmt: skip
        for task in shard_ids:
            polls = [i for i, r in enumerate(state.requests) if r["path"].endswith(task)]
            assert max(polls) < posted_at
        # The same lock again: every task already succeeded, nothing is invoked.
        before = len(_async_posts(state))
        again = _sync(endpoint, lock_bytes, 3)
        assert again.reused and len(_async_posts(state)) == before  # type: ignore[attr-defined]
    fetched = Counter(r.path for r in civitai.requests if r.host == "storage" and r.method == "GET")
    fetched += Counter(r.path for r in hf.requests if r.host == "cdn" and r.method == "GET")
    assert len(fetched) == 4 and set(fetched.values()) == {1}, fetched  # each file once
    root = Path(env["SDPROV_MODELS_ROOT"])
    placed = json.loads((root / ".sdprov" / "state.json").read_text())["placed"]
    assert len(placed) == 4  # the coordinator folded the shards' records
    assert (Path(env["SDPROV_DATA_DIR"]) / "cache.json").is_file()  # hash cache seeded once


def test_every_failing_shard_fails_the_deploy_with_its_own_error(
    lock_bytes: bytes,  # noqa: F811
    env: dict[str, str],  # noqa: F811
) -> None:
    lock = json.loads(lock_bytes)
    bad = {m["path"] for m in lock["models"] if m["kind"] in ("checkpoint", "vae")}
    for model in lock["models"]:
        if model["path"] in bad:
            model["sha256"] = "0" * 64  # the source's bytes no longer match the lock
    payload = json.dumps(lock).encode()
    owner = assign({m["path"]: m["size"] for m in lock["models"]}, 4)
    failing = {owner[p] for p in bad}
    state = FcState(functions={NAME: Function(run=_run)})
    with fc_server(state) as (endpoint, state), pytest.raises(ShardsFailed) as info:
        _sync(endpoint, payload, 4)
    message = info.value.message
    assert f"{len(failing)} of 4 model sync shards failed" in message
    assert len(info.value.failures) == len(failing)
    for path in bad:
        assert f"shard {owner[path]}/4" in message and Path(path).name in message
    assert "sha256 mismatch" in message
    assert TOKEN not in message and HF_TOKEN not in message
    digest = Lockfile.parse(payload.decode(), "t").digest
    assert task_id_for(digest, 1) not in _async_posts(state)  # no coordinating step
    assert len(_async_posts(state)) == 4
