"""Model cards beside each Civitai model: written after the model is placed and verified,
tracked in state (`sidecars`), rewritten when their inputs change, removed with their model.

A card file is ours only while state records it and its bytes still hash to what we wrote: a
file we did not write, or one the user edited since, is never overwritten or deleted, only
reported (`left_alone`). A card that cannot be made (Civitai down, a broken image) is a warning,
never a failed sync: the model itself is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import SdprovError, SourceError
from provision.lock.lockfile import LockEntry, Lockfile
from provision.sources.locked import CivitaiSource
from provision.sync.card_content import (
    preview_request_url,
    render_json,
    sidecar_path,
    to_png,
    user_metadata,
    vae_choice,
)
from provision.sync.classify import symlink_on_path
from provision.sync.state import Sidecar, State

if TYPE_CHECKING:  # the network stack loads only when a card is fetched
    import httpx

    from provision.sources import SourceContext

MAX_PREVIEW_BYTES = 32 << 20
CARD_JOBS = 4  # API calls at once; sync passes its --jobs (the same politeness as downloads)


@dataclass(slots=True, kw_only=True)
class CardResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    left_alone: dict[str, str] = field(default_factory=dict)  # path → why
    failures: dict[str, str] = field(default_factory=dict)  # model path → why no card

    def to_json(self) -> dict[str, Any]:
        return {
            "written": sorted(self.written),
            "removed": sorted(self.removed),
            "left_alone": dict(sorted(self.left_alone.items())),
            "failures": dict(sorted(self.failures.items())),
        }


def sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def wants_cards(entry: LockEntry) -> bool:
    return isinstance(entry.source, CivitaiSource)


def inputs_digest(entry: LockEntry, vae: str | None) -> str:
    """What a model's cards are made from; the model's own sha256 included (a new version)."""
    card = entry.card.to_raw() if entry.card else None
    raw = {"sha256": entry.sha256, "path": entry.path, "base": entry.base.value, "vae": vae,
           "card": card, "preview_url": entry.preview_url,
           "trained_words": list(entry.trained_words)}  # fmt: skip
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


def roles_of(entry: LockEntry) -> tuple[str, ...]:
    roles = ("metadata", "info")
    return (*roles, "preview") if entry.preview_url else roles


def ownership(root: Path, path: str, state: State) -> str | None:
    """None when the file is absent or ours to replace; else why it must be left alone."""
    if symlink_on_path(root, path) is not None:
        return "a symlink is on its path (not followed)"
    on_disk = sha256_of(root / path)
    if on_disk is None:
        return None
    record = state.sidecars.get(path)
    if record is None:
        return "not written by sdprov"
    if record.sha256 != on_disk:
        return "changed since sdprov wrote it"
    return None


def cards_pending(lock: Lockfile, root: Path, state: State) -> bool:
    """Whether `sync_cards` has anything to write or remove: a stat per card, no hashing and
    no request, so a resync with every card in place costs next to nothing."""
    wanted: set[str] = set()
    base = str(root)  # plain strings: a pathlib join per card was most of a 10,000-model no-op
    for entry in lock.models:
        if not wants_cards(entry):
            continue
        placed = state.placed.get(entry.path)
        if placed is None or placed.sha256 != entry.sha256:
            continue  # deferred: its cards wait for the model
        digest = inputs_digest(entry, vae_choice(lock.models, entry))
        for role in roles_of(entry):
            path = sidecar_path(entry, role)
            wanted.add(path)
            record = state.sidecars.get(path)
            there = os.path.exists(f"{base}/{path}")  # noqa: PTH110 - see `base`
            if record is None or record.inputs != digest or not there:
                return True
    return any(path not in wanted for path in state.sidecars)


def sync_cards(
    lock: Lockfile, root: Path, state: State, ctx: SourceContext, *, jobs: int = CARD_JOBS
) -> CardResult:
    """Bring every card in line with the lock; call after `apply` (placed models only).

    One API call per model: `jobs` of them at once (a thousand models one by one was most of
    a first sync), and the state saved in batches."""
    wanted: dict[str, str] = {}  # sidecar path → model path
    deferred = set()  # locked models not in place this run: their cards wait, untouched
    todo: list[tuple[LockEntry, str | None]] = []
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        placed = state.placed.get(entry.path)
        if not wants_cards(entry):
            continue
        if placed is None or placed.sha256 != entry.sha256:
            deferred.add(entry.path)
            continue
        for role in roles_of(entry):
            wanted[sidecar_path(entry, role)] = entry.path
        todo.append((entry, vae_choice(lock.models, entry)))
    results: list[CardResult] = []
    with state.batched(), ctx.client() as client:
        if todo:
            with ThreadPoolExecutor(max(1, min(jobs, len(todo))), "sdprov-card") as pool:
                results = list(
                    pool.map(lambda job: _cards_for(job[0], job[1], root, state, client, ctx), todo)
                )
        result = _merged(results)
        remove_stale(root, state, wanted, deferred, result)
    return result


def _merged(results: list[CardResult]) -> CardResult:
    merged = CardResult()
    for one in results:
        merged.written += one.written
        merged.removed += one.removed
        merged.left_alone |= one.left_alone
        merged.failures |= one.failures
    return merged


def _cards_for(
    entry: LockEntry,
    vae: str | None,
    root: Path,
    state: State,
    client: httpx.Client,
    ctx: SourceContext,
) -> CardResult:
    """One model's cards (runs on a worker thread: touches only its own files)."""
    result = CardResult()
    digest = inputs_digest(entry, vae)
    todo = []
    for role in roles_of(entry):
        path = sidecar_path(entry, role)
        why = ownership(root, path, state)
        if why is not None:
            result.left_alone[path] = why
            continue
        record = state.sidecars.get(path)
        if record is None or record.inputs != digest or not (root / path).exists():
            todo.append((role, path))
    if not todo:
        return result
    try:
        contents, preview_error = _render(entry, vae, client, ctx, {role for role, _ in todo})
    except SdprovError as exc:
        result.failures[entry.path] = exc.message
        return result
    for role, path in todo:
        data = contents.get(role)
        if data is None:
            continue  # the preview failed: the other cards are still worth writing
        record = Sidecar(model=entry.path, sha256=hashlib.sha256(data).hexdigest(), inputs=digest)
        try:
            if _write(root, path, data, state, record):
                result.written.append(path)
            else:
                result.left_alone[path] = "changed while sdprov was writing it"
        except OSError as exc:
            result.failures[entry.path] = f"cannot write {path} ({exc.strerror or exc})"
    if preview_error is not None:
        result.failures[entry.path] = preview_error
    return result


def _write(root: Path, path: str, data: bytes, state: State, record: Sidecar) -> bool:
    # Recheck right before replacing: the user may have edited it while we fetched.
    if ownership(root, path, state) is not None:
        return False
    write_bytes_atomic(root / path, data, state.partial_dir)
    state.record_sidecar(path, record)
    return True


def _render(
    entry: LockEntry, vae: str | None, client: httpx.Client, ctx: SourceContext, roles: set[str]
) -> tuple[dict[str, bytes], str | None]:
    """The cards' bytes, and why the preview could not be made (None when it could)."""
    what = f"{entry.path} card"
    source = entry.source
    assert isinstance(source, CivitaiSource)  # wants_cards
    from provision.sources.civitai import CivitaiApi

    version = CivitaiApi(client, ctx).get_json(f"/api/v1/model-versions/{source.version_id}", what)
    out = {
        "metadata": render_json(user_metadata(entry, source, version, vae=vae)),
        "info": json.dumps(version, indent=4, ensure_ascii=False).encode("utf-8"),
    }
    url = entry.preview_url
    if "preview" in roles and url is not None:
        try:
            out["preview"] = to_png(_fetch_image(client, ctx, preview_request_url(url), what), what)
        except SdprovError as exc:
            return out, exc.message
    return out, None


def _fetch_image(client: httpx.Client, ctx: SourceContext, url: str, what: str) -> bytes:
    from provision.net.http import check_status, open_following, retrying

    def attempt() -> bytes:
        # No credential: the image CDN is public, and a token must never leave Civitai's API.
        with open_following(client, url) as response:
            check_status(
                response, lambda r: SourceError(f"{what}: preview answered HTTP {r.status_code}")
            )
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_PREVIEW_BYTES:
                    raise SourceError(f"{what}: preview image is larger than 32 MiB")
            return bytes(data)

    return retrying(attempt, policy=ctx.retry, what=what)


def remove_stale(
    root: Path, state: State, wanted: dict[str, str], deferred: set[str], result: CardResult
) -> None:
    """Delete the cards we wrote whose model left the lock (or no longer has that card)."""
    for path in sorted(set(state.sidecars) - set(wanted)):
        if state.sidecars[path].model in deferred:
            continue
        why = ownership(root, path, state)
        if why is None and (root / path).exists():
            (root / path).unlink()
            result.removed.append(path)
        elif why is not None:
            result.left_alone[path] = why + "; no longer tracked"
        state.forget_sidecar(path)


def card_status(lock: Lockfile, root: Path, state: State) -> dict[str, dict[str, str]]:
    """For `status`: each model's card files and whether they are ours, missing or the user's."""
    out: dict[str, dict[str, str]] = {}
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        if not wants_cards(entry):
            continue
        files = {}
        for role in roles_of(entry):
            path = sidecar_path(entry, role)
            why = ownership(root, path, state)
            present = (root / path).exists()
            files[path] = why or ("ok" if present else "missing")
        out[entry.path] = files
    return out


def write_bytes_atomic(path: Path, data: bytes, temp_dir: Path) -> None:
    # The temp file lives in .sdprov/partial (same file system as the models root): a sync
    # killed mid-write leaves nothing in a kind folder.
    temp_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir / f"card.{secrets.token_hex(6)}.tmp"
    try:
        with tmp.open("xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
