"""The no-op resync answered from `.sdprov/settled.json` (provision.sync.settled): only when
nothing it relies on changed; any change takes the full sync, which then says what changed."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

SETTLED = Path(".sdprov") / "settled.json"


def _synced(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    cli.run("sync", "--models-root", str(root))
    return root


def test_a_resync_after_a_complete_one_only_looks_at_the_files(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    root = _synced(cli, civitai, hf, tmp_path)
    assert (root / SETTLED).is_file()
    state = (root / ".sdprov" / "state.json").read_bytes()
    civitai.clear_requests()
    hf.clear_requests()
    out = cli.run("sync", "--models-root", str(root))
    assert "sync complete: 0 downloaded, 0 adopted, 0 moved, 0 removed, 4 unchanged" in out.stderr
    assert civitai.requests == [] and hf.requests == []
    assert (root / ".sdprov" / "state.json").read_bytes() == state


def test_a_touched_model_takes_the_full_sync(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    root = _synced(cli, civitai, hf, tmp_path)
    lora = root / "Lora" / "add-detail-xl.safetensors"
    data = bytearray(lora.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes, a new mtime
    lora.write_bytes(bytes(data))
    os.utime(lora, ns=(1, 1))
    out = cli.run("sync", "--models-root", str(root))
    assert "4 unchanged" not in out.stderr
    assert "add-detail-xl" in out.stderr  # the full sync names what it found


def test_a_changed_lock_or_a_deleted_model_takes_the_full_sync(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    root = _synced(cli, civitai, hf, tmp_path)
    (root / "VAE" / "sdxl_vae.safetensors").unlink()
    out = cli.run("sync", "--models-root", str(root))
    assert "1 downloaded" in out.stderr and (root / "VAE" / "sdxl_vae.safetensors").is_file()
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST.rstrip("\n") + "\n# reviewed\n")  # new bytes, same models
    cli.run("lock")
    out = cli.run("sync", "--models-root", str(root))
    assert "4 unchanged" in out.stderr and "plan:" in out.stderr
