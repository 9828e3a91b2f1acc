"""`sdprov` entry point: parses arguments, runs one command, maps errors to exit codes.

This is the one error boundary and the only place that picks exit codes: 0 ok, 1 runtime
failure or drift, 2 bad input, 130 interrupted. Whatever a command raises ends here as one
message a user can act on (an `OSError` names its path; anything unexpected is one line,
with the traceback only under `--verbose` or in `--log-file`). Each subcommand lives in
`provision/commands/<name>.py` and exposes `register(subparsers)`, which adds its parser and
sets `run(args, console) -> int` as the default `func`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Final

from provision import __version__
from provision.console import FILE_ONLY, Console, human_bytes
from provision.errors import (
    FileSystemError,
    ManifestError,
    SdprovError,
    from_os_error,
)
from provision.net.failures import as_sdprov_error

log = logging.getLogger("provision.cli")

COMMAND_MODULES: Final[tuple[str, ...]] = (
    "provision.commands.lock",
    "provision.commands.sync",
    "provision.commands.status",
    "provision.commands.inspect",
    "provision.commands.webui",
    "provision.commands.mirror",
    "provision.commands.add",
    "provision.commands.remove",
    "provision.commands.plan",
    "provision.commands.outdated",
    "provision.commands.import_",
)
INTERRUPTED: Final = 130


def _add_output_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On the top parser with real defaults, on every subcommand with SUPPRESS defaults, so
    # both `sdprov -v sync` and `sdprov sync -v` work and neither resets the other.
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("output")
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="debug logging; tracebacks of internal errors",
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="errors only"
    )
    group.add_argument(
        "--log-file",
        metavar="FILE",
        default=default(None),
        help="also write a debug log (with tracebacks) to FILE; secrets are never logged",
    )


def _subparsers_of(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.append(sub)
                found.extend(_subparsers_of(sub))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdprov",
        description="Declarative provisioner for Stable Diffusion WebUI models.",
    )
    parser.add_argument("--version", action="version", version=f"sdprov {__version__}")
    _add_output_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for sub in _subparsers_of(parser):
        _add_output_options(sub, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        console = Console(
            json_mode=bool(getattr(args, "json", False)),
            quiet=args.quiet,
            verbose=args.verbose,
            log_file=args.log_file,
        )
    except OSError as exc:
        problem = from_os_error(exc, doing="opening --log-file")
        print(f"sdprov: error: {problem.render()}", file=sys.stderr)
        return 2
    _install_interrupt_handler(console)
    log.debug("sdprov %s: %s", __version__, args.command)
    try:
        code: int = args.func(args, console)
    except ManifestError as exc:
        console.fail(exc, prefixed=False)  # already `file:line:col: error: …`, one per line
        return exc.exit_code
    except SdprovError as exc:
        log.debug("error", exc_info=True, extra=FILE_ONLY)
        console.fail(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted(console)
    except OSError as exc:
        log.debug("OS error", exc_info=True, extra=FILE_ONLY)
        error: SdprovError = explain_os_error(exc)
        console.fail(error)
        return error.exit_code
    except Exception as exc:
        # A bug (or a network failure that escaped its retries): one line for the user; the
        # traceback only where they asked for it.
        error = as_sdprov_error(exc)  # logs a bug's traceback at debug level
        console.fail(error)
        return error.exit_code
    return code


def explain_os_error(exc: OSError) -> FileSystemError:
    """`from_os_error`, with how much space is free when the disk filled up."""
    space = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and isinstance(exc.filename, str):
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(Path(exc.filename).parent).free
            space = f"{human_bytes(free)} free"
    return from_os_error(exc, space=space)


def _install_interrupt_handler(console: Console) -> None:
    """First Ctrl-C: KeyboardInterrupt, unwound in order (partials kept, lease released).

    A second Ctrl-C while that runs ends the process at once, quietly: a user pressing it
    twice wants out, not a traceback from inside the cleanup.
    """
    pressed = threading.Event()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if pressed.is_set():
            with contextlib.suppress(Exception):
                console.error("interrupted again; stopping now")
            os._exit(INTERRUPTED)
        pressed.set()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)


def _interrupted(console: Console) -> int:
    console.error("interrupted; nothing unverified was placed, the next run resumes")
    if console.json_mode and not console.emitted_json:
        console.emit_json(
            {
                "ok": False,
                "error": {"type": "Interrupted", "message": "interrupted", "exit_code": 130},
            }
        )
    # Worker threads may still sit in a network read (up to its timeout); waiting for them at
    # interpreter exit would hang the terminal. Everything that must be undone (lease,
    # partial files) was undone while the interrupt unwound, so leave now.
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
