"""Model kinds, their WebUI folders and extensions, and base-model families."""

from __future__ import annotations

import enum
from typing import Final


class Kind(enum.StrEnum):
    CHECKPOINT = "checkpoint"
    LORA = "lora"
    EMBEDDING = "embedding"
    VAE = "vae"
    HYPERNETWORK = "hypernetwork"

    @property
    def folder(self) -> str:
        return KIND_FOLDERS[self]

    @property
    def section(self) -> str:
        return KIND_SECTIONS[self]

    @property
    def extensions(self) -> frozenset[str]:
        return KIND_EXTENSIONS[self]


KIND_FOLDERS: Final[dict[Kind, str]] = {
    Kind.CHECKPOINT: "Stable-diffusion",
    Kind.LORA: "Lora",
    Kind.EMBEDDING: "embeddings",
    Kind.VAE: "VAE",
    Kind.HYPERNETWORK: "hypernetworks",
}

# Manifest section name for each kind (design.md §2).
KIND_SECTIONS: Final[dict[Kind, str]] = {
    Kind.CHECKPOINT: "checkpoints",
    Kind.LORA: "loras",
    Kind.EMBEDDING: "embeddings",
    Kind.VAE: "vaes",
    Kind.HYPERNETWORK: "hypernetworks",
}
SECTION_KINDS: Final[dict[str, Kind]] = {v: k for k, v in KIND_SECTIONS.items()}

# What WebUI loads from each folder (reference/webui-formats.md §1). A file with another
# extension would be placed but never listed, so the manifest rejects it.
KIND_EXTENSIONS: Final[dict[Kind, frozenset[str]]] = {
    Kind.CHECKPOINT: frozenset({".safetensors", ".ckpt"}),
    Kind.LORA: frozenset({".safetensors", ".pt", ".ckpt"}),
    Kind.VAE: frozenset({".safetensors", ".pt", ".ckpt"}),
    Kind.EMBEDDING: frozenset({".safetensors", ".pt", ".bin"}),
    Kind.HYPERNETWORK: frozenset({".pt"}),
}

PICKLE_EXTENSIONS: Final[frozenset[str]] = frozenset({".ckpt", ".pt", ".bin", ".pth"})

# Kinds WebUI names by file name alone: two entries with one file name collide.
NAMED_BY_BASENAME: Final[frozenset[Kind]] = frozenset({Kind.LORA, Kind.VAE, Kind.HYPERNETWORK})


class Family(enum.StrEnum):
    """Normalised base-model family. LoRAs and embeddings only work within one family."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SD3 = "sd3"
    FLUX = "flux"
    OTHER = "other"


def file_format(filename: str) -> str:
    """`safetensors` or `pickle`, from the extension (the bytes are checked at inspection)."""
    lower = filename.lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if any(lower.endswith(ext) for ext in PICKLE_EXTENSIONS):
        return "pickle"
    return "other"


# Civitai `baseModel` strings → family (reference/civitai-hf.md §1.8). Pony, Illustrious and
# NoobAI are SDXL offspring; matching is on a normalised prefix so new variants ("SDXL Hyper",
# "SD 1.5 LCM", "Flux.1 Krea") land in their family without a code change.
_CIVITAI_PREFIXES: Final[tuple[tuple[str, Family], ...]] = (
    ("sd 1.", Family.SD1),
    ("sd 2.", Family.SD2),
    ("sdxl", Family.SDXL),
    ("pony v7", Family.OTHER),  # Pony V7 is AuraFlow-based, not SDXL
    ("pony", Family.SDXL),
    ("illustrious", Family.SDXL),
    ("noobai", Family.SDXL),
    ("sd 3", Family.SD3),
    ("flux.1", Family.FLUX),
)


def family_of_civitai_base(base_model: str | None) -> Family:
    """Normalise Civitai's `baseModel` (e.g. "SD 1.5", "Pony", "Flux.1 D") to a family."""
    if not base_model:
        return Family.OTHER
    lowered = " ".join(base_model.lower().split())
    for prefix, family in _CIVITAI_PREFIXES:
        if lowered.startswith(prefix):
            return family
    return Family.OTHER


# AIR ecosystem segment → family (the segment is parsed, never validated).
AIR_ECOSYSTEMS: Final[dict[str, Family]] = {
    "sd1": Family.SD1,
    "sd15": Family.SD1,
    "sd2": Family.SD2,
    "sdxl": Family.SDXL,
    "pony": Family.SDXL,
    "illustrious": Family.SDXL,
    "noobai": Family.SDXL,
    "sd3": Family.SD3,
    "sd3_5m": Family.SD3,
    "flux1": Family.FLUX,
}
