"""Lock-time checks across entries: each LoRA, embedding, hypernetwork and ControlNet must fit
some checkpoint of the manifest (the rule lives in provision.inspection), and each diffusion
model must have its text encoders and VAE (provision.lock.parts). This adapts lock entries."""

from __future__ import annotations

from collections.abc import Sequence
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
    pairs = [(specs[e.entry_digest], e) for e in entries]
    return problems + parts_check(pairs)


def parts_check(pairs: Sequence[tuple[ModelSpec, LockEntry]]) -> list[tuple[ModelSpec, str]]:
    """Diffusion models without their text encoders or VAE (provision.lock.parts), keyed by
    the entry's own position."""
    parts = check_required_parts([_part_entry(i, entry) for i, (_, entry) in enumerate(pairs)])
    return [(pairs[p.position][0], f"{p.message}; {p.hint}") for p in parts]


def _part_entry(position: int, entry: LockEntry) -> PartEntry:
    # What the file's own header said at lock; the typed lock names this `entry.inspected`.
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
