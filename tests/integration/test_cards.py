"""Model cards beside Civitai models: written after placement, tracked, removed, never a user's.

The golden card (tests/fixtures/cards/add_detail.json) is read here the way A1111 v1.10.1 reads
it: `extra_networks.get_user_metadata` json-loads `<stem>.json`; the LoRA editor
(`ui_edit_user_metadata.py`) takes "sd version" only if it names an `SdVersion` member, parses
"preferred weight" as a float, and appends "activation text" to `<lora:name:weight>`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion
from tests.fakes.civitai import FakeImage
from tests.fixtures.modelfiles import make_checkpoint, make_lora, make_vae
from tests.integration.conftest import Cli

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "cards" / "add_detail.json"
A1111_SD_VERSIONS = {"Unknown", "SD1", "SD2", "SDXL"}  # modules SdVersion, v1.10.1

MANIFEST = """\
checkpoints:
  - civitai: 600@601
    name: base_model
    vae: team_vae
vaes:
  - civitai: 700@701
    name: team_vae
loras:
  - civitai: 500@501
    name: add_detail
    weight: 0.8
    notes: Team default for portraits.
"""


def image(color: str, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, format=fmt)
    return out.getvalue()


def catalog(tmp: Path, civitai: CivitaiServer) -> None:
    make_lora(tmp / "src/lora.safetensors", "sdxl")
    make_checkpoint(tmp / "src/ckpt.safetensors", "sdxl")
    make_vae(tmp / "src/vae.safetensors")
    civitai.add(FakeModel(id=700, name="Team VAE", type="VAE", versions=[FakeVersion(
        id=701, name="v1", base_model="SDXL 1.0",
        files=[FakeFile(id=7011, name="vae.safetensors",
                        content=tmp / "src/vae.safetensors", primary=True)])]))  # fmt: skip
    civitai.add(FakeModel(id=500, name="Detail", type="LORA", versions=[FakeVersion(
        id=501, name="v1", base_model="SDXL 1.0", trained_words=["detailed", " intricate"],
        description="<p>Adds <b>fine</b> detail.</p><p>Use at 0.5&ndash;1.0.</p>",
        images=[FakeImage(id=9001, data=image("red", "WEBP"), ext="webp", nsfw_level=4),
                FakeImage(id=9002, data=image("blue", "JPEG"), ext="jpeg", nsfw_level=1)],
        files=[FakeFile(id=5011, name="add_detail.safetensors",
                        content=tmp / "src/lora.safetensors", primary=True)])]))  # fmt: skip
    civitai.add(FakeModel(id=600, name="Base", type="Checkpoint", versions=[FakeVersion(
        id=601, name="v1", base_model="SDXL 1.0",
        files=[FakeFile(id=6011, name="base.safetensors",
                        content=tmp / "src/ckpt.safetensors", primary=True)])]))  # fmt: skip


def a1111_reads(path: Path) -> dict[str, object]:
    meta: dict[str, object] = json.loads(path.read_text(encoding="utf8"))
    assert meta["sd version"] in A1111_SD_VERSIONS
    float(str(meta["preferred weight"]))
    return meta


def test_cards_are_written_tracked_and_removed(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    catalog(tmp_path, civitai)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST)
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    lora = next(m for m in lock["models"] if m["kind"] == "lora")
    assert lora["trained_words"] == ["detailed", " intricate"]
    assert lora["preview_url"].endswith("/9002.jpeg")  # the first SFW image, not the first one
    root = tmp_path / "models"
    out = cli.run("sync", "--models-root", str(root), "--json")
    cards = json.loads(out.stdout)["cards"]
    assert sorted(cards["written"]) == sorted([
        "Lora/add_detail.json", "Lora/add_detail.preview.png", "Lora/add_detail.civitai.info",
        "Stable-diffusion/base_model.json", "Stable-diffusion/base_model.civitai.info",
        "VAE/team_vae.json", "VAE/team_vae.civitai.info",
    ])  # fmt: skip
    assert a1111_reads(root / "Lora/add_detail.json") == json.loads(GOLDEN.read_text())
    assert (root / "Lora/add_detail.json").read_bytes() == GOLDEN.read_bytes().rstrip(b"\n")
    with Image.open(root / "Lora/add_detail.preview.png") as png:
        assert png.format == "PNG"
        red, _green, blue = png.convert("RGB").getpixel((4, 4))  # type: ignore[misc]
        assert blue > 200 and red < 60  # the SFW (blue, JPEG) image, converted
    info = json.loads((root / "Lora/add_detail.civitai.info").read_text())
    assert (info["id"], info["modelId"], info["model"]["type"]) == (501, 500, "LORA")
    ckpt = json.loads((root / "Stable-diffusion/base_model.json").read_text())
    assert set(ckpt) == {"description", "notes", "vae"}
    assert ckpt["vae"] == "team_vae.safetensors"  # WebUI's name for the VAE entry
    # A second sync has nothing to write; status reports every card as ours.
    again = json.loads(cli.run("sync", "--models-root", str(root), "--json").stdout)["cards"]
    assert again["written"] == [] and again["left_alone"] == {}
    status = json.loads(cli.run("status", "--models-root", str(root), "--json").stdout)
    lora_row = next(m for m in status["models"] if m["path"] == "Lora/add_detail.safetensors")
    assert set(lora_row["cards"].values()) == {"ok"}

    # The user edits the LoRA's card; the manifest's weight changes: the edit is kept.
    edited = root / "Lora/add_detail.json"
    edited.write_text(edited.read_text().replace("intricate", "intricate, my words"))
    manifest.write_text(MANIFEST.replace("weight: 0.8", "weight: 0.6"))
    cli.run("lock")
    out = cli.run("sync", "--models-root", str(root), "--json")
    cards = json.loads(out.stdout)["cards"]
    assert cards["left_alone"] == {"Lora/add_detail.json": "changed since sdprov wrote it"}
    assert "my words" in edited.read_text()
    assert "model card changed since sdprov wrote it" in out.stderr
    status = cli.run("status", "--models-root", str(root))
    assert "changed since sdprov wrote it" in status.stdout

    # The LoRA leaves the manifest: its cards go with it, except the user's edit.
    manifest.write_text(MANIFEST.split("loras:")[0])
    cli.run("lock")
    cards = json.loads(cli.run("sync", "--models-root", str(root), "--json").stdout)["cards"]
    assert sorted(cards["removed"]) == [
        "Lora/add_detail.civitai.info",
        "Lora/add_detail.preview.png",
    ]
    assert "Lora/add_detail.json" in cards["left_alone"]
    assert edited.exists() and not (root / "Lora/add_detail.safetensors").exists()
    state = json.loads((root / ".sdprov/state.json").read_text())
    assert not any(p.startswith("Lora/") for p in state.get("sidecars", {}))


def test_a_card_sdprov_did_not_write_is_never_overwritten(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    catalog(tmp_path, civitai)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    root = tmp_path / "models"
    (root / "Lora").mkdir(parents=True)
    mine = root / "Lora/add_detail.preview.png"
    mine.write_bytes(image("green", "PNG"))
    before = mine.read_bytes()
    out = cli.run("sync", "--models-root", str(root), "--json")
    cards = json.loads(out.stdout)["cards"]
    assert cards["left_alone"] == {"Lora/add_detail.preview.png": "not written by sdprov"}
    assert mine.read_bytes() == before
    assert "Lora/add_detail.json" in cards["written"]


def test_preview_none_and_no_sfw_image(cli: Cli, civitai: CivitaiServer, tmp_path: Path) -> None:
    catalog(tmp_path, civitai)
    manifest = MANIFEST.replace("    weight: 0.8\n", "    preview: none\n")
    (tmp_path / "manifests" / "models.yaml").write_text(manifest)
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    assert all("preview_url" not in m for m in lock["models"])
    root = tmp_path / "models"
    cli.run("sync", "--models-root", str(root))
    assert not (root / "Lora/add_detail.preview.png").exists()
    assert json.loads((root / "Lora/add_detail.json").read_text())["preferred weight"] == 0


def test_card_keys_on_the_wrong_kind_are_manifest_errors(cli: Cli, tmp_path: Path) -> None:
    bad = "checkpoints:\n  - civitai: 600@601\n    weight: 0.5\n"
    (tmp_path / "manifests" / "models.yaml").write_text(bad)
    out = cli.run("lock", check=2)
    assert "models.yaml:3:13: error" in out.stderr  # the value's position
    assert "checkpoints[0].weight: only LoRA cards have a preferred weight" in out.stderr


def test_a_card_that_cannot_be_made_is_a_warning_not_a_failed_sync(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    catalog(tmp_path, civitai)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    # The image is gone from the CDN by sync time (a moderated image, an expired link).
    lora_version = civitai._find_version(501)
    assert lora_version is not None
    lora_version[1].images.clear()
    root = tmp_path / "models"
    out = cli.run("sync", "--models-root", str(root), "--json")  # exit 0: models are in place
    cards = json.loads(out.stdout)["cards"]
    assert "preview answered HTTP 404" in cards["failures"]["Lora/add_detail.safetensors"]
    assert (root / "Lora/add_detail.safetensors").exists()
    assert (root / "Lora/add_detail.json").exists()  # the other cards are still written
    assert not (root / "Lora/add_detail.preview.png").exists()
    assert "no model card" in out.stderr
    # Once the image is back, the next sync writes the missing preview only.
    lora_version[1].images.append(FakeImage(id=9002, data=image("blue", "JPEG")))
    again = json.loads(cli.run("sync", "--models-root", str(root), "--json").stdout)["cards"]
    assert again["written"] == ["Lora/add_detail.preview.png"]
