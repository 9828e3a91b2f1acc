"""Value types shared by the inspection modules: what a tensor looks like, and the closed sets
a file is classified into.

The enums here are wider than `provision.kinds`: a downloaded file can turn out to be a
ControlNet, an upscaler, or nothing we recognise, and its family can be unknown. Values that
also exist in `provision.kinds` are spelled the same, so `FileKind.LORA == Kind.LORA`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A tensor as seen from a header or a pickle: its dtype name and shape, never its data."""

    dtype: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{list(self.shape)}"


class FileKind(enum.StrEnum):
    CHECKPOINT = "checkpoint"
    LORA = "lora"
    EMBEDDING = "embedding"
    VAE = "vae"
    HYPERNETWORK = "hypernetwork"
    CONTROLNET = "controlnet"
    UPSCALER = "upscaler"
    TEXT_ENCODER = "text_encoder"
    DIFFUSION_MODEL = "diffusion_model"
    CLIP_VISION = "clip_vision"
    UNKNOWN = "unknown"


class FileFamily(enum.StrEnum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SD3 = "sd3"
    FLUX = "flux"
    UNKNOWN = "unknown"


class LoraVariant(enum.StrEnum):
    LORA = "LoRA"
    LOCON = "LoCon"
    LOHA = "LoHa"
    LOKR = "LoKr"
    DORA = "DoRA"
    # IA3, GLoRA, OFT, full-diff and norm modules: LyCORIS formats WebUI loads from Lora/ too.
    LYCORIS = "LyCORIS"


class ModelVariant(enum.StrEnum):
    """What a ControlNet-folder file, a text encoder or an image encoder is, within its kind."""

    CONTROLNET = "ControlNet"
    T2I_ADAPTER = "T2I-Adapter"
    CONTROL_LORA = "ControlNet-LoRA"  # Stability's control-lora: LoRA factors + full hint encoder
    IP_ADAPTER = "IP-Adapter"
    CLIP_L = "CLIP-L"  # CLIP ViT-L/14 text model, 768 wide (SD1, SDXL, SD3, Flux)
    CLIP_G = "CLIP-G"  # OpenCLIP ViT-bigG/14 text model, 1280 wide (SDXL, SD3)
    OPENCLIP_H = "OpenCLIP-H"  # OpenCLIP ViT-H/14 text model, 1024 wide (SD2)
    T5_XXL = "T5-XXL"  # T5 v1.1 XXL encoder, 4096 wide (SD3, Flux)
    UMT5_XXL = "UMT5-XXL"  # multilingual T5 (video models)
    VIT_L = "ViT-L"  # CLIP vision towers, by width
    VIT_H = "ViT-H"
    VIT_BIGG = "ViT-bigG"
    SIGLIP = "SigLIP"  # no class token (Flux Redux)


class FileFormat(enum.StrEnum):
    SAFETENSORS = "safetensors"
    PICKLE = "pickle"
    OTHER = "other"


class Flag(enum.StrEnum):
    """Extra facts visible in a file, reported next to kind and family."""

    INPAINT = "inpaint"  # UNet takes 9 input channels (latent + mask + masked image)
    PIX2PIX = "pix2pix"  # UNet takes 8 input channels (instruct-pix2pix)
    REFINER = "refiner"  # SDXL refiner: OpenCLIP-G only, context 1280
    FLUX_DEV = "flux-dev"  # guidance embedding present
    FLUX_SCHNELL = "flux-schnell"  # no guidance embedding
    TEXT_ENCODER_ONLY = "text-encoder-only"  # a LoRA that touches only the text encoder(s)
    PEFT_KEYS = "peft-keys"  # diffusers/PEFT key names: A1111 1.x's Lora loader ignores them
    BUNDLED_EMBEDDINGS = "bundled-embeddings"  # a LoRA carrying textual inversions (bundle_emb.*)
    METADATA_DISAGREES = "metadata-disagrees"  # tensors decided; kohya/modelspec metadata said else
    EXTENSION_MISMATCH = "extension-mismatch"  # e.g. a pickle named .safetensors
    LATENT_4 = "latent-4ch"  # VAE of SD1/SD2/SDXL
    LATENT_16 = "latent-16ch"  # VAE of SD3/Flux
    FP8 = "fp8"  # weights stored as float8 (ComfyUI and Forge load them, A1111 does not)
    # Parts a Flux/SD3 checkpoint carries besides its transformer (for the required-parts check)
    INCLUDES_CLIP_L = "includes-clip-l"
    INCLUDES_CLIP_G = "includes-clip-g"
    INCLUDES_T5XXL = "includes-t5xxl"
    INCLUDES_VAE = "includes-vae"


# Display names for messages ("an SDXL checkpoint", "a sd1 LoRA" reads worse than "an SD1 LoRA").
FAMILY_LABELS: Final[Mapping[FileFamily, str]] = {
    FileFamily.SD1: "SD1",
    FileFamily.SD2: "SD2",
    FileFamily.SDXL: "SDXL",
    FileFamily.SD3: "SD3",
    FileFamily.FLUX: "Flux",
    FileFamily.UNKNOWN: "unknown-family",
}

KIND_LABELS: Final[Mapping[FileKind, str]] = {
    FileKind.CHECKPOINT: "checkpoint",
    FileKind.LORA: "LoRA",
    FileKind.EMBEDDING: "embedding",
    FileKind.VAE: "VAE",
    FileKind.HYPERNETWORK: "hypernetwork",
    FileKind.CONTROLNET: "ControlNet",
    FileKind.UPSCALER: "upscaler",
    FileKind.TEXT_ENCODER: "text encoder",
    FileKind.DIFFUSION_MODEL: "diffusion model",
    FileKind.CLIP_VISION: "CLIP vision encoder",
    FileKind.UNKNOWN: "unrecognised file",
}
