"""Hugging Face: resolve `owner/repo/path[@rev]` to a commit, size and sha256; open its bytes.

A HEAD on `/{repo}/resolve/{rev}/{path}` (not following the redirect to the CDN) gives the
commit (`X-Repo-Commit`) and, for LFS files, the sha256 (`X-Linked-Etag`) and size
(`X-Linked-Size`). Small non-LFS files carry only a git sha1, so we hash them once at lock
time. Downloads use the locked commit, so a moved branch never changes the bytes.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import httpx

from provision.errors import AccessDenied, AuthRequired, NotFound, SdprovError, SourceError
from provision.kinds import Family
from provision.manifest.refs import HfRef
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
from provision.sources import ByteSource, ResolvedFile, SourceContext, range_header
from provision.sources.locked import HfSource
from provision.sources.peek import PooledBytes

_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
AUTH_HINT: Final = "set HF_TOKEN to a token from huggingface.co/settings/tokens"


def resolve_url(ctx: SourceContext, repo: str, revision: str, path: str) -> str:
    rev = urllib.parse.quote(revision, safe="")
    return f"{ctx.hf_endpoint}/{repo}/resolve/{rev}/{urllib.parse.quote(path)}"


def error_for(response: ResponseLike, what: str) -> SdprovError:
    code = response.headers.get("X-Error-Code", "")
    message = response.headers.get("X-Error-Message", "")
    status = response.status_code
    if code == "GatedRepo" or "restricted" in message:
        cls = AuthRequired if status == 401 else AccessDenied
        return cls(f"{what}: gated repository ({message or f'HTTP {status}'})", hint=AUTH_HINT)
    if code == "RevisionNotFound":
        return NotFound(f"{what}: revision not found on Hugging Face")
    if code == "EntryNotFound" or status == 404:
        return NotFound(f"{what}: file not found on Hugging Face ({message or 'HTTP 404'})")
    if code == "RepoNotFound" or status == 401:
        # HF answers 401 for private *and* missing repos: say both.
        return NotFound(
            f"{what}: repository not found, or private ({message or f'HTTP {status}'})",
            hint=f"check the repo name; if it is private, {AUTH_HINT}",
        )
    if status == 403:
        return AccessDenied(f"{what}: access denied ({message or 'HTTP 403'})", hint=AUTH_HINT)
    return SourceError(f"{what}: unexpected HTTP {status} from {redact(str(response.url))}")


def _strip_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower()


def resolve(
    ref: HfRef,
    *,
    what: str,
    client: httpx.Client | HostPool,
    ctx: SourceContext,
    base: Family | None,
) -> ResolvedFile:
    url = resolve_url(ctx, ref.repo, ref.revision or "main", ref.path)

    def head() -> httpx.Headers:
        # The metadata sits on the resolve answer itself (a 302 to the CDN for LFS files), so
        # the chain stops at the first answer carrying X-Repo-Commit. Redirects without it (a
        # renamed repo, a mirror) are followed under the token policy like any other.
        with open_following(
            client,
            url,
            method="HEAD",
            headers={"Accept-Encoding": "identity"},
            credential=credential(ctx),
            stop=lambda r: bool(r.headers.get("X-Repo-Commit")),
        ) as response:
            check_status(response, lambda r: error_for(r, what), ok=range(200, 400))
            return response.headers

    headers = retrying(head, policy=ctx.retry, what=what)
    commit = headers.get("X-Repo-Commit", "")
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise SourceError(f"{what}: the endpoint did not give a commit (X-Repo-Commit)")
    linked = _strip_etag(headers.get("X-Linked-Etag", ""))
    size_header = headers.get("X-Linked-Size") or headers.get("Content-Length", "")
    source = HfSource(repo=ref.repo, path=ref.path, revision=ref.revision or "main", commit=commit)
    if _SHA256.match(linked) and size_header.isdigit():
        sha, size = linked, int(size_header)
    else:
        # Not an LFS file: only a git sha1 is published. Hash the (small) file once.
        pinned = HfBytes(ctx=ctx, repo=ref.repo, commit=commit, path=ref.path, what=what)
        sha, size = hash_remote(pinned, ctx, what)
    return ResolvedFile(
        file_name=ref.path.rsplit("/", 1)[-1],
        size=size,
        sha256=sha,
        base=base or Family.OTHER,
        base_model=None,
        source=source,
    )


def hash_remote(source: ByteSource, ctx: SourceContext, what: str) -> tuple[str, int]:
    """Stream a whole remote file once to learn its sha256 and size (memory stays flat)."""

    def attempt() -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        buffer = memoryview(bytearray(1 << 20))
        with source.open(0) as response:
            while n := response.readinto(buffer):
                digest.update(buffer[:n])
                size += n
        return digest.hexdigest(), size

    result: tuple[str, int] = retrying(attempt, policy=ctx.retry, what=what)
    return result


def credential(ctx: SourceContext) -> Credential | None:
    return Credential.bearer(ctx.hf_token, {origin_of(ctx.hf_endpoint)})


def lock_bytes(
    pool: HostPool, ctx: SourceContext, repo: str, commit: str, path: str, what: str
) -> PooledBytes:
    """The file's header read at lock time over the lock's pool; sync uses HfBytes."""

    def check(response: PooledResponse) -> None:
        check_status(response, lambda r: error_for(r, what), ok=(200, 206))

    return PooledBytes(
        pool=pool,
        url=resolve_url(ctx, repo, commit, path),
        label=f"hf {repo}/{path}@{commit[:12]}",
        credential=credential(ctx),
        refuse=check,
    )


@dataclass(slots=True, kw_only=True)
class HfBytes:
    ctx: SourceContext
    repo: str
    commit: str
    path: str
    what: str
    # The CDN URL the resolve redirected to, reused until the CDN refuses it: a file fetched
    # in 8 MiB pieces (provision.sync.ranged) must not cost one resolve call per piece.
    cdn_url: str | None = None

    def describe(self) -> str:
        return f"hf {self.repo}/{self.path}@{self.commit[:12]}"

    @contextmanager
    def open(self, offset: int, end: int | None = None) -> Iterator[RawResponse]:
        headers = range_header(offset, end)
        if (cdn := self.cdn_url) is not None:
            with open_stream(cdn, headers=headers) as response:
                if response.status_code in (200, 206):
                    yield response
                    return
                check_transient(response)
            self.cdn_url = None  # expired signature: resolve again
        url = resolve_url(self.ctx, self.repo, self.commit, self.path)
        with open_stream(url, headers=headers, credential=credential(self.ctx)) as response:
            check_status(response, lambda r: error_for(r, self.what), ok=(200, 206))
            if origin_of(str(response.url)) != origin_of(self.ctx.hf_endpoint):
                self.cdn_url = str(response.url)
            yield response
