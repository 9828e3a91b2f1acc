"""The sync function's code package: a deterministic zip, base64 for `V3Function.code.zip_file`.

Packaging decision: FC's `python3.12` runtime (our code needs 3.11+) with a code zip holding
`index.py` (the FC entry, `index.handler`), the `provision` package without `infra/` (Pulumi is
not needed in the cloud), and the runtime dependencies vendored under `python/` by
`pip install --target` for manylinux x86_64 / CPython 3.12. pulumi-alicloud 4.0.0 takes code
only as base64 zip or an OSS object (not a Pulumi `Archive`), so we build the zip ourselves with
fixed timestamps: the same sources give the same bytes and no spurious function update.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Final

PACKAGE_ROOT: Final = Path(__file__).resolve().parents[1]  # .../provision
EXCLUDED_DIRS: Final = frozenset({"infra", "__pycache__"})
ZIP_EPOCH: Final = (2020, 1, 1, 0, 0, 0)
FC_PYTHON: Final = "3.12"
INDEX_PY: Final = '''"""FC entry of the sdprov model sync (written by provision.infra.sync_code)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))

from provision.cloudsync.handler import handler  # noqa: E402,F401
'''


def runtime_requirements() -> list[str]:
    """sdprov's own pinned dependencies, without extras (what `sdprov sync` imports)."""
    return sorted(r for r in importlib.metadata.requires("sdprov") or [] if "extra ==" not in r)


def vendor_dependencies(dest: Path) -> Path:
    """`pip install --target dest` for FC's platform; skipped while the requirements match."""
    requirements = runtime_requirements()
    stamp = dest / ".requirements"
    wanted = "\n".join([FC_PYTHON, *requirements])
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--upgrade",
            "--target", str(dest), "--platform", "manylinux2014_x86_64",
            "--implementation", "cp", "--python-version", FC_PYTHON,
            "--only-binary=:all:", *requirements,
        ],
        check=True,
    )  # fmt: skip
    stamp.write_text(wanted, encoding="utf-8")
    return dest


def _package_files() -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for path in sorted(PACKAGE_ROOT.rglob("*")):
        rel = path.relative_to(PACKAGE_ROOT)
        if not path.is_file() or EXCLUDED_DIRS.intersection(rel.parts):
            continue
        if path.suffix in {".py", ".json"} or path.name == "py.typed":
            files.append((f"provision/{rel.as_posix()}", path))
    return files


def _vendored_files(vendor: Path) -> list[tuple[str, Path]]:
    return [
        (f"python/{p.relative_to(vendor).as_posix()}", p)
        for p in sorted(vendor.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.name != ".requirements"
    ]


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_zip(vendor: Path | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "index.py", INDEX_PY.encode())
        entries = _package_files() + (_vendored_files(vendor) if vendor else [])
        for name, path in entries:
            _add(archive, name, path.read_bytes())
    return buffer.getvalue()


def build_code(vendor: Path | None = None) -> tuple[str, str]:
    """(base64 zip, sha256 of the zip): the function's code and a short identity for it."""
    data = build_zip(vendor)
    return base64.b64encode(data).decode("ascii"), hashlib.sha256(data).hexdigest()
