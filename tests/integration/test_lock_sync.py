from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import HF_TOKEN, TOKEN, Cli


def test_lock_then_sync_places_every_model_byte_exact(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    catalog = build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(MANIFEST)

    cli.run("lock")
    lock_text = (tmp_path / "manifests" / "models.lock.json").read_text()
    lock = json.loads(lock_text)
    by_path = {m["path"]: m for m in lock["models"]}
    assert sorted(by_path) == [
        "Lora/add-detail-xl.safetensors",
        "Stable-diffusion/juggernaut_xl_v9.safetensors",
        "VAE/sdxl_vae.safetensors",
        "embeddings/negative_xl.safetensors",
    ]
    assert [(m["kind"], m["path"]) for m in lock["models"]] == sorted(
        (m["kind"], m["path"]) for m in lock["models"]
    )
    ckpt = by_path["Stable-diffusion/juggernaut_xl_v9.safetensors"]
    assert ckpt["sha256"] == catalog.sha("juggernaut_v9.safetensors")
    assert ckpt["size"] == len(catalog.content("juggernaut_v9.safetensors"))
    assert ckpt["base"] == "sdxl"
    assert ckpt["source"]["version_id"] == 288982 and ckpt["source"]["file_id"] == 240840
    lora = by_path["Lora/add-detail-xl.safetensors"]
    assert lora["source"]["version_id"] == 135000  # the pasted URL's version, not the newest
    vae = by_path["VAE/sdxl_vae.safetensors"]
    assert vae["source"]["type"] == "hf" and len(vae["source"]["commit"]) == 40
    for secret in (TOKEN, HF_TOKEN, "X-Amz", "Signature"):
        assert secret not in lock_text

    # Locking again with nothing changed: byte-identical, no request at all.
    civitai.clear_requests()
    cli.run("lock")
    assert (tmp_path / "manifests" / "models.lock.json").read_text() == lock_text
    assert civitai.requests == []

    root = tmp_path / "sd" / "models"
    out = cli.run("sync", "--models-root", str(root), "--json")
    result = json.loads(out.stdout)
    assert result["ok"] and len(result["downloaded"]) == 4
    for path, entry in by_path.items():
        assert (root / path).stat().st_size == entry["size"]
    assert (root / "Stable-diffusion/juggernaut_xl_v9.safetensors").read_bytes() == (
        catalog.content("juggernaut_v9.safetensors")
    )
    storage = [r for r in civitai.requests if r.host == "storage"]
    assert storage and all("authorization" not in r.headers for r in storage)
    api_downloads = [r for r in civitai.requests if r.path.startswith("/api/download/")]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in api_downloads)
    assert all("token" not in r.query for r in civitai.requests)
    assert all("mozilla" not in r.headers.get("user-agent", "").lower() for r in civitai.requests)

    # Nothing changed: no request, and nothing is hashed (size + mtime are trusted). We prove
    # the latter by swapping a file's bytes behind sdprov's back, keeping size and mtime.
    civitai.clear_requests()
    hf.clear_requests()
    target = root / "embeddings/negative_xl.safetensors"
    stat = target.stat()
    target.write_bytes(b"\0" * stat.st_size)
    import os

    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    out = cli.run("sync", "--models-root", str(root), "--json")
    result = json.loads(out.stdout)
    assert result["downloaded"] == [] and len(result["kept"]) == 4
    assert civitai.requests == [] and hf.requests == []
    assert not list((root / ".sdprov" / "partial").iterdir())
