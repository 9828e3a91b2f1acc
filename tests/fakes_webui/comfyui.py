"""A ComfyUI-compatible server for tests, following ComfyUI's own routes and listing rules.

Read from ComfyUI (folder_paths.py at commit 00db33f6, server.py's routes, utils/extra_config.py;
reference/comfyui-and-cards.md §1):

- categories come from the built-in table plus an `extra_model_paths.yaml` read with
  `load_extra_path_config`'s rules: per section an optional `base_path` (relative → against the
  YAML's folder), every other key a category whose string value is split on newlines; `clip` →
  `text_encoders`, `unet` → `diffusion_models`; an unknown key makes a category with no
  extension filter.
- `GET /models` → category names; `GET /models/{c}` → sorted names relative to each root, `/`
  between subfolders, filtered by extension (lower-cased suffix), merged across roots; unknown
  category → 404 with an empty body. `GET /embeddings` → embedding names without extension.
  `GET /system_stats` → `{"system": {"comfyui_version": …}, "devices": […]}`. Each route is
  also served under `/api`.
- `get_filename_list` caches each category's files with the mtime of every folder walked and
  rebuilds only when one of those mtimes differs, or a root folder that was missing appears.
  `scans` counts the rebuilds so a test can see the cache at work.
- ComfyUI has no login: `auth` puts basic auth in front of every route, as the cloud's nginx does.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

MODEL_EXTS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})
BUILT_IN = (
    *("checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models"),
    *("clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet"),
    *("gligen", "upscale_models", "latent_upscale_models", "hypernetworks", "photomaker"),
    *("classifiers", "model_patches", "audio_encoders"),
)
LEGACY = {"clip": "text_encoders", "unet": "diffusion_models"}
VERSION = "0.33.0"


def _extensions(category: str) -> frozenset[str]:
    if category == "configs":
        return frozenset({".yaml"})
    if category == "diffusers":
        return frozenset({"folder"})  # folder_paths lists diffusers folders, not files
    return MODEL_EXTS


class FakeComfyUI:
    """`with FakeComfyUI(comfy_dir, extra_yaml=path) as comfy:`; `comfy.url` is the base URL."""

    def __init__(
        self,
        comfy_dir: Path,
        *,
        extra_yaml: Path | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.auth = auth
        self.folders: dict[str, tuple[list[Path], frozenset[str]]] = {
            c: ([comfy_dir / "models" / c], _extensions(c)) for c in BUILT_IN
        }
        if extra_yaml is not None:
            self._load_extra(extra_yaml)
        self._cache: dict[str, tuple[list[str], dict[Path, float]]] = {}
        self.scans = 0
        self.requests: list[tuple[str, bool]] = []  # (path, sent credentials)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _load_extra(self, path: Path) -> None:
        config = yaml.safe_load(path.read_text())
        for section in config.values():
            base = section.get("base_path")
            base_path = None
            if base:
                base_path = Path(os.path.expandvars(base)).expanduser()
                if not base_path.is_absolute():
                    base_path = (path.parent / base_path).resolve()
            for key, value in section.items():
                if key in ("base_path", "is_default"):
                    continue
                category = LEGACY.get(key, key)
                for line in value.split("\n"):  # a list value raises, as in ComfyUI
                    if not line:
                        continue
                    folder = Path(line)
                    if base_path is not None and not folder.is_absolute():
                        folder = base_path / folder
                    self.folders.setdefault(category, ([], frozenset()))[0].append(folder)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeComfyUI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- folder_paths --------------------------------------------------------------------------

    def _scan(self, category: str) -> tuple[list[str], dict[Path, float]]:
        self.scans += 1
        roots, exts = self.folders[category]
        names: set[str] = set()
        dirs: dict[Path, float] = {}
        for root in roots:
            if not root.is_dir():
                continue
            for dirpath, dirnames, files in os.walk(root, followlinks=True):
                dirnames[:] = [d for d in dirnames if d != ".git"]
                dirs[Path(dirpath)] = Path(dirpath).stat().st_mtime
                for name in files:
                    rel = (Path(dirpath) / name).relative_to(root)
                    if not exts or rel.suffix.lower() in exts:
                        names.add(rel.as_posix())
        return sorted(names), dirs

    def _stale(self, category: str) -> bool:
        _files, dirs = self._cache[category]
        for folder, mtime in dirs.items():
            try:
                if folder.stat().st_mtime != mtime:
                    return True
            except FileNotFoundError:
                return True
        return any(root.is_dir() and root not in dirs for root in self.folders[category][0])

    def filename_list(self, category: str) -> list[str]:
        with self._lock:
            if category not in self._cache or self._stale(category):
                self._cache[category] = self._scan(category)
            return list(self._cache[category][0])

    # -- routes --------------------------------------------------------------------------------

    def handle(self, path: str, authorization: str | None) -> tuple[int, Any]:
        self.requests.append((path, authorization is not None))
        if self.auth is not None and not self._authorized(authorization):
            return 401, None
        route = path[4:] if path.startswith("/api/") else path
        if route == "/system_stats":
            system = {"os": "posix", "comfyui_version": VERSION, "python_version": "3.12"}
            return 200, {"system": system, "devices": []}
        if route == "/models":
            return 200, list(self.folders)
        if route.startswith("/models/"):
            category = route.removeprefix("/models/")
            if category not in self.folders:
                return 404, None
            return 200, self.filename_list(category)
        if route == "/embeddings":
            return 200, [
                n.rsplit(".", 1)[0] if "." in n else n for n in self.filename_list("embeddings")
            ]
        return 404, None

    def _authorized(self, authorization: str | None) -> bool:
        assert self.auth is not None
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return authorization == f"Basic {expected}"


def _handler_for(comfy: FakeComfyUI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = comfy.handle(
                self.path.split("?", 1)[0], self.headers.get("Authorization")
            )
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="comfyui"')
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet tests

    return Handler
