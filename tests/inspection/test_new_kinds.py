"""The kinds ComfyUI and Forge added: each recognised from its own key layout, with its family
where one exists, and the evidence naming the keys that decided it."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.inspection import inspect_file
from tests.fixtures.modelfiles import (
    CLIP_VISIONS,
    UPSCALERS,
    OrderedDict,
    Tensor,
    make_checkpoint,
    make_clip_vision,
    make_controlnet,
    make_diffusion_model,
    make_text_encoder,
    make_upscaler,
    make_vae,
    write_torch_zip,
)


@pytest.mark.parametrize(
    ("variant", "family", "evidence"),
    [
        ("ControlNet", "sd1", "control_model.input_hint_block.0.weight"),
        ("ControlNet", "sd2", "cross-attention context 1024 → sd2"),
        ("ControlNet", "sdxl", "controlnet_cond_embedding.conv_in.weight"),
        ("ControlNet", "flux", "double_blocks / controlnet_x_embedder → flux"),
        ("ControlNet", "sd3", "pos_embed_input.proj.weight → sd3"),
        ("T2I-Adapter", "sd1", "192 input channels after pixel-unshuffle → sd1"),
        ("T2I-Adapter", "sdxl", "768 input channels after pixel-unshuffle → sdxl"),
        ("ControlNet-LoRA", "sdxl", "lora_controlnet marker"),
        ("IP-Adapter", "sd1", "image-prompt K input 768 → sd1"),
        ("IP-Adapter", "sdxl", "image-prompt K input 2048 → sdxl"),
        ("IP-Adapter", "flux", "XLabs Flux IP-Adapter → flux"),
    ],
)
def test_controlnet_folder_models(tmp_path: Path, variant: str, family: str, evidence: str) -> None:
    report = inspect_file(make_controlnet(tmp_path / "c.safetensors", family, variant))
    assert (report.kind, report.variant, report.family) == ("controlnet", variant, family)
    assert any(evidence in e for e in report.evidence), report.evidence


def test_controlnet_pth_from_the_original_repo(tmp_path: Path) -> None:
    report = inspect_file(make_controlnet(tmp_path / "control_v11p_sd15_canny.pth", "sd1"))
    assert (report.kind, report.family, report.format) == ("controlnet", "sd1", "pickle")


@pytest.mark.parametrize("arch", UPSCALERS)
def test_upscaler_architectures(tmp_path: Path, arch: str) -> None:
    report = inspect_file(make_upscaler(tmp_path / "u.safetensors", arch))
    assert (report.kind, report.family) == ("upscaler", "unknown")
    name = {"RRDBNet": "ESRGAN/RRDBNet", "ESRGAN": "ESRGAN (old layout)", "SwinIR": "SwinIR",
            "DAT": "DAT", "SPAN": "SPAN", "Compact": "compact"}[arch]  # fmt: skip
    assert name in report.evidence[1]


@pytest.mark.parametrize(
    ("variant", "expected", "evidence"),
    [
        ("CLIP-L", "CLIP-L", "width 768 → CLIP ViT-L/14"),
        ("CLIP-G", "CLIP-G", "width 1280 → OpenCLIP ViT-bigG/14"),
        ("OpenCLIP-H", "OpenCLIP-H", "width 1024"),
        ("T5-XXL", "T5-XXL", "width 4096, vocabulary 32128 → T5-XXL"),
        ("T5-XXL-fp8", "T5-XXL", "float8 weights"),
        ("UMT5-XXL", "UMT5-XXL", "vocabulary 256384"),
    ],
)
def test_text_encoders(tmp_path: Path, variant: str, expected: str, evidence: str) -> None:
    report = inspect_file(make_text_encoder(tmp_path / "te.safetensors", variant))
    assert (report.kind, report.variant, report.family) == ("text_encoder", expected, "unknown")
    assert any(evidence in e for e in report.evidence), report.evidence
    assert ("fp8" in report.flags) == variant.endswith("fp8")


@pytest.mark.parametrize("variant", sorted(CLIP_VISIONS))
def test_clip_vision(tmp_path: Path, variant: str) -> None:
    report = inspect_file(make_clip_vision(tmp_path / "cv.safetensors", variant))
    assert (report.kind, report.variant) == ("clip_vision", variant)


@pytest.mark.parametrize(
    ("family", "flux_dev", "flag"),
    [("flux", True, "flux-dev"), ("flux", False, "flux-schnell"), ("sd3", True, None),
     ("sdxl", True, None), ("sd1", True, None)],
)  # fmt: skip
def test_diffusion_models(tmp_path: Path, family: str, flux_dev: bool, flag: str | None) -> None:
    report = inspect_file(
        make_diffusion_model(tmp_path / "d.safetensors", family, flux_dev=flux_dev)
    )
    assert (report.kind, report.family) == ("diffusion_model", family)
    assert flag is None or flag in report.flags
    assert "no text encoder and no VAE: a UNet/transformer-only file" in report.evidence


def test_fp8_diffusion_model(tmp_path: Path) -> None:
    path = make_diffusion_model(tmp_path / "flux1-dev-fp8.safetensors", dtype="F8_E4M3")
    report = inspect_file(path)
    assert (report.kind, report.family) == ("diffusion_model", "flux")
    assert "fp8" in report.flags


def test_flux_checkpoint_names_what_it_bundles(tmp_path: Path) -> None:
    report = inspect_file(make_checkpoint(tmp_path / "flux1-dev-fp8.safetensors", "flux"))
    assert (report.kind, report.family) == ("checkpoint", "flux")
    assert {"includes-clip-l", "includes-t5xxl", "includes-vae"} <= set(report.flags)
    assert "includes-clip-g" not in report.flags
    sd3 = inspect_file(make_checkpoint(tmp_path / "sd3.safetensors", "sd3"))
    assert {"includes-clip-l", "includes-vae"} <= set(sd3.flags)
    assert "includes-t5xxl" not in sd3.flags


@pytest.mark.parametrize(("latent", "flag"), [(4, "latent-4ch"), (16, "latent-16ch")])
def test_vae_latent_channels(tmp_path: Path, latent: int, flag: str) -> None:
    report = inspect_file(make_vae(tmp_path / "ae.safetensors", latent_channels=latent))
    assert report.kind == "vae" and flag in report.flags


def test_ip_adapter_bin_as_h94_ships_it(tmp_path: Path) -> None:
    # {"image_proj": {...}, "ip_adapter": {...}}: a nested dict in a torch zip.
    state = {
        "image_proj": OrderedDict(
            {"proj.weight": Tensor((3072, 1024)), "norm.weight": Tensor((768,))}
        ),
        "ip_adapter": OrderedDict(
            {"1.to_k_ip.weight": Tensor((320, 768)), "1.to_v_ip.weight": Tensor((320, 768))}
        ),
    }
    report = inspect_file(write_torch_zip(tmp_path / "ip-adapter_sd15.bin", state))
    assert (report.kind, report.variant, report.family) == ("controlnet", "IP-Adapter", "sd1")
    assert report.format == "pickle"
