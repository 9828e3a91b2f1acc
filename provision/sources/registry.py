"""The byte source of a locked (or just resolved) file, by its source type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.errors import SdprovError
from provision.sources import ByteSource, SourceContext
from provision.sources.civitai import CivitaiBytes
from provision.sources.huggingface import HfBytes
from provision.sources.url import UrlBytes


def byte_source(source: Mapping[str, Any], ctx: SourceContext, what: str) -> ByteSource:
    kind = source.get("type")
    if kind == "civitai":
        return CivitaiBytes(
            ctx=ctx,
            version_id=int(source["version_id"]),
            file_id=int(source["file_id"]),
            what=what,
        )
    if kind == "hf":
        return HfBytes(
            ctx=ctx,
            repo=str(source["repo"]),
            commit=str(source["commit"]),
            path=str(source["path"]),
            what=what,
        )
    if kind == "url":
        return UrlBytes(url=str(source["url"]), what=what)
    raise SdprovError(f"{what}: unknown source type {kind!r} in the lock")
