"""A team base plus per-environment manifests: each environment locks base + its own
entries, `lock --all` handles every manifest the stacks select, an edit to the base makes
every environment stale, and entries are removed where they are defined."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import build
from tests.integration.conftest import Cli

BASE = "# shared by every environment\ncheckpoints:\n  - civitai: 133005@288982\n"
DEV = "include: [base.yaml]\nloras:\n  - civitai: 122359@135000   # try the new LoRA\n"
PROD = "include:\n  - base.yaml\nembeddings:\n  - civitai: 7808@9208\n"


def _repo(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: team\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    for env in ("dev", "prod"):
        (tmp_path / "stacks" / f"Pulumi.{env}.yaml").write_text(
            f"config:\n  sdprov:manifest: manifests/{env}.yaml\n"
        )
    (tmp_path / "manifests" / "base.yaml").write_text(BASE)
    (tmp_path / "manifests" / "dev.yaml").write_text(DEV)
    (tmp_path / "manifests" / "prod.yaml").write_text(PROD)


def _names(path: Path) -> list[str]:
    return sorted(m["name"] for m in json.loads(path.read_text())["models"])


def test_lock_all_locks_each_environment_with_its_base(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    _repo(tmp_path)
    missing = cli.run("lock", "--all", "--check", check=1)
    assert "manifests/dev.lock.json: missing" in missing.stderr

    out = cli.run("lock", "--all", "--json")
    result = json.loads(out.stdout)
    assert [m["manifest"] for m in result["manifests"]] == [
        "manifests/dev.yaml",
        "manifests/prod.yaml",
    ]
    assert result["ok"] is True
    manifests = tmp_path / "manifests"
    assert not (manifests / "base.lock.json").exists()  # only included: no lock of its own
    assert _names(manifests / "dev.lock.json") == ["add-detail-xl", "juggernautXL_v9"]
    assert _names(manifests / "prod.lock.json") == ["juggernautXL_v9", "negative_xl"]
    cli.run("lock", "--all", "--check")
    cli.run("sync", "manifests/prod.yaml", "--models-root", "sd", "--dry-run")

    # Editing the base makes both environments stale; each one names its own lock.
    (manifests / "base.yaml").write_text(BASE + "  - civitai: 133005@288982\n    name: copy\n")
    stale = cli.run("lock", "--all", "--check", check=1)
    assert "dev.lock.json is stale" in stale.stderr and "prod.lock.json is stale" in stale.stderr
    (manifests / "base.yaml").write_text(BASE)
    cli.run("lock", "--all", "--check")

    # A model of the base is removed in the base, not from an environment.
    refused = cli.run("remove", "juggernautXL_v9", "--manifest", "manifests/dev.yaml", check=2)
    assert "base.yaml:3:5" in refused.stderr and "--manifest manifests/base.yaml" in refused.stderr
    cli.run("remove", "add-detail-xl", "--manifest", "manifests/dev.yaml")
    assert (manifests / "dev.yaml").read_text() == "include: [base.yaml]\nloras:\n"
    assert _names(manifests / "dev.lock.json") == ["juggernautXL_v9"]


def test_include_cycle_fails_lock_at_file_line(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    (tmp_path / "manifests" / "a.yaml").write_text("include: [b.yaml]\n")
    (tmp_path / "manifests" / "b.yaml").write_text("checkpoints: []\ninclude: [a.yaml]\n")
    out = cli.run("lock", "manifests/a.yaml", check=2)
    assert "manifests/b.yaml:2:11: error: include cycle: a.yaml → b.yaml → a.yaml" in out.stderr
