"""A loopback Civitai: the REST API host and the R2/B2-like storage host it redirects to.

JSON shapes, status codes, error bodies and the order of the download checks follow
/work/shared/reference/civitai-hf.md §1 (Civitai server source), not what a client would like.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final
from urllib.parse import quote, unquote

from tests.fakes.common import (
    Content,
    Digests,
    FakeHandler,
    FakeHosts,
    Faults,
    LoopbackServer,
    Recorded,
    UrlSigner,
    Verdict,
    content_digests,
    content_size,
    s3_error_xml,
)

JSON = dict[str, Any]

SCANNED_AT: Final = "2024-01-01T00:05:00.000Z"
CREATED_AT: Final = "2024-01-01T00:00:00.000Z"
BROWSER_MARKERS: Final = ("mozilla", "chrome", "safari", "firefox", "opera", "edge")
PRIMARY_WEIGHT_TYPES: Final = frozenset({"Model", "Pruned Model"})
DEFAULT_PREFERENCE: Final[dict[str, str]] = {"format": "SafeTensor", "size": "pruned", "fp": "fp16"}
SCORE_WEIGHTS: Final = {"format": 100, "size": 10, "fp": 1}
FILE_TYPES: Final = frozenset(
    {
        "Model", "Text Encoder", "Vision Encoder", "Pruned Model", "Negative", "Training Data",
        "VAE", "Config", "Archive", "UNet", "Diffusion Model", "CLIPVision", "ControlNet",
        "Workflow", "Upscaler", "Enhancement LoRA", "Other",
    }
)  # fmt: skip
FORMATS: Final = frozenset(
    {"SafeTensor", "PickleTensor", "GGUF", "Diffusers", "Core ML", "ONNX", "Other"}
)
SIZES: Final = frozenset({"full", "pruned"})
STORAGE_BUCKET: Final = "/file/civitai-modelfiles/model"
IMAGE_PREFIX: Final = "/xG1nkqKTMzGDvpLrqFT7WA"  # image.civitai.com account segment

# baseModel -> root ecosystem used in AIRs (reference §1.8); unknown bases fall back to a slug.
_ECOSYSTEM_MEMBERS: Final[dict[str, Sequence[str]]] = {
    "sd1": ("SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 1.5 Hyper"),
    "sd2": ("SD 2.0", "SD 2.0 768", "SD 2.1", "SD 2.1 768", "SD 2.1 Unclip"),
    # Pony, Illustrious and NoobAI have parentEcosystemId SDXL.
    "sdxl": (
        "SDXL 0.9",
        "SDXL 1.0",
        "SDXL 1.0 LCM",
        "SDXL Lightning",
        "SDXL Hyper",
        "SDXL Turbo",
        "Pony",
        "Illustrious",
        "NoobAI",
    ),
    "sd3": ("SD 3", "SD 3.5", "SD 3.5 Large", "SD 3.5 Large Turbo"),
    "sd3_5m": ("SD 3.5 Medium",),
    "flux1": ("Flux.1 S", "Flux.1 D"),
    "auraflow": ("Pony V7", "AuraFlow"),
    "other": ("Upscaler", "Other"),
}
ECOSYSTEMS: Final = {base: eco for eco, bases in _ECOSYSTEM_MEMBERS.items() for base in bases}
# ModelType -> AIR type segment (reference §1.9, air.ts typeUrnMap); anything else is "unknown".
AIR_TYPES: Final = {
    "Checkpoint": "checkpoint", "LORA": "lora", "LoCon": "lycoris", "DoRA": "dora",
    "TextualInversion": "embedding", "Hypernetwork": "hypernet", "VAE": "vae",
    "Controlnet": "controlnet", "Upscaler": "upscaler", "MotionModule": "motion",
    "AestheticGradient": "ag", "TextEncoder": "text_encoders", "UNet": "unet",
    "CLIPVision": "clipvision", "CLIP": "clip", "VisionLanguage": "visionlanguage",
}  # fmt: skip


@dataclass
class FakeFile:
    id: int
    name: str  # Civitai's computed download file name, e.g. "add_detail.safetensors"
    content: Content  # a Path is streamed from disk (sendfile), never loaded
    type: str = "Model"
    format: str = "SafeTensor"
    size: str | None = "pruned"
    fp: str | None = "fp16"
    primary: bool = False
    pickle_scan: str = "Success"
    pickle_scan_message: str | None = "No Pickle imports"
    virus_scan: str = "Success"
    hashed: bool = True  # False: a fresh upload whose hashes are not computed yet ("hashes": {})

    @property
    def size_bytes(self) -> int:
        return content_size(self.content)

    @property
    def sha256(self) -> str:
        return self.digests.sha256

    @cached_property
    def digests(self) -> Digests:
        # Computed once: hashing a multi-GB bench file takes seconds.
        return content_digests(self.content)

    @property
    def metadata(self) -> dict[str, str | None]:  # keys: format, size, fp
        return {"format": self.format, "size": self.size, "fp": self.fp}

    def hashes(self, *, with_autov1: bool) -> dict[str, str]:
        if not self.hashed:
            return {}
        digests = self.digests
        out: dict[str, str] = {}
        if with_autov1 and digests.autov1 is not None:
            out["AutoV1"] = digests.autov1
        out["AutoV2"] = digests.sha256[:10].upper()
        out["SHA256"] = digests.sha256.upper()
        out["CRC32"] = digests.crc32
        return out  # BLAKE3 and AutoV3 omitted: no dependency for them


@dataclass
class FakeImage:
    """One of a version's images: `nsfwLevel` bit flags (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX)."""

    id: int
    data: bytes  # the image file as image.civitai.com serves it (JPEG, WebP, PNG)
    ext: str = "jpeg"
    nsfw_level: int = 1
    width: int = 8
    height: int = 8
    type: str = "image"


@dataclass
class FakeVersion:
    id: int
    name: str
    base_model: str
    files: list[FakeFile]
    trained_words: list[str] = field(default_factory=list)
    require_auth: bool = False
    early_access_deadline: str | None = None
    usage_control: str = "Download"
    published_at: str = "2024-01-01T00:00:00.000Z"
    status: str = "Published"
    images: list[FakeImage] = field(default_factory=list)
    description: str | None = None


@dataclass
class FakeModel:
    id: int
    name: str
    type: str
    versions: list[FakeVersion]  # newest first
    mode: str | None = None  # "Archived" | "TakenDown"
    nsfw: bool = False
    poi: bool = False


# --------------------------------------------------------------------------- pure helpers


def is_browser(user_agent: str) -> bool:
    agent = user_agent.lower()
    return any(marker in agent for marker in BROWSER_MARKERS)


def ecosystem(base_model: str) -> str:
    return ECOSYSTEMS.get(base_model) or re.sub(r"[^a-z0-9]+", "", base_model.lower()) or "other"


def file_score(file: FakeFile, preference: dict[str, str]) -> int:
    """Civitai's getPrimaryFile score: weight types first, then format > size > fp matches."""
    score = 1000
    for key, value in file.metadata.items():
        if value is None:
            continue
        weight = SCORE_WEIGHTS[key]
        score += weight if value == preference.get(key) else -weight
    if file.type in PRIMARY_WEIGHT_TYPES:
        score += 1000
    return score


def best_file(files: list[FakeFile], preference: dict[str, str]) -> FakeFile | None:
    if not files:
        return None
    # max() keeps the first of equal scores, like a stable sort on score descending.
    return max(files, key=lambda f: file_score(f, preference))


def primary_file(version: FakeVersion) -> FakeFile | None:
    """The file flagged primary by the test, else the one Civitai's scoring would pick."""
    flagged = [f for f in version.files if f.primary]
    return flagged[0] if flagged else best_file(version.files, DEFAULT_PREFERENCE)


def air(model: FakeModel, version: FakeVersion) -> str:
    kind = AIR_TYPES.get(model.type, "unknown")
    primary = primary_file(version)
    if model.type == "Checkpoint" and primary is not None:
        kind = {"Diffusion Model": "diffusionmodel", "UNet": "unet"}.get(primary.type, kind)
    eco = "other" if model.type == "Upscaler" else ecosystem(version.base_model)
    return f"urn:air:{eco}:{kind}:civitai:{model.id}@{version.id}"


def validate_download_query(query: dict[str, str]) -> str | None:
    """Row 3 of the download table: a Zod-like message for a bad query, else None."""
    enums = {"type": FILE_TYPES, "format": FORMATS, "size": SIZES}
    for key, allowed in enums.items():
        if key in query and query[key] not in allowed:
            expected = " | ".join(f"'{v}'" for v in sorted(allowed))
            return f"Invalid enum value. Expected {expected}, received '{query[key]}' at \"{key}\""
    if "fileId" in query and not query["fileId"].isdigit():
        return 'Expected number, received nan at "fileId"'
    if len(query.get("fp", "")) > 64:
        return 'String must contain at most 64 character(s) at "fp"'
    return None


def select_file(version: FakeVersion, query: dict[str, str]) -> FakeFile | None:
    """fileId wins; otherwise type filter, preference scoring, then the misalignment check."""
    if "fileId" in query:
        wanted = int(query["fileId"])
        return next((f for f in version.files if f.id == wanted), None)
    asked: dict[str, str] = {k: query[k] for k in ("format", "size", "fp") if k in query}
    if "type" not in query and not asked:
        return primary_file(version)
    files = [f for f in version.files if "type" not in query or f.type == query["type"]]
    chosen = best_file(files, {**DEFAULT_PREFERENCE, **asked})
    if chosen is None:
        return None
    metadata = chosen.metadata
    for key, value in asked.items():
        if metadata.get(key) is not None and metadata[key] != value:
            return None  # Civitai answers 404 rather than a file that differs from the query
    return chosen


# --------------------------------------------------------------------------- server


class CivitaiServer(FakeHosts):
    """civitai.com stand-in (``api_url``) plus the presigned storage host (``storage_url``)."""

    def __init__(self, *, token: str | None = None, signed_url_ttl: float = 3600.0) -> None:
        self.token = token
        # UNAUTHENTICATED_DOWNLOAD=false on Civitai's side: every download needs a session.
        self.require_auth_globally = False
        self.faults = Faults()
        self.requests: list[Recorded] = []
        self._models: dict[int, FakeModel] = {}
        self._lock = threading.Lock()
        self._signer = UrlSigner(signed_url_ttl)
        # Set to a base URL (the bench's nginx): downloads redirect to `{base}/{file name}`
        # there instead of to the signed storage host, so a real server sends the bytes.
        self.external_storage_url: str | None = None
        self._api = LoopbackServer("api", self._route_api, self.faults, self.requests)
        self._storage = LoopbackServer("storage", self._route_storage, self.faults, self.requests)
        self.api_url = self._api.url
        self.storage_url = self._storage.url
        self._hosts = (self._api, self._storage)

    # ----------------------------------------------------------------- test API

    def add(self, model: FakeModel) -> None:
        with self._lock:
            self._models[model.id] = model

    def clear_requests(self) -> None:
        self.requests.clear()

    def expire_signed_urls(self) -> None:
        self._signer.expire_all()

    def download_url(self, version_id: int, **query: str | int) -> str:
        """Convenience: the API download URL of a version, with optional query params."""
        suffix = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
        return f"{self.api_url}/api/download/models/{version_id}" + (f"?{suffix}" if suffix else "")

    # ----------------------------------------------------------------- lookups

    def _snapshot(self) -> list[FakeModel]:
        with self._lock:
            return list(self._models.values())

    def _find_version(self, version_id: int) -> tuple[FakeModel, FakeVersion] | None:
        for model in self._snapshot():
            for version in model.versions:
                if version.id == version_id:
                    return model, version
        return None

    def _find_file(self, file_id: int) -> tuple[FakeModel, FakeFile] | None:
        for model in self._snapshot():
            for version in model.versions:
                for file in version.files:
                    if file.id == file_id:
                        return model, file
        return None

    def _token_valid(self, handler: FakeHandler) -> bool:
        # `authorization?.split(' ')[1] ?? query.token`: the header wins over ?token= when it
        # carries a token; an unknown token is anonymous, not an error.
        given = handler.bearer_token() or handler.query.get("token")
        return self.token is not None and given == self.token

    # ----------------------------------------------------------------- JSON shapes

    def _file_download_url(self, version: FakeVersion, file: FakeFile) -> str:
        base = f"{self.api_url}/api/download/models/{version.id}"
        if file is primary_file(version):
            return base
        params: dict[str, str | None] = {"type": file.type, **file.metadata}
        if file.type == "Training Data":
            params.pop("format")
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if v is not None)
        return f"{base}?{query}"

    def _version_file_json(self, version: FakeVersion, file: FakeFile) -> JSON:
        """A file as /model-versions/{id} shows it (full metadata, AutoV1, primary always)."""
        return {
            "id": file.id,
            "sizeKB": file.size_bytes / 1024,
            "name": file.name,
            "type": file.type,
            "pickleScanResult": file.pickle_scan,
            "pickleScanMessage": file.pickle_scan_message,
            "virusScanResult": file.virus_scan,
            "virusScanMessage": None,
            "scannedAt": SCANNED_AT,
            "metadata": file.metadata,
            "hashes": file.hashes(with_autov1=True),
            "primary": file is primary_file(version),
            "downloadUrl": self._file_download_url(version, file),
        }

    def _model_file_json(self, version: FakeVersion, file: FakeFile) -> JSON:
        """A file as /models/{id} shows it: no AutoV1, no null metadata, primary only if true."""
        out: JSON = {
            "id": file.id,
            "sizeKB": file.size_bytes / 1024,
            "name": file.name,
            "type": file.type,
            "pickleScanResult": file.pickle_scan,
            "pickleScanMessage": file.pickle_scan_message,
            "virusScanResult": file.virus_scan,
            "virusScanMessage": None,
            "scannedAt": SCANNED_AT,
            "metadata": {k: v for k, v in file.metadata.items() if v is not None},
            "hashes": file.hashes(with_autov1=False),
            "downloadUrl": self._file_download_url(version, file),
        }
        if file is primary_file(version):
            out["primary"] = True
        return out

    def version_json(self, model: FakeModel, version: FakeVersion) -> JSON:
        removed = model.mode in ("Archived", "TakenDown")
        files = version.files
        out: JSON = {
            "id": version.id,
            "modelId": model.id,
            "name": version.name,
            "createdAt": CREATED_AT,
            "updatedAt": version.published_at,
            "status": version.status,
            "publishedAt": version.published_at,
            "trainedWords": list(version.trained_words),
            "trainingStatus": None,
            "trainingDetails": None,
            "baseModel": version.base_model,
            "baseModelType": None,
            "earlyAccessEndsAt": version.early_access_deadline,
            "earlyAccessConfig": None,
            "description": version.description,
            "uploadType": "Created",
            "usageControl": version.usage_control,
            "air": air(model, version),
            "stats": {"downloadCount": 0, "thumbsUpCount": 0},
            "model": {"name": model.name, "type": model.type, "nsfw": model.nsfw, "poi": model.poi},
            "files": [] if removed else [self._version_file_json(version, f) for f in files],
            "images": []
            if model.mode == "TakenDown"
            else [self._image_json(image) for image in version.images],
        }
        if model.mode is not None:
            out["model"]["mode"] = model.mode
        if not removed:
            out["downloadUrl"] = f"{self.api_url}/api/download/models/{version.id}"
        return out

    def model_json(self, model: FakeModel) -> JSON:
        removed = model.mode in ("Archived", "TakenDown")
        versions = []
        for version in model.versions:
            if version.status != "Published":
                continue  # /models/{id} lists published versions only
            files = version.files
            entry: JSON = {
                "id": version.id,
                "name": version.name,
                "baseModel": version.base_model,
                "baseModelType": None,
                "publishedAt": version.published_at,
                "stats": {"downloadCount": 0, "thumbsUpCount": 0, "thumbsDownCount": 0},
                "files": [] if removed else [self._model_file_json(version, f) for f in files],
                "images": [],
            }
            if not removed:
                entry["downloadUrl"] = f"{self.api_url}/api/download/models/{version.id}"
            versions.append(entry)
        out: JSON = {
            "id": model.id,
            "name": model.name,
            "description": None,
            "type": model.type,
            "nsfw": model.nsfw,
            "availability": "Public",
            "poi": model.poi,
            "minor": False,
            "creator": {"username": "fake", "image": None},
            "tags": [],
            "stats": {"downloadCount": 0, "thumbsUpCount": 0, "thumbsDownCount": 0},
            "modelVersions": versions,
        }
        if model.mode is not None:
            out["mode"] = model.mode
        return out

    # ----------------------------------------------------------------- API routes

    def _route_api(self, h: FakeHandler) -> None:
        path = h.route_path.rstrip("/") or "/"
        routes: list[tuple[str, re.Pattern[str], Callable[[FakeHandler, str], None]]] = [
            ("GET", re.compile(r"/api/v1/models/([^/]+)"), self._get_model),
            ("GET", re.compile(r"/api/v1/model-versions/by-hash/([^/]+)"), self._get_by_hash),
            ("POST", re.compile(r"/api/v1/model-versions/by-hash()"), self._post_by_hash),
            ("GET", re.compile(r"/api/v1/model-versions/([^/]+)"), self._get_version),
            ("GET", re.compile(r"/api/download/models/([^/]+)"), self._download),
            ("GET", re.compile(r"/(login|model-versions/\d+|models/\d+)"), self._html_page),
        ]
        method = "GET" if h.command == "HEAD" else h.command
        for verb, pattern, handler in routes:
            match = pattern.fullmatch(path)
            if match and verb == method:
                handler(h, unquote(match.group(1)))
                return
        h.send_json(404, {"error": "Not found"})

    def _get_model(self, h: FakeHandler, raw_id: str) -> None:
        wanted = int(raw_id) if raw_id.isdigit() else None
        model = next((m for m in self._snapshot() if m.id == wanted), None)
        if model is None:
            h.send_json(404, {"error": f"No model with id {raw_id}"})
            return
        h.send_json(200, self.model_json(model), headers={"Cache-Control": "public, s-maxage=300"})

    def _get_version(self, h: FakeHandler, raw_id: str) -> None:
        found = self._find_version(int(raw_id)) if raw_id.isdigit() else None
        if found is None or found[1].status != "Published":
            h.send_json(404, {"error": "Model not found"})
            return
        model, version = found
        if not version.files and model.mode is None:
            h.send_json(404, {"error": "Missing model file"})
            return
        h.send_json(200, self.version_json(model, version))

    def _match_hash(self, wanted: str) -> tuple[FakeModel, FakeVersion] | None:
        wanted = wanted.upper()
        matches = [
            (model, version)
            for model in self._snapshot()
            for version in model.versions
            for file in version.files
            if wanted in file.hashes(with_autov1=True).values()
        ]
        # On duplicates Civitai returns the oldest publishedAt.
        return min(matches, key=lambda mv: mv[1].published_at, default=None)

    def _get_by_hash(self, h: FakeHandler, raw_hash: str) -> None:
        found = self._match_hash(raw_hash)
        if found is None:
            h.send_json(404, {"error": "Model not found"})
            return
        h.send_json(200, self.version_json(*found), headers={"Cache-Control": "max-age=3600"})

    def _post_by_hash(self, h: FakeHandler, _: str) -> None:
        try:
            hashes = json.loads(h.request_body or b"[]")
        except ValueError:
            hashes = None
        if not isinstance(hashes, list) or len(hashes) > 100:
            h.send_json(400, {"error": "Expected an array of at most 100 SHA256 hashes"})
            return
        found = (self._match_hash(str(value)) for value in hashes)
        h.send_json(200, [self.version_json(*mv) for mv in found if mv is not None])

    def _html_page(self, h: FakeHandler, _: str) -> None:
        h.respond(200, b"<html>login</html>", content_type="text/html; charset=utf-8")

    # ----------------------------------------------------------------- download

    def _refuse(
        self,
        h: FakeHandler,
        status: int,
        payload: JSON,
        *,
        browser: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        if browser:  # browsers get the message as plain text
            text = str(payload.get("message") or payload["error"]).encode()
            h.respond(status, text, content_type="text/plain; charset=utf-8", headers=headers)
        else:
            h.send_json(status, payload, headers=headers)

    def _download(self, h: FakeHandler, raw_id: str) -> None:
        """The checks of reference §1.5 in their order; rows 1, 2 and 9 are left to faults."""
        browser = is_browser(h.headers.get("User-Agent") or "")
        query = h.query
        problem = validate_download_query(query)
        if problem is None and not raw_id.isdigit():
            problem = 'Expected number, received nan at "modelVersionId"'
        if problem is not None:
            self._refuse(h, 400, {"error": problem}, browser=browser)
            return
        found = self._find_version(int(raw_id))
        not_found = {"error": "File not found"}
        if found is None or found[1].status != "Published" or found[0].poi:
            self._refuse(h, 404, not_found, browser=browser)
            return
        model, version = found
        file = select_file(version, query)
        if file is None or model.mode == "TakenDown":
            nocache = {"Cache-Control": "private, no-store"}
            self._refuse(h, 404, not_found, browser=browser, headers=nocache)
            return
        if model.mode == "Archived":
            gone = {"error": "Model archived, not available for download"}
            self._refuse(h, 410, gone, browser=browser)
            return
        if version.usage_control != "Download":
            message = "The creator of this asset has disabled downloads on this file"
            self._refuse(h, 401, {"error": "Unauthorized", "message": message}, browser=browser)
            return
        authed = self._token_valid(h)
        if (version.require_auth or self.require_auth_globally) and not authed:
            self._login_required(h, version, browser=browser)
            return
        if version.early_access_deadline is not None and not authed:
            self._early_access(h, version, browser=browser)
            return
        location = self._sign(model, file)
        h.respond(307, headers={"Location": location, "Cache-Control": "no-store, max-age=0"})

    def _login_required(self, h: FakeHandler, version: FakeVersion, *, browser: bool) -> None:
        if browser:
            target = f"/login?returnUrl=%2Fmodel-versions%2F{version.id}&reason=download-auth"
            h.respond(307, headers={"Location": target})
            return
        message = "The creator of this asset requires you to be logged in to download it"
        h.send_json(401, {"error": "Unauthorized", "message": message})

    def _early_access(self, h: FakeHandler, version: FakeVersion, *, browser: bool) -> None:
        if browser:
            h.respond(307, headers={"Location": f"/model-versions/{version.id}"})
            return
        payload = {
            "error": "Early Access",
            "deadline": version.early_access_deadline,
            "message": "This asset is in Early Access. You can use Buzz access it now!",
        }
        h.send_json(403, payload)

    def _sign(self, model: FakeModel, file: FakeFile) -> str:
        if self.external_storage_url is not None:
            return f"{self.external_storage_url.rstrip('/')}/{quote(file.name, safe='')}"
        path = f"{STORAGE_BUCKET}/{model.id}/{file.id}/{quote(file.name, safe='')}"
        disposition = f'attachment; filename="{file.name}"'
        query = self._signer.sign(path, [("response-content-disposition", disposition)])
        return f"{self.storage_url}{path}?{query}"

    def _image_json(self, image: FakeImage) -> JSON:
        # image.civitai.com/<account>/<uuid>/width=N/<id>.<ext>: the size sits in the path.
        url = f"{self.storage_url}{IMAGE_PREFIX}/{image.id}/width={image.width}/{image.id}.{image.ext}"
        return {"url": url, "nsfwLevel": image.nsfw_level, "width": image.width,
                "height": image.height, "hash": "U00000fQfQfQfQfQfQfQfQfQfQfQ", "type": image.type,
                "metadata": {"hash": "U00000", "width": image.width, "height": image.height},
                "meta": None}  # fmt: skip

    def _find_image(self, image_id: int) -> FakeImage | None:
        for model in self._snapshot():
            for version in model.versions:
                for image in version.images:
                    if image.id == image_id:
                        return image
        return None

    # ----------------------------------------------------------------- storage

    def _route_storage(self, h: FakeHandler) -> None:
        image = re.fullmatch(rf"{IMAGE_PREFIX}/(\d+)/width=\d+/[^/]+", h.route_path)
        if image is not None and h.command == "GET":
            picture = self._find_image(int(image.group(1)))
            if picture is None:
                h.respond(404, b"Not Found", content_type="text/plain")
            else:
                h.serve_content(picture.data, headers={"Content-Type": f"image/{picture.ext}"})
            return
        if h.command not in ("GET", "HEAD"):
            h.respond(405, s3_error_xml("MethodNotAllowed", "Method not allowed"),
                      content_type="application/xml")  # fmt: skip
            return
        if h.headers.get("Authorization"):
            # R2 tries header auth first and fails: the bug of tools forwarding the API token.
            body = s3_error_xml("InvalidRequest", "Missing x-amz-content-sha256")
            h.respond(400, body, content_type="application/xml")
            return
        match = re.fullmatch(rf"{STORAGE_BUCKET}/\d+/(\d+)/[^/]+", h.route_path)
        verdict = self._signer.check(h.route_path, h.raw_query) if match else Verdict.BAD_SIGNATURE
        if verdict is Verdict.BAD_SIGNATURE:
            body = s3_error_xml(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
            h.respond(403, body, content_type="application/xml")
            return
        if verdict is Verdict.EXPIRED:
            body = s3_error_xml("AccessDenied", "Request has expired")
            h.respond(403, body, content_type="application/xml")
            return
        assert match is not None
        found = self._find_file(int(match.group(1)))
        if found is None:
            body = s3_error_xml("NoSuchKey", "The specified key does not exist.")
            h.respond(404, body, content_type="application/xml")
            return
        headers = {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        disposition = h.query.get("response-content-disposition")
        if disposition:
            headers["Content-Disposition"] = disposition  # R2 echoes the presigned override
        h.serve_content(found[1].content, headers=headers)


__all__ = ["CivitaiServer", "FakeFile", "FakeImage", "FakeModel", "FakeVersion"]
