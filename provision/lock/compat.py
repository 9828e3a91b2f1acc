"""Lock-time checks across entries: each LoRA, embedding, hypernetwork and ControlNet must fit
some checkpoint of the manifest (the rule lives in provision.inspection), and each diffusion
model must have its text encoders and VAE (provision.lock.parts). This adapts lock entries."""

from __future__ import annotations

from collections.abc import Sequence

from provision.inspection import CompatEntry, check_compatibility
from provision.lock.lockfile import LockEntry
from provision.lock.parts import PartEntry, check_required_parts
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
    problems = [
        (pairs[position[id(p.entry)]][0], f"{p.message}; {p.hint}")
        for p in check_compatibility(compat)
    ]
    return problems + parts_check(pairs)


def parts_check(pairs: Sequence[tuple[ModelSpec, LockEntry]]) -> list[tuple[ModelSpec, str]]:
    """Diffusion models without their text encoders or VAE (provision.lock.parts), keyed by
    the entry's own position."""
    parts = check_required_parts([_part_entry(i, entry) for i, (_, entry) in enumerate(pairs)])
    return [(pairs[p.position][0], f"{p.message}; {p.hint}") for p in parts]


def _part_entry(position: int, entry: LockEntry) -> PartEntry:
    # What the file's own header said at lock (None: not a safetensors file).
    inspected = entry.inspected
    return PartEntry(
        position=position,
        name=entry.name,
        kind=entry.kind,
        family=entry.base,
        inspected_kind=inspected.kind if inspected else None,
        variant=inspected.variant if inspected else None,
        flags=frozenset(inspected.flags) if inspected else frozenset(),
    )
