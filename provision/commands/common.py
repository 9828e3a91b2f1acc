"""Argument shapes and lock loading shared by the subcommands."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import StaleLockError, UsageError
from provision.lock.lockfile import Lockfile, lock_path_for, sha256_bytes
from provision.manifest import DEFAULT_MANIFEST

if TYPE_CHECKING:
    from provision.manifest.parse import Manifest


def add_lock_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "manifest",
        nargs="?",
        type=Path,
        help=f"manifest (default: {DEFAULT_MANIFEST}); its lock is the sibling <stem>.lock.json",
    )
    parser.add_argument("--lock", type=Path, help="use this lockfile directly (no manifest)")


def add_models_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-root",
        type=Path,
        required=True,
        metavar="DIR",
        help="the WebUI models folder (Stable-diffusion/, Lora/, VAE/, embeddings/, ...)",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


@dataclass(frozen=True, slots=True, kw_only=True)
class LockSource:
    lock: Lockfile
    lock_path: Path
    manifest: Manifest | None
    stale: bool


def load_lock_source(args: argparse.Namespace, *, allow_stale: bool = False) -> LockSource:
    """The lock to act on. Given a manifest, its lock must be fresh unless `allow_stale`."""
    if args.lock is not None and args.manifest is not None:
        raise UsageError("give either a MANIFEST or --lock LOCKFILE, not both")
    if args.lock is not None:
        return LockSource(
            lock=Lockfile.load(args.lock), lock_path=args.lock, manifest=None, stale=False
        )
    manifest_path: Path = args.manifest or DEFAULT_MANIFEST
    lock_path = lock_path_for(manifest_path)
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raw = None
    lock = Lockfile.load(lock_path) if raw is not None and lock_path.exists() else None
    if raw is not None and lock is not None and sha256_bytes(raw) == lock.manifest_sha256:
        # The lock was written from exactly these bytes, which were valid then: no need to
        # parse them again (keeps YAML and JSON Schema off the sync path).
        return LockSource(lock=lock, lock_path=lock_path, manifest=None, stale=False)
    from provision.manifest.parse import load_manifest  # YAML + JSON Schema: only here

    manifest = load_manifest(manifest_path)  # reports a broken manifest as such (exit 2)
    if lock is None:
        lock = Lockfile.load(lock_path)
    if lock.manifest_sha256 == manifest.sha256:  # a manifest with `include:` digests them all
        return LockSource(lock=lock, lock_path=lock_path, manifest=manifest, stale=False)
    stale = True
    if not allow_stale:
        raise StaleLockError(
            str(manifest_path), str(lock_path), "the manifest changed since it was locked"
        )
    return LockSource(lock=lock, lock_path=lock_path, manifest=manifest, stale=stale)


def add_webui(parser: argparse.ArgumentParser, *, action: str) -> None:
    parser.add_argument(
        "--webui",
        metavar="URL",
        help=f"a running WebUI (http://host:7860) to {action}",
    )
    parser.add_argument(
        "--webui-auth",
        metavar="USER:PASS",
        help="WebUI --api-auth credentials (prefer the SDPROV_WEBUI_AUTH environment variable: "
        "arguments are visible to other users in `ps`)",
    )


def webui_auth(args: argparse.Namespace) -> tuple[str, str] | None:
    from provision.webui.client import parse_auth

    text = args.webui_auth or os.environ.get("SDPROV_WEBUI_AUTH")
    return parse_auth(text) if text else None
