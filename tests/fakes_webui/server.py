"""A WebUI-compatible API server for tests: A1111 1.6, A1111 1.10 and Forge variants.

It lists real files from the folders it is pointed at using WebUI's own rules, so a layout
mistake shows up as a missing model. Sources of each rule (reference/webui-formats.md §1–3):

- checkpoints: `sd_models.list_models` — `.ckpt`/`.safetensors` (Forge also `.gguf`), recursive
  with followlinks, `*.vae.ckpt`/`*.vae.safetensors` excluded, name = path relative to the dir;
  `sha256` from the hash cache when `getmtime(file) <= cached mtime` (`hashes.sha256_from_cache`).
- VAEs: `sd_vae.refresh_vae_list` — `**/*.{ckpt,pt,safetensors}` in the VAE dir plus `*.vae.*` in
  the checkpoint dir, name = basename. Forge: `sd-vae` is gone; `sd-modules` lists
  `main_entry.module_list` (os.walk without followlinks, keyed by basename), rebuilt only by a UI
  page load or refresh button (`ui_refresh()` here), not by `refresh-vae`.
- LoRAs: `networks.list_available_networks` — `.pt/.ckpt/.safetensors`, name = stem, the last
  one wins; A1111 also scans the LyCORIS dir, Forge does not. The LoRA routes are added with
  `@app.get/post` in `lora_script.py`, so they are not behind `--api-auth`.
- embeddings: `textual_inversion.EmbeddingDatabase` — os.walk followlinks, size-0 files skipped,
  name = stem; "skipped" when the vector width ≠ the loaded model's; reloaded when the top dir's
  mtime increased at the next generation (`generate()` here), or forced by `refresh-embeddings`
  (1.8+; 404 on 1.6). That route calls `load_textual_inversion_embeddings(force_reload=True)`,
  whose `get_expected_shape` reads `shared.sd_model`: with no model loaded WebUI loads (and
  hashes) a checkpoint first, and answers 500 when none can load (`checkpoint_loads` counts
  the loads here; `GET /embeddings` only reads the lists). The width is read from the safetensors header (`.pt`/`.bin` are counted
  as fitting: reading them needs torch).
- hypernetworks: `hypernetwork.list_hypernetworks` — `**/*.pt` (case-sensitive), name = stem,
  `None` ignored; rescanned only at start (`restart()` here): there is no refresh route.
- hash cache: 1.6 loads `cache.json` once, at first use, and rewrites it from memory after a
  change (`dump_cache()` here); 1.10/Forge read diskcache on every lookup.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import diskcache


class Variant(enum.StrEnum):
    A1111_16 = "a1111-1.6"
    A1111_110 = "a1111-1.10"
    FORGE = "forge"


@dataclass(frozen=True, slots=True, kw_only=True)
class Dirs:
    ckpt: Path
    vae: Path
    lora: Path
    embeddings: Path
    hypernetworks: Path
    data: Path
    lycoris: Path | None = None

    @classmethod
    def under(cls, models_root: Path, data_dir: Path) -> Dirs:
        """The folders `sdprov webui args` points WebUI at."""
        return cls(
            ckpt=models_root / "Stable-diffusion",
            vae=models_root / "VAE",
            lora=models_root / "Lora",
            embeddings=models_root / "embeddings",
            hypernetworks=models_root / "hypernetworks",
            data=data_dir,
        )


def _walk(root: Path, *, followlinks: bool = True) -> Iterator[Path]:
    if not root.is_dir():
        return
    for dirpath, _dirs, files in os.walk(root, followlinks=followlinks):
        for name in sorted(files):
            yield Path(dirpath) / name


def safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        if size > path.stat().st_size:
            raise ValueError(f"{path}: not a safetensors file")
        header = json.loads(fh.read(size))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not an object")
    return header


def embedding_width(path: Path) -> int | None:
    """Vector width as A1111 computes it; None when it cannot be read without torch."""
    if path.suffix.lower() != ".safetensors":
        return None
    tensors = {k: v for k, v in safetensors_header(path).items() if k != "__metadata__"}
    if "clip_g" in tensors and "clip_l" in tensors:
        return int(tensors["clip_g"]["shape"][-1]) + int(tensors["clip_l"]["shape"][-1])
    first = next(iter(tensors.values()))
    return int(first["shape"][-1])


@dataclass
class FakeState:
    """The WebUI process's in-memory lists (what a real WebUI keeps between requests)."""

    checkpoints: dict[str, Path] = field(default_factory=dict)
    vaes: dict[str, Path] = field(default_factory=dict)
    modules: dict[str, Path] = field(default_factory=dict)  # Forge sd-modules
    loras: dict[str, Path] = field(default_factory=dict)
    embeddings_loaded: dict[str, tuple[Path, int | None]] = field(default_factory=dict)
    embeddings_skipped: dict[str, tuple[Path, int | None]] = field(default_factory=dict)
    embeddings_mtime: float | None = None
    hypernetworks: dict[str, Path] = field(default_factory=dict)
    json_cache: dict[str, Any] | None = None  # 1.6: cache.json as loaded into memory


class FakeWebui:
    """Start with `with FakeWebui(variant, dirs) as webui:`; `webui.url` is the base URL."""

    def __init__(
        self,
        variant: Variant,
        dirs: Dirs,
        *,
        auth: tuple[str, str] | None = None,
        model_width: int = 768,
        model_loaded: bool = True,
    ) -> None:
        self.variant = variant
        self.dirs = dirs
        self.auth = auth
        self.model_width = model_width
        self.model_loaded = model_loaded
        self.state = FakeState()
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, sent credentials)
        self.checkpoint_loads = 0  # checkpoints loaded on behalf of an API call
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits for it, and tests start many servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.restart()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeWebui:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what WebUI does on its own ------------------------------------------------------------

    def restart(self) -> None:
        """A fresh start: every list is rebuilt, cache.json is read again."""
        with self._lock:
            self.state = FakeState()
            self._scan_checkpoints()
            self._scan_vaes()
            self._scan_modules()
            self._scan_loras()
            self._scan_hypernetworks()
            if self.model_loaded:
                self._load_embeddings()

    def generate(self) -> None:
        """A generation: reloads embeddings only if a top-level dir's mtime increased."""
        with self._lock:
            if self.model_loaded and self._embeddings_changed():
                self._load_embeddings()

    def ui_refresh(self) -> None:
        """Forge: a browser page load / the refresh button rebuilds sd-modules."""
        with self._lock:
            self._scan_checkpoints()
            self._scan_modules()

    def dump_cache(self) -> None:
        """1.6: write the in-memory cache over cache.json, as WebUI does after hashing."""
        with self._lock:
            data = self._json_cache()
            (self.dirs.data / "cache.json").write_text(json.dumps(data, indent=4))

    # -- scans ---------------------------------------------------------------------------------

    def _scan_checkpoints(self) -> None:
        exts = (".ckpt", ".safetensors") + ((".gguf",) if self.variant is Variant.FORGE else ())
        found = {}
        for path in _walk(self.dirs.ckpt):
            lower = path.name.lower()
            if not lower.endswith(exts) or lower.endswith((".vae.ckpt", ".vae.safetensors")):
                continue
            found[path.relative_to(self.dirs.ckpt).as_posix()] = path
        self.state.checkpoints = found

    def _scan_vaes(self) -> None:
        if self.variant is Variant.FORGE:
            return
        candidates = [
            p for p in _walk(self.dirs.vae) if p.suffix.lower() in (".ckpt", ".pt", ".safetensors")
        ]
        candidates += [
            p
            for p in _walk(self.dirs.ckpt)
            if p.name.lower().endswith((".vae.ckpt", ".vae.pt", ".vae.safetensors"))
        ]
        self.state.vaes = {p.name: p for p in sorted(candidates, key=lambda p: str(p).lower())}

    def _scan_modules(self) -> None:
        if self.variant is not Variant.FORGE:
            return
        exts = ("ckpt", "pt", "bin", "safetensors", "gguf")
        self.state.modules = {
            p.name: p for p in _walk(self.dirs.vae, followlinks=False) if p.name.endswith(exts)
        }

    def _scan_loras(self) -> None:
        roots = [self.dirs.lora]
        if self.variant is not Variant.FORGE and self.dirs.lycoris is not None:
            roots.append(self.dirs.lycoris)
        found: dict[str, Path] = {}
        for root in roots:
            for path in _walk(root):
                if path.suffix.lower() in (".pt", ".ckpt", ".safetensors"):
                    found[path.stem] = path
        self.state.loras = found

    def _scan_hypernetworks(self) -> None:
        found = {}
        paths = sorted(self.dirs.hypernetworks.glob("**/*.pt"), key=lambda p: str(p).lower())
        for path in paths:
            if path.stem != "None":
                found[path.stem] = path
        self.state.hypernetworks = found

    def _embeddings_changed(self) -> bool:
        if not self.dirs.embeddings.is_dir():
            return False
        mtime = self.dirs.embeddings.stat().st_mtime  # == os.path.getmtime
        return self.state.embeddings_mtime is None or mtime > self.state.embeddings_mtime

    def _load_embeddings(self) -> None:
        loaded: dict[str, tuple[Path, int | None]] = {}
        skipped: dict[str, tuple[Path, int | None]] = {}
        for path in _walk(self.dirs.embeddings):
            if path.stat().st_size == 0 or path.suffix.lower() not in (
                ".pt",
                ".bin",
                ".safetensors",
            ):
                continue
            width = embedding_width(path)
            shape = width if width is not None else self.model_width
            target = loaded if shape == self.model_width else skipped
            target[path.stem] = (path, shape)
        self.state.embeddings_loaded = loaded
        self.state.embeddings_skipped = skipped
        if self.dirs.embeddings.is_dir():
            self.state.embeddings_mtime = self.dirs.embeddings.stat().st_mtime

    # -- hash cache ----------------------------------------------------------------------------

    def _json_cache(self) -> dict[str, Any]:
        if self.state.json_cache is None:
            path = self.dirs.data / "cache.json"
            self.state.json_cache = json.loads(path.read_text()) if path.is_file() else {}
        return self.state.json_cache

    def cached_sha256(self, subsection: str, title: str, filename: Path) -> str | None:
        """`hashes.sha256_from_cache`: None when missing or when the file is newer."""
        if self.variant is Variant.A1111_16:
            entry = self._json_cache().get(subsection, {}).get(title)
        else:
            with diskcache.Cache(
                str(self.dirs.data / "cache" / subsection),
                size_limit=2**32,
                disk_min_file_size=2**18,
            ) as cache:
                entry = cache.get(title)
        if not isinstance(entry, dict) or entry.get("sha256") is None:
            return None
        if filename.stat().st_mtime > entry.get("mtime", 0):  # WebUI: os.path.getmtime
            return None
        return str(entry["sha256"])

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self) -> dict[tuple[str, str], tuple[Any, bool]]:
        """(method, path) → (handler, behind --api-auth)."""
        table: dict[tuple[str, str], tuple[Any, bool]] = {
            ("GET", "/sdapi/v1/sd-models"): (self._sd_models, True),
            ("GET", "/sdapi/v1/loras"): (self._loras, False),
            ("POST", "/sdapi/v1/refresh-loras"): (self._refresh_loras, False),
            ("GET", "/sdapi/v1/embeddings"): (self._embeddings, True),
            ("GET", "/sdapi/v1/hypernetworks"): (self._hypernetworks, True),
            ("POST", "/sdapi/v1/refresh-checkpoints"): (self._refresh_checkpoints, True),
            ("POST", "/sdapi/v1/refresh-vae"): (self._refresh_vae, True),
            ("GET", "/internal/ping"): (lambda: {}, False),
        }
        if self.variant is Variant.FORGE:
            table[("GET", "/sdapi/v1/sd-modules")] = (self._sd_modules, True)
        else:
            table[("GET", "/sdapi/v1/sd-vae")] = (self._sd_vae, True)
        if self.variant is not Variant.A1111_16:
            table[("POST", "/sdapi/v1/refresh-embeddings")] = (self._refresh_embeddings, True)
            table[("GET", "/sdapi/v1/schedulers")] = (
                lambda: [{"name": "karras", "label": "Karras"}],
                True,
            )
        return table

    def _sd_models(self) -> list[dict[str, Any]]:
        out = []
        for name, path in self.state.checkpoints.items():
            sha = self.cached_sha256("hashes", f"checkpoint/{name}", path)
            short = sha[:10] if sha else None
            config = path.with_suffix(".yaml")
            out.append(
                {
                    "title": f"{name} [{short}]" if short else name,
                    "model_name": str(Path(name.replace("/", "_")).with_suffix("")),
                    "hash": short,
                    "sha256": sha,
                    "filename": str(path),
                    "config": str(config) if config.is_file() else None,
                }
            )
        return out

    def _sd_vae(self) -> list[dict[str, str]]:
        return [{"model_name": n, "filename": str(p)} for n, p in self.state.vaes.items()]

    def _sd_modules(self) -> list[dict[str, str]]:
        return [{"model_name": n, "filename": str(p)} for n, p in self.state.modules.items()]

    def _loras(self) -> list[dict[str, Any]]:
        out = []
        for name, path in self.state.loras.items():
            meta: dict[str, Any] = {}
            if path.suffix.lower() == ".safetensors":
                # A1111 reports a bad header and still lists the LoRA, without metadata.
                with contextlib.suppress(ValueError):
                    meta = dict(safetensors_header(path).get("__metadata__", {}))
            out.append(
                {
                    "name": name,
                    "alias": meta.get("ss_output_name", name),
                    "path": str(path),
                    "metadata": meta,
                }
            )
        return out

    def _embeddings(self) -> dict[str, Any]:
        def convert(items: dict[str, tuple[Path, int | None]]) -> dict[str, Any]:
            return {
                name: {
                    "step": None,
                    "sd_checkpoint": None,
                    "sd_checkpoint_name": None,
                    "shape": shape,
                    "vectors": 1,
                }
                for name, (_path, shape) in sorted(items.items(), key=lambda kv: kv[0].lower())
            }

        return {
            "loaded": convert(self.state.embeddings_loaded),
            "skipped": convert(self.state.embeddings_skipped),
        }

    def _hypernetworks(self) -> list[dict[str, str]]:
        return [{"name": n, "path": str(p)} for n, p in self.state.hypernetworks.items()]

    def _refresh_checkpoints(self) -> None:
        self._scan_checkpoints()

    def _refresh_vae(self) -> None:
        self._scan_vaes()  # Forge: sd_vae's own dict only; sd-modules is untouched

    def _refresh_loras(self) -> None:
        self._scan_loras()

    def _refresh_embeddings(self) -> None:
        if not self.model_loaded:
            # get_expected_shape → shared.sd_model → load_model(): minutes and GBs on a real box.
            if not self.state.checkpoints:
                raise _ServerError(
                    500,
                    {
                        "error": "FileNotFoundError",
                        "detail": "",
                        "body": "",
                        "errors": "No checkpoints found. When searching for checkpoints, "
                        f"looked at: file {self.dirs.ckpt}",
                    },
                )
            self.checkpoint_loads += 1
            self.model_loaded = True
        self._load_embeddings()

    def handle(
        self, method: str, path: str, authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        sent = authorization is not None
        self.requests.append((method, path, sent))
        table = self.routes()
        if (method, path) not in table:
            if any(p == path for _m, p in table):
                return 405, {"detail": "Method Not Allowed"}, {}
            return 404, {"detail": "Not Found"}, {}
        handler, protected = table[(method, path)]
        if protected and self.auth is not None and not self._authorized(authorization):
            # FastAPI's HTTPBasic: 401 with a challenge, same body for missing or wrong.
            return 401, {"detail": "Incorrect username or password"}, {"WWW-Authenticate": "Basic"}
        with self._lock:
            try:
                return 200, handler(), {}
            except _ServerError as exc:
                return exc.status, exc.body, {}

    def _authorized(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Basic "):
            return False
        assert self.auth is not None
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return authorization[6:] == expected


class _ServerError(Exception):
    """What A1111's api exception handler turns into a JSON error answer."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _handler_for(webui: FakeWebui) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body, headers = webui.handle(
                method, self.path.split("?", 1)[0], self.headers.get("Authorization")
            )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet tests

    return Handler
