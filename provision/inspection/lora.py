"""LoRA and LyCORIS files: which variant, and which base model they were trained on.

Keys are `<module><suffix>`; the suffix says the variant (kohya `lora_down`, PEFT `lora_A`,
LyCORIS `hada_*`/`lokr_*`, DoRA's extra `dora_scale`). The base comes from the module names
(Flux and SD3 blocks have their own names) or, for UNet LoRAs, from the input width of the
cross-attention K/V projection, which is the width of the text conditioning (768 SD1,
1024 SD2, 2048 SDXL, 1280 SDXL refiner). Text-encoder-only LoRAs fall back to the encoder's
width. See reference/webui-formats.md §4.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Final

from provision.inspection.findings import Finding, Tensors, family_from_context
from provision.inspection.model import FileFamily, FileKind, Flag, LoraVariant, TensorInfo

# Suffix -> variant. "down"-role suffixes carry the module's input width in shape[1].
_KOHYA: Final = (".lora_down.weight", ".lora_up.weight", ".lora_mid.weight")
_PEFT: Final = (
    ".lora_A.weight", ".lora_B.weight", ".lora.down.weight", ".lora.up.weight",
    "_lora.down.weight", "_lora.up.weight",
)  # fmt: skip
_LOHA: Final = (".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".hada_t1", ".hada_t2")
_LOKR: Final = (
    ".lokr_w1", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2", ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2",
)  # fmt: skip
_DORA: Final = (".dora_scale",)
# Other LyCORIS algorithms; their suffixes are generic, so they count only on `lora_` modules.
_OTHER: Final = (".on_input", ".oft_blocks", ".oft_diag", ".a1.weight", ".b1.weight", ".diff",
                 ".w_norm", ".b_norm")  # fmt: skip
_DOWN: Final = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", "_lora.down.weight")
_ALL: Final = _KOHYA + _PEFT + _LOHA + _LOKR + _DORA

_CROSS_ATTN_KV: Final = re.compile(r"attn2[._](?:processor[._])?to_[kv]$")
_TE_ATTN: Final = re.compile(r"self_attn[._](?:q|k|v)_proj$")
_TE_PREFIXES: Final = ("lora_te", "text_encoder", "te_", "te1_", "te2_")
_SDXL_TE: Final = ("lora_te1_", "lora_te2_", "text_encoder_2.")
_FLUX_BLOCKS: Final = re.compile(r"double_blocks|single_blocks|single_transformer_blocks")
_SD3_BLOCKS: Final = re.compile(r"joint_blocks|context_block")
# diffusers MMDiT double blocks (Flux and SD3 share the names): attn.to_k / attn.add_k_proj.
_DIT_BLOCKS: Final = re.compile(
    r"(?:^|[._])transformer_blocks[._]\d+[._]attn[._](?:to_k|add_k_proj)$"
)


def detect_lora(tensors: Tensors) -> Finding | None:
    modules: dict[str, dict[str, TensorInfo]] = defaultdict(dict)
    for key, info in tensors.items():
        suffix = _suffix(key)
        if suffix is not None:
            modules[key[: -len(suffix)]][suffix] = info
    if not modules:
        return None
    finding = Finding(kind=FileKind.LORA)
    finding.variant, reason = _variant(modules)
    finding.evidence.append(f"{len(modules)} adapted modules; {reason}")
    suffixes = {s for parts in modules.values() for s in parts}
    if suffixes & set(_PEFT) and not suffixes & set(_KOHYA):
        finding.add_flag(Flag.PEFT_KEYS)
        finding.evidence.append(
            "diffusers/PEFT key names (lora_A/lora_B): Forge and ComfyUI load them, A1111 1.x skips"
        )
    if any(k.startswith("bundle_emb.") for k in tensors):
        finding.add_flag(Flag.BUNDLED_EMBEDDINGS)
        finding.evidence.append("carries textual inversions under bundle_emb.*")
    _family(modules, finding)
    return finding


def _suffix(key: str) -> str | None:
    for suffix in _ALL:
        if key.endswith(suffix):
            return suffix
    if key.startswith("lora_"):
        for suffix in _OTHER:
            if key.endswith(suffix):
                return suffix
    return None


def _variant(modules: dict[str, dict[str, TensorInfo]]) -> tuple[LoraVariant, str]:
    suffixes = {s for parts in modules.values() for s in parts}
    example = sorted(modules)[0]
    if suffixes & set(_LOKR):
        return LoraVariant.LOKR, f"LyCORIS LoKr keys (lokr_w1/lokr_w2), e.g. {example}"
    if suffixes & set(_LOHA):
        return LoraVariant.LOHA, f"LyCORIS LoHa keys (hada_w1_a…hada_w2_b), e.g. {example}"
    if suffixes & set(_DORA):
        return LoraVariant.DORA, f"LoRA keys with dora_scale (weight-decomposed), e.g. {example}"
    if suffixes & (set(_KOHYA) | set(_PEFT)):
        for name in sorted(modules):
            parts = modules[name]
            down = next((parts[s] for s in _DOWN if s in parts), None)
            if ".lora_mid.weight" in parts or (
                down is not None and len(down.shape) == 4 and down.shape[2:] != (1, 1)
            ):
                return LoraVariant.LOCON, f"LoRA keys on convolutions (LoCon), e.g. {name}"
        return LoraVariant.LORA, f"LoRA up/down keys on linear layers, e.g. {example}"
    return LoraVariant.LYCORIS, f"other LyCORIS keys ({', '.join(sorted(suffixes))})"


def _in_dim(parts: dict[str, TensorInfo]) -> int | None:
    """Input width of the adapted layer, from whichever factor carries it."""
    for suffix in (*_DOWN, ".hada_w1_b"):
        if suffix in parts and len(parts[suffix].shape) >= 2:
            return parts[suffix].shape[1]
    # LoKr: W = kron(w1, w2), so in = in(w1) * in(w2); each factor may itself be a product.
    factors: list[int] = []
    for whole, low in ((".lokr_w1", ".lokr_w1_b"), (".lokr_w2", ".lokr_w2_b")):
        info = parts.get(whole) or parts.get(low)
        if info is None or len(info.shape) < 2:
            return None
        factors.append(info.shape[1])
    return math.prod(factors)


def _family(modules: dict[str, dict[str, TensorInfo]], finding: Finding) -> None:
    names = sorted(modules)
    flux = next((n for n in names if _FLUX_BLOCKS.search(n)), None)
    if flux is not None:
        finding.family = FileFamily.FLUX
        finding.evidence.append(f"{flux}: Flux double/single transformer blocks → flux")
        return
    sd3 = next((n for n in names if _SD3_BLOCKS.search(n)), None)
    if sd3 is not None:
        finding.family = FileFamily.SD3
        finding.evidence.append(f"{sd3}: SD3 MMDiT joint blocks → sd3")
        return
    dit = [(n, d) for n in names if _DIT_BLOCKS.search(n) and (d := _in_dim(modules[n]))]
    if dit:
        # diffusers names for MMDiT double blocks: Flux is 3072 wide, SD3 1536 (medium) or 2432.
        name, dim = dit[0]
        finding.family = FileFamily.FLUX if dim == 3072 else FileFamily.SD3
        finding.evidence.append(f"{name}: transformer block width {dim} → {finding.family}")
        return
    cross = [(n, d) for n in names if _CROSS_ATTN_KV.search(n) and (d := _in_dim(modules[n]))]
    decided = family_from_context(cross, "cross-attention input width")
    if decided is not None:
        finding.family, flag, reason = decided
        finding.add_flag(flag)
        finding.evidence.append(reason)
        return
    if all(n.startswith(_TE_PREFIXES) for n in names):
        finding.add_flag(Flag.TEXT_ENCODER_ONLY)
    sdxl_te = next((n for n in names if n.startswith(_SDXL_TE)), None)
    if sdxl_te is not None:
        finding.family = FileFamily.SDXL
        finding.evidence.append(f"{sdxl_te}: two text encoders (te1/te2) → sdxl")
        return
    te = [(n, d) for n in names if _TE_ATTN.search(n) and (d := _in_dim(modules[n]))]
    decided = family_from_context(te, "text-encoder width")
    if decided is not None:
        family, _flag, reason = decided
        # Only the single-encoder widths mean anything here (768 CLIP-L, 1024 OpenCLIP-H).
        finding.family = family if family in (FileFamily.SD1, FileFamily.SD2) else finding.family
        finding.evidence.append(reason)
