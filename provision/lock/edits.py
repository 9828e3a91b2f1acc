"""Manifest edits that keep the lock in step: the new text is locked before anything is
written, so a reference that does not resolve (or breaks the base-model check) leaves both
files as they were. Used by `sdprov add`, `remove` and `import`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provision.errors import LockfileError, UsageError
from provision.lock.compat import compat_check
from provision.lock.lockfile import Lockfile, lock_path_for, write_text_atomic
from provision.lock.resolve import LockOutcome, lock_manifest
from provision.manifest.parse import Manifest, ModelSpec, load_manifest, parse_manifest
from provision.sources import SourceContext


@dataclass(frozen=True, slots=True, kw_only=True)
class Relocked:
    manifest: Manifest
    outcome: LockOutcome
    lock_path: Path
    lock_changed: bool


def read_manifest_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""  # `sdprov add` may start a manifest
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def previous_lock(lock_path: Path) -> Lockfile | None:
    try:
        return Lockfile.load(lock_path)
    except LockfileError:
        if lock_path.exists():
            raise  # a corrupt lock is reported, never silently replaced
        return None


def relock_and_write(path: Path, new_text: str, ctx: SourceContext, *, jobs: int = 4) -> Relocked:
    """Lock `new_text` as the manifest at `path`; write both files only if that succeeds."""
    manifest = parse_manifest(new_text.encode("utf-8"), str(path))
    if manifest.includes:
        from provision.manifest.includes import resolve_includes

        manifest = resolve_includes(manifest)
    lock_path = lock_path_for(path)
    outcome = lock_manifest(
        manifest, previous_lock(lock_path), ctx, jobs=jobs, compat_check=compat_check
    )
    write_text_atomic(path, new_text)
    changed = outcome.lockfile.write(lock_path)
    return Relocked(manifest=manifest, outcome=outcome, lock_path=lock_path, lock_changed=changed)


def specs_named(path: Path, names: list[str]) -> Iterator[tuple[str, ModelSpec]]:
    """The manifest entries `names` refer to: an entry's `name:`, or the name its lock entry
    has (the source's file stem). Unknown names and entries of included files are errors."""
    manifest = load_manifest(path)
    lock = previous_lock(lock_path_for(path))
    locked = {e.entry_digest: e.name for e in lock.models} if lock else {}
    own = str(path)
    known: dict[str, list[ModelSpec]] = {}
    for spec in manifest.specs:
        for name in {spec.name, locked.get(spec.digest)} - {None}:
            known.setdefault(str(name), []).append(spec)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"{path}: no entry named {', '.join(unknown)}",
            hint=f"names: {', '.join(sorted(known)) or '(none)'}",
        )
    for name in names:
        for spec in known[name]:
            if spec.location.file != own:
                raise UsageError(
                    f"{name} is defined in {spec.location} (an included manifest)",
                    hint=f"remove it there: sdprov remove {name} --manifest {spec.location.file}",
                )
            yield name, spec
