"""Detectors for everything that is not a LoRA: each looks for the keys only its kind has.

Order matters and lives in `classify.DETECTORS`: ControlNets contain UNet-like blocks, so they
are tried before checkpoints (control.py); VAEs and text encoders are parts of a checkpoint, so
they come after.
Facts: reference/webui-formats.md §4 (A1111 `sd_models_config`, ComfyUI `detect_unet_config`).
"""

from __future__ import annotations

import re
from typing import Final

from provision.inspection.findings import (
    Finding,
    Tensors,
    describe,
    family_from_context,
    first_match,
)
from provision.inspection.model import FileFamily, FileKind, Flag

# ---- hypernetwork ---------------------------------------------------------------------------
# A1111 saves {context_dim: (state_dict_k, state_dict_v), "name": ..., ...}; flattened, the
# tensors are "<dim>.<0|1>.linear.<n>.weight".
_HYPERNET_KEY: Final = re.compile(r"^(\d+)\.([01])\.linear\.\d+\.(?:weight|bias)$")


def detect_hypernetwork(tensors: Tensors) -> Finding | None:
    dims = sorted({int(m.group(1)) for k in tensors if (m := _HYPERNET_KEY.match(k))})
    if not dims or not all(_HYPERNET_KEY.match(k) for k in tensors):
        return None
    finding = Finding(kind=FileKind.HYPERNETWORK)
    finding.evidence.append(
        f"{len(tensors)} tensors keyed <dim>.<k|v>.linear.N: layers for widths {dims}"
    )
    # SD1 files carry 768 (the CLIP context) and often 320/640/1280; SD2 files carry 1024.
    if 1024 in dims:
        finding.family = FileFamily.SD2
        finding.evidence.append("a 1024 layer (OpenCLIP-H context) → sd2")
    elif 768 in dims:
        finding.family = FileFamily.SD1
        finding.evidence.append("a 768 layer (CLIP-L context) → sd1")
    return finding


# ---- embedding (textual inversion) ----------------------------------------------------------
_EMBEDDING_WIDTHS: Final = {768: FileFamily.SD1, 1024: FileFamily.SD2}


def detect_embedding(tensors: Tensors) -> Finding | None:
    if "clip_l" in tensors and "clip_g" in tensors:
        finding = Finding(kind=FileKind.EMBEDDING)
        widths = (tensors["clip_l"].shape[-1:], tensors["clip_g"].shape[-1:])
        finding.evidence.append(
            f"{describe('clip_l', tensors['clip_l'])} + {describe('clip_g', tensors['clip_g'])}:"
            " one vector per SDXL text encoder"
        )
        if widths == ((768,), (1280,)):
            finding.family = FileFamily.SDXL
            finding.evidence.append("widths 768 + 1280 → sdxl")
        return finding
    params = sorted(k for k in tensors if k.startswith("string_to_param."))
    if params:
        return _single_vector_embedding(params[0], tensors, "A1111 string_to_param")
    if "emb_params" in tensors:
        return _single_vector_embedding("emb_params", tensors, "A1111 safetensors emb_params")
    if len(tensors) == 1:
        (key,) = tensors
        shape = tensors[key].shape
        if len(shape) in (1, 2) and shape[-1] in _EMBEDDING_WIDTHS:
            return _single_vector_embedding(key, tensors, "a single token vector (diffusers)")
    return None


def _single_vector_embedding(key: str, tensors: Tensors, what: str) -> Finding:
    finding = Finding(kind=FileKind.EMBEDDING)
    info = tensors[key]
    width = info.shape[-1] if info.shape else 0
    vectors = info.shape[0] if len(info.shape) == 2 else 1
    finding.evidence.append(f"{describe(key, info)}: {what}, {vectors} vector(s) of width {width}")
    family = _EMBEDDING_WIDTHS.get(width)
    if family is not None:
        finding.family = family
        finding.evidence.append(f"width {width} → {family}")
    return finding


# ---- diffusion models (checkpoints and ControlNets) ------------------------------------------
_UNET_TO_K: Final = re.compile(r"attn2\.to_k\.weight$")
_FLUX: Final = re.compile(r"(?:^|\.)double_blocks\.\d+\.img_attn\.")
_FLUX_DIFFUSERS: Final = re.compile(r"(?:^|\.)single_transformer_blocks\.\d+\.")
_SD3: Final = re.compile(r"(?:^|\.)joint_blocks\.\d+\.context_block\.")
_SD3_DIFFUSERS: Final = re.compile(r"(?:^|\.)transformer_blocks\.\d+\.attn\.add_k_proj\.weight$")
_IN_CONV: Final = re.compile(r"(?:^|\.)input_blocks\.0\.0\.weight$")
# Text encoders, as A1111 `guess_model_config_from_state_dict` tells them apart.
_TEXT_ENCODERS: Final = (
    ("conditioner.embedders.1.model.ln_final.weight", FileFamily.SDXL, None, "OpenCLIP-G"),
    ("conditioner.embedders.0.model.ln_final.weight", FileFamily.SDXL, Flag.REFINER,
     "OpenCLIP-G alone (refiner)"),
    ("cond_stage_model.model.ln_final.weight", FileFamily.SD2, None, "OpenCLIP-H"),
    ("cond_stage_model.transformer.text_model.final_layer_norm.weight", FileFamily.SD1, None,
     "CLIP-L"),
)  # fmt: skip


# Parts a checkpoint bundles besides its UNet/transformer (ldm, SGM and ComfyUI save layouts).
_TEXT_ENCODER_PREFIXES: Final = ("cond_stage_model.", "conditioner.", "text_encoders.")
_VAE_PREFIXES: Final = ("first_stage_model.", "vae.")
# Text encoders a Flux/SD3 checkpoint may carry (ComfyUI's save layout), for the parts check.
_BUNDLED: Final = (
    ("text_encoders.clip_l.", Flag.INCLUDES_CLIP_L),
    ("text_encoders.clip_g.", Flag.INCLUDES_CLIP_G),
    ("text_encoders.t5xxl.", Flag.INCLUDES_T5XXL),
)


def detect_checkpoint(tensors: Tensors) -> Finding | None:
    """A diffusion model: a full checkpoint, or kind diffusion_model when it carries neither a
    text encoder nor a VAE (a UNet/transformer-only file such as BFL's flux1-dev)."""
    finding = _diffusion_core(tensors)
    if finding is None:
        return None
    te = any(k.startswith(_TEXT_ENCODER_PREFIXES) for k in tensors)
    vae = any(k.startswith(_VAE_PREFIXES) for k in tensors)
    if any(info.dtype.startswith("F8") for info in tensors.values()):
        finding.add_flag(Flag.FP8)
        finding.evidence.append("float8 weights (fp8): ComfyUI and Forge load them, A1111 not")
    if not te and not vae:
        finding.kind = FileKind.DIFFUSION_MODEL
        finding.evidence.append("no text encoder and no VAE: a UNet/transformer-only file")
        return finding
    if finding.family in (FileFamily.FLUX, FileFamily.SD3):
        parts = [flag for prefix, flag in _BUNDLED if any(k.startswith(prefix) for k in tensors)]
        if vae:
            parts.append(Flag.INCLUDES_VAE)
        for flag in parts:
            finding.add_flag(flag)
        names = ", ".join(str(p).removeprefix("includes-") for p in parts) or "nothing else"
        finding.evidence.append(f"bundles {names}")
    return finding


def _diffusion_core(tensors: Tensors) -> Finding | None:
    finding = Finding(kind=FileKind.CHECKPOINT)
    if (hit := first_match(tensors, _FLUX) or first_match(tensors, _FLUX_DIFFUSERS)) is not None:
        finding.family = FileFamily.FLUX
        finding.evidence.append(f"{hit[0]}: Flux double/single-stream blocks → flux")
        guided = any(".guidance_in." in k or "guidance_embedder" in k or k.startswith(
            "guidance_in.") for k in tensors)  # fmt: skip
        finding.add_flag(Flag.FLUX_DEV if guided else Flag.FLUX_SCHNELL)
        finding.evidence.append(
            "guidance embedding present → dev" if guided else "no guidance embedding → schnell"
        )
        return finding
    if (hit := first_match(tensors, _SD3) or first_match(tensors, _SD3_DIFFUSERS)) is not None:
        finding.family = FileFamily.SD3
        finding.evidence.append(f"{describe(*hit)}: SD3 MMDiT joint block → sd3")
        return finding
    if first_match(tensors, _UNET_TO_K) is None:
        return None
    _unet_family(tensors, finding)
    if (conv := first_match(tensors, _IN_CONV)) is not None and len(conv[1].shape) == 4:
        channels = conv[1].shape[1]
        flag = {9: Flag.INPAINT, 8: Flag.PIX2PIX}.get(channels)
        if flag is not None:
            finding.add_flag(flag)
            finding.evidence.append(f"{describe(*conv)}: {channels} input channels → {flag}")
    return finding


def _unet_family(tensors: Tensors, finding: Finding) -> None:
    samples = [
        (k, tensors[k].shape[1])
        for k in sorted(tensors)
        if _UNET_TO_K.search(k) and len(tensors[k].shape) == 2
    ]
    decided = family_from_context(samples, "cross-attention context")
    if decided is not None and decided[0] is not FileFamily.UNKNOWN:
        finding.family, flag, reason = decided
        finding.add_flag(flag)
        finding.evidence.append(reason)
    for key, family, flag, encoder in _TEXT_ENCODERS:
        if key in tensors or f"state_dict.{key}" in tensors:
            if finding.family is FileFamily.UNKNOWN:
                finding.family = family
                finding.add_flag(flag)
            finding.evidence.append(f"{key}: {encoder} text encoder → {family}")
            break
    if decided is not None and decided[0] is FileFamily.UNKNOWN:
        finding.evidence.append(decided[2])


# ---- VAE -------------------------------------------------------------------------------------
_VAE_DECODER_IN: Final = re.compile(r"(?:^|\.)decoder\.conv_in\.weight$")
_VAE_ENCODER_IN: Final = re.compile(r"(?:^|\.)encoder\.conv_in\.weight$")


def detect_vae(tensors: Tensors) -> Finding | None:
    decoder = first_match(tensors, _VAE_DECODER_IN)
    encoder = first_match(tensors, _VAE_ENCODER_IN)
    if decoder is None and encoder is None:
        return None
    finding = Finding(kind=FileKind.VAE)
    hit = decoder or encoder
    assert hit is not None
    finding.evidence.append(f"{describe(*hit)}: autoencoder encoder/decoder, no diffusion model")
    if decoder is not None and len(decoder[1].shape) == 4:
        latent = decoder[1].shape[1]
        if latent == 4:
            finding.add_flag(Flag.LATENT_4)
            finding.evidence.append(
                "4-channel latent: SD1, SD2 and SDXL VAEs share this shape (family unknown)"
            )
        elif latent == 16:
            finding.add_flag(Flag.LATENT_16)
            finding.evidence.append("16-channel latent: SD3 or Flux (family unknown)")
    return finding


# ---- upscalers -------------------------------------------------------------------------------
_UPSCALERS: Final = (
    (re.compile(r"^model\.1\.sub\.\d+\.RDB\d\.conv\d\.0\.weight$"), "ESRGAN (old layout)"),
    (re.compile(r"^(?:RRDB_trunk|body)\.\d+\.(?:RDB|rdb)\d\.conv\d\.weight$"), "ESRGAN/RRDBNet"),
    (re.compile(r"^layers\.\d+\.residual_group\.blocks\.\d+\.attn\."), "SwinIR/HAT"),
    (re.compile(r"^before_RG\.\d+\.weight$"), "DAT"),
    (re.compile(r"^block_\d+\.c1_r\.(?:sk\.)?weight$"), "SPAN"),
)
# Real-ESRGAN's compact SRVGGNet: nothing but `body.N.weight|bias` (convs and PReLUs).
_COMPACT: Final = re.compile(r"^body\.\d+\.(?:weight|bias)$")


def detect_upscaler(tensors: Tensors) -> Finding | None:
    for pattern, name in _UPSCALERS:
        hit = first_match(tensors, pattern)
        if hit is not None:
            finding = Finding(kind=FileKind.UPSCALER)
            finding.evidence.append(f"{hit[0]}: {name} super-resolution network")
            finding.evidence.append("upscalers work with any base model")
            return finding
    first = tensors.get("body.0.weight")
    if (
        first is not None
        and len(first.shape) == 4
        and first.shape[1] == 3
        and all(_COMPACT.match(k) for k in tensors)
    ):
        finding = Finding(kind=FileKind.UPSCALER)
        finding.evidence.append(
            f"{describe('body.0.weight', first)} and only body.N layers: Real-ESRGAN compact"
            " (SRVGGNet)"
        )
        finding.evidence.append("upscalers work with any base model")
        return finding
    return None
