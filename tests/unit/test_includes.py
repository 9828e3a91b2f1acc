"""`include:` resolution on real files: order, diamonds, and cycles / missing files reported
at the `include:` item (file:line:column)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import ManifestError
from provision.lock.lockfile import sha256_bytes
from provision.manifest.parse import load_manifest


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_entries_first_then_own_and_digest_covers_every_file(tmp_path: Path) -> None:
    base = _write(tmp_path / "m" / "base.yaml", "checkpoints:\n  - civitai: 1@2\n")
    _write(tmp_path / "m" / "loras.yaml", "include: [base.yaml]\nloras:\n  - civitai: 3@4\n")
    prod = _write(
        tmp_path / "m" / "prod.yaml",
        "include:\n  - base.yaml\n  - loras.yaml   # diamond: base counts once\n"
        "options: {base_check: warn}\nvaes:\n  - hf: o/r/v.safetensors\n",
    )
    manifest = load_manifest(prod)
    assert [(s.kind.value, s.location.file) for s in manifest.specs] == [
        ("checkpoint", str(base)),
        ("lora", str(tmp_path / "m" / "loras.yaml")),
        ("vae", str(prod)),
    ]
    assert manifest.base_check == "warn"
    assert manifest.sha256 != sha256_bytes(prod.read_bytes())
    before = manifest.sha256
    base.write_text("checkpoints:\n  - civitai: 1@3\n")  # editing the base makes prod stale
    assert load_manifest(prod).sha256 != before
    # Without includes the digest stays the plain sha256 of the bytes (old locks stay fresh).
    assert load_manifest(base).sha256 == sha256_bytes(base.read_bytes())


def test_missing_file_and_cycle_at_file_line(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "include:\n  - b.yaml\nloras: []\n")
    _write(tmp_path / "b.yaml", "# b\ninclude: [c.yaml, a.yaml]\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "a.yaml")
    lines = caught.value.render().splitlines()
    assert lines[0] == f"{tmp_path / 'b.yaml'}:2:11: error: include 'c.yaml': " + (
        f"{tmp_path / 'c.yaml'} not found"
    )
    assert lines[1] == f"{tmp_path / 'b.yaml'}:2:19: error: include cycle: a.yaml → b.yaml → a.yaml"


def test_problems_inside_an_included_file_name_that_file(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "loras:\n  - civitai: 1\n    colour: red\n")
    _write(tmp_path / "env.yaml", "include: [base.yaml]\nloras:\n  - civitai: 1\n    name: x\n")
    with pytest.raises(ManifestError, match=r"base\.yaml:3:5: error: unknown key 'colour'"):
        load_manifest(tmp_path / "env.yaml")


def test_name_collision_across_files(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "loras:\n  - civitai: 1\n    name: detail\n")
    _write(
        tmp_path / "env.yaml", "include: [base.yaml]\nloras:\n  - civitai: 2\n    name: detail\n"
    )
    with pytest.raises(ManifestError, match=r"env\.yaml:3:5: error: .*already used by loras\[0\]"):
        load_manifest(tmp_path / "env.yaml")
