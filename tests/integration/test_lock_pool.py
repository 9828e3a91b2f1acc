"""`sdprov lock` over one pool for the run: what two entries share is asked once, and a 429
from the API mid-run only slows the lock down."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion
from tests.fixtures.modelfiles import make_lora
from tests.integration.conftest import TOKEN, Cli


def _loras(civitai: CivitaiServer, tmp_path: Path, count: int) -> None:
    for i in range(1, count + 1):
        content = make_lora(tmp_path / f"l{i}.safetensors", "sdxl")
        fake = FakeFile(id=i, name=f"l{i}.safetensors", content=content, primary=True)
        version = FakeVersion(id=i * 10, name="v1", base_model="SDXL 1.0", files=[fake])
        civitai.add(FakeModel(id=i, name=f"L{i}", type="LORA", versions=[version]))


def test_one_file_under_two_names_costs_one_version_answer_and_one_download_peek(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    _loras(civitai, tmp_path, 1)
    (tmp_path / "manifests" / "models.yaml").write_text(
        "loras:\n  - civitai: 1@10\n    name: first\n  - civitai: 1@10\n    name: second\n"
    )
    cli.run("lock")
    lock = json.loads((tmp_path / "manifests" / "models.lock.json").read_text())
    assert [m["path"] for m in lock["models"]] == [
        "Lora/first.safetensors",
        "Lora/second.safetensors",
    ]
    assert len({m["sha256"] for m in lock["models"]}) == 1
    paths = [r.path for r in civitai.requests if r.host == "api"]
    assert paths.count("/api/v1/model-versions/10") == 1
    assert paths.count("/api/download/models/10") == 1
    # The pool follows the 307 like every other path: the token to the API, never to storage.
    storage = [r for r in civitai.requests if r.host == "storage"]
    assert len(storage) == 1 and "authorization" not in storage[0].headers
    api = [r for r in civitai.requests if r.host == "api"]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in api)


def test_a_429_with_retry_after_mid_lock_is_waited_out_and_the_lock_completes(
    cli: Cli, civitai: CivitaiServer, tmp_path: Path
) -> None:
    _loras(civitai, tmp_path, 12)
    lines = "".join(f"  - civitai: {i}@{i * 10}\n" for i in range(1, 13))
    (tmp_path / "manifests" / "models.yaml").write_text("loras:\n" + lines)
    civitai.faults.fail("api", 429, times=2, retry_after="1", path_contains="/model-versions/")
    out = cli.run("lock", "--jobs", "6", "--json")
    assert len(json.loads(out.stdout)["resolved"]) == 12
    versions = [r for r in civitai.requests if r.path.startswith("/api/v1/model-versions/")]
    assert len(versions) == 12 + 2  # the two refused asked once more, nothing else repeated
