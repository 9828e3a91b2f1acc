"""Model kinds: their manifest sections, folders under the models root, the extensions every
UI loads from those folders, and how each UI is pointed at them; base-model families.

One models root serves A1111, Forge and ComfyUI without symlinks: the first five folders are
A1111's own layout, the new kinds use the folder names Forge and the ControlNet extension
create by default, and ComfyUI reads them all through `extra_model_paths.yaml`, whose
categories come from `KIND_COMFYUI_CATEGORIES` (provision/webui/comfyui_paths.py writes it).
Facts and commits: docs/inspection.md, reference/comfyui-and-cards.md.
"""

from __future__ import annotations

import enum
from typing import Final


class Kind(enum.StrEnum):
    CHECKPOINT = "checkpoint"
    LORA = "lora"
    EMBEDDING = "embedding"
    VAE = "vae"
    HYPERNETWORK = "hypernetwork"
    CONTROLNET = "controlnet"  # ControlNet, T2I-Adapter, ControlNet-LoRA, IP-Adapter
    UPSCALER = "upscaler"  # ESRGAN, RealESRGAN, SwinIR, DAT, … (spandrel architectures)
    TEXT_ENCODER = "text_encoder"  # CLIP-L, CLIP-G, T5-XXL (fp8 too)
    DIFFUSION_MODEL = "diffusion_model"  # UNet/transformer only: Flux, SD3.5, fp8 variants
    CLIP_VISION = "clip_vision"  # image encoders for IP-Adapter, Redux, unCLIP

    @property
    def folder(self) -> str:
        return KIND_FOLDERS[self]

    @property
    def section(self) -> str:
        return KIND_SECTIONS[self]

    @property
    def extensions(self) -> frozenset[str]:
        return KIND_EXTENSIONS[self]

    @property
    def comfyui_categories(self) -> tuple[str, ...]:
        return KIND_COMFYUI_CATEGORIES[self]


# Folder under the models root. No folder is inside another: status and the sync plan walk
# each kind folder on its own.
KIND_FOLDERS: Final[dict[Kind, str]] = {
    Kind.CHECKPOINT: "Stable-diffusion",
    Kind.LORA: "Lora",
    Kind.EMBEDDING: "embeddings",
    Kind.VAE: "VAE",
    Kind.HYPERNETWORK: "hypernetworks",
    Kind.CONTROLNET: "ControlNet",  # sd-webui-controlnet and Forge: models/ControlNet
    Kind.UPSCALER: "ESRGAN",  # A1111/Forge load any spandrel architecture from here
    Kind.TEXT_ENCODER: "text_encoder",  # Forge: models/text_encoder
    Kind.DIFFUSION_MODEL: "diffusion_models",  # ComfyUI's name; Forge reads it as --ckpt-dir
    Kind.CLIP_VISION: "clip_vision",  # ComfyUI's name (A1111/Forge have no such folder)
}

# Manifest section name for each kind (design.md §2, §8).
KIND_SECTIONS: Final[dict[Kind, str]] = {
    Kind.CHECKPOINT: "checkpoints",
    Kind.LORA: "loras",
    Kind.EMBEDDING: "embeddings",
    Kind.VAE: "vaes",
    Kind.HYPERNETWORK: "hypernetworks",
    Kind.CONTROLNET: "controlnets",
    Kind.UPSCALER: "upscalers",
    Kind.TEXT_ENCODER: "text_encoders",
    Kind.DIFFUSION_MODEL: "diffusion_models",
    Kind.CLIP_VISION: "clip_vision",
}
SECTION_KINDS: Final[dict[str, Kind]] = {v: k for k, v in KIND_SECTIONS.items()}

# What the UIs load from each folder (reference/webui-formats.md §1, comfyui-and-cards.md §1):
# for the new kinds, the extensions every UI that reads the folder accepts. A file with another
# extension would be placed but never listed, so the manifest rejects it.
KIND_EXTENSIONS: Final[dict[Kind, frozenset[str]]] = {
    Kind.CHECKPOINT: frozenset({".safetensors", ".ckpt"}),
    Kind.LORA: frozenset({".safetensors", ".pt", ".ckpt"}),
    Kind.VAE: frozenset({".safetensors", ".pt", ".ckpt"}),
    Kind.EMBEDDING: frozenset({".safetensors", ".pt", ".bin"}),
    Kind.HYPERNETWORK: frozenset({".pt"}),
    # sd-webui-controlnet / Forge CN_MODEL_EXTS ∩ ComfyUI's supported_pt_extensions
    Kind.CONTROLNET: frozenset({".safetensors", ".pth", ".pt", ".ckpt", ".bin"}),
    # A1111/Forge UpscalerESRGAN ext_filter ∩ ComfyUI
    Kind.UPSCALER: frozenset({".safetensors", ".pth", ".pt"}),
    # Forge's module list (ckpt pt bin safetensors gguf) ∩ ComfyUI (no gguf in its core)
    Kind.TEXT_ENCODER: frozenset({".safetensors", ".bin", ".pt", ".ckpt"}),
    # Forge's checkpoint list (.ckpt .safetensors .gguf) ∩ ComfyUI; `.sft` is ComfyUI-only
    Kind.DIFFUSION_MODEL: frozenset({".safetensors", ".ckpt"}),
    Kind.CLIP_VISION: frozenset({".safetensors", ".bin", ".pt", ".pth"}),
}

# ComfyUI `folder_paths` categories each folder serves (written into extra_model_paths.yaml).
# `ipadapter` is the ComfyUI_IPAdapter_plus category: IP-Adapters live with ControlNets, where
# A1111's and Forge's ControlNet code loads them.
KIND_COMFYUI_CATEGORIES: Final[dict[Kind, tuple[str, ...]]] = {
    Kind.CHECKPOINT: ("checkpoints",),
    Kind.LORA: ("loras",),
    Kind.EMBEDDING: ("embeddings",),
    Kind.VAE: ("vae",),
    Kind.HYPERNETWORK: ("hypernetworks",),
    Kind.CONTROLNET: ("controlnet", "ipadapter"),
    Kind.UPSCALER: ("upscale_models",),
    Kind.TEXT_ENCODER: ("text_encoders",),
    Kind.DIFFUSION_MODEL: ("diffusion_models",),
    Kind.CLIP_VISION: ("clip_vision",),
}

# Which file kinds a section accepts besides its own. A UNet/transformer-only file is also a
# valid checkpoint for Forge, which loads those from its checkpoint folder.
SECTION_ACCEPTS: Final[dict[Kind, frozenset[str]]] = {
    Kind.CHECKPOINT: frozenset({"checkpoint", "diffusion_model"}),
}


# Source labels (Civitai's model type) a section takes besides its own kind: Civitai files most
# UNet/transformer-only models as `Checkpoint` (file type "Diffusion Model"), and a `UNet`
# model is a valid Forge checkpoint. The file's own bytes still decide (see `accepts`).
DECLARED_ALSO: Final[dict[Kind, frozenset[Kind]]] = {
    Kind.DIFFUSION_MODEL: frozenset({Kind.CHECKPOINT}),
    Kind.CHECKPOINT: frozenset({Kind.DIFFUSION_MODEL}),
}


def accepts(section_kind: Kind, file_kind: str) -> bool:
    """Does a file the inspector calls `file_kind` belong in `section_kind`'s folder?"""
    return file_kind in ("unknown", section_kind.value) or file_kind in SECTION_ACCEPTS.get(
        section_kind, frozenset()
    )


PICKLE_EXTENSIONS: Final[frozenset[str]] = frozenset({".ckpt", ".pt", ".bin", ".pth"})

# Kinds A1111/Forge name by file name alone (ControlNet and upscaler lists use the stem, Forge's
# text encoder list the base name): two entries with one file name collide.
NAMED_BY_BASENAME: Final[frozenset[Kind]] = frozenset(
    {Kind.LORA, Kind.VAE, Kind.HYPERNETWORK, Kind.CONTROLNET, Kind.UPSCALER, Kind.TEXT_ENCODER}
)


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
