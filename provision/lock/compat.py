"""Lock-time checks across entries: each LoRA, embedding, hypernetwork and ControlNet must fit
some checkpoint of the manifest (the rule lives in provision.inspection), and each diffusion
model must have its text encoders and VAE (provision.lock.parts). This adapts lock entries."""

from __future__ import annotations

from typing import Any

from provision.inspection import CompatEntry, check_compatibility
from provision.lock.lockfile import LockEntry
from provision.lock.parts import PartEntry, check_required_parts
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
    problems = [
        (specs[by_name[p.entry.name].entry_digest], f"{p.message}; {p.hint}")
        for p in check_compatibility(compat)
    ]
    parts = check_required_parts([_part_entry(i, e) for i, e in enumerate(entries)])
    problems += [(specs[entries[p.position].entry_digest], f"{p.message}; {p.hint}") for p in parts]
    return problems


def _part_entry(position: int, entry: LockEntry) -> PartEntry:
    inspected: dict[str, Any] = entry.extra.get("inspected") or {}
    return PartEntry(
        position=position,
        name=entry.name,
        kind=entry.kind,
        family=entry.base,
        inspected_kind=inspected.get("kind"),
        variant=inspected.get("variant"),
        flags=frozenset(inspected.get("flags") or ()),
    )
