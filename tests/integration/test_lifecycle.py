"""The GitOps loop: edit the manifest, re-lock, sync exactly what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import CivitaiServer, FakeFile, FakeVersion, HfServer
from tests.fixtures.modelfiles import make_lora
from tests.integration.catalog import MANIFEST, Catalog, build
from tests.integration.conftest import Cli

LORA_V1 = "Lora/add-detail-xl.safetensors"


@pytest.fixture
def synced(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> tuple[Path, Catalog]:
    catalog = build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    cli.run("sync", "--models-root", str(root))
    civitai.clear_requests()
    hf.clear_requests()
    return root, catalog


def _lock(tmp_path: Path) -> dict[str, dict[str, object]]:
    raw = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    return {m["path"]: m for m in raw["models"]}


def test_manifest_edit_changes_exactly_the_changed_models(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path, synced: tuple[Path, Catalog]
) -> None:
    root, catalog = synced
    user_file = root / "Lora" / "my_own_lora.safetensors"
    user_file.write_bytes(b"mine")
    before = _lock(tmp_path)
    manifest = tmp_path / "manifests" / "models.yaml"
    # Swap the LoRA to its newer version under a new name; everything else stays.
    manifest.write_text(
        MANIFEST.replace(
            "  - civitai: https://civitai.com/models/122359?modelVersionId=135000\n",
            "  - civitai: 122359@135867\n    name: add_detail_v2\n",
        )
    )
    stale = cli.run("sync", "--models-root", str(root), check=2)
    assert "sdprov lock" in stale.stderr
    cli.run("lock", "--check", check=1)
    cli.run("lock")
    after = _lock(tmp_path)
    api_paths = {r.path for r in civitai.requests if r.host == "api"}
    assert api_paths == {
        "/api/v1/model-versions/135867",
        "/api/download/models/135867",  # the one-byte size probe
    }
    assert hf.requests == []
    assert set(after) - set(before) == {"Lora/add_detail_v2.safetensors"}
    assert set(before) - set(after) == {LORA_V1}
    for path in set(before) & set(after):
        assert before[path] == after[path]
    cli.run("lock", "--check")

    civitai.clear_requests()
    out = json.loads(cli.run("sync", "--models-root", str(root), "--json").stdout)
    assert out["downloaded"] == ["Lora/add_detail_v2.safetensors"]
    assert out["removed"] == [LORA_V1]
    assert len(out["kept"]) == 3
    assert not (root / LORA_V1).exists()
    assert user_file.read_bytes() == b"mine"  # never touched: sdprov did not place it
    assert (root / "Lora/add_detail_v2.safetensors").read_bytes() == catalog.content(
        "detail_tweaker_xl_v2.safetensors"
    )
    storage = [r for r in civitai.requests if r.host == "storage"]
    assert len(storage) == 1


def test_rename_moves_the_file_instead_of_downloading(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path, synced: tuple[Path, Catalog]
) -> None:
    root, _ = synced
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST.replace("name: juggernaut_xl_v9", "name: juggernaut"))
    cli.run("lock")
    civitai.clear_requests()
    out = json.loads(cli.run("sync", "--models-root", str(root), "--json").stdout)
    assert out["moved"] == ["Stable-diffusion/juggernaut.safetensors"]
    assert out["downloaded"] == [] and out["removed"] == []
    assert not [r for r in civitai.requests if r.host == "storage"]
    assert not (root / "Stable-diffusion/juggernaut_xl_v9.safetensors").exists()


def test_existing_identical_file_is_adopted_without_download(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    catalog = build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    target = root / "Stable-diffusion" / "juggernaut_xl_v9.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(catalog.content("juggernaut_v9.safetensors"))
    civitai.clear_requests()
    out = json.loads(cli.run("sync", "--models-root", str(root), "--json").stdout)
    assert out["adopted"] == ["Stable-diffusion/juggernaut_xl_v9.safetensors"]
    storage = [r.path for r in civitai.requests if r.host == "storage"]
    assert len(storage) == 2  # the LoRA and the embedding; the checkpoint was not fetched
    assert not [p for p in storage if "/133005/" in p]


def test_foreign_file_in_the_way_is_never_touched(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "sd" / "models"
    target = root / "Stable-diffusion" / "juggernaut_xl_v9.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"somebody else's model")
    out = cli.run("sync", "--models-root", str(root), check=1)
    assert "a file sdprov did not place is there" in out.stderr
    assert target.read_bytes() == b"somebody else's model"
    status = json.loads(cli.run("status", "--models-root", str(root), "--json").stdout)
    rows = {m["path"]: m for m in status["models"]}
    assert rows["Stable-diffusion/juggernaut_xl_v9.safetensors"]["status"] == "modified"
    assert rows["Lora/add-detail-xl.safetensors"]["status"] == "ok"
    cli.run("status", "--models-root", str(root), "--check", check=1)


def test_status_reports_missing_modified_extra(
    cli: Cli, tmp_path: Path, synced: tuple[Path, Catalog]
) -> None:
    root, _ = synced
    cli.run("status", "--models-root", str(root), "--check")
    (root / "VAE/sdxl_vae.safetensors").unlink()
    with (root / "embeddings/negative_xl.safetensors").open("ab") as fh:
        fh.write(b"x")
    (root / "Lora/extra.safetensors").write_bytes(b"x")
    out = cli.run("status", "--models-root", str(root), "--check", "--json", check=1)
    rows = {m["path"]: m["status"] for m in json.loads(out.stdout)["models"]}
    assert rows["VAE/sdxl_vae.safetensors"] == "missing"
    assert rows["embeddings/negative_xl.safetensors"] == "modified"
    assert rows["Lora/extra.safetensors"] == "extra"
    assert rows["Stable-diffusion/juggernaut_xl_v9.safetensors"] == "ok"
    # A sync repairs what sdprov owns; the extra file is the user's and stays.
    cli.run("sync", "--models-root", str(root))
    cli.run("status", "--models-root", str(root), "--check", check=1)
    cli.run("status", "--models-root", str(root), "--check", "--allow-extra")


def test_upgrade_moves_unpinned_entries_only(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(
        "loras:\n  - civitai: 122359\n    name: tweaker\n  - civitai: 122359@135000\n"
    )
    cli.run("lock")
    first = _lock(tmp_path)
    assert first["Lora/tweaker.safetensors"]["source"]["version_id"] == 135867  # type: ignore[index]
    src = tmp_path / "v3.safetensors"
    make_lora(src, "sdxl", variant="LoHa")
    model = next(m for m in civitai._snapshot() if m.id == 122359)
    model.versions.insert(
        0,
        FakeVersion(
            id=140000,
            name="v3",
            base_model="SDXL 1.0",
            files=[
                FakeFile(id=160000, name="add-detail-xl.safetensors", content=src, primary=True)
            ],
        ),
    )
    cli.run("lock")
    assert _lock(tmp_path) == first  # without --upgrade nothing moves
    cli.run("lock", "--upgrade", "nonexistent", check=2)
    cli.run("lock", "--upgrade", "tweaker")
    upgraded = _lock(tmp_path)
    assert upgraded["Lora/tweaker.safetensors"]["source"]["version_id"] == 140000  # type: ignore[index]
    assert upgraded["Lora/add-detail-xl.safetensors"] == first["Lora/add-detail-xl.safetensors"]


def test_lock_check_for_ci(cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path) -> None:
    build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST)
    missing = cli.run("lock", "--check", check=1)
    assert "missing" in missing.stderr
    cli.run("lock")
    cli.run("lock", "--check")
    manifest.write_text(MANIFEST + "# a comment\n")
    cli.run("lock", "--check", check=1)
    civitai.clear_requests()
    cli.run("lock")  # only the digest changes: no entry is re-resolved
    assert civitai.requests == []
    cli.run("lock", "--check")


def test_two_loras_resolving_to_one_file_name_fail_lock(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    # Both versions of model 122359 ship a file called add-detail-xl.safetensors.
    (tmp_path / "manifests" / "models.yaml").write_text(
        "loras:\n  - civitai: 122359@135000\n  - civitai: 122359@135867\n    subfolder: v2\n"
    )
    out = cli.run("lock", check=2)
    assert out.stderr.startswith(
        "manifests/models.yaml:3:5: error: loras[1]: resolves to Lora/v2/add-detail-xl.safetensors"
    )
    assert "WebUI names loras by file name alone" in out.stderr
    assert not (tmp_path / "manifests" / "models.lock.json").exists()
