"""WebUI launch flags (design.md §6), shared by the FC function and the ECS service.

Stand-in for `provision.webui.launch.webui_args`, which is being written in parallel; switch to
it once it lands. The flags are the same on both targets so a model that works on one works on
the other. Credentials are never part of these lists: `auth_flags` is applied where the secret
is (an `Output.apply`), so the clear text never leaves a secret `Output`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def webui_args(
    models_root: str,
    data_dir: str | None = None,
    *,
    listen: bool = True,
    port: int = 7860,
) -> list[str]:
    """A1111/Forge flags that point every model folder at sdprov's models root."""
    args = ["--api"]
    if listen:
        args.append("--listen")
    args += ["--port", str(port)]
    if data_dir is not None:
        args += ["--data-dir", data_dir]
    args += [
        "--ckpt-dir", f"{models_root}/Stable-diffusion",
        "--lora-dir", f"{models_root}/Lora",
        "--vae-dir", f"{models_root}/VAE",
        "--embeddings-dir", f"{models_root}/embeddings",
        "--hypernetwork-dir", f"{models_root}/hypernetworks",
        "--no-download-sd-model",
    ]  # fmt: skip
    return args


def auth_flags(user: str, password: str) -> list[str]:
    """Gradio login and API basic auth with one credential (both are `user:password`)."""
    credential = f"{user}:{password}"
    return ["--gradio-auth", credential, "--api-auth", credential]


def join_args(args: Sequence[str]) -> str:
    return shlex.join(args)
