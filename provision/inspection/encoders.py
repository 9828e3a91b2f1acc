"""Text encoders (CLIP-L, CLIP-G, OpenCLIP-H, T5-XXL) and CLIP vision image encoders.

Keys as the transformers layouts ComfyUI and Forge load (ComfyUI `comfy/sd.py detect_te_model`,
`comfy/clip_vision.py`): a CLIP text model is `text_model.encoder.layers.N.*`, its width read
from `text_model.final_layer_norm.weight` (768 CLIP-L, 1024 OpenCLIP-H, 1280 CLIP-G); T5 is
`encoder.block.N.layer.*`, 4096 wide for XXL (`shared.weight` [32128 | 256384 (UMT5), 4096]);
an image encoder is `vision_model.embeddings.patch_embedding.weight` [width, 3, 14, 14].
Text encoders and image encoders have no base family: CLIP-L serves SD1, SDXL, SD3 and Flux.
"""

from __future__ import annotations

import re
from typing import Final

from provision.inspection.findings import Finding, Tensors, describe, first_match
from provision.inspection.model import FileKind, Flag, ModelVariant

_CLIP_TEXT: Final = re.compile(r"(?:^|\.)text_model\.encoder\.layers\.(\d+)\.")
_CLIP_TEXT_NORM: Final = re.compile(r"(?:^|\.)text_model\.final_layer_norm\.weight$")
# open_clip's own layout (some CLIP-G files): transformer.resblocks.N + token_embedding.
_OPENCLIP_TEXT: Final = re.compile(r"(?:^|\.)transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$")
_T5_BLOCK: Final = re.compile(r"(?:^|\.)encoder\.block\.(\d+)\.layer\.0\.SelfAttention\.q\.weight$")
_T5_SHARED: Final = re.compile(r"(?:^|\.)shared\.weight$")
# transformers layout, or open_clip's `visual.conv1` (ComfyUI's clip_vision.py converts both).
_VISION_PATCH: Final = re.compile(
    r"(?:^|\.)(?:vision_model\.embeddings\.patch_embedding|visual\.conv1)\.weight$"
)
_VISION_CLASS: Final = re.compile(
    r"(?:^|\.)(?:vision_model\.embeddings\.class_embedding|visual\.class_embedding)$"
)

_CLIP_WIDTHS: Final = {
    768: (ModelVariant.CLIP_L, "CLIP ViT-L/14 text model (SD1, SDXL, SD3, Flux)"),
    1024: (ModelVariant.OPENCLIP_H, "OpenCLIP ViT-H/14 text model (SD2)"),
    1280: (ModelVariant.CLIP_G, "OpenCLIP ViT-bigG/14 text model (SDXL, SD3)"),
}
_VISION_WIDTHS: Final = {
    1024: ModelVariant.VIT_L,
    1280: ModelVariant.VIT_H,
    1664: ModelVariant.VIT_BIGG,
}
_T5_VOCABS: Final = {32128: ModelVariant.T5_XXL, 256384: ModelVariant.UMT5_XXL}


def detect_text_encoder(tensors: Tensors) -> Finding | None:
    finding = _clip_text(tensors) or _openclip_text(tensors) or _t5(tensors)
    if finding is None:
        return None
    if first_match(tensors, _VISION_PATCH) is not None:
        finding.evidence.append("also carries a vision tower (a full CLIP model)")
    if any(info.dtype.startswith("F8") for info in tensors.values()):
        finding.add_flag(Flag.FP8)
        finding.evidence.append("float8 weights (fp8)")
    return finding


def _clip_text(tensors: Tensors) -> Finding | None:
    layers = {int(m.group(1)) for k in tensors if (m := _CLIP_TEXT.search(k))}
    if not layers:
        return None
    finding = Finding(kind=FileKind.TEXT_ENCODER)
    norm = first_match(tensors, _CLIP_TEXT_NORM)
    width = norm[1].shape[0] if norm is not None and norm[1].shape else None
    finding.evidence.append(f"text_model.encoder.layers.0…{max(layers)}: a CLIP text model")
    known = _CLIP_WIDTHS.get(width) if width is not None else None
    if norm is not None and known is not None:
        finding.variant = known[0]
        finding.evidence.append(f"{describe(*norm)}: width {width} → {known[1]}")
    elif width is not None:
        finding.evidence.append(f"width {width} matches no known CLIP text model")
    return finding


def _openclip_text(tensors: Tensors) -> Finding | None:
    hit = first_match(tensors, _OPENCLIP_TEXT)
    if hit is None or first_match(tensors, re.compile(r"(?:^|\.)token_embedding\.weight$")) is None:
        return None
    finding = Finding(kind=FileKind.TEXT_ENCODER)
    width = hit[1].shape[1] if len(hit[1].shape) == 2 else None
    finding.evidence.append(f"{describe(*hit)}: an open_clip text transformer")
    known = _CLIP_WIDTHS.get(width) if width is not None else None
    if known is not None:
        finding.variant = known[0]
        finding.evidence.append(f"width {width} → {known[1]}")
    return finding


def _t5(tensors: Tensors) -> Finding | None:
    hit = first_match(tensors, _T5_BLOCK)
    if hit is None:
        return None
    finding = Finding(kind=FileKind.TEXT_ENCODER)
    blocks = {int(m.group(1)) for k in tensors if (m := _T5_BLOCK.search(k))}
    width = hit[1].shape[-1] if hit[1].shape else 0
    finding.evidence.append(f"{describe(*hit)}: a T5 encoder, {max(blocks) + 1} blocks")
    shared = first_match(tensors, _T5_SHARED)
    variant = _T5_VOCABS.get(shared[1].shape[0]) if shared and shared[1].shape else None
    if width == 4096 and variant is None:
        variant = ModelVariant.T5_XXL  # files without the embedding still load as XXL
    if width == 4096 and variant is not None:
        finding.variant = variant
        vocab = f", vocabulary {shared[1].shape[0]}" if shared and shared[1].shape else ""
        finding.evidence.append(f"width 4096{vocab} → {variant}")
    else:
        finding.evidence.append(f"width {width}: not the T5-XXL SD3 and Flux use")
    return finding


def detect_clip_vision(tensors: Tensors) -> Finding | None:
    hit = first_match(tensors, _VISION_PATCH)
    if hit is None:
        return None
    finding = Finding(kind=FileKind.CLIP_VISION)
    width = hit[1].shape[0] if hit[1].shape else 0
    finding.evidence.append(f"{describe(*hit)}: a ViT image encoder")
    if first_match(tensors, _VISION_CLASS) is None:
        finding.variant = ModelVariant.SIGLIP
        finding.evidence.append("no class embedding → SigLIP (Flux Redux)")
    elif width in _VISION_WIDTHS:
        finding.variant = _VISION_WIDTHS[width]
        finding.evidence.append(f"width {width} → CLIP {finding.variant}")
    return finding
