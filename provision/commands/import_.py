"""`sdprov import FILE... [--manifest M] [--dry-run] [--json]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.common import add_json
from provision.errors import UsageError
from provision.manifest import DEFAULT_MANIFEST

if TYPE_CHECKING:
    from provision.console import Console
    from provision.importers import Found


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="add the models a ComfyUI workflow or an A1111 image used to the manifest",
        description="Read ComfyUI workflow JSON (or a PNG carrying one) and A1111 PNG infotext "
        "(or its .txt), identify each model through Civitai (version ids, by-hash lookups) "
        "or its URL, add the new ones to the manifest and lock them. Items nothing "
        "identifies are listed, never guessed; the exit code is then 1.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--manifest", type=Path, default=DEFAULT_MANIFEST, help=f"default: {DEFAULT_MANIFEST}"
    )
    parser.add_argument(
        "--models-root",
        type=Path,
        metavar="DIR",
        help="a models folder (WebUI or ComfyUI layout) where files named only by a loader "
        "node or a prompt can be hashed and looked up",
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be added")
    add_json(parser)
    parser.set_defaults(func=run)


def read_file(path: Path) -> list[Found]:
    from provision.importers.a1111 import PNG_SIGNATURE, png_texts, read_infotext
    from provision.importers.comfyui import read_workflow

    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from exc
    origin = str(path)
    if data.startswith(PNG_SIGNATURE):
        texts = png_texts(data, origin)
        found: list[Found] = []
        if "parameters" in texts:
            found += read_infotext(texts["parameters"], origin)
        for key in ("workflow", "prompt"):  # ComfyUI's own PNGs
            if key in texts and not found:
                found += read_workflow(texts[key], f"{origin} ({key})")
        if not texts.keys() & {"parameters", "workflow", "prompt"}:
            raise UsageError(f"{origin}: the PNG carries no generation parameters or workflow")
        return found
    text = data.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        return read_workflow(text, origin)
    return read_infotext(text, origin)  # A1111's "save text information" .txt


def run(args: argparse.Namespace, console: Console) -> int:
    from provision.importers.resolve import resolve_all
    from provision.lock.edits import previous_lock, read_manifest_text, relock_and_write
    from provision.lock.lockfile import lock_path_for
    from provision.manifest.edit import add_entry
    from provision.sources import SourceContext

    found = [item for path in args.files for item in read_file(path)]
    if args.models_root is not None:
        from provision.importers.local import identify_locally

        found = identify_locally(found, args.models_root)
    path: Path = args.manifest
    ctx = SourceContext.from_env()
    new, unresolved, known = resolve_all(found, ctx, previous_lock(lock_path_for(path)))
    for item in known:
        console.info(f"already locked: {item.found.describe()} ({item.label})")
    written = False
    if new and not args.dry_run:
        text = read_manifest_text(path)
        for item in new:
            text = add_entry(text, item.kind.section, item.entry, file=str(path))
        relock_and_write(path, text, ctx)
        written = True
    verb = "added" if written else "would add"
    for item in new:
        entry = ", ".join(f"{k}: {v}" for k, v in item.entry.items())
        console.info(f"{verb} to {item.kind.section}: {entry} ({item.found.describe()})")
    for miss in unresolved:
        console.warn(f"unresolved: {miss.describe()}")
    if args.json:
        console.emit_json(
            {
                "manifest": str(path),
                "written": written,
                "added": [
                    {"section": i.kind.section, "entry": i.entry, "from": i.found.describe()}
                    for i in new
                ],
                "already_locked": [i.found.describe() for i in known],
                "unresolved": [
                    {"from": u.found.describe(), "reason": u.reason} for u in unresolved
                ],
            }
        )
    return 1 if unresolved else 0
