"""The manifest's model-card keys: `trigger:`, `weight:`, `preview:`, `notes:`, `vae:`.

One frozen record, used by the manifest (parsed from an entry) and by the lock (which keeps it
per Civitai entry, so `sync` can write the cards from the lock alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from provision.kinds import Kind

PREVIEW_MODES: Final = ("none", "sfw", "any")

# Card keys that only mean something on some kinds' cards (A1111's user-metadata editors).
CARD_KEY_KINDS: Final = (
    ("trigger", {Kind.LORA}, "only LoRA cards have activation text"),
    ("weight", {Kind.LORA}, "only LoRA cards have a preferred weight"),
    ("vae", {Kind.CHECKPOINT}, "only checkpoint cards name a VAE"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardOptions:
    """The manifest's model-card keys (`trigger:`, `weight:`, `preview:`, `notes:`)."""

    trigger: tuple[str, ...] | None = None  # None: Civitai's trained words
    weight: float | None = None
    preview: str = "sfw"  # none | sfw | any
    notes: str | None = None
    vae: str | None = None  # checkpoints: a VAE file name, a `vaes` entry's name, Automatic, None

    def to_raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"preview": self.preview}
        if self.trigger is not None:
            raw["trigger"] = list(self.trigger)
        if self.weight is not None:
            raw["weight"] = self.weight
        if self.notes is not None:
            raw["notes"] = self.notes
        if self.vae is not None:
            raw["vae"] = self.vae
        return raw

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> CardOptions:
        trigger = entry.get("trigger")
        return cls(
            trigger=(trigger,) if isinstance(trigger, str) else tuple(trigger) if trigger else None,
            weight=float(entry["weight"]) if "weight" in entry else None,
            preview=str(entry.get("preview", "sfw")),
            notes=entry.get("notes"),
            vae=entry.get("vae"),
        )
