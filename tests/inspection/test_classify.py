"""Every kind and family, written as real files, in both formats where WebUI loads both."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.inspection import inspect_file
from tests.fixtures.modelfiles import (
    make_checkpoint,
    make_controlnet,
    make_embedding,
    make_hypernetwork,
    make_lora,
    make_upscaler,
    make_vae,
    write_safetensors,
    write_torch_zip,
)

# family -> a key fragment that must be named in the evidence (what decided it)
CHECKPOINT_EVIDENCE = {
    "sd1": "attn2.to_k.weight: cross-attention context 768 → sd1",
    "sd2": "attn2.to_k.weight: cross-attention context 1024 → sd2",
    "sdxl": "attn2.to_k.weight: cross-attention context 2048 → sdxl",
    "sd3": "joint_blocks.0.context_block",
    "flux": "double_blocks.0.img_attn",
}


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
@pytest.mark.parametrize("family", sorted(CHECKPOINT_EVIDENCE))
def test_checkpoints(tmp_path: Path, family: str, suffix: str) -> None:
    report = inspect_file(make_checkpoint(tmp_path / f"m{suffix}", family))
    assert (report.kind, report.family, report.variant) == ("checkpoint", family, None)
    assert report.format == ("safetensors" if suffix == ".safetensors" else "pickle")
    assert any(CHECKPOINT_EVIDENCE[family] in e for e in report.evidence), report.evidence


def test_text_encoder_agrees_with_unet_in_evidence(tmp_path: Path) -> None:
    report = inspect_file(make_checkpoint(tmp_path / "x.safetensors", "sdxl"))
    assert any("OpenCLIP-G text encoder → sdxl" in e for e in report.evidence)


@pytest.mark.parametrize(
    ("kwargs", "family", "flag"),
    [
        ({"family": "sd1", "inpaint": True}, "sd1", "inpaint"),
        ({"family": "sd2", "inpaint": True}, "sd2", "inpaint"),
        ({"family": "sdxl", "refiner": True}, "sdxl", "refiner"),
        ({"family": "flux", "flux_dev": True}, "flux", "flux-dev"),
        ({"family": "flux", "flux_dev": False}, "flux", "flux-schnell"),
    ],
)
def test_checkpoint_flags(
    tmp_path: Path, kwargs: dict[str, object], family: str, flag: str
) -> None:
    report = inspect_file(make_checkpoint(tmp_path / "m.safetensors", **kwargs))  # type: ignore[arg-type]
    assert report.family == family
    assert flag in report.flags
    assert "inpaint" not in report.flags or flag == "inpaint"


def test_plain_checkpoint_has_no_flags(tmp_path: Path) -> None:
    assert inspect_file(make_checkpoint(tmp_path / "m.safetensors", "sd1")).flags == ()


LORA_CASES = [
    (family, variant)
    for family in ("sd1", "sd2", "sdxl", "sd3", "flux")
    for variant in ("LoRA", "LoCon", "LoHa", "LoKr", "DoRA")
    if not (variant == "LoCon" and family in ("sd3", "flux"))  # DiTs have no convolutions
]


@pytest.mark.parametrize(("family", "variant"), LORA_CASES)
def test_loras(tmp_path: Path, family: str, variant: str) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", family, variant))
    assert (report.kind, report.variant, report.family) == ("lora", variant, family)
    assert report.flags == ()


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "flux"])
def test_lora_as_pickle(tmp_path: Path, family: str) -> None:
    report = inspect_file(make_lora(tmp_path / "l.pt", family))
    assert (report.kind, report.family, report.format) == ("lora", family, "pickle")


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sd3", "flux"])
def test_peft_loras_are_flagged(tmp_path: Path, family: str) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", family, peft=True))
    assert (report.kind, report.variant, report.family) == ("lora", "LoRA", family)
    assert "peft-keys" in report.flags


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_text_encoder_only_loras(tmp_path: Path, family: str) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", family, text_encoder_only=True))
    assert (report.kind, report.family) == ("lora", family)
    assert "text-encoder-only" in report.flags


def test_sd1_lora_evidence_names_the_cross_attention_width(tmp_path: Path) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sd1", "LoHa"))
    assert any("attn2_to_k: cross-attention input width 768 → sd1" in e for e in report.evidence)
    assert any("LoHa" in e for e in report.evidence)


def test_lokr_width_is_the_kronecker_product(tmp_path: Path) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sdxl", "LoKr"))
    assert any("input width 2048 → sdxl" in e for e in report.evidence)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".bin"])
@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_embeddings(tmp_path: Path, family: str, suffix: str) -> None:
    report = inspect_file(make_embedding(tmp_path / f"e{suffix}", family))
    assert (report.kind, report.family) == ("embedding", family)


def test_a1111_pt_embedding_keeps_its_training_checkpoint(tmp_path: Path) -> None:
    report = inspect_file(make_embedding(tmp_path / "e.pt", "sd1", vectors=4))
    assert report.metadata["sd_checkpoint_name"] == "v1-5-pruned-emaonly"
    assert any("string_to_param.* [4, 768]" in e for e in report.evidence)


@pytest.mark.parametrize(("latent", "hint"), [(4, "SD1, SD2 and SDXL"), (16, "SD3 or Flux")])
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_vaes_have_no_family_from_shapes(
    tmp_path: Path, latent: int, hint: str, suffix: str
) -> None:
    report = inspect_file(make_vae(tmp_path / f"v{suffix}", latent_channels=latent))
    assert (report.kind, report.family) == ("vae", "unknown")
    assert any(hint in e for e in report.evidence)


def test_vae_family_from_modelspec(tmp_path: Path) -> None:
    meta = {"modelspec.architecture": "stable-diffusion-xl-v1-base/vae"}
    report = inspect_file(make_vae(tmp_path / "v.safetensors", metadata=meta))
    assert (report.kind, report.family) == ("vae", "sdxl")
    assert any("tensors could not tell" in e for e in report.evidence)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("family", ["sd1", "sd2"])
def test_hypernetworks(tmp_path: Path, family: str, legacy: bool) -> None:
    report = inspect_file(make_hypernetwork(tmp_path / "h.pt", family, legacy=legacy))
    assert (report.kind, report.family, report.format) == ("hypernetwork", family, "pickle")
    assert report.metadata["sd_checkpoint_name"] == "v1-5-pruned"


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_controlnets(tmp_path: Path, family: str) -> None:
    report = inspect_file(make_controlnet(tmp_path / "c.safetensors", family))
    assert (report.kind, report.family) == ("controlnet", family)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_upscalers(tmp_path: Path, suffix: str) -> None:
    report = inspect_file(make_upscaler(tmp_path / f"u{suffix}"))
    assert (report.kind, report.family) == ("upscaler", "unknown")


# ---- metadata as a second signal ------------------------------------------------------------


def test_metadata_that_agrees_is_noted(tmp_path: Path) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sdxl", kohya_metadata=True))
    assert report.family == "sdxl"
    assert any(e.startswith("metadata agrees: modelspec.architecture=") for e in report.evidence)


def test_metadata_never_overrules_the_tensors(tmp_path: Path) -> None:
    meta = {"ss_base_model_version": "sdxl_base_v1-0"}
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sd1", metadata=meta))
    assert report.family == "sd1"
    assert "metadata-disagrees" in report.flags
    assert any("metadata says sdxl" in e for e in report.evidence)


@pytest.mark.parametrize(
    ("metadata", "family"),
    [
        ({"ss_base_model_version": "sd_v1"}, "sd1"),
        ({"ss_v2": "True"}, "sd2"),
        ({"ss_base_model_version": "flux1"}, "flux"),
        ({"modelspec.architecture": "stable-diffusion-3-medium/lora"}, "sd3"),
    ],
)
def test_metadata_decides_when_shapes_cannot(
    tmp_path: Path, metadata: dict[str, str], family: str
) -> None:
    # A LoRA touching only a convolution: no cross-attention, no text encoder to measure.
    tensors = {
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": ("F16", [4, 320, 3, 3]),
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": ("F16", [320, 4, 1, 1]),
    }
    report = inspect_file(write_safetensors(tmp_path / "l.safetensors", tensors, metadata))
    assert (report.kind, report.variant, report.family) == ("lora", "LoCon", family)


def test_long_metadata_values_stay_out_of_the_report(tmp_path: Path) -> None:
    meta = {"ss_tag_frequency": "x" * 10_000, "ss_network_dim": "16"}
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sd1", metadata=meta))
    assert dict(report.metadata) == {"ss_network_dim": "16"}


# ---- odd content: unknown, never an exception ------------------------------------------------


def test_unrecognised_tensors_are_unknown_with_evidence(tmp_path: Path) -> None:
    tensors = {"foo.weight": ("F32", [3, 3]), "bar.bias": ("F32", [3])}
    report = inspect_file(write_safetensors(tmp_path / "x.safetensors", tensors))
    assert (report.kind, report.family) == ("unknown", "unknown")
    assert any("match no known layout" in e and "bar.bias" in e for e in report.evidence)


def test_empty_safetensors_is_unknown(tmp_path: Path) -> None:
    report = inspect_file(write_safetensors(tmp_path / "x.safetensors", {}))
    assert report.kind == "unknown"
    assert "no tensors in the file" in report.evidence


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("m.safetensors", b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
        ("m.safetensors", b'{"error": "Unauthorized"}', "JSON"),
        ("m.bin", b"\x00\x01garbage-bytes-here", "not a safetensors"),
    ],
)
def test_non_model_downloads_are_unknown(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = inspect_file(path)
    assert (report.kind, report.format) == ("unknown", "other")
    assert reason in report.evidence[0]


def test_a_pickle_named_safetensors_is_reported_as_pickle(tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    write_torch_zip(path, {"x": 1})
    report = inspect_file(path)
    assert report.format == "pickle"
    assert "extension-mismatch" in report.flags


def test_to_json_is_plain_data(tmp_path: Path) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sd2", "DoRA"))
    data = report.to_json()
    assert data["kind"] == "lora" and type(data["kind"]) is str
    assert data["variant"] == "DoRA" and data["family"] == "sd2"
    assert isinstance(data["evidence"], list) and isinstance(data["metadata"], dict)
