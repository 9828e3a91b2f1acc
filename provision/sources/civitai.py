"""Civitai: resolve a reference to one file of one version, and open its bytes.

Shapes and status codes follow reference/civitai-hf.md §1. We lock the file id and always
download with `?fileId=` (the API's own `downloadUrl` for non-primary files can 404), take the
exact size (and the header) from one ranged request (`sizeKB` is a rounded float), and send
the token only to Civitai's own hosts: the 307 to R2/B2 goes without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx

from provision.errors import (
    AccessDenied,
    AuthRequired,
    NotFound,
    RateLimited,
    SdprovError,
    SourceError,
)
from provision.kinds import AIR_ECOSYSTEMS, Family, Kind, family_of_civitai_base
from provision.manifest.refs import CIVITAI_HOSTS, CivitaiRef
from provision.net.http import (
    Credential,
    ResponseLike,
    check_status,
    check_transient,
    open_following,
    origin_of,
    redact,
    retrying,
)
from provision.net.pool import HostPool, PooledResponse
from provision.net.transfer import RawResponse, open_stream
from provision.sources import RangeSource, ResolvedFile, SourceContext, range_header
from provision.sources.locked import CivitaiSource
from provision.sources.memo import Memo
from provision.sources.peek import Peek, PooledBytes, peek

# Civitai ModelType → the kind folder it belongs in (LyCORIS is `LoCon`).
MODEL_TYPE_KINDS: Final[dict[str, Kind]] = {
    "Checkpoint": Kind.CHECKPOINT,
    "LORA": Kind.LORA,
    "LoCon": Kind.LORA,
    "DoRA": Kind.LORA,
    "TextualInversion": Kind.EMBEDDING,
    "VAE": Kind.VAE,
    "Hypernetwork": Kind.HYPERNETWORK,
    "Controlnet": Kind.CONTROLNET,
    "Upscaler": Kind.UPSCALER,
    "TextEncoder": Kind.TEXT_ENCODER,
    "CLIP": Kind.TEXT_ENCODER,
    "UNet": Kind.DIFFUSION_MODEL,
    "CLIPVision": Kind.CLIP_VISION,
}
WEIGHT_FILE_TYPES: Final = frozenset({"Model", "Pruned Model", "VAE", "Negative"})
# Civitai file types (reference §1.5) that are a kind's file when a version carries several
# parts (a Flux release with its "VAE" and "Text Encoder" files): listed under that section,
# the part is chosen, not the version's primary model file.
KIND_FILE_TYPES: Final[dict[Kind, frozenset[str]]] = {
    Kind.VAE: frozenset({"VAE"}),
    Kind.TEXT_ENCODER: frozenset({"Text Encoder"}),
    Kind.DIFFUSION_MODEL: frozenset({"Diffusion Model", "UNet"}),
    Kind.CLIP_VISION: frozenset({"CLIPVision", "Vision Encoder"}),
    Kind.CONTROLNET: frozenset({"ControlNet"}),
    Kind.UPSCALER: frozenset({"Upscaler"}),
}
AUTH_HINT: Final = "set CIVITAI_TOKEN to an API key from civitai.com → Account settings → API Keys"
_SELECTOR_WEIGHTS: Final = (("format", 100.0), ("size", 10.0), ("fp", 1.0))


def api_origins(ctx: SourceContext) -> frozenset[str]:
    # The token belongs to the configured API origin and to Civitai's own front ends
    # (civitai.green redirects downloads to civitai.com: dropping it there breaks auth).
    return frozenset({origin_of(ctx.civitai_url), *(f"https://{h}:443" for h in CIVITAI_HOSTS)})


def credential(ctx: SourceContext) -> Credential | None:
    return Credential.bearer(ctx.civitai_token, api_origins(ctx))


def _body(response: ResponseLike) -> dict[str, Any]:
    try:
        response.read()
        data = json.loads(response.text)
    except (ValueError, httpx.StreamError):
        return {}
    return data if isinstance(data, dict) else {}


def error_for(response: ResponseLike, what: str) -> SdprovError:
    """Map a final Civitai error status to an error that says what to do."""
    body = _body(response)
    message = str(body.get("message") or body.get("error") or "").strip()
    status = response.status_code
    if status == 401:
        if "disabled downloads" in message:
            return AccessDenied(f"{what}: {message}", hint="pick another model or version")
        return AuthRequired(
            f"{what}: this model requires login ({message or 'HTTP 401'})", hint=AUTH_HINT
        )
    if status == 403:
        if body.get("error") == "Early Access":
            deadline = body.get("deadline") or "unknown"
            return AccessDenied(
                f"{what}: this version is in Early Access until {deadline}",
                hint="buy access on civitai.com with the account of CIVITAI_TOKEN, "
                "or pin an earlier version",
            )
        return AccessDenied(
            f"{what}: access denied ({message or 'HTTP 403'})",
            hint=f"check that your account may download it; {AUTH_HINT}",
        )
    if status == 410:
        return NotFound(
            f"{what}: the model is archived on Civitai and can no longer be downloaded",
            hint="remove it from the manifest or point to another source with `url:` + `sha256:`",
        )
    if status == 404:
        return NotFound(
            f"{what}: not found on Civitai ({message or 'HTTP 404'})",
            hint="check the id/version; models on civitai.red may need "
            "SDPROV_CIVITAI_URL=https://civitai.red",
        )
    if status == 429:
        return RateLimited(
            f"{what}: Civitai is rate-limiting us ({message or 'HTTP 429'})",
            hint="wait and retry; lower --jobs",
        )
    return SourceError(f"{what}: unexpected HTTP {status} from {redact(str(response.url))}")


class CivitaiApi:
    def __init__(
        self, client: httpx.Client | HostPool, ctx: SourceContext, memo: Memo | None = None
    ) -> None:
        self.client = client
        self.ctx = ctx
        self.memo = memo

    def get_json(self, path: str, what: str) -> dict[str, Any]:
        if self.memo is not None:
            return self.memo.get(("get", path), lambda: self._get_json(path, what))
        return self._get_json(path, what)

    def _get_json(self, path: str, what: str) -> dict[str, Any]:
        url = f"{self.ctx.civitai_url}{path}"

        def attempt() -> dict[str, Any]:
            with open_following(self.client, url, credential=credential(self.ctx)) as response:
                check_status(response, lambda r: error_for(r, what))
                response.read()
                data = response.json()
                if not isinstance(data, dict):
                    raise SourceError(f"{what}: Civitai answered something that is not an object")
                return data

        return retrying(attempt, policy=self.ctx.retry, what=what)


def resolve(
    ref: CivitaiRef,
    *,
    kind: Kind,
    what: str,
    client: httpx.Client | HostPool,
    ctx: SourceContext,
    file_id: int | None,
    selector: dict[str, str | None] | None,
    memo: Memo | None = None,
) -> ResolvedFile:
    api = CivitaiApi(client, ctx, memo)
    version_id = ref.version_id
    if version_id is None:
        assert ref.model_id is not None
        model = api.get_json(f"/api/v1/models/{ref.model_id}", what)
        versions = model.get("modelVersions") or []
        if not versions:
            raise NotFound(f"{what}: Civitai model {ref.model_id} has no published version")
        version_id = int(versions[0]["id"])  # modelVersions[0] is the newest
    version = api.get_json(f"/api/v1/model-versions/{version_id}", what)
    model_id = int(version.get("modelId") or ref.model_id or 0)
    if ref.model_id is not None and model_id and model_id != ref.model_id:
        raise NotFound(
            f"{what}: version {version_id} belongs to model {model_id}, not {ref.model_id}"
        )
    model_info = version.get("model") or {}
    model_type = str(model_info.get("type") or "")
    chosen = _choose_file(version, file_id or ref.file_id, selector, what, kind=kind)
    sha = str((chosen.get("hashes") or {}).get("SHA256") or "").lower()
    if not sha:
        raise SourceError(
            f"{what}: Civitai has not hashed file {chosen.get('id')} yet (scan pending)",
            hint="retry later, or give the expected `sha256:` in the manifest",
        )
    # One ranged request through the 307 gives the exact size (`sizeKB` is a rounded float),
    # the first bytes for inspection, and proof the file is downloadable with this token.
    peeked = _peek(client, ctx, version_id, int(chosen["id"]), what, memo)
    base_model = version.get("baseModel")
    family = family_of_civitai_base(base_model)
    if family is Family.OTHER and ref.air_ecosystem in AIR_ECOSYSTEMS:
        family = AIR_ECOSYSTEMS[ref.air_ecosystem]
    hashes = chosen.get("hashes") or {}
    source = CivitaiSource(
        model_id=model_id,
        version_id=version_id,
        file_id=int(chosen["id"]),
        air=version.get("air")
        or f"urn:air:{ref.air_ecosystem or 'other'}:{model_type.lower()}:civitai:"
        f"{model_id}@{version_id}",
        base_model=base_model,
        model_type=model_type,
        model_name=model_info.get("name"),
        version_name=version.get("name"),
        file_name=chosen.get("name"),
    )
    extra: dict[str, Any] = {}
    if hashes.get("AutoV2"):
        extra["autov2"] = str(hashes["AutoV2"]).lower()
    if version.get("trainedWords"):
        extra["trained_words"] = list(version["trainedWords"])
    scans = {
        "pickle": chosen.get("pickleScanResult"),
        "pickle_message": chosen.get("pickleScanMessage"),
        "virus": chosen.get("virusScanResult"),
    }
    extra["civitai_scan"] = {k: v for k, v in scans.items() if v is not None}
    return ResolvedFile(
        file_name=str(chosen["name"]),
        size=peeked.size,
        sha256=sha,
        base=family,
        base_model=base_model,
        source=source,
        # A part file ("VAE", "Text Encoder" …) of, say, a Checkpoint model is what its type says.
        declared_kind=kind
        if chosen.get("type") in KIND_FILE_TYPES.get(kind, ())
        else MODEL_TYPE_KINDS.get(model_type),
        extra=extra,
        images=_images(version),
        head=peeked.head,
    )


def _peek(
    client: httpx.Client | HostPool,
    ctx: SourceContext,
    version_id: int,
    file_id: int,
    what: str,
    memo: Memo | None,
) -> Peek:
    source: RangeSource
    if isinstance(client, HostPool):
        source = lock_bytes(client, ctx, version_id, file_id, what)
    else:
        source = CivitaiBytes(ctx=ctx, version_id=version_id, file_id=file_id, what=what)
    if memo is None:
        return peek(source, ctx, what)
    # Each /api/download call counts toward Civitai's download limiter: one per file a run.
    return memo.get(("peek", version_id, file_id), lambda: peek(source, ctx, what))


def _images(version: dict[str, Any]) -> tuple[tuple[str, int, str], ...]:
    out = []
    for image in version.get("images") or ():
        if isinstance(image, dict) and isinstance(image.get("url"), str):
            level = image.get("nsfwLevel")
            out.append((image["url"], level if isinstance(level, int) else 0,
                        str(image.get("type") or "image")))  # fmt: skip
    return tuple(out)


def _choose_file(
    version: dict[str, Any],
    file_id: int | None,
    selector: dict[str, str | None] | None,
    what: str,
    *,
    kind: Kind | None = None,
) -> dict[str, Any]:
    files: list[dict[str, Any]] = list(version.get("files") or [])
    if not files:
        raise NotFound(
            f"{what}: version {version.get('id')} has no downloadable files "
            "(archived or taken down)"
        )
    if file_id is not None:
        for candidate in files:
            if int(candidate["id"]) == file_id:
                return candidate
        ids = ", ".join(f"{f['id']} ({f.get('name')})" for f in files)
        raise NotFound(f"{what}: version {version.get('id')} has no file {file_id}; files: {ids}")
    parts = KIND_FILE_TYPES.get(kind, frozenset()) if kind is not None else frozenset()
    weights = (
        [f for f in files if f.get("type") in parts]
        or [f for f in files if f.get("type") in WEIGHT_FILE_TYPES]
        or files
    )
    if not selector:
        primary = [f for f in weights if f.get("primary")]
        return primary[0] if primary else weights[0]

    def score(candidate: dict[str, Any]) -> float:
        meta = candidate.get("metadata") or {}
        total = 0.0
        for key, weight in _SELECTOR_WEIGHTS:
            wanted = selector.get(key)
            if wanted is not None:
                total += weight if meta.get(key) == wanted else -weight
        return total

    best = max(weights, key=score)
    meta = best.get("metadata") or {}
    mismatched = [k for k, _ in _SELECTOR_WEIGHTS if selector.get(k) and meta.get(k) != selector[k]]
    if mismatched:
        offered = "; ".join(f"{f['id']}: {f.get('metadata')}" for f in weights)
        raise NotFound(
            f"{what}: no file matches the selector {selector} ({', '.join(mismatched)} differ); "
            f"files: {offered}",
            hint="adjust `file:` or pin `file_id:`",
        )
    return best


def download_url(ctx: SourceContext, version_id: int, file_id: int) -> str:
    return f"{ctx.civitai_url}/api/download/models/{version_id}?fileId={file_id}"


@dataclass(slots=True, kw_only=True)
class CivitaiBytes:
    """The locked file of a version, fetched via `/api/download/models/{v}?fileId={f}`."""

    ctx: SourceContext
    version_id: int
    file_id: int
    what: str
    signed_url: str | None = None  # reused across resumes until storage refuses it

    def describe(self) -> str:
        return f"civitai version {self.version_id} file {self.file_id}"

    @contextmanager
    def open(self, offset: int, end: int | None = None) -> Iterator[RawResponse]:
        headers = range_header(offset, end)
        if self.signed_url is not None:
            with open_stream(self.signed_url, headers=headers) as response:
                if response.status_code in (200, 206):
                    yield response
                    return
                check_transient(response)
            # Expired or revoked signed URL (R2/B2 answer 403/400): ask the API for a new one.
            self.signed_url = None
        url = download_url(self.ctx, self.version_id, self.file_id)
        token_hosts = api_origins(self.ctx)
        with open_stream(url, headers=headers, credential=credential(self.ctx)) as response:
            refuse(response, self.what, token_hosts)
            if not host_is_api(str(response.url), token_hosts):
                self.signed_url = str(response.url)
            yield response


def refuse(response: ResponseLike, what: str, token_hosts: frozenset[str]) -> None:
    """Raise for an answer to the download endpoint that is not the file (transient: retry)."""
    check_transient(response)
    if response.status_code not in (200, 206):
        if host_is_api(str(response.url), token_hosts):
            raise error_for(response, what)
        raise SourceError(
            f"{what}: the storage host refused the download "
            f"(HTTP {response.status_code} from {redact(str(response.url))})",
            hint="retry; if it persists, Civitai's storage is failing for this file",
        )


def lock_bytes(
    pool: HostPool, ctx: SourceContext, version_id: int, file_id: int, what: str
) -> PooledBytes:
    """The file read at lock time (size, header) over the lock's pool; sync uses CivitaiBytes."""
    token_hosts = api_origins(ctx)

    def check(response: PooledResponse) -> None:
        refuse(response, what, token_hosts)

    return PooledBytes(
        pool=pool,
        url=download_url(ctx, version_id, file_id),
        label=f"civitai version {version_id} file {file_id}",
        credential=credential(ctx),
        refuse=check,
    )


def host_is_api(url: str, token_hosts: frozenset[str]) -> bool:
    return origin_of(url) in token_hosts
