"""`sdprov sync --shard I/N`: one of N workers downloading a share of one lock's files.

Only downloads: moves, removals, adoption of unrecorded files and the mass-removal guard stay
with the coordinating run (`sync` without `--shard`), so nothing is decided twice. Workers
take no root lease; each file is claimed (provision.sync.claims) and each worker writes only
its own record file (provision.sync.state).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provision.commands.sync import default_jobs
from provision.console import Console, human_bytes, make_progress
from provision.lock.lockfile import Lockfile
from provision.sources import SourceContext
from provision.sync.apply import PlaceCheck, WrapSource, apply
from provision.sync.plan import Act, Plan, plan
from provision.sync.result import SyncResult
from provision.sync.shard import Shard, share
from provision.sync.state import State

# What a worker does with its own files; everything else is the coordinator's.
_WORKER_ACTS = (Act.DOWNLOAD, Act.KEEP, Act.CONFLICT)


def shard_plan(lock: Lockfile, root: Path, state: State, shard: Shard) -> tuple[Plan, set[str]]:
    mine = share({m.path: m.size for m in lock.models}, shard)
    full = plan(lock, root, state)
    actions = tuple(a for a in full.actions if a.path in mine and a.act in _WORKER_ACTS)
    return Plan(actions=actions, placed_count=full.placed_count), mine


def run_shard(
    args: argparse.Namespace,
    console: Console,
    lock: Lockfile,
    shard: Shard,
    place_check: PlaceCheck,
    wrap_source: WrapSource | None = None,
) -> int:
    root: Path = args.models_root
    state = State(root, shard=shard.label)
    sync_plan, mine = shard_plan(lock, root, state, shard)
    sizes = {m.path: m.size for m in lock.models if m.path in mine}
    state.shard_meta.update(
        shard=str(shard), share_files=len(sizes), share_bytes=sum(sizes.values())
    )
    downloads = sync_plan.of(Act.DOWNLOAD)
    console.info(
        f"shard {shard}: {len(sizes)} of {len(lock.models)} files "
        f"({human_bytes(sum(sizes.values()))}); {len(downloads)} to download "
        f"({human_bytes(sync_plan.download_bytes)})"
    )
    if args.dry_run:
        for action in sync_plan.changes:
            console.info(f"  {action.describe()}")
        if args.json:
            console.emit_json(
                {
                    "dry_run": True,
                    "shard": str(shard),
                    "actions": [{"action": a.act.value, "path": a.path} for a in sync_plan.actions],
                }
            )
        return 0
    state.save()  # status shows the worker (and its share) before its first file lands
    try:
        result = apply(
            sync_plan,
            root=root,
            state=state,
            ctx=SourceContext.from_env(),
            lease=None,
            jobs=args.jobs or default_jobs(sync_plan),
            progress=make_progress(console, quiet=args.quiet),
            place_check=place_check,
            claim_as=str(shard),
            wrap_source=wrap_source,
        )
    finally:
        state.finish_shard()
    return _report(console, args, root, lock, shard, result)


def _report(
    console: Console,
    args: argparse.Namespace,
    root: Path,
    lock: Lockfile,
    shard: Shard,
    result: SyncResult,
) -> int:
    summary = (
        f"{len(result.downloaded)} downloaded, {len(result.kept)} unchanged "
        "(moves, removals and adoption are left to a plain `sdprov sync`)"
    )
    if args.json:
        report = {"models_root": str(root), "lock_digest": lock.digest, "shard": str(shard)}
        console.emit_json(report | result.to_json())
    if result.failures:
        for path, message in sorted(result.failures.items()):
            console.error(message if message.startswith(path) else f"{path}: {message}")
        console.error(f"shard {shard} incomplete: {len(result.failures)} failed; {summary}")
        return 1
    console.info(f"shard {shard} complete: {summary}")
    return 0
