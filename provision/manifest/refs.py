"""Parsing of model references as users write them in a manifest.

Civitai: `ID`, `ID@VERSION`, pasted civitai.com/.red/.green URLs (model page, download link,
model-version API or page) and AIR URNs. Hugging Face: `owner/repo/path[@revision]`.
Pure functions: no network; a bad reference raises ValueError with a message for the user.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Final

CIVITAI_HOSTS: Final = frozenset(
    {"civitai.com", "www.civitai.com", "civitai.red", "www.civitai.red", "civitai.green",
     "www.civitai.green"}
)  # fmt: skip

_ID_AT_VERSION: Final = re.compile(r"^(\d+)(?:@(\d+))?$")
# urn:air:{ecosystem}:{type}:{source}:{id}[@{version}][+{fileId}][.{format}]; urn:/air: optional.
_AIR: Final = re.compile(
    r"^(?:urn:)?(?:air:)?(?P<eco>[a-zA-Z0-9_.-]+):(?P<type>[a-zA-Z0-9_-]+):(?P<source>[a-z]+):"
    r"(?P<id>\d+)(?:@(?P<version>\d+))?(?:\+(?P<file>\d+))?(?:\.(?P<format>[a-zA-Z0-9]+))?$"
)
_HEX40: Final = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class CivitaiRef:
    model_id: int | None = None
    version_id: int | None = None
    file_id: int | None = None
    air_ecosystem: str | None = None

    @property
    def pinned(self) -> bool:
        return self.version_id is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class HfRef:
    repo: str
    path: str
    revision: str | None = None

    @property
    def pinned(self) -> bool:
        return self.revision is not None and bool(_HEX40.match(self.revision))


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlRef:
    url: str

    @property
    def pinned(self) -> bool:
        return True  # the manifest's sha256 pins the bytes


SourceRef = CivitaiRef | HfRef | UrlRef

CIVITAI_FORMS: Final = (
    "ID, ID@VERSION, https://civitai.com/models/ID[?modelVersionId=V], "
    ".../api/download/models/V, .../model-versions/V, or urn:air:ECO:TYPE:civitai:ID@V[+FILE]"
)


def parse_civitai(value: int | str) -> CivitaiRef:
    if isinstance(value, bool) or not isinstance(value, int | str):
        # 4384.0 passes the schema's "integer" (JSON Schema counts whole floats), not this.
        raise ValueError(f"expected a Civitai reference, got {value!r}; allowed: {CIVITAI_FORMS}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"model id must be positive, got {value}")
        return CivitaiRef(model_id=value)
    text = value.strip()
    if match := _ID_AT_VERSION.match(text):
        return CivitaiRef(model_id=int(match[1]), version_id=int(match[2]) if match[2] else None)
    if text.startswith(("http://", "https://")):
        return _parse_civitai_url(text)
    if match := _AIR.match(text):
        if match["source"] != "civitai":
            raise ValueError(f"AIR source {match['source']!r} is not civitai")
        return CivitaiRef(
            model_id=int(match["id"]),
            version_id=int(match["version"]) if match["version"] else None,
            file_id=int(match["file"]) if match["file"] else None,
            air_ecosystem=match["eco"].lower(),
        )
    raise ValueError(f"not a Civitai reference: {text!r}; allowed: {CIVITAI_FORMS}")


def _parse_civitai_url(text: str) -> CivitaiRef:
    url = urllib.parse.urlsplit(text)
    host = (url.hostname or "").lower()
    if host not in CIVITAI_HOSTS:
        raise ValueError(
            f"{host!r} is not a Civitai host (civitai.com, civitai.red, civitai.green); "
            "use `url:` with `sha256:` for other hosts"
        )
    if "token" in urllib.parse.parse_qs(url.query):
        raise ValueError(
            "the URL carries a `token=` API key: remove it from the manifest (it would be "
            "committed to Git) and set CIVITAI_TOKEN instead"
        )
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    parts = [p for p in url.path.split("/") if p]
    file_id = _int_or_none(query.get("fileId"))
    # /models/ID[/slug][?modelVersionId=V | ?version=V]
    if len(parts) >= 2 and parts[0] == "models" and parts[1].isdigit():
        version = query.get("modelVersionId") or query.get("version")
        return CivitaiRef(model_id=int(parts[1]), version_id=_int_or_none(version), file_id=file_id)
    # /api/download/models/V, /api/v1/model-versions/V, /model-versions/V
    for prefix in (["api", "download", "models"], ["api", "v1", "model-versions"],
                   ["model-versions"]):  # fmt: skip
        n = len(prefix)
        if parts[:n] == prefix and len(parts) == n + 1 and parts[n].isdigit():
            return CivitaiRef(version_id=int(parts[n]), file_id=file_id)
    raise ValueError(f"unrecognised Civitai URL {text!r}; allowed: {CIVITAI_FORMS}")


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ValueError(f"expected a number, got {value!r}")
    return int(value)


def parse_hf(value: str) -> HfRef:
    text = value.strip()
    revision: str | None = None
    if "@" in text:
        text, _, revision = text.rpartition("@")
        if not revision:
            raise ValueError("empty revision after '@'")
    parts = text.split("/")
    if len(parts) < 3 or any(not p for p in parts):
        raise ValueError(
            f"expected owner/repo/path/to/file[@revision], got {value!r} "
            "(e.g. stabilityai/sd-vae-ft-mse-original/vae-ft-mse-840000-ema-pruned.safetensors)"
        )
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"{value!r}: '.' and '..' are not allowed in a Hugging Face path")
    if "\\" in text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{value!r}: backslashes and control characters are not allowed")
    return HfRef(repo="/".join(parts[:2]), path="/".join(parts[2:]), revision=revision)


def parse_url(value: str) -> UrlRef:
    url = urllib.parse.urlsplit(value.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    if url.username or url.password:
        raise ValueError("the URL carries credentials: remove them (manifests are committed)")
    return UrlRef(url=value.strip())


def file_name_of_url(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    return urllib.parse.unquote(path.rsplit("/", 1)[-1])
