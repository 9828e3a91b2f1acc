"""What one detector found, and the small helpers detectors share."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from provision.inspection.model import (
    FileFamily,
    FileKind,
    Flag,
    LoraVariant,
    ModelVariant,
    TensorInfo,
)

Tensors = Mapping[str, TensorInfo]

# Width of the text-conditioning a UNet's cross-attention reads (attn2.to_k input dim).
CONTEXT_DIM_FAMILIES: Final[Mapping[int, tuple[FileFamily, Flag | None]]] = {
    768: (FileFamily.SD1, None),  # CLIP ViT-L/14
    1024: (FileFamily.SD2, None),  # OpenCLIP ViT-H/14
    2048: (FileFamily.SDXL, None),  # CLIP-L 768 + OpenCLIP-G 1280, concatenated
    1280: (FileFamily.SDXL, Flag.REFINER),  # the SDXL refiner reads OpenCLIP-G only
}


@dataclass(slots=True, kw_only=True)
class Finding:
    """A detector's verdict; `classify` merges it with what the metadata says."""

    kind: FileKind
    family: FileFamily = FileFamily.UNKNOWN
    variant: LoraVariant | ModelVariant | None = None
    flags: list[Flag] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    def add_flag(self, flag: Flag | None) -> None:
        if flag is not None and flag not in self.flags:
            self.flags.append(flag)


def describe(key: str, info: TensorInfo) -> str:
    return f"{key} {list(info.shape)}"


def first_match(tensors: Tensors, pattern: re.Pattern[str]) -> tuple[str, TensorInfo] | None:
    """The first key (in sorted order, so evidence is stable) matching `pattern`."""
    for key in sorted(tensors):
        if pattern.search(key):
            return key, tensors[key]
    return None


def family_from_context(
    samples: list[tuple[str, int]], what: str
) -> tuple[FileFamily, Flag | None, str] | None:
    """Decide a family from (key, context dim) samples: the most common known dim wins."""
    known = [(k, d) for k, d in samples if d in CONTEXT_DIM_FAMILIES]
    if not known:
        if samples:
            key, dim = samples[0]
            return FileFamily.UNKNOWN, None, f"{key}: {what} {dim} matches no known family"
        return None
    dim, _count = Counter(d for _, d in known).most_common(1)[0]
    key = next(k for k, d in known if d == dim)
    family, flag = CONTEXT_DIM_FAMILIES[dim]
    label = f"{family.value} refiner" if flag is Flag.REFINER else family.value
    return family, flag, f"{key}: {what} {dim} → {label}"
