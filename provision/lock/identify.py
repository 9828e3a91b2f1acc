"""What a reference typed on the command line is: its manifest form and the kind of model.

`sdprov add` puts an entry in the right section without asking: Civitai says what type a
model is; for Hugging Face and plain URLs the file's own safetensors header says it (fetched
with ranged requests, as the lock does). When neither can tell, the user is asked for
`--kind`, never guessed for.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Final

from provision.errors import UsageError
from provision.kinds import Kind
from provision.lock.remote_inspect import inspect_remote
from provision.manifest.refs import (
    CIVITAI_HOSTS,
    CivitaiRef,
    HfRef,
    SourceRef,
    UrlRef,
    parse_civitai,
    parse_hf,
    parse_url,
)
from provision.sources import SourceContext, civitai, huggingface, url
from provision.sources.registry import byte_source

_HF_HOSTS: Final = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
_HF_FILE_URL: Final = re.compile(r"^/([^/]+)/([^/]+)/(?:resolve|blob)/([^/]+)/(.+)$")
_AIR_LIKE: Final = re.compile(r"^(?:urn:)?(?:air:)?[\w.-]+:[\w-]+:civitai:\d")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A reference in manifest form: `{key: value}` plus its parsed source."""

    key: str  # civitai | hf | url
    value: int | str
    ref: SourceRef


def parse_reference(text: str, *, sha256: str | None = None) -> Reference:
    """Civitai URL, AIR, ID[@VERSION], Hugging Face `owner/repo/path[@rev]` (or its URL), or
    any other http(s) URL (which needs `--sha256`). `civitai:`/`hf:`/`url:` prefixes force."""
    raw = text.strip()
    try:
        for key in ("civitai", "hf", "url"):
            if raw.startswith(f"{key}:") and not raw.startswith(f"{key}://"):
                return _as(key, raw[len(key) + 1 :].strip(), sha256)
        if re.fullmatch(r"\d+(?:@\d+)?", raw) or _AIR_LIKE.match(raw):
            return _as("civitai", raw, sha256)
        if raw.startswith(("http://", "https://")):
            parts = urllib.parse.urlsplit(raw)
            host = (parts.hostname or "").lower()
            if host in CIVITAI_HOSTS:
                return _as("civitai", raw, sha256)
            if host in _HF_HOSTS and (match := _HF_FILE_URL.match(parts.path)):
                owner, repo, rev, path = (urllib.parse.unquote(g) for g in match.groups())
                suffix = "" if rev == "main" else f"@{rev}"
                return _as("hf", f"{owner}/{repo}/{path}{suffix}", sha256)
            return _as("url", raw, sha256)
        return _as("hf", raw, sha256)
    except ValueError as exc:
        raise UsageError(f"cannot add {text!r}: {exc}") from exc


def _as(key: str, value: str, sha256: str | None) -> Reference:
    if key == "civitai":
        ref: SourceRef = parse_civitai(value)
        return Reference(key=key, value=int(value) if value.isdigit() else value, ref=ref)
    if key == "hf":
        return Reference(key=key, value=value, ref=parse_hf(value))
    if sha256 is None:
        raise ValueError("a plain URL needs `--sha256 HEX` (the only way to know the bytes)")
    return Reference(key=key, value=value, ref=parse_url(value))


def identify_kind(reference: Reference, ctx: SourceContext, *, sha256: str | None) -> Kind:
    what = f"{reference.key}: {reference.value}"
    with ctx.client() as client:
        ref = reference.ref
        if isinstance(ref, CivitaiRef):
            return _civitai_kind(ref, civitai.CivitaiApi(client, ctx), what)
        if isinstance(ref, HfRef):
            resolved = huggingface.resolve(ref, what=what, client=client, ctx=ctx, base=None)
        else:
            assert isinstance(ref, UrlRef) and sha256 is not None
            resolved = url.resolve(
                ref, what=what, client=client, ctx=ctx, sha256=sha256.lower(), base=None
            )
    report = inspect_remote(resolved, byte_source(resolved.source, ctx, what), ctx, what)
    if report is not None and report.kind in {k.value for k in Kind}:
        return Kind(report.kind)
    seen = f"the file reads as {report.kind!r}" if report else "only safetensors headers are read"
    raise UsageError(
        f"{what}: cannot tell what kind of model {resolved.file_name} is ({seen})",
        hint=f"give --kind {'|'.join(k.value for k in Kind)}",
    )


def _civitai_kind(ref: CivitaiRef, api: civitai.CivitaiApi, what: str) -> Kind:
    version: dict[str, Any]
    if ref.version_id is not None:
        version = api.get_json(f"/api/v1/model-versions/{ref.version_id}", what)
        model_type = str((version.get("model") or {}).get("type") or "")
    else:
        model = api.get_json(f"/api/v1/models/{ref.model_id}", what)
        model_type = str(model.get("type") or "")
    kind = civitai.MODEL_TYPE_KINDS.get(model_type)
    if kind is None:
        raise UsageError(
            f"{what}: Civitai lists this as a {model_type or 'model of unknown type'}, "
            "which has no section in the manifest",
            hint="give --kind to place it anyway",
        )
    return kind
