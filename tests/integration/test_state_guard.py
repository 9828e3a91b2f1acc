"""State read under the lease, the mass-removal guard, symlinks in the root, `status --verify`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

CKPT = "Stable-diffusion/juggernaut_xl_v9.safetensors"
LORA = "Lora/add-detail-xl.safetensors"
EMB = "embeddings/negative_xl.safetensors"
VAE = "VAE/sdxl_vae.safetensors"
CKPT_ENTRY = "checkpoints:\n  - civitai: 133005@288982\n    name: juggernaut_xl_v9\n"


@pytest.fixture
def root(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> Path:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    return tmp_path / "sd" / "models"


def _state(root: Path) -> dict[str, dict[str, object]]:
    placed: dict[str, dict[str, object]] = json.loads(
        (root / ".sdprov" / "state.json").read_text()
    )["placed"]
    return placed


def _relock(cli: Cli, tmp_path: Path, manifest: str) -> None:
    (tmp_path / "manifests" / "models.yaml").write_text(manifest)
    cli.run("lock")


def test_lease_wait_reads_the_state_only_once_it_holds_the_lease(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path, root: Path
) -> None:
    # A: the full lock, slowed down. B: a lock without the checkpoint, queued behind A. B must
    # see what A placed (and remove the checkpoint it no longer locks); with the state read
    # before the lease, B saved its stale view and the checkpoint was orphaned for good.
    full = tmp_path / "manifests" / "full.lock.json"
    full.write_bytes((tmp_path / "manifests" / "models.lock.json").read_bytes())
    _relock(cli, tmp_path, MANIFEST.replace(CKPT_ENTRY, ""))
    civitai.faults.throttle_bps = 4_000_000
    first = cli.popen("sync", "--lock", str(full), "--models-root", str(root), "--jobs", "1")
    deadline = time.monotonic() + 20
    while not (root / ".sdprov" / "lease").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    second = cli.run("sync", "--models-root", str(root), "--lease-wait", "60", timeout=90)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "removed" in second.stderr
    assert not (root / CKPT).exists()
    assert set(_state(root)) == {LORA, EMB, VAE}
    cli.run("status", "--models-root", str(root), "--check")


def test_empty_manifest_does_not_silently_remove_every_model(
    cli: Cli, tmp_path: Path, root: Path
) -> None:
    cli.run("sync", "--models-root", str(root))
    _relock(cli, tmp_path, "# nothing yet\n")
    dry = cli.run("sync", "--models-root", str(root), "--dry-run")
    assert "would remove 4 of the 4 models" in dry.stderr and "--prune" in dry.stderr
    stopped = cli.run("sync", "--models-root", str(root), check=1)
    assert "remove" in stopped.stderr and "--prune" in stopped.stderr
    assert "nothing was changed" in stopped.stderr
    assert all((root / p).is_file() for p in (CKPT, LORA, EMB, VAE))
    assert len(_state(root)) == 4
    assert not (root / ".sdprov" / "lease").exists()
    cli.run("sync", "--models-root", str(root), "--prune")
    assert not any((root / p).exists() for p in (CKPT, LORA, EMB, VAE))
    assert _state(root) == {}


def test_more_than_half_needs_prune_but_half_does_not(cli: Cli, tmp_path: Path, root: Path) -> None:
    cli.run("sync", "--models-root", str(root))
    only_ckpt = CKPT_ENTRY  # keeps 1 of 4: removing 3 is more than half
    _relock(cli, tmp_path, only_ckpt)
    cli.run("sync", "--models-root", str(root), check=1)
    two = MANIFEST.split("embeddings:")[0]  # checkpoint + LoRA: removing 2 of 4 is half
    _relock(cli, tmp_path, two)
    out = cli.run("sync", "--models-root", str(root))
    assert "2 removed" in out.stderr
    assert set(_state(root)) == {CKPT, LORA}


def test_symlinked_kind_folder_is_never_written_through(
    cli: Cli, tmp_path: Path, root: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.safetensors").write_bytes(b"not sdprov's")
    root.mkdir(parents=True)
    (root / "Lora").symlink_to(outside, target_is_directory=True)
    out = cli.run("sync", "--models-root", str(root), check=1)
    assert "Lora is a symlink" in out.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["precious.safetensors"]
    assert (root / CKPT).is_file() and (root / VAE).is_file()  # the rest proceeds
    status = cli.run("status", "--models-root", str(root), "--json", "--check", check=1)
    rows = {m["path"]: m for m in json.loads(status.stdout)["models"]}
    assert rows["Lora"]["status"] == "symlink"
    assert str(outside) in rows["Lora"]["detail"]
    assert "precious" not in status.stdout  # not followed


def test_symlink_planted_over_a_placed_folder_is_left_alone(
    cli: Cli, tmp_path: Path, root: Path
) -> None:
    cli.run("sync", "--models-root", str(root))
    # Someone swaps the embeddings folder for a link to a folder holding a same-named file.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for moved in (root / "embeddings").iterdir():  # the model and its cards
        moved.replace(outside / moved.name)
    (root / "embeddings").rmdir()
    (root / "embeddings").symlink_to(outside, target_is_directory=True)
    _relock(cli, tmp_path, MANIFEST.replace("embeddings:\n  - civitai: urn:air:sdxl:embedding:"
                                            "civitai:7808@9208\n", ""))  # fmt: skip
    cli.run("sync", "--models-root", str(root))
    assert (outside / "negative_xl.safetensors").is_file()  # its target survives
    assert (outside / "negative_xl.json").is_file()  # and its card: not deleted through a link
    assert EMB not in _state(root)
    status = cli.run("status", "--models-root", str(root))
    assert "symlink" in status.stdout + status.stderr


def test_status_verify_finds_bit_rot_the_trusted_check_misses(cli: Cli, root: Path) -> None:
    cli.run("sync", "--models-root", str(root))
    target = root / CKPT
    before = target.stat()
    with target.open("r+b") as fh:  # flip one byte in the middle, keep size and mtime
        fh.seek(before.st_size // 2)
        byte = fh.read(1)
        fh.seek(before.st_size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    cli.run("status", "--models-root", str(root), "--check")  # trusted: size + mtime
    out = cli.run("status", "--models-root", str(root), "--verify", "--check", "--json", check=1)
    rows = {m["path"]: m for m in json.loads(out.stdout)["models"]}
    assert rows[CKPT]["status"] == "modified" and "bit rot" in rows[CKPT]["detail"]
    assert all(rows[p]["status"] == "ok" for p in (LORA, EMB, VAE))
    assert rows[LORA]["detail"] == "re-hashed"
