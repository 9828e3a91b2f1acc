"""ComfyUI workflow JSON: the `models` lists (top level and per node `properties.models`,
each `{name, url, hash, hash_type, directory}`) and the loader nodes' file names, in both
the UI format (`nodes` with `widgets_values`) and the API format (`{id: {class_type,
inputs}}`). A loader name that no `models` item explains is reported with only its name."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Final

from provision.errors import UsageError
from provision.importers import COMFY_FOLDERS, Found

# Loader node → (input name, index in widgets_values, ComfyUI folder).
LOADERS: Final[dict[str, tuple[str, int, str]]] = {
    "CheckpointLoaderSimple": ("ckpt_name", 0, "checkpoints"),
    "CheckpointLoader": ("ckpt_name", 1, "checkpoints"),
    "ImageOnlyCheckpointLoader": ("ckpt_name", 0, "checkpoints"),
    "LoraLoader": ("lora_name", 0, "loras"),
    "LoraLoaderModelOnly": ("lora_name", 0, "loras"),
    "VAELoader": ("vae_name", 0, "vae"),
    "HypernetworkLoader": ("hypernetwork_name", 0, "hypernetworks"),
    "ControlNetLoader": ("control_net_name", 0, "controlnet"),
    "UpscaleModelLoader": ("model_name", 0, "upscale_models"),
    "UNETLoader": ("unet_name", 0, "diffusion_models"),
    "CLIPLoader": ("clip_name", 0, "text_encoders"),
    "CLIPVisionLoader": ("clip_name", 0, "clip_vision"),
}


def read_workflow(text: str, origin: str) -> list[Found]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{origin}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: not a ComfyUI workflow (expected a JSON object)")
    listed: dict[str, Found] = {}
    for raw in _model_lists(data):
        found = _from_models_item(raw, origin)
        if found is not None and found.name is not None:
            listed.setdefault(found.name, found)
    out = list(listed.values())
    for node_label, folder, file_name in _loader_files(data):
        stem = PurePosixPath(file_name).stem
        if stem in listed:
            continue
        listed[stem] = Found(origin=f"{origin}: {node_label}", name=stem,
                             kind=COMFY_FOLDERS.get(folder), folder=folder)  # fmt: skip
        out.append(listed[stem])
    return out


def _model_lists(data: dict[str, Any]) -> list[Any]:
    items = list(data.get("models") or [])
    for node in _nodes(data):
        properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        items.extend((properties or {}).get("models") or [])
    return [i for i in items if isinstance(i, dict)]


def _nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(data.get("nodes"), list):
        return [n for n in data["nodes"] if isinstance(n, dict)]
    return [n for n in data.values() if isinstance(n, dict) and "class_type" in n]  # API format


def _from_models_item(raw: dict[str, Any], origin: str) -> Found | None:
    file_name = str(raw.get("name") or "")
    if not file_name:
        return None
    folder = str(raw.get("directory") or "")
    hash_value = str(raw.get("hash") or "") or None
    hash_type = str(raw.get("hash_type") or "").lower()
    return Found(
        origin=f"{origin}: models",
        name=PurePosixPath(file_name).stem,
        kind=COMFY_FOLDERS.get(folder),
        folder=folder or None,
        hash=hash_value,
        sha256=hash_value.lower() if hash_value and hash_type == "sha256" else None,
        url=str(raw.get("url") or "") or None,
    )


def _loader_files(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for node in _nodes(data):
        node_type = str(node.get("type") or node.get("class_type") or "")
        if node_type not in LOADERS:
            continue
        key, index, folder = LOADERS[node_type]
        value: Any = None
        inputs = node.get("inputs")
        if isinstance(inputs, dict):  # API format
            value = inputs.get(key)
        widgets = node.get("widgets_values")
        if value is None and isinstance(widgets, list) and len(widgets) > index:
            value = widgets[index]
        if isinstance(value, str) and value:
            out.append((f"{node_type} #{node.get('id', '?')}", folder, value))
    return out
