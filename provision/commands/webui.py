"""`sdprov webui args` and `sdprov webui seed-cache`.

    sdprov webui args --models-root DIR [--data-dir DIR] [--port N] [--no-listen] [--auth]
                      [--fork a1111|forge] [--json]
    sdprov webui seed-cache [MANIFEST | --lock LOCKFILE] --models-root DIR --data-dir DIR
                      [--format json|diskcache|both] [--webui URL] [--force] [--json]

`seed-cache` probes `--webui` (default http://127.0.0.1:7860) before writing cache.json and
refuses while a WebUI older than 1.9.1 answers there (exit 1); the probe needs no credentials
(a 401 already says WebUI is running), but SDPROV_WEBUI_AUTH=user:pass lets it read the version.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from provision.console import Console
from provision.errors import UsageError
from provision.lock.lockfile import Lockfile, lock_path_for
from provision.webui.client import parse_auth
from provision.webui.hashcache import ALL_FORMATS, CacheFormat, seed_cache
from provision.webui.launch import AUTH_ENV, DEFAULT_PORT, FORKS, render_shell, webui_args

DEFAULT_MANIFEST = Path("manifests/models.yaml")
DEFAULT_WEBUI_URL = "http://127.0.0.1:7860"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "webui",
        help="WebUI integration: launch flags, hash-cache seeding",
        description="WebUI integration: launch flags and hash-cache seeding.",
    )
    sub = parser.add_subparsers(dest="webui_command", metavar="SUBCOMMAND", required=True)

    args_p = sub.add_parser(
        "args",
        help="print the WebUI flags that read every kind from the models root",
        description="Print the A1111/Forge command-line flags for the sdprov layout, one line.",
    )
    args_p.add_argument("--models-root", type=Path, required=True, metavar="DIR")
    args_p.add_argument("--data-dir", type=Path, metavar="DIR")
    args_p.add_argument("--port", type=int, default=DEFAULT_PORT)
    args_p.add_argument("--no-listen", action="store_true", help="bind to 127.0.0.1 only")
    args_p.add_argument(
        "--auth",
        action="store_true",
        help=f'add --api-auth/--gradio-auth "${AUTH_ENV}" (set that variable to user:pass)',
    )
    args_p.add_argument("--fork", choices=FORKS, default="a1111")
    args_p.add_argument("--json", action="store_true", help="print {'args': [...]} on stdout")
    args_p.set_defaults(func=run)

    seed_p = sub.add_parser(
        "seed-cache",
        help="write every locked sha256 into WebUI's hash cache",
        description="Write the sha256 of every locked checkpoint, LoRA, embedding and "
        "hypernetwork into WebUI's cache (cache.json for <=1.8, diskcache for 1.9+).",
    )
    seed_p.add_argument("manifest", nargs="?", type=Path, metavar="MANIFEST")
    seed_p.add_argument("--lock", type=Path, metavar="LOCKFILE")
    seed_p.add_argument("--models-root", type=Path, required=True, metavar="DIR")
    seed_p.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    seed_p.add_argument(
        "--format", choices=("json", "diskcache", "both"), default="both", dest="cache_format"
    )
    seed_p.add_argument(
        "--webui",
        default=DEFAULT_WEBUI_URL,
        metavar="URL",
        help="WebUI to probe before writing cache.json (default %(default)s)",
    )
    seed_p.add_argument("--force", action="store_true", help="write cache.json even if it answers")
    seed_p.add_argument("--json", action="store_true")
    seed_p.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    if args.webui_command == "args":
        return _run_args(args, console)
    return _run_seed(args, console)


def _run_args(args: argparse.Namespace, console: Console) -> int:
    try:
        flags = webui_args(
            args.models_root.absolute(),
            args.data_dir.absolute() if args.data_dir else None,
            listen=not args.no_listen,
            port=args.port,
            auth=args.auth,
            fork=args.fork,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        console.emit_json({"args": flags})
    else:
        print(render_shell(flags))  # the command's output, not a message: stdout
    return 0


def _lock_path(args: argparse.Namespace) -> Path:
    if args.lock is not None and args.manifest is not None:
        raise UsageError("give either MANIFEST or --lock, not both")
    if args.lock is not None:
        return Path(args.lock)
    return lock_path_for(args.manifest or DEFAULT_MANIFEST)


def _run_seed(args: argparse.Namespace, console: Console) -> int:
    lock = Lockfile.load(_lock_path(args))
    formats = ALL_FORMATS if args.cache_format == "both" else (CacheFormat(args.cache_format),)
    auth_text = os.environ.get(AUTH_ENV)
    report = seed_cache(
        lock,
        args.models_root,
        args.data_dir,
        formats=formats,
        webui_url=args.webui,
        webui_auth=parse_auth(auth_text) if auth_text else None,
        force=args.force,
    )
    if args.json:
        console.emit_json(report.to_json())
    else:
        where = ", ".join(str(p) for p in (report.cache_file, report.cache_dir) if p)
        console.info(f"seeded {len(report.entries)} hash(es) into {where}")
        for skip in report.skipped:
            console.info(f"  not seeded: {skip.path}: {skip.reason}")
        for note in report.notes:
            console.info(f"  note: {note}")
    return 0
