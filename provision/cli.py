"""`sdprov` entry point: parses arguments, runs one command, maps errors to exit codes.

This is the only place that picks exit codes (0 ok, 1 failure or drift, 2 bad input). Each
subcommand lives in `provision/commands/<name>.py` and exposes `register(subparsers)`, which
adds its parser and sets `run(args) -> int` as the default `func`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

from provision import __version__
from provision.console import Console
from provision.errors import ManifestError, SdprovError

COMMAND_MODULES: Final[tuple[str, ...]] = (
    "provision.commands.lock",
    "provision.commands.sync",
    "provision.commands.status",
    "provision.commands.inspect",
    "provision.commands.webui",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdprov",
        description="Declarative provisioner for Stable Diffusion WebUI models.",
    )
    parser.add_argument("--version", action="version", version=f"sdprov {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(json_mode=bool(getattr(args, "json", False)))
    try:
        code: int = args.func(args, console)
    except ManifestError as exc:
        console.info(exc.render())  # already `file:line:col: error: …`, one per line
        return exc.exit_code
    except SdprovError as exc:
        console.error(exc.render())
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted; nothing unverified was placed, the next run resumes")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
