"""`sdprov webui args --ui a1111|forge|comfyui`: one models root for every UI.

The ComfyUI YAML is read back the way ComfyUI reads it: `ComfyPaths` re-implements
`utils/extra_config.py load_extra_path_config` and `folder_paths.add_model_folder_path` /
`map_legacy` / `get_full_path` (ComfyUI commit 0c853f33 / 00db33f6; the legacy `clip` name from
reference/comfyui-and-cards.md §1), so a category resolves here exactly as it would there.
os.path on purpose: its join/abspath rules are ComfyUI's.
"""

# ruff: noqa: PTH100, PTH111, PTH113, PTH117, PTH118, PTH122

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

from provision.kinds import KIND_FOLDERS, Kind
from provision.webui.comfyui_paths import CONFIG_NAME, extra_model_paths_yaml
from provision.webui.launch import webui_args
from tests.webui.test_cli import sdprov

# ComfyUI's own categories (folder_paths.py) that sdprov fills, and the kind each one reads.
EXPECTED = {
    "checkpoints": Kind.CHECKPOINT,
    "loras": Kind.LORA,
    "vae": Kind.VAE,
    "embeddings": Kind.EMBEDDING,
    "hypernetworks": Kind.HYPERNETWORK,
    "controlnet": Kind.CONTROLNET,
    "ipadapter": Kind.CONTROLNET,
    "upscale_models": Kind.UPSCALER,
    "text_encoders": Kind.TEXT_ENCODER,
    "diffusion_models": Kind.DIFFUSION_MODEL,
    "clip_vision": Kind.CLIP_VISION,
}
_LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}
_PT_EXTENSIONS = {".ckpt", ".pt", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}


@dataclass
class ComfyPaths:
    """folder_names_and_paths of a ComfyUI with nothing but the YAML's folders."""

    folders: dict[str, list[str]] = field(default_factory=dict)

    def load(self, yaml_path: Path) -> None:
        config = yaml.safe_load(yaml_path.read_text())
        for section in config:
            conf = config[section]
            if conf is None:
                continue
            base_path = None
            if "base_path" in conf:
                base_path = os.path.expandvars(os.path.expanduser(conf.pop("base_path")))
            is_default = bool(conf.pop("is_default", False))
            for category in conf:
                for line in conf[category].split("\n"):  # a list or None would crash ComfyUI
                    if not line:
                        continue
                    if base_path is not None:
                        full = os.path.join(base_path, line)
                    elif not os.path.isabs(line):
                        full = os.path.abspath(os.path.join(yaml_path.parent, line))
                    else:
                        full = line
                    self.add(category, full, is_default)

    def add(self, category: str, folder: str, is_default: bool) -> None:
        paths = self.folders.setdefault(_LEGACY.get(category, category), [])
        paths.insert(0, folder) if is_default else paths.append(folder)

    def full_path(self, category: str, filename: str) -> str | None:
        for folder in self.folders.get(_LEGACY.get(category, category), []):
            candidate = os.path.join(folder, filename)
            if os.path.isfile(candidate) and os.path.splitext(candidate)[1] in _PT_EXTENSIONS:
                return candidate
        return None


def test_every_category_resolves_to_its_kind_folder(tmp_path: Path) -> None:
    root = tmp_path / "my models #1: shared"  # spaces, '#' and ':' must survive YAML
    config = tmp_path / CONFIG_NAME
    config.write_text(extra_model_paths_yaml(root))
    comfy = ComfyPaths()
    comfy.load(config)
    assert set(comfy.folders) == set(EXPECTED)
    for category, kind in EXPECTED.items():
        assert comfy.folders[category] == [str(root / KIND_FOLDERS[kind])], category
        # A placed file (in a subfolder, as `subfolder:` makes it) is what ComfyUI loads.
        placed = root / KIND_FOLDERS[kind] / "sub" / f"{kind.value}.safetensors"
        placed.parent.mkdir(parents=True, exist_ok=True)
        placed.write_bytes(b"x")
        assert comfy.full_path(category, f"sub/{kind.value}.safetensors") == str(placed)


def test_yaml_avoids_comfyuis_traps(tmp_path: Path) -> None:
    text = extra_model_paths_yaml(PurePosixPath("/mnt/auto/sd/models"))
    data = yaml.safe_load(text)
    (section,) = data.values()
    assert all(isinstance(v, str) and v for v in section.values())  # no lists, no empty values
    assert "is_default" not in section  # ComfyUI would save downloads into sdprov's folders
    assert section["base_path"] == "/mnt/auto/sd/models"
    for bad in ("relative/models", "/data/$HOME/models", "/a\nb"):
        with pytest.raises(ValueError):
            extra_model_paths_yaml(PurePosixPath(bad))


def test_forge_reads_diffusion_models_as_checkpoints() -> None:
    args = webui_args(PurePosixPath("/m"), fork="forge")
    flag = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    # Forge lists <models-dir>/Stable-diffusion and --ckpt-dir: checkpoints and UNet-only files.
    assert flag["--models-dir"] == "/m"
    assert flag["--ckpt-dir"] == "/m/diffusion_models"
    assert flag["--text-encoder-dir"] == "/m/text_encoder"
    assert flag["--controlnet-dir"] == "/m/ControlNet"
    assert flag["--esrgan-models-path"] == "/m/ESRGAN"
    assert flag["--lora-dir"] == "/m/Lora" and flag["--embeddings-dir"] == "/m/embeddings"


def test_a1111_gets_only_flags_it_parses() -> None:
    args = webui_args(PurePosixPath("/m"))
    assert "--controlnet-dir" not in args  # an extension's flag: A1111 alone refuses it
    assert "--text-encoder-dir" not in args and "--models-dir" not in args
    assert args[args.index("--esrgan-models-path") + 1] == "/m/ESRGAN"
    with_ext = webui_args(PurePosixPath("/m"), controlnet_extension=True)
    assert with_ext[with_ext.index("--controlnet-dir") + 1] == "/m/ControlNet"


def test_cli_comfyui_writes_the_yaml_and_prints_the_flag(tmp_path: Path) -> None:
    out = sdprov(
        "webui", "args", "--ui", "comfyui", "--models-root", "sd/models", "--data-dir", "comfy",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    words = shlex.split(line)
    config = Path(words[words.index("--extra-model-paths-config") + 1])
    assert config == tmp_path / "comfy" / CONFIG_NAME
    assert words[words.index("--port") + 1] == "8188"
    comfy = ComfyPaths()
    comfy.load(config)
    assert comfy.folders["loras"] == [str(tmp_path / "sd/models/Lora")]
    # Idempotent: run again, same file; JSON names it.
    again = sdprov("webui", "args", "--ui", "comfyui", "--models-root", "sd/models",
                   "--data-dir", "comfy", "--json", cwd=tmp_path)  # fmt: skip
    assert json.loads(again.stdout)["config"] == str(config)


def test_cli_comfyui_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    no_dir = sdprov("webui", "args", "--ui", "comfyui", "--models-root", "m", cwd=tmp_path)
    assert no_dir.returncode == 2 and "--data-dir" in no_dir.stderr
    auth = sdprov("webui", "args", "--ui", "comfyui", "--models-root", "m", "--data-dir", "d",
                  "--auth", cwd=tmp_path)  # fmt: skip
    assert auth.returncode == 2 and "no login" in auth.stderr
    (tmp_path / "mine").mkdir()
    theirs = tmp_path / "mine" / CONFIG_NAME
    theirs.write_text("mine:\n  loras: /elsewhere\n")
    kept = sdprov("webui", "args", "--ui", "comfyui", "--models-root", "m", "--data-dir", "mine",
                  cwd=tmp_path)  # fmt: skip
    assert kept.returncode == 2 and "not written by sdprov" in kept.stderr
    assert theirs.read_text() == "mine:\n  loras: /elsewhere\n"
    for out in (no_dir, auth, kept):
        assert "Traceback" not in out.stderr


def test_cli_default_is_still_a1111(tmp_path: Path) -> None:
    out = sdprov("webui", "args", "--models-root", "/m", cwd=tmp_path)
    words = shlex.split(out.stdout)
    assert words[words.index("--ckpt-dir") + 1] == "/m/Stable-diffusion"
    assert "--extra-model-paths-config" not in words
    forge = sdprov("webui", "args", "--ui", "forge", "--models-root", "/m", cwd=tmp_path)
    assert "--text-encoder-dir /m/text_encoder" in forge.stdout
