"""The import readers on files the tests write: A1111 infotext (quoted values, Civitai's bare
JSON), PNG text chunks (tEXt, compressed iTXt, zTXt, truncated), ComfyUI API-format
workflows. No network: what the files say, not what it resolves to."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.importers.a1111 import parse_params, png_texts, read_infotext
from provision.importers.comfyui import read_workflow
from provision.kinds import Kind
from tests.fixtures.png import write_png


def test_infotext_fields_and_prompt_loras() -> None:
    text = (
        "1girl, <lora:style_a:0.7>, <lyco:hashed:1>\nNegative prompt: bad\n"
        "Steps: 20, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, VAE hash: 235745af8d, "
        'Lora hashes: "hashed: abcdef123456, other: 0123456789ab", TI hashes: "neg: 1234567890", '
        'Civitai resources: [{"type":"checkpoint","modelVersionId":128713},{"type":"lora",'
        '"weight":1,"modelVersionId":62833}], Version: v1.10.1'
    )
    assert parse_params(text)["Lora hashes"] == "hashed: abcdef123456, other: 0123456789ab"
    found = read_infotext(text, "x.png")
    described = [(f.origin.split(": ")[1], f.name, f.kind, f.hash, f.version_id) for f in found]
    assert described == [
        ("Model hash", "v1-5", Kind.CHECKPOINT, "6ce0161689", None),
        ("VAE hash", None, Kind.VAE, "235745af8d", None),
        ("Lora hashes", "hashed", Kind.LORA, "abcdef123456", None),
        ("Lora hashes", "other", Kind.LORA, "0123456789ab", None),
        ("TI hashes", "neg", Kind.EMBEDDING, "1234567890", None),
        ("Civitai resources", None, Kind.CHECKPOINT, None, 128713),
        ("Civitai resources", None, Kind.LORA, None, 62833),
        ("prompt", "style_a", Kind.LORA, None, None),  # no hash: reported, never guessed
    ]


def test_png_chunks_of_every_text_kind(tmp_path: Path) -> None:
    plain = write_png(tmp_path / "a.png", {"parameters": "Steps: 1, Model hash: 00aa"})
    assert png_texts(plain.read_bytes(), "a.png") == {"parameters": "Steps: 1, Model hash: 00aa"}
    wide = write_png(tmp_path / "b.png", {"parameters": "Steps: 1, Model: café"}, itxt=True)
    assert parse_params(png_texts(wide.read_bytes(), "b.png")["parameters"])["Model"] == "café"
    data = plain.read_bytes()
    body = b"workflow\0\0" + zlib.compress(b'{"nodes": []}')
    ztxt = (
        struct.pack(">I", len(body))
        + b"zTXt"
        + body
        + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    )
    assert png_texts(data[:33] + ztxt + data[33:], "c.png")["workflow"] == '{"nodes": []}'
    with pytest.raises(UsageError, match="truncated PNG"):
        png_texts(data[:40], "d.png")
    with pytest.raises(UsageError, match="not a PNG"):
        png_texts(b"GIF89a", "e.gif")


def test_comfyui_api_format_and_models_lists() -> None:
    api = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/base.safetensors"}},
        "9": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors", "model": ["4", 0]}},
        "12": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "canny.safetensors"}},
        "20": {"class_type": "SaveImage", "inputs": {}},
    }  # fmt: skip
    found = read_workflow(json.dumps(api), "api.json")
    assert [(f.name, f.kind, f.folder) for f in found] == [
        ("base", Kind.CHECKPOINT, "checkpoints"),
        ("detail", Kind.LORA, "loras"),
        ("canny", Kind.CONTROLNET, "controlnet"),
    ]
    ui = {"nodes": [{"id": 3, "type": "VAELoader", "widgets_values": ["ae.safetensors"],
                     "properties": {"models": [{"name": "ae.safetensors", "directory": "vae",
                                                "url": "https://example.org/ae.safetensors",
                                                "hash": "AB" * 32, "hash_type": "SHA256"}]}}]}  # fmt: skip
    (only,) = read_workflow(json.dumps(ui), "ui.json")
    assert (only.name, only.kind, only.sha256, only.url) == (
        "ae",
        Kind.VAE,
        "ab" * 32,
        "https://example.org/ae.safetensors",
    )
    with pytest.raises(UsageError, match="not a ComfyUI workflow"):
        read_workflow("[1, 2]", "list.json")
