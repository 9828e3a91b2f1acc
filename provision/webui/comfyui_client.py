"""ComfyUI behind `sync --webui URL` / `status --webui URL`: detect it, make it rescan, list.

Read from ComfyUI's own source (folder_paths.py at 00db33f6, server.py's routes; the facts are in
reference/comfyui-and-cards.md §1):

- `GET /system_stats` answers `{"system": {"comfyui_version": …}, "devices": […]}`: A1111 and
  Forge have no such route (404), so it tells the two apart.
- `GET /models` lists the categories; `GET /models/{category}` the file names relative to each of
  the category's root folders, `/` between subfolders, merged and sorted, filtered by extension;
  an unknown category is a bare 404. Every route is also served under `/api`.
- There is no refresh route. `folder_paths.get_filename_list` keeps each category's listing with
  the mtime of every folder it walked and rebuilds it when one differs (`!=`), or when a root
  folder appears. A file renamed into a folder changes that folder's mtime, except on filesystems
  whose mtime tick is coarser than the time between ComfyUI's last listing and our write (NAS),
  or after a tool put an old mtime back. So "refresh" is: bump the mtime of every folder that
  holds a locked file, plus the category root.
- No login of its own: basic auth comes from the proxy in front (the cloud's nginx), sent the
  same way as to A1111.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from provision.kinds import KIND_FOLDERS, Kind
from provision.lock.lockfile import LockEntry
from provision.webui.client import (
    PROBE_TIMEOUT,
    RefreshOutcome,
    RefreshStatus,
    WebuiClient,
    touch_newer,
)
from provision.webui.errors import WebuiError

# folder_paths.supported_pt_extensions: what ComfyUI lists in every model category.
MODEL_EXTENSIONS: Final = frozenset(
    {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
)


def is_comfyui(client: WebuiClient) -> bool:
    """True when the server answers ComfyUI's `/system_stats` with its version field."""
    response = client._request("GET", "/system_stats", timeout=PROBE_TIMEOUT)
    if response.status_code != 200:
        return False
    try:
        data = response.json()
    except ValueError:
        return False
    system = data.get("system") if isinstance(data, dict) else None
    return isinstance(system, dict) and "comfyui_version" in system


def categories_of(kind: Kind) -> tuple[str, ...]:
    """ComfyUI's categories reading this kind's folder (ControlNet's also feeds `ipadapter`)."""
    return kind.comfyui_categories


def comfy_name(entry: LockEntry) -> tuple[str | None, str]:
    """ComfyUI's name for a locked file (path under its kind folder), or (None, why not)."""
    folder = KIND_FOLDERS[entry.kind]
    path = PurePosixPath(entry.path)
    if path.parts[0] != folder or len(path.parts) < 2:
        return None, f"not under {folder}/: ComfyUI is pointed at that folder for this kind"
    if not categories_of(entry.kind):
        return None, f"ComfyUI has no category for {entry.kind.value} files"
    if path.suffix.lower() not in MODEL_EXTENSIONS:
        return None, f"ComfyUI does not list {path.suffix or 'extensionless'} model files"
    return str(PurePosixPath(*path.parts[1:])), ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComfyListing:
    """ComfyUI's categories and, for each one asked about, the names it lists."""

    version: str
    categories: frozenset[str]
    files: dict[str, frozenset[str]]


class ComfyuiClient:
    """ComfyUI's read-only routes over a `WebuiClient`'s transport (auth, redirects, errors)."""

    def __init__(self, client: WebuiClient) -> None:
        self.client = client
        self.url = client.url

    def _json(self, route: str) -> Any:
        return self.client._json(route)

    def version(self) -> str:
        data = self._json("/system_stats")
        system = data.get("system") if isinstance(data, dict) else None
        return str(system.get("comfyui_version", "?")) if isinstance(system, dict) else "?"

    def categories(self) -> frozenset[str]:
        data = self._json("/models")
        if not isinstance(data, list):
            raise WebuiError(f"ComfyUI at {self.url}: GET /models is not a list")
        return frozenset(str(c) for c in data)

    def list_category(self, category: str) -> frozenset[str]:
        data = self._json(f"/models/{category}")
        if not isinstance(data, list):
            raise WebuiError(f"ComfyUI at {self.url}: GET /models/{category} is not a list")
        return frozenset(str(name).replace("\\", "/") for name in data)

    def listing(self, kinds: Iterable[Kind]) -> ComfyListing:
        categories = self.categories()
        wanted = {c for k in kinds for c in categories_of(k) if c in categories}
        return ComfyListing(
            version=self.version(),
            categories=categories,
            files={c: self.list_category(c) for c in sorted(wanted)},
        )


def touch_folders(entries: Iterable[LockEntry], models_root: Path) -> tuple[RefreshOutcome, ...]:
    """Bump the mtime of each folder holding a locked file and of its kind's root folder."""
    by_kind: dict[Kind, set[Path]] = {}
    for entry in entries:
        folders = by_kind.setdefault(entry.kind, set())
        root = models_root / KIND_FOLDERS[entry.kind]
        folders.add(root)
        folder = (models_root / entry.path).parent
        while folder != root and root in folder.parents:
            folders.add(folder)
            folder = folder.parent
    out = []
    for kind, folders in sorted(by_kind.items()):
        touched = [f for f in sorted(folders) if f.is_dir()]
        for folder in touched:
            touch_newer(folder)
        out.append(
            RefreshOutcome(
                kind=kind,
                route=None,
                status=RefreshStatus.FALLBACK,
                detail=f"touched {len(touched)} folder(s): ComfyUI rebuilds a listing when a "
                "folder's mtime changes (it has no refresh route)",
            )
        )
    return tuple(out)
