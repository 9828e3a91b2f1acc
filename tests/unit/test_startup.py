"""Start-up stays light: parsing imports no heavy module; each command loads its own.

Behaviour, not timing: which modules a fresh interpreter has loaded after `sdprov --version`
(or a command's `--help`) decides the start-up cost; the time itself is in `bench/run`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from provision.cli import COMMAND_MODULES, _commands_for, build_parser, command_name

# Third-party packages and sdprov modules that cost tens of milliseconds to import.
HEAVY = (
    "httpx",
    "rich",
    "jsonschema",
    "yaml",
    "diskcache",
    "picklescan",
    "provision.console",
    "provision.inspection",
    "provision.manifest.parse",
    "provision.net.http",
    "provision.sources.registry",
    "provision.sources.civitai",
    "provision.net.transfer",
    "provision.lock.resolve",
    "provision.sync.apply",
    "provision.sync.plan",
    "provision.sync.status",
    "provision.webui.client",
    "provision.webui.hashcache",
)

SHARED_OPTIONS = {"provision.commands.mirror"}

PROBE = """
import contextlib, io, json, sys
from provision.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps({"out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def loaded_after(*argv: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    return report["out"], set(report["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(
        name for name in modules if any(name == h or name.startswith(h + ".") for h in HEAVY)
    )


def test_version_loads_no_heavy_module_and_no_command() -> None:
    out, modules = loaded_after("--version")
    assert out.startswith("sdprov ")
    assert heavy_in(modules) == []
    assert not any(name.startswith("provision.commands.") for name in modules)


@pytest.mark.parametrize("command", ["lock", "sync", "status", "inspect", "webui"])
def test_a_commands_help_loads_only_that_command_and_nothing_heavy(command: str) -> None:
    out, modules = loaded_after(command, "--help")
    assert f"usage: sdprov {command}" in out
    assert heavy_in(modules) == []
    # `sync` and `status` share the --mirror option defined in the mirror command's module.
    others = {m for m in COMMAND_MODULES if not m.endswith("." + command)} - SHARED_OPTIONS
    assert others.isdisjoint(modules)


def test_top_level_help_still_lists_every_command() -> None:
    out, modules = loaded_after("--help")
    for module in COMMAND_MODULES:
        assert command_name(module) in out
    assert heavy_in(modules) == []


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["--version"], ()),
        (["-v", "sync", "--models-root", "x"], ("provision.commands.sync",)),
        (["--log-file", "lock", "status"], ("provision.commands.status",)),  # a file named lock
        (["--log-file=x", "inspect", "f"], ("provision.commands.inspect",)),
        (["bogus"], COMMAND_MODULES),  # the error lists every choice
        (["--help"], COMMAND_MODULES),
        ([], COMMAND_MODULES),
    ],
)
def test_commands_needed_for_argv(argv: list[str], wanted: tuple[str, ...]) -> None:
    assert _commands_for(argv) == wanted


def test_each_command_module_registers_the_command_of_its_name() -> None:
    # _commands_for maps a command to its module by name; a module registering another name
    # would make that command unreachable.
    import argparse

    for module in COMMAND_MODULES:
        name = command_name(module)
        parser = build_parser([name])
        (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert list(subparsers.choices) == [name]


def test_plan_formats_match_its_renderers() -> None:
    from provision.commands.plan import FORMATS
    from provision.lock.plan_render import RENDERERS

    assert tuple(sorted(RENDERERS)) == FORMATS
