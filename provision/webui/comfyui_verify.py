"""Lock vs what ComfyUI lists: one row per locked model, in the shapes `verify` reports.

ComfyUI names a model by its path under the category's root folder (`sub/x.safetensors`), and it
merges the roots of a category into one sorted set: a same-named file under another root is
indistinguishable from ours through the API (reported in the notes, never as a failure).
"""

from __future__ import annotations

from pathlib import Path

from provision.lock.lockfile import LockEntry, Lockfile
from provision.webui.client import RefreshOutcome, WebuiClient
from provision.webui.comfyui_client import (
    ComfyListing,
    ComfyuiClient,
    categories_of,
    comfy_name,
    touch_folders,
)
from provision.webui.verify import RowStatus, WebuiReport, WebuiRow


def comfy_rows(lock: Lockfile, listing: ComfyListing) -> list[WebuiRow]:
    return [_row(entry, listing) for entry in sorted(lock.models, key=lambda m: m.sort_key)]


def _row(entry: LockEntry, listing: ComfyListing) -> WebuiRow:
    name, why = comfy_name(entry)
    if name is None:
        return _make(entry, name, RowStatus.MISSING, why)
    categories = [c for c in categories_of(entry.kind) if c in listing.categories]
    if not categories:
        wanted = " or ".join(categories_of(entry.kind))
        reason = f"ComfyUI {listing.version} has no {wanted} category"
        return _make(entry, name, RowStatus.MISSING, reason)
    if any(name in listing.files.get(c, frozenset()) for c in categories):
        return _make(entry, name, RowStatus.LISTED)
    reason = (
        f"ComfyUI does not list it in {'/'.join(categories)}: is it started with "
        "--extra-model-paths-config from `sdprov webui args --ui comfyui`?"
    )
    return _make(entry, name, RowStatus.MISSING, reason)


def _make(entry: LockEntry, name: str | None, status: RowStatus, reason: str = "") -> WebuiRow:
    return WebuiRow(
        name=entry.name,
        kind=entry.kind,
        family=entry.base,
        path=entry.path,
        webui_name=name,
        status=status,
        reason=reason,
    )


def comfy_refresh_and_verify(client: WebuiClient, lock: Lockfile, models_root: Path) -> WebuiReport:
    """Make ComfyUI rebuild its listings of the folders we wrote, then check each locked file."""
    refreshes: tuple[RefreshOutcome, ...] = touch_folders(lock.models, models_root)
    comfy = ComfyuiClient(client)
    listing = comfy.listing({m.kind for m in lock.models})
    rows = comfy_rows(lock, listing)
    notes = (f"server: ComfyUI {listing.version}",)
    return WebuiReport(url=client.url, rows=tuple(rows), refreshes=refreshes, notes=notes)


def comfy_listing_rows(client: WebuiClient, lock: Lockfile) -> list[WebuiRow]:
    """Read-only (for `status --webui`): what ComfyUI lists now, with no mtime bump."""
    listing = ComfyuiClient(client).listing({m.kind for m in lock.models})
    return comfy_rows(lock, listing)
