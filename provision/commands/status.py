"""`sdprov status [MANIFEST | --lock LOCKFILE] --models-root DIR [--check] [--json]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.common import (
    add_json,
    add_lock_source,
    add_models_root,
    add_webui,
    load_lock_source,
    webui_auth,
)
from provision.commands.mirror import add_mirror, check_mirror

if TYPE_CHECKING:
    from provision.console import Console


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show what is missing, modified or extra against the lock",
        description="Compare a models folder with the lock. Exit 1 under --check on drift.",
    )
    add_lock_source(parser)
    add_models_root(parser)
    parser.add_argument("--check", action="store_true", help="exit 1 on any drift (for CI)")
    parser.add_argument(
        "--allow-extra",
        action="store_true",
        help="files the lock does not list are not drift (a shared folder with personal models)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-hash every placed file instead of trusting its recorded size and mtime "
        "(finds bit rot on a NAS; reads every model once)",
    )
    add_webui(parser, action="compare with what it lists (read-only: no refresh)")
    add_mirror(parser, help="also report which locked files this OSS mirror lacks")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    # Not at start-up: only this command needs them.
    from provision.sync.cards import card_status
    from provision.sync.state import State
    from provision.sync.status import DRIFT, Condition, status_rows

    source = load_lock_source(args, allow_stale=True)
    rows = status_rows(source.lock, args.models_root, verify=args.verify)
    shards = _shards(args.models_root)
    drift_kinds = DRIFT - ({Condition.EXTRA} if args.allow_extra else set())
    drift = [r for r in rows if r.condition in drift_kinds]
    # Model cards: reported, never drift (a user's own card is theirs to keep).
    cards = card_status(source.lock, args.models_root, State(args.models_root))
    webui: dict[str, tuple[str, str]] = {}
    if args.webui:
        from provision.webui.verify import status_rows as webui_rows

        for web in webui_rows(source.lock, args.models_root, args.webui, webui_auth(args)):
            webui[web.path] = (web.webui.value, web.detail)
            if web.webui.is_problem:
                drift.append(next(r for r in rows if r.path == web.path))
    mirror = check_mirror(source.lock, args.mirror) if args.mirror else None
    if args.json:
        models = []
        for row in rows:
            raw = row.to_json()
            if args.webui and row.path in webui:
                raw["webui"], raw["webui_detail"] = webui[row.path]
            if row.path in cards:
                raw["cards"] = cards[row.path]
            models.append(raw)
        console.emit_json(
            {
                "models_root": str(args.models_root),
                "stale_lock": source.stale,
                "drift": bool(drift) or source.stale,
                "models": models,
                "shards": shards,
            }
            | ({"mirror": mirror.to_json()} if mirror is not None else {})
        )
    else:
        if source.stale:
            console.out(f"stale-lock  {source.lock_path}: run `sdprov lock`")
        header = f"{'disk':<10} {'kind':<12} {'base':<7}" + (f" {'webui':<16}" if webui else "")
        # The table is the command's output: stdout, so `| grep missing` works; the count
        # line is a message (stderr).
        console.out(f"{header} path")
        for row in rows:
            base = row.base or "-"
            web_status, web_detail = webui.get(row.path, ("-", ""))
            details = [d for d in (row.detail, web_detail) if d]
            detail = f"  ({'; '.join(details)})" if details else ""
            web_cell = f" {web_status:<16}" if webui else ""
            console.out(
                f"{row.condition.value:<10} {row.kind:<12} {base:<7}{web_cell} {row.path}{detail}"
            )
        for files in cards.values():
            for path, card in files.items():
                if card != "ok":
                    console.out(f"{'card':<10} {card:<34} {path}")
        counts = {c: sum(1 for r in rows if r.condition is c) for c in Condition}
        console.info(", ".join(f"{n} {c.value}" for c, n in counts.items() if n) or "empty")
        if mirror is not None:
            for path in mirror.lacking:
                console.info(f"{'no-mirror':<10} {path}")
            console.info(
                f"mirror {mirror.mirror}: {mirror.present} present, {len(mirror.lacking)} lacking"
            )
        for shard in shards:
            console.info(_shard_line(shard))
    if args.check and (drift or source.stale or (mirror is not None and mirror.lacking)):
        return 1
    return 0


def _shards(root: Path) -> list[dict[str, object]]:
    """Each shard worker's progress (`sync --shard`), with the files it is fetching now."""
    from provision.sync.claims import live_claims
    from provision.sync.shardstate import shard_progress

    fetching: dict[str, int] = {}
    for claim in live_claims(root):
        if not claim.expired:
            fetching[claim.shard] = fetching.get(claim.shard, 0) + 1
    return [p.to_json() | {"fetching": fetching.get(p.shard, 0)} for p in shard_progress(root)]


def _shard_line(shard: dict[str, object]) -> str:
    from provision.console import human_bytes

    if shard["running"]:
        how = f"running, {shard['fetching']} downloading"
    else:
        how = "finished" if shard["finished"] else "stopped (its claims expire; sync resumes)"
    return (
        f"shard {shard['shard']}: {shard['placed']} of {shard['files']} files placed "
        f"({human_bytes(int(str(shard['placed_bytes'])))} of "
        f"{human_bytes(int(str(shard['bytes'])))}), {how}"
    )
