"""`sdprov import` on a ComfyUI workflow JSON and on A1111 PNGs made by the tests, resolved
against the loopback Civitai (by-hash, version ids) and Hugging Face: identified models are
added and locked, the rest listed as unresolved (exit 1), nothing guessed."""

from __future__ import annotations

import json
from pathlib import Path

from provision.importers.a1111 import parse_params, png_texts
from tests.fakes import CivitaiServer, HfServer
from tests.fixtures.png import write_png
from tests.integration.catalog import build
from tests.integration.conftest import Cli


def _workflow(sha256_ckpt: str) -> dict[str, object]:
    return {
        "last_node_id": 13,
        "nodes": [
            {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["juggernautXL_v9.safetensors"]},
            {"id": 10, "type": "LoraLoader", "widgets_values": ["add-detail-xl.safetensors", 1, 1],
             "properties": {"models": [{"name": "add-detail-xl.safetensors", "directory": "loras",
                                        "url": "https://civitai.com/api/download/models/135000"}]}},
            {"id": 11, "type": "VAELoader", "widgets_values": ["sdxl_vae.safetensors"]},
            {"id": 12, "type": "UpscaleModelLoader", "widgets_values": ["4x_ultrasharp.pth"]},
            {"id": 13, "type": "LoraLoader", "widgets_values": ["style/local_only.safetensors", 1, 1]},
            {"id": 14, "type": "KSampler", "widgets_values": [1, "fixed", 20]},
        ],
        "models": [
            {"name": "juggernautXL_v9.safetensors", "url": "https://example.org/jx.safetensors",
             "hash": sha256_ckpt, "hash_type": "SHA256", "directory": "checkpoints"},
            {"name": "gligen_sd14.safetensors", "directory": "gligen"},
            {"name": "sdxl_vae.safetensors", "directory": "vae",
             "url": "https://huggingface.co/madebyollin/sdxl-vae-fp16-fix/resolve/main/sdxl_vae.safetensors"},
        ],
    }  # fmt: skip


def test_import_comfyui_workflow(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    catalog = build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text("# imported from our best workflow\n")
    flow = tmp_path / "workflow.json"
    flow.write_text(json.dumps(_workflow(catalog.sha("juggernaut_v9.safetensors").upper())))

    dry = cli.run("import", "workflow.json", "--dry-run", check=1)
    assert "would add to checkpoints" in dry.stderr
    assert manifest.read_text() == "# imported from our best workflow\n"

    out = cli.run("import", "workflow.json", "--json", check=1)
    result = json.loads(out.stdout)
    assert [(a["section"], a["entry"]) for a in result["added"]] == [
        ("checkpoints", {"civitai": "133005@288982"}),  # by-hash, not the URL
        ("vaes", {"hf": "madebyollin/sdxl-vae-fp16-fix/sdxl_vae.safetensors"}),
        ("loras", {"civitai": "122359@135000"}),  # the node's Civitai URL
    ]
    reasons = {u["from"]: u["reason"] for u in result["unresolved"]}
    assert reasons == {
        "workflow.json: models 'gligen_sd14'":
            "ComfyUI folder 'gligen' has no manifest section in this sdprov",
        "workflow.json: UpscaleModelLoader #12 '4x_ultrasharp'":
            "only a file name (no hash, URL or Civitai id says which file it is); find it and `sdprov add` it",
        "workflow.json: LoraLoader #13 'local_only'":
            "only a file name (no hash, URL or Civitai id says which file it is); find it and `sdprov add` it",
    }  # fmt: skip
    assert manifest.read_text().startswith("# imported from our best workflow\n\ncheckpoints:\n")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    assert sorted(m["path"] for m in lock["models"]) == [
        "Lora/add-detail-xl.safetensors",
        "Stable-diffusion/juggernautXL_v9.safetensors",
        "VAE/sdxl_vae.safetensors",
    ]
    cli.run("lock", "--check")

    again = json.loads(cli.run("import", "workflow.json", "--json", check=1).stdout)
    assert again["added"] == [] and len(again["already_locked"]) == 3 and not again["written"]


def test_import_a1111_png_infotext(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    catalog = build(tmp_path, civitai, hf)
    autov2 = {n: catalog.sha(n)[:10] for n in ("juggernaut_v9.safetensors",
              "detail_tweaker_xl.safetensors", "negative_xl.safetensors")}  # fmt: skip
    resources = [{"type": "lora", "weight": 0.6, "modelVersionId": 135867,
                  "modelName": "Detail Tweaker XL", "modelVersionName": "v2"}]  # fmt: skip
    infotext = (
        "a castle at dusk, <lora:detail_tweak:0.8>, <lora:mystery:1>\n"
        "Negative prompt: negative_xl, blurry\n"
        f"Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, Size: 1024x1024, "
        f"Model hash: {autov2['juggernaut_v9.safetensors']}, Model: juggernaut_xl_v9, "
        f'Lora hashes: "detail_tweak: {autov2["detail_tweaker_xl.safetensors"]}, '
        f'gone: 0123456789ab", TI hashes: "negative_xl: {autov2["negative_xl.safetensors"]}", '
        f"Civitai resources: {json.dumps(resources)}, Version: v1.10.1"
    )
    png = write_png(tmp_path / "castle.png", {"parameters": infotext}, itxt=True)
    assert parse_params(png_texts(png.read_bytes(), "castle.png")["parameters"])["Model"] == (
        "juggernaut_xl_v9"
    )

    out = cli.run("import", "castle.png", "--json", check=1)
    result = json.loads(out.stdout)
    assert [(a["section"], a["entry"]) for a in result["added"]] == [
        ("checkpoints", {"civitai": "133005@288982", "name": "juggernaut_xl_v9"}),
        ("loras", {"civitai": "122359@135000", "name": "detail_tweak"}),  # prompts say so
        ("embeddings", {"civitai": "7808@9208"}),
        ("loras", {"civitai": "122359@135867"}),  # Civitai resources: a version id
    ]
    assert {u["from"]: u["reason"] for u in result["unresolved"]} == {
        "castle.png: Lora hashes 'gone'": "Civitai does not know it (not found)",
        "castle.png: prompt 'mystery'":
            "only a file name (no hash, URL or Civitai id says which file it is); find it and `sdprov add` it",
    }  # fmt: skip
    by_hash = [r for r in civitai.requests if "/by-hash/" in r.path]
    assert len(by_hash) == 4
    names = sorted(
        m["name"]
        for m in json.loads((tmp_path / "manifests" / "models.lock.json").read_text())["models"]
    )
    assert names == ["add-detail-xl", "detail_tweak", "juggernaut_xl_v9", "negative_xl"]


def test_import_refuses_what_it_cannot_read(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"nodes": [\n  oops]}')
    assert "bad.json:2:3: not valid JSON" in cli.run("import", "bad.json", check=2).stderr
    write_png(tmp_path / "plain.png", {"Software": "GIMP"})
    assert "no generation parameters" in cli.run("import", "plain.png", check=2).stderr
    assert "no such file" in cli.run("import", "nope.png", check=2).stderr


def test_import_hashes_files_named_only_by_a_loader(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    catalog = build(tmp_path, civitai, hf)
    flow = {"nodes": [
        {"id": 1, "type": "LoraLoader", "widgets_values": ["style/local_only.safetensors", 1, 1]},
        {"id": 2, "type": "LoraLoader", "widgets_values": ["homemade.safetensors", 1, 1]},
        {"id": 3, "type": "VAELoader", "widgets_values": ["nowhere.safetensors"]},
    ]}  # fmt: skip
    (tmp_path / "flow.json").write_text(json.dumps(flow))
    root = tmp_path / "ComfyUI" / "models"
    (root / "loras" / "style").mkdir(parents=True)
    (root / "loras" / "style" / "local_only.safetensors").write_bytes(
        catalog.content("detail_tweaker_xl_v2.safetensors")
    )
    (root / "loras" / "homemade.safetensors").write_bytes(b"trained it myself")

    result = json.loads(
        cli.run("import", "flow.json", "--models-root", str(root), "--json", check=1).stdout
    )
    assert [(a["section"], a["entry"]) for a in result["added"]] == [
        ("loras", {"civitai": "122359@135867", "name": "local_only"}),
    ]
    reasons = {u["from"]: u["reason"] for u in result["unresolved"]}
    assert reasons == {
        "flow.json: LoraLoader #2 'homemade'": "Civitai does not know it (not found)",
        "flow.json: VAELoader #3 'nowhere'":
            "only a file name (no hash, URL or Civitai id says which file it is); find it and `sdprov add` it",
    }  # fmt: skip
