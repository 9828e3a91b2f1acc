"""Checks the lead's lock and sync call: does a file fit where the lock puts it, and does
every add-on (LoRA, embedding, hypernetwork, ControlNet) fit some checkpoint of the manifest?

Only real contradictions fail. "unknown" on either side (a VAE's family, a Civitai base model
we cannot map) never does: refusing what we cannot judge would block valid models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from provision.errors import InspectionError
from provision.inspection.model import FAMILY_LABELS, KIND_LABELS, FileFamily, FileKind
from provision.inspection.report import FileReport
from provision.kinds import Family, Kind, accepts

_ADDONS: Final = frozenset({Kind.LORA, Kind.EMBEDDING, Kind.HYPERNETWORK, Kind.CONTROLNET})
# What add-ons attach to: full checkpoints and UNet/transformer-only diffusion models.
_BASES: Final = frozenset({Kind.CHECKPOINT, Kind.DIFFUSION_MODEL})
_EVIDENCE_SHOWN: Final = 3


def describe_report(report: FileReport) -> str:
    """'an SDXL checkpoint', 'a SD1 LoRA (LoCon)', 'a ControlNet of unknown family'."""
    kind = FileKind(report.kind)
    family = FileFamily(report.family)
    what = KIND_LABELS[kind]
    if report.variant and report.variant not in ("LoRA", "ControlNet"):
        what = f"{what} ({report.variant})"
    if family is FileFamily.UNKNOWN:
        text = f"{what} of unknown family" if kind is not FileKind.UNKNOWN else what
    else:
        text = f"{FAMILY_LABELS[family]} {what}"
    return _article(text)


def _article(text: str) -> str:
    vowel_sound = text[0].lower() in "aeiou" or text.startswith("SD")  # "an SDXL ..."
    return f"{'an' if vowel_sound else 'a'} {text}"


def check_placement(report: FileReport, *, kind: Kind, family: Family, name: str) -> None:
    """Raise InspectionError when the file's own bytes contradict the lock's kind or family."""
    kind_clash = not accepts(kind, report.kind)
    family_known = report.family != FileFamily.UNKNOWN and family is not Family.OTHER
    family_clash = family_known and report.family != family.value
    if not (kind_clash or family_clash):
        return
    label = KIND_LABELS[FileKind(kind.value)]
    # "a sd1 LoRA" reads as the lockfile spells it; without a family, "an embedding".
    expected = f"a {family.value} {label}" if family is not Family.OTHER else _article(label)
    evidence = "; ".join(report.evidence[1 : 1 + _EVIDENCE_SHOWN] or report.evidence)
    raise InspectionError(
        f"{name}: the lock says {expected}, but the file is {describe_report(report)} "
        f"(evidence: {evidence})",
        hint="the source mislabelled the file; fix the manifest entry (section, or `base:`) "
        "and run `sdprov lock`; the file was not placed",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatEntry:
    name: str
    kind: Kind
    family: Family
    base_model_label: str | None = None  # the source's own words, e.g. Civitai "Pony"
    declared_base: Family | None = None  # the manifest's `base:` override

    @property
    def effective_family(self) -> Family:
        return self.declared_base or self.family

    def label(self) -> str:
        source = f", {self.base_model_label}" if self.base_model_label else ""
        declared = " declared" if self.declared_base else ""
        return f"{self.name} ({self.effective_family.value}{declared}{source})"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatProblem:
    entry: CompatEntry
    checkpoints: tuple[CompatEntry, ...]
    message: str
    hint: str

    def __str__(self) -> str:
        return self.message


def check_compatibility(entries: Sequence[CompatEntry]) -> list[CompatProblem]:
    """Every LoRA, embedding, hypernetwork and ControlNet whose family matches no checkpoint's
    (or diffusion model's) family.

    Entries of unknown family (Family.OTHER) are never reported, and when the manifest has no
    checkpoint of a known family there is nothing to compare against, so nothing is reported.
    """
    checkpoints = tuple(
        e for e in entries if e.kind in _BASES and e.effective_family is not Family.OTHER
    )
    families = {e.effective_family for e in checkpoints}
    if not families:
        return []
    problems = []
    have = ", ".join(c.label() for c in checkpoints)
    for entry in entries:
        if entry.kind not in _ADDONS or entry.effective_family in (Family.OTHER, *families):
            continue
        problems.append(
            CompatProblem(
                entry=entry,
                checkpoints=checkpoints,
                message=f"{entry.kind.value} {entry.label()} matches no checkpoint in the "
                f"manifest: the checkpoints are {have}",
                hint=f"add a {entry.effective_family.value} checkpoint, remove the "
                f"{entry.kind.value}, or set `base:` on it if you know it works",
            )
        )
    return problems
