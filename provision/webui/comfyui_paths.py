"""ComfyUI on the sdprov layout: its `extra_model_paths.yaml` and its launch flags.

ComfyUI reads extra model folders from YAML (`utils/extra_config.py`, read at ComfyUI commit
0c853f33; rules in reference/comfyui-and-cards.md §1): each top-level section has an optional
`base_path` (`~` and `$VARS` expanded), an optional `is_default`, and one key per category whose
value is a string split on newlines, each line a folder joined to `base_path`. A YAML list or an
empty value stops ComfyUI at start; old names are mapped (`unet` → `diffusion_models`, `clip` →
`text_encoders` in current ComfyUI). We write one section naming every kind folder under its
categories (`provision.kinds.KIND_COMFYUI_CATEGORIES`), so A1111, Forge and ComfyUI list the
same files from one models root. `is_default` stays off: ComfyUI (and ComfyUI-Manager) would
then save downloads into the first folder of a category, i.e. into sdprov's root.

Pure text functions, plus one writer that never replaces a file sdprov did not write. The cloud
image build and `sdprov webui args --ui comfyui` use the same text.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path, PurePath
from typing import Final

from provision.errors import SdprovError, UsageError
from provision.kinds import KIND_COMFYUI_CATEGORIES, KIND_FOLDERS, Kind

SECTION: Final = "sdprov"
DEFAULT_PORT: Final = 8188
CONFIG_NAME: Final = "sdprov-extra-model-paths.yaml"  # not ComfyUI's own auto-loaded name
HEADER: Final = "# Written by sdprov: ComfyUI lists the models sdprov placed (do not edit by hand)."
# ComfyUI category → the sdprov kind whose folder it reads (one folder per category).
CATEGORIES: Final[dict[str, Kind]] = {
    category: kind for kind in Kind for category in KIND_COMFYUI_CATEGORIES[kind]
}


def extra_model_paths_yaml(models_root: PurePath) -> str:
    """The YAML text: an absolute `base_path`, one relative folder per category, no lists."""
    root = str(models_root)
    if not models_root.is_absolute():
        raise ValueError(f"models root must be an absolute path, got {root!r}")
    # ComfyUI splits values on newlines and runs os.path.expandvars on base_path.
    if "\n" in root or "$" in root or root.startswith("~"):
        raise ValueError(f"models root {root!r} has a newline, '$' or '~', which ComfyUI rewrites")
    lines = [HEADER, f"{SECTION}:", f"  base_path: {_scalar(root)}"]
    lines += [f"  {cat}: {_scalar(KIND_FOLDERS[kind])}" for cat, kind in CATEGORIES.items()]
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for spaces, ':', '#', quotes.
    return json.dumps(text, ensure_ascii=False)


def write_extra_model_paths(models_root: Path, data_dir: Path) -> Path:
    """Write (atomically) `<data_dir>/sdprov-extra-model-paths.yaml`; refuse to replace a file
    of that name that sdprov did not write."""
    target = data_dir / CONFIG_NAME
    try:
        text = extra_model_paths_yaml(models_root)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        if target.exists() and not target.read_text("utf-8").startswith(HEADER):
            raise UsageError(
                f"{target} exists and was not written by sdprov; left alone",
                hint="move it away or pick another --data-dir",
                path=str(target),
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=data_dir, prefix=f".{CONFIG_NAME}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        tmp.chmod(0o644)  # ComfyUI may run as another user
        tmp.replace(target)
    except UnicodeDecodeError:
        raise UsageError(
            f"{target} exists and was not written by sdprov; left alone", path=str(target)
        ) from None
    except OSError as exc:
        raise SdprovError(
            f"cannot write {target}: {exc.strerror or exc}",
            hint="pick a --data-dir you can write to",
            path=str(target),
        ) from None
    return target


def comfyui_args(
    config_path: PurePath,
    *,
    listen: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    output_dir: PurePath | None = None,
) -> list[str]:
    """ComfyUI `main.py` flags. ComfyUI has no login: by default it listens on loopback only,
    behind an authenticating front (the cloud image's nginx)."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    args = ["--listen", listen, "--port", str(port), "--extra-model-paths-config", str(config_path)]
    if output_dir is not None:
        args += ["--output-directory", str(output_dir)]
    return args


__all__ = [
    "CATEGORIES",
    "CONFIG_NAME",
    "comfyui_args",
    "extra_model_paths_yaml",
    "write_extra_model_paths",
]
