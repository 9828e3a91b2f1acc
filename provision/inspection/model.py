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
    FileKind.UNKNOWN: "unrecognised file",
}
