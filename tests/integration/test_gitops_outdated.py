"""`sdprov outdated` against the loopback Civitai and Hugging Face servers: newer versions
with dates and early access, the same sha256 under a new version is no update, one failing
entry does not stop the report, 429 + Retry-After is retried, answers are cached on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.integration.catalog import build
from tests.integration.conftest import Cli

MANIFEST = """\
checkpoints:
  - civitai: 133005            # unpinned: `lock --upgrade` moves it
loras:
  - civitai: 122359@135000     # pinned to v1
embeddings:
  - civitai: 7808
vaes:
  - hf: madebyollin/sdxl-vae-fp16-fix/sdxl_vae.safetensors
"""


def _publish_new_versions(civitai: CivitaiServer, hf: HfServer, files: Path) -> None:
    juggernaut = FakeModel(
        id=133005, name="Juggernaut XL", type="Checkpoint",
        versions=[
            FakeVersion(id=300000, name="v10", base_model="SDXL 1.0",
                        published_at="2026-11-20T10:00:00.000Z",
                        early_access_deadline="2026-12-04T10:00:00.000Z",
                        files=[FakeFile(id=300001, name="juggernautXL_v10.safetensors",
                                        content=b"v10 bytes" * 100, primary=True)]),
            FakeVersion(id=288982, name="v9", base_model="SDXL 1.0",
                        files=[FakeFile(id=240840, name="juggernautXL_v9.safetensors",
                                        content=files / "juggernaut_v9.safetensors", primary=True)]),
        ],
    )  # fmt: skip
    negative = FakeModel(
        id=7808, name="Negative XL", type="TextualInversion",
        versions=[
            # A re-upload of the very same file as "v1.1": not an update.
            FakeVersion(id=9400, name="v1.1", base_model="SDXL 1.0", trained_words=["negative_xl"],
                        published_at="2026-11-01T00:00:00.000Z",
                        files=[FakeFile(id=9401, name="negative_xl.safetensors",
                                        content=files / "negative_xl.safetensors", primary=True)]),
            FakeVersion(id=9208, name="v1", base_model="SDXL 1.0", trained_words=["negative_xl"],
                        files=[FakeFile(id=9300, name="negative_xl.safetensors",
                                        content=files / "negative_xl.safetensors", primary=True)]),
        ],
    )  # fmt: skip
    civitai.add(juggernaut)
    civitai.add(negative)
    # A new commit on main that does not touch the VAE's bytes.
    hf.add_file("madebyollin/sdxl-vae-fp16-fix", "README.md", b"# fp16 fix\n", lfs=False)


def _rows(out: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in json.loads(out)["models"]}


def test_outdated_reports_real_updates_only(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    catalog = build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    _publish_new_versions(civitai, hf, catalog.files)

    rows = _rows(cli.run("outdated", "--json").stdout)
    ckpt = rows["juggernautXL_v9"]
    assert ckpt["status"] == "update" and ckpt["pinned_in_manifest"] is False
    assert ckpt["latest"] == {
        "version": "v10 (133005@300000)",
        "published_at": "2026-11-20T10:00:00.000Z",
        "early_access_ends_at": "2026-12-04T10:00:00.000Z",
        "same_bytes": False,
    }
    assert ckpt["hint"] == "sdprov lock --upgrade juggernautXL_v9"
    lora = rows["add-detail-xl"]
    assert lora["status"] == "update" and lora["latest"]["version"] == "v2 (122359@135867)"
    assert lora["hint"] == "pinned in the manifest: change its version there"
    neg = rows["negative_xl"]
    assert neg["status"] == "up-to-date" and neg["latest"] is None
    assert neg["newer"][0]["version"] == "v1.1 (7808@9400)" and neg["newer"][0]["same_bytes"]
    vae = rows["sdxl_vae"]
    assert vae["status"] == "up-to-date" and vae["newer"][0]["same_bytes"] is True

    # Cached: the same question again asks nothing; --no-cache asks again.
    civitai.clear_requests()
    hf.clear_requests()
    table = cli.run("outdated").stdout
    assert civitai.requests == [] and hf.requests == []
    assert "early access until 2026-12-04" in table and "(same file: v1.1 (7808@9400))" in table
    cli.run("outdated", "--no-cache")
    assert civitai.requests and hf.requests

    # New bytes for the VAE on its branch: now a real update, named by the new commit.
    commit = hf.add_file("madebyollin/sdxl-vae-fp16-fix", "sdxl_vae.safetensors", b"new vae" * 9)
    vae = _rows(cli.run("outdated", "--no-cache", "--json").stdout)["sdxl_vae"]
    assert vae["status"] == "update"
    assert vae["latest"]["version"] == f"madebyollin/sdxl-vae-fp16-fix@{commit[:12]}"
    assert vae["hint"] == "sdprov lock --upgrade sdxl_vae"


def test_one_failing_entry_never_stops_the_report(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    (tmp_path / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    civitai.clear_requests()
    civitai.faults.fail("api", 404, times=50, path_contains="/api/v1/models/122359")
    civitai.faults.fail("api", 429, retry_after="1", path_contains="/api/v1/models/133005")
    out = cli.run("outdated", "--json", check=1)
    rows = _rows(out.stdout)
    assert rows["add-detail-xl"]["status"] == "error"
    assert "not found on Civitai" in rows["add-detail-xl"]["error"]
    assert "not found on Civitai" in out.stderr
    assert rows["juggernautXL_v9"]["status"] == "up-to-date"  # after honouring Retry-After
    asked = [r for r in civitai.requests if r.path == "/api/v1/models/133005"]
    assert len(asked) == 2
    assert {rows[n]["status"] for n in ("negative_xl", "sdxl_vae")} == {"up-to-date"}
