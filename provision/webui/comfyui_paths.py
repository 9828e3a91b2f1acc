"""ComfyUI on the sdprov layout: its `extra_model_paths.yaml` and its launch flags.

ComfyUI reads extra model folders from a YAML file (reference/comfyui-and-cards.md §1): one
section, a `base_path`, then one key per category whose value is a folder (a string; a YAML list
or an empty value stops ComfyUI at start). We map each sdprov kind folder to its ComfyUI category,
so A1111 and ComfyUI list the same files from one models root. Pure functions: the image build
(images/comfyui/) and, later, `sdprov webui` use the same text.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Final

from provision.kinds import KIND_FOLDERS, Kind

SECTION: Final = "sdprov"
DEFAULT_PORT: Final = 8188
# ComfyUI category per sdprov kind (ComfyUI's folder_paths names).
CATEGORIES: Final[dict[Kind, str]] = {
    Kind.CHECKPOINT: "checkpoints",
    Kind.LORA: "loras",
    Kind.EMBEDDING: "embeddings",
    Kind.VAE: "vae",
    Kind.HYPERNETWORK: "hypernetworks",
}


def extra_model_paths_yaml(models_root: PurePath) -> str:
    """The YAML text: absolute `base_path`, one relative folder per category, no lists."""
    root = str(models_root)
    if not models_root.is_absolute() or any(c in root for c in ":#\n'\""):
        raise ValueError(f"models root must be an absolute plain path, got {root!r}")
    lines = [
        "# Written by sdprov: ComfyUI lists the models sdprov placed (do not edit by hand).",
        f"{SECTION}:",
        f"  base_path: {root}",
    ]
    lines += [f"  {CATEGORIES[kind]}: {KIND_FOLDERS[kind]}" for kind in Kind]
    return "\n".join(lines) + "\n"


def comfyui_args(
    config_path: PurePath,
    *,
    listen: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    output_dir: PurePath | None = None,
) -> list[str]:
    """`main.py` flags. ComfyUI has no login: listen on loopback behind an authenticating front."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    args = ["--listen", listen, "--port", str(port), "--extra-model-paths-config", str(config_path)]
    if output_dir is not None:
        args += ["--output-directory", str(output_dir)]
    return args


__all__ = ["CATEGORIES", "comfyui_args", "extra_model_paths_yaml"]
