"""What the found items are, asked of Civitai: a version id directly, a hash through
`GET /api/v1/model-versions/by-hash/{hash}` (any hash type; reference/civitai-hf.md §1.1), a
pasted Civitai or Hugging Face URL as such, another URL only with its sha256. Anything else,
or anything Civitai does not know, is returned as unresolved with the reason."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from provision.errors import NotFound, SdprovError
from provision.importers import Found, Unresolved
from provision.kinds import Kind
from provision.lock.lockfile import Lockfile
from provision.lock.source_view import source_view
from provision.manifest.refs import CIVITAI_HOSTS, parse_civitai
from provision.sources import SourceContext
from provision.sources.civitai import MODEL_TYPE_KINDS, CivitaiApi

_HF_FILE: Final = re.compile(r"^/([^/]+)/([^/]+)/(?:resolve|blob)/([^/]+)/(.+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    found: Found
    kind: Kind
    entry: dict[str, Any]  # the manifest entry, e.g. {"civitai": "58390@62833"}
    key: tuple[str, ...]  # what makes two items the same model file
    sha256: str | None = None
    label: str = ""


def resolve_all(
    items: list[Found], ctx: SourceContext, lock: Lockfile | None
) -> tuple[list[Resolved], list[Unresolved], list[Resolved]]:
    """(new entries, unresolved items, items the lock already has)."""
    have_sha = {e.sha256 for e in lock.models} if lock else set()
    have_keys = {_lock_key(e) for e in lock.models} if lock else set()
    new: list[Resolved] = []
    known: list[Resolved] = []
    unresolved: list[Unresolved] = []
    seen: set[tuple[str, ...]] = set()
    with ctx.client() as client:
        api = CivitaiApi(client, ctx)
        for found in items:
            try:
                result = _resolve(found, api)
            except SdprovError as exc:
                result = Unresolved(found=found, reason=_reason(exc))
            if isinstance(result, Unresolved):
                unresolved.append(result)
            elif result.key in have_keys or (result.sha256 and result.sha256 in have_sha):
                known.append(result)
            elif result.key not in seen:
                seen.add(result.key)
                new.append(result)
    return new, unresolved, known


def _reason(exc: SdprovError) -> str:
    if isinstance(exc, NotFound):
        return "Civitai does not know it (not found)"
    return exc.message


def _lock_key(entry: Any) -> tuple[str, ...]:
    view = source_view(entry)
    if view.type == "civitai":
        return ("civitai", str(view.version_id), str(view.file_id))
    if view.type == "hf":
        return ("hf", str(view.repo), str(view.path))
    return ("url", str(view.url))


def _resolve(found: Found, api: CivitaiApi) -> Resolved | Unresolved:
    what = found.describe()
    url = found.url or ""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if found.version_id is not None:
        return _from_version(
            found, api.get_json(f"/api/v1/model-versions/{found.version_id}", what)
        )
    if host in CIVITAI_HOSTS:
        ref = parse_civitai(url)
        version_id = ref.version_id
        if version_id is None:
            model = api.get_json(f"/api/v1/models/{ref.model_id}", what)
            version_id = int((model.get("modelVersions") or [{}])[0].get("id") or 0)
        return _from_version(found, api.get_json(f"/api/v1/model-versions/{version_id}", what))
    if host in ("huggingface.co", "hf.co") and (
        match := _HF_FILE.match(urllib.parse.urlsplit(url).path)
    ):
        return _from_hf(found, *(urllib.parse.unquote(g) for g in match.groups()))
    if found.hash:
        path = f"/api/v1/model-versions/by-hash/{urllib.parse.quote(found.hash, safe='')}"
        return _from_version(found, api.get_json(path, what), by_hash=found.hash)
    if url and found.sha256:
        return _with_kind(found, {"url": url, "sha256": found.sha256}, ("url", url), found.sha256)
    if url:
        return Unresolved(found=found, reason="a URL without a sha256 cannot be pinned; "
                          f"`sdprov add {url} --sha256 HEX` once you know it")  # fmt: skip
    if found.kind is None and found.folder:
        return _with_kind(found, {}, (), None)  # says which folder has no section
    return Unresolved(
        found=found,
        reason="only a file name (no hash, URL or Civitai id says which file it is); "
        "find it and `sdprov add` it",
    )


def _from_version(
    found: Found, version: dict[str, Any], by_hash: str | None = None
) -> Resolved | Unresolved:
    model_type = str((version.get("model") or {}).get("type") or "")
    kind = MODEL_TYPE_KINDS.get(model_type)
    if kind is None:
        listed = model_type or "an unknown type"
        return Unresolved(
            found=found, reason=f"Civitai lists it as {listed}, which has no manifest section"
        )
    files = [f for f in version.get("files") or [] if isinstance(f, dict)]
    chosen = next((f for f in files if by_hash and _has_hash(f, by_hash)), None)
    primary = next((f for f in files if f.get("primary")), files[0] if files else None)
    if chosen is None:
        chosen = primary
    if chosen is None:
        return Unresolved(found=found, reason=f"version {version.get('id')} has no files")
    entry: dict[str, Any] = {"civitai": f"{version['modelId']}@{version['id']}"}
    if chosen is not primary:
        entry["file_id"] = int(chosen["id"])
    stem = PurePosixPath(str(chosen.get("name") or "")).stem
    if found.name and found.name != stem:
        entry["name"] = found.name  # prompts and loaders refer to the file by this name
    sha = str((chosen.get("hashes") or {}).get("SHA256") or "").lower() or None
    label = f"{(version.get('model') or {}).get('name')} {version.get('name')}"
    key = ("civitai", str(version["id"]), str(chosen["id"]))
    return Resolved(found=found, kind=kind, entry=entry, key=key, sha256=sha, label=label)


def _has_hash(file: dict[str, Any], wanted: str) -> bool:
    return wanted.upper() in {str(v).upper() for v in (file.get("hashes") or {}).values()}


def _from_hf(
    found: Found, owner: str, repo: str, revision: str, path: str
) -> Resolved | Unresolved:
    ref = f"{owner}/{repo}/{path}" + ("" if revision == "main" else f"@{revision}")
    entry: dict[str, Any] = {"hf": ref}
    if found.sha256:
        entry["sha256"] = found.sha256
    return _with_kind(found, entry, ("hf", f"{owner}/{repo}", path), found.sha256)


def _with_kind(
    found: Found, entry: dict[str, Any], key: tuple[str, ...], sha: str | None
) -> Resolved | Unresolved:
    if found.kind is None:
        where = f"ComfyUI folder {found.folder!r}" if found.folder else "its folder"
        return Unresolved(found=found, reason=f"{where} has no manifest section in this sdprov")
    stem = PurePosixPath(urllib.parse.urlsplit(str(entry.get("url") or entry.get("hf"))).path).stem
    if found.name and found.name != stem.split("@")[0]:
        entry["name"] = found.name
    return Resolved(
        found=found, kind=found.kind, entry=entry, key=key, sha256=sha, label=str(key[-1])
    )
