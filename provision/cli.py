"""`sdprov` entry point: parses arguments, runs one command, maps errors to exit codes.

This is the one error boundary and the only place that picks exit codes: 0 ok, 1 runtime
failure or drift, 2 bad input, 130 interrupted. Whatever a command raises ends here as one
message a user can act on (an `OSError` names its path; anything unexpected is one line,
with the traceback only under `--verbose` or in `--log-file`). Each subcommand lives in
`provision/commands/<name>.py` and exposes `register(subparsers)`, which adds its parser and
sets `run(args, console) -> int` as the default `func`.
"""

from __future__ import annotations

# Start-up time: only what parsing needs is imported at the top (`sdprov --version` stays
# near bare Python); the error boundary's modules are imported once a command runs.
import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from provision import __version__

if TYPE_CHECKING:
    from types import FrameType

    from provision.console import Console
    from provision.errors import FileSystemError, SdprovError

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


def command_name(module: str) -> str:
    return module.rsplit(".", 1)[1].rstrip("_")


def _commands_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules parsing `argv` needs: the named command's alone when there is one,
    none for a bare `--version`, all otherwise (`--help`, or an error listing the choices).

    Building every subcommand's options costs tens of milliseconds at each start; a command
    module's name is its command's name (`provision.commands.sync` registers `sync`; a trailing
    underscore avoids a keyword: `import_` registers `import`).
    """
    by_name = {command_name(module): module for module in COMMAND_MODULES}
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg == "--log-file":
            skip_value = True  # its value is a file name, not a command
        elif arg == "--version":
            return ()
        elif arg in ("-h", "--help", "--"):
            break
        elif not arg.startswith("-"):
            return (by_name[arg],) if arg in by_name else COMMAND_MODULES
    return COMMAND_MODULES


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (every command when None). Light: a command module imports its
    implementation (httpx, rich, YAML, JSON Schema, inspection) inside `run`."""
    parser = argparse.ArgumentParser(
        prog="sdprov",
        description="Declarative provisioner for Stable Diffusion WebUI models.",
    )
    parser.add_argument("--version", action="version", version=f"sdprov {__version__}")
    _add_output_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES if argv is None else _commands_for(argv):
        importlib.import_module(module_name).register(subparsers)
    for sub in _subparsers_of(parser):
        _add_output_options(sub, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # After parsing: `--version` and `--help` exit above without loading rich.
    import logging

    from provision.console import FILE_ONLY, Console
    from provision.errors import ManifestError, SdprovError, from_os_error

    log = logging.getLogger("provision.cli")

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
        from provision.net.failures import as_sdprov_error  # httpx: only when needed

        error = as_sdprov_error(exc)  # logs a bug's traceback at debug level
        console.fail(error)
        return error.exit_code
    return code


def explain_os_error(exc: OSError) -> FileSystemError:
    """`from_os_error`, with how much space is free when the disk filled up."""
    import contextlib
    import errno
    import shutil
    from pathlib import Path

    from provision.console import human_bytes
    from provision.errors import from_os_error

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
    import contextlib
    import signal
    import threading

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
    import logging
    import threading

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
