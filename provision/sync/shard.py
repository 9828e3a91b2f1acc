"""Which of N shard workers downloads which locked file: deterministic, balanced by bytes.

Every worker computes the same assignment from the lock alone (never from what is on disk,
which differs between workers started moments apart), so no two workers ever own one file.
Files go largest first to the first shard in their own rendezvous order (a hash of path and
shard) that stays under a byte cap; the rendezvous order keeps a file on its shard when the
lock changes a little, the cap keeps the shards within a small factor of the ideal.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from provision.errors import UsageError

# The slack over the ideal share a shard may take before a file goes to a later choice.
SLACK: Final = 1.15
_SPEC: Final = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SPEC.fullmatch(text.strip())
        if match is None:
            raise UsageError(f"--shard {text!r}: expected I/N, e.g. 0/4 (0 <= I < N)")
        index, count = int(match[1]), int(match[2])
        if count < 1 or index >= count:
            raise UsageError(f"--shard {text}: I must be at least 0 and below N (N >= 1)")
        return cls(index=index, count=count)

    @property
    def label(self) -> str:
        return f"{self.index}of{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _rank(path: str, shard: int) -> bytes:
    return hashlib.sha256(f"{shard}\0{path}".encode()).digest()


def assign(sizes: Mapping[str, int], count: int) -> dict[str, int]:
    """Map each lock path to a shard index in [0, count)."""
    if count <= 1:
        return dict.fromkeys(sizes, 0)
    total = sum(sizes.values())
    largest = max(sizes.values(), default=0)
    cap = max(total / count * SLACK, largest)
    load = [0] * count
    owner: dict[str, int] = {}
    for path in sorted(sizes, key=lambda p: (-sizes[p], p)):
        size = sizes[path]
        order = sorted(range(count), key=lambda i: _rank(path, i))
        fits = [i for i in order if load[i] + size <= cap]
        chosen = fits[0] if fits else min(order, key=lambda i: load[i])
        load[chosen] += size
        owner[path] = chosen
    return owner


def share(sizes: Mapping[str, int], shard: Shard) -> set[str]:
    """The lock paths this shard downloads."""
    owner = assign(sizes, shard.count)
    return {path for path, i in owner.items() if i == shard.index}


def loads(sizes: Mapping[str, int], count: int) -> list[int]:
    owner = assign(sizes, count)
    out = [0] * count
    for path, i in owner.items():
        out[i] += sizes[path]
    return out


def lock_sizes(entries: Iterable[tuple[str, int]]) -> dict[str, int]:
    return dict(entries)
