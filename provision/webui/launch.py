"""WebUI launch flags for the sdprov layout (design.md §6).

Pure functions: the cloud launcher (FC container command, ECS systemd unit) and
`sdprov webui args` call the same code, so a local WebUI and a cloud one read the models root
the same way. The flags were checked against A1111 `modules/cmd_args.py` (1.6–1.10), Forge's
(dfdcbab6) and sd-webui-controlnet's `preload.py` (56cec5b2). ComfyUI: `comfyui_paths.py`.

Secrets: with `auth=True` the credentials are not in the list; `AUTH_PLACEHOLDER` stands in for
them. Substitute it at exec time (`with_credentials`) and never log the substituted list, or
render the list for a shell (`render_shell`), where the placeholder becomes `"$SDPROV_WEBUI_AUTH"`
and the shell expands it from the environment.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path, PurePath, PurePosixPath
from typing import Final, Literal

from provision.kinds import KIND_FOLDERS, Kind

AUTH_ENV: Final = "SDPROV_WEBUI_AUTH"
AUTH_PLACEHOLDER: Final = "${" + AUTH_ENV + "}"
DEFAULT_PORT: Final = 7860
Fork = Literal["a1111", "forge"]
FORKS: Final[tuple[str, ...]] = ("a1111", "forge")

# Flag per kind folder, for every fork that has it. `--embeddings-dir` matters most: A1111 reads
# embeddings from `<data-dir>/embeddings`, not from under the models dir, so without it they are
# never listed. `--esrgan-models-path` is core A1111 (every version) and Forge; the ESRGAN
# upscaler loads any spandrel architecture from it (A1111 1.7+, a warning for non-ESRGAN).
_DIR_FLAGS: Final[tuple[tuple[str, Kind], ...]] = (
    ("--ckpt-dir", Kind.CHECKPOINT),
    ("--lora-dir", Kind.LORA),
    ("--vae-dir", Kind.VAE),
    ("--embeddings-dir", Kind.EMBEDDING),
    ("--hypernetwork-dir", Kind.HYPERNETWORK),
    ("--esrgan-models-path", Kind.UPSCALER),
)
# Forge only (modules/cmd_args.py at dfdcbab6): its text encoder and built-in ControlNet folders.
_FORGE_FLAGS: Final[tuple[tuple[str, Kind], ...]] = (
    ("--text-encoder-dir", Kind.TEXT_ENCODER),
    ("--controlnet-dir", Kind.CONTROLNET),
)


def webui_args(
    models_root: PurePosixPath | Path,
    data_dir: PurePosixPath | Path | None = None,
    *,
    listen: bool = True,
    port: int = DEFAULT_PORT,
    auth: bool = False,
    fork: Fork = "a1111",
    controlnet_extension: bool = False,
) -> list[str]:
    """WebUI command-line flags that make it read every kind it can load from `models_root`.

    `models_root` may be a `PurePosixPath` for a host other than this one (the cloud's
    `/mnt/auto/sd/models`); it is used as given, never resolved. `fork` is "a1111" (1.6–1.10)
    or "forge". Forge also gets `--models-dir ROOT` (its checkpoint list is
    `<models-dir>/Stable-diffusion` plus `--ckpt-dir`, which then names `diffusion_models/`: the
    one folder Forge and ComfyUI both load UNet/transformer-only files from). A1111 parses its
    command line strictly, so `--controlnet-dir` (defined by the sd-webui-controlnet extension,
    not A1111) is added only with `controlnet_extension=True`. `auth=True` adds `--api-auth`
    and `--gradio-auth` with `AUTH_PLACEHOLDER`.
    """
    if fork not in FORKS:
        raise ValueError(f"fork must be one of {', '.join(FORKS)}, got {fork!r}")
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    args = ["--api"]
    if listen:
        args.append("--listen")
    args += ["--port", str(port)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    flags = list(_DIR_FLAGS)
    if fork == "forge":
        args += ["--models-dir", str(models_root)]
        flags[0] = ("--ckpt-dir", Kind.DIFFUSION_MODEL)
        flags += _FORGE_FLAGS
    elif controlnet_extension:
        flags.append(("--controlnet-dir", Kind.CONTROLNET))
    for flag, kind in flags:
        args += [flag, _join(models_root, KIND_FOLDERS[kind])]
    # Without a checkpoint A1111 would download SD1.5 (GBs) at start; Forge never downloads but
    # still parses the flag, so passing it is harmless there.
    args.append("--no-download-sd-model")
    if auth:
        # --api-auth protects the /sdapi routes (except A1111's LoRA routes), --gradio-auth the UI.
        args += ["--api-auth", AUTH_PLACEHOLDER, "--gradio-auth", AUTH_PLACEHOLDER]
    return args


def _join(root: PurePath, folder: str) -> str:
    return str(root / folder)


def render_shell(args: Sequence[str]) -> str:
    """One shell line; the auth placeholder stays an environment reference, never a secret."""
    return " ".join(
        f'"${AUTH_ENV}"' if arg == AUTH_PLACEHOLDER else shlex.quote(arg) for arg in args
    )


def with_credentials(args: Sequence[str], credentials: str) -> list[str]:
    """Substitute `user:password` for the placeholder, for exec. Do not log the result."""
    if ":" not in credentials:
        raise ValueError("credentials must be user:password")
    return [credentials if arg == AUTH_PLACEHOLDER else arg for arg in args]
