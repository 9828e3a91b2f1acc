"""`sdprov add` / `remove` against the loopback Civitai and Hugging Face servers: the entry
lands in the right section, the manifest keeps its comments and layout, the lock follows,
and a failure leaves both files as they were."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.fakes import CivitaiServer, HfServer
from tests.fixtures.modelfiles import make_vae
from tests.integration.catalog import build
from tests.integration.conftest import Cli

TEAM = """\
# Team models (reviewed in PRs)
checkpoints:
    - civitai: 133005@288982   # Juggernaut XL v9
      name: juggernaut_xl_v9

embeddings: [{civitai: "urn:air:sdxl:embedding:civitai:7808@9208"}]   # negatives
"""


def _lock(tmp_path: Path) -> dict[str, dict[str, object]]:
    raw = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    return {m["name"]: m for m in raw["models"]}


def test_add_places_entries_by_kind_keeping_the_file(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(TEAM)
    cli.run("lock")

    # A pasted Civitai URL: Civitai says LORA, so it goes under `loras:` (a new section).
    out = cli.run("add", "https://civitai.com/models/122359?modelVersionId=135000", "--json")
    result = json.loads(out.stdout)
    assert result["section"] == "loras"
    assert manifest.read_text() == TEAM + (
        "\nloras:\n    - civitai: https://civitai.com/models/122359?modelVersionId=135000\n"
    )
    assert _lock(tmp_path)["add-detail-xl"]["source"]["version_id"] == 135000  # type: ignore[index]

    # A Hugging Face file with no --kind: its own header says VAE.
    make_vae(tmp_path / "vae.safetensors")
    hf.add_file("org/vae", "fixed_vae.safetensors", tmp_path / "vae.safetensors")
    cli.run("add", "org/vae/fixed_vae.safetensors", "--name", "team_vae")
    text = manifest.read_text()
    assert text.startswith(TEAM)  # every earlier byte kept
    assert text.endswith("vaes:\n    - hf: org/vae/fixed_vae.safetensors\n      name: team_vae\n")
    assert _lock(tmp_path)["team_vae"]["kind"] == "vae"
    cli.run("lock", "--check")

    # Any other URL with its sha256: the header says VAE again; `sha256:` goes in the entry.
    plain_url = hf.resolve_url("org/vae", "fixed_vae.safetensors")
    sha = hashlib.sha256((tmp_path / "vae.safetensors").read_bytes()).hexdigest()
    cli.run("add", plain_url, "--sha256", sha.upper(), "--name", "vae_by_url")
    assert manifest.read_text().endswith(
        f"    - url: {plain_url}\n      name: vae_by_url\n      sha256: {sha}\n"
    )
    assert _lock(tmp_path)["vae_by_url"]["source"] == {"type": "url", "url": plain_url}

    # A model id whose newest version is added to the existing flow section.
    civitai.clear_requests()
    cli.run("add", "7808", "--kind", "embedding", "--name", "neg2")
    assert (
        '{civitai: "urn:air:sdxl:embedding:civitai:7808@9208"}, {civitai: 7808, name: neg2}]'
        in (manifest.read_text())
    )
    assert _lock(tmp_path)["neg2"]["sha256"] == _lock(tmp_path)["negative_xl"]["sha256"]


def test_failed_add_writes_nothing(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(TEAM)
    cli.run("lock")
    before = (manifest.read_text(), (tmp_path / "manifests" / "models.lock.json").read_text())

    missing = cli.run("add", "999999@1", check=1)
    assert "not found on Civitai" in missing.stderr
    plain = cli.run("add", "https://example.org/x.safetensors", "--kind", "lora", check=2)
    assert "--sha256" in plain.stderr
    # The same embedding again clashes with the existing one's file name: a manifest error
    # at the new entry's line (the proposed text), and nothing written.
    clash = cli.run("add", "7808@9208", "--kind", "embedding", check=2)
    assert "models.yaml:6:" in clash.stderr and "collides" in clash.stderr
    after = (manifest.read_text(), (tmp_path / "manifests" / "models.lock.json").read_text())
    assert after == before


def test_remove_by_name_or_locked_name_without_network(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    manifest = tmp_path / "manifests" / "models.yaml"
    manifest.write_text(
        TEAM + "loras:\n    # detail\n    - civitai: 122359@135000\n    - civitai: 122359@135867\n"
        "      name: detail_v2   # LoCon\n"
    )
    cli.run("lock")
    civitai.clear_requests()

    unknown = cli.run("remove", "nope", check=2)
    assert "no entry named nope" in unknown.stderr and "detail_v2" in unknown.stderr

    # `add-detail-xl` has no `name:`: the lock knows it by its file stem.
    out = cli.run("remove", "add-detail-xl", "negative_xl", "--json")
    assert json.loads(out.stdout)["removed"] == ["add-detail-xl", "negative_xl"]
    assert manifest.read_text() == (
        "# Team models (reviewed in PRs)\ncheckpoints:\n"
        "    - civitai: 133005@288982   # Juggernaut XL v9\n      name: juggernaut_xl_v9\n\n"
        "embeddings: []   # negatives\n"
        "loras:\n    - civitai: 122359@135867\n      name: detail_v2   # LoCon\n"
    )
    assert sorted(_lock(tmp_path)) == ["detail_v2", "juggernaut_xl_v9"]
    assert civitai.requests == []  # the other entries were kept, not re-resolved
    cli.run("lock", "--check")
