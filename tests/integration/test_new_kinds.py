"""The new kinds end to end: lock resolves Civitai's Controlnet/TextEncoder/UNet/Upscaler/CLIPVision
models into their sections, a Flux diffusion model without its parts fails the lock at its line,
and sync places every file in its folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.fixtures.modelfiles import (
    make_checkpoint,
    make_clip_vision,
    make_controlnet,
    make_diffusion_model,
    make_text_encoder,
    make_upscaler,
    make_vae,
)
from tests.integration.conftest import Cli


def _model(model_id: int, kind: str, base: str, path: Path, name: str) -> FakeModel:
    file = FakeFile(id=model_id * 10, name=name, content=path, primary=True)
    version = FakeVersion(id=model_id * 100, name="v1", base_model=base, files=[file])
    return FakeModel(id=model_id, name=name, type=kind, versions=[version])


@pytest.fixture
def flux_parts(civitai: CivitaiServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    models = [
        # Civitai files transformer-only Flux releases as `Checkpoint`.
        (1, "Checkpoint", "Flux.1 D", make_diffusion_model(src / "f.safetensors"), "flux1-dev"),
        (2, "TextEncoder", "Flux.1 D", make_text_encoder(src / "t5.safetensors", "T5-XXL-fp8", t5_blocks=2),
         "t5xxl_fp8_e4m3fn"),
        (3, "TextEncoder", "Flux.1 D", make_text_encoder(src / "l.safetensors", "CLIP-L"),
         "clip_l"),
        (4, "VAE", "Flux.1 D", make_vae(src / "ae.safetensors", latent_channels=16), "ae"),
        (5, "Controlnet", "Flux.1 D", make_controlnet(src / "cn.safetensors", "flux"),
         "flux_canny"),
        (6, "Upscaler", "Upscaler", make_upscaler(src / "u.safetensors", "ESRGAN"),
         "4x_UltraSharp"),
        (7, "CLIPVision", "Other", make_clip_vision(src / "cv.safetensors", "SigLIP"),
         "sigclip_vision_patch14_384"),
        (8, "Controlnet", "SD 1.5", make_controlnet(src / "c1.safetensors", "sd1"),
         "control_v11p_sd15_canny"),
    ]  # fmt: skip
    for model_id, kind, base, path, name in models:
        civitai.add(_model(model_id, kind, base, path, f"{name}.safetensors"))


def test_flux_without_its_parts_fails_lock_naming_them(
    cli: Cli, tmp_path: Path, flux_parts: None
) -> None:
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(
        "diffusion_models:\n  - civitai: 1@100\ntext_encoders:\n  - civitai: 3@300\n"
    )
    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:2:5: error:" in out.stderr
    assert "flux1-dev is a Flux diffusion model" in out.stderr
    assert "lacks T5-XXL, a 16-channel VAE" in out.stderr
    assert "CLIP-L" not in out.stderr.split("lacks", 1)[1].split(";")[0]  # it is there
    assert not (tmp_path / "manifests" / "models.lock.json").exists()
    # base_check: warn lets it through with a warning.
    manifest.write_text("options: {base_check: warn}\n" + manifest.read_text())
    warned = cli.run("lock")
    assert "warning:" in warned.stderr and "lacks T5-XXL" in warned.stderr


def test_flux_with_its_parts_locks_and_syncs_into_every_folder(
    cli: Cli, tmp_path: Path, flux_parts: None
) -> None:
    (tmp_path / "manifests" / "models.yaml").write_text(
        "diffusion_models:\n  - civitai: 1@100\n"
        "text_encoders:\n  - civitai: 2@200\n  - civitai: 3@300\n"
        "vaes:\n  - civitai: 4@400\n"
        "controlnets:\n  - civitai: 5@500\n"
        "upscalers:\n  - civitai: 6@600\n"
        "clip_vision:\n  - civitai: 7@700\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    got = {(m["kind"], m["path"], m["base"]) for m in lock["models"]}
    assert got == {
        ("diffusion_model", "diffusion_models/flux1-dev.safetensors", "flux"),
        # the tensors cannot tell a text encoder's family: Civitai's label stays
        ("text_encoder", "text_encoder/t5xxl_fp8_e4m3fn.safetensors", "flux"),
        ("text_encoder", "text_encoder/clip_l.safetensors", "flux"),
        ("vae", "VAE/ae.safetensors", "flux"),
        ("controlnet", "ControlNet/flux_canny.safetensors", "flux"),
        ("upscaler", "ESRGAN/4x_UltraSharp.safetensors", "other"),
        ("clip_vision", "clip_vision/sigclip_vision_patch14_384.safetensors", "other"),
    }
    t5 = next(m for m in lock["models"] if "t5xxl" in m["path"])
    assert t5["inspected"]["variant"] == "T5-XXL" and "fp8" in t5["inspected"]["flags"]
    root = tmp_path / "models"
    cli.run("sync", "--models-root", str(root))
    for _kind, path, _base in got:
        assert (root / path).is_file(), path
    status = cli.run("status", "--models-root", str(root), "--check")
    assert "ok" in status.stdout + status.stderr


def test_civitai_type_puts_a_model_in_its_section(
    cli: Cli, tmp_path: Path, flux_parts: None
) -> None:
    (tmp_path / "manifests" / "models.yaml").write_text("loras:\n  - civitai: 8@800\n")
    out = cli.run("lock", check=2)
    assert "the source says this is a controlnet (Controlnet)" in out.stderr
    assert "move it to `controlnets`" in out.stderr


def test_controlnet_that_fits_no_checkpoint_fails_lock(
    cli: Cli, tmp_path: Path, flux_parts: None
) -> None:
    (tmp_path / "manifests" / "models.yaml").write_text(
        "diffusion_models:\n  - civitai: 1@100\ntext_encoders:\n  - civitai: 2@200\n"
        "  - civitai: 3@300\nvaes:\n  - civitai: 4@400\ncontrolnets:\n  - civitai: 8@800\n"
    )
    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:9:5: error: controlnet control_v11p_sd15_canny (sd1" in out.stderr


def test_hugging_face_repos_of_the_new_kinds(cli: Cli, hf: HfServer, tmp_path: Path) -> None:
    src = tmp_path / "hfsrc"
    files = {
        "comfyanonymous/flux_text_encoders/clip_l.safetensors": make_text_encoder(
            src / "clip_l.safetensors", "CLIP-L"
        ),
        "comfyanonymous/flux_text_encoders/t5xxl_fp16.safetensors": make_text_encoder(
            src / "t5.safetensors", "T5-XXL"
        ),
        "black-forest-labs/FLUX.1-schnell/flux1-schnell.safetensors": make_diffusion_model(
            src / "s.safetensors", flux_dev=False
        ),
        "black-forest-labs/FLUX.1-schnell/ae.safetensors": make_vae(
            src / "ae.safetensors", latent_channels=16
        ),
    }
    for ref, path in files.items():
        owner, repo, name = ref.split("/", 2)
        hf.add_file(f"{owner}/{repo}", name, path)
    (tmp_path / "manifests" / "models.yaml").write_text(
        "diffusion_models:\n  - hf: black-forest-labs/FLUX.1-schnell/flux1-schnell.safetensors\n"
        "text_encoders:\n  - hf: comfyanonymous/flux_text_encoders/clip_l.safetensors\n"
        "  - hf: comfyanonymous/flux_text_encoders/t5xxl_fp16.safetensors\n"
        "vaes:\n  - hf: black-forest-labs/FLUX.1-schnell/ae.safetensors\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    unet = next(m for m in lock["models"] if m["kind"] == "diffusion_model")
    assert unet["base"] == "flux" and "flux-schnell" in unet["inspected"]["flags"]
    # A text encoder listed as a VAE is refused from its own header.
    (tmp_path / "manifests" / "models.yaml").write_text(
        "vaes:\n  - hf: comfyanonymous/flux_text_encoders/clip_l.safetensors\n"
    )
    out = cli.run("lock", check=2)
    assert "the file itself is a text encoder (CLIP-L)" in out.stderr
    assert "list it under `text_encoders`" in out.stderr


def test_transformer_only_file_under_checkpoints_and_full_checkpoint_under_diffusion_models(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path, flux_parts: None
) -> None:
    # Forge loads a transformer-only file from its checkpoint folder: accepted, parts required.
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text("checkpoints:\n  - civitai: 1@100\n")
    out = cli.run("lock", check=2)
    assert "manifests/models.yaml:2:5: error: flux1-dev is a Flux diffusion model" in out.stderr
    # A full checkpoint is not a diffusion model: ComfyUI's checkpoint loader is where it goes.
    full = make_checkpoint(tmp_path / "src" / "aio.safetensors", "flux")
    civitai.add(_model(9, "Checkpoint", "Flux.1 D", full, "flux1-dev-fp8.safetensors"))
    manifest.write_text("diffusion_models:\n  - civitai: 9@900\n")
    out = cli.run("lock", check=2)
    assert "the file itself is a Flux checkpoint, not a diffusion_model" in out.stderr
    assert "list it under `checkpoints`" in out.stderr
    # Under checkpoints it bundles CLIP-L, T5-XXL and its VAE: nothing is missing.
    manifest.write_text("checkpoints:\n  - civitai: 9@900\n")
    cli.run("lock")


def test_a_civitai_release_with_its_parts_in_one_version(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = [
        FakeFile(id=101, name="flux1Dev_unet.safetensors", primary=True,
                 content=make_diffusion_model(src / "u.safetensors")),
        FakeFile(id=102, name="ae.safetensors", type="VAE",
                 content=make_vae(src / "ae.safetensors", latent_channels=16)),
        FakeFile(id=103, name="t5xxl_fp8.safetensors", type="Text Encoder",
                 content=make_text_encoder(src / "t5.safetensors", "T5-XXL-fp8")),
        FakeFile(id=104, name="clip_l.safetensors", type="Text Encoder",
                 content=make_text_encoder(src / "l.safetensors", "CLIP-L")),
    ]  # fmt: skip
    version = FakeVersion(id=1000, name="dev", base_model="Flux.1 D", files=files)
    civitai.add(FakeModel(id=10, name="Flux dev", type="Checkpoint", versions=[version]))
    (tmp_path / "manifests" / "models.yaml").write_text(
        "diffusion_models:\n  - civitai: 10@1000\n"
        "vaes:\n  - civitai: 10@1000\n"
        "text_encoders:\n  - civitai: 10@1000\n  - civitai: 10@1000\n    file_id: 104\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    got = {(m["kind"], m["source"]["file_id"]) for m in lock["models"]}
    assert got == {("diffusion_model", 101), ("vae", 102), ("text_encoder", 103),
                   ("text_encoder", 104)}  # fmt: skip
