"""`sdprov outdated [MANIFEST] [--json]`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from provision.commands.common import add_json, add_lock_source, load_lock_source

if TYPE_CHECKING:
    from provision.console import Console
    from provision.lock.updates import Outdated


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "outdated",
        help="which locked models have newer versions on Civitai or Hugging Face",
        description="Check every locked model for newer versions: version names, dates, "
        "early access, and whether the new file really differs (same sha256 is no update). "
        "Exit 0 when every model was checked (updates or not), 1 when some could not be.",
    )
    add_lock_source(parser)
    parser.add_argument("--jobs", type=int, default=4, help="parallel API requests (default 4)")
    parser.add_argument(
        "--no-cache", action="store_true", help="ask the APIs again (answers are kept 10 min)"
    )
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from provision.lock.api_cache import ApiCache
    from provision.lock.updates import check_updates
    from provision.sources import SourceContext

    source = load_lock_source(args, allow_stale=True)
    if source.stale:
        console.warn(f"{source.lock_path} is stale; checking the models it locks")
    manifest = source.manifest
    if manifest is None and args.lock is None:
        from provision.manifest.parse import DEFAULT_MANIFEST, load_manifest

        manifest = load_manifest(args.manifest or DEFAULT_MANIFEST)
    pinned = {s.digest: s.pinned for s in manifest.specs} if manifest else {}
    cache = ApiCache(enabled=not args.no_cache)
    try:
        rows = check_updates(
            source.lock, pinned, SourceContext.from_env(), jobs=args.jobs, cache=cache
        )
    finally:
        cache.close()
    failed = [r for r in rows if r.status == "error"]
    if args.json:
        console.emit_json(
            {
                "lockfile": str(source.lock_path),
                "models": [r.to_json() for r in rows],
                "updates": sum(r.status == "update" for r in rows),
                "errors": len(failed),
            }
        )
    else:
        console.out(_table(rows))
    for row in failed:
        console.error(row.error or row.name)
    return 1 if failed else 0


def _table(rows: list[Outdated]) -> str:
    width = max([len(r.name) for r in rows] + [4])
    out = [f"{'NAME':<{width}}  {'KIND':<12}  {'STATUS':<10}  CURRENT → LATEST"]
    for r in rows:
        latest = ""
        if r.latest is not None:
            latest = f" → {r.latest.label}"
            if r.latest.published_at:
                latest += f", {r.latest.published_at[:10]}"
            if r.latest.early_access_ends_at:
                latest += f", early access until {r.latest.early_access_ends_at[:10]}"
        same = [v.label for v in r.newer if v.same_bytes]
        note = f" (same file: {', '.join(same)})" if same else ""
        hint = f"  [{r.hint}]" if r.hint else ""
        out.append(
            f"{r.name:<{width}}  {r.kind:<12}  {r.status:<10}  {r.current}{latest}{note}{hint}"
        )
    return "\n".join(out)
