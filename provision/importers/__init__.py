"""Turn real work into manifest entries: a ComfyUI workflow (its `models` list and its loader
nodes' file names) or an A1111 PNG's infotext (`Model hash`, `Lora hashes`, Civitai resource
ids). Readers only collect what the file says (`Found`); `provision.importers.resolve` asks
Civitai what it is. An item nothing identifies is listed as unresolved, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from provision.kinds import Kind

# ComfyUI model folders → the manifest's kinds (provision.kinds keeps the categories each kind
# serves); `clip` and `unet` are the old names ComfyUI still reads (comfyui-and-cards.md §1).
COMFY_FOLDERS: Final[dict[str, Kind]] = {
    **{category: kind for kind in Kind for category in kind.comfyui_categories},
    "clip": Kind.TEXT_ENCODER,
    "unet": Kind.DIFFUSION_MODEL,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """One model a file refers to, with whatever identifies it."""

    origin: str  # `workflow.json: LoraLoader #12` / `image.png: Lora hashes`
    name: str | None = None  # the file stem the work used (prompts and loaders refer to it)
    kind: Kind | None = None  # what the file says it is (Civitai's type wins when known)
    folder: str | None = None  # a ComfyUI folder with no manifest section, for the message
    hash: str | None = None  # any hash Civitai's by-hash accepts (AutoV1/V2/V3, SHA256)
    sha256: str | None = None
    version_id: int | None = None  # a Civitai model version
    url: str | None = None

    def describe(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"{self.origin}{label}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unresolved:
    found: Found
    reason: str

    def describe(self) -> str:
        return f"{self.found.describe()}: {self.reason}"
