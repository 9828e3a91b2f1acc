"""`inspect_file`: what a file is, from its own bytes.

The format is decided from the first bytes, not the extension (a pickle renamed
`.safetensors` is still a pickle, and is reported as one). Only headers are read: the
safetensors JSON header, or the pickle that describes a torch file's tensors.
"""

from __future__ import annotations

import pickletools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from provision.errors import InspectionError
from provision.inspection import pickles, safetensors
from provision.inspection.classify import classify
from provision.inspection.model import FileFamily, FileFormat, FileKind, Flag, TensorInfo
from provision.kinds import file_format

# Metadata values longer than this (kohya's tag frequencies, modelspec thumbnails as data URLs)
# would drown the report; they stay in the file.
MAX_METADATA_VALUE: Final = 256
_PREFIX_BYTES: Final = 16
# First bytes that make a `.safetensors` name a lie worth reporting rather than a corrupt
# header: a pickle's PROTO opcode, or text (an HTML error page, a JSON API error).
_NOT_SAFETENSORS: Final = (b"\x80", b"<", b"{", b"[")
_PICKLE_OPCODES: Final = frozenset(op.code.encode("latin-1") for op in pickletools.opcodes)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileReport:
    path: str
    kind: str  # a FileKind value
    variant: str | None  # LoraVariant for a LoRA; ModelVariant for ControlNets and encoders
    family: str  # a FileFamily value
    format: str  # a FileFormat value, from the bytes
    flags: tuple[str, ...]
    evidence: tuple[str, ...]
    metadata: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "variant": self.variant,
            "family": self.family,
            "format": self.format,
            "flags": list(self.flags),
            "evidence": list(self.evidence),
            "metadata": dict(self.metadata),
        }


def inspect_file(path: Path, *, name: str | None = None) -> FileReport:
    """Classify `path`. Odd content gives kind "unknown" with evidence; InspectionError is raised
    only when the file cannot be read or its header is corrupt, truncated or absurd.

    `name`: the name the file will have, when `path` is a partial download without one; its
    extension is what WebUI (and torch) will go by.
    """
    try:
        with path.open("rb") as fh:
            prefix = fh.read(_PREFIX_BYTES)
    except OSError as exc:
        raise InspectionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    by_name = file_format(name or path.name)
    # Order matters: a safetensors length can start with 0x80 (a header of 640 bytes), a
    # pickle's PROTO opcode; the '{' at byte 8 settles it. A zip is always a torch file here.
    if prefix.startswith(b"PK\x03\x04"):
        fmt, tensors, metadata, note = FileFormat.PICKLE, *_read_pickle(path)
    elif safetensors.looks_like_safetensors(prefix) or (
        by_name == FileFormat.SAFETENSORS and not prefix.lstrip().startswith(_NOT_SAFETENSORS)
    ):
        header = safetensors.read_header(path)
        fmt, tensors, metadata = FileFormat.SAFETENSORS, header.tensors, header.metadata
        note = f"safetensors header: {len(tensors)} tensors, {header.header_bytes} bytes read"
    elif prefix.startswith(b"\x80") or (
        # Protocol 0 and 1 pickles have no PROTO opcode (`cos\nsystem\n(S'…'` is one). torch
        # unpickles any file with a pickle name, so one that starts with an opcode is read,
        # and scanned, as the pickle it is.
        by_name == FileFormat.PICKLE and prefix[:1] in _PICKLE_OPCODES
    ):
        fmt, tensors, metadata, note = FileFormat.PICKLE, *_read_pickle(path)
    else:
        return _not_a_model(path, prefix)
    verdict = classify(tensors, metadata)
    flags = verdict.flags
    evidence = (note, *verdict.evidence)
    if by_name in (FileFormat.SAFETENSORS, FileFormat.PICKLE) and by_name != fmt:
        flags = (*flags, Flag.EXTENSION_MISMATCH)
        evidence = (*evidence, f"the name says {by_name} but the bytes are {fmt}")
    return FileReport(
        path=str(path),
        kind=verdict.kind.value,
        variant=verdict.variant.value if verdict.variant else None,
        family=verdict.family.value,
        format=fmt.value,
        flags=tuple(str(f) for f in flags),
        evidence=evidence,
        metadata=MappingProxyType(_short(metadata)),
    )


def _read_pickle(path: Path) -> tuple[Mapping[str, TensorInfo], Mapping[str, str], str]:
    try:
        contents = pickles.read_pickle_file(path)
    except OSError as exc:
        raise InspectionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except pickles.PickleReadError as exc:
        raise InspectionError(f"{path}: corrupt or unsupported pickle: {exc}") from exc
    note = (
        f"{contents.layout} pickle read symbolically (nothing imported): "
        f"{len(contents.tensors)} tensors"
    )
    return contents.tensors, contents.scalars, note


def _not_a_model(path: Path, prefix: bytes) -> FileReport:
    head = prefix.lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml")):
        reason = "starts like an HTML/XML page: an error page saved instead of a model?"
    elif head.startswith((b"{", b"[")):
        reason = "starts like JSON text: an API error response saved instead of a model?"
    else:
        reason = f"not a safetensors, torch zip or pickle file (first bytes {prefix[:8].hex()})"
    return FileReport(
        path=str(path),
        kind=FileKind.UNKNOWN.value,
        variant=None,
        family=FileFamily.UNKNOWN.value,
        format=FileFormat.OTHER.value,
        flags=(),
        evidence=(reason,),
        metadata=MappingProxyType({}),
    )


def _short(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(metadata.items()) if len(v) <= MAX_METADATA_VALUE}
