"""Lock-time base-model compatibility: each LoRA, embedding and hypernetwork must fit some
checkpoint of the manifest. The rule lives in provision.inspection; this adapts lock entries."""

from __future__ import annotations

from provision.inspection import CompatEntry, check_compatibility
from provision.lock.lockfile import LockEntry
from provision.manifest.parse import Manifest, ModelSpec


def compat_check(manifest: Manifest, entries: list[LockEntry]) -> list[tuple[ModelSpec, str]]:
    specs = {s.digest: s for s in manifest.specs}
    compat = [
        CompatEntry(
            name=e.name,
            kind=e.kind,
            family=e.base,
            base_model_label=e.base_model,
            declared_base=specs[e.entry_digest].base,
        )
        for e in entries
    ]
    by_name = {e.name: e for e in entries}
    return [
        (specs[by_name[p.entry.name].entry_digest], f"{p.message}; {p.hint}")
        for p in check_compatibility(compat)
    ]
