"""The required-parts rule on its own: which models need which text encoders and VAE."""

from __future__ import annotations

from provision.kinds import Family, Kind
from provision.lock.parts import PartEntry, check_required_parts


def _e(position: int, kind: Kind, family: Family = Family.OTHER, *, inspected: str | None = None,
       variant: str | None = None, flags: tuple[str, ...] = ()) -> PartEntry:  # fmt: skip
    return PartEntry(
        position=position,
        name=f"m{position}",
        kind=kind,
        family=family,
        inspected_kind=inspected,
        variant=variant,
        flags=frozenset(flags),
    )


FLUX_UNET = _e(0, Kind.DIFFUSION_MODEL, Family.FLUX, inspected="diffusion_model")
CLIP_L = _e(1, Kind.TEXT_ENCODER, inspected="text_encoder", variant="CLIP-L")
T5 = _e(2, Kind.TEXT_ENCODER, inspected="text_encoder", variant="T5-XXL", flags=("fp8",))
AE = _e(3, Kind.VAE, inspected="vae", flags=("latent-16ch",))


def test_flux_with_every_part_passes() -> None:
    assert check_required_parts([FLUX_UNET, CLIP_L, T5, AE]) == []


def test_each_missing_part_is_named_at_the_model() -> None:
    (problem,) = check_required_parts([FLUX_UNET, CLIP_L])
    assert problem.position == 0
    assert "m0 is a Flux diffusion model" in problem.message
    assert "lacks T5-XXL, a 16-channel VAE (Flux ae / SD3 VAE)" in problem.message
    assert "T5-XXL under `text_encoders:`" in problem.hint and "under `vaes:`" in problem.hint


def test_an_sdxl_vae_does_not_serve_flux() -> None:
    sdxl_vae = _e(3, Kind.VAE, inspected="vae", flags=("latent-4ch",))
    (problem,) = check_required_parts([FLUX_UNET, CLIP_L, T5, sdxl_vae])
    assert "a 16-channel VAE" in problem.message and "T5" not in problem.message


def test_parts_we_could_not_read_count_as_possible_matches() -> None:
    pickle_te = _e(4, Kind.TEXT_ENCODER)  # a .bin: not inspected at lock
    pickle_vae = _e(5, Kind.VAE)
    assert check_required_parts([FLUX_UNET, CLIP_L, pickle_te, pickle_vae]) == []
    (problem,) = check_required_parts([FLUX_UNET, pickle_te, pickle_vae])
    assert "CLIP-L, T5-XXL" in problem.message  # one unknown file cannot be both


def test_flux_checkpoint_needs_only_what_it_does_not_bundle() -> None:
    bundled = _e(0, Kind.CHECKPOINT, Family.FLUX, inspected="checkpoint",
                 flags=("includes-clip-l", "includes-t5xxl", "includes-vae"))  # fmt: skip
    assert check_required_parts([bundled]) == []
    no_t5 = _e(0, Kind.CHECKPOINT, Family.FLUX, inspected="checkpoint",
               flags=("includes-clip-l", "includes-vae"))  # fmt: skip
    (problem,) = check_required_parts([no_t5])
    assert "checkpoint without all its text encoders/VAE inside" in problem.message
    assert "lacks T5-XXL," in problem.message and "VAE" not in problem.message.split("lacks")[1]


def test_transformer_only_file_under_checkpoints_needs_its_parts() -> None:
    # Forge loads UNet-only files from the checkpoint folder, so the section accepts them.
    unet = _e(0, Kind.CHECKPOINT, Family.SD3, inspected="diffusion_model")
    (problem,) = check_required_parts([unet, CLIP_L])
    assert "SD3 diffusion model" in problem.message and "CLIP-G" in problem.message
    assert "T5" not in problem.message  # SD3 runs without T5-XXL


def test_sd_checkpoints_and_uninspected_checkpoints_are_left_alone() -> None:
    sdxl = _e(0, Kind.CHECKPOINT, Family.SDXL, inspected="checkpoint")
    ckpt_pickle = _e(1, Kind.CHECKPOINT, Family.FLUX)
    assert check_required_parts([sdxl, ckpt_pickle]) == []


def test_sdxl_unet_only_needs_both_clips_and_a_4_channel_vae() -> None:
    unet = _e(0, Kind.DIFFUSION_MODEL, Family.SDXL, inspected="diffusion_model")
    (problem,) = check_required_parts([unet, CLIP_L, AE])
    assert "lacks CLIP-G, a 4-channel VAE" in problem.message


def test_sdxl_refiner_unet_needs_clip_g_only() -> None:
    refiner = _e(0, Kind.DIFFUSION_MODEL, Family.SDXL, inspected="diffusion_model",
                 flags=("refiner",))  # fmt: skip
    clip_g = _e(1, Kind.TEXT_ENCODER, inspected="text_encoder", variant="CLIP-G")
    sdxl_vae = _e(2, Kind.VAE, inspected="vae", flags=("latent-4ch",))
    assert check_required_parts([refiner, clip_g, sdxl_vae]) == []
