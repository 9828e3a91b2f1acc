"""What a file or folder name under the models root may be.

One rule set for every name sdprov writes: a manifest's `name:` and `subfolder:` here, and the
file names servers send (Civitai's file list, a Hugging Face path, a URL's last segment) at
lock time (`provision.lock.names`). A name that passes can be created on Linux, on the SMB/NFS
shares WebUI boxes mount, and on Windows, and cannot leave its folder.

Length is counted in UTF-8 bytes, as file systems count it (ext4, XFS, NFS: 255 per name).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import Final

from provision.kinds import Kind
from provision.manifest.refs import HfRef, SourceRef, UrlRef, file_name_of_url

MAX_COMPONENT_BYTES: Final = 255
# Room kept beside a model for the files WebUI and its extensions write next to it
# (`<stem>.preview.png`, Civitai Helper's `<stem>.civitai.info`): a stem that fills the whole
# 255 bytes would make those fail later, on the WebUI box.
SIDECAR_RESERVE: Final = len(".civitai.info")
MAX_STEM_BYTES: Final = MAX_COMPONENT_BYTES - SIDECAR_RESERVE
# The longest extension WebUI loads a model from; a `name:` without one gets it appended.
LONGEST_EXTENSION: Final = ".safetensors"
# Path under the models root (kind folder, subfolders, file). Linux's PATH_MAX is 4096: this
# leaves 3 KB for wherever the models root itself lives.
MAX_RELATIVE_PATH_BYTES: Final = 1024

MODEL_EXTENSIONS: Final = frozenset(ext for kind in Kind for ext in kind.extensions)
_DRIVE: Final = re.compile(r"^[A-Za-z]:")  # C:foo, D:/models: a Windows drive, not a folder
_WINDOWS_FORBIDDEN: Final = frozenset('<>:"|?*')
# CON, NUL, COM1 ... with or without an extension: Windows and Samba refuse to create them.
_WINDOWS_DEVICE: Final = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.I)
# Unicode categories never meaningful in a file name: control, format (bidi overrides that
# make `gpj.safetensors` display reversed, zero-width joiners), separators other than space,
# unassigned and surrogates.
_BAD_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Cs"})


def component_problem(part: str, *, what: str = "name") -> str | None:
    """Why `part` cannot be one file or folder name, or None when it can."""
    if not part:
        return f"the {what} is empty"
    if "/" in part or "\\" in part:
        return f"{_show(part)} is a path, not a single {what} (it contains '/' or '\\')"
    if part in (".", "..") or set(part) == {"."}:
        return f"{_show(part)} would leave the folder"
    if part.startswith("."):
        return f"{_show(part)} starts with '.': it would be hidden (and `.sdprov` is sdprov's own)"
    if bad := sorted({c for c in part if unicodedata.category(c) in _BAD_CATEGORIES}):
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
        return f"{_show(part)} contains control or invisible characters ({shown})"
    if bad := sorted(_WINDOWS_FORBIDDEN.intersection(part)):
        return (
            f"{_show(part)} contains {' '.join(bad)}, which Windows and SMB shares do not "
            "allow in a file name"
        )
    if part != part.strip() or part.endswith("."):
        return f"{_show(part)} starts or ends with a space, or ends with '.'"
    if _WINDOWS_DEVICE.match(part):
        return f"{_show(part)} is a reserved device name on Windows"
    size = len(part.encode("utf-8"))
    if size > MAX_COMPONENT_BYTES:
        return (
            f"{_show(part)} is {size} bytes in UTF-8; file systems allow "
            f"{MAX_COMPONENT_BYTES} per name"
        )
    return None


def file_name_problem(file_name: str) -> str | None:
    """`component_problem` plus the stem budget that keeps room for WebUI's sidecar files."""
    if problem := component_problem(file_name, what="file name"):
        return problem
    stem = file_name.rpartition(".")[0] or file_name
    size = len(stem.encode("utf-8"))
    if size > MAX_STEM_BYTES:
        return (
            f"{_show(file_name)} has a {size}-byte stem; the limit is {MAX_STEM_BYTES} bytes "
            f"(UTF-8) so that WebUI's `<stem>.preview.png`/`.civitai.info` files fit beside it"
        )
    return None


def relative_path_problem(path: str) -> str | None:
    """Why `path` (POSIX, under the models root) cannot be written, or None."""
    parts = path.split("/")
    for part in parts[:-1]:
        if problem := component_problem(part, what="folder name"):
            return problem
    if problem := file_name_problem(parts[-1]):
        return problem
    size = len(path.encode("utf-8"))
    if size > MAX_RELATIVE_PATH_BYTES:
        return (
            f"the path {_show(path)} is {size} bytes in UTF-8; sdprov allows "
            f"{MAX_RELATIVE_PATH_BYTES} under the models root (Linux allows 4096 in all)"
        )
    return None


# ---- manifest fields -----------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    if "/" in name or "\\" in name:
        return f"{name!r} must be a file name, not a path (use `subfolder:` for folders)"
    if problem := component_problem(name):
        return problem
    # The extension comes from the source when `name:` has none: budget for the longest.
    has_extension = any(name.lower().endswith(ext) for ext in MODEL_EXTENSIONS)
    return file_name_problem(name if has_extension else f"{name}{LONGEST_EXTENSION}")


def source_name_problem(source: SourceRef | None) -> str | None:
    """A URL's or HF path's last segment becomes the file name when there is no `name:`."""
    if isinstance(source, UrlRef):
        file_name = file_name_of_url(source.url)
    elif isinstance(source, HfRef):
        file_name = source.path.rsplit("/", 1)[-1]
    else:
        return None  # Civitai's file name is known only at lock (provision.lock.names)
    if problem := file_name_problem(file_name):
        return f"its file name cannot be used: {problem}; give the entry a `name:`"
    return None


def subfolder_problem(subfolder: str) -> str | None:
    if subfolder.startswith("/") or "\\" in subfolder or _DRIVE.match(subfolder):
        return f"{subfolder!r} must be a relative path with '/' separators"
    parts = [p for p in subfolder.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") for p in parts):
        return f"{subfolder!r} would escape the models folder or be hidden; use plain folder names"
    for part in parts:
        if problem := component_problem(part, what="folder name"):
            return problem
    return None


def path_problem(kind: Kind, subfolder: str | None, name: str | None) -> str | None:
    """The whole path under the models root, once name and subfolder are each fine."""
    folder = PurePosixPath(kind.folder) / (subfolder or "")
    stem = name or "x" * 64  # a source's own name: checked at lock; assume a modest one
    size = len((folder / stem).as_posix().encode("utf-8")) + len(LONGEST_EXTENSION)
    if size > MAX_RELATIVE_PATH_BYTES:
        return (
            f"the model's path under the models root would be about {size} bytes; sdprov "
            f"allows {MAX_RELATIVE_PATH_BYTES} (use a shorter `subfolder:` or `name:`)"
        )
    return None


def _show(text: str) -> str:
    """A name as messages quote it: escaped (no raw control bytes), long ones shortened."""
    shown = repr(text)
    return shown if len(shown) <= 80 else f"{shown[:60]}…{shown[-15:]} ({len(text)} characters)"
