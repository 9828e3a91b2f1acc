"""A small on-disk cache of API answers (JSON), so `sdprov outdated` run twice in a row, or
by several team members' scripts, does not ask Civitai and Hugging Face the same thing again.

Under the user cache dir (`$SDPROV_CACHE_DIR`, else `$XDG_CACHE_HOME/sdprov`, else
`~/.cache/sdprov`), entries expire after `ttl` seconds (10 minutes: Civitai itself caches
these answers for 5 minutes). Keys are the request path plus whether a token was sent (some
answers differ for a logged-in user); no token, signed URL or header is ever stored.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

DEFAULT_TTL: Final = 600.0


def cache_dir() -> Path:
    if explicit := os.environ.get("SDPROV_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdprov"


class ApiCache:
    """`get(key, fetch)`: the cached JSON for `key`, or `fetch()`'s answer, stored."""

    def __init__(self, *, enabled: bool = True, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._store: Any = None
        if enabled:
            try:
                import diskcache

                folder = cache_dir() / "api"
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # no one else writes it
                self._store = diskcache.Cache(str(folder), size_limit=64 << 20)
            except OSError:
                self._store = None  # an unwritable cache dir only costs speed

    def get(self, key: str, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        # Stored as JSON text, never pickled objects: reading a cache must not run code.
        if self._store is not None:
            hit = self._store.get(key)
            if isinstance(hit, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(hit)
                    if isinstance(value, dict):
                        return value
        value = fetch()
        if self._store is not None:
            with contextlib.suppress(OSError):
                self._store.set(key, json.dumps(value), expire=self.ttl)
        return value

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
