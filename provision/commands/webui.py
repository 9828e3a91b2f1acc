"""`sdprov webui args` and `sdprov webui seed-cache`.

    sdprov webui args [--ui a1111|forge|comfyui] --models-root DIR [--data-dir DIR] [--port N]
                      [--no-listen] [--auth] [--controlnet-extension] [--json]

`--ui comfyui` writes `<data-dir>/sdprov-extra-model-paths.yaml` (every kind folder under its
ComfyUI categories) and prints `--extra-model-paths-config` pointing at it.
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
from typing import TYPE_CHECKING, Any

from provision.errors import UsageError
from provision.lock.lockfile import Lockfile, lock_path_for
from provision.webui.comfyui_paths import DEFAULT_PORT as COMFYUI_PORT
from provision.webui.comfyui_paths import comfyui_args, write_extra_model_paths
from provision.webui.launch import AUTH_ENV, DEFAULT_PORT, FORKS, render_shell, webui_args

if TYPE_CHECKING:
    from provision.console import Console

DEFAULT_MANIFEST = Path("manifests/models.yaml")
DEFAULT_WEBUI_URL = "http://127.0.0.1:7860"
UIS = ("a1111", "forge", "comfyui")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "webui",
        help="WebUI integration: launch flags, hash-cache seeding",
        description="WebUI integration: launch flags and hash-cache seeding.",
    )
    sub = parser.add_subparsers(dest="webui_command", metavar="SUBCOMMAND", required=True)

    args_p = sub.add_parser(
        "args",
        help="print the flags that make a UI read every kind from the models root",
        description="Print one line of launch flags for the sdprov layout: A1111/Forge --*-dir "
        "flags, or, for ComfyUI, --extra-model-paths-config with the YAML written under "
        "--data-dir.",
    )
    args_p.add_argument("--ui", choices=UIS, default=None, help="default: a1111")
    # --fork was the option before ComfyUI; kept so existing scripts work.
    args_p.add_argument("--fork", choices=FORKS, default=None, help=argparse.SUPPRESS)
    args_p.add_argument("--models-root", type=Path, required=True, metavar="DIR")
    args_p.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="WebUI's --data-dir; for ComfyUI (required) "
        "where the extra_model_paths YAML is written"
    )  # fmt: skip
    args_p.add_argument("--port", type=int, default=None, help="default 7860, ComfyUI 8188")
    args_p.add_argument("--no-listen", action="store_true", help="bind to 127.0.0.1 only")
    args_p.add_argument(
        "--auth",
        action="store_true",
        help=f'add --api-auth/--gradio-auth "${AUTH_ENV}" (set that variable to user:pass)',
    )
    args_p.add_argument(
        "--controlnet-extension",
        action="store_true",
        help="A1111: add --controlnet-dir (only with the sd-webui-controlnet extension "
        "installed: A1111 refuses flags it does not know)",
    )
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
    if args.ui is not None and args.fork is not None and args.ui != args.fork:
        raise UsageError("give --ui (or its old name --fork) once")
    ui: str = args.ui or args.fork or "a1111"
    root = args.models_root.absolute()
    result: dict[str, Any] = {}
    try:
        if ui == "comfyui":
            flags = _comfyui_flags(args, root, result)
        else:
            flags = webui_args(
                root,
                args.data_dir.absolute() if args.data_dir else None,
                listen=not args.no_listen,
                port=args.port or DEFAULT_PORT,
                auth=args.auth,
                fork="forge" if ui == "forge" else "a1111",
                controlnet_extension=args.controlnet_extension,
            )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        console.emit_json({"args": flags, **result})
    else:
        print(render_shell(flags))  # the command's output, not a message: stdout
    return 0


def _comfyui_flags(args: argparse.Namespace, root: Path, result: dict[str, Any]) -> list[str]:
    if args.data_dir is None:
        raise UsageError(
            "--ui comfyui needs --data-dir DIR: the extra_model_paths YAML is written there"
        )
    if args.auth:
        raise UsageError(
            "ComfyUI has no login of its own: put an authenticating proxy in front of it",
            hint="drop --auth (the cloud image runs ComfyUI behind nginx with basic auth)",
        )
    if args.controlnet_extension:
        raise UsageError("--controlnet-extension is for A1111; ComfyUI loads ControlNets itself")
    config = write_extra_model_paths(root, args.data_dir.absolute())
    result["config"] = str(config)
    return comfyui_args(
        config,
        listen="127.0.0.1" if args.no_listen else "0.0.0.0",  # as A1111 --listen
        port=args.port or COMFYUI_PORT,
    )


def _lock_path(args: argparse.Namespace) -> Path:
    if args.lock is not None and args.manifest is not None:
        raise UsageError("give either MANIFEST or --lock, not both")
    if args.lock is not None:
        return Path(args.lock)
    return lock_path_for(args.manifest or DEFAULT_MANIFEST)


def _run_seed(args: argparse.Namespace, console: Console) -> int:
    # httpx and diskcache: only for this subcommand, not at start-up.
    from provision.webui.client import parse_auth
    from provision.webui.hashcache import ALL_FORMATS, CacheFormat, seed_cache

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
