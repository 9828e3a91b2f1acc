"""The mirror-first byte source of `sync --mirror`.

Wraps the entry's own source: every open() tries the mirror object first (a presigned GET on
sdprov's byte path, so Range resume, the size cap and the sha256 check are the ones every
download gets), and only a 404 from the mirror, "the mirror lacks this object", switches the
file to its original source. Any other answer is an error: a mirror that denies access or
serves other bytes is a problem to fix, not a reason to reach for the internet silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from provision.errors import MirrorError, SdprovError
from provision.lock.lockfile import LockEntry
from provision.mirror.store import MirrorStore
from provision.net.http import ResponseLike, check_status
from provision.net.transfer import RawResponse, open_stream
from provision.sources import ByteSource, range_header
from provision.sync.apply import WrapSource

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MirrorUse:
    """Which files came from the mirror and which fell back to their source (thread-safe)."""

    mirror: str
    from_mirror: set[str] = field(default_factory=set)
    from_source: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, path: str, *, fallback: bool) -> None:
        with self._lock:
            (self.from_source if fallback else self.from_mirror).add(path)
            (self.from_mirror if fallback else self.from_source).discard(path)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.mirror,
            "from_mirror": sorted(self.from_mirror),
            "from_source": sorted(self.from_source),
        }


class MirrorFirstBytes:
    def __init__(
        self,
        store: MirrorStore,
        *,
        sha256: str,
        path: str,
        fallback: ByteSource,
        use: MirrorUse | None = None,
    ) -> None:
        self._store = store
        self._key = store.location.object_key(sha256)
        self._path = path
        self._fallback = fallback
        self._use = use
        self._lacking = False

    @property
    def source_type(self) -> str | None:
        """`mirror` while the mirror serves this file (picks the checksum-mismatch hint)."""
        return None if self._lacking else "mirror"

    def describe(self) -> str:
        if self._lacking:
            return self._fallback.describe()
        return f"the mirror object {self._store.describe(self._key)}"

    @contextmanager
    def open(self, offset: int, end: int | None = None) -> Iterator[RawResponse]:
        if not self._lacking:
            url = self._store.presign_get(self._key)
            with open_stream(url, headers=range_header(offset, end)) as response:
                if response.status_code != 404:
                    check_status(response, self._error, ok=(200, 206))
                    if self._use is not None:
                        self._use.record(self._path, fallback=False)
                    yield response
                    return
            self._lacking = True
            log.info("%s: not in %s; from its source", self._path, self._store.location)
        if self._use is not None:
            self._use.record(self._path, fallback=True)
        with self._fallback.open(offset, end) as response:
            yield response

    def _error(self, response: ResponseLike) -> SdprovError:
        where = self._store.describe(self._key)
        if response.status_code == 403:
            return MirrorError(
                f"{self._path}: the mirror refused access to {where} (HTTP 403)",
                hint="the credentials need oss:GetObject on the mirror prefix; "
                "or sync without --mirror",
            )
        return MirrorError(f"{self._path}: {where} answered HTTP {response.status_code}")


def mirror_first(store: MirrorStore, use: MirrorUse) -> WrapSource:
    """The hook `provision.sync.apply` calls to wrap each entry's own byte source."""

    def wrap(entry: LockEntry, original: ByteSource) -> ByteSource:
        return MirrorFirstBytes(
            store, sha256=entry.sha256, path=entry.path, fallback=original, use=use
        )

    return wrap
