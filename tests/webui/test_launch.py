from __future__ import annotations

import shlex
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from provision.webui.launch import AUTH_PLACEHOLDER, render_shell, webui_args, with_credentials


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_cloud_layout_flags() -> None:
    args = webui_args(PurePosixPath("/mnt/auto/sd/models"), PurePosixPath("/mnt/auto/sd"))
    assert args[:4] == ["--api", "--listen", "--port", "7860"]
    assert _flag(args, "--data-dir") == "/mnt/auto/sd"
    assert _flag(args, "--ckpt-dir") == "/mnt/auto/sd/models/Stable-diffusion"
    assert _flag(args, "--lora-dir") == "/mnt/auto/sd/models/Lora"
    assert _flag(args, "--vae-dir") == "/mnt/auto/sd/models/VAE"
    assert _flag(args, "--embeddings-dir") == "/mnt/auto/sd/models/embeddings"
    assert _flag(args, "--hypernetwork-dir") == "/mnt/auto/sd/models/hypernetworks"
    assert "--no-download-sd-model" in args
    assert "--api-auth" not in args


def test_options() -> None:
    args = webui_args(Path("/m"), listen=False, port=7861, fork="forge")
    assert "--listen" not in args and "--data-dir" not in args
    assert _flag(args, "--port") == "7861"
    with pytest.raises(ValueError, match="fork"):
        webui_args(Path("/m"), fork="sdnext")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        webui_args(Path("/m"), port=0)


def test_auth_is_a_placeholder_never_a_secret() -> None:
    args = webui_args(Path("/m"), auth=True)
    assert _flag(args, "--api-auth") == AUTH_PLACEHOLDER
    assert _flag(args, "--gradio-auth") == AUTH_PLACEHOLDER
    line = render_shell(args)
    assert '--api-auth "$SDPROV_WEBUI_AUTH"' in line
    # The shell expands it from the environment: the secret lives only there.
    out = subprocess.run(
        ["bash", "-c", f"printf '%s\\n' {line}"],
        env={"SDPROV_WEBUI_AUTH": "admin:s3cret pw"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[out.index("--api-auth") + 1] == "admin:s3cret pw"
    exec_args = with_credentials(args, "admin:pw")
    assert _flag(exec_args, "--api-auth") == "admin:pw"
    assert AUTH_PLACEHOLDER not in exec_args


def test_render_shell_quotes_spaces() -> None:
    line = render_shell(webui_args(Path("/my models")))
    assert shlex.split(line)[shlex.split(line).index("--ckpt-dir") + 1] == (
        "/my models/Stable-diffusion"
    )
