"""Decide kind, variant, family and flags from tensor names and shapes, then weigh metadata.

The tensors decide; kohya/modelspec metadata is a second signal. It fills in the family when
the tensors cannot tell (a VAE, a LoRA touching only convolutions), and when it contradicts
the tensors the contradiction is reported as evidence rather than trusted: metadata is written
by training scripts and copied around, the shapes are what WebUI will actually load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from provision.inspection.control import detect_control
from provision.inspection.detectors import (
    detect_checkpoint,
    detect_embedding,
    detect_hypernetwork,
    detect_upscaler,
    detect_vae,
)
from provision.inspection.encoders import detect_clip_vision, detect_text_encoder
from provision.inspection.findings import Finding, Tensors
from provision.inspection.lora import detect_lora
from provision.inspection.model import (
    FileFamily,
    FileKind,
    Flag,
    LoraVariant,
    ModelVariant,
    TensorInfo,
)

# ControlNet-folder models first (IP-Adapter FaceID and control-lora carry LoRA-like keys, and
# ControlNets embed UNet blocks), then delta formats (their module names embed UNet paths), then
# the wholes, then the parts a checkpoint may bundle; see detectors.py.
DETECTORS: Final[tuple[Callable[[Tensors], Finding | None], ...]] = (
    detect_control,
    detect_lora,
    detect_hypernetwork,
    detect_embedding,
    detect_checkpoint,
    detect_text_encoder,
    detect_clip_vision,
    detect_vae,
    detect_upscaler,
)

# Containers that wrap a state dict: Lightning `.ckpt` ("state_dict"), BasicSR `.pth`
# ("params_ema" preferred over "params"), DataParallel ("module").
_WRAPPERS: Final = ("state_dict.", "params_ema.", "params.", "module.")

# `modelspec.architecture` prefixes (kohya `library/sai_model_spec.py`), most specific first.
_ARCHITECTURES: Final[tuple[tuple[str, FileFamily, Flag | None], ...]] = (
    ("stable-diffusion-xl-v1-refiner", FileFamily.SDXL, Flag.REFINER),
    ("stable-diffusion-xl", FileFamily.SDXL, None),
    ("stable-diffusion-v1", FileFamily.SD1, None),
    ("stable-diffusion-v2", FileFamily.SD2, None),
    ("stable-diffusion-3", FileFamily.SD3, None),
    ("flux-1", FileFamily.FLUX, None),
)
# kohya `ss_base_model_version` prefixes.
_KOHYA_VERSIONS: Final[tuple[tuple[str, FileFamily], ...]] = (
    ("sdxl", FileFamily.SDXL),
    ("sd_v1", FileFamily.SD1),
    ("sd_v2", FileFamily.SD2),
    ("sd3", FileFamily.SD3),
    ("flux", FileFamily.FLUX),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    kind: FileKind
    variant: LoraVariant | ModelVariant | None
    family: FileFamily
    flags: tuple[Flag, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MetadataFamily:
    family: FileFamily
    flag: Flag | None
    reason: str


def classify(tensors: Mapping[str, TensorInfo], metadata: Mapping[str, str]) -> Verdict:
    unwrapped = unwrap(tensors)
    finding = _detect(unwrapped)
    hint = family_from_metadata(metadata)
    if hint is not None:
        _weigh_metadata(finding, hint)
    return Verdict(
        kind=finding.kind,
        variant=finding.variant,
        family=finding.family,
        flags=tuple(finding.flags),
        evidence=tuple(finding.evidence),
    )


def unwrap(tensors: Mapping[str, TensorInfo]) -> Mapping[str, TensorInfo]:
    """The state dict inside a training container, or `tensors` unchanged."""
    for prefix in _WRAPPERS:
        inner = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if inner:
            return inner
    return tensors


def _detect(tensors: Tensors) -> Finding:
    if not tensors:
        return Finding(kind=FileKind.UNKNOWN, evidence=["no tensors in the file"])
    for detector in DETECTORS:
        finding = detector(tensors)
        if finding is not None:
            return finding
    sample = ", ".join(sorted(tensors)[:3])
    return Finding(
        kind=FileKind.UNKNOWN,
        evidence=[f"{len(tensors)} tensors match no known layout (first keys: {sample})"],
    )


def family_from_metadata(metadata: Mapping[str, str]) -> MetadataFamily | None:
    arch = metadata.get("modelspec.architecture", "")
    for prefix, family, flag in _ARCHITECTURES:
        if arch.startswith(prefix):
            return MetadataFamily(family, flag, f"modelspec.architecture={arch}")
    version = metadata.get("ss_base_model_version", "")
    for prefix, family in _KOHYA_VERSIONS:
        if version.startswith(prefix):
            return MetadataFamily(family, None, f"ss_base_model_version={version}")
    if metadata.get("ss_v2") == "True":
        return MetadataFamily(FileFamily.SD2, None, "ss_v2=True")
    return None


def _weigh_metadata(finding: Finding, hint: MetadataFamily) -> None:
    if finding.family is FileFamily.UNKNOWN:
        finding.family = hint.family
        finding.add_flag(hint.flag)
        finding.evidence.append(f"metadata {hint.reason} → {hint.family} (tensors could not tell)")
    elif finding.family is hint.family:
        finding.evidence.append(f"metadata agrees: {hint.reason}")
    else:
        finding.add_flag(Flag.METADATA_DISAGREES)
        finding.evidence.append(
            f"metadata says {hint.family} ({hint.reason}); the tensors say {finding.family}, "
            "and the tensors are what WebUI loads"
        )
