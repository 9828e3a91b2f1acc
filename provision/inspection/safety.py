"""Is a pickle file safe enough to place? picklescan lists its imports; we judge them.

picklescan (a maintained scanner) walks every pickle in the file, zip members included, and
lists the globals it would import. Its own verdict only flags a deny-list, so we apply an
allow-list instead: the globals A1111's own `modules/safe.py` RestrictedUnpickler accepts.
A file WebUI itself would refuse to load is refused here, even with `allow_pickle: true`.
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from picklescan.scanner import scan_file_path

from provision.errors import InspectionError

log = logging.getLogger(__name__)

# From AUTOMATIC1111/stable-diffusion-webui `modules/safe.py`, `RestrictedUnpickler.find_class`
# (read at commit 05933840). Only the list of names is taken, not code.
SAFE_GLOBALS: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_device_tensor_from_numpy"),
        ("torch", "FloatStorage"),
        ("torch", "HalfStorage"),
        ("torch", "IntStorage"),
        ("torch", "LongStorage"),
        ("torch", "DoubleStorage"),
        ("torch", "ByteStorage"),
        ("torch", "BFloat16Storage"),
        ("torch", "float32"),
        ("torch.nn.modules.container", "ParameterDict"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("_codecs", "encode"),
        ("pytorch_lightning.callbacks", "model_checkpoint"),
        ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
        ("__builtin__", "set"),
    }
)

# WebUI also refuses a torch zip holding anything but the members torch writes. Its regex at
# 05933840 predates torch 2.1's `byteorder` and 2.2's `.data/serialization_id`; newer WebUI
# accepts those, and so do we, or every file saved by a current torch would be refused.
ALLOWED_ZIP_MEMBER: Final = re.compile(
    r"^([^/]+)/((data/\d+)|version|byteorder|\.data/serialization_id|(data\.pkl))$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PickleVerdict:
    safe: bool
    imports: tuple[str, ...]  # every global the file would import, "module.name", sorted
    message: str

    def to_json(self) -> dict[str, object]:
        return {"safe": self.safe, "imports": list(self.imports), "message": self.message}


def scan_pickle(path: Path) -> PickleVerdict:
    """Scan `path` (.ckpt/.pt/.bin/.pth) for imports outside WebUI's safe set.

    Raises InspectionError only when the file cannot be read at all.
    """
    try:
        bad_members = _unexpected_zip_members(path)
        result = scan_file_path(str(path))
    except OSError as exc:
        raise InspectionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except Exception as exc:
        # picklescan itself can fail on hostile input (a first pickle holding a 20,000-digit
        # integer makes its own error message raise). A file it cannot scan is not safe.
        log.debug("picklescan failed on %s", path, exc_info=True)
        return PickleVerdict(
            safe=False,
            imports=(),
            message=f"{path.name}: unsafe pickle: the scanner could not read it "
            f"({type(exc).__name__})",
        )
    found = sorted({(g.module, g.name) for g in result.globals})
    imports = tuple(f"{module}.{name}" for module, name in found)
    forbidden = [f"{module}.{name}" for module, name in found if (module, name) not in SAFE_GLOBALS]
    problems: list[str] = []
    if forbidden:
        problems.append("imports " + ", ".join(forbidden) + " (outside WebUI's safe set)")
    if bad_members:
        problems.append("holds unexpected zip members " + ", ".join(bad_members[:5]))
    if result.scan_err:
        # A stream that stops parsing half-way could hide opcodes after the break.
        problems.append("has a pickle stream picklescan could not parse to the end")
    if problems:
        return PickleVerdict(
            safe=False,
            imports=imports,
            message=f"{path.name}: unsafe pickle: {'; '.join(problems)}",
        )
    if not result.scanned_files:
        return PickleVerdict(
            safe=False, imports=imports, message=f"{path.name}: no pickle found to scan"
        )
    return PickleVerdict(
        safe=True,
        imports=imports,
        message=f"{path.name}: {len(imports)} import(s), all in WebUI's safe set",
    )


def _unexpected_zip_members(path: Path) -> list[str]:
    if not zipfile.is_zipfile(path):
        return []
    try:
        with zipfile.ZipFile(path) as archive:
            return [n for n in archive.namelist() if not ALLOWED_ZIP_MEMBER.match(n)]
    except zipfile.BadZipFile:
        return ["<unreadable zip directory>"]
