"""`sdprov remove NAME... [--manifest M]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.common import add_json
from provision.manifest import DEFAULT_MANIFEST

if TYPE_CHECKING:
    from provision.console import Console


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "remove",
        help="remove models from the manifest (comments and layout kept) and the lock",
        description="Remove the entries NAMEd (their `name:`, or the file stem in the lock), "
        "keeping the rest of the manifest byte for byte, then update the lock.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument(
        "--manifest", type=Path, default=DEFAULT_MANIFEST, help=f"default: {DEFAULT_MANIFEST}"
    )
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from provision.lock.edits import read_manifest_text, relock_and_write, specs_named
    from provision.manifest.edit import remove_entries
    from provision.sources import SourceContext

    path: Path = args.manifest
    targets = list(specs_named(path, args.names))
    text = read_manifest_text(path)
    new_text = remove_entries(text, {(s.kind.section, s.index) for _, s in targets}, file=str(path))
    result = relock_and_write(path, new_text, SourceContext.from_env())
    for name, spec in targets:
        console.info(f"removed {name} ({spec.label} at {spec.location})")
    console.info(
        f"wrote {path} and {result.lock_path} ({len(result.outcome.lockfile.models)} models)"
    )
    if args.json:
        console.emit_json(
            {
                "manifest": str(path),
                "lockfile": str(result.lock_path),
                "removed": sorted({name for name, _ in targets}),
                "models": len(result.outcome.lockfile.models),
            }
        )
    return 0
