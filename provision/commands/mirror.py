"""`sdprov mirror push [MANIFEST | --lock F] --mirror oss://BUCKET[/PREFIX]`, and the `--mirror`
option `sync` and `status` share (design.md §8)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.common import add_json, add_lock_source, load_lock_source
from provision.errors import UsageError
from provision.lock.lockfile import Lockfile
from provision.mirror.location import MirrorLocation

if TYPE_CHECKING:  # the OSS SDK takes a second to import: only commands that use it load it
    from provision.console import Console
    from provision.mirror.push import PushItem
    from provision.mirror.source import MirrorUse
    from provision.mirror.store import MirrorStore
    from provision.sync.apply import WrapSource

DEFAULT_WORK_DIR = Path(".sdprov-mirror")


def add_mirror(parser: argparse.ArgumentParser, *, required: bool = False, help: str) -> None:
    default = os.environ.get("SDPROV_MIRROR") or None
    parser.add_argument(
        "--mirror",
        metavar="oss://BUCKET[/PREFIX]",
        default=default,
        required=required and default is None,
        help=f"{help} (default: $SDPROV_MIRROR)",
    )


def open_mirror(text: str) -> MirrorStore:
    """The store named by `--mirror`, with endpoint, region and credentials from the env."""
    from provision.mirror.store import MirrorStore

    return MirrorStore.from_env(MirrorLocation.parse(text))


def mirror_hook(text: str | None) -> tuple[WrapSource | None, MirrorUse | None]:
    """For `sync --mirror`: the byte-source wrapper and what it records (None, None: off)."""
    if not text:
        return None, None
    from provision.mirror.source import MirrorUse, mirror_first

    store = open_mirror(text)
    use = MirrorUse(str(store.location))
    return mirror_first(store, use), use


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "mirror",
        help="keep the locked files in an OSS bucket you own",
        description="A content-addressed mirror of the lock's files in OSS (sha256/ab/abcd…).",
    )
    commands = parser.add_subparsers(dest="mirror_command", metavar="COMMAND", required=True)
    push_parser = commands.add_parser(
        "push",
        help="upload every locked file the mirror lacks",
        description="Upload each locked file the mirror lacks (checked by key and size), from "
        "--models-root when a file there matches the lock, else from its source. Multipart "
        "and resumable; every object checked against the lock's sha256 before it goes up.",
    )
    add_lock_source(push_parser)
    add_mirror(push_parser, required=True, help="the mirror")
    push_parser.add_argument(
        "--models-root", type=Path, metavar="DIR", help="take files from here when they match"
    )
    push_parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        metavar="DIR",
        help=f"where files fetched from their source wait for upload (default {DEFAULT_WORK_DIR})",
    )
    push_parser.add_argument("--dry-run", action="store_true", help="show what would move")
    push_parser.add_argument(
        "--verify",
        action="store_true",
        help="also read back and hash the objects already there; upload again any that differ",
    )
    push_parser.add_argument("--jobs", type=int, default=4, help="parallel parts (default 4)")
    add_json(push_parser)
    push_parser.set_defaults(func=run_push)


def run_push(args: argparse.Namespace, console: Console) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    from provision.console import human_bytes, make_progress  # rich: not at start-up
    from provision.mirror.push import plan_push, push
    from provision.sources import SourceContext

    source = load_lock_source(args)
    store = open_mirror(args.mirror)
    ctx = SourceContext.from_env()
    items = plan_push(store, source.lock.models, args.models_root, verify=args.verify)
    missing = [i for i in items if not i.present]
    for item in missing:
        origin = "models root" if item.local is not None else "source"
        verb = "replace" if item.damaged else "upload "
        console.info(
            f"  {verb} {item.entry.path} ({human_bytes(item.entry.size)}, from its {origin})"
            + ("; the mirror object holds other bytes" if item.damaged else "")
        )
    total = sum(i.entry.size for i in missing)
    console.info(
        f"mirror {store.location}: {len(missing)} to upload ({human_bytes(total)}), "
        f"{len(items) - len(missing)} present"
    )
    if args.dry_run:
        if args.json:
            console.emit_json(_dry_run_json(store, items))
        return 0
    progress = make_progress(console, quiet=args.quiet)
    progress.start(len(missing), total)
    try:
        result = push(
            items,
            store,
            ctx=ctx,
            work_dir=args.work_dir,
            progress=progress,
            jobs=args.jobs,
        )
    finally:
        progress.finish()
    if args.json:
        console.emit_json({"mirror": str(store.location), **result.to_json()})
    summary = f"{len(result.uploaded)} uploaded, {len(result.present)} already present"
    if result.failures:
        for path, message in sorted(result.failures.items()):
            console.error(message if message.startswith(path) else f"{path}: {message}")
        console.error(f"mirror push incomplete: {len(result.failures)} failed; {summary}")
        return 1
    console.info(f"mirror push complete: {summary}")
    return 0


def _dry_run_json(store: MirrorStore, items: list[PushItem]) -> dict[str, object]:
    return {
        "dry_run": True,
        "mirror": str(store.location),
        "upload": [
            {
                "path": i.entry.path,
                "key": i.key,
                "size": i.entry.size,
                "from": "models_root" if i.local is not None else "source",
                "damaged": i.damaged,
            }
            for i in items
            if not i.present
        ],
        "present": sorted(i.entry.path for i in items if i.present),
    }


@dataclass(frozen=True, slots=True)
class MirrorCheck:
    """What `status --mirror` reports: the locked files the mirror lacks."""

    mirror: str
    lacking: tuple[str, ...]
    present: int

    def to_json(self) -> dict[str, object]:
        return {"url": self.mirror, "lacking": list(self.lacking), "present": self.present}


def check_mirror(lock: Lockfile, text: str) -> MirrorCheck:
    from provision.mirror.push import survey

    store = open_mirror(text)
    found = {entry.sha256: present for entry, present in survey(store, lock.models)}
    lacking = sorted(e.path for e in lock.models if not found[e.sha256])
    return MirrorCheck(str(store.location), tuple(lacking), len(lock.models) - len(lacking))
