"""`include:` — a manifest that adds to others (a team base plus per-environment entries).

Included files are read depth-first, each once, their entries first (base before additions),
paths relative to the including file. A missing file or a cycle is reported at the `include:`
item that names it (file:line:column). Options come from the top manifest only: an
environment decides how strict its own lock is.

The manifest digest the lock records covers every file read, so editing the base makes each
environment's lock stale; a manifest without includes keeps the plain sha256 of its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

from provision.errors import Location, ManifestError, ManifestProblem
from provision.manifest.parse import Manifest, ModelSpec, _collisions, parse_manifest


def resolve_includes(top: Manifest) -> Manifest:
    reader = _Reader()
    specs = reader.visit(top, (top.path.resolve(),))
    specs.extend(top.specs)
    problems = reader.problems
    if not problems:
        problems.extend(_collisions(specs))
    if problems:
        raise ManifestError(problems)
    # Paths relative to the top file: the digest must not depend on the working directory.
    parts = [("", top.sha256)] + [
        (os.path.relpath(path, top.path.parent), sha) for path, sha in reader.files
    ]
    digest = hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()
    return replace(top, specs=tuple(specs), sha256=digest)


def included_files(manifest_path: Path) -> list[Path]:
    """Every file `manifest_path` includes, directly or not (for `lock --all`)."""
    top = parse_manifest(manifest_path.read_bytes(), str(manifest_path))
    reader = _Reader()
    reader.visit(top, (manifest_path.resolve(),))
    return [path for path, _ in reader.files]


class _Reader:
    def __init__(self) -> None:
        self.files: list[tuple[Path, str]] = []
        self.problems: list[ManifestProblem] = []
        self._seen: set[Path] = set()

    def visit(self, manifest: Manifest, chain: tuple[Path, ...]) -> list[ModelSpec]:
        specs: list[ModelSpec] = []
        for target, location in manifest.includes:
            path = manifest.path.parent / target
            key = path.resolve()
            if key in chain:
                self._cycle(chain, key, location)
                continue
            if key in self._seen:
                continue  # a diamond (two files include one base): its entries count once
            self._seen.add(key)
            child = self._parse(path, target, location)
            if child is None:
                continue
            specs.extend(self.visit(child, (*chain, key)))
            specs.extend(child.specs)
            self.files.append((path, child.sha256))
        return specs

    def _parse(self, path: Path, target: str, location: Location) -> Manifest | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self.problems.append(ManifestProblem(location, f"include {target!r}: {path} not found"))
            return None
        except OSError as exc:
            self.problems.append(
                ManifestProblem(location, f"include {target!r}: cannot read {path} ({exc})")
            )
            return None
        try:
            return parse_manifest(raw, str(path))
        except ManifestError as exc:
            self.problems.extend(exc.problems)
            return None

    def _cycle(self, chain: tuple[Path, ...], key: Path, location: Location) -> None:
        loop = [*chain[chain.index(key) :], key]
        names = " → ".join(p.name for p in loop)
        self.problems.append(ManifestProblem(location, f"include cycle: {names}"))
