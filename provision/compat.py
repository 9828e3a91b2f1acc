"""Lock-time base-model compatibility: adapters must fit some checkpoint of the manifest.

Thin glue between the lock service and provision.inspection's family rules.
"""

from __future__ import annotations

from provision.kinds import Family, Kind
from provision.lockfile import LockEntry
from provision.manifest import Manifest, ModelSpec

ADAPTER_KINDS = frozenset({Kind.LORA, Kind.EMBEDDING, Kind.HYPERNETWORK})


def compat_check(manifest: Manifest, entries: list[LockEntry]) -> list[tuple[ModelSpec, str]]:
    """Every LoRA/embedding/hypernetwork whose family matches no checkpoint's family."""
    specs = {s.digest: s for s in manifest.specs}
    checkpoints = [e for e in entries if e.kind is Kind.CHECKPOINT]
    families = {e.base for e in checkpoints if e.base is not Family.OTHER}
    if not families:
        return []  # nothing to compare against (no checkpoints, or all of unknown family)
    problems: list[tuple[ModelSpec, str]] = []
    for entry in entries:
        if entry.kind not in ADAPTER_KINDS or entry.base is Family.OTHER:
            continue
        if entry.base in families:
            continue
        names = ", ".join(f"{c.name} ({_label(c)})" for c in checkpoints)
        problems.append(
            (
                specs[entry.entry_digest],
                f"{entry.kind.value} {entry.name} is made for {_label(entry)}, but no "
                f"checkpoint in the manifest is: {names}. It would not work with them; "
                "remove it, add a matching checkpoint, set `base:` on the entry if the "
                "source's label is wrong, or set `options: {base_check: warn}`",
            )
        )
    return problems


def _label(entry: LockEntry) -> str:
    if entry.base_model and entry.base_model.lower() != entry.base.value:
        return f"{entry.base.value}, {entry.base_model}"
    return entry.base.value
