"""`sdprov plan [MANIFEST] [--format text|markdown|json] [--base-lock F] [--models-root DIR]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.common import add_lock_source, load_lock_source
from provision.errors import UsageError

if TYPE_CHECKING:
    from provision.console import Console
    from provision.lock.diff import LockPlan
    from provision.lock.lockfile import Lockfile


# The renderers' names, here so parsing needs no renderer (plan_render imports the lock stack);
# a unit test keeps it equal to plan_render.RENDERERS.
FORMATS = ("json", "markdown", "text")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="what a lock change does: models added, removed, changed, bytes to download",
        description="Diff the lock against a base lock (e.g. the one on the main branch) or "
        "against a models folder. Exit 0 whether or not there are changes.",
    )
    add_lock_source(parser)
    parser.add_argument("--format", choices=FORMATS, default="text", help="output (default text)")
    base = parser.add_mutually_exclusive_group()
    base.add_argument(
        "--base-lock",
        type=Path,
        metavar="FILE",
        help="compare with this lockfile, e.g. from `git show origin/main:manifests/"
        "models.lock.json`; an empty file means no base (a new manifest)",
    )
    base.add_argument(
        "--models-root", type=Path, metavar="DIR", help="compare with what this folder holds"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from provision.lock.plan_render import RENDERERS

    source = load_lock_source(args, allow_stale=True)
    if source.stale:
        console.warn(
            f"{source.lock_path} is stale (the manifest changed since it was locked); "
            "this plan shows the lock as committed: run `sdprov lock`"
        )
    plan = _plan(args, source.lock, str(source.lock_path))
    if args.format == "json":
        console.emit_json(plan.to_json())
    else:
        console.out(RENDERERS[args.format](plan).removesuffix("\n"))  # stdout, pipes
    return 0


def _plan(args: argparse.Namespace, lock: Lockfile, lockfile: str) -> LockPlan:
    from provision.lock.diff import diff_locks
    from provision.lock.lockfile import Lockfile

    if args.models_root is not None:
        if args.models_root.exists() and not args.models_root.is_dir():
            raise UsageError(f"--models-root {args.models_root} is not a folder")
        from provision.sync.root_diff import diff_root

        return diff_root(lock, args.models_root, lockfile=lockfile)
    if args.base_lock is None:
        return diff_locks(None, lock, lockfile=lockfile, base_label="nothing (no --base-lock)")
    try:
        empty = args.base_lock.stat().st_size == 0
    except FileNotFoundError as exc:
        raise UsageError(
            f"--base-lock {args.base_lock}: no such file",
            hint="for a manifest new in this change, pass an empty file",
        ) from exc
    base = None if empty else Lockfile.load(args.base_lock)
    label = f"{args.base_lock} (empty)" if empty else str(args.base_lock)
    return diff_locks(base, lock, lockfile=lockfile, base_label=label)
