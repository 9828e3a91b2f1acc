"""Small real model files for the WebUI tests: safetensors (8-byte LE header length + JSON +
data) with the tensor names and shapes WebUI reads, and LockEntry objects pointing at them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from provision.kinds import Family, Kind
from provision.lock.lockfile import LockEntry, Lockfile
from provision.sources.locked import UrlSource

_ELEMENT = {"F16": 2, "F32": 4}


def write_safetensors(
    path: Path,
    tensors: dict[str, list[int]],
    *,
    metadata: dict[str, str] | None = None,
    dtype: str = "F16",
    seed: int = 0,
) -> Path:
    """Write a valid safetensors file; tensor bytes are deterministic per `seed`."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        size = count * _ELEMENT[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # right-padded with spaces, as the format allows
    data = (hashlib.sha256(f"{path.name}:{seed}".encode()).digest() * (offset // 32 + 1))[:offset]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


def checkpoint(path: Path, *, seed: int = 0) -> Path:
    return write_safetensors(
        path,
        {
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": [8, 768],
            "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [
                32,
                768,
            ],
        },
        seed=seed,
    )


def lora(path: Path, *, seed: int = 0, metadata: dict[str, str] | None = None) -> Path:
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    return write_safetensors(
        path,
        {
            f"{key}.lora_down.weight": [4, 768],
            f"{key}.lora_up.weight": [320, 4],
            f"{key}.alpha": [],
        },
        metadata=metadata or {"ss_base_model_version": "sd_v1", "ss_output_name": path.stem},
        seed=seed,
    )


def vae(path: Path, *, seed: int = 0) -> Path:
    return write_safetensors(
        path,
        {"decoder.conv_in.weight": [16, 4, 3, 3], "encoder.conv_in.weight": [16, 3, 3, 3]},
        seed=seed,
    )


def embedding(path: Path, *, width: int = 768, seed: int = 0) -> Path:
    if width == 2048:
        return write_safetensors(path, {"clip_l": [2, 768], "clip_g": [2, 1280]}, seed=seed)
    return write_safetensors(path, {"emb_params": [2, width]}, seed=seed)


def hypernetwork(path: Path, *, seed: int = 0) -> Path:
    """Bytes only: WebUI lists `.pt` hypernetworks by name without opening them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04" + hashlib.sha256(f"hn{seed}".encode()).digest() * 64)
    return path


def entry_for(models_root: Path, path: str, kind: Kind, *, base: Family = Family.SD1) -> LockEntry:
    """A LockEntry with the real size and sha256 of the file at `models_root/path`."""
    data = (models_root / path).read_bytes()
    return LockEntry(
        name=Path(path).stem,
        kind=kind,
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        base=base,
        format="safetensors" if path.endswith(".safetensors") else "pickle",
        source=UrlSource(url=f"https://example.org/{Path(path).name}"),
        entry_digest="d" * 64,
        allow_pickle=not path.endswith(".safetensors"),
    )


def lock_of(*entries: LockEntry) -> Lockfile:
    return Lockfile(manifest_sha256="f" * 64, models=tuple(entries))


def standard_set(models_root: Path) -> Lockfile:
    """One model of each kind, in the folders sdprov places them, SD1 throughout."""
    checkpoint(models_root / "Stable-diffusion/SD1/dreamshaper_8.safetensors")
    lora(models_root / "Lora/add_detail.safetensors")
    vae(models_root / "VAE/vae-ft-mse.safetensors")
    embedding(models_root / "embeddings/easynegative.safetensors")
    hypernetwork(models_root / "hypernetworks/anime_3.pt")
    return lock_of(
        entry_for(models_root, "Stable-diffusion/SD1/dreamshaper_8.safetensors", Kind.CHECKPOINT),
        entry_for(models_root, "Lora/add_detail.safetensors", Kind.LORA),
        entry_for(models_root, "VAE/vae-ft-mse.safetensors", Kind.VAE),
        entry_for(models_root, "embeddings/easynegative.safetensors", Kind.EMBEDDING),
        entry_for(models_root, "hypernetworks/anime_3.pt", Kind.HYPERNETWORK),
    )


def age(path: Path, seconds: float = 100.0) -> None:
    """Move a file or folder's mtime into the past (tests need 'older than now')."""
    st = path.stat()
    os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))
