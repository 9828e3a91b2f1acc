"""The UI images' entrypoints, run against a temporary "NAS" without a container runtime.

`SDPROV_DRY_RUN=1` makes an entrypoint do everything but exec the UI: check the NAS and the
login, lay out the folders, write the auth front's files, then print the commands.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
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
    assert made == ["models", "models/ESRGAN", "models/Lora", "models/Stable-diffusion",
                    "models/VAE", "models/embeddings", "models/hypernetworks", "outputs"]  # fmt: skip
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
    mode = (run / "htpasswd").stat()
    assert mode.st_mode & 0o007 == 0 and mode.st_uid == 0  # root's, readable by nginx's group
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
    assert set(section) == set(CATEGORIES)  # every kind's ComfyUI categories
    assert all(isinstance(v, str) and v for v in section.values())


def test_comfyui_paths_refuse_what_would_break_the_yaml() -> None:
    for bad in ("relative/models", "/a\nb", "/data/$HOME", "~/models"):
        with pytest.raises(ValueError, match=r"absolute path|ComfyUI rewrites"):
            extra_model_paths_yaml(PurePosixPath(bad))
    # quoted scalars: ':' and '#' survive
    assert (
        yaml.safe_load(extra_model_paths_yaml(PurePosixPath("/a: b#c")))["sdprov"]["base_path"]
        == "/a: b#c"
    )
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(
    shutil.which("nginx") is None or os.geteuid() != 0,
    reason="needs nginx (Debian's nginx-light) and root, as in the image",
)
def test_the_comfyui_front_asks_for_the_login_and_leaves_health_open() -> None:
    """The rendered nginx config, run for real in front of a stand-in ComfyUI."""

    class Comfy(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"system": {}}' if self.path == "/system_stats" else b"comfyui page"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    comfy = ThreadingHTTPServer(("127.0.0.1", 0), Comfy)
    threading.Thread(target=comfy.serve_forever, daemon=True).start()
    base = Path(tempfile.mkdtemp(prefix="sdprov-front-"))  # like /run: workers may traverse it
    base.chmod(0o755)
    (base / "sd").mkdir()
    port = _free_port()
    front: subprocess.Popen[bytes] | None = None
    try:
        proc = _run("comfyui", base / "sd", base, SDPROV_WEBUI_AUTH=f"admin:{PASSWORD}",
                    SDPROV_PORT=str(port), COMFYUI_PORT=str(comfy.server_address[1]))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        front = subprocess.Popen(
            ["nginx", "-e", "stderr", "-c", str(base / "run" / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=5, trust_env=False) as client:
            for _ in range(100):
                try:
                    health = client.get(f"{url}/sdprov/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            assert health.status_code == 200 and health.json() == {"system": {}}
            assert client.get(url).status_code == 401
            assert client.get(url, auth=("admin", "wrong")).status_code == 401
            page = client.get(url, auth=("admin", PASSWORD))
            assert page.status_code == 200 and page.text == "comfyui page"
    finally:
        if front is not None:
            front.terminate()
            front.communicate(timeout=10)  # reads and closes its stderr
        comfy.shutdown()
        comfy.server_close()
        shutil.rmtree(base, ignore_errors=True)
