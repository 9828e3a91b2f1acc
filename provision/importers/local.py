"""`import --models-root DIR`: a loader node or prompt names a file but nothing says which
one; if that file is in the models folder, its sha256 says (Civitai's by-hash then knows it,
or does not). Hashing reads the whole file once; only names nothing else identified get here."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from provision.importers import Found

_CHUNK = 1 << 20


def identify_locally(items: list[Found], root: Path) -> list[Found]:
    return [_by_file(item, root) if _only_a_name(item) else item for item in items]


def _only_a_name(item: Found) -> bool:
    return bool(item.name) and not (item.hash or item.url or item.version_id or item.sha256)


def _by_file(item: Found, root: Path) -> Found:
    folders = [f for f in (item.kind.folder if item.kind else None, item.folder) if f]
    matches = sorted(
        {
            path
            for folder in folders
            for path in (root / folder).rglob(f"{item.name}.*")
            if path.is_file() and not path.is_symlink() and path.suffix != ".json"
        }
    )
    if len(matches) != 1:
        return item  # none, or several candidates: still unresolved, never guessed
    digest = hashlib.sha256()
    with matches[0].open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    sha = digest.hexdigest()
    return replace(item, hash=sha, sha256=sha)
