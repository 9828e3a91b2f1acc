"""File inspection: what a model file is (kind, LoRA variant, base family, format), from its
own bytes, and whether a pickle is safe to place.

Reads headers only (the safetensors JSON header; the pickle describing a torch file) and never
unpickles: nothing named in a file is imported or called. Lock and sync use `inspect_file`,
`scan_pickle`, `check_placement` and `check_compatibility`.
"""

from __future__ import annotations

from provision.inspection.model import (
    FileFamily,
    FileFormat,
    FileKind,
    Flag,
    LoraVariant,
    TensorInfo,
)
from provision.inspection.placement import (
    CompatEntry,
    CompatProblem,
    check_compatibility,
    check_placement,
    describe_report,
)
from provision.inspection.report import FileReport, inspect_file
from provision.inspection.safety import SAFE_GLOBALS, PickleVerdict, scan_pickle

__all__ = [
    "SAFE_GLOBALS",
    "CompatEntry",
    "CompatProblem",
    "FileFamily",
    "FileFormat",
    "FileKind",
    "FileReport",
    "Flag",
    "LoraVariant",
    "PickleVerdict",
    "TensorInfo",
    "check_compatibility",
    "check_placement",
    "describe_report",
    "inspect_file",
    "scan_pickle",
]
