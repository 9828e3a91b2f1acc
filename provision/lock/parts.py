"""Lock-time "required parts": a diffusion model is usable only with its text encoders and VAE.

A Flux or SD3 transformer-only file (BFL's flux1-dev, SD3.5's MMDiT, their fp8 variants), a
Flux/SD3 checkpoint that does not bundle them, or any UNet-only file under `diffusion_models`
loads in ComfyUI and Forge only next to separate text encoders and a VAE. When the manifest
does not provide them the lock fails at that model's entry and names what is missing, as it
does for a LoRA that fits no checkpoint (`options.base_check: warn|off` applies to both).

Parts are matched on what the files' own headers said at lock (`variant` of a text encoder,
the latent width of a VAE); a part whose file could not be inspected (a pickle) counts as a
possible match, because only real contradictions fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from provision.kinds import Family, Kind

# Text encoders and VAE latent each family needs (ComfyUI's DualCLIPLoader types; Forge's
# Flux loader). SD3 runs without T5-XXL (quality drops), so T5 is not required for it.
_REQUIRED: Final[dict[Family, tuple[tuple[str, ...], str]]] = {
    Family.FLUX: (("CLIP-L", "T5-XXL"), "latent-16ch"),
    Family.SD3: (("CLIP-L", "CLIP-G"), "latent-16ch"),
    Family.SDXL: (("CLIP-L", "CLIP-G"), "latent-4ch"),
    Family.SD2: (("OpenCLIP-H",), "latent-4ch"),
    Family.SD1: (("CLIP-L",), "latent-4ch"),
}
# Checkpoints of these families may come without their encoders; older families always bundle.
_SPLIT_FAMILIES: Final = frozenset({Family.FLUX, Family.SD3})
_BUNDLE_FLAGS: Final = {"CLIP-L": "includes-clip-l", "CLIP-G": "includes-clip-g",
                        "T5-XXL": "includes-t5xxl"}  # fmt: skip
_VAE_LABEL: Final = {"latent-16ch": "a 16-channel VAE (Flux ae / SD3 VAE)",
                     "latent-4ch": "a 4-channel VAE (SD1/SD2/SDXL)"}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class PartEntry:
    """One locked model as the parts check sees it. `inspected_kind` is None when the file's
    header was not read at lock (pickles)."""

    position: int  # index in the caller's list; problems refer back to it
    name: str
    kind: Kind
    family: Family
    inspected_kind: str | None = None
    variant: str | None = None
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class PartsProblem:
    position: int
    message: str
    hint: str


def check_required_parts(entries: Sequence[PartEntry]) -> list[PartsProblem]:
    encoders = [e for e in entries if e.kind is Kind.TEXT_ENCODER]
    known_encoders = {e.variant for e in encoders if e.variant}
    unknown_encoders = sum(1 for e in encoders if not e.variant)
    vaes = [e for e in entries if e.kind is Kind.VAE]
    latents = {f for e in vaes for f in e.flags if f.startswith("latent-")}
    unknown_vae = any(not any(f.startswith("latent-") for f in e.flags) for e in vaes)
    problems = []
    for entry in entries:
        needs = _needs(entry)
        if needs is None:
            continue
        wanted, latent = needs
        missing = [n for n in wanted if n not in known_encoders]
        if len(missing) <= unknown_encoders:
            missing = []  # files we could not read might be these encoders
        vae_missing = "includes-vae" not in entry.flags and latent not in latents
        if vae_missing and not unknown_vae:
            missing.append(_VAE_LABEL[latent])
        if missing:
            problems.append(_problem(entry, missing))
    return problems


def _needs(entry: PartEntry) -> tuple[tuple[str, ...], str] | None:
    required = _REQUIRED.get(entry.family)
    if required is None:
        return None
    is_transformer_only = entry.inspected_kind == Kind.DIFFUSION_MODEL.value or (
        entry.kind is Kind.DIFFUSION_MODEL and entry.inspected_kind is None
    )
    if is_transformer_only:
        if "refiner" in entry.flags:  # the SDXL refiner reads OpenCLIP-G alone
            return ("CLIP-G",), required[1]
        return required
    if entry.inspected_kind != Kind.CHECKPOINT.value or entry.family not in _SPLIT_FAMILIES:
        return None  # an SD1/SDXL checkpoint bundles its parts; an uninspected one: can't tell
    wanted = tuple(n for n in required[0] if _BUNDLE_FLAGS[n] not in entry.flags)
    return wanted, required[1]


def _problem(entry: PartEntry, missing: list[str]) -> PartsProblem:
    what = (
        "diffusion model (no text encoders or VAE inside)"
        if entry.inspected_kind in (None, Kind.DIFFUSION_MODEL.value)
        else "checkpoint without all its text encoders/VAE inside"
    )
    family = {Family.FLUX: "Flux", Family.SD3: "SD3", Family.SDXL: "SDXL"}.get(
        entry.family, entry.family.value.upper()
    )
    encoders = [m for m in missing if not m.startswith("a ")]
    where = []
    if encoders:
        where.append(f"text encoder(s) {', '.join(encoders)} under `text_encoders:`")
    if len(encoders) < len(missing):
        where.append(f"{missing[-1]} under `vaes:`")
    return PartsProblem(
        position=entry.position,
        message=f"{entry.name} is a {family} {what}; the manifest lacks "
        f"{', '.join(missing)}, without which it does not load",
        hint=f"add {' and '.join(where)}, or set `options: {{base_check: warn}}`",
    )
