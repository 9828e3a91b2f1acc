"""`sdprov lock --all`: lock (or `--check`) every manifest of the repository in one run.

Each manifest is handled as `sdprov lock MANIFEST` would; one that fails does not stop the
others, and the exit code is the worst of them. With `--json`, one object lists them all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.console import Console
from provision.errors import ManifestError, SdprovError
from provision.manifest.repo import repo_manifests

RunOne = Callable[[argparse.Namespace, Console, Path], int]


class _Collecting(Console):
    """The command's console (same verbosity, log file, secret scrubbing), except that its
    JSON objects are kept, to be printed as one at the end."""

    def __init__(self, parent: Console) -> None:  # no super().__init__: logging is set up once
        self.__dict__.update(parent.__dict__)
        self.json_mode = True
        self.objects: list[Any] = []

    def emit_json(self, obj: Any) -> None:
        self.objects.append(obj)


def run_all(args: argparse.Namespace, console: Console, run_one: RunOne) -> int:
    worst = 0
    results: list[dict[str, Any]] = []
    for path in repo_manifests(Path.cwd()):
        sub = _Collecting(console) if args.json else console
        console.info(f"{path}:")
        try:
            code = run_one(args, sub, path)
        except ManifestError as exc:
            console.info(exc.render())
            code = exc.exit_code
        except SdprovError as exc:
            console.error(exc.render())
            code = exc.exit_code
        worst = max(worst, code)
        if isinstance(sub, _Collecting):
            results.append({"manifest": str(path), "exit_code": code, **_merged(sub.objects)})
    if args.json:
        console.emit_json({"manifests": results, "ok": worst == 0})
    return worst


def _merged(objects: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for obj in objects:
        if isinstance(obj, dict):
            out.update(obj)
    return out
