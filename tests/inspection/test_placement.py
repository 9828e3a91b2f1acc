from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import InspectionError
from provision.inspection import (
    CompatEntry,
    check_compatibility,
    check_placement,
    describe_report,
    inspect_file,
)
from provision.kinds import Family, Kind
from tests.fixtures.modelfiles import make_checkpoint, make_embedding, make_lora, make_vae


def test_a_checkpoint_labelled_lora_is_refused_with_what_it_is(tmp_path: Path) -> None:
    report = inspect_file(make_checkpoint(tmp_path / "foo.safetensors", "sdxl"))
    with pytest.raises(InspectionError) as caught:
        check_placement(report, kind=Kind.LORA, family=Family.SD1, name="Lora/foo.safetensors")
    message = caught.value.message
    assert message.startswith(
        "Lora/foo.safetensors: the lock says a sd1 LoRA, but the file is an SDXL checkpoint "
        "(evidence: model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
    )
    assert "was not placed" in caught.value.render()


def test_family_mismatch_alone_is_refused(tmp_path: Path) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sd1", "LoCon"))
    with pytest.raises(InspectionError, match=r"the lock says a sdxl LoRA, but the file is an "
                       r"SD1 LoRA \(LoCon\)"):  # fmt: skip
        check_placement(report, kind=Kind.LORA, family=Family.SDXL, name="Lora/l.safetensors")


@pytest.mark.parametrize("variant", ["LoRA", "LoCon", "LoHa", "LoKr", "DoRA"])
def test_every_lora_variant_fits_kind_lora(tmp_path: Path, variant: str) -> None:
    report = inspect_file(make_lora(tmp_path / "l.safetensors", "sdxl", variant))
    check_placement(report, kind=Kind.LORA, family=Family.SDXL, name="l")


def test_unknown_family_in_the_file_never_fails(tmp_path: Path) -> None:
    report = inspect_file(make_vae(tmp_path / "v.safetensors"))
    assert report.family == "unknown"
    for family in Family:
        check_placement(report, kind=Kind.VAE, family=family, name="VAE/v.safetensors")


def test_unknown_family_in_the_lock_never_fails(tmp_path: Path) -> None:
    report = inspect_file(make_embedding(tmp_path / "e.safetensors", "sd2"))
    check_placement(report, kind=Kind.EMBEDDING, family=Family.OTHER, name="e")
    with pytest.raises(InspectionError, match="the lock says a LoRA, but the file is an SD2 emb"):
        check_placement(report, kind=Kind.LORA, family=Family.OTHER, name="e")


def test_unknown_kind_never_fails(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"<html>")
    check_placement(inspect_file(path), kind=Kind.CHECKPOINT, family=Family.SD1, name="x")


def test_describe_report(tmp_path: Path) -> None:
    assert describe_report(inspect_file(make_vae(tmp_path / "v.safetensors"))) == (
        "a VAE of unknown family"
    )
    report = inspect_file(make_checkpoint(tmp_path / "f.safetensors", "flux"))
    assert describe_report(report) == "a Flux checkpoint"


# ---- lock-time compatibility ----------------------------------------------------------------


def _e(name: str, kind: Kind, family: Family, **kw: object) -> CompatEntry:
    return CompatEntry(name=name, kind=kind, family=family, **kw)  # type: ignore[arg-type]


def test_sd1_lora_with_only_sdxl_checkpoints_is_reported() -> None:
    entries = [
        _e("ponyV6", Kind.CHECKPOINT, Family.SDXL, base_model_label="Pony"),
        _e("add_detail", Kind.LORA, Family.SD1, base_model_label="SD 1.5"),
        _e("xl_lora", Kind.LORA, Family.SDXL),
        _e("vae", Kind.VAE, Family.SD1),  # VAEs are not checked
    ]
    problems = check_compatibility(entries)
    assert [p.entry.name for p in problems] == ["add_detail"]
    assert problems[0].message == (
        "lora add_detail (sd1, SD 1.5) matches no checkpoint in the manifest: "
        "the checkpoints are ponyV6 (sdxl, Pony)"
    )
    assert "base:" in problems[0].hint


def test_every_addon_kind_is_checked() -> None:
    entries = [
        _e("ck", Kind.CHECKPOINT, Family.SD1),
        _e("emb", Kind.EMBEDDING, Family.SD2),
        _e("hn", Kind.HYPERNETWORK, Family.SDXL),
        _e("ok", Kind.EMBEDDING, Family.SD1),
    ]
    assert [(p.entry.kind, p.entry.name) for p in check_compatibility(entries)] == [
        (Kind.EMBEDDING, "emb"),
        (Kind.HYPERNETWORK, "hn"),
    ]


def test_declared_base_overrides_either_side() -> None:
    entries = [
        _e("ck", Kind.CHECKPOINT, Family.SDXL),
        _e("lora", Kind.LORA, Family.SD1, declared_base=Family.SDXL),
    ]
    assert check_compatibility(entries) == []
    entries = [
        _e("ck", Kind.CHECKPOINT, Family.OTHER, declared_base=Family.SD1),
        _e("lora", Kind.LORA, Family.SDXL),
    ]
    (problem,) = check_compatibility(entries)
    assert "ck (sd1 declared)" in problem.message


def test_unknown_families_are_never_reported() -> None:
    assert check_compatibility([_e("ck", Kind.CHECKPOINT, Family.SDXL),
                                _e("l", Kind.LORA, Family.OTHER)]) == []  # fmt: skip
    # No checkpoint of a known family: nothing to compare against.
    assert check_compatibility([_e("ck", Kind.CHECKPOINT, Family.OTHER),
                                _e("l", Kind.LORA, Family.SD1)]) == []  # fmt: skip
    assert check_compatibility([_e("l", Kind.LORA, Family.SD1)]) == []


def test_a_lora_fits_any_of_several_checkpoint_families() -> None:
    entries = [
        _e("a", Kind.CHECKPOINT, Family.SD1),
        _e("b", Kind.CHECKPOINT, Family.SDXL),
        _e("l1", Kind.LORA, Family.SD1),
        _e("l2", Kind.LORA, Family.SDXL),
        _e("l3", Kind.LORA, Family.FLUX),
    ]
    (problem,) = check_compatibility(entries)
    assert problem.entry.name == "l3"
    assert "the checkpoints are a (sd1), b (sdxl)" in problem.message
