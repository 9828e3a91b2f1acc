"""`sdprov lock [MANIFEST] [--check] [--upgrade [NAME ...]]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.common import add_json
from provision.errors import LockfileError, UsageError
from provision.lock.lockfile import Lockfile, lock_path_for
from provision.manifest import DEFAULT_MANIFEST

if TYPE_CHECKING:
    from provision.console import Console


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lock",
        help="resolve the manifest into its lockfile",
        description="Resolve every manifest entry to an exact version, file, size and sha256. "
        "Unchanged entries are not re-resolved; pinned entries never move.",
    )
    parser.add_argument(
        "manifest", nargs="?", type=Path, help=f"manifest (default: {DEFAULT_MANIFEST})"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the lock is missing or stale (for CI)",
    )
    parser.add_argument(
        "--upgrade",
        nargs="*",
        metavar="NAME",
        help="move unpinned entries (all, or the NAMEd ones) to their newest version",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every manifest of the repo: those the Pulumi stacks select and each "
        "manifests/*.yaml no other manifest includes",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=16,
        help="parallel resolutions, and the most requests one host sees at once (default 16; "
        "a 429 halves it for the run)",
    )
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    if not args.all:
        return _run_one(args, console, args.manifest or DEFAULT_MANIFEST)
    if args.manifest is not None:
        raise UsageError("give either a MANIFEST or --all, not both")
    from provision.commands.lock_all import run_all

    return run_all(args, console, _run_one)


def _run_one(args: argparse.Namespace, console: Console, manifest_path: Path) -> int:
    # Imported here, not at the top: `sdprov --version` and the other commands never need
    # YAML, JSON Schema or the HTTP stack.
    from provision.lock.resolve import is_fresh, lock_manifest
    from provision.manifest.parse import load_manifest
    from provision.sources import SourceContext

    manifest = load_manifest(manifest_path)
    lock_path = lock_path_for(manifest_path)
    try:
        previous: Lockfile | None = Lockfile.load(lock_path)
    except LockfileError:
        if lock_path.exists() and not args.check:
            raise  # a corrupt lock is reported, never silently replaced
        previous = None
    if args.check:
        fresh = is_fresh(manifest, previous)
        if args.json:
            console.emit_json({"fresh": fresh, "lockfile": str(lock_path)})
        if previous is None:
            console.error(f"{lock_path}: missing; run `sdprov lock {manifest_path}`")
            return 1
        if not fresh:
            console.error(
                f"{lock_path} is stale: {manifest_path} changed since it was locked; "
                f"run `sdprov lock {manifest_path}` and commit the result"
            )
            return 1
        console.info(f"{lock_path} is up to date")
        return 0
    if is_fresh(manifest, previous) and args.upgrade is None:
        assert previous is not None
        console.info(f"{lock_path} is up to date ({len(previous.models)} models)")
        if args.json:
            console.emit_json({"changed": False, "resolved": [], "lockfile": str(lock_path)})
        return 0
    from provision.lock.compat import compat_check  # heavy-ish; only when resolving

    outcome = lock_manifest(
        manifest,
        previous,
        SourceContext.from_env(),
        upgrade=args.upgrade,
        jobs=args.jobs,
        compat_check=compat_check,
    )
    for warning in outcome.warnings:
        console.warn(warning)
    changed = outcome.lockfile.write(lock_path)
    for path in outcome.resolved:
        console.info(f"  resolved {path}")
    verb = "wrote" if changed else "unchanged:"
    console.info(
        f"{verb} {lock_path} ({len(outcome.lockfile.models)} models, "
        f"{len(outcome.resolved)} resolved, {len(outcome.reused)} kept)"
    )
    if args.json:
        console.emit_json(
            {
                "changed": changed,
                "lockfile": str(lock_path),
                "resolved": outcome.resolved,
                "kept": outcome.reused,
                "warnings": outcome.warnings,
            }
        )
    return 0
