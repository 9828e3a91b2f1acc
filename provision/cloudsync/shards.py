"""`sdprov:syncShards`: one lock synced by N FC async tasks at once, then the coordinating step.

Each shard task runs `sdprov sync --shard I/N` (downloads only) as its own NAS client, keyed
`sdprov-<digest>-<n>-<I>of<N>`; all are invoked before any is waited for, so they run at once.
When every shard succeeded, the ordinary task `sdprov-<digest>-<n>` runs the plain sync (moves,
removals, folding the shards' records, hash-cache seeding, UI refresh), which finds the files
placed and downloads nothing. Any failed shard fails the deploy with every failing shard's
own message, and the coordinating step is not run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final

from provision.cloudsync.invoke import (
    AsyncTasks,
    RemoteSyncFailed,
    SyncOutcome,
    start_task,
    sync_lock,
    wait_task,
)
from provision.errors import SdprovError

SHARD_KEY: Final = "sdprov_shard"  # {"sdprov_shard": "I/N", "payload": <the lock payload>}


class ShardsFailed(SdprovError):
    """One or more shard tasks failed; carries each one's own error."""

    def __init__(self, failures: list[RemoteSyncFailed], count: int) -> None:
        self.failures = failures
        lines = "\n".join(f"  {f.message}" for f in failures)
        super().__init__(
            f"{len(failures)} of {count} model sync shards failed:\n{lines}",
            hint="fix the causes and run `pulumi up` again: shards that succeeded are not rerun",
        )


def shard_payload(payload: bytes, index: int, count: int) -> bytes:
    return json.dumps(
        {SHARD_KEY: f"{index}/{count}", "payload": payload.decode("utf-8")}, sort_keys=True
    ).encode()


def shard_suffix(index: int, count: int) -> str:
    return f"-{index}of{count}"


def sync_sharded(
    tasks: AsyncTasks,
    *,
    lock_digest: str,
    payload: bytes,
    shards: int,
    timeout: float,
    poll_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    read_result: Callable[[bytes], dict[str, Any] | None] | None = None,
) -> SyncOutcome:
    if shards > 1:
        started = []
        for i in range(shards):
            body = shard_payload(payload, i, shards)
            started.append((body, start_task(tasks, lock_digest, body, shard_suffix(i, shards))))
        failures: list[RemoteSyncFailed] = []
        for body, (task_id, attempt, reused) in started:
            try:
                wait_task(
                    tasks, task_id, attempt, reused, body, timeout, poll_interval, clock, sleep,
                    read_result,
                )  # fmt: skip
            except RemoteSyncFailed as exc:
                failures.append(exc)
        if failures:
            raise ShardsFailed(failures, shards)
    return sync_lock(
        tasks,
        lock_digest=lock_digest,
        payload=payload,
        timeout=timeout,
        poll_interval=poll_interval,
        clock=clock,
        sleep=sleep,
        read_result=read_result,
    )
