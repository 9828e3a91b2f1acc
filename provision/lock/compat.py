"""Lock-time base-model compatibility: each LoRA, embedding and hypernetwork must fit some
checkpoint of the manifest. The rule lives in provision.inspection; this adapts lock entries."""

from __future__ import annotations

from collections.abc import Sequence

from provision.inspection import CompatEntry, check_compatibility
from provision.lock.lockfile import LockEntry
from provision.manifest.parse import ModelSpec


def compat_check(pairs: Sequence[tuple[ModelSpec, LockEntry]]) -> list[tuple[ModelSpec, str]]:
    """Problems keyed by the entry's own position: names (and even digests) are not unique."""
    compat = [
        CompatEntry(
            name=entry.name,
            kind=entry.kind,
            family=entry.base,
            base_model_label=entry.base_model,
            declared_base=spec.base,
        )
        for spec, entry in pairs
    ]
    # Identity, not equality: two entries with the same name and family compare equal.
    position = {id(c): i for i, c in enumerate(compat)}
    return [
        (pairs[position[id(p.entry)]][0], f"{p.message}; {p.hint}")
        for p in check_compatibility(compat)
    ]
