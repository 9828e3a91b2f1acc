"""`sdprov plan` in all three formats against golden files (two real lockfiles on disk), and
against a models folder that a real sync filled. Set SDPROV_UPDATE_GOLDEN=1 to rewrite the
goldens (then read the diff before committing it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from provision.kinds import Family, Kind
from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import Cli

GOLDEN = Path(__file__).parent.parent / "golden" / "plan"
GIB = 1 << 30


def _civitai(model: int, version: int, version_name: str) -> dict[str, Any]:
    return {"type": "civitai", "model_id": model, "version_id": version, "file_id": version + 1,
            "air": f"urn:air:sdxl:lora:civitai:{model}@{version}", "version_name": version_name}  # fmt: skip


def _entry(kind: Kind, path: str, sha: str, size: int, source: dict[str, Any],
           base: Family = Family.SDXL) -> dict[str, Any]:  # fmt: skip
    """A lock entry as a version-1 lockfile has it on disk (every reader accepts version 1)."""
    return {"name": Path(path).stem, "kind": kind.value, "path": path, "size": size,
            "sha256": sha * 64, "base": base.value, "format": Path(path).suffix[1:],
            "source": source, "entry_digest": sha * 64}  # fmt: skip


class _Lock:
    def __init__(self, manifest_sha256: str, models: tuple[dict[str, Any], ...]) -> None:
        self.raw = {"version": 1, "manifest_sha256": manifest_sha256, "models": list(models)}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.raw, indent=2))


BASE = _Lock(
    "0" * 64,
    (
        _entry(
            Kind.CHECKPOINT,
            "Stable-diffusion/juggernautXL_v9.safetensors",
            "a",
            7 * GIB,
            _civitai(133005, 288982, "v9"),
        ),
        _entry(Kind.LORA, "Lora/detail.safetensors", "b", 40 << 20, _civitai(58390, 62833, "v1")),
        _entry(Kind.LORA, "Lora/old_style.safetensors", "c", 150 << 20, _civitai(1, 2, "v1")),
        _entry(
            Kind.VAE,
            "VAE/sdxl_vae.safetensors",
            "d",
            335 << 20,
            {
                "type": "hf",
                "repo": "madebyollin/sdxl-vae-fp16-fix",
                "path": "sdxl_vae.safetensors",
                "revision": "main",
                "commit": "207b116dae70ace3637169f1ddd2434b91b3a8cd",
            },
        ),
        _entry(
            Kind.EMBEDDING, "embeddings/neg.safetensors", "e", 8 << 10, _civitai(7808, 9208, "v1")
        ),
    ),
)
HEAD = _Lock(
    "1" * 64,
    (
        # a version bump that renames the file: one change, old → new
        _entry(
            Kind.CHECKPOINT,
            "Stable-diffusion/juggernautXL_v10.safetensors",
            "f",
            7 * GIB,
            _civitai(133005, 300000, "v10 | Lightning"),
        ),
        _entry(Kind.LORA, "Lora/detail.safetensors", "b", 40 << 20, _civitai(58390, 62833, "v1")),
        _entry(
            Kind.LORA,
            "Lora/sd15_only.safetensors",
            "1",
            20 << 20,
            _civitai(5, 6, "v1"),
            base=Family.SD1,
        ),
        _entry(
            Kind.VAE,
            "VAE/sdxl_vae.safetensors",
            "d",
            335 << 20,
            {
                "type": "hf",
                "repo": "madebyollin/sdxl-vae-fp16-fix",
                "path": "sdxl_vae.safetensors",
                "revision": "main",
                "commit": "207b116dae70ace3637169f1ddd2434b91b3a8cd",
            },
        ),
        # the same bytes under a new name: moved, nothing downloaded
        _entry(
            Kind.EMBEDDING,
            "embeddings/negative_xl.safetensors",
            "e",
            8 << 10,
            _civitai(7808, 9208, "v1"),
        ),
        _entry(
            Kind.HYPERNETWORK,
            "hypernetworks/anime.pt",
            "2",
            80 << 20,
            {"type": "url", "url": "https://example.org/anime.pt"},
            base=Family.OTHER,
        ),
    ),
)


@pytest.mark.parametrize(("fmt", "suffix"), [("text", "txt"), ("markdown", "md"), ("json", "json")])
def test_plan_against_a_base_lock_matches_golden(
    cli: Cli, tmp_path: Path, fmt: str, suffix: str
) -> None:
    BASE.write(tmp_path / "base.lock.json")
    HEAD.write(tmp_path / "manifests" / "models.lock.json")
    out = cli.run("plan", "--lock", "manifests/models.lock.json", "--base-lock", "base.lock.json",
                  "--format", fmt)  # fmt: skip
    golden = GOLDEN / f"plan.{suffix}"
    if os.environ.get("SDPROV_UPDATE_GOLDEN"):
        golden.write_text(out.stdout)
    assert out.stdout == golden.read_text()
    if fmt == "json":
        summary = json.loads(out.stdout)["summary"]
        assert summary["download_bytes"] == 7 * GIB + (20 << 20) + (80 << 20)


def test_plan_without_changes_and_for_a_new_manifest(cli: Cli, tmp_path: Path) -> None:
    HEAD.write(tmp_path / "manifests" / "models.lock.json")
    HEAD.write(tmp_path / "same.lock.json")
    same = cli.run("plan", "--lock", "manifests/models.lock.json", "--base-lock", "same.lock.json",
                   "--format", "markdown")  # fmt: skip
    assert "**no changes; 0 B to download; 6 unchanged**" in same.stdout
    assert "<details>" not in same.stdout
    (tmp_path / "empty.lock.json").write_bytes(b"")
    new = cli.run("plan", "--lock", "manifests/models.lock.json", "--base-lock", "empty.lock.json",
                  "--format", "json")  # fmt: skip
    assert json.loads(new.stdout)["summary"]["added"] == 6
    missing = cli.run(
        "plan", "--lock", "manifests/models.lock.json", "--base-lock", "nope.json", check=2
    )
    assert "pass an empty file" in missing.stderr


def test_plan_against_a_models_root_is_what_sync_does(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST)
    cli.run("lock")
    first = json.loads(cli.run("plan", "--models-root", "sd", "--format", "json").stdout)
    assert first["summary"]["added"] == 4 and first["summary"]["download_bytes"] > 0
    cli.run("sync", "--models-root", "sd")
    assert (
        "no changes; 0 B to download; 4 unchanged" in cli.run("plan", "--models-root", "sd").stdout
    )

    # Move the LoRA to its newer version (same file name) and drop the embedding.
    manifest.write_text(
        MANIFEST.replace("modelVersionId=135000", "modelVersionId=135867").replace(
            "embeddings:\n  - civitai: urn:air:sdxl:embedding:civitai:7808@9208\n", ""
        )
    )
    stale = cli.run("plan", "--models-root", "sd")
    assert "is stale" in stale.stderr
    cli.run("lock")
    civitai.clear_requests()
    plan = json.loads(cli.run("plan", "--models-root", "sd", "--format", "json").stdout)
    assert civitai.requests == []  # planning never touches the network
    changes = {c["path"]: c for c in plan["changes"] if c["change"] != "unchanged"}
    assert changes["Lora/add-detail-xl.safetensors"]["change"] == "changed"
    assert changes["embeddings/negative_xl.safetensors"]["change"] == "removed"
    assert changes["embeddings/negative_xl.safetensors"]["kind"] == "embedding"
    dry = cli.run("sync", "--models-root", "sd", "--dry-run")
    assert "Lora/add-detail-xl.safetensors" in dry.stdout + dry.stderr
