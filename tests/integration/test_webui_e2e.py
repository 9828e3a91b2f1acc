"""`sync --webui` and `status --webui` against a WebUI-compatible server listing the folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.webui.comfyui_paths import extra_model_paths_yaml
from tests.fakes import CivitaiServer, HfServer
from tests.fakes_webui.comfyui import FakeComfyUI
from tests.fakes_webui.server import Dirs, FakeWebui, Variant
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

AUTH = ("admin", "webui-secret-pass")


@pytest.mark.parametrize("variant", [Variant.A1111_16, Variant.A1111_110, Variant.FORGE])
def test_sync_tells_webui_and_checks_every_model_is_listed(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path, variant: Variant
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    dirs = Dirs.under(root, tmp_path / "sd")
    for folder in (dirs.ckpt, dirs.vae, dirs.lora, dirs.embeddings, dirs.hypernetworks):
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(cli.env, SDPROV_WEBUI_AUTH=":".join(AUTH))
    with FakeWebui(variant, dirs, auth=AUTH, model_width=2048) as webui:
        out = Cli(cli.cwd, env).run(
            "sync", "--models-root", str(root), "--webui", webui.url, "--json"
        )
        assert AUTH[1] not in out.stdout + out.stderr
        report = json.loads(out.stdout)["webui"]
        statuses = {row["path"]: row["status"] for row in report["rows"]}
        assert statuses["Stable-diffusion/juggernaut_xl_v9.safetensors"] == "listed"
        assert statuses["Lora/add-detail-xl.safetensors"] == "listed"
        assert report["ok"] is True
        status = Cli(cli.cwd, env).run(
            "status", "--models-root", str(root), "--webui", webui.url, "--check"
        )
        assert "juggernaut_xl_v9" in status.stdout  # the table pipes
    # A model WebUI cannot see (moved out of its folder) fails `status --webui --check`.
    (root / "Lora/add-detail-xl.safetensors").rename(root / "add-detail-xl.safetensors")
    with FakeWebui(variant, dirs, auth=AUTH, model_width=2048) as webui:  # a restarted WebUI
        failed = Cli(cli.cwd, env).run(
            "status",
            "--models-root",
            str(root),
            "--webui",
            webui.url,
            "--check",
            "--json",
            check=1,
        )
        rows = {m["path"]: m for m in json.loads(failed.stdout)["models"]}
        assert rows["Lora/add-detail-xl.safetensors"]["webui"] == "missing"


def test_sync_and_status_against_comfyui(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    config = tmp_path / "comfy" / "extra_model_paths.yaml"
    config.parent.mkdir()
    config.write_text(extra_model_paths_yaml(root))
    env = dict(cli.env, SDPROV_WEBUI_AUTH=":".join(AUTH))
    with FakeComfyUI(tmp_path / "ComfyUI", extra_yaml=config, auth=AUTH) as comfy:
        out = Cli(cli.cwd, env).run(
            "sync", "--models-root", str(root), "--webui", comfy.url, "--json"
        )
        assert AUTH[1] not in out.stdout + out.stderr
        report = json.loads(out.stdout)["webui"]
        assert report["ok"] is True
        rows = {row["path"]: row for row in report["rows"]}
        assert rows["Lora/add-detail-xl.safetensors"]["webui_name"] == "add-detail-xl.safetensors"
        assert {row["status"] for row in rows.values()} == {"listed"}
        # Moved out of its folder: ComfyUI no longer lists it (the folder's mtime changed).
        (root / "Lora/add-detail-xl.safetensors").rename(root / "add-detail-xl.safetensors")
        failed = Cli(cli.cwd, env).run(
            "status",
            "--models-root",
            str(root),
            "--webui",
            comfy.url,
            "--check",
            "--json",
            check=1,
        )
        models = {m["path"]: m for m in json.loads(failed.stdout)["models"]}
        assert models["Lora/add-detail-xl.safetensors"]["webui"] == "missing"
