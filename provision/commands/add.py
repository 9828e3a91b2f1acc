"""`sdprov add REF [--kind K] [--name N] [--manifest M] [--sha256 S]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.commands.common import add_json
from provision.kinds import Kind
from provision.manifest import DEFAULT_MANIFEST

if TYPE_CHECKING:
    from provision.console import Console


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "add",
        help="add a model to the manifest (comments and layout kept) and lock it",
        description="Resolve REF, put it in the right section of the manifest (the kind from "
        "Civitai's model type or the file's own header), keep the file's comments, order and "
        "formatting, then update the lock. Nothing is written unless it locks.",
    )
    parser.add_argument(
        "ref",
        metavar="REF",
        help="Civitai URL, AIR, ID[@VERSION]; Hugging Face owner/repo/path[@rev] or its URL; "
        "or any https URL with --sha256",
    )
    parser.add_argument("--kind", choices=[k.value for k in Kind], help="skip kind detection")
    parser.add_argument("--name", help="file stem in the models folder")
    parser.add_argument("--sha256", help="expected sha256 (required for a plain URL)")
    parser.add_argument(
        "--manifest", type=Path, default=DEFAULT_MANIFEST, help=f"default: {DEFAULT_MANIFEST}"
    )
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from provision.lock.edits import read_manifest_text, relock_and_write
    from provision.lock.identify import identify_kind, parse_reference
    from provision.manifest.edit import add_entry
    from provision.sources import SourceContext

    reference = parse_reference(args.ref, sha256=args.sha256)
    ctx = SourceContext.from_env()
    kind = Kind(args.kind) if args.kind else identify_kind(reference, ctx, sha256=args.sha256)
    entry: dict[str, Any] = {reference.key: reference.value}
    if args.name:
        entry["name"] = args.name
    if args.sha256:
        entry["sha256"] = args.sha256.lower()
    path: Path = args.manifest
    text = read_manifest_text(path)
    new_text = add_entry(text, kind.section, entry, file=str(path))
    result = relock_and_write(path, new_text, ctx)
    added = [e for e in result.outcome.lockfile.models if e.path in result.outcome.resolved]
    for warning in result.outcome.warnings:
        console.warn(warning)
    for model in added:
        console.info(f"added {model.path} ({kind.section} in {path}, sha256 {model.sha256[:12]})")
    console.info(f"wrote {path} and {result.lock_path}")
    if args.json:
        console.emit_json(
            {
                "manifest": str(path),
                "lockfile": str(result.lock_path),
                "section": kind.section,
                "entry": entry,
                "added": [m.to_raw() for m in added],
                "warnings": result.outcome.warnings,
            }
        )
    return 0
