"""`sdprov sync [MANIFEST | --lock LOCKFILE] --models-root DIR [--dry-run] [--jobs N] [--json]`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from provision.commands.common import (
    add_json,
    add_lock_source,
    add_models_root,
    add_webui,
    load_lock_source,
    webui_auth,
)
from provision.commands.mirror import add_mirror, mirror_hook
from provision.errors import SdprovError, UsageError

if TYPE_CHECKING:
    from provision.console import Console
    from provision.lock.lockfile import Lockfile
    from provision.sync.apply import PlaceCheck
    from provision.sync.cards import CardResult
    from provision.sync.lease import Lease
    from provision.sync.plan import Plan
    from provision.sync.result import SyncResult
    from provision.sync.settled import Inputs
    from provision.sync.state import State


DEFAULT_JOBS: Final = 4
# Small files are bound by round trips (API redirect, storage request, fsync), not bandwidth:
# 300 x 40 KB took 13.8 s with 4 jobs, 11.3 s with 8, 10.8 s with 16 (docs/decisions.md).
SMALL_FILE_JOBS: Final = 8
SMALL_FILE_BYTES: Final = 16 << 20


def default_jobs(sync_plan: Plan) -> int:
    from provision.sync.plan import Act

    downloads = sync_plan.of(Act.DOWNLOAD)
    if downloads and sync_plan.download_bytes < SMALL_FILE_BYTES * len(downloads):
        return SMALL_FILE_JOBS
    return DEFAULT_JOBS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="make a models folder hold exactly the locked models",
        description="Download, verify and place every locked model; remove the ones sdprov "
        "placed that left the lock. Reads only the lockfile; never re-resolves.",
    )
    add_lock_source(parser)
    add_models_root(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help=f"parallel downloads (default {DEFAULT_JOBS}; {SMALL_FILE_JOBS} when the files to "
        f"download average under {SMALL_FILE_BYTES >> 20} MiB)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        metavar="N",
        help="connections per large file, each fetching its own byte ranges, where the server "
        "answers Range (default: $SDPROV_CONNECTIONS, else one, and 4 once that one stays "
        "under 100 MiB/s for a second; 1: always one stream per file)",
    )
    parser.add_argument(
        "--lease-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another sync on the same root to finish (default: fail at once)",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="allow a sync that removes all, or more than half, of the models sdprov placed",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="be worker I of N (0 <= I < N) started at once on one models root: download "
        "only this worker's share of the files (balanced by bytes); a plain sync afterwards "
        "does the moves, removals and adoption",
    )
    add_webui(parser, action="rescan after the sync, then check that it lists every model")
    add_mirror(parser, help="take each file from this OSS mirror first; its source only if absent")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    # Imported here, not at the top: `sdprov --version` and the other commands never need
    # the HTTP stack, rich's progress or the sync engine.
    from provision.sync import settled
    from provision.sync.lease import DEFAULT_TTL, Lease
    from provision.sync.state import State, lease_path

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.connections is not None:
        if not 1 <= args.connections <= 16:
            raise UsageError("--connections must be between 1 and 16")
        # The download engine reads its setting from the environment, as for the timeouts:
        # one place that shard workers and mirror pushes read too.
        os.environ["SDPROV_CONNECTIONS"] = str(args.connections)
    root: Path = args.models_root
    inputs = _inputs(args)
    if inputs is not None and _settled(args, console, root, inputs):
        return 0
    from provision.sync.plan import Act, plan  # after the settled answer: not needed there
    from provision.sync.result import SyncResult

    source = load_lock_source(args)
    root.mkdir(parents=True, exist_ok=True)
    if args.shard is not None:
        from provision.commands.sync_shard import run_shard
        from provision.sync.shard import Shard

        if args.webui:
            raise UsageError("--webui belongs to the coordinating sync (without --shard)")
        wrap, _ = mirror_hook(args.mirror)  # a shard takes its files from the mirror too
        return run_shard(args, console, source.lock, Shard.parse(args.shard), _place_check(), wrap)
    if args.dry_run:
        # Read-only: the state is replaced atomically, so reading it without the lease is safe.
        sync_plan = plan(source.lock, root, State(root))
        _print_plan(console, sync_plan)
        guard = _mass_removal(console, sync_plan, root, args.prune, dry_run=True)
        if args.json:
            console.emit_json(
                {
                    "dry_run": True,
                    "mass_removal": guard,
                    "actions": [
                        {"action": a.act.value, "path": a.path, "origin": a.origin}
                        for a in sync_plan.actions
                    ],
                }
            )
        return 0
    wrap_source, mirror_use = mirror_hook(args.mirror)
    with Lease(lease_path(root), ttl=DEFAULT_TTL, wait=args.lease_wait) as lease:
        # Read the state only now: another sync may have placed files while we waited. It
        # includes shard workers' records, folded into state.json at the first save.
        state = State(root)
        sync_plan = plan(source.lock, root, state)
        if not args.quiet:
            _print_plan(console, sync_plan)
        if _mass_removal(console, sync_plan, root, args.prune, dry_run=False):
            if args.quiet:
                _print_plan(console, sync_plan)
            raise SdprovError(
                f"stopped: this sync would remove {len(sync_plan.of(Act.REMOVE))} of the "
                f"{sync_plan.placed_count} models sdprov placed in {root}; nothing was changed",
                hint="check the manifest and lock (an empty or wrong manifest does this); "
                "if the removals are intended, run again with --prune",
            )
        if sync_plan.changes:
            settled.forget(root)
            result = _apply(args, console, sync_plan, root, state, lease, wrap_source)
        else:
            # Nothing to place, move or remove: no engine, no network stack, nothing written.
            result = SyncResult(kept=[a.path for a in sync_plan.actions])
        state.save()
        jobs = args.jobs or default_jobs(sync_plan)
        cards = _cards(source.lock, root, state, from_mirror=mirror_use is not None, jobs=jobs)
        # Every locked model and card in place, the lock fresh by its manifest's bytes alone.
        complete = result.ok and not result.left_alone and not cards.failures
        clean = not cards.left_alone and mirror_use is None and source.manifest is None
        if complete and clean and inputs is not None:
            settled.record(root, inputs)
    summary = result.summary()
    for path in result.left_alone:
        console.warn(f"{path}: changed since sdprov placed it; left in place and no longer tracked")
    for path, why in sorted(cards.left_alone.items()):
        console.warn(f"{path}: model card {why}; left as it is")
    for path, why in sorted(cards.failures.items()):
        console.warn(f"{path}: no model card: {why}")
    if cards.written or cards.removed:
        console.info(f"model cards: {len(cards.written)} written, {len(cards.removed)} removed")
    webui_ok = True
    report: dict[str, object] = {"models_root": str(root), "cards": cards.to_json()}
    if args.json:  # the digest renders the whole lock: tens of ms per thousand models
        report["lock_digest"] = source.lock.digest
    if mirror_use is not None:
        report["mirror"] = mirror_use.to_json()
        console.info(
            f"mirror {mirror_use.mirror}: {len(mirror_use.from_mirror)} from the mirror, "
            f"{len(mirror_use.from_source)} from their sources (not in the mirror)"
        )
    if args.webui:
        webui_ok, report["webui"] = _tell_webui(args, console, source.lock, root)
    if args.json:
        console.emit_json(report | result.to_json())
    if result.failures:
        for path, message in sorted(result.failures.items()):
            console.error(message if message.startswith(path) else f"{path}: {message}")
        console.error(f"sync incomplete: {len(result.failures)} failed; {summary}")
        return 1
    console.info(f"sync complete: {summary}")
    return 0 if webui_ok else 1


def _inputs(args: argparse.Namespace) -> Inputs | None:
    """The lock and manifest bytes of a plain sync (one the settled record can answer)."""
    from provision.lock.lockfile import lock_path_for
    from provision.manifest import DEFAULT_MANIFEST
    from provision.sync.settled import Inputs

    if args.dry_run or args.shard or args.webui or args.mirror or args.json:
        return None
    if args.lock is not None:
        return None if args.manifest is not None else Inputs.read(args.lock, None)
    manifest: Path = args.manifest or DEFAULT_MANIFEST
    return Inputs.read(lock_path_for(manifest), manifest)


def _settled(args: argparse.Namespace, console: Console, root: Path, inputs: Inputs) -> bool:
    """A resync after a complete one, with the same lock, manifest and state: only `lstat`
    each placed file (provision.sync.settled). True when that answered the sync."""
    from provision.sync.lease import DEFAULT_TTL, Lease
    from provision.sync.result import SyncResult
    from provision.sync.settled import is_recorded, unchanged
    from provision.sync.state import lease_path

    if not is_recorded(root):
        return False
    with Lease(lease_path(root), ttl=DEFAULT_TTL, wait=args.lease_wait):
        kept = unchanged(root, inputs)
    if kept is None:
        return False
    console.info(_plan_line(keep=len(kept)))
    console.info(f"sync complete: {SyncResult(kept=kept).summary()}")
    return True


def _apply(
    args: argparse.Namespace,
    console: Console,
    sync_plan: Plan,
    root: Path,
    state: State,
    lease: Lease,
    wrap_source: Any,
) -> SyncResult:
    from provision.console import make_progress
    from provision.sources import SourceContext
    from provision.sync.apply import apply
    from provision.sync.plan import Act
    from provision.sync.ranged import connections

    connections()  # a bad SDPROV_CONNECTIONS is one usage error up front, not one per file
    return apply(
        sync_plan,
        root=root,
        state=state,
        ctx=SourceContext.from_env(),
        lease=lease,
        jobs=args.jobs or default_jobs(sync_plan),
        progress=make_progress(console, quiet=args.quiet),
        # The gate reads model headers (inspection): imported only when a file is placed.
        place_check=_place_check() if sync_plan.of(Act.DOWNLOAD, Act.VERIFY) else None,
        wrap_source=wrap_source,
    )


def _cards(lock: Lockfile, root: Path, state: State, *, from_mirror: bool, jobs: int) -> CardResult:
    from provision.sync.cards import CardResult, cards_pending

    # Cards only for models placed and verified: apply recorded exactly those in state.
    # A sync from a mirror must need no internet, and the mirror holds no cards yet: the
    # cards already placed stay, new ones wait for a sync from the sources. A resync whose
    # cards are all in place opens no connection.
    if from_mirror or not cards_pending(lock, root, state):
        return CardResult()
    from provision.sources import SourceContext
    from provision.sync.cards import sync_cards

    return sync_cards(lock, root, state, SourceContext.from_env(), jobs=jobs)


def _tell_webui(
    args: argparse.Namespace, console: Console, lock: Lockfile, root: Path
) -> tuple[bool, dict[str, object]]:
    """Rescan, then read WebUI's lists back: a locked model it does not list is a failure."""
    from provision.webui.verify import refresh_and_verify

    report = refresh_and_verify(lock, root, args.webui, webui_auth(args))
    for refresh in report.refreshes:
        route = refresh.route or "(no route)"
        detail = f": {refresh.detail}" if refresh.detail else ""
        console.info(
            f"  webui refresh {refresh.kind.value:<12} {route} {refresh.status.value}{detail}"
        )
    for note in report.notes:
        console.info(f"  webui note: {note}")
    for row in report.problems:
        console.error(f"webui: {row.path}: {row.status.value}: {row.reason}")
    listed = sum(1 for row in report.rows if not row.problem)
    console.info(f"webui: {listed} of {len(report.rows)} locked models listed")
    return report.ok, report.to_json()


def _print_plan(console: Console, sync_plan: Plan) -> None:
    from provision.sync.plan import Act

    changes = sync_plan.changes
    for action in changes:
        console.info(f"  {action.describe()}")
    console.info(
        _plan_line(
            download=len(sync_plan.of(Act.DOWNLOAD)),
            download_bytes=sync_plan.download_bytes,
            verify=len(sync_plan.of(Act.VERIFY)),
            move=len(sync_plan.of(Act.MOVE)),
            remove=len(sync_plan.of(Act.REMOVE)),
            keep=len(sync_plan.of(Act.KEEP)),
        )
    )


def _plan_line(
    *, download: int = 0, download_bytes: int = 0, verify: int = 0, move: int = 0,
    remove: int = 0, keep: int = 0,
) -> str:  # fmt: skip
    from provision.console import human_bytes

    return (
        f"plan: {download} to download ({human_bytes(download_bytes)}), {verify} to verify, "
        f"{move} to move, {remove} to remove, {keep} unchanged"
    )


def _mass_removal(
    console: Console, sync_plan: Plan, root: Path, prune: bool, *, dry_run: bool
) -> bool:
    """True when the plan removes all, or more than half, of what sdprov placed, unpruned."""
    from provision.sync.plan import Act

    if prune or not sync_plan.mass_removal:
        return False
    if dry_run:
        console.warn(
            f"this sync would remove {len(sync_plan.of(Act.REMOVE))} of the "
            f"{sync_plan.placed_count} models sdprov placed in {root}; a real sync stops "
            "here unless given --prune"
        )
    return True


def _place_check() -> PlaceCheck:
    from provision.sync.gate import check_before_place

    return check_before_place
