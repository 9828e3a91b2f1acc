"""What goes in the ControlNet folder: ControlNets, T2I-Adapters, ControlNet-LoRAs, IP-Adapters.

Each is recognised by the keys its loaders look for (ComfyUI `comfy/controlnet.py
load_controlnet_state_dict` and `load_t2i_adapter`, Forge `lib_controlnet`, ComfyUI_IPAdapter_plus):
- ControlNet-LoRA (Stability's control-lora): a `lora_controlnet` marker tensor;
- ControlNet: `[control_model.]input_hint_block.*` / `zero_convs.*` (ldm) or
  `controlnet_cond_embedding.*` (diffusers), family from the cross-attention width; Flux and SD3
  ControlNets have `controlnet_blocks.N.*` beside `double_blocks` (XLabs), `controlnet_x_embedder`
  (InstantX, Flux) or `pos_embed_input.proj` (SD3);
- T2I-Adapter: `conv_in.weight` + `body.N.block1.weight` (or diffusers `adapter.body.*`), family
  from the input channels after pixel-unshuffle (SD1: 64·3 / 64, SDXL: 256·3 / 256);
- IP-Adapter: `image_proj.*` + `ip_adapter.N.to_k_ip.weight` (input width = the UNet's context:
  768 SD1, 2048 SDXL), or XLabs' Flux `ip_adapter_double_stream_*`.
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
from provision.inspection.model import FileFamily, FileKind, ModelVariant

_HINT: Final = re.compile(r"(?:^|\.)(?:input_hint_block|controlnet_cond_embedding)\.")
_DIT_CONTROL: Final = re.compile(r"^controlnet_(?:blocks|single_blocks)\.\d+\.")
_CONTEXT_K: Final = re.compile(r"attn2\.to_k\.(?:weight|down)$")
_T2I_BODY: Final = re.compile(r"^(?:adapter\.)?body\.\d+\.(?:resnets\.\d+\.)?block1\.weight$")
_T2I_CIN: Final = re.compile(r"^(?:adapter\.)?(?:conv_in|body\.0\.in_conv)\.weight$")
_T2I_FAMILIES: Final = {64: FileFamily.SD1, 192: FileFamily.SD1, 256: FileFamily.SDXL,
                        768: FileFamily.SDXL}  # fmt: skip
_IP_TO_K: Final = re.compile(r"(?:^|\.)ip_adapter\.\d+\.to_k_ip\.weight$")
_IP_FLUX: Final = re.compile(r"ip_adapter_double_stream_k_proj\.weight$")


def detect_control(tensors: Tensors) -> Finding | None:
    """Any model the ControlNet loaders take, or None."""
    return _ip_adapter(tensors) or _controlnet(tensors) or _t2i_adapter(tensors)


def _controlnet(tensors: Tensors) -> Finding | None:
    if "lora_controlnet" in tensors:
        finding = Finding(kind=FileKind.CONTROLNET, variant=ModelVariant.CONTROL_LORA)
        finding.evidence.append("lora_controlnet marker: a ControlNet-LoRA (control-lora)")
        _context_family(tensors, finding)
        return finding
    dit = first_match(tensors, _DIT_CONTROL)
    if dit is not None:
        return _dit_controlnet(tensors, dit[0])
    hint = first_match(tensors, _HINT)
    if hint is None:
        return None
    finding = Finding(kind=FileKind.CONTROLNET, variant=ModelVariant.CONTROLNET)
    finding.evidence.append(f"{hint[0]}: ControlNet condition encoder")
    _context_family(tensors, finding)
    return finding


def _dit_controlnet(tensors: Tensors, block: str) -> Finding:
    finding = Finding(kind=FileKind.CONTROLNET, variant=ModelVariant.CONTROLNET)
    finding.evidence.append(f"{block}: ControlNet output blocks of a transformer model")
    if any(k.startswith("double_blocks.") for k in tensors) or "controlnet_x_embedder.weight" in (
        tensors
    ):
        finding.family = FileFamily.FLUX
        finding.evidence.append("double_blocks / controlnet_x_embedder → flux (XLabs, InstantX)")
    elif "pos_embed_input.proj.weight" in tensors:
        finding.family = FileFamily.SD3
        finding.evidence.append("pos_embed_input.proj.weight → sd3 (MMDiT ControlNet)")
    return finding


def _context_family(tensors: Tensors, finding: Finding) -> None:
    samples = [
        (k, tensors[k].shape[1])
        for k in sorted(tensors)
        if _CONTEXT_K.search(k) and len(tensors[k].shape) == 2
    ]
    decided = family_from_context(samples, "cross-attention context")
    if decided is not None:
        finding.family, flag, reason = decided
        finding.add_flag(flag)
        finding.evidence.append(reason)


def _t2i_adapter(tensors: Tensors) -> Finding | None:
    body = first_match(tensors, _T2I_BODY)
    cin = first_match(tensors, _T2I_CIN)
    if body is None or cin is None or len(cin[1].shape) != 4:
        return None
    finding = Finding(kind=FileKind.CONTROLNET, variant=ModelVariant.T2I_ADAPTER)
    channels = cin[1].shape[1]
    finding.evidence.append(f"{body[0]} + {describe(*cin)}: a T2I-Adapter")
    family = _T2I_FAMILIES.get(channels)
    if family is not None:
        finding.family = family
        finding.evidence.append(f"{channels} input channels after pixel-unshuffle → {family}")
    return finding


def _ip_adapter(tensors: Tensors) -> Finding | None:
    flux = first_match(tensors, _IP_FLUX)
    to_k = first_match(tensors, _IP_TO_K)
    if flux is None and (to_k is None or not any(k.startswith("image_proj.") for k in tensors)):
        return None
    finding = Finding(kind=FileKind.CONTROLNET, variant=ModelVariant.IP_ADAPTER)
    if flux is not None:
        finding.family = FileFamily.FLUX
        finding.evidence.append(f"{flux[0]}: XLabs Flux IP-Adapter → flux")
        return finding
    assert to_k is not None
    finding.evidence.append(f"image_proj.* + {to_k[0]}: an IP-Adapter")
    if len(to_k[1].shape) == 2:
        decided = family_from_context([(to_k[0], to_k[1].shape[1])], "image-prompt K input")
        if decided is not None:
            finding.family, flag, reason = decided
            finding.add_flag(flag)
            finding.evidence.append(reason)
    return finding
