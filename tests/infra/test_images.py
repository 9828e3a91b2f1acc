"""The UI images' entrypoints, run against a temporary "NAS" without a container runtime.

`SDPROV_DRY_RUN=1` makes an entrypoint do everything but exec the UI: check the NAS and the
login, lay out the folders, write the auth front's files, then print the commands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from provision.webui.comfyui_paths import CATEGORIES, comfyui_args, extra_model_paths_yaml
from provision.webui.launch import AUTH_PLACEHOLDER, webui_args

IMAGES = Path(__file__).resolve().parents[2] / "images"
PASSWORD = "ui-pass-Qw19"


def _run(ui: str, nas: Path, tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "SDPROV_DRY_RUN": "1", "SDPROV_NAS_DIR": str(nas),
            "SDPROV_ETC": str(IMAGES / "comfyui"), "SDPROV_RUN_DIR": str(tmp / "run")}  # fmt: skip
    return subprocess.run(
        [str(IMAGES / ui / "entrypoint.sh")], env=base | env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


def test_a1111_starts_with_sdprovs_flags_on_the_nas(tmp_path: Path) -> None:
    nas = tmp_path / "sd"
    nas.mkdir()
    proc = _run("a1111", nas, tmp_path, SDPROV_WEBUI_AUTH=f"admin:{PASSWORD}")
    assert proc.returncode == 0, proc.stderr
    argv = proc.stdout.split("\n")[2:-1]  # after the interpreter and launch.py
    models = nas / "models"
    expected = webui_args(models, nas, port=7860, auth=True)
    # the same flags as `sdprov webui args`, plus the image's own two
    assert [a for a in argv if a not in ("--skip-prepare-environment", "--skip-version-check")] \
        == [("***" if a == AUTH_PLACEHOLDER else a) for a in expected]  # fmt: skip
    assert PASSWORD not in proc.stdout + proc.stderr
    made = sorted(p.relative_to(nas).as_posix() for p in nas.rglob("*"))
    assert made == ["models", "models/Lora", "models/Stable-diffusion", "models/VAE",
                    "models/embeddings", "models/hypernetworks", "outputs"]  # fmt: skip
    assert not [p for p in nas.rglob("*") if p.is_file() or p.is_symlink()]  # no demo models


@pytest.mark.parametrize("ui", ["a1111", "comfyui"])
def test_no_nas_or_no_login_does_not_start(ui: str, tmp_path: Path) -> None:
    missing = _run(ui, tmp_path / "not-mounted", tmp_path, SDPROV_WEBUI_AUTH="a:b")
    assert missing.returncode == 1 and "NAS is not mounted" in missing.stderr
    (tmp_path / "sd").mkdir()
    for auth in ("", "admin", "admin:"):
        open_ui = _run(ui, tmp_path / "sd", tmp_path, SDPROV_WEBUI_AUTH=auth)
        assert open_ui.returncode == 1 and "SDPROV_WEBUI_AUTH" in open_ui.stderr


def test_comfyui_behind_basic_auth_reads_the_sdprov_layout(tmp_path: Path) -> None:
    nas = tmp_path / "sd"
    nas.mkdir()
    proc = _run("comfyui", nas, tmp_path, SDPROV_WEBUI_AUTH=f"admin:{PASSWORD}")
    assert proc.returncode == 0, proc.stderr
    comfy, front = proc.stdout.split("\n--\n")
    argv = comfy.split("\n")[2:]
    assert argv == comfyui_args(PurePosixPath(IMAGES / "comfyui" / "extra_model_paths.yaml"),
                                output_dir=PurePosixPath(nas / "comfyui-output"))  # fmt: skip
    assert "--listen\n127.0.0.1" in comfy  # never reachable but through the front
    run = tmp_path / "run"
    htpasswd = (run / "htpasswd").read_text()
    assert (run / "htpasswd").stat().st_mode & 0o077 == 0
    user, _, hashed = htpasswd.strip().partition(":")
    assert user == "admin" and hashed.startswith("$6$")
    salt = hashed.split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
                           input=PASSWORD, capture_output=True, text=True, check=True)  # fmt: skip
    assert again.stdout.strip() == hashed
    conf = (run / "nginx.conf").read_text()
    assert f"auth_basic_user_file {run}/htpasswd;" in conf and "@RUN_DIR@" not in conf
    assert "location = /sdprov/health" in conf and "listen 7860;" in conf
    assert f"-c\n{run}/nginx.conf" in front
    for path in [*run.rglob("*"), *nas.rglob("*")]:
        assert not path.is_file() or PASSWORD not in path.read_text(errors="replace")
    assert PASSWORD not in proc.stdout + proc.stderr


def test_the_comfyui_yaml_in_the_image_is_the_one_sdprov_writes() -> None:
    text = extra_model_paths_yaml(PurePosixPath("/mnt/auto/sd/models"))
    assert (IMAGES / "comfyui" / "extra_model_paths.yaml").read_text() == text
    section = yaml.safe_load(text)["sdprov"]
    assert section.pop("base_path") == "/mnt/auto/sd/models"
    # every value a plain non-empty string: a list or an empty value stops ComfyUI at start
    assert set(section) == set(CATEGORIES.values())
    assert all(isinstance(v, str) and v for v in section.values())


def test_comfyui_paths_refuse_what_would_break_the_yaml() -> None:
    for bad in ("relative/models", "/a: b", "/with#hash"):
        with pytest.raises(ValueError, match="absolute plain path"):
            extra_model_paths_yaml(PurePosixPath(bad))
    with pytest.raises(ValueError, match="port"):
        comfyui_args(PurePosixPath("/x.yaml"), port=0)


def test_dockerfiles_pin_the_ui_and_carry_no_demo_models() -> None:
    a1111 = (IMAGES / "a1111" / "Dockerfile").read_text()
    comfy = (IMAGES / "comfyui" / "Dockerfile").read_text()
    assert "ARG WEBUI_REF=v1.10.1" in a1111
    assert "STABLE_DIFFUSION_REPO=https://github.com/w-e-w/stablediffusion.git" in a1111
    assert "ARG COMFYUI_REF=v" in comfy and "nginx" in comfy
    for text in (a1111, comfy):
        assert "aliyun-fc" not in text and "built-in" not in text
        assert ":latest" not in text and "FROM python:3." in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_entrypoints_pass_shellcheck() -> None:
    scripts = [str(p) for p in sorted(IMAGES.glob("*/entrypoint.sh"))]
    proc = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
