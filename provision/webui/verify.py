"""Lock vs what WebUI lists, by WebUI's own naming rules.

WebUI names (reference/webui-formats.md §1, A1111 `sd_models.CheckpointInfo`, `sd_vae.get_filename`,
`Lora/networks.py`, `textual_inversion.load_from_file`, `hypernetwork.list_hypernetworks`):

| kind         | WebUI name                                        | lists from          |
|--------------|---------------------------------------------------|---------------------|
| checkpoint   | path relative to the ckpt dir, with extension     | `sd-models`         |
| lora         | file name without extension (no subfolder)        | `loras`             |
| vae          | file name with extension                          | `sd-vae`/`sd-modules`|
| embedding    | file name without extension                       | `embeddings`        |
| hypernetwork | file name without extension, `.pt` only           | `hypernetworks`     |

Where a listing carries a path, a listed model counts as ours only if that path ends with the
lock's path: so a same-named file elsewhere (another subfolder, WebUI's own models dir) is
reported as a duplicate, not mistaken for ours. Suffix, not equality, because the WebUI host may
mount the models root elsewhere.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from provision.kinds import KIND_EXTENSIONS, KIND_FOLDERS, Family, Kind
from provision.lock.lockfile import LockEntry, Lockfile
from provision.webui.client import (
    ListedModel,
    Listing,
    RefreshOutcome,
    RefreshStatus,
    WebuiClient,
)
from provision.webui.comfyui_client import is_comfyui

# Forge lists VAEs in `sd-modules`, built by `modules_forge/main_entry.refresh_models`, which runs
# when a browser loads the UI or presses its refresh button; `refresh-vae` does not touch it.
FORGE_VAE_NOTE = (
    "Forge lists VAEs in sd-modules, which only a UI page load or its refresh button rescans "
    "(refresh-vae does not)"
)


class RowStatus(enum.StrEnum):
    LISTED = "listed"
    MISSING = "missing"  # WebUI does not list it (wrong folder, extension, dir flag)
    SKIPPED = "skipped"  # embedding read but not loaded: vector width ≠ loaded checkpoint's
    DUPLICATE = "duplicate"  # WebUI's name for it belongs to another file
    HASH_MISMATCH = "hash-mismatch"  # WebUI knows a different sha256 for it
    RESTART_REQUIRED = "restart-required"  # hypernetworks: no refresh route
    PENDING = "pending"  # will be listed after WebUI's own next rescan (see reason)
    UNVERIFIED = "unverified"  # WebUI lists nothing of this kind yet (no model loaded)

    @property
    def is_problem(self) -> bool:
        return self not in (RowStatus.LISTED, RowStatus.PENDING, RowStatus.UNVERIFIED)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebuiRow:
    name: str
    kind: Kind
    family: Family
    path: str
    webui_name: str | None
    status: RowStatus
    reason: str = ""

    @property
    def problem(self) -> bool:
        return self.status.is_problem

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "family": self.family.value,
            "path": self.path,
            "webui_name": self.webui_name,
            "status": self.status.value,
            "reason": self.reason,
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WebuiReport:
    """What `sync --webui` prints and decides on: `ok` is False when any row is a problem."""

    url: str
    rows: tuple[WebuiRow, ...]
    refreshes: tuple[RefreshOutcome, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        # A refresh route that failed matters only through what WebUI then fails to list: a
        # model it lists is a success even if its route answered 500 (the detail is a note).
        return not any(row.problem for row in self.rows)

    @property
    def problems(self) -> tuple[WebuiRow, ...]:
        return tuple(row for row in self.rows if row.problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "rows": [row.to_json() for row in self.rows],
            "refreshes": [r.to_json() for r in self.refreshes],
            "notes": list(self.notes),
        }


# Kinds A1111/Forge's HTTP API lists. ControlNets (an extension route), upscalers and Forge's
# text encoders have no listing route to check against, so their rows stay unverified.
LISTED_KINDS: Final = frozenset(
    {Kind.CHECKPOINT, Kind.LORA, Kind.VAE, Kind.EMBEDDING, Kind.HYPERNETWORK}
)


def expected_name(entry: LockEntry) -> tuple[str | None, str]:
    """WebUI's name for a locked file, or (None, why WebUI will never list it there)."""
    folder = KIND_FOLDERS[entry.kind]
    path = PurePosixPath(entry.path)
    if path.parts[0] != folder:
        return None, f"not under {folder}/: WebUI reads {entry.kind.value} files only from there"
    filename = path.name
    suffix = path.suffix.lower()
    allowed = KIND_EXTENSIONS[entry.kind]
    if entry.kind is Kind.HYPERNETWORK and path.suffix != ".pt":
        # list_hypernetworks globs `**/*.pt`: case-sensitive, .pt only.
        return None, "WebUI lists hypernetworks only as `*.pt` (lowercase)"
    if suffix not in allowed:
        return None, f"WebUI does not load {suffix or 'extensionless'} {entry.kind.value} files"
    if entry.kind is Kind.CHECKPOINT:
        if filename.lower().endswith((".vae.safetensors", ".vae.ckpt")):
            return None, "WebUI treats *.vae.* files in the checkpoint dir as VAEs"
        return str(PurePosixPath(*path.parts[1:])), ""
    if entry.kind is Kind.VAE:
        return filename, ""
    if entry.kind is Kind.HYPERNETWORK and path.stem == "None":
        return None, "WebUI ignores a hypernetwork named None"
    return path.stem, ""


def _is_ours(listed: ListedModel, entry: LockEntry) -> bool:
    if listed.filename is None:
        return True  # embeddings: the API gives no path
    return listed.filename.replace("\\", "/").endswith("/" + entry.path)


def verify_listing(
    lock: Lockfile,
    listing: Listing,
    *,
    refreshes: Iterable[RefreshOutcome] = (),
) -> list[WebuiRow]:
    """One row per locked model: is it in WebUI's list, under the name WebUI gives it?"""
    refreshed = {r.kind: r for r in refreshes}
    touched = Kind.EMBEDDING in refreshed and (
        refreshed[Kind.EMBEDDING].status is RefreshStatus.FALLBACK
    )
    matcher = _Matcher(lock, listing, embeddings_touched=touched)
    return [matcher.row(entry) for entry in sorted(lock.models, key=lambda m: m.sort_key)]


class _Matcher:
    """What WebUI lists, indexed by its names, to match locked entries against."""

    def __init__(self, lock: Lockfile, listing: Listing, *, embeddings_touched: bool) -> None:
        self.lock = lock
        self.listing = listing
        self.embeddings_touched = embeddings_touched
        self.names = {m.path: expected_name(m) for m in lock.models}
        self.clash = Counter(
            (m.kind, self.names[m.path][0]) for m in lock.models if self.names[m.path][0]
        )
        widths = Counter(e.shape for e in listing.embeddings if not e.skipped and e.shape)
        self.model_width = widths.most_common(1)[0][0] if widths else None
        self.by_name: dict[Kind, dict[str, list[ListedModel]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for kind in Kind:
            for listed in listing.of(kind):
                self.by_name[kind][listed.name].append(listed)

    def row(self, entry: LockEntry) -> WebuiRow:
        if entry.kind not in LISTED_KINDS:
            reason = f"the WebUI API lists no {entry.kind.value}s; placed and verified on disk only"
            return self._row(entry, RowStatus.UNVERIFIED, reason)
        name, why = self.names[entry.path]
        if name is None:
            return self._row(entry, RowStatus.MISSING, why)
        candidates = self.by_name[entry.kind].get(name, [])
        ours = [c for c in candidates if _is_ours(c, entry)]
        if self.clash[(entry.kind, name)] > 1 and (entry.kind is Kind.EMBEDDING or not ours):
            others = [
                m.path
                for m in self.lock.models
                if m.kind is entry.kind and m.path != entry.path and self.names[m.path][0] == name
            ]
            return self._row(
                entry,
                RowStatus.DUPLICATE,
                f"WebUI names it {name!r}, like {', '.join(others)}; it keeps only one",
            )
        if ours:
            return self._listed(entry, ours[-1])
        if candidates:
            where = ", ".join(c.filename or "?" for c in candidates)
            reason = f"WebUI's {name!r} is another file: {where}"
            return self._row(entry, RowStatus.DUPLICATE, reason)
        return self._unlisted(entry)

    def _listed(self, entry: LockEntry, listed: ListedModel) -> WebuiRow:
        if listed.skipped:
            width = f"; the loaded checkpoint takes {self.model_width}" if self.model_width else ""
            return self._row(
                entry,
                RowStatus.SKIPPED,
                f"vector width {listed.shape}{width}: WebUI loads it only with a "
                f"{entry.base.value} checkpoint",
            )
        if listed.sha256 and listed.sha256 != entry.sha256:
            return self._row(
                entry,
                RowStatus.HASH_MISMATCH,
                f"WebUI has sha256 {listed.sha256[:12]}…, the lock {entry.sha256[:12]}…",
            )
        return self._row(entry, RowStatus.LISTED)

    def _unlisted(self, entry: LockEntry) -> WebuiRow:
        if entry.kind is Kind.HYPERNETWORK:
            return self._row(
                entry,
                RowStatus.RESTART_REQUIRED,
                "not listed; hypernetworks have no refresh route: restart WebUI",
            )
        if entry.kind is Kind.EMBEDDING and self.embeddings_touched:
            return self._row(
                entry,
                RowStatus.PENDING,
                "embeddings folder touched: WebUI loads it at its next generation",
            )
        if entry.kind is Kind.EMBEDDING and not self.listing.embeddings:
            return self._row(
                entry,
                RowStatus.UNVERIFIED,
                "WebUI lists no embeddings at all: it loads them with the first checkpoint",
            )
        if entry.kind is Kind.VAE and self.listing.is_forge:
            return self._row(entry, RowStatus.PENDING, FORGE_VAE_NOTE)
        return self._row(entry, RowStatus.MISSING, _missing_hint(entry.kind))

    def _row(self, entry: LockEntry, status: RowStatus, reason: str = "") -> WebuiRow:
        return WebuiRow(
            name=entry.name,
            kind=entry.kind,
            family=entry.base,
            path=entry.path,
            webui_name=self.names[entry.path][0],
            status=status,
            reason=reason,
        )


def _missing_hint(kind: Kind) -> str:
    flag = {
        Kind.CHECKPOINT: "--ckpt-dir",
        Kind.LORA: "--lora-dir",
        Kind.VAE: "--vae-dir",
        Kind.EMBEDDING: "--embeddings-dir",
        Kind.HYPERNETWORK: "--hypernetwork-dir",
    }[kind]
    return (
        f"WebUI does not list it: is it started with {flag} <models root>/{KIND_FOLDERS[kind]} "
        "(`sdprov webui args`)?"
    )


def refresh_and_verify(
    lock: Lockfile,
    models_root: Path,
    url: str,
    auth: tuple[str, str] | None,
) -> WebuiReport:
    """Tell a running WebUI to rescan every kind, then check that it lists every locked model.

    Called by `sdprov sync --webui URL` after a sync. Raises `WebuiError` only when WebUI cannot
    be reached or refuses the credentials; every per-model finding is a row of the report.
    A ComfyUI server (recognised by its `/system_stats`) is refreshed and listed its own way.
    """
    with WebuiClient(url, auth) as client:
        if is_comfyui(client):
            from provision.webui.comfyui_verify import comfy_refresh_and_verify

            return comfy_refresh_and_verify(client, lock, models_root)
        refreshes = (
            client.refresh_checkpoints(),
            client.refresh_vae(),
            client.refresh_loras(),
            client.refresh_embeddings(models_root / KIND_FOLDERS[Kind.EMBEDDING]),
            client.refresh_hypernetworks(),
        )
        listing = client.listing()
        rows = verify_listing(lock, listing, refreshes=refreshes)
        notes = _notes(refreshes, listing, lock)
        return WebuiReport(url=client.url, rows=tuple(rows), refreshes=refreshes, notes=notes)


def _notes(
    refreshes: Iterable[RefreshOutcome], listing: Listing, lock: Lockfile
) -> tuple[str, ...]:
    notes = [f"{r.kind.value}: {r.detail}" for r in refreshes if r.detail]
    if listing.is_forge and any(m.kind is Kind.VAE for m in lock.models):
        notes.append(f"vae: {FORGE_VAE_NOTE}")
    return tuple(notes)


class DiskState(enum.StrEnum):
    PRESENT = "present"  # exists with the locked size (not re-hashed: status stays cheap)
    MISSING = "missing"
    SIZE_DIFFERS = "size-differs"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRow:
    """One line of `sdprov status --webui`: lock vs disk vs WebUI for one model."""

    name: str
    kind: Kind
    family: Family
    path: str
    sha256: str
    disk: DiskState
    webui: RowStatus
    webui_name: str | None
    detail: str

    @property
    def problem(self) -> bool:
        return self.disk is not DiskState.PRESENT or self.webui.is_problem

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "family": self.family.value,
            "path": self.path,
            "sha256": self.sha256,
            "disk": self.disk.value,
            "webui": self.webui.value,
            "webui_name": self.webui_name,
            "detail": self.detail,
            "problem": self.problem,
        }


def disk_state(entry: LockEntry, models_root: Path) -> DiskState:
    try:
        size = (models_root / entry.path).stat().st_size
    except FileNotFoundError:
        return DiskState.MISSING
    return DiskState.PRESENT if size == entry.size else DiskState.SIZE_DIFFERS


def status_rows(
    lock: Lockfile,
    models_root: Path,
    url: str,
    auth: tuple[str, str] | None,
) -> list[StatusRow]:
    """Read-only: what the lock says, what is on disk, what WebUI lists now (no refresh).

    For `sdprov status --webui URL`; `--check` should exit 1 when any row's `problem` is True.
    """
    with WebuiClient(url, auth) as client:
        if is_comfyui(client):
            # Imported here: comfyui_verify builds on this module's row types.
            from provision.webui.comfyui_verify import comfy_listing_rows

            web_rows = comfy_listing_rows(client, lock)
        else:
            web_rows = verify_listing(lock, client.listing())
    by_path = {row.path: row for row in web_rows}
    out = []
    for entry in sorted(lock.models, key=lambda m: m.sort_key):
        web = by_path[entry.path]
        out.append(
            StatusRow(
                name=entry.name,
                kind=entry.kind,
                family=entry.base,
                path=entry.path,
                sha256=entry.sha256,
                disk=disk_state(entry, models_root),
                webui=web.status,
                webui_name=web.webui_name,
                detail=web.reason,
            )
        )
    return out
